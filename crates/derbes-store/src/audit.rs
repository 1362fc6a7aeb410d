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

fn put(buf: &mut Vec<u8>, field: &[u8]) {
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
    Ok(((first..=tail.seq).collect(), tail))
}

/// The engine's group commit: batches of records appended on a connection
/// of its own, each batch one durable transaction.
///
/// On SQLite the connection is the appender's own, opened with rusqlite on
/// the same file (the same bundled SQLite as sqlx's, so one set of locks),
/// and a batch runs on a blocking thread: `BEGIN IMMEDIATE`, one prepared
/// single-row insert stepped per record with its values bound in place,
/// `COMMIT`. Through sqlx each value was copied twice on its way (into the
/// driver's owned arguments, then into SQLite) and every statement crossed
/// to sqlx's connection thread and back; the same batches cost about 40 %
/// less CPU per record without that. On PostgreSQL a batch is one round
/// trip: a single statement, its own transaction, that takes the chain's
/// advisory lock before its first row (every row joins the lock's one row).
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
/// trusting the known tail again.
#[derive(Debug)]
pub struct AuditAppender {
    store: Store,
    /// PostgreSQL: a connection detached from the pool.
    conn: Option<sqlx::AnyConnection>,
    /// SQLite: the appender's own connection.
    lite: Option<rusqlite::Connection>,
    /// Until when the tail is read under the lock (another writer was seen).
    contended_until: Option<std::time::Instant>,
}

/// How long the appender reads the tail under the lock after another
/// writer took a batch's numbers.
const CONTENDED_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl AuditAppender {
    /// Append `records` (one durable transaction); their sequence numbers,
    /// in order. On an error nothing of the batch is stored.
    pub async fn append(&mut self, records: Vec<NewAuditRecord>) -> Result<Vec<i64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut trust_known_tail = self
            .contended_until
            .is_none_or(|until| std::time::Instant::now() >= until);
        let mut records = records;
        loop {
            let known = self.store.chain_tail.get().filter(|_| trust_known_tail);
            let attempt = match self.store.backend {
                Backend::Sqlite => {
                    let (attempt, back) = self.try_append_sqlite(records, known).await;
                    records = back;
                    attempt
                }
                Backend::Postgres => self.try_append_postgres(&records, known).await,
            };
            match attempt {
                Ok(tail) => {
                    let first = tail.seq - records.len() as i64 + 1;
                    let seqs = (first..=tail.seq).collect();
                    self.store.chain_tail.saw(tail);
                    return Ok(seqs);
                }
                Err(e) => {
                    self.store.chain_tail.forget();
                    let taken = e.is_unique_violation();
                    if self.store.backend == Backend::Postgres {
                        // Whatever the failed batch left open is rolled
                        // back; a connection that cannot even do that is
                        // closed.
                        let rolled_back = match self.conn.as_mut() {
                            Some(conn) => sqlx::Executor::execute(conn, "ROLLBACK").await.is_ok(),
                            None => false,
                        };
                        if !rolled_back || !taken {
                            self.conn = None;
                        }
                    }
                    // Numbers taken after a known tail: once more, with
                    // the tail read under the lock, where none can be.
                    if !taken || !trust_known_tail {
                        return Err(e);
                    }
                    trust_known_tail = false;
                    self.contended_until = Some(std::time::Instant::now() + CONTENDED_FOR);
                }
            }
        }
    }

    /// One SQLite attempt on a blocking thread; the new tail, and the
    /// records back.
    async fn try_append_sqlite(
        &mut self,
        records: Vec<NewAuditRecord>,
        known: Option<ChainTail>,
    ) -> (Result<ChainTail, StoreError>, Vec<NewAuditRecord>) {
        let lite = match self.store.lite() {
            Ok(lite) => lite.clone(),
            Err(e) => return (Err(e), records),
        };
        let conn = self.lite.take();
        let work = tokio::task::spawn_blocking(move || {
            let conn = match conn {
                Some(c) => c,
                None => match lite.connect() {
                    Ok(c) => c,
                    Err(e) => return (None, Err(e.into()), records),
                },
            };
            let attempt = sqlite_append(&conn, &records, known);
            // A connection left inside a transaction it could not end is
            // not used again.
            let conn = conn.is_autocommit().then_some(conn);
            (conn, attempt.map_err(StoreError::from), records)
        });
        match work.await {
            Ok((conn, attempt, records)) => {
                self.lite = conn;
                (attempt, records)
            }
            // The blocking thread panicked or the runtime is shutting
            // down: the records went with it; nothing was committed that
            // the caller will not be told failed.
            Err(e) => (
                Err(StoreError::Config(format!(
                    "the audit appender's thread: {e}"
                ))),
                Vec::new(),
            ),
        }
    }

    /// One PostgreSQL attempt; the new tail.
    async fn try_append_postgres(
        &mut self,
        records: &[NewAuditRecord],
        known: Option<ChainTail>,
    ) -> Result<ChainTail, StoreError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            slot => slot.insert(self.store.pool.acquire().await?.detach()),
        };
        if let Some(mut tail) = known {
            if records.len() <= ROWS_PER_INSERT {
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
        for chunk in records.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(Backend::Postgres, chunk.len());
            bind_chunk(sqlx::query(&sql), chunk, &mut tail)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::Executor::execute(&mut *conn, "COMMIT").await?;
        Ok(tail)
    }
}

