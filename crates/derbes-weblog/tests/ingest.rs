#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The pipeline end to end: every format, every kind of bad input, the
//! key window, gzip, and merging the aggregates of two halves.

use std::io::Write;

use chrono::NaiveDate;
use derbes_weblog::aggregate::{Dim, Report};
use derbes_weblog::ingest::{maybe_gunzip, Ingester, MAX_LINE};
use derbes_weblog::pseudonym::DailyKeys;
use derbes_weblog::Format;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
}

fn ingester(format: Format) -> Ingester {
    Ingester::new(format, DailyKeys::ephemeral(3), today(), 10_000)
}

const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "iBusiness/3.2.1 (Android 13; SM-A515F)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

/// A synthetic combined log: `n` lines on 24 November 2026 (Almaty), 40 clients.
fn combined_log(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let ip = format!("10.0.{}.{}", i % 5, i % 40);
        let path = [
            "/",
            "/api/v1/orders/123?iin=871008401427",
            "/catalog",
            "/login",
        ][i % 4];
        let status = [200, 200, 404, 302][i % 4];
        let referrer = [
            "-",
            "https://t.me/ibusiness",
            "https://www.google.kz/",
            "https://instagram.com/x",
        ][i % 4];
        let minute = i % 60;
        s.push_str(&format!(
            "{ip} - - [24/Nov/2026:1{}:{minute:02}:00 +0500] \"GET {path} HTTP/1.1\" {status} 100 \"{referrer}\" \"{}\"\n",
            i % 10,
            AGENTS[i % 4]
        ));
    }
    s
}

#[test]
fn combined_end_to_end() {
    let mut ing = ingester(Format::Combined);
    let log = combined_log(400);
    let n = ing.read(&mut log.as_bytes(), false).unwrap();
    assert_eq!(n, log.len() as u64);
    let (agg, sum) = ing.take();
    assert_eq!(
        (sum.lines, sum.counted, sum.malformed_total()),
        (400, 400, 0)
    );
    assert_eq!(agg.requests(), 400);
    let routes = agg.report(Report::Dim(Dim::Route), 1);
    let names: Vec<&str> = routes.rows.iter().map(|r| r.value.as_str()).collect();
    assert!(names.contains(&"/api/v1/orders/{id}"), "{names:?}");
    let social = agg.report(Report::Dim(Dim::Social), 1);
    assert!(social.rows.iter().any(|r| r.value == "Telegram"));
    let devices = agg.report(Report::Dim(Dim::Device), 1);
    for d in ["desktop", "phone", "app", "bot"] {
        assert!(devices.rows.iter().any(|r| r.value == d), "{d}");
    }
    let hours = agg.report(Report::Dim(Dim::Hour), 1);
    assert_eq!(hours.rows.len(), 10);
    assert_eq!(hours.rows[0].value, "10");
    // GoAccess's unique visitor: same client, same day, same agent (40 clients × their agents).
    let day = agg.report(Report::Day, 1);
    assert_eq!(day.rows[0].value, "2026-11-24");
    assert_eq!(day.rows[0].visitors, 40);
}

#[test]
fn nothing_personal_reaches_the_aggregates() {
    let mut ing = ingester(Format::Combined);
    ing.read(&mut combined_log(100).as_bytes(), false).unwrap();
    let (agg, _) = ing.take();
    for (_, _, value, cell) in agg.cells() {
        assert!(
            !value.contains("871008401427") && !value.contains("10.0."),
            "{value}"
        );
        assert!(!String::from_utf8_lossy(&cell.visitors.to_bytes()).contains("10.0."));
    }
}

#[test]
fn common_and_json_formats() {
    let mut ing = ingester(Format::Common);
    ing.read(
        &mut &b"192.0.2.1 - - [24/Nov/2026:09:00:00 +0500] \"GET /a HTTP/1.1\" 200 5\n"[..],
        false,
    )
    .unwrap();
    assert_eq!(ing.take().1.counted, 1);
    let mut ing = ingester(Format::Json);
    let lines = concat!(
        r#"{"time_iso8601":"2026-11-24T10:15:02+05:00","remote_addr":"198.51.100.4","request":"GET /x?y=1 HTTP/2.0","status":200,"http_referer":"-","http_user_agent":"curl/8.0"}"#,
        "\n",
        r#"{"event":"screen_view","screen":"/orders","time":"2026-11-24T05:00:00Z","ip":"198.51.100.4","agent":"iBusiness/3.2.1 (iOS 17.1; iPhone14,2)"}"#,
        "\n"
    );
    ing.read(&mut lines.as_bytes(), false).unwrap();
    let (agg, sum) = ing.take();
    assert_eq!(sum.counted, 2);
    let r = agg.report(Report::Dim(Dim::Route), 1);
    assert!(r.rows.iter().any(|x| x.value == "/orders"));
}

