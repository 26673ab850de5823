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

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the WAL is copied into the database file.
const EVERY: Duration = Duration::from_millis(250);

/// Stops the checkpointing thread when the database is closed or dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    closed: AtomicBool,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path) -> Arc<Self> {
        let this = Arc::new(Self {
            closed: AtomicBool::new(false),
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

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

fn run(path: &Path, owner: &Weak<Checkpointer>) {
    let mut connection: Option<Connection> = None;
    loop {
        std::thread::sleep(EVERY);
        match owner.upgrade() {
            Some(owner) if !owner.closed.load(Ordering::SeqCst) => {}
            _ => return,
        }
        if connection.is_none() {
            connection = open(path)
                .map_err(|e| tracing::warn!(error = %e, "checkpointer: cannot open the database"))
                .ok();
        }
        if let Some(c) = &connection
            && let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            // A full disk, say: try again next time, on a fresh connection.
            tracing::warn!(error = %e, "checkpoint failed; will retry");
            connection = None;
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
        let now = time::OffsetDateTime::now_utc();
        for n in 0..2000_u32 {
            let id = format!("19800101{:04}", n);
            db.set_recipient(
                &id,
                crate::register::RecipientStatus::Registered,
                None,
                now,
                &crate::audit::TEST_ENTRY,
            )
            .await
            .unwrap();
        }
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
}
