//! Reads that answer many rows at once, straight through SQLite's C API
//! (rusqlite) on a blocking thread.
//!
//! Why: sqlx's SQLite driver runs each connection on a thread of its own
//! and hands every statement and every row across a channel. For a lookup
//! of 1000 recipients that is thousands of thread hand-offs; a profile of
//! the reachability benchmark put most of the server's time in task
//! switching and page copies, not in SQLite (docs/performance.md). Here a
//! whole lookup is one hand-off, and its statements are prepared once per
//! connection and reused.
//!
//! The connections are read-only: in WAL mode they see the last committed
//! state and never block a writer (though a long read holds back the
//! checkpoint, so the WAL grows while it lasts). Each read runs in one read
//! transaction: one snapshot and one WAL read lock for all its statements.

use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections kept open between reads; more are opened under load and
/// closed when handed back beyond this.
const IDLE_CONNECTIONS: usize = 8;
/// Address space for the memory map (not memory: the OS pages it in and
/// out as it pleases). SQLite caps it at its compile-time maximum (2 GiB
/// by default); beyond that, pages are read with system calls as usual.
const MMAP_BYTES: i64 = 1 << 31;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 32;

pub(crate) struct DirectReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for DirectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DirectReader {
    pub(crate) fn new(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `read` on a blocking thread with a read-only connection.
    pub(crate) async fn read<R, F>(self: &Arc<Self>, read: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let connection = this.take()?;
            let result = connection.unchecked_transaction().and_then(|snapshot| {
                let answer = read(&snapshot)?;
                snapshot.finish()?;
                Ok(answer)
            });
            this.give_back(connection);
            result.map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("read task ended: {e}")))?
    }

    /// Closes the idle connections (those in use close when handed back
    /// after this, as the pool stays under its bound).
    pub(crate) fn close(&self) {
        self.lock().clear();
    }

    fn take(&self) -> Result<Connection> {
        if let Some(connection) = self.lock().pop() {
            return Ok(connection);
        }
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(10))?;
        // Pages are read through a memory map, not copied in by a system
        // call each: a lookup of 1000 random ids touches ~3000 pages.
        connection.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(connection)
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.lock();
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(connection);
        }
    }

    /// A panic while holding the lock leaves a valid list of connections,
    /// so a poisoned lock is used as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
