#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The vault's promises, on SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use derbes_core::{ConsentRequest, ConsentState, RegistrationRequest, SubjectId};
use derbes_engine::{Actor, Engine, EngineError, FieldView, LookupKind};
use derbes_kz::{Iin, Sex};
use derbes_policy::LoadedPolicy;
use derbes_store::testing::{contains_text, TestDb};
use derbes_store::Store;
use derbes_vault::KeyEnv;
use serde_json::json;

mod common;

const IIN: &str = "871008401427";
const PHONE: &str = "+77017654321";
const SURNAME: &str = "Тлеубердиева";

fn policy() -> LoadedPolicy {
    LoadedPolicy::from_text(include_str!("../../../policy/ibusiness.toml").to_string()).unwrap()
}

fn engine(store: &Store, dir: &std::path::Path) -> Engine {
    Engine::over_store(
        store.clone(),
        policy(),
        dir.to_path_buf(),
        &KeyEnv::default(),
    )
    .unwrap()
}

fn sys() -> Actor {
    Actor::system(derbes_engine::SystemJob::Cli)
}

fn backend() -> Actor {
    Actor::staff("test-backend", "backend_service")
}

async fn read(e: &Engine, s: SubjectId, purpose: &str) -> Result<Vec<FieldView>, EngineError> {
    // A purpose that reaches the subject names its channel.
    let channel = (purpose == "communication").then_some(derbes_policy::Channel::Push);
    e.data_for_purpose(&backend(), s, purpose, channel)
        .await
        .map(|d| d.fields)
}

fn registration(iin: &str, phone: &str, surname: &str) -> RegistrationRequest {
    serde_json::from_value(json!({
        "fields": {
            "identity.iin": iin, "identity.rk_citizen": true,
            "full_name.surname": surname, "full_name.first_name": "Асель",
            "contact.phone": phone, "contact.email": "asel@example.kz", "position.position": "бухгалтер"
        },
        "consents": [
            {"kind": "policy", "evidence": {"app_version": "3.2.1", "client_address": "203.0.113.7"}},
            {"kind": "marketing", "channel": "sms"}
        ]
    }))
    .unwrap()
}

fn synthetic_iin(n: u16) -> String {
    let date = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + Duration::days(i64::from(n) * 37);
    (0..50)
        .find_map(|s| Iin::from_parts(date, Sex::Male, n * 10 + s).ok())
        .unwrap()
        .to_string()
}

async fn ciphertext_only_at_rest(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&db.store, dir.path());
    let r = e
        .register(&sys(), &registration(IIN, PHONE, SURNAME))
        .await
        .unwrap();
    e.rectify(
        &backend(),
        r.subject_id,
        &BTreeMap::from([("full_name.surname".to_string(), json!("Тлеубердиева-Ким"))]),
        None,
        "замужество",
    )
    .await
    .unwrap();
    assert_eq!(
        e.lookup(&sys(), LookupKind::Iin, IIN).await.unwrap(),
        Some(r.subject_id)
    );
    assert_eq!(
        e.lookup(&sys(), LookupKind::Phone, "8 701 765 43 21")
            .await
            .unwrap(),
        Some(r.subject_id)
    );
    let bytes = db.all_bytes().await;
    assert!(!bytes.is_empty());
    for needle in [
        IIN,
        PHONE,
        "7017654321",
        SURNAME,
        "Тлеубердиева-Ким",
        "asel@example.kz",
        "бухгалтер",
        "замужество",
        "203.0.113.7",
    ] {
        assert!(
            !contains_text(&bytes, needle),
            "`{needle}` found in plaintext at rest"
        );
    }
}

async fn swapped_ciphertexts_fail(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&db.store, dir.path());
    let a = e
        .register(&sys(), &registration(IIN, PHONE, SURNAME))
        .await
        .unwrap()
        .subject_id;
    let b = e
        .register(
            &sys(),
            &registration(&synthetic_iin(3), "+77012223344", "Омаров"),
        )
        .await
        .unwrap()
        .subject_id;
    assert_eq!(read(&e, a, "identification").await.unwrap().len(), 7);
    // Move a's sealed surname into b's row, and a's surname into a's first_name.
    db.store
        .debug_swap_field(
            &a.to_string(),
            "full_name.surname",
            &b.to_string(),
            "full_name.surname",
        )
        .await
        .unwrap();
    let err = read(&e, b, "identification").await.unwrap_err();
    assert!(matches!(err, EngineError::Internal(_)), "{err:?}");
    db.store
        .debug_swap_field(
            &a.to_string(),
            "full_name.first_name",
            &a.to_string(),
            "full_name.surname",
        )
        .await
        .unwrap();
    assert!(read(&e, a, "identification").await.is_err());
}

