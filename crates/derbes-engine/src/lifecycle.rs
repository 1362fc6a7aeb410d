//! The engine's life: opening (storage, migrations, the policy in force
//! published or refused, the keyring, legacy text sealed), readiness, the
//! scheduler's pass, and closing. The server and the binary reach storage
//! only through these — neither names the store.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use derbes_policy::LoadedPolicy;
use derbes_store::{PublishOutcome, Store};
use derbes_vault::KeyEnv;
use serde::Serialize;

pub use derbes_store::{Backend, StoreConfig};

use crate::{Actor, Engine, EngineError, JobsReport};

/// What an engine is opened with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the data lives (SQLite file or PostgreSQL).
    pub storage: StoreConfig,
    /// The policy in force.
    pub policy: LoadedPolicy,
    /// The data directory: the keyring and the statistics' day keys.
    pub data_dir: PathBuf,
    /// Keys given by the environment instead of files.
    pub keys: KeyEnv,
    /// The administrative fee for a copy of one's data (7.11); 0 by default.
    pub access_fee_kzt: u64,
    /// A new window for the statistics' day keys (recorded with them and
    /// then every process's); `None` keeps the recorded one.
    pub key_window_days: Option<u32>,
}

/// What opening did.
#[derive(Debug, Clone, Default)]
pub struct Opened {
    /// The policy version in force was published now (first start with it).
    pub published: bool,
    /// Free text an earlier version stored in plaintext, sealed now.
    pub legacy_texts_sealed: u64,
}

/// A published policy version.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyVersionView {
    pub version: String,
    pub sha256: String,
    /// Publication date (Asia/Almaty).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub published_on: NaiveDate,
    /// When derbes first recorded it.
    pub recorded_at: DateTime<Utc>,
    /// It is the version in force.
    pub current: bool,
}

/// What applying migrations did.
#[derive(Debug, Clone, Serialize)]
pub struct Migrated {
    /// The storage, described without a password.
    pub storage: String,
    /// The versions applied now.
    pub applied: Vec<i64>,
    pub schema_version: i64,
}

/// What one scheduler pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickReport {
    /// The retention purge ran (it was due), and what it destroyed.
    pub purged: Option<crate::PurgeReport>,
    /// Statistics' day keys destroyed because their window closed.
    pub day_keys_closed: usize,
    pub jobs: JobsReport,
    /// An audit checkpoint was signed at this record (one was due).
    pub checkpoint: Option<i64>,
    /// Re-consent notices recorded (7.6).
    pub reconsent_notices: usize,
}

/// Apply the migrations of `storage` and nothing else (`derbes migrate`).
pub async fn migrate(storage: &StoreConfig) -> Result<Migrated, EngineError> {
    if let StoreConfig::Sqlite { path } = storage {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            secure_data_dir(dir)?;
        }
    }
    let store = Store::open(storage).await?;
    let applied = store.migrate().await?;
    let schema_version = store.schema_version().await?;
    store.close().await;
    Ok(Migrated {
        storage: storage.redacted(),
        applied,
        schema_version,
    })
}

/// The policy versions published in `storage`, oldest first, without
/// opening an engine (`derbes policy versions`); none is marked current.
pub async fn published_versions(
    storage: &StoreConfig,
) -> Result<Vec<PolicyVersionView>, EngineError> {
    let store = Store::open_and_migrate(storage).await?;
    let versions = store.policy_versions().await;
    store.close().await;
    Ok(versions?.into_iter().map(|v| view(v, "")).collect())
}

fn view(v: derbes_store::PolicyVersion, current: &str) -> PolicyVersionView {
    PolicyVersionView {
        current: v.sha256 == current,
        recorded_at: v.recorded_at,
        published_on: v.published_on,
        version: v.version,
        sha256: v.sha256,
    }
}

impl Engine {
    /// Open an engine: storage (migrated), the policy in force recorded as a
    /// published version — refused if that version was published with other
    /// content, since consents name the version they accepted —, the
    /// keyring of the data directory, and any free text an earlier version
    /// stored in plaintext sealed before anything else runs.
    pub async fn open(config: EngineConfig) -> Result<(Engine, Opened), EngineError> {
        secure_data_dir(&config.data_dir)?;
        let store = Store::open_and_migrate(&config.storage).await?;
        let p = &config.policy;
        let mut w = store.write().await?;
        let published = match w
            .publish_policy(
                &p.policy().version,
                p.sha256(),
                p.policy().published,
                p.text(),
            )
            .await
        {
            Ok(outcome) => {
                w.commit().await?;
                outcome == PublishOutcome::Published
            }
            Err(e) => {
                drop(w);
                store.close().await;
                return Err(EngineError::Refused(e.to_string()));
            }
        };
        let engine = Engine::over_store(store, config.policy, config.data_dir, &config.keys)?
            .with_access_fee(config.access_fee_kzt)
            .with_key_window(config.key_window_days);
        let legacy_texts_sealed = engine.seal_legacy_text().await?;
        Ok((
            engine,
            Opened {
                published,
                legacy_texts_sealed,
            },
        ))
    }

