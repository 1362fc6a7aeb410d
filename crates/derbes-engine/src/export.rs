//! Answers to `access` and `information` requests (7.11, the Law): what is
//! held on a subject, why, from where, who received it, how long it is kept
//! — and, for `access`, a copy of every value. The answer goes through the
//! decision point (the policy's `rights` purpose, operation `extraction`)
//! and is audited before anything is opened.

use chrono::{DateTime, Utc};
use derbes_core::{FieldRetention, RetentionRules, SubjectId};
use derbes_policy::{Capability, Operation, PurposeKind, Right, Text};
use derbes_store::FieldRow;
use serde::Serialize;
use serde_json::Value;

use crate::audit::Record;
use crate::decide::{disclosure_view, DecisionRequest as Question};
use crate::jobs::obligation_view;
use crate::{
    field_categories, ConsentView, DisclosureView, Engine, EngineError, FieldView, ObligationView,
    RequestView,
};

/// The identifier of the export's JSON layout; it changes only with the layout.
pub const EXPORT_SCHEMA: &str = "derbes.subject-export/1";

/// Everything derbes holds on a subject, as answered to a request.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectExport {
    /// Always `derbes.subject-export/1` for this layout.
    pub schema: String,
    /// `access` (with values) or `information` (without).
    pub kind: String,
    pub generated_at: DateTime<Utc>,
    /// The audit record of this answer.
    pub audit_id: i64,
    pub request: RequestView,
    pub operator: ExportOperator,
    pub policy: ExportPolicy,
    pub subject: ExportSubject,
    /// The administrative fee (7.11 allows one; the Law makes access free by default).
    pub fee: ExportFee,
    /// Current values (`value` is absent in an `information` answer).
    pub fields: Vec<ExportField>,
    /// Values replaced by rectification, kept until `keep_until`.
    pub previous_values: Vec<ExportPrevious>,
    /// The categories held, with their names.
    pub categories: Vec<ExportNamed>,
    /// The purposes that may use what is held, with their retention.
    pub purposes: Vec<ExportPurpose>,
    /// Where the data came from (5.1).
    pub sources: Vec<ExportNamed>,
    /// Who may receive data for those purposes (section 6).
    pub recipients: Vec<ExportRecipient>,
    /// Who did receive it.
    pub disclosures: Vec<DisclosureView>,
    pub consents: Vec<ConsentView>,
    /// Objections to communications: channel and kind.
    pub objections: Vec<ExportObjection>,
    pub obligations: Vec<ObligationView>,
    pub requests: Vec<RequestView>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportOperator {
    pub name: Text,
    pub bin: String,
    pub address: Text,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportPolicy {
    pub version: String,
    pub sha256: String,
    pub published: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportSubject {
    pub subject_id: String,
    /// `active`, `blocked`, `withdrawn`, …
    pub status: String,
    pub registered_at: DateTime<Utc>,
    pub registered_under_policy: String,
    pub relationship_ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportFee {
    pub amount_kzt: u64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportField {
    pub field: String,
    pub category: String,
    pub name: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    pub source: String,
    pub collected_at: DateTime<Utc>,
    pub purposes: Vec<String>,
    pub retention: FieldRetention,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportPrevious {
    pub field: String,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Why it was replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub source: String,
    pub collected_at: DateTime<Utc>,
    pub replaced_at: DateTime<Utc>,
    pub keep_until: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportNamed {
    pub id: String,
    pub name: Text,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportPurpose {
    pub id: String,
    pub clause: String,
    pub name: Text,
    /// The held categories this purpose may use.
    pub categories: Vec<String>,
    pub retention_months: u32,
    /// `collection` or `relationship_end`.
    pub retention_after: String,
    pub retention_basis: Text,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportRecipient {
    pub id: String,
    pub name: Text,
    pub kind: String,
    pub third_party: bool,
    pub cross_border: bool,
    pub purposes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportObjection {
    pub channel: String,
    pub kind: String,
    pub at: DateTime<Utc>,
}

fn text(s: &str) -> Text {
    Text {
        ru: s.to_string(),
        en: s.to_string(),
        kk: None,
    }
}

impl Engine {
    /// The answer to an `access` or `information` request whose requester
    /// was verified.
    pub async fn export(
        &self,
        actor: &crate::Actor,
        request_id: &str,
    ) -> Result<SubjectExport, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let (row, subject) = self
            .worked_request(
                request_id,
                &[Right::Access, Right::Information],
                "not_an_access_request",
                true,
            )
            .await?;
        let with_values = row.kind == Right::Access.as_str();
        let sid = subject.to_string();
        let facts = self.subject_facts(subject).await?;
        let p = &self.policy.policy();
        let purpose = p
            .purposes
            .iter()
            .find(|pu| pu.kind == PurposeKind::Rights)
            .ok_or_else(|| {
                EngineError::Internal("the policy has no purpose for answering requests".into())
            })?;
        let (fields, history) = tokio::try_join!(
            self.store.subject_fields(subject),
            self.store.subject_history(subject)
        )?;
        let mut categories = field_categories(fields.iter().map(|f| f.field.as_str()));
        for c in field_categories(history.iter().map(|h| h.field.as_str())) {
            if !categories.contains(&c) {
                categories.push(c);
            }
        }
        // Organisations' data is not personal data and not the subject's to copy.
        categories.retain(|c| p.category(c).is_some_and(|c| c.personal));
        let question = Question {
            subject_id: subject,
            operation: Operation::Extraction,
            purpose: purpose.id.clone(),
            categories,
            recipient: None,
            channel: None,
            legal_basis: None,
            reference: Some(request_id.to_string()),
        };
        let details = serde_json::json!({"request_id": request_id, "kind": row.kind, "operation": "extraction"});
        // Nothing held: nothing to decide or open, and the answer says so.
        let (permit, audit_id) = if question.categories.is_empty() {
            let id = self
                .audit(
                    Record::new(actor, "export")
                        .subject(subject)
                        .purpose(&purpose.id)
                        .details(details),
                )
                .await?;
            (None, id)
        } else {
            let permit = self
                .decide_and_audit(actor, &question, &facts, "export", details)
                .await?;
            let id = permit.audit_id();
            (Some(permit), id)
        };
        let allowed = |field: &str| {
            field
                .split_once('.')
                .is_some_and(|(c, _)| question.categories.iter().any(|x| x == c))
        };
        let key = match (&permit, with_values) {
            (Some(permit), true) => Some((permit, self.data_key(subject).await?)),
            _ => None,
        };
        let rules = RetentionRules::new(p);
        let ended = facts.relationship_ended_at;
        let mut out_fields = Vec::with_capacity(fields.len());
        for f in fields.iter().filter(|f| allowed(&f.field)) {
            let value = match &key {
                Some((permit, k)) => Some(self.view(permit, k, &sid, f)?.value),
                None => None,
            };
            let (category, _) = f.field.split_once('.').unwrap_or((&f.field, ""));
            out_fields.push(ExportField {
                name: field_name(p, &f.field),
                category: category.to_string(),
                value,
                source: f.source.clone(),
                collected_at: f.collected_at,
                purposes: split(&f.purposes),
                retention: rules.field(category, f.collected_at, ended),
                field: f.field.clone(),
            });
        }
        let mut previous = Vec::with_capacity(history.len());
        for h in history.iter().filter(|h| allowed(&h.field)) {
            let (value, reason) = match &key {
                Some((permit, k)) => {
                    let old = FieldRow {
                        field: h.field.clone(),
                        sealed: h.sealed.clone(),
                        source: h.source.clone(),
                        collected_at: h.collected_at,
                        purposes: String::new(),
                        version: h.version,
                    };
                    let why = FieldRow {
                        field: format!("{}#reason", h.field),
                        sealed: h.sealed_reason.clone(),
                        ..old.clone()
                    };
                    let FieldView { value, .. } = self.view(permit, k, &sid, &old)?;
                    let reason = self.view(permit, k, &sid, &why)?.value;
                    (Some(value), reason.as_str().map(String::from))
                }
                None => (None, None),
            };
            previous.push(ExportPrevious {
                field: h.field.clone(),
                version: h.version,
                value,
                reason,
                source: h.source.clone(),
                collected_at: h.collected_at,
                replaced_at: h.replaced_at,
                keep_until: h.keep_until,
            });
        }
        self.assemble(
            actor,
            subject,
            &row,
            with_values,
            audit_id,
            &question.categories,
            out_fields,
            previous,
        )
        .await
    }

    /// The parts of an export that hold no sealed values.
    #[allow(clippy::too_many_arguments)]
    async fn assemble(
        &self,
        actor: &crate::Actor,
        subject: SubjectId,
        row: &derbes_store::RequestRow,
        with_values: bool,
        audit_id: i64,
        held: &[String],
        fields: Vec<ExportField>,
        previous_values: Vec<ExportPrevious>,
    ) -> Result<SubjectExport, EngineError> {
        let p = &self.policy.policy();
        let sid = subject.to_string();
        // Independent reads, side by side.
        let st = &self.store;
        let filter = derbes_store::RequestFilter {
            subject_id: Some(subject),
            limit: 1000,
            ..Default::default()
        };
        let (s, consent_rows, request_rows, optout_rows, disclosure_rows, obligation_rows) = tokio::try_join!(
            st.subject(subject),
            st.consents(subject),
            st.requests(&filter),
            st.optouts(subject),
            st.disclosures(subject),
            st.obligations(subject),
        )?;
        let s = s.ok_or(EngineError::NotFound("subject"))?;
        // An access answer carries the free text held on the subject too
        // (their requests' words, disclosures' bases); information does not.
        let notes = if with_values {
            let mut owners: Vec<String> = request_rows
                .iter()
                .map(|r| format!("request:{}", r.request_id))
                .collect();
            owners.extend(crate::decide::disclosure_owners(&disclosure_rows));
            owners.extend(crate::jobs::obligation_owners(&obligation_rows));
            self.open_notes(actor, Some(subject), &owners).await?
        } else {
            crate::notes::Opened::new()
        };
        let purposes: Vec<ExportPurpose> = p
            .purposes
            .iter()
            .filter(|pu| pu.kind != PurposeKind::Rights)
            .filter_map(|pu| {
                let cats: Vec<String> = held
                    .iter()
                    .filter(|c| pu.allows_category(c))
                    .cloned()
                    .collect();
                (!cats.is_empty()).then(|| ExportPurpose {
                    id: pu.id.clone(),
                    clause: pu.clause.clone(),
                    name: pu.name.clone(),
                    categories: cats,
                    retention_months: pu.retention.months,
                    retention_after: pu.retention.after.as_str().to_string(),
                    retention_basis: pu.retention.basis.clone(),
                })
            })
            .collect();
        let mut source_ids: Vec<&str> = fields.iter().map(|f| f.source.as_str()).collect();
        source_ids.extend(previous_values.iter().map(|h| h.source.as_str()));
        source_ids.sort_unstable();
        source_ids.dedup();
        let sources = source_ids
            .into_iter()
            .map(|id| ExportNamed {
                id: id.to_string(),
                name: p
                    .source(id)
                    .map(|s| s.name.clone())
                    .unwrap_or_else(|| text(id)),
            })
            .collect();
        let recipients = p
            .recipients
            .iter()
            .filter(|r| {
                r.purposes
                    .iter()
                    .any(|x| purposes.iter().any(|u| &u.id == x))
            })
            .map(|r| ExportRecipient {
                id: r.id.clone(),
                name: r.name.clone(),
                kind: r.kind.as_str().to_string(),
                third_party: r.third_party,
                cross_border: r.cross_border,
                purposes: r.purposes.clone(),
            })
            .collect();
        let categories = held
            .iter()
            .map(|c| ExportNamed {
                id: c.clone(),
                name: p
                    .category(c)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| text(c)),
            })
            .collect();
        let now = self.now();
        let consents = crate::records_of(&consent_rows)?
            .into_iter()
            .map(|record| ConsentView {
                state: record.state(now),
                record,
            })
            .collect();
        let mut requests = Vec::with_capacity(request_rows.len());
        for r in request_rows {
            let mut v = self.view_request(r, Vec::new())?;
            let owner = format!("request:{}", v.request_id);
            v.text = notes.get(&(owner.clone(), "text".into())).cloned();
            v.state_reason = notes
                .get(&(owner, format!("reason:{}", v.state.as_str())))
                .cloned();
            requests.push(v);
        }
        let objections = optout_rows
            .into_iter()
            .map(|o| ExportObjection {
                channel: o.channel,
                kind: o.kind,
                at: o.at,
            })
            .collect();
        Ok(SubjectExport {
            schema: EXPORT_SCHEMA.into(),
            kind: if with_values { "access" } else { "information" }.into(),
            generated_at: now,
            audit_id,
            request: self.view_request(row.clone(), Vec::new())?,
            operator: ExportOperator {
                name: p.operator.name.clone(),
                bin: p.operator.bin.to_string(),
                address: p.operator.address.clone(),
            },
            policy: ExportPolicy {
                version: p.version.clone(),
                sha256: self.policy.sha256().to_string(),
                published: p.published.to_string(),
            },
            subject: ExportSubject {
                subject_id: sid.clone(),
                status: s.status.as_str().to_string(),
                registered_at: s.created_at,
                registered_under_policy: s.policy_version,
                relationship_ended_at: s.relationship_ended_at,
            },
            fee: ExportFee {
                amount_kzt: self.access_fee_kzt,
            },
            fields,
            previous_values,
            categories,
            purposes,
            sources,
            recipients,
            disclosures: disclosure_rows
                .into_iter()
                .map(|d| disclosure_view(d, &notes))
                .collect(),
            consents,
            objections,
            obligations: obligation_rows
                .into_iter()
                .map(|o| obligation_view(o, &notes))
                .collect(),
            requests,
        })
    }
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn field_name(p: &derbes_policy::Policy, field: &str) -> Text {
    field
        .split_once('.')
        .and_then(|(c, f)| p.category(c).and_then(|c| c.field(f)))
        .map(|f| f.name.clone())
        .unwrap_or_else(|| text(field))
}
