#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use derbes_core::*;
use derbes_kz::{Iin, Sex, ALMATY};
use derbes_policy::{ConsentKind, LoadedPolicy};
use serde_json::json;

fn policy() -> LoadedPolicy {
    LoadedPolicy::from_text(include_str!("../../../policy/ibusiness.toml").to_string()).unwrap()
}

fn iin_born(y: i32, m: u32, d: u32) -> String {
    let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
    (0..100)
        .find_map(|s| Iin::from_parts(date, Sex::Female, s).ok())
        .unwrap()
        .to_string()
}

fn request(iin: &str) -> RegistrationRequest {
    serde_json::from_value(json!({
        "fields": {
            "identity.iin": iin, "identity.rk_citizen": true,
            "full_name.surname": "Жумабаева", "full_name.first_name": "Дана",
            "contact.phone": "+7 707 000 11 22"
        },
        "consents": [{"kind": "policy"}]
    }))
    .unwrap()
}

fn codes(e: Vec<Problem>) -> Vec<(String, &'static str)> {
    e.into_iter().map(|p| (p.field, p.code)).collect()
}

#[test]
fn age_gate_is_exact_at_the_18th_birthday_in_almaty() {
    let p = policy();
    let iin = iin_born(2008, 11, 25);
    // 24 Nov 2026 in Almaty: 17 years old.
    let r = validate_registration(
        p.policy(),
        &request(&iin),
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
    );
    assert_eq!(
        codes(r.unwrap_err()),
        vec![("identity.iin".to_string(), "under_age")]
    );
    // 25 Nov 2026: 18 today.
    assert!(validate_registration(
        p.policy(),
        &request(&iin),
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    )
    .is_ok());
    // The instant matters in Almaty time: 24 Nov 19:30 UTC is already 25 Nov 00:30 in Almaty (UTC+5).
    let late = Utc.with_ymd_and_hms(2026, 11, 24, 19, 30, 0).unwrap();
    assert_eq!(
        almaty_date(late),
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    );
    let early = Utc.with_ymd_and_hms(2026, 11, 24, 18, 59, 59).unwrap();
    assert_eq!(
        almaty_date(early),
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    );
    assert_eq!(
        late.with_timezone(&ALMATY).format("%:z").to_string(),
        "+05:00"
    );
}

#[test]
fn every_problem_is_reported_with_field_and_code() {
    let p = policy();
    let req: RegistrationRequest = serde_json::from_value(json!({
        "fields": {
            "identity.iin": "871008401428", "identity.rk_citizen": false,
            "contact.phone": "12345", "contact.fax": "1", "organisation.bin": "940140000385",
            "entrepreneur.surname_initials": "Ахметов А.Б."
        },
        "consents": [{"kind": "marketing"}]
    }))
    .unwrap();
    let got = codes(
        validate_registration(
            p.policy(),
            &req,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        )
        .unwrap_err(),
    );
    for expected in [
        ("identity.iin", "invalid_iin"),
        ("contact.phone", "invalid_phone"),
        ("contact.fax", "unknown_field"),
        ("organisation.bin", "field_not_allowed"),
        ("full_name.surname", "missing_field"),
        ("entrepreneur.iin", "missing_field"),
        ("consents", "consent_required"),
        ("identity.rk_citizen", "not_citizen"),
    ] {
        assert!(
            got.contains(&(expected.0.to_string(), expected.1)),
            "{expected:?} not in {got:?}"
        );
    }
}

fn consent(kind: &str, extra: serde_json::Value) -> ConsentRequest {
    let mut v = json!({"kind": kind});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn consents_record_what_the_law_asks_and_hash_stably() {
    let p = policy();
    let subject = SubjectId::new();
    let now = at("2026-11-24T10:00:00Z");
    let (rec, signed) = build_consent(
        &p,
        subject,
        &consent("policy", json!({"evidence": {"app_version": "3.2.1"}})),
        Some("ab12".into()),
        now,
        "",
    )
    .unwrap();
    assert_eq!(rec.purposes.len(), p.policy().purposes.len());
    assert_eq!(rec.operations.len(), 13);
    assert!(
        rec.third_party && rec.cross_border,
        "using the app accepts transfer incl. cross-border (intro)"
    );
    assert_eq!(signed.receipt.operator.bin, "220440001087");
    assert_eq!(signed.receipt.policy.version, p.policy().version);
    assert_eq!(signed.sha256, signed.receipt.sha256());
    assert_eq!(rec.receipt_sha256, signed.sha256);
    // The receipt round-trips through JSON to the same hash.
    let back: Receipt =
        serde_json::from_str(&serde_json::to_string(&signed.receipt).unwrap()).unwrap();
    assert_eq!(back.sha256(), signed.sha256);
    // Rebuilt from the record, it is the same receipt.
    assert_eq!(
        receipt_of(&rec, signed.receipt.operator.clone(), p.policy().published),
        signed.receipt
    );
    // Any change changes the hash.
    let mut forged = signed.receipt.clone();
    forged.cross_border_transfer = false;
    assert_ne!(forged.sha256(), signed.sha256);
    assert_eq!(rec.state(now), ConsentState::Active);
}

#[test]
fn consent_kinds_and_their_rules() {
    let p = policy();
    let s = SubjectId::new();
    let now = at("2026-11-24T10:00:00Z");
    let (m, _) = build_consent(
        &p,
        s,
        &consent("marketing", json!({"channel": "sms"})),
        None,
        now,
        "",
    )
    .unwrap();
    // Every purpose that sends marketing on the channel: offers and surveys.
    assert_eq!(
        m.purposes,
        vec!["marketing".to_string(), "surveys".to_string()]
    );
    assert!(!m.third_party);
    let e = build_consent(&p, s, &consent("marketing", json!({})), None, now, "").unwrap_err();
    assert_eq!(e[0].code, "missing_channel");
    // Cookies: 13 months at most, expiry in the state.
    let (c, _) = build_consent(&p, s, &consent("cookies", json!({})), None, now, "").unwrap();
    // Cookies and device identifiers (7.4): the categories that need it.
    assert_eq!(
        c.categories,
        vec!["device".to_string(), "app_data".to_string()]
    );
    assert_eq!(c.expires_at.unwrap(), at("2027-12-24T10:00:00Z"));
    assert_eq!(c.state(at("2027-12-24T09:59:59Z")), ConsentState::Active);
    assert_eq!(c.state(at("2027-12-24T10:00:00Z")), ConsentState::Expired);
    let e = build_consent(
        &p,
        s,
        &consent("cookies", json!({"expires_in_months": 14})),
        None,
        now,
        "",
    )
    .unwrap_err();
    assert_eq!(e[0].code, "invalid_expiry");
    let e = build_consent(
        &p,
        s,
        &consent("policy", json!({"policy_version": "0.9"})),
        None,
        now,
        "",
    )
    .unwrap_err();
    assert_eq!(e[0].code, "policy_version_mismatch");
    let (ie, _) = build_consent(
        &p,
        s,
        &consent(
            "entrepreneur",
            json!({"evidence": {"collected_via": "written"}}),
        ),
        None,
        now,
        "",
    )
    .unwrap();
    assert_eq!(ie.kind, ConsentKind::Entrepreneur);
    assert_eq!(ie.categories, vec!["entrepreneur".to_string()]);
    // Withdrawal wins over expiry.
    let mut w = c.clone();
    w.withdrawn_at = Some(now + Duration::days(1));
    assert_eq!(w.state(now), ConsentState::Active);
    assert_eq!(w.state(now + Duration::days(2)), ConsentState::Withdrawn);
}
