//! Subject sessions: the short-lived tokens of a data subject's own door,
//! stored as SHA-256 only.

use chrono::{DateTime, Utc};
use derbes_core::SubjectId;
use sqlx::Row;

use crate::{Store, StoreError, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub session_id: String,
    pub subject_id: SubjectId,
    pub opened_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "session_id, subject_id, opened_by, created_at, expires_at, revoked_at";

fn session(r: &sqlx::any::AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        session_id: r.try_get("session_id")?,
        subject_id: crate::subject_id(r, "subject_id")?,
        opened_by: r.try_get("opened_by")?,
        created_at: crate::time(r, "created_at")?,
        expires_at: crate::time(r, "expires_at")?,
        revoked_at: crate::time_opt(r, "revoked_at")?,
    })
}

impl Store {
    /// The session with this token hash that is neither revoked nor expired
    /// at `now`, on a subject that is not destroyed.
    pub async fn live_session(
        &self,
        sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM subject_sessions s WHERE token_sha256 = $1 \
             AND revoked_at IS NULL AND expires_at > $2 AND EXISTS \
             (SELECT 1 FROM subjects x WHERE x.subject_id = s.subject_id AND x.status <> 'destroyed')"
        );
        sqlx::query(&sql)
            .bind(sha256)
            .bind(crate::us(now))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(session)
            .transpose()
    }

    /// A subject's sessions, newest first.
    pub async fn sessions(&self, subject: SubjectId) -> Result<Vec<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM subject_sessions WHERE subject_id = $1 ORDER BY created_at DESC, session_id"
        );
        sqlx::query(&sql)
            .bind(subject.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(session)
            .collect()
    }
}

impl Write {
    pub async fn insert_session(
        &mut self,
        row: &SessionRow,
        sha256: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO subject_sessions (session_id, subject_id, token_sha256, opened_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.session_id)
        .bind(row.subject_id.to_string())
        .bind(sha256)
        .bind(&row.opened_by)
        .bind(crate::us(row.created_at))
        .bind(crate::us(row.expires_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Revoke a subject's session; `Ok(false)` when it was revoked already,
    /// NotFound when the subject has no such session.
    pub async fn revoke_session(
        &mut self,
        subject: SubjectId,
        session_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE subject_sessions SET revoked_at = $3 \
             WHERE session_id = $1 AND subject_id = $2 AND revoked_at IS NULL",
        )
        .bind(session_id)
        .bind(subject.to_string())
        .bind(crate::us(at))
        .execute(self.conn())
        .await?
        .rows_affected();
        if n == 0 {
            let exists = sqlx::query(
                "SELECT 1 AS one FROM subject_sessions WHERE session_id = $1 AND subject_id = $2",
            )
            .bind(session_id)
            .bind(subject.to_string())
            .fetch_optional(self.conn())
            .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound("session"));
            }
        }
        Ok(n == 1)
    }
}
