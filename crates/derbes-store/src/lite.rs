//! SQLite connections of the store's own, beside the pool's (sqlx), for the
//! work where the pool's driver costs more than the work: the audit
//! appender's group commit, an audience's facts read, thousands of rows
//! a statement, and an import's batch, ~100,000 rows a transaction. Here
//! a value is bound and read in place — sqlx copies each into an owned
//! value and hands rows across to its connection's thread.
//!
//! Same file, same bundled SQLite (one `libsqlite3-sys` in the build, so
//! one set of locks in the process), same settings as the pool's
//! connections ([`crate::SQLITE_PRAGMAS`]), and the file mapped ([`MAP`]).
//! Their calls block: they run on the audit writer's thread or a blocking
//! thread ([`Store::on_lite`]).

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rusqlite::{Connection, OpenFlags};

use crate::{Store, StoreError};

/// These connections map the file (up to SQLite's 2 GiB ceiling) rather
/// than copying each page in with a system call: an audience reads
/// thousands of subjects' pages a statement, and the writer's inserts land
/// on pages all over the indexes. A connection drops its whole map when it
/// begins a read after another connection wrote, so the pool's many small
/// reads go without (see [`Store::open`]).
const MAP: &str = "PRAGMA mmap_size = 2147418112";

/// Idle read connections kept for the next read.
const IDLE: usize = 4;

/// A SQLite file, the idle connections of ours open on it, and the
/// checkpointer that copies its WAL back (started at the first commit).
#[derive(Debug)]
pub(crate) struct LiteFile {
    path: Arc<Path>,
    idle: Mutex<Vec<Connection>>,
    wal: OnceLock<Option<Checkpointer>>,
}

/// A new connection to `path`, set up as the pool's are (see [`Store::open`]).
fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(crate::SQLITE_PRAGMAS)?;
    conn.execute_batch(crate::BUSY_TIMEOUT)?;
    conn.execute_batch(MAP)?;
    Ok(conn)
}

impl LiteFile {
    pub(crate) fn new(path: &Path) -> LiteFile {
        LiteFile {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
            wal: OnceLock::new(),
        }
    }

    /// A new connection, set up as the pool's are (see [`Store::open`]).
    pub(crate) fn connect(&self) -> Result<Connection, rusqlite::Error> {
        connect(&self.path)
    }

    /// A transaction on the file committed (any connection's: the pool's
    /// units of work, the audit writer's batches): the checkpointer, started
    /// at the first, copies it back on its own thread. Should the thread
    /// not start, the committing connections' own automatic checkpoint
    /// still bounds the WAL ([`crate::SQLITE_PRAGMAS`]).
    pub(crate) fn committed(&self) {
        if let Some(wal) = self
            .wal
            .get_or_init(|| Checkpointer::start(self.path.clone()))
        {
            wal.poke();
        }
    }

    /// Run `f` on an idle connection (or a new one) on this thread. The
    /// connection is kept for the next call unless `f` left it inside a
    /// transaction.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&conn);
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < IDLE {
                idle.push(conn);
            }
        }
        out
    }
}

/// Run `f` between `BEGIN` and `COMMIT`: every statement in it reads one
/// snapshot of the file. On an error the transaction is rolled back.
pub(crate) fn read_snapshot<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            // A connection left inside the transaction is not kept.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

impl Store {
    /// The SQLite file, when the store is one.
    pub(crate) fn lite(&self) -> Result<&Arc<LiteFile>, StoreError> {
        self.lite
            .as_ref()
            .ok_or_else(|| StoreError::Config("a SQLite store without its file".into()))
    }

    /// Run `f` on a connection of the store's own, on a blocking thread.
    pub(crate) async fn on_lite<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let lite = self.lite()?.clone();
        tokio::task::spawn_blocking(move || lite.with(f))
            .await
            .map_err(|e| StoreError::Config(format!("a SQLite read's thread: {e}")))?
    }
}

/// How far the WAL may grow before the audit writer checkpoints it itself
/// (the checkpointer fell behind): SQLite's automatic checkpoint on the
/// writer's connection, lower than other connections' (its batches are
/// small and many; see [`crate::SQLITE_PRAGMAS`]).
pub(crate) const WRITER_CHECKPOINT_PAGES: u32 = 8_000;

/// The least time between two of the checkpointer's passes while commits
/// trickle in: pages rewritten by many small commits (the last page of the
/// table and of each index) are then copied once for all of them.
const CHECKPOINT_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// The pause instead after a pass that copied a bulk of frames (an
/// audience's chunk, an import's batch): the next bulk is copied back as
/// soon as it is committed, so the WAL stays short and the writer's own
/// automatic checkpoint is not reached.
const BULK_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// Frames copied in one pass (4 MiB) from which the commits are a bulk.
const BULK_FRAMES: i64 = 1_024;

/// How long to pause after a pass, from the WAL's frames checkpointed
/// before it and after it (fewer after: the WAL was restarted between).
fn pause_after(before: i64, after: i64) -> std::time::Duration {
    let copied = if after >= before {
        after - before
    } else {
        after
    };
    if copied >= BULK_FRAMES {
        BULK_PAUSE
    } else {
        CHECKPOINT_PAUSE
    }
}

