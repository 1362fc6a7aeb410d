#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The service on the network: slow and idle clients are cut off and cannot
//! take it down, and it speaks TLS when given a certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{code, derbes, exchange, repo_root, staff, Server};

/// Whether the server closed `s` (EOF, a reset, or an answer then EOF)
/// within `within`; what it sent, if anything.
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<String> {
    s.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&got).into_owned())
            }
            Err(_) => return None,
        }
    }
}

/// Issue 12, defect 4: partial headers, idle and partial-body connections
/// stayed open for good and 300 of them took the service down. Now each is
/// cut off after its timeout (a partial body with a 408), and the service
/// answers throughout.
#[test]
fn slow_clients_are_cut_off_and_health_answers_throughout() {
    let dir = tempfile::tempdir().unwrap();
    let token = staff(dir.path(), None, "backend_service");
    let server = Server::start_with(
        dir.path(),
        None,
        &["--header-timeout", "2", "--request-timeout", "3"],
    );
    let mut slow = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        match i % 3 {
            // Idle: connects and says nothing.
            0 => {}
            // Headers that never end.
            1 => write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap(),
            // A body that never comes.
            _ => write!(
                s,
                "POST /api/v1/subjects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"fields\": "
            )
            .unwrap(),
        }
        slow.push((i % 3, s));
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        let t = Instant::now();
        let (status, _) = server.get("/healthz");
        assert_eq!(status, 200);
        assert!(t.elapsed() < Duration::from_secs(1), "health answered late");
        std::thread::sleep(Duration::from_millis(100));
    }
    for (kind, s) in &mut slow {
        let left = Duration::from_secs(6).saturating_sub(started.elapsed());
        let sent = closed_within(s, left.max(Duration::from_millis(100)))
            .unwrap_or_else(|| panic!("a slow connection (kind {kind}) is still open"));
        if *kind == 2 {
            assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
            assert!(sent.contains("request_timeout"), "{sent}");
        }
    }
    let (status, _) = server.get("/healthz");
    assert_eq!(status, 200);
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
}

fn tls_client() -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let cert = repo_root().join("crates/derbes/tests/data/tls-test.crt");
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Issue 12, defect 14: HTTPS with `--tls-cert` and `--tls-key`.
#[test]
fn serves_https_with_a_certificate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let data = repo_root().join("crates/derbes/tests/data");
    let cert = data.join("tls-test.crt");
    let inputs = tempfile::tempdir().unwrap();
    let key = inputs.path().join("tls.key");
    std::fs::copy(data.join("tls-test.key"), &key).unwrap();
    let server = Server::start_with(
        dir.path(),
        None,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tls_client().connect(name, tcp).await.unwrap();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tls.read_to_string(&mut answer).await.unwrap();
        answer
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"ok\""));
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(&server.addr).unwrap();
    write!(plain, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let sent = closed_within(&mut plain, Duration::from_secs(5)).unwrap_or_default();
    assert!(!sent.starts_with("HTTP/1.1 200"), "{sent}");
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
    // A certificate without its key is a usage error; a broken key file is refused clearly.
    let o = derbes()
        .args(["serve", "--tls-cert", cert.to_str().unwrap(), "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    std::fs::write(&key, "not a key").unwrap();
    let o = derbes()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
        ])
        .arg(&key)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_ne!(code(&o), 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("TLS key"), "{err}");
}

/// `Retry-After`'s seconds in a response head.
fn retry_after(head: &str) -> Option<u64> {
    head.lines()
        .find_map(|l| {
            l.strip_prefix("retry-after: ")
                .or_else(|| l.strip_prefix("Retry-After: "))
        })
        .and_then(|v| v.trim().parse().ok())
}

