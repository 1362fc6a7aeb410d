//! Storage for derbes: one interface, two engines.
//!
//! SQLite is the embedded default (a file in the data directory, WAL journal,
//! `synchronous=FULL` so that whatever a caller was told is saved survives a
//! power cut); PostgreSQL is for production (`DATABASE_URL`). Both run the
//! same SQL through sqlx's `Any` driver — placeholders are written `$1`, which
//! both accept — and their own migrations, applied at start-up. The same test
//! suite runs against both.
//!
//! ```no_run
//! # async fn demo() -> Result<(), derbes_store::StoreError> {
//! use derbes_store::{Store, StoreConfig};
//! let store = Store::open(&StoreConfig::sqlite_in("./derbes-data")).await?;
//! store.migrate().await?;
//! store.ping().await?;
//! # Ok(()) }
//! ```
//!
//! Every subject-scoped table that later issues add is keyed by `subject_id`
//! first, so the schema can be distributed by subject.

mod audit;
mod breaches;
mod consents;
mod decode;
mod destroy;
mod disclosures;
mod groups;
mod imports;
mod jobs;
mod keys;
mod lite;
mod migrate;
mod notes;
mod organizations;
mod outbox;
mod policy_versions;
mod requests;
mod retention;
mod select;
mod sessions;
mod subjects;
#[cfg(feature = "test-support")]
pub mod testing;
mod tokens;
mod weblog;
mod write;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub(crate) use decode::{
    request_state, subject_id, subject_id_opt, subject_status, time, time_opt, us,
};
pub use derbes_core::{RequestState, SubjectId, SubjectStatus};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use audit::{
    checkpoint_message, record_hash, AuditAppender, AuditQuery, AuditRow, ChainTail, Checkpoint,
    LiteAppender, NewAuditRecord, RecordProof, SignCheckpoint, Verification,
};
pub use breaches::{BreachFilter, BreachRow, BreachState};
pub use consents::{Acceptance, ConsentRow, NewConsent};
pub use destroy::{DestroyOutcome, Destruction, Scope};
pub use disclosures::DisclosureRow;
pub use groups::{AuditGroup, GroupBuilder, GroupOutcome};
pub use imports::{ImportBatch, ImportBatchWritten, ImportProgress};
pub use jobs::{Certificate, JobRow, ObligationRow};
pub use keys::{KekCount, Rewrap, SubjectKey};
pub use migrate::latest_version;
pub use notes::{LegacyText, NoteRow, RepresentativeRow, StoredDetails};
pub use organizations::OrganizationRow;
pub use outbox::{EventFilter, EventRow, EventState, NewEvent, NoticeFilter, NoticeRow, SystemRow};
pub use policy_versions::{PolicyVersion, PublishOutcome};
pub use requests::{Filing, RequestEvent, RequestFilter, RequestRow};
pub use retention::{HistoryKey, HistoryRow, LegalHold, PurgeCandidate, PurgeScope};
pub use sessions::SessionRow;
pub use subjects::{
    FactsConsent, FieldHistoryRow, FieldRow, NewSubject, OptoutRow, Rectification, SubjectCounts,
    SubjectFactsRows, SubjectRow, WrappedKey,
};
pub use tokens::TokenRow;
pub use weblog::{MergeVisitors, WeblogCell, WeblogPosition};
pub use write::Write;

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A SQLite file (created with its directory if missing).
    Sqlite { path: PathBuf },
    /// A PostgreSQL URL, `postgres://user@host:port/db?options=...`.
    Postgres { url: String },
}

impl StoreConfig {
    /// `derbes.db` in `data_dir`.
    pub fn sqlite_in(data_dir: impl AsRef<Path>) -> StoreConfig {
        StoreConfig::Sqlite {
            path: data_dir.as_ref().join("derbes.db"),
        }
    }

