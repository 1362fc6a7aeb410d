//! The consent ledger: consents are inserted, never changed; a withdrawal is
//! a row of its own. Records hold no personal data.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError, SubjectId, Write};

#[derive(Debug, Clone)]
pub struct NewConsent {
    pub consent_id: String,
    pub kind: String,
    pub given_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub record_json: String,
    pub receipt_sha256: String,
    /// The SHA-256 of the policy version it accepted.
    pub policy_sha256: String,
    /// What decisions read of it (`derbes_core::ConsentTerms::line`);
    /// `None`: they read the record.
    pub terms: Option<String>,
}

/// A subject's latest acceptance of the policy: the version's SHA-256
/// (`None`: accepted before derbes recorded which).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub subject_id: SubjectId,
    pub policy_sha256: Option<String>,
}

/// A consent as stored, with its withdrawal if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub subject_id: SubjectId,
    pub consent_id: String,
    pub record_json: String,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

fn consent_row(r: &AnyRow) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        subject_id: crate::subject_id(r, "subject_id")?,
        consent_id: r.try_get("consent_id")?,
        record_json: r.try_get("record")?,
        withdrawn_at: crate::time_opt(r, "withdrawn_at")?,
    })
}

const CONSENT_SELECT: &str = "SELECT c.subject_id, c.consent_id, c.record, w.withdrawn_at \
     FROM consents c LEFT JOIN consent_withdrawals w \
     ON w.subject_id = c.subject_id AND w.consent_id = c.consent_id";

impl Store {
    /// Every consent of a subject, oldest first.
    pub async fn consents(&self, subject_id: SubjectId) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "{CONSENT_SELECT} WHERE c.subject_id = $1 ORDER BY c.given_at, c.consent_id"
        ))
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(consent_row).collect()
    }

    pub async fn consent_by_receipt(&self, sha256: &str) -> Result<Option<ConsentRow>, StoreError> {
        let row = sqlx::query(&format!("{CONSENT_SELECT} WHERE c.receipt_sha256 = $1"))
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(consent_row).transpose()
    }

    /// Active subjects whose latest policy acceptance (not withdrawn) was
    /// given to a version other than `current_sha`, after `after` in id
    /// order.
    pub async fn accepted_other_versions(
        &self,
        current_sha: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Acceptance>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.subject_id, c.policy_sha256 FROM consents c \
             JOIN subjects s ON s.subject_id = c.subject_id \
             WHERE c.kind = 'policy' AND s.status = 'active' AND c.subject_id > $2 \
               AND COALESCE(c.policy_sha256, '') <> $1 \
               AND NOT EXISTS (SELECT 1 FROM consent_withdrawals w \
                               WHERE w.subject_id = c.subject_id AND w.consent_id = c.consent_id) \
               AND NOT EXISTS (SELECT 1 FROM consents n \
                               WHERE n.subject_id = c.subject_id AND n.kind = 'policy' \
                                 AND (n.given_at > c.given_at OR (n.given_at = c.given_at AND n.consent_id > c.consent_id))) \
             ORDER BY c.subject_id LIMIT $3",
        )
        .bind(current_sha)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Acceptance {
                    subject_id: crate::subject_id(r, "subject_id")?,
                    policy_sha256: r.try_get("policy_sha256")?,
                })
            })
            .collect()
    }
}

impl Write {
    /// Append a consent.
    pub async fn insert_consent(
        &mut self,
        subject_id: SubjectId,
        c: &NewConsent,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (subject_id, consent_id, kind, given_at, expires_at, record, receipt_sha256, policy_sha256, terms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(subject_id.to_string())
        .bind(&c.consent_id)
        .bind(&c.kind)
        .bind(crate::us(c.given_at))
        .bind(c.expires_at.map(crate::us))
        .bind(&c.record_json)
        .bind(&c.receipt_sha256)
        .bind(&c.policy_sha256)
        .bind(&c.terms)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Append a withdrawal. `Ok(false)` when it was already withdrawn;
    /// [`StoreError::NotFound`] when there is no such consent.
    pub async fn withdraw_consent(
        &mut self,
        subject_id: SubjectId,
        consent_id: &str,
        at: DateTime<Utc>,
        evidence: &str,
        notes: &[crate::NoteRow],
    ) -> Result<bool, StoreError> {
        let tx = self.tx();
        let exists =
            sqlx::query("SELECT 1 AS one FROM consents WHERE subject_id = $1 AND consent_id = $2")
                .bind(subject_id.to_string())
                .bind(consent_id)
                .fetch_optional(&mut **tx)
                .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound("consent"));
        }
        let done = sqlx::query(
            "INSERT INTO consent_withdrawals (subject_id, consent_id, withdrawn_at, evidence) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject_id, consent_id) DO NOTHING",
        )
        .bind(subject_id.to_string())
        .bind(consent_id)
        .bind(crate::us(at))
        .bind(evidence)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if done == 1 {
            Store::insert_notes_in(tx, notes).await?;
        }
        Ok(done == 1)
    }
}
