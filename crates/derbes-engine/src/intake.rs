//! Receiving requests: the subject found, the kind's details checked, the
//! due date from the policy's deadline in Kazakh working days, the free
//! text sealed; what intake itself does (blocking from the moment of the
//! request, 4.2; the app's in-app requests verified by its sign-in).

use chrono::{DateTime, Utc};
use derbes_core::{SubjectId, SubjectStatus};
use derbes_policy::{Capability, Right};
use derbes_store::{NewAuditRecord, NoteRow, RequestRow, Write};

use crate::audit::Record;
use crate::requests::{store_details, Internal, MinorBar};
use crate::{
    Actor, Engine, EngineError, LookupKind, NewRequest, RequestChannel, RequestDetails,
    RequestState, RequestView, Requester,
};

impl Engine {
    /// The details a request of this kind may carry, checked.
    pub(crate) fn checked_details(
        &self,
        kind: Right,
        d: &RequestDetails,
    ) -> Result<RequestDetails, EngineError> {
        let mut problems = Vec::new();
        let mut unexpected = |field: &str, present: bool| {
            if present {
                problems.push(derbes_core::Problem::new(
                    format!("details.{field}"),
                    "unexpected_detail",
                    format!("a `{kind}` request does not take `{field}`"),
                ));
            }
        };
        unexpected("channels", kind != Right::Objection && d.channels.is_some());
        unexpected("kind", kind != Right::Objection && d.kind.is_some());
        unexpected("consent", kind != Right::Withdrawal && d.consent.is_some());
        unexpected("fields", kind != Right::Rectification && d.fields.is_some());
        if let Some(c) = d.consent {
            let own = self
                .policy
                .policy()
                .categories
                .iter()
                .any(|cat| cat.requires_consent == Some(c));
            if c != derbes_policy::ConsentKind::Policy && !own {
                problems.push(derbes_core::Problem::new(
                    "details.consent",
                    "invalid_consent",
                    "`policy`, or a consent some categories need (`entrepreneur`, `cookies`); marketing is stopped by an objection",
                ));
            }
        }
        for f in d.fields.iter().flatten() {
            let known = f
                .split_once('.')
                .and_then(|(c, n)| self.policy.policy().category(c).and_then(|c| c.field(n)))
                .is_some();
            if !known {
                problems.push(derbes_core::Problem::new(
                    "details.fields",
                    "unknown_field",
                    "not a `category.field` of the policy",
                ));
            }
        }
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        Ok(d.clone())
    }