/// Copies the WAL's committed pages back into the database file on a
/// thread of its own (SQLite's `PASSIVE` checkpoint: it never blocks a
/// writer or a reader), so commits do not stop to do it — SQLite's
/// automatic checkpoint runs on the connection that commits. Poked after
/// every commit on the file ([`LiteFile::committed`]); at most one pass every
/// [`CHECKPOINT_PAUSE`], or [`BULK_PAUSE`] after a pass that copied a
/// bulk. Dropped, it stops the thread and waits for it: the thread's
/// connection closes before the process goes on (or exits), so the last
/// connection to close checkpoints the WAL and removes it, as SQLite does.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    state: Arc<(Mutex<Poke>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Poke {
    due: bool,
    closed: bool,
}

impl Checkpointer {
    /// Start the thread; `None` if it could not start (the committing
    /// connections then checkpoint at their own bound).
    fn start(path: Arc<Path>) -> Option<Checkpointer> {
        let state = Arc::new((Mutex::new(Poke::default()), std::sync::Condvar::new()));
        let theirs = state.clone();
        let thread = std::thread::Builder::new()
            .name("derbes-wal".into())
            .spawn(move || run_checkpointer(&path, &theirs))
            .map_err(|e| tracing::warn!(error = %e, "the WAL checkpointer did not start"))
            .ok()?;
        Some(Checkpointer {
            state,
            thread: Some(thread),
        })
    }

    /// A commit on the file: a pass is due.
    fn poke(&self) {
        let (lock, cv) = &*self.state;
        lock.lock().unwrap_or_else(PoisonError::into_inner).due = true;
        cv.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, cv) = &*self.state;
        lock.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        cv.notify_all();
        // At most the pass under way (a pause ends at once).
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_checkpointer(path: &Path, state: &(Mutex<Poke>, std::sync::Condvar)) {
    let (lock, cv) = state;
    let mut conn = None;
    let mut checkpointed = 0;
    loop {
        {
            let mut poke = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !poke.due && !poke.closed {
                poke = cv.wait(poke).unwrap_or_else(PoisonError::into_inner);
            }
            if poke.closed {
                return;
            }
            poke.due = false;
        }
        if conn.is_none() {
            conn = connect(path).ok();
        }
        let mut pause = CHECKPOINT_PAUSE;
        if let Some(c) = &conn {
            // Busy (another checkpoint running) or failed: the next poke
            // tries again, and the writer's own automatic checkpoint
            // bounds the WAL meanwhile.
            match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(2)) {
                Ok(now) => {
                    pause = pause_after(checkpointed, now);
                    checkpointed = now;
                }
                Err(_) => conn = None,
            }
        }
        // The pause, cut short only by closing (a poke meanwhile stays due).
        let until = std::time::Instant::now() + pause;
        let mut poke = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if poke.closed || left.is_zero() {
                break;
            }
            poke = cv
                .wait_timeout(poke, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A pass that copied a bulk is followed soon by the next; a trickle
    /// waits, also across a restart of the WAL.
    #[test]
    fn a_bulk_is_copied_back_sooner_than_a_trickle() {
        assert_eq!(pause_after(0, BULK_FRAMES), BULK_PAUSE);
        assert_eq!(
            pause_after(5_000, 5_000 + BULK_FRAMES - 1),
            CHECKPOINT_PAUSE
        );
        assert_eq!(pause_after(9_000, 2_000), BULK_PAUSE);
        assert_eq!(pause_after(9_000, 40), CHECKPOINT_PAUSE);
        // A busy pass reports -1: nothing known to be copied.
        assert_eq!(pause_after(9_000, -1), CHECKPOINT_PAUSE);
    }

    /// The checkpointer, started by the first commit it is told of, copies
    /// what a writer committed into the database file, beside a writer
    /// whose own automatic checkpoint is off; it ends with the file.
    #[test]
    fn the_checkpointer_copies_the_wal_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Connection::open(&path).unwrap());
        let file = Arc::new(LiteFile::new(&path));
        let writer = file.connect().unwrap();
        // The store's own connections map the file (the pool's do not).
        let mapped: i64 = writer
            .query_row("PRAGMA mmap_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mapped, 2_147_418_112);
        writer
            .execute_batch(
                "PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (v BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                 INSERT INTO t SELECT zeroblob(1000) FROM n;",
            )
            .unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        assert!(size() < 100_000, "nothing copied yet: {}", size());
        file.committed();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while size() < 1_000_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(size() >= 1_000_000, "copied: {}", size());
        // Dropped, the file's checkpointer stops and closes its connection
        // before the drop returns: the last to close, it removes the WAL.
        drop(writer);
        let wal = dir.path().join("t.db-wal");
        assert!(wal.exists(), "the checkpointer's connection keeps the WAL");
        drop(file);
        assert!(!wal.exists(), "the WAL is removed once the thread is done");
    }
}
