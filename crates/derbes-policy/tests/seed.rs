#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use derbes_policy::*;
use proptest::prelude::*;

const SEED: &str = include_str!("../../../policy/ibusiness.toml");
const SOURCE_RU: &str = include_str!("../../../policy/source/privacy-policy.ru.txt");

fn seed() -> Policy {
    Policy::parse(SEED).unwrap_or_else(|p| panic!("{}", p.report("policy/ibusiness.toml")))
}

/// Collapse whitespace so that layout does not matter, only wording.
fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn seed_policy_is_valid_and_complete() {
    let p = seed();
    assert_eq!(p.operator.bin.to_string(), "220440001087");
    assert_eq!(p.subjects.minimum_age, 18);
    assert_eq!(p.consent.cookie_max_months, 13);
    let section_2: Vec<_> = p.purposes.iter().filter(|x| x.clause == "2").collect();
    assert_eq!(section_2.len(), 19, "section 2 lists 19 purposes");
    assert_eq!(p.operations.len(), Operation::ALL.len());
    assert_eq!(p.channels.len(), 6);
    let d = &p.deadlines;
    assert_eq!(
        (
            d.access,
            d.refusal,
            d.rectification,
            d.blocking,
            d.unblocking,
            d.destruction,
            d.withdrawal,
            d.transfer_notice,
            d.breach_notice
        ),
        (3, 3, 1, 1, 1, 1, 1, 10, 1)
    );
    assert!(
        !p.category("organisation").unwrap().personal,
        "3.4: organisation data is not personal data"
    );
    assert!(p.category("biometric").unwrap().biometric);
    assert!(p.recipients.iter().any(|r| r.cross_border));
    let form = p.form("registration").unwrap();
    assert!(form
        .fields
        .iter()
        .any(|f| f.field.to_string() == "identity.iin" && f.required));
}

#[test]
fn russian_render_reproduces_every_paragraph_and_item() {
    let p = seed();
    for format in [Format::Markdown, Format::Html] {
        let out = render(&p, Lang::Ru, format);
        let rendered = norm(&out);
        for (n, line) in SOURCE_RU.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            // List markers are layout; table rows wrap cells over lines, so
            // each cell fragment is looked for on its own.
            let line = line.trim_start_matches("- ").trim_start_matches("✓ ");
            for fragment in line.split('\t').map(str::trim).filter(|f| !f.is_empty()) {
                let fragment = norm(fragment);
                let fragment = if format == Format::Html {
                    fragment
                        .replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;")
                } else {
                    fragment
                };
                assert!(
                    rendered.contains(&fragment),
                    "{format:?}: line {} of the source is missing or altered: {fragment}",
                    n + 1
                );
            }
        }
    }
}

#[test]
fn english_render_has_every_block() {
    let p = seed();
    let out = render(&p, Lang::En, Format::Markdown);
    for b in &p.document {
        assert!(norm(&out).contains(&norm(&b.text.en)));
    }
    assert!(out.starts_with("# PRIVACY POLICY"));
}

/// Every block is in all three languages, and the Kazakh document renders
/// each block's own Kazakh text (the terms' names too), never a fallback.
#[test]
fn kazakh_render_has_every_block() {
    let p = seed();
    let out = norm(&render(&p, Lang::Kk, Format::Markdown));
    for (i, b) in p.document.iter().enumerate() {
        let kk = b
            .text
            .kk
            .as_deref()
            .unwrap_or_else(|| panic!("block {i} has no Kazakh"));
        assert!(!kk.trim().is_empty() && kk != b.text.ru, "block {i}");
        assert!(
            out.contains(&norm(kk)),
            "block {i} is not in the Kazakh document"
        );
        if let Some(t) = &b.term {
            assert!(t.kk.is_some(), "the term of block {i} has no Kazakh");
        }
    }
    assert!(out.starts_with("# ҚҰПИЯЛЫЛЫҚ САЯСАТЫ"));
    assert!(out.contains("Қосымша. Мақсаттар, алушылар және мерзімдер"));
    let html = render(&p, Lang::Kk, Format::Html);
    assert!(html.contains("<html lang=\"kk\">"));
}

#[test]
fn html_is_a_page_and_escapes() {
    let mut p = seed();
    p.document[1].text.en = "<script>alert(1)</script> & co".into();
    let out = render(&p, Lang::En, Format::Html);
    assert!(out.starts_with("<!doctype html>"));
    assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
    assert!(!out.contains("<script>"));
    assert_eq!(out.matches("<ul>").count(), out.matches("</ul>").count());
}

