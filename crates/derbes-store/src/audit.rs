//! The append-only, hash-chained audit log and its verification.
//!
//! `hash(n) = SHA-256("derbes/audit/v1" || hash(n-1) || len-prefixed fields of n)`,
//! with `hash(0)` all zeros. Appends read the tail and write inside one
//! transaction that holds the write lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL
//! an advisory lock), so concurrent writers — threads or processes — extend
//! one chain. A batch of records is one durable commit (group commit).

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::groups::AuditGroup;
use crate::{Backend, Store, StoreError, SubjectId, Write};

/// One audit record as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditRecord {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub subject_id: Option<String>,
    pub purpose: Option<String>,
    /// Comma-separated category ids.
    pub categories: String,
    /// `permit`, `deny` or `none`.
    pub decision: String,
    /// JSON array of reasons.
    pub reasons: String,
    /// JSON object of further ids (no personal data).
    pub details: String,
    /// A group record's members (see [`crate::groups`]): their digest is
    /// part of this record's hash, their rows commit with it.
    pub group: Option<std::sync::Arc<AuditGroup>>,
}

/// A stored record with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub record: NewAuditRecord,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The end of the chain: the last record's number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTail {
    pub seq: i64,
    pub hash: Vec<u8>,
}

impl ChainTail {
    /// Before the first record: number 0 and the all-zero hash.
    fn start() -> ChainTail {
        ChainTail {
            seq: 0,
            hash: vec![0u8; 32],
        }
    }
}

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub signature: Vec<u8>,
    pub public_key: Vec<u8>,
    pub at: DateTime<Utc>,
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub subject_id: Option<SubjectId>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Records after this sequence number (paging).
    pub after: i64,
    pub limit: i64,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub records: i64,
    pub checkpoints: i64,
    /// The first bad record and why, if any.
    pub first_bad: Option<(i64, String)>,
}

/// `verify(public_key, message, signature)`.
pub type SignatureCheck = dyn Fn(&[u8], &[u8], &[u8]) -> bool + Sync;

const PG_AUDIT_LOCK: i64 = 0x0061_7564_6974; // "audit"

pub(crate) fn put(buf: &mut Vec<u8>, field: &[u8]) {
    buf.extend_from_slice(&(field.len() as u64).to_be_bytes());
    buf.extend_from_slice(field);
}

/// The chain hash of a record.
pub fn record_hash(prev: &[u8], seq: i64, r: &NewAuditRecord) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"derbes/audit/v1");
    put(&mut buf, prev);
    put(&mut buf, &seq.to_be_bytes());
    put(&mut buf, &crate::us(r.at).to_be_bytes());
    for f in [&r.actor, &r.role, &r.action] {
        put(&mut buf, f.as_bytes());
    }
    for f in [&r.subject_id, &r.purpose] {
        match f {
            Some(s) => {
                buf.push(1);
                put(&mut buf, s.as_bytes());
            }
            None => buf.push(0),
        }
    }
    for f in [&r.categories, &r.decision, &r.reasons, &r.details] {
        put(&mut buf, f.as_bytes());
    }
    // Only a group record has more (the encoding stays one-to-one): its
    // members' digest.
    if let Some(g) = &r.group {
        buf.push(1);
        put(&mut buf, g.digest());
    }
    ring::digest::digest(&ring::digest::SHA256, &buf)
        .as_ref()
        .to_vec()
}

/// What a checkpoint signs.
pub fn checkpoint_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut m = b"derbes/audit-checkpoint/v1".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

