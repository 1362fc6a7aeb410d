//! The systems around derbes that must follow what it does, and the
//! transactional outbox that tells them.
//!
//! Every door that changes what a system must follow — a destruction, a
//! block or unblock, a withdrawal, an objection, a rectification, a notice
//! — calls [`Engine::follow_in`] inside its own unit of work: the events
//! commit with the change or not at all. An event that gates a request (its
//! `request_id`) keeps the request from completing until the system
//! confirms (the store refuses the step; see `derbes_store::outbox`); the
//! last confirmation completes it, in the confirmation's unit of work.

use chrono::{DateTime, Utc};
use derbes_core::SubjectId;
use derbes_policy::Capability;
use derbes_store::{EventFilter, EventRow, EventState, NewEvent, SystemRow, Write};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::Record;
use crate::{Actor, Engine, EngineError, RequestState};

/// How long a signature's timestamp stays acceptable, either way.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// A system to connect.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSystem {
    /// Its name: lowercase snake_case, 1 to 64 characters.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z][a-z0-9_]{0,63}$"))]
    pub name: String,
    /// The policy's categories of personal data it holds.
    pub categories: Vec<String>,
    /// It delivers the app's notices to users (SMS, push).
    #[serde(default)]
    pub sends_notices: bool,
    /// An `https://` URL (or `http://` on loopback) that receives signed events.
    pub webhook: Option<String>,
    /// A NATS JetStream subject that receives the events.
    pub nats_subject: Option<String>,
    /// `delivery` (a 2xx answer or the JetStream ack confirms) or
    /// `callback` (the system confirms each event when it has followed it).
    /// Default: `delivery` for a webhook, `callback` for NATS.
    pub confirm: Option<String>,
}

/// A connected system (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemView {
    pub name: String,
    pub categories: Vec<String>,
    pub sends_notices: bool,
    /// `webhook` or `nats`.
    pub transport: String,
    pub target: String,
    /// `delivery` or `callback`.
    pub confirm: String,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// A system just connected, with its signing secret: shown this once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectedSystem {
    pub system: SystemView,
    /// HMAC-SHA256 key (hex) of `X-Derbes-Signature`: the system verifies
    /// events and signs confirmations with it.
    pub secret: String,
}

/// An outbox event as the officer sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventView {
    pub event_id: String,
    pub system: String,
    pub kind: String,
    pub subject_id: Option<String>,
    /// The request that completes only once this is confirmed.
    pub request_id: Option<String>,
    pub notice_id: Option<String>,
    /// `pending`, `delivered`, `confirmed` or `dead`.
    pub state: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// What went wrong last (a code and a status, never a body).
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// `delivery`, `callback`, or the officer who confirmed by hand.
    pub confirmed_by: Option<String>,
    /// The event exactly as delivered.
    pub payload: Value,
}

/// Which events to list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OutboxQuery {
    pub state: Option<String>,
    pub system: Option<String>,
    pub subject_id: Option<SubjectId>,
    pub request_id: Option<String>,
    pub limit: Option<i64>,
}

/// A change the connected systems must follow.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// Categories destroyed (all a system holds of them). When the whole
    /// person goes (`whole_person`), every system holding anything of them
    /// is told, with what derbes alone keeps by law (`kept_by_law`): the
    /// copies elsewhere are not needed for it.
    Destroyed {
        categories: Vec<String>,
        kept_by_law: Vec<String>,
        whole_person: bool,
        ground: &'static str,
        certificate_id: String,
    },
    /// Processing stops (4.2, or a minor's report).
    Blocked {
        reason: &'static str,
    },
    Unblocked,
    /// A consent withdrawn: what it covered may no longer be processed
    /// (`categories` empty: the whole person — the policy consent, or a
    /// channel's marketing consent).
    ConsentWithdrawn {
        consent: derbes_policy::ConsentKind,
        categories: Vec<String>,
    },
    /// No more messages of these kinds on these channels.
    Objection {
        channels: Vec<String>,
        kinds: Vec<String>,
    },
    /// Fields corrected: names only, never values.
    Rectified {
        fields: Vec<String>,
    },
    /// A notice the app's sender delivers.
    Notice {
        notice_id: String,
        kind: &'static str,
        text: derbes_policy::Text,
    },
}

