//! The rights desk: data-subject requests — their types, their stored
//! details, and how they are shown (views, why a destruction waits). How
//! they are received is `intake.rs`; how they are worked, `workflow.rs`.

use chrono::{DateTime, FixedOffset, Utc};
use derbes_core::SubjectId;
use derbes_policy::{Capability, Right};
use derbes_store::{RequestEvent, RequestFilter, RequestRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Actor, Engine, EngineError};

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

pub use derbes_core::RequestState;

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
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub received_at: Option<DateTime<FixedOffset>>,
    /// What the kind needs, as codes (never personal data).
    #[serde(default)]
    pub details: RequestDetails,
    /// Rectification: the corrected values the requester gives
    /// (`category.field` → value), checked as they are received and kept
    /// sealed under the subject's key until the desk applies them.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub values: Option<std::collections::BTreeMap<String, Value>>,
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
pub(crate) struct Internal {
    /// A minor's report (7.7): when the bar on the IIN the subject
    /// registered with ends (the minor's 18th birthday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) minor: Option<MinorBar>,
    /// The subject was blocked by this request at intake (4.2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) blocked_at_intake: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MinorBar {
    pub(crate) barred_until: i64,
}

/// The stored details: what was asked, and derbes' own notes under `derbes`.
pub(crate) fn store_details(
    asked: &RequestDetails,
    internal: &Internal,
) -> Result<String, EngineError> {
    let mut v = serde_json::to_value(asked)?;
    if *internal != Internal::default() {
        if let Value::Object(m) = &mut v {
            m.insert("derbes".into(), serde_json::to_value(internal)?);
        }
    }
    Ok(v.to_string())
}

/// The stored details read back; damage is refused, never guessed.
pub(crate) fn read_details(stored: &str) -> Result<(RequestDetails, Internal), EngineError> {
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

/// Which requests the queue shows.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    pub state: Option<RequestState>,
    pub kind: Option<Right>,
    pub subject_id: Option<SubjectId>,
    /// Only those neither completed nor refused.
    pub open: bool,
    /// Only open ones past their due date.
    pub overdue: bool,
    /// Only those due before this instant.
    pub due_before: Option<DateTime<Utc>>,
    /// At most this many (1 to 10,000).
    pub limit: i64,
}

/// One step of a request.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestStep {
    pub at: DateTime<Utc>,
    /// A staff token's id, `system:<job>`, or `subject:<session>` (the
    /// user, through their own door).
    pub actor: String,
    /// The staff member's name, where a staff token acted (one request
    /// shown at a time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    pub from: Option<RequestState>,
    pub to: RequestState,
    /// What the person who took the step wrote (only where a single
    /// request is shown).
    pub reason: Option<String>,
    /// What derbes itself says of the step: a code with its particulars,
    /// which each page words in its own language (only where a single
    /// request is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub said: Option<Said>,
}

/// What derbes itself says of a request's step: never prose in one
/// language, a code the desk, the privacy center and the CLI word in theirs.
/// Sealed with the step like a person's note (`said:<state>`), so a staff
/// member's note can never pass for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Said {
    /// A blocking request blocked the data as it was received (4.2).
    BlockedAtIntake,
    /// Filed in the app: the app's sign-in verified who asked.
    VerifiedInApp,
    /// Answered at once in the app (a copy, information on processing).
    AnsweredInApp,
    /// The fields corrected (names, never values).
    Corrected { fields: Vec<String> },
    /// Refused: the data blocked since the request was received is unblocked.
    UnblockedOnRefusal,
    /// A blocking request: the data was already blocked since it was received.
    AlreadyBlocked,
    /// Nothing to change: the subject was not in the status the request
    /// changes (`active` for blocking, `blocked` for unblocking).
    NothingToChange { status: String },
    /// Refused: obligations the person has not met stand (each its kind and
    /// reference).
    OutstandingObligations { obligations: Vec<String> },
}

