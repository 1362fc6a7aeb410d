//! Notes: free text that may hold personal data, sealed. The store never sees
//! the text; a note arrives sealed under its subject's data key (or, for a
//! note of no subject, under its owner's key, kept wrapped in `subject_keys`
//! under the owner's id so that key rotation covers it), and goes when its
//! subject is destroyed.

use chrono::{DateTime, Utc};
use sqlx::{Any, Row, Transaction};

use crate::{placeholders, Store, StoreError, SubjectId, Write};

/// A sealed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteRow {
    /// Whose key seals it; none for a note of no subject.
    pub subject_id: Option<SubjectId>,
    /// What it belongs to: `request:<id>`, `hold:<id>`, ...
    pub owner: String,
    /// Which text of the owner: `text`, `reason:<state>`, `reference`, ...
    pub name: String,
    pub sealed: Vec<u8>,
}

/// A request's details (JSON) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDetails {
    pub request_id: String,
    pub subject_id: Option<SubjectId>,
    pub details: String,
}

/// How a note's subject is stored: its id, or empty for a note of no subject.
fn owner_of(subject: Option<SubjectId>) -> String {
    subject.map(|s| s.to_string()).unwrap_or_default()
}

impl Store {
    /// Insert notes inside the caller's transaction (a note written again replaces the old).
    pub(crate) async fn insert_notes_in(
        tx: &mut Transaction<'static, Any>,
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        for n in notes {
            sqlx::query("DELETE FROM notes WHERE subject_id = $1 AND owner = $2 AND name = $3")
                .bind(owner_of(n.subject_id))
                .bind(&n.owner)
                .bind(&n.name)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO notes (subject_id, owner, name, sealed) VALUES ($1, $2, $3, $4)",
            )
            .bind(owner_of(n.subject_id))
            .bind(&n.owner)
            .bind(&n.name)
            .bind(&n.sealed)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// The notes of these owners (of one subject, or of none).
    pub async fn notes(
        &self,
        subject_id: Option<SubjectId>,
        owners: &[String],
    ) -> Result<Vec<NoteRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in owners.chunks(500) {
            let sql = format!(
                "SELECT subject_id, owner, name, sealed FROM notes \
                 WHERE subject_id = $1 AND owner IN ({}) ORDER BY owner, name",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(owner_of(subject_id));
            for o in chunk {
                q = q.bind(o);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(NoteRow {
                    subject_id: crate::subject_id_opt(&r, "subject_id")?,
                    owner: r.try_get("owner")?,
                    name: r.try_get("name")?,
                    sealed: r.try_get("sealed")?,
                });
            }
        }
        Ok(out)
    }
}

/// A legal representative or attorney on record for a subject (clause 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepresentativeRow {
    pub representative_id: String,
    /// `law` (a parent, a guardian) or `power_of_attorney` (the subject is the principal).
    pub basis: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Store {
    /// A subject's representatives, oldest first.
    pub async fn representatives(
        &self,
        subject_id: SubjectId,
    ) -> Result<Vec<RepresentativeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT representative_id, basis, valid_from, valid_until, created_at, revoked_at \
             FROM representatives WHERE subject_id = $1 ORDER BY created_at, representative_id",
        )
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RepresentativeRow {
                    representative_id: r.try_get("representative_id")?,
                    basis: r.try_get("basis")?,
                    valid_from: crate::time(r, "valid_from")?,
                    valid_until: crate::time_opt(r, "valid_until")?,
                    created_at: crate::time(r, "created_at")?,
                    revoked_at: crate::time_opt(r, "revoked_at")?,
                })
            })
            .collect()
    }
}

/// Free text stored in plaintext by a version before notes existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyText {
    /// Where it is: `(table, key)`; [`crate::Write::replace_legacy`] clears it there.
    pub table: &'static str,
    pub key: Vec<String>,
    pub subject_id: Option<SubjectId>,
    pub owner: String,
    pub name: String,
    pub text: String,
}

