#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Two processes at once, as deployments run them: two `serve` processes on
//! one PostgreSQL database, and the CLI beside a running `serve` on SQLite.
//! Under load: one intact audit chain, every registration with its record,
//! every destruction done once (one certificate, one record), a revocation
//! made through one process refused by the other, a key rotation made
//! beside them followed by both.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{audit_verify, call, code, derbes, json_of, load, staff, store, Server};

fn keys(dir: &std::path::Path, url: Option<&str>, args: &[&str]) -> serde_json::Value {
    let mut c = derbes();
    c.arg("keys")
        .args(args)
        .args(["--json", "--data-dir"])
        .arg(dir);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    json_of(&o)
}

/// Everything the processes acknowledged is there once, with its record,
/// readable; the chain verifies; nothing is left under an old KEK.
fn all_there(
    dir: &std::path::Path,
    url: Option<&str>,
    addr: &str,
    backend: &str,
    registered: &[String],
) {
    let rt = common::runtime();
    rt.block_on(async {
        let st = store(dir, url).await;
        for id in registered {
            let records = common::subject_records(&st, id).await;
            let registers = records
                .iter()
                .filter(|r| r.record.action == "register")
                .count();
            assert_eq!(registers, 1, "{id}: {registers} register records");
        }
        st.close().await;
    });
    common::readable(addr, backend, registered, 30);
    assert_eq!(keys(dir, url, &["status"])["pending_rewrap"], 0);
    audit_verify(dir, url);
}

#[test]
fn two_services_on_one_postgresql_database() {
    common::with_postgres(|url| {
        let url = Some(url);
        let dir = tempfile::tempdir().unwrap();
        let backend = staff(dir.path(), url, "backend_service");
        let support = staff(dir.path(), url, "support_agent");
        let dpo = staff(dir.path(), url, "data_protection_officer");
        let admin = staff(dir.path(), url, "administrator");
        let doomed = staff(dir.path(), url, "backend_service");
        let a = Server::start(dir.path(), url);
        let b = Server::start(dir.path(), url);
        let addrs = vec![a.addr.clone(), b.addr.clone()];

        // Destruction requests, verified: both schedulers will race for them.
        let mut requests = Vec::new();
        for i in 0..20 {
            let via = &addrs[i % 2];
            let id = common::register(via, &backend, 50_000 + i as u64);
            let r = common::request_destruction(via, &support, &id);
            requests.push((id, r));
        }
        for (i, (_, r)) in requests.iter().enumerate() {
            common::verify_request(&addrs[(i + 1) % 2], &dpo, r);
        }

        // Load on both, and meanwhile a rotation by the CLI beside them and
        // a revocation through A.
        let stop = Arc::new(AtomicBool::new(false));
        let registered = Arc::new(Mutex::new(Vec::new()));
        let clients = load(&addrs, &backend, 0, stop.clone(), registered.clone());
        std::thread::sleep(Duration::from_millis(800));
        let rotated = keys(dir.path(), url, &["rotate"]);
        assert_eq!(rotated["remaining"], 0, "{rotated}");
        let (_, list) = call(&addrs[0], "GET", "/api/v1/staff", &admin, None).unwrap();
        // The doomed token is the newest backend token (the list is oldest first).
        let doomed_id = list
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|t| t["role"] == "backend_service")
            .map(|t| t["token_id"].as_str().unwrap().to_string())
            .unwrap();
        let (status, _) = call(&addrs[1], "GET", "/api/v1/staff", &doomed, None).unwrap();
        assert_eq!(status, 403, "alive on B before the revocation");
        let (status, _) = call(
            &addrs[0],
            "DELETE",
            &format!("/api/v1/staff/{doomed_id}"),
            &admin,
            None,
        )
        .unwrap();
        assert_eq!(status, 204);
        // B refuses it within its token cache's life.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, _) = call(&addrs[1], "GET", "/api/v1/staff", &doomed, None).unwrap();
            if status == 401 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "B still accepts a token revoked through A"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }

        // Every destruction done once: completed, one certificate, one record.
        let ids: Vec<String> = requests.iter().map(|(_, r)| r.clone()).collect();
        common::wait_completed(dir.path(), url, &ids, Duration::from_secs(30));
        let rt = common::runtime();
        rt.block_on(async {
            let st = store(dir.path(), url).await;
            for (id, r) in &requests {
                assert!(st.certificate_for_request(r).await.unwrap().is_some());
                let records = common::subject_records(&st, id).await;
                let n = records
                    .iter()
                    .filter(|x| x.record.action == "destruction")
                    .count();
                assert_eq!(n, 1, "{id} destroyed {n} times");
            }
            st.close().await;
        });
        let registered = registered.lock().unwrap().clone();
        assert!(registered.len() >= 20, "{} registrations", registered.len());
        all_there(dir.path(), url, &addrs[1], &backend, &registered);
        for s in [a, b] {
            let (exit, log) = s.stop();
            assert_eq!(exit, 0, "{log}");
        }
        audit_verify(dir.path(), url);
        println!(
            "two services on one database: {} registrations, {} destructions, rotation and revocation seen by both",
            registered.len(),
            requests.len()
        );
    });
}

#[test]
fn the_cli_beside_a_running_service_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let backend = staff(dir.path(), None, "backend_service");
    let server = Server::start(dir.path(), None);
    let addrs = vec![server.addr.clone()];
    let stop = Arc::new(AtomicBool::new(false));
    let registered = Arc::new(Mutex::new(Vec::new()));
    let clients = load(&addrs, &backend, 100_000, stop.clone(), registered.clone());
    // The CLI writes beside it: seed, staff, a rotation, a purge.
    std::thread::sleep(Duration::from_millis(300));
    let o = derbes()
        .args([
            "dev",
            "seed",
            "--subjects",
            "20",
            "--seed",
            "11",
            "--json",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let _ = staff(dir.path(), None, "support_agent");
    assert_eq!(keys(dir.path(), None, &["rotate"])["remaining"], 0);
    let o = derbes()
        .args(["purge", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let registered = registered.lock().unwrap().clone();
    assert!(!registered.is_empty());
    all_there(dir.path(), None, &server.addr, &backend, &registered);
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
    println!(
        "the CLI beside the service: {} registrations, seed, rotation and purge beside them",
        registered.len()
    );
}
