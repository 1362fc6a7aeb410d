//! Published versions of the policy, with their content and hash.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use crate::{Store, StoreError, Write};

/// A published policy version (without its content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub version: String,
    pub sha256: String,
    pub published_on: NaiveDate,
    /// When derbes first recorded it.
    pub recorded_at: DateTime<Utc>,
}

/// What [`crate::Write::publish_policy`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Recorded now.
    Published,
    /// The same version with the same content was already recorded.
    AlreadyPublished,
}

fn row_to_version(row: &sqlx::any::AnyRow) -> Result<PolicyVersion, StoreError> {
    let published: String = row.try_get("published_on")?;
    Ok(PolicyVersion {
        version: row.try_get("version")?,
        sha256: row.try_get("sha256")?,
        published_on: NaiveDate::parse_from_str(&published, "%Y-%m-%d")
            .map_err(|_| StoreError::Corrupt("a date out of form in `published_on`".into()))?,
        recorded_at: crate::time(row, "recorded_at")?,
    })
}

impl Store {
    /// Every published version, oldest first.
    pub async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, sha256, published_on, recorded_at FROM policy_versions \
             ORDER BY recorded_at, version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_version).collect()
    }

    /// One version and the file it was published as.
    pub async fn policy_version(
        &self,
        version: &str,
    ) -> Result<Option<(PolicyVersion, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT version, sha256, published_on, recorded_at, content FROM policy_versions \
             WHERE version = $1",
        )
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some((row_to_version(&row)?, row.try_get("content")?))),
        }
    }
}

impl Write {
    /// Record a policy version. Publishing the same version again with the
    /// same content is a no-op; with different content it is refused, because
    /// consents name the version they accepted.
    pub async fn publish_policy(
        &mut self,
        version: &str,
        sha256: &str,
        published_on: NaiveDate,
        content: &str,
    ) -> Result<PublishOutcome, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO policy_versions (version, sha256, published_on, recorded_at, content) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(sha256)
        .bind(published_on.format("%Y-%m-%d").to_string())
        .bind(crate::us(chrono::Utc::now()))
        .bind(content)
        .execute(self.conn())
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(PublishOutcome::Published);
        }
        let existing: String = sqlx::query("SELECT sha256 FROM policy_versions WHERE version = $1")
            .bind(version)
            .fetch_one(self.conn())
            .await?
            .try_get("sha256")?;
        if existing == sha256 {
            Ok(PublishOutcome::AlreadyPublished)
        } else {
            Err(StoreError::PolicyVersionConflict {
                version: version.to_string(),
                existing,
            })
        }
    }
}
