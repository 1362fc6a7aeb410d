//! Connected systems, the transactional outbox of what they must follow,
//! and notices to subjects as work items.
//!
//! An event is written by the same [`Write`] as the change it reports, so a
//! change and its events commit or vanish together. A request gated by
//! events (its `request_id`) cannot be completed while one of them is
//! unconfirmed: [`Store::transition_in`] refuses, whichever door asks.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{NoteRow, Store, StoreError, SubjectId, Write};

/// A connected system as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemRow {
    pub system_id: String,
    /// The categories of personal data it holds (JSON array).
    pub categories: String,
    /// It delivers the app's notices to users.
    pub sends_notices: bool,
    /// `webhook` or `nats`.
    pub transport: String,
    /// The webhook's URL or the JetStream subject.
    pub target: String,
    /// `delivery` (a 2xx or a JetStream ack confirms) or `callback` (the
    /// system confirms each event when it has followed it).
    pub confirm: String,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// Where an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Delivered; the system has yet to confirm it followed it.
    Delivered,
    /// The system followed it (or an officer confirmed that it did).
    Confirmed,
    /// Delivery gave up: an officer retries it or confirms it by hand.
    Dead,
}

impl EventState {
    pub const ALL: [EventState; 4] = [
        EventState::Pending,
        EventState::Delivered,
        EventState::Confirmed,
        EventState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Delivered => "delivered",
            EventState::Confirmed => "confirmed",
            EventState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<EventState> {
        EventState::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// An event to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: String,
    pub system_id: String,
    pub subject_id: Option<SubjectId>,
    pub kind: String,
    /// The request that completes only once this event is confirmed.
    pub request_id: Option<String>,
    pub notice_id: Option<String>,
    /// The event as delivered (JSON).
    pub payload: String,
    pub due_at: Option<DateTime<Utc>>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub seq: i64,
    pub event_id: String,
    pub system_id: String,
    pub subject_id: Option<SubjectId>,
    pub kind: String,
    pub request_id: Option<String>,
    pub notice_id: Option<String>,
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub state: EventState,
    pub attempts: i64,
    pub next_at: DateTime<Utc>,
    /// A code and a status, never a receiver's body.
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub confirmed_by: Option<String>,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub state: Option<EventState>,
    pub system_id: Option<String>,
    pub subject_id: Option<SubjectId>,
    pub request_id: Option<String>,
    pub limit: i64,
}

/// A notice to a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    pub notice_id: String,
    pub subject_id: SubjectId,
    /// `transfer`, `reconsent` or `breach`.
    pub kind: String,
    /// The disclosure, policy version or breach it is about.
    pub source_id: String,
    pub created_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Its event for the app's sender, if a system sends notices (read
    /// only; not written).
    pub event_id: Option<String>,
}

/// Which notices to list.
#[derive(Debug, Clone, Default)]
pub struct NoticeFilter {
    pub subject_id: Option<SubjectId>,
    pub kind: Option<String>,
    /// Only those not sent.
    pub open: bool,
    /// Only unsent ones due before this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    pub limit: i64,
}

const SYSTEM_COLUMNS: &str =
    "system_id, categories, sends_notices, transport, target, confirm, created_at, removed_at";
const EVENT_COLUMNS: &str = "seq, event_id, system_id, subject_id, kind, request_id, notice_id, payload, created_at, due_at, state, attempts, next_at, last_error, delivered_at, confirmed_at, confirmed_by";
const NOTICE_COLUMNS: &str = "notice_id, subject_id, kind, source_id, created_at, due_at, sent_at";
/// The columns of a listed notice, with its event.
const NOTICE_LISTED: &str = "notice_id, subject_id, kind, source_id, created_at, due_at, sent_at, \
     (SELECT MIN(o.event_id) FROM outbox o WHERE o.notice_id = notices.notice_id) AS event_id";

/// The connected systems (removed ones too when `removed`), by name.
fn systems_sql(removed: bool) -> String {
    let only_connected = if removed {
        ""
    } else {
        " WHERE removed_at IS NULL"
    };
    format!("SELECT {SYSTEM_COLUMNS} FROM systems{only_connected} ORDER BY system_id")
}

fn system_row(r: &AnyRow) -> Result<SystemRow, StoreError> {
    Ok(SystemRow {
        system_id: r.try_get("system_id")?,
        categories: r.try_get("categories")?,
        sends_notices: r.try_get::<i64, _>("sends_notices")? != 0,
        transport: r.try_get("transport")?,
        target: r.try_get("target")?,
        confirm: r.try_get("confirm")?,
        created_at: crate::time(r, "created_at")?,
        removed_at: crate::time_opt(r, "removed_at")?,
    })
}

fn event_row(r: &AnyRow) -> Result<EventRow, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(EventRow {
        seq: r.try_get("seq")?,
        event_id: r.try_get("event_id")?,
        system_id: r.try_get("system_id")?,
        subject_id: crate::subject_id_opt(r, "subject_id")?,
        kind: r.try_get("kind")?,
        request_id: r.try_get("request_id")?,
        notice_id: r.try_get("notice_id")?,
        payload: r.try_get("payload")?,
        created_at: crate::time(r, "created_at")?,
        due_at: crate::time_opt(r, "due_at")?,
        state: EventState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("an outbox state `{state}`")))?,
        attempts: r.try_get("attempts")?,
        next_at: crate::time(r, "next_at")?,
        last_error: r.try_get("last_error")?,
        delivered_at: crate::time_opt(r, "delivered_at")?,
        confirmed_at: crate::time_opt(r, "confirmed_at")?,
        confirmed_by: r.try_get("confirmed_by")?,
    })
}