impl Change {
    fn kind(&self) -> &'static str {
        match self {
            Change::Destroyed { .. } => "subject.destroyed",
            Change::Blocked { .. } => "subject.blocked",
            Change::Unblocked => "subject.unblocked",
            Change::ConsentWithdrawn { .. } => "consent.withdrawn",
            Change::Objection { .. } => "subject.objection",
            Change::Rectified { .. } => "subject.rectified",
            Change::Notice { .. } => "notice.send",
        }
    }

    /// The clause of the policy or the Law it follows.
    fn clause(&self) -> &'static str {
        match self {
            Change::Destroyed { ground, .. } if ground.contains("7.11") => "7.11",
            Change::Destroyed { .. } => "Law 94-V art. 24",
            Change::Blocked { .. } | Change::Unblocked => "4.2",
            Change::ConsentWithdrawn { .. } | Change::Objection { .. } => "7.11",
            Change::Rectified { .. } => "Law 94-V art. 24",
            Change::Notice {
                kind: "transfer", ..
            } => "Law 94-V art. 19",
            Change::Notice {
                kind: "reconsent", ..
            } => "7.6",
            Change::Notice { .. } => "Law 94-V art. 25",
        }
    }

    /// Does `system` hold what this change concerns?
    fn concerns(&self, system: &SystemRow, held: &[String]) -> bool {
        let any = |cats: &[String]| cats.iter().any(|c| held.contains(c));
        match self {
            Change::Destroyed {
                whole_person: true, ..
            } => !held.is_empty(),
            Change::Destroyed { categories, .. } => any(categories),
            Change::ConsentWithdrawn { categories, .. } if !categories.is_empty() => {
                any(categories)
            }
            Change::Rectified { fields } => fields
                .iter()
                .any(|f| held.iter().any(|c| f.split('.').next() == Some(c.as_str()))),
            Change::Notice { .. } => system.sends_notices,
            // The whole person: every system that holds anything of them,
            // and the sender of the app's messages.
            Change::Blocked { .. }
            | Change::Unblocked
            | Change::Objection { .. }
            | Change::ConsentWithdrawn { .. } => !held.is_empty() || system.sends_notices,
        }
    }

    fn data(&self) -> Value {
        match self {
            Change::Destroyed {
                categories,
                kept_by_law,
                whole_person,
                ground,
                certificate_id,
            } => json!({"categories": categories, "kept_by_law": kept_by_law,
                        "whole_person": whole_person, "ground": ground,
                        "certificate_id": certificate_id}),
            Change::Blocked { reason } => json!({"reason": reason}),
            Change::Unblocked => json!({}),
            Change::ConsentWithdrawn {
                consent,
                categories,
            } => json!({"consent": consent, "categories": categories}),
            Change::Objection { channels, kinds } => json!({"channels": channels, "kinds": kinds}),
            Change::Rectified { fields } => json!({"fields": fields}),
            Change::Notice {
                notice_id,
                kind,
                text,
            } => json!({"notice_id": notice_id, "notice": kind, "text": text}),
        }
    }
}

/// What a change is about: its subject, the request it answers (and
/// whether that request waits for the systems), its due date.
#[derive(Debug, Clone, Default)]
pub(crate) struct About<'a> {
    pub subject: Option<SubjectId>,
    pub request_id: Option<&'a str>,
    /// The request completes only once every system confirmed.
    pub gates: bool,
    pub due_at: Option<DateTime<Utc>>,
}

pub(crate) fn system_view(s: SystemRow) -> SystemView {
    SystemView {
        categories: serde_json::from_str(&s.categories).unwrap_or_default(),
        name: s.system_id,
        sends_notices: s.sends_notices,
        transport: s.transport,
        target: s.target,
        confirm: s.confirm,
        created_at: s.created_at,
        removed_at: s.removed_at,
    }
}

