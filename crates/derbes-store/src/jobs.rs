//! Obligations, scheduled jobs and destruction certificates.

use sqlx::Row;

use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObligationRow {
    pub obligation_id: String,
    pub kind: String,
    pub reference: String,
    pub created_at: i64,
    pub closed_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub job_id: String,
    pub kind: String,
    pub subject_id: String,
    pub request_id: Option<String>,
    pub due_at: i64,
}

/// What running a destruction job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Destroyed now (the job is done).
    Destroyed,
    /// The subject is blocked: destruction waits until unblocked (job stays pending).
    Blocked,
    /// Another runner did it first (the job was already done).
    AlreadyDone,
}

impl Store {
    pub async fn add_obligation(
        &self,
        subject_id: &str,
        o: &ObligationRow,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO obligations (subject_id, obligation_id, kind, reference, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(subject_id)
            .bind(&o.obligation_id)
            .bind(&o.kind)
            .bind(&o.reference)
            .bind(o.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Close an open obligation; false when it was already closed.
    pub async fn close_obligation(
        &self,
        subject_id: &str,
        obligation_id: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE obligations SET closed_at = $1 WHERE subject_id = $2 AND obligation_id = $3 AND closed_at IS NULL")
            .bind(at)
            .bind(subject_id)
            .bind(obligation_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0
            && !self
                .obligations(subject_id)
                .await?
                .iter()
                .any(|o| o.obligation_id == obligation_id)
        {
            return Err(StoreError::NotFound("obligation"));
        }
        Ok(n == 1)
    }

    pub async fn obligations(&self, subject_id: &str) -> Result<Vec<ObligationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT obligation_id, kind, reference, created_at, closed_at FROM obligations WHERE subject_id = $1 ORDER BY created_at, obligation_id",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ObligationRow {
                    obligation_id: r.try_get("obligation_id")?,
                    kind: r.try_get("kind")?,
                    reference: r.try_get("reference")?,
                    created_at: r.try_get("created_at")?,
                    closed_at: r.try_get("closed_at")?,
                })
            })
            .collect()
    }

    /// Bar a subject found to be a minor: their IIN's digest goes on the bar
    /// list until `until`, their status becomes `barred_minor` (destruction
    /// follows). One transaction. False if the subject has no IIN digest.
    pub async fn bar_minor(
        &self,
        subject_id: &str,
        until: i64,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let digest: Option<Vec<u8>> =
            sqlx::query("SELECT digest FROM blind_index WHERE kind = 'iin' AND subject_id = $1")
                .bind(subject_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("digest"))
                .transpose()?;
        let Some(digest) = digest else {
            tx.rollback().await?;
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO minor_bar (digest, until_at, at) VALUES ($1, $2, $3) \
             ON CONFLICT (digest) DO UPDATE SET until_at = excluded.until_at, at = excluded.at",
        )
        .bind(&digest)
        .bind(until)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE subjects SET status = 'barred_minor', relationship_ended_at = COALESCE(relationship_ended_at, $2) WHERE subject_id = $1 AND status <> 'destroyed'")
            .bind(subject_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether an IIN digest is barred at `now`.
    pub async fn is_barred(&self, digest: &[u8], now: i64) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM minor_bar WHERE digest = $1 AND until_at > $2")
                .bind(digest)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    pub async fn schedule_job(&self, j: &JobRow, at: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO jobs (job_id, kind, subject_id, request_id, due_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&j.job_id)
            .bind(&j.kind)
            .bind(&j.subject_id)
            .bind(j.request_id.clone())
            .bind(j.due_at)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Jobs not done yet, soonest due first.
    pub async fn pending_jobs(&self, limit: i64) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query("SELECT job_id, kind, subject_id, request_id, due_at FROM jobs WHERE done_at IS NULL ORDER BY due_at, job_id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(JobRow {
                    job_id: r.try_get("job_id")?,
                    kind: r.try_get("kind")?,
                    subject_id: r.try_get("subject_id")?,
                    request_id: r.try_get("request_id")?,
                    due_at: r.try_get("due_at")?,
                })
            })
            .collect()
    }

    /// Run a destruction job: in one transaction, mark the job done (only if
    /// it was not), delete the subject's key, sealed rows, indexes and
    /// opt-outs, and mark the subject destroyed — unless the subject is
    /// blocked, in which case nothing happens and the job stays pending.
    pub async fn run_destruction_job(
        &self,
        job_id: &str,
        subject_id: &str,
        at: i64,
    ) -> Result<JobOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> =
            sqlx::query("SELECT status FROM subjects WHERE subject_id = $1")
                .bind(subject_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("status"))
                .transpose()?;
        if status.as_deref() == Some("blocked") {
            tx.rollback().await?;
            return Ok(JobOutcome::Blocked);
        }
        let claimed = sqlx::query("UPDATE jobs SET done_at = $1, outcome = 'destroyed' WHERE job_id = $2 AND done_at IS NULL")
            .bind(at)
            .bind(job_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(JobOutcome::AlreadyDone);
        }
        Self::shred_in(&mut tx, subject_id, at).await?;
        tx.commit().await?;
        Ok(JobOutcome::Destroyed)
    }

    pub async fn insert_certificate(
        &self,
        certificate_id: &str,
        subject_id: &str,
        request_id: Option<&str>,
        at: i64,
        content: &str,
        sha256: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO destruction_certificates (certificate_id, subject_id, request_id, at, content, sha256) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(certificate_id)
        .bind(subject_id)
        .bind(request_id)
        .bind(at)
        .bind(content)
        .bind(sha256)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The certificate of a request: (content JSON, sha256).
    pub async fn certificate_for_request(
        &self,
        request_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let r = sqlx::query(
            "SELECT content, sha256 FROM destruction_certificates WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        match r {
            None => Ok(None),
            Some(r) => Ok(Some((r.try_get("content")?, r.try_get("sha256")?))),
        }
    }

    /// The latest certificate of a subject: (content JSON, sha256).
    pub async fn certificate_for_subject(
        &self,
        subject_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let r = sqlx::query(
            "SELECT content, sha256 FROM destruction_certificates WHERE subject_id = $1 ORDER BY at DESC LIMIT 1",
        )
        .bind(subject_id)
        .fetch_optional(&self.pool)
        .await?;
        match r {
            None => Ok(None),
            Some(r) => Ok(Some((r.try_get("content")?, r.try_get("sha256")?))),
        }
    }
}