fn notice_row(r: &AnyRow) -> Result<NoticeRow, StoreError> {
    Ok(NoticeRow {
        notice_id: r.try_get("notice_id")?,
        subject_id: crate::subject_id(r, "subject_id")?,
        kind: r.try_get("kind")?,
        source_id: r.try_get("source_id")?,
        created_at: crate::time(r, "created_at")?,
        due_at: crate::time_opt(r, "due_at")?,
        sent_at: crate::time_opt(r, "sent_at")?,
        event_id: match r.try_get::<Option<String>, _>("event_id") {
            Ok(e) => e,
            // Read without its event (inside a unit of work).
            Err(sqlx::Error::ColumnNotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
    })
}

impl Store {
    /// The connected systems, removed ones too when `removed`.
    pub async fn systems(&self, removed: bool) -> Result<Vec<SystemRow>, StoreError> {
        let rows = sqlx::query(&systems_sql(removed))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(system_row).collect()
    }

    pub async fn event(&self, event_id: &str) -> Result<Option<EventRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM outbox WHERE event_id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(event_row).transpose()
    }

    /// Events matching `f`, in the order they were written.
    pub async fn events(&self, f: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        use crate::select::{text, Select};
        let rows = Select::from("outbox", EVENT_COLUMNS)
            .and("state =", f.state.map(|s| text(s.as_str())))
            .and("system_id =", f.system_id.as_ref().map(text))
            .and("subject_id =", f.subject_id.map(text))
            .and("request_id =", f.request_id.as_ref().map(text))
            .fetch(&self.pool, "seq", f.limit)
            .await?;
        rows.iter().map(event_row).collect()
    }

    /// Events due for delivery at `now`, oldest first; an event waits while
    /// an earlier one of the same system and subject is still pending, so
    /// that each system sees a subject's events in order.
    pub async fn due_events(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM outbox o WHERE o.state = 'pending' AND o.next_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.system_id = o.system_id \
                 AND e.subject_id = o.subject_id AND e.state = 'pending' AND e.seq < o.seq) \
             ORDER BY o.seq LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(crate::us(now))
            .bind(limit.clamp(1, 10_000))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_row).collect()
    }

    /// When the next pending event falls due.
    pub async fn next_event_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query("SELECT MIN(next_at) AS t FROM outbox WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        crate::time_opt(&row, "t")
    }

    /// The events a request still waits for (not confirmed), in order.
    pub async fn awaiting(&self, request_id: &str) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM outbox WHERE request_id = $1 AND state <> 'confirmed' ORDER BY seq"
        ))
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// How many events a request still waits for, inside `tx`.
    pub(crate) async fn unsettled_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        request_id: &str,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE request_id = $1 AND state <> 'confirmed'",
        )
        .bind(request_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?)
    }

    /// Notices matching `f`, the earliest due first.
    pub async fn notices(&self, f: &NoticeFilter) -> Result<Vec<NoticeRow>, StoreError> {
        use crate::select::{text, time, Select};
        let rows = Select::from("notices", NOTICE_LISTED)
            .and("subject_id =", f.subject_id.map(text))
            .and("kind =", f.kind.as_ref().map(text))
            .and_if(f.open || f.overdue_at.is_some(), "sent_at IS NULL")
            .and("due_at <", f.overdue_at.map(time))
            .fetch(
                &self.pool,
                "COALESCE(due_at, created_at), notice_id",
                f.limit,
            )
            .await?;
        rows.iter().map(notice_row).collect()
    }
}

