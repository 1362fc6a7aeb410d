//! Retention (7.1): the purge destroys what no purpose keeps any more, and
//! legal holds stop it. The end of a relationship starts the periods that
//! run from it.

use chrono::{DateTime, Utc};
use derbes_core::{RetentionRules, SubjectId, Until};
use derbes_policy::Capability;
use derbes_store::{LegalHold, PurgeCandidate, PurgeScope};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::Record;
use crate::destruction::{Ground, Order, What};
use crate::{field_categories, micros, Actor, Engine, EngineError};
use derbes_store::DestroyOutcome;

/// Fields read per page of the purge's scan.
const PAGE: i64 = 5000;
/// Subjects per purge transaction.
const BATCH: usize = 500;

/// Something the purge destroys (or, in a dry run, would), and why.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeItem {
    pub subject_id: SubjectId,
    /// The whole subject goes (every field's retention ended after the relationship did).
    pub whole_subject: bool,
    /// The fields that go (names only).
    pub fields: Vec<String>,
    /// Why, in words (no personal data).
    pub reason: String,
    /// The certificate of the destruction (not in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
}

/// What a purge did or would do.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeReport {
    pub dry_run: bool,
    /// Fields looked at.
    pub scanned_fields: u64,
    pub subjects_destroyed: u64,
    /// Single fields destroyed (of subjects that stay).
    pub fields_destroyed: u64,
    /// Previous values past their `keep_until`.
    pub previous_values_destroyed: u64,
    /// Subjects with something due that a legal hold keeps.
    pub held_subjects: u64,
    pub items: Vec<PurgeItem>,
}

/// A legal hold as shown.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldView {
    pub hold_id: String,
    pub reason: String,
    pub reference: String,
    pub placed_at: DateTime<Utc>,
    pub placed_by: String,
    pub released_at: Option<DateTime<Utc>>,
}

/// A legal hold to place.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    /// `litigation`, `authority_order` or `investigation`.
    pub reason: String,
    /// The case or order number (no personal data).
    pub reference: String,
}

fn hold_view(h: LegalHold, notes: &crate::notes::Opened) -> HoldView {
    HoldView {
        reference: notes
            .get(&(format!("hold:{}", h.hold_id), "reference".to_string()))
            .cloned()
            .unwrap_or_default(),
        hold_id: h.hold_id,
        reason: h.reason,
        placed_at: h.placed_at,
        placed_by: h.placed_by,
        released_at: h.released_at,
    }
}

impl PurgeReport {
    /// One subject's destruction (done, or in a dry run what would be).
    fn count(&mut self, d: Due, certificate_id: Option<String>) {
        if d.whole {
            self.subjects_destroyed += 1;
        } else {
            self.fields_destroyed += d.fields.len() as u64;
        }
        self.items.push(PurgeItem {
            subject_id: d.subject,
            whole_subject: d.whole,
            fields: d.fields,
            reason: d.reason,
            certificate_id,
        });
    }
}

/// What the purge found for one subject.
struct Due {
    subject: SubjectId,
    whole: bool,
    fields: Vec<String>,
    /// Every scanned field of the subject with its collection time.
    scanned: Vec<(String, DateTime<Utc>)>,
    reason: String,
}

fn describe(until: Until, kept_for: Option<&str>) -> String {
    match (until, kept_for) {
        (Until::Date { at }, Some(p)) => format!(
            "retention ended {} (the longest purpose, `{p}`)",
            at.format("%Y-%m-%d")
        ),
        _ => "no purpose of the policy keeps this category".into(),
    }
}

