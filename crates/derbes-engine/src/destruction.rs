//! Destruction, once: every path that destroys personal data — a destruction
//! or withdrawal request, a minor's report, a withdrawn consent that some
//! categories need, the retention purge — builds an [`Order`] and calls
//! [`Engine::destroy`]. It decides what goes and what a law keeps, writes the
//! certificate, and hands everything to the store's destroying piece
//! (`Write::destroy`) in one unit of work, which refuses a blocked or held
//! subject inside the transaction that deletes, marks the job done and
//! completes the request there too; the audit record of each destruction,
//! with its certificate's hash, commits in that same transaction.

use chrono::{DateTime, Utc};
use derbes_core::{RetentionRules, SubjectId, SubjectStatus, Until};
use derbes_policy::ConsentKind;
use derbes_store::{DestroyOutcome, Destruction, Scope};
use serde::Serialize;
use serde_json::json;

use crate::audit::Record;
use crate::{field_categories, Actor, Engine, EngineError};

/// Why data is destroyed: the certificate's legal ground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ground {
    /// The subject withdrew consent (7.11).
    Withdrawal,
    /// The subject asked for destruction (7.11, the Law).
    Request,
    /// The subject was found to be under 18 (7.7).
    Minor,
    /// No purpose keeps it any more (7.1).
    Retention,
    /// The consent these categories need was withdrawn (3.5, 7.4).
    Consent(ConsentKind),
}

impl Ground {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Ground::Withdrawal => "withdrawal of consent (policy clause 7.11)",
            Ground::Request => {
                "the subject's request for destruction (policy clause 7.11; Law «О персональных данных и их защите»)"
            }
            Ground::Minor => "the subject is under 18 (policy clause 7.7)",
            Ground::Retention => "end of the purposes' retention (policy clause 7.1)",
            Ground::Consent(ConsentKind::Entrepreneur) => {
                "withdrawal of the entrepreneur's consent (policy clause 3.5)"
            }
            Ground::Consent(ConsentKind::Cookies) => {
                "withdrawal of the cookie consent (policy clauses 7.4-7.5)"
            }
            Ground::Consent(_) => "withdrawal of the consent these categories need",
        }
    }

    /// What a law obliges the operator to keep survives this ground.
    fn keeps_statutory(self) -> bool {
        matches!(self, Ground::Withdrawal | Ground::Request)
    }
}

/// What an order destroys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum What {
    /// Everything: crypto-shredding.
    Everything,
    /// Everything but what a law obliges the operator to keep (then the
    /// subject stays `withdrawn`, holding only that, until its period ends).
    AllButStatutory,
    /// These fields only.
    Fields(Vec<String>),
    /// Every field of these categories.
    Categories(Vec<String>),
}

/// One destruction to carry out.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub subject: SubjectId,
    pub ground: Ground,
    pub what: What,
    pub job_id: Option<String>,
    pub request_id: Option<String>,
    /// The request's legal deadline, which the connected systems are told.
    pub due_at: Option<DateTime<Utc>>,
    /// The subject's fields with their collection time, when the caller has
    /// read them already (the purge); loaded otherwise.
    pub fields: Option<Vec<(String, DateTime<Utc>)>>,
}

impl Order {
    pub(crate) fn new(subject: SubjectId, ground: Ground, what: What) -> Order {
        Order {
            subject,
            ground,
            what,
            job_id: None,
            request_id: None,
            due_at: None,
            fields: None,
        }
    }
}

/// What is kept of a category after a destruction, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Kept {
    pub category: String,
    /// The purpose a law imposes (e.g. `legal_obligation`).
    pub purpose: String,
    /// The legal ground, in the policy's words (ru).
    pub basis: String,
    /// Kept until then, for that purpose only; destroyed afterwards.
    pub until: DateTime<Utc>,
}