fn problems(text: &str) -> Vec<Problem> {
    match Policy::parse(text) {
        Ok(_) => panic!("expected problems"),
        Err(Problems(p)) => p,
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn unknown_reference_is_reported_with_position() {
    let bad = SEED.replacen(
        "purposes = [\"contract_performance\", \"partner_access\", \"fraud_prevention\", \"legal_obligation\"]",
        "purposes = [\"contract_performance\", \"world_domination\", \"fraud_prevention\", \"legal_obligation\"]",
        1,
    );
    assert_ne!(bad, SEED);
    let ps = problems(&bad);
    let p = ps
        .iter()
        .find(|p| p.message.contains("unknown purpose `world_domination`"))
        .unwrap();
    assert_eq!(p.line, line_of(&bad, "world_domination"));
    let col = bad
        .lines()
        .nth(p.line - 1)
        .unwrap()
        .find("\"world_domination\"")
        .unwrap()
        + 1;
    assert_eq!(p.column, col);
}

#[test]
fn duplicate_id_is_reported() {
    let bad = SEED.replacen("id = \"advertisers\"", "id = \"ad_platforms\"", 1);
    let ps = problems(&bad);
    assert!(
        ps.iter()
            .any(|p| p.message == "duplicate recipient id `ad_platforms`"),
        "{ps:?}"
    );
}

#[test]
fn negative_deadline_is_reported() {
    let bad = SEED.replacen("blocking = 1\n", "blocking = -1\n", 1);
    let ps = problems(&bad);
    let p = ps
        .iter()
        .find(|p| p.message.contains("cannot be negative"))
        .unwrap();
    assert_eq!(p.line, line_of(&bad, "blocking = -1"));
    assert!(p.message.contains("blocking"));
}

#[test]
fn malformed_file_is_reported_not_panicked() {
    let ps = problems("schema = 1\n[policy\nid = \"x\"\n");
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].line, 2);
    let ps = problems("");
    assert!(ps[0].message.contains("missing field"), "{ps:?}");
    let ps = problems(&SEED.replacen("[consent]", "[consent]\nbogus = true", 1));
    assert!(ps[0].message.contains("unknown field `bogus`"), "{ps:?}");
}

#[test]
fn semantic_rules() {
    // A purpose that no recipient may transfer for cannot be given to one.
    let bad = SEED.replacen(
        "purposes = [\"marketing\"]\n\n[[recipients]]\nid = \"service_providers\"",
        "purposes = [\"statistics\"]\n\n[[recipients]]\nid = \"service_providers\"",
        1,
    );
    let ps = problems(&bad);
    assert!(
        ps.iter().any(|p| p
            .message
            .contains("does not allow the `transfer` operation")),
        "{ps:?}"
    );
    // An invalid operator BIN.
    let ps = problems(&SEED.replacen("bin = \"220440001087\"", "bin = \"220440001088\"", 1));
    assert!(
        ps.iter()
            .any(|p| p.message.starts_with("operator BIN is not valid")),
        "{ps:?}"
    );
    // Cookie consent longer than 13 months.
    let ps = problems(&SEED.replacen("cookie_max_months = 13", "cookie_max_months = 24", 1));
    assert!(
        ps.iter().any(|p| p
            .message
            .contains("cookie_max_months must be between 1 and 13")),
        "{ps:?}"
    );
    // An unknown field in a form.
    let ps = problems(&SEED.replacen(
        "{ field = \"contact.email\"",
        "{ field = \"contact.fax\"",
        1,
    ));
    assert!(
        ps.iter()
            .any(|p| p.message == "unknown field `contact.fax`"),
        "{ps:?}"
    );
    // A purpose the document does not cite.
    let bad = SEED.replacen("purposes = [\"surveys\"]", "", 1);
    let ps = problems(&bad);
    assert!(
        ps.iter()
            .any(|p| p.message.contains("purpose `surveys` is not cited")),
        "{ps:?}"
    );
}

#[test]
fn report_format() {
    let ps = Policy::parse("schema = 1\n[policy\n").unwrap_err();
    let line = ps.report("p.toml");
    assert!(line.starts_with("p.toml:2:"), "{line}");
}

