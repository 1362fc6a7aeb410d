//! Subjects, their sealed fields, keys, blind indexes, consents,
//! organisations and staff tokens. The store never sees plaintext personal
//! data: values arrive sealed, identifiers arrive as blind-index digests.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Backend, Store, StoreError};

/// A field as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRow {
    pub field: String,
    pub sealed: Vec<u8>,
    pub source: String,
    pub collected_at: i64,
    /// Comma-separated purpose ids.
    pub purposes: String,
    pub version: i64,
}

/// Everything a registration writes, in one transaction.
#[derive(Debug, Clone)]
pub struct NewSubject {
    pub subject_id: String,
    pub policy_version: String,
    pub created_at: i64,
    pub kek_id: String,
    pub wrapped_key: Vec<u8>,
    pub fields: Vec<FieldRow>,
    /// (kind, digest) pairs: `iin`, `phone`.
    pub index: Vec<(String, Vec<u8>)>,
    pub consents: Vec<NewConsent>,
}

#[derive(Debug, Clone)]
pub struct NewConsent {
    pub consent_id: String,
    pub kind: String,
    pub given_at: i64,
    pub expires_at: Option<i64>,
    pub record_json: String,
    pub receipt_sha256: String,
    /// The SHA-256 of the policy version it accepted.
    pub policy_sha256: String,
}

/// A consent as stored, with its withdrawal if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub subject_id: String,
    pub consent_id: String,
    pub record_json: String,
    pub withdrawn_at: Option<i64>,
}

/// What [`Store::subject_facts`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFactsRows {
    pub subject: SubjectRow,
    pub consents: Vec<ConsentRow>,
    /// `(channel, kind)` of each objection.
    pub objections: Vec<(String, String)>,
    /// A legal hold is open.
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRow {
    pub subject_id: String,
    pub status: String,
    pub created_at: i64,
    pub policy_version: String,
    pub destroyed_at: Option<i64>,
    pub relationship_ended_at: Option<i64>,
}

/// One rectified field: the new value and the old one moved to history.
#[derive(Debug, Clone)]
pub struct Rectification {
    pub new: FieldRow,
    /// The version the caller read; the update fails if it changed meanwhile.
    pub expected_version: Option<i64>,
    pub sealed_reason: Vec<u8>,
    pub keep_until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token_id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn field_row(r: &AnyRow) -> Result<FieldRow, StoreError> {
    Ok(FieldRow {
        field: r.try_get("field")?,
        sealed: r.try_get("sealed")?,
        source: r.try_get("source")?,
        collected_at: r.try_get("collected_at")?,
        purposes: r.try_get("purposes")?,
        version: r.try_get("version")?,
    })
}

fn consent_row(r: &AnyRow) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        subject_id: r.try_get("subject_id")?,
        consent_id: r.try_get("consent_id")?,
        record_json: r.try_get("record")?,
        withdrawn_at: r.try_get("withdrawn_at")?,
    })
}

const CONSENT_SELECT: &str = "SELECT c.subject_id, c.consent_id, c.record, w.withdrawn_at \
     FROM consents c LEFT JOIN consent_withdrawals w \
     ON w.subject_id = c.subject_id AND w.consent_id = c.consent_id";

