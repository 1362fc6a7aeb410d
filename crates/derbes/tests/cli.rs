#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The real binary, as scripts and people use it.

use std::process::Output;

mod common;
use common::{code, derbes, json_of, repo_root, run, with_postgres, Server};

#[test]
fn kz_contract() {
    let o = run(&["kz", "iin", "871008401427", "--json"]);
    assert_eq!(code(&o), 0);
    let v = json_of(&o);
    assert_eq!(v["valid"], true);
    assert_eq!(v["birth_date"], "1987-10-08");
    // Digit 7 is 4: a woman born in the 20th century.
    assert_eq!(v["sex"], "female");

    let o = run(&["kz", "iin", "871008401428", "--json"]);
    assert_eq!(code(&o), 1);
    let v = json_of(&o);
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains("check digit"));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("871008401428"),
        "never echoes the input"
    );

    let v = json_of(&run(&["kz", "bin", "940140000385", "--json"]));
    assert_eq!(
        v,
        serde_json::json!({"valid": true, "registered": "1994-01", "entity": "resident_legal_entity", "attribute": "head_office"})
    );

    let o = run(&["kz", "iban", "KZ86125KZT5004100100", "--json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(json_of(&o)["bank_code"], "125");
    assert_eq!(code(&run(&["kz", "iban", "KZ87125KZT5004100100"])), 1);

    let v = json_of(&run(&["kz", "phone", "8 (701) 123-45-67", "--json"]));
    assert_eq!(v["valid"], true);
    assert_eq!(v["e164"], "+77011234567");
    assert_eq!(code(&run(&["kz", "phone", "+7 912 123 45 67"])), 1);

    let v = json_of(&run(&[
        "kz",
        "deadline",
        "--received",
        "2024-05-03T17:30:00+05:00",
        "--working-days",
        "1",
        "--json",
    ]));
    assert_eq!(v["due"], "2024-05-04T23:59:59+05:00");

    let o = run(&["kz", "calendar", "2024", "--json"]);
    assert_eq!(code(&o), 0);
    let v = json_of(&o);
    assert_eq!(v["year"], 2024);
    let days: Vec<&str> = v["non_working_days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(days[0], "2024-01-01");
    assert!(days.contains(&"2024-05-08") && !days.contains(&"2024-05-04"));
    assert!(days.contains(&"2024-01-06"), "weekends included");
    assert_eq!(v["coverage"], "complete");
}

#[test]
fn kz_usage_errors_exit_2() {
    assert_eq!(code(&run(&["kz", "calendar", "1999"])), 2);
    let o = run(&[
        "kz",
        "deadline",
        "--received",
        "yesterday",
        "--working-days",
        "1",
    ]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("RFC 3339"));
    assert_eq!(code(&run(&["kz", "iin"])), 2);
    assert_eq!(code(&run(&["kz", "calendar", "twenty"])), 2);
    assert_eq!(code(&run(&["nonsense"])), 2);
    // An uncovered year answers provisionally and says so.
    let o = run(&["kz", "calendar", "2027", "--json"]);
    assert_eq!(code(&o), 0);
    assert!(json_of(&o)["coverage"]["provisional"].is_string());
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning"));
}

#[test]
fn help_everywhere() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["policy", "--help"],
        vec!["policy", "check", "--help"],
        vec!["policy", "render", "--help"],
        vec!["policy", "diff", "--help"],
        vec!["kz", "--help"],
        vec!["kz", "deadline", "--help"],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 0, "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn policy_commands() {
    let o = run(&["policy", "check"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let o = run(&["policy", "check", "--json"]);
    assert_eq!(json_of(&o)["valid"], true);

    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(repo_root().join("policy/ibusiness.toml")).unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        seed.replacen("transfer_notice = 10", "transfer_notice = -10", 1),
    )
    .unwrap();
    let o = run(&["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let text = String::from_utf8_lossy(&o.stdout);
    let line = seed
        .lines()
        .position(|l| l.starts_with("transfer_notice"))
        .unwrap()
        + 1;
    assert!(
        text.contains(&format!(
            "{}:{line}:19: deadline `transfer_notice` cannot be negative",
            bad.display()
        )),
        "{text}"
    );
    assert_eq!(code(&run(&["policy", "check", "/no/such/file.toml"])), 2);

    let v = json_of(&run(&["policy", "show", "--json"]));
    assert_eq!(v["policy"]["operator"]["bin"], "220440001087");

    let out = dir.path().join("policy.html");
    let o = run(&[
        "policy",
        "render",
        "--lang",
        "ru",
        "--format",
        "html",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0);
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("<html lang=\"ru\">") && html.contains("Заключительные положения"));
    let o = run(&["policy", "render", "--lang", "kk"]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8(o.stdout)
        .unwrap()
        .starts_with("# ҚҰПИЯЛЫЛЫҚ САЯСАТЫ"));
    assert_eq!(code(&run(&["policy", "render", "--lang", "de"])), 2);

    let new = dir.path().join("new.toml");
    std::fs::write(
        &new,
        seed.replacen("version = \"1.0.0\"", "version = \"1.1.0\"", 1)
            .replacen("minimum_age = 18", "minimum_age = 21", 1)
            // Advertisers now abroad: consents given to 1.0.0 do not cover that.
            .replacen(
                "cross_border = false\npurposes = [\"marketing\"]",
                "cross_border = true\npurposes = [\"marketing\"]",
                1,
            ),
    )
    .unwrap();
    let o = run(&[
        "policy",
        "diff",
        "policy/ibusiness.toml",
        new.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&o), 0);
    let v = json_of(&o);
    assert_eq!(v["new"]["version"], "1.1.0");
    let change = |id: &str| {
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(change("minimum_age")["reconsent"], false);
    assert_eq!(change("advertisers")["reconsent"], true);
    let text = String::from_utf8(
        run(&[
            "policy",
            "diff",
            "policy/ibusiness.toml",
            new.to_str().unwrap(),
        ])
        .stdout,
    )
    .unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("recipient advertisers") && l.ends_with("[re-consent]")),
        "{text}"
    );
    assert_eq!(
        code(&run(&[
            "policy",
            "diff",
            "policy/ibusiness.toml",
            new.to_str().unwrap(),
            "--exit-code"
        ])),
        1
    );
    assert_eq!(
        code(&run(&[
            "policy",
            "diff",
            "policy/ibusiness.toml",
            "policy/ibusiness.toml",
            "--exit-code"
        ])),
        0
    );
}

/// A running `derbes serve` that is stopped with SIGTERM when dropped.
fn serve_round_trip(database_url: Option<&str>, backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), database_url);
    let (status, body) = server.get("/healthz");
    assert_eq!(status, 200);
    assert!(body.contains("\"ok\""));
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("\"storage\":\"{backend}\"")),
        "{body}"
    );
    let (status, body) = server.get("/api/v1/openapi.json");
    assert_eq!(status, 200);
    assert!(body.contains("\"openapi\""));
    let (status, _) = server.get("/api/v1/unknown?iin=871008401427&phone=%2B77011234567");
    assert_eq!(status, 404);
    let (exit, log) = server.stop();
    assert_eq!(exit, 0, "{log}");
    assert!(log.contains("derbes stopped"), "{log}");
    assert!(
        !log.contains("871008401427") && !log.contains("77011234567"),
        "query strings never reach the log:\n{log}"
    );
    if backend == "sqlite" {
        assert!(dir.path().join("derbes.db").exists());
    }
}

