//! The unit of work. A change to what derbes holds and everything that must
//! commit with it — its audit record, a destruction certificate, a job's
//! state, a request's step — is one [`Write`]: a transaction the engine
//! composes from the store's pieces and commits once. Dropped without
//! [`Write::commit`], none of it happened; a crash cannot split it.
//!
//! The store's reads are on [`Store`]; every change is a method of
//! [`Write`], so the store never decides where a transaction begins or
//! ends. Audit records join the transaction at commit, under the chain's
//! lock (SQLite's write lock, which a `Write` holds from its start;
//! PostgreSQL's advisory lock, taken last so it is held only for the
//! append and the commit).
//!
//! While a `Write` is open its holder does nothing else with the store: on
//! SQLite a second writer would wait for this one.

use sqlx::{Any, AnyConnection, Transaction};

use crate::{Backend, NewAuditRecord, Store, StoreError};

/// One unit of work; see the module documentation.
pub struct Write {
    tx: Transaction<'static, Any>,
    backend: Backend,
    audit: Vec<NewAuditRecord>,
    /// Disclosures whose `audit_seq` is this unit's first audit record.
    pub(crate) stamp_disclosures: Vec<String>,
    /// Outbox events written: the relay is woken once they commit.
    pub(crate) enqueued: usize,
    signal: std::sync::Arc<tokio::sync::Notify>,
    chain_tail: crate::TailHint,
    /// SQLite: the file, whose checkpointer is told of the commit.
    lite: Option<std::sync::Arc<crate::lite::LiteFile>>,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write")
            .field("backend", &self.backend)
            .field("audit", &self.audit.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Begin a unit of work. On SQLite it takes the write lock up front so
    /// that concurrent writers queue instead of failing to upgrade a lock.
    pub async fn write(&self) -> Result<Write, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Write {
            tx,
            backend: self.backend,
            audit: Vec::new(),
            stamp_disclosures: Vec::new(),
            enqueued: 0,
            signal: self.outbox_signal.clone(),
            chain_tail: self.chain_tail.clone(),
            lite: self.lite.clone(),
        })
    }

    /// Append audit records on their own, one durable transaction (the
    /// engine's group commit of decisions); their sequence numbers.
    pub async fn append_audit(
        &self,
        records: impl Into<Vec<NewAuditRecord>>,
    ) -> Result<Vec<i64>, StoreError> {
        let records = records.into();
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = self.write().await?;
        w.audit = records;
        w.commit().await
    }
}

impl Write {
    /// An audit record that commits with this change.
    pub fn audit(&mut self, record: NewAuditRecord) {
        self.audit.push(record);
    }

    /// Commit the change with its audit records; their sequence numbers.
    pub async fn commit(mut self) -> Result<Vec<i64>, StoreError> {
        let (seqs, tail) = if self.audit.is_empty() {
            (Vec::new(), None)
        } else {
            let records = std::mem::take(&mut self.audit);
            let (seqs, tail) =
                crate::audit::append_in(&mut self.tx, self.backend, &records).await?;
            (seqs, Some(tail))
        };
        if !self.stamp_disclosures.is_empty() {
            let first = *seqs.first().ok_or_else(|| {
                StoreError::Conflict("a disclosure without the audit record of its decision".into())
            })?;
            for id in std::mem::take(&mut self.stamp_disclosures) {
                sqlx::query("UPDATE disclosures SET audit_seq = $1 WHERE disclosure_id = $2")
                    .bind(first)
                    .bind(id)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        self.tx.commit().await?;
        if let Some(lite) = &self.lite {
            lite.committed();
        }
        if let Some(tail) = tail {
            self.chain_tail.saw(tail);
        }
        if self.enqueued > 0 {
            self.signal.notify_waiters();
        }
        Ok(seqs)
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// The transaction, for the store's pieces.
    pub(crate) fn tx(&mut self) -> &mut Transaction<'static, Any> {
        &mut self.tx
    }

    /// The connection, for one statement.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}
