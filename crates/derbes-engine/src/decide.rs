//! The one decision point: every read or use of personal data asks here,
//! and every answer is audited before it is returned.

use derbes_core::{ConsentFacts, Decision, DecisionInput, RecipientInput, SubjectFacts, SubjectId};
use derbes_policy::{Capability, Channel, ContactKind, Operation};
use derbes_store::DisclosureRow;
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::audit::Record;
use crate::{Engine, EngineError};

/// A question for the decision point.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub subject_id: SubjectId,
    pub operation: Operation,
    pub purpose: String,
    pub categories: Vec<String>,
    /// A recipient id of the policy, for transfers.
    pub recipient: Option<String>,
    /// The channel, for communications.
    pub channel: Option<Channel>,
    /// For authorities: the legal basis of the request.
    pub legal_basis: Option<String>,
    /// For authorities: the request's reference.
    pub reference: Option<String>,
}

/// The answer and where it is recorded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionOutcome {
    /// `permit` or `deny`.
    pub decision: &'static str,
    pub reasons: Vec<derbes_core::Reason>,
    /// The audit record of this decision.
    pub audit_id: i64,
}

/// A disclosure to a recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DisclosureRequest {
    pub subject_id: SubjectId,
    pub recipient: String,
    pub purpose: String,
    pub categories: Vec<String>,
    /// What the disclosure rests on: the consent, the contract, the law and article.
    pub legal_basis: String,
    /// The request's reference (required for authorities).
    pub reference: Option<String>,
    /// For a purpose that reaches the subject (a message sent through a
    /// telecom operator, say): the channel — objections are checked on it.
    pub channel: Option<Channel>,
}

/// A disclosure as the subject and the DPO see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisclosureView {
    pub disclosure_id: String,
    pub recipient: String,
    pub purpose: String,
    pub categories: Vec<String>,
    pub legal_basis: Option<String>,
    pub reference: Option<String>,
    pub cross_border: bool,
    pub at: chrono::DateTime<chrono::Utc>,
    pub audit_id: i64,
    /// When the subject must be told (their consent asks for it), 10 working days.
    pub notice_due: Option<chrono::DateTime<chrono::Utc>>,
    /// When the subject was told (the notice's delivery confirmed).
    pub notified_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A permitted use of a subject's data: only [`Engine::decide_and_audit`]
/// makes one, once the decision's audit record is durable. Opening sealed
/// fields takes one (`Engine::view`), and opens only the fields of the
/// subject and categories it permits.
#[derive(Debug)]
pub(crate) struct Permit {
    subject: SubjectId,
    categories: Vec<String>,
    audit_id: i64,
    reasons: Vec<derbes_core::Reason>,
}

impl Permit {
    /// The permitted categories.
    pub(crate) fn categories(&self) -> &[String] {
        &self.categories
    }

    /// The decision's audit record.
    pub(crate) fn audit_id(&self) -> i64 {
        self.audit_id
    }

    /// The permit covers this subject's field (`category.field`, or a
    /// previous value's reason `category.field#reason`).
    pub(crate) fn covers(&self, subject: &str, field: &str) -> bool {
        self.subject.to_string() == subject
            && field
                .split_once('.')
                .is_some_and(|(c, _)| self.categories.iter().any(|x| x == c))
    }
}

/// How long a subject's decision facts are reused without asking the store.
pub const FACTS_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

type Facts = std::sync::Arc<SubjectFacts>;

/// Recently loaded decision facts, with when they were loaded (the process's
/// time and the engine's clock: consents expire by the clock, so facts are
/// fresh only while both are within the TTL).
/// A cache entry: the facts, and when they were loaded (process, clock).
type Cached = (Facts, std::time::Instant, chrono::DateTime<chrono::Utc>);

#[derive(Debug, Default)]
pub(crate) struct FactsCache(std::sync::RwLock<std::collections::HashMap<SubjectId, Cached>>);

impl FactsCache {
    fn get(&self, s: &SubjectId, now: chrono::DateTime<chrono::Utc>) -> Option<Facts> {
        let map = self.0.read().ok()?;
        let (f, at, clock) = map.get(s)?;
        let ttl = chrono::Duration::from_std(FACTS_CACHE_TTL).ok()?;
        (at.elapsed() < FACTS_CACHE_TTL && *clock <= now && now - *clock < ttl).then(|| f.clone())
    }

    fn put(&self, s: SubjectId, f: Facts, now: chrono::DateTime<chrono::Utc>) {
        if let Ok(mut map) = self.0.write() {
            if map.len() > 100_000 {
                map.retain(|_, (_, at, _)| at.elapsed() < FACTS_CACHE_TTL);
            }
            map.insert(s, (f, std::time::Instant::now(), now));
        }
    }

