//! Retention: previous values, legal holds and the purge's set-based
//! deletions. What is due is decided by the engine from the policy; the
//! store re-checks, inside each transaction, that a subject is still active
//! and not held before anything is deleted.

use sqlx::Row;

use crate::{placeholders, Store, StoreError};

/// A previous value of a field, sealed under the subject's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub field: String,
    pub version: i64,
    pub sealed: Vec<u8>,
    pub source: String,
    pub collected_at: i64,
    pub replaced_at: i64,
    pub sealed_reason: Vec<u8>,
    pub keep_until: i64,
}

/// A legal hold on a subject's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    pub hold_id: String,
    pub subject_id: String,
    pub reason: String,
    pub reference: String,
    pub placed_at: i64,
    pub placed_by: String,
    pub released_at: Option<i64>,
    pub released_by: Option<String>,
}

/// A field the purge looks at: an active subject's field that could be due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeCandidate {
    pub subject_id: String,
    pub field: String,
    pub collected_at: i64,
    pub relationship_ended_at: Option<i64>,
    /// An open legal hold covers the subject.
    pub held: bool,
}

const OPEN_HOLD: &str =
    "EXISTS (SELECT 1 FROM legal_holds h WHERE h.subject_id = s.subject_id AND h.released_at IS NULL)";

