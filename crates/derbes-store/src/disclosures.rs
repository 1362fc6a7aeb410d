//! The disclosure ledger: who received which categories of a subject's data,
//! when, for which purpose and on what basis.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, SubjectId, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRow {
    pub subject_id: SubjectId,
    pub disclosure_id: String,
    pub recipient: String,
    pub purpose: String,
    /// Comma-separated category ids.
    pub categories: String,
    pub legal_basis: Option<String>,
    pub reference: Option<String>,
    pub cross_border: bool,
    pub at: DateTime<Utc>,
    pub audit_seq: i64,
    /// When the subject must be told of the transfer, if their consent asks for it.
    pub notice_due: Option<DateTime<Utc>>,
    pub notified_at: Option<DateTime<Utc>>,
}

impl Store {
    /// A subject's disclosures, oldest first.
    pub async fn disclosures(
        &self,
        subject_id: SubjectId,
    ) -> Result<Vec<DisclosureRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, disclosure_id, recipient, purpose, categories, legal_basis, reference, cross_border, at, \
             audit_seq, notice_due, notified_at FROM disclosures WHERE subject_id = $1 ORDER BY at, disclosure_id",
        )
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DisclosureRow {
                    subject_id: crate::subject_id(r, "subject_id")?,
                    disclosure_id: r.try_get("disclosure_id")?,
                    recipient: r.try_get("recipient")?,
                    purpose: r.try_get("purpose")?,
                    categories: r.try_get("categories")?,
                    legal_basis: r.try_get("legal_basis")?,
                    reference: r.try_get("reference")?,
                    cross_border: r.try_get::<i64, _>("cross_border")? != 0,
                    at: crate::time(r, "at")?,
                    audit_seq: r.try_get("audit_seq")?,
                    notice_due: crate::time_opt(r, "notice_due")?,
                    notified_at: crate::time_opt(r, "notified_at")?,
                })
            })
            .collect()
    }
}

impl Write {
    /// Record a disclosure; its legal basis and reference arrive as sealed
    /// notes. Its `audit_seq` is set at commit to the sequence number of the
    /// first audit record of this unit — the decision that permitted it — so
    /// a disclosure and its permit are durable together or not at all; a
    /// unit with a disclosure and no audit record does not commit.
    pub async fn insert_disclosure(
        &mut self,
        d: &DisclosureRow,
        notes: &[crate::NoteRow],
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        sqlx::query(
            "INSERT INTO disclosures (subject_id, disclosure_id, recipient, purpose, categories, legal_basis, reference, \
             cross_border, at, audit_seq, notice_due, notified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(d.subject_id.to_string())
        .bind(&d.disclosure_id)
        .bind(&d.recipient)
        .bind(&d.purpose)
        .bind(&d.categories)
        .bind(d.legal_basis.clone())
        .bind(d.reference.clone())
        .bind(i64::from(d.cross_border))
        .bind(crate::us(d.at))
        .bind(d.audit_seq)
        .bind(d.notice_due.map(crate::us))
        .bind(d.notified_at.map(crate::us))
        .execute(&mut **tx)
        .await?;
        Store::insert_notes_in(tx, notes).await?;
        self.stamp_disclosures.push(d.disclosure_id.clone());
        Ok(())
    }
}
