#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! At-rest search: after every flow that carries personal data — through
//! the real binary, over HTTP and the CLI — no identifier, name, free text
//! or client address is found in plaintext anywhere derbes keeps anything:
//! every table of the database (SQLite and PostgreSQL), every file of the
//! data directory, the service's log and the CLI's output.

use std::time::Duration;

use serde_json::{json, Value};

mod common;
use common::{call, derbes, staff, Server};

const IIN: &str = "871008401427";
const PHONE: &str = "+77017654399";
const SURNAME: &str = "Жаксылыкова";
const FIRST_NAME: &str = "Айгерим";
const NEW_SURNAME: &str = "Жаксылыкова-Тлеуова";
const IIN_2: &str = "900101300017";
const PHONE_2: &str = "+77015550199";
const SURNAME_2: &str = "Байгабылов";

/// Every secret the flows below send, as sent (and the phones' digits).
const NEEDLES: &[&str] = &[
    IIN,
    PHONE,
    "7017654399",
    SURNAME,
    FIRST_NAME,
    NEW_SURNAME,
    IIN_2,
    PHONE_2,
    "7015550199",
    SURNAME_2,
    "причина-тайна-4417",
    "198.51.100.77",
    "основание-тайна-9921",
    "ref-тайна-5512",
    "жалоба-тайна-3307",
    "дело-тайна-7781",
    "долг-тайна-6623",
    "Представитель Тайнов",
    "доверенность-тайна-8841",
    "203.0.113.99",
    "192.0.2.201",
];

fn person(iin: &str, phone: &str, surname: &str) -> Value {
    json!({
        "fields": {"identity.iin": iin, "identity.rk_citizen": true, "full_name.surname": surname,
                   "full_name.first_name": FIRST_NAME, "contact.phone": phone},
        "consents": [{"kind": "policy", "notify_of_transfers": true}]
    })
}

fn ok(what: &str, (status, v): (u16, Value)) -> Value {
    assert!((200..300).contains(&status), "{what}: {status} {v}");
    v
}

