#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The structural half of "no personal data without a decision and its audit
//! record": exactly one place in the engine opens sealed fields, and the only
//! caller of that place is `data_for_purpose`, after the decision is audited.
//! (The behavioural half is in the decision and audit tests.)

fn source(name: &str) -> String {
    std::fs::read_to_string(format!("{}/src/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn sealed_fields_are_opened_in_one_place_only() {
    let files = [
        "lib.rs",
        "audit.rs",
        "decide.rs",
        "keys.rs",
        "organizations.rs",
        "seed.rs",
        "staff.rs",
        "error.rs",
    ];
    let all: String = files.iter().map(|f| source(f)).collect();
    assert_eq!(
        all.matches("key.open(").count(),
        1,
        "only Engine::view opens sealed fields"
    );
    assert_eq!(
        all.matches("self.view(").count(),
        1,
        "only data_for_purpose calls Engine::view"
    );
    let lib = source("lib.rs");
    let read = lib.find("pub async fn data_for_purpose(").unwrap();
    let body = &lib[read..];
    let decide = body.find("self.decide_facts(").unwrap();
    let audit = body.find(".audit(").unwrap();
    let deny = body.find("return Err(EngineError::Denied").unwrap();
    let open = body.find("self.view(").unwrap();
    assert!(
        decide < audit && audit < deny && deny < open,
        "decide, then audit, then refuse or open"
    );
    // Nothing outside the engine depends on the vault's data keys.
    for krate in ["derbes-server", "derbes"] {
        let dir = format!("{}/../{krate}/src", env!("CARGO_MANIFEST_DIR"));
        for entry in walk(&dir) {
            let text = std::fs::read_to_string(&entry).unwrap();
            assert!(
                !text.contains("DataKey") && !text.contains("unwrap_key"),
                "{entry} touches data keys"
            );
        }
    }
}

fn walk(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(p.to_str().unwrap()));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p.to_str().unwrap().to_string());
        }
    }
    out
}