fn audit_row(r: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        record: NewAuditRecord {
            at: crate::time(r, "at")?,
            actor: r.try_get("actor")?,
            role: r.try_get("role")?,
            action: r.try_get("action")?,
            subject_id: r.try_get("subject_id")?,
            purpose: r.try_get("purpose")?,
            categories: r.try_get("categories")?,
            decision: r.try_get("decision")?,
            reasons: r.try_get("reasons")?,
            details: r.try_get("details")?,
            group: None,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

const AUDIT_COLUMNS: &str =
    "seq, at, actor, role, action, subject_id, purpose, categories, decision, reasons, details, prev_hash, hash";

/// The chain's last record.
const TAIL: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";

/// At most this many records per `INSERT` (13 values each).
const ROWS_PER_INSERT: usize = 256;

/// `INSERT INTO audit_log …` for `rows` records.
fn insert_sql(backend: Backend, rows: usize) -> String {
    // SQLite's plain `?` spares it a name lookup per bound value.
    crate::subjects::multi_row_insert(
        backend,
        &format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES "),
        13,
        rows,
    )
}

/// Bind `chunk` to `q`, numbered and chained after `tail`, which moves to
/// the chunk's last record.
fn bind_chunk<'q>(
    mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    chunk: &'q [NewAuditRecord],
    tail: &mut ChainTail,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for r in chunk {
        let seq = tail.seq + 1;
        let hash = record_hash(&tail.hash, seq, r);
        q = q
            .bind(seq)
            .bind(crate::us(r.at))
            .bind(r.actor.as_str())
            .bind(r.role.as_str())
            .bind(r.action.as_str())
            .bind(r.subject_id.as_deref())
            .bind(r.purpose.as_deref())
            .bind(r.categories.as_str())
            .bind(r.decision.as_str())
            .bind(r.reasons.as_str())
            .bind(r.details.as_str())
            .bind(std::mem::replace(&mut tail.hash, hash.clone()))
            .bind(hash);
        tail.seq = seq;
    }
    q
}

/// The chain's tail as `conn` sees it ([`ChainTail::start`] before the
/// first record).
async fn read_tail(conn: &mut sqlx::AnyConnection) -> Result<ChainTail, StoreError> {
    let tail = sqlx::query(TAIL).fetch_optional(conn).await?;
    Ok(match tail {
        Some(r) => ChainTail {
            seq: r.try_get("seq")?,
            hash: r.try_get("hash")?,
        },
        None => ChainTail::start(),
    })
}

/// Append records to the chain inside `tx`, under the chain's lock; their
/// sequence numbers and the new tail. Only [`crate::Write::commit`] calls
/// it.
pub(crate) async fn append_in(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    records: &[NewAuditRecord],
) -> Result<(Vec<i64>, ChainTail), StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_AUDIT_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    let mut tail = read_tail(tx).await?;
    let first = tail.seq + 1;
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let sql = insert_sql(backend, chunk.len());
        bind_chunk(sqlx::query(&sql), chunk, &mut tail)
            .execute(&mut **tx)
            .await?;
    }
    crate::groups::insert_sqlx(tx, backend, first, records).await?;
    Ok(((first..=tail.seq).collect(), tail))
}

/// The engine's group commit: batches of records appended on a connection
/// of its own, each batch one durable transaction.
///
/// On SQLite the connection is the appender's own, opened with rusqlite on
/// the same file (the same bundled SQLite as sqlx's, so one set of locks):
/// `BEGIN IMMEDIATE`, one prepared single-row insert stepped per record with
/// its values bound in place, `COMMIT`. Its calls block: the engine runs
/// them on a thread of the appender's own ([`Store::lite_audit_appender`],
/// [`LiteAppender`]), and [`AuditAppender::append`] on a blocking thread.
/// Through sqlx each value was copied twice on its way (into the driver's
/// owned arguments, then into SQLite) and every statement crossed to sqlx's
/// connection thread and back; the same batches cost about 40 % less CPU
/// per record without that. On PostgreSQL a batch is one round trip: a
/// single statement, its own transaction, that takes the chain's advisory
/// lock before its first row (every row joins the lock's one row).
///
/// The batch is numbered after the tail the store last saw committed (its
/// own appends and every unit of work's), without reading it again. That
/// cannot fork the chain: sequence numbers are dense and the primary key,
/// so if another writer (another process) appended meanwhile, the batch's
/// first number is taken, the batch fails whole, and it is numbered again
/// after the tail read afresh under the lock (SQLite: `BEGIN IMMEDIATE`;
/// PostgreSQL: the transaction, the lock and the tail as one statement
/// list, then the inserts, then `COMMIT`: three round trips). The lock is
/// taken before any row is written, so a unit of work never waits on a
/// row of the appender's while holding the lock the appender wants.
///
/// Where other processes append too, a known tail is often stale and each
/// stale batch costs a failed attempt: after a batch's numbers were taken,
/// the appender reads the tail under the lock for a second before
/// trusting the known tail again ([`Contention`]).
#[derive(Debug)]
pub struct AuditAppender {
    store: Store,
    /// PostgreSQL: a connection of its own, opened where the appender
    /// runs ([`Store::own_connection`]).
    conn: Option<sqlx::AnyConnection>,
    /// SQLite: the appender proper, between its calls on a blocking thread.
    lite: Option<LiteAppender>,
    contention: Contention,
}

/// When a batch may be numbered after the tail the store last saw.
#[derive(Debug, Default)]
struct Contention {
    /// Until when the tail is read under the lock (another writer was seen).
    until: Option<std::time::Instant>,
}