    /// Forget a subject (after any change to their status or consents).
    pub(crate) fn forget(&self, s: &SubjectId) {
        if let Ok(mut map) = self.0.write() {
            map.remove(s);
        }
    }
}

/// Published policy versions other than the one in force (by SHA-256), and
/// what a consent to each covers.
#[derive(Debug, Default)]
pub(crate) struct CoverageCache {
    coverage:
        std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<derbes_core::Coverage>>>,
    versions: std::sync::RwLock<
        std::collections::HashMap<String, Option<std::sync::Arc<derbes_policy::LoadedPolicy>>>,
    >,
}

fn text(s: &Option<String>) -> Option<&str> {
    s.as_deref()
}

impl Engine {
    /// The subject's side of a decision: from the cache when fresh (this
    /// engine forgets a subject on every change it makes to their status,
    /// consents, objections or holds), otherwise from the store in one round
    /// trip.
    pub(crate) async fn subject_facts(&self, subject: SubjectId) -> Result<Facts, EngineError> {
        let now = self.now();
        if let Some(f) = self.facts.get(&subject, now) {
            return Ok(f);
        }
        let rows = self
            .store
            .subject_facts(subject)
            .await?
            .ok_or(EngineError::NotFound("subject"))?;
        let f = std::sync::Arc::new(self.facts_of(&rows, now).await?);
        self.facts.put(subject, f.clone(), now);
        Ok(f)
    }