async fn shredded_rows_are_unreadable(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&db.store, dir.path());
    let s = e
        .register(&sys(), &registration(IIN, PHONE, SURNAME))
        .await
        .unwrap()
        .subject_id;
    let sid = s.to_string();
    // A "backup" of the sealed rows taken before destruction.
    let backup = db.store.subject_fields(s).await.unwrap();
    assert!(!backup.is_empty());
    common::shred(&e, s).await;
    assert!(matches!(
        read(&e, s, "identification").await,
        Err(EngineError::Denied { reasons, .. }) if reasons[0].code == "subject_destroyed"
    ));
    assert_eq!(e.lookup(&sys(), LookupKind::Iin, IIN).await.unwrap(), None);
    assert!(db.store.subject_key(&sid).await.unwrap().is_none());
    assert!(db.store.subject_fields(s).await.unwrap().is_empty());
    // With the KEK alone, nothing in the backup opens: the data key is gone,
    // and no other subject's key opens it either.
    let other = e
        .register(
            &sys(),
            &registration(&synthetic_iin(5), "+77015556677", "Ли"),
        )
        .await
        .unwrap()
        .subject_id;
    let ring = derbes_vault::Keyring::open(dir.path(), &KeyEnv::default()).unwrap();
    let derbes_store::WrappedKey {
        kek_id: kek,
        wrapped: bytes,
    } = db
        .store
        .subject_key(&other.to_string())
        .await
        .unwrap()
        .unwrap();
    let other_key = ring
        .unwrap_key(
            &other.to_string(),
            &derbes_vault::WrappedKey {
                kek: derbes_vault::KekId::from_stored(&kek),
                bytes,
            },
        )
        .unwrap();
    for row in &backup {
        assert!(other_key.open(&sid, &row.field, &row.sealed).is_err());
    }
    // The consents stay as proof. The indexes are gone: the phone is free
    // again (the IIN was barred, 7.7, by the minor's report that destroyed it).
    assert_eq!(e.consents(&sys(), s).await.unwrap().len(), 2);
    assert!(matches!(
        e.register(&sys(), &registration(IIN, PHONE, SURNAME)).await,
        Err(EngineError::Invalid(p)) if p[0].code == "barred_minor"
    ));
    assert!(e
        .register(&sys(), &registration(&synthetic_iin(7), PHONE, SURNAME))
        .await
        .is_ok());
}

async fn rotation_interrupted_and_resumed_loses_nothing(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&db.store, dir.path());
    let mut subjects = Vec::new();
    for n in 0..7u16 {
        let r = e
            .register(
                &sys(),
                &registration(
                    &synthetic_iin(10 + n),
                    &format!("+7701000{:04}", n),
                    "Сидоров",
                ),
            )
            .await
            .unwrap();
        subjects.push(r.subject_id);
    }
    let before = e.key_status().await.unwrap();
    assert_eq!(before.pending_rewrap, 0);
    // Interrupted after one batch of 3.
    let r = e.rotate_keys(3, Some(1), &|_, _| {}).await.unwrap();
    assert!(r.new_kek.is_some());
    assert_eq!(r.rewrapped, 3);
    assert_eq!(r.remaining, 4);
    // A "crash": a new process opens the same data directory.
    let e2 = engine(&db.store, dir.path());
    let st = e2.key_status().await.unwrap();
    assert_eq!(st.pending_rewrap, 4);
    assert_eq!(st.active_kek, r.active_kek);
    for s in &subjects {
        assert_eq!(
            read(&e2, *s, "identification").await.unwrap().len(),
            7,
            "readable mid-rotation"
        );
    }
    // Resume: no new KEK, the rest re-wrapped.
    let seen = Arc::new(Mutex::new(0u64));
    let s2 = seen.clone();
    let r2 = e2
        .rotate_keys(2, None, &move |done, _| *s2.lock().unwrap() = done)
        .await
        .unwrap();
    assert!(r2.new_kek.is_none());
    assert_eq!(r2.rewrapped, 4);
    assert_eq!(*seen.lock().unwrap(), 4);
    assert_eq!(r2.remaining, 0);
    for s in &subjects {
        assert_eq!(read(&e2, *s, "identification").await.unwrap().len(), 7);
    }
    // The first engine, still holding the old keyring, picks up the new KEK.
    assert_eq!(
        read(&e, subjects[0], "identification").await.unwrap().len(),
        7
    );
}