#[test]
fn diff_finds_what_users_care_about() {
    let old = seed();
    let edited = SEED
        .replacen("transfer_notice = 10", "transfer_notice = 5", 1)
        .replacen("categories = [\"full_name\", \"contact\"]\noperations = [\"collection\", \"recording\", \"storage\", \"update\", \"extraction\", \"use\", \"transfer\", \"cross_border_transfer\"", "categories = [\"full_name\", \"contact\", \"location\"]\noperations = [\"collection\", \"recording\", \"storage\", \"update\", \"extraction\", \"use\", \"transfer\", \"cross_border_transfer\"", 1)
        .replacen("cross_border = false\npurposes = [\"marketing\"]", "cross_border = true\npurposes = [\"marketing\"]", 1);
    let new = Policy::parse(&edited).unwrap_or_else(|p| panic!("{}", p.report("edited")));
    let changes = diff(&old, &new);
    let find = |area: &str, id: &str| {
        changes
            .iter()
            .find(|c| c.area == area && c.id == id)
            .cloned()
    };
    assert_eq!(
        find("deadline", "transfer_notice").unwrap().detail,
        "10 -> 5 working days"
    );
    assert!(find("purpose", "marketing")
        .unwrap()
        .detail
        .contains("categories added: location"));
    assert!(find("recipient", "advertisers")
        .unwrap()
        .detail
        .contains("cross_border false -> true"));
    assert!(diff(&old, &old).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    /// Cutting the file anywhere, or corrupting one character, never panics.
    #[test]
    fn damaged_files_never_panic(cut in 0usize..SEED.len(), pos in 0usize..SEED.len(), c in any::<char>()) {
        let cut = (0..=cut).rev().find(|i| SEED.is_char_boundary(*i)).unwrap_or(0);
        let _ = Policy::parse(&SEED[..cut]);
        let pos = (0..=pos).rev().find(|i| SEED.is_char_boundary(*i)).unwrap_or(0);
        let mut s = SEED.to_string();
        if let Some(old) = s[pos..].chars().next() {
            s.replace_range(pos..pos + old.len_utf8(), &c.to_string());
            let _ = Policy::parse(&s);
        }
    }
}

#[test]
fn responsible_person_and_notice_templates_are_checked() {
    let p = seed();
    assert_eq!(p.operator.responsible_person.phone, "+77010000000");
    assert!(p.operator.responsible_person.email.contains('@'));
    // A template may use only its own placeholders, reported where written.
    let bad = SEED.replacen("переданы получателю «{recipient}»", "переданы «{iin}»", 1);
    let ps = problems(&bad);
    let found = ps
        .iter()
        .find(|p| p.message.contains("`{iin}`"))
        .unwrap_or_else(|| panic!("{ps:?}"));
    assert!(found.message.contains("notice `transfer`"));
    let bad = SEED.replacen("email = \"dpo@ibusiness.example\"", "email = \"nobody\"", 1);
    assert!(problems(&bad).iter().any(|p| p.message.contains("email")));
    let bad = SEED.replacen("phone = \"+7 701 000 0000\"", "phone = \"12\"", 1);
    assert!(problems(&bad).iter().any(|p| p.message.contains("phone")));
    // Rendering fills what it knows and leaves the rest as written.
    assert_eq!(
        NoticeTemplates::render("{app}: {x} {date}", &[("app", "A"), ("date", "1")]),
        "A: {x} 1"
    );
    assert_eq!(NoticeTemplates::render("open { end", &[]), "open { end");
    let text = NoticeTemplates::render(
        &p.notices.transfer.en,
        &[
            ("app", "iBusiness"),
            ("recipient", "R"),
            ("purpose", "P"),
            ("categories", "C"),
            ("date", "D"),
        ],
    );
    assert!(!text.contains('{'), "{text}");
}

/// Every name a person reads on a page (categories and their fields,
/// purposes, recipients, channels, rights, roles, notices, ...) is given in
/// Kazakh beside Russian and English.
#[test]
fn every_name_is_in_kazakh_too() {
    let raw: toml::Value = toml::from_str(SEED).unwrap();
    fn walk(v: &toml::Value, path: &str, missing: &mut Vec<String>, seen: &mut usize) {
        match v {
            toml::Value::Table(t) if t.contains_key("ru") && t.contains_key("en") => {
                *seen += 1;
                match t.get("kk").and_then(|k| k.as_str()) {
                    Some(k) if !k.trim().is_empty() => {}
                    _ => missing.push(path.to_string()),
                }
            }
            toml::Value::Table(t) => {
                for (k, v) in t {
                    if k != "document" {
                        walk(v, &format!("{path}.{k}"), missing, seen);
                    }
                }
            }
            toml::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), missing, seen);
                }
            }
            _ => {}
        }
    }
    let (mut missing, mut seen) = (Vec::new(), 0);
    walk(&raw, "", &mut missing, &mut seen);
    assert!(seen > 150, "the names were read: {seen}");
    assert!(missing.is_empty(), "no Kazakh for: {missing:?}");
    // And the model keeps it.
    let p = seed();
    assert!(p.categories.iter().all(|c| c.name.kk.is_some()));
}