impl Engine {
    /// Record that the relationship ended (account closed, contract over):
    /// the retention periods that run from it start now (or at `at`).
    pub async fn end_relationship(
        &self,
        actor: &Actor,
        subject: SubjectId,
        at: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, EngineError> {
        if self.require(actor, Capability::RegisterSubjects).is_err() {
            self.require(actor, Capability::WorkRequests)?;
        }
        let now = self.now();
        let at = at.unwrap_or(now);
        if at > now + chrono::Duration::minutes(5) {
            return Err(EngineError::invalid(
                "at",
                "in_future",
                "a relationship cannot end in the future",
            ));
        }
        let registered = self
            .store
            .subject(subject)
            .await?
            .ok_or(EngineError::NotFound("subject"))?
            .created_at;
        if at < registered {
            return Err(EngineError::invalid(
                "at",
                "before_registration",
                "a relationship cannot end before the subject was registered",
            ));
        }
        let mut w = self.write().await?;
        let Some(ended) = w.end_relationship(subject, at).await? else {
            drop(w);
            return Err(match self.store.subject(subject).await? {
                None => EngineError::NotFound("subject"),
                Some(_) => EngineError::Destroyed,
            });
        };
        self.commit(
            w,
            [Record::new(actor, "subject.relationship_ended")
                .subject(subject)
                .details(json!({"ended_at": micros(ended)}))],
        )
        .await?;
        Ok(ended)
    }

    /// Place a legal hold: the purge leaves the subject alone until released.
    pub async fn place_hold(
        &self,
        actor: &Actor,
        subject: SubjectId,
        hold: &NewHold,
    ) -> Result<HoldView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        self.require_approver(actor, "legal_hold.placed", Some(subject), None, json!({}))
            .await?;
        crate::one_of(
            "reason",
            "invalid_reason",
            &hold.reason,
            &["litigation", "authority_order", "investigation"],
        )?;
        let reference = crate::reference(&hold.reference)?;
        self.require_active(subject).await?;
        let row = LegalHold {
            hold_id: uuid::Uuid::now_v7().to_string(),
            subject_id: subject,
            reason: hold.reason.clone(),
            reference: String::new(),
            placed_at: self.now(),
            placed_by: actor.id().to_string(),
            released_at: None,
            released_by: None,
        };
        let owner = format!("hold:{}", row.hold_id);
        let notes = self
            .seal_notes(
                Some(subject),
                &[(owner.clone(), "reference", Some(&reference))],
            )
            .await?;
        let mut w = self.write().await?;
        w.place_hold(&row, &notes).await?;
        self.commit(
            w,
            [Record::new(actor, "legal_hold.placed")
                .subject(subject)
                .details(json!({"hold_id": row.hold_id, "reason": row.reason}))],
        )
        .await?;
        let opened =
            std::collections::HashMap::from([((owner, "reference".to_string()), reference)]);
        Ok(hold_view(row, &opened))
    }

