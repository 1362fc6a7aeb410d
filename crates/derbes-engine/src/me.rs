//! The data subject's own door (`/me`): the app's backend, which has signed
//! its user in, opens a short-lived session scoped to that one subject; the
//! session's holder then sees, copies, corrects, objects, withdraws and
//! complains by themselves, through the same engine paths and the same
//! decision point as the desk.
//!
//! A [`SubjectSession`] is built only from a live session token
//! ([`Engine::subject_session`]); its actor is never handed out, and every
//! method here passes the session's own subject — no caller names one. The
//! decision point denies a subject's actor anything about anyone else
//! (`outside_session`) all the same.

use chrono::{DateTime, Utc};
use derbes_core::{ConsentRequest, ConsentState, EvidenceInput, SubjectId, SubjectStatus};
use derbes_policy::{Capability, Channel, ConsentKind, ContactKind, Right};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::Record;
use crate::{
    Actor, ConsentView, DisclosureView, Engine, EngineError, NewRequest, RequestAction,
    RequestChannel, RequestDetails, RequestView, Requester, SubjectExport,
};

/// How long a session lasts unless the backend asks for less or more.
pub const SESSION_MINUTES_DEFAULT: u32 = 15;
/// The longest a session may last.
pub const SESSION_MINUTES_MAX: u32 = 60;

/// A data subject signed in through the app, for as long as their session
/// lives.
#[derive(Debug, Clone)]
pub struct SubjectSession {
    actor: Actor,
    session_id: String,
    subject: SubjectId,
    expires_at: DateTime<Utc>,
}