#[test]
fn serve_on_sqlite() {
    serve_round_trip(None, "sqlite");
}

#[test]
fn serve_on_postgres() {
    with_postgres(|url| {
        serve_round_trip(Some(url), "postgres");
        // The same data directory with the policy already published starts again.
        serve_round_trip(Some(url), "postgres");
    });
}

/// `derbes serve` with `policy` that is expected to stop on its own (refuse to start).
fn serve_to_completion(data_dir: &std::path::Path, policy: &std::path::Path) -> Output {
    derbes()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .arg("--policy")
        .arg(policy)
        .output()
        .unwrap()
}

#[test]
fn serve_refuses_a_changed_policy_under_the_same_version() {
    let dir = tempfile::tempdir().unwrap();
    // Inputs live outside the data directory, which is private.
    let inputs = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let (exit, _) = server.stop();
    assert_eq!(exit, 0);
    let edited = inputs.path().join("edited.toml");
    let seed = std::fs::read_to_string(repo_root().join("policy/ibusiness.toml")).unwrap();
    std::fs::write(
        &edited,
        seed.replacen("minimum_age = 18", "minimum_age = 19", 1),
    )
    .unwrap();
    let o = serve_to_completion(dir.path(), &edited);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already published with different content"));
    let o = run(&[
        "policy",
        "versions",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&o), 0);
    assert_eq!(json_of(&o)[0]["version"], "1.0.0");
}

#[test]
fn serve_reports_a_broken_policy() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "schema = 1\n[policy\n").unwrap();
    let o = serve_to_completion(dir.path(), &bad);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.toml:2:"));
}

