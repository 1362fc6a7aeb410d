//! Actors, capabilities and the audit trail of everything the engine does.
//!
//! A change's records commit inside its unit of work ([`Engine::write`],
//! [`Engine::commit`]). Records of reads and decisions, which change
//! nothing else, go through one writer per engine (a thread of its own on
//! SQLite, a task on PostgreSQL) that batches whatever is waiting into one
//! durable transaction (group commit): a decision waits for its record to
//! be on disk, but concurrent decisions share the fsync.

use std::sync::{Arc, OnceLock};

use derbes_core::{Decision, Reason, SubjectId};
use derbes_policy::Capability;
use derbes_store::{
    checkpoint_message, AuditQuery, AuditRow, Checkpoint, NewAuditRecord, Verification, Write,
};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::{Engine, EngineError};

/// The jobs derbes runs itself, each acting under its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemJob {
    /// The first administrator's token, created once.
    Bootstrap,
    /// A command run on the server (`derbes requests`, `derbes purge`, ...).
    Cli,
    /// The one destruction path.
    Destruction,
    /// Key rotation.
    Keys,
    /// The retention purge.
    Purge,
    /// The rights desk's own work once a requester is verified.
    RightsDesk,
    /// Synthetic data (`derbes dev seed`).
    Seed,
    /// An existing user base brought in (`derbes import`).
    Import,
    /// Sealing what an earlier version stored in plaintext.
    Upgrade,
    /// The service's guard: rate limits on failed sign-ins and lookups.
    Guard,
    /// The outbox relay: delivers events to connected systems.
    Relay,
    /// The breach register's and the notices' own steps.
    Duties,
}

impl SystemJob {
    pub fn as_str(self) -> &'static str {
        match self {
            SystemJob::Bootstrap => "bootstrap",
            SystemJob::Cli => "cli",
            SystemJob::Destruction => "destruction",
            SystemJob::Keys => "keys",
            SystemJob::Purge => "purge",
            SystemJob::RightsDesk => "rights-desk",
            SystemJob::Seed => "dev-seed",
            SystemJob::Import => "import",
            SystemJob::Upgrade => "upgrade",
            SystemJob::Guard => "guard",
            SystemJob::Relay => "relay",
            SystemJob::Duties => "duties",
        }
    }
}

/// Who acts: a staff member (by token id and role), one of derbes' own
/// jobs, or a data subject through their own door. Built only by
/// [`Actor::staff`] (from an authenticated token, or in tests),
/// [`Actor::system`] and, for a subject, by the engine from a live
/// session (`me.rs`), never by a caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    id: String,
    role: String,
    /// derbes' own jobs: no role checks, and no need-to-know either — they
    /// never read personal data.
    #[serde(skip)]
    job: Option<SystemJob>,
    /// A data subject acting on themselves: only [`SUBJECT_CAPABILITIES`],
    /// and the decision point permits nothing about anyone else.
    #[serde(skip)]
    scope: Option<SubjectId>,
}

/// What a data subject may do through their own door, on themselves only:
/// file and follow their requests (those filed in the app are verified by
/// the session), give and withdraw their consents, see who received their
/// data.
pub(crate) const SUBJECT_CAPABILITIES: [Capability; 4] = [
    Capability::WorkRequests,
    Capability::InAppRequests,
    Capability::RecordConsents,
    Capability::ReadDisclosures,
];

impl Actor {
    pub fn staff(id: impl Into<String>, role: impl Into<String>) -> Actor {
        Actor {
            id: id.into(),
            role: role.into(),
            job: None,
            scope: None,
        }
    }

    pub fn system(job: SystemJob) -> Actor {
        Actor {
            id: format!("system:{}", job.as_str()),
            role: "system".into(),
            job: Some(job),
            scope: None,
        }
    }

    /// A data subject through a live session of theirs: `subject:<session id>`.
    pub(crate) fn subject(session_id: &str, subject: SubjectId) -> Actor {
        Actor {
            id: format!("subject:{session_id}"),
            role: derbes_policy::SUBJECT_ROLE.into(),
            job: None,
            scope: Some(subject),
        }
    }

