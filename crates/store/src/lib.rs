//! kuvert's storage layer.
//!
//! Two databases, one per legal role: the **core** database (tenants, senders,
//! the recipient register, the relay's deliveries and queue) and the
//! **mailbox** database (what the mailbox operator holds). They are separate
//! files so that the mailbox can run as a separate process, as another
//! operator would, and so that the relay never holds mailbox data.
//!
//! SQLite in WAL mode is the embedded default. Writes go through a pool of
//! one connection (SQLite has one writer; queueing in the pool avoids
//! `SQLITE_BUSY` on lock upgrade), reads through a small pool of their own.
//! PostgreSQL joins as a second backend in a later issue; the SQL here is kept
//! portable where that costs nothing.

pub mod audit;
mod checkpoint;
pub mod delegations;
mod direct;
pub mod mailbox;
pub mod quotas;
pub mod recipient_settings;
mod recipient_tokens;
pub mod register;
pub mod relay;
pub mod revocations;
pub mod sessions;
pub mod tenants;
pub mod visible;
pub mod web_senders;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

pub use kuvert_domain::clock::{format_instant, parse_instant};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the direct (rusqlite) read path, see `direct`.
    #[error("database error: {0}")]
    Direct(#[from] rusqlite::Error),
    #[error("migration {version} failed: {source}")]
    Migration { version: u32, source: sqlx::Error },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    /// A request would pass one of its tenant's quotas; nothing of it was
    /// reserved (see `quotas`).
    #[error("quota exceeded: {0}")]
    QuotaExceeded(quotas::Refusal),
    /// A per-owner list is full (checked in the transaction that adds).
    #[error("the list already holds its maximum of {limit} entries")]
    ListFull { limit: i64 },
    /// What authorised a request was withdrawn while it was being checked
    /// (seen inside the transaction that would have stored it).
    #[error("{0}")]
    Withdrawn(relay::Withdrawn),
}

impl From<kuvert_domain::status::UnknownStatus> for StoreError {
    fn from(e: kuvert_domain::status::UnknownStatus) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl StoreError {
    /// Whether the database refused a write because the disk or file is not
    /// writable (full disk, read-only file system): a 503, not a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                let msg = e.message();
                msg.contains("readonly") || msg.contains("disk is full") || msg.contains("disk I/O")
            }
            StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => true,
            StoreError::Direct(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::DatabaseBusy
            ),
            _ => false,
        }
    }
}

/// An insert of something that must not exist yet: a duplicate key is
/// `Conflict`, not a database error.
pub(crate) fn inserted_once(
    result: Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>,
) -> Result<()> {
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// Appends the audit entry of the change made in `tx` and commits both: a
/// change is never stored without its entry, nor an entry without its change.
pub(crate) async fn commit_audited(
    mut tx: sqlx::Transaction<'_, sqlx::Sqlite>,
    now: time::OffsetDateTime,
    entry: &audit::AuditEntry<'_>,
) -> Result<()> {
    audit::append(&mut tx, now, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// An update of one keyed row: no row touched means `NotFound`.
pub(crate) fn updated_one(done: sqlx::sqlite::SqliteQueryResult) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Core,
    Mailbox,
}

struct Migration {
    version: u32,
    sql: &'static str,
}

const CORE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/sqlite/core/0001_core.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/sqlite/core/0002_audit.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/sqlite/core/0003_quotas.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/sqlite/core/0004_outbox_lease.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/sqlite/core/0005_evidence.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/sqlite/core/0006_certificates.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/sqlite/core/0007_audit_checkpoint_chain.sql"),
    },
    Migration {
        version: 8,
        sql: include_str!("../migrations/sqlite/core/0008_recipient_token_revocations.sql"),
    },
    Migration {
        version: 9,
        sql: include_str!("../migrations/sqlite/core/0009_delivery_time_checks.sql"),
    },
    Migration {
        version: 10,
        sql: include_str!("../migrations/sqlite/core/0010_quotas_that_hold.sql"),
    },
    Migration {
        version: 11,
        sql: include_str!("../migrations/sqlite/core/0011_credential_scope.sql"),
    },
    Migration {
        version: 12,
        sql: include_str!("../migrations/sqlite/core/0012_web_sessions.sql"),
    },
    Migration {
        version: 13,
        sql: include_str!("../migrations/sqlite/core/0013_web_senders.sql"),
    },
];

const MAILBOX_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/sqlite/mailbox/0001_mailbox.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/sqlite/mailbox/0002_audit.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/sqlite/mailbox/0003_audit_checkpoint_chain.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/sqlite/mailbox/0004_row_binding.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/sqlite/mailbox/0005_recipient_token_revocations.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/sqlite/mailbox/0006_revocations.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/sqlite/mailbox/0007_delegations.sql"),
    },
    Migration {
        version: 8,
        sql: include_str!("../migrations/sqlite/mailbox/0008_inbox_paging.sql"),
    },
    Migration {
        version: 9,
        sql: include_str!("../migrations/sqlite/mailbox/0009_notification_contacts.sql"),
    },
];