    /// PostgreSQL when `database_url` is given, SQLite in `data_dir` otherwise.
    /// A `sqlite:` URL names a SQLite file.
    pub fn choose(database_url: Option<&str>, data_dir: &Path) -> Result<StoreConfig, StoreError> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(StoreConfig::sqlite_in(data_dir)),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(StoreConfig::Postgres { url: u.to_string() })
            }
            Some(u) if u.starts_with("sqlite:") => {
                let path = u
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                Ok(StoreConfig::Sqlite {
                    path: PathBuf::from(path),
                })
            }
            Some(_) => Err(StoreError::Config(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite:".into(),
            )),
        }
    }

    /// A description safe to log: never a password.
    pub fn redacted(&self) -> String {
        match self {
            StoreConfig::Sqlite { path } => format!("sqlite {}", path.display()),
            StoreConfig::Postgres { url } => {
                let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
                let host = rest.rsplit_once('@').map(|x| x.1).unwrap_or(rest);
                let host = host.split('?').next().unwrap_or(host);
                format!("postgres {host}")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage configuration: {0}")]
    Config(String),
    #[error("cannot prepare the data directory: {0}")]
    DataDir(#[source] std::io::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the audit appender's own SQLite connection.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("policy version {version} is already published with different content (sha256 {existing}); publish changes under a new version")]
    PolicyVersionConflict { version: String, existing: String },
    #[error("{0} is already registered")]
    Duplicate(String),
    #[error("{0} changed since it was read; read it again")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("the active KEK is now {active}: wrap under it")]
    KekChanged { active: String },
    #[error("the request waits for {0} connected system(s) to confirm")]
    AwaitingSystems(i64),
    #[error("the database schema is version {found}, newer than this derbes knows ({known}); upgrade derbes")]
    SchemaTooNew { found: i64, known: i64 },
}

impl StoreError {
    /// A row's key was already taken.
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(d)) => d.is_unique_violation(),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
                    && matches!(
                        e.extended_code,
                        rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                            | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    )
            }
            _ => false,
        }
    }
}

/// How long a SQLite connection waits for another's lock.
const BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 10000";
/// Every SQLite connection's settings (the pool's and the store's own in
/// `lite.rs`; why each, at [`Store::open`]).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA cache_spill = OFF; \
     PRAGMA wal_autocheckpoint = 40000;";

/// How long [`Store::expunge`] keeps trying on a busy SQLite file.
const EXPUNGE_PATIENCE: Duration = Duration::from_millis(250);
/// Its pause between two tries.
const EXPUNGE_RETRY: Duration = Duration::from_millis(2);

/// A connection pool on one backend.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Notified after a unit of work that wrote outbox events commits.
    outbox_signal: std::sync::Arc<tokio::sync::Notify>,
    /// The furthest tail of the audit chain this process saw committed.
    chain_tail: TailHint,
    /// The SQLite file, for the connections of the store's own (see `lite`).
    lite: Option<std::sync::Arc<lite::LiteFile>>,
}

/// The furthest tail of the audit chain seen committed, shared by a store's
/// clones (see [`AuditAppender`]). Committed records are never removed, so
/// whatever it holds was true, and it only moves forward.
#[derive(Debug, Clone, Default)]
pub(crate) struct TailHint(std::sync::Arc<std::sync::Mutex<Option<ChainTail>>>);

impl TailHint {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ChainTail>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self) -> Option<ChainTail> {
        self.lock().clone()
    }

    /// A tail just committed; kept if it is further than the one known.
    pub(crate) fn saw(&self, tail: ChainTail) {
        let mut known = self.lock();
        if known.as_ref().is_none_or(|k| k.seq < tail.seq) {
            *known = Some(tail);
        }
    }

    pub(crate) fn forget(&self) {
        *self.lock() = None;
    }
}

/// Percent-encode the characters SQLite URLs treat specially in a path.
fn sqlite_url(path: &Path) -> String {
    let mut s = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => s.push_str("%25"),
            '?' => s.push_str("%3F"),
            '#' => s.push_str("%23"),
            c => s.push(c),
        }
    }
    s.push_str("?mode=rwc");
    s
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Create `path` empty and readable by its owner only, unless it exists.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// How long a connection may take to come (from the pool or opened).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a pooled PostgreSQL connection may sit idle before it is
/// tested again at its next use.
const IDLE_BEFORE_TEST: Duration = Duration::from_secs(1);

