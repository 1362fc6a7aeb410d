//! SQLite connections of the store's own, beside the pool's (sqlx), for the
//! work where the pool's driver costs more than the work: the audit
//! appender's group commit, and an audience's facts read, thousands of rows
//! a statement. Here a value is bound and read in place — sqlx copies each
//! into an owned value and hands rows across to its connection's thread.
//!
//! Same file, same bundled SQLite (one `libsqlite3-sys` in the build, so
//! one set of locks in the process), same settings as the pool's
//! connections ([`crate::SQLITE_PRAGMAS`]). Their calls block: they run on a
//! blocking thread ([`Store::on_lite`]).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};

use crate::{Store, StoreError};

/// Idle read connections kept for the next read.
const IDLE: usize = 4;

/// A SQLite file and the idle connections of ours open on it.
#[derive(Debug)]
pub(crate) struct LiteFile {
    path: Arc<Path>,
    idle: Mutex<Vec<Connection>>,
}

impl LiteFile {
    pub(crate) fn new(path: &Path) -> LiteFile {
        LiteFile {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A new connection, set up as the pool's are (see [`Store::open`]).
    pub(crate) fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch(crate::SQLITE_PRAGMAS)?;
        conn.execute_batch(crate::BUSY_TIMEOUT)?;
        Ok(conn)
    }

    /// Run `f` on an idle connection (or a new one) on this thread. The
    /// connection is kept for the next call unless `f` left it inside a
    /// transaction.
    fn with<T>(
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
