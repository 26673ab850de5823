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
//!
//! **Register reads keep their snapshot** ([`DirectReader::read_register`]).
//! In WAL mode any commit, to any table, makes every other connection drop
//! its page cache and memory map at its next read transaction, and kuvert
//! commits all the time (deliveries, audit entries, the lookups' own audit
//! entries). A lookup of 1000 random recipients then starts cold each time
//! (measured: ~45 % slower, docs/performance.md). So register reads use
//! connections that stay inside one read transaction, renewed when this
//! process changes the register ([`DirectReader::register_changed`]) and at
//! least every [`SNAPSHOT_MAX_AGE`]: a change made by another process (the
//! `kuvert recipient` command) is seen within that time. A sweeper drops
//! snapshots older than that, so an idle one never holds back checkpoints
//! for long.

use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Connections kept open between reads; more are opened under load and
/// closed when handed back beyond this.
const IDLE_CONNECTIONS: usize = 8;
/// Address space for the memory map (not memory: the OS pages it in and
/// out as it pleases). SQLite caps it at its compile-time maximum (2 GiB
/// by default); beyond that, pages are read with system calls as usual.
const MMAP_BYTES: i64 = 1 << 31;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 32;
/// The oldest snapshot a register read may use.
pub(crate) const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(1);

pub(crate) struct DirectReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Connections inside a read transaction, for register reads.
    snapshots: Mutex<Vec<Snapshot>>,
    /// Bumped by every change to the register made through this process.
    register_generation: AtomicU64,
}

struct Snapshot {
    connection: Connection,
    taken: Instant,
    generation: u64,
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
        let reader = Arc::new(Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            snapshots: Mutex::new(Vec::new()),
            register_generation: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&reader);
        let sweeper = std::thread::Builder::new()
            .name("kuvert-snapshot-sweeper".to_owned())
            .spawn(move || sweep_snapshots(&weak));
        if let Err(e) = sweeper {
            // Without it an idle snapshot lives until the next register
            // read; correct, only the WAL may grow meanwhile.
            tracing::warn!(error = %e, "could not start the snapshot sweeper");
        }
        reader
    }

    /// The register changed (committed) through this process: the next
    /// register read takes a new snapshot.
    pub(crate) fn register_changed(&self) {
        self.register_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Runs `read` on a blocking thread in a register snapshot: at most
    /// [`SNAPSHOT_MAX_AGE`] old, and newer than every register change made
    /// through this process before the call.
    pub(crate) async fn read_register<R, F>(self: &Arc<Self>, read: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let this = Arc::clone(self);
        on_blocking_thread(move || {
            let generation = this.register_generation.load(Ordering::SeqCst);
            let snapshot = match this.snapshot_lock().pop() {
                Some(s) if s.generation == generation && s.taken.elapsed() < SNAPSHOT_MAX_AGE => s,
                _ => this.new_snapshot(generation)?,
            };
            let answer = read(&snapshot.connection)?;
            // Kept only after a read that worked: after a failure the
            // connection is dropped, and the next read starts afresh.
            let mut snapshots = this.snapshot_lock();
            if snapshots.len() < IDLE_CONNECTIONS {
                snapshots.push(snapshot);
            }
            Ok(answer)
        })
        .await
    }

    fn new_snapshot(&self, generation: u64) -> Result<Snapshot> {
        let connection = self.take()?;
        // BEGIN defers; the first read fixes the snapshot.
        connection.execute_batch("BEGIN")?;
        connection.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        Ok(Snapshot {
            connection,
            taken: Instant::now(),
            generation,
        })
    }

    fn snapshot_lock(&self) -> std::sync::MutexGuard<'_, Vec<Snapshot>> {
        unpoisoned(&self.snapshots)
    }

    /// Runs `read` on a blocking thread with a read-only connection.
    pub(crate) async fn read<R, F>(self: &Arc<Self>, read: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let this = Arc::clone(self);
        on_blocking_thread(move || {
            let connection = this.take()?;
            let result = connection.unchecked_transaction().and_then(|snapshot| {
                let answer = read(&snapshot)?;
                snapshot.finish()?;
                Ok(answer)
            });
            this.give_back(connection);
            Ok(result?)
        })
        .await
    }

    /// Closes the idle connections; those in use at the time go back to
    /// the pool when their read ends, and close with the reader.
    pub(crate) fn close(&self) {
        self.lock().clear();
        self.snapshot_lock().clear();
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        unpoisoned(&self.idle)
    }
}

/// Runs blocking database work on tokio's blocking threads.
async fn on_blocking_thread<R: Send + 'static>(
    work: impl FnOnce() -> Result<R> + Send + 'static,
) -> Result<R> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Corrupt(format!("read task ended: {e}")))?
}

/// A panic while holding one of these locks leaves a valid list of
/// connections, so a poisoned lock is used as it is.
fn unpoisoned<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Drops register snapshots older than [`SNAPSHOT_MAX_AGE`] (closing a
/// connection ends its read transaction), until the reader is gone.
fn sweep_snapshots(reader: &Weak<DirectReader>) {
    loop {
        std::thread::sleep(SNAPSHOT_MAX_AGE);
        let Some(reader) = reader.upgrade() else {
            return;
        };
        reader
            .snapshot_lock()
            .retain(|s| s.taken.elapsed() < SNAPSHOT_MAX_AGE);
    }
}