    /// The one subject a subject's actor may act on.
    pub(crate) fn scope(&self) -> Option<SubjectId> {
        self.scope
    }

    /// A connected system confirming an event it followed (by its
    /// signature): `connected:<name>`, with no capabilities at all.
    pub fn connected_system(name: &str) -> Actor {
        Actor {
            id: format!("connected:{name}"),
            role: "connected_system".into(),
            job: None,
            scope: None,
        }
    }

    /// The staff token's id, or `system:<job>`.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn role(&self) -> &str {
        &self.role
    }

    /// One of derbes' own jobs.
    pub fn is_system(&self) -> bool {
        self.job.is_some()
    }
}

/// A record of the audit log as shown to auditors.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditView {
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub subject_id: Option<String>,
    pub purpose: Option<String>,
    pub categories: Vec<String>,
    pub decision: String,
    pub reasons: Value,
    pub details: Value,
    /// This record's chain hash, hex.
    pub hash: String,
}

/// One audit record, built by naming what it has: who did what, and where
/// it applies, on whom, for which purpose, to which categories, with which
/// decision and details (ids and codes, never values).
#[derive(Debug)]
pub(crate) struct Record<'a> {
    actor: &'a Actor,
    action: &'a str,
    subject: Option<SubjectId>,
    purpose: Option<&'a str>,
    categories: &'a [String],
    decision: Option<&'a Decision>,
    details: Value,
}

impl<'a> Record<'a> {
    pub(crate) fn new(actor: &'a Actor, action: &'a str) -> Record<'a> {
        Record {
            actor,
            action,
            subject: None,
            purpose: None,
            categories: &[],
            decision: None,
            details: Value::Object(serde_json::Map::new()),
        }
    }

    pub(crate) fn subject(mut self, s: impl Into<Option<SubjectId>>) -> Self {
        self.subject = s.into();
        self
    }

    pub(crate) fn purpose(mut self, p: &'a str) -> Self {
        self.purpose = Some(p);
        self
    }

    pub(crate) fn categories(mut self, c: &'a [String]) -> Self {
        self.categories = c;
        self
    }

    pub(crate) fn decision(mut self, d: &'a Decision) -> Self {
        self.decision = Some(d);
        self
    }

    pub(crate) fn details(mut self, v: Value) -> Self {
        self.details = v;
        self
    }
}

/// Checkpoint every this many records.
const CHECKPOINT_EVERY: i64 = 1000;

/// The longest a moved tail waits for a checkpoint (see
/// `Engine::checkpoint_if_due`).
const CHECKPOINT_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// A commit takes further waiting jobs while it has fewer records than this
/// (one job's records always go in one commit, however many).
const MAX_BATCH: usize = 1024;

/// Records that commit together, and where their numbers go.
type Job = (Vec<NewAuditRecord>, Reply);

/// Where a job's numbers (or the batch's error) go.
type Reply = oneshot::Sender<Result<Vec<i64>, String>>;

#[derive(Default)]
pub(crate) struct AuditorCell(OnceLock<mpsc::Sender<Job>>);

impl std::fmt::Debug for AuditorCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auditor")
    }
}

impl Engine {
    /// Refuse an actor whose role lacks `capability` (403).
    pub fn require(&self, actor: &Actor, capability: Capability) -> Result<(), EngineError> {
        if actor.is_system() {
            return Ok(());
        }
        if actor.scope.is_some() {
            return if SUBJECT_CAPABILITIES.contains(&capability) {
                Ok(())
            } else {
                Err(EngineError::Forbidden(capability.as_str()))
            };
        }
        match self.policy.policy().role(actor.role()) {
            Some(r) if r.can(capability) => Ok(()),
            _ => Err(EngineError::Forbidden(capability.as_str())),
        }
    }

