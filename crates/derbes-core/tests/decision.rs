#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every deny reason, each role's need-to-know, and the permits in between.

use chrono::{DateTime, Duration, Utc};
use derbes_core::*;
use derbes_policy::{Channel, LoadedPolicy, Operation};

fn policy() -> LoadedPolicy {
    LoadedPolicy::from_text(include_str!("../../../policy/ibusiness.toml").to_string()).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Consent records from the ledger, as the app would submit them.
fn records(kinds: &[serde_json::Value]) -> Vec<ConsentRecord> {
    let p = policy();
    let s = SubjectId::new();
    kinds
        .iter()
        .map(|v| {
            let req: ConsentRequest = serde_json::from_value(v.clone()).unwrap();
            build_consent(&p, s, &req, None, now() - Duration::days(1), "")
                .unwrap()
                .0
        })
        .collect()
}

/// An active subject: the policy accepted, marketing by SMS and cookies consented.
fn active() -> SubjectFacts {
    let recs = records(&[
        serde_json::json!({"kind": "policy"}),
        serde_json::json!({"kind": "marketing", "channel": "sms"}),
        serde_json::json!({"kind": "cookies"}),
    ]);
    SubjectFacts::active(compiled().consent_facts(&recs, now()))
}

fn cats(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

struct Ask<'a> {
    role: &'a str,
    op: Operation,
    purpose: &'a str,
    categories: Vec<String>,
    channel: Option<Channel>,
    recipient: Option<RecipientInput<'a>>,
}

fn ask<'a>(role: &'a str, op: Operation, purpose: &'a str, c: &[&str]) -> Ask<'a> {
    Ask {
        role,
        op,
        purpose,
        categories: cats(c),
        channel: None,
        recipient: None,
    }
}

fn decide(c: &Compiled, a: &Ask<'_>, s: &SubjectFacts) -> Decision {
    c.decide(
        &DecisionInput {
            role: a.role,
            operation: a.op,
            purpose: a.purpose,
            categories: &a.categories,
            channel: a.channel,
            recipient: a.recipient,
            now: now(),
        },
        s,
    )
}

fn compiled() -> Compiled {
    Compiled::new(policy().policy()).unwrap()
}

#[track_caller]
fn denied_with(d: &Decision, code: &str) {
    assert!(!d.permit, "expected deny `{code}`, got permit");
    assert!(
        d.codes().contains(&code),
        "expected `{code}` in {:?}",
        d.codes()
    );
}

#[test]
fn a_plain_use_is_permitted_with_its_reason() {
    let c = compiled();
    let d = decide(
        &c,
        &ask(
            "backend_service",
            Operation::Use,
            "identification",
            &["identity", "full_name"],
        ),
        &active(),
    );
    assert!(d.permit, "{:?}", d.reasons);
    assert_eq!(d.codes(), ["permitted"]);
}

#[test]
fn every_deny_reason() {
    let c = compiled();
    let s = active();
    let base = || {
        ask(
            "backend_service",
            Operation::Use,
            "identification",
            &["identity"],
        )
    };

    denied_with(
        &decide(
            &c,
            &ask(
                "backend_service",
                Operation::Use,
                "world_domination",
                &["identity"],
            ),
            &s,
        ),
        "unknown_purpose",
    );
    denied_with(
        &decide(
            &c,
            &ask(
                "backend_service",
                Operation::Use,
                "identification",
                &["astrology"],
            ),
            &s,
        ),
        "unknown_category",
    );
    denied_with(
        &decide(
            &c,
            &ask("backend_service", Operation::Use, "identification", &[]),
            &s,
        ),
        "no_categories",
    );
    denied_with(
        &decide(
            &c,
            &ask(
                "backend_service",
                Operation::Use,
                "marketing",
                &["identity"],
            ),
            &s,
        ),
        "category_not_allowed",
    );
    denied_with(
        &decide(
            &c,
            &ask(
                "backend_service",
                Operation::Depersonalisation,
                "identification",
                &["identity"],
            ),
            &s,
        ),
        "operation_not_allowed",
    );
    denied_with(
        &decide(
            &c,
            &ask("marketing", Operation::Use, "identification", &["identity"]),
            &s,
        ),
        "no_need_to_know",
    );
    denied_with(
        &decide(
            &c,
            &ask("intern", Operation::Use, "identification", &["identity"]),
            &s,
        ),
        "unknown_role",
    );

    for (status, code) in [
        (SubjectStatus::Blocked, "subject_blocked"),
        (SubjectStatus::Withdrawn, "subject_withdrawn"),
        (SubjectStatus::Destroyed, "subject_destroyed"),
        (SubjectStatus::BarredMinor, "subject_barred_minor"),
    ] {
        let mut f = active();
        f.status = status;
        denied_with(&decide(&c, &base(), &f), code);
    }
    // Blocked: storage only — destruction included is refused.
    let mut blocked = active();
    blocked.status = SubjectStatus::Blocked;
    assert!(
        decide(
            &c,
            &ask(
                "backend_service",
                Operation::Storage,
                "identification",
                &["identity"]
            ),
            &blocked
        )
        .permit
    );
    denied_with(
        &decide(
            &c,
            &ask(
                "backend_service",
                Operation::Destruction,
                "identification",
                &["identity"],
            ),
            &blocked,
        ),
        "subject_blocked",
    );

    // Retention after the relationship ended: contract data 60 months, identification 0.
    let mut ended = active();
    ended.relationship_ended_at = Some(now() - Duration::days(10));
    denied_with(&decide(&c, &base(), &ended), "retention_expired");
    assert!(
        decide(
            &c,
            &ask(
                "backend_service",
                Operation::Use,
                "contract_performance",
                &["identity"]
            ),
            &ended
        )
        .permit
    );

    // Consent states.
    for (state, code) in [
        (None, "no_policy_consent"),
        (Some(ConsentState::Expired), "consent_expired"),
        (Some(ConsentState::Withdrawn), "consent_withdrawn"),
    ] {
        let mut f = active();
        f.consents.policy = state;
        denied_with(&decide(&c, &base(), &f), code);
    }

    // Marketing needs the channel's own consent.
    let mut m = ask("marketing", Operation::Use, "marketing", &["contact"]);
    denied_with(&decide(&c, &m, &s), "channel_required");
    m.channel = Some(Channel::Telegram);
    denied_with(&decide(&c, &m, &s), "no_marketing_consent");
    m.channel = Some(Channel::Sms);
    assert!(decide(&c, &m, &s).permit);

    // Entrepreneur data needs the entrepreneur's consent.
    denied_with(
        &decide(
            &c,
            &ask(
                "backend_service",
                Operation::Use,
                "identification",
                &["entrepreneur"],
            ),
            &s,
        ),
        "no_entrepreneur_consent",
    );

    // Transfers.
    denied_with(
        &decide(
            &c,
            &ask(
                "backend_service",
                Operation::Transfer,
                "contract_performance",
                &["full_name"],
            ),
            &s,
        ),
        "recipient_required",
    );
    let mut t = ask(
        "backend_service",
        Operation::Transfer,
        "contract_performance",
        &["full_name"],
    );
    t.recipient = Some(RecipientInput {
        id: "aliens",
        legal_basis: None,
        reference: None,
    });
    denied_with(&decide(&c, &t, &s), "unknown_recipient");
    t.recipient = Some(RecipientInput {
        id: "advertisers",
        legal_basis: None,
        reference: None,
    });
    denied_with(&decide(&c, &t, &s), "recipient_not_allowed");
    t.recipient = Some(RecipientInput {
        id: "financial_institutions",
        legal_basis: None,
        reference: None,
    });
    assert!(
        decide(&c, &t, &s).permit,
        "{:?}",
        decide(&c, &t, &s).reasons
    );
    let mut no_third = active();
    no_third.consents.third_party = false;
    denied_with(&decide(&c, &t, &no_third), "no_third_party_consent");

    // Cross-border: the operation and the consent.
    let mut x = ask(
        "backend_service",
        Operation::Transfer,
        "marketing",
        &["contact"],
    );
    x.channel = Some(Channel::Sms);
    x.recipient = Some(RecipientInput {
        id: "ad_platforms",
        legal_basis: None,
        reference: None,
    });
    denied_with(&decide(&c, &x, &s), "cross_border_operation");
    x.op = Operation::CrossBorderTransfer;
    assert!(
        decide(&c, &x, &s).permit,
        "{:?}",
        decide(&c, &x, &s).reasons
    );
    let mut no_abroad = active();
    no_abroad.consents.cross_border = false;
    denied_with(&decide(&c, &x, &no_abroad), "no_cross_border_consent");

    // Authorities: a legal basis and a reference, no consent needed.
    let mut a = ask(
        "data_protection_officer",
        Operation::Transfer,
        "legal_obligation",
        &["identity", "network"],
    );
    a.recipient = Some(RecipientInput {
        id: "kz_authorities",
        legal_basis: Some("Law on personal data, art. 9"),
        reference: None,
    });
    let d = decide(&c, &a, &s);
    denied_with(&d, "legal_basis_required");
    denied_with(&d, "ip_link_forbidden");
    a.recipient = Some(RecipientInput {
        id: "kz_authorities",
        legal_basis: Some("Law on personal data, art. 9"),
        reference: Some("request 12-34/567 of 2026-11-20"),
    });
    let mut no_consent = active();
    no_consent.consents = ConsentFacts::default();
    assert!(
        decide(&c, &a, &no_consent).permit,
        "{:?}",
        decide(&c, &a, &no_consent).reasons
    );

    // The IP-to-person link never goes to anyone else (3.2), whatever else allows it.
    let mut ip = ask(
        "backend_service",
        Operation::Transfer,
        "fraud_prevention",
        &["network"],
    );
    ip.recipient = Some(RecipientInput {
        id: "financial_institutions",
        legal_basis: None,
        reference: None,
    });
    let d = decide(&c, &ip, &s);
    denied_with(&d, "ip_link_forbidden");
}

#[test]
fn denials_list_every_reason_at_once() {
    let c = compiled();
    let mut f = active();
    f.status = SubjectStatus::Blocked;
    f.consents.policy = None;
    let d = decide(
        &c,
        &ask("analyst", Operation::Use, "identification", &["identity"]),
        &f,
    );
    for code in ["subject_blocked", "no_need_to_know", "no_policy_consent"] {
        denied_with(&d, code);
    }
}

#[test]
fn each_roles_need_to_know() {
    let p = policy();
    let c = compiled();
    let s = active();
    for role in &p.policy().roles {
        for purpose in &p.policy().purposes {
            let granted = c.role_categories(&role.id, &purpose.id);
            let mut sorted = granted.clone();
            sorted.sort();
            let mut declared = role.categories_for(&purpose.id).to_vec();
            declared.sort();
            assert_eq!(sorted, declared, "{} / {}", role.id, purpose.id);
            for category in &purpose.categories {
                let mut a = ask(
                    &role.id,
                    Operation::Storage,
                    &purpose.id,
                    &[category.as_str()],
                );
                a.channel = Some(Channel::Sms);
                let d = decide(&c, &a, &s);
                let needs = granted.contains(category);
                assert_eq!(
                    !d.codes().contains(&"no_need_to_know"),
                    needs,
                    "{} / {} / {}: {:?}",
                    role.id,
                    purpose.id,
                    category,
                    d.codes()
                );
            }
        }
    }
    // The administrator never sees personal data; the analyst never sees identity.
    assert!(p
        .policy()
        .purposes
        .iter()
        .all(|pu| c.role_categories("administrator", &pu.id).is_empty()));
    assert!(p.policy().purposes.iter().all(|pu| !c
        .role_categories("analyst", &pu.id)
        .contains(&"identity".to_string())));
}

#[test]
fn consent_facts_from_the_ledger() {
    let p = policy();
    let s = SubjectId::new();
    let req = |v: serde_json::Value| -> ConsentRequest { serde_json::from_value(v).unwrap() };
    let (pol, _) = build_consent(
        &p,
        s,
        &req(serde_json::json!({"kind": "policy", "cross_border": false})),
        None,
        now(),
        "",
    )
    .unwrap();
    let (mut sms, _) = build_consent(
        &p,
        s,
        &req(serde_json::json!({"kind": "marketing", "channel": "sms"})),
        None,
        now(),
        "",
    )
    .unwrap();
    let (push, _) = build_consent(
        &p,
        s,
        &req(serde_json::json!({"kind": "marketing", "channel": "push"})),
        None,
        now(),
        "",
    )
    .unwrap();
    sms.withdrawn_at = Some(now());
    let c = compiled();
    let f = c.consent_facts(&[pol, sms, push], now() + Duration::seconds(1));
    assert_eq!(f.policy, Some(ConsentState::Active));
    assert!(f.third_party && !f.cross_border);
    assert!(f.marketing_on(Channel::Push) && !f.marketing_on(Channel::Sms));
    let mut m = ask("marketing", Operation::Use, "marketing", &["contact"]);
    let subject = SubjectFacts::active(f);
    m.channel = Some(Channel::Push);
    assert!(decide(&c, &m, &subject).permit);
    m.channel = Some(Channel::Sms);
    denied_with(&decide(&c, &m, &subject), "no_marketing_consent");
}

#[test]
fn the_subjects_own_copy_is_given_while_blocked_or_withdrawn_but_nothing_else() {
    let c = compiled();
    let all = [
        "identity",
        "full_name",
        "contact",
        "network",
        "client",
        "app_data",
    ];
    let copy = ask(
        "data_protection_officer",
        Operation::Extraction,
        "subject_requests",
        &all,
    );
    // No consent needed: the Law, not the policy acceptance, obliges the answer.
    let mut s = active();
    s.consents.policy = None;
    assert!(decide(&c, &copy, &s).permit);
    for status in [SubjectStatus::Blocked, SubjectStatus::Withdrawn] {
        s.status = status;
        // Even years after the relationship ended: the purpose keeps nothing itself.
        s.relationship_ended_at = Some(now() - Duration::days(4000));
        assert!(decide(&c, &copy, &s).permit, "{status:?}");
        // Any other use of the same purpose is still stopped.
        let using = ask(
            "data_protection_officer",
            Operation::Use,
            "subject_requests",
            &["contact"],
        );
        assert!(!decide(&c, &using, &s).permit, "{status:?}");
    }
    for status in [SubjectStatus::Destroyed, SubjectStatus::BarredMinor] {
        s.status = status;
        assert!(!decide(&c, &copy, &s).permit, "{status:?}");
    }
    // Need-to-know still holds: support agents do not export everything.
    let support = ask(
        "support_agent",
        Operation::Extraction,
        "subject_requests",
        &all,
    );
    denied_with(&decide(&c, &support, &active()), "no_need_to_know");
    // Organisations are not personal data and not part of the copy's purpose.
    let org = ask(
        "data_protection_officer",
        Operation::Extraction,
        "subject_requests",
        &["organisation"],
    );
    denied_with(&decide(&c, &org, &active()), "category_not_allowed");
}

#[test]
fn objections_are_a_fact_every_contacting_purpose_is_denied_on() {
    let c = compiled();
    let mut s = active();
    let on = |purpose: &'static str, role: &'static str, channel: Channel| {
        let mut a = ask(role, Operation::Use, purpose, &["contact"]);
        a.channel = Some(channel);
        a
    };
    // Before: service messages and SMS marketing are permitted.
    for (purpose, role) in [
        ("communication", "backend_service"),
        ("preferred_communication", "backend_service"),
        ("marketing", "marketing"),
    ] {
        assert!(
            decide(&c, &on(purpose, role, Channel::Sms), &s).permit,
            "{purpose}"
        );
    }
    // An objection to service messages on SMS stops service purposes on SMS only.
    s.objections = objection_bit(Channel::Sms, derbes_policy::ContactKind::Service);
    denied_with(
        &decide(
            &c,
            &on("communication", "backend_service", Channel::Sms),
            &s,
        ),
        "objected",
    );
    denied_with(
        &decide(
            &c,
            &on("preferred_communication", "backend_service", Channel::Sms),
            &s,
        ),
        "objected",
    );
    assert!(
        decide(
            &c,
            &on("communication", "backend_service", Channel::Push),
            &s
        )
        .permit
    );
    assert!(decide(&c, &on("marketing", "marketing", Channel::Sms), &s).permit);
    // An objection to marketing stops marketing and surveys, not service messages.
    s.objections = objection_bit(Channel::Sms, derbes_policy::ContactKind::Marketing);
    denied_with(
        &decide(&c, &on("marketing", "marketing", Channel::Sms), &s),
        "objected",
    );
    denied_with(
        &decide(&c, &on("surveys", "marketing", Channel::Sms), &s),
        "objected",
    );
    assert!(
        decide(
            &c,
            &on("communication", "backend_service", Channel::Sms),
            &s
        )
        .permit
    );
    // A contacting use names its channel; storing does not contact anyone.
    let mut no_channel = on("communication", "backend_service", Channel::Sms);
    no_channel.channel = None;
    denied_with(&decide(&c, &no_channel, &active()), "channel_required");
    no_channel.op = Operation::Storage;
    assert!(decide(&c, &no_channel, &active()).permit);
    // The same rule answers "may I contact?".
    let mut objected = active();
    objected.objections = objection_bit(Channel::Sms, derbes_policy::ContactKind::Service);
    assert_eq!(
        may_contact(&objected, Channel::Sms, derbes_policy::ContactKind::Service)
            .unwrap_err()
            .code,
        "objected"
    );
    assert!(may_contact(
        &objected,
        Channel::Sms,
        derbes_policy::ContactKind::Marketing
    )
    .is_ok());
    assert_eq!(
        may_contact(
            &objected,
            Channel::Push,
            derbes_policy::ContactKind::Marketing
        )
        .unwrap_err()
        .code,
        "no_marketing_consent"
    );
}

#[test]
fn surveys_need_the_channels_marketing_consent() {
    let c = compiled();
    let mut a = ask("marketing", Operation::Use, "surveys", &["contact"]);
    a.channel = Some(Channel::Whatsapp);
    denied_with(&decide(&c, &a, &active()), "no_marketing_consent");
    let recs = records(&[
        serde_json::json!({"kind": "policy"}),
        serde_json::json!({"kind": "marketing", "channel": "whatsapp"}),
    ]);
    assert!(decide(&c, &a, &SubjectFacts::active(c.consent_facts(&recs, now()))).permit);
}

#[test]
fn depersonalised_only_purposes_never_receive_a_subjects_fields() {
    let c = compiled();
    for op in [Operation::Use, Operation::Extraction] {
        let a = ask(
            "analyst",
            op,
            "statistics",
            &["network", "location", "device", "app_data"],
        );
        denied_with(&decide(&c, &a, &active()), "depersonalised_only");
    }
    // Depersonalising them (into aggregates) is what the purpose is for.
    let a = ask(
        "analyst",
        Operation::Depersonalisation,
        "statistics",
        &["network"],
    );
    assert!(
        decide(&c, &a, &active()).permit,
        "{:?}",
        decide(&c, &a, &active()).reasons
    );
}

#[test]
fn cookies_and_device_identifiers_need_the_cookie_consent() {
    let c = compiled();
    let a = ask(
        "backend_service",
        Operation::Use,
        "device_linking",
        &["device", "app_data"],
    );
    assert!(decide(&c, &a, &active()).permit);
    let recs = records(&[serde_json::json!({"kind": "policy"})]);
    let no_cookies = SubjectFacts::active(c.consent_facts(&recs, now()));
    denied_with(&decide(&c, &a, &no_cookies), "no_cookie_consent");
    // Network data is not a cookie: no cookie consent needed.
    let n = ask(
        "backend_service",
        Operation::Use,
        "device_linking",
        &["network"],
    );
    assert!(decide(&c, &n, &no_cookies).permit);
    // An expired cookie consent is no consent (7.5).
    let mut expired = records(&[
        serde_json::json!({"kind": "policy"}),
        serde_json::json!({"kind": "cookies", "expires_in_months": 1}),
    ]);
    expired[1].expires_at = Some(now() - Duration::seconds(1));
    denied_with(
        &decide(
            &c,
            &a,
            &SubjectFacts::active(c.consent_facts(&expired, now())),
        ),
        "no_cookie_consent",
    );
}

#[path = "../../../policy/testdata/v1_1.rs"]
mod v1_1;

fn policy_1_1() -> derbes_policy::Policy {
    derbes_policy::Policy::parse(&v1_1::policy_1_1_text())
        .unwrap_or_else(|p| panic!("{}", p.report("1.1.0")))
}

#[test]
fn a_consent_covers_exactly_the_version_it_accepted() {
    let old = policy().policy().clone();
    let new = policy_1_1();
    let c = Compiled::new(&new).unwrap();
    let mut s = active();
    s.consents = c.consent_facts(&records(&[serde_json::json!({"kind": "policy"})]), now());
    s.accepted = Some(std::sync::Arc::new(c.coverage(&old)));
    let mut scoring = ask("security", Operation::Use, "credit_scoring", &["identity"]);
    denied_with(&decide(&c, &scoring, &s), "consent_outdated");
    scoring.op = Operation::Transfer;
    scoring.recipient = Some(RecipientInput {
        id: "financial_institutions",
        legal_basis: None,
        reference: None,
    });
    denied_with(&decide(&c, &scoring, &s), "consent_outdated");
    // What the old version said is still covered.
    let id = ask(
        "backend_service",
        Operation::Use,
        "identification",
        &["identity"],
    );
    assert!(decide(&c, &id, &s).permit);
    // Consenting to the new version covers the new purpose.
    s.accepted = None;
    scoring.op = Operation::Use;
    scoring.recipient = None;
    assert!(
        decide(&c, &scoring, &s).permit,
        "{:?}",
        decide(&c, &scoring, &s).reasons
    );
    // A version derbes cannot read covers nothing.
    s.accepted = Some(std::sync::Arc::new(Coverage::nothing()));
    denied_with(&decide(&c, &id, &s), "consent_outdated");
    // The diff says which changes need re-consent.
    let changes = derbes_policy::reconsent_changes(&old, &new);
    assert!(changes
        .iter()
        .any(|ch| ch.area == "purpose" && ch.id == "credit_scoring"));
    assert!(changes
        .iter()
        .any(|ch| ch.area == "recipient" && ch.id == "financial_institutions"));
}

#[test]
fn holds_stop_destruction_and_statutory_data_outlives_a_withdrawal() {
    let c = compiled();
    let mut s = active();
    s.held = true;
    let destroy = ask(
        "backend_service",
        Operation::Destruction,
        "identification",
        &["identity"],
    );
    denied_with(&decide(&c, &destroy, &s), "legal_hold");
    // A withdrawn subject's statutory data serves that law alone.
    let mut w = active();
    w.status = SubjectStatus::Withdrawn;
    w.relationship_ended_at = Some(now() - Duration::days(1));
    let by_law = ask(
        "data_protection_officer",
        Operation::Use,
        "legal_obligation",
        &["identity"],
    );
    assert!(
        decide(&c, &by_law, &w).permit,
        "{:?}",
        decide(&c, &by_law, &w).reasons
    );
    let other = ask(
        "data_protection_officer",
        Operation::Use,
        "legal_protection",
        &["identity"],
    );
    denied_with(&decide(&c, &other, &w), "subject_withdrawn");
}

/// The subject's own door: every category, for the purposes that answer
/// their requests, and nothing for any other purpose.
#[test]
fn the_subject_needs_to_know_only_to_answer_their_own_requests() {
    let p = policy();
    let c = compiled();
    let s = active();
    let role = derbes_policy::SUBJECT_ROLE;
    for purpose in &p.policy().purposes {
        let mut granted = c.role_categories(role, &purpose.id);
        granted.sort();
        if purpose.kind == derbes_policy::PurposeKind::Rights {
            let mut all = purpose.categories.clone();
            all.sort();
            assert_eq!(granted, all, "{}", purpose.id);
            let cats: Vec<&str> = purpose.categories.iter().map(String::as_str).collect();
            let d = decide(
                &c,
                &ask(role, Operation::Extraction, &purpose.id, &cats),
                &s,
            );
            assert!(d.permit, "{}: {:?}", purpose.id, d.codes());
        } else {
            assert!(granted.is_empty(), "{}: {granted:?}", purpose.id);
        }
    }
    denied_with(
        &decide(
            &c,
            &ask(role, Operation::Use, "marketing", &["contact"]),
            &s,
        ),
        "no_need_to_know",
    );
    // No policy may name a staff role so.
    let text = include_str!("../../../policy/ibusiness.toml").replace(
        "id = \"marketing\"\nname = { ru = \"Маркетинг\"",
        "id = \"data_subject\"\nname = { ru = \"Маркетинг\"",
    );
    let err = LoadedPolicy::from_text(text).unwrap_err().to_string();
    assert!(err.contains("reserved"), "{err}");
}

proptest::proptest! {
    /// The stored terms line reads back as the record's terms, for every
    /// kind, channel, expiry, flags and moment; the facts from the lines
    /// equal the facts from the records, in whatever order they are read.
    #[test]
    fn terms_lines_read_back_as_the_records(
        kinds in proptest::collection::vec(0usize..6, 1..6),
        withdrawn in proptest::collection::vec(proptest::option::of(-3i64..3), 6),
        refuse_third in proptest::bool::ANY,
        notify in proptest::bool::ANY,
        later in 0i64..400,
        micros in 0i64..1_000_000,
    ) {
        let p = policy();
        let s = SubjectId::new();
        let asks = [
            serde_json::json!({"kind": "policy", "third_party": !refuse_third, "notify_of_transfers": notify}),
            serde_json::json!({"kind": "marketing", "channel": "sms"}),
            serde_json::json!({"kind": "marketing", "channel": "push"}),
            serde_json::json!({"kind": "cookies", "expires_in_months": 1}),
            serde_json::json!({"kind": "policy", "cross_border": true}),
            serde_json::json!({"kind": "marketing", "channel": "email"}),
        ];
        let at = now() - Duration::days(40) + Duration::microseconds(micros);
        let mut recs = Vec::new();
        for (i, k) in kinds.iter().enumerate() {
            let req: ConsentRequest = serde_json::from_value(asks[*k].clone()).unwrap();
            let (mut r, _) = build_consent(&p, s, &req, None, at + Duration::days(i as i64 % 2), "").unwrap();
            r.withdrawn_at = withdrawn[i].map(|d| now() + Duration::days(d));
            recs.push(r);
        }
        let stored: Vec<String> = recs.iter().map(|r| r.terms().line().unwrap()).collect();
        let mut lines = Vec::new();
        for (r, line) in recs.iter().zip(&stored) {
            let back = ConsentTerms::parse_line(line, r.withdrawn_at).unwrap();
            proptest::prop_assert_eq!(&back, &r.terms());
            lines.push(back);
        }
        let c = compiled();
        let when = now() + Duration::days(later);
        lines.reverse();
        proptest::prop_assert_eq!(c.terms_facts(&lines, when), c.consent_facts(&recs, when));
    }
}

#[test]
fn a_terms_line_of_another_shape_is_not_read() {
    let recs = records(&[serde_json::json!({"kind": "marketing", "channel": "sms"})]);
    let line = recs[0].terms().line().unwrap();
    assert!(ConsentTerms::parse_line(&line, None).is_some());
    for bad in [
        line.replace("t1 ", "t2 "),
        format!("{line} extra"),
        line.replace(" sms ", " pigeon "),
        line.rsplit_once(' ')
            .map(|(a, _)| format!("{a} 01"))
            .unwrap(),
        "{\"kind\":\"policy\"}".to_string(),
    ] {
        assert_eq!(ConsentTerms::parse_line(&bad, None), None, "{bad}");
    }
    let mut odd = recs[0].clone();
    odd.purposes.push("two words".into());
    assert_eq!(odd.terms().line(), None);
}