/// The write connection, held (see [`Db::hold_writer`]).
pub struct WriterHold(#[allow(dead_code)] sqlx::pool::PoolConnection<sqlx::Sqlite>);

/// A connected database with its schema up to date.
#[derive(Debug, Clone)]
pub struct Db {
    write: SqlitePool,
    read: SqlitePool,
    /// Lookups of many rows at once (see `direct`).
    direct: std::sync::Arc<direct::DirectReader>,
    /// WAL checkpoints off the request path (see `checkpoint`); none for a
    /// database opened read-only.
    checkpointer: Option<std::sync::Arc<checkpoint::Checkpointer>>,
}

impl Db {
    /// Opens (creating if missing) the database file and applies migrations.
    pub async fn open(path: &Path, schema: Schema) -> Result<Self> {
        // synchronous=FULL: in WAL mode only FULL survives power loss, and
        // "accepted" must mean durable.
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Checkpoints run on a thread of their own (see `checkpoint`).
            .pragma("wal_autocheckpoint", "0")
            // The mailbox's deleted messages (ciphertext and wrapped data
            // key) are overwritten in the file, not left in free space; the
            // core holds no mailbox content (docs/architecture.md,
            // "Encryption at rest").
            .pragma(
                "secure_delete",
                if schema == Schema::Mailbox {
                    "ON"
                } else {
                    "OFF"
                },
            );
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_release(|conn, _| Box::pin(async move { Ok(is_idle(conn).await) }))
            .connect_with(options.clone())
            .await?;
        migrate(&write, schema).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            write,
            read,
            direct: direct::DirectReader::new(path),
            checkpointer: Some(checkpoint::Checkpointer::start(path)),
        })
    }

    /// Opens an existing database to read only: no file is created, no
    /// migration runs and nothing is written, so a checker (`kuvert audit
    /// verify`) can be pointed at evidence without changing it. Writes
    /// through the result fail.
    pub async fn open_read_only(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(StoreError::NotFound);
        }
        // A database with no WAL beside it (a stopped node, a copy) is read
        // as immutable, so SQLite creates no -wal/-shm either; with a WAL
        // (a running node) its newest commits are there and must be read.
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .read_only(true)
            .immutable(!Path::new(&wal).exists())
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(Self {
            write: pool.clone(),
            read: pool,
            direct: direct::DirectReader::new(path),
            checkpointer: None,
        })
    }

    /// A trivial query, for readiness: the database file answers a read.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(self.reader())
            .await?;
        Ok(())
    }

    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.write
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// Takes the one write connection and keeps it until the guard is
    /// dropped: for tests that prove a read (authentication, status, keys)
    /// does not wait for a writer busy with another tenant's work.
    pub async fn hold_writer(&self) -> Result<WriterHold> {
        Ok(WriterHold(self.write.acquire().await?))
    }

    /// Closes every connection, the writer last: after the last write, the
    /// WAL is copied into the database file and truncated (see
    /// `checkpoint`), so a clean stop leaves nothing beside the file.
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close();
        }
        self.direct.close();
        self.read.close().await;
        self.truncate_wal().await;
        self.write.close().await;
    }

    /// A TRUNCATE checkpoint on the writer, without waiting: when another
    /// process still reads the file (a `kuvert` command beside a running
    /// node) it would have to hold off that process's writes, so it is left
    /// for later (the WAL is kept; nothing is lost).
    async fn truncate_wal(&self) {
        let Ok(mut connection) = self.write.acquire().await else {
            return;
        };
        let done = async {
            sqlx::Executor::execute(&mut *connection, "PRAGMA busy_timeout = 0").await?;
            let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *connection)
                .await?;
            row.try_get::<i64, _>(0)
        }
        .await;
        match done {
            Ok(0) => {}
            Ok(_) => tracing::info!("WAL not truncated at close: another connection reads"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint at close failed"),
        }
    }
}

/// Whether a connection handed back to the pool is outside any transaction,
/// as it must be. A write that fails on a full disk can leave SQLite and
/// sqlx disagreeing about an open transaction; kept, such a connection
/// answered later "commits" without storing anything (found by the
/// full-disk test). The probe runs after any rollback sqlx queued when a
/// transaction was dropped: `BEGIN` fails inside a transaction, and sqlx's
/// own count must then be zero too. A connection that fails is closed
/// (which rolls back whatever it held) and the pool opens a new one.
async fn is_idle(conn: &mut sqlx::SqliteConnection) -> bool {
    use sqlx::Connection as _;
    let probe = sqlx::Executor::execute(&mut *conn, "BEGIN; ROLLBACK;").await;
    let healthy = probe.is_ok() && !conn.is_in_transaction();
    if !healthy {
        tracing::warn!(
            error = probe.err().map(|e| e.to_string()),
            "closing a database connection left inside a transaction"
        );
    }
    healthy
}

async fn migrate(pool: &SqlitePool, schema: Schema) -> Result<()> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        .execute(pool)
        .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| row.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    let migrations = match schema {
        Schema::Core => CORE_MIGRATIONS,
        Schema::Mailbox => MAILBOX_MIGRATIONS,
    };
    for migration in migrations {
        if applied.contains(&i64::from(migration.version)) {
            continue;
        }
        let version = migration.version;
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(|source| StoreError::Migration { version, source })?;
        sqlx::query("INSERT INTO schema_migrations (version) VALUES (?)")
            .bind(i64::from(version))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, ?schema, "applied migration");
    }
    Ok(())
}

/// Reads a column that holds an instant.
/// A UTC day as the half-open range of stored instants `[from, until)`:
/// instants are stored as fixed-width RFC 3339 text, so text order is time
/// order and an index on the column serves the range.
pub(crate) fn day_range(day: time::Date) -> (String, String) {
    let from = day.midnight().assume_utc();
    let until = from + time::Duration::days(1);
    (format_instant(from), format_instant(until))
}

pub(crate) fn instant(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<time::OffsetDateTime> {
    let text: String = row.try_get(column)?;
    parse_instant(&text).map_err(|_| StoreError::Corrupt(format!("bad instant in {column}")))
}

pub(crate) fn opt_instant(
    row: &sqlx::sqlite::SqliteRow,
    column: &str,
) -> Result<Option<time::OffsetDateTime>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        parse_instant(&t).map_err(|_| StoreError::Corrupt(format!("bad instant in {column}")))
    })
    .transpose()
}
