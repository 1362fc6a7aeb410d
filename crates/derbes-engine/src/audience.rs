//! An audience at once: the same decision asked for many subjects ("which
//! of these users may I message by SMS today?"), each subject decided by the
//! same rules as a single decision and each decision audited as one.
//!
//! Audit design: each chunk of subjects is one group record (`decisions`,
//! see `derbes_store::groups`) whose members are the subjects' `decision`
//! records, each read back in the subject's trail exactly as a single
//! decision writes it (its details name the audience), and sealed by the
//! group record's hash, which `audit verify` checks; then one `audience`
//! record with the counts and the SHA-256 of the answered ids, so the run
//! as a whole is one record too. Every record is durable before the first
//! permitted id is returned.

use std::collections::{BTreeMap, HashSet};

use derbes_core::SubjectId;
use derbes_policy::{Capability, Channel, Operation};
use derbes_store::{GroupBuilder, GroupOutcome, NewAuditRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::audit::Record;
use crate::{Actor, DecisionRequest, Engine, EngineError};

/// The most ids one audience may list.
pub const MAX_AUDIENCE: usize = 100_000;

/// Subjects decided and audited per transaction.
const CHUNK: usize = 4096;

/// Outcomes a chunk's decisions are compared with before one is written
/// out (a chunk has a handful; past this many, the group builder's own
/// index finds the rest).
const DISTINCT_OUTCOMES: usize = 32;

/// A question for many subjects at once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AudienceRequest {
    pub operation: Operation,
    pub purpose: String,
    pub categories: Vec<String>,
    /// The channel, for communications.
    pub channel: Option<Channel>,
    /// The subjects asked about (at most 100,000; repeated ids are answered once).
    pub subject_ids: Option<Vec<SubjectId>>,
    /// Ask about every active subject instead of a list.
    #[serde(default)]
    pub every_active_subject: bool,
    /// Count the denials by reason code.
    #[serde(default)]
    pub count_denials: bool,
}

/// The answer: who is permitted, and how many were not.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Audience {
    pub audience_id: String,
    /// Distinct subjects asked about.
    pub asked: u64,
    pub permitted: u64,
    pub denied: u64,
    /// Listed ids that name no subject (nothing to decide, nothing audited per id).
    pub unknown: u64,
    /// Denials by reason code (a denial may have several), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denials: Option<BTreeMap<String, u64>>,
    /// The audience's own audit record (counts and the ids' digest); each
    /// subject's decision is a `decision` record of its own.
    pub audit_id: i64,
    /// The permitted subjects, in the order asked (id order for every active subject).
    pub subject_ids: Vec<SubjectId>,
}

impl AudienceRequest {
    fn check(&self) -> Result<(), EngineError> {
        match (&self.subject_ids, self.every_active_subject) {
            (Some(_), true) => Err(EngineError::invalid(
                "every_active_subject",
                "conflicting_fields",
                "give either subject_ids or every_active_subject, not both",
            )),
            (None, false) => Err(EngineError::invalid(
                "subject_ids",
                "missing_field",
                "list the subjects (up to 100,000) or set every_active_subject",
            )),
            (Some(ids), _) if ids.len() > MAX_AUDIENCE => Err(EngineError::invalid(
                "subject_ids",
                "too_many",
                "at most 100,000 subjects per audience",
            )),
            _ => Ok(()),
        }
    }
}

/// What a chunk of subjects came to.
#[derive(Default)]
struct Tally {
    asked: u64,
    permitted: Vec<SubjectId>,
    denied: u64,
    unknown: u64,
    denials: BTreeMap<String, u64>,
    digest: Option<ring::digest::Context>,
    /// A single decision's details of this question, naming the audience.
    details: String,
}

/// A chunk decided: its group record (none if no listed id named a
/// subject), and the ids permitted once it is durable.
struct Decided {
    record: Option<NewAuditRecord>,
    permitted: Vec<SubjectId>,
}

/// A chunk read: its count of ids and the facts of the subjects found;
/// `None` once the source is exhausted.
type Read = Result<Option<(usize, Vec<derbes_store::SubjectFactsRows>)>, EngineError>;

/// Where an audience's subjects come from, a chunk at a time.
enum Source {
    /// The listed ids, each once, in the order asked.
    Listed { ids: Vec<SubjectId>, at: usize },
    /// Every active subject, in id order, after the last one read.
    Active {
        after: Option<SubjectId>,
        done: bool,
    },
}