    fn auditor(&self) -> mpsc::Sender<Job> {
        self.auditor
            .0
            .get_or_init(|| {
                let (tx, rx) = mpsc::channel::<Job>(8192);
                // A thread of the writer's own, whichever the backend: it
                // takes the next batch as soon as a commit ends and is woken
                // by the kernel when its commit returns, not queued behind
                // the requests on the runtime's workers.
                let writer: Box<dyn FnOnce() + Send> = match self.store.lite_audit_appender() {
                    // SQLite: the writer blocks while it commits; it signs
                    // its checkpoints inside its batches (a unit of work
                    // would wait for the lock it nearly always holds).
                    Ok(lite) => {
                        let (keys, clock) = (self.keys.clone(), self.clock.clone());
                        let lite = lite.checkpointing(
                            CHECKPOINT_EVERY,
                            Box::new(move |tail| {
                                signed_checkpoint(&crate::current_keyring(&keys), tail, clock())
                            }),
                        );
                        Box::new(move || run_lite_auditor(lite, rx))
                    }
                    // PostgreSQL (or a SQLite store without its file, whose
                    // every append then fails): a runtime of the thread's
                    // own, on which the writer opens its connection (its
                    // socket wakes this thread); the checkpoints are signed
                    // beside it, by a task.
                    Err(_) => {
                        let appender = self.store.audit_appender();
                        let appended = Arc::new(Appended::default());
                        let moved = appended.clone();
                        let engine = self.clone();
                        tokio::spawn(async move { engine.run_checkpointer(&appended).await });
                        Box::new(move || {
                            match tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                            {
                                Ok(rt) => rt.block_on(run_auditor(appender, rx, &moved)),
                                // The receiver is dropped: every send fails,
                                // every audited operation with it.
                                Err(e) => tracing::error!(error = %e, "the audit writer's runtime did not start"),
                            }
                        })
                    }
                };
                let spawned = std::thread::Builder::new()
                    .name("derbes-audit".into())
                    .spawn(writer);
                if let Err(e) = spawned {
                    // The receiver went with the closure: every send
                    // fails, every audited operation with it.
                    tracing::error!(error = %e, "the audit writer's thread did not start");
                }
                tx
            })
            .clone()
    }

