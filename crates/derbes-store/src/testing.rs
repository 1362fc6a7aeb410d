//! Throw-away databases for tests: a SQLite file in a temporary directory, or
//! a fresh schema in PostgreSQL that is dropped afterwards.
//!
//! PostgreSQL tests never skip silently: when the server cannot be reached
//! they fail, unless `DERBES_SKIP_POSTGRES=1` is set outside CI (it is
//! ignored when `CI` is set). The server is `DERBES_TEST_DATABASE_URL`,
//! by default `postgres://postgres@127.0.0.1:5432/test`.

// Test support: failing loudly is the point, so panics are allowed here only.
#![allow(clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Store, StoreConfig};

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store that cleans up after itself.
#[derive(Debug)]
pub struct TestDb {
    pub store: Store,
    pub config: StoreConfig,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema { admin_url: String, schema: String },
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The PostgreSQL server tests use.
pub fn admin_url() -> String {
    std::env::var("DERBES_TEST_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_string())
}

/// The `n`th synthetic subject's id.
pub fn audit_subject(n: i64) -> String {
    format!("01900000-0000-7000-8000-00000000000{n}")
}

/// A synthetic decision record: one of three actors, one of five subjects
/// (`audit_subject(i % 5)`), every fourth a denial.
pub fn audit_record(i: i64) -> crate::NewAuditRecord {
    crate::NewAuditRecord {
        at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000 + i)
            .unwrap_or_else(|| panic!("a time")),
        actor: format!("staff-{}", i % 3),
        role: "backend_service".into(),
        action: "decision".into(),
        subject_id: Some(audit_subject(i % 5)),
        purpose: Some("identification".into()),
        categories: "identity,full_name".into(),
        decision: if i % 4 == 0 {
            "deny".into()
        } else {
            "permit".into()
        },
        reasons: r#"[{"code":"permitted"}]"#.into(),
        details: "{}".into(),
        group: None,
    }
}

/// End these PostgreSQL backends (`pg_terminate_backend`, from a
/// connection of the test server's own); how many were ended.
pub async fn terminate_backends(pids: &[i32]) -> usize {
    let admin = Store::open(&StoreConfig::Postgres { url: admin_url() })
        .await
        .unwrap_or_else(|e| panic!("admin: {e}"));
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(p) AS ended FROM unnest(string_to_array($1, ',')::int4[]) AS p) e WHERE ended",
    )
    .bind(pids.iter().map(i32::to_string).collect::<Vec<_>>().join(","))
    .fetch_one(&admin.pool)
    .await
    .unwrap_or_else(|e| panic!("terminate: {e}"));
    admin.close().await;
    ended as usize
}

/// Whether PostgreSQL tests may be skipped (never in CI).
pub fn postgres_skipped() -> bool {
    std::env::var_os("CI").is_none() && std::env::var("DERBES_SKIP_POSTGRES").as_deref() == Ok("1")
}

/// `url` with `search_path` set to `schema` for every connection.
pub fn url_with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

impl TestDb {
    /// A migrated SQLite store in a new temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let config = StoreConfig::sqlite_in(dir.path());
        let store = Store::open_and_migrate(&config)
            .await
            .unwrap_or_else(|e| panic!("sqlite test store: {e}"));
        TestDb {
            store,
            config,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A migrated PostgreSQL store in a new schema; `None` only when skipping
    /// was asked for explicitly.
    pub async fn postgres() -> Option<TestDb> {
        if postgres_skipped() {
            eprintln!("DERBES_SKIP_POSTGRES=1: skipping a PostgreSQL test");
            return None;
        }
        let admin_url = admin_url();
        let schema = format!(
            "derbes_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_subsec_nanos()
        );
        let admin = Store::open(&StoreConfig::Postgres {
            url: admin_url.clone(),
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for the tests and is not reachable ({e}). \
                     Start it (see README) or, outside CI only, set DERBES_SKIP_POSTGRES=1."
            )
        });
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin.pool)
            .await
            .unwrap_or_else(|e| panic!("create test schema: {e}"));
        admin.close().await;
        let config = StoreConfig::Postgres {
            url: url_with_schema(&admin_url, &schema),
        };
        let store = Store::open_and_migrate(&config)
            .await
            .unwrap_or_else(|e| panic!("postgres test store: {e}"));
        Some(TestDb {
            store,
            config,
            cleanup: Cleanup::Schema { admin_url, schema },
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Schema { admin_url, schema } = &self.cleanup {
            let (url, schema) = (admin_url.clone(), schema.clone());
            // Drop runs outside async; a short-lived runtime on its own thread
            // drops the schema even when the test panicked.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(admin) = Store::open(&StoreConfig::Postgres { url }).await {
                        let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&admin.pool)
                            .await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Run an async test body against SQLite and PostgreSQL:
/// `both_backends!(name, path::to::async_fn_taking_store);`
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::testing::TestDb::sqlite().await;
                $body(&db.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::testing::TestDb::postgres().await {
                    $body(&db.store).await;
                }
            }
        }
    };
}

/// Like [`both_backends!`] for tests that take the whole [`TestDb`] (to
/// search its files, say): `both_databases!(name);` runs `name(db)` on
/// SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::testing::TestDb::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::testing::TestDb::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

