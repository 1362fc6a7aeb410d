use super::*;
use proptest::prelude::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn cal() -> &'static WorkCalendar {
    WorkCalendar::kazakhstan()
}

fn off(y: i32, m: u32, day: u32) -> bool {
    !cal().is_working_day(d(y, m, day)).unwrap()
}

#[test]
fn tables_hold_real_dates() {
    for k in data::KURBAN_AIT {
        assert!(ymd(*k).is_some(), "{k:?}");
    }
    for t in data::TRANSFERS {
        assert!(ymd(t.working).is_some() && ymd(t.rest).is_some(), "{t:?}");
    }
    let years: Vec<i32> = data::KURBAN_AIT.iter().map(|k| k.0).collect();
    let expected: Vec<i32> = (data::KURBAN_AIT_SINCE..=data::COVERED_UNTIL).collect();
    assert_eq!(years, expected, "one Kurban Ait date per covered year");
}

#[test]
fn every_transfer_swaps_a_day_off_for_a_working_day() {
    // Without transfers, the working side must be a day off and the rest side a
    // working day: otherwise the row is a typo.
    let plain = WorkCalendar::build(&[]);
    for t in data::TRANSFERS {
        let w = ymd(t.working).unwrap();
        let r = ymd(t.rest).unwrap();
        assert!(
            !plain.is_working_day(w).unwrap(),
            "{w} was already a working day"
        );
        assert!(
            plain.is_working_day(r).unwrap(),
            "{r} was already a day off"
        );
    }
}

#[test]
fn law_history() {
    // Nauryz: one day until 2009 (22 March 2009 a Sunday: Monday 23 off, 24 worked),
    // three from 2010.
    assert_eq!(cal().day(d(2009, 3, 23)).unwrap().kind(), "moved_holiday");
    assert!(!off(2009, 3, 24));
    assert!(off(2010, 3, 22) && off(2010, 3, 23)); // Mon, Tue
                                                   // 7 May from 2013; 2012-05-07 was a Monday.
    assert!(!off(2012, 5, 7));
    assert!(off(2013, 5, 7));
    // 6 July from 2009; 2008-07-07 was a Monday (no substitution for 6 July 2008).
    assert!(!off(2008, 7, 7));
    assert!(off(2009, 7, 6));
    // 25 October: until 2008, again from 2022; 2021-10-25 a Monday.
    assert!(off(2007, 10, 25));
    assert!(!off(2021, 10, 25));
    assert!(off(2023, 10, 25));
    // 1 December 2012-2021; 17 December until 2021.
    assert!(off(2015, 12, 1));
    assert!(!off(2022, 12, 1));
    assert!(off(2020, 12, 17));
    assert!(!off(2024, 12, 17));
    // 7 January from 2006, never moved: 2007-01-07 was a Sunday, 8 January worked.
    assert!(!off(2005, 1, 7));
    assert!(!off(2007, 1, 8));
}

#[test]
fn moved_holidays() {
    // 2019 (Government calendar): 23 March Sat -> 25; 6 July Sat -> 8; 1 Dec Sun -> 2.
    assert!(off(2019, 3, 25));
    assert!(off(2019, 7, 8));
    assert!(off(2019, 12, 2));
    // No moving before 2002: 2001-12-16 was a Sunday, 17 December worked.
    assert!(!off(2001, 12, 17));
    // 2026: 8 March Sun -> 9; Nauryz 21 Sat, 22 Sun -> 24, 25; 9 May Sat -> 11;
    // 30 Aug Sun -> 31; 25 Oct Sun -> 26; Kurban Ait 27 May.
    for (m, day) in [
        (3, 9),
        (3, 23),
        (3, 24),
        (3, 25),
        (5, 11),
        (5, 27),
        (8, 31),
        (10, 26),
    ] {
        assert!(off(2026, m, day), "2026-{m}-{day}");
    }
    assert!(!off(2026, 3, 26));
    let moved = cal().day(d(2026, 3, 24)).unwrap();
    assert_eq!(moved.kind(), "moved_holiday");
    assert_eq!(moved.note().unwrap(), "Nauryz of 2026-03-21");
}

