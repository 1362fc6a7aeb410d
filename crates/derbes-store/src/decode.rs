//! The store's edge: what the database returns becomes a type here, and
//! anything that does not decode is [`StoreError::Corrupt`] — an error,
//! never a guess. Times are stored as unix microseconds (UTC) and leave the
//! store as `DateTime<Utc>`; statuses and states as their closed names.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{RequestState, StoreError, SubjectId, SubjectStatus};

/// A time as stored: unix microseconds, UTC.
pub(crate) fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_us(m: i64, col: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(m)
        .ok_or_else(|| StoreError::Corrupt(format!("a time out of range in `{col}`")))
}

/// A time column.
pub(crate) fn time(r: &AnyRow, col: &str) -> Result<DateTime<Utc>, StoreError> {
    from_us(r.try_get(col)?, col)
}

/// A nullable time column.
pub(crate) fn time_opt(r: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    r.try_get::<Option<i64>, _>(col)?
        .map(|m| from_us(m, col))
        .transpose()
}

/// A subject id column.
pub(crate) fn subject_id(r: &AnyRow, col: &str) -> Result<SubjectId, StoreError> {
    let s: String = r.try_get(col)?;
    SubjectId::parse(&s).map_err(|_| StoreError::Corrupt(format!("not a subject id in `{col}`")))
}

/// A nullable subject id column; the empty string is none (notes of no subject).
pub(crate) fn subject_id_opt(r: &AnyRow, col: &str) -> Result<Option<SubjectId>, StoreError> {
    match r.try_get::<Option<String>, _>(col)?.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => SubjectId::parse(s)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("not a subject id in `{col}`"))),
    }
}

/// A subject's status as stored.
pub(crate) fn subject_status(r: &AnyRow, col: &str) -> Result<SubjectStatus, StoreError> {
    let s: String = r.try_get(col)?;
    SubjectStatus::parse(&s)
        .ok_or_else(|| StoreError::Corrupt(format!("an unknown subject status in `{col}`")))
}

/// A request's state as stored.
pub(crate) fn request_state(r: &AnyRow, col: &str) -> Result<RequestState, StoreError> {
    let s: String = r.try_get(col)?;
    RequestState::parse(&s)
        .ok_or_else(|| StoreError::Corrupt(format!("an unknown request state in `{col}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_out_of_range_is_corrupt() {
        let t = DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap();
        assert_eq!(from_us(us(t), "at").unwrap(), t);
        assert!(
            matches!(from_us(i64::MAX, "at"), Err(StoreError::Corrupt(m)) if m.contains("`at`"))
        );
    }
}
