#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Parse + pseudonymise + aggregate throughput on one core, on a synthetic
//! `combined` log with realistic variety (2,000 clients, 60 agents, 300
//! paths with ids and queries, referrers, statuses), against a peer in the
//! same run: the parse alone (what any tool must at least do).
//! The end-to-end comparison with GoAccess on a log written by a real nginx
//! is `bench/weblog.sh`.

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use derbes_weblog::ingest::Ingester;
use derbes_weblog::pseudonym::DailyKeys;
use derbes_weblog::{parse_line, Format};

fn log(lines: usize) -> Vec<u8> {
    let browsers = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/12{}.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 1{}; SM-A515F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "iBusiness/3.{}.1 (Android 13; SM-A515F)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
        "Mozilla/5.0 (compatible; Googlebot/2.{}; +http://www.google.com/bot.html)",
    ];
    let referrers = [
        "-",
        "https://t.me/ibusiness",
        "https://www.google.kz/search?q=x",
        "https://instagram.com/p/1",
        "https://ibusiness.kz/catalog",
    ];
    let mut s = String::with_capacity(lines * 220);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ip = format!("10.{}.{}.{}", (x >> 8) % 4, (x >> 16) % 20, (x >> 24) % 25);
        let agent = browsers[(x % 6) as usize].replace("{}", &((x >> 32) % 10).to_string());
        let path = match (x >> 40) % 5 {
            0 => format!("/api/v1/orders/{}?phone=7701{}", (x >> 20) % 100_000, i),
            1 => format!(
                "/catalog/{}",
                ["food", "tools", "cars", "home"][((x >> 44) % 4) as usize]
            ),
            2 => "/".to_string(),
            3 => format!("/static/app.{}.js", (x >> 50) % 30),
            _ => "/login".to_string(),
        };
        let status = [200, 200, 200, 304, 404, 302, 500][((x >> 52) % 7) as usize];
        let sec = i * 86_000 / lines;
        s.push_str(&format!(
            "{ip} - - [24/Nov/2026:{:02}:{:02}:{:02} +0500] \"GET {path} HTTP/1.1\" {status} {} \"{}\" \"{agent}\"\n",
            sec / 3600,
            (sec / 60) % 60,
            sec % 60,
            (x >> 10) % 5000,
            referrers[((x >> 56) % 5) as usize]
        ));
    }
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let data = log(200_000);
    let lines = data.iter().filter(|b| **b == b'\n').count() as u64;
    let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let mut g = c.benchmark_group("weblog");
    g.throughput(Throughput::Elements(lines));
    g.sample_size(10);
    g.bench_function("parse only (peer)", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            for line in data.split(|b| *b == b'\n') {
                ok += parse_line(Format::Combined, line).is_ok() as u64;
            }
            ok
        })
    });
    g.bench_function("parse + pseudonymise + aggregate", |b| {
        b.iter(|| {
            let mut ing = Ingester::new(Format::Combined, DailyKeys::ephemeral(2), today, 10_000);
            ing.read(&mut &data[..], false).unwrap();
            let (agg, sum) = ing.take();
            assert_eq!(sum.counted, lines);
            agg.requests()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
