//! Organisations (3.4): not personal data, kept apart from subjects, and
//! the subjects who represent them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::subjects::duplicate_or;
use crate::{Store, StoreError, Write};

/// An organisation as stored: its fields (JSON) and its representatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRow {
    pub fields_json: String,
    pub representatives: Vec<String>,
}

impl Store {
    /// An organisation's fields (JSON) and its representatives.
    pub async fn organization(
        &self,
        organization_id: &str,
    ) -> Result<Option<OrganizationRow>, StoreError> {
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
        Ok(Some(OrganizationRow {
            fields_json: row.try_get("fields")?,
            representatives: reps,
        }))
    }
}

impl Write {
    /// Register an organisation and link its representatives.
    pub async fn insert_organization(
        &mut self,
        organization_id: &str,
        bin: &str,
        fields_json: &str,
        representatives: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.tx();
        let taken = sqlx::query("SELECT 1 AS one FROM organizations WHERE bin = $1")
            .bind(bin)
            .fetch_optional(&mut **tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Duplicate("bin".into()));
        }
        sqlx::query("INSERT INTO organizations (organization_id, bin, fields, created_at) VALUES ($1, $2, $3, $4)")
            .bind(organization_id)
            .bind(bin)
            .bind(fields_json)
            .bind(crate::us(at))
            .execute(&mut **tx)
            .await
            .map_err(|e| duplicate_or(e, "bin"))?;
        for s in representatives {
            let active = sqlx::query(
                "SELECT 1 AS one FROM subjects WHERE subject_id = $1 AND status = 'active'",
            )
            .bind(s)
            .fetch_optional(&mut **tx)
            .await?;
            if active.is_none() {
                return Err(StoreError::NotFound("representative subject"));
            }
            sqlx::query("INSERT INTO organization_representatives (organization_id, subject_id, created_at) VALUES ($1, $2, $3)")
                .bind(organization_id)
                .bind(s)
                .bind(crate::us(at))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