    /// A subject's decision facts from what the store read of them.
    pub(crate) async fn facts_of(
        &self,
        rows: &derbes_store::SubjectFactsRows,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<SubjectFacts, EngineError> {
        // Terms lines are read in place; a consent stored before lines
        // were is read from its record, kept here for the terms to borrow.
        let mut records = Vec::new();
        let mut terms = Vec::with_capacity(rows.consents.len());
        for c in &rows.consents {
            match derbes_core::ConsentTerms::parse_line(&c.terms, c.withdrawn_at) {
                Some(t) => terms.push(t),
                None => records.push(record_of(c)?),
            }
        }
        terms.extend(records.iter().map(derbes_core::ConsentRecord::terms));
        let consents = match self.compiled.as_ref() {
            Ok(c) => c.terms_facts(&terms, now),
            // Nothing is permitted anyway; no consent is known.
            Err(_) => ConsentFacts::default(),
        };
        let accepted = match &consents.policy_sha256 {
            Some(sha) if *sha != self.policy.sha256() => Some(self.coverage(sha).await?),
            _ => None,
        };
        let objections = rows
            .objections
            .iter()
            .filter_map(|(c, k)| {
                Some(derbes_core::objection_bit(
                    Channel::parse(c)?,
                    ContactKind::parse(k)?,
                ))
            })
            .fold(0, |m, b| m | b);
        Ok(SubjectFacts {
            status: rows.subject.status,
            relationship_ended_at: rows.subject.relationship_ended_at,
            consents,
            objections,
            held: rows.held,
            accepted,
        })
    }

    /// The published policy version with this SHA-256, from the store,
    /// where every published version is kept (`None`: not found or not
    /// readable).
    pub(crate) async fn published(
        &self,
        sha: &str,
    ) -> Result<Option<std::sync::Arc<derbes_policy::LoadedPolicy>>, EngineError> {
        if let Some(v) = self
            .coverages
            .versions
            .read()
            .ok()
            .and_then(|m| m.get(sha).cloned())
        {
            return Ok(v);
        }
        let mut found = None;
        for v in self.store.policy_versions().await? {
            if v.sha256 == sha {
                if let Some((_, text)) = self.store.policy_version(&v.version).await? {
                    found = derbes_policy::LoadedPolicy::from_text(text)
                        .ok()
                        .filter(|p| p.sha256() == sha)
                        .map(std::sync::Arc::new);
                }
            }
        }
        if let Ok(mut m) = self.coverages.versions.write() {
            m.insert(sha.to_string(), found.clone());
        }
        Ok(found)
    }

    /// What a consent to the policy version with this SHA-256 covers, in
    /// terms of the version in force (7.6); a version that cannot be found
    /// or read covers nothing.
    async fn coverage(
        &self,
        sha: &str,
    ) -> Result<std::sync::Arc<derbes_core::Coverage>, EngineError> {
        if let Some(c) = self
            .coverages
            .coverage
            .read()
            .ok()
            .and_then(|m| m.get(sha).cloned())
        {
            return Ok(c);
        }
        let cov = match (self.published(sha).await?, self.compiled.as_ref()) {
            (Some(old), Ok(c)) => c.coverage(old.policy()),
            _ => derbes_core::Coverage::nothing(),
        };
        let cov = std::sync::Arc::new(cov);
        if let Ok(mut m) = self.coverages.coverage.write() {
            m.insert(sha.to_string(), cov.clone());
        }
        Ok(cov)
    }

    /// The one way to a [`Permit`]: decide, write the decision's audit
    /// record (`action`, with `details`) and wait until it is durable; a
    /// deny is returned as [`EngineError::Denied`] with every reason.
    pub(crate) async fn decide_and_audit(
        &self,
        actor: &Actor,
        question: &DecisionRequest,
        facts: &SubjectFacts,
        action: &str,
        details: serde_json::Value,
    ) -> Result<Permit, EngineError> {
        let mut d = self.decide_facts(actor, question, facts);
        if actor.scope().is_some_and(|s| s != question.subject_id) {
            // A subject's session reaches that subject and nobody else.
            d.permit = false;
            d.reasons.push(derbes_core::Reason {
                code: "outside_session".into(),
                message: "a subject's session answers for that subject only".into(),
            });
        }
        let audit_id = self
            .audit(decision_record(actor, question, &d, action, details))
            .await?;
        if !d.permit {
            return Err(EngineError::Denied {
                reasons: d.reasons,
                audit_id,
            });
        }
        Ok(Permit {
            subject: question.subject_id,
            categories: question.categories.clone(),
            audit_id,
            reasons: d.reasons,
        })
    }

    /// Decide without side effects (callers audit: see `decide_and_audit`).
    pub(crate) fn decide_facts(
        &self,
        actor: &Actor,
        req: &DecisionRequest,
        facts: &SubjectFacts,
    ) -> Decision {
        match self.compiled.as_ref() {
            Err(e) => derbes_core::decision::deny_uncompiled(e),
            Ok(c) => c.decide(
                &DecisionInput {
                    role: actor.role(),
                    operation: req.operation,
                    purpose: &req.purpose,
                    categories: &req.categories,
                    channel: req.channel,
                    recipient: req.recipient.as_deref().map(|id| RecipientInput {
                        id,
                        legal_basis: text(&req.legal_basis),
                        reference: text(&req.reference),
                    }),
                    now: self.now(),
                },
                facts,
            ),
        }
    }

    /// `POST /decisions`: the decision and its durable audit record.
    pub async fn decide(
        &self,
        actor: &Actor,
        req: &DecisionRequest,
    ) -> Result<DecisionOutcome, EngineError> {
        self.require(actor, Capability::Decide)?;
        let facts = self.subject_facts(req.subject_id).await?;
        let (decision, reasons, audit_id) = match self
            .decide_and_audit(actor, req, &facts, "decision", decision_details(req))
            .await
        {
            Ok(p) => ("permit", p.reasons, p.audit_id),
            Err(EngineError::Denied { reasons, audit_id }) => ("deny", reasons, audit_id),
            Err(e) => return Err(e),
        };
        Ok(DecisionOutcome {
            decision,
            reasons,
            audit_id,
        })
    }

    /// Disclose data to a recipient: decided, audited, then recorded in the
    /// subject's disclosure ledger (with a notice due in 10 working days when
    /// their consent asks to be told of transfers).
    pub async fn disclose(
        &self,
        actor: &Actor,
        req: &DisclosureRequest,
    ) -> Result<DisclosureView, EngineError> {
        self.require(actor, Capability::Disclose)?;
        let basis = derbes_core::free_text("legal_basis", &req.legal_basis, 500)
            .map_err(|p| EngineError::Invalid(vec![p]))?;
        if basis.is_empty() {
            return Err(EngineError::invalid(
                "legal_basis",
                "missing_field",
                "name what the disclosure rests on (1 to 500 characters)",
            ));
        }
        let reference = req
            .reference
            .as_deref()
            .map(|r| derbes_core::free_text("reference", r, 200))
            .transpose()
            .map_err(|p| EngineError::Invalid(vec![p]))?
            .filter(|r| !r.is_empty());
        let recipient = self
            .policy
            .policy()
            .recipient(&req.recipient)
            .ok_or_else(|| {
                EngineError::invalid(
                    "recipient",
                    "unknown_recipient",
                    "not a recipient of the policy (section 6)",
                )
            })?;
        let cross_border = recipient.cross_border;
        let question = DecisionRequest {
            subject_id: req.subject_id,
            operation: if cross_border {
                Operation::CrossBorderTransfer
            } else {
                Operation::Transfer
            },
            purpose: req.purpose.clone(),
            categories: req.categories.clone(),
            recipient: Some(req.recipient.clone()),
            channel: req.channel,
            legal_basis: Some(basis.clone()),
            reference: reference.clone(),
        };
        let facts = self.subject_facts(req.subject_id).await?;
        // A disclosure is audited as done only once it is: a denial is
        // recorded at once, a permit commits with the disclosure itself.
        let d = self.decide_facts(actor, &question, &facts);
        let record = || {
            decision_record(
                actor,
                &question,
                &d,
                "disclosure",
                decision_details(&question),
            )
        };
        if !d.permit {
            let audit_id = self.audit(record()).await?;
            return Err(EngineError::Denied {
                reasons: d.reasons.clone(),
                audit_id,
            });
        }
        let now = self.now();
        let notice_due = if facts.consents.notify_of_transfers {
            Some(
                self.due(now, self.policy.policy().deadlines.transfer_notice)?
                    .at,
            )
        } else {
            None
        };
        let row = DisclosureRow {
            subject_id: req.subject_id,
            disclosure_id: uuid::Uuid::now_v7().to_string(),
            recipient: req.recipient.clone(),
            purpose: req.purpose.clone(),
            categories: req.categories.join(","),
            legal_basis: None,
            reference: None,
            cross_border,
            at: now,
            // Set at commit: the sequence number of the permit below.
            audit_seq: 0,
            notice_due,
            notified_at: None,
        };
        let owner = format!("disclosure:{}", row.disclosure_id);
        let notes = self
            .seal_notes(
                Some(req.subject_id),
                &[
                    (owner.clone(), "legal_basis", Some(&basis)),
                    (owner.clone(), "reference", reference.as_deref()),
                ],
            )
            .await?;
        let mut w = self.write().await?;
        w.insert_disclosure(&row, &notes).await?;
        if let Some(due) = notice_due {
            // Art. 19: the transfer notice is a work item from now, sent
            // through the app's own channel; written with the disclosure.
            self.transfer_notice_in(&mut w, &row, due).await?;
        }
        let seqs = self.commit(w, [record()]).await?;
        let row = DisclosureRow {
            audit_seq: seqs.first().copied().unwrap_or_default(),
            ..row
        };
        let opened = std::collections::HashMap::from_iter(
            [("legal_basis", Some(basis)), ("reference", reference)]
                .into_iter()
                .filter_map(|(n, t)| Some(((owner.clone(), n.to_string()), t?))),
        );
        Ok(disclosure_view(row, &opened))
    }

    /// Who received what of a subject's data (`read_disclosures`).
    pub async fn disclosures(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<Vec<DisclosureView>, EngineError> {
        self.require(actor, Capability::ReadDisclosures)?;
        if self.store.subject(subject).await?.is_none() {
            return Err(EngineError::NotFound("subject"));
        }
        let rows = self.store.disclosures(subject).await?;
        self.audit(
            Record::new(actor, "disclosures.read")
                .subject(subject)
                .details(serde_json::json!({"count": rows.len()})),
        )
        .await?;
        let notes = self
            .open_notes(actor, Some(subject), &disclosure_owners(&rows))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| disclosure_view(r, &notes))
            .collect())
    }
}