#[test]
fn migrate_command() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "migrate",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&o), 0);
    let v = json_of(&o);
    assert_eq!(v["schema_version"], derbes_store::latest_version());
    assert_eq!(
        v["applied"].as_array().unwrap().len() as i64,
        derbes_store::latest_version()
    );
    let v = json_of(&run(&[
        "migrate",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--json",
    ]));
    assert!(v["applied"].as_array().unwrap().is_empty());
    let o = run(&["migrate", "--database-url", "mysql://nope"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn dev_seed_and_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&[
        "dev",
        "seed",
        "--subjects",
        "60",
        "--seed",
        "11",
        "--data-dir",
        d,
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o);
    let (registered, minors) = (
        v["registered"].as_u64().unwrap(),
        v["refused_minors"].as_u64().unwrap(),
    );
    assert_eq!(registered + minors, 60);
    assert!(registered > 40);
    assert_eq!(
        v["lookups"].as_u64().unwrap(),
        registered,
        "every adult is found by IIN"
    );
    // The same population again: everyone is already there.
    let v = json_of(&run(&[
        "dev",
        "seed",
        "--subjects",
        "60",
        "--seed",
        "11",
        "--data-dir",
        d,
        "--json",
    ]));
    assert_eq!(v["registered"], 0);
    assert_eq!(v["duplicates"].as_u64().unwrap(), registered);

    let s = json_of(&run(&["keys", "status", "--data-dir", d, "--json"]));
    assert_eq!(s["keks"][0]["data_keys"].as_u64().unwrap(), registered);
    let old = s["active_kek"].as_str().unwrap().to_string();
    let r = json_of(&run(&[
        "keys",
        "rotate",
        "--data-dir",
        d,
        "--batch",
        "7",
        "--json",
    ]));
    assert_eq!(r["rewrapped"].as_u64().unwrap(), registered);
    assert_eq!(r["remaining"], 0);
    let s = json_of(&run(&["keys", "status", "--data-dir", d, "--json"]));
    assert_ne!(s["active_kek"], old.as_str());
    assert_eq!(s["pending_rewrap"], 0);
    let text = String::from_utf8(run(&["keys", "status", "--data-dir", d]).stdout).unwrap();
    assert!(
        text.contains("active") && text.contains("previous"),
        "{text}"
    );
    // No key material in any output.
    let keyfile = std::fs::read_to_string(dir.path().join(format!("keys/kek-{old}.key"))).unwrap();
    assert!(!text.contains(keyfile.trim()));
    // The active KEK cannot be retired; the old one, wrapping nothing, can.
    let active = s["active_kek"].as_str().unwrap().to_string();
    let o = run(&["keys", "retire", &active, "--data-dir", d]);
    assert_ne!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("active"));
    let o = run(&["keys", "retire", &old, "--data-dir", d, "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.path().join(format!("keys/kek-{old}.key")).exists());
    let s = json_of(&run(&["keys", "status", "--data-dir", d, "--json"]));
    assert_eq!(s["orphaned"], 0, "nothing was under it");
}

#[test]
fn dev_seed_on_postgres() {
    with_postgres(|url| {
        let dir = tempfile::tempdir().unwrap();
        let o = derbes()
            .args([
                "dev",
                "seed",
                "--subjects",
                "30",
                "--seed",
                "5",
                "--json",
                "--data-dir",
            ])
            .arg(dir.path())
            .env("DATABASE_URL", url)
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let v = json_of(&o);
        assert_eq!(
            v["registered"].as_u64().unwrap() + v["refused_minors"].as_u64().unwrap(),
            30
        );
    });
}

#[test]
fn master_key_from_environment_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let key = "ab".repeat(32);
    let o = derbes()
        .args(["keys", "status", "--json", "--data-dir", d])
        .env("DERBES_MASTER_KEY", &key)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o);
    assert_eq!(v["source"], "environment");
    let id = v["active_kek"].as_str().unwrap().to_string();
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&key));
    // The same key from a private file is the same KEK.
    let file = dir.path().join("master.key");
    std::fs::write(&file, &key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = derbes()
            .args(["keys", "status", "--data-dir", d])
            .env("DERBES_MASTER_KEY_FILE", &file)
            .output()
            .unwrap();
        assert_eq!(code(&o), 2, "a readable key file is refused");
        assert!(String::from_utf8_lossy(&o.stderr).contains("0600"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let v = json_of(
        &derbes()
            .args(["keys", "status", "--json", "--data-dir", d])
            .env("DERBES_MASTER_KEY_FILE", &file)
            .output()
            .unwrap(),
    );
    assert_eq!(v["active_kek"], id.as_str());
    // Rotation is refused for an environment-managed KEK, with advice.
    let o = derbes()
        .args(["keys", "rotate", "--data-dir", d])
        .env("DERBES_MASTER_KEY", &key)
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("DERBES_PREVIOUS_MASTER_KEYS"));
}

#[test]
fn staff_and_audit_verify_detect_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&[
        "staff",
        "add",
        "--name",
        "Backend",
        "--role",
        "backend_service",
        "--data-dir",
        d,
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o);
    assert!(v["token"].as_str().unwrap().starts_with("dbs_"));
    let token_id = v["token_id"].as_str().unwrap().to_string();
    let o = run(&[
        "staff",
        "add",
        "--name",
        "X",
        "--role",
        "wizard",
        "--data-dir",
        d,
    ]);
    assert_eq!(code(&o), 1, "invalid input is a negative answer");
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown_role"));
    let list = String::from_utf8(run(&["staff", "list", "--data-dir", d]).stdout).unwrap();
    assert!(
        list.contains("backend_service") && !list.contains("dbs_"),
        "{list}"
    );
    assert_eq!(
        code(&run(&["staff", "revoke", &token_id, "--data-dir", d])),
        0
    );

    assert_eq!(
        code(&run(&["dev", "seed", "--subjects", "20", "--data-dir", d])),
        0
    );
    let o = run(&["audit", "verify", "--data-dir", d, "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let v = json_of(&o);
    assert_eq!(v["intact"], true);
    let records = v["records"].as_i64().unwrap();
    assert!(records > 20);
    assert_eq!(code(&run(&["audit", "checkpoint", "--data-dir", d])), 0);

    // Change one record behind derbes' back.
    let rt = runtime();
    rt.block_on(async {
        let store = derbes_store::Store::open(&derbes_store::StoreConfig::sqlite_in(dir.path()))
            .await
            .unwrap();
        store
            .debug_execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 7")
            .await
            .unwrap();
        store.close().await;
    });
    let o = run(&["audit", "verify", "--data-dir", d]);
    assert_eq!(code(&o), 1);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("TAMPERED at record 7"), "{text}");
}

#[test]
fn audit_verify_on_postgres() {
    let Some((rt, db, url)) = common::postgres_db() else {
        return;
    };
    let url = url.as_str();
    let dir = tempfile::tempdir().unwrap();
    let with_pg = |args: &[&str]| {
        derbes()
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("DATABASE_URL", url)
            .output()
            .unwrap()
    };
    assert_eq!(code(&with_pg(&["dev", "seed", "--subjects", "15"])), 0);
    let o = with_pg(&["audit", "verify", "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    rt.block_on(
        db.store
            .debug_execute("DELETE FROM audit_log WHERE seq = 4"),
    )
    .unwrap();
    let o = with_pg(&["audit", "verify"]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stdout).contains("TAMPERED at record 4"));
    drop(db);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The data directory's store and an engine over it: the desk's side of a
/// test that then drives the binary.
async fn engine_in(dir: &std::path::Path) -> (derbes_store::Store, derbes_engine::Engine) {
    let store = derbes_store::Store::open_and_migrate(&derbes_store::StoreConfig::sqlite_in(dir))
        .await
        .unwrap();
    let policy =
        derbes_policy::LoadedPolicy::load(&repo_root().join("policy/ibusiness.toml")).unwrap();
    let engine = derbes_engine::Engine::over_store(
        store.clone(),
        policy,
        dir.to_path_buf(),
        &derbes_vault::KeyEnv::default(),
    )
    .unwrap();
    (store, engine)
}

#[test]
fn requests_queue_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(code(&run(&["migrate", "--data-dir", d])), 0);
    // A request received ten days ago, entered through the engine as the desk would.
    let rt = runtime();
    let request_id = rt.block_on(async {
        let (store, engine) = engine_in(dir.path()).await;
        let actor = derbes_engine::Actor::system(derbes_engine::SystemJob::Cli);
        let received = (chrono::Utc::now() - chrono::Duration::days(10)).to_rfc3339();
        let req: derbes_engine::NewRequest = serde_json::from_value(serde_json::json!({
            "kind": "complaint", "channel": "written", "requester": "subject", "received_at": received
        }))
        .unwrap();
        let r = engine.create_request(&actor, &req).await.unwrap();
        store.close().await;
        r.request_id
    });
    let o = run(&["requests", "list", "--overdue", "--data-dir", d, "--json"]);
    assert_eq!(
        code(&o),
        1,
        "overdue requests are a negative answer for monitoring"
    );
    assert_eq!(json_of(&o)[0]["request_id"], request_id.as_str());
    let o = run(&["requests", "show", &request_id, "--data-dir", d]);
    assert_eq!(code(&o), 0);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("OVERDUE") && text.contains("received"),
        "{text}"
    );
    // Not found: exit 1, and with --json the error carries its code.
    let o = run(&["requests", "show", "nope", "--data-dir", d, "--json"]);
    assert_eq!(code(&o), 1);
    let v = json_of(&o);
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    // A usage error: exit 2, with its code.
    let o = run(&[
        "requests",
        "list",
        "--state",
        "lost",
        "--data-dir",
        d,
        "--json",
    ]);
    assert_eq!(code(&o), 2);
    assert_eq!(json_of(&o)["error"]["code"], "usage");
    // Options only where they apply: the access fee is the service's.
    let o = run(&[
        "requests",
        "list",
        "--access-fee-kzt",
        "500",
        "--data-dir",
        d,
    ]);
    assert_eq!(code(&o), 2, "the fee is not an option of the queue");
    let help = String::from_utf8(run(&["serve", "--help"]).stdout).unwrap();
    assert!(help.contains("--access-fee-kzt"), "{help}");
}