impl Store {
    /// A write transaction. On SQLite it takes the write lock up front so that
    /// concurrent writers queue instead of failing to upgrade their lock.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    async fn index_owner(
        tx: &mut Transaction<'static, Any>,
        kind: &str,
        digest: &[u8],
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT subject_id FROM blind_index WHERE kind = $1 AND digest = $2")
            .bind(kind)
            .bind(digest)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("subject_id")?),
            None => None,
        })
    }

    async fn insert_field(
        tx: &mut Transaction<'static, Any>,
        subject: &str,
        f: &FieldRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO subject_fields (subject_id, field, sealed, source, collected_at, purposes, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(subject)
        .bind(&f.field)
        .bind(&f.sealed)
        .bind(&f.source)
        .bind(f.collected_at)
        .bind(&f.purposes)
        .bind(f.version)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Register a subject: the subject, its wrapped key, sealed fields, blind
    /// indexes and consents, all or nothing. An identifier already indexed
    /// is refused as [`StoreError::Duplicate`]. Few round trips: the unique
    /// index detects duplicates, fields and consents go in multi-row inserts.
    pub async fn insert_subject(&self, s: &NewSubject) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for (kind, digest) in &s.index {
            let inserted = sqlx::query(
                "INSERT INTO blind_index (kind, digest, subject_id) VALUES ($1, $2, $3) ON CONFLICT (kind, digest) DO NOTHING",
            )
            .bind(kind)
            .bind(digest)
            .bind(&s.subject_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| duplicate_or(e, kind))?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::Duplicate(kind.clone()));
            }
        }
        sqlx::query("INSERT INTO subjects (subject_id, status, created_at, policy_version) VALUES ($1, 'active', $2, $3)")
            .bind(&s.subject_id)
            .bind(s.created_at)
            .bind(&s.policy_version)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO subject_keys (subject_id, kek_id, wrapped, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&s.subject_id)
            .bind(&s.kek_id)
            .bind(&s.wrapped_key)
            .bind(s.created_at)
            .execute(&mut *tx)
            .await?;
        if !s.fields.is_empty() {
            let sql = multi_row_insert(
                "INSERT INTO subject_fields (subject_id, field, sealed, source, collected_at, purposes, version) VALUES ",
                7,
                s.fields.len(),
            );
            let mut q = sqlx::query(&sql);
            for f in &s.fields {
                q = q
                    .bind(&s.subject_id)
                    .bind(&f.field)
                    .bind(&f.sealed)
                    .bind(&f.source)
                    .bind(f.collected_at)
                    .bind(&f.purposes)
                    .bind(f.version);
            }
            q.execute(&mut *tx).await?;
        }
        if !s.consents.is_empty() {
            let sql = multi_row_insert(
                "INSERT INTO consents (subject_id, consent_id, kind, given_at, expires_at, record, receipt_sha256, policy_sha256) VALUES ",
                8,
                s.consents.len(),
            );
            let mut q = sqlx::query(&sql);
            for c in &s.consents {
                q = q
                    .bind(&s.subject_id)
                    .bind(&c.consent_id)
                    .bind(&c.kind)
                    .bind(c.given_at)
                    .bind(c.expires_at)
                    .bind(&c.record_json)
                    .bind(&c.receipt_sha256)
                    .bind(&c.policy_sha256);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit()
            .await
            .map_err(|e| duplicate_or(e, "identifier"))?;
        Ok(())
    }

    /// The subject an identifier's digest belongs to.
    pub async fn lookup(&self, kind: &str, digest: &[u8]) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT subject_id FROM blind_index WHERE kind = $1 AND digest = $2")
            .bind(kind)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("subject_id")?),
            None => None,
        })
    }

    pub async fn subject(&self, subject_id: &str) -> Result<Option<SubjectRow>, StoreError> {
        let row = sqlx::query(
            "SELECT subject_id, status, created_at, policy_version, destroyed_at, relationship_ended_at FROM subjects \
             WHERE subject_id = $1",
        )
        .bind(subject_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(SubjectRow {
                subject_id: r.try_get("subject_id")?,
                status: r.try_get("status")?,
                created_at: r.try_get("created_at")?,
                policy_version: r.try_get("policy_version")?,
                destroyed_at: r.try_get("destroyed_at")?,
                relationship_ended_at: r.try_get("relationship_ended_at")?,
            })),
        }
    }

    /// What a decision needs of a subject, in one round trip: the subject,
    /// every consent with its withdrawal, the objections (channel, kind) and
    /// whether a legal hold is open.
    pub async fn subject_facts(
        &self,
        subject_id: &str,
    ) -> Result<Option<SubjectFactsRows>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.subject_id, s.status, s.created_at, s.policy_version, s.destroyed_at, s.relationship_ended_at, \
                    x.t, x.a, x.b, x.w, x.o \
             FROM subjects s LEFT JOIN ( \
                 SELECT 'c' AS t, c.consent_id AS a, c.record AS b, w.withdrawn_at AS w, c.given_at AS o \
                   FROM consents c LEFT JOIN consent_withdrawals w \
                     ON w.subject_id = c.subject_id AND w.consent_id = c.consent_id \
                  WHERE c.subject_id = $1 \
                 UNION ALL SELECT 'o', channel, kind, NULL, 0 FROM contact_optouts WHERE subject_id = $1 \
                 UNION ALL SELECT 'h', hold_id, NULL, NULL, 0 FROM legal_holds \
                  WHERE subject_id = $1 AND released_at IS NULL \
             ) x ON 1 = 1 \
             WHERE s.subject_id = $1 ORDER BY x.t, x.o, x.a",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut out = SubjectFactsRows {
            subject: SubjectRow {
                subject_id: first.try_get("subject_id")?,
                status: first.try_get("status")?,
                created_at: first.try_get("created_at")?,
                policy_version: first.try_get("policy_version")?,
                destroyed_at: first.try_get("destroyed_at")?,
                relationship_ended_at: first.try_get("relationship_ended_at")?,
            },
            consents: Vec::new(),
            objections: Vec::new(),
            held: false,
        };
        for r in &rows {
            let t: Option<String> = r.try_get("t")?;
            match t.as_deref() {
                Some("c") => out.consents.push(ConsentRow {
                    subject_id: out.subject.subject_id.clone(),
                    consent_id: r.try_get("a")?,
                    record_json: r.try_get("b")?,
                    withdrawn_at: r.try_get("w")?,
                }),
                Some("o") => out.objections.push((r.try_get("a")?, r.try_get("b")?)),
                Some("h") => out.held = true,
                _ => {}
            }
        }
        Ok(Some(out))
    }

    /// Change a subject's status if it is `from` (compare-and-swap); returns
    /// whether it changed. `ends_relationship` stamps `relationship_ended_at`.
    pub async fn set_subject_status(
        &self,
        subject_id: &str,
        from: &str,
        to: &str,
        at: i64,
        ends_relationship: bool,
    ) -> Result<bool, StoreError> {
        let sql = if ends_relationship {
            "UPDATE subjects SET status = $1, relationship_ended_at = COALESCE(relationship_ended_at, $2) WHERE subject_id = $3 AND status = $4"
        } else {
            "UPDATE subjects SET status = $1 WHERE subject_id = $3 AND status = $4 AND $2 = $2"
        };
        let n = sqlx::query(sql)
            .bind(to)
            .bind(at)
            .bind(subject_id)
            .bind(from)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Record objections: `(channel, kind)` pairs; existing ones are kept.
    pub async fn add_optouts(
        &self,
        subject_id: &str,
        pairs: &[(String, String)],
        at: i64,
        request_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for (channel, kind) in pairs {
            sqlx::query(
                "INSERT INTO contact_optouts (subject_id, channel, kind, at, request_id) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (subject_id, channel, kind) DO NOTHING",
            )
            .bind(subject_id)
            .bind(channel)
            .bind(kind)
            .bind(at)
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A subject's objections: `(channel, kind, at, request_id)`.
    pub async fn optouts(
        &self,
        subject_id: &str,
    ) -> Result<Vec<(String, String, i64, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, kind, at, request_id FROM contact_optouts WHERE subject_id = $1 ORDER BY channel, kind",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("channel")?,
                    r.try_get("kind")?,
                    r.try_get("at")?,
                    r.try_get("request_id")?,
                ))
            })
            .collect()
    }

    /// The subject's wrapped data key: (KEK id, bytes).
    pub async fn subject_key(
        &self,
        subject_id: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT kek_id, wrapped FROM subject_keys WHERE subject_id = $1")
            .bind(subject_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some((r.try_get("kek_id")?, r.try_get("wrapped")?))),
        }
    }

    pub async fn subject_fields(&self, subject_id: &str) -> Result<Vec<FieldRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT field, sealed, source, collected_at, purposes, version FROM subject_fields \
             WHERE subject_id = $1 ORDER BY field",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(field_row).collect()
    }

    /// Apply rectifications in one transaction: each old value moves to the
    /// history, the new one replaces it; blind indexes follow (`index`: kind,
    /// new digest). Fails with [`StoreError::Conflict`] if a field changed
    /// since it was read, [`StoreError::Duplicate`] if an identifier is taken.
    pub async fn rectify(
        &self,
        subject_id: &str,
        changes: &[Rectification],
        index: &[(String, Vec<u8>)],
        replaced_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for (kind, digest) in index {
            match Self::index_owner(&mut tx, kind, digest).await? {
                Some(owner) if owner != subject_id => {
                    return Err(StoreError::Duplicate(kind.clone()))
                }
                _ => {}
            }
            sqlx::query("DELETE FROM blind_index WHERE kind = $1 AND subject_id = $2")
                .bind(kind)
                .bind(subject_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO blind_index (kind, digest, subject_id) VALUES ($1, $2, $3)")
                .bind(kind)
                .bind(digest)
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| duplicate_or(e, kind))?;
        }
        for c in changes {
            let old = sqlx::query(
                "SELECT field, sealed, source, collected_at, purposes, version FROM subject_fields \
                 WHERE subject_id = $1 AND field = $2",
            )
            .bind(subject_id)
            .bind(&c.new.field)
            .fetch_optional(&mut *tx)
            .await?;
            let old = match old {
                Some(r) => Some(field_row(&r)?),
                None => None,
            };
            if old.as_ref().map(|o| o.version) != c.expected_version {
                return Err(StoreError::Conflict(c.new.field.clone()));
            }
            if let Some(o) = old {
                sqlx::query(
                    "INSERT INTO subject_field_history (subject_id, field, version, sealed, source, collected_at, \
                     replaced_at, sealed_reason, keep_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(subject_id)
                .bind(&o.field)
                .bind(o.version)
                .bind(&o.sealed)
                .bind(&o.source)
                .bind(o.collected_at)
                .bind(replaced_at)
                .bind(&c.sealed_reason)
                .bind(c.keep_until)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM subject_fields WHERE subject_id = $1 AND field = $2")
                    .bind(subject_id)
                    .bind(&o.field)
                    .execute(&mut *tx)
                    .await?;
            }
            Self::insert_field(&mut tx, subject_id, &c.new).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Previous values of a field, newest first: (version, sealed, sealed reason, replaced_at, keep_until).
    pub async fn field_history(
        &self,
        subject_id: &str,
        field: &str,
    ) -> Result<Vec<(i64, Vec<u8>, Vec<u8>, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, sealed, sealed_reason, replaced_at, keep_until FROM subject_field_history \
             WHERE subject_id = $1 AND field = $2 ORDER BY version DESC",
        )
        .bind(subject_id)
        .bind(field)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("version")?,
                    r.try_get("sealed")?,
                    r.try_get("sealed_reason")?,
                    r.try_get("replaced_at")?,
                    r.try_get("keep_until")?,
                ))
            })
            .collect()
    }

    /// Append a consent: one statement, committed on return.
    pub async fn insert_consent(&self, subject_id: &str, c: &NewConsent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (subject_id, consent_id, kind, given_at, expires_at, record, receipt_sha256, policy_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(subject_id)
        .bind(&c.consent_id)
        .bind(&c.kind)
        .bind(c.given_at)
        .bind(c.expires_at)
        .bind(&c.record_json)
        .bind(&c.receipt_sha256)
        .bind(&c.policy_sha256)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every consent of a subject, oldest first.
    pub async fn consents(&self, subject_id: &str) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "{CONSENT_SELECT} WHERE c.subject_id = $1 ORDER BY c.given_at, c.consent_id"
        ))
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(consent_row).collect()
    }

    pub async fn consent_by_receipt(&self, sha256: &str) -> Result<Option<ConsentRow>, StoreError> {
        let row = sqlx::query(&format!("{CONSENT_SELECT} WHERE c.receipt_sha256 = $1"))
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(consent_row).transpose()
    }

    /// Append a withdrawal. `Ok(false)` when it was already withdrawn;
    /// [`StoreError::NotFound`] when there is no such consent.
    pub async fn withdraw_consent(
        &self,
        subject_id: &str,
        consent_id: &str,
        at: i64,
        evidence: &str,
        notes: &[crate::NoteRow],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let exists =
            sqlx::query("SELECT 1 AS one FROM consents WHERE subject_id = $1 AND consent_id = $2")
                .bind(subject_id)
                .bind(consent_id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound("consent"));
        }
        let done = sqlx::query(
            "INSERT INTO consent_withdrawals (subject_id, consent_id, withdrawn_at, evidence) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject_id, consent_id) DO NOTHING",
        )
        .bind(subject_id)
        .bind(consent_id)
        .bind(at)
        .bind(evidence)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 1 {
            Self::insert_notes_in(&mut tx, notes).await?;
        }
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Register an organisation and link its representatives.
    pub async fn insert_organization(
        &self,
        organization_id: &str,
        bin: &str,
        fields_json: &str,
        representatives: &[String],
        at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("SELECT 1 AS one FROM organizations WHERE bin = $1")
            .bind(bin)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Duplicate("bin".into()));
        }
        sqlx::query("INSERT INTO organizations (organization_id, bin, fields, created_at) VALUES ($1, $2, $3, $4)")
            .bind(organization_id)
            .bind(bin)
            .bind(fields_json)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(|e| duplicate_or(e, "bin"))?;
        for s in representatives {
            let active = sqlx::query(
                "SELECT 1 AS one FROM subjects WHERE subject_id = $1 AND status = 'active'",
            )
            .bind(s)
            .fetch_optional(&mut *tx)
            .await?;
            if active.is_none() {
                return Err(StoreError::NotFound("representative subject"));
            }
            sqlx::query("INSERT INTO organization_representatives (organization_id, subject_id, created_at) VALUES ($1, $2, $3)")
                .bind(organization_id)
                .bind(s)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An organisation's fields (JSON) and its representatives.
    pub async fn organization(
        &self,
        organization_id: &str,
    ) -> Result<Option<(String, Vec<String>)>, StoreError> {
        let row = sqlx::query("SELECT fields FROM organizations WHERE organization_id = $1")
            .bind(organization_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let reps = sqlx::query("SELECT subject_id FROM organization_representatives WHERE organization_id = $1 ORDER BY subject_id")
            .bind(organization_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("subject_id"))
            .collect::<Result<Vec<String>, _>>()?;
        Ok(Some((row.try_get("fields")?, reps)))
    }

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

    pub async fn subject_count(&self) -> Result<(i64, i64), StoreError> {
        let r = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END), 0) AS a, \
             COALESCE(SUM(CASE WHEN status = 'destroyed' THEN 1 ELSE 0 END), 0) AS d FROM subjects",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((r.try_get("a")?, r.try_get("d")?))
    }

    pub async fn insert_token(
        &self,
        token_id: &str,
        name: &str,
        role: &str,
        sha256: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO staff_tokens (token_id, name, role, token_sha256, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_id)
            .bind(name)
            .bind(role)
            .bind(sha256)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The live (not revoked) token with this hash.
    pub async fn token_by_hash(&self, sha256: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(
            "SELECT token_id, name, role, created_at, revoked_at FROM staff_tokens \
             WHERE token_sha256 = $1 AND revoked_at IS NULL",
        )
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(TokenRow {
                token_id: r.try_get("token_id")?,
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })),
        }
    }

    /// Every token, oldest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query("SELECT token_id, name, role, created_at, revoked_at FROM staff_tokens ORDER BY created_at, token_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRow {
                    token_id: r.try_get("token_id")?,
                    name: r.try_get("name")?,
                    role: r.try_get("role")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revoke a token; `Ok(false)` if it was already revoked, NotFound if unknown.
    pub async fn revoke_token(&self, token_id: &str, at: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE staff_tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL",
        )
        .bind(token_id)
        .bind(at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            let exists = sqlx::query("SELECT 1 AS one FROM staff_tokens WHERE token_id = $1")
                .bind(token_id)
                .fetch_optional(&self.pool)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound("staff token"));
            }
        }
        Ok(n == 1)
    }

    pub async fn token_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM staff_tokens")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