impl std::fmt::Display for Said {
    /// The English words (the CLI's text output).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Said::BlockedAtIntake => {
                f.write_str("data blocked from the moment of the request (4.2)")
            }
            Said::VerifiedInApp => {
                f.write_str("identity verified by the app's sign-in (in-app request)")
            }
            Said::AnsweredInApp => f.write_str("answered in the app"),
            Said::Corrected { fields } => write!(f, "corrected: {}", fields.join(", ")),
            Said::UnblockedOnRefusal => {
                f.write_str("the data blocked since the request was received is unblocked")
            }
            Said::AlreadyBlocked => f.write_str("blocked since the request was received (4.2)"),
            Said::NothingToChange { status } => {
                write!(f, "the subject was not {status}; nothing to change")
            }
            Said::OutstandingObligations { obligations } => {
                write!(f, "outstanding obligations: {}", obligations.join("; "))
            }
        }
    }
}

/// A request as the desk sees it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestView {
    pub request_id: String,
    pub subject_id: Option<SubjectId>,
    pub kind: String,
    pub channel: String,
    pub requester: String,
    pub received_at: DateTime<Utc>,
    /// The deadline: the end of the last working day, Asia/Almaty (RFC 3339 with offset).
    pub due: String,
    pub state: RequestState,
    /// What the person who took the last step wrote (only where a single
    /// request is shown).
    pub state_reason: Option<String>,
    /// What derbes says of the last step (only where a single request is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_said: Option<Said>,
    pub overdue: bool,
    pub details: RequestDetails,
    /// `minor` for a minor's report (7.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground: Option<String>,
    /// Why its destruction waits: `subject_blocked`, `legal_hold`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    /// The connected systems it still waits for (`waiting` then holds
    /// `connected_systems`): it completes when they confirm.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub awaiting: Vec<crate::Awaiting>,
    /// The request's free text (only where a single request is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A rectification's corrected values as the requester gave them (only
    /// where a single request is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub values: Option<std::collections::BTreeMap<String, Value>>,
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

impl RequestChannel {
    /// The name stored and shown (its JSON name).
    pub fn as_str(self) -> &'static str {
        match self {
            RequestChannel::InApp => "in_app",
            RequestChannel::Written => "written",
            RequestChannel::Email => "email",
            RequestChannel::Authority => "authority",
            RequestChannel::Operator => "operator",
        }
    }
}

impl Requester {
    /// The name stored and shown (its JSON name).
    pub fn as_str(self) -> &'static str {
        match self {
            Requester::Subject => "subject",
            Requester::LegalRepresentative => "legal_representative",
            Requester::AuthorisedBody => "authorised_body",
            Requester::Operator => "operator",
        }
    }
}

