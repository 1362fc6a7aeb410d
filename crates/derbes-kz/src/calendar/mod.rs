//! Kazakhstan's working-day calendar and deadlines in working days.
//!
//! ```
//! use chrono::NaiveDate;
//! use derbes_kz::WorkCalendar;
//! let cal = WorkCalendar::kazakhstan();
//! // 4 May 2024 was a working Saturday, 8 May a day off moved to it.
//! assert!(cal.is_working_day(NaiveDate::from_ymd_opt(2024, 5, 4).unwrap()).unwrap());
//! assert!(!cal.is_working_day(NaiveDate::from_ymd_opt(2024, 5, 8).unwrap()).unwrap());
//! ```

pub mod data;

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Weekday};
use chrono_tz::Tz;
use serde::Serialize;

use data::{HolidayRule, Moves, Transfer, Ymd};

/// The time zone every deadline is counted in.
pub const ALMATY: Tz = chrono_tz::Asia::Almaty;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("the calendar covers {first}-{last}; {year} is outside it")]
    OutOfRange { year: i32, first: i32, last: i32 },
    #[error("the end of {0} does not exist in Asia/Almaty")]
    NoLocalTime(NaiveDate),
}

/// Why a day is or is not a working day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day {
    /// Monday to Friday with nothing special.
    Working,
    /// A Saturday or Sunday made a working day by a transfer.
    WorkingByTransfer(&'static Transfer),
    /// Saturday or Sunday.
    Weekend,
    /// A holiday that is a day off.
    Holiday(&'static HolidayRule),
    /// The first day of Kurban Ait.
    KurbanAit,
    /// The next working day after a holiday that fell on a day off.
    MovedHoliday {
        rule: &'static HolidayRule,
        from: NaiveDate,
    },
    /// A day off by a transfer.
    RestByTransfer(&'static Transfer),
}

impl Day {
    pub fn is_working(&self) -> bool {
        matches!(self, Day::Working | Day::WorkingByTransfer(_))
    }

    /// A short machine name of the reason.
    pub fn kind(&self) -> &'static str {
        match self {
            Day::Working => "working",
            Day::WorkingByTransfer(_) => "working_by_transfer",
            Day::Weekend => "weekend",
            Day::Holiday(_) => "holiday",
            Day::KurbanAit => "kurban_ait",
            Day::MovedHoliday { .. } => "moved_holiday",
            Day::RestByTransfer(_) => "transfer",
        }
    }

    /// What a person reads: the holiday's name or the transfer's source.
    pub fn note(&self) -> Option<String> {
        match self {
            Day::Working | Day::Weekend => None,
            Day::WorkingByTransfer(t) | Day::RestByTransfer(t) => Some(t.source.to_string()),
            Day::Holiday(r) => Some(r.name_en.to_string()),
            Day::KurbanAit => Some("Kurban Ait".to_string()),
            Day::MovedHoliday { rule, from } => Some(format!("{} of {from}", rule.name_en)),
        }
    }
}

/// Whether a year's answer rests on complete data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Coverage {
    Complete,
    /// Computed from the Law alone: transfers and Kurban Ait for the year are
    /// not in the table yet.
    Provisional(String),
}

/// One non-working day with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NonWorkingDay {
    pub date: NaiveDate,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A year of the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct YearCalendar {
    pub year: i32,
    pub coverage: Coverage,
    pub non_working_days: Vec<NonWorkingDay>,
    pub working_days: u32,
}

/// A deadline: the end (23:59:59 Asia/Almaty) of a working day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub due: DateTime<Tz>,
    /// The working day whose end is the deadline.
    pub day: NaiveDate,
    pub coverage: Coverage,
}

impl Deadline {
    /// RFC 3339 with the Asia/Almaty offset, e.g. `2024-05-04T23:59:59+05:00`.
    pub fn due_rfc3339(&self) -> String {
        self.due.to_rfc3339_opts(SecondsFormat::Secs, false)
    }
}

/// Kazakhstan's working days, 2000-2100 (complete up to
/// [`data::COVERED_UNTIL`], provisional after).
#[derive(Debug)]
pub struct WorkCalendar {
    /// Every day that differs from "Monday-Friday work, weekend rest".
    exceptions: HashMap<NaiveDate, Day>,
}

fn ymd(d: Ymd) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(d.0, d.1, d.2)
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

