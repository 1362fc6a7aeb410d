//! The rights desk: data-subject requests received, worked and answered
//! against the Law's deadlines in Kazakh working days.

use chrono::{DateTime, FixedOffset, Utc};
use derbes_core::SubjectId;
use derbes_policy::{Capability, Right};
use derbes_store::{RequestEvent, RequestFilter, RequestRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{from_micros, micros, Actor, Engine, EngineError, LookupKind};

/// How a request reached the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestChannel {
    InApp,
    /// A registered letter or courier to the Almaty address; the operator records receipt.
    Written,
    Email,
    Authority,
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Requester {
    Subject,
    LegalRepresentative,
    AuthorisedBody,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Received,
    IdentityVerified,
    InProgress,
    Completed,
    Refused,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Received => "received",
            RequestState::IdentityVerified => "identity_verified",
            RequestState::InProgress => "in_progress",
            RequestState::Completed => "completed",
            RequestState::Refused => "refused",
        }
    }

    pub(crate) fn parse(s: &str) -> RequestState {
        match s {
            "received" => RequestState::Received,
            "identity_verified" => RequestState::IdentityVerified,
            "in_progress" => RequestState::InProgress,
            "completed" => RequestState::Completed,
            _ => RequestState::Refused,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, RequestState::Completed | RequestState::Refused)
    }
}

/// An action on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestAction {
    /// The requester's identity was checked: received → identity_verified.
    Verify,
    /// Work began: identity_verified → in_progress.
    Start,
    /// Answered: identity_verified | in_progress → completed.
    Complete,
    /// Refused with a reason (the Law's reasoned refusal): any open state → refused.
    Refuse,
}

/// Who the request is about when the subject id is not known yet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Identification {
    pub iin: Option<String>,
    pub phone: Option<String>,
}

/// A request as received.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub subject_id: Option<SubjectId>,
    pub identification: Option<Identification>,
    pub kind: Right,
    pub channel: RequestChannel,
    pub requester: Requester,
    /// When it was received (RFC 3339); now when absent. A letter is received
    /// when it arrives, not when it is entered.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub received_at: Option<DateTime<FixedOffset>>,
    /// Ids and codes only (channels to stop, field names to correct, a
    /// letter's reference): never personal data.
    #[serde(default)]
    pub details: Value,
}

/// The answer of `can_contact`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactAnswer {
    pub allowed: bool,
    /// `allowed`, `no_marketing_consent`, `objected`, `subject_not_active`.
    pub reason: String,
}

/// One step of a request.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestStep {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub from: Option<String>,
    pub to: String,
    pub reason: Option<String>,
}

/// A request as the desk sees it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestView {
    pub request_id: String,
    pub subject_id: Option<String>,
    pub kind: String,
    pub channel: String,
    pub requester: String,
    pub received_at: DateTime<Utc>,
    /// The deadline: the end of the last working day, Asia/Almaty (RFC 3339 with offset).
    pub due: String,
    pub state: RequestState,
    pub state_reason: Option<String>,
    pub overdue: bool,
    pub details: Value,
    /// The roles that answer it (complaints go to the data-protection officer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routed_to: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<RequestStep>,
}

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

impl Engine {
    pub(crate) async fn request_row(&self, request_id: &str) -> Result<RequestRow, EngineError> {
        self.store
            .request(request_id)
            .await?
            .ok_or(EngineError::NotFound("request"))
    }

    /// A request being worked by hand (an export, a correction): one of
    /// `kinds` (else `wrong_kind`), its requester verified and, unless
    /// `answered_too`, still open; with the subject it is about.
    pub(crate) async fn worked_request(
        &self,
        request_id: &str,
        kinds: &[Right],
        wrong_kind: &'static str,
        answered_too: bool,
    ) -> Result<(RequestRow, SubjectId), EngineError> {
        let row = self.request_row(request_id).await?;
        if !kinds.iter().any(|k| k.as_str() == row.kind) {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            return Err(EngineError::invalid(
                "request_id",
                wrong_kind,
                format!("only for {} requests", names.join(" and ")),
            ));
        }
        let ok = match RequestState::parse(&row.state) {
            RequestState::IdentityVerified | RequestState::InProgress => true,
            RequestState::Completed => answered_too,
            RequestState::Received | RequestState::Refused => false,
        };
        if !ok {
            return Err(EngineError::invalid(
                "request_id",
                "identity_not_verified",
                "the requester's identity is verified, and the request open, before anything is given or changed",
            ));
        }
        let subject = row
            .subject_id
            .as_deref()
            .and_then(|s| SubjectId::parse(s).ok())
            .ok_or_else(|| {
                EngineError::invalid(
                    "request_id",
                    "no_subject",
                    "the request names no subject that derbes holds",
                )
            })?;
        Ok((row, subject))
    }