    /// Release a hold; what became due meanwhile goes at the next purge.
    pub async fn release_hold(
        &self,
        actor: &Actor,
        subject: SubjectId,
        hold_id: &str,
    ) -> Result<(), EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        self.require_approver(
            actor,
            "legal_hold.released",
            Some(subject),
            None,
            json!({"hold_id": hold_id}),
        )
        .await?;
        let mut w = self.write().await?;
        if !w
            .release_hold(subject, hold_id, self.now(), actor.id())
            .await?
        {
            return Err(EngineError::NotFound("open hold"));
        }
        self.commit(
            w,
            [Record::new(actor, "legal_hold.released")
                .subject(subject)
                .details(json!({"hold_id": hold_id}))],
        )
        .await?;
        Ok(())
    }

    /// A subject's holds, open and released.
    pub async fn holds(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<Vec<HoldView>, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let rows = self.store.holds(subject).await?;
        let owners: Vec<String> = rows.iter().map(|h| format!("hold:{}", h.hold_id)).collect();
        let notes = self.open_notes(actor, Some(subject), &owners).await?;
        Ok(rows.into_iter().map(|h| hold_view(h, &notes)).collect())
    }

    /// Destroy what no purpose keeps any more: whole subjects whose
    /// relationship ended and whose every field's retention is over (with a
    /// certificate each), single fields whose retention is over, previous
    /// values past `keep_until`. Held, blocked and withdrawn subjects are
    /// left alone (withdrawals are destroyed by their own jobs). A dry run
    /// lists what would go and why and changes nothing. `progress` is told
    /// how many fields were looked at.
    pub async fn purge(
        &self,
        actor: &Actor,
        dry_run: bool,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<PurgeReport, EngineError> {
        self.purge_paged(actor, dry_run, progress, PAGE).await
    }

    /// [`Engine::purge`] reading `page` fields per query (a subject's fields
    /// may span pages; tests use small pages to prove it).
    pub async fn purge_paged(
        &self,
        actor: &Actor,
        dry_run: bool,
        progress: &(dyn Fn(u64) + Send + Sync),
        page_size: i64,
    ) -> Result<PurgeReport, EngineError> {
        let page_size = page_size.max(1);
        if !actor.is_system() && !dry_run {
            return Err(EngineError::Forbidden("destruction"));
        }
        self.require(actor, Capability::WorkRequests)?;
        let now = self.now();
        let rules = RetentionRules::new(self.policy.policy());
        // What a law keeps of those who withdrew, until its own period ends.
        let statutory = RetentionRules::statutory(self.policy.policy());
        let scope = PurgeScope {
            collected_before: rules.collected_before_to_expire(now),
            kept_while_related: rules.kept_while_related(),
            known: rules.categories(),
        };
        let mut report = PurgeReport {
            dry_run,
            ..Default::default()
        };
        let mut after: Option<(SubjectId, String)> = None;
        let mut carry: Vec<PurgeCandidate> = Vec::new();
        let mut due: Vec<Due> = Vec::new();
        loop {
            let page = self
                .store
                .purge_candidates(
                    after.as_ref().map(|(s, f)| (*s, f.as_str())),
                    &scope,
                    page_size,
                )
                .await?;
            let full = page.len() as i64 == page_size;
            report.scanned_fields += page.len() as u64;
            progress(report.scanned_fields);
            after = page.last().map(|c| (c.subject_id, c.field.clone()));
            let mut rows = std::mem::take(&mut carry);
            rows.extend(page);
            if full {
                // The last subject may continue on the next page.
                if let Some(last) = rows.last().map(|c| c.subject_id) {
                    let split = rows.partition_point(|c| c.subject_id != last);
                    if split > 0 {
                        carry = rows.split_off(split);
                    } else {
                        carry = std::mem::take(&mut rows);
                    }
                }
            }
            for group in rows.chunk_by(|a, b| a.subject_id == b.subject_id) {
                let r = if group[0].withdrawn {
                    &statutory
                } else {
                    &rules
                };
                if let Some(d) = self.due_of(group, r, now, &mut report) {
                    due.push(d);
                }
            }
            if due.len() >= BATCH || !full {
                self.destroy_due(std::mem::take(&mut due), dry_run, &mut report)
                    .await?;
            }
            if !full {
                break;
            }
        }
        if dry_run {
            report.previous_values_destroyed = self.store.history_due(now).await?.len() as u64;
            return Ok(report);
        }
        // The previous values due and their audit records: one unit of work.
        let mut w = self.write().await?;
        let history = w.purge_history(now).await?;
        report.previous_values_destroyed = history.len() as u64;
        let system = Actor::system(crate::SystemJob::Purge);
        for group in history.chunk_by(|a, b| a.subject_id == b.subject_id) {
            let fields: Vec<&str> = group.iter().map(|h| h.field.as_str()).collect();
            w.audit(
                self.audit_record(
                    Record::new(&system, "retention.previous_values")
                        .subject(group[0].subject_id)
                        .categories(&field_categories(fields.iter().copied()))
                        .details(json!({"fields": fields, "ground": Ground::Retention.text()})),
                )?,
            );
        }
        w.commit().await?;
        if !history.is_empty() {
            self.expunge().await?;
        }
        Ok(report)
    }

    /// What is due of one subject's scanned fields (all its fields when the
    /// relationship ended).
    fn due_of(
        &self,
        group: &[PurgeCandidate],
        rules: &RetentionRules,
        now: DateTime<Utc>,
        report: &mut PurgeReport,
    ) -> Option<Due> {
        let first = group.first()?;
        let ended = first.relationship_ended_at;
        let mut fields = Vec::new();
        let mut reason = String::new();
        for c in group {
            let category = c.field.split_once('.').map(|(c, _)| c).unwrap_or(&c.field);
            let r = rules.field(category, c.collected_at, ended);
            if r.until.expired(now) {
                if reason.is_empty() {
                    reason = describe(r.until, r.kept_for.as_deref());
                }
                fields.push(c.field.clone());
            }
        }
        if fields.is_empty() {
            return None;
        }
        let whole = ended.is_some() && fields.len() == group.len();
        if first.held {
            report.held_subjects += 1;
            if report.dry_run {
                report.items.push(PurgeItem {
                    subject_id: first.subject_id,
                    whole_subject: whole,
                    fields,
                    reason: format!("{reason}; kept: a legal hold is open"),
                    certificate_id: None,
                });
            }
            return None;
        }
        let reason = if whole {
            format!(
                "the relationship ended {}; every field's retention is over",
                ended
                    .map(|e| e.format("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            )
        } else {
            reason
        };
        Some(Due {
            subject: first.subject_id,
            whole,
            scanned: group
                .iter()
                .map(|c| (c.field.clone(), c.collected_at))
                .collect(),
            fields,
            reason,
        })
    }

    async fn destroy_due(
        &self,
        due: Vec<Due>,
        dry_run: bool,
        report: &mut PurgeReport,
    ) -> Result<(), EngineError> {
        if dry_run {
            for d in due {
                report.count(d, None);
            }
            return Ok(());
        }
        // Through the one destruction path, which re-checks blocks, holds
        // and pending jobs in the transaction that deletes.
        let orders = due
            .iter()
            .map(|d| {
                let what = if d.whole {
                    What::Everything
                } else {
                    What::Fields(d.fields.clone())
                };
                let mut o = Order::new(d.subject, Ground::Retention, what);
                o.fields = Some(d.scanned.clone());
                o
            })
            .collect();
        let outcomes = self.destroy(orders).await?;
        for (d, o) in due.into_iter().zip(outcomes) {
            match o.outcome {
                DestroyOutcome::Destroyed => {}
                DestroyOutcome::Held => {
                    report.held_subjects += 1;
                    continue;
                }
                _ => continue,
            }
            report.count(d, o.certificate_id);
        }
        Ok(())
    }
}
