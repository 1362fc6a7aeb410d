//! Working requests: the state machine and its steps (with sealed notes),
//! who may take the irreversible ones (an approver who did not file them),
//! and what derbes works itself once a requester is verified — blocking and
//! unblocking, objections, withdrawal and destruction (`jobs.rs`), a
//! minor's report.

use derbes_core::{SubjectId, SubjectStatus};
use derbes_policy::{Capability, Right};
use derbes_store::RequestRow;
use serde_json::Value;

use crate::audit::Record;
use crate::requests::{read_details, Internal};
use crate::{
    Actor, ContactAnswer, Engine, EngineError, ObjectionKind, RequestAction, RequestDetails,
    RequestState, RequestView,
};

impl Engine {
    /// Refuse an irreversible or protective step to an actor without
    /// `approve_irreversible`, or to the one who filed the request (four
    /// eyes): 403 with the reason, audited.
    pub(crate) async fn require_approver(
        &self,
        actor: &Actor,
        action: &str,
        subject: Option<SubjectId>,
        filed_by: Option<&str>,
        details: Value,
    ) -> Result<(), EngineError> {
        if self
            .require(actor, Capability::ApproveIrreversible)
            .is_err()
        {
            return self
                .refuse(
                    actor,
                    action,
                    subject,
                    "approver_required",
                    "an irreversible or protective step is taken by the data-protection officer (approve_irreversible)",
                    details,
                )
                .await;
        }
        if filed_by == Some(actor.id()) {
            return self
                .refuse(
                    actor,
                    action,
                    subject,
                    "four_eyes",
                    "the one who filed a request does not verify it: another officer must",
                    details,
                )
                .await;
        }
        Ok(())
    }

    /// A refusal with its reason, audited as a deny: always `Err`.
    pub(crate) async fn refuse(
        &self,
        actor: &Actor,
        action: &str,
        subject: Option<SubjectId>,
        code: &str,
        message: &str,
        details: Value,
    ) -> Result<(), EngineError> {
        let d = crate::audit::refusal(code, message);
        let audit_id = self
            .audit(
                Record::new(actor, action)
                    .subject(subject)
                    .decision(&d)
                    .details(details),
            )
            .await?;
        Err(EngineError::Denied {
            reasons: d.reasons,
            audit_id,
        })
    }