#[test]
fn a_destruction_certificate_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(code(&run(&["migrate", "--data-dir", d])), 0);
    // A synthetic user asks in writing for destruction; support files it,
    // the officer verifies it, the job destroys.
    let rt = runtime();
    let request_id = rt.block_on(async {
        let (store, engine) = engine_in(dir.path()).await;
        let cli = derbes_engine::Actor::system(derbes_engine::SystemJob::Cli);
        let reg: derbes_core::RegistrationRequest = serde_json::from_value(serde_json::json!({
            "fields": {"identity.iin": "871008401427", "identity.rk_citizen": true, "contact.phone": "+77015550078",
                       "full_name.surname": "Тестова", "full_name.first_name": "Айгерим"},
            "consents": [{"kind": "policy"}]
        }))
        .unwrap();
        let s = engine.register(&cli, &reg).await.unwrap().subject_id;
        let req: derbes_engine::NewRequest = serde_json::from_value(serde_json::json!({
            "subject_id": s, "kind": "destruction", "channel": "written", "requester": "subject"
        }))
        .unwrap();
        let support = derbes_engine::Actor::staff("s", "support_agent");
        let officer = derbes_engine::Actor::staff("o", "data_protection_officer");
        let r = engine.create_request(&support, &req).await.unwrap();
        engine
            .act_on_request(
                &officer,
                &r.request_id,
                derbes_engine::RequestAction::Verify,
                None,
            )
            .await
            .unwrap();
        assert_eq!(engine.run_jobs().await.unwrap().destroyed, 1);
        store.close().await;
        r.request_id
    });
    let o = run(&[
        "requests",
        "certificate",
        &request_id,
        "--data-dir",
        d,
        "--json",
    ]);
    assert_eq!(code(&o), 0);
    let v = json_of(&o);
    assert_eq!(v["confirmed_by_audit"], true, "{v}");
    let id = v["certificate"]["certificate_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = run(&[
        "requests",
        "certificate",
        &request_id,
        "--lang",
        "kk",
        "--data-dir",
        d,
    ]);
    assert_eq!(code(&o), 0);
    let text = String::from_utf8(o.stdout).unwrap();
    for want in [
        "# Дербес деректерді жою туралы акт",
        &id,
        "Тәсілі**: жою:",
        "2031-",
        "дейін",
    ] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let page = elsewhere.path().join("act.html");
    let o = run(&[
        "requests",
        "certificate",
        &request_id,
        "--format",
        "html",
        "--out",
        page.to_str().unwrap(),
        "--data-dir",
        d,
    ]);
    assert_eq!(code(&o), 0);
    let page = std::fs::read_to_string(page).unwrap();
    assert!(
        page.contains("<html lang=\"ru\">") && page.contains("Акт об уничтожении"),
        "{page}"
    );
    let o = run(&["requests", "certificate", "nope", "--data-dir", d, "--json"]);
    let v = json_of(&o);
    assert_eq!(
        (code(&o), v["error"]["code"].as_str()),
        (1, Some("not_found")),
        "{v}"
    );
}

