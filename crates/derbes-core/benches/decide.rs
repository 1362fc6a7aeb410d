#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `decide` latency for the shipped policy, against Cedar run in the same
//! process on an equivalent two-policy request; prints both medians and the
//! ratio. `cargo bench -p derbes-core --bench decide`.

use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use chrono::Utc;
use criterion::Criterion;
use derbes_core::{
    Compiled, ConsentFacts, ConsentState, DecisionInput, RecipientInput, SubjectFacts,
};
use derbes_policy::{LoadedPolicy, Operation};

const CEDAR_POLICIES: &str = r#"
permit(principal in Role::"backend_service", action == Action::"use", resource)
when {
  context.purpose == "identification" &&
  ["identity", "full_name", "contact", "position", "entrepreneur", "organisation"].containsAll(context.categories) &&
  resource.consent == "active"
};
forbid(principal, action, resource) when { resource.status != "active" };
"#;

const CEDAR_ENTITIES: &str = r#"[
  {"uid": {"type": "User", "id": "staff-1"}, "attrs": {}, "parents": [{"type": "Role", "id": "backend_service"}]},
  {"uid": {"type": "Role", "id": "backend_service"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Subject", "id": "s1"}, "attrs": {"consent": "active", "status": "active"}, "parents": []}
]"#;

struct Cedar {
    authorizer: cedar_policy::Authorizer,
    policies: cedar_policy::PolicySet,
    entities: cedar_policy::Entities,
    request: cedar_policy::Request,
}

fn cedar() -> Cedar {
    let fail = |e: &dyn std::fmt::Display| -> ! { panic!("cedar setup: {e}") };
    let policies = cedar_policy::PolicySet::from_str(CEDAR_POLICIES).unwrap_or_else(|e| fail(&e));
    let entities =
        cedar_policy::Entities::from_json_str(CEDAR_ENTITIES, None).unwrap_or_else(|e| fail(&e));
    let uid = |s: &str| cedar_policy::EntityUid::from_str(s).unwrap_or_else(|e| fail(&e));
    let context = cedar_policy::Context::from_json_str(
        r#"{"purpose": "identification", "categories": ["identity", "full_name"]}"#,
        None,
    )
    .unwrap_or_else(|e| fail(&e));
    let request = cedar_policy::Request::new(
        uid(r#"User::"staff-1""#),
        uid(r#"Action::"use""#),
        uid(r#"Subject::"s1""#),
        context,
        None,
    )
    .unwrap_or_else(|e| fail(&e));
    Cedar {
        authorizer: cedar_policy::Authorizer::new(),
        policies,
        entities,
        request,
    }
}

fn facts() -> SubjectFacts {
    SubjectFacts::active(ConsentFacts {
        policy: Some(ConsentState::Active),
        third_party: true,
        cross_border: true,
        marketing: [u64::MAX; 8],
        ..ConsentFacts::default()
    })
}

/// Median nanoseconds per call over `batches` batches of 1000 calls.
fn median_ns(batches: usize, mut f: impl FnMut()) -> f64 {
    let mut per_call: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..1000 {
                f();
            }
            t.elapsed().as_nanos() as f64 / 1000.0
        })
        .collect();
    per_call.sort_by(|a, b| a.total_cmp(b));
    per_call[per_call.len() / 2]
}

fn main() {
    let policy =
        LoadedPolicy::from_text(include_str!("../../../policy/ibusiness.toml").to_string())
            .unwrap_or_else(|e| panic!("{e}"));
    let compiled = Compiled::new(policy.policy()).unwrap_or_else(|e| panic!("{e}"));
    let f = facts();
    let now = Utc::now();
    let cats = vec!["identity".to_string(), "full_name".to_string()];
    let permit = DecisionInput {
        role: "backend_service",
        operation: Operation::Use,
        purpose: "identification",
        categories: &cats,
        channel: None,
        recipient: None,
        now,
    };
    let deny = DecisionInput {
        role: "marketing",
        ..permit
    };
    let fin = vec!["full_name".to_string()];
    let transfer = DecisionInput {
        operation: Operation::Transfer,
        purpose: "contract_performance",
        categories: &fin,
        recipient: Some(RecipientInput {
            id: "financial_institutions",
            legal_basis: None,
            reference: None,
        }),
        ..permit
    };
    assert!(compiled.decide(&permit, &f).permit);
    assert!(!compiled.decide(&deny, &f).permit);
    assert!(compiled.decide(&transfer, &f).permit);
    let c = cedar();
    assert_eq!(
        c.authorizer
            .is_authorized(&c.request, &c.policies, &c.entities)
            .decision(),
        cedar_policy::Decision::Allow
    );

    let mut crit = Criterion::default().configure_from_args();
    {
        let mut g = crit.benchmark_group("decide");
        g.bench_function("derbes/permit", |b| {
            b.iter(|| compiled.decide(black_box(&permit), black_box(&f)))
        });
        g.bench_function("derbes/deny", |b| {
            b.iter(|| compiled.decide(black_box(&deny), black_box(&f)))
        });
        g.bench_function("derbes/transfer", |b| {
            b.iter(|| compiled.decide(black_box(&transfer), black_box(&f)))
        });
        g.bench_function("cedar/permit", |b| {
            b.iter(|| {
                c.authorizer
                    .is_authorized(black_box(&c.request), &c.policies, &c.entities)
            })
        });
        g.finish();
    }
    crit.final_summary();

    // The peer comparison, printed as one line.
    if std::env::args().any(|a| a == "--bench") {
        let ours = median_ns(300, || {
            black_box(compiled.decide(black_box(&permit), black_box(&f)));
        });
        let theirs = median_ns(300, || {
            black_box(
                c.authorizer
                    .is_authorized(black_box(&c.request), &c.policies, &c.entities),
            );
        });
        println!(
            "decide p50: derbes {ours:.0} ns, cedar {theirs:.0} ns; cedar/derbes = {:.1}x",
            theirs / ours
        );
    }
}