#[test]
fn transfers_and_religious_days() {
    // 2024: 4 May (Sat) worked, 8 May off; Kurban Ait 16 June (Sunday) not moved.
    assert!(!off(2024, 5, 4));
    assert!(off(2024, 5, 8));
    assert!(!off(2024, 6, 17));
    // 2025: 5 January (Sunday) worked, 3 January off.
    assert!(!off(2025, 1, 5));
    assert!(off(2025, 1, 3));
    // 2014: the day off of 3 January came from Saturday 28 December 2013.
    assert!(!off(2013, 12, 28));
    assert!(off(2014, 1, 3));
    // 2020: Victory Day's day off on Friday 8 May, 11 May worked.
    assert!(off(2020, 5, 8));
    assert!(!off(2020, 5, 11));
}

#[test]
fn year_listing() {
    let y = cal().year(2024).unwrap();
    assert_eq!(y.coverage, Coverage::Complete);
    let dates: Vec<String> = y
        .non_working_days
        .iter()
        .map(|n| n.date.to_string())
        .collect();
    for expect in [
        "2024-01-01",
        "2024-01-02",
        "2024-01-06",
        "2024-01-07",
        "2024-03-25",
        "2024-05-08",
        "2024-07-08",
        "2024-12-16",
    ] {
        assert!(dates.contains(&expect.to_string()), "{expect}");
    }
    assert!(!dates.contains(&"2024-05-04".to_string()));
    assert_eq!(y.working_days as usize + dates.len(), 366);
    // Weekends are included.
    assert!(y.non_working_days.iter().any(|n| n.kind == "weekend"));
}

#[test]
fn coverage_and_range() {
    assert_eq!(cal().coverage(2026).unwrap(), Coverage::Complete);
    assert!(matches!(
        cal().coverage(2027).unwrap(),
        Coverage::Provisional(_)
    ));
    assert!(matches!(
        cal().year(1999),
        Err(CalendarError::OutOfRange { year: 1999, .. })
    ));
    assert!(cal().is_working_day(d(2101, 1, 3)).is_err());
}

fn at(s: &str) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

#[test]
fn deadlines() {
    let cases = [
        // The contract's example: 4 May 2024 was a working Saturday.
        ("2024-05-03T17:30:00+05:00", 1, "2024-05-04T23:59:59+05:00"),
        // Received after midnight Almaty time counts from the next day.
        ("2024-05-03T19:00:00Z", 1, "2024-05-06T23:59:59+05:00"),
        // Before 1 March 2024 Almaty was UTC+6.
        ("2024-01-10T10:00:00+06:00", 1, "2024-01-11T23:59:59+06:00"),
        // 29 February 2024 ended twice; the deadline is the later end.
        ("2024-02-28T12:00:00+06:00", 1, "2024-02-29T23:59:59+05:00"),
        // Three working days over Nauryz 2026 (21-25 March off).
        ("2026-03-20T09:00:00+05:00", 3, "2026-03-30T23:59:59+05:00"),
        // Ten working days.
        ("2024-12-27T10:00:00+05:00", 10, "2025-01-15T23:59:59+05:00"),
        // Zero: the end of the day of receipt.
        ("2024-05-05T10:00:00+05:00", 0, "2024-05-05T23:59:59+05:00"),
    ];
    for (received, n, due) in cases {
        let dl = cal().deadline(&at(received), n).unwrap();
        assert_eq!(dl.due_rfc3339(), due, "{received} + {n}");
        assert_eq!(dl.coverage, Coverage::Complete);
    }
}

#[test]
fn deadline_into_an_uncovered_year_is_provisional() {
    let dl = cal().deadline(&at("2026-12-30T10:00:00+05:00"), 3).unwrap();
    assert!(matches!(dl.coverage, Coverage::Provisional(_)));
}

proptest! {
    #[test]
    fn add_working_days_counts_exactly(days in 0i64..(26 * 365), n in 0u32..30) {
        let start = d(2000, 1, 1) + chrono::Duration::days(days);
        let end = cal().add_working_days(start, n).unwrap();
        let mut count = 0;
        let mut x = start;
        while x < end {
            x = x.succ_opt().unwrap();
            if cal().is_working_day(x).unwrap() {
                count += 1;
            }
        }
        prop_assert_eq!(count, n);
        if n > 0 {
            prop_assert!(cal().is_working_day(end).unwrap());
            prop_assert!(cal().add_working_days(start, n - 1).unwrap() < end);
        }
    }

    #[test]
    fn deadline_is_end_of_a_working_day(secs in 946_684_800i64..1_790_000_000) {
        let received = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        let dl = cal().deadline(&received, 1).unwrap();
        prop_assert!(dl.due > received);
        prop_assert!(cal().is_working_day(dl.due.date_naive()).unwrap());
        prop_assert_eq!(dl.due.format("%H:%M:%S").to_string(), "23:59:59");
    }
}
