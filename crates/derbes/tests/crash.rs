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
use derbes_store::{AuditQuery, SubjectStatus};
use serde_json::json;

mod common;
use common::{audit_verify, call, derbes, person, staff, store, Server};

fn rounds() -> u64 {
    std::env::var("DERBES_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
}

fn pause(round: u64) -> Duration {
    // Kill at a different moment each round.
    Duration::from_millis(500 + (round * 397) % 900)
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
    let rt = common::runtime();
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
            let records = common::subject_records(&st, id).await;
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
            let records = common::subject_records(&st, id).await;
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
    common::readable(&server.addr, &backend, &registered, 25);
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
        let id = common::register(&server.addr, &backend, 10_000 + i);
        requests.push(common::request_destruction(&server.addr, &support, &id));
        subjects.push(id);
    }
    // Verified by the DPO, who did not file them: the scheduler's next pass
    // (every 5 s) destroys them.
    for r in &requests {
        common::verify_request(&server.addr, &dpo, r);
    }
    for round in 0..rounds() {
        // Around the scheduler's pass.
        std::thread::sleep(Duration::from_millis(3_500 + (round * 733) % 2_500));
        server.kill9();
        server = Server::start(dir.path(), url);
    }
    // Restarted: whatever is left is destroyed at the next passes.
    common::wait_completed(dir.path(), url, &requests, Duration::from_secs(30));
    let rt = common::runtime();
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
            let records = common::subject_records(&st, id).await;
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

/// The whole audit log, in order (a page holds at most 10,000).
async fn every_record(st: &derbes_store::Store) -> Vec<derbes_store::AuditRow> {
    let mut all: Vec<derbes_store::AuditRow> = Vec::new();
    loop {
        let page = st
            .audit_records(&AuditQuery {
                after: all.last().map_or(0, |r| r.seq),
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
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

/// `derbes ...` with the data directory (and database), started; killed
/// with `kill -9` after `after`, unless it finished first (then `true`).
fn kill_cli_after(
    dir: &std::path::Path,
    url: Option<&str>,
    args: &[&str],
    after: Duration,
) -> bool {
    let mut c = derbes();
    c.args(args).arg("--data-dir").arg(dir);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let mut child = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    false
}

/// `derbes ...` to completion, its JSON.
fn cli(dir: &std::path::Path, url: Option<&str>, args: &[&str]) -> serde_json::Value {
    let mut c = derbes();
    c.args(args).args(["--json", "--data-dir"]).arg(dir);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    assert_eq!(
        common::code(&o),
        0,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    common::json_of(&o)
}

/// A key rotation killed again and again while the service registers:
/// the next rotation finishes, nothing stays under an old KEK, every
/// subject is readable, the chain verifies.
fn rotation_survives(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = staff(dir.path(), url, "backend_service");
    cli(
        dir.path(),
        url,
        &["dev", "seed", "--subjects", "300", "--seed", "3"],
    );
    let server = Server::start(dir.path(), url);
    let stop = Arc::new(AtomicBool::new(false));
    let registered = Arc::new(Mutex::new(Vec::new()));
    let clients = common::load(
        std::slice::from_ref(&server.addr),
        &backend,
        200_000,
        stop.clone(),
        registered.clone(),
    );
    let mut killed = 0;
    for round in 0..rounds() {
        if !kill_cli_after(dir.path(), url, &["keys", "rotate"], pause(round) / 4) {
            killed += 1;
        }
    }
    assert_eq!(cli(dir.path(), url, &["keys", "rotate"])["remaining"], 0);
    stop.store(true, Ordering::Relaxed);
    let failed = clients.into_iter().map(|c| c.join()).any(|r| r.is_err());
    if failed {
        let (_, log) = server.stop();
        panic!("a registration failed beside the rotations; the service said:\n{log}");
    }
    assert_eq!(
        cli(dir.path(), url, &["keys", "status"])["pending_rewrap"],
        0
    );
    let registered = registered.lock().unwrap().clone();
    common::readable(&server.addr, &backend, &registered, 20);
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
    audit_verify(dir.path(), url);
    println!(
        "rotation killed {killed} of {} times beside {} registrations: nothing lost",
        rounds(),
        registered.len()
    );
}

/// An ingest killed mid-file counts nothing; run again it counts every
/// line once; a third run counts none again.
fn ingest_survives(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let log = inputs.path().join("access.log");
    let day = (chrono::Utc::now() + chrono::Duration::hours(5)).format("%d/%b/%Y");
    let lines = 200_000u64;
    let text: String = (0..lines)
        .map(|i| {
            format!(
                "192.0.2.{} - - [{day}:10:{:02}:00 +0500] \"GET /catalog/{i} HTTP/1.1\" 200 1 \"-\" \"curl/8.0\"\n",
                i % 200,
                i % 60
            )
        })
        .collect();
    std::fs::write(&log, text).unwrap();
    let path = log.to_str().unwrap();
    let requests = |dir: &std::path::Path| {
        cli(dir, url, &["stats", "--by", "day", "--k", "1"])["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["requests"].as_u64().unwrap())
            .sum::<u64>()
    };
    for round in 0..rounds() {
        let finished = kill_cli_after(dir.path(), url, &["ingest", path], pause(round) / 2);
        let counted = requests(dir.path());
        assert!(
            counted == 0 || (finished && counted == lines),
            "a killed ingest left {counted} of {lines} counted"
        );
        if finished {
            break;
        }
    }
    cli(dir.path(), url, &["ingest", path]);
    assert_eq!(requests(dir.path()), lines);
    let again = cli(dir.path(), url, &["ingest", path]);
    assert_eq!(again["counted"], 0);
    assert_eq!(requests(dir.path()), lines, "counted once");
}

/// A retention purge killed mid-run: run again, every expired subject is
/// destroyed exactly once, with its certificate and its record.
fn purge_survives(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = staff(dir.path(), url, "backend_service");
    let server = Server::start(dir.path(), url);
    let mut ids = Vec::new();
    for i in 0..120 {
        ids.push(common::register(&server.addr, &backend, 300_000 + i));
    }
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
    // Their relationship ended in 2015 (registered in 2014): long expired.
    let rt = common::runtime();
    rt.block_on(async {
        let st = store(dir.path(), url).await;
        let list = ids
            .iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let (t2014, t2015) = (1_393_668_000_000_000i64, 1_420_070_400_000_000i64);
        st.debug_execute(&format!(
            "UPDATE subjects SET created_at = {t2014}, relationship_ended_at = {t2015} WHERE subject_id IN ({list})"
        ))
        .await
        .unwrap();
        st.debug_execute(&format!(
            "UPDATE subject_fields SET collected_at = {t2014} WHERE subject_id IN ({list})"
        ))
        .await
        .unwrap();
        st.close().await;
    });
    for round in 0..rounds() {
        if kill_cli_after(dir.path(), url, &["purge"], pause(round) / 3) {
            break;
        }
    }
    cli(dir.path(), url, &["purge"]);
    rt.block_on(async {
        let st = store(dir.path(), url).await;
        let mut destroyed = 0;
        for id in &ids {
            let s = SubjectId::parse(id).unwrap();
            let records = common::subject_records(&st, id).await;
            let n = records
                .iter()
                .filter(|r| r.record.action == "destruction")
                .count();
            assert!(n <= 1, "{id} destroyed {n} times");
            if n == 1 {
                destroyed += 1;
                assert!(st.certificate_for_subject(s).await.unwrap().is_some());
            }
        }
        assert_eq!(destroyed, ids.len(), "every expired subject destroyed");
        st.close().await;
    });
    audit_verify(dir.path(), url);
}

/// An import killed mid-run, again and again: the next run resumes after
/// the last committed batch, every adult of the file is registered exactly
/// once (one `register` record each), the minors are refused, the chain
/// verifies.
fn import_survives(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    // The file lives outside the data directory (which holds derbes' own files only).
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("users.jsonl");
    let path = path.to_str().unwrap();
    let written = cli(
        dir.path(),
        url,
        &[
            "dev",
            "seed",
            "--subjects",
            "4000",
            "--seed",
            "9",
            "--out",
            path,
        ],
    );
    let adults = written["subjects"].as_u64().unwrap() - written["minors"].as_u64().unwrap();
    let mut killed = 0;
    for round in 0..rounds() {
        if kill_cli_after(
            dir.path(),
            url,
            &["import", path, "--batch", "100"],
            pause(round) / 2,
        ) {
            break;
        }
        killed += 1;
    }
    assert!(killed > 0, "the import finished before any kill");
    let report = import_to_the_end(dir.path(), url, path);
    assert!(
        report["refused_lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["problems"][0]["code"] == "under_age"),
        "{report}"
    );
    common::runtime().block_on(async {
        let st = store(dir.path(), url).await;
        assert_eq!(st.subject_count().await.unwrap().active as u64, adults);
        let records = every_record(&st).await;
        let mut registered = std::collections::HashSet::new();
        for r in records.iter().filter(|r| r.record.action == "register") {
            assert!(
                registered.insert(r.record.subject_id.clone()),
                "registered twice"
            );
        }
        assert_eq!(registered.len() as u64, adults);
        st.close().await;
    });
    audit_verify(dir.path(), url);
}

/// `derbes import FILE` run to its end; its report. Exit 1 is the minors'
/// lines refused (in this run or an earlier one).
fn import_to_the_end(dir: &std::path::Path, url: Option<&str>, path: &str) -> serde_json::Value {
    let mut c = derbes();
    c.args(["import", path, "--json", "--data-dir"]).arg(dir);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    assert!(
        common::code(&o) <= 1,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    common::json_of(&o)
}

/// Audiences asked from two clients while the service is killed, again
/// and again: each chunk's group record and its members commit together or
/// not at all (the chain verifies: a member without its seal, or a seal
/// without its members, would break it), and every answered audience has
/// its record and every subject's decision in that subject's trail.
fn audiences_survive(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("users.jsonl");
    let path = path.to_str().unwrap();
    // ~9,000 adults: three chunks an audience.
    cli(
        dir.path(),
        url,
        &[
            "dev",
            "seed",
            "--subjects",
            "9600",
            "--seed",
            "5",
            "--out",
            path,
        ],
    );
    import_to_the_end(dir.path(), url, path);
    let backend = staff(dir.path(), url, "backend_service");
    let ask = json!({"operation": "use", "purpose": "identification",
        "categories": ["identity"], "every_active_subject": true});
    let answered = Arc::new(Mutex::new(Vec::<(i64, Vec<String>)>::new()));
    for round in 0..rounds() {
        let server = Server::start(dir.path(), url);
        let mut clients = Vec::new();
        for _ in 0..2 {
            let (addr, token, ask, answered) = (
                server.addr.clone(),
                backend.clone(),
                ask.clone(),
                answered.clone(),
            );
            clients.push(std::thread::spawn(move || loop {
                let Ok((status, v)) = call(&addr, "POST", "/api/v1/audiences", &token, Some(&ask))
                else {
                    return;
                };
                // Cut off mid-answer by the kill: no whole document.
                let Some(ids) = v["subject_ids"].as_array().filter(|_| status == 200) else {
                    return;
                };
                let ids = ids
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect();
                answered
                    .lock()
                    .unwrap()
                    .push((v["audit_id"].as_i64().unwrap(), ids));
            }));
        }
        std::thread::sleep(pause(round));
        server.kill9();
        for c in clients {
            c.join().unwrap();
        }
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        !answered.is_empty(),
        "no audience was answered before the kills"
    );
    audit_verify(dir.path(), url);
    common::runtime().block_on(async {
        let st = store(dir.path(), url).await;
        let records = every_record(&st).await;
        let seqs: std::collections::HashMap<i64, &str> = records
            .iter()
            .map(|r| (r.seq, r.record.action.as_str()))
            .collect();
        for (audit_id, ids) in &answered {
            assert_eq!(seqs.get(audit_id), Some(&"audience"), "{audit_id}");
            // The first and last subjects answered: decided in every answered audience.
            for id in [ids.first().unwrap(), ids.last().unwrap()] {
                let decided = common::subject_records(&st, id)
                    .await
                    .iter()
                    .filter(|r| r.record.action == "decision" && r.seq < *audit_id)
                    .count();
                let before = answered.iter().filter(|(a, _)| a <= audit_id).count();
                assert!(
                    decided >= before,
                    "{id}: {decided} decisions, {before} audiences"
                );
            }
        }
        st.close().await;
    });
}

#[test]
fn kill_9_during_audiences_on_sqlite() {
    audiences_survive(None);
}

#[test]
fn kill_9_during_audiences_on_postgres() {
    postgres(audiences_survive);
}

#[test]
fn kill_9_during_import_on_sqlite() {
    import_survives(None);
}

#[test]
fn kill_9_during_import_on_postgres() {
    postgres(import_survives);
}

#[test]
fn kill_9_during_rotation_ingest_and_purge_on_sqlite() {
    rotation_survives(None);
    ingest_survives(None);
    purge_survives(None);
}

#[test]
fn kill_9_during_rotation_ingest_and_purge_on_postgres() {
    postgres(rotation_survives);
    postgres(ingest_survives);
    postgres(purge_survives);
}
