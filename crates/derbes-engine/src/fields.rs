//! Writing a subject's fields after registration: rectification (4.1, 7.11 —
//! the person's details corrected, the previous values kept sealed) and the
//! collection of technical data for a purpose (device, location, network,
//! cookies — decided by the decision point as the operation `collection`).

use std::collections::BTreeMap;

use chrono::Months;
use derbes_core::{almaty_date, validate_fields, FieldInput, Problem, SubjectId};
use derbes_policy::{Capability, Operation};
use derbes_store::{FieldRow, Rectification};
use serde::Serialize;
use serde_json::Value;

use crate::audit::Record;
use crate::decide::DecisionRequest;
use crate::{audit, field_categories, purposes_for, Actor, Engine, EngineError};

/// Technical data collected for a purpose.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Collected {
    pub fields: Vec<String>,
    /// The audit record of the decision that allowed it.
    pub audit_id: i64,
}

impl Engine {
    /// Refuse a change to a subject who is not active (4.2: blocked data
    /// is frozen), audited.
    async fn refuse_unless_active(
        &self,
        actor: &Actor,
        subject: SubjectId,
        action: &str,
    ) -> Result<(), EngineError> {
        let facts = self.subject_facts(subject).await?;
        if facts.status == derbes_core::SubjectStatus::Active {
            return Ok(());
        }
        let d = audit::refusal(
            "subject_not_active",
            "blocked, withdrawn or destroyed data may not be changed (4.2)",
        );
        let audit_id = self
            .audit(Record::new(actor, action).subject(subject).decision(&d))
            .await?;
        Err(EngineError::Denied {
            reasons: d.reasons,
            audit_id,
        })
    }

    /// The fields in `values` that may be written here, checked; technical
    /// data only when `technical`, and never a category whose own consent
    /// the subject has not given (3.5, 7.4).
    pub(crate) async fn checked_fields(
        &self,
        subject: SubjectId,
        values: &BTreeMap<String, Value>,
        technical: bool,
        problems: &mut Vec<Problem>,
    ) -> Result<Vec<FieldInput>, EngineError> {
        let p = &self.policy.policy();
        if values.is_empty() {
            problems.push(Problem::new(
                "fields",
                "missing_field",
                "name at least one field",
            ));
        }
        let facts = self.subject_facts(subject).await?;
        let unconsented = match self.compiled.as_ref() {
            Ok(c) => {
                let all: Vec<String> = p.categories.iter().map(|c| c.id.clone()).collect();
                c.unconsented_categories(&all, &facts.consents)
            }
            Err(_) => Vec::new(),
        };
        let mut wanted = BTreeMap::new();
        for (name, v) in values {
            let category = name.split_once('.').map_or(name.as_str(), |(c, _)| c);
            match p.category(category) {
                Some(c) if c.technical != technical => problems.push(Problem::new(
                    name,
                    if technical {
                        "not_technical"
                    } else {
                        "collected_for_a_purpose"
                    },
                    if technical {
                        "personal details are given at registration and corrected by rectification"
                    } else {
                        "technical data is collected for a purpose: POST /subjects/{id}/collections"
                    },
                )),
                Some(c) if !c.personal => problems.push(Problem::new(
                    name,
                    "field_not_allowed",
                    "an organisation's details are not a subject's",
                )),
                Some(c) if unconsented.contains(&c.id) => problems.push(Problem::new(
                    name,
                    "consent_required",
                    "this category needs a consent of its own the subject has not given",
                )),
                _ => {
                    wanted.insert(name.clone(), v.clone());
                }
            }
        }
        let inputs = validate_fields(p, &wanted, &|_| true, problems);
        let today = almaty_date(self.now());
        let person = p.lookup_field(derbes_policy::FieldType::Iin);
        for f in &inputs {
            if Some(&f.field) == person.as_ref() {
                if let Ok(iin) = derbes_kz::Iin::parse(&f.value) {
                    problems.extend(derbes_core::under_age(p, &iin, today));
                }
            }
        }
        Ok(inputs)
    }