/// Issue 12, defect 10: one support token made 1,500 IIN lookups in 5.7 s.
/// Lookups are limited per token and per client address, failed sign-ins
/// per client address: 429 with `Retry-After`, each tripped window audited
/// (without the address).
#[test]
fn guessing_and_enumeration_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let support = staff(dir.path(), None, "support_agent");
    let other = staff(dir.path(), None, "support_agent");
    let admin = staff(dir.path(), None, "administrator");
    let backend = staff(dir.path(), None, "backend_service");
    let server = Server::start_with(
        dir.path(),
        None,
        &[
            "--lookup-limit",
            "30",
            "--auth-failure-limit",
            "5",
            "--session-call-limit",
            "3",
        ],
    );
    let addr = server.addr.clone();
    let lookup = |token: &str, i: u32| {
        exchange(
            &addr,
            "POST",
            "/api/v1/subjects/lookup",
            token,
            Some(&serde_json::json!({"phone": format!("+7701{:07}", 1_000_000 + i)})),
        )
        .unwrap()
    };
    for i in 0..30 {
        let (status, _, v) = lookup(&support, i);
        assert_eq!(status, 404, "{v}");
    }
    let (status, head, v) = lookup(&support, 31);
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited");
    let wait = retry_after(&head).unwrap();
    assert!((1..=60).contains(&wait), "{head}");
    // Another token from the same address: the address's window is full too.
    let (status, _, _) = lookup(&other, 32);
    assert_eq!(status, 429);
    // Other work goes on.
    let (status, _, _) = exchange(&addr, "GET", "/api/v1/staff", &admin, None).unwrap();
    assert_eq!(status, 200);

    // A user's own session: so many calls a minute, then 429; another
    // user's session is counted on its own.
    let session = |iin: &str, phone: &str| {
        let (status, _, v) = exchange(
            &addr,
            "POST",
            "/api/v1/subjects",
            &backend,
            Some(&serde_json::json!({
                "fields": {"identity.iin": iin, "identity.rk_citizen": true, "contact.phone": phone,
                           "full_name.surname": "Тестова", "full_name.first_name": "Сессия"},
                "consents": [{"kind": "policy"}]})),
        )
        .unwrap();
        assert_eq!(status, 201, "{v}");
        let id = v["subject_id"].as_str().unwrap().to_string();
        let (status, _, v) = exchange(
            &addr,
            "POST",
            &format!("/api/v1/subjects/{id}/sessions"),
            &backend,
            Some(&serde_json::json!({})),
        )
        .unwrap();
        assert_eq!(status, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    };
    let mine = session("871008401427", "+77015550091");
    for _ in 0..3 {
        let (status, _, v) = exchange(&addr, "GET", "/api/v1/me", &mine, None).unwrap();
        assert_eq!(status, 200, "{v}");
    }
    let (status, head, v) = exchange(&addr, "GET", "/api/v1/me", &mine, None).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{v}"
    );
    assert!(retry_after(&head).is_some(), "{head}");
    let theirs = session("900101300017", "+77015550092");
    let (status, _, v) = exchange(&addr, "GET", "/api/v1/me", &theirs, None).unwrap();
    assert_eq!(status, 200, "{v}");

    // Failed sign-ins: 401 up to the limit, then 429 for the address, before
    // any token is looked at.
    for _ in 0..5 {
        let (status, _, _) = exchange(&addr, "GET", "/api/v1/staff", "dbs_wrong", None).unwrap();
        assert_eq!(status, 401);
    }
    let (status, head, v) = exchange(&addr, "GET", "/api/v1/staff", "dbs_wrong", None).unwrap();
    assert_eq!(status, 429, "{v}");
    assert!(retry_after(&head).is_some(), "{head}");
    let (status, _, _) = exchange(&addr, "GET", "/api/v1/staff", &admin, None).unwrap();
    assert_eq!(status, 429, "locked out for the window");
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");

    // Audited: one record per tripped window and scope, no address.
    let server = Server::start(dir.path(), None);
    let (status, _, v) = exchange(
        &server.addr,
        "GET",
        "/api/v1/audit?limit=1000",
        &staff(dir.path(), None, "data_protection_officer"),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let limited: Vec<&serde_json::Value> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "rate_limited")
        .collect();
    let seen: Vec<(String, String)> = limited
        .iter()
        .map(|r| {
            (
                r["details"]["limit"].as_str().unwrap().to_string(),
                r["details"]["scope"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        seen.contains(&("lookup".into(), "token".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("lookup".into(), "address".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("failed_authentication".into(), "address".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("session_call".into(), "session".into())),
        "{seen:?}"
    );
    assert!(
        !v.to_string().contains("127.0.0.1"),
        "no address in the audit log"
    );
    server.stop();
}
