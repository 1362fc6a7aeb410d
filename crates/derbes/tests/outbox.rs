#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Connected systems for real: `derbes serve` with its relay, a signed
//! webhook receiver on loopback and NATS JetStream at 127.0.0.1:4222 (a
//! stream of the test's own, deleted after), on SQLite and PostgreSQL. A
//! request completes only when every system that holds what it concerns
//! has confirmed; a kill -9 in the middle of deliveries loses nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{call, register, request_destruction, staff, verify_request, Server};
use serde_json::{json, Value};

/// A webhook receiver: verifies each event's signature with the system's
/// secret, de-duplicates by event id, and answers `fail_first` 503s before
/// answering 200.
struct Receiver {
    addr: String,
    secret: Arc<Mutex<Vec<u8>>>,
    /// Events by id, first arrival kept; every arrival counted.
    seen: Arc<Mutex<BTreeMap<String, Value>>>,
    arrivals: Arc<Mutex<u64>>,
    bad_signatures: Arc<Mutex<u64>>,
    fail_first: Arc<Mutex<u64>>,
}

impl Receiver {
    fn start(fail_first: u64) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let r = Receiver {
            addr: listener.local_addr().unwrap().to_string(),
            secret: Arc::default(),
            seen: Arc::default(),
            arrivals: Arc::default(),
            bad_signatures: Arc::default(),
            fail_first: Arc::new(Mutex::new(fail_first)),
        };
        let (secret, seen, arrivals, bad, fail) = (
            r.secret.clone(),
            r.seen.clone(),
            r.arrivals.clone(),
            r.bad_signatures.clone(),
            r.fail_first.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (secret, seen, arrivals, bad, fail) = (
                    secret.clone(),
                    seen.clone(),
                    arrivals.clone(),
                    bad.clone(),
                    fail.clone(),
                );
                std::thread::spawn(move || {
                    let _ = serve_conn(conn, &secret, &seen, &arrivals, &bad, &fail);
                });
            }
        });
        r
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/derbes", self.addr)
    }

    fn kinds(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .values()
            .map(|v| v["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

fn serve_conn(
    conn: TcpStream,
    secret: &Mutex<Vec<u8>>,
    seen: &Mutex<BTreeMap<String, Value>>,
    arrivals: &Mutex<u64>,
    bad: &Mutex<u64>,
    fail: &Mutex<u64>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        *arrivals.lock().unwrap() += 1;
        let status = {
            let mut f = fail.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                "503 Service Unavailable"
            } else {
                let sig = headers
                    .get("x-derbes-signature")
                    .cloned()
                    .unwrap_or_default();
                let ok = derbes_engine::verify_signature(
                    &secret.lock().unwrap(),
                    &sig,
                    &body,
                    chrono::Utc::now().timestamp(),
                );
                if ok {
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(
                        headers.get("x-derbes-event-id").map(String::as_str),
                        v["event_id"].as_str()
                    );
                    seen.lock()
                        .unwrap()
                        .entry(v["event_id"].as_str().unwrap().to_string())
                        .or_insert(v);
                    "200 OK"
                } else {
                    *bad.lock().unwrap() += 1;
                    "401 Unauthorized"
                }
            }
        };
        write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        )?;
    }
}

/// A JetStream stream of this test's own on `<prefix>.>`, deleted on drop.
struct Stream {
    rt: tokio::runtime::Runtime,
    nats: derbes_relay::Nats,
    name: String,
    prefix: String,
}

impl Stream {
    fn create() -> Stream {
        let rt = common::runtime();
        let nats = rt
            .block_on(derbes_relay::Nats::connect(
                derbes_relay::DEFAULT_NATS_URL,
                Duration::from_secs(5),
            ))
            .unwrap_or_else(|e| panic!("NATS with JetStream must run at 127.0.0.1:4222: {e}"));
        let uniq = uuid_like();
        let name = format!("DERBES_TEST_{uniq}");
        let prefix = format!("derbes.test.{uniq}");
        rt.block_on(nats.js_api(
            &format!("STREAM.CREATE.{name}"),
            &json!({"name": name, "subjects": [format!("{prefix}.>")], "storage": "memory",
                    "duplicate_window": 120_000_000_000u64}),
            Duration::from_secs(5),
        ))
        .unwrap();
        Stream {
            rt,
            nats,
            name,
            prefix,
        }
    }