impl Store {
    /// Every table of the store's schema (PostgreSQL) or file (SQLite).
    pub async fn debug_tables(&self) -> Result<Vec<String>, crate::StoreError> {
        use sqlx::Row;
        let sql = match self.backend {
            crate::Backend::Postgres => {
                "SELECT CAST(table_name AS TEXT) AS t FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
            }
            crate::Backend::Sqlite => {
                "SELECT name AS t FROM sqlite_master WHERE type = 'table' ORDER BY 1"
            }
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("t")?))
            .collect()
    }

    /// Every row of `table` as text (tests search it for plaintext).
    pub async fn debug_dump_table(&self, table: &str) -> Result<String, crate::StoreError> {
        let sql = match self.backend {
            crate::Backend::Postgres => {
                format!("SELECT CAST(t.* AS TEXT) AS row_text FROM {table} t")
            }
            crate::Backend::Sqlite => return Ok(String::new()),
        };
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let mut out = String::new();
        for r in rows {
            use sqlx::Row;
            let t: String = r.try_get("row_text")?;
            out.push_str(&t);
            out.push('\n');
        }
        Ok(out)
    }

    /// Copy one sealed field over another (tests: ciphertext moved elsewhere).
    pub async fn debug_swap_field(
        &self,
        from_subject: &str,
        from_field: &str,
        to_subject: &str,
        to_field: &str,
    ) -> Result<(), crate::StoreError> {
        use sqlx::Row;
        let sealed: Vec<u8> =
            sqlx::query("SELECT sealed FROM subject_fields WHERE subject_id = $1 AND field = $2")
                .bind(from_subject)
                .bind(from_field)
                .fetch_one(&self.pool)
                .await?
                .try_get("sealed")?;
        sqlx::query("UPDATE subject_fields SET sealed = $1 WHERE subject_id = $2 AND field = $3")
            .bind(sealed)
            .bind(to_subject)
            .bind(to_field)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store {
    /// The peer for registration benchmarks: `n` durable commits of one small
    /// row each (one transaction per row, as a registration is), `concurrency`
    /// at a time. Returns the elapsed time.
    pub async fn bench_durable_commits(
        &self,
        n: u64,
        concurrency: u64,
    ) -> Result<std::time::Duration, crate::StoreError> {
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS bench_peer (id TEXT NOT NULL PRIMARY KEY, payload TEXT NOT NULL)")
            .execute(&self.pool)
            .await?;
        let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let start = std::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let (store, next) = (self.clone(), next.clone());
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return Ok::<(), crate::StoreError>(());
                    }
                    let mut w = store.write().await?;
                    sqlx::query("INSERT INTO bench_peer (id, payload) VALUES ($1, $2)")
                        .bind(format!("{}-{i}", std::process::id()))
                        .bind("x".repeat(200))
                        .execute(w.conn())
                        .await?;
                    w.commit().await?;
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| crate::StoreError::Config(e.to_string()))??;
        }
        Ok(start.elapsed())
    }
}

impl Store {
    /// The peer for destruction benchmarks: a subject's rows deleted with
    /// bare SQL in one transaction (no checks, no certificate, no audit).
    pub async fn bench_bare_shred(&self, subject_id: &str) -> Result<(), crate::StoreError> {
        let mut w = self.write().await?;
        for table in [
            "subject_keys",
            "subject_fields",
            "subject_field_history",
            "blind_index",
            "notes",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE subject_id = $1"))
                .bind(subject_id)
                .execute(w.conn())
                .await?;
        }
        sqlx::query("UPDATE subjects SET status = 'destroyed' WHERE subject_id = $1")
            .bind(subject_id)
            .execute(w.conn())
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// Every subject id the database holds (crash tests count what is there,
    /// acknowledged or not).
    pub async fn debug_subject_ids(&self) -> Result<Vec<crate::SubjectId>, crate::StoreError> {
        let rows = sqlx::query("SELECT subject_id FROM subjects ORDER BY subject_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| crate::subject_id(r, "subject_id"))
            .collect()
    }

    /// Run raw SQL (tests that tamper with the database behind derbes' back).
    pub async fn debug_execute(&self, sql: &str) -> Result<u64, crate::StoreError> {
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }

    /// The first column of every row of `sql`, as text (pragmas, settings).
    pub async fn debug_texts(&self, sql: &str) -> Result<Vec<String>, crate::StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| match r.try_get::<String, _>(0) {
                Ok(s) => Ok(s),
                Err(_) => Ok(r.try_get::<i64, _>(0)?.to_string()),
            })
            .collect()
    }
}

impl TestDb {
    /// Every byte the database holds, to search for plaintext: the SQLite
    /// file, WAL and SHM (the pool is closed first so nothing is cached), or
    /// every table of the PostgreSQL schema as text (found in the catalogue,
    /// so a table added later is searched too).
    pub async fn all_bytes(&self) -> Vec<u8> {
        match &self.config {
            StoreConfig::Sqlite { path } => {
                self.store.close().await;
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    if let Ok(bytes) = std::fs::read(format!("{}{suffix}", path.display())) {
                        all.extend(bytes);
                    }
                }
                all
            }
            StoreConfig::Postgres { .. } => {
                let mut all = String::new();
                for table in self
                    .store
                    .debug_tables()
                    .await
                    .unwrap_or_else(|e| panic!("tables: {e}"))
                {
                    all.push_str(
                        &self
                            .store
                            .debug_dump_table(&table)
                            .await
                            .unwrap_or_else(|e| panic!("dump {table}: {e}")),
                    );
                }
                all.into_bytes()
            }
        }
    }
}

/// Whether `needle` is in `hay` as text, or hex-encoded as PostgreSQL prints BYTEA.
pub fn contains_text(hay: &[u8], needle: &str) -> bool {
    let hex: String = needle
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
        || hay.windows(hex.len()).any(|w| w == hex.as_bytes())
}
