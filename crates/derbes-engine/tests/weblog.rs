#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Usage statistics stored and reported on both backends: halves ingested
//! separately add up to the whole, checkpoints commit with their
//! aggregates, k-anonymity holds, nothing personal is stored.

mod common;

use std::sync::{Arc, Mutex};

use common::{at, clocked};
use derbes_engine::Actor;
use derbes_store::testing::{contains_text, TestDb};
use derbes_weblog::aggregate::{Dim, Report};
use derbes_weblog::Format;

fn log(n: usize) -> String {
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "iBusiness/3.2.1 (Android 13; SM-A515F)",
    ];
    (0..n)
        .map(|i| {
            format!(
                "192.0.2.{} - - [24/Nov/2026:1{}:00:00 +0500] \"GET /api/v1/users/871008401427?phone=77011234567 HTTP/1.1\" {} 1 \"-\" \"{}\"\n",
                i % 30,
                i % 10,
                if i % 9 == 0 { 404 } else { 200 },
                agents[i % 2]
            )
        })
        .collect()
}

async fn halves_add_up(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(at("2026-11-24T20:00:00+05:00")));
    let e = clocked(&db, dir.path(), now.clone());
    let text = log(600);
    let split = text.match_indices('\n').nth(299).unwrap().0 + 1;
    // Two ingests (two files, or two machines), stored one after the other.
    for (i, part) in [&text[..split], &text[split..]].into_iter().enumerate() {
        let mut ing = e.weblog_ingester(Format::Combined).unwrap();
        ing.read(&mut part.as_bytes(), false).unwrap();
        let (agg, sum) = ing.take();
        assert_eq!(sum.counted, 300);
        e.save_weblog(&agg, &[("access.log", "1:2", (i as i64 + 1) * 100)])
            .await
            .unwrap();
    }
    assert_eq!(
        e.weblog_checkpoint("access.log").await.unwrap(),
        Some(derbes_engine::WeblogPosition {
            identity: "1:2".to_string(),
            position: 200
        })
    );
    let mut whole = e.weblog_ingester(Format::Combined).unwrap();
    whole.read(&mut text.as_bytes(), false).unwrap();
    let (whole, _) = whole.take();
    let analyst = Actor::staff("a", "analyst");
    for by in [
        Report::Day,
        Report::Dim(Dim::Route),
        Report::Dim(Dim::Status),
        Report::Dim(Dim::Hour),
    ] {
        let stored = e.stats(&analyst, by, None, None, 2).await.unwrap();
        assert_eq!(stored, whole.report(by, 2), "{by:?}");
    }
    let day = e.stats(&analyst, Report::Day, None, None, 5).await.unwrap();
    assert_eq!((day.rows[0].requests, day.rows[0].visitors), (600, 30));
    // k-anonymity: the 404s (every ninth line) come from 10 visitors, so
    // with k = 25 only the 200s (30 visitors) are published.
    let status = e
        .stats(&analyst, Report::Dim(Dim::Status), None, None, 25)
        .await
        .unwrap();
    assert_eq!(status.rows.len(), 1);
    assert_eq!(
        (status.rows[0].value.as_str(), status.rows[0].visitors),
        ("200", 30)
    );
    assert_eq!(
        (status.suppressed_cells, status.suppressed_requests),
        (1, 67)
    );
    // Roles: the backend sends events but does not read statistics.
    let backend = Actor::staff("b", "backend_service");
    assert!(e.stats(&backend, Report::Day, None, None, 5).await.is_err());
    assert!(
        e.stats(&analyst, Report::Day, None, None, 1).await.is_err(),
        "k >= 2"
    );
    // App events through the API's path.
    let events = br#"[{"event":"screen_view","screen":"/orders/55","time":"2026-11-24T05:00:00Z","ip":"198.51.100.7","agent":"iBusiness/3.2.1 (iOS 17.1; iPhone14,2)"},
                      {"event":"screen_view","time":"2026-11-24T05:00:00Z","ip":"198.51.100.7"}]"#;
    let s = e.ingest_events(&backend, events).await.unwrap();
    assert_eq!((s.counted, s.malformed_total()), (1, 1));
    assert!(
        e.ingest_events(&analyst, events).await.is_err(),
        "analysts do not send events"
    );
    // The scheduler destroys the day's key once its window closed, even if no
    // log is read that day.
    let key = dir.path().join("weblog-keys/2026-11-24.key");
    assert!(key.exists());
    assert!(e.close_weblog_days().unwrap().is_empty(), "still open");
    *now.lock().unwrap() = at("2026-11-26T00:00:01+05:00");
    assert_eq!(e.close_weblog_days().unwrap().len(), 1);
    assert!(!key.exists());
    // Nothing personal in the database: no address, no IIN, no phone.
    let bytes = db.all_bytes().await;
    for needle in ["192.0.2.", "198.51.100.7", "871008401427", "77011234567"] {
        assert!(!contains_text(&bytes, needle), "{needle} stored");
    }
}

derbes_store::both_databases!(halves_add_up);
