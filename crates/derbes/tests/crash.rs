#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Crash tests: the real binary killed with `kill -9` in the middle of its
//! work, on SQLite and PostgreSQL. After a restart every write the service
//! acknowledged is there with its audit record, no request is stuck, the
//! audit chain verifies and every subject is readable.
//!
//! `DERBES_CRASH_ROUNDS` sets the kill rounds (3 by default, for CI).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use derbes_core::SubjectId;
use derbes_store::{AuditQuery, RequestState, Store, StoreConfig, SubjectStatus};
use serde_json::{json, Value};

mod common;
use common::{call, code, derbes, json_of, Server};

fn rounds() -> u64 {
    std::env::var("DERBES_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
}

/// A staff token of `role`, made with the CLI.
fn staff(dir: &std::path::Path, url: Option<&str>, role: &str) -> String {
    let mut c = derbes();
    c.args([
        "staff",
        "add",
        "--name",
        role,
        "--role",
        role,
        "--json",
        "--data-dir",
    ])
    .arg(dir);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    json_of(&o)["token"].as_str().unwrap().to_string()
}

/// Adult synthetic people, one per index.
fn person(i: u64) -> Value {
    let today = derbes_core::almaty_date(chrono::Utc::now());
    let mut i = i * 2;
    loop {
        let s = derbes_core::synthetic::subject(77, i, today);
        if !s.minor {
            return s.registration;
        }
        i += 1;
    }
}

fn pause(round: u64) -> Duration {
    // Kill at a different moment each round.
    Duration::from_millis(500 + (round * 397) % 900)
}

async fn store(dir: &std::path::Path, url: Option<&str>) -> Store {
    let config = match url {
        Some(u) => StoreConfig::Postgres { url: u.to_string() },
        None => StoreConfig::sqlite_in(dir),
    };
    Store::open(&config).await.unwrap()
}

fn audit_verify(dir: &std::path::Path, url: Option<&str>) {
    let mut c = derbes();
    c.args(["audit", "verify", "--json", "--data-dir"]).arg(dir);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    assert_eq!(
        code(&o),
        0,
        "the audit chain is intact: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Registrations and consents from four clients; the service is killed
/// mid-burst, again and again.
fn acknowledged_writes_survive(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = staff(dir.path(), url, "backend_service");
    let registered = Arc::new(Mutex::new(Vec::<String>::new()));
    let consented = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let next = Arc::new(AtomicU64::new(0));
    for round in 0..rounds() {
        let server = Server::start(dir.path(), url);
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..4 {
            let (addr, token) = (server.addr.clone(), backend.clone());
            let (registered, consented, next, stop) = (
                registered.clone(),
                consented.clone(),
                next.clone(),
                stop.clone(),
            );
            clients.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let person = person(next.fetch_add(1, Ordering::Relaxed));
                    let Ok((status, v)) =
                        call(&addr, "POST", "/api/v1/subjects", &token, Some(&person))
                    else {
                        return;
                    };
                    assert!(status == 201, "{status} {v}");
                    let id = v["subject_id"].as_str().unwrap().to_string();
                    registered.lock().unwrap().push(id.clone());
                    let Ok((status, v)) = call(
                        &addr,
                        "POST",
                        &format!("/api/v1/subjects/{id}/consents"),
                        &token,
                        Some(&json!({"kind": "marketing", "channel": "sms"})),
                    ) else {
                        return;
                    };
                    assert!(status == 201, "{status} {v}");
                    let consent = v["receipt"]["receipt"]["consent_id"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    consented.lock().unwrap().push((id, consent));
                }
            }));
        }
        std::thread::sleep(pause(round));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
    }
    let registered = registered.lock().unwrap().clone();
    let consented = consented.lock().unwrap().clone();
    assert!(
        registered.len() > 10,
        "the clients got work done: {}",
        registered.len()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let st = store(dir.path(), url).await;
        // Every subject stored — acknowledged or caught mid-request — has its
        // register record: a write and its record commit together.
        let all = st.debug_subject_ids().await.unwrap();
        assert!(all.len() >= registered.len());
        let mut with_record = std::collections::HashSet::new();
        let mut after = 0;
        loop {
            let page = st
                .audit_records(&AuditQuery {
                    after,
                    limit: 10_000,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            with_record.extend(
                page.into_iter()
                    .filter(|r| r.record.action == "register")
                    .filter_map(|r| r.record.subject_id),
            );
        }
        for s in &all {
            assert!(
                with_record.contains(&s.to_string()),
                "subject {s} is stored without its register record"
            );
        }
        for id in &registered {
            let s = SubjectId::parse(id).unwrap();
            assert!(
                st.subject(s).await.unwrap().is_some(),
                "acknowledged subject {id} lost"
            );
            let records = st
                .audit_records(&AuditQuery {
                    subject_id: Some(s),
                    limit: 100,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            assert!(
                records.iter().any(|r| r.record.action == "register"),
                "subject {id} has no register record"
            );
        }
        for (id, consent) in &consented {
            let s = SubjectId::parse(id).unwrap();
            let consents = st.consents(s).await.unwrap();
            assert!(
                consents.iter().any(|c| &c.consent_id == consent),
                "consent lost"
            );
            let records = st
                .audit_records(&AuditQuery {
                    subject_id: Some(s),
                    limit: 100,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            assert!(
                records.iter().any(|r| r.record.action == "consent"),
                "consent of {id} has no audit record"
            );
        }
        st.close().await;
    });
    audit_verify(dir.path(), url);
    // Every subject readable after the crashes.
    let server = Server::start(dir.path(), url);
    for id in registered.iter().step_by(registered.len().div_ceil(25)) {
        let (status, v) = server
            .call(
                "GET",
                &format!("/api/v1/subjects/{id}/data?purpose=identification"),
                &backend,
                None,
            )
            .unwrap();
        assert_eq!(status, 200, "{v}");
    }
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
    println!(
        "crash rounds {}: {} registrations and {} consents acknowledged, none lost",
        rounds(),
        registered.len(),
        consented.len()
    );
}

/// Destruction requests filed and verified, the service killed while its
/// scheduler destroys: each destruction, its certificate, its audit record
/// and its request's completion happen together or not at all, and a
/// restart finishes what was left.
fn destruction_passes_survive(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = staff(dir.path(), url, "backend_service");
    let support = staff(dir.path(), url, "support_agent");
    let dpo = staff(dir.path(), url, "data_protection_officer");
    let n = 60;
    let mut requests = Vec::new();
    let mut subjects = Vec::new();
    let mut server = Server::start(dir.path(), url);
    for i in 0..n {
        let (status, v) = server
            .call(
                "POST",
                "/api/v1/subjects",
                &backend,
                Some(&person(10_000 + i)),
            )
            .unwrap();
        assert_eq!(status, 201, "{v}");
        let id = v["subject_id"].as_str().unwrap().to_string();
        let (status, v) = server
            .call(
                "POST",
                "/api/v1/requests",
                &support,
                Some(&json!({"subject_id": id, "kind": "destruction", "channel": "written", "requester": "subject"})),
            )
            .unwrap();
        assert_eq!(status, 201, "{v}");
        requests.push(v["request_id"].as_str().unwrap().to_string());
        subjects.push(id);
    }
    // Verified by the DPO, who did not file them: the scheduler's next pass
    // (every 5 s) destroys them.
    for r in &requests {
        let (status, v) = server
            .call(
                "POST",
                &format!("/api/v1/requests/{r}/actions"),
                &dpo,
                Some(&json!({"action": "verify"})),
            )
            .unwrap();
        assert_eq!(status, 200, "{v}");
    }
    for round in 0..rounds() {
        // Around the scheduler's pass.
        std::thread::sleep(Duration::from_millis(3_500 + (round * 733) % 2_500));
        server.kill9();
        server = Server::start(dir.path(), url);
    }
    // Restarted: whatever is left is destroyed at the next passes.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    loop {
        let done = rt.block_on(async {
            let st = store(dir.path(), url).await;
            let mut done = 0;
            for r in &requests {
                if st.request(r).await.unwrap().unwrap().state == RequestState::Completed {
                    done += 1;
                }
            }
            st.close().await;
            done
        });
        if done == requests.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {} requests completed",
            requests.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    rt.block_on(async {
        let st = store(dir.path(), url).await;
        for (r, id) in requests.iter().zip(&subjects) {
            let s = SubjectId::parse(id).unwrap();
            let c = st.certificate_for_request(r).await.unwrap();
            let c = c.unwrap_or_else(|| panic!("request {r} completed without a certificate"));
            // Destroyed but for what a law keeps (the certificate says what).
            let status = st.subject(s).await.unwrap().unwrap().status;
            assert!(
                matches!(status, SubjectStatus::Withdrawn | SubjectStatus::Destroyed),
                "{id} is {status}"
            );
            assert!(c.content.contains("kept_by_law"));
            let records = st
                .audit_records(&AuditQuery {
                    subject_id: Some(s),
                    limit: 100,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            assert!(
                records
                    .iter()
                    .any(|x| x.record.action == "destruction"
                        && x.record.details.contains(&c.sha256)),
                "destruction of {id} without its audit record"
            );
        }
        st.close().await;
    });
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
    audit_verify(dir.path(), url);
}

fn postgres<F: FnOnce(Option<&str>)>(f: F) {
    common::with_postgres(|url| f(Some(url)));
}

#[test]
fn kill_9_loses_no_acknowledged_write_on_sqlite() {
    acknowledged_writes_survive(None);
}

#[test]
fn kill_9_loses_no_acknowledged_write_on_postgres() {
    postgres(acknowledged_writes_survive);
}

#[test]
fn kill_9_during_destruction_on_sqlite() {
    destruction_passes_survive(None);
}

#[test]
fn kill_9_during_destruction_on_postgres() {
    postgres(destruction_passes_survive);
}