/// How long the appender reads the tail under the lock after another
/// writer took a batch's numbers.
const CONTENDED_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl Contention {
    /// Whether a first attempt may trust the known tail.
    fn trusts_known_tail(&self) -> bool {
        self.until
            .is_none_or(|until| std::time::Instant::now() >= until)
    }

    /// The end of one attempt of `n` records: its numbers, its error, or
    /// `None` to try once more with the tail read under the lock (the
    /// batch's numbers were taken after a known tail).
    fn settle(
        &mut self,
        hint: &crate::TailHint,
        trusted: &mut bool,
        n: usize,
        attempt: Result<ChainTail, StoreError>,
    ) -> Option<Result<Vec<i64>, StoreError>> {
        match attempt {
            Ok(tail) => {
                let first = tail.seq - n as i64 + 1;
                let seqs = (first..=tail.seq).collect();
                hint.saw(tail);
                Some(Ok(seqs))
            }
            Err(e) => {
                hint.forget();
                if !e.is_unique_violation() || !*trusted {
                    return Some(Err(e));
                }
                *trusted = false;
                self.until = Some(std::time::Instant::now() + CONTENDED_FOR);
                None
            }
        }
    }
}

/// The SQLite appender: its own connection, and calls that block (see
/// [`AuditAppender`]).
#[derive(Debug)]
pub struct LiteAppender {
    file: std::sync::Arc<crate::lite::LiteFile>,
    hint: crate::TailHint,
    conn: Option<rusqlite::Connection>,
    contention: Contention,
    checkpoints: Option<Checkpointing>,
}

/// A checkpoint's row (sqlx and rusqlite alike bind `$1`..`$5` in order).
const INSERT_CHECKPOINT: &str =
    "INSERT INTO audit_checkpoints (seq, hash, signature, public_key, at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING";

/// Signs a checkpoint of a tail (the engine's audit key and clock).
pub type SignCheckpoint = Box<dyn Fn(&ChainTail) -> Checkpoint + Send>;

/// The appender's own checkpoints: signed inside the batch that carries
/// the tail `every` records or more past the last one, so a checkpoint
/// costs no commit of its own and never waits for the appender's lock.
struct Checkpointing {
    every: i64,
    /// The last checkpoint's number, once read.
    last: Option<i64>,
    sign: SignCheckpoint,
}

impl std::fmt::Debug for Checkpointing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointing")
            .field("every", &self.every)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl Checkpointing {
    /// Inside the batch's transaction: the checkpoint of `tail` inserted
    /// when one is due; its number.
    fn sign_if_due(
        &mut self,
        conn: &rusqlite::Connection,
        tail: &ChainTail,
    ) -> Result<Option<i64>, rusqlite::Error> {
        let last = match self.last {
            Some(last) => last,
            None => {
                let last = conn.query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints",
                    [],
                    |r| r.get(0),
                )?;
                self.last = Some(last);
                last
            }
        };
        if tail.seq - last < self.every {
            return Ok(None);
        }
        let c = (self.sign)(tail);
        conn.prepare_cached(INSERT_CHECKPOINT)?
            .execute(rusqlite::params![
                c.seq,
                c.hash,
                c.signature,
                c.public_key,
                crate::us(c.at)
            ])?;
        Ok(Some(c.seq))
    }
}

impl LiteAppender {
    /// Sign a checkpoint inside each batch that carries the tail `every`
    /// records or more past the last checkpoint.
    pub fn checkpointing(mut self, every: i64, sign: SignCheckpoint) -> LiteAppender {
        self.checkpoints = Some(Checkpointing {
            every,
            last: None,
            sign,
        });
        self
    }

    /// Append `records` (one durable transaction); their sequence numbers,
    /// in order. On an error nothing of the batch is stored.
    pub fn append(&mut self, records: &[NewAuditRecord]) -> Result<Vec<i64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut trusted = self.contention.trusts_known_tail();
        loop {
            let known = self.hint.get().filter(|_| trusted);
            let attempt = self.try_append(records, known);
            if let Some(done) =
                self.contention
                    .settle(&self.hint, &mut trusted, records.len(), attempt)
            {
                return done;
            }
        }
    }

    fn try_append(
        &mut self,
        records: &[NewAuditRecord],
        known: Option<ChainTail>,
    ) -> Result<ChainTail, StoreError> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => {
                let c = self.file.connect()?;
                c.pragma_update(
                    None,
                    "wal_autocheckpoint",
                    crate::lite::WRITER_CHECKPOINT_PAGES,
                )?;
                c
            }
        };
        let attempt = sqlite_append(&conn, records, known, self.checkpoints.as_mut());
        // A connection left inside a transaction it could not end is not
        // used again.
        self.conn = conn.is_autocommit().then_some(conn);
        let (tail, signed) = attempt?;
        self.file.committed();
        if let (Some(c), Some(seq)) = (self.checkpoints.as_mut(), signed) {
            c.last = Some(seq);
        }
        Ok(tail)
    }
}

