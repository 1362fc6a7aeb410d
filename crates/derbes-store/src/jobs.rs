//! Obligations, scheduled jobs and destruction certificates.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, SubjectId, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObligationRow {
    pub obligation_id: String,
    pub kind: String,
    pub reference: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// A destruction certificate as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The certificate (JSON, no personal data).
    pub content: String,
    pub sha256: String,
}

fn certificate(r: &sqlx::any::AnyRow) -> Result<Certificate, StoreError> {
    Ok(Certificate {
        content: r.try_get("content")?,
        sha256: r.try_get("sha256")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub job_id: String,
    pub kind: String,
    pub subject_id: SubjectId,
    pub request_id: Option<String>,
    pub due_at: DateTime<Utc>,
}

impl Store {
    pub async fn obligations(
        &self,
        subject_id: SubjectId,
    ) -> Result<Vec<ObligationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT obligation_id, kind, reference, created_at, closed_at FROM obligations WHERE subject_id = $1 ORDER BY created_at, obligation_id",
        )
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ObligationRow {
                    obligation_id: r.try_get("obligation_id")?,
                    kind: r.try_get("kind")?,
                    reference: r.try_get("reference")?,
                    created_at: crate::time(r, "created_at")?,
                    closed_at: crate::time_opt(r, "closed_at")?,
                })
            })
            .collect()
    }

    /// Whether an IIN digest is barred at `now`.
    pub async fn is_barred(&self, digest: &[u8], now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM minor_bar WHERE digest = $1 AND until_at > $2")
                .bind(digest)
                .bind(crate::us(now))
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
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
                    subject_id: crate::subject_id(r, "subject_id")?,
                    request_id: r.try_get("request_id")?,
                    due_at: crate::time(r, "due_at")?,
                })
            })
            .collect()
    }

    /// The certificate of a request.
    pub async fn certificate_for_request(
        &self,
        request_id: &str,
    ) -> Result<Option<Certificate>, StoreError> {
        sqlx::query("SELECT content, sha256 FROM destruction_certificates WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| certificate(&r))
            .transpose()
    }

    /// The latest certificate of a subject.
    pub async fn certificate_for_subject(
        &self,
        subject_id: SubjectId,
    ) -> Result<Option<Certificate>, StoreError> {
        sqlx::query(
            "SELECT content, sha256 FROM destruction_certificates WHERE subject_id = $1 ORDER BY at DESC LIMIT 1",
        )
        .bind(subject_id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(|r| certificate(&r))
        .transpose()
    }
}

impl Write {
    /// Add an obligation; its reference arrives as a sealed note.
    pub async fn add_obligation(
        &mut self,
        subject_id: SubjectId,
        o: &ObligationRow,
        notes: &[crate::NoteRow],
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        sqlx::query("INSERT INTO obligations (subject_id, obligation_id, kind, reference, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(subject_id.to_string())
            .bind(&o.obligation_id)
            .bind(&o.kind)
            .bind(&o.reference)
            .bind(crate::us(o.created_at))
            .execute(&mut **tx)
            .await?;
        Store::insert_notes_in(tx, notes).await?;
        Ok(())
    }

    /// Close an open obligation; false when it was already closed.
    pub async fn close_obligation(
        &mut self,
        subject_id: SubjectId,
        obligation_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE obligations SET closed_at = $1 WHERE subject_id = $2 AND obligation_id = $3 AND closed_at IS NULL")
            .bind(crate::us(at))
            .bind(subject_id.to_string())
            .bind(obligation_id)
            .execute(self.conn())
            .await?
            .rows_affected();
        if n == 0
            && sqlx::query(
                "SELECT 1 AS one FROM obligations WHERE subject_id = $1 AND obligation_id = $2",
            )
            .bind(subject_id.to_string())
            .bind(obligation_id)
            .fetch_optional(self.conn())
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound("obligation"));
        }
        Ok(n == 1)
    }

    /// Bar the IIN a subject registered with (by its keyed digest, which
    /// the subject's blind index of `kind` holds) until `until` — 7.7: a minor who used
    /// it cannot register with it again before their 18th birthday. A later
    /// bar on the same digest replaces it. False if the subject has no IIN.
    pub async fn bar_minor(
        &mut self,
        subject_id: SubjectId,
        kind: &str,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let tx = self.tx();
        let digest: Option<Vec<u8>> =
            sqlx::query("SELECT digest FROM blind_index WHERE kind = $2 AND subject_id = $1")
                .bind(subject_id.to_string())
                .bind(kind)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get("digest"))
                .transpose()?;
        let Some(digest) = digest else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO minor_bar (digest, until_at, at) VALUES ($1, $2, $3) \
             ON CONFLICT (digest) DO UPDATE SET until_at = excluded.until_at, at = excluded.at",
        )
        .bind(&digest)
        .bind(crate::us(until))
        .bind(crate::us(at))
        .execute(&mut **tx)
        .await?;
        Ok(true)
    }

    pub async fn schedule_job(&mut self, j: &JobRow, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO jobs (job_id, kind, subject_id, request_id, due_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&j.job_id)
            .bind(&j.kind)
            .bind(j.subject_id.to_string())
            .bind(j.request_id.clone())
            .bind(crate::us(j.due_at))
            .bind(crate::us(at))
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
