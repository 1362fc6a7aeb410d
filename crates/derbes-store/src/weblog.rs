//! Usage statistics: cells merged in (one transaction with the checkpoint
//! of the input that produced them), cells read back.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, Write};

/// One stored cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeblogCell {
    pub day: String,
    pub dim: String,
    pub value: String,
    pub requests: i64,
    pub visitors: Vec<u8>,
}

/// How two stored visitor sets combine (the weblog crate's union).
pub type MergeVisitors<'a> = &'a (dyn Fn(&[u8], &[u8]) -> Option<Vec<u8>> + Sync);

/// Where the ingest of a log source got to: the file it read (its
/// identity) and the byte offset reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeblogPosition {
    pub identity: String,
    pub position: i64,
}

impl Store {
    /// Cells of days `from..=to` (ISO dates; open when `None`), of `dim`
    /// and the totals, or of every dimension.
    pub async fn weblog_cells(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        dim: Option<&str>,
    ) -> Result<Vec<WeblogCell>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, dim, value, requests, visitors FROM weblog_cells \
             WHERE day >= $1 AND day <= $2 AND ($3 = '' OR dim = $3 OR dim = 'total') ORDER BY day, dim, value",
        )
        .bind(from.unwrap_or("0000-00-00"))
        .bind(to.unwrap_or("9999-99-99"))
        .bind(dim.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WeblogCell {
                    day: r.try_get("day")?,
                    dim: r.try_get("dim")?,
                    value: r.try_get("value")?,
                    requests: r.try_get("requests")?,
                    visitors: r.try_get("visitors")?,
                })
            })
            .collect()
    }

    /// Where the ingest of `source` got to.
    pub async fn weblog_checkpoint(
        &self,
        source: &str,
    ) -> Result<Option<WeblogPosition>, StoreError> {
        let r = sqlx::query("SELECT identity, position FROM weblog_checkpoints WHERE source = $1")
            .bind(source)
            .fetch_optional(&self.pool)
            .await?;
        match r {
            None => Ok(None),
            Some(r) => Ok(Some(WeblogPosition {
                identity: r.try_get("identity")?,
                position: r.try_get("position")?,
            })),
        }
    }
}

impl Write {
    /// Add `cells` to what is stored (requests summed, visitors united by
    /// `merge`) and, in the same transaction, record `checkpoints`
    /// (source, identity, position): all or none.
    pub async fn weblog_merge(
        &mut self,
        cells: &[WeblogCell],
        merge: MergeVisitors<'_>,
        checkpoints: &[(&str, &str, i64)],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        for c in cells {
            let old = sqlx::query(
                "SELECT requests, visitors FROM weblog_cells WHERE day = $1 AND dim = $2 AND value = $3",
            )
            .bind(&c.day)
            .bind(&c.dim)
            .bind(&c.value)
            .fetch_optional(&mut **tx)
            .await?;
            let (requests, visitors) = match old {
                None => (c.requests, c.visitors.clone()),
                Some(r) => {
                    let old_visitors: Vec<u8> = r.try_get("visitors")?;
                    let merged = merge(&old_visitors, &c.visitors).ok_or_else(|| {
                        StoreError::Corrupt(format!("weblog cell {} {}", c.day, c.dim))
                    })?;
                    (r.try_get::<i64, _>("requests")? + c.requests, merged)
                }
            };
            sqlx::query(
                "INSERT INTO weblog_cells (day, dim, value, requests, visitors) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (day, dim, value) DO UPDATE SET requests = excluded.requests, visitors = excluded.visitors",
            )
            .bind(&c.day)
            .bind(&c.dim)
            .bind(&c.value)
            .bind(requests)
            .bind(visitors)
            .execute(&mut **tx)
            .await?;
        }
        for (source, identity, position) in checkpoints {
            sqlx::query(
                "INSERT INTO weblog_checkpoints (source, identity, position, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (source) DO UPDATE SET identity = excluded.identity, position = excluded.position, updated_at = excluded.updated_at",
            )
            .bind(source)
            .bind(identity)
            .bind(position)
            .bind(crate::us(at))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}
