//! Wrapped data keys: how many each KEK wraps, and their rewrapping
//! when the KEK rotates.

use sqlx::Row;

use crate::{Store, StoreError};

impl Store {
    /// How many data keys each KEK wraps.
    pub async fn keys_per_kek(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kek_id, COUNT(*) AS n FROM subject_keys GROUP BY kek_id ORDER BY kek_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kek_id")?, r.try_get("n")?)))
            .collect()
    }

    /// Up to `limit` wrapped keys not under `kek_id`: (subject, kek, wrapped).
    pub async fn keys_not_under(
        &self,
        kek_id: &str,
        limit: i64,
    ) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, kek_id, wrapped FROM subject_keys WHERE kek_id <> $1 ORDER BY subject_id LIMIT $2",
        )
        .bind(kek_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("subject_id")?,
                    r.try_get("kek_id")?,
                    r.try_get("wrapped")?,
                ))
            })
            .collect()
    }

    /// Replace wrapped keys in one transaction, each only if still under its
    /// old KEK (so a concurrent rotation or shred is never overwritten).
    /// Returns how many rows changed.
    pub async fn rewrap_keys(
        &self,
        updates: &[(String, String, String, Vec<u8>)],
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for (subject, old_kek, new_kek, wrapped) in updates {
            n += sqlx::query("UPDATE subject_keys SET kek_id = $1, wrapped = $2 WHERE subject_id = $3 AND kek_id = $4")
                .bind(new_kek)
                .bind(wrapped)
                .bind(subject)
                .bind(old_kek)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
}