    /// A rectification's corrected values, checked as a correction of the
    /// subject's fields would be (nothing is written yet) and named in its
    /// details' `fields`; as the JSON to seal. Other kinds take none.
    async fn proposed_values(
        &self,
        subject: Option<SubjectId>,
        kind: Right,
        values: Option<&std::collections::BTreeMap<String, serde_json::Value>>,
        details: &mut RequestDetails,
    ) -> Result<Option<String>, EngineError> {
        let Some(values) = values else {
            return Ok(None);
        };
        let unexpected =
            |reason: &str| EngineError::invalid("values", "unexpected_field", reason.to_string());
        if kind != Right::Rectification {
            return Err(unexpected(
                "only a rectification request gives corrected values",
            ));
        }
        let Some(s) = subject else {
            return Err(unexpected("corrected values are of a subject derbes holds"));
        };
        let mut problems = Vec::new();
        self.checked_fields(s, values, false, &mut problems).await?;
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        let fields = details.fields.get_or_insert_with(Vec::new);
        for name in values.keys() {
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
        Ok(Some(serde_json::to_string(values)?))
    }

    /// Receive a request: find the subject, compute the due date from the
    /// policy's deadline for the kind, record it (audited). A blocking
    /// request blocks at once (4.2: from the moment of the request); a
    /// request the app files for its signed-in user (`in_app_requests`,
    /// channel `in_app`, requester `subject`) is verified by that sign-in
    /// and worked at once.
    pub async fn create_request(
        &self,
        actor: &Actor,
        req: &NewRequest,
    ) -> Result<RequestView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let now = self.now();
        let received = req
            .received_at
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        if received > now + chrono::Duration::minutes(5) {
            return Err(EngineError::invalid(
                "received_at",
                "in_future",
                "a request cannot be received in the future",
            ));
        }
        if matches!(req.channel, RequestChannel::Operator) || req.requester == Requester::Operator {
            return Err(EngineError::invalid(
                "requester",
                "operator_reports",
                "the operator's own reports have their own endpoints (a minor: POST /subjects/{id}/minor)",
            ));
        }
        let mut details = self.checked_details(req.kind, &req.details)?;
        let text = req
            .text
            .as_deref()
            .map(|t| derbes_core::free_text("text", t, 4000))
            .transpose()
            .map_err(|p| EngineError::Invalid(vec![p]))?;
        let subject = match (&req.subject_id, &req.identification) {
            (Some(s), None) => {
                if self.store.subject(*s).await?.is_none() {
                    return Err(EngineError::NotFound("subject"));
                }
                Some(*s)
            }
            (None, Some(id)) => {
                let found = match (&id.iin, &id.phone) {
                    (Some(iin), None) => self.lookup(actor, LookupKind::Iin, iin).await,
                    (None, Some(phone)) => self.lookup(actor, LookupKind::Phone, phone).await,
                    _ => {
                        return Err(EngineError::invalid(
                            "identification",
                            "invalid_identification",
                            "give exactly one of iin or phone",
                        ))
                    }
                };
                // A complaint or a request about someone unknown is still received.
                match found {
                    Ok(s) => s,
                    Err(EngineError::Forbidden(_)) => None,
                    Err(e) => return Err(e),
                }
            }
            (None, None) if req.kind == Right::Complaint => None,
            _ => {
                return Err(EngineError::invalid(
                    "subject_id",
                    "invalid_subject",
                    "give a subject_id or an identification, not both",
                ))
            }
        };
        let representative = match (req.requester, &req.representative_id) {
            (Requester::LegalRepresentative, Some(r)) => {
                let s = subject.ok_or_else(|| {
                    EngineError::invalid(
                        "subject_id",
                        "invalid_subject",
                        "a representative acts for a subject derbes holds",
                    )
                })?;
                Some(self.valid_representative(s, r, received).await?)
            }
            (Requester::LegalRepresentative, None) => return Err(EngineError::invalid(
                "representative_id",
                "missing_field",
                "a legal representative is named by the representative on record for the subject",
            )),
            (_, Some(_)) => {
                return Err(EngineError::invalid(
                    "representative_id",
                    "unexpected_field",
                    "only a legal representative's request names one",
                ))
            }
            _ => None,
        };
        let values = self
            .proposed_values(subject, req.kind, req.values.as_ref(), &mut details)
            .await?;
        let in_app = req.channel == RequestChannel::InApp
            && req.requester == Requester::Subject
            && self.require(actor, Capability::InAppRequests).is_ok();
        let mut receipt = self
            .receipt(
                actor,
                subject,
                req.kind,
                &details,
                Internal::default(),
                (req.channel, req.requester),
                received,
                text.as_deref(),
                representative.as_deref(),
            )
            .await?;
        let request_id = receipt.row.request_id.clone();
        if let (Some(s), Some(values)) = (subject, values) {
            receipt.notes.extend(
                self.seal_notes(
                    Some(s),
                    &[(format!("request:{request_id}"), "values", Some(&values))],
                )
                .await?,
            );
        }
        // A blocking request blocks as it is received: one unit of work.
        let block = match (req.kind, subject) {
            (Right::Blocking, Some(s)) => Some((
                s,
                self.seal_notes(
                    Some(s),
                    &[(
                        format!("request:{request_id}"),
                        "said:received",
                        Some(&serde_json::to_string(&crate::Said::BlockedAtIntake)?),
                    )],
                )
                .await?,
            )),
            _ => None,
        };
        let mut w = self.write().await?;
        if let Some((s, notes)) = &block {
            self.block_at_intake_in(&mut w, &mut receipt, *s, notes)
                .await?;
        }
        receipt.write(&mut w).await?;
        w.commit().await?;
        if let Some((s, _)) = block {
            self.facts.forget(&s);
        }
        if in_app {
            self.verify(actor, &request_id, "", Some(&crate::Said::VerifiedInApp))
                .await?;
        }
        self.request(actor, &request_id).await
    }

