//! Data-subject requests and their event trail.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{NoteRow, RequestState, Store, StoreError, SubjectId, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub request_id: String,
    pub subject_id: Option<SubjectId>,
    pub kind: String,
    pub channel: String,
    pub requester: String,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub state: RequestState,
    pub state_reason: Option<String>,
    /// JSON, ids and codes only.
    pub details: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEvent {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub from_state: Option<RequestState>,
    pub to_state: RequestState,
    pub reason: Option<String>,
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub state: Option<RequestState>,
    pub kind: Option<String>,
    pub subject_id: Option<SubjectId>,
    /// Only open requests due before this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only open requests (neither completed nor refused).
    pub open: bool,
    /// Only requests due before this instant.
    pub due_before: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Who filed a request and the representative it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filing {
    pub filed_by: Option<String>,
    pub representative_id: Option<String>,
}

const REQUEST_COLUMNS: &str =
    "request_id, subject_id, kind, channel, requester, received_at, due_at, state, state_reason, details, updated_at";

fn request_row(r: &AnyRow) -> Result<RequestRow, StoreError> {
    Ok(RequestRow {
        request_id: r.try_get("request_id")?,
        subject_id: crate::subject_id_opt(r, "subject_id")?,
        kind: r.try_get("kind")?,
        channel: r.try_get("channel")?,
        requester: r.try_get("requester")?,
        received_at: crate::time(r, "received_at")?,
        due_at: crate::time(r, "due_at")?,
        state: crate::request_state(r, "state")?,
        state_reason: r.try_get("state_reason")?,
        details: r.try_get("details")?,
        updated_at: crate::time(r, "updated_at")?,
    })
}

impl Store {
    /// A request read inside `tx`, with `lock` (` FOR UPDATE` or nothing).
    pub(crate) async fn request_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        request_id: &str,
        lock: &str,
    ) -> Result<Option<RequestRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE request_id = $1{lock}"
        ))
        .bind(request_id)
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(request_row).transpose()
    }

    pub async fn request(&self, request_id: &str) -> Result<Option<RequestRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE request_id = $1"
        ))
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(request_row).transpose()
    }

    pub async fn request_events(&self, request_id: &str) -> Result<Vec<RequestEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, from_state, to_state, reason FROM request_events WHERE request_id = $1 ORDER BY seq",
        )
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RequestEvent {
                    seq: r.try_get("seq")?,
                    at: crate::time(r, "at")?,
                    actor: r.try_get("actor")?,
                    from_state: match r.try_get::<Option<String>, _>("from_state")? {
                        None => None,
                        Some(_) => Some(crate::request_state(r, "from_state")?),
                    },
                    to_state: crate::request_state(r, "to_state")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Requests matching `f`, oldest due first.
    pub async fn requests(&self, f: &RequestFilter) -> Result<Vec<RequestRow>, StoreError> {
        use crate::select::{text, time, Select};
        let rows = Select::from("requests", REQUEST_COLUMNS)
            .and("state =", f.state.map(|s| text(s.as_str())))
            .and("kind =", f.kind.as_ref().map(text))
            .and("subject_id =", f.subject_id.map(text))
            .and(
                "state NOT IN ('completed', 'refused') AND due_at <",
                f.overdue_at.map(time),
            )
            .and_if(f.open, "state NOT IN ('completed', 'refused')")
            .and("due_at <", f.due_before.map(time))
            .fetch(&self.pool, "due_at, request_id", f.limit)
            .await?;
        rows.iter().map(request_row).collect()
    }

    /// What the dashboard counts: every open request, and every request
    /// received or finished since `since` — `(state, received, due,
    /// last change)`.
    pub async fn request_times(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(RequestState, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, received_at, due_at, updated_at FROM requests \
             WHERE state NOT IN ('completed', 'refused') OR received_at >= $1 OR updated_at >= $1",
        )
        .bind(crate::us(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    crate::request_state(r, "state")?,
                    crate::time(r, "received_at")?,
                    crate::time(r, "due_at")?,
                    crate::time(r, "updated_at")?,
                ))
            })
            .collect()
    }

    /// Who filed a request (the actor of its first step), and the
    /// representative it names.
    pub async fn request_filing(&self, request_id: &str) -> Result<Filing, StoreError> {
        let r = sqlx::query(
            "SELECT e.actor, r.representative_id FROM requests r \
             LEFT JOIN request_events e ON e.request_id = r.request_id AND e.seq = 1 \
             WHERE r.request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        match r {
            None => Ok(Filing::default()),
            Some(r) => Ok(Filing {
                filed_by: r.try_get("actor")?,
                representative_id: r.try_get("representative_id")?,
            }),
        }
    }

    /// [`crate::Write::transition_request`] inside a transaction.
    pub(crate) async fn transition_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        request_id: &str,
        from: RequestState,
        to: RequestState,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Whichever door completes a request: not while a connected system
        // has yet to confirm it followed (outbox.rs).
        if to == RequestState::Completed {
            let waiting = Store::unsettled_in(tx, request_id).await?;
            if waiting > 0 {
                return Err(StoreError::AwaitingSystems(waiting));
            }
        }
        let changed = sqlx::query(
            "UPDATE requests SET state = $1, state_reason = $2, updated_at = $3 WHERE request_id = $4 AND state = $5",
        )
        .bind(to.as_str())
        .bind(None::<String>)
        .bind(crate::us(at))
        .bind(request_id)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::Conflict("request state".into()));
        }
        let seq: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM request_events WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("next")?;
        sqlx::query(
            "INSERT INTO request_events (request_id, seq, at, actor, from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(request_id)
        .bind(seq)
        .bind(crate::us(at))
        .bind(actor)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(None::<String>)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

impl Write {
    /// Record a new request, its first event and its notes, together.
    pub async fn insert_request(
        &mut self,
        r: &RequestRow,
        actor: &str,
        representative_id: Option<&str>,
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        sqlx::query(&format!(
            "INSERT INTO requests ({REQUEST_COLUMNS}, representative_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&r.request_id)
        .bind(r.subject_id.map(|s| s.to_string()))
        .bind(&r.kind)
        .bind(&r.channel)
        .bind(&r.requester)
        .bind(crate::us(r.received_at))
        .bind(crate::us(r.due_at))
        .bind(r.state.as_str())
        .bind(r.state_reason.clone())
        .bind(&r.details)
        .bind(crate::us(r.updated_at))
        .bind(representative_id)
        .execute(&mut **tx)
        .await?;
        Store::insert_notes_in(tx, notes).await?;
        sqlx::query(
            "INSERT INTO request_events (request_id, seq, at, actor, from_state, to_state, reason) VALUES ($1, 1, $2, $3, NULL, $4, NULL)",
        )
        .bind(&r.request_id)
        .bind(crate::us(r.updated_at))
        .bind(actor)
        .bind(r.state.as_str())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Move a request from `from` to `to`, appending its event and its
    /// sealed note; refused with [`StoreError::Conflict`] if it is no longer
    /// in `from`.
    pub async fn transition_request(
        &mut self,
        request_id: &str,
        from: RequestState,
        to: RequestState,
        actor: &str,
        at: DateTime<Utc>,
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        Store::transition_in(tx, request_id, from, to, actor, at).await?;
        Store::insert_notes_in(tx, notes).await?;
        Ok(())
    }

    /// Replace a request's stored details (derbes' own notes on it).
    pub async fn set_request_details(
        &mut self,
        request_id: &str,
        details: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE requests SET details = $1 WHERE request_id = $2")
            .bind(details)
            .bind(request_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