impl Store {
    /// Every previous value of a subject's fields, by field then newest first.
    pub async fn subject_history(&self, subject_id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT field, version, sealed, source, collected_at, replaced_at, sealed_reason, keep_until \
             FROM subject_field_history WHERE subject_id = $1 ORDER BY field, version DESC",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryRow {
                    field: r.try_get("field")?,
                    version: r.try_get("version")?,
                    sealed: r.try_get("sealed")?,
                    source: r.try_get("source")?,
                    collected_at: r.try_get("collected_at")?,
                    replaced_at: r.try_get("replaced_at")?,
                    sealed_reason: r.try_get("sealed_reason")?,
                    keep_until: r.try_get("keep_until")?,
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

    /// Record that the relationship with a subject ended (account closed,
    /// contract over); the first date recorded stands. Returns false for an
    /// unknown or destroyed subject.
    pub async fn end_relationship(&self, subject_id: &str, at: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE subjects SET relationship_ended_at = COALESCE(relationship_ended_at, $1) \
             WHERE subject_id = $2 AND status <> 'destroyed'",
        )
        .bind(at)
        .bind(subject_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn place_hold(&self, h: &LegalHold) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO legal_holds (hold_id, subject_id, reason, reference, placed_at, placed_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&h.hold_id)
        .bind(&h.subject_id)
        .bind(&h.reason)
        .bind(&h.reference)
        .bind(h.placed_at)
        .bind(&h.placed_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Release an open hold; false when there is no such open hold.
    pub async fn release_hold(
        &self,
        subject_id: &str,
        hold_id: &str,
        at: i64,
        by: &str,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE legal_holds SET released_at = $1, released_by = $2 \
             WHERE hold_id = $3 AND subject_id = $4 AND released_at IS NULL",
        )
        .bind(at)
        .bind(by)
        .bind(hold_id)
        .bind(subject_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// A subject's holds, open and released, oldest first.
    pub async fn holds(&self, subject_id: &str) -> Result<Vec<LegalHold>, StoreError> {
        let rows = sqlx::query(
            "SELECT hold_id, subject_id, reason, reference, placed_at, placed_by, released_at, released_by \
             FROM legal_holds WHERE subject_id = $1 ORDER BY placed_at, hold_id",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LegalHold {
                    hold_id: r.try_get("hold_id")?,
                    subject_id: r.try_get("subject_id")?,
                    reason: r.try_get("reason")?,
                    reference: r.try_get("reference")?,
                    placed_at: r.try_get("placed_at")?,
                    placed_by: r.try_get("placed_by")?,
                    released_at: r.try_get("released_at")?,
                    released_by: r.try_get("released_by")?,
                })
            })
            .collect()
    }

    /// One page of fields that could be due, in (subject, field) order after
    /// `after`: every field of an active subject whose relationship ended,
    /// and the fields collected at or before `collected_before` of the others.
    pub async fn purge_candidates(
        &self,
        after: Option<(&str, &str)>,
        collected_before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<PurgeCandidate>, StoreError> {
        let (a_subject, a_field) = after.unwrap_or(("", ""));
        let sql = format!(
            "SELECT f.subject_id, f.field, f.collected_at, s.relationship_ended_at, {OPEN_HOLD} AS held \
             FROM subject_fields f JOIN subjects s ON s.subject_id = f.subject_id \
             WHERE s.status = 'active' \
               AND (s.relationship_ended_at IS NOT NULL OR f.collected_at <= $1) \
               AND (f.subject_id > $2 OR (f.subject_id = $2 AND f.field > $3)) \
             ORDER BY f.subject_id, f.field LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(collected_before.unwrap_or(i64::MIN))
            .bind(a_subject)
            .bind(a_field)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let held: bool = match r.try_get::<bool, _>("held") {
                    Ok(b) => b,
                    Err(_) => r.try_get::<i64, _>("held")? != 0,
                };
                Ok(PurgeCandidate {
                    subject_id: r.try_get("subject_id")?,
                    field: r.try_get("field")?,
                    collected_at: r.try_get("collected_at")?,
                    relationship_ended_at: r.try_get("relationship_ended_at")?,
                    held,
                })
            })
            .collect()
    }

    /// Active, unheld subjects among `ids` (inside a transaction).
    async fn purgeable_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        ids: &[String],
        whole: bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT s.subject_id FROM subjects s WHERE s.subject_id IN ({}) AND s.status = 'active' \
                 AND NOT {OPEN_HOLD}{}",
                placeholders(1, chunk.len()),
                if whole {
                    " AND s.relationship_ended_at IS NOT NULL"
                } else {
                    ""
                }
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&mut **tx).await? {
                out.push(r.try_get("subject_id")?);
            }
        }
        Ok(out)
    }

    /// Destroy whole subjects whose every field's retention ended, with their
    /// certificates — `(subject_id, certificate_id, content, sha256)` — in one
    /// transaction. Subjects that meanwhile were blocked, held or destroyed are
    /// left alone (and get no certificate). Returns those destroyed.
    pub async fn purge_subjects(
        &self,
        certificates: &[(String, String, String, String)],
        at: i64,
    ) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = certificates.iter().map(|c| c.0.clone()).collect();
        let mut tx = self.begin_write().await?;
        let due = Self::purgeable_in(&mut tx, &ids, true).await?;
        Self::shred_many_in(&mut tx, &due, at).await?;
        let due_set: std::collections::HashSet<&str> = due.iter().map(String::as_str).collect();
        let certs: Vec<_> = certificates
            .iter()
            .filter(|c| due_set.contains(c.0.as_str()))
            .collect();
        for chunk in certs.chunks(100) {
            let mut sql = String::from(
                "INSERT INTO destruction_certificates (certificate_id, subject_id, request_id, at, content, sha256) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let b = i * 5;
                sql.push_str(&format!(
                    "(${}, ${}, NULL, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                ));
            }
            let mut q = sqlx::query(&sql);
            for (subject, cert, content, sha) in chunk {
                q = q.bind(cert).bind(subject).bind(at).bind(content).bind(sha);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(due)
    }

    /// Destroy single fields whose retention ended: `(subject_id, fields,
    /// blind-index kinds that go with them)`, with the fields' previous
    /// values, in one transaction; subjects meanwhile blocked, held or
    /// destroyed are left alone. Returns how many fields went, and whose.
    pub async fn purge_fields(
        &self,
        items: &[(String, Vec<String>, Vec<String>)],
    ) -> Result<(u64, Vec<String>), StoreError> {
        let ids: Vec<String> = items.iter().map(|i| i.0.clone()).collect();
        let mut tx = self.begin_write().await?;
        let ok: std::collections::HashSet<String> = Self::purgeable_in(&mut tx, &ids, false)
            .await?
            .into_iter()
            .collect();
        let mut n = 0;
        let mut subjects = Vec::new();
        for (subject, fields, index_kinds) in items.iter().filter(|i| ok.contains(&i.0)) {
            subjects.push(subject.clone());
            let list = placeholders(2, fields.len());
            for table in ["subject_fields", "subject_field_history"] {
                let sql =
                    format!("DELETE FROM {table} WHERE subject_id = $1 AND field IN ({list})");
                let mut q = sqlx::query(&sql).bind(subject);
                for f in fields {
                    q = q.bind(f);
                }
                let done = q.execute(&mut *tx).await?.rows_affected();
                if table == "subject_fields" {
                    n += done;
                }
            }
            for kind in index_kinds {
                sqlx::query("DELETE FROM blind_index WHERE subject_id = $1 AND kind = $2")
                    .bind(subject)
                    .bind(kind)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok((n, subjects))
    }

    /// Previous values kept past their `keep_until` go (active, unheld
    /// subjects only): `(subject_id, field, version)` of each, for the audit.
    pub async fn purge_history(
        &self,
        now: i64,
        dry_run: bool,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT hi.subject_id, hi.field, hi.version FROM subject_field_history hi \
             JOIN subjects s ON s.subject_id = hi.subject_id \
             WHERE hi.keep_until <= $1 AND s.status = 'active' AND NOT {OPEN_HOLD} \
             ORDER BY hi.subject_id, hi.field, hi.version"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&mut *tx).await?;
        let mut due = Vec::with_capacity(rows.len());
        for r in &rows {
            due.push((
                r.try_get("subject_id")?,
                r.try_get("field")?,
                r.try_get("version")?,
            ));
        }
        if dry_run {
            tx.rollback().await?;
            return Ok(due);
        }
        for (subject, field, version) in &due {
            sqlx::query(
                "DELETE FROM subject_field_history WHERE subject_id = $1 AND field = $2 AND version = $3",
            )
            .bind(subject)
            .bind(field)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(due)
    }
}
