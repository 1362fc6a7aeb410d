//! The rights desk: data-subject requests received, worked and answered
//! against the Law's deadlines in Kazakh working days.

use chrono::{DateTime, FixedOffset, Utc};
use derbes_core::SubjectId;
use derbes_policy::{Capability, Right};
use derbes_store::{RequestEvent, RequestFilter, RequestRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::Record;
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
    /// Found by the operator itself (a minor's report, 7.7).
    Operator,
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Requester {
    Subject,
    /// A legal representative or principal on record for the subject
    /// (clause 1), named by `representative_id`.
    LegalRepresentative,
    AuthorisedBody,
    /// The operator itself (a minor's report, 7.7).
    Operator,
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
    /// For `legal_representative`: the representative on record who acts
    /// (`POST /subjects/{id}/representatives`); their authority must be
    /// valid when the request is received.
    pub representative_id: Option<String>,
    /// When it was received (RFC 3339); now when absent. A letter is received
    /// when it arrives, not when it is entered.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub received_at: Option<DateTime<FixedOffset>>,
    /// What the kind needs, as codes (never personal data).
    #[serde(default)]
    pub details: RequestDetails,
    /// Free text — the complaint in the requester's words, a letter's
    /// reference. Sealed under the subject's key (destroyed with them) and
    /// never copied into the audit log.
    pub text: Option<String>,
}

/// What a request of each kind needs, as codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequestDetails {
    /// Objection: the channels to stop (all when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<derbes_policy::Channel>>,
    /// Objection: which messages to stop (`all` when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ObjectionKind>,
    /// Withdrawal: the consent withdrawn — `policy` (the 7.11 withdrawal,
    /// the default) or a consent some categories need (`entrepreneur`,
    /// `cookies`), whose data is then destroyed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<derbes_policy::ConsentKind>,
    /// Rectification: the fields to correct (`category.field`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

/// Which messages an objection stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ObjectionKind {
    Service,
    Marketing,
    All,
}

/// What derbes itself records on a request beside what was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Internal {
    /// A minor's report (7.7): when the bar on the IIN the subject
    /// registered with ends (the minor's 18th birthday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    minor: Option<MinorBar>,
    /// The subject was blocked by this request at intake (4.2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    blocked_at_intake: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MinorBar {
    barred_until: i64,
}

/// The stored details: what was asked, and derbes' own notes under `derbes`.
fn store_details(asked: &RequestDetails, internal: &Internal) -> Result<String, EngineError> {
    let mut v = serde_json::to_value(asked)?;
    if *internal != Internal::default() {
        if let Value::Object(m) = &mut v {
            m.insert("derbes".into(), serde_json::to_value(internal)?);
        }
    }
    Ok(v.to_string())
}