    /// A received request ready to be recorded: its row, its free text
    /// sealed and its audit record; [`Receipt::write`] puts it in a unit of
    /// work.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn receipt(
        &self,
        actor: &Actor,
        subject: Option<SubjectId>,
        kind: Right,
        details: &RequestDetails,
        internal: Internal,
        (channel, requester): (RequestChannel, Requester),
        received: DateTime<Utc>,
        text: Option<&str>,
        representative: Option<&str>,
    ) -> Result<Receipt, EngineError> {
        let now = self.now();
        let deadline = self.deadline(received, kind)?;
        let row = RequestRow {
            request_id: uuid::Uuid::now_v7().to_string(),
            subject_id: subject,
            kind: kind.as_str().to_string(),
            channel: channel.as_str().to_string(),
            requester: requester.as_str().to_string(),
            received_at: received,
            due_at: deadline.at,
            state: RequestState::Received,
            state_reason: None,
            details: store_details(details, &internal)?,
            updated_at: now,
        };
        let notes = self
            .seal_notes(
                subject,
                &[(format!("request:{}", row.request_id), "text", text)],
            )
            .await?;
        let record = self.audit_record(Record::new(actor, "request.received").subject(subject).details(serde_json::json!({"request_id": row.request_id, "kind": row.kind, "due_at": crate::micros(row.due_at), "provisional_calendar": deadline.provisional,
                "representative_id": representative, "minor_report": internal.minor.is_some(),
                "routed_to": if kind == Right::Complaint { self.complaint_roles() } else { Vec::new() }})))?;
        Ok(Receipt {
            row,
            details: details.clone(),
            internal,
            filed_by: actor.id().to_string(),
            representative: representative.map(String::from),
            notes,
            record,
        })
    }

    /// A minor's report (7.7): a destruction request the operator files,
    /// ready to be recorded.
    pub(crate) async fn minor_report_receipt(
        &self,
        actor: &Actor,
        subject: SubjectId,
        barred_until: i64,
    ) -> Result<Receipt, EngineError> {
        let internal = Internal {
            minor: Some(MinorBar { barred_until }),
            ..Internal::default()
        };
        self.receipt(
            actor,
            Some(subject),
            Right::Destruction,
            &RequestDetails::default(),
            internal,
            (RequestChannel::Operator, Requester::Operator),
            self.now(),
            None,
            None,
        )
        .await
    }

    /// 4.2: data is blocked from the moment a blocking request is received —
    /// in the unit of work that records the request, before it is written.
    pub(crate) async fn block_at_intake_in(
        &self,
        w: &mut Write,
        receipt: &mut Receipt,
        subject: SubjectId,
        notes: &[NoteRow],
    ) -> Result<(), EngineError> {
        let changed = w
            .set_subject_status(
                subject,
                SubjectStatus::Active,
                SubjectStatus::Blocked,
                self.now(),
                false,
            )
            .await?;
        if changed {
            receipt.internal.blocked_at_intake = true;
            receipt.row.details = store_details(&receipt.details, &receipt.internal)?;
            // The step says so.
            receipt.notes.extend_from_slice(notes);
            // The connected systems stop too; the request completes only
            // once they confirm (the events are written before the request,
            // which they name).
            self.follow_in(
                w,
                &crate::outbox::About {
                    subject: Some(subject),
                    request_id: Some(&receipt.row.request_id),
                    gates: true,
                    due_at: Some(receipt.row.due_at),
                },
                crate::outbox::Change::Blocked { reason: "request" },
            )
            .await?;
        }
        let system = Actor::system(crate::SystemJob::RightsDesk);
        w.audit(self.audit_record(Record::new(&system, "subject.blocked").subject(subject).details(serde_json::json!({"request_id": receipt.row.request_id, "changed": changed, "at_intake": true})))?);
        Ok(())
    }
}

/// A received request, sealed and audited, not yet written.
pub(crate) struct Receipt {
    pub(crate) row: RequestRow,
    details: RequestDetails,
    internal: Internal,
    filed_by: String,
    representative: Option<String>,
    notes: Vec<NoteRow>,
    record: NewAuditRecord,
}

impl Receipt {
    /// Record the request, its first step and its audit record in `w`.
    pub(crate) async fn write(self, w: &mut Write) -> Result<RequestRow, EngineError> {
        w.insert_request(
            &self.row,
            &self.filed_by,
            self.representative.as_deref(),
            &self.notes,
        )
        .await?;
        w.audit(self.record);
        Ok(self.row)
    }
}