/// `prefix (($1, ..., $cols), ($cols+1, ...), ...)` for `rows` rows.
fn multi_row_insert(prefix: &str, cols: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(prefix.len() + rows * cols * 5);
    sql.push_str(prefix);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * cols + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// A unique violation becomes [`StoreError::Duplicate`]; anything else stays.
fn duplicate_or(e: sqlx::Error, kind: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Duplicate(kind.to_string())
        }
        _ => StoreError::Database(e),
    }
}

impl Store {
    /// Active subjects whose latest policy acceptance (not withdrawn) was
    /// given to a version other than `current_sha`, after `after` in id
    /// order: `(subject_id, policy_sha256 accepted)`.
    pub async fn accepted_other_versions(
        &self,
        current_sha: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.subject_id, c.policy_sha256 FROM consents c \
             JOIN subjects s ON s.subject_id = c.subject_id \
             WHERE c.kind = 'policy' AND s.status = 'active' AND c.subject_id > $2 \
               AND COALESCE(c.policy_sha256, '') <> $1 \
               AND NOT EXISTS (SELECT 1 FROM consent_withdrawals w \
                               WHERE w.subject_id = c.subject_id AND w.consent_id = c.consent_id) \
               AND NOT EXISTS (SELECT 1 FROM consents n \
                               WHERE n.subject_id = c.subject_id AND n.kind = 'policy' \
                                 AND (n.given_at > c.given_at OR (n.given_at = c.given_at AND n.consent_id > c.consent_id))) \
             ORDER BY c.subject_id LIMIT $3",
        )
        .bind(current_sha)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let sha: Option<String> = r.try_get("policy_sha256")?;
                Ok((r.try_get("subject_id")?, sha.unwrap_or_default()))
            })
            .collect()
    }
}
