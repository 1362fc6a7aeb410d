#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The conformance suite: every promise of the policy, tried at every door
//! through which it could be broken — a decision, a data read, a disclosure,
//! the subject's own copy (export), a contact check, a collection, the
//! rights desk, a scheduler job (destruction, purge) — on SQLite and
//! PostgreSQL. Each row is a promise with its clause; each cell asserts that
//! the promise holds at that door. The table is printed, and every cell must
//! hold. ARCHITECTURE.md lists the promises and points here.

mod common;
#[path = "../../../policy/testdata/v1_1.rs"]
mod v1_1;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use common::{at, backend, dpo, dpo2, support};
use derbes_core::SubjectId;
use derbes_engine::{
    Actor, Audience, AudienceRequest, DecisionRequest, DisclosureRequest, Engine, EngineError,
    NewRequest, RequestAction,
};
use derbes_policy::{Channel, LoadedPolicy, Operation};
use derbes_store::testing::{contains_text, TestDb};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Door {
    Decision,
    Read,
    Disclosure,
    Export,
    Contact,
    Collection,
    Desk,
    Job,
    /// The connected systems: told in the change's own transaction, and a
    /// request completes only once they confirm.
    Systems,
    /// The subject's own door: a session the app opens, `/me`.
    Own,
    /// The same question for an audience (`POST /audiences`): every cell at
    /// the decision door is asked again as a one-subject audience, and
    /// holds only where the audience answers exactly as the decision did.
    Audience,
}

impl Door {
    const ALL: [Door; 11] = [
        Door::Decision,
        Door::Read,
        Door::Disclosure,
        Door::Export,
        Door::Contact,
        Door::Collection,
        Door::Desk,
        Door::Job,
        Door::Systems,
        Door::Own,
        Door::Audience,
    ];
}

#[derive(Default)]
struct Table {
    /// (promise, clause) in order.
    rows: Vec<(&'static str, &'static str)>,
    cells: BTreeMap<(usize, Door), Vec<(bool, String)>>,
}

impl Table {
    fn promise(&mut self, name: &'static str, clause: &'static str) -> usize {
        self.rows.push((name, clause));
        self.rows.len() - 1
    }

    /// The row of a promise already listed.
    fn row(&self, name: &str) -> usize {
        self.rows
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no promise `{name}`"))
    }

    fn cell(&mut self, row: usize, door: Door, holds: bool, what: impl Into<String>) {
        if door == Door::Decision {
            // The audience's twin of the decision `decided` just asked.
            if let Some((same, audience)) = AUDIENCE.with(|a| a.borrow_mut().take()) {
                self.cells
                    .entry((row, Door::Audience))
                    .or_default()
                    .push((holds && same, audience));
            }
        }
        self.cells
            .entry((row, door))
            .or_default()
            .push((holds, what.into()));
    }

    fn check(&self) {
        let mut out = format!("{:<60}", "promise (clause)");
        for d in Door::ALL {
            out.push_str(&format!("{:<12}", format!("{d:?}")));
        }
        out.push('\n');
        let mut broken = Vec::new();
        for (i, (name, clause)) in self.rows.iter().enumerate() {
            out.push_str(&format!("{:<60}", format!("{name} ({clause})")));
            for d in Door::ALL {
                let mark = match self.cells.get(&(i, d)) {
                    None => "·".to_string(),
                    Some(c) => {
                        for (ok, what) in c {
                            if !ok {
                                broken.push(format!("{name} at {d:?}: {what}"));
                            }
                        }
                        if c.iter().all(|(ok, _)| *ok) {
                            format!("✓{}", c.len())
                        } else {
                            "✗".to_string()
                        }
                    }
                };
                out.push_str(&format!("{mark:<12}"));
            }
            out.push('\n');
        }
        println!("{out}");
        assert!(broken.is_empty(), "broken promises:\n{}", broken.join("\n"));
        for (i, (name, _)) in self.rows.iter().enumerate() {
            let doors = Door::ALL
                .iter()
                .filter(|d| self.cells.contains_key(&(i, **d)))
                .count();
            assert!(doors >= 2, "{name} is tried at {doors} door(s) only");
        }
    }
}

/// A synthetic adult's IIN, different for each `n`.
fn iin(n: u32) -> String {
    let born = chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap() + chrono::Days::new(n as u64);
    (0..100u16)
        .find_map(|s| derbes_kz::Iin::from_parts(born, derbes_kz::Sex::Female, s).ok())
        .unwrap()
        .to_string()
}

fn phone(n: u32) -> String {
    format!("+7701{:07}", 1_000_000 + n)
}

async fn register(e: &Engine, n: u32, consents: Value) -> SubjectId {
    let reg = serde_json::from_value(json!({
        "fields": {"identity.iin": iin(n), "identity.rk_citizen": true, "full_name.surname": format!("Сатпаева{n}"),
                   "full_name.first_name": "Дана", "contact.phone": phone(n), "contact.email": format!("dana{n}@example.kz")},
        "consents": consents
    }))
    .unwrap();
    e.register(&Actor::system(derbes_engine::SystemJob::Cli), &reg)
        .await
        .unwrap()
        .subject_id
}

fn everything() -> Value {
    json!([{"kind": "policy"}, {"kind": "marketing", "channel": "sms"}, {"kind": "cookies"}])
}

fn ask(
    s: SubjectId,
    op: Operation,
    purpose: &str,
    cats: &[&str],
    channel: Option<Channel>,
) -> DecisionRequest {
    DecisionRequest {
        subject_id: s,
        operation: op,
        purpose: purpose.into(),
        categories: cats.iter().map(|c| c.to_string()).collect(),
        recipient: None,
        channel,
        legal_basis: None,
        reference: None,
    }
}

fn disclosure(s: SubjectId, recipient: &str, purpose: &str, cats: &[&str]) -> DisclosureRequest {
    serde_json::from_value(
        json!({"subject_id": s, "recipient": recipient, "purpose": purpose,
        "categories": cats, "legal_basis": "the user's consent, clause 6.1"}),
    )
    .unwrap()
}

thread_local! {
    /// Whether the audience answered as the last decision did, and what it said.
    static AUDIENCE: std::cell::RefCell<Option<(bool, String)>> = const { std::cell::RefCell::new(None) };
}

/// The codes of a decision, or of a refusal. The same question is asked as
/// a one-subject audience (but for transfers, which an audience does not
/// ask); whether it answered the same is kept for the Audience door.
async fn decided(e: &Engine, actor: &Actor, q: &DecisionRequest) -> Vec<String> {
    let c = match e.decide(actor, q).await {
        Ok(d) if d.decision == "permit" => vec!["permit".into()],
        Ok(d) => d.reasons.into_iter().map(|r| r.code).collect(),
        Err(e) => codes::<()>(&Err(e)),
    };
    if q.recipient.is_none() {
        let a = audienced(e, actor, q).await;
        let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
        let same = set(&a) == set(&c);
        AUDIENCE.with(|x| *x.borrow_mut() = Some((same, format!("audience {a:?}"))));
    }
    c
}

/// The codes of a one-subject audience: `permit`, or its denials' codes.
async fn audienced(e: &Engine, actor: &Actor, q: &DecisionRequest) -> Vec<String> {
    let req: AudienceRequest = serde_json::from_value(json!({
        "operation": q.operation, "purpose": q.purpose, "categories": q.categories,
        "channel": q.channel, "subject_ids": [q.subject_id], "count_denials": true}))
    .unwrap();
    match e.audience(actor, &req).await {
        Ok(a) if a.subject_ids == [q.subject_id] => vec!["permit".into()],
        Ok(a) if a.unknown == 1 => vec!["not_found".into()],
        Ok(a) => a.denials.unwrap_or_default().into_keys().collect(),
        Err(e) => codes::<()>(&Err(e)),
    }
}

