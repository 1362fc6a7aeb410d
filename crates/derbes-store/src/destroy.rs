//! Destruction: the one place where a subject's personal data is deleted
//! for good. Every path that destroys (a destruction or withdrawal request,
//! a minor's report, a withdrawn consent, the retention purge) comes here,
//! and here, inside the transaction that deletes, a blocked subject or one
//! under a legal hold is refused — whatever the caller believed when it
//! decided. The job that ordered the destruction is marked done, the
//! certificate written and the request completed in the same transaction, so
//! each happens exactly when the destruction does.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use sqlx::{Any, Row, Transaction};

use crate::{placeholders, RequestState, Store, StoreError, SubjectId, SubjectStatus, Write};

/// What goes of one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything: the data key, every sealed row, the indexes — crypto-shredding.
    Whole,
    /// Only these fields (with their previous values, and these blind-index
    /// kinds); the data key stays for what is kept.
    Fields {
        fields: Vec<String>,
        index_kinds: Vec<String>,
        /// The subject's status afterwards (`withdrawn` when only what a law
        /// keeps remains), if it changes.
        status_after: Option<SubjectStatus>,
        /// The subject's notes (free text of their requests, holds, ...) go too.
        notes: bool,
    },
}

/// One destruction, with its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destruction {
    pub subject_id: SubjectId,
    pub scope: Scope,
    /// The job that ordered it: marked done in the same transaction.
    pub job_id: Option<String>,
    /// The request it answers: moved from `in_progress` to `completed`.
    pub request_id: Option<String>,
    pub certificate_id: String,
    /// The certificate (JSON, no personal data) and its SHA-256.
    pub certificate: String,
    pub certificate_sha256: String,
    /// What connected systems must follow, written if it is destroyed
    /// (before its request is completed, which they then gate).
    pub events: Vec<crate::NewEvent>,
}

/// What became of one destruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyOutcome {
    /// Done now, with its certificate.
    Destroyed,
    /// The subject is blocked (4.2): nothing happens until unblocked.
    Blocked,
    /// A legal hold is open: nothing happens until it is released.
    Held,
    /// A destruction job of the subject is pending: it destroys, not this.
    Pending,
    /// The job was done already (another runner).
    AlreadyDone,
    /// The subject was destroyed before (or never existed); its job is closed.
    Gone,
}

impl DestroyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DestroyOutcome::Destroyed => "destroyed",
            DestroyOutcome::Blocked => "subject_blocked",
            DestroyOutcome::Held => "legal_hold",
            DestroyOutcome::Pending => "job_pending",
            DestroyOutcome::AlreadyDone => "already_done",
            DestroyOutcome::Gone => "already_destroyed",
        }
    }
}

/// Where a subject stands, read inside the destroying transaction.
struct Standing {
    status: SubjectStatus,
    held: bool,
    pending_job: bool,
}

impl Store {
    /// Status, open holds and pending destruction jobs of `ids`.
    async fn standing_in(
        tx: &mut Transaction<'static, Any>,
        ids: &[SubjectId],
    ) -> Result<HashMap<SubjectId, Standing>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT s.subject_id, s.status, \
                   EXISTS (SELECT 1 FROM legal_holds h WHERE h.subject_id = s.subject_id AND h.released_at IS NULL) AS held, \
                   EXISTS (SELECT 1 FROM jobs j WHERE j.subject_id = s.subject_id AND j.done_at IS NULL) AS pending \
                 FROM subjects s WHERE s.subject_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.to_string());
            }
            for r in q.fetch_all(&mut **tx).await? {
                out.insert(
                    crate::subject_id(&r, "subject_id")?,
                    Standing {
                        status: crate::subject_status(&r, "status")?,
                        held: flag(&r, "held")?,
                        pending_job: flag(&r, "pending")?,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Mark a job done if it was not; whether this call did.
    async fn claim_job_in(
        tx: &mut Transaction<'static, Any>,
        job_id: &str,
        at: DateTime<Utc>,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE jobs SET done_at = $1, outcome = $2 WHERE job_id = $3 AND done_at IS NULL",
        )
        .bind(crate::us(at))
        .bind(outcome)
        .bind(job_id)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1)
    }

    /// Delete some fields of a subject, their previous values and the
    /// blind-index entries of `index_kinds`.
    pub(crate) async fn delete_fields_in(
        tx: &mut Transaction<'static, Any>,
        subject_id: SubjectId,
        fields: &[String],
        index_kinds: &[String],
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        if !fields.is_empty() {
            let list = placeholders(2, fields.len());
            for table in ["subject_fields", "subject_field_history"] {
                let sql =
                    format!("DELETE FROM {table} WHERE subject_id = $1 AND field IN ({list})");
                let mut q = sqlx::query(&sql).bind(subject_id.to_string());
                for f in fields {
                    q = q.bind(f);
                }
                let done = q.execute(&mut **tx).await?.rows_affected();
                if table == "subject_fields" {
                    n += done;
                }
            }
        }
        for kind in index_kinds {
            sqlx::query("DELETE FROM blind_index WHERE subject_id = $1 AND kind = $2")
                .bind(subject_id.to_string())
                .bind(kind)
                .execute(&mut **tx)
                .await?;
        }
        Ok(n)
    }

    /// The destruction itself, set-based, inside the caller's transaction:
    /// keys, sealed rows, history, indexes, representation links and
    /// opt-outs deleted; the subjects become tombstones. Only
    /// [`crate::Write::destroy`] calls it. Returns how many subjects changed.
    pub(crate) async fn shred_many_in(
        tx: &mut Transaction<'static, Any>,
        subject_ids: &[SubjectId],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut changed = 0;
        for chunk in subject_ids.chunks(500) {
            let list = placeholders(2, chunk.len());
            let sql = format!(
                "UPDATE subjects SET status = 'destroyed', destroyed_at = $1 WHERE status <> 'destroyed' AND subject_id IN ({list})"
            );
            let mut update = sqlx::query(&sql).bind(crate::us(at));
            for id in chunk {
                update = update.bind(id.to_string());
            }
            changed += update.execute(&mut **tx).await?.rows_affected();
            let list = placeholders(1, chunk.len());
            for table in [
                "subject_keys",
                "subject_fields",
                "subject_field_history",
                "blind_index",
                "organization_representatives",
                "contact_optouts",
                "notes",
                "representatives",
                "subject_sessions",
            ] {
                let sql = format!("DELETE FROM {table} WHERE subject_id IN ({list})");
                let mut delete = sqlx::query(&sql);
                for id in chunk {
                    delete = delete.bind(id.to_string());
                }
                delete.execute(&mut **tx).await?;
            }
        }
        Ok(changed)
    }
}