    /// Storage answers a round trip.
    pub async fn ready(&self) -> Result<(), EngineError> {
        Ok(self.store.ping().await?)
    }

    /// Which database the engine runs on.
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Every published policy version, oldest first.
    pub async fn policy_versions(&self) -> Result<Vec<PolicyVersionView>, EngineError> {
        Ok(self
            .store
            .policy_versions()
            .await?
            .into_iter()
            .map(|v| view(v, self.policy.sha256()))
            .collect())
    }

    /// How many fields are stored (the purge's progress bar).
    pub async fn stored_fields(&self) -> Result<i64, EngineError> {
        Ok(self.store.field_count().await?)
    }

    /// One pass of the scheduler: the retention purge when `purge` (it is
    /// due), the statistics' day keys whose window closed, and every pending
    /// destruction. Each part reports its failure in its own field of the
    /// error; a failed part does not stop the others.
    pub async fn tick(&self, purge: bool) -> Result<TickReport, Vec<(&'static str, EngineError)>> {
        let mut report = TickReport::default();
        let mut failed = Vec::new();
        if purge {
            match self
                .purge(&Actor::system(crate::SystemJob::Purge), false, &|_| {})
                .await
            {
                Ok(r) => report.purged = Some(r),
                Err(e) => failed.push(("retention purge", e)),
            }
        }
        match self.close_weblog_days() {
            Ok(days) => report.day_keys_closed = days.len(),
            Err(e) => failed.push(("closing the statistics' day keys", e)),
        }
        match self.run_jobs().await {
            Ok(r) => report.jobs = r,
            Err(e) => failed.push(("scheduled destructions", e)),
        }
        match self.reconsent_notices_pass(200).await {
            Ok(n) => report.reconsent_notices = n,
            Err(e) => failed.push(("re-consent notices", e)),
        }
        match self.checkpoint_if_due().await {
            Ok(seq) => report.checkpoint = seq,
            Err(e) => failed.push(("signing an audit checkpoint", e)),
        }
        if self
            .expunge_pending
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            if let Err(e) = self.expunge().await {
                failed.push(("expunging old copies", e));
            }
        }
        if failed.is_empty() {
            Ok(report)
        } else {
            Err(failed)
        }
    }

    /// After personal data went: no old copy of it stays in the store (see
    /// `Store::expunge`). A busy store is tried again at the next pass.
    pub(crate) async fn expunge(&self) -> Result<(), EngineError> {
        let done = self.store.expunge().await?;
        self.expunge_pending
            .store(!done, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Close every connection (a command is done).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// The service stops: sign the audit chain's end, then close.
    pub async fn shutdown(&self) {
        match self.checkpoint().await {
            Ok(Some(seq)) => tracing::info!(seq, "audit checkpoint signed"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit checkpoint at shutdown failed"),
        }
        self.close().await;
    }
}

/// The data directory holds the key files, the statistics' day keys and,
/// on SQLite, the database: it is created 0700 (an empty one made by
/// `mkdir` is closed to 0700, nothing having been in it), and on every start
/// it and everything in it must be closed to group and others (directories
/// 0700, files 0600), on every backend — or derbes refuses to start, naming
/// the path and the command that fixes it.
pub(crate) fn secure_data_dir(dir: &std::path::Path) -> Result<(), EngineError> {
    let io = |what: &str, e: std::io::Error| {
        EngineError::Refused(format!("data directory {}: {what}: {e}", dir.display()))
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create it", e))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let empty = std::fs::read_dir(dir)
            .map_err(|e| io("cannot list it", e))?
            .next()
            .is_none();
        if empty {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io("cannot restrict it", e))?;
        }
        let mut pending = vec![dir.to_path_buf()];
        while let Some(path) = pending.pop() {
            let meta = std::fs::symlink_metadata(&path).map_err(|e| io("cannot read it", e))?;
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                if mode & 0o077 != 0 {
                    return Err(open_to_others(&path, mode, "700"));
                }
                for entry in std::fs::read_dir(&path).map_err(|e| io("cannot list it", e))? {
                    pending.push(entry.map_err(|e| io("cannot list it", e))?.path());
                }
            } else if meta.is_file() && mode & 0o077 != 0 {
                return Err(open_to_others(&path, mode, "600"));
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn open_to_others(path: &std::path::Path, mode: u32, want: &str) -> EngineError {
    EngineError::Refused(format!(
        "{} is mode {mode:04o}, open to other users of this machine; it holds keys or \
         personal data and must be {want} (chmod {want} '{}'), then start again",
        path.display(),
        path.display()
    ))
}