    /// PostgreSQL: sign a checkpoint each time the writer's tail is
    /// [`CHECKPOINT_EVERY`] records past the last one — beside the writer,
    /// not in its way.
    async fn run_checkpointer(self, appended: &Appended) {
        let mut last_checkpoint = self
            .store
            .last_checkpoint()
            .await
            .ok()
            .flatten()
            .map(|c| c.seq)
            .unwrap_or(0);
        loop {
            appended.moved.notified().await;
            let tail = appended.tail.load(std::sync::atomic::Ordering::Acquire);
            if tail - last_checkpoint < CHECKPOINT_EVERY {
                continue;
            }
            match self.checkpoint().await {
                Ok(Some(seq)) => last_checkpoint = seq,
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "audit checkpoint failed"),
            }
        }
    }

    /// Append one record and wait until it is durably stored.
    pub(crate) async fn audit(&self, record: Record<'_>) -> Result<i64, EngineError> {
        let record = self.audit_record(record)?;
        let mut seqs = self.audit_all(vec![record]).await?;
        seqs.pop()
            .ok_or_else(|| EngineError::Internal("the audit writer stopped".into()))
    }

    /// Begin a unit of work: the change and its audit records commit
    /// together or not at all (see [`derbes_store::Write`]). While it is
    /// open, nothing else touches the store.
    pub(crate) async fn write(&self) -> Result<Write, EngineError> {
        Ok(self.store.write().await?)
    }

    /// Commit a unit of work with its audit records; their sequence
    /// numbers. The cached decision facts of every subject the records name
    /// are forgotten once it is committed: a change to a subject is audited
    /// with the subject, so no change can leave stale facts behind.
    pub(crate) async fn commit<'a>(
        &self,
        mut w: Write,
        records: impl IntoIterator<Item = Record<'a>>,
    ) -> Result<Vec<i64>, EngineError> {
        let mut subjects = Vec::new();
        for r in records {
            subjects.extend(r.subject);
            w.audit(self.audit_record(r)?);
        }
        let seqs = w.commit().await?;
        for s in &subjects {
            self.facts.forget(s);
        }
        Ok(seqs)
    }

    /// A record as [`Engine::audit`] would append it (for batches).
    pub(crate) fn audit_record(&self, r: Record<'_>) -> Result<NewAuditRecord, EngineError> {
        Ok(NewAuditRecord {
            at: self.now(),
            actor: r.actor.id().to_string(),
            role: r.actor.role().to_string(),
            action: r.action.to_string(),
            subject_id: r.subject.map(|s| s.to_string()),
            purpose: r.purpose.map(str::to_string),
            categories: r.categories.join(","),
            decision: match r.decision {
                Some(d) if d.permit => "permit".into(),
                Some(_) => "deny".into(),
                None => "none".into(),
            },
            reasons: serde_json::to_string(
                &r.decision.map(|d| d.reasons.clone()).unwrap_or_default(),
            )?,
            details: serde_json::to_string(&r.details)?,
            group: None,
        })
    }

    /// Append records (they share the writer's group commits) and wait until
    /// every one is durably stored; their sequence numbers, in order.
    pub(crate) async fn audit_all(
        &self,
        records: Vec<NewAuditRecord>,
    ) -> Result<Vec<i64>, EngineError> {
        let stopped = || EngineError::Internal("the audit writer stopped".into());
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = oneshot::channel();
        self.auditor()
            .send((records, tx))
            .await
            .map_err(|_| stopped())?;
        rx.await
            .map_err(|_| stopped())?
            .map_err(|e| EngineError::Internal(format!("audit append failed: {e}")))
    }

    /// The scheduler's checkpoint: signed when the tail is
    /// [`CHECKPOINT_EVERY`] records past the last one, or has moved and the
    /// last is older than [`CHECKPOINT_AGE`] — whoever appended (units of
    /// work do not pass the audit writer's count), so proving a record
    /// (`Store::prove_record`) never walks far.
    pub(crate) async fn checkpoint_if_due(&self) -> Result<Option<i64>, EngineError> {
        let Some(tail) = self.store.audit_tail().await? else {
            return Ok(None);
        };
        let due = match self.store.last_checkpoint().await? {
            None => true,
            Some(c) => {
                tail.seq - c.seq >= CHECKPOINT_EVERY
                    || (tail.seq > c.seq && self.now() - c.at >= CHECKPOINT_AGE)
            }
        };
        if due {
            self.checkpoint().await
        } else {
            Ok(None)
        }
    }

    /// Sign a checkpoint of the chain's tail, if it moved since the last one.
    pub async fn checkpoint(&self) -> Result<Option<i64>, EngineError> {
        let Some(derbes_store::ChainTail { seq, hash }) = self.store.audit_tail().await? else {
            return Ok(None);
        };
        if self
            .store
            .last_checkpoint()
            .await?
            .is_some_and(|c| c.seq >= seq)
        {
            return Ok(None);
        }
        let c = signed_checkpoint(
            &self.keyring(),
            &derbes_store::ChainTail { seq, hash },
            self.now(),
        );
        let mut w = self.write().await?;
        w.insert_checkpoint(&c).await?;
        w.commit().await?;
        Ok(Some(seq))
    }

    /// Verify the whole chain and every checkpoint against this keyring's key.
    pub async fn verify_audit(&self) -> Result<Verification, EngineError> {
        let key = self.keyring().audit_public_key();
        Ok(self
            .store
            .verify_audit(Some(&key), &derbes_vault::Keyring::verify_signature)
            .await?)
    }

    /// Read the audit log (`read_audit`); the read is itself audited.
    pub async fn audit_records(
        &self,
        actor: &Actor,
        q: &AuditQuery,
    ) -> Result<Vec<AuditView>, EngineError> {
        self.require(actor, Capability::ReadAudit)?;
        let rows = self.store.audit_records(q).await?;
        self.audit(
            Record::new(actor, "audit.read")
                .details(serde_json::json!({"records": rows.len(), "after": q.after})),
        )
        .await?;
        rows.into_iter().map(view).collect()
    }
}