    /// Move a request through its state machine (audited).
    pub async fn act_on_request(
        &self,
        actor: &Actor,
        request_id: &str,
        action: RequestAction,
        reason: Option<&str>,
    ) -> Result<RequestView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let row = self.request_row(request_id).await?;
        let from = row.state;
        let complaint = row.kind == Right::Complaint.as_str();
        if complaint {
            // Routed to the data-protection officer: only they work it.
            self.require(actor, Capability::AnswerComplaints)?;
        }
        use RequestAction as A;
        use RequestState as S;
        let to = match (action, from) {
            (A::Verify, S::Received) => S::IdentityVerified,
            (A::Start, S::IdentityVerified) => S::InProgress,
            (A::Complete, S::IdentityVerified | S::InProgress) => S::Completed,
            (A::Refuse, s) if !s.is_final() => S::Refused,
            _ => {
                return Err(EngineError::invalid(
                    "action",
                    "invalid_transition",
                    format!(
                        "a request in state `{}` cannot be {}",
                        from.as_str(),
                        action.as_str()
                    ),
                ))
            }
        };
        let reason = reason
            .map(|r| derbes_core::free_text("reason", r, 2000))
            .transpose()
            .map_err(|p| EngineError::Invalid(vec![p]))?
            .filter(|r| !r.is_empty());
        if complaint && to == S::Completed && reason.is_none() {
            return Err(EngineError::invalid(
                "reason",
                "reason_required",
                "a complaint is completed with the answer given (its summary)",
            ));
        }
        if to == S::Refused && reason.is_none() {
            return Err(EngineError::invalid(
                "reason",
                "reason_required",
                "a refusal states its reason (the Law: a reasoned refusal)",
            ));
        }
        let subject = row.subject_id;
        let (_, internal) = read_details(&row.details)?;
        // Destruction, withdrawal and a minor's report end in destruction:
        // verified by an approver who did not file them; a minor's report is
        // also refused only by one (it releases a protective bar).
        let irreversible = matches!(row.kind.as_str(), "destruction" | "withdrawal");
        if (to == S::IdentityVerified && irreversible)
            || (to == S::Refused && internal.minor.is_some())
        {
            let filed_by = self
                .store
                .request_events(request_id)
                .await?
                .first()
                .map(|e| e.actor.clone());
            self.require_approver(
                actor,
                &format!("request.{}", to.as_str()),
                subject,
                filed_by.as_deref().filter(|_| to == S::IdentityVerified),
                serde_json::json!({"request_id": request_id, "kind": row.kind}),
            )
            .await?;
        }
        if to == S::IdentityVerified {
            self.verify(actor, request_id, reason.as_deref().unwrap_or(""))
                .await?;
            return self.request(actor, request_id).await;
        }
        let reason = match (to, internal.blocked_at_intake, &reason) {
            (S::Refused, true, Some(r)) => Some(format!(
                "{r} — the data blocked since the request was received is unblocked"
            )),
            _ => reason,
        };
        self.step(actor, &row, from, to, reason.as_deref()).await?;
        if to == S::Refused {
            self.undo_intake(&row, subject, &internal).await?;
        }
        self.request(actor, request_id).await
    }

    /// One step of a request by `actor`, with its sealed note (audited).
    pub(crate) async fn step(
        &self,
        actor: &Actor,
        row: &RequestRow,
        from: RequestState,
        to: RequestState,
        note: Option<&str>,
    ) -> Result<(), EngineError> {
        let subject = row.subject_id;
        self.transition(&row.request_id, subject, from, to, note, actor.id())
            .await?;
        self.audit(Record::new(actor, &format!("request.{}", to.as_str())).subject(subject).details(serde_json::json!({"request_id": row.request_id, "kind": row.kind, "from": from.as_str(), "note": note.is_some()})))
        .await?;
        Ok(())
    }

    /// The requester was verified: the request moves on, and derbes works
    /// what it works itself at once.
    pub(crate) async fn verify(
        &self,
        actor: &Actor,
        request_id: &str,
        note: &str,
    ) -> Result<(), EngineError> {
        let row = self.request_row(request_id).await?;
        let note = Some(note).filter(|n| !n.is_empty());
        self.step(
            actor,
            &row,
            RequestState::Received,
            RequestState::IdentityVerified,
            note,
        )
        .await?;
        let Some(s) = row.subject_id else {
            return Ok(());
        };
        let (details, internal) = read_details(&row.details)?;
        match Right::parse(&row.kind) {
            Some(Right::Blocking | Right::Unblocking) => {
                let kind = Right::parse(&row.kind).unwrap_or(Right::Blocking);
                self.work_status_request(request_id, s, kind).await
            }
            Some(Right::Withdrawal) => {
                self.work_withdrawal(
                    request_id,
                    s,
                    details
                        .consent
                        .unwrap_or(derbes_policy::ConsentKind::Policy),
                )
                .await
            }
            Some(Right::Destruction) => match internal.minor {
                Some(m) => {
                    self.work_minor(request_id, s, crate::from_micros(m.barred_until)?)
                        .await
                }
                None => self.work_destruction(request_id, s).await,
            },
            Some(Right::Objection) => self.work_objection(request_id, s, &details).await,
            _ => Ok(()),
        }
    }

    /// A refused request undoes what its intake did: a blocking request
    /// whose requester could not be verified unblocks; a minor's report
    /// found wrong lifts the bar on processing.
    pub(crate) async fn undo_intake(
        &self,
        row: &RequestRow,
        subject: Option<SubjectId>,
        internal: &Internal,
    ) -> Result<(), EngineError> {
        let Some(s) = subject else { return Ok(()) };
        let (from, action) = if internal.blocked_at_intake {
            (SubjectStatus::Blocked, "subject.unblocked")
        } else if internal.minor.is_some() {
            (SubjectStatus::BarredMinor, "subject.minor_report_refused")
        } else {
            return Ok(());
        };
        let changed = self
            .store
            .set_subject_status(s, from, SubjectStatus::Active, self.now(), false)
            .await?;
        self.facts.forget(&s);
        self.audit(
            Record::new(&Actor::system(crate::SystemJob::RightsDesk), action)
                .subject(s)
                .details(serde_json::json!({"request_id": row.request_id, "changed": changed})),
        )
        .await?;
        Ok(())
    }

    /// Work a verified rectification request: the corrected values go
    /// through the vault with the request as their reason (the previous
    /// values are kept sealed), and the request is completed.
    pub async fn rectify_for_request(
        &self,
        actor: &Actor,
        request_id: &str,
        values: &std::collections::BTreeMap<String, Value>,
        source: Option<&str>,
    ) -> Result<RequestView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let (_, subject) = self
            .worked_request(
                request_id,
                &[Right::Rectification],
                "not_a_rectification_request",
                false,
            )
            .await?;
        let reason = format!("rectification request {request_id}");
        let fields = self
            .rectify(actor, subject, values, source, &reason)
            .await?;
        self.act_on_request(
            actor,
            request_id,
            RequestAction::Complete,
            Some(&format!("corrected: {}", fields.join(", "))),
        )
        .await
    }

    /// An objection (7.11): no more messages of the kind on the channels
    /// (all when none are named). Recorded as a fact the decision point
    /// denies on (`objected`); marketing consents of those channels are
    /// withdrawn too (a later consent can give them back).
    pub(crate) async fn work_objection(
        &self,
        request_id: &str,
        subject: SubjectId,
        details: &RequestDetails,
    ) -> Result<(), EngineError> {
        use derbes_policy::{Channel, ContactKind};
        let now = self.now();
        let system = Actor::system(crate::SystemJob::RightsDesk);
        let channels: Vec<Channel> = details
            .channels
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| Channel::ALL.to_vec());
        let kinds: Vec<ContactKind> = match details.kind.unwrap_or(ObjectionKind::All) {
            ObjectionKind::Marketing => vec![ContactKind::Marketing],
            ObjectionKind::Service => vec![ContactKind::Service],
            ObjectionKind::All => ContactKind::ALL.to_vec(),
        };
        let pairs: Vec<(String, String)> = channels
            .iter()
            .flat_map(|c| {
                kinds
                    .iter()
                    .map(move |k| (c.as_str().to_string(), k.as_str().to_string()))
            })
            .collect();
        self.store
            .add_optouts(subject, &pairs, now, Some(request_id))
            .await?;
        if kinds.contains(&ContactKind::Marketing) {
            for c in self.consent_records_of(subject).await? {
                let active = c.state(now) == derbes_core::ConsentState::Active;
                if active
                    && c.kind == derbes_policy::ConsentKind::Marketing
                    && c.channel.is_some_and(|ch| channels.contains(&ch))
                {
                    self.store
                        .withdraw_consent(
                            subject,
                            &c.consent_id.to_string(),
                            now,
                            &serde_json::json!({"objection": request_id}).to_string(),
                            &[],
                        )
                        .await?;
                }
            }
        }
        self.facts.forget(&subject);
        self.audit(Record::new(&system, "subject.objection").subject(subject).details(serde_json::json!({"request_id": request_id, "channels": channels, "kinds": kinds})))
        .await?;
        self.system_steps(
            request_id,
            &[RequestState::InProgress, RequestState::Completed],
            None,
        )
        .await
    }

    /// May a sender contact the subject on `channel` with a `kind` message?
    /// Marketing needs the channel's active consent; service messages need
    /// no objection; nothing goes to a subject who is not active.
    pub async fn can_contact(
        &self,
        actor: &Actor,
        subject: SubjectId,
        channel: derbes_policy::Channel,
        kind: &str,
    ) -> Result<ContactAnswer, EngineError> {
        if self.require(actor, Capability::Decide).is_err() {
            self.require(actor, Capability::ReadData)?;
        }
        let kind = derbes_policy::ContactKind::parse(kind).ok_or_else(|| {
            EngineError::invalid("kind", "invalid_kind", "`service` or `marketing`")
        })?;
        let facts = self.subject_facts(subject).await?;
        // The same rule the decision point applies to every purpose that
        // contacts the subject.
        Ok(match derbes_core::may_contact(&facts, channel, kind) {
            Ok(()) => ContactAnswer {
                allowed: true,
                reason: "allowed".into(),
            },
            Err(r) => ContactAnswer {
                allowed: false,
                reason: r.code,
            },
        })
    }

    /// Blocking (4.2: frozen while inaccuracy or unlawful processing is
    /// checked — from the moment of the request, see `block_at_intake`) or
    /// unblocking: the subject's status is what the request asks and the
    /// request is completed. Idempotent.
    pub(crate) async fn work_status_request(
        &self,
        request_id: &str,
        subject: SubjectId,
        kind: Right,
    ) -> Result<(), EngineError> {
        let (from, to, action) = match kind {
            Right::Blocking => (
                SubjectStatus::Active,
                SubjectStatus::Blocked,
                "subject.blocked",
            ),
            _ => (
                SubjectStatus::Blocked,
                SubjectStatus::Active,
                "subject.unblocked",
            ),
        };
        let changed = self
            .store
            .set_subject_status(subject, from, to, self.now(), false)
            .await?;
        self.facts.forget(&subject);
        let status = self.subject_facts(subject).await?.status;
        let system = Actor::system(crate::SystemJob::RightsDesk);
        self.audit(
            Record::new(&system, action)
                .subject(subject)
                .details(serde_json::json!({"request_id": request_id, "changed": changed})),
        )
        .await?;
        let note = match (changed, kind) {
            (true, _) => None,
            (false, Right::Blocking) if status == SubjectStatus::Blocked => {
                Some("blocked since the request was received (4.2)".to_string())
            }
            (false, _) => Some(format!(
                "the subject was not {}; nothing to change",
                from.as_str()
            )),
        };
        self.system_steps(
            request_id,
            &[RequestState::InProgress, RequestState::Completed],
            note.as_deref(),
        )
        .await
    }

    /// Move a request from `from` to `to` with an optional note, sealed
    /// under the subject's key (or the request's own when it names nobody).
    pub(crate) async fn transition(
        &self,
        request_id: &str,
        subject: Option<SubjectId>,
        from: RequestState,
        to: RequestState,
        note: Option<&str>,
        actor_id: &str,
    ) -> Result<(), EngineError> {
        let name = format!("reason:{}", to.as_str());
        let notes = self
            .seal_notes(subject, &[(format!("request:{request_id}"), &name, note)])
            .await?;
        self.store
            .transition_request(request_id, from, to, actor_id, self.now(), &notes)
            .await?;
        Ok(())
    }

    /// Move a verified request on by derbes' own hand, step by step from
    /// `identity_verified`; `note` goes on the last step.
    pub(crate) async fn system_steps(
        &self,
        request_id: &str,
        steps: &[RequestState],
        note: Option<&str>,
    ) -> Result<(), EngineError> {
        let system = Actor::system(crate::SystemJob::RightsDesk);
        let row = self.request_row(request_id).await?;
        let subject = row.subject_id;
        let mut from = RequestState::IdentityVerified;
        for (i, to) in steps.iter().enumerate() {
            let reason = if i + 1 == steps.len() { note } else { None };
            self.transition(request_id, subject, from, *to, reason, system.id())
                .await?;
            from = *to;
        }
        Ok(())
    }
}