#[test]
fn purge_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(code(&run(&["migrate", "--data-dir", d])), 0);
    // Three users registered in 2014; two relationships ended in 2015 (long
    // past every retention, including the 36 months support keeps contacts).
    let rt = runtime();
    let ended: Vec<String> = rt.block_on(async {
        let (store, engine) = engine_in(dir.path()).await;
        let then = chrono::DateTime::parse_from_rfc3339("2014-03-01T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let clock = std::sync::Arc::new(std::sync::Mutex::new(then));
        let c2 = clock.clone();
        let engine = engine.with_clock(std::sync::Arc::new(move || *c2.lock().unwrap()));
        let actor = derbes_engine::Actor::system(derbes_engine::SystemJob::Cli);
        let mut ended = Vec::new();
        for (i, iin) in ["871008401427", "900101300017", "950505400019"].into_iter().enumerate() {
            let reg: derbes_core::RegistrationRequest = serde_json::from_value(serde_json::json!({
                "fields": {"identity.iin": iin, "identity.rk_citizen": true, "full_name.surname": "Тестова",
                           "full_name.first_name": "Тест", "contact.phone": format!("+7701555000{i}")},
                "consents": [{"kind": "policy"}]
            }))
            .unwrap();
            let s = engine.register(&actor, &reg).await.unwrap().subject_id;
            if i > 0 {
                *clock.lock().unwrap() = then + chrono::Duration::days(306);
                engine.end_relationship(&actor, s, None).await.unwrap();
                *clock.lock().unwrap() = then;
                ended.push(s.to_string());
            }
            if i == 2 {
                // A litigation hold: no door destroys it, the CLI's neither.
                let dpo = derbes_engine::Actor::staff("dpo", "data_protection_officer");
                let hold = serde_json::from_value(serde_json::json!({"reason": "litigation", "reference": "case 3-77/2014"})).unwrap();
                engine.place_hold(&dpo, s, &hold).await.unwrap();
            }
        }
        store.close().await;
        ended
    });
    let o = run(&["purge", "--dry-run", "--data-dir", d, "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["subjects_destroyed"], 1, "{v}");
    assert_eq!(v["held_subjects"], 1, "{v}");
    let mut listed: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["subject_id"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut want = ended.clone();
    want.sort();
    assert_eq!(listed, want);
    let text = String::from_utf8(run(&["purge", "--dry-run", "--data-dir", d]).stdout).unwrap();
    assert!(
        text.contains("would destroy the whole subject: the relationship ended 2015-01-01"),
        "{text}"
    );
    assert!(text.contains("kept: a legal hold is open"), "{text}");
    assert!(!text.contains("Тестова") && !text.contains("871008401427"));
    let v = json_of(&run(&["purge", "--data-dir", d, "--json"]));
    assert_eq!(v["subjects_destroyed"], 1);
    let v = json_of(&run(&["purge", "--data-dir", d, "--json"]));
    assert_eq!(v["subjects_destroyed"], 0, "nothing twice");
    assert_eq!(v["held_subjects"], 1, "the held subject stays");
    let o = run(&["purge", "--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--dry-run"));
    // Everyone consented to the version in force: nobody must consent again.
    let o = run(&["reconsent", "--data-dir", d, "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json_of(&o)["items"], serde_json::json!([]));
    assert!(String::from_utf8_lossy(&run(&["reconsent", "--help"]).stdout).contains("--after"));
}

/// Combined log lines of today (Asia/Almaty, so that the day's key window
/// is open), 30 clients, two agents.
fn weblog_lines(range: std::ops::Range<usize>) -> String {
    weblog_lines_of(0, range)
}

/// Log lines of the day `days_ago` days before today (Asia/Almaty).
fn weblog_lines_of(days_ago: i64, range: std::ops::Range<usize>) -> String {
    let today = (chrono::Utc::now() + chrono::Duration::hours(5)
        - chrono::Duration::days(days_ago))
    .format("%d/%b/%Y");
    range
        .map(|i| {
            format!(
                "192.0.2.{} - - [{today}:1{}:00:00 +0500] \"GET /catalog/{}?q=x HTTP/1.1\" 200 1 \"https://t.me/x\" \"{}\"\n",
                i % 30,
                i % 10,
                i % 3,
                if i % 2 == 0 { "iBusiness/3.2.1 (Android 13; SM-A515F)" } else { "curl/8.0" }
            )
        })
        .collect()
}

#[test]
fn ingest_stats_and_report() {
    let dir = tempfile::tempdir().unwrap();
    // Inputs live outside the data directory, which is private.
    let inputs = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let log = inputs.path().join("access.log");
    let mut text = weblog_lines(0..300);
    text.push_str("this is not a log line\n");
    text.push_str(&weblog_lines(300..301)[..40]); // cut off, no newline
    std::fs::write(&log, &text).unwrap();
    let o = derbes()
        .args(["ingest", log.to_str().unwrap(), "--data-dir", d, "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o);
    assert_eq!(
        (v["lines"].as_u64(), v["counted"].as_u64()),
        (Some(302), Some(300))
    );
    assert_eq!(
        v["files"][0]["malformed"]["bad_address"]["lines"],
        serde_json::json!([301])
    );
    assert_eq!(
        v["files"][0]["malformed"]["truncated"]["lines"],
        serde_json::json!([302])
    );
    assert_eq!(v["committed"], true);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("not a log line"));
    // Statistics: k-anonymous, no address, no id.
    let o = run(&["stats", "--by", "route", "--data-dir", d, "--json"]);
    let v = json_of(&o);
    assert_eq!(v["rows"][0]["requests"], 300);
    assert_eq!(v["rows"][0]["value"], "/catalog/{id}");
    let csv = String::from_utf8(run(&["stats", "--by", "social", "--data-dir", d, "--csv"]).stdout)
        .unwrap();
    assert!(
        csv.starts_with("social,requests,visitors,approximate\nTelegram,300,"),
        "{csv}"
    );
    let page = inputs.path().join("report.html");
    let o = run(&[
        "stats",
        "report",
        "--out",
        page.to_str().unwrap(),
        "--data-dir",
        d,
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script") && !html.contains("192.0.2."));
    // The wrong format: refused as a whole, nothing stored.
    let o = derbes()
        .args([
            "ingest",
            log.to_str().unwrap(),
            "--format",
            "json",
            "--data-dir",
            d,
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert_eq!(json_of(&o)["committed"], false);
    let v = json_of(&run(&["stats", "--by", "day", "--data-dir", d, "--json"]));
    assert_eq!(v["rows"][0]["requests"], 300, "nothing added");
    // Empty input and gzip.
    let empty = inputs.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let o = derbes()
        .args(["ingest", empty.to_str().unwrap(), "--data-dir", d, "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    assert_eq!(json_of(&o)["lines"], 0);
    // Standard input.
    let mut child = derbes()
        .args(["ingest", "-", "--data-dir", d, "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(weblog_lines(0..10).as_bytes()).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0);
    assert_eq!(json_of(&o)["counted"], 10);
    for args in [vec!["ingest", "--help"], vec!["stats", "--help"]] {
        assert!(String::from_utf8_lossy(&run(&args).stdout).contains("Usage:"));
    }
}

#[test]
fn follow_survives_restarts_and_rotation_without_counting_twice() {
    let dir = tempfile::tempdir().unwrap();
    // Inputs live outside the data directory, which is private.
    let inputs = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let log = inputs.path().join("access.log");
    let follow = || {
        let o = derbes()
            .args([
                "ingest",
                log.to_str().unwrap(),
                "--follow",
                "--until-idle",
                "--data-dir",
                d,
                "--json",
            ])
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        json_of(&o)["counted"].as_u64().unwrap()
    };
    // 100 lines and half of the 101st: the half waits.
    let first = weblog_lines(0..101);
    let cut = first.len() - 30;
    std::fs::write(&log, &first[..cut]).unwrap();
    assert_eq!(follow(), 100);
    // Restart: nothing new, nothing counted again.
    assert_eq!(follow(), 0);
    // The writer finishes the line and adds more; then the file is rotated
    // (renamed to .1, with 20 more lines written to it first) and a new one starts.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&first.as_bytes()[cut..]).unwrap();
    f.write_all(weblog_lines(101..150).as_bytes()).unwrap();
    drop(f);
    assert_eq!(follow(), 50);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(weblog_lines(150..170).as_bytes()).unwrap();
    drop(f);
    std::fs::rename(&log, inputs.path().join("access.log.1")).unwrap();
    std::fs::write(&log, weblog_lines(170..200)).unwrap();
    assert_eq!(
        follow(),
        50,
        "the rest of the rotated file, then the new one"
    );
    assert_eq!(follow(), 0);
    let v = json_of(&run(&["stats", "--by", "day", "--data-dir", d, "--json"]));
    assert_eq!(v["rows"][0]["requests"], 200, "every line exactly once");
}

/// The data directory and everything in it are closed to other users on
/// every backend: created 0700 with files 0600 (the SQLite database, its
/// WAL and shared memory, the key files), and an opened-up directory or
/// file is a clear refusal at start-up (issue 12, defect 11).
fn data_directory_is_private(database_url: Option<&str>) {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let d = dir.to_str().unwrap();
    let with_db = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--data-dir", d, "--json"]);
        if let Some(url) = database_url {
            all.extend(["--database-url", url]);
        }
        run(&all)
    };
    // An empty directory made by `mkdir` is closed at once.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = with_db(&[
        "staff",
        "add",
        "--name",
        "Backend",
        "--role",
        "backend_service",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let mut files = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(p) = pending.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                pending.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                files.push(path);
            }
        }
    }
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    if database_url.is_none() {
        assert!(names.contains(&"derbes.db".to_string()), "{names:?}");
    }
    assert!(!files.is_empty());

    // Opened up: refused, naming the path and the fix; nothing else runs.
    let refusal = || {
        let o = with_db(&["staff", "list"]);
        assert_ne!(code(&o), 0);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = refusal();
    assert!(err.contains("0755") && err.contains("chmod 700"), "{err}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = &files[0];
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refusal();
    assert!(
        err.contains("0644") && err.contains("chmod 600") && err.contains(&*names[0]),
        "{err}"
    );
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(code(&with_db(&["staff", "list"])), 0);
}

#[test]
fn data_directory_is_private_on_sqlite() {
    data_directory_is_private(None);
}

#[test]
fn data_directory_is_private_on_postgres() {
    with_postgres(|url| data_directory_is_private(Some(url)));
}

/// Issue 12, defect 13: lines older than the key window were dropped with
/// exit 0, the same file ingested twice was counted twice, and `serve`
/// destroyed day keys with its own 2-day window. Now: nothing counted is a
/// refusal naming the option; the window is recorded with the keys and
/// every process keeps it; the same content is counted once.
#[test]
fn ingest_counts_each_line_once_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let log = inputs.path().join("old.log");
    std::fs::write(&log, weblog_lines_of(9, 0..100)).unwrap();
    let ingest = |extra: &[&str]| {
        let mut args = vec!["ingest", log.to_str().unwrap(), "--data-dir", d, "--json"];
        args.extend_from_slice(extra);
        let o = run(&args);
        (code(&o), json_of(&o))
    };
    // Ten-day-old lines under the default 2-day window: a refusal that
    // names the option.
    let (exit, v) = ingest(&[]);
    assert_eq!(exit, 1, "{v}");
    assert_eq!(
        (v["counted"].as_u64(), v["committed"].as_bool()),
        (Some(0), Some(false))
    );
    let why = v["refused"].as_str().unwrap();
    assert!(why.contains("--key-window-days 10"), "{why}");
    // With it: counted, and the window recorded.
    let (exit, v) = ingest(&["--key-window-days", "10"]);
    assert_eq!((exit, v["counted"].as_u64()), (0, Some(100)), "{v}");
    let day = (chrono::Utc::now() + chrono::Duration::hours(5) - chrono::Duration::days(9))
        .format("%Y-%m-%d")
        .to_string();
    let key = dir.path().join("weblog-keys").join(format!("{day}.key"));
    assert!(key.exists());
    // The service, told nothing, keeps that window: the key survives its
    // scheduler's pass.
    let server = Server::start(dir.path(), None);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (exit, log_text) = server.stop();
    assert_eq!(exit, 0, "{log_text}");
    assert!(
        key.exists(),
        "serve destroyed a key inside the recorded window"
    );
    // The same file again: nothing new, said so, exit 0, stats unchanged.
    let (exit, v) = ingest(&[]);
    assert_eq!((exit, v["counted"].as_u64()), (0, Some(0)), "{v}");
    assert_eq!(
        v["already_counted_bytes"].as_u64(),
        Some(std::fs::metadata(&log).unwrap().len())
    );
    let requests = || {
        json_of(&run(&[
            "stats",
            "--by",
            "day",
            "--k",
            "1",
            "--data-dir",
            d,
            "--json",
        ]))["rows"][0]["requests"]
            .clone()
    };
    assert_eq!(requests(), 100);
    // Grown since: only the new lines are counted.
    let mut more = std::fs::read_to_string(&log).unwrap();
    more.push_str(&weblog_lines_of(9, 100..130));
    std::fs::write(&log, more).unwrap();
    let (exit, v) = ingest(&[]);
    assert_eq!((exit, v["counted"].as_u64()), (0, Some(30)), "{v}");
    // The same lines under another name, in the same batch twice: once.
    let copy = inputs.path().join("copy.log");
    std::fs::copy(&log, &copy).unwrap();
    let o = run(&[
        "ingest",
        copy.to_str().unwrap(),
        copy.to_str().unwrap(),
        "--data-dir",
        d,
        "--json",
    ]);
    assert_eq!((code(&o), json_of(&o)["counted"].as_u64()), (0, Some(0)));
    assert_eq!(requests(), 130);
}