    /// The roles complaints are routed to.
    fn complaint_roles(&self) -> Vec<String> {
        self.policy
            .policy
            .roles
            .iter()
            .filter(|r| r.can(Capability::AnswerComplaints))
            .map(|r| r.id.clone())
            .collect()
    }

    pub(crate) fn view_request(&self, r: RequestRow, events: Vec<RequestEvent>) -> RequestView {
        let state = RequestState::parse(&r.state);
        let due = from_micros(r.due_at)
            .with_timezone(&derbes_kz::ALMATY)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
        let routed_to = if r.kind == Right::Complaint.as_str() {
            self.complaint_roles()
        } else {
            Vec::new()
        };
        RequestView {
            routed_to,
            overdue: !state.is_final() && micros(self.now()) > r.due_at,
            request_id: r.request_id,
            subject_id: r.subject_id,
            kind: r.kind,
            channel: r.channel,
            requester: r.requester,
            received_at: from_micros(r.received_at),
            due,
            state,
            state_reason: r.state_reason,
            details: serde_json::from_str(&r.details).unwrap_or(Value::Null),
            steps: events
                .into_iter()
                .map(|e| RequestStep {
                    at: from_micros(e.at),
                    actor: e.actor,
                    from: e.from_state,
                    to: e.to_state,
                    reason: e.reason,
                })
                .collect(),
        }
    }

