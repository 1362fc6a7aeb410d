//! The log parsers, each format, and the whole ingest of a chunk of lines:
//! no input may panic, and nothing but aggregates comes out.
#![no_main]

use derbes_weblog::ingest::Ingester;
use derbes_weblog::pseudonym::DailyKeys;
use derbes_weblog::{parse_line, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap_or_default();
    for format in [Format::Combined, Format::Common, Format::Json] {
        let _ = parse_line(format, data);
        let mut ing = Ingester::new(format, DailyKeys::ephemeral(2), today, 1000);
        let _ = ing.read(&mut &data[..], false);
        let (_, summary) = ing.take();
        assert!(summary.counted <= summary.lines);
    }
});
