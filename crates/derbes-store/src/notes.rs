//! Notes: free text that may hold personal data, sealed. The store never sees
//! the text; a note arrives sealed under its subject's data key (or, for a
//! note of no subject, under a key of its own that arrives wrapped), and goes
//! when its subject is destroyed.

use sqlx::{Any, Row, Transaction};

use crate::{placeholders, Store, StoreError};

/// A sealed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteRow {
    /// Whose key seals it; empty for a note of no subject.
    pub subject_id: String,
    /// What it belongs to: `request:<id>`, `hold:<id>`, ...
    pub owner: String,
    /// Which text of the owner: `text`, `reason:<state>`, `reference`, ...
    pub name: String,
    pub sealed: Vec<u8>,
    /// A note of no subject: its own data key, wrapped (KEK id, bytes).
    pub wrapped: Option<(String, Vec<u8>)>,
}

impl Store {
    /// Insert notes inside the caller's transaction (a note written again replaces the old).
    pub(crate) async fn insert_notes_in(
        tx: &mut Transaction<'static, Any>,
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        for n in notes {
            sqlx::query("DELETE FROM notes WHERE subject_id = $1 AND owner = $2 AND name = $3")
                .bind(&n.subject_id)
                .bind(&n.owner)
                .bind(&n.name)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO notes (subject_id, owner, name, sealed, kek_id, wrapped) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&n.subject_id)
            .bind(&n.owner)
            .bind(&n.name)
            .bind(&n.sealed)
            .bind(n.wrapped.as_ref().map(|w| w.0.clone()))
            .bind(n.wrapped.as_ref().map(|w| w.1.clone()))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Insert notes in a transaction of their own.
    pub async fn insert_notes(&self, notes: &[NoteRow]) -> Result<(), StoreError> {
        if notes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        Self::insert_notes_in(&mut tx, notes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The notes of these owners (of one subject, or of none: `""`).
    pub async fn notes(
        &self,
        subject_id: &str,
        owners: &[String],
    ) -> Result<Vec<NoteRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in owners.chunks(500) {
            let sql = format!(
                "SELECT subject_id, owner, name, sealed, kek_id, wrapped FROM notes \
                 WHERE subject_id = $1 AND owner IN ({}) ORDER BY owner, name",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(subject_id);
            for o in chunk {
                q = q.bind(o);
            }
            for r in q.fetch_all(&self.pool).await? {
                let kek: Option<String> = r.try_get("kek_id")?;
                let wrapped: Option<Vec<u8>> = r.try_get("wrapped")?;
                out.push(NoteRow {
                    subject_id: r.try_get("subject_id")?,
                    owner: r.try_get("owner")?,
                    name: r.try_get("name")?,
                    sealed: r.try_get("sealed")?,
                    wrapped: kek.zip(wrapped),
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
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// Record a representative; their name and document arrive as sealed notes.
    pub async fn add_representative(
        &self,
        subject_id: &str,
        r: &RepresentativeRow,
        notes: &[NoteRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let active = sqlx::query(
            "SELECT 1 AS one FROM subjects WHERE subject_id = $1 AND status <> 'destroyed'",
        )
        .bind(subject_id)
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_none() {
            return Err(StoreError::NotFound("subject"));
        }
        sqlx::query(
            "INSERT INTO representatives (subject_id, representative_id, basis, valid_from, valid_until, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(subject_id)
        .bind(&r.representative_id)
        .bind(&r.basis)
        .bind(r.valid_from)
        .bind(r.valid_until)
        .bind(r.created_at)
        .execute(&mut *tx)
        .await?;
        Self::insert_notes_in(&mut tx, notes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A subject's representatives, oldest first.
    pub async fn representatives(
        &self,
        subject_id: &str,
    ) -> Result<Vec<RepresentativeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT representative_id, basis, valid_from, valid_until, created_at, revoked_at \
             FROM representatives WHERE subject_id = $1 ORDER BY created_at, representative_id",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RepresentativeRow {
                    representative_id: r.try_get("representative_id")?,
                    basis: r.try_get("basis")?,
                    valid_from: r.try_get("valid_from")?,
                    valid_until: r.try_get("valid_until")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// End a representative's authority; false when it had ended already.
    pub async fn revoke_representative(
        &self,
        subject_id: &str,
        representative_id: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE representatives SET revoked_at = $1 WHERE subject_id = $2 AND representative_id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(subject_id)
        .bind(representative_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }
}