impl SubjectSession {
    pub fn subject_id(&self) -> SubjectId {
        self.subject
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

/// A session as the backend sees it (never its token).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    pub session_id: String,
    pub subject_id: SubjectId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<derbes_store::SessionRow> for SessionView {
    fn from(r: derbes_store::SessionRow) -> SessionView {
        SessionView {
            session_id: r.session_id,
            subject_id: r.subject_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// What one channel may carry to the subject.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelView {
    pub channel: Channel,
    /// An active marketing consent on this channel.
    pub marketing: bool,
    /// The kinds of messages the subject objected to on it (`service`,
    /// `marketing`).
    pub objected: Vec<ContactKind>,
}

/// The subject's own page: where they stand, what is held (by category,
/// never values), their consents and channels, their requests, and who
/// received their data.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeView {
    pub subject_id: SubjectId,
    pub status: SubjectStatus,
    /// When this session ends.
    pub session_expires_at: DateTime<Utc>,
    /// The categories of personal data held (ids of the policy).
    pub categories: Vec<String>,
    pub consents: Vec<ConsentView>,
    pub channels: Vec<ChannelView>,
    pub requests: Vec<RequestView>,
    pub disclosures: Vec<DisclosureView>,
}

/// A request the subject files themselves. It is received `in_app`, the
/// requester verified by the session, and worked at once where derbes
/// works it (blocking, objection, withdrawal, destruction); a copy of one's
/// data is asked for at `POST /me/copy`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MyRequest {
    pub kind: Right,
    #[serde(default)]
    pub details: RequestDetails,
    /// Rectification: the corrected values (`category.field` → value).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub values: Option<std::collections::BTreeMap<String, Value>>,
    /// In the subject's words (a complaint, what is wrong); sealed.
    pub text: Option<String>,
}

fn hash(token: &str) -> String {
    derbes_policy::sha256_hex(token.as_bytes())
}

impl Engine {
    /// Open a session for the app's signed-in user (`in_app_requests`):
    /// `minutes` long (15 by default, at most 60). The token is returned
    /// once and kept as SHA-256 only.
    pub async fn open_session(
        &self,
        actor: &Actor,
        subject: SubjectId,
        minutes: Option<u32>,
    ) -> Result<(SessionView, String), EngineError> {
        self.require(actor, Capability::InAppRequests)?;
        let minutes = minutes.unwrap_or(SESSION_MINUTES_DEFAULT);
        if !(1..=SESSION_MINUTES_MAX).contains(&minutes) {
            return Err(EngineError::invalid(
                "minutes",
                "out_of_range",
                format!("1 to {SESSION_MINUTES_MAX} minutes"),
            ));
        }
        self.require_active(subject).await?;
        let mut bytes = [0u8; 32];
        derbes_vault::random_bytes(&mut bytes)?;
        let token = format!("dbm_{}", derbes_vault::hex::encode(&bytes));
        let now = self.now();
        let row = derbes_store::SessionRow {
            session_id: uuid::Uuid::now_v7().to_string(),
            subject_id: subject,
            opened_by: actor.id().to_string(),
            created_at: now,
            expires_at: now + chrono::Duration::minutes(i64::from(minutes)),
            revoked_at: None,
        };
        let mut w = self.write().await?;
        w.insert_session(&row, &hash(&token)).await?;
        self.commit(
            w,
            [Record::new(actor, "session.open").subject(subject).details(
                serde_json::json!({"session_id": row.session_id, "expires_at": crate::micros(row.expires_at)}),
            )],
        )
        .await?;
        Ok((row.into(), token))
    }

    /// End a subject's session (the backend signing its user out);
    /// `false` when it had ended already.
    pub async fn revoke_session(
        &self,
        actor: &Actor,
        subject: SubjectId,
        session_id: &str,
    ) -> Result<bool, EngineError> {
        self.require(actor, Capability::InAppRequests)?;
        self.close_session(actor, subject, session_id).await
    }

    async fn close_session(
        &self,
        actor: &Actor,
        subject: SubjectId,
        session_id: &str,
    ) -> Result<bool, EngineError> {
        let mut w = self.write().await?;
        let done = w.revoke_session(subject, session_id, self.now()).await?;
        self.commit(
            w,
            [Record::new(actor, "session.revoke")
                .subject(subject)
                .details(serde_json::json!({"session_id": session_id, "revoked_now": done}))],
        )
        .await?;
        Ok(done)
    }

    /// The live session a token opens: not revoked, not expired, its
    /// subject not destroyed.
    pub async fn subject_session(
        &self,
        token: &str,
    ) -> Result<Option<SubjectSession>, EngineError> {
        if !token.starts_with("dbm_") || token.len() != 68 {
            return Ok(None);
        }
        Ok(self
            .store
            .live_session(&hash(token), self.now())
            .await?
            .map(|r| SubjectSession {
                actor: Actor::subject(&r.session_id, r.subject_id),
                session_id: r.session_id,
                subject: r.subject_id,
                expires_at: r.expires_at,
            }))
    }

    /// The subject signs out.
    pub async fn end_my_session(&self, s: &SubjectSession) -> Result<(), EngineError> {
        self.close_session(&s.actor, s.subject, &s.session_id)
            .await
            .map(|_| ())
    }

    /// The subject's own page.
    pub async fn me(&self, s: &SubjectSession) -> Result<MeView, EngineError> {
        let st = self.standing(&s.actor, s.subject).await?;
        self.audit(
            Record::new(&s.actor, "me.read")
                .subject(s.subject)
                .categories(&st.categories)
                .details(serde_json::json!({"requests": st.requests.len(), "consents": st.consents.len()})),
        )
        .await?;
        Ok(MeView {
            subject_id: s.subject,
            status: st.row.status,
            session_expires_at: s.expires_at,
            categories: st.categories,
            consents: st.consents,
            channels: st.channels,
            requests: st.requests,
            disclosures: st.disclosures,
        })
    }

    /// A copy of one's data (`access`, with values) or what is done with it
    /// (`information`): an in-app request, verified by the session,
    /// answered by the same export as the desk's and completed at once.
    pub async fn my_copy(
        &self,
        s: &SubjectSession,
        kind: Right,
    ) -> Result<SubjectExport, EngineError> {
        if !matches!(kind, Right::Access | Right::Information) {
            return Err(EngineError::invalid(
                "kind",
                "invalid_kind",
                "`access` or `information`",
            ));
        }
        let filed = self
            .file_in_app(s, kind, RequestDetails::default(), None, None)
            .await?;
        let export = self.export(&s.actor, &filed.request_id).await?;
        self.act_saying(
            &s.actor,
            &filed.request_id,
            RequestAction::Complete,
            None,
            Some(crate::Said::AnsweredInApp),
        )
        .await?;
        Ok(export)
    }

    /// File a request of one's own (`in_app`, verified by the session).
    pub async fn file_my_request(
        &self,
        s: &SubjectSession,
        req: &MyRequest,
    ) -> Result<RequestView, EngineError> {
        if matches!(req.kind, Right::Access | Right::Information) {
            return Err(EngineError::invalid(
                "kind",
                "copy_at_once",
                "a copy of one's data is given at once: POST /api/v1/me/copy",
            ));
        }
        self.file_in_app(
            s,
            req.kind,
            req.details.clone(),
            req.values.clone(),
            req.text.clone(),
        )
        .await
    }

    async fn file_in_app(
        &self,
        s: &SubjectSession,
        kind: Right,
        details: RequestDetails,
        values: Option<std::collections::BTreeMap<String, Value>>,
        text: Option<String>,
    ) -> Result<RequestView, EngineError> {
        self.create_request(
            &s.actor,
            &NewRequest {
                subject_id: Some(s.subject),
                identification: None,
                kind,
                channel: RequestChannel::InApp,
                requester: Requester::Subject,
                representative_id: None,
                received_at: None,
                details,
                values,
                text,
            },
        )
        .await
    }

    /// One's requests, newest first.
    pub async fn my_requests(&self, s: &SubjectSession) -> Result<Vec<RequestView>, EngineError> {
        let queue = crate::Queue {
            subject_id: Some(s.subject),
            limit: 1000,
            ..crate::Queue::default()
        };
        let mut requests = self.requests(&s.actor, &queue).await?;
        requests.reverse();
        Ok(requests)
    }

    /// One of one's requests, with its steps; another's is not found.
    pub async fn my_request(
        &self,
        s: &SubjectSession,
        request_id: &str,
    ) -> Result<RequestView, EngineError> {
        let row = self.request_row(request_id).await?;
        if row.subject_id != Some(s.subject) {
            return Err(EngineError::NotFound("request"));
        }
        self.request(&s.actor, request_id).await
    }

    /// Turn marketing on a channel on (a consent, given in the app) or off
    /// (its consent withdrawn at once).
    pub async fn set_my_channel(
        &self,
        s: &SubjectSession,
        channel: Channel,
        marketing: bool,
    ) -> Result<ChannelView, EngineError> {
        let active: Vec<_> = self
            .consent_views(s.subject)
            .await?
            .into_iter()
            .filter(|c| {
                c.state == ConsentState::Active
                    && c.record.kind == ConsentKind::Marketing
                    && c.record.channel == Some(channel)
            })
            .collect();
        if marketing && active.is_empty() {
            self.add_consent(
                &s.actor,
                s.subject,
                &ConsentRequest {
                    kind: ConsentKind::Marketing,
                    policy_version: None,
                    channel: Some(channel),
                    third_party: None,
                    cross_border: None,
                    expires_in_months: None,
                    notify_of_transfers: None,
                    evidence: EvidenceInput {
                        collected_via: Some(derbes_core::CollectedVia::InApp),
                        app_version: None,
                        client_address: None,
                    },
                },
            )
            .await?;
        } else if !marketing {
            for c in &active {
                self.withdraw_consent(
                    &s.actor,
                    s.subject,
                    c.record.consent_id,
                    &serde_json::json!({"via": "privacy_center"}),
                )
                .await?;
            }
        }
        let consents = self.consent_views(s.subject).await?;
        let optouts = self.store.optouts(s.subject).await?;
        channel_views(&consents, &optouts)
            .into_iter()
            .find(|c| c.channel == channel)
            .ok_or(EngineError::NotFound("channel"))
    }
}

/// Every channel with its marketing consent and objections.
pub(crate) fn channel_views(
    consents: &[ConsentView],
    optouts: &[derbes_store::OptoutRow],
) -> Vec<ChannelView> {
    Channel::ALL
        .iter()
        .map(|&channel| ChannelView {
            channel,
            marketing: consents.iter().any(|c| {
                c.state == ConsentState::Active
                    && c.record.kind == ConsentKind::Marketing
                    && c.record.channel == Some(channel)
            }),
            objected: optouts
                .iter()
                .filter(|o| o.channel == channel.as_str())
                .filter_map(|o| ContactKind::parse(&o.kind))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// The decision point itself keeps a subject's actor to its subject,
    /// whatever a path inside the engine were to ask.
    #[tokio::test]
    async fn a_subjects_actor_reaches_no_one_else() {
        let db = derbes_store::testing::TestDb::sqlite().await;
        let policy = derbes_policy::LoadedPolicy::from_text(
            include_str!("../../../policy/ibusiness.toml").to_string(),
        )
        .unwrap();
        let e = Engine::with_keyring(
            db.store.clone(),
            policy,
            derbes_vault::Keyring::ephemeral(),
            None,
        );
        let backend = Actor::staff("backend", "backend_service");
        let today = derbes_core::almaty_date(e.now());
        let mut ids = Vec::new();
        for i in 0..40 {
            let synthetic = derbes_core::synthetic::subject(7, i, today);
            if synthetic.minor {
                continue;
            }
            let reg: derbes_core::RegistrationRequest =
                serde_json::from_value(synthetic.registration).unwrap();
            ids.push(e.register(&backend, &reg).await.unwrap().subject_id);
            if ids.len() == 2 {
                break;
            }
        }
        let me = Actor::subject("s1", ids[0]);
        let question = |s| crate::DecisionRequest {
            subject_id: s,
            operation: derbes_policy::Operation::Extraction,
            purpose: "subject_requests".into(),
            categories: vec!["identity".into()],
            recipient: None,
            channel: None,
            legal_basis: None,
            reference: None,
        };
        let facts = e.subject_facts(ids[0]).await.unwrap();
        assert!(e
            .decide_and_audit(&me, &question(ids[0]), &facts, "test", Value::Null)
            .await
            .is_ok());
        let facts = e.subject_facts(ids[1]).await.unwrap();
        let Err(EngineError::Denied { reasons, .. }) = e
            .decide_and_audit(&me, &question(ids[1]), &facts, "test", Value::Null)
            .await
        else {
            panic!("another subject's data permitted to a session")
        };
        assert!(reasons.iter().any(|r| r.code == "outside_session"));
        // And no capability beyond the subject's own.
        assert!(e.require(&me, Capability::Lookup).is_err());
        assert!(e.require(&me, Capability::Rectify).is_err());
        assert!(e.require(&me, Capability::RecordConsents).is_ok());
    }
}
