//! Working requests: the state machine and its steps (with sealed notes),
//! who may take the irreversible ones (an approver who did not file them),
//! and what derbes works itself once a requester is verified — blocking and
//! unblocking, objections, withdrawal and destruction (`jobs.rs`), a
//! minor's report.

use chrono::{DateTime, Utc};
use derbes_core::{SubjectId, SubjectStatus};
use derbes_policy::{Capability, Right};
use derbes_store::{NoteRow, RequestRow, Write};
use serde_json::Value;

use crate::audit::Record;
use crate::requests::{read_details, Internal, Said};
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
        self.act_saying(actor, request_id, action, reason, None)
            .await
    }

    /// [`Engine::act_on_request`], with what derbes itself says of the step.
    pub(crate) async fn act_saying(
        &self,
        actor: &Actor,
        request_id: &str,
        action: RequestAction,
        reason: Option<&str>,
        said: Option<Said>,
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
            self.verify(
                actor,
                request_id,
                reason.as_deref().unwrap_or(""),
                said.as_ref(),
            )
            .await?;
            return self.request(actor, request_id).await;
        }
        let said = match (to, internal.blocked_at_intake) {
            (S::Refused, true) => Some(Said::UnblockedOnRefusal),
            _ => said,
        };
        // The step, and for a refusal the undoing of what intake did, in one
        // unit of work.
        let steps = self
            .steps(
                &row,
                from,
                &[to],
                reason.as_deref(),
                said.as_ref(),
                actor.id(),
            )
            .await?;
        let mut w = self.write().await?;
        steps.write(&mut w, self.now()).await?;
        w.audit(self.step_record(actor, &row, from, to, reason.is_some())?);
        if to == S::Refused {
            self.undo_intake_in(&mut w, &row, subject, &internal)
                .await?;
        }
        w.commit().await?;
        if let Some(s) = subject {
            self.facts.forget(&s);
        }
        self.request(actor, request_id).await
    }

    /// One step of a request by `actor`, with its sealed note, audited in
    /// the same unit of work.
    pub(crate) async fn step(
        &self,
        actor: &Actor,
        row: &RequestRow,
        from: RequestState,
        to: RequestState,
        note: Option<&str>,
        said: Option<&Said>,
    ) -> Result<(), EngineError> {
        let steps = self.steps(row, from, &[to], note, said, actor.id()).await?;
        let mut w = self.write().await?;
        steps.write(&mut w, self.now()).await?;
        w.audit(self.step_record(actor, row, from, to, note.is_some())?);
        w.commit().await?;
        Ok(())
    }

    /// The audit record of a step a person took.
    fn step_record(
        &self,
        actor: &Actor,
        row: &RequestRow,
        from: RequestState,
        to: RequestState,
        note: bool,
    ) -> Result<derbes_store::NewAuditRecord, EngineError> {
        let action = format!("request.{}", to.as_str());
        self.audit_record(Record::new(actor, &action).subject(row.subject_id).details(
            serde_json::json!({"request_id": row.request_id, "kind": row.kind, "from": from.as_str(), "note": note}),
        ))
    }

    /// The requester was verified: the request moves on, and derbes works
    /// what it works itself at once.
    pub(crate) async fn verify(
        &self,
        actor: &Actor,
        request_id: &str,
        note: &str,
        said: Option<&Said>,
    ) -> Result<(), EngineError> {
        let row = self.request_row(request_id).await?;
        let note = Some(note).filter(|n| !n.is_empty());
        self.step(
            actor,
            &row,
            RequestState::Received,
            RequestState::IdentityVerified,
            note,
            said,
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

    /// A refused request undoes what its intake did, in the refusal's unit
    /// of work: a blocking request whose requester could not be verified
    /// unblocks; a minor's report found wrong lifts the bar on processing.
    async fn undo_intake_in(
        &self,
        w: &mut Write,
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
        let changed = w
            .set_subject_status(s, from, SubjectStatus::Active, self.now(), false)
            .await?;
        if changed {
            self.follow_in(
                w,
                &crate::outbox::About {
                    subject: Some(s),
                    request_id: Some(&row.request_id),
                    gates: false,
                    due_at: Some(self.now()),
                },
                crate::outbox::Change::Unblocked,
            )
            .await?;
        }
        w.audit(
            self.audit_record(
                Record::new(&Actor::system(crate::SystemJob::RightsDesk), action)
                    .subject(s)
                    .details(serde_json::json!({"request_id": row.request_id, "changed": changed})),
            )?,
        );
        Ok(())
    }

    /// Work a verified rectification request: the corrected values (those
    /// given here, or else those the requester gave with the request) go
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
        let proposed;
        let values = if values.is_empty() {
            let owner = format!("request:{request_id}");
            let mut notes = self
                .open_notes(actor, Some(subject), std::slice::from_ref(&owner))
                .await?;
            proposed = match notes.remove(&(owner, "values".to_string())) {
                Some(json) => serde_json::from_str(&json)?,
                None => std::collections::BTreeMap::new(),
            };
            &proposed
        } else {
            values
        };
        let fields = self
            .rectify(actor, subject, values, source, &reason)
            .await?;
        self.act_saying(
            actor,
            request_id,
            RequestAction::Complete,
            None,
            Some(Said::Corrected { fields }),
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
        let withdrawn: Vec<String> = if kinds.contains(&ContactKind::Marketing) {
            self.consent_records_of(subject)
                .await?
                .into_iter()
                .filter(|c| {
                    c.state(now) == derbes_core::ConsentState::Active
                        && c.kind == derbes_policy::ConsentKind::Marketing
                        && c.channel.is_some_and(|ch| channels.contains(&ch))
                })
                .map(|c| c.consent_id.to_string())
                .collect()
        } else {
            Vec::new()
        };
        let both = self
            .system_steps(
                request_id,
                &[RequestState::InProgress, RequestState::Completed],
                None,
            )
            .await?;
        let started = self
            .system_steps(request_id, &[RequestState::InProgress], None)
            .await?;
        let due = self.request_row(request_id).await?.due_at;
        let mut w = self.write().await?;
        w.add_optouts(subject, &pairs, now, Some(request_id))
            .await?;
        self.follow_in(
            &mut w,
            &crate::outbox::About {
                subject: Some(subject),
                request_id: Some(request_id),
                gates: true,
                due_at: Some(due),
            },
            crate::outbox::Change::Objection {
                channels: channels.iter().map(|c| c.as_str().to_string()).collect(),
                kinds: kinds.iter().map(|k| k.as_str().to_string()).collect(),
            },
        )
        .await?;
        // Completed now, or once the connected systems confirm.
        let steps = if w
            .request_waiting(request_id)
            .await?
            .is_some_and(|(_, n)| n > 0)
        {
            started
        } else {
            both
        };
        for consent_id in &withdrawn {
            w.withdraw_consent(
                subject,
                consent_id,
                now,
                &serde_json::json!({"objection": request_id}).to_string(),
                &[],
            )
            .await?;
        }
        steps.write(&mut w, now).await?;
        self.commit(w, [Record::new(&system, "subject.objection").subject(subject).details(serde_json::json!({"request_id": request_id, "channels": channels, "kinds": kinds}))])
        .await?;
        Ok(())
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
        // The request's steps either way, sealed before the unit of work:
        // without a note if the status changes, with why not if it does not.
        let status = self
            .store
            .subject(subject)
            .await?
            .ok_or(EngineError::NotFound("subject"))?
            .status;
        let unchanged = match kind {
            Right::Blocking if status == SubjectStatus::Blocked => Said::AlreadyBlocked,
            _ => Said::NothingToChange {
                status: from.as_str().to_string(),
            },
        };
        let both = [RequestState::InProgress, RequestState::Completed];
        let started = [RequestState::InProgress];
        let if_changed = self.system_steps(request_id, &both, None).await?;
        let if_unchanged = self
            .system_steps(request_id, &both, Some(&unchanged))
            .await?;
        let waiting_changed = self.system_steps(request_id, &started, None).await?;
        let waiting_unchanged = self
            .system_steps(request_id, &started, Some(&unchanged))
            .await?;
        let due = self.request_row(request_id).await?.due_at;
        let system = Actor::system(crate::SystemJob::RightsDesk);
        let mut w = self.write().await?;
        let changed = w
            .set_subject_status(subject, from, to, self.now(), false)
            .await?;
        if changed {
            let change = match kind {
                Right::Blocking => crate::outbox::Change::Blocked { reason: "request" },
                _ => crate::outbox::Change::Unblocked,
            };
            let about = crate::outbox::About {
                subject: Some(subject),
                request_id: Some(request_id),
                gates: true,
                due_at: Some(due),
            };
            self.follow_in(&mut w, &about, change).await?;
        }
        // Completed now, or once the connected systems confirm (those told
        // now, or at intake).
        let waiting = w
            .request_waiting(request_id)
            .await?
            .is_some_and(|(_, n)| n > 0);
        let steps = match (changed, waiting) {
            (true, false) => if_changed,
            (false, false) => if_unchanged,
            (true, true) => waiting_changed,
            (false, true) => waiting_unchanged,
        };
        steps.write(&mut w, self.now()).await?;
        self.commit(
            w,
            [Record::new(&system, action)
                .subject(subject)
                .details(serde_json::json!({"request_id": request_id, "changed": changed}))],
        )
        .await?;
        Ok(())
    }

    /// Steps of a request from `from` through `steps`, `note` on the last,
    /// sealed under the subject's key (or the request's own when it names
    /// nobody), ready to go into a unit of work.
    pub(crate) async fn steps(
        &self,
        row: &RequestRow,
        from: RequestState,
        steps: &[RequestState],
        note: Option<&str>,
        said: Option<&Said>,
        actor_id: &str,
    ) -> Result<Steps, EngineError> {
        let mut moves = Vec::with_capacity(steps.len());
        let mut from = from;
        let owner = format!("request:{}", row.request_id);
        let said = said.map(serde_json::to_string).transpose()?;
        for (i, to) in steps.iter().enumerate() {
            let last = i + 1 == steps.len();
            let (note, said) = match last {
                true => (note, said.as_deref()),
                false => (None, None),
            };
            let reason = format!("reason:{}", to.as_str());
            let said_name = format!("said:{}", to.as_str());
            let notes = self
                .seal_notes(
                    row.subject_id,
                    &[
                        (owner.clone(), &reason, note),
                        (owner.clone(), &said_name, said),
                    ],
                )
                .await?;
            moves.push((from, *to, notes));
            from = *to;
        }
        Ok(Steps {
            request_id: row.request_id.clone(),
            actor_id: actor_id.to_string(),
            moves,
        })
    }

    /// derbes' own steps of a verified request, from `identity_verified`.
    pub(crate) async fn system_steps(
        &self,
        request_id: &str,
        steps: &[RequestState],
        said: Option<&Said>,
    ) -> Result<Steps, EngineError> {
        let row = self.request_row(request_id).await?;
        let system = Actor::system(crate::SystemJob::RightsDesk);
        self.steps(
            &row,
            RequestState::IdentityVerified,
            steps,
            None,
            said,
            system.id(),
        )
        .await
    }
}

/// A request's steps, their notes sealed: written in a unit of work.
pub(crate) struct Steps {
    request_id: String,
    actor_id: String,
    moves: Vec<(RequestState, RequestState, Vec<NoteRow>)>,
}

impl Steps {
    /// Each step, compare-and-swap from the state it leaves.
    pub(crate) async fn write(&self, w: &mut Write, at: DateTime<Utc>) -> Result<(), EngineError> {
        for (from, to, notes) in &self.moves {
            w.transition_request(&self.request_id, *from, *to, &self.actor_id, at, notes)
                .await?;
        }
        Ok(())
    }
}