impl WorkCalendar {
    /// The shared calendar built from [`data`].
    pub fn kazakhstan() -> &'static WorkCalendar {
        static CAL: OnceLock<WorkCalendar> = OnceLock::new();
        CAL.get_or_init(|| WorkCalendar::build(data::TRANSFERS))
    }

    fn build(transfers: &'static [Transfer]) -> WorkCalendar {
        let mut exceptions: HashMap<NaiveDate, Day> = HashMap::new();
        for year in data::FIRST_YEAR..=data::LAST_YEAR {
            // Holidays of the year, in date order.
            let mut holidays: Vec<(NaiveDate, &'static HolidayRule)> = data::HOLIDAYS
                .iter()
                .filter(|r| r.since <= year && r.until.is_none_or(|u| year <= u))
                .filter_map(|r| NaiveDate::from_ymd_opt(year, r.month, r.day).map(|d| (d, r)))
                .collect();
            holidays.sort_by_key(|(d, _)| *d);
            for (d, r) in &holidays {
                exceptions.insert(*d, Day::Holiday(r));
            }
            if year >= data::KURBAN_AIT_SINCE {
                for k in data::KURBAN_AIT.iter().filter(|k| k.0 == year) {
                    if let Some(d) = ymd(*k) {
                        exceptions.entry(d).or_insert(Day::KurbanAit);
                    }
                }
            }
            if year >= data::SUBSTITUTION_SINCE {
                for (d, r) in holidays {
                    if r.moves != Moves::WhenOnDayOff || !is_weekend(d) {
                        continue;
                    }
                    let mut next = d;
                    while let Some(n) = next.succ_opt() {
                        next = n;
                        if !is_weekend(n) && !exceptions.contains_key(&n) {
                            exceptions.insert(n, Day::MovedHoliday { rule: r, from: d });
                            break;
                        }
                    }
                }
            }
        }
        for tr in transfers {
            if let (Some(w), Some(r)) = (ymd(tr.working), ymd(tr.rest)) {
                exceptions.insert(w, Day::WorkingByTransfer(tr));
                exceptions.insert(r, Day::RestByTransfer(tr));
            }
        }
        WorkCalendar { exceptions }
    }

    fn check_year(year: i32) -> Result<(), CalendarError> {
        if (data::FIRST_YEAR..=data::LAST_YEAR).contains(&year) {
            Ok(())
        } else {
            Err(CalendarError::OutOfRange {
                year,
                first: data::FIRST_YEAR,
                last: data::LAST_YEAR,
            })
        }
    }

    /// What kind of day `date` is.
    pub fn day(&self, date: NaiveDate) -> Result<Day, CalendarError> {
        Self::check_year(date.year())?;
        Ok(match self.exceptions.get(&date) {
            Some(day) => *day,
            None if is_weekend(date) => Day::Weekend,
            None => Day::Working,
        })
    }

    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        Ok(self.day(date)?.is_working())
    }

    /// Whether the answer for `year` rests on complete data.
    pub fn coverage(&self, year: i32) -> Result<Coverage, CalendarError> {
        Self::check_year(year)?;
        Ok(if year <= data::COVERED_UNTIL {
            Coverage::Complete
        } else {
            Coverage::Provisional(format!(
                "transfers of days off and the date of Kurban Ait for {year} are not in the calendar table yet (it covers {}-{}); computed from the Law alone",
                data::FIRST_YEAR,
                data::COVERED_UNTIL
            ))
        })
    }

    /// Every non-working day of `year`, weekends included, with reasons.
    pub fn year(&self, year: i32) -> Result<YearCalendar, CalendarError> {
        let coverage = self.coverage(year)?;
        let mut non_working_days = Vec::new();
        let mut working_days = 0;
        let mut d = NaiveDate::from_ymd_opt(year, 1, 1);
        while let Some(date) = d.filter(|d| d.year() == year) {
            let day = self.day(date)?;
            if day.is_working() {
                working_days += 1;
            } else {
                non_working_days.push(NonWorkingDay {
                    date,
                    kind: day.kind(),
                    note: day.note(),
                });
            }
            d = date.succ_opt();
        }
        Ok(YearCalendar {
            year,
            coverage,
            non_working_days,
            working_days,
        })
    }

    /// The `n`th working day after `date` (`date` itself when `n` is 0).
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let mut d = date;
        let mut left = n;
        while left > 0 {
            d = d.succ_opt().ok_or(CalendarError::OutOfRange {
                year: d.year(),
                first: data::FIRST_YEAR,
                last: data::LAST_YEAR,
            })?;
            if self.is_working_day(d)? {
                left -= 1;
            }
        }
        Ok(d)
    }

    /// "Within `n` working days of receipt": the end (23:59:59 Asia/Almaty) of
    /// the `n`th working day after the day of receipt in Almaty.
    pub fn deadline<Z: TimeZone>(
        &self,
        received: &DateTime<Z>,
        n: u32,
    ) -> Result<Deadline, CalendarError> {
        let received_day = received.with_timezone(&ALMATY).date_naive();
        let day = self.add_working_days(received_day, n)?;
        let end = day
            .and_hms_opt(23, 59, 59)
            .ok_or(CalendarError::NoLocalTime(day))?;
        // `latest`: when clocks go back (29 Feb 2024 ended twice), the end of
        // the day is the later of the two instants.
        let due = ALMATY
            .from_local_datetime(&end)
            .latest()
            .ok_or(CalendarError::NoLocalTime(day))?;
        let coverage = (received_day.year()..=day.year())
            .map(|y| self.coverage(y))
            .find(|c| !matches!(c, Ok(Coverage::Complete)))
            .unwrap_or(Ok(Coverage::Complete))?;
        Ok(Deadline { due, day, coverage })
    }
}

#[cfg(test)]
mod tests;
