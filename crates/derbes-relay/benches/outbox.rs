#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The outbox, measured against peers in the same run, printing both and
//! their ratio:
//!
//! - throughput: a backlog of events (one per rectification) drained by the
//!   relay to a JetStream stream, and to a loopback webhook receiver —
//!   peer: a bare loop publishing the same payloads to JetStream (each
//!   awaiting its ack), and a bare loop POSTing them to the same receiver;
//! - latency from commit to confirmed delivery (p50, p99) while
//!   rectifications commit one by one and the relay runs beside them;
//! - what the outbox adds to a destruction: the same destruction job with
//!   no connected system and with two.
//!
//! `cargo bench -p derbes-relay --bench outbox` (SQLite; NATS with
//! JetStream at 127.0.0.1:4222). `DERBES_BENCH_EVENTS` sets the backlog
//! (default 2000).

use std::time::{Duration, Instant};

use derbes_core::{synthetic, SubjectId};
use derbes_engine::{Actor, Engine, NewRequest, NewSystem};
use derbes_policy::LoadedPolicy;
use derbes_relay::{Nats, Relay, RelayConfig, Webhooks};
use derbes_store::testing::TestDb;
use derbes_store::{EventFilter, EventState};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn engine(db: &TestDb) -> Engine {
    let policy =
        LoadedPolicy::from_text(include_str!("../../../policy/ibusiness.toml").to_string())
            .unwrap();
    Engine::with_keyring(
        db.store.clone(),
        policy,
        derbes_vault::Keyring::ephemeral(),
        None,
    )
}

fn backend() -> Actor {
    Actor::staff("bench-backend", "backend_service")
}

fn admin() -> Actor {
    Actor::staff("bench-admin", "administrator")
}

async fn subjects(e: &Engine, from: u64, n: u64) -> Vec<SubjectId> {
    let today = derbes_core::almaty_date(e.now());
    let mut out = Vec::with_capacity(n as usize);
    let mut i = from * 3;
    while out.len() < n as usize {
        let s = synthetic::subject(91, i, today);
        i += 1;
        if s.minor {
            continue;
        }
        let reg = serde_json::from_value(s.registration).unwrap();
        out.push(
            e.register(&Actor::system(derbes_engine::SystemJob::Cli), &reg)
                .await
                .unwrap()
                .subject_id,
        );
    }
    out
}

async fn rectify(e: &Engine, s: SubjectId, i: usize) {
    let values = std::collections::BTreeMap::from([(
        "full_name.patronymic".to_string(),
        json!(format!("Отчество{}", i % 97)),
    )]);
    e.rectify(&backend(), s, &values, Some("subject"), "bench")
        .await
        .unwrap();
}

/// A loopback webhook receiver answering 200 to every POST, keep-alive.
async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (read, mut write) = conn.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        read.read_line(&mut line).await.unwrap();
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    read.read_exact(&mut body).await.unwrap();
                    if write
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/hook")
}

async fn connect(e: &Engine, name: &str, webhook: Option<String>, nats: Option<String>) {
    e.connect_system(
        &admin(),
        &NewSystem {
            name: name.into(),
            categories: vec!["full_name".into(), "contact".into()],
            sends_notices: false,
            webhook,
            nats_subject: nats,
            confirm: Some("delivery".into()),
        },
    )
    .await
    .unwrap();
}

