//! WAL checkpoints off the request path.
//!
//! By default SQLite checkpoints inside the commit that pushes the WAL past
//! 1000 pages (~4 MiB): copying the WAL into the database file and syncing
//! it, while the one writer is held. An intake request of 1000 deliveries
//! writes about that much, so nearly every such commit paid for a
//! checkpoint, and every request queued behind it waited too. Here the
//! writer never checkpoints (`wal_autocheckpoint = 0`); a thread of its own
//! runs a PASSIVE checkpoint every [`EVERY`], on a connection of its own.
//! A PASSIVE checkpoint waits for no one: it copies what no reader still
//! needs, while the writer goes on appending. Durability is unchanged: a
//! commit is durable once its WAL frames are synced, checkpointed or not.
//!
//! PASSIVE checkpoints never shrink the WAL file, and a read-only connection
//! closing last cannot checkpoint it, so [`Db::close`](crate::Db::close)
//! stops this thread (waiting for a checkpoint under way), closes the
//! readers and then, on the writer, runs a TRUNCATE checkpoint: after a
//! clean stop the WAL is empty.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often the WAL is copied into the database file.
const EVERY: Duration = Duration::from_millis(250);

/// Stops the checkpointing thread when the database is closed or dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    closed: AtomicBool,
    /// The thread's connection, held while it checkpoints: `close` takes
    /// it, so it waits for a checkpoint under way, and none starts after.
    connection: Mutex<Option<Connection>>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path) -> Arc<Self> {
        let this = Arc::new(Self {
            closed: AtomicBool::new(false),
            connection: Mutex::new(None),
        });
        let weak = Arc::downgrade(&this);
        let path = path.to_owned();
        let started = std::thread::Builder::new()
            .name("kuvert-checkpoint".to_owned())
            .spawn(move || run(&path, &weak));
        if let Err(e) = started {
            // The WAL then grows until the last connection closes (which
            // checkpoints); correct, but worth knowing.
            tracing::error!(error = %e, "could not start the WAL checkpointer");
        }
        this
    }

    /// Stops the thread: returns once no checkpoint of it is under way,
    /// its connection closed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        // A panic inside a checkpoint leaves at worst a connection to drop.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn run(path: &Path, owner: &Weak<Checkpointer>) {
    loop {
        std::thread::sleep(EVERY);
        let Some(owner) = owner.upgrade() else {
            return;
        };
        let mut connection = owner.lock();
        // Checked under the lock: after `close` took it, nothing starts.
        if owner.closed.load(Ordering::SeqCst) {
            return;
        }
        if connection.is_none() {
            *connection = open(path)
                .map_err(|e| tracing::warn!(error = %e, "checkpointer: cannot open the database"))
                .ok();
        }
        if let Some(c) = connection.as_ref()
            && let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            // A full disk, say: try again next time, on a fresh connection.
            tracing::warn!(error = %e, "checkpoint failed; will retry");
            *connection = None;
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(Duration::from_secs(5))?;
    Ok(connection)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::{Db, Schema};
    use std::time::{Duration, Instant};

    /// The writer never checkpoints, yet what it commits reaches the
    /// database file while the database stays open: the checkpointer's doing.
    #[tokio::test]
    async fn committed_pages_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kuvert.db");
        let db = Db::open(&path, Schema::Core).await.unwrap();
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        // Migrations are checkpointed by now (or soon); wait for a stable size.
        tokio::time::sleep(super::EVERY * 3).await;
        let before = size();
        register_many(&db, 2000).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while size() <= before {
            assert!(
                Instant::now() < deadline,
                "the database file never grew: nothing was checkpointed"
            );
            tokio::time::sleep(super::EVERY).await;
        }
        db.close().await;
    }

    /// Writes `count` recipients, one transaction each, as a busy node would.
    async fn register_many(db: &Db, count: u32) {
        let now = time::OffsetDateTime::now_utc();
        for n in 0..count {
            db.set_recipient(
                &format!("19800101{n:04}"),
                crate::register::RecipientStatus::Registered,
                None,
                now,
                &crate::audit::TEST_ENTRY,
            )
            .await
            .unwrap();
        }
    }

    /// Closing the database copies the WAL into the database file and
    /// truncates it: nothing is left beside the file after a clean stop.
    #[tokio::test]
    async fn closing_leaves_the_wal_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kuvert.db");
        let wal = dir.path().join("kuvert.db-wal");
        let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        let db = Db::open(&path, Schema::Core).await.unwrap();
        register_many(&db, 200).await;
        // Keep a register snapshot and a read connection open, as a
        // running node would.
        db.reachability(&["198001010001".to_owned()], "162120000019")
            .await
            .unwrap();
        db.audit_unsigned().await.unwrap();
        assert!(wal_size() > 0, "the writes went through the WAL");
        db.close().await;
        assert_eq!(wal_size(), 0, "WAL left after close");
        // And the data is in the database file.
        let reopened = Db::open(&path, Schema::Core).await.unwrap();
        assert!(reopened.recipient("198001010199").await.unwrap().is_some());
        reopened.close().await;
    }
}
