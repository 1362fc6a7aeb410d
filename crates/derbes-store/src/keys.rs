//! Wrapped data keys: how many each KEK wraps, and their rewrapping
//! when the KEK rotates.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Backend, Store, StoreError, WrappedKey, Write};

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
    /// The KEK the database names active, if one was named yet.
    pub async fn active_kek(&self) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT active_kek FROM key_state WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("active_kek"))
            .transpose()
            .map_err(StoreError::from)
    }

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
        if let Some(first) = updates.first() {
            self.require_active_kek(&first.key.kek_id).await?;
        }
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

    /// Name `kek` active unless one is named already; the one named, either way.
    pub async fn claim_active_kek(
        &mut self,
        kek: &str,
        at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO key_state (id, active_kek, changed_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(kek)
        .bind(crate::us(at))
        .execute(self.conn())
        .await?;
        let r = sqlx::query("SELECT active_kek FROM key_state WHERE id = 1")
            .fetch_one(self.conn())
            .await?;
        Ok(r.try_get("active_kek")?)
    }

    /// Name `kek` active (a rotation): every writer from now on wraps under it.
    pub async fn set_active_kek(&mut self, kek: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO key_state (id, active_kek, changed_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET active_kek = excluded.active_kek, changed_at = excluded.changed_at",
        )
        .bind(kek)
        .bind(crate::us(at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A key wrapped under `kek` may be stored only while `kek` is the
    /// active one: checked in the transaction that stores it (on PostgreSQL
    /// holding the row `FOR SHARE`, so a rotation waits for this unit and
    /// every unit after it sees the new KEK). Before any KEK is named, any
    /// is accepted.
    pub(crate) async fn require_active_kek(&mut self, kek: &str) -> Result<(), StoreError> {
        let sql = match self.backend() {
            Backend::Sqlite => ACTIVE_KEK,
            Backend::Postgres => "SELECT active_kek FROM key_state WHERE id = 1 FOR SHARE",
        };
        let active: Option<String> = sqlx::query(sql)
            .fetch_optional(self.conn())
            .await?
            .map(|r| r.try_get("active_kek"))
            .transpose()?;
        kek_is_active(active, kek)
    }
}

/// The KEK the database names active (SQLite: read under the write lock).
const ACTIVE_KEK: &str = "SELECT active_kek FROM key_state WHERE id = 1";

/// `kek` is the one `active` names (or none is named yet).
fn kek_is_active(active: Option<String>, kek: &str) -> Result<(), StoreError> {
    match active {
        Some(active) if active != kek => Err(StoreError::KekChanged { active }),
        _ => Ok(()),
    }
}

/// [`Write::require_active_kek`] on a connection of the store's own,
/// inside a transaction holding SQLite's write lock.
pub(crate) fn lite_require_active_kek(
    conn: &rusqlite::Connection,
    kek: &str,
) -> Result<(), StoreError> {
    use rusqlite::OptionalExtension;
    let active: Option<Option<String>> = conn
        .prepare_cached(ACTIVE_KEK)?
        .query_row([], |r| r.get(0))
        .optional()?;
    kek_is_active(active.flatten(), kek)
}