impl AuditAppender {
    /// Append `records` (one durable transaction); their sequence numbers,
    /// in order. On an error nothing of the batch is stored.
    pub async fn append(&mut self, records: Vec<NewAuditRecord>) -> Result<Vec<i64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if self.store.backend == Backend::Sqlite {
            let mut lite = match self.lite.take() {
                Some(lite) => lite,
                None => self.store.lite_audit_appender()?,
            };
            let (lite, done) = tokio::task::spawn_blocking(move || {
                let done = lite.append(&records);
                (lite, done)
            })
            .await
            // The blocking thread panicked or the runtime is shutting
            // down: nothing was committed that the caller will not be
            // told failed.
            .map_err(|e| StoreError::Config(format!("the audit appender's thread: {e}")))?;
            self.lite = Some(lite);
            return done;
        }
        let mut trusted = self.contention.trusts_known_tail();
        loop {
            let known = self.store.chain_tail.get().filter(|_| trusted);
            let attempt = self.try_append_postgres(&records, known).await;
            if let Some(done) =
                self.contention
                    .settle(&self.store.chain_tail, &mut trusted, records.len(), attempt)
            {
                return done;
            }
        }
    }

    /// One PostgreSQL attempt; the new tail. Whatever a failed attempt
    /// left open is rolled back; a connection that cannot even do that,
    /// or failed otherwise than by a taken number, is closed.
    async fn try_append_postgres(
        &mut self,
        records: &[NewAuditRecord],
        known: Option<ChainTail>,
    ) -> Result<ChainTail, StoreError> {
        let attempt = self.postgres_attempt(records, known).await;
        if let Err(e) = &attempt {
            let rolled_back = match self.conn.as_mut() {
                Some(conn) => sqlx::Executor::execute(conn, "ROLLBACK").await.is_ok(),
                None => false,
            };
            if !rolled_back || !e.is_unique_violation() {
                self.conn = None;
            }
        }
        attempt
    }

    async fn postgres_attempt(
        &mut self,
        records: &[NewAuditRecord],
        known: Option<ChainTail>,
    ) -> Result<ChainTail, StoreError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            slot => slot.insert(self.store.own_connection().await?),
        };
        if let Some(mut tail) = known {
            if records.len() <= ROWS_PER_INSERT && records.iter().all(|r| r.group.is_none()) {
                // One round trip: one statement in a transaction of its
                // own, which takes the chain's lock before its first row
                // (every row joins the lock's one row) and numbers the
                // records after the known tail — a tail moved meanwhile
                // makes the first number a duplicate key, as on SQLite.
                let sql = pg_locked_insert_sql(records.len());
                bind_chunk(sqlx::query(&sql), records, &mut tail)
                    .execute(&mut *conn)
                    .await?;
                return Ok(tail);
            }
        }
        // One round trip: the transaction, the chain's lock, and the tail
        // read once the lock is held (each statement of the list sees what
        // committed before it began).
        let rows = sqlx::Executor::fetch_all(&mut *conn, PG_BEGIN_LOCKED).await?;
        let mut tail = ChainTail::start();
        for r in rows.iter().filter(|r| r.try_column("seq").is_ok()) {
            tail = ChainTail {
                seq: r.try_get("seq")?,
                hash: r.try_get("hash")?,
            };
        }
        let first = tail.seq + 1;
        for chunk in records.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(Backend::Postgres, chunk.len());
            bind_chunk(sqlx::query(&sql), chunk, &mut tail)
                .execute(&mut *conn)
                .await?;
        }
        crate::groups::insert_sqlx(conn, Backend::Postgres, first, records).await?;
        sqlx::Executor::execute(&mut *conn, "COMMIT").await?;
        Ok(tail)
    }
}