/// Defect 1 of issue 12: a service that read its keyring before another
/// process rotated went on wrapping new subjects' keys under the old KEK
/// after `keys rotate` reported `remaining: 0`; retiring the old KEK then
/// lost them. The database names the active KEK and every wrapping checks
/// it in its transaction.
async fn a_rotation_in_another_process_is_followed_at_once(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let serve = engine(&db.store, dir.path());
    let mut subjects = Vec::new();
    for n in 0..4u16 {
        let r = serve
            .register(
                &sys(),
                &registration(
                    &synthetic_iin(40 + n),
                    &format!("+7701200{n:04}"),
                    "Сидоров",
                ),
            )
            .await
            .unwrap();
        subjects.push(r.subject_id);
    }
    // The CLI, another process, rotates while the service keeps registering.
    let cli = engine(&db.store, dir.path());
    let old = cli.key_status().await.unwrap().active_kek;
    let busy = {
        let serve = serve.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 4..24u16 {
                let r = serve
                    .register(
                        &sys(),
                        &registration(
                            &synthetic_iin(40 + n),
                            &format!("+7701200{n:04}"),
                            "Сидоров",
                        ),
                    )
                    .await
                    .unwrap();
                ids.push(r.subject_id);
            }
            ids
        })
    };
    let report = cli.rotate_keys(3, None, &|_, _| {}).await.unwrap();
    assert_eq!(report.remaining, 0);
    subjects.extend(busy.await.unwrap());
    // After the rotation, with the old keyring still in memory.
    for n in 24..28u16 {
        let r = serve
            .register(
                &sys(),
                &registration(
                    &synthetic_iin(40 + n),
                    &format!("+7701200{n:04}"),
                    "Сидоров",
                ),
            )
            .await
            .unwrap();
        subjects.push(r.subject_id);
    }
    let status = cli.key_status().await.unwrap();
    assert_eq!(status.active_kek, report.active_kek);
    assert_eq!(status.pending_rewrap, 0, "nothing left under the old KEK");
    assert!(matches!(
        cli.retire_kek(&report.active_kek).await,
        Err(EngineError::Invalid(p)) if p[0].code == "kek_active"
    ));
    cli.retire_kek(&old).await.unwrap();
    assert!(!dir.path().join(format!("keys/kek-{old}.key")).exists());
    for s in &subjects {
        assert_eq!(
            read(&serve, *s, "identification").await.unwrap().len(),
            7,
            "readable after the old KEK is gone"
        );
    }
    // A KEK still wrapping keys cannot be retired.
    let interrupted = cli.rotate_keys(5, Some(1), &|_, _| {}).await.unwrap();
    assert!(interrupted.remaining > 0);
    assert!(matches!(
        cli.retire_kek(&report.active_kek).await,
        Err(EngineError::Invalid(p)) if p[0].code == "kek_in_use"
    ));
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn consent_states_follow_time_and_withdrawal(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(at("2026-11-24T10:00:00Z")));
    let n2 = now.clone();
    let e = engine(&db.store, dir.path()).with_clock(Arc::new(move || *n2.lock().unwrap()));
    let s = e
        .register(&sys(), &registration(IIN, PHONE, SURNAME))
        .await
        .unwrap()
        .subject_id;
    let cookies: ConsentRequest =
        serde_json::from_value(json!({"kind": "cookies", "expires_in_months": 1})).unwrap();
    let receipt = e.add_consent(&sys(), s, &cookies).await.unwrap();
    let check = e.verify_receipt(&receipt.receipt).await.unwrap();
    assert!(check.valid);
    assert_eq!(check.state, Some(ConsentState::Active));
    let mut forged = receipt.receipt.clone();
    forged.expires_at = None;
    assert!(!e.verify_receipt(&forged).await.unwrap().valid);

    let states = |v: Vec<derbes_engine::ConsentView>| {
        v.into_iter()
            .map(|c| (c.record.kind.as_str().to_string(), c.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(e.consents(&sys(), s).await.unwrap()),
        vec![
            ("policy".into(), ConsentState::Active),
            ("marketing".into(), ConsentState::Active),
            ("cookies".into(), ConsentState::Active)
        ]
    );
    *now.lock().unwrap() = at("2026-12-24T10:00:00Z");
    assert_eq!(
        states(e.consents(&sys(), s).await.unwrap())[2].1,
        ConsentState::Expired
    );
    let marketing = e.consents(&sys(), s).await.unwrap()[1].record.consent_id;
    let v = e
        .withdraw_consent(&sys(), s, marketing, &json!({"channel": "in_app"}))
        .await
        .unwrap();
    assert_eq!(v.state, ConsentState::Withdrawn);
    // Withdrawing again changes nothing; an unknown consent is not found.
    assert_eq!(
        e.withdraw_consent(&sys(), s, marketing, &json!({}))
            .await
            .unwrap()
            .state,
        ConsentState::Withdrawn
    );
    assert!(matches!(
        e.withdraw_consent(&sys(), s, derbes_core::ConsentId::new(), &json!({}))
            .await,
        Err(EngineError::NotFound(_))
    ));
    assert_eq!(
        e.verify_receipt(&receipt.receipt).await.unwrap().state,
        Some(ConsentState::Expired)
    );
}

async fn registration_is_all_or_nothing(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&db.store, dir.path());
    // Under 18: refused, nothing stored.
    let minor = Iin::from_parts(NaiveDate::from_ymd_opt(2010, 5, 5).unwrap(), Sex::Female, 1)
        .or_else(|_| Iin::from_parts(NaiveDate::from_ymd_opt(2010, 5, 5).unwrap(), Sex::Female, 2))
        .unwrap()
        .to_string();
    match e
        .register(&sys(), &registration(&minor, PHONE, SURNAME))
        .await
    {
        Err(EngineError::Invalid(p)) => assert_eq!(p[0].code, "under_age"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        db.store.subject_count().await.unwrap(),
        derbes_store::SubjectCounts {
            active: 0,
            destroyed: 0
        }
    );
    assert_eq!(
        e.lookup(&sys(), LookupKind::Iin, &minor).await.unwrap(),
        None
    );
    // A bad consent refuses the whole registration.
    let mut req = registration(IIN, PHONE, SURNAME);
    req.consents
        .push(serde_json::from_value(json!({"kind": "cookies", "expires_in_months": 40})).unwrap());
    assert!(matches!(
        e.register(&sys(), &req).await,
        Err(EngineError::Invalid(_))
    ));
    assert_eq!(
        db.store.subject_count().await.unwrap(),
        derbes_store::SubjectCounts {
            active: 0,
            destroyed: 0
        }
    );
    // Duplicates by IIN or by phone.
    e.register(&sys(), &registration(IIN, PHONE, SURNAME))
        .await
        .unwrap();
    assert!(
        matches!(e.register(&sys(), &registration(IIN, "+77019998877", SURNAME)).await, Err(EngineError::DuplicateSubject { field }) if field == "identity.iin")
    );
    assert!(
        matches!(e.register(&sys(), &registration(&synthetic_iin(1), PHONE, SURNAME)).await, Err(EngineError::DuplicateSubject { field }) if field == "contact.phone")
    );
    assert_eq!(
        db.store.subject_count().await.unwrap(),
        derbes_store::SubjectCounts {
            active: 1,
            destroyed: 0
        }
    );
    let _ = SubjectId::new();
}

async fn rectification_keeps_history_sealed(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&db.store, dir.path());
    let s = e
        .register(&sys(), &registration(IIN, PHONE, SURNAME))
        .await
        .unwrap()
        .subject_id;
    let changed = e
        .rectify(
            &backend(),
            s,
            &BTreeMap::from([("contact.phone".to_string(), json!("8 702 111 22 33"))]),
            Some("subject"),
            "сменила номер",
        )
        .await
        .unwrap();
    assert_eq!(changed, vec!["contact.phone".to_string()]);
    assert_eq!(
        e.lookup(&sys(), LookupKind::Phone, "+77021112233")
            .await
            .unwrap(),
        Some(s)
    );
    assert_eq!(
        e.lookup(&sys(), LookupKind::Phone, PHONE).await.unwrap(),
        None,
        "the old phone no longer finds the subject"
    );
    let data = read(&e, s, "communication").await.unwrap();
    let phone = data.iter().find(|f| f.field == "contact.phone").unwrap();
    assert_eq!(phone.value, json!("+77021112233"));
    let hist = db.store.field_history(s, "contact.phone").await.unwrap();
    assert_eq!(hist.len(), 1);
    assert!(
        hist[0].keep_until > hist[0].replaced_at,
        "kept until a date after replacement"
    );
    // Refusals: unknown purpose, organisation fields, entrepreneur without consent.
    assert!(
        matches!(read(&e, s, "world_domination").await, Err(EngineError::Invalid(p)) if p[0].code == "unknown_purpose")
    );
    let r = e
        .rectify(
            &backend(),
            s,
            &BTreeMap::from([("entrepreneur.bik".to_string(), json!("KCJBKZKX"))]),
            None,
            "x",
        )
        .await;
    assert!(matches!(r, Err(EngineError::Invalid(p)) if p[0].code == "consent_required"));
}

derbes_store::both_databases!(ciphertext_only_at_rest);
derbes_store::both_databases!(swapped_ciphertexts_fail);
derbes_store::both_databases!(shredded_rows_are_unreadable);
derbes_store::both_databases!(rotation_interrupted_and_resumed_loses_nothing);
derbes_store::both_databases!(a_rotation_in_another_process_is_followed_at_once);
derbes_store::both_databases!(consent_states_follow_time_and_withdrawal);
derbes_store::both_databases!(registration_is_all_or_nothing);
derbes_store::both_databases!(rectification_keeps_history_sealed);
