#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The structural half of "no personal data without a decision and its audit
//! record": exactly one place in the engine opens sealed data
//! (`open_sealed`); it serves fields (`view`, which takes a `Permit` only
//! `decide_and_audit` makes, after the decision's audit record is durable)
//! and free-text notes (`open_notes`, which audits every opening). The only
//! callers of `view` are `data_for_purpose` and the access `export`.
//! (The behavioural half is in the decision, audit and promises tests.)

fn source(name: &str) -> String {
    std::fs::read_to_string(format!("{}/src/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The name of the function a byte offset of `text` is in (the nearest `fn` before it).
fn enclosing_fn(text: &str, at: usize) -> &str {
    let start = text[..at].rfind("fn ").unwrap() + 3;
    let rest = &text[start..];
    &rest[..rest.find(['(', '<']).unwrap()]
}

#[test]
fn sealed_fields_are_opened_in_one_place_only() {
    let dir = format!("{}/src", env!("CARGO_MANIFEST_DIR"));
    let files: Vec<(String, String)> = walk(&dir)
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect();
    assert!(files.len() >= 10, "the engine's sources were found");
    let opens: usize = files
        .iter()
        .map(|(_, t)| t.matches("key.open(").count())
        .sum();
    assert_eq!(opens, 1, "only Engine::open_sealed opens sealed data");
    let callers = |call: &str| {
        let mut found = std::collections::BTreeSet::new();
        for (_, text) in &files {
            for (at, _) in text.match_indices(call) {
                found.insert(enclosing_fn(text, at).to_string());
            }
        }
        found.into_iter().collect::<Vec<_>>()
    };
    for (_, text) in &files {
        if let Some(at) = text.find("key.open(") {
            assert_eq!(enclosing_fn(text, at), "open_sealed");
        }
    }
    // Besides them only a connected system's signing secret, which is no
    // one's personal data: opened to sign events, never shown.
    assert_eq!(
        callers("self.open_sealed("),
        ["open_notes", "system_secret", "view"],
        "what opens sealed data: fields, notes and systems' secrets"
    );
    let outbox = source("outbox.rs");
    let body = &outbox[outbox.find("pub async fn system_secret(").unwrap()..];
    let body = &body[..body.find("\n    }\n").unwrap()];
    assert!(
        body.contains("format!(\"system:{system_id}\")") && body.contains("\"secret\""),
        "system_secret opens only a system's own secret"
    );
    // Engine::view is called only by the two answers that decide first:
    // data for a purpose, and the subject's own copy (access export).
    assert_eq!(
        callers("self.view("),
        ["data_for_purpose", "export"],
        "who opens sealed fields"
    );
    // Notes are opened and audited in one function.
    let notes = source("notes.rs");
    let body = &notes[notes.find("pub(crate) async fn open_notes(").unwrap()..];
    assert!(
        body.find("self.open_sealed(").unwrap() < body.find(".audit(").unwrap()
            && body.find(".audit(").unwrap() < body.find("Ok(out)\n    }").unwrap(),
        "open_notes audits before it returns"
    );
    // A field is opened only under a Permit, which only decide_and_audit
    // makes (its fields are private to decide.rs), after the decision's
    // audit record is durable; the two readers ask for one before opening.
    let reads = source("reads.rs");
    assert!(reads.contains("pub(crate) fn view(\n        &self,\n        permit: &Permit,"));
    let constructions: Vec<&str> = files
        .iter()
        .flat_map(|(_, t)| {
            t.match_indices("Ok(Permit {")
                .map(move |(at, _)| enclosing_fn(t, at))
        })
        .collect();
    assert_eq!(constructions, ["decide_and_audit"], "who makes a Permit");
    let decide = source("decide.rs");
    let body = &decide[decide
        .find("pub(crate) async fn decide_and_audit(")
        .unwrap()..];
    let (audit, deny, permit) = (
        body.find(".audit(").unwrap(),
        body.find("return Err(EngineError::Denied").unwrap(),
        body.find("Ok(Permit {").unwrap(),
    );
    assert!(
        audit < deny && deny < permit,
        "decide_and_audit: decide, audit, refuse or permit"
    );
    for function in ["pub async fn data_for_purpose(", "pub async fn export("] {
        let text = &files.iter().find(|(_, t)| t.contains(function)).unwrap().1;
        let body = &text[text.find(function).unwrap()..];
        assert!(
            body.find(".decide_and_audit(").unwrap() < body.find("self.view(").unwrap(),
            "{function}: a permit before anything is opened"
        );
    }
    // One destruction function: the store's destroying piece is called
    // only by Engine::destroy (holds and blocking refused inside its unit of
    // work, the certificate and the audit record written in it).
    assert_eq!(callers("w.destroy("), ["destroy"], "who destroys");
    assert_eq!(
        files
            .iter()
            .filter(|(_, t)| t.contains("w.destroy("))
            .map(|(f, _)| f.rsplit('/').next().unwrap())
            .collect::<Vec<_>>(),
        ["destruction.rs"]
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

/// The server and the binary reach storage only through the engine: the
/// store is a dependency of their tests, never of their code.
#[test]
fn the_store_is_the_engines_alone() {
    for krate in ["derbes-server", "derbes"] {
        let manifest = std::fs::read_to_string(format!(
            "{}/../{krate}/Cargo.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut section = "";
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line;
            } else if line.starts_with("derbes-store") {
                assert_eq!(
                    section, "[dev-dependencies]",
                    "{krate} depends on derbes-store"
                );
            }
        }
        for entry in walk(&format!("{}/../{krate}/src", env!("CARGO_MANIFEST_DIR"))) {
            let text = std::fs::read_to_string(&entry).unwrap();
            assert!(!text.contains("derbes_store"), "{entry} names derbes_store");
        }
    }
}

/// What a field is and does is the policy's to say: no source of the
/// engine, the server or the binary names a field of the policy (lookup
/// fields are the policy's `lookup = true`, indexed by their type).
#[test]
fn no_field_of_the_policy_is_named_in_code() {
    let policy = derbes_policy::LoadedPolicy::from_text(
        include_str!("../../../policy/ibusiness.toml").to_string(),
    )
    .unwrap();
    let fields: Vec<String> = policy
        .policy()
        .categories
        .iter()
        .flat_map(|c| c.fields.iter().map(move |f| format!("\"{}.{}", c.id, f.id)))
        .collect();
    assert!(fields.len() > 20, "the policy's fields were read");
    for krate in ["derbes-engine", "derbes-server", "derbes"] {
        for entry in walk(&format!("{}/../{krate}/src", env!("CARGO_MANIFEST_DIR"))) {
            let text = std::fs::read_to_string(&entry).unwrap();
            for f in &fields {
                assert!(!text.contains(f.as_str()), "{entry} names the field {f}\"");
            }
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