    /// Seal and store new values with `record`, in one unit of work; the
    /// previous ones go to the history with `reason`, kept for the longest
    /// retention of the purposes using them. The names of the fields written.
    async fn write_fields(
        &self,
        subject: SubjectId,
        inputs: &[FieldInput],
        source: &str,
        reason: &str,
        record: Option<Record<'_>>,
        rectified: bool,
    ) -> Result<Vec<String>, EngineError> {
        let p = &self.policy.policy();
        let key = self.data_key(subject).await?;
        let sid = subject.to_string();
        let now = self.now();
        let current = self.store.subject_fields(subject).await?;
        let keys = self.keyring();
        let mut changes = Vec::new();
        let mut index = Vec::new();
        for f in inputs {
            let name = f.field.to_string();
            let old = current.iter().find(|r| r.field == name);
            let keep_months = p
                .purposes
                .iter()
                .filter(|pu| pu.allows_category(&f.field.category))
                .map(|pu| pu.retention.months)
                .max()
                .unwrap_or(0);
            let keep_until = now
                .checked_add_months(Months::new(keep_months))
                .unwrap_or(now);
            changes.push(Rectification {
                new: FieldRow {
                    sealed: key.seal(&sid, &name, f.value.as_bytes())?,
                    field: name.clone(),
                    source: source.to_string(),
                    collected_at: now,
                    purposes: purposes_for(&self.policy, &f.field.category).join(","),
                    version: old.map(|o| o.version + 1).unwrap_or(1),
                },
                expected_version: old.map(|o| o.version),
                sealed_reason: key.seal(&sid, &format!("{name}#reason"), reason.as_bytes())?,
                keep_until,
            });
            if let Some(kind) = p.index_kind(&name) {
                index.push((kind.to_string(), keys.blind_index(kind, &f.value).to_vec()));
            }
        }
        let mut w = self.write().await?;
        w.rectify(subject, &changes, &index, now)
            .await
            .map_err(|e| self.duplicate(e))?;
        if rectified {
            // The systems that hold these categories correct their copies:
            // told the field names, never the values.
            let fields = changes.iter().map(|c| c.new.field.clone()).collect();
            let about = crate::outbox::About {
                subject: Some(subject),
                request_id: None,
                gates: false,
                due_at: Some(now),
            };
            self.follow_in(&mut w, &about, crate::outbox::Change::Rectified { fields })
                .await?;
        }
        self.commit(w, record).await?;
        Ok(changes.into_iter().map(|c| c.new.field).collect())
    }

    /// Rectification (4.1, 7.11): new values with their source and reason; the
    /// previous values are kept sealed under the same key for as long as the
    /// longest retention of the purposes that use them. Technical data is
    /// not corrected here but collected for a purpose ([`Engine::collect`]).
    pub async fn rectify(
        &self,
        actor: &Actor,
        subject: SubjectId,
        values: &BTreeMap<String, Value>,
        source: Option<&str>,
        reason: &str,
    ) -> Result<Vec<String>, EngineError> {
        self.require(actor, Capability::Rectify)?;
        self.refuse_unless_active(actor, subject, "rectify").await?;
        let mut problems = Vec::new();
        let reason = match derbes_core::free_text("reason", reason, 1000) {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => {
                problems.push(Problem::new(
                    "reason",
                    "invalid_reason",
                    "a reason of 1 to 1000 characters is required",
                ));
                String::new()
            }
            Err(p) => {
                problems.push(p);
                String::new()
            }
        };
        let inputs = self
            .checked_fields(subject, values, false, &mut problems)
            .await?;
        let source = derbes_core::source_id(self.policy.policy(), source, &mut problems);
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        let updated: Vec<String> = inputs.iter().map(|f| f.field.to_string()).collect();
        let categories = field_categories(updated.iter().map(String::as_str));
        let record = Record::new(actor, "rectify")
            .subject(subject)
            .categories(&categories)
            .details(serde_json::json!({"fields": updated, "source": source}));
        self.write_fields(subject, &inputs, &source, &reason, Some(record), true)
            .await
    }

    /// Collect technical data (device, location, network, cookies, ...) for
    /// a purpose: the decision point is asked for the operation
    /// `collection` — purpose, need-to-know, consent (cookies need their
    /// own), blocking — and the answer audited before anything is stored.
    pub async fn collect(
        &self,
        actor: &Actor,
        subject: SubjectId,
        purpose: &str,
        values: &BTreeMap<String, Value>,
        source: Option<&str>,
    ) -> Result<Collected, EngineError> {
        // Writing a subject's data after registration; what, for whom and
        // why is the decision point's to say.
        self.require(actor, Capability::Rectify)?;
        let mut problems = Vec::new();
        let inputs = self
            .checked_fields(subject, values, true, &mut problems)
            .await?;
        let source = derbes_core::source_id(self.policy.policy(), source, &mut problems);
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        let fields: Vec<String> = inputs.iter().map(|f| f.field.to_string()).collect();
        let question = DecisionRequest {
            subject_id: subject,
            operation: Operation::Collection,
            purpose: purpose.to_string(),
            categories: field_categories(fields.iter().map(String::as_str)),
            recipient: None,
            channel: None,
            legal_basis: None,
            reference: None,
        };
        let facts = self.subject_facts(subject).await?;
        let permit = self
            .decide_and_audit(
                actor,
                &question,
                &facts,
                "collect",
                serde_json::json!({"operation": "collection", "fields": fields, "source": source}),
            )
            .await?;
        let audit_id = permit.audit_id();
        let fields = self
            .write_fields(
                subject,
                &inputs,
                &source,
                &format!("collected for {purpose}"),
                // The decision's audit record is durable already (the permit).
                None,
                false,
            )
            .await?;
        Ok(Collected { fields, audit_id })
    }
}