/// One batch in one transaction under SQLite's write lock, numbered after
/// `known` or, without it, after the tail read under the lock, with a
/// signed checkpoint of its tail when one is due; the new tail and the
/// checkpoint's number. On an error the transaction is rolled back.
fn sqlite_append(
    conn: &rusqlite::Connection,
    records: &[NewAuditRecord],
    known: Option<ChainTail>,
    checkpoints: Option<&mut Checkpointing>,
) -> Result<(ChainTail, Option<i64>), rusqlite::Error> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let written = (|| {
        let tail = match known {
            Some(tail) => tail,
            None => lite_tail(conn)?,
        };
        let tail = lite_insert_records(conn, records, tail)?;
        let signed = match checkpoints {
            Some(c) => c.sign_if_due(conn, &tail)?,
            None => None,
        };
        conn.execute_batch("COMMIT")?;
        Ok((tail, signed))
    })();
    if written.is_err() && !conn.is_autocommit() {
        // Left in the transaction if even this fails; the caller then
        // drops the connection.
        let _ = conn.execute_batch("ROLLBACK");
    }
    written
}

/// SQLite: the chain's tail as `conn` sees it ([`ChainTail::start`] before
/// the first record); read under the write lock, it is the tail.
pub(crate) fn lite_tail(conn: &rusqlite::Connection) -> Result<ChainTail, rusqlite::Error> {
    let mut last = conn.prepare_cached(TAIL)?;
    let mut rows = last.query([])?;
    Ok(match rows.next()? {
        Some(r) => ChainTail {
            seq: r.get(0)?,
            hash: r.get(1)?,
        },
        None => ChainTail::start(),
    })
}

/// SQLite, inside a transaction holding the write lock: `records` chained
/// after `tail`, one prepared single-row insert stepped per record (and
/// a group's rows after its record); the new tail.
pub(crate) fn lite_insert_records<'r>(
    conn: &rusqlite::Connection,
    records: impl IntoIterator<Item = &'r NewAuditRecord>,
    mut tail: ChainTail,
) -> Result<ChainTail, rusqlite::Error> {
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    ))?;
    for r in records {
        let seq = tail.seq + 1;
        let hash = record_hash(&tail.hash, seq, r);
        insert.execute(rusqlite::params![
            seq,
            crate::us(r.at),
            r.actor,
            r.role,
            r.action,
            r.subject_id,
            r.purpose,
            r.categories,
            r.decision,
            r.reasons,
            r.details,
            tail.hash,
            hash,
        ])?;
        if let Some(g) = &r.group {
            crate::groups::insert_lite(conn, seq, g)?;
        }
        tail = ChainTail { seq, hash };
    }
    Ok(tail)
}

/// PostgreSQL: `rows` records inserted in one statement that takes the
/// chain's advisory lock first — the lock's one row is the join's outer
/// side, so no row is written before the lock is held.
fn pg_locked_insert_sql(rows: usize) -> String {
    crate::subjects::multi_row_insert(
        Backend::Postgres,
        &format!(
            "WITH chain AS MATERIALIZED (SELECT pg_advisory_xact_lock({PG_AUDIT_LOCK}) AS locked) \
             INSERT INTO audit_log ({AUDIT_COLUMNS}) SELECT v.* FROM chain CROSS JOIN (VALUES "
        ),
        13,
        rows,
    ) + &format!(") AS v ({AUDIT_COLUMNS})")
}

/// `BEGIN`, the chain's advisory lock (0x617564_6974, "audit") and the
/// tail, as one statement list.
const PG_BEGIN_LOCKED: &str =
    "BEGIN; SELECT 1 AS locked FROM pg_advisory_xact_lock(418581342580); \
     SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";

impl Store {
    /// The engine's group-commit writer (see [`AuditAppender`]).
    pub fn audit_appender(&self) -> AuditAppender {
        AuditAppender {
            store: self.clone(),
            conn: None,
            lite: None,
            contention: Contention::default(),
        }
    }

    /// SQLite: the appender proper, for a thread of its own (its calls
    /// block); an error on PostgreSQL.
    pub fn lite_audit_appender(&self) -> Result<LiteAppender, StoreError> {
        Ok(LiteAppender {
            file: self.lite()?.clone(),
            hint: self.chain_tail.clone(),
            conn: None,
            contention: Contention::default(),
            checkpoints: None,
        })
    }

    /// The last record's sequence number and hash.
    pub async fn audit_tail(&self) -> Result<Option<ChainTail>, StoreError> {
        let r = sqlx::query(TAIL).fetch_optional(&self.pool).await?;
        match r {
            None => Ok(None),
            Some(r) => Ok(Some(ChainTail {
                seq: r.try_get("seq")?,
                hash: r.try_get("hash")?,
            })),
        }
    }

    pub async fn last_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let r = sqlx::query("SELECT seq, hash, signature, public_key, at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| checkpoint_row(&r)).transpose()
    }

