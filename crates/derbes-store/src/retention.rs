//! Retention: previous values, legal holds and the purge's set-based
//! deletions. What is due is decided by the engine from the policy; the
//! store re-checks, inside each transaction, that a subject is still active
//! and not held before anything is deleted.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{NoteRow, Store, StoreError, SubjectId, Write};

/// A previous value of a field, sealed under the subject's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub field: String,
    pub version: i64,
    pub sealed: Vec<u8>,
    pub source: String,
    pub collected_at: DateTime<Utc>,
    pub replaced_at: DateTime<Utc>,
    pub sealed_reason: Vec<u8>,
    pub keep_until: DateTime<Utc>,
}

/// Which previous value of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryKey {
    pub subject_id: SubjectId,
    pub field: String,
    pub version: i64,
}

/// A legal hold on a subject's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    pub hold_id: String,
    pub subject_id: SubjectId,
    pub reason: String,
    pub reference: String,
    pub placed_at: DateTime<Utc>,
    pub placed_by: String,
    pub released_at: Option<DateTime<Utc>>,
    pub released_by: Option<String>,
}

/// Which fields the purge reads: what the policy's retention rules say
/// could be due (`derbes_core::RetentionRules`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeScope {
    /// A field collected before this could be due by its collection date
    /// (`None`: none can be while the relationship lasts).
    pub collected_before: Option<DateTime<Utc>>,
    /// Categories kept while the relationship lasts: an active subject's
    /// fields of these are not read.
    pub kept_while_related: Vec<String>,
    /// The categories the policy knows; a field of another is read always.
    pub known: Vec<String>,
}

/// A field the purge looks at: an active subject's field that could be due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeCandidate {
    pub subject_id: SubjectId,
    pub field: String,
    pub collected_at: DateTime<Utc>,
    pub relationship_ended_at: Option<DateTime<Utc>>,
    /// The subject withdrew: only what a law keeps remains (statutory retention).
    pub withdrawn: bool,
    /// An open legal hold covers the subject.
    pub held: bool,
}

const OPEN_HOLD: &str =
    "EXISTS (SELECT 1 FROM legal_holds h WHERE h.subject_id = s.subject_id AND h.released_at IS NULL)";

/// Subjects whose data retention rules (not a destruction job) decide on.
const RETAINED: &str = "s.status IN ('active', 'withdrawn') \
     AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.subject_id = s.subject_id AND j.done_at IS NULL)";