impl RequestAction {
    /// Its JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestAction::Verify => "verify",
            RequestAction::Start => "start",
            RequestAction::Complete => "complete",
            RequestAction::Refuse => "refuse",
        }
    }
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
        let ok = match row.state {
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
        let subject = row.subject_id.ok_or_else(|| {
            EngineError::invalid(
                "request_id",
                "no_subject",
                "the request names no subject that derbes holds",
            )
        })?;
        Ok((row, subject))
    }

    /// The roles complaints are routed to.
    pub(crate) fn complaint_roles(&self) -> Vec<String> {
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
        let state = r.state;
        let due = r
            .due_at
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
            overdue: !state.is_final() && self.now() > r.due_at,
            request_id: r.request_id,
            subject_id: r.subject_id,
            kind: r.kind,
            channel: r.channel,
            requester: r.requester,
            received_at: r.received_at,
            due,
            state,
            state_reason: r.state_reason,
            state_said: None,
            details,
            ground: internal.minor.map(|_| "minor".to_string()),
            waiting: Vec::new(),
            awaiting: Vec::new(),
            text: None,
            values: None,
            outcome: None,
            steps: events
                .into_iter()
                .map(|e| RequestStep {
                    at: e.at,
                    actor: e.actor,
                    actor_name: None,
                    from: e.from_state,
                    to: e.to_state,
                    reason: e.reason,
                    said: None,
                })
                .collect(),
        })
    }

    /// Why a destruction this request ordered waits, if it does, and the
    /// connected systems an in-progress request waits for.
    pub(crate) async fn waiting(&self, v: &mut RequestView) -> Result<(), EngineError> {
        if v.state == RequestState::InProgress {
            v.awaiting = self.awaiting(&v.request_id).await?;
            if !v.awaiting.is_empty() {
                v.waiting.push("connected_systems".into());
            }
        }
        let destroys = matches!(v.kind.as_str(), "destruction" | "withdrawal");
        if !destroys || v.state != RequestState::InProgress {
            return Ok(());
        }
        if let Some(s) = v.subject_id {
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

    /// One request with its steps, its free text and why it waits.
    pub async fn request(
        &self,
        actor: &Actor,
        request_id: &str,
    ) -> Result<RequestView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let row = self.request_row(request_id).await?;
        let events = self.store.request_events(request_id).await?;
        let subject = row.subject_id;
        let mut v = self.view_request(row, events)?;
        self.open_request_notes(actor, subject, &mut v).await?;
        if v.steps.iter().any(|s| !s.actor.contains(':')) {
            let names: std::collections::HashMap<String, String> = self
                .store
                .tokens()
                .await?
                .into_iter()
                .map(|t| (t.token_id, t.name))
                .collect();
            for step in &mut v.steps {
                step.actor_name = names.get(&step.actor).cloned();
            }
        }
        self.waiting(&mut v).await?;
        if v.state == RequestState::Completed
            && matches!(v.kind.as_str(), "destruction" | "withdrawal")
        {
            if let Some(c) = self.store.certificate_for_request(request_id).await? {
                let content = c.content;
                v.outcome =
                    crate::destruction::DestructionAnswer::of(&serde_json::from_str(&content)?);
            }
        }
        Ok(v)
    }

    /// The queue, soonest due first: by state, kind, subject; only the open
    /// ones; only those past due (`overdue`) or due before an instant.
    /// Free text is shown one request at a time, not in the queue.
    pub async fn requests(
        &self,
        actor: &Actor,
        q: &Queue,
    ) -> Result<Vec<RequestView>, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let rows = self
            .store
            .requests(&RequestFilter {
                state: q.state,
                kind: q.kind.map(|k| k.as_str().to_string()),
                subject_id: q.subject_id,
                overdue_at: q.overdue.then(|| self.now()),
                open: q.open,
                due_before: q.due_before,
                limit: q.limit,
            })
            .await?;
        self.listed(rows).await
    }

    /// Requests as a list shows them: no free text, why each waits.
    pub(crate) async fn listed(
        &self,
        rows: Vec<RequestRow>,
    ) -> Result<Vec<RequestView>, EngineError> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut v = self.view_request(r, Vec::new())?;
            v.state_reason = None;
            self.waiting(&mut v).await?;
            out.push(v);
        }
        Ok(out)
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
        v.values = match notes.remove(&(owner.clone(), "values".into())) {
            Some(json) => Some(serde_json::from_str(&json)?),
            None => None,
        };
        let said = |state: RequestState| -> Result<Option<Said>, EngineError> {
            match notes.get(&(owner.clone(), format!("said:{}", state.as_str()))) {
                Some(json) => Ok(Some(serde_json::from_str(json)?)),
                None => Ok(None),
            }
        };
        for step in &mut v.steps {
            step.reason = notes
                .get(&(owner.clone(), format!("reason:{}", step.to.as_str())))
                .cloned();
            step.said = said(step.to)?;
        }
        v.state_said = said(v.state)?;
        v.state_reason = notes.remove(&(owner, format!("reason:{}", v.state.as_str())));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored names are the JSON names, variant for variant.
    #[test]
    fn names_are_the_json_names() {
        fn json<T: Serialize>(v: T) -> String {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        }
        use RequestChannel as C;
        for c in [C::InApp, C::Written, C::Email, C::Authority, C::Operator] {
            assert_eq!(c.as_str(), json(c));
        }
        use Requester as R;
        for r in [
            R::Subject,
            R::LegalRepresentative,
            R::AuthorisedBody,
            R::Operator,
        ] {
            assert_eq!(r.as_str(), json(r));
        }
        use RequestAction as A;
        for a in [A::Verify, A::Start, A::Complete, A::Refuse] {
            assert_eq!(a.as_str(), json(a));
        }
    }
}