pub(crate) fn event_view(e: EventRow) -> EventView {
    EventView {
        payload: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
        next_attempt_at: (e.state == EventState::Pending).then_some(e.next_at),
        event_id: e.event_id,
        system: e.system_id,
        kind: e.kind,
        subject_id: e.subject_id.map(|s| s.to_string()),
        request_id: e.request_id,
        notice_id: e.notice_id,
        state: e.state.as_str().to_string(),
        attempts: e.attempts,
        created_at: e.created_at,
        due_at: e.due_at,
        last_error: e.last_error,
        delivered_at: e.delivered_at,
        confirmed_at: e.confirmed_at,
        confirmed_by: e.confirmed_by,
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<message>")>`.
pub fn sign(secret: &[u8], t: i64, message: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(message);
    format!("t={t},v1={}", hex(ctx.sign().as_ref()))
}

/// Check a `sign` header against `message` at `now`: the signature must
/// match and its time be within [`SIGNATURE_TOLERANCE_SECS`].
pub fn verify_signature(secret: &[u8], header: &str, message: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return false;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut signed = Vec::with_capacity(message.len() + 24);
    signed.extend_from_slice(t.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(message);
    v1.iter()
        .any(|v| unhex(v).is_some_and(|mac| ring::hmac::verify(&key, &signed, &mac).is_ok()))
}

/// The message a system signs to confirm an event.
pub fn confirmation_message(event_id: &str) -> Vec<u8> {
    format!("confirm.{event_id}").into_bytes()
}

pub(crate) use derbes_policy::hex;

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn is_loopback_http(url: &str) -> bool {
    let rest = url.trim_start_matches("http://");
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// A webhook URL derbes will post to: `https://host…`, or `http://` to a
/// loopback address (a receiver on the same machine).
fn check_webhook(url: &str) -> Result<(), EngineError> {
    let ok_chars = url.len() <= 2000 && url.chars().all(|c| c.is_ascii_graphic());
    let host_present = |rest: &str| {
        rest.split(['/', '?', '#'])
            .next()
            .is_some_and(|h| !h.is_empty() && !h.contains('@'))
    };
    let ok = ok_chars
        && match url.strip_prefix("https://") {
            Some(rest) => host_present(rest),
            None => {
                url.starts_with("http://")
                    && host_present(url.trim_start_matches("http://"))
                    && is_loopback_http(url)
            }
        };
    if ok {
        Ok(())
    } else {
        Err(EngineError::invalid(
            "webhook",
            "invalid_webhook",
            "an https:// URL with a host (no credentials), or http:// to 127.0.0.1, [::1] or localhost",
        ))
    }
}

/// A JetStream subject: dot-separated tokens of letters, digits, `-` and `_`.
fn check_subject(subject: &str) -> Result<(), EngineError> {
    let ok = !subject.is_empty()
        && subject.len() <= 200
        && subject.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(EngineError::invalid(
            "nats_subject",
            "invalid_subject",
            "dot-separated tokens of letters, digits, `-` and `_` (no wildcards), at most 200 characters",
        ))
    }
}

impl Engine {
    /// Connect a system; its signing secret is returned this once.
    pub async fn connect_system(
        &self,
        actor: &Actor,
        s: &NewSystem,
    ) -> Result<ConnectedSystem, EngineError> {
        self.require(actor, Capability::ManageSystems)?;
        let name_ok = s.name.len() <= 64
            && s.name.starts_with(|c: char| c.is_ascii_lowercase())
            && s.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(EngineError::invalid(
                "name",
                "invalid_name",
                "lowercase snake_case: a-z, 0-9 and _, starting with a letter, at most 64 characters",
            ));
        }
        let p = self.policy.policy();
        let categories = crate::known_categories(p, &s.categories)?;
        if categories.is_empty() && !s.sends_notices {
            return Err(EngineError::invalid(
                "categories",
                "nothing_held",
                "a connected system holds at least one category, or sends the app's notices",
            ));
        }
        let (transport, target) = match (&s.webhook, &s.nats_subject) {
            (Some(url), None) => {
                check_webhook(url)?;
                ("webhook", url.clone())
            }
            (None, Some(subject)) => {
                check_subject(subject)?;
                ("nats", subject.clone())
            }
            _ => {
                return Err(EngineError::invalid(
                    "webhook",
                    "one_transport",
                    "exactly one of `webhook` and `nats_subject`",
                ))
            }
        };
        let confirm = match s.confirm.as_deref() {
            None if transport == "webhook" => "delivery",
            None => "callback",
            Some(c) => {
                crate::one_of("confirm", "invalid_confirm", c, &["delivery", "callback"])?;
                if c == "delivery" {
                    "delivery"
                } else {
                    "callback"
                }
            }
        };
        let mut secret = [0u8; 32];
        derbes_vault::random_bytes(&mut secret)?;
        let secret = hex(&secret);
        let row = SystemRow {
            system_id: s.name.clone(),
            categories: serde_json::to_string(&categories)?,
            sends_notices: s.sends_notices,
            transport: transport.into(),
            target,
            confirm: confirm.into(),
            created_at: self.now(),
            removed_at: None,
        };
        let notes = self
            .seal_notes(
                None,
                &[(format!("system:{}", s.name), "secret", Some(&secret))],
            )
            .await?;
        let mut w = self.write().await?;
        w.add_system(&row, &notes).await.map_err(|e| match e {
            derbes_store::StoreError::Duplicate(_) => EngineError::invalid(
                "name",
                "duplicate_system",
                "a system of this name is (or was) connected",
            ),
            e => e.into(),
        })?;
        self.commit(
            w,
            [Record::new(actor, "system.connect").details(json!({
                "system": row.system_id, "categories": categories, "transport": row.transport,
                "sends_notices": row.sends_notices, "confirm": row.confirm,
            }))],
        )
        .await?;
        Ok(ConnectedSystem {
            system: system_view(row),
            secret,
        })
    }

    /// The connected systems (and removed ones when `removed`).
    pub async fn systems(
        &self,
        actor: &Actor,
        removed: bool,
    ) -> Result<Vec<SystemView>, EngineError> {
        if self.require(actor, Capability::ManageSystems).is_err() {
            self.require(actor, Capability::WorkRequests)?;
        }
        Ok(self
            .store
            .systems(removed)
            .await?
            .into_iter()
            .map(system_view)
            .collect())
    }

    /// Disconnect a system: what it had not confirmed goes dead, for the
    /// officer to confirm by hand (with a reason) or leave waiting.
    pub async fn disconnect_system(&self, actor: &Actor, name: &str) -> Result<(), EngineError> {
        self.require(actor, Capability::ManageSystems)?;
        let mut w = self.write().await?;
        if !w.remove_system(name, self.now()).await? {
            return Err(EngineError::NotFound("system"));
        }
        self.commit(
            w,
            [Record::new(actor, "system.disconnect").details(json!({"system": name}))],
        )
        .await?;
        Ok(())
    }

    /// Events for `change`, one per connected system it concerns, written
    /// in `w` with the change; how many.
    pub(crate) async fn follow_in(
        &self,
        w: &mut Write,
        about: &About<'_>,
        change: Change,
    ) -> Result<usize, EngineError> {
        let systems = w.systems().await?;
        let events = self.events_for(&systems, about, &change);
        w.enqueue(&events, self.now()).await?;
        Ok(events.len())
    }

    /// Events for `change`, one per system of `systems` it concerns.
    pub(crate) fn events_for(
        &self,
        systems: &[SystemRow],
        about: &About<'_>,
        change: &Change,
    ) -> Vec<NewEvent> {
        let now = self.now();
        let mut events = Vec::new();
        for s in systems {
            let held: Vec<String> = serde_json::from_str(&s.categories).unwrap_or_default();
            if !change.concerns(s, &held) {
                continue;
            }
            let event_id = uuid::Uuid::now_v7().to_string();
            let payload = json!({
                "event_id": event_id,
                "kind": change.kind(),
                "system": s.system_id,
                "occurred_at": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "subject_id": about.subject,
                "request_id": about.request_id,
                "clause": change.clause(),
                "due_at": about.due_at.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                "data": change.data(),
            });
            events.push(NewEvent {
                event_id,
                system_id: s.system_id.clone(),
                subject_id: about.subject,
                kind: change.kind().to_string(),
                request_id: about.request_id.filter(|_| about.gates).map(String::from),
                notice_id: match change {
                    Change::Notice { notice_id, .. } => Some(notice_id.clone()),
                    _ => None,
                },
                payload: payload.to_string(),
                due_at: about.due_at,
            });
        }
        events
    }

    /// Events for the officer.
    pub async fn outbox(
        &self,
        actor: &Actor,
        q: &OutboxQuery,
    ) -> Result<Vec<EventView>, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let state = match q.state.as_deref() {
            None => None,
            Some(s) => Some(EventState::parse(s).ok_or_else(|| {
                EngineError::invalid(
                    "state",
                    "invalid_state",
                    "`pending`, `delivered`, `confirmed` or `dead`",
                )
            })?),
        };
        let rows = self
            .store
            .events(&EventFilter {
                state,
                system_id: q.system.clone(),
                subject_id: q.subject_id,
                request_id: q.request_id.clone(),
                limit: q.limit.unwrap_or(100),
            })
            .await?;
        Ok(rows.into_iter().map(event_view).collect())
    }

    /// One event.
    pub async fn outbox_event(
        &self,
        actor: &Actor,
        event_id: &str,
    ) -> Result<EventView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        Ok(event_view(self.event_row(event_id).await?))
    }

    async fn event_row(&self, event_id: &str) -> Result<EventRow, EngineError> {
        self.store
            .event(event_id)
            .await?
            .ok_or(EngineError::NotFound("event"))
    }

    /// Try a dead event again (audited).
    pub async fn retry_event(
        &self,
        actor: &Actor,
        event_id: &str,
    ) -> Result<EventView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let row = self.event_row(event_id).await?;
        let mut w = self.write().await?;
        if !w.retry_event(event_id, self.now()).await? {
            return Err(EngineError::invalid(
                "event",
                "not_dead",
                format!(
                    "only a dead event of a connected system is retried; this one is {}",
                    row.state.as_str()
                ),
            ));
        }
        self.commit(
            w,
            [Record::new(actor, "outbox.retry")
                .subject(row.subject_id)
                .details(json!({"event_id": event_id, "system": row.system_id}))],
        )
        .await?;
        self.outbox_event(actor, event_id).await
    }

    /// The officer confirms by hand that a system followed an event (it
    /// cannot be reached, or confirmed another way); the reason is sealed.
    pub async fn confirm_event_manually(
        &self,
        actor: &Actor,
        event_id: &str,
        reason: &str,
    ) -> Result<EventView, EngineError> {
        self.require(actor, Capability::ApproveIrreversible)?;
        let reason = derbes_core::free_text("reason", reason, 2000)
            .map_err(|p| EngineError::Invalid(vec![p]))?;
        if reason.is_empty() {
            return Err(EngineError::invalid(
                "reason",
                "reason_required",
                "a manual confirmation says how the system's compliance was established",
            ));
        }
        let row = self.event_row(event_id).await?;
        // Under the subject's key; a destroyed subject's (the event that
        // told a system to destroy) under the event's own.
        let texts = [(
            format!("event:{event_id}"),
            "reason:confirmed",
            Some(reason.as_str()),
        )];
        let notes = match self.seal_notes(row.subject_id, &texts).await {
            Err(EngineError::Destroyed) => self.seal_notes(None, &texts).await?,
            other => other?,
        };
        self.settle(actor, event_id, actor.id(), "manual", &notes)
            .await?;
        self.outbox_event(actor, event_id).await
    }

    /// The system confirms an event it has followed, signing
    /// `confirm.<event id>` with its secret (`X-Derbes-Signature`).
    pub async fn confirm_event_by_system(
        &self,
        event_id: &str,
        signature: &str,
    ) -> Result<EventView, EngineError> {
        // An unknown event and a bad signature look the same from outside.
        let forbidden = EngineError::Forbidden("confirm_event_without_valid_signature");
        let Some(row) = self.store.event(event_id).await? else {
            return Err(forbidden);
        };
        let secret = match self.system_secret(&row.system_id).await {
            Ok(s) => s,
            Err(EngineError::NotFound(_)) => return Err(forbidden),
            Err(e) => return Err(e),
        };
        if !verify_signature(
            &secret,
            signature,
            &confirmation_message(event_id),
            self.now().timestamp(),
        ) {
            return Err(forbidden);
        }
        let actor = Actor::connected_system(&row.system_id);
        self.settle(&actor, event_id, "callback", "callback", &[])
            .await?;
        Ok(event_view(self.event_row(event_id).await?))
    }

    /// The signing secret of a connected system.
    pub async fn system_secret(&self, system_id: &str) -> Result<Vec<u8>, EngineError> {
        let owner = format!("system:{system_id}");
        let rows = self.store.notes(None, std::slice::from_ref(&owner)).await?;
        let row = rows
            .into_iter()
            .find(|r| r.name == "secret")
            .ok_or(EngineError::NotFound("system"))?;
        let key = self.owner_key(&owner, false).await?;
        let text = self.open_sealed(
            &key,
            &owner,
            &crate::notes::label(&owner, "secret"),
            &row.sealed,
        )?;
        Ok(text.into_bytes())
    }

    /// Confirm an event (by `by`) and, in the same unit of work, what it
    /// settles: its notice is sent; its request, if nothing else is
    /// awaited, completed.
    async fn settle(
        &self,
        actor: &Actor,
        event_id: &str,
        by: &str,
        how: &str,
        notes: &[derbes_store::NoteRow],
    ) -> Result<(), EngineError> {
        let row = self.event_row(event_id).await?;
        if row.state == EventState::Confirmed {
            return Ok(());
        }
        let now = self.now();
        let mut w = self.write().await?;
        let Some(confirmed) = w.confirm_event(event_id, now, by).await? else {
            return Ok(());
        };
        w.insert_notes(notes).await?;
        let mut records = vec![self.audit_record(
            Record::new(actor, "outbox.confirmed")
                .subject(confirmed.subject_id)
                .details(json!({"event_id": event_id, "system": confirmed.system_id, "kind": confirmed.kind, "by": how, "request_id": confirmed.request_id})),
        )?];
        records.extend(self.settled_in(&mut w, &confirmed, now).await?);
        for r in records {
            w.audit(r);
        }
        w.commit().await?;
        Ok(())
    }

    /// What a confirmed event settles, in `w`: its notice sent, its request
    /// completed when nothing else is awaited. The audit records of that.
    async fn settled_in(
        &self,
        w: &mut Write,
        e: &EventRow,
        now: DateTime<Utc>,
    ) -> Result<Vec<derbes_store::NewAuditRecord>, EngineError> {
        let mut out = Vec::new();
        if let Some(n) = &e.notice_id {
            w.notice_sent(n, now).await?;
        }
        let Some(request_id) = &e.request_id else {
            return Ok(out);
        };
        // Decided inside this unit, the request's row locked: a step
        // running at once either sees this confirmation or is seen by it.
        if let Some((req, 0)) = w.request_waiting(request_id).await? {
            if req.state == RequestState::InProgress {
                let system = Actor::system(crate::SystemJob::RightsDesk);
                w.transition_request(
                    request_id,
                    RequestState::InProgress,
                    RequestState::Completed,
                    system.id(),
                    now,
                    &[],
                )
                .await?;
                out.push(self.audit_record(
                    Record::new(&system, "request.completed")
                        .subject(req.subject_id)
                        .details(json!({"request_id": req.request_id, "kind": req.kind, "from": "in_progress", "note": false, "systems_confirmed": true})),
                )?);
            }
        }
        Ok(out)
    }

    /// The relay: events due now, with their systems.
    pub async fn due_deliveries(
        &self,
        limit: i64,
    ) -> Result<Vec<(EventRow, SystemRow)>, EngineError> {
        let events = self.store.due_events(self.now(), limit).await?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let systems = self.store.systems(false).await?;
        Ok(events
            .into_iter()
            .filter_map(|e| {
                let s = systems.iter().find(|s| s.system_id == e.system_id)?.clone();
                Some((e, s))
            })
            .collect())
    }

    /// What the relay's deliveries came to, recorded in one unit of work:
    /// a delivered event is confirmed at once when its system confirms by
    /// delivery (and what it settles, settled); a failed one is tried again
    /// after an exponential backoff, or dead after `max_attempts` (or at
    /// once when the failure is permanent), which is audited.
    pub async fn record_deliveries(
        &self,
        outcomes: &[(EventRow, SystemRow, Delivery)],
        backoff: &Backoff,
    ) -> Result<(), EngineError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let relay = Actor::system(crate::SystemJob::Relay);
        let mut w = self.write().await?;
        for (event, system, d) in outcomes {
            match d {
                Delivery::Delivered => {
                    let by_delivery = system.confirm == "delivery";
                    let Some(row) = w.event_delivered(&event.event_id, now, by_delivery).await?
                    else {
                        continue;
                    };
                    if by_delivery {
                        w.audit(self.audit_record(
                            Record::new(&relay, "outbox.confirmed")
                                .subject(row.subject_id)
                                .details(json!({"event_id": row.event_id, "system": row.system_id, "kind": row.kind, "by": "delivery", "request_id": row.request_id})),
                        )?);
                        for r in self.settled_in(&mut w, &row, now).await? {
                            w.audit(r);
                        }
                    }
                }
                Delivery::Failed { error, permanent } => {
                    let attempts = event.attempts + 1;
                    let dead = *permanent || attempts >= i64::from(backoff.max_attempts);
                    let next = now + backoff.after(attempts);
                    if w.event_failed(&event.event_id, next, error, dead).await? && dead {
                        w.audit(self.audit_record(
                            Record::new(&relay, "outbox.dead")
                                .subject(event.subject_id)
                                .details(json!({"event_id": event.event_id, "system": event.system_id, "kind": event.kind, "attempts": attempts, "error": error})),
                        )?);
                    }
                }
            }
        }
        w.commit().await?;
        Ok(())
    }

    /// Notified when this process commits outbox events.
    pub fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.store.outbox_signal()
    }

    /// When the next pending event falls due.
    pub async fn next_event_at(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        Ok(self.store.next_event_at().await?)
    }

    /// The events a request still waits for.
    pub(crate) async fn awaiting(&self, request_id: &str) -> Result<Vec<Awaiting>, EngineError> {
        Ok(self
            .store
            .awaiting(request_id)
            .await?
            .into_iter()
            .map(|e| Awaiting {
                system: e.system_id,
                event_id: e.event_id,
                kind: e.kind,
                state: e.state.as_str().to_string(),
            })
            .collect())
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The system received it (a 2xx, a JetStream ack).
    Delivered,
    /// It did not: `error` is a code and a status, never a receiver's
    /// body; `permanent` when trying again cannot help.
    Failed { error: String, permanent: bool },
}