#[test]
fn bad_input_is_counted_by_reason_with_line_numbers_never_content() {
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(combined_log(1).as_bytes()); // 1: good
    input.extend_from_slice(b"\xff\xfe\xfd not utf-8\n"); // 2
    input.extend_from_slice(&vec![b'a'; 3 * 1024 * 1024]); // 3: a line of megabytes
    input.push(b'\n');
    input.extend_from_slice(b"\x00\x01\x02\x03binary\n"); // 4
    input.extend_from_slice(b"\n"); // 5: empty
    input.extend_from_slice(combined_log(1).as_bytes()); // 6: good
    input.extend_from_slice(&combined_log(1).as_bytes()[..60]); // 7: truncated, no newline
    let mut ing = ingester(Format::Combined);
    let n = ing
        .read(
            &mut std::io::BufReader::with_capacity(8192, &input[..]),
            false,
        )
        .unwrap();
    assert_eq!(n, input.len() as u64);
    let (_, sum) = ing.take();
    assert_eq!(sum.lines, 7);
    assert_eq!(sum.counted, 2);
    assert!(sum.truncated_last_line);
    let lines = |r: &str| {
        sum.malformed
            .get(r)
            .map(|x| x.lines.clone())
            .unwrap_or_default()
    };
    assert_eq!(lines("invalid_utf8"), vec![2]);
    assert_eq!(lines("too_long"), vec![3]);
    assert_eq!(lines("binary"), vec![4]);
    assert_eq!(lines("truncated").last(), Some(&7));
    let text = serde_json::to_string(&sum).unwrap();
    assert!(!text.contains("not utf-8") && !text.contains("binary\\n") && !text.contains("10.0."));
    const { assert!(MAX_LINE < 3 * 1024 * 1024) };
}

#[test]
fn empty_and_binary_files() {
    let mut ing = ingester(Format::Combined);
    assert_eq!(ing.read(&mut &b""[..], false).unwrap(), 0);
    let (agg, sum) = ing.take();
    assert!(agg.is_empty());
    assert_eq!(sum.lines, 0);
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut ing = ingester(Format::Combined);
    ing.read(&mut &noise[..], false).unwrap();
    let (agg, sum) = ing.take();
    assert!(agg.is_empty());
    assert_eq!(sum.counted, 0);
    assert_eq!(sum.malformed_total(), sum.lines);
}

#[test]
fn a_partial_last_line_waits_in_follow_mode() {
    let log = combined_log(3);
    let cut = log.len() - 20;
    let mut ing = ingester(Format::Combined);
    let n = ing.read(&mut &log.as_bytes()[..cut], true).unwrap();
    let first_two = log.match_indices('\n').nth(1).unwrap().0 as u64 + 1;
    assert_eq!(n, first_two, "stops before the unfinished line");
    assert_eq!(ing.take().1.counted, 2);
    let n2 = ing.read(&mut &log.as_bytes()[n as usize..], true).unwrap();
    assert_eq!(n + n2, log.len() as u64);
    assert_eq!(ing.take().1.counted, 1);
}

#[test]
fn days_outside_the_key_window_are_not_counted() {
    let mut ing = Ingester::new(Format::Combined, DailyKeys::ephemeral(1), today(), 10_000);
    let old = combined_log(5).replace("24/Nov/2026", "20/Nov/2026");
    ing.read(&mut old.as_bytes(), false).unwrap();
    let (agg, sum) = ing.take();
    assert_eq!((sum.counted, sum.outside_window), (0, 5));
    assert!(agg.is_empty());
}

#[test]
fn gzip_input() {
    let log = combined_log(50);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(log.as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let mut input = maybe_gunzip(Box::new(std::io::BufReader::new(&bytes[..]))).unwrap();
    let mut ing = ingester(Format::Combined);
    ing.read(&mut input, false).unwrap();
    assert_eq!(ing.take().1.counted, 50);
}

#[test]
fn two_halves_merge_into_the_whole() {
    let log = combined_log(1000);
    let split = log.match_indices('\n').nth(499).unwrap().0 + 1;
    let keys_dir = tempfile::tempdir().unwrap();
    // Two ingesters (two machines sharing the day's key), one for each half.
    let run = |part: &str| {
        let mut ing = Ingester::new(
            Format::Combined,
            DailyKeys::open(keys_dir.path(), Some(3)).unwrap(),
            today(),
            10_000,
        );
        ing.read(&mut part.as_bytes(), false).unwrap();
        ing.take().0
    };
    let whole = run(&log);
    let mut a = run(&log[..split]);
    a.merge(&run(&log[split..]));
    for by in [
        "day", "route", "status", "browser", "os", "device", "referrer", "social", "hour",
    ] {
        let by = Report::parse(by).unwrap();
        assert_eq!(a.report(by, 1), whole.report(by, 1), "{by:?}");
    }
}

#[test]
fn a_long_follow_moves_to_the_next_day_and_forgets_the_old_one() {
    let mut ing = Ingester::new(Format::Combined, DailyKeys::ephemeral(1), today(), 10_000);
    ing.read(&mut combined_log(5).as_bytes(), false).unwrap();
    assert_eq!(ing.take().1.counted, 5);
    ing.advance(today() + chrono::Days::new(1)).unwrap();
    ing.read(&mut combined_log(5).as_bytes(), false).unwrap();
    let (_, sum) = ing.take();
    assert_eq!(
        (sum.counted, sum.outside_window),
        (0, 5),
        "yesterday's key is gone"
    );
}