/// The audit record of a decision on `question`.
fn decision_record<'a>(
    actor: &'a Actor,
    question: &'a DecisionRequest,
    d: &'a Decision,
    action: &'a str,
    details: serde_json::Value,
) -> Record<'a> {
    Record::new(actor, action)
        .subject(question.subject_id)
        .purpose(&question.purpose)
        .categories(&question.categories)
        .decision(d)
        .details(details)
}

/// What the audit keeps of a question: codes and whether a legal basis and
/// a reference were given — never their words, which may name people.
pub(crate) fn decision_details(req: &DecisionRequest) -> serde_json::Value {
    let given = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
    serde_json::json!({
        "operation": req.operation,
        "recipient": req.recipient,
        "channel": req.channel,
        "legal_basis_given": given(&req.legal_basis),
        "reference_given": given(&req.reference),
    })
}

/// The note owners of these disclosures.
pub(crate) fn disclosure_owners(rows: &[DisclosureRow]) -> Vec<String> {
    rows.iter()
        .map(|r| format!("disclosure:{}", r.disclosure_id))
        .collect()
}

/// A disclosure's view, its legal basis and reference from the opened notes.
pub(crate) fn disclosure_view(r: DisclosureRow, notes: &crate::notes::Opened) -> DisclosureView {
    let owner = format!("disclosure:{}", r.disclosure_id);
    let note = |n: &str| notes.get(&(owner.clone(), n.to_string())).cloned();
    DisclosureView {
        legal_basis: note("legal_basis"),
        reference: note("reference"),
        disclosure_id: r.disclosure_id,
        recipient: r.recipient,
        purpose: r.purpose,
        categories: r
            .categories
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        cross_border: r.cross_border,
        at: r.at,
        audit_id: r.audit_seq,
        notice_due: r.notice_due,
        notified_at: r.notified_at,
    }
}

/// A consent stored before terms lines were, as the store read it for a
/// decision: its record, with its withdrawal.
fn record_of(c: &derbes_store::FactsConsent) -> Result<derbes_core::ConsentRecord, EngineError> {
    let mut record: derbes_core::ConsentRecord = serde_json::from_str(&c.terms)?;
    record.withdrawn_at = c.withdrawn_at;
    Ok(record)
}