/// A stored record as shown; JSON that does not parse is damage.
fn view(r: AuditRow) -> Result<AuditView, EngineError> {
    let json = |text: &str, column: &str| -> Result<Value, EngineError> {
        serde_json::from_str(text).map_err(|_| {
            EngineError::from(derbes_store::StoreError::Corrupt(format!(
                "audit record {}: `{column}` is not JSON",
                r.seq
            )))
        })
    };
    Ok(AuditView {
        seq: r.seq,
        at: r.record.at,
        actor: r.record.actor,
        role: r.record.role,
        action: r.record.action,
        subject_id: r.record.subject_id,
        purpose: r.record.purpose,
        categories: r
            .record
            .categories
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        decision: r.record.decision,
        reasons: json(&r.record.reasons, "reasons")?,
        details: json(&r.record.details, "details")?,
        hash: derbes_vault::hex::encode(&r.hash),
    })
}

/// Reasons of a refusal without a decision (status gates).
pub(crate) fn refusal(code: &str, message: &str) -> Decision {
    Decision {
        permit: false,
        reasons: vec![Reason {
            code: code.into(),
            message: message.into(),
        }],
    }
}

pub(crate) type SharedAuditor = Arc<AuditorCell>;

/// The checkpoint of `tail`, signed with the keyring's audit key.
fn signed_checkpoint(
    keys: &derbes_vault::Keyring,
    tail: &derbes_store::ChainTail,
    at: chrono::DateTime<chrono::Utc>,
) -> Checkpoint {
    Checkpoint {
        seq: tail.seq,
        hash: tail.hash.clone(),
        signature: keys.sign_audit(&checkpoint_message(tail.seq, &tail.hash)),
        public_key: keys.audit_public_key(),
        at,
    }
}

/// The writer's tail, for the checkpoints beside it (PostgreSQL).
#[derive(Default)]
struct Appended {
    tail: std::sync::atomic::AtomicI64,
    moved: tokio::sync::Notify,
}

/// Records to commit together, and where each job's numbers go.
type Batch = (Vec<NewAuditRecord>, Vec<(usize, Reply)>);

/// `first` and the jobs waiting behind it, up to [`MAX_BATCH`] records (a
/// group record weighs as its members).
fn gather(first: Job, rx: &mut mpsc::Receiver<Job>) -> Batch {
    let weight = |records: &[NewAuditRecord]| -> usize {
        records
            .iter()
            .map(|r| r.group.as_ref().map_or(1, |g| g.len()))
            .sum()
    };
    let (mut records, reply) = first;
    let mut weighed = weight(&records);
    let mut replies = vec![(records.len(), reply)];
    while weighed < MAX_BATCH {
        match rx.try_recv() {
            Ok((more, reply)) => {
                weighed += weight(&more);
                replies.push((more.len(), reply));
                records.extend(more);
            }
            Err(_) => break,
        }
    }
    (records, replies)
}

/// Each job its numbers, or the batch's error; the tail told to the
/// checkpoints beside the writer, if any.
fn answer(
    appended: Option<&Appended>,
    replies: Vec<(usize, Reply)>,
    done: Result<Vec<i64>, derbes_store::StoreError>,
) {
    match done {
        Ok(seqs) => {
            if let (Some(appended), Some(&last)) = (appended, seqs.last()) {
                appended
                    .tail
                    .store(last, std::sync::atomic::Ordering::Release);
                appended.moved.notify_one();
            }
            let mut seqs = seqs.into_iter();
            for (n, reply) in replies {
                let _ = reply.send(Ok(seqs.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "audit append failed; the operations waiting for it are refused");
            for (_, reply) in replies {
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

/// The writer on PostgreSQL: a task on its thread's own runtime; it ends
/// when the engine's last sender is dropped.
async fn run_auditor(
    mut appender: derbes_store::AuditAppender,
    mut rx: mpsc::Receiver<Job>,
    appended: &Appended,
) {
    while let Some(first) = rx.recv().await {
        let (records, replies) = gather(first, &mut rx);
        let done = appender.append(records).await;
        answer(Some(appended), replies, done);
    }
}

/// The writer on SQLite: a thread; it ends when the engine's last sender
/// is dropped.
fn run_lite_auditor(mut appender: derbes_store::LiteAppender, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let (records, replies) = gather(first, &mut rx);
        let done = appender.append(&records);
        answer(None, replies, done);
    }
}