    /// Receive a request: find the subject, compute the due date from the
    /// policy's deadline for the kind, record it (audited).
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
        if !(req.details.is_null() || req.details.is_object())
            || req.details.to_string().len() > 4000
        {
            return Err(EngineError::invalid(
                "details",
                "invalid_details",
                "a JSON object of at most 4000 characters",
            ));
        }
        let subject = match (&req.subject_id, &req.identification) {
            (Some(s), None) => {
                if self.store.subject(&s.to_string()).await?.is_none() {
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
        let right = self.policy.policy.right(req.kind).ok_or_else(|| {
            EngineError::Internal(format!("the policy has no deadline for `{}`", req.kind))
        })?;
        let deadline = derbes_kz::WorkCalendar::kazakhstan()
            .deadline(&received, right.deadline_days)
            .map_err(|e| EngineError::invalid("received_at", "outside_calendar", e.to_string()))?;
        let row = RequestRow {
            request_id: uuid::Uuid::now_v7().to_string(),
            subject_id: subject.map(|s| s.to_string()),
            kind: req.kind.as_str().to_string(),
            channel: name(&req.channel),
            requester: name(&req.requester),
            received_at: micros(received),
            due_at: micros(deadline.due.with_timezone(&Utc)),
            state: RequestState::Received.as_str().to_string(),
            state_reason: None,
            details: if req.details.is_null() {
                "{}".to_string()
            } else {
                req.details.to_string()
            },
            updated_at: micros(now),
        };
        self.store.insert_request(&row, &actor.id).await?;
        self.audit(
            actor,
            "request.received",
            subject,
            None,
            &[],
            None,
            serde_json::json!({"request_id": row.request_id, "kind": row.kind, "due_at": row.due_at, "provisional_calendar": deadline.coverage != derbes_kz::Coverage::Complete,
                "routed_to": if req.kind == Right::Complaint { self.complaint_roles() } else { Vec::new() }}),
        )
        .await?;
        Ok(self.view_request(row, Vec::new()))
    }

    /// One request with its steps.
    pub async fn request(
        &self,
        actor: &Actor,
        request_id: &str,
    ) -> Result<RequestView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let row = self.request_row(request_id).await?;
        let events = self.store.request_events(request_id).await?;
        Ok(self.view_request(row, events))
    }

    /// The queue: by state, kind, subject; `overdue` for open requests past due.
    pub async fn requests(
        &self,
        actor: &Actor,
        state: Option<RequestState>,
        kind: Option<Right>,
        overdue: bool,
        limit: i64,
    ) -> Result<Vec<RequestView>, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let rows = self
            .store
            .requests(&RequestFilter {
                state: state.map(|s| s.as_str().to_string()),
                kind: kind.map(|k| k.as_str().to_string()),
                subject_id: None,
                overdue_at: overdue.then(|| micros(self.now())),
                limit,
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| self.view_request(r, Vec::new()))
            .collect())
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
        let from = RequestState::parse(&row.state);
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
                        name(&action)
                    ),
                ))
            }
        };
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
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
        if reason.is_some_and(|r| r.chars().count() > 2000) {
            return Err(EngineError::invalid(
                "reason",
                "too_long",
                "at most 2000 characters",
            ));
        }
        self.store
            .transition_request(
                request_id,
                from.as_str(),
                to.as_str(),
                reason,
                &actor.id,
                micros(self.now()),
            )
            .await?;
        let subject = row
            .subject_id
            .as_deref()
            .and_then(|s| SubjectId::parse(s).ok());
        self.audit(
            actor,
            &format!("request.{}", to.as_str()),
            subject,
            None,
            &[],
            None,
            serde_json::json!({"request_id": request_id, "kind": row.kind, "from": from.as_str()}),
        )
        .await?;
        // Work derbes does itself as soon as the requester is verified.
        if to == RequestState::IdentityVerified {
            if let (Some(s), Ok(kind)) = (
                subject,
                serde_json::from_value::<Right>(Value::String(row.kind.clone())),
            ) {
                if matches!(kind, Right::Blocking | Right::Unblocking) {
                    self.work_status_request(request_id, s, kind).await?;
                } else if kind == Right::Withdrawal {
                    self.work_withdrawal(request_id, s).await?;
                } else if kind == Right::Destruction {
                    self.work_destruction(request_id, s).await?;
                } else if kind == Right::Objection {
                    let details: Value = serde_json::from_str(&row.details).unwrap_or(Value::Null);
                    self.work_objection(request_id, s, &details).await?;
                }
            }
        }
        self.request(actor, request_id).await
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

    /// An objection (7.11): no more messages of the kind on the channels.
    /// Marketing consents of those channels are withdrawn (a later consent
    /// can give them back); service messages are refused by `can_contact`.
    /// `details`: `{"channels": [...]}` (all when absent), `{"kind": "marketing"|"service"|"all"}`.
    async fn work_objection(
        &self,
        request_id: &str,
        subject: SubjectId,
        details: &Value,
    ) -> Result<(), EngineError> {
        use derbes_policy::Channel;
        let now = self.now();
        let system = Actor::system("rights-desk");
        let channels: Vec<Channel> = match details.get("channels").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .filter_map(|c| c.as_str().and_then(Channel::parse))
                .collect(),
            None => Channel::ALL.to_vec(),
        };
        let kind = details.get("kind").and_then(Value::as_str).unwrap_or("all");
        let kinds: Vec<&str> = match kind {
            "marketing" => vec!["marketing"],
            "service" => vec!["service"],
            _ => vec!["service", "marketing"],
        };
        let sid = subject.to_string();
        let pairs: Vec<(String, String)> = channels
            .iter()
            .flat_map(|c| {
                kinds
                    .iter()
                    .map(move |k| (c.as_str().to_string(), k.to_string()))
            })
            .collect();
        self.store
            .add_optouts(&sid, &pairs, micros(now), Some(request_id))
            .await?;
        if kinds.contains(&"marketing") {
            for c in self.consent_records_of(subject).await? {
                let active = c.state(now) == derbes_core::ConsentState::Active;
                if active
                    && c.kind == derbes_policy::ConsentKind::Marketing
                    && c.channel.is_some_and(|ch| channels.contains(&ch))
                {
                    self.store
                        .withdraw_consent(
                            &sid,
                            &c.consent_id.to_string(),
                            micros(now),
                            &serde_json::json!({"objection": request_id}).to_string(),
                        )
                        .await?;
                }
            }
        }
        self.facts.forget(&subject);
        self.audit(
            &system,
            "subject.objection",
            Some(subject),
            None,
            &[],
            None,
            serde_json::json!({"request_id": request_id, "channels": channels, "kinds": kinds}),
        )
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
    /// checked) or unblocking: the subject's status changes at once and the
    /// request is completed. Idempotent.
    async fn work_status_request(
        &self,
        request_id: &str,
        subject: SubjectId,
        kind: Right,
    ) -> Result<(), EngineError> {
        let now = micros(self.now());
        let sid = subject.to_string();
        let (from, to, action) = match kind {
            Right::Blocking => ("active", "blocked", "subject.blocked"),
            _ => ("blocked", "active", "subject.unblocked"),
        };
        let changed = self
            .store
            .set_subject_status(&sid, from, to, now, false)
            .await?;
        self.facts.forget(&subject);
        let system = Actor::system("rights-desk");
        self.audit(
            &system,
            action,
            Some(subject),
            None,
            &[],
            None,
            serde_json::json!({"request_id": request_id, "changed": changed}),
        )
        .await?;
        let note = if changed {
            None
        } else {
            Some(format!("the subject was not {from}; nothing to change"))
        };
        self.system_steps(
            request_id,
            &[RequestState::InProgress, RequestState::Completed],
            note.as_deref(),
        )
        .await
    }

    /// Move a verified request on by derbes' own hand, step by step from
    /// `identity_verified`; `note` goes on the last step.
    pub(crate) async fn system_steps(
        &self,
        request_id: &str,
        steps: &[RequestState],
        note: Option<&str>,
    ) -> Result<(), EngineError> {
        let system = Actor::system("rights-desk");
        let at = micros(self.now());
        let mut from = RequestState::IdentityVerified;
        for (i, to) in steps.iter().enumerate() {
            let reason = if i + 1 == steps.len() { note } else { None };
            self.store
                .transition_request(
                    request_id,
                    from.as_str(),
                    to.as_str(),
                    reason,
                    &system.id,
                    at,
                )
                .await?;
            from = *to;
        }
        Ok(())
    }
}