/// A connected system a request still waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Awaiting {
    pub system: String,
    pub event_id: String,
    pub kind: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
}

/// Retries: `base · 2^(attempt-1)`, at most `max`, dead after `max_attempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: std::time::Duration,
    pub max: std::time::Duration,
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: std::time::Duration::from_secs(1),
            max: std::time::Duration::from_secs(3600),
            max_attempts: 12,
        }
    }
}

impl Backoff {
    /// The wait after `attempts` failed attempts.
    pub fn after(&self, attempts: i64) -> chrono::Duration {
        let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let wait = self.base.saturating_mul(1u32 << shift).min(self.max);
        chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_refuse_tampering_and_replays() {
        let secret = b"k";
        let h = sign(secret, 1_000, b"body");
        assert!(verify_signature(secret, &h, b"body", 1_000));
        assert!(verify_signature(
            secret,
            &h,
            b"body",
            1_000 + SIGNATURE_TOLERANCE_SECS
        ));
        assert!(!verify_signature(
            secret,
            &h,
            b"body",
            1_000 + SIGNATURE_TOLERANCE_SECS + 1
        ));
        assert!(!verify_signature(secret, &h, b"bodx", 1_000));
        assert!(!verify_signature(b"other", &h, b"body", 1_000));
        assert!(!verify_signature(secret, "t=1000,v1=zz", b"body", 1_000));
        assert!(!verify_signature(secret, "", b"body", 1_000));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff::default();
        assert_eq!(b.after(1), chrono::Duration::seconds(1));
        assert_eq!(b.after(4), chrono::Duration::seconds(8));
        assert_eq!(b.after(40), chrono::Duration::seconds(3600));
    }

    #[test]
    fn webhooks_are_https_or_loopback() {
        assert!(check_webhook("https://orders.example/hooks/derbes").is_ok());
        assert!(check_webhook("http://127.0.0.1:9000/x").is_ok());
        assert!(check_webhook("http://localhost/x").is_ok());
        assert!(check_webhook("http://orders.example/x").is_err());
        assert!(check_webhook("https://user:pw@orders.example/x").is_err());
        assert!(check_webhook("https:///x").is_err());
        assert!(check_webhook("ftp://x").is_err());
        assert!(check_subject("derbes.events.orders").is_ok());
        assert!(check_subject("derbes.*").is_err());
        assert!(check_subject("a..b").is_err());
    }
}

/// The notice of a transfer (art. 19), in the policy's words.
pub(crate) fn transfer_text(
    p: &derbes_policy::Policy,
    d: &derbes_store::DisclosureRow,
) -> derbes_policy::Text {
    use derbes_policy::NoticeTemplates as T;
    let date = derbes_core::almaty_date(d.at)
        .format("%d.%m.%Y")
        .to_string();
    crate::in_every_language(|lang| {
        let name = |t: &derbes_policy::Text| t.get(lang).to_string();
        let recipient = p
            .recipients
            .iter()
            .find(|r| r.id == d.recipient)
            .map(|r| name(&r.name))
            .unwrap_or_else(|| d.recipient.clone());
        let purpose = p
            .purpose(&d.purpose)
            .map(|x| name(&x.name))
            .unwrap_or_else(|| d.purpose.clone());
        let categories = crate::category_names(p, d.categories.split(','), lang);
        T::render(
            p.notices.transfer.get(lang),
            &[
                ("app", p.operator.app.as_str()),
                ("operator", &name(&p.operator.name)),
                ("recipient", &recipient),
                ("purpose", &purpose),
                ("categories", &categories),
                ("date", &date),
            ],
        )
    })
}

impl Engine {
    /// A transfer notice for a disclosure, due `due`: the work item and its
    /// event for the system that sends the app's notices, in `w`.
    pub(crate) async fn transfer_notice_in(
        &self,
        w: &mut Write,
        d: &derbes_store::DisclosureRow,
        due: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let text = transfer_text(self.policy.policy(), d);
        self.notices_in(
            w,
            "transfer",
            &d.disclosure_id,
            Some(due),
            &[d.subject_id],
            &text,
        )
        .await?;
        Ok(())
    }