impl Store {
    /// Connect (creating the SQLite file and its directory if needed). Does
    /// not migrate: call [`Store::migrate`].
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend, max) = match config {
            StoreConfig::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if !dir.exists() {
                        std::fs::create_dir_all(dir).map_err(StoreError::DataDir)?;
                        restrict(dir).map_err(StoreError::DataDir)?;
                    }
                }
                // Created 0600 before SQLite opens it, whatever the umask:
                // SQLite gives its WAL and shared-memory files the mode of
                // the database file.
                create_private(path).map_err(StoreError::DataDir)?;
                (sqlite_url(path), Backend::Sqlite, 8)
            }
            StoreConfig::Postgres { url } => (url.clone(), Backend::Postgres, 16),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        // A SQLite connection lives in this process and cannot go stale:
        // no test before each use. A PostgreSQL one can, but sqlx already
        // tests it as it comes back to the pool, so it is tested again
        // before a use only after it sat idle (a server restarted
        // meanwhile), not on every acquire: a busy pool's every decision
        // paid one more round trip for it.
        let mut pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false);
        if backend == Backend::Postgres {
            pool = pool.before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_TEST {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        }
        let pool = pool
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; FULL makes
                        // every commit durable before it returns;
                        // secure_delete zeroes what a change or a deletion
                        // frees, so no old value lingers in a page's free
                        // space. The pool's connections do not map the
                        // file (the store's own in `lite.rs` do): a
                        // connection drops its whole map whenever it begins
                        // a read after another wrote, and under the audit
                        // writer's commits that was one `munmap` per small
                        // read. cache_spill off: a big transaction (an
                        // import's batch) keeps its changed pages in memory
                        // until its commit instead of writing them to the
                        // WAL midway, and again when it changes them once
                        // more (with a statement journal beside); the cache
                        // of clean pages keeps SQLite's default size. The
                        // WAL is copied back by the file's checkpointer
                        // (`lite.rs`) after every commit, on a thread of its
                        // own; a connection checkpoints itself only if the
                        // WAL still grew to 40,000 pages (160 MiB; SQLite's
                        // default of 1,000 is below one import batch's
                        // commit), so a commit does not stop to do it.
                        conn.execute(SQLITE_PRAGMAS).await?;
                        conn.execute(BUSY_TIMEOUT).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store {
            pool,
            backend,
            outbox_signal: std::sync::Arc::default(),
            chain_tail: TailHint::default(),
            lite: match config {
                StoreConfig::Sqlite { path } => {
                    Some(std::sync::Arc::new(lite::LiteFile::new(path)))
                }
                StoreConfig::Postgres { .. } => None,
            },
        })
    }

    /// Open and bring the schema up to date.
    pub async fn open_and_migrate(config: &StoreConfig) -> Result<Store, StoreError> {
        let store = Store::open(config).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Apply pending migrations; returns the versions applied now. Refuses a
    /// schema newer than this build.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let applied = migrate::run(self).await?;
        let found = self.schema_version().await?;
        if found > latest_version() {
            return Err(StoreError::SchemaTooNew {
                found,
                known: latest_version(),
            });
        }
        Ok(applied)
    }

    /// The highest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        use sqlx::Row;
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM derbes_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("v")?)
    }

    /// A round trip to the database (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A connection of its own, outside the pool, opened with the pool's
    /// settings on the runtime that calls this (its socket wakes that
    /// runtime, not the pool's): for a writer on a thread of its own.
    /// Gives up as an acquire from the pool would, after [`ACQUIRE_TIMEOUT`].
    pub(crate) async fn own_connection(&self) -> Result<sqlx::AnyConnection, StoreError> {
        let options = self.pool.connect_options();
        tokio::time::timeout(ACQUIRE_TIMEOUT, sqlx::ConnectOptions::connect(&*options))
            .await
            .map_err(|_| {
                sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "opening a database connection timed out",
                ))
            })?
            .map_err(StoreError::from)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Notified whenever this process commits outbox events (the relay
    /// waits on it between polls).
    pub fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_signal.clone()
    }

    /// After personal data was removed or replaced: on SQLite, checkpoint
    /// the write-ahead log into the database and truncate it, so that no
    /// earlier image of a changed page — an old value, a destroyed key —
    /// outlives the change there (deleted content in the database itself is
    /// zeroed: `secure_delete`). It never blocks another connection while it
    /// waits: each try gives up at once when a writer, a reader of an older
    /// snapshot or another checkpoint (the WAL checkpointer's, which runs
    /// beside every audit commit) is busy, and it tries again for at most
    /// [`EXPUNGE_PATIENCE`]; still busy, it says so (`false`), to be tried
    /// again later. PostgreSQL keeps no such copy a reader of the database
    /// could see: `true`.
    pub async fn expunge(&self) -> Result<bool, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(true);
        }
        use sqlx::Row;
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut *conn)
            .await?;
        let until = std::time::Instant::now() + EXPUNGE_PATIENCE;
        let busy = loop {
            let busy = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *conn)
                .await
                .and_then(|r| r.try_get::<i64, _>(0));
            match busy {
                Ok(1) if std::time::Instant::now() < until => {
                    tokio::time::sleep(EXPUNGE_RETRY).await;
                }
                other => break other,
            }
        };
        sqlx::query(BUSY_TIMEOUT).execute(&mut *conn).await?;
        Ok(busy? == 0)
    }

    /// Close every connection (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `n` bound values after `start - 1` others, for long lists: SQLite's
