//! Imports of an existing user base: each file's progress, advanced with
//! the batch it records, and the checks a batch makes before it writes.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, Write};

/// How far an import got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportProgress {
    /// Every line up to this one (1-based) is done: registered or refused.
    pub lines_done: i64,
    pub imported: i64,
    pub refused: i64,
}

impl Store {
    /// An import's progress (`None`: never started).
    pub async fn import_progress(
        &self,
        import_id: &str,
    ) -> Result<Option<ImportProgress>, StoreError> {
        let row =
            sqlx::query("SELECT lines_done, imported, refused FROM imports WHERE import_id = $1")
                .bind(import_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(ImportProgress {
                lines_done: r.try_get("lines_done")?,
                imported: r.try_get("imported")?,
                refused: r.try_get("refused")?,
            })
        })
        .transpose()
    }

    /// Refresh the planner's statistics of the tables an import fills (a
    /// bulk load leaves them stale: PostgreSQL then plans a decision's
    /// reads as scans until autovacuum catches up).
    pub async fn analyze_subjects(&self) -> Result<(), StoreError> {
        let sql = match self.backend() {
            crate::Backend::Postgres => {
                "ANALYZE subjects, subject_keys, subject_fields, blind_index, consents, consent_withdrawals, audit_log"
            }
            crate::Backend::Sqlite => "ANALYZE",
        };
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }

    /// Which of these IIN digests are barred (a minor, clause 7.7) at `now`.
    pub async fn barred_among(
        &self,
        digests: &[Vec<u8>],
        now: DateTime<Utc>,
    ) -> Result<HashSet<Vec<u8>>, StoreError> {
        let mut found = HashSet::new();
        for chunk in digests.chunks(500) {
            let first = crate::bound(self.backend(), 1, 1);
            let list = crate::bound(self.backend(), 2, chunk.len());
            let sql = format!(
                "SELECT digest FROM minor_bar WHERE until_at > {first} AND digest IN ({list})"
            );
            let mut q = sqlx::query(&sql).bind(crate::us(now));
            for d in chunk {
                q = q.bind(d.clone());
            }
            for r in q.fetch_all(&self.pool).await? {
                found.insert(r.try_get("digest")?);
            }
        }
        Ok(found)
    }
}

impl Write {
    /// Record that an import is done up to `progress.lines_done`, in the
    /// transaction of the batch that got it there.
    pub async fn advance_import(
        &mut self,
        import_id: &str,
        progress: ImportProgress,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO imports (import_id, lines_done, imported, refused, started_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (import_id) DO UPDATE SET \
             lines_done = excluded.lines_done, imported = excluded.imported, \
             refused = excluded.refused, updated_at = excluded.updated_at",
        )
        .bind(import_id)
        .bind(progress.lines_done)
        .bind(progress.imported)
        .bind(progress.refused)
        .bind(crate::us(now))
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