impl Write {
    /// The connected systems, read inside this unit of work.
    pub async fn systems(&mut self) -> Result<Vec<SystemRow>, StoreError> {
        let rows = sqlx::query(&systems_sql(false))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(system_row).collect()
    }

    /// Connect a system; its sealed secret goes in with it.
    pub async fn add_system(&mut self, s: &SystemRow, notes: &[NoteRow]) -> Result<(), StoreError> {
        let tx = self.tx();
        sqlx::query(&format!(
            "INSERT INTO systems ({SYSTEM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&s.system_id)
        .bind(&s.categories)
        .bind(i64::from(s.sends_notices))
        .bind(&s.transport)
        .bind(&s.target)
        .bind(&s.confirm)
        .bind(crate::us(s.created_at))
        .bind(None::<i64>)
        .execute(&mut **tx)
        .await
        .map_err(|e| crate::subjects::duplicate_or(e, "system"))?;
        Store::insert_notes_in(tx, notes).await
    }

    /// Disconnect a system: nothing more is sent to it; what it had not
    /// confirmed is dead, for an officer to confirm by hand. Its secret
    /// goes. Whether it was connected.
    pub async fn remove_system(
        &mut self,
        system_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let tx = self.tx();
        let done = sqlx::query(
            "UPDATE systems SET removed_at = $1 WHERE system_id = $2 AND removed_at IS NULL",
        )
        .bind(crate::us(at))
        .bind(system_id)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            > 0;
        if done {
            sqlx::query(
                "UPDATE outbox SET state = 'dead', last_error = 'system_removed' WHERE system_id = $1 AND state IN ('pending', 'delivered')",
            )
            .bind(system_id)
            .execute(&mut **tx)
            .await?;
            sqlx::query("DELETE FROM notes WHERE subject_id = '' AND owner = $1")
                .bind(format!("system:{system_id}"))
                .execute(&mut **tx)
                .await?;
        }
        Ok(done)
    }

    /// Write events with the change they report.
    pub async fn enqueue(
        &mut self,
        events: &[NewEvent],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.enqueued += events.len();
        let tx = self.tx();
        for chunk in events.chunks(50) {
            let mut sql = String::from(
                "INSERT INTO outbox (event_id, system_id, subject_id, kind, request_id, notice_id, payload, created_at, due_at, state, attempts, next_at) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                sql.push_str(&crate::placeholders(i * 9 + 1, 9));
                // next_at: at once (the creation time).
                sql.push_str(&format!(", 'pending', 0, ${}", i * 9 + 8));
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(&e.event_id)
                    .bind(&e.system_id)
                    .bind(e.subject_id.map(|s| s.to_string()))
                    .bind(&e.kind)
                    .bind(e.request_id.clone())
                    .bind(e.notice_id.clone())
                    .bind(&e.payload)
                    .bind(crate::us(at))
                    .bind(e.due_at.map(crate::us));
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// An event reached its system: `confirmed` when delivery is the
    /// confirmation. The event as it is now, if it was pending.
    pub async fn event_delivered(
        &mut self,
        event_id: &str,
        at: DateTime<Utc>,
        confirmed: bool,
    ) -> Result<Option<EventRow>, StoreError> {
        let (state, confirmed_at, by) = if confirmed {
            (EventState::Confirmed, Some(crate::us(at)), Some("delivery"))
        } else {
            (EventState::Delivered, None, None)
        };
        let tx = self.tx();
        let changed = sqlx::query(
            "UPDATE outbox SET state = $1, attempts = attempts + 1, delivered_at = $2, confirmed_at = $3, confirmed_by = $4, last_error = NULL WHERE event_id = $5 AND state = 'pending'",
        )
        .bind(state.as_str())
        .bind(crate::us(at))
        .bind(confirmed_at)
        .bind(by)
        .bind(event_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        Store::event_in(tx, event_id).await
    }

    /// A delivery attempt failed: tried again at `next_at`, or dead.
    pub async fn event_failed(
        &mut self,
        event_id: &str,
        next_at: DateTime<Utc>,
        error: &str,
        dead: bool,
    ) -> Result<bool, StoreError> {
        let state = if dead { "dead" } else { "pending" };
        Ok(sqlx::query(
            "UPDATE outbox SET state = $1, attempts = attempts + 1, next_at = $2, last_error = $3 WHERE event_id = $4 AND state = 'pending'",
        )
        .bind(state)
        .bind(crate::us(next_at))
        .bind(error)
        .bind(event_id)
        .execute(self.conn())
        .await?
        .rows_affected()
            > 0)
    }

    /// The system (`by` = `callback`) or an officer (their id) confirmed the
    /// event was followed. The event as it is now, if it was not confirmed.
    pub async fn confirm_event(
        &mut self,
        event_id: &str,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        let tx = self.tx();
        let changed = sqlx::query(
            "UPDATE outbox SET state = 'confirmed', confirmed_at = $1, confirmed_by = $2 WHERE event_id = $3 AND state <> 'confirmed'",
        )
        .bind(crate::us(at))
        .bind(by)
        .bind(event_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        Store::event_in(tx, event_id).await
    }

    /// A dead event is tried again from now, its count of attempts reset.
    pub async fn retry_event(
        &mut self,
        event_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_at = $1 WHERE event_id = $2 AND state = 'dead' \
             AND system_id IN (SELECT system_id FROM systems WHERE removed_at IS NULL)",
        )
        .bind(crate::us(at))
        .bind(event_id)
        .execute(self.conn())
        .await?
        .rows_affected()
            > 0)
    }

    /// A request as it is now and how many events it still waits for, its
    /// row locked until this unit of work ends (PostgreSQL; SQLite's write
    /// lock covers it). Whoever decides whether a request completes — the
    /// step that would complete it, the confirmation of its last event —
    /// asks this first, so that of two running at once the second sees the
    /// first's outcome and neither leaves it waiting for nothing.
    pub async fn request_waiting(
        &mut self,
        request_id: &str,
    ) -> Result<Option<(crate::RequestRow, i64)>, StoreError> {
        let lock = match self.backend() {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let tx = self.tx();
        let Some(row) = Store::request_in(tx, request_id, lock).await? else {
            return Ok(None);
        };
        let waiting = Store::unsettled_in(tx, request_id).await?;
        Ok(Some((row, waiting)))
    }

    /// Record notices; a notice already recorded for the same kind, source
    /// and subject is not recorded twice. Which were recorded now.
    pub async fn add_notices(&mut self, notices: &[NoticeRow]) -> Result<Vec<bool>, StoreError> {
        let tx = self.tx();
        let mut fresh = Vec::with_capacity(notices.len());
        for n in notices {
            let done = sqlx::query(&format!(
                "INSERT INTO notices ({NOTICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kind, source_id, subject_id) DO NOTHING"
            ))
            .bind(&n.notice_id)
            .bind(n.subject_id.to_string())
            .bind(&n.kind)
            .bind(&n.source_id)
            .bind(crate::us(n.created_at))
            .bind(n.due_at.map(crate::us))
            .bind(n.sent_at.map(crate::us))
            .execute(&mut **tx)
            .await?
            .rows_affected();
            fresh.push(done > 0);
        }
        Ok(fresh)
    }

    /// A notice's delivery was confirmed: it is sent (and a transfer
    /// notice's disclosure notified).
    pub async fn notice_sent(
        &mut self,
        notice_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        let row = sqlx::query(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE notice_id = $1"
        ))
        .bind(notice_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(n) = row.as_ref().map(notice_row).transpose()? else {
            return Ok(());
        };
        if n.sent_at.is_some() {
            return Ok(());
        }
        sqlx::query("UPDATE notices SET sent_at = $1 WHERE notice_id = $2")
            .bind(crate::us(at))
            .bind(notice_id)
            .execute(&mut **tx)
            .await?;
        if n.kind == "transfer" {
            sqlx::query(
                "UPDATE disclosures SET notified_at = $1 WHERE subject_id = $2 AND disclosure_id = $3 AND notified_at IS NULL",
            )
            .bind(crate::us(at))
            .bind(n.subject_id.to_string())
            .bind(&n.source_id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

impl Store {
    async fn event_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        event_id: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM outbox WHERE event_id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(event_row).transpose()
    }
}
