//! Schema migrations, one SQL file per backend and version, applied in order
//! at start-up inside one transaction per migration. Safe against two
//! processes starting at once: SQLite takes the write lock up front
//! (`BEGIN IMMEDIATE`), PostgreSQL a transaction-scoped advisory lock.

use sqlx::Row;

use crate::{Backend, Store, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_policy_versions"),
    migration!(2, "0002_subjects_and_consents"),
    migration!(3, "0003_audit_and_disclosures"),
    migration!(4, "0004_requests"),
    migration!(5, "0005_contact_optouts"),
    migration!(6, "0006_obligations_jobs_certificates"),
    migration!(7, "0007_minor_bar"),
    migration!(8, "0008_retention"),
    migration!(9, "0009_weblog"),
    migration!(10, "0010_promises"),
    migration!(11, "0011_key_state"),
    migration!(12, "0012_outbox"),
    migration!(13, "0013_subject_sessions"),
    migration!(14, "0014_staff_lang"),
    migration!(15, "0015_imports"),
    migration!(16, "0016_consent_terms"),
    migration!(17, "0017_consent_terms_index"),
    migration!(18, "0018_audit_groups"),
];

/// Arbitrary constant naming derbes' migration lock in PostgreSQL.
const PG_LOCK_KEY: i64 = 0x6465_7262_6573; // "derbes"

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

pub(crate) async fn run(store: &Store) -> Result<Vec<i64>, StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS derbes_migrations (\
             version BIGINT NOT NULL PRIMARY KEY, \
             name TEXT NOT NULL, \
             applied_at BIGINT NOT NULL)",
    )
    .execute(&store.pool)
    .await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let mut tx = match store.backend {
            Backend::Sqlite => store.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = store.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        let done = sqlx::query("SELECT COUNT(*) AS n FROM derbes_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>("n")?;
        if done > 0 {
            tx.commit().await?;
            continue;
        }
        let sql = match store.backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO derbes_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(crate::us(chrono::Utc::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_paired() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "{} out of order", m.name);
            last = m.version;
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            assert!(!m.sqlite.trim().is_empty() && !m.postgres.trim().is_empty());
        }
    }
}
