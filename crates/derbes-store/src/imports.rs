//! Imports of an existing user base: each file's progress, advanced with
//! the batch it records, and the checks a batch makes before it writes.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{ChainTail, NewAuditRecord, NewSubject, Store, StoreError, Write};

/// How far an import got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportProgress {
    /// Every line up to this one (1-based) is done: registered or refused.
    pub lines_done: i64,
    pub imported: i64,
    pub refused: i64,
}

/// An import's batch: its subjects, their `register` records, and the
/// import's checkpoint, to commit together ([`Store::write_import_batch`]).
#[derive(Debug, Default)]
pub struct ImportBatch {
    pub import_id: String,
    pub subjects: Vec<NewSubject>,
    /// One per subject, in the same order: appended for those registered.
    pub records: Vec<NewAuditRecord>,
    /// The checkpoint once the batch is done, before counting its
    /// subjects: `lines_done` at its last line, `refused` counting the
    /// lines refused before the store saw them.
    pub progress: ImportProgress,
    pub now: DateTime<Utc>,
    /// Write everything, then roll it back.
    pub dry_run: bool,
}

/// What an import's batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportBatchWritten {
    /// The subjects skipped: their positions and the identifier's kind
    /// someone has already (see [`Write::insert_new_subjects`]).
    pub skipped: Vec<(usize, String)>,
    /// The checkpoint written, the batch's subjects counted.
    pub progress: ImportProgress,
}

impl ImportBatch {
    /// The checkpoint once `skipped` of the subjects were skipped.
    fn progress_after(&self, skipped: usize) -> ImportProgress {
        ImportProgress {
            imported: self.progress.imported + (self.subjects.len() - skipped) as i64,
            refused: self.progress.refused + skipped as i64,
            ..self.progress
        }
    }

    /// The records of the subjects not skipped.
    fn kept_records(&self, skipped: &[(usize, String)]) -> Vec<&NewAuditRecord> {
        crate::subjects::kept_of(&self.records, skipped)
    }
}

impl Store {
    /// Commit an import's batch in one transaction: the subjects whose
    /// identifiers nobody has yet (the others skipped, as
    /// [`Write::insert_new_subjects`] decides), the records of those
    /// registered, and the import's checkpoint; a dry run rolls it all
    /// back. Nothing of it is stored on an error. The batch stays the
    /// caller's: after [`StoreError::KekChanged`] it can be wrapped anew
    /// and written again.
    ///
    /// On SQLite the batch is written on a connection of the store's own,
    /// a prepared single-row statement stepped per row (see
    /// [`crate::lite`]); on PostgreSQL as a unit of work.
    pub async fn write_import_batch(
        &self,
        batch: &mut ImportBatch,
    ) -> Result<ImportBatchWritten, StoreError> {
        if batch.records.len() != batch.subjects.len() {
            return Err(StoreError::Config(
                "an import's batch needs one record per subject".into(),
            ));
        }
        if self.backend() == crate::Backend::Postgres {
            return self.write_import_batch_in_unit(batch).await;
        }
        let lite = self.lite()?.clone();
        let taken = std::mem::take(batch);
        let (back, written) = tokio::task::spawn_blocking(move || {
            let written = lite.with(|conn| lite_write_import_batch(conn, &taken));
            if matches!(written, Ok((_, Some(_)))) {
                lite.committed();
            }
            (taken, written)
        })
        .await
        .map_err(|e| StoreError::Config(format!("an import's writer thread: {e}")))?;
        *batch = back;
        let (written, tail) = written?;
        if let Some(tail) = tail {
            self.chain_tail.saw(tail);
        }
        Ok(written)
    }

    async fn write_import_batch_in_unit(
        &self,
        batch: &ImportBatch,
    ) -> Result<ImportBatchWritten, StoreError> {
        let mut w = self.write().await?;
        let skipped = w.insert_new_subjects(&batch.subjects).await?;
        let progress = batch.progress_after(skipped.len());
        if !batch.dry_run {
            w.advance_import(&batch.import_id, progress, batch.now)
                .await?;
            for r in batch.kept_records(&skipped) {
                w.audit(r.clone());
            }
            w.commit().await?;
        }
        Ok(ImportBatchWritten { skipped, progress })
    }

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

/// An import's checkpoint, inserted or moved on.
const ADVANCE: &str =
    "INSERT INTO imports (import_id, lines_done, imported, refused, started_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (import_id) DO UPDATE SET \
     lines_done = excluded.lines_done, imported = excluded.imported, \
     refused = excluded.refused, updated_at = excluded.updated_at";

impl Write {
    /// Record that an import is done up to `progress.lines_done`, in the
    /// transaction of the batch that got it there.
    pub async fn advance_import(
        &mut self,
        import_id: &str,
        progress: ImportProgress,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(ADVANCE)
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

/// SQLite: [`Store::write_import_batch`] on a connection of the store's
/// own. The chain's tail is read under the write lock `BEGIN IMMEDIATE`
/// takes; the new tail is returned once committed (`None`: a dry run,
/// rolled back).
fn lite_write_import_batch(
    conn: &rusqlite::Connection,
    batch: &ImportBatch,
) -> Result<(ImportBatchWritten, Option<ChainTail>), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let written = (|| {
        let skipped = crate::subjects::lite_insert_new_subjects(conn, &batch.subjects)?;
        let progress = batch.progress_after(skipped.len());
        conn.prepare_cached(ADVANCE)?.execute(rusqlite::params![
            batch.import_id,
            progress.lines_done,
            progress.imported,
            progress.refused,
            crate::us(batch.now)
        ])?;
        let tail = crate::audit::lite_tail(conn)?;
        let tail = crate::audit::lite_insert_records(conn, batch.kept_records(&skipped), tail)?;
        Ok((ImportBatchWritten { skipped, progress }, tail))
    })();
    match written {
        Ok((written, tail)) if !batch.dry_run => {
            conn.execute_batch("COMMIT")?;
            Ok((written, Some(tail)))
        }
        done => {
            // A dry run ends here too; a connection left inside the
            // transaction is not kept (`LiteFile::with`).
            let _ = conn.execute_batch("ROLLBACK");
            done.map(|(written, _)| (written, None))
        }
    }
}