impl Source {
    fn new(req: &AudienceRequest) -> Source {
        match &req.subject_ids {
            Some(ids) => {
                let mut seen = HashSet::with_capacity(ids.len());
                let ids = ids.iter().copied().filter(|s| seen.insert(*s)).collect();
                Source::Listed { ids, at: 0 }
            }
            None => Source::Active {
                after: None,
                done: false,
            },
        }
    }

    /// The next chunk of ids, `None` when there are no more.
    async fn next(
        &mut self,
        store: &derbes_store::Store,
    ) -> Result<Option<Vec<SubjectId>>, EngineError> {
        match self {
            Source::Listed { ids, at } => {
                let chunk = &ids[*at..(*at + CHUNK).min(ids.len())];
                *at += chunk.len();
                Ok((!chunk.is_empty()).then(|| chunk.to_vec()))
            }
            Source::Active { done: true, .. } => Ok(None),
            Source::Active { after, done } => {
                let chunk = store.active_subject_ids(*after, CHUNK as i64).await?;
                *done = chunk.len() < CHUNK;
                *after = chunk.last().copied();
                Ok((!chunk.is_empty()).then_some(chunk))
            }
        }
    }
}

/// The audience's question for one subject: a single decision's question.
fn question(req: &AudienceRequest, subject: SubjectId) -> DecisionRequest {
    DecisionRequest {
        subject_id: subject,
        operation: req.operation,
        purpose: req.purpose.clone(),
        categories: req.categories.clone(),
        recipient: None,
        channel: req.channel,
        legal_basis: None,
        reference: None,
    }
}

impl Engine {
    /// `POST /audiences`: decide for every subject of the audience, audit
    /// each decision and the audience, then answer with the permitted ids.
    pub async fn audience(
        &self,
        actor: &Actor,
        req: &AudienceRequest,
    ) -> Result<Audience, EngineError> {
        self.require(actor, Capability::Decide)?;
        if actor.scope().is_some() {
            return Err(EngineError::Forbidden(Capability::Decide.as_str()));
        }
        req.check()?;
        let audience_id = uuid::Uuid::now_v7().to_string();
        // The details a single decision of this question records, and the audience.
        let mut details = crate::decide::decision_details(&question(req, SubjectId::new()));
        details["audience"] = Value::from(audience_id.clone());
        let mut tally = Tally {
            digest: Some(ring::digest::Context::new(&ring::digest::SHA256)),
            details: serde_json::to_string(&details)?,
            ..Tally::default()
        };
        // Chunks are pipelined: while one chunk's records commit (on a
        // task of their own, through the audit writer), the next chunk is
        // decided here, and the one after it is read (a task of its own,
        // another connection).
        let mut facts = self.read_ahead(Source::new(req));
        let mut committing: Option<tokio::task::JoinHandle<_>> = None;
        loop {
            let next = self.decide_chunk(actor, req, &mut facts, &mut tally).await;
            if let Some(commit) = committing.take() {
                let permitted = commit
                    .await
                    .map_err(|e| EngineError::Internal(format!("an audience's commit: {e}")))??;
                tally.permitted.extend(permitted);
            }
            match next? {
                Some(decided) => {
                    let engine = self.clone();
                    committing = Some(tokio::spawn(
                        async move { engine.commit_chunk(decided).await },
                    ));
                }
                None => break,
            }
        }
        let digest = tally.digest.take().map(|d| d.finish());
        let ids_sha256 = digest
            .map(|d| crate::outbox::hex(d.as_ref()))
            .unwrap_or_default();
        let audit_id = self
            .audit(
                Record::new(actor, "audience")
                    .purpose(&req.purpose)
                    .categories(&req.categories)
                    .details(serde_json::json!({
                        "audience": audience_id,
                        "operation": req.operation,
                        "channel": req.channel,
                        "every_active_subject": req.every_active_subject,
                        "asked": tally.asked,
                        "permitted": tally.permitted.len(),
                        "denied": tally.denied,
                        "unknown": tally.unknown,
                        "denials": tally.denials,
                        "decisions_sha256": ids_sha256,
                    })),
            )
            .await?;
        Ok(Audience {
            audience_id,
            asked: tally.asked,
            permitted: tally.permitted.len() as u64,
            denied: tally.denied,
            unknown: tally.unknown,
            denials: req.count_denials.then_some(tally.denials),
            audit_id,
            subject_ids: tally.permitted,
        })
    }