/// The deny codes of an engine error (or `permit`, `forbidden`, `invalid:<code>`).
fn codes<T>(r: &Result<T, EngineError>) -> Vec<String> {
    match r {
        Ok(_) => vec!["permit".into()],
        Err(EngineError::Denied { reasons, .. }) => {
            reasons.iter().map(|r| r.code.clone()).collect()
        }
        Err(EngineError::Forbidden(_)) => vec!["forbidden".into()],
        Err(EngineError::Invalid(p)) => p.iter().map(|p| format!("invalid:{}", p.code)).collect(),
        Err(EngineError::Destroyed) => vec!["destroyed".into()],
        Err(EngineError::NotFound(_)) => vec!["not_found".into()],
        Err(EngineError::AwaitingSystems(_)) => vec!["awaiting_systems".into()],
        Err(e) => vec![format!("{e:?}")],
    }
}

fn has(c: &[String], code: &str) -> bool {
    c.iter().any(|x| x == code)
}

/// One use of a subject's data tried at three doors — asked of the decision
/// point, read for its purpose, disclosed to a bank for contract performance
/// (or `disclosed_for`) — each refused with `code`.
async fn denied_at_each_door(
    t: &mut Table,
    row: usize,
    e: &Engine,
    s: SubjectId,
    purpose: &str,
    disclosed_for: &str,
    code: &str,
) {
    let c = decided(
        e,
        &backend(),
        &ask(s, Operation::Use, purpose, &["identity"], None),
    )
    .await;
    t.cell(row, Door::Decision, has(&c, code), format!("{c:?}"));
    let c = codes(&e.data_for_purpose(&backend(), s, purpose, None).await);
    t.cell(row, Door::Read, has(&c, code), format!("{c:?}"));
    let d = disclosure(s, "financial_institutions", disclosed_for, &["full_name"]);
    let c = codes(&e.disclose(&backend(), &d).await);
    t.cell(row, Door::Disclosure, has(&c, code), format!("{c:?}"));
}

/// The id of a subject's consent of `kind`.
async fn consent_of(
    e: &Engine,
    s: SubjectId,
    kind: derbes_policy::ConsentKind,
) -> derbes_core::ConsentId {
    e.consents(&backend(), s)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.record.kind == kind)
        .unwrap()
        .record
        .consent_id
}

async fn file(e: &Engine, actor: &Actor, s: SubjectId, kind: &str, details: Value) -> String {
    let r: NewRequest = serde_json::from_value(json!({"subject_id": s, "kind": kind,
        "channel": "written", "requester": "subject", "details": details}))
    .unwrap();
    e.create_request(actor, &r).await.unwrap().request_id
}

async fn verify(
    e: &Engine,
    actor: &Actor,
    r: &str,
) -> Result<derbes_engine::RequestView, EngineError> {
    e.act_on_request(actor, r, RequestAction::Verify, None)
        .await
}

/// An access request, verified: the subject's own copy.
async fn own_copy(e: &Engine, s: SubjectId) -> Result<derbes_engine::SubjectExport, EngineError> {
    let r = file(e, &support(), s, "access", json!({})).await;
    verify(e, &dpo(), &r).await?;
    e.export(&dpo(), &r).await
}

struct World {
    db: TestDb,
    dir: tempfile::TempDir,
    now: Arc<Mutex<DateTime<Utc>>>,
    e: Engine,
}

impl World {
    fn new(db: TestDb) -> World {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(Mutex::new(at("2026-11-24T10:00:00+05:00")));
        let e = common::clocked(&db, dir.path(), now.clone());
        World { db, dir, now, e }
    }

    /// Connect one system that holds every category and sends the app's
    /// notices (no relay runs here: its events stay pending until
    /// confirmed by hand).
    async fn connect_everything(&self) {
        let admin = Actor::staff("admin", "administrator");
        let categories = self
            .e
            .policy()
            .policy()
            .categories
            .iter()
            .map(|c| c.id.clone())
            .collect();
        self.e
            .connect_system(
                &admin,
                &derbes_engine::NewSystem {
                    name: "everything".into(),
                    categories,
                    sends_notices: true,
                    webhook: Some("http://127.0.0.1:9/derbes".into()),
                    nats_subject: None,
                    confirm: None,
                },
            )
            .await
            .unwrap();
    }

    fn set(&self, t: &str) {
        *self.now.lock().unwrap() = at(t);
    }
}