    /// Records matching `q`, in sequence order. With a subject, the
    /// subject's own records and their records in group records (see
    /// [`crate::groups`]): each such member read as a record of its own,
    /// with its group record's number and hash.
    pub async fn audit_records(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let limit = q.limit.clamp(1, 10_000);
        let mut rows = self
            .filtered_records(
                q,
                limit,
                &format!("SELECT {AUDIT_COLUMNS} FROM audit_log a"),
                "a",
            )
            .await?;
        if q.subject_id.is_some() {
            let members = self
                .filtered_records(
                    q,
                    limit,
                    "SELECT a.seq, a.at, a.actor, a.role, o.action AS action, m.subject_id AS subject_id, \
                     a.purpose, a.categories, o.decision AS decision, o.reasons AS reasons, a.details, \
                     a.prev_hash, a.hash \
                     FROM audit_members m JOIN audit_log a ON a.seq = m.seq \
                     JOIN audit_outcomes o ON o.seq = m.seq AND o.outcome = m.outcome",
                    "m",
                )
                .await?;
            if !members.is_empty() {
                rows.extend(members);
                rows.sort_by_key(|r| r.seq);
                rows.truncate(limit as usize);
            }
        }
        Ok(rows)
    }

    /// `select` (whose record table is `a`) filtered by `q`, the number
    /// and the subject matched on table `by`'s (the members' own index
    /// serves their subject's trail), in sequence order, at most `limit`.
    async fn filtered_records(
        &self,
        q: &AuditQuery,
        limit: i64,
        select: &str,
        by: &str,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = format!("{select} WHERE {by}.seq > $1");
        let mut n = 1;
        let mut push = |sql: &mut String, cond: &str| {
            n += 1;
            sql.push_str(&format!(" AND {cond} ${n}"));
        };
        if q.subject_id.is_some() {
            push(&mut sql, &format!("{by}.subject_id ="));
        }
        if q.actor.is_some() {
            push(&mut sql, "a.actor =");
        }
        if q.from.is_some() {
            push(&mut sql, "a.at >=");
        }
        if q.to.is_some() {
            push(&mut sql, "a.at <");
        }
        n += 1;
        sql.push_str(&format!(" ORDER BY {by}.seq LIMIT ${n}"));
        let mut query = sqlx::query(&sql).bind(q.after);
        if let Some(s) = &q.subject_id {
            query = query.bind(s.to_string());
        }
        if let Some(a) = &q.actor {
            query = query.bind(a.clone());
        }
        if let Some(f) = q.from {
            query = query.bind(crate::us(f));
        }
        if let Some(t) = q.to {
            query = query.bind(crate::us(t));
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(audit_row).collect()
    }

    /// Records `after + 1 ..` (at most `limit`) as the chain holds them,
    /// and the numbers among them that group rows name: each such record
    /// is given its group as stored ([`Store::with_stored_group`]) just
    /// before its hash is computed again.
    async fn chain_page(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<(Vec<AuditRow>, std::collections::BTreeSet<i64>), StoreError> {
        let page = self
            .audit_records(&AuditQuery {
                after,
                limit,
                ..AuditQuery::default()
            })
            .await?;
        let groups = match (page.first(), page.last()) {
            (Some(first), Some(last)) => self.group_seqs(first.seq, last.seq).await?,
            _ => Default::default(),
        };
        Ok((page, groups))
    }

    /// `row` as the chain holds it: with its group as stored, if group
    /// rows name it.
    async fn with_stored_group(
        &self,
        mut row: AuditRow,
        groups: &std::collections::BTreeSet<i64>,
    ) -> Result<AuditRow, StoreError> {
        if groups.contains(&row.seq) {
            row.record.group = Some(std::sync::Arc::new(self.stored_group(row.seq).await?));
        }
        Ok(row)
    }

    /// Walk the whole chain: contiguous sequence numbers from 1, each
    /// `prev_hash` equal to the previous hash, each hash recomputed, each
    /// checkpoint matching its record and signed by `trusted_key`
    /// (`verify(public_key, message, signature)`).
    pub async fn verify_audit(
        &self,
        trusted_key: Option<&[u8]>,
        verify: &SignatureCheck,
    ) -> Result<Verification, StoreError> {
        let checkpoints: Vec<Checkpoint> = sqlx::query(
            "SELECT seq, hash, signature, public_key, at FROM audit_checkpoints ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(checkpoint_row)
        .collect::<Result<_, _>>()?;
        let mut expected_seq = 1i64;
        let mut prev = ChainTail::start().hash;
        let mut cp = checkpoints.iter().peekable();
        let bad = |seq: i64, why: &str| {
            Ok(Verification {
                records: seq - 1,
                checkpoints: checkpoints.len() as i64,
                first_bad: Some((seq, why.to_string())),
            })
        };
        loop {
            let (page, groups) = self.chain_page(expected_seq - 1, 5000).await?;
            if page.is_empty() {
                break;
            }
            for row in page {
                let row = self.with_stored_group(row, &groups).await?;
                if row.seq != expected_seq {
                    return bad(expected_seq, &format!("record {expected_seq} is missing (deleted, or records were renumbered)"));
                }
                if row.prev_hash != prev {
                    return bad(row.seq, "the link to the previous record is broken (a record was inserted, deleted or reordered)");
                }
                if record_hash(&prev, row.seq, &row.record) != row.hash {
                    return bad(
                        row.seq,
                        "the record does not match its hash (it was changed)",
                    );
                }
                while let Some(c) = cp.peek() {
                    if c.seq > row.seq {
                        break;
                    }
                    if c.seq == row.seq {
                        if c.hash != row.hash {
                            return bad(
                                row.seq,
                                "a signed checkpoint names a different hash for this record",
                            );
                        }
                        if trusted_key.is_some_and(|k| k != c.public_key.as_slice()) {
                            return bad(row.seq, "a checkpoint is signed by an unknown key");
                        }
                        if !verify(
                            &c.public_key,
                            &checkpoint_message(c.seq, &c.hash),
                            &c.signature,
                        ) {
                            return bad(row.seq, "a checkpoint signature is invalid");
                        }
                    }
                    cp.next();
                }
                prev = row.hash;
                expected_seq += 1;
            }
        }
        if let Some(c) = cp.next() {
            return bad(expected_seq, &format!("a signed checkpoint covers record {}, which is gone (records were deleted from the end)", c.seq));
        }
        if self.stray_group_rows(expected_seq - 1).await? > 0 {
            return bad(
                expected_seq,
                "group rows name a record that does not exist (members were added after the tail)",
            );
        }
        Ok(Verification {
            records: expected_seq - 1,
            checkpoints: checkpoints.len() as i64,
            first_bad: None,
        })
    }
}

/// How one record stands (see [`Store::prove_record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordProof {
    /// Unchanged: its hash links, through `walked` records, to the signed
    /// checkpoint at `checkpoint`.
    Signed { checkpoint: i64, walked: i64 },
    /// Unchanged up to the chain's tail, which no checkpoint signs yet.
    Unsigned { walked: i64 },
    /// The chain is broken at `seq` between the record and its checkpoint.
    Broken { seq: i64, why: String },
}

impl Store {
    /// Whether record `seq` is as it was written, in time that does not
    /// grow with the log: its own hash, then the links from it to the
    /// nearest signed checkpoint at or after it (or to the tail, if none
    /// signs it yet) — a record changed, even with every later hash
    /// recomputed, no longer reaches the signed hash. Records before it
    /// and after the checkpoint are not read.
    pub async fn prove_record(
        &self,
        seq: i64,
        trusted_key: Option<&[u8]>,
        verify: &SignatureCheck,
    ) -> Result<RecordProof, StoreError> {
        let checkpoint = sqlx::query(
            "SELECT seq, hash, signature, public_key, at FROM audit_checkpoints WHERE seq >= $1 ORDER BY seq LIMIT 1",
        )
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(checkpoint_row)
        .transpose()?;
        let broken = |at: i64, why: &str| {
            Ok(RecordProof::Broken {
                seq: at,
                why: why.to_string(),
            })
        };
        let mut expected = seq;
        let mut prev: Option<Vec<u8>> = None;
        loop {
            let until = checkpoint.as_ref().map_or(i64::MAX, |c| c.seq);
            let (page, groups) = self
                .chain_page(expected - 1, (until - expected + 1).clamp(1, 5000))
                .await?;
            if page.is_empty() {
                break;
            }
            for row in page {
                let row = self.with_stored_group(row, &groups).await?;
                if row.seq != expected {
                    return broken(expected, "a record is missing");
                }
                if prev.as_ref().is_some_and(|p| *p != row.prev_hash) {
                    return broken(row.seq, "the link to the previous record is broken");
                }
                if record_hash(&row.prev_hash, row.seq, &row.record) != row.hash {
                    return broken(
                        row.seq,
                        "the record does not match its hash (it was changed)",
                    );
                }
                if let Some(c) = checkpoint.as_ref().filter(|c| c.seq == row.seq) {
                    if c.hash != row.hash {
                        return broken(row.seq, "the signed checkpoint names a different hash");
                    }
                    if trusted_key.is_some_and(|k| k != c.public_key.as_slice())
                        || !verify(
                            &c.public_key,
                            &checkpoint_message(c.seq, &c.hash),
                            &c.signature,
                        )
                    {
                        return broken(row.seq, "the checkpoint's signature is not valid");
                    }
                    return Ok(RecordProof::Signed {
                        checkpoint: c.seq,
                        walked: row.seq - seq + 1,
                    });
                }
                prev = Some(row.hash);
                expected += 1;
            }
        }
        match checkpoint {
            Some(c) => broken(
                expected,
                &format!(
                    "the signed checkpoint covers record {}, which is gone",
                    c.seq
                ),
            ),
            None if expected == seq => Err(StoreError::NotFound("audit record")),
            None => Ok(RecordProof::Unsigned {
                walked: expected - seq,
            }),
        }
    }
}

fn checkpoint_row(r: &AnyRow) -> Result<Checkpoint, StoreError> {
    Ok(Checkpoint {
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        signature: r.try_get("signature")?,
        public_key: r.try_get("public_key")?,
        at: crate::time(r, "at")?,
    })
}

impl Write {
    pub async fn insert_checkpoint(&mut self, c: &Checkpoint) -> Result<(), StoreError> {
        sqlx::query(INSERT_CHECKPOINT)
            .bind(c.seq)
            .bind(&c.hash)
            .bind(&c.signature)
            .bind(&c.public_key)
            .bind(crate::us(c.at))
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The appender's statement list takes the same lock as a unit of work.
    #[test]
    fn the_listed_lock_is_the_chains_lock() {
        let lock = format!("pg_advisory_xact_lock({PG_AUDIT_LOCK})");
        assert!(PG_BEGIN_LOCKED.contains(&lock));
        // The one-statement append: the lock, then the rows, all joined to it.
        let sql = pg_locked_insert_sql(2);
        assert!(sql.starts_with(&format!("WITH chain AS MATERIALIZED (SELECT {lock}")));
        assert!(sql.contains("FROM chain CROSS JOIN (VALUES ($1, $2"));
        assert!(sql.contains("($14, $15") && sql.ends_with(&format!("AS v ({AUDIT_COLUMNS})")));
    }

    /// The server's process behind the writer's connection.
    async fn writer_pid(appender: &mut AuditAppender) -> i32 {
        let conn = appender
            .conn
            .as_mut()
            .unwrap_or_else(|| panic!("the writer holds no connection"));
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await
            .unwrap_or_else(|e| panic!("pid: {e}"))
    }

    /// PostgreSQL: the group-commit writer's connection is its own, outside
    /// the pool; when the server ends it (a restart, an administrator), the
    /// batch that finds it dead fails whole, and the next opens a new
    /// connection and continues the one chain.
    #[tokio::test]
    async fn the_writer_opens_a_new_connection_when_its_own_died() {
        let Some(db) = crate::testing::TestDb::postgres().await else {
            return;
        };
        let record = crate::testing::audit_record;
        let mut appender = db.store.audit_appender();
        assert_eq!(appender.append(vec![record(1)]).await.ok(), Some(vec![1]));
        let first = writer_pid(&mut appender).await;
        let pool_pids: Vec<i32> = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_all(&db.store.pool)
            .await
            .unwrap_or_else(|e| panic!("pool pid: {e}"));
        assert!(!pool_pids.contains(&first), "not a pooled connection");
        assert_eq!(crate::testing::terminate_backends(&[first]).await, 1);
        // The dead connection fails its batch (nothing of it stored), or,
        // had the server's end not yet reached it, carries it.
        let seqs = match appender.append(vec![record(2)]).await {
            Ok(seqs) => seqs,
            Err(_) => appender
                .append(vec![record(2)])
                .await
                .unwrap_or_else(|e| panic!("the next batch: {e}")),
        };
        assert_eq!(seqs, [2]);
        let second = writer_pid(&mut appender).await;
        assert_ne!(first, second, "a new connection");
        assert_eq!(appender.append(vec![record(3)]).await.ok(), Some(vec![3]));
        let v = db
            .store
            .verify_audit(None, &|_, _, _| false)
            .await
            .unwrap_or_else(|e| panic!("verify: {e}"));
        assert_eq!(
            (v.records, v.first_bad),
            (3, None),
            "one chain, every record once"
        );
    }
}