    /// The facts of the source's chunks, in order, each read while the one
    /// before it is decided: a chunk's count of ids and its subjects'
    /// facts, then `None` once the source is exhausted. The reading stops
    /// at its first error (sent on) or when the receiver is dropped.
    fn read_ahead(&self, mut source: Source) -> mpsc::Receiver<Read> {
        let (tx, rx) = mpsc::channel(1);
        let store = self.store.clone();
        tokio::spawn(async move {
            loop {
                let read = match source.next(&store).await {
                    Ok(Some(ids)) => store
                        .subjects_facts(&ids)
                        .await
                        .map(|rows| Some((ids.len(), rows)))
                        .map_err(EngineError::from),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                let more = matches!(read, Ok(Some(_)));
                if tx.send(read).await.is_err() || !more {
                    break;
                }
            }
        });
        rx
    }

    /// Decide the next chunk read (`None` once the source is exhausted):
    /// the records to commit and the ids permitted once they are committed.
    async fn decide_chunk(
        &self,
        actor: &Actor,
        req: &AudienceRequest,
        facts: &mut mpsc::Receiver<Read>,
        tally: &mut Tally,
    ) -> Result<Option<Decided>, EngineError> {
        let read = facts.recv().await.ok_or_else(|| {
            EngineError::Internal("an audience's reading of the facts stopped".into())
        })?;
        let Some((asked, rows)) = read? else {
            return Ok(None);
        };
        let now = self.now();
        tally.asked += asked as u64;
        tally.unknown += (asked - rows.len()) as u64;
        let mut members = GroupBuilder::with_capacity(rows.len());
        let mut outcomes: Vec<(bool, Vec<derbes_core::Reason>, u32)> = Vec::new();
        // One question, its subject set for each row in turn.
        let mut asking = question(req, SubjectId::new());
        let mut permitted = Vec::new();
        for row in &rows {
            let subject = row.subject.subject_id;
            let facts = self.facts_of(row, now).await?;
            asking.subject_id = subject;
            let d = self.decide_facts(actor, &asking, &facts);
            if d.permit {
                permitted.push(subject);
            } else {
                tally.denied += 1;
                for r in &d.reasons {
                    *tally.denials.entry(r.code.clone()).or_default() += 1;
                }
            }
            let outcome = if d.permit { "permit" } else { "deny" };
            let subject = subject.to_string();
            if let Some(c) = tally.digest.as_mut() {
                c.update(subject.as_bytes());
                c.update(b" ");
                c.update(outcome.as_bytes());
                c.update(b"\n");
            }
            // The chunk's few distinct outcomes, each written out once.
            let numbered = outcomes
                .iter()
                .find(|(permit, reasons, _)| *permit == d.permit && *reasons == d.reasons);
            let at = match numbered {
                Some((_, _, at)) => *at,
                None => {
                    let at = members.outcome(GroupOutcome {
                        action: "decision".into(),
                        decision: outcome.into(),
                        reasons: serde_json::to_string(&d.reasons)?,
                    });
                    if outcomes.len() < DISTINCT_OUTCOMES {
                        outcomes.push((d.permit, d.reasons, at));
                    }
                    at
                }
            };
            members.push(subject, at);
        }
        let record = match members.build()? {
            Some(group) => Some(NewAuditRecord {
                at: now,
                actor: actor.id().to_string(),
                role: actor.role().to_string(),
                action: "decisions".into(),
                subject_id: None,
                purpose: Some(req.purpose.clone()),
                categories: req.categories.join(","),
                decision: "none".into(),
                reasons: "[]".into(),
                details: tally.details.clone(),
                group: Some(std::sync::Arc::new(group)),
            }),
            None => None,
        };
        Ok(Some(Decided { record, permitted }))
    }

    /// Durably audit a decided chunk; its permitted ids, now answerable.
    /// The records go through the audit writer as one job: one commit of
    /// their own (with any single decisions waiting beside them), on
    /// SQLite the writer's own connection, and no unit of work holding
    /// the store meanwhile.
    async fn commit_chunk(&self, chunk: Decided) -> Result<Vec<SubjectId>, EngineError> {
        let Decided { record, permitted } = chunk;
        self.audit_all(record.into_iter().collect()).await?;
        Ok(permitted)
    }
}
