//! The breach register (the Law, art. 25(2)(8)): each breach, the subjects
//! it affects, and its steps. The free text (description, cause, measures)
//! is in notes, sealed.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{NoteRow, Store, StoreError, SubjectId, Write};

/// Where a breach is: detected → assessed → notified (the authorised body)
/// → closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BreachState {
    Detected,
    Assessed,
    Notified,
    Closed,
}

impl BreachState {
    pub const ALL: [BreachState; 4] = [
        BreachState::Detected,
        BreachState::Assessed,
        BreachState::Notified,
        BreachState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BreachState::Detected => "detected",
            BreachState::Assessed => "assessed",
            BreachState::Notified => "notified",
            BreachState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<BreachState> {
        BreachState::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// The column that records when a breach reached this state.
    fn column(self) -> &'static str {
        match self {
            BreachState::Detected => "created_at",
            BreachState::Assessed => "assessed_at",
            BreachState::Notified => "notified_at",
            BreachState::Closed => "closed_at",
        }
    }
}

/// A breach as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachRow {
    pub breach_id: String,
    pub state: BreachState,
    pub detected_at: DateTime<Utc>,
    /// The end of the notice's deadline (1st working day after detection).
    pub notice_due: DateTime<Utc>,
    /// The categories affected (JSON array).
    pub categories: String,
    /// The number of subjects affected: those listed, or an estimate.
    pub affected_count: i64,
    /// `affected_count` counts listed subjects.
    pub count_known: bool,
    pub reported_by: String,
    pub created_at: DateTime<Utc>,
    pub assessed_at: Option<DateTime<Utc>>,
    pub notified_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// Which breaches to list.
#[derive(Debug, Clone, Default)]
pub struct BreachFilter {
    pub state: Option<BreachState>,
    /// Only those whose notice is not sent and was due before this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    pub limit: i64,
}

const COLUMNS: &str = "breach_id, state, detected_at, notice_due, categories, affected_count, count_known, reported_by, created_at, assessed_at, notified_at, closed_at";

fn breach_row(r: &AnyRow) -> Result<BreachRow, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(BreachRow {
        breach_id: r.try_get("breach_id")?,
        state: BreachState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("a breach state `{state}`")))?,
        detected_at: crate::time(r, "detected_at")?,
        notice_due: crate::time(r, "notice_due")?,
        categories: r.try_get("categories")?,
        affected_count: r.try_get("affected_count")?,
        count_known: r.try_get::<i64, _>("count_known")? != 0,
        reported_by: r.try_get("reported_by")?,
        created_at: crate::time(r, "created_at")?,
        assessed_at: crate::time_opt(r, "assessed_at")?,
        notified_at: crate::time_opt(r, "notified_at")?,
        closed_at: crate::time_opt(r, "closed_at")?,
    })
}

impl Store {
    pub async fn breach(&self, breach_id: &str) -> Result<Option<BreachRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM breaches WHERE breach_id = $1"
        ))
        .bind(breach_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(breach_row).transpose()
    }

    /// Breaches matching `f`, the earliest notice due first.
    pub async fn breaches(&self, f: &BreachFilter) -> Result<Vec<BreachRow>, StoreError> {
        use crate::select::{text, time, Select};
        let rows = Select::from("breaches", COLUMNS)
            .and("state =", f.state.map(|s| text(s.as_str())))
            .and(
                "notified_at IS NULL AND closed_at IS NULL AND notice_due <",
                f.overdue_at.map(time),
            )
            .fetch(&self.pool, "notice_due, breach_id", f.limit)
            .await?;
        rows.iter().map(breach_row).collect()
    }

    /// The subjects a breach lists.
    pub async fn breach_subjects(&self, breach_id: &str) -> Result<Vec<SubjectId>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id FROM breach_subjects WHERE breach_id = $1 ORDER BY subject_id",
        )
        .bind(breach_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| crate::subject_id(r, "subject_id"))
            .collect()
    }
}

impl Write {
    /// Register a breach, the subjects it lists and its sealed notes.
    pub async fn add_breach(
        &mut self,
        b: &BreachRow,
        subjects: &[SubjectId],
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        sqlx::query(&format!(
            "INSERT INTO breaches ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&b.breach_id)
        .bind(b.state.as_str())
        .bind(crate::us(b.detected_at))
        .bind(crate::us(b.notice_due))
        .bind(&b.categories)
        .bind(b.affected_count)
        .bind(i64::from(b.count_known))
        .bind(&b.reported_by)
        .bind(crate::us(b.created_at))
        .bind(b.assessed_at.map(crate::us))
        .bind(b.notified_at.map(crate::us))
        .bind(b.closed_at.map(crate::us))
        .execute(&mut **tx)
        .await?;
        for chunk in subjects.chunks(200) {
            let mut sql =
                String::from("INSERT INTO breach_subjects (subject_id, breach_id) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(${}, ${})", i * 2 + 1, i * 2 + 2));
            }
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q.bind(s.to_string()).bind(&b.breach_id);
            }
            q.execute(&mut **tx).await?;
        }
        Store::insert_notes_in(tx, notes).await
    }

    /// Move a breach from `from` to `to` (compare-and-swap), with notes
    /// written for the step.
    pub async fn breach_step(
        &mut self,
        breach_id: &str,
        from: BreachState,
        to: BreachState,
        at: DateTime<Utc>,
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        let changed = sqlx::query(&format!(
            "UPDATE breaches SET state = $1, {} = $2 WHERE breach_id = $3 AND state = $4",
            to.column()
        ))
        .bind(to.as_str())
        .bind(crate::us(at))
        .bind(breach_id)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::Conflict("breach state".into()));
        }
        // A step's notes replace those of the same name (measures grow).
        for n in notes {
            sqlx::query("DELETE FROM notes WHERE subject_id = '' AND owner = $1 AND name = $2")
                .bind(&n.owner)
                .bind(&n.name)
                .execute(&mut **tx)
                .await?;
        }
        Store::insert_notes_in(tx, notes).await
    }
}