/// One batch in one transaction under SQLite's write lock, numbered after
/// `known` or, without it, after the tail read under the lock; the new
/// tail. On an error the transaction is rolled back.
fn sqlite_append(
    conn: &rusqlite::Connection,
    records: &[NewAuditRecord],
    known: Option<ChainTail>,
) -> Result<ChainTail, rusqlite::Error> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let written = (|| {
        let mut tail = match known {
            Some(tail) => tail,
            None => {
                let mut last = conn.prepare_cached(TAIL)?;
                let mut rows = last.query([])?;
                match rows.next()? {
                    Some(r) => ChainTail {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                    },
                    None => ChainTail::start(),
                }
            }
        };
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
            tail = ChainTail { seq, hash };
        }
        conn.execute_batch("COMMIT")?;
        Ok(tail)
    })();
    if written.is_err() && !conn.is_autocommit() {
        // Left in the transaction if even this fails; the caller then
        // drops the connection.
        let _ = conn.execute_batch("ROLLBACK");
    }
    written
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
            contended_until: None,
        }
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

    /// Records matching `q`, in sequence order.
    pub async fn audit_records(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1");
        let mut n = 1;
        let mut push = |sql: &mut String, cond: &str| {
            n += 1;
            sql.push_str(&format!(" AND {cond} ${n}"));
        };
        if q.subject_id.is_some() {
            push(&mut sql, "subject_id =");
        }
        if q.actor.is_some() {
            push(&mut sql, "actor =");
        }
        if q.from.is_some() {
            push(&mut sql, "at >=");
        }
        if q.to.is_some() {
            push(&mut sql, "at <");
        }
        n += 1;
        sql.push_str(&format!(" ORDER BY seq LIMIT ${n}"));
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
        let rows = query
            .bind(q.limit.clamp(1, 10_000))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_row).collect()
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
            let page = self
                .audit_records(&AuditQuery {
                    after: expected_seq - 1,
                    limit: 5000,
                    ..AuditQuery::default()
                })
                .await?;
            if page.is_empty() {
                break;
            }
            for row in page {
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
            let page = self
                .audit_records(&AuditQuery {
                    after: expected - 1,
                    limit: (until - expected + 1).clamp(1, 5000),
                    ..AuditQuery::default()
                })
                .await?;
            if page.is_empty() {
                break;
            }
            for row in page {
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
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, signature, public_key, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (seq) DO NOTHING",
        )
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
}