    fn messages(&self) -> u64 {
        let info = self
            .rt
            .block_on(self.nats.js_api(
                &format!("STREAM.INFO.{}", self.name),
                &json!({}),
                Duration::from_secs(5),
            ))
            .unwrap();
        info["state"]["messages"].as_u64().unwrap()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.rt.block_on(self.nats.js_api(
            &format!("STREAM.DELETE.{}", self.name),
            &json!({}),
            Duration::from_secs(5),
        ));
    }
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{}", std::process::id(), t)
}

fn wait_for<F: FnMut() -> bool>(what: &str, within: Duration, mut f: F) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn request_state(addr: &str, token: &str, r: &str) -> Value {
    let (status, v) = call(addr, "GET", &format!("/api/v1/requests/{r}"), token, None).unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

fn events(addr: &str, token: &str, query: &str) -> Vec<Value> {
    let (status, v) = call(addr, "GET", &format!("/api/v1/outbox?{query}"), token, None).unwrap();
    assert_eq!(status, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// The signature header a system sends with its confirmation.
fn confirmation(secret: &[u8], event_id: &str) -> String {
    derbes_engine::sign(
        secret,
        chrono::Utc::now().timestamp(),
        &derbes_engine::confirmation_message(event_id),
    )
}

fn post_confirm(addr: &str, event_id: &str, signature: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/v1/outbox/{event_id}/confirm HTTP/1.1\r\nHost: {addr}\r\nX-Derbes-Signature: {signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn end_to_end(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream::create();
    let hook = Receiver::start(2);
    let server = Server::start_with(dir.path(), url, &["--outbox-retry-ms", "50"]);
    let addr = server.addr.clone();
    let admin = staff(dir.path(), url, "administrator");
    let backend = staff(dir.path(), url, "backend_service");
    let dpo = staff(dir.path(), url, "data_protection_officer");

    // The administrator connects an order system (webhook, confirms by
    // delivery) and an analytics system (JetStream, confirms by callback).
    let (status, orders) = call(&addr, "POST", "/api/v1/systems", &admin,
        Some(&json!({"name": "orders", "categories": ["full_name", "contact"], "webhook": hook.url(), "sends_notices": true}))).unwrap();
    assert_eq!(status, 201, "{orders}");
    *hook.secret.lock().unwrap() = orders["secret"].as_str().unwrap().as_bytes().to_vec();
    let (status, analytics) = call(
        &addr,
        "POST",
        "/api/v1/systems",
        &admin,
        Some(
            &json!({"name": "analytics", "categories": ["contact", "device"],
                     "nats_subject": format!("{}.analytics", stream.prefix)}),
        ),
    )
    .unwrap();
    assert_eq!(status, 201, "{analytics}");
    assert_eq!(analytics["system"]["confirm"], "callback");
    let analytics_secret = analytics["secret"].as_str().unwrap().as_bytes().to_vec();
    // Bad input names its field; the DPO may not connect systems.
    let (status, v) = call(
        &addr,
        "POST",
        "/api/v1/systems",
        &admin,
        Some(&json!({"name": "x", "categories": ["no_such"], "webhook": hook.url()})),
    )
    .unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("unknown_category")),
        "{v}"
    );
    let (status, _) = call(
        &addr,
        "POST",
        "/api/v1/systems",
        &dpo,
        Some(&json!({"name": "y", "categories": ["contact"], "webhook": hook.url()})),
    )
    .unwrap();
    assert_eq!(status, 403);
    let (status, list) = call(&addr, "GET", "/api/v1/systems", &admin, None).unwrap();
    assert_eq!(status, 200);
    assert!(
        !list
            .to_string()
            .contains(orders["secret"].as_str().unwrap()),
        "never a secret in a listing"
    );

    // A destruction: the webhook's 503s are retried; the request waits for
    // the analytics system's confirmation.
    let subject = register(&addr, &backend, 1);
    let r = request_destruction(&addr, &backend, &subject);
    verify_request(&addr, &dpo, &r);
    let deadline = Instant::now() + Duration::from_secs(30);
    // The webhook's delivery is recorded once its 2xx is back, a moment
    // after the hook has seen the event: wait for the record too.
    let orders_recorded = || {
        !request_state(&addr, &dpo, &r)["awaiting"]
            .as_array()
            .is_some_and(|a| a.iter().any(|w| w["system"] == "orders"))
    };
    while !(hook.kinds().contains(&"subject.destroyed".to_string())
        && stream.messages() >= 1
        && orders_recorded())
    {
        assert!(
            Instant::now() < deadline,
            "the destroyed event on both systems: {:?} {:?} {}",
            events(&addr, &dpo, "limit=100"),
            request_state(&addr, &dpo, &r),
            stream.messages()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = request_state(&addr, &dpo, &r);
    assert_eq!(v["state"], "in_progress", "{v}");
    assert!(
        v["waiting"]
            .as_array()
            .unwrap()
            .contains(&json!("connected_systems")),
        "{v}"
    );
    let awaiting = v["awaiting"].as_array().unwrap();
    assert_eq!(awaiting.len(), 1, "{v}");
    assert_eq!(awaiting[0]["system"], "analytics");
    let event_id = awaiting[0]["event_id"].as_str().unwrap().to_string();
    // No door completes it early.
    let (status, e) = call(
        &addr,
        "POST",
        &format!("/api/v1/requests/{r}/actions"),
        &dpo,
        Some(&json!({"action": "complete"})),
    )
    .unwrap();
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("awaiting_systems")),
        "{e}"
    );
    // The order system's copy: the event, signed, with no personal data.
    let seen = hook.seen.lock().unwrap().clone();
    let destroyed = seen
        .values()
        .find(|e| e["kind"] == "subject.destroyed")
        .unwrap();
    assert_eq!(destroyed["subject_id"], subject.as_str());
    assert_eq!(destroyed["request_id"], r.as_str());
    assert!(destroyed["due_at"].is_string() && destroyed["clause"].is_string());
    let text = destroyed.to_string();
    let p = common::person(1);
    for (f, value) in p["fields"].as_object().unwrap() {
        let value = value.as_str().unwrap_or_default();
        assert!(value.len() < 4 || !text.contains(value), "{f} in an event");
    }
    assert!(*hook.arrivals.lock().unwrap() >= 3, "503s were retried");
    assert_eq!(*hook.bad_signatures.lock().unwrap(), 0);

    // A confirmation signed with another system's secret, or stale, or for
    // an unknown event, is refused alike.
    let orders_secret = orders["secret"].as_str().unwrap().as_bytes().to_vec();
    assert_eq!(
        post_confirm(&addr, &event_id, &confirmation(&orders_secret, &event_id)),
        403
    );
    let stale = derbes_engine::sign(
        &analytics_secret,
        chrono::Utc::now().timestamp() - 3600,
        &derbes_engine::confirmation_message(&event_id),
    );
    assert_eq!(post_confirm(&addr, &event_id, &stale), 403);
    assert_eq!(
        post_confirm(
            &addr,
            "no-such-event",
            &confirmation(&analytics_secret, "no-such-event")
        ),
        403
    );
    assert_eq!(request_state(&addr, &dpo, &r)["state"], "in_progress");
    // The analytics system confirms: the request completes.
    assert_eq!(
        post_confirm(
            &addr,
            &event_id,
            &confirmation(&analytics_secret, &event_id)
        ),
        200
    );
    let v = request_state(&addr, &dpo, &r);
    assert_eq!(v["state"], "completed", "{v}");
    assert!(v.get("awaiting").is_none(), "{v}");

    // A blocking request: both systems are told; the analytics one never
    // answers, so the DPO confirms by hand with a reason.
    let subject = register(&addr, &backend, 2);
    let (status, b) = call(&addr, "POST", "/api/v1/requests", &backend,
        Some(&json!({"subject_id": subject, "kind": "blocking", "channel": "written", "requester": "subject"}))).unwrap();
    assert_eq!(status, 201, "{b}");
    let b = b["request_id"].as_str().unwrap().to_string();
    verify_request(&addr, &dpo, &b);
    wait_for(
        "the blocked event delivered",
        Duration::from_secs(30),
        || {
            events(&addr, &dpo, &format!("request_id={b}"))
                .iter()
                .all(|e| e["state"] != "pending")
        },
    );
    let v = request_state(&addr, &dpo, &b);
    assert_eq!(v["state"], "in_progress", "{v}");
    let pending: Vec<String> = v["awaiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pending.len(), 1, "{v}");
    let (status, e) = call(
        &addr,
        "POST",
        &format!("/api/v1/outbox/{}/manual-confirmation", pending[0]),
        &backend,
        Some(&json!({"reason": "phoned them"})),
    )
    .unwrap();
    assert_eq!(status, 403, "only an approver confirms by hand: {e}");
    let (status, e) = call(
        &addr,
        "POST",
        &format!("/api/v1/outbox/{}/manual-confirmation", pending[0]),
        &dpo,
        Some(&json!({"reason": "the analytics team confirmed in writing"})),
    )
    .unwrap();
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["state"], "confirmed");
    assert_eq!(request_state(&addr, &dpo, &b)["state"], "completed");

    // A destroyed subject's event is confirmed by hand too: the reason is
    // sealed under the event's own key, the subject's being gone.
    let gone = register(&addr, &backend, 4);
    let r2 = request_destruction(&addr, &backend, &gone);
    verify_request(&addr, &dpo, &r2);
    wait_for(
        "the second destruction delivered",
        Duration::from_secs(30),
        || {
            let v = request_state(&addr, &dpo, &r2);
            v["awaiting"]
                .as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["state"] == "delivered")
        },
    );
    let ev = request_state(&addr, &dpo, &r2)["awaiting"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, e) = call(
        &addr,
        "POST",
        &format!("/api/v1/outbox/{ev}/manual-confirmation"),
        &dpo,
        Some(&json!({"reason": "the analytics team deleted the profile, ticket 7"})),
    )
    .unwrap();
    assert_eq!(status, 200, "{e}");
    assert_eq!(request_state(&addr, &dpo, &r2)["state"], "completed");

    // A transfer the user asked to be told of (art. 19): the notice is a
    // work item, delivered through the app's sender, sent once confirmed.
    let mut p3 = common::person(3);
    for c in p3["consents"].as_array_mut().unwrap() {
        if c["kind"] == "policy" {
            c["notify_of_transfers"] = json!(true);
        }
    }
    let (status, v) = call(&addr, "POST", "/api/v1/subjects", &backend, Some(&p3)).unwrap();
    assert_eq!(status, 201, "{v}");
    let told = v["subject_id"].as_str().unwrap().to_string();
    let (status, d) = call(&addr, "POST", "/api/v1/disclosures", &backend,
        Some(&json!({"subject_id": told, "recipient": "financial_institutions", "purpose": "contract_performance",
                     "categories": ["full_name"], "legal_basis": "the user's consent (clause 6.1)"}))).unwrap();
    assert_eq!(status, 201, "{d}");
    assert!(d["notice_due"].is_string(), "{d}");
    wait_for("the transfer notice sent", Duration::from_secs(30), || {
        let (_, n) = call(
            &addr,
            "GET",
            &format!("/api/v1/notices?subject_id={told}"),
            &dpo,
            None,
        )
        .unwrap();
        n.as_array()
            .is_some_and(|n| n.len() == 1 && n[0]["state"] == "sent")
    });
    let notice = hook
        .seen
        .lock()
        .unwrap()
        .values()
        .find(|e| e["kind"] == "notice.send")
        .cloned()
        .unwrap();
    assert_eq!(notice["subject_id"], told.as_str());
    let ru = notice["data"]["text"]["ru"].as_str().unwrap();
    assert!(ru.contains("iBusiness") && !ru.contains('{'), "{ru}");
    // The user's notice in each of the policy's languages.
    let kk = notice["data"]["text"]["kk"].as_str().unwrap();
    assert!(
        kk.contains("iBusiness") && kk != ru && !kk.contains('{'),
        "{kk}"
    );
    for (f, value) in p3["fields"].as_object().unwrap() {
        let value = value.as_str().unwrap_or_default();
        assert!(
            value.len() < 4 || !notice.to_string().contains(value),
            "{f} in a notice"
        );
    }
    let (status, l) = call(
        &addr,
        "GET",
        &format!("/api/v1/subjects/{told}/disclosures"),
        &dpo,
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{l}");
    assert!(
        l["disclosures"][0]["notified_at"].is_string(),
        "the disclosure records the notice: {l}"
    );

    // The audit log holds each confirmation; the chain is intact.
    let (code, _) = server.stop();
    assert_eq!(code, 0);
    common::audit_verify(dir.path(), url);
    let rt = common::runtime();
    rt.block_on(async {
        let st = common::store(dir.path(), url).await;
        let records = st
            .audit_records(&derbes_store::AuditQuery {
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap();
        let confirmed: Vec<_> = records
            .iter()
            .filter(|r| r.record.action == "outbox.confirmed")
            .collect();
        assert!(confirmed.len() >= 3, "{}", confirmed.len());
        assert!(
            records
                .iter()
                .all(|r| !r.record.details.contains("analytics team")),
            "a reason is sealed"
        );
        st.close().await;
    });
    // JetStream holds each event once.
    assert_eq!(
        stream.messages(),
        3,
        "two destroyed and one blocked, once each"
    );
}

#[test]
fn systems_follow_and_requests_wait_for_them_sqlite() {
    end_to_end(None);
}

#[test]
fn systems_follow_and_requests_wait_for_them_postgres() {
    common::with_postgres(|url| end_to_end(Some(url)));
}

/// kill -9 of `serve` while deliveries are in flight: after a restart every
/// event reaches its system (the receiver, de-duplicating by event id, sees
/// each once), none is lost, and no request completed before all its
/// systems confirmed.
fn kill9_mid_delivery(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream::create();
    let hook = Receiver::start(0);
    let server = Server::start_with(dir.path(), url, &["--outbox-retry-ms", "50"]);
    let addr = server.addr.clone();
    let admin = staff(dir.path(), url, "administrator");
    let backend = staff(dir.path(), url, "backend_service");
    let dpo = staff(dir.path(), url, "data_protection_officer");
    let (status, orders) = call(&addr, "POST", "/api/v1/systems", &admin,
        Some(&json!({"name": "orders", "categories": ["full_name", "contact"], "webhook": hook.url()}))).unwrap();
    assert_eq!(status, 201);
    *hook.secret.lock().unwrap() = orders["secret"].as_str().unwrap().as_bytes().to_vec();
    let (status, _) = call(
        &addr,
        "POST",
        "/api/v1/systems",
        &admin,
        Some(
            &json!({"name": "analytics", "categories": ["contact"], "confirm": "delivery",
                     "nats_subject": format!("{}.analytics", stream.prefix)}),
        ),
    )
    .unwrap();
    assert_eq!(status, 201);
    let mut requests = Vec::new();
    for i in 0..12 {
        let subject = register(&addr, &backend, 100 + i);
        let (status, b) = call(&addr, "POST", "/api/v1/requests", &backend,
            Some(&json!({"subject_id": subject, "kind": "blocking", "channel": "written", "requester": "subject"}))).unwrap();
        assert_eq!(status, 201, "{b}");
        requests.push(b["request_id"].as_str().unwrap().to_string());
    }
    for r in &requests {
        verify_request(&addr, &dpo, r);
    }
    // Killed while the relay works through them.
    server.kill9();
    let rt = common::runtime();
    let unsettled_completed = || {
        rt.block_on(async {
            let st = common::store(dir.path(), url).await;
            let mut bad = 0;
            for r in &requests {
                let row = st.request(r).await.unwrap().unwrap();
                if row.state == derbes_store::RequestState::Completed
                    && !st.awaiting(r).await.unwrap().is_empty()
                {
                    bad += 1;
                }
            }
            let all = st
                .events(&derbes_store::EventFilter {
                    limit: 10_000,
                    ..Default::default()
                })
                .await
                .unwrap();
            st.close().await;
            (bad, all)
        })
    };
    let (bad, _) = unsettled_completed();
    assert_eq!(bad, 0, "a request completed before its systems confirmed");
    let server = Server::start_with(dir.path(), url, &["--outbox-retry-ms", "50"]);
    common::wait_completed(dir.path(), url, &requests, Duration::from_secs(60));
    let (bad, all) = unsettled_completed();
    assert_eq!(bad, 0);
    assert!(
        all.iter()
            .all(|e| e.state == derbes_store::EventState::Confirmed),
        "every event confirmed"
    );
    let to_orders: BTreeSet<String> = all
        .iter()
        .filter(|e| e.system_id == "orders")
        .map(|e| e.event_id.clone())
        .collect();
    let received: BTreeSet<String> = hook.seen.lock().unwrap().keys().cloned().collect();
    assert_eq!(
        received, to_orders,
        "the receiver saw every event, each once after de-duplication"
    );
    let to_nats = all.iter().filter(|e| e.system_id == "analytics").count() as u64;
    assert_eq!(
        stream.messages(),
        to_nats,
        "JetStream stored each event once"
    );
    let (code, _) = server.stop();
    assert_eq!(code, 0);
}

#[test]
fn kill9_mid_delivery_loses_nothing_sqlite() {
    kill9_mid_delivery(None);
}

#[test]
fn kill9_mid_delivery_loses_nothing_postgres() {
    common::with_postgres(|url| kill9_mid_delivery(Some(url)));
}

/// The breach register end to end: recorded by security, overdue when its
/// notice is late (in the DPO's queue and `derbes requests list
/// --overdue`), the notice document naming the operator and the
/// responsible person, steps audited without their text, the listed
/// subjects told through the app's sender.
fn breach_register(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(0);
    let server = Server::start_with(dir.path(), url, &["--outbox-retry-ms", "50"]);
    let addr = server.addr.clone();
    let admin = staff(dir.path(), url, "administrator");
    let backend = staff(dir.path(), url, "backend_service");
    let security = staff(dir.path(), url, "security");
    let dpo = staff(dir.path(), url, "data_protection_officer");
    let (status, sender) = call(&addr, "POST", "/api/v1/systems", &admin,
        Some(&json!({"name": "sender", "categories": [], "sends_notices": true, "webhook": hook.url()}))).unwrap();
    assert_eq!(status, 201, "{sender}");
    *hook.secret.lock().unwrap() = sender["secret"].as_str().unwrap().as_bytes().to_vec();
    let a = register(&addr, &backend, 11);
    let b = register(&addr, &backend, 12);

    // Only the DPO and security keep the register; bad input names its field.
    let report = json!({"description": "a laptop with an unencrypted export was stolen; Officer Testov reported it",
        "categories": ["contact", "full_name"], "subjects": [a, b],
        "detected_at": (chrono::Utc::now() - chrono::Duration::days(6)).to_rfc3339(),
        "cause": "an export outside derbes"});
    let (status, _) = call(&addr, "POST", "/api/v1/breaches", &backend, Some(&report)).unwrap();
    assert_eq!(status, 403);
    let (status, v) = call(
        &addr,
        "POST",
        "/api/v1/breaches",
        &security,
        Some(&json!({"description": "x", "categories": ["nope"], "affected_count": 3})),
    )
    .unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("unknown_category")),
        "{v}"
    );
    let (status, v) = call(
        &addr,
        "POST",
        "/api/v1/breaches",
        &security,
        Some(&json!({"description": "x", "categories": ["contact"]})),
    )
    .unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("affected_required")),
        "{v}"
    );
    let (status, br) = call(&addr, "POST", "/api/v1/breaches", &security, Some(&report)).unwrap();
    assert_eq!(status, 201, "{br}");
    let id = br["breach_id"].as_str().unwrap().to_string();
    assert_eq!(br["state"], "detected");
    assert_eq!(br["affected_count"], 2);
    assert_eq!(
        br["overdue"], true,
        "detected 6 days ago, not notified: {br}"
    );
    assert!(
        br["notice_due"]
            .as_str()
            .unwrap()
            .ends_with("23:59:59+05:00"),
        "{br}"
    );

    // Late: in the queue and in `requests list --overdue`.
    let (status, late) = call(&addr, "GET", "/api/v1/breaches?overdue=true", &dpo, None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(late.as_array().unwrap().len(), 1);
    assert!(
        late[0].get("description").is_none(),
        "no free text in the list"
    );
    let mut c = common::derbes();
    c.args(["requests", "list", "--overdue", "--json", "--data-dir"])
        .arg(dir.path());
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    assert_eq!(
        common::code(&o),
        1,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let items = common::json_of(&o);
    assert!(
        items
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["duty"] == "breach_notice" && i["breach_id"] == id.as_str()),
        "{items}"
    );

    // Steps: assess, notify (with the authority's reference), close; a
    // wrong step is refused.
    let (status, v) = call(
        &addr,
        "POST",
        &format!("/api/v1/breaches/{id}/actions"),
        &dpo,
        Some(&json!({"action": "close"})),
    )
    .unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("invalid_transition")),
        "{v}"
    );
    let (status, v) = call(
        &addr,
        "POST",
        &format!("/api/v1/breaches/{id}/actions"),
        &dpo,
        Some(&json!({"action": "assess", "measures": "passwords reset; the export deleted"})),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "assessed");
    assert_eq!(v["measures"], "passwords reset; the export deleted");

    // The notice document: operator, BIN, responsible person, the breach; no subject id.
    for (lang, words) in [
        (
            "ru",
            [
                "Уведомление",
                "220440001087",
                "dpo@ibusiness.example",
                "Ответственное лицо",
            ],
        ),
        (
            "en",
            [
                "Notice",
                "220440001087",
                "Aizhan Primerova",
                "passwords reset",
            ],
        ),
    ] {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(s, "GET /api/v1/breaches/{id}/notice?lang={lang} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {dpo}\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
        for w in words {
            assert!(raw.contains(w), "{lang}: {w} missing in {raw}");
        }
        assert!(
            !raw.contains(&a) && !raw.contains(&b),
            "no subject id in the notice"
        );
    }
    let (status, v) = call(
        &addr,
        "POST",
        &format!("/api/v1/breaches/{id}/actions"),
        &dpo,
        Some(&json!({"action": "notify", "reference": "reg. 7/123"})),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["state"].as_str(), v["overdue"].as_bool()),
        (Some("notified"), Some(false))
    );
    let (_, late) = call(&addr, "GET", "/api/v1/breaches?overdue=true", &dpo, None).unwrap();
    assert_eq!(late.as_array().unwrap().len(), 0);

    // The listed subjects are told, once, through the sender.
    let (status, v) = call(
        &addr,
        "POST",
        &format!("/api/v1/breaches/{id}/subject-notices"),
        &dpo,
        None,
    )
    .unwrap();
    assert_eq!((status, v["notices"].as_u64()), (200, Some(2)), "{v}");
    let (_, v) = call(
        &addr,
        "POST",
        &format!("/api/v1/breaches/{id}/subject-notices"),
        &dpo,
        None,
    )
    .unwrap();
    assert_eq!(v["notices"], 0, "nobody is told twice");
    wait_for("the breach notices sent", Duration::from_secs(30), || {
        let (_, n) = call(&addr, "GET", "/api/v1/notices", &dpo, None).unwrap();
        n.as_array().is_some_and(|n| {
            n.len() == 2
                && n.iter()
                    .all(|x| x["state"] == "sent" && x["kind"] == "breach")
        })
    });
    let texts: Vec<String> = hook
        .seen
        .lock()
        .unwrap()
        .values()
        .map(|e| e["data"]["text"]["en"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(
        texts
            .iter()
            .all(|t| t.contains("passwords reset") && !t.contains('{')),
        "{texts:?}"
    );
    let (status, v) = call(
        &addr,
        "POST",
        &format!("/api/v1/breaches/{id}/actions"),
        &dpo,
        Some(&json!({"action": "close"})),
    )
    .unwrap();
    assert_eq!((status, v["state"].as_str()), (200, Some("closed")), "{v}");

    let (code, _) = server.stop();
    assert_eq!(code, 0);
    common::audit_verify(dir.path(), url);
    let rt = common::runtime();
    rt.block_on(async {
        let st = common::store(dir.path(), url).await;
        let records = st
            .audit_records(&derbes_store::AuditQuery {
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap();
        let steps: Vec<&str> = records
            .iter()
            .map(|r| r.record.action.as_str())
            .filter(|a| a.starts_with("breach."))
            .collect();
        assert_eq!(
            steps,
            [
                "breach.detected",
                "breach.assessed",
                "breach.notified",
                "breach.subjects_notified",
                "breach.subjects_notified",
                "breach.closed"
            ]
        );
        let notified = records
            .iter()
            .find(|r| r.record.action == "breach.notified")
            .unwrap();
        assert!(
            notified.record.details.contains("\"late\":true"),
            "{}",
            notified.record.details
        );
        for r in &records {
            for secret in ["Testov", "laptop", "passwords reset", "reg. 7/123"] {
                assert!(
                    !r.record.details.contains(secret),
                    "{secret} in the audit log"
                );
            }
        }
        st.close().await;
    });
}

#[test]
fn breach_register_sqlite() {
    breach_register(None);
}

#[test]
fn breach_register_postgres() {
    common::with_postgres(|url| breach_register(Some(url)));
}

/// `derbes` on the command line, on this data directory (and database).
fn cli(dir: &std::path::Path, url: Option<&str>, args: &[&str]) -> (i32, Value, String) {
    let mut c = common::derbes();
    c.args(args).arg("--json").arg("--data-dir").arg(dir);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    (
        common::code(&o),
        serde_json::from_str(&out).unwrap_or(Value::Null),
        format!("{out}{}", String::from_utf8_lossy(&o.stderr)),
    )
}

/// The officer's outbox and the register from the command line: a system
/// connected with `systems add`, its refused event dead (`outbox dead` exits
/// 1), retried once it is fixed, delivered by the running service; a
/// breach reported, notified and its notice printed.
fn cli_drives_outbox_and_register(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(0);
    let server = Server::start_with(dir.path(), url, &["--outbox-retry-ms", "50"]);
    let addr = server.addr.clone();
    let backend = staff(dir.path(), url, "backend_service");
    let dpo = staff(dir.path(), url, "data_protection_officer");
    let d = dir.path();
    let (code, added, said) = cli(
        d,
        url,
        &[
            "systems",
            "add",
            "--name",
            "crm",
            "--categories",
            "contact,full_name",
            "--webhook",
            &hook.url(),
        ],
    );
    assert_eq!(code, 0, "{said}");
    let secret = added["secret"].as_str().unwrap().as_bytes().to_vec();
    let (code, list, _) = cli(d, url, &["systems", "list"]);
    assert_eq!((code, list[0]["name"].as_str()), (0, Some("crm")));
    // The receiver does not know the secret yet: it refuses (401), which is final.
    let subject = register(&addr, &backend, 21);
    let (status, b) = call(&addr, "POST", "/api/v1/requests", &backend,
        Some(&json!({"subject_id": subject, "kind": "blocking", "channel": "written", "requester": "subject"}))).unwrap();
    assert_eq!(status, 201, "{b}");
    let b = b["request_id"].as_str().unwrap().to_string();
    verify_request(&addr, &dpo, &b);
    let mut dead = Value::Null;
    wait_for("the refused event dead", Duration::from_secs(30), || {
        let (code, v, _) = cli(d, url, &["outbox", "dead"]);
        dead = v;
        code == 1
    });
    let event = dead[0]["event_id"].as_str().unwrap().to_string();
    assert_eq!(dead[0]["last_error"], "http 401");
    assert_eq!(request_state(&addr, &dpo, &b)["state"], "in_progress");
    // Fixed, retried: the service delivers it and the request completes.
    *hook.secret.lock().unwrap() = secret;
    let (code, v, said) = cli(d, url, &["outbox", "retry", &event]);
    assert_eq!(
        (code, v[0]["state"].as_str()),
        (0, Some("pending")),
        "{said}"
    );
    wait_for(
        "the retried event confirmed",
        Duration::from_secs(30),
        || request_state(&addr, &dpo, &b)["state"] == "completed",
    );
    let (code, v, _) = cli(d, url, &["outbox", "list", "--request", &b]);
    assert_eq!(code, 0);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|e| e["state"] == "confirmed"),
        "{v}"
    );
    let (code, _, said) = cli(d, url, &["outbox", "retry", &event]);
    assert_eq!(code, 1, "only a dead event is retried: {said}");
    assert!(said.contains("\"code\":\"invalid\""), "{said}");
    let (code, v, said) = cli(d, url, &["outbox", "run", "--until-idle"]);
    assert_eq!((code, v["pending"].as_u64()), (0, Some(0)), "{said}");

    // The register.
    let (code, br, said) = cli(
        d,
        url,
        &[
            "breaches",
            "report",
            "--description",
            "a misdirected e-mail",
            "--categories",
            "contact",
            "--affected-count",
            "5",
        ],
    );
    assert_eq!(code, 0, "{said}");
    let id = br["breach_id"].as_str().unwrap().to_string();
    assert_eq!(
        (br["affected_count"].as_i64(), br["count_known"].as_bool()),
        (Some(5), Some(false))
    );
    let (code, _, said) = cli(
        d,
        url,
        &[
            "breaches",
            "report",
            "--description",
            "x",
            "--categories",
            "nope",
            "--affected-count",
            "1",
        ],
    );
    assert!(code != 0 && said.contains("unknown_category"), "{said}");
    let (code, v, said) = cli(
        d,
        url,
        &[
            "breaches",
            "act",
            &id,
            "--action",
            "notify",
            "--reference",
            "reg. 1",
        ],
    );
    assert_eq!((code, v["state"].as_str()), (0, Some("notified")), "{said}");
    let mut c = common::derbes();
    c.args(["breaches", "notice", &id, "--lang", "en", "--data-dir"])
        .arg(d);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Notice to the authorised body") && text.contains("about 5 (estimate)"),
        "{text}"
    );
    // In Kazakh, as a page to print.
    let mut c = common::derbes();
    c.args([
        "breaches",
        "notice",
        &id,
        "--lang",
        "kk",
        "--format",
        "html",
        "--data-dir",
    ])
    .arg(d);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{page}");
    for text in [
        "<html lang=\"kk\">",
        "уәкілетті органға хабарлама",
        "шамамен 5 (бағалау)",
        "25-бап",
    ] {
        assert!(page.contains(text), "{text} missing from {page}");
    }
    let (code, _, _) = cli(d, url, &["breaches", "list", "--overdue"]);
    assert_eq!(code, 0, "nothing late");
    let (code, _, _) = cli(d, url, &["notices", "--overdue"]);
    assert_eq!(code, 0);
    let (code, _, said) = cli(d, url, &["systems", "remove", "crm"]);
    assert_eq!(code, 0, "{said}");
    let (code, v, _) = cli(d, url, &["systems", "list"]);
    assert_eq!((code, v.as_array().map(Vec::len)), (0, Some(0)));
    let (code, _) = server.stop();
    assert_eq!(code, 0);
}

#[test]
fn cli_drives_outbox_and_register_sqlite() {
    cli_drives_outbox_and_register(None);
}

#[test]
fn cli_drives_outbox_and_register_postgres() {
    common::with_postgres(|url| cli_drives_outbox_and_register(Some(url)));
}