/// Every flow that carries personal data, through `addr`.
fn flows(addr: &str, dir: &std::path::Path, url: Option<&str>) -> String {
    let backend = staff(dir, url, "backend_service");
    let support = staff(dir, url, "support_agent");
    let dpo = staff(dir, url, "data_protection_officer");
    let c = |m: &str, p: &str, t: &str, b: Option<Value>| call(addr, m, p, t, b.as_ref()).unwrap();

    let v = ok(
        "register",
        c(
            "POST",
            "/api/v1/subjects",
            &backend,
            Some(person(IIN, PHONE, SURNAME)),
        ),
    );
    let id = v["subject_id"].as_str().unwrap().to_string();
    ok(
        "rectify",
        c(
            "PATCH",
            &format!("/api/v1/subjects/{id}/data"),
            &backend,
            Some(
                json!({"fields": {"full_name.surname": NEW_SURNAME}, "reason": "причина-тайна-4417"}),
            ),
        ),
    );
    ok(
        "consent",
        c(
            "POST",
            &format!("/api/v1/subjects/{id}/consents"),
            &backend,
            Some(
                json!({"kind": "marketing", "channel": "sms", "evidence": {"client_address": "198.51.100.77", "app_version": "3.2.1"}}),
            ),
        ),
    );
    ok(
        "lookup",
        c(
            "POST",
            "/api/v1/subjects/lookup",
            &backend,
            Some(json!({"iin": IIN})),
        ),
    );
    ok(
        "lookup by query",
        c(
            "GET",
            &format!("/api/v1/subjects/lookup?phone=%2B{}", &PHONE[1..]),
            &backend,
            None,
        ),
    );
    ok(
        "read",
        c(
            "GET",
            &format!("/api/v1/subjects/{id}/data?purpose=identification"),
            &backend,
            None,
        ),
    );
    ok(
        "disclosure",
        c(
            "POST",
            "/api/v1/disclosures",
            &dpo,
            Some(
                json!({"subject_id": id, "recipient": "kz_authorities", "purpose": "legal_obligation",
                    "categories": ["identity"], "legal_basis": "основание-тайна-9921", "reference": "ref-тайна-5512"}),
            ),
        ),
    );
    ok(
        "complaint",
        c(
            "POST",
            "/api/v1/requests",
            &support,
            Some(
                json!({"subject_id": id, "kind": "complaint", "channel": "written", "requester": "subject",
                    "text": "жалоба-тайна-3307"}),
            ),
        ),
    );
    ok(
        "hold",
        c(
            "POST",
            &format!("/api/v1/subjects/{id}/legal-holds"),
            &dpo,
            Some(json!({"reason": "litigation", "reference": "дело-тайна-7781"})),
        ),
    );
    ok(
        "obligation",
        c(
            "POST",
            &format!("/api/v1/subjects/{id}/obligations"),
            &backend,
            Some(json!({"kind": "debt", "reference": "долг-тайна-6623"})),
        ),
    );
    ok(
        "representative",
        c(
            "POST",
            &format!("/api/v1/subjects/{id}/representatives"),
            &support,
            Some(
                json!({"basis": "power_of_attorney", "name": "Представитель Тайнов", "document": "доверенность-тайна-8841",
                    "valid_until": "2030-01-01"}),
            ),
        ),
    );
    let now = chrono::Utc::now().to_rfc3339();
    ok(
        "events",
        c(
            "POST",
            "/api/v1/events",
            &backend,
            Some(
                json!([{"event": "screen_view", "screen": "/orders", "time": now, "ip": "203.0.113.99",
                     "agent": "iBusiness/3.2.1 (Android 13; SM-A515F)"}]),
            ),
        ),
    );
    // A copy of the data (the answer is the subject's; nothing is kept).
    let v = ok(
        "access",
        c(
            "POST",
            "/api/v1/requests",
            &support,
            Some(
                json!({"subject_id": id, "kind": "access", "channel": "written", "requester": "subject"}),
            ),
        ),
    );
    let access = v["request_id"].as_str().unwrap().to_string();
    common::verify_request(addr, &dpo, &access);
    let export = ok(
        "export",
        c(
            "GET",
            &format!("/api/v1/requests/{access}/export"),
            &dpo,
            None,
        ),
    )
    .to_string();
    // The search below is not vacuous: the values went in, and come out
    // only to whoever may see them.
    assert!(export.contains(NEW_SURNAME) && export.contains(IIN));
    // A second subject, destroyed on request.
    let v = ok(
        "register 2",
        c(
            "POST",
            "/api/v1/subjects",
            &backend,
            Some(person(IIN_2, PHONE_2, SURNAME_2)),
        ),
    );
    let id2 = v["subject_id"].as_str().unwrap().to_string();
    let r = common::request_destruction(addr, &support, &id2);
    common::verify_request(addr, &dpo, &r);
    common::wait_completed(dir, url, &[r], Duration::from_secs(30));
    // Server logs through the CLI.
    let inputs = tempfile::tempdir().unwrap();
    let log = inputs.path().join("access.log");
    let day = (chrono::Utc::now() + chrono::Duration::hours(5)).format("%d/%b/%Y");
    std::fs::write(
        &log,
        format!("192.0.2.201 - - [{day}:10:00:00 +0500] \"GET /catalog/1 HTTP/1.1\" 200 1 \"-\" \"curl/8.0\"\n"),
    )
    .unwrap();
    let mut cmd = derbes();
    cmd.args(["ingest", log.to_str().unwrap(), "--json", "--data-dir"])
        .arg(dir);
    if let Some(u) = url {
        cmd.env("DATABASE_URL", u);
    }
    let o = cmd.output().unwrap();
    assert_eq!(
        common::code(&o),
        0,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir`, its path and bytes.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(p) = pending.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out
}

fn find(place: &str, bytes: &[u8]) {
    for needle in NEEDLES {
        let n = needle.as_bytes();
        assert!(
            !bytes.windows(n.len()).any(|w| w == n),
            "`{needle}` found in plaintext in {place}"
        );
    }
}

fn search(dir: &std::path::Path, db: Option<Vec<u8>>, logs: &[(&str, String)]) -> usize {
    let files = files(dir);
    for (path, bytes) in &files {
        find(&path.display().to_string(), bytes);
    }
    if let Some(bytes) = db {
        assert!(!bytes.is_empty());
        find("the PostgreSQL tables", &bytes);
    }
    for (what, text) in logs {
        find(what, text.as_bytes());
    }
    files.len()
}

#[test]
fn nothing_in_plaintext_at_rest_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let cli = flows(&server.addr.clone(), dir.path(), None);
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
    let n = search(
        dir.path(),
        None,
        &[("the service's log", log), ("the CLI's output", cli)],
    );
    assert!(n >= 5, "{n} files searched");
}

#[test]
fn nothing_in_plaintext_at_rest_on_postgres() {
    let Some((rt, db, url)) = common::postgres_db() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&url));
    let cli = flows(&server.addr.clone(), dir.path(), Some(&url));
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
    let bytes = rt.block_on(db.all_bytes());
    search(
        dir.path(),
        Some(bytes),
        &[("the service's log", log), ("the CLI's output", cli)],
    );
}