    /// The one way a notice to subjects is made, for every kind: a work
    /// item per subject (once per kind, source and subject) and, for each
    /// new one, an event for the systems that send the app's notices — all
    /// in `w`, the connected systems read once. How many were new.
    pub(crate) async fn notices_in(
        &self,
        w: &mut Write,
        kind: &'static str,
        source_id: &str,
        due: Option<DateTime<Utc>>,
        subjects: &[SubjectId],
        text: &derbes_policy::Text,
    ) -> Result<usize, EngineError> {
        let now = self.now();
        let rows: Vec<derbes_store::NoticeRow> = subjects
            .iter()
            .map(|s| derbes_store::NoticeRow {
                notice_id: uuid::Uuid::now_v7().to_string(),
                subject_id: *s,
                kind: kind.into(),
                source_id: source_id.to_string(),
                created_at: now,
                due_at: due,
                sent_at: None,
                event_id: None,
            })
            .collect();
        let fresh = w.add_notices(&rows).await?;
        let systems = w.systems().await?;
        let mut events = Vec::new();
        let mut made = 0;
        for (n, new) in rows.into_iter().zip(fresh) {
            if !new {
                continue;
            }
            made += 1;
            let about = About {
                subject: Some(n.subject_id),
                request_id: None,
                gates: false,
                due_at: due,
            };
            let change = Change::Notice {
                notice_id: n.notice_id,
                kind,
                text: text.clone(),
            };
            events.extend(self.events_for(&systems, &about, &change));
        }
        w.enqueue(&events, now).await?;
        Ok(made)
    }