impl Store {
    /// Every previous value of a subject's fields, by field then newest first.
    pub async fn subject_history(
        &self,
        subject_id: SubjectId,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT field, version, sealed, source, collected_at, replaced_at, sealed_reason, keep_until \
             FROM subject_field_history WHERE subject_id = $1 ORDER BY field, version DESC",
        )
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryRow {
                    field: r.try_get("field")?,
                    version: r.try_get("version")?,
                    sealed: r.try_get("sealed")?,
                    source: r.try_get("source")?,
                    collected_at: crate::time(r, "collected_at")?,
                    replaced_at: crate::time(r, "replaced_at")?,
                    sealed_reason: r.try_get("sealed_reason")?,
                    keep_until: crate::time(r, "keep_until")?,
                })
            })
            .collect()
    }

    /// How many current fields are stored (for progress bars).
    pub async fn field_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM subject_fields")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// A subject's holds, open and released, oldest first.
    pub async fn holds(&self, subject_id: SubjectId) -> Result<Vec<LegalHold>, StoreError> {
        let rows = sqlx::query(
            "SELECT hold_id, subject_id, reason, reference, placed_at, placed_by, released_at, released_by \
             FROM legal_holds WHERE subject_id = $1 ORDER BY placed_at, hold_id",
        )
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LegalHold {
                    hold_id: r.try_get("hold_id")?,
                    subject_id: crate::subject_id(r, "subject_id")?,
                    reason: r.try_get("reason")?,
                    reference: r.try_get("reference")?,
                    placed_at: crate::time(r, "placed_at")?,
                    placed_by: r.try_get("placed_by")?,
                    released_at: crate::time_opt(r, "released_at")?,
                    released_by: r.try_get("released_by")?,
                })
            })
            .collect()
    }

    /// One page of fields that could be due, in (subject, field) order after
    /// `after`: every field of a subject whose relationship ended, and the
    /// fields collected at or before `collected_before` of the others — of
    /// active subjects, and of withdrawn ones whose destruction was done (what
    /// a law keeps of them). Subjects awaiting a destruction job are left to it.
    pub async fn purge_candidates(
        &self,
        after: Option<(SubjectId, &str)>,
        scope: &PurgeScope,
        limit: i64,
    ) -> Result<Vec<PurgeCandidate>, StoreError> {
        let (a_subject, a_field) = after.map_or((String::new(), ""), |(s, f)| (s.to_string(), f));
        let backend = self.backend();
        let category = match backend {
            crate::Backend::Sqlite => "substr(f.field, 1, instr(f.field, '.') - 1)",
            crate::Backend::Postgres => "split_part(f.field, '.', 1)",
        };
        // An active subject's field whose category the relationship keeps
        // cannot be due; another is due by its collection date, or at once
        // when the policy no longer knows its category.
        let sql = format!(
            "SELECT f.subject_id, f.field, f.collected_at, s.relationship_ended_at, s.status, {OPEN_HOLD} AS held \
             FROM subject_fields f JOIN subjects s ON s.subject_id = f.subject_id \
             WHERE {RETAINED} \
               AND (s.relationship_ended_at IS NOT NULL OR s.status <> 'active' \
                    OR ({category} NOT IN ({kept}) \
                        AND (f.collected_at <= $1 OR {category} NOT IN ({known})))) \
               AND (f.subject_id > $2 OR (f.subject_id = $2 AND f.field > $3)) \
             ORDER BY f.subject_id, f.field LIMIT $4",
            kept = crate::json_values(backend, 5),
            known = crate::json_values(backend, 6),
        );
        // (A list of strings always serialises; were it not to, an empty
        // list reads more fields, never fewer.)
        let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let rows = sqlx::query(&sql)
            .bind(scope.collected_before.map_or(i64::MIN, crate::us))
            .bind(a_subject)
            .bind(a_field)
            .bind(limit)
            .bind(list(&scope.kept_while_related))
            .bind(list(&scope.known))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let held = crate::destroy::flag(r, "held")?;
                Ok(PurgeCandidate {
                    subject_id: crate::subject_id(r, "subject_id")?,
                    field: r.try_get("field")?,
                    collected_at: crate::time(r, "collected_at")?,
                    relationship_ended_at: crate::time_opt(r, "relationship_ended_at")?,
                    withdrawn: r.try_get::<String, _>("status")? == "withdrawn",
                    held,
                })
            })
            .collect()
    }

    /// Previous values kept past their `keep_until` (of subjects retention
    /// decides on, unheld): what [`Write::purge_history`] would delete now.
    pub async fn history_due(&self, now: DateTime<Utc>) -> Result<Vec<HistoryKey>, StoreError> {
        let rows = sqlx::query(&history_due_sql())
            .bind(crate::us(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(history_key).collect()
    }
}

fn history_due_sql() -> String {
    format!(
        "SELECT hi.subject_id, hi.field, hi.version FROM subject_field_history hi \
         JOIN subjects s ON s.subject_id = hi.subject_id \
         WHERE hi.keep_until <= $1 AND {RETAINED} AND NOT {OPEN_HOLD} \
         ORDER BY hi.subject_id, hi.field, hi.version"
    )
}

fn history_key(r: &sqlx::any::AnyRow) -> Result<HistoryKey, StoreError> {
    Ok(HistoryKey {
        subject_id: crate::subject_id(r, "subject_id")?,
        field: r.try_get("field")?,
        version: r.try_get("version")?,
    })
}

impl Write {
    /// Record that the relationship with a subject ended (account closed,
    /// contract over); the first date recorded stands, and is returned.
    /// `None` for an unknown or destroyed subject.
    pub async fn end_relationship(
        &mut self,
        subject_id: SubjectId,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let n = sqlx::query(
            "UPDATE subjects SET relationship_ended_at = COALESCE(relationship_ended_at, $1) \
             WHERE subject_id = $2 AND status <> 'destroyed'",
        )
        .bind(crate::us(at))
        .bind(subject_id.to_string())
        .execute(self.conn())
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(None);
        }
        let r = sqlx::query("SELECT relationship_ended_at FROM subjects WHERE subject_id = $1")
            .bind(subject_id.to_string())
            .fetch_one(self.conn())
            .await?;
        crate::time_opt(&r, "relationship_ended_at")
    }

    /// Place a hold; its reference arrives as a sealed note (the column stays empty).
    pub async fn place_hold(&mut self, h: &LegalHold, notes: &[NoteRow]) -> Result<(), StoreError> {
        let tx = self.tx();
        sqlx::query(
            "INSERT INTO legal_holds (hold_id, subject_id, reason, reference, placed_at, placed_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&h.hold_id)
        .bind(h.subject_id.to_string())
        .bind(&h.reason)
        .bind(&h.reference)
        .bind(crate::us(h.placed_at))
        .bind(&h.placed_by)
        .execute(&mut **tx)
        .await?;
        Store::insert_notes_in(tx, notes).await?;
        Ok(())
    }

    /// Release an open hold; false when there is no such open hold.
    pub async fn release_hold(
        &mut self,
        subject_id: SubjectId,
        hold_id: &str,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE legal_holds SET released_at = $1, released_by = $2 \
             WHERE hold_id = $3 AND subject_id = $4 AND released_at IS NULL",
        )
        .bind(crate::us(at))
        .bind(by)
        .bind(hold_id)
        .bind(subject_id.to_string())
        .execute(self.conn())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Previous values kept past their `keep_until` go (subjects retention
    /// decides on, unheld): which went, for the audit.
    pub async fn purge_history(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Vec<HistoryKey>, StoreError> {
        let tx = self.tx();
        let rows = sqlx::query(&history_due_sql())
            .bind(crate::us(now))
            .fetch_all(&mut **tx)
            .await?;
        let due = rows
            .iter()
            .map(history_key)
            .collect::<Result<Vec<_>, _>>()?;
        for h in &due {
            sqlx::query(
                "DELETE FROM subject_field_history WHERE subject_id = $1 AND field = $2 AND version = $3",
            )
            .bind(h.subject_id.to_string())
            .bind(&h.field)
            .bind(h.version)
            .execute(&mut **tx)
            .await?;
        }
        Ok(due)
    }
}