/// plain `?` (its `$n` names are looked up in a list, quadratic in a
/// statement's parameters), PostgreSQL's `$start, …`. Only in a statement
/// whose every parameter is written by this, in order (sqlx numbers SQLite's
/// `?` by position and its `$n` by name: the two do not mix).
pub(crate) fn bound(backend: Backend, start: usize, n: usize) -> String {
    match backend {
        Backend::Sqlite => {
            let mut s = String::with_capacity(n * 3);
            for i in 0..n {
                s.push_str(if i > 0 { ", ?" } else { "?" });
            }
            s
        }
        Backend::Postgres => placeholders(start, n),
    }
}

/// The text values of parameter `$n`, bound as one JSON array of strings,
/// as a one-column subquery (`x IN (…)`): one statement text whatever the
/// list's length.
pub(crate) fn json_values(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("SELECT value FROM json_each(${n})"),
        Backend::Postgres => format!("SELECT json_array_elements_text(CAST(${n} AS json))"),
    }
}

/// `$start, $start+1, …` for `n` bound values (an `IN (…)` list).
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(start + i).to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pooled PostgreSQL connection whose server end went away while it
    /// sat idle is tested at its next use and replaced, not handed out
    /// broken (the pool no longer tests a connection on every acquire).
    #[tokio::test]
    async fn an_idle_postgres_connection_that_died_is_replaced() {
        let Some(db) = testing::TestDb::postgres().await else {
            return;
        };
        // Every idle connection the pool holds (the migration's, once they
        // have come back), each asked for its server pid.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut held = Vec::new();
        while let Some(conn) = db.store.pool.try_acquire() {
            held.push(conn);
        }
        if held.is_empty() {
            held.push(
                db.store
                    .pool
                    .acquire()
                    .await
                    .unwrap_or_else(|e| panic!("acquire: {e}")),
            );
        }
        let mut pids = Vec::new();
        for conn in &mut held {
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut **conn)
                .await
                .unwrap_or_else(|e| panic!("pid: {e}"));
            pids.push(pid);
        }
        drop(held);
        // Back in the pool (each is tested as it returns), then ended.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while db.store.pool.num_idle() < pids.len() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ended = testing::terminate_backends(&pids).await;
        assert_eq!(ended, pids.len(), "the pool's connections were ended");
        tokio::time::sleep(IDLE_BEFORE_TEST + Duration::from_millis(200)).await;
        let again: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&db.store.pool)
            .await
            .unwrap_or_else(|e| panic!("the next use after the connection died: {e}"));
        assert!(!pids.contains(&again), "a new connection");
    }
}