/// The answer to a destruction or withdrawal request: what went, what a law
/// keeps and until when — from its certificate.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestructionAnswer {
    pub certificate_id: String,
    /// The categories destroyed.
    pub destroyed: Vec<String>,
    /// What is kept because a law obliges it, for that purpose only.
    pub kept_by_law: Vec<Kept>,
}

impl DestructionAnswer {
    /// The answer a certificate gives (`None` if it is not one).
    pub(crate) fn of(certificate: &serde_json::Value) -> Option<DestructionAnswer> {
        Some(DestructionAnswer {
            certificate_id: certificate.get("certificate_id")?.as_str()?.to_string(),
            destroyed: serde_json::from_value(certificate.get("categories")?.clone()).ok()?,
            kept_by_law: certificate
                .get("kept_by_law")
                .and_then(|k| serde_json::from_value(k.clone()).ok())
                .unwrap_or_default(),
        })
    }
}

/// What became of an order.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub outcome: DestroyOutcome,
    pub certificate_id: Option<String>,
}

fn category(field: &str) -> &str {
    field.split_once('.').map_or(field, |(c, _)| c)
}

impl Engine {
    /// Carry out destructions (one transaction for all): what each came to.
    pub(crate) async fn destroy(&self, orders: Vec<Order>) -> Result<Vec<Outcome>, EngineError> {
        let now = self.now();
        let p = &self.policy.policy();
        let statutory = RetentionRules::statutory(p);
        let mut items = Vec::with_capacity(orders.len());
        let mut plans = Vec::with_capacity(orders.len());
        for o in &orders {
            let fields = match &o.fields {
                Some(f) => f.clone(),
                None => self
                    .store
                    .subject_fields(o.subject)
                    .await?
                    .into_iter()
                    .map(|f| (f.field, f.collected_at))
                    .collect(),
            };
            let mut kept: Vec<Kept> = Vec::new();
            let mut keep: Vec<&str> = Vec::new();
            if o.what == What::AllButStatutory && o.ground.keeps_statutory() {
                // The relationship ends with the withdrawal (if it had not before).
                let ended = self
                    .subject_facts(o.subject)
                    .await?
                    .relationship_ended_at
                    .unwrap_or(now);
                for (f, collected) in &fields {
                    let r = statutory.field(category(f), *collected, Some(ended));
                    if let (Until::Date { at }, Some(purpose)) = (r.until, &r.kept_for) {
                        if at > now {
                            keep.push(f);
                            if let Some(k) = kept.iter_mut().find(|k| k.category == category(f)) {
                                k.until = k.until.max(at);
                            } else {
                                kept.push(Kept {
                                    category: category(f).to_string(),
                                    purpose: purpose.clone(),
                                    basis: p
                                        .purpose(purpose)
                                        .map(|x| x.retention.basis.ru.clone())
                                        .unwrap_or_default(),
                                    until: at,
                                });
                            }
                        }
                    }
                }
            }
            let destroyed: Vec<String> = match &o.what {
                What::Fields(only) => fields
                    .iter()
                    .map(|(f, _)| f.clone())
                    .filter(|f| only.contains(f))
                    .collect(),
                What::Categories(only) => fields
                    .iter()
                    .map(|(f, _)| f.clone())
                    .filter(|f| only.iter().any(|c| c == category(f)))
                    .collect(),
                _ => fields
                    .iter()
                    .map(|(f, _)| f.clone())
                    .filter(|f| !keep.contains(&f.as_str()))
                    .collect(),
            };
            let scope = match (&o.what, keep.is_empty()) {
                (What::Everything, _) | (What::AllButStatutory, true) => Scope::Whole,
                (what, _) => Scope::Fields {
                    index_kinds: destroyed
                        .iter()
                        .filter_map(|f| p.index_kind(f).map(String::from))
                        .collect(),
                    fields: destroyed.clone(),
                    status_after: (*what == What::AllButStatutory)
                        .then_some(SubjectStatus::Withdrawn),
                    // A withdrawal or a destruction request takes the
                    // subject's free text too; a category's consent does not.
                    notes: *what == What::AllButStatutory,
                },
            };
            let categories = field_categories(destroyed.iter().map(String::as_str));
            let certificate_id = uuid::Uuid::now_v7().to_string();
            let certificate = json!({
                "title": {"ru": "Акт об уничтожении персональных данных", "en": "Certificate of destruction of personal data"},
                "certificate_id": certificate_id,
                "operator": {"name": p.operator.name.ru, "bin": p.operator.bin.to_string()},
                "subject_id": o.subject,
                "request_id": o.request_id,
                "legal_ground": o.ground.text(),
                "destroyed_at": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "categories": categories,
                "method": match scope {
                    Scope::Whole => "crypto-shredding: the subject's data key, every sealed field and previous value, the blind-index entries and the opt-outs were deleted; any copy of the sealed data can no longer be opened",
                    Scope::Fields { .. } => "deletion: the sealed fields of these categories, their previous values and blind-index entries were deleted; the subject's data key remains only for what is kept, and goes with it",
                },
                "kept_by_law": kept,
                "kept": "consent ledger and audit records, which hold no personal data",
            })
            .to_string();
            let sha = derbes_policy::sha256_hex(certificate.as_bytes());
            items.push(Destruction {
                subject_id: o.subject,
                scope,
                job_id: o.job_id.clone(),
                request_id: o.request_id.clone(),
                certificate_id: certificate_id.clone(),
                certificate,
                certificate_sha256: sha.clone(),
                events: Vec::new(),
            });
            plans.push((categories, certificate_id, sha, kept));
        }
        // One unit of work: the deletions, the certificates, the jobs and
        // requests they close, and the audit records of what was destroyed.
        let mut w = self.write().await?;
        // What the connected systems must destroy too, written if the
        // subject is destroyed; a request waits for their confirmations.
        let systems = w.systems().await?;
        if !systems.is_empty() {
            for (item, (o, (categories, certificate_id, _, kept))) in
                items.iter_mut().zip(orders.iter().zip(&plans))
            {
                item.events = self.events_for(
                    &systems,
                    &crate::outbox::About {
                        subject: Some(o.subject),
                        request_id: o.request_id.as_deref(),
                        gates: true,
                        due_at: Some(o.due_at.unwrap_or(now)),
                    },
                    &crate::outbox::Change::Destroyed {
                        categories: categories.clone(),
                        kept_by_law: kept.iter().map(|k| k.category.clone()).collect(),
                        whole_person: matches!(o.what, What::AllButStatutory | What::Everything),
                        ground: o.ground.text(),
                        certificate_id: certificate_id.clone(),
                    },
                );
            }
        }
        let outcomes = w.destroy(&items, now).await?;
        let system = Actor::system(crate::SystemJob::Destruction);
        let mut out = Vec::with_capacity(orders.len());
        for ((o, outcome), (categories, certificate_id, sha, kept)) in
            orders.iter().zip(outcomes).zip(plans)
        {
            let destroyed = outcome == DestroyOutcome::Destroyed;
            if destroyed {
                w.audit(
                    self.audit_record(
                        Record::new(&system, "destruction")
                            .subject(o.subject)
                            .categories(&categories)
                            .details(json!({
                                "ground": o.ground.text(),
                                "request_id": o.request_id,
                                "job_id": o.job_id,
                                "certificate_id": certificate_id,
                                "certificate_sha256": sha,
                                "kept_by_law": kept.iter().map(|k| &k.category).collect::<Vec<_>>(),
                            })),
                    )?,
                );
            }
            out.push(Outcome {
                outcome,
                certificate_id: destroyed.then_some(certificate_id),
            });
        }
        w.commit().await?;
        for o in &orders {
            self.facts.forget(&o.subject);
        }
        if out.iter().any(|o| o.outcome == DestroyOutcome::Destroyed) {
            // No image of a destroyed key or value outlives the destruction.
            self.expunge().await?;
        }
        Ok(out)
    }
}