impl Store {
    /// Every free text an earlier version stored in plaintext.
    pub async fn legacy_texts(&self) -> Result<Vec<LegacyText>, StoreError> {
        let mut out = Vec::new();
        let queries: [(&'static str, &str); 7] = [
            ("requests.state_reason", "SELECT request_id AS k1, '' AS k2, subject_id, 'request:' || request_id AS owner, 'reason:' || state AS name, state_reason AS text FROM requests WHERE state_reason IS NOT NULL AND state_reason <> ''"),
            ("request_events.reason", "SELECT e.request_id AS k1, CAST(e.seq AS TEXT) AS k2, r.subject_id, 'request:' || e.request_id AS owner, 'reason:' || e.to_state AS name, e.reason AS text FROM request_events e JOIN requests r ON r.request_id = e.request_id WHERE e.reason IS NOT NULL AND e.reason <> ''"),
            ("obligations.reference", "SELECT obligation_id AS k1, subject_id AS k2, subject_id, 'obligation:' || obligation_id AS owner, 'reference' AS name, reference AS text FROM obligations WHERE reference <> ''"),
            ("legal_holds.reference", "SELECT hold_id AS k1, '' AS k2, subject_id, 'hold:' || hold_id AS owner, 'reference' AS name, reference AS text FROM legal_holds WHERE reference <> ''"),
            ("disclosures.legal_basis", "SELECT disclosure_id AS k1, subject_id AS k2, subject_id, 'disclosure:' || disclosure_id AS owner, 'legal_basis' AS name, legal_basis AS text FROM disclosures WHERE legal_basis IS NOT NULL AND legal_basis <> ''"),
            ("disclosures.reference", "SELECT disclosure_id AS k1, subject_id AS k2, subject_id, 'disclosure:' || disclosure_id AS owner, 'reference' AS name, reference AS text FROM disclosures WHERE reference IS NOT NULL AND reference <> ''"),
            ("consent_withdrawals.evidence", "SELECT consent_id AS k1, subject_id AS k2, subject_id, 'withdrawal:' || consent_id AS owner, 'evidence' AS name, evidence AS text FROM consent_withdrawals WHERE evidence <> '{}' AND evidence <> ''"),
        ];
        for (table, sql) in queries {
            for r in sqlx::query(sql).fetch_all(&self.pool).await? {
                out.push(LegacyText {
                    table,
                    key: vec![r.try_get("k1")?, r.try_get("k2")?],
                    subject_id: crate::subject_id_opt(&r, "subject_id")?,
                    owner: r.try_get("owner")?,
                    name: r.try_get("name")?,
                    text: r.try_get("text")?,
                });
            }
        }
        Ok(out)
    }

    /// Requests whose details an earlier version stored as free JSON: each
    /// whose details hold more than the codes derbes now keeps there.
    pub async fn request_details(&self) -> Result<Vec<StoredDetails>, StoreError> {
        let rows = sqlx::query(
            "SELECT request_id, subject_id, details FROM requests WHERE details <> '{}'",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredDetails {
                    request_id: r.try_get("request_id")?,
                    subject_id: crate::subject_id_opt(r, "subject_id")?,
                    details: r.try_get("details")?,
                })
            })
            .collect()
    }
}

impl Write {
    /// Insert notes in a transaction of their own.
    pub async fn insert_notes(&mut self, notes: &[NoteRow]) -> Result<(), StoreError> {
        if notes.is_empty() {
            return Ok(());
        }
        let tx = self.tx();
        Store::insert_notes_in(tx, notes).await?;
        Ok(())
    }