/// The events the connected system was told of `s`, by kind.
async fn told(e: &Engine, s: SubjectId) -> Vec<derbes_engine::EventView> {
    e.outbox(
        &dpo(),
        &derbes_engine::OutboxQuery {
            subject_id: Some(s),
            limit: Some(1000),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// The officer confirms by hand everything request `r` waits for.
async fn confirm_awaited(e: &Engine, r: &str) {
    for a in e.request(&dpo(), r).await.unwrap().awaiting {
        e.confirm_event_manually(&dpo(), &a.event_id, "confirmed by the system's team")
            .await
            .unwrap();
    }
}

async fn purpose_and_need_to_know(w: &World, t: &mut Table) {
    let e = &w.e;
    let s = register(e, 1, everything()).await;
    let p = t.promise("purpose limitation", "2, 5.1");
    let c = decided(
        e,
        &backend(),
        &ask(
            s,
            Operation::Use,
            "marketing",
            &["identity"],
            Some(Channel::Sms),
        ),
    )
    .await;
    t.cell(
        p,
        Door::Decision,
        has(&c, "category_not_allowed"),
        format!("{c:?}"),
    );
    let read = e
        .data_for_purpose(
            &Actor::staff("m", "marketing"),
            s,
            "marketing",
            Some(Channel::Sms),
        )
        .await
        .unwrap();
    t.cell(
        p,
        Door::Read,
        read.fields
            .iter()
            .all(|f| f.field.starts_with("full_name.") || f.field.starts_with("contact.")),
        "marketing reads names and contacts only",
    );
    let c = codes(
        &e.disclose(
            &backend(),
            &disclosure(s, "advertisers", "contract_performance", &["full_name"]),
        )
        .await,
    );
    t.cell(
        p,
        Door::Disclosure,
        has(&c, "recipient_not_allowed"),
        format!("{c:?}"),
    );
    let c = codes(
        &e.collect(
            &backend(),
            s,
            "identification",
            &BTreeMap::from([("device.device_ids".into(), json!("idfa-1"))]),
            Some("device"),
        )
        .await,
    );
    t.cell(
        p,
        Door::Collection,
        has(&c, "category_not_allowed"),
        format!("{c:?}"),
    );

    let n = t.promise("staff need-to-know", "5.2");
    let c = decided(
        e,
        &dpo(),
        &ask(s, Operation::Use, "identification", &["position"], None),
    )
    .await;
    t.cell(n, Door::Decision, c == ["permit"], format!("{c:?}"));
    let security = Actor::staff("sec", "security");
    let c = decided(
        e,
        &security,
        &ask(s, Operation::Use, "identification", &["identity"], None),
    )
    .await;
    t.cell(
        n,
        Door::Decision,
        has(&c, "no_need_to_know"),
        format!("{c:?}"),
    );
    let read = e
        .data_for_purpose(&support(), s, "identification", None)
        .await
        .unwrap();
    t.cell(
        n,
        Door::Read,
        !read.fields.iter().any(|f| f.field.starts_with("identity.")),
        "support reads no IIN",
    );
    let r = file(e, &support(), s, "access", json!({})).await;
    verify(e, &dpo(), &r).await.unwrap();
    let c = codes(&e.export(&support(), &r).await);
    t.cell(
        n,
        Door::Export,
        has(&c, "no_need_to_know"),
        format!("{c:?}"),
    );
    let c = codes(
        &e.disclose(
            &support(),
            &disclosure(s, "affiliates", "contract_performance", &["full_name"]),
        )
        .await,
    );
    t.cell(n, Door::Disclosure, has(&c, "forbidden"), format!("{c:?}"));
    let analyst = Actor::staff("a", "analyst");
    let c = codes(
        &e.collect(
            &analyst,
            s,
            "statistics",
            &BTreeMap::from([("network.isp".into(), json!("Kazakhtelecom"))]),
            None,
        )
        .await,
    );
    t.cell(n, Door::Collection, has(&c, "forbidden"), format!("{c:?}"));
}

async fn blocking(w: &World, t: &mut Table) {
    let e = &w.e;
    let s = register(e, 2, everything()).await;
    let p = t.promise("blocking from the request on", "4.2");
    // Received, not yet verified: already blocked.
    let b = file(e, &support(), s, "blocking", json!({})).await;
    let ev = told(e, s).await;
    t.cell(
        p,
        Door::Systems,
        ev.len() == 1
            && ev[0].kind == "subject.blocked"
            && ev[0].request_id.as_deref() == Some(b.as_str()),
        format!("told at intake, gating the request: {ev:?}"),
    );
    denied_at_each_door(
        t,
        p,
        e,
        s,
        "identification",
        "contract_performance",
        "subject_blocked",
    )
    .await;
    let c = e
        .can_contact(&backend(), s, Channel::Sms, "service")
        .await
        .unwrap();
    t.cell(
        p,
        Door::Contact,
        !c.allowed && c.reason == "subject_not_active",
        c.reason,
    );
    let c = codes(
        &e.collect(
            &backend(),
            s,
            "device_linking",
            &BTreeMap::from([("device.device_ids".into(), json!("idfa-2"))]),
            Some("device"),
        )
        .await,
    );
    t.cell(
        p,
        Door::Collection,
        has(&c, "subject_blocked"),
        format!("{c:?}"),
    );
    // The subject's own copy is what they asked for, blocked or not.
    t.cell(
        p,
        Door::Export,
        own_copy(e, s).await.is_ok(),
        "the own copy while blocked",
    );
    // A destruction waits, and says why.
    let d = file(e, &support(), s, "destruction", json!({})).await;
    verify(e, &dpo(), &d).await.unwrap();
    let r = e.run_jobs().await.unwrap();
    let v = e.request(&dpo(), &d).await.unwrap();
    t.cell(
        p,
        Door::Job,
        r.destroyed == 0 && r.waiting_blocked == 1 && v.waiting == ["subject_blocked"],
        format!("{r:?} {:?}", v.waiting),
    );
    // The desk: the block shows in the request's steps; a failed identity
    // check lifts it.
    let steps = e.request(&dpo(), &b).await.unwrap().steps;
    t.cell(
        p,
        Door::Desk,
        steps.len() == 1 && steps[0].said == Some(derbes_engine::Said::BlockedAtIntake),
        format!("received, blocked at intake: {steps:?}"),
    );
    let v = e
        .act_on_request(
            &dpo(),
            &b,
            RequestAction::Refuse,
            Some("identity could not be confirmed"),
        )
        .await
        .unwrap();
    t.cell(
        p,
        Door::Desk,
        v.steps.last().is_some_and(|s| {
            s.said == Some(derbes_engine::Said::UnblockedOnRefusal)
                && s.reason.as_deref() == Some("identity could not be confirmed")
        }),
        "the refusal says the data is unblocked, beside the officer's reason",
    );
    let ok = e
        .data_for_purpose(&backend(), s, "identification", None)
        .await
        .is_ok();
    t.cell(p, Door::Desk, ok, "a refused blocking request unblocks");
    let kinds: Vec<String> = told(e, s).await.into_iter().map(|x| x.kind).collect();
    t.cell(
        p,
        Door::Systems,
        kinds == ["subject.blocked", "subject.unblocked"],
        format!("{kinds:?}"),
    );
    // Unblocked, the waiting destruction goes ahead; the request completes
    // once the connected system confirms, not before, whoever asks.
    let r = e.run_jobs().await.unwrap();
    let v = e.request(&dpo(), &d).await.unwrap();
    t.cell(
        p,
        Door::Job,
        r.destroyed == 1
            && v.state == derbes_engine::RequestState::InProgress
            && v.waiting == ["connected_systems"]
            && v.awaiting.len() == 1,
        format!("{r:?} {:?}", v.waiting),
    );
    let c = codes(
        &e.act_on_request(&dpo(), &d, RequestAction::Complete, None)
            .await,
    );
    t.cell(
        p,
        Door::Systems,
        c == ["awaiting_systems"],
        format!("{c:?}"),
    );
    confirm_awaited(e, &d).await;
    let v = e.request(&dpo(), &d).await.unwrap();
    t.cell(
        p,
        Door::Systems,
        v.state == derbes_engine::RequestState::Completed && v.outcome.is_some(),
        format!("{:?}", v.state),
    );
}

async fn objections(w: &World, t: &mut Table) {
    let e = &w.e;
    let s = register(e, 3, everything()).await;
    let p = t.promise("objection to communications", "7.11");
    let o = file(
        e,
        &support(),
        s,
        "objection",
        json!({"channels": ["sms"], "kind": "all"}),
    )
    .await;
    verify(e, &dpo(), &o).await.unwrap();
    for purpose in [
        "communication",
        "preferred_communication",
        "surveys",
        "marketing",
    ] {
        let actor = if matches!(purpose, "surveys" | "marketing") {
            Actor::staff("m", "marketing")
        } else {
            backend()
        };
        let c = decided(
            e,
            &actor,
            &ask(s, Operation::Use, purpose, &["contact"], Some(Channel::Sms)),
        )
        .await;
        t.cell(
            p,
            Door::Decision,
            has(&c, "objected"),
            format!("{purpose}: {c:?}"),
        );
    }
    let c = decided(
        e,
        &backend(),
        &ask(
            s,
            Operation::Use,
            "communication",
            &["contact"],
            Some(Channel::Push),
        ),
    )
    .await;
    t.cell(
        p,
        Door::Decision,
        c == ["permit"],
        format!("push stays open: {c:?}"),
    );
    let c = codes(
        &e.data_for_purpose(&backend(), s, "communication", Some(Channel::Sms))
            .await,
    );
    t.cell(p, Door::Read, has(&c, "objected"), format!("{c:?}"));
    let mut d = disclosure(s, "telecom_operators", "communication", &["contact"]);
    d.channel = Some(Channel::Sms);
    let c = codes(&e.disclose(&backend(), &d).await);
    t.cell(p, Door::Disclosure, has(&c, "objected"), format!("{c:?}"));
    let c = e
        .can_contact(&backend(), s, Channel::Sms, "service")
        .await
        .unwrap();
    t.cell(
        p,
        Door::Contact,
        !c.allowed && c.reason == "objected",
        c.reason,
    );
    let x = own_copy(e, s).await.unwrap();
    t.cell(
        p,
        Door::Export,
        x.objections.iter().any(|o| o.channel == "sms"),
        "the copy lists the objection",
    );
    let ev = told(e, s).await;
    let v = e.request(&dpo(), &o).await.unwrap();
    t.cell(
        p,
        Door::Systems,
        ev.iter().any(|x| {
            x.kind == "subject.objection" && x.payload["data"]["channels"] == json!(["sms"])
        }) && v.state == derbes_engine::RequestState::InProgress
            && v.awaiting.len() == 1,
        format!("{ev:?} {:?}", v.state),
    );
    confirm_awaited(e, &o).await;
    let v = e.request(&dpo(), &o).await.unwrap();
    t.cell(
        p,
        Door::Systems,
        v.state == derbes_engine::RequestState::Completed,
        format!("{:?}", v.state),
    );
}

async fn withdrawal(w: &World, t: &mut Table) {
    let e = &w.e;
    let s = register(e, 4, everything()).await;
    e.collect(
        &backend(),
        s,
        "device_linking",
        &BTreeMap::from([("app_data.cookies".into(), json!("sid=withdrawn-4"))]),
        Some("device"),
    )
    .await
    .unwrap();
    let p = t.promise(
        "withdrawal stops processing, law keeps its part",
        "7.11, 7.1",
    );
    let policy_consent = consent_of(e, s, derbes_policy::ConsentKind::Policy).await;
    // Support may not withdraw it behind the desk's back.
    let c = codes(
        &e.withdraw_consent(&support(), s, policy_consent, &json!({}))
            .await,
    );
    t.cell(
        p,
        Door::Desk,
        has(&c, "withdrawal_request_required"),
        format!("{c:?}"),
    );
    // The app's withdrawal by the consent endpoint is the 7.11 withdrawal.
    e.withdraw_consent(
        &backend(),
        s,
        policy_consent,
        &json!({"app_version": "3.2.1"}),
    )
    .await
    .unwrap();
    denied_at_each_door(
        t,
        p,
        e,
        s,
        "identification",
        "contract_performance",
        "subject_withdrawn",
    )
    .await;
    let c = e
        .can_contact(&backend(), s, Channel::Sms, "marketing")
        .await
        .unwrap();
    t.cell(p, Door::Contact, !c.allowed, c.reason);
    t.cell(
        p,
        Door::Export,
        own_copy(e, s).await.is_ok(),
        "the own copy after withdrawal",
    );
    let r = e.run_jobs().await.unwrap();
    t.cell(p, Door::Job, r.destroyed == 1, format!("{r:?}"));
    let fields: Vec<String> =
        w.db.store
            .subject_fields(s)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.field)
            .collect();
    t.cell(
        p,
        Door::Job,
        !fields.iter().any(|f| f.starts_with("app_data"))
            && fields.iter().any(|f| f == "identity.iin"),
        format!("cookies destroyed, identity kept by law: {fields:?}"),
    );
    // What the law keeps serves that law alone — a disclosure to the authority on a legal basis.
    let mut d = disclosure(s, "kz_authorities", "legal_obligation", &["identity"]);
    d.legal_basis = "Law on AML/CFT, art. 5".into();
    d.reference = Some("request 17-2/355".into());
    let c = codes(&e.disclose(&dpo(), &d).await);
    t.cell(p, Door::Disclosure, c == ["permit"], format!("{c:?}"));
    let req = e
        .requests(
            &dpo(),
            &derbes_engine::Queue {
                kind: Some(derbes_policy::Right::Withdrawal),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mine = req.iter().find(|r| r.subject_id == Some(s)).unwrap();
    let kinds: Vec<String> = told(e, s).await.into_iter().map(|x| x.kind).collect();
    t.cell(
        p,
        Door::Systems,
        kinds == ["consent.withdrawn", "subject.destroyed"] && mine.awaiting.len() == 1,
        format!("{kinds:?}, awaiting {:?}", mine.awaiting),
    );
    confirm_awaited(e, &mine.request_id).await;
    let answer = e
        .request(&dpo(), &mine.request_id)
        .await
        .unwrap()
        .outcome
        .unwrap();
    t.cell(
        p,
        Door::Desk,
        mine.channel == "in_app" && answer.kept_by_law.iter().any(|k| k.category == "identity"),
        "the answer says what the law keeps",
    );
}

async fn versions(w: &World, t: &mut Table) {
    let p = t.promise("a consent covers its version only", "7.6");
    let st = &w.db.store;
    let v1 = common::policy();
    let text = v1_1::policy_1_1_text();
    let v2 = LoadedPolicy::from_text(text).unwrap();
    common::publish(st, &[&v1, &v2]).await;
    let s = register(&w.e, 5, everything()).await;
    let e2 = Engine::over_store(
        st.clone(),
        v2,
        w.dir.path().to_path_buf(),
        &derbes_vault::KeyEnv::default(),
    )
    .unwrap()
    .with_clock({
        let now = w.now.clone();
        Arc::new(move || *now.lock().unwrap())
    });
    denied_at_each_door(
        t,
        p,
        &e2,
        s,
        "credit_scoring",
        "credit_scoring",
        "consent_outdated",
    )
    .await;
    // What the accepted version said still holds.
    let c = decided(
        &e2,
        &backend(),
        &ask(s, Operation::Use, "identification", &["identity"], None),
    )
    .await;
    t.cell(p, Door::Decision, c == ["permit"], format!("{c:?}"));
    let list = e2.reconsent(&dpo(), None, 100).await.unwrap();
    let item = list.items.iter().find(|i| i.subject_id == s);
    t.cell(
        p,
        Door::Desk,
        item.is_some_and(|i| {
            i.accepted_version == "1.0.0" && i.changes.iter().any(|c| c.contains("credit_scoring"))
        }),
        format!("{:?}", list.items),
    );
    // The scheduler tells them, once, through the app's sender.
    let first = e2.tick(false).await.unwrap().reconsent_notices;
    let again = e2.tick(false).await.unwrap().reconsent_notices;
    let ev: Vec<derbes_engine::EventView> = told(&e2, s)
        .await
        .into_iter()
        .filter(|x| x.payload["data"]["notice"] == "reconsent")
        .collect();
    t.cell(
        p,
        Door::Systems,
        first >= 1
            && again == 0
            && ev.len() == 1
            && ev[0].payload["data"]["text"]["ru"]
                .as_str()
                .is_some_and(|x| x.contains("1.1.0")),
        format!("{first} {again} {ev:?}"),
    );
    // Consenting again covers the new purpose; the list forgets them.
    e2.add_consent(
        &backend(),
        s,
        &serde_json::from_value(json!({"kind": "policy"})).unwrap(),
    )
    .await
    .unwrap();
    let c = decided(
        &e2,
        &backend(),
        &ask(s, Operation::Use, "credit_scoring", &["identity"], None),
    )
    .await;
    t.cell(
        p,
        Door::Decision,
        c == ["permit"],
        format!("after re-consent: {c:?}"),
    );
    let list = e2.reconsent(&dpo(), None, 100).await.unwrap();
    t.cell(
        p,
        Door::Desk,
        !list.items.iter().any(|i| i.subject_id == s),
        "re-consented",
    );
}

async fn minors(w: &World, t: &mut Table) {
    let e = &w.e;
    let s = register(e, 6, everything()).await;
    let p = t.promise("minors barred and destroyed", "7.7");
    let child = common::child_iin(derbes_core::almaty_date(e.now()));
    let far = derbes_engine::MinorReport {
        iin: child.clone(),
        born_on: chrono::NaiveDate::from_ymd_opt(2099, 1, 1),
    };
    let c = codes(&e.report_minor(&support(), s, &far).await);
    t.cell(
        p,
        Door::Desk,
        has(&c, "invalid:birth_date_mismatch"),
        format!("{c:?}"),
    );
    let r = e
        .report_minor(
            &support(),
            s,
            &derbes_engine::MinorReport {
                iin: child,
                born_on: None,
            },
        )
        .await
        .unwrap();
    denied_at_each_door(
        t,
        p,
        e,
        s,
        "identification",
        "contract_performance",
        "subject_barred_minor",
    )
    .await;
    let c = codes(&verify(e, &support(), &r.request_id).await);
    t.cell(
        p,
        Door::Desk,
        has(&c, "approver_required"),
        format!("{c:?}"),
    );
    verify(e, &dpo(), &r.request_id).await.unwrap();
    let j = e.run_jobs().await.unwrap();
    t.cell(p, Door::Job, j.destroyed == 1, format!("{j:?}"));
    let cert = e.certificate(&dpo(), &r.request_id).await.unwrap();
    t.cell(
        p,
        Door::Job,
        cert.confirmed_by_audit
            && cert.certificate["legal_ground"]
                .as_str()
                .unwrap()
                .contains("7.7"),
        "certificate cites 7.7",
    );
    let again = serde_json::from_value(json!({
        "fields": {"identity.iin": iin(6), "identity.rk_citizen": true, "full_name.surname": "Сатпаева",
                   "full_name.first_name": "Дана", "contact.phone": phone(6)},
        "consents": [{"kind": "policy"}]})).unwrap();
    let c = codes(&e.register(&backend(), &again).await);
    t.cell(
        p,
        Door::Desk,
        has(&c, "invalid:barred_minor"),
        format!("re-registration: {c:?}"),
    );
    // Nor does an import bring them back.
    let line = json!({
        "fields": {"identity.iin": iin(6), "identity.rk_citizen": true, "full_name.surname": "Сатпаева",
                   "full_name.first_name": "Дана", "contact.phone": phone(6)},
        "consents": [{"kind": "policy", "given_at": "2026-01-05T10:00:00+05:00"}]})
    .to_string();
    let import = Actor::system(derbes_engine::SystemJob::Import);
    let mut i = e.import(&import, "minors-file", false).await.unwrap();
    i.batch(vec![(
        1,
        derbes_engine::ImportLine::from_json(&line, e.now()),
    )])
    .await
    .unwrap();
    let r = i.finish().await.unwrap();
    let c: Vec<&str> = r
        .refused_lines
        .iter()
        .flat_map(|l| l.problems.iter().map(|p| p.code.as_str()))
        .collect();
    t.cell(
        p,
        Door::Collection,
        r.imported == 0 && c == ["barred_minor"],
        format!("import: {c:?}"),
    );
}

async fn ip_link_and_depersonalised(w: &World, t: &mut Table) {
    let e = &w.e;
    let s = register(e, 7, everything()).await;
    let p = t.promise("IP-to-person link to authorities only", "3.2");
    let mut q = ask(
        s,
        Operation::Transfer,
        "fraud_prevention",
        &["network"],
        None,
    );
    q.recipient = Some("financial_institutions".into());
    let c = decided(e, &Actor::staff("sec", "security"), &q).await;
    t.cell(
        p,
        Door::Decision,
        has(&c, "ip_link_forbidden"),
        format!("{c:?}"),
    );
    let c = codes(
        &e.disclose(
            &backend(),
            &disclosure(
                s,
                "financial_institutions",
                "fraud_prevention",
                &["network"],
            ),
        )
        .await,
    );
    t.cell(
        p,
        Door::Disclosure,
        has(&c, "ip_link_forbidden"),
        format!("{c:?}"),
    );

    let d = t.promise("statistics: depersonalised only", "2, 3.2");
    let analyst = Actor::staff("a", "analyst");
    let c = decided(
        e,
        &analyst,
        &ask(
            s,
            Operation::Use,
            "statistics",
            &["network", "location"],
            None,
        ),
    )
    .await;
    t.cell(
        d,
        Door::Decision,
        has(&c, "depersonalised_only"),
        format!("{c:?}"),
    );
    let c = codes(&e.data_for_purpose(&analyst, s, "statistics", None).await);
    t.cell(
        d,
        Door::Read,
        has(&c, "depersonalised_only"),
        format!("{c:?}"),
    );
    let c = decided(
        e,
        &analyst,
        &ask(
            s,
            Operation::Depersonalisation,
            "statistics",
            &["network"],
            None,
        ),
    )
    .await;
    t.cell(
        d,
        Door::Decision,
        c == ["permit"],
        format!("depersonalising is allowed: {c:?}"),
    );
}

async fn category_consents(w: &World, t: &mut Table) {
    let e = &w.e;
    let s = register(e, 8, json!([{"kind": "policy"}])).await;
    let p = t.promise("cookies need their consent; it expires", "7.4-7.5");
    let c = decided(
        e,
        &backend(),
        &ask(s, Operation::Use, "device_linking", &["device"], None),
    )
    .await;
    t.cell(
        p,
        Door::Decision,
        has(&c, "no_cookie_consent"),
        format!("{c:?}"),
    );
    let c = codes(
        &e.collect(
            &backend(),
            s,
            "device_linking",
            &BTreeMap::from([("device.device_ids".into(), json!("idfa-8"))]),
            Some("device"),
        )
        .await,
    );
    t.cell(
        p,
        Door::Collection,
        has(&c, "invalid:consent_required"),
        format!("{c:?}"),
    );
    let cookies = e
        .add_consent(
            &backend(),
            s,
            &serde_json::from_value(json!({"kind": "cookies", "expires_in_months": 1})).unwrap(),
        )
        .await
        .unwrap();
    e.collect(
        &backend(),
        s,
        "device_linking",
        &BTreeMap::from([("device.device_ids".into(), json!("idfa-8"))]),
        Some("device"),
    )
    .await
    .unwrap();
    let read = e
        .data_for_purpose(&backend(), s, "device_linking", None)
        .await
        .unwrap();
    t.cell(
        p,
        Door::Read,
        read.fields.iter().any(|f| f.field == "device.device_ids"),
        "read with the consent",
    );
    // A month later the consent has expired (7.5): the data is not theirs to use.
    w.set("2026-12-25T10:00:00+05:00");
    let read = e
        .data_for_purpose(&backend(), s, "device_linking", None)
        .await
        .unwrap();
    t.cell(
        p,
        Door::Read,
        !read.fields.iter().any(|f| f.field.starts_with("device.")),
        "expired: not read",
    );
    let c = decided(
        e,
        &backend(),
        &ask(s, Operation::Use, "device_linking", &["device"], None),
    )
    .await;
    t.cell(
        p,
        Door::Decision,
        has(&c, "no_cookie_consent"),
        format!("expired: {c:?}"),
    );
    w.set("2026-11-24T10:00:00+05:00");
    // Withdrawing it destroys what it covered.
    e.withdraw_consent(&backend(), s, cookies.receipt.consent_id, &json!({}))
        .await
        .unwrap();
    let j = e.run_jobs().await.unwrap();
    let left = w.db.store.subject_fields(s).await.unwrap();
    t.cell(
        p,
        Door::Job,
        j.destroyed == 1 && !left.iter().any(|f| f.field.starts_with("device.")),
        format!("{j:?}"),
    );

    let ie = t.promise("entrepreneur data only with its consent", "3.5");
    let s = register(e, 9, json!([{"kind": "policy"}, {"kind": "entrepreneur"}])).await;
    e.rectify(
        &backend(),
        s,
        &BTreeMap::from([("entrepreneur.surname_initials".into(), json!("Сатпаева Д."))]),
        None,
        "IE details",
    )
    .await
    .unwrap();
    let read = e
        .data_for_purpose(&backend(), s, "identification", None)
        .await
        .unwrap();
    t.cell(
        ie,
        Door::Read,
        read.fields
            .iter()
            .any(|f| f.field.starts_with("entrepreneur.")),
        "with consent",
    );
    let consent = consent_of(e, s, derbes_policy::ConsentKind::Entrepreneur).await;
    e.withdraw_consent(&backend(), s, consent, &json!({}))
        .await
        .unwrap();
    let c = decided(
        e,
        &backend(),
        &ask(s, Operation::Use, "identification", &["entrepreneur"], None),
    )
    .await;
    t.cell(
        ie,
        Door::Decision,
        has(&c, "no_entrepreneur_consent"),
        format!("{c:?}"),
    );
    let j = e.run_jobs().await.unwrap();
    let left = w.db.store.subject_fields(s).await.unwrap();
    t.cell(
        ie,
        Door::Job,
        j.destroyed == 1 && !left.iter().any(|f| f.field.starts_with("entrepreneur.")),
        "destroyed, not only hidden",
    );
    let read = e
        .data_for_purpose(&backend(), s, "identification", None)
        .await
        .unwrap();
    t.cell(
        ie,
        Door::Read,
        read.fields.iter().any(|f| f.field == "identity.iin"),
        "the rest stays",
    );
}

async fn holds_and_four_eyes(w: &World, t: &mut Table) {
    let e = &w.e;
    let s = register(e, 10, everything()).await;
    let p = t.promise("a legal hold stops every destruction", "7.1, Law");
    let c = codes(
        &e.place_hold(
            &support(),
            s,
            &serde_json::from_value(
                json!({"reason": "litigation", "reference": "case 2-1234/2026"}),
            )
            .unwrap(),
        )
        .await,
    );
    t.cell(
        p,
        Door::Desk,
        has(&c, "approver_required"),
        format!("support places no hold: {c:?}"),
    );
    let hold = e
        .place_hold(
            &dpo(),
            s,
            &serde_json::from_value(
                json!({"reason": "litigation", "reference": "case 2-1234/2026"}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let c = decided(
        e,
        &backend(),
        &ask(
            s,
            Operation::Destruction,
            "identification",
            &["identity"],
            None,
        ),
    )
    .await;
    t.cell(p, Door::Decision, has(&c, "legal_hold"), format!("{c:?}"));
    let d = file(e, &support(), s, "destruction", json!({})).await;
    verify(e, &dpo(), &d).await.unwrap();
    let j = e.run_jobs().await.unwrap();
    let v = e.request(&dpo(), &d).await.unwrap();
    t.cell(
        p,
        Door::Job,
        j.destroyed == 0 && j.waiting_held == 1,
        format!("{j:?}"),
    );
    t.cell(
        p,
        Door::Desk,
        v.waiting == ["legal_hold"],
        format!("the request says why: {:?}", v.waiting),
    );
    let c = codes(&e.release_hold(&support(), s, &hold.hold_id).await);
    t.cell(
        p,
        Door::Desk,
        has(&c, "approver_required"),
        format!("support releases no hold: {c:?}"),
    );
    e.release_hold(&dpo(), s, &hold.hold_id).await.unwrap();
    let j = e.run_jobs().await.unwrap();
    t.cell(p, Door::Job, j.destroyed == 1, format!("released: {j:?}"));

    let f = t.promise("four eyes on irreversible steps", "Law, 5.2");
    let s = register(e, 11, everything()).await;
    for kind in ["destruction", "withdrawal"] {
        let r = file(e, &dpo(), s, kind, json!({})).await;
        let c = codes(&verify(e, &dpo(), &r).await);
        t.cell(
            f,
            Door::Desk,
            has(&c, "four_eyes"),
            format!("{kind} by its filer: {c:?}"),
        );
        let c = codes(&verify(e, &support(), &r).await);
        t.cell(
            f,
            Door::Desk,
            has(&c, "approver_required"),
            format!("{kind} by support: {c:?}"),
        );
        e.act_on_request(&dpo2(), &r, RequestAction::Refuse, Some("test"))
            .await
            .unwrap();
    }
    // Each refusal is in the audit log, as a deny with its reason.
    let log = e
        .audit_records(
            &dpo(),
            &derbes_store::AuditQuery {
                subject_id: Some(s),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let refusals = log
        .iter()
        .filter(|r| r.decision == "deny" && r.reasons.to_string().contains("four_eyes"))
        .count();
    t.cell(
        f,
        Door::Decision,
        refusals == 2,
        format!("{refusals} audited four-eyes refusals"),
    );
}

async fn retention(w: &World, t: &mut Table) {
    let e = &w.e;
    let s = register(e, 12, everything()).await;
    let p = t.promise("retention ends use, then the data", "7.1");
    e.end_relationship(&backend(), s, None).await.unwrap();
    let c = decided(
        e,
        &backend(),
        &ask(s, Operation::Use, "identification", &["identity"], None),
    )
    .await;
    t.cell(
        p,
        Door::Decision,
        has(&c, "retention_expired"),
        format!("{c:?}"),
    );
    let c = codes(
        &e.data_for_purpose(&backend(), s, "identification", None)
            .await,
    );
    t.cell(
        p,
        Door::Read,
        has(&c, "retention_expired"),
        format!("{c:?}"),
    );
    let c = codes(
        &e.end_relationship(
            &backend(),
            register(e, 13, everything()).await,
            Some(at("2020-01-01T00:00:00Z")),
        )
        .await,
    );
    t.cell(
        p,
        Door::Desk,
        has(&c, "invalid:before_registration"),
        format!("{c:?}"),
    );
    w.set("2031-11-25T10:00:00+05:00");
    let r = e
        .purge(
            &Actor::system(derbes_engine::SystemJob::Purge),
            false,
            &|_| {},
        )
        .await
        .unwrap();
    let gone = r
        .items
        .iter()
        .any(|i| i.subject_id == s && i.whole_subject && i.certificate_id.is_some());
    t.cell(p, Door::Job, gone, format!("{r:?}"));
    w.set("2026-11-24T10:00:00+05:00");
}

async fn sealed_text(w: &World, t: &mut Table) {
    let e = &w.e;
    let p = t.promise("free text sealed, gone with the subject", "Law; 7.11");
    let s = register(e, 14, everything()).await;
    let name = "Иванов Иван, тел +77017000010";
    let r: NewRequest = serde_json::from_value(
        json!({"subject_id": s, "kind": "complaint", "channel": "email",
        "requester": "subject", "text": name}),
    )
    .unwrap();
    let r = e.create_request(&support(), &r).await.unwrap().request_id;
    let shown = e.request(&dpo(), &r).await.unwrap().text;
    t.cell(
        p,
        Door::Desk,
        shown.as_deref() == Some(name),
        "the desk reads it",
    );
    e.add_obligation(
        &backend(),
        s,
        &serde_json::from_value(json!({"kind": "contract", "reference": "договор Иванова 55"}))
            .unwrap(),
    )
    .await
    .unwrap();
    let mut d = disclosure(s, "kz_authorities", "legal_obligation", &["identity"]);
    d.legal_basis = "запрос следователя Петрова".into();
    d.reference = Some("уголовное дело Иванова 77".into());
    e.disclose(&dpo(), &d).await.unwrap();
    let x = own_copy(e, s).await.unwrap();
    t.cell(
        p,
        Door::Export,
        x.requests.iter().any(|q| q.text.as_deref() == Some(name))
            && x.disclosures
                .iter()
                .any(|q| q.legal_basis.as_deref() == Some("запрос следователя Петрова")),
        "the subject's copy carries it",
    );
    let c = codes(
        &e.create_request(
            &support(),
            &serde_json::from_value(json!({"subject_id": s, "kind": "complaint",
        "channel": "email", "requester": "subject", "text": "Иванов\u{202E}вокс"}))
            .unwrap(),
        )
        .await,
    );
    t.cell(
        p,
        Door::Desk,
        has(&c, "invalid:invalid_text"),
        format!("bidi refused: {c:?}"),
    );
    let audit = e
        .audit_records(
            &dpo(),
            &derbes_store::AuditQuery {
                subject_id: Some(s),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let text = serde_json::to_string(&audit).unwrap();
    t.cell(
        p,
        Door::Decision,
        !text.contains("Иванов") && !text.contains("Петрова"),
        "no free text in the audit log",
    );
    common::shred(e, s).await;
    t.cell(
        p,
        Door::Desk,
        e.request(&dpo(), &r).await.unwrap().text.is_none(),
        "gone with the subject",
    );
}

async fn representation(w: &World, t: &mut Table) {
    let e = &w.e;
    let p = t.promise("a representative acts on a valid authority", "1");
    let s = register(e, 15, everything()).await;
    let ask = |rep: Option<String>| -> NewRequest {
        serde_json::from_value(
            json!({"subject_id": s, "kind": "access", "channel": "written",
            "requester": "legal_representative", "representative_id": rep}),
        )
        .unwrap()
    };
    let c = codes(&e.create_request(&support(), &ask(None)).await);
    t.cell(
        p,
        Door::Desk,
        has(&c, "invalid:missing_field"),
        format!("{c:?}"),
    );
    let rep = e
        .add_representative(
            &support(),
            s,
            &serde_json::from_value(json!({"basis": "power_of_attorney",
            "name": "Сатпаев Арман", "document": "доверенность № 9", "valid_until": "2027-01-31"}))
            .unwrap(),
        )
        .await
        .unwrap();
    let ok = e
        .create_request(&support(), &ask(Some(rep.representative_id.clone())))
        .await
        .is_ok();
    t.cell(p, Door::Desk, ok, "within the authority");
    e.revoke_representative(&support(), s, &rep.representative_id)
        .await
        .unwrap();
    let c = codes(
        &e.create_request(&support(), &ask(Some(rep.representative_id)))
            .await,
    );
    t.cell(
        p,
        Door::Desk,
        has(&c, "invalid:no_valid_authority"),
        format!("revoked: {c:?}"),
    );
    let listed = e.representatives(&dpo(), s).await.unwrap();
    t.cell(
        p,
        Door::Read,
        listed.len() == 1 && listed[0].name == "Сатпаев Арман",
        "names sealed and shown",
    );
}

/// The subject's own door keeps the promises the other doors keep, and
/// reaches its own subject only.
async fn own_door(w: &World, t: &mut Table) {
    let e = &w.e;
    let open = |s: SubjectId| async move {
        let (_, token) = e.open_session(&backend(), s, None).await.unwrap();
        e.subject_session(&token).await.unwrap().unwrap()
    };
    let ask_me = |v: Value| -> derbes_engine::MyRequest { serde_json::from_value(v).unwrap() };

    let only = t.promise("a session reaches its subject only", "Law; 7.11");
    let a = register(e, 60, everything()).await;
    let b = register(e, 61, everything()).await;
    let (sa, sb) = (open(a).await, open(b).await);
    let copy = e.my_copy(&sa, derbes_policy::Right::Access).await.unwrap();
    t.cell(
        only,
        Door::Export,
        copy.subject.subject_id == a.to_string() && copy.request.channel == "in_app",
        "a session's copy is of its own subject, an in-app request",
    );
    let theirs = e
        .my_copy(&sb, derbes_policy::Right::Information)
        .await
        .unwrap();
    let c = codes(&e.my_request(&sa, &theirs.request.request_id).await);
    t.cell(
        only,
        Door::Own,
        has(&c, "not_found"),
        format!("another's request: {c:?}"),
    );
    let mine = e.my_requests(&sa).await.unwrap();
    t.cell(
        only,
        Door::Own,
        mine.iter().all(|r| r.subject_id == Some(a)),
        "my requests are mine",
    );

    // Blocking from the request on, through the subject's own door.
    let blocking = t.row("blocking from the request on");
    e.file_my_request(&sa, &ask_me(json!({"kind": "blocking"})))
        .await
        .unwrap();
    let c = decided(
        e,
        &backend(),
        &ask(a, Operation::Use, "identification", &["identity"], None),
    )
    .await;
    t.cell(
        blocking,
        Door::Own,
        has(&c, "subject_blocked"),
        format!("blocked as the request is filed: {c:?}"),
    );

    // An objection through the subject's own door stops every sender.
    let objection = t.row("objection to communications");
    e.file_my_request(
        &sb,
        &ask_me(json!({"kind": "objection", "details": {"channels": ["sms"], "kind": "all"}})),
    )
    .await
    .unwrap();
    let c = e
        .can_contact(&backend(), b, Channel::Sms, "service")
        .await
        .unwrap();
    t.cell(
        objection,
        Door::Own,
        !c.allowed && c.reason == "objected",
        format!("{c:?}"),
    );

    // Gone with the subject: a destroyed subject's session opens nothing.
    let gone = t.row("free text sealed, gone with the subject");
    let c = register(e, 62, everything()).await;
    let (_, token) = e.open_session(&backend(), c, None).await.unwrap();
    let sc = e.subject_session(&token).await.unwrap().unwrap();
    e.file_my_request(
        &sc,
        &ask_me(json!({"kind": "complaint", "text": "Дана62 complains"})),
    )
    .await
    .unwrap();
    common::shred(e, c).await;
    let dead = e.subject_session(&token).await.unwrap().is_none();
    let reopened = codes(&e.open_session(&backend(), c, None).await);
    t.cell(
        gone,
        Door::Own,
        dead && has(&reopened, "destroyed"),
        format!("session dead: {dead}; reopened: {reopened:?}"),
    );
}

async fn all_promises(db: TestDb) {
    let w = World::new(db);
    w.connect_everything().await;
    let mut t = Table::default();
    purpose_and_need_to_know(&w, &mut t).await;
    blocking(&w, &mut t).await;
    objections(&w, &mut t).await;
    withdrawal(&w, &mut t).await;
    versions(&w, &mut t).await;
    minors(&w, &mut t).await;
    ip_link_and_depersonalised(&w, &mut t).await;
    category_consents(&w, &mut t).await;
    holds_and_four_eyes(&w, &mut t).await;
    sealed_text(&w, &mut t).await;
    representation(&w, &mut t).await;
    retention(&w, &mut t).await;
    own_door(&w, &mut t).await;
    t.check();
    // The audit chain holds after all of it.
    assert!(w.e.verify_audit().await.unwrap().first_bad.is_none());
    // At rest: no free text, in any table of either backend.
    assert!(w.db.store.debug_tables().await.unwrap().len() >= 25);
    let bytes = w.db.all_bytes().await;
    for needle in [
        "Иванов",
        "Петрова",
        "Сатпаев Арман",
        "case 2-1234/2026",
        "sid=withdrawn-4",
    ] {
        assert!(
            !contains_text(&bytes, needle),
            "{needle} is stored in plaintext"
        );
    }
}

derbes_store::both_databases!(all_promises);

/// Free text an earlier version stored in plaintext is sealed on upgrade.
async fn legacy_plaintext_is_sealed(db: TestDb) {
    let w = World::new(db);
    let e = &w.e;
    let s = register(e, 20, everything()).await;
    let r = file(e, &support(), s, "complaint", json!({})).await;
    e.add_obligation(
        &backend(),
        s,
        &serde_json::from_value(json!({"kind": "debt", "reference": "INV-1"})).unwrap(),
    )
    .await
    .unwrap();
    // What an earlier version wrote: plaintext in the columns.
    let st = &w.db.store;
    st.debug_execute(&format!(
        "UPDATE requests SET state_reason = 'Иванова жалуется', details = '{{\"letter\": \"письмо Иванова\"}}' WHERE request_id = '{r}'"
    ))
    .await
    .unwrap();
    st.debug_execute("UPDATE request_events SET reason = 'Иванова жалуется' WHERE seq = 1")
        .await
        .unwrap();
    st.debug_execute("UPDATE obligations SET reference = 'долг Иванова'")
        .await
        .unwrap();
    assert!(e.seal_legacy_text().await.unwrap() >= 3);
    assert_eq!(e.seal_legacy_text().await.unwrap(), 0, "once");
    let v = e.request(&dpo(), &r).await.unwrap();
    assert_eq!(v.text.as_deref(), Some("{\"letter\":\"письмо Иванова\"}"));
    assert_eq!(v.steps[0].reason.as_deref(), Some("Иванова жалуется"));
    let bytes = w.db.all_bytes().await;
    assert!(
        !contains_text(&bytes, "Иванова"),
        "plaintext left after the upgrade"
    );
}

derbes_store::both_databases!(legacy_plaintext_is_sealed);

/// An audience of objected, blocked, held, withdrawn and plain subjects and
/// an unknown id: each answered exactly as its single decision, each
/// decision its own audit record naming the audience, the audience one
/// record more, the chain intact.
async fn audience_answers_as_decisions(db: TestDb) {
    let w = World::new(db);
    let e = &w.e;
    let plain = register(e, 40, everything()).await;
    let objected = register(e, 41, everything()).await;
    let o = file(
        e,
        &support(),
        objected,
        "objection",
        json!({"channels": ["sms"], "kind": "all"}),
    )
    .await;
    verify(e, &dpo(), &o).await.unwrap();
    let blocked = register(e, 42, everything()).await;
    file(e, &support(), blocked, "blocking", json!({})).await;
    let held = register(e, 43, everything()).await;
    e.place_hold(
        &dpo(),
        held,
        &serde_json::from_value(json!({"reason": "litigation", "reference": "case 2-77/2026"}))
            .unwrap(),
    )
    .await
    .unwrap();
    let withdrawn = register(e, 44, everything()).await;
    let policy_consent = consent_of(e, withdrawn, derbes_policy::ConsentKind::Policy).await;
    e.withdraw_consent(&backend(), withdrawn, policy_consent, &json!({}))
        .await
        .unwrap();
    let unknown = SubjectId::new();
    let marketing = Actor::staff("m", "marketing");
    let everyone = [plain, objected, blocked, held, withdrawn];
    let mut expected = Vec::new();
    let mut denials = BTreeMap::<String, u64>::new();
    let sms = |s| {
        ask(
            s,
            Operation::Use,
            "marketing",
            &["contact"],
            Some(Channel::Sms),
        )
    };
    for s in everyone {
        let d = e.decide(&marketing, &sms(s)).await.unwrap();
        if d.decision == "permit" {
            expected.push(s);
        } else {
            for r in d.reasons {
                *denials.entry(r.code).or_default() += 1;
            }
        }
    }
    assert!(expected.contains(&plain) && expected.contains(&held));
    for code in ["objected", "subject_blocked", "subject_withdrawn"] {
        assert!(denials.contains_key(code), "{code}: {denials:?}");
    }
    let mut ids = everyone.to_vec();
    ids.extend([unknown, plain]);
    let req: AudienceRequest = serde_json::from_value(json!({
        "operation": "use", "purpose": "marketing", "categories": ["contact"], "channel": "sms",
        "subject_ids": ids, "count_denials": true}))
    .unwrap();
    let a = e.audience(&marketing, &req).await.unwrap();
    assert_eq!(a.subject_ids, expected);
    assert_eq!((a.asked, a.unknown), (6, 1));
    assert_eq!(a.permitted + a.denied + a.unknown, a.asked);
    assert_eq!(a.denials.as_ref(), Some(&denials));
    // Each subject's decision is in their own trail, once, naming the
    // audience, with the audience's answer for them.
    let decided_once = |audience: Audience| async move {
        for s in everyone {
            let q = derbes_engine::AuditQuery {
                subject_id: Some(s),
                limit: 1000,
                ..Default::default()
            };
            let trail = e.audit_records(&dpo(), &q).await.unwrap();
            let theirs = trail
                .iter()
                .filter(|r| r.details["audience"] == json!(audience.audience_id))
                .collect::<Vec<_>>();
            assert_eq!(theirs.len(), 1, "{s}");
            assert_eq!(theirs[0].action, "decision");
            let permitted = audience.subject_ids.contains(&s);
            assert_eq!(
                theirs[0].decision,
                if permitted { "permit" } else { "deny" }
            );
        }
    };
    decided_once(a.clone()).await;
    // A list longer than a chunk (4,096 ids, decided while the chunk
    // before commits): the subjects at chunk edges among unknown ids, the
    // permitted answered in the order asked, every subject decided once.
    let mut long: Vec<SubjectId> = (0..10_000).map(|_| SubjectId::new()).collect();
    let placed = [
        (9_999, plain),
        (0, held),
        (4_095, objected),
        (4_096, blocked),
        (8_192, withdrawn),
    ];
    for (at, s) in placed {
        long[at] = s;
    }
    let chunked = AudienceRequest {
        subject_ids: Some(long),
        ..req.clone()
    };
    let c = e.audience(&marketing, &chunked).await.unwrap();
    assert_eq!(c.subject_ids, [held, plain]);
    assert_eq!(
        (c.asked, c.unknown, c.permitted, c.denied),
        (10_000, 9_995, 2, 3)
    );
    assert_eq!(c.denials, a.denials);
    decided_once(c).await;
    // Every active subject: the withdrawn one is no longer among them.
    let all: AudienceRequest = serde_json::from_value(json!({
        "operation": "use", "purpose": "marketing", "categories": ["contact"], "channel": "sms",
        "every_active_subject": true}))
    .unwrap();
    let b = e.audience(&marketing, &all).await.unwrap();
    assert!(b.denials.is_none());
    let mut sorted = expected.clone();
    sorted.sort_by_key(|s| s.to_string());
    assert_eq!(b.subject_ids, sorted);
    // Blocked and withdrawn subjects are not active: plain, objected, held.
    assert_eq!(b.asked, 3);
    // Consents stored before their terms were (schema 16) are read from
    // their records, and answer alike, in an audience and alone.
    let st = &w.db.store;
    let stored = st
        .debug_execute("UPDATE consents SET terms = NULL WHERE terms IS NOT NULL")
        .await
        .unwrap();
    assert!(stored >= 10, "{stored}");
    let again = e.audience(&marketing, &req).await.unwrap();
    assert_eq!(again.subject_ids, expected);
    assert_eq!(again.denials, a.denials);
    // A second engine on the same store: its facts cache is empty.
    let fresh = common::clocked(&w.db, w.dir.path(), w.now.clone());
    for s in everyone {
        let d = fresh.decide(&marketing, &sms(s)).await.unwrap();
        assert_eq!(d.decision == "permit", expected.contains(&s), "{s}");
    }
    // Refused before anything is decided: neither, both, a subject's session, a role without `decide`.
    for body in [
        json!({"operation": "use", "purpose": "marketing", "categories": ["contact"]}),
        json!({"operation": "use", "purpose": "marketing", "categories": ["contact"],
               "subject_ids": [plain], "every_active_subject": true}),
    ] {
        let r: AudienceRequest = serde_json::from_value(body).unwrap();
        let c = codes(&e.audience(&marketing, &r).await);
        assert!(c.iter().all(|c| c.starts_with("invalid:")), "{c:?}");
    }
    assert_eq!(codes(&e.audience(&support(), &req).await), ["forbidden"]);
    let too_many = AudienceRequest {
        subject_ids: Some(vec![plain; derbes_engine::MAX_AUDIENCE + 1]),
        ..req.clone()
    };
    assert_eq!(
        codes(&e.audience(&marketing, &too_many).await),
        ["invalid:too_many"]
    );
    let v = e.verify_audit().await.unwrap();
    assert!(v.first_bad.is_none(), "{v:?}");
}

derbes_store::both_databases!(audience_answers_as_decisions);

/// The audit writer signs a checkpoint as its tail passes every thousand
/// records (SQLite: inside the batch that carries it; PostgreSQL: beside
/// the writer), so proving a record never walks far, and concurrent
/// decisions still form one intact chain.
async fn the_writer_signs_checkpoints_as_it_goes(db: TestDb) {
    let w = World::new(db);
    let s = register(&w.e, 50, everything()).await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let e = w.e.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    let q = ask(s, Operation::Use, "identification", &["identity"], None);
                    e.decide(&backend(), &q).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // 1,280 decisions: one checkpoint at 1,000 records or more, at most
    // a batch past it (PostgreSQL's is signed a moment later).
    let mut signed = None;
    for _ in 0..100 {
        signed = w.db.store.last_checkpoint().await.unwrap();
        if signed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let signed = signed.expect("a checkpoint was signed");
    assert!(signed.seq >= 1000, "{}", signed.seq);
    let v = w.e.verify_audit().await.unwrap();
    assert!(v.first_bad.is_none(), "{:?}", v.first_bad);
    assert!(v.records >= 1280, "{}", v.records);
    assert!(v.checkpoints >= 1);
}

derbes_store::both_databases!(the_writer_signs_checkpoints_as_it_goes);