/// A boolean column (PostgreSQL) or an integer one (SQLite).
pub(crate) fn flag(r: &sqlx::any::AnyRow, name: &str) -> Result<bool, StoreError> {
    Ok(match r.try_get::<bool, _>(name) {
        Ok(b) => b,
        Err(_) => r.try_get::<i64, _>(name)? != 0,
    })
}

impl Write {
    /// Carry out destructions, all in one transaction; what each came to, in
    /// order. A subject that is blocked, held, or (for a destruction no job
    /// ordered) awaiting its own job is left untouched.
    pub async fn destroy(
        &mut self,
        items: &[Destruction],
        at: DateTime<Utc>,
    ) -> Result<Vec<DestroyOutcome>, StoreError> {
        let tx = self.tx();
        let ids: Vec<SubjectId> = items.iter().map(|d| d.subject_id).collect();
        let standing = Store::standing_in(tx, &ids).await?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut whole = Vec::new();
        let mut done = Vec::new();
        let mut closed = Vec::new();
        for d in items {
            let outcome = match standing.get(&d.subject_id) {
                None => DestroyOutcome::Gone,
                Some(s) if s.status == SubjectStatus::Destroyed => DestroyOutcome::Gone,
                Some(s) if s.status == SubjectStatus::Blocked => DestroyOutcome::Blocked,
                Some(s) if s.held => DestroyOutcome::Held,
                Some(s) if d.job_id.is_none() && s.pending_job => DestroyOutcome::Pending,
                Some(_) => DestroyOutcome::Destroyed,
            };
            let outcome = match (&d.job_id, outcome) {
                // A job whose subject is gone is closed; one blocked or held waits.
                (Some(job), DestroyOutcome::Destroyed | DestroyOutcome::Gone) => {
                    if Store::claim_job_in(tx, job, at, outcome.as_str()).await? {
                        outcome
                    } else {
                        DestroyOutcome::AlreadyDone
                    }
                }
                (_, o) => o,
            };
            if outcome == DestroyOutcome::Gone && d.job_id.is_some() {
                closed.extend(d.request_id.clone());
            }
            if outcome == DestroyOutcome::Destroyed {
                match &d.scope {
                    Scope::Whole => whole.push(d.subject_id),
                    Scope::Fields {
                        fields,
                        index_kinds,
                        status_after,
                        notes,
                    } => {
                        Store::delete_fields_in(tx, d.subject_id, fields, index_kinds).await?;
                        if *notes {
                            sqlx::query("DELETE FROM notes WHERE subject_id = $1")
                                .bind(d.subject_id.to_string())
                                .execute(&mut **tx)
                                .await?;
                        }
                        if let Some(status) = status_after {
                            sqlx::query(
                                "UPDATE subjects SET status = $1, relationship_ended_at = COALESCE(relationship_ended_at, $2) WHERE subject_id = $3",
                            )
                            .bind(status.as_str())
                            .bind(crate::us(at))
                            .bind(d.subject_id.to_string())
                            .execute(&mut **tx)
                            .await?;
                        }
                    }
                }
                done.push(d);
            }
            outcomes.push(outcome);
        }
        Store::shred_many_in(tx, &whole, at).await?;
        let events: Vec<crate::NewEvent> = done.iter().flat_map(|d| d.events.clone()).collect();
        if !events.is_empty() {
            self.enqueue(&events, at).await?;
        }
        let tx = self.tx();
        for chunk in done.chunks(100) {
            let mut sql = String::from(
                "INSERT INTO destruction_certificates (certificate_id, subject_id, request_id, at, content, sha256) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                sql.push_str(&placeholders(i * 6 + 1, 6));
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for d in chunk {
                q = q
                    .bind(&d.certificate_id)
                    .bind(d.subject_id.to_string())
                    .bind(d.request_id.clone())
                    .bind(crate::us(at))
                    .bind(&d.certificate)
                    .bind(&d.certificate_sha256);
            }
            q.execute(&mut **tx).await?;
        }
        for r in done
            .iter()
            .filter_map(|d| d.request_id.as_ref())
            .chain(&closed)
        {
            {
                // Completed now — unless someone closed it meanwhile.
                match Store::transition_in(
                    tx,
                    r,
                    RequestState::InProgress,
                    RequestState::Completed,
                    "system:scheduler",
                    at,
                )
                .await
                {
                    // Or left in progress while connected systems confirm.
                    Ok(()) | Err(StoreError::Conflict(_) | StoreError::AwaitingSystems(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(outcomes)
    }
}