/// The stored details read back; damage is refused, never guessed.
fn read_details(stored: &str) -> Result<(RequestDetails, Internal), EngineError> {
    let mut v: Value = serde_json::from_str(stored)?;
    let internal = match v.as_object_mut().and_then(|m| m.remove("derbes")) {
        Some(i) => serde_json::from_value(i)?,
        None => Internal::default(),
    };
    Ok((serde_json::from_value(v)?, internal))
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
    pub details: RequestDetails,
    /// `minor` for a minor's report (7.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground: Option<String>,
    /// Why its destruction waits: `subject_blocked`, `legal_hold`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    /// The request's free text (only where a single request is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A completed destruction or withdrawal: what went and what a law
    /// keeps, until when (only where a single request is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::destruction::DestructionAnswer>,
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
            .policy()
            .roles
            .iter()
            .filter(|r| r.can(Capability::AnswerComplaints))
            .map(|r| r.id.clone())
            .collect()
    }

    pub(crate) fn view_request(
        &self,
        r: RequestRow,
        events: Vec<RequestEvent>,
    ) -> Result<RequestView, EngineError> {
        let state = RequestState::parse(&r.state);
        let due = from_micros(r.due_at)
            .with_timezone(&derbes_kz::ALMATY)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
        let routed_to = if r.kind == Right::Complaint.as_str() {
            self.complaint_roles()
        } else {
            Vec::new()
        };
        let (details, internal) = read_details(&r.details)?;
        Ok(RequestView {
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
            details,
            ground: internal.minor.map(|_| "minor".to_string()),
            waiting: Vec::new(),
            text: None,
            outcome: None,
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
        })
    }

    /// Why a destruction this request ordered waits, if it does.
    async fn waiting(&self, v: &mut RequestView) -> Result<(), EngineError> {
        let destroys = matches!(v.kind.as_str(), "destruction" | "withdrawal");
        if !destroys || v.state != RequestState::InProgress {
            return Ok(());
        }
        if let Some(s) = v
            .subject_id
            .as_deref()
            .and_then(|s| SubjectId::parse(s).ok())
        {
            let facts = self.subject_facts(s).await?;
            if facts.status == derbes_core::SubjectStatus::Blocked {
                v.waiting.push("subject_blocked".into());
            }
            if facts.held {
                v.waiting.push("legal_hold".into());
            }
        }
        Ok(())
    }

    /// The consent a withdrawal request withdraws (the policy's by default).
    pub(crate) fn request_consent(
        &self,
        r: &RequestRow,
    ) -> Result<derbes_policy::ConsentKind, EngineError> {
        Ok(read_details(&r.details)?
            .0
            .consent
            .unwrap_or(derbes_policy::ConsentKind::Policy))
    }

    /// Whether a stored request is a minor's report (7.7).
    pub(crate) fn is_minor_report(&self, r: &RequestRow) -> bool {
        read_details(&r.details).is_ok_and(|(_, i)| i.minor.is_some())
    }

    /// The details a request of this kind may carry, checked.
    fn checked_details(
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
        let details = self.checked_details(req.kind, &req.details)?;
        let text = req
            .text
            .as_deref()
            .map(|t| derbes_core::free_text("text", t, 4000))
            .transpose()
            .map_err(|p| EngineError::Invalid(vec![p]))?;
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
        let in_app = req.channel == RequestChannel::InApp
            && req.requester == Requester::Subject
            && self.require(actor, Capability::InAppRequests).is_ok();
        let row = self
            .receive(
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
        let request_id = row.request_id.clone();
        if let (Right::Blocking, Some(s)) = (req.kind, subject) {
            self.block_at_intake(&row, s).await?;
        }
        if in_app {
            self.verify(
                actor,
                &request_id,
                "identity verified by the app's sign-in (in-app request)",
            )
            .await?;
        }
        self.request(actor, &request_id).await
    }

    /// Record a received request and its first step (audited).
    #[allow(clippy::too_many_arguments)]
    async fn receive(
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
    ) -> Result<RequestRow, EngineError> {
        let now = self.now();
        let deadline = self.deadline(received, kind)?;
        let row = RequestRow {
            request_id: uuid::Uuid::now_v7().to_string(),
            subject_id: subject.map(|s| s.to_string()),
            kind: kind.as_str().to_string(),
            channel: name(&channel),
            requester: name(&requester),
            received_at: micros(received),
            due_at: micros(deadline.at),
            state: RequestState::Received.as_str().to_string(),
            state_reason: None,
            details: store_details(details, &internal)?,
            updated_at: micros(now),
        };
        let notes = self
            .seal_notes(
                subject,
                &[(format!("request:{}", row.request_id), "text", text)],
            )
            .await?;
        self.store
            .insert_request(&row, actor.id(), representative, &notes)
            .await?;
        self.audit(Record::new(actor, "request.received").subject(subject).details(serde_json::json!({"request_id": row.request_id, "kind": row.kind, "due_at": row.due_at, "provisional_calendar": deadline.provisional,
                "representative_id": representative, "minor_report": internal.minor.is_some(),
                "routed_to": if kind == Right::Complaint { self.complaint_roles() } else { Vec::new() }})))
        .await?;
        Ok(row)
    }

    /// Record a minor's report (7.7) as a destruction request the operator files.
    pub(crate) async fn receive_minor_report(
        &self,
        actor: &Actor,
        subject: SubjectId,
        barred_until: i64,
    ) -> Result<RequestRow, EngineError> {
        let internal = Internal {
            minor: Some(MinorBar { barred_until }),
            ..Internal::default()
        };
        self.receive(
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

    /// 4.2: data is blocked from the moment a blocking request is received.
    async fn block_at_intake(
        &self,
        row: &RequestRow,
        subject: SubjectId,
    ) -> Result<(), EngineError> {
        let sid = subject.to_string();
        let changed = self
            .store
            .set_subject_status(&sid, "active", "blocked", micros(self.now()), false)
            .await?;
        self.facts.forget(&subject);
        if changed {
            let (details, mut internal) = read_details(&row.details)?;
            internal.blocked_at_intake = true;
            self.store
                .set_request_details(&row.request_id, &store_details(&details, &internal)?)
                .await?;
            // The step says so.
            let notes = self
                .seal_notes(
                    Some(subject),
                    &[(
                        format!("request:{}", row.request_id),
                        "reason:received",
                        Some("data blocked from the moment of the request (4.2)"),
                    )],
                )
                .await?;
            self.store.insert_notes(&notes).await?;
        }
        self.audit(Record::new(&Actor::system(crate::SystemJob::RightsDesk), "subject.blocked").subject(subject).details(serde_json::json!({"request_id": row.request_id, "changed": changed, "at_intake": true})))
        .await?;
        Ok(())
    }

    /// One request with its steps, its free text and why it waits.
    pub async fn request(
        &self,
        actor: &Actor,
        request_id: &str,
    ) -> Result<RequestView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let row = self.request_row(request_id).await?;
        let events = self.store.request_events(request_id).await?;
        let subject = row
            .subject_id
            .as_deref()
            .and_then(|s| SubjectId::parse(s).ok());
        let mut v = self.view_request(row, events)?;
        self.open_request_notes(actor, subject, &mut v).await?;
        self.waiting(&mut v).await?;
        if v.state == RequestState::Completed
            && matches!(v.kind.as_str(), "destruction" | "withdrawal")
        {
            if let Some((content, _)) = self.store.certificate_for_request(request_id).await? {
                v.outcome =
                    crate::destruction::DestructionAnswer::of(&serde_json::from_str(&content)?);
            }
        }
        Ok(v)
    }

    /// The queue: by state, kind, subject; `overdue` for open requests past due.
    /// Free text is shown one request at a time, not in the queue.
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
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut v = self.view_request(r, Vec::new())?;
            v.state_reason = None;
            self.waiting(&mut v).await?;
            out.push(v);
        }
        Ok(out)
    }

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
        let subject = row
            .subject_id
            .as_deref()
            .and_then(|s| SubjectId::parse(s).ok());
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
    async fn step(
        &self,
        actor: &Actor,
        row: &RequestRow,
        from: RequestState,
        to: RequestState,
        note: Option<&str>,
    ) -> Result<(), EngineError> {
        let subject = row
            .subject_id
            .as_deref()
            .and_then(|s| SubjectId::parse(s).ok());
        self.transition(&row.request_id, subject, from, to, note, actor.id())
            .await?;
        self.audit(Record::new(actor, &format!("request.{}", to.as_str())).subject(subject).details(serde_json::json!({"request_id": row.request_id, "kind": row.kind, "from": from.as_str(), "note": note.is_some()})))
        .await?;
        Ok(())
    }

    /// The requester was verified: the request moves on, and derbes works
    /// what it works itself at once.
    async fn verify(&self, actor: &Actor, request_id: &str, note: &str) -> Result<(), EngineError> {
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
        let Some(s) = row
            .subject_id
            .as_deref()
            .and_then(|s| SubjectId::parse(s).ok())
        else {
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
                Some(m) => self.work_minor(request_id, s, m.barred_until).await,
                None => self.work_destruction(request_id, s).await,
            },
            Some(Right::Objection) => self.work_objection(request_id, s, &details).await,
            _ => Ok(()),
        }
    }

    /// A refused request undoes what its intake did: a blocking request
    /// whose requester could not be verified unblocks; a minor's report
    /// found wrong lifts the bar on processing.
    async fn undo_intake(
        &self,
        row: &RequestRow,
        subject: Option<SubjectId>,
        internal: &Internal,
    ) -> Result<(), EngineError> {
        let Some(s) = subject else { return Ok(()) };
        let (from, action) = if internal.blocked_at_intake {
            ("blocked", "subject.unblocked")
        } else if internal.minor.is_some() {
            ("barred_minor", "subject.minor_report_refused")
        } else {
            return Ok(());
        };
        let changed = self
            .store
            .set_subject_status(&s.to_string(), from, "active", micros(self.now()), false)
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
    async fn work_objection(
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
        let sid = subject.to_string();
        let pairs: Vec<(String, String)> = channels
            .iter()
            .flat_map(|c| {
                kinds
                    .iter()
                    .map(move |k| (c.as_str().to_string(), k.as_str().to_string()))
            })
            .collect();
        self.store
            .add_optouts(&sid, &pairs, micros(now), Some(request_id))
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
                            &sid,
                            &c.consent_id.to_string(),
                            micros(now),
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
            (false, Right::Blocking) if status == derbes_core::SubjectStatus::Blocked => {
                Some("blocked since the request was received (4.2)".to_string())
            }
            (false, _) => Some(format!("the subject was not {from}; nothing to change")),
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
            .transition_request(
                request_id,
                from.as_str(),
                to.as_str(),
                actor_id,
                micros(self.now()),
                &notes,
            )
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
        let subject = row
            .subject_id
            .as_deref()
            .and_then(|s| SubjectId::parse(s).ok());
        let mut from = RequestState::IdentityVerified;
        for (i, to) in steps.iter().enumerate() {
            let reason = if i + 1 == steps.len() { note } else { None };
            self.transition(request_id, subject, from, *to, reason, system.id())
                .await?;
            from = *to;
        }
        Ok(())
    }

    /// Put a request's free text and its steps' notes into its view.
    pub(crate) async fn open_request_notes(
        &self,
        actor: &Actor,
        subject: Option<SubjectId>,
        v: &mut RequestView,
    ) -> Result<(), EngineError> {
        let owner = format!("request:{}", v.request_id);
        let mut notes = self
            .open_notes(actor, subject, std::slice::from_ref(&owner))
            .await?;
        v.text = notes.remove(&(owner.clone(), "text".into()));
        for step in &mut v.steps {
            step.reason = notes
                .get(&(owner.clone(), format!("reason:{}", step.to)))
                .cloned();
        }
        v.state_reason = notes.remove(&(owner, format!("reason:{}", v.state.as_str())));
        Ok(())
    }
}