    /// Notices to subjects, the earliest due first: sent or not, and overdue.
    pub async fn notices(
        &self,
        actor: &Actor,
        subject: Option<SubjectId>,
        open: bool,
        overdue: bool,
        limit: i64,
    ) -> Result<Vec<NoticeView>, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let now = self.now();
        let rows = self
            .store
            .notices(&derbes_store::NoticeFilter {
                subject_id: subject,
                kind: None,
                open,
                overdue_at: overdue.then_some(now),
                limit,
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|n| NoticeView {
                overdue: n.sent_at.is_none() && n.due_at.is_some_and(|d| d < now),
                state: match (&n.sent_at, &n.event_id) {
                    (Some(_), _) => "sent",
                    (None, None) => "undeliverable",
                    (None, Some(_)) => "pending",
                }
                .into(),
                event_id: n.event_id,
                notice_id: n.notice_id,
                subject_id: n.subject_id.to_string(),
                kind: n.kind,
                about: n.source_id,
                created_at: n.created_at,
                due_at: n.due_at,
                sent_at: n.sent_at,
            })
            .collect())
    }
}

/// A notice to a subject as the officer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoticeView {
    pub notice_id: String,
    pub subject_id: String,
    /// `transfer`, `reconsent` or `breach`.
    pub kind: String,
    /// The disclosure, policy version or breach it is about.
    pub about: String,
    /// `sent` (its delivery confirmed), `pending`, or `undeliverable` (no
    /// connected system sends the app's notices).
    pub state: String,
    pub event_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub overdue: bool,
}