    /// Record a representative; their name and document arrive as sealed notes.
    pub async fn add_representative(
        &mut self,
        subject_id: SubjectId,
        r: &RepresentativeRow,
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        let active = sqlx::query(
            "SELECT 1 AS one FROM subjects WHERE subject_id = $1 AND status <> 'destroyed'",
        )
        .bind(subject_id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
        if active.is_none() {
            return Err(StoreError::NotFound("subject"));
        }
        sqlx::query(
            "INSERT INTO representatives (subject_id, representative_id, basis, valid_from, valid_until, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(subject_id.to_string())
        .bind(&r.representative_id)
        .bind(&r.basis)
        .bind(crate::us(r.valid_from))
        .bind(r.valid_until.map(crate::us))
        .bind(crate::us(r.created_at))
        .execute(&mut **tx)
        .await?;
        Store::insert_notes_in(tx, notes).await?;
        Ok(())
    }

    /// End a representative's authority; false when it had ended already.
    pub async fn revoke_representative(
        &mut self,
        subject_id: SubjectId,
        representative_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE representatives SET revoked_at = $1 WHERE subject_id = $2 AND representative_id = $3 AND revoked_at IS NULL",
        )
        .bind(crate::us(at))
        .bind(subject_id.to_string())
        .bind(representative_id)
        .execute(self.conn())
        .await?
        .rows_affected()
            == 1)
    }

    /// Store a legacy text's note and clear its plaintext, together.
    pub async fn replace_legacy(
        &mut self,
        t: &LegacyText,
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        let sql = match t.table {
            "requests.state_reason" => "UPDATE requests SET state_reason = NULL WHERE request_id = $1 AND $2 = $2",
            "request_events.reason" => "UPDATE request_events SET reason = NULL WHERE request_id = $1 AND CAST(seq AS TEXT) = $2",
            "obligations.reference" => "UPDATE obligations SET reference = '' WHERE obligation_id = $1 AND subject_id = $2",
            "legal_holds.reference" => "UPDATE legal_holds SET reference = '' WHERE hold_id = $1 AND $2 = $2",
            "disclosures.legal_basis" => "UPDATE disclosures SET legal_basis = NULL WHERE disclosure_id = $1 AND subject_id = $2",
            "disclosures.reference" => "UPDATE disclosures SET reference = NULL WHERE disclosure_id = $1 AND subject_id = $2",
            "consent_withdrawals.evidence" => "UPDATE consent_withdrawals SET evidence = '{}' WHERE consent_id = $1 AND subject_id = $2",
            _ => return Err(StoreError::Corrupt(format!("no legacy text in {}", t.table))),
        };
        let tx = self.tx();
        Store::insert_notes_in(tx, notes).await?;
        sqlx::query(sql)
            .bind(&t.key[0])
            .bind(&t.key[1])
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Replace a request's details and add its notes, together.
    pub async fn replace_request_details(
        &mut self,
        request_id: &str,
        details: &str,
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        Store::insert_notes_in(tx, notes).await?;
        sqlx::query("UPDATE requests SET details = $1 WHERE request_id = $2")
            .bind(details)
            .bind(request_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The wrapped data key of a note owner of no subject, stored now
    /// under `kek` (which must be the active KEK) unless one exists: the one
    /// stored, either way.
    pub async fn owner_key(
        &mut self,
        owner: &str,
        kek: &str,
        wrapped: &[u8],
        at: DateTime<Utc>,
    ) -> Result<crate::WrappedKey, StoreError> {
        self.require_active_kek(kek).await?;
        sqlx::query(
            "INSERT INTO subject_keys (subject_id, kek_id, wrapped, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject_id) DO NOTHING",
        )
        .bind(owner)
        .bind(kek)
        .bind(wrapped)
        .bind(crate::us(at))
        .execute(self.conn())
        .await?;
        let r = sqlx::query("SELECT kek_id, wrapped FROM subject_keys WHERE subject_id = $1")
            .bind(owner)
            .fetch_one(self.conn())
            .await?;
        Ok(crate::WrappedKey {
            kek_id: r.try_get("kek_id")?,
            wrapped: r.try_get("wrapped")?,
        })
    }
}
