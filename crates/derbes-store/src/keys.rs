//! Wrapped data keys: how many each KEK wraps, and their rewrapping
//! when the KEK rotates.

use sqlx::Row;

use crate::{Store, StoreError, WrappedKey, Write};

/// How many data keys a key-encryption key wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekCount {
    pub kek_id: String,
    pub keys: i64,
}

/// A subject's wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectKey {
    pub subject_id: String,
    pub key: WrappedKey,
}

/// One key rewrapped: replaced only if still under `old_kek`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrap {
    pub subject_id: String,
    pub old_kek: String,
    pub key: WrappedKey,
}

impl Store {
    /// How many data keys each KEK wraps.
    pub async fn keys_per_kek(&self) -> Result<Vec<KekCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT kek_id, COUNT(*) AS n FROM subject_keys GROUP BY kek_id ORDER BY kek_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KekCount {
                    kek_id: r.try_get("kek_id")?,
                    keys: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Up to `limit` wrapped keys not under `kek_id`.
    pub async fn keys_not_under(
        &self,
        kek_id: &str,
        limit: i64,
    ) -> Result<Vec<SubjectKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, kek_id, wrapped FROM subject_keys WHERE kek_id <> $1 ORDER BY subject_id LIMIT $2",
        )
        .bind(kek_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SubjectKey {
                    subject_id: r.try_get("subject_id")?,
                    key: WrappedKey {
                        kek_id: r.try_get("kek_id")?,
                        wrapped: r.try_get("wrapped")?,
                    },
                })
            })
            .collect()
    }
}

impl Write {
    /// Replace wrapped keys in one transaction, each only if still under its
    /// old KEK (so a concurrent rotation or shred is never overwritten).
    /// Returns how many rows changed.
    pub async fn rewrap_keys(&mut self, updates: &[Rewrap]) -> Result<u64, StoreError> {
        let tx = self.tx();
        let mut n = 0;
        for u in updates {
            n += sqlx::query("UPDATE subject_keys SET kek_id = $1, wrapped = $2 WHERE subject_id = $3 AND kek_id = $4")
                .bind(&u.key.kek_id)
                .bind(&u.key.wrapped)
                .bind(&u.subject_id)
                .bind(&u.old_kek)
                .execute(&mut **tx)
                .await?
                .rows_affected();
        }
        Ok(n)
    }
}
