//! Staff bearer tokens, stored as SHA-256 only.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token_id: String,
    pub name: String,
    pub role: String,
    /// The language they chose for their pages (`ru`, `kk`, `en`), if any.
    pub lang: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn token_row(r: &sqlx::any::AnyRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        token_id: r.try_get("token_id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        lang: r.try_get("lang")?,
        created_at: crate::time(r, "created_at")?,
        revoked_at: crate::time_opt(r, "revoked_at")?,
    })
}

impl Store {
    /// The live (not revoked) token with this hash.
    pub async fn token_by_hash(&self, sha256: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(
            "SELECT token_id, name, role, lang, created_at, revoked_at FROM staff_tokens \
             WHERE token_sha256 = $1 AND revoked_at IS NULL",
        )
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_row).transpose()
    }

    /// Every token, oldest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query("SELECT token_id, name, role, lang, created_at, revoked_at FROM staff_tokens ORDER BY created_at, token_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_row).collect()
    }

    pub async fn token_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM staff_tokens")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

impl Write {
    pub async fn insert_token(
        &mut self,
        token_id: &str,
        name: &str,
        role: &str,
        sha256: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO staff_tokens (token_id, name, role, token_sha256, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_id)
            .bind(name)
            .bind(role)
            .bind(sha256)
            .bind(crate::us(at))
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The unrevoked tokens with one of `roles`, locked until this unit
    /// ends (`FOR UPDATE` on PostgreSQL; SQLite's writer is alone), so two
    /// revocations at once cannot both see the other's token as remaining.
    pub async fn lock_active_tokens(&mut self, roles: &[&str]) -> Result<Vec<String>, StoreError> {
        if roles.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=roles.len()).map(|i| format!("${i}")).collect();
        let lock = match self.backend() {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT token_id FROM staff_tokens WHERE revoked_at IS NULL AND role IN ({}) ORDER BY token_id{lock}",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for r in roles {
            q = q.bind(*r);
        }
        let rows = q.fetch_all(self.conn()).await?;
        rows.iter().map(|r| Ok(r.try_get("token_id")?)).collect()
    }

    /// The language a live token's holder chose for their pages (`ru`,
    /// `kk` or `en`; the table refuses any other); NotFound if no live
    /// token has this id.
    pub async fn set_token_lang(&mut self, token_id: &str, lang: &str) -> Result<(), StoreError> {
        let n = sqlx::query(
            "UPDATE staff_tokens SET lang = $2 WHERE token_id = $1 AND revoked_at IS NULL",
        )
        .bind(token_id)
        .bind(lang)
        .execute(self.conn())
        .await?
        .rows_affected();
        match n {
            0 => Err(StoreError::NotFound("staff token")),
            _ => Ok(()),
        }
    }

    /// Revoke a token; `Ok(false)` if it was already revoked, NotFound if unknown.
    pub async fn revoke_token(
        &mut self,
        token_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE staff_tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL",
        )
        .bind(token_id)
        .bind(crate::us(at))
        .execute(self.conn())
        .await?
        .rows_affected();
        if n == 0 {
            let exists = sqlx::query("SELECT 1 AS one FROM staff_tokens WHERE token_id = $1")
                .bind(token_id)
                .fetch_optional(self.conn())
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound("staff token"));
            }
        }
        Ok(n == 1)
    }
}