/// Drain what is due with one relay; events per second.
async fn drain(e: &Engine, events: usize) -> f64 {
    let mut relay = Relay::new(e.clone(), RelayConfig::default());
    let t = Instant::now();
    let mut delivered = 0;
    while delivered < events as u64 {
        let p = relay.run_once().await.unwrap();
        assert_eq!(p.failed, 0);
        delivered += p.delivered;
        if p.delivered == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    events as f64 / t.elapsed().as_secs_f64()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn bench(n: usize) {
    let nats = Nats::connect(derbes_relay::DEFAULT_NATS_URL, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("NATS with JetStream must run at 127.0.0.1:4222: {e}"));
    let tag = std::process::id();
    let stream = format!("DERBES_BENCH_{tag}");
    let prefix = format!("derbes.bench.{tag}");
    nats.js_api(
        &format!("STREAM.CREATE.{stream}"),
        &json!({"name": stream, "subjects": [format!("{prefix}.>")], "storage": "memory"}),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let hook = receiver().await;

    let db = TestDb::sqlite().await;
    let e = engine(&db);
    let people = subjects(&e, 0, n as u64).await;

    // Throughput to JetStream: a backlog of n events, drained.
    connect(&e, "js", None, Some(format!("{prefix}.js"))).await;
    for (i, s) in people.iter().enumerate() {
        rectify(&e, *s, i).await;
    }
    let ours_js = drain(&e, n).await;
    let sample = db
        .store
        .events(&EventFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .pop()
        .unwrap()
        .payload;
    let t = Instant::now();
    for i in 0..n {
        nats.publish_js(
            &format!("{prefix}.peer"),
            &format!("peer-{i}"),
            &[],
            sample.as_bytes(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    let peer_js = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "outbox -> JetStream ({n} events): {ours_js:.0} events/s | peer bare publish loop {peer_js:.0} msgs/s | ratio {:.2}",
        ours_js / peer_js
    );

    // Throughput to a loopback webhook.
    e.disconnect_system(&admin(), "js").await.unwrap();
    connect(&e, "hook", Some(hook.clone()), None).await;
    for (i, s) in people.iter().enumerate() {
        rectify(&e, *s, i + 1).await;
    }
    let ours_hook = drain(&e, n).await;
    let mut client = Webhooks::new(Duration::from_secs(10));
    let t = Instant::now();
    for i in 0..n {
        let o = client
            .post(&hook, &format!("peer-{i}"), "t=0,v1=00", sample.as_bytes())
            .await;
        assert_eq!(o, derbes_relay::Outcome::Delivered);
    }
    let peer_hook = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "outbox -> webhook   ({n} events): {ours_hook:.0} events/s | peer bare POST loop {peer_hook:.0} req/s | ratio {:.2}",
        ours_hook / peer_hook
    );

    // Latency, commit to confirmed delivery, with the relay running beside
    // one-by-one commits to both systems.
    connect(&e, "js2", None, Some(format!("{prefix}.js2"))).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(Relay::new(e.clone(), RelayConfig::default()).run(async {
        let _ = stopped.await;
    }));
    let from = e.now();
    let m = n.min(500);
    for (i, s) in people.iter().take(m).enumerate() {
        rectify(&e, *s, i + 2).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let latencies = loop {
        let all = db
            .store
            .events(&EventFilter {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .unwrap();
        let recent: Vec<_> = all.iter().filter(|x| x.created_at >= from).collect();
        if recent.len() == 2 * m && recent.iter().all(|x| x.state == EventState::Confirmed) {
            break recent
                .iter()
                .map(|x| {
                    (x.confirmed_at.unwrap() - x.created_at)
                        .to_std()
                        .unwrap()
                        .as_secs_f64()
                        * 1000.0
                })
                .collect::<Vec<f64>>();
        }
        assert!(Instant::now() < deadline, "the relay did not keep up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = stop.send(());
    relay.await.unwrap();
    let mut l = latencies;
    println!(
        "commit -> confirmed delivery ({} events, webhook + JetStream, relay beside one-by-one commits): p50 {:.1} ms, p99 {:.1} ms",
        l.len(),
        pct(&mut l, 0.5),
        pct(&mut l, 0.99)
    );

    // What the outbox adds to a destruction.
    e.disconnect_system(&admin(), "hook").await.unwrap();
    e.disconnect_system(&admin(), "js2").await.unwrap();
    let victims = subjects(&e, 10_000, 40).await;
    let destroy = |s: SubjectId| {
        let e = e.clone();
        async move {
            let r: NewRequest = serde_json::from_value(
                json!({"subject_id": s, "kind": "destruction", "channel": "in_app", "requester": "subject"}),
            )
            .unwrap();
            e.create_request(&backend(), &r).await.unwrap();
            let t = Instant::now();
            assert_eq!(e.run_jobs().await.unwrap().destroyed, 1);
            t.elapsed()
        }
    };
    let mut without = Vec::new();
    for s in &victims[..20] {
        without.push(destroy(*s).await);
    }
    connect(&e, "d_hook", Some(hook.clone()), None).await;
    connect(&e, "d_js", None, Some(format!("{prefix}.d"))).await;
    let mut with = Vec::new();
    for s in &victims[20..] {
        with.push(destroy(*s).await);
    }
    let (a, b) = (median(without), median(with));
    println!(
        "destruction job: median {:.2} ms with 2 connected systems | {:.2} ms with none | ratio {:.2}",
        b.as_secs_f64() * 1000.0,
        a.as_secs_f64() * 1000.0,
        b.as_secs_f64() / a.as_secs_f64()
    );
    let _ = nats
        .js_api(
            &format!("STREAM.DELETE.{stream}"),
            &json!({}),
            Duration::from_secs(5),
        )
        .await;
}

fn main() {
    // `cargo test --benches` runs bench binaries without --bench; only run under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = std::env::var("DERBES_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(n));
}
