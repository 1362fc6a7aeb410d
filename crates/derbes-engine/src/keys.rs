//! Key status and rotation.

use derbes_vault::{KekId, WrappedKey};
use serde::Serialize;

use crate::audit::Record;
use crate::{Engine, EngineError};

/// What `derbes keys status` shows: no secrets, only ids and counts.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyStatus {
    pub active_kek: String,
    /// `files` or `environment`.
    pub source: String,
    /// Every KEK in the keyring with how many data keys it wraps.
    pub keks: Vec<KekUse>,
    /// Data keys wrapped under a KEK other than the active one (a rotation to finish).
    pub pending_rewrap: i64,
    /// Data keys under a KEK the keyring does not have (unreadable!).
    pub orphaned: i64,
    pub active_subjects: i64,
    pub destroyed_subjects: i64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KekUse {
    pub id: String,
    pub data_keys: i64,
    pub active: bool,
    pub in_keyring: bool,
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotationReport {
    /// The new KEK, when one was created (not when only resuming).
    pub new_kek: Option<String>,
    pub active_kek: String,
    pub rewrapped: u64,
    /// Still under an old KEK (non-zero only when stopped early).
    pub remaining: i64,
}

impl Engine {
    pub async fn key_status(&self) -> Result<KeyStatus, EngineError> {
        let ring = self.keyring();
        let counts = self.store.keys_per_kek().await?;
        let ids = ring.kek_ids();
        let active = ring.active().to_string();
        let mut keks: Vec<KekUse> = ids
            .iter()
            .map(|id| KekUse {
                id: id.to_string(),
                data_keys: counts
                    .iter()
                    .find(|c| c.kek_id == id.as_str())
                    .map(|c| c.keys)
                    .unwrap_or(0),
                active: id.as_str() == active,
                in_keyring: true,
            })
            .collect();
        for c in &counts {
            if !ids.iter().any(|id| id.as_str() == c.kek_id) {
                keks.push(KekUse {
                    id: c.kek_id.clone(),
                    data_keys: c.keys,
                    active: false,
                    in_keyring: false,
                });
            }
        }
        let subjects = self.store.subject_count().await?;
        Ok(KeyStatus {
            pending_rewrap: keks
                .iter()
                .filter(|k| !k.active && k.in_keyring)
                .map(|k| k.data_keys)
                .sum(),
            orphaned: keks
                .iter()
                .filter(|k| !k.in_keyring)
                .map(|k| k.data_keys)
                .sum(),
            active_kek: active,
            source: format!("{:?}", ring.source()).to_lowercase(),
            keks,
            active_subjects: subjects.active,
            destroyed_subjects: subjects.destroyed,
        })
    }

    /// Rotate the KEK: unless a previous rotation is unfinished, create a new
    /// KEK and make it active; then re-wrap every data key under it in batches
    /// of `batch`, each batch one transaction. Safe to interrupt: every data key
    /// is always under a KEK that is still in the keyring, and running again
    /// resumes. `max_batches` stops early (used to test interruption);
    /// `progress` is told how many keys are done.
    pub async fn rotate_keys(
        &self,
        batch: i64,
        max_batches: Option<u64>,
        progress: &(dyn Fn(u64, i64) + Send + Sync),
    ) -> Result<RotationReport, EngineError> {
        let status = self.key_status().await?;
        if status.orphaned > 0 {
            return Err(EngineError::Internal(format!(
                "{} data keys are wrapped under a KEK missing from the keyring; restore it before rotating",
                status.orphaned
            )));
        }
        let mut new_kek = None;
        if status.pending_rewrap == 0 {
            let Some(dir) = &self.data_dir else {
                return Err(EngineError::Internal(
                    "key rotation needs a data directory".into(),
                ));
            };
            let mut ring = derbes_vault::Keyring::open(dir, &self.key_env)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            let id = ring
                .rotate()
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            new_kek = Some(id.to_string());
            self.replace_keyring(ring);
        }
        let ring = self.keyring();
        let active = ring.active().clone();
        let total = self.key_status().await?.pending_rewrap;
        let mut done = 0u64;
        let mut batches = 0u64;
        loop {
            if max_batches.is_some_and(|m| batches >= m) {
                break;
            }
            let rows = self
                .store
                .keys_not_under(active.as_str(), batch.max(1))
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut updates = Vec::with_capacity(rows.len());
            for row in rows {
                let wrapped = WrappedKey {
                    kek: KekId::from_stored(&row.key.kek_id),
                    bytes: row.key.wrapped,
                };
                let rewrapped = ring.rewrap(&row.subject_id, &wrapped)?;
                updates.push(derbes_store::Rewrap {
                    subject_id: row.subject_id,
                    old_kek: row.key.kek_id,
                    key: derbes_store::WrappedKey {
                        kek_id: active.to_string(),
                        wrapped: rewrapped.bytes,
                    },
                });
            }
            let mut w = self.write().await?;
            done += w.rewrap_keys(&updates).await?;
            w.commit().await?;
            batches += 1;
            progress(done, total);
        }
        let remaining = self.key_status().await?.pending_rewrap;
        self.audit(Record::new(&crate::Actor::system(crate::SystemJob::Keys), "keys.rotate").details(serde_json::json!({"new_kek": new_kek, "active_kek": active.to_string(), "rewrapped": done, "remaining": remaining})))
        .await?;
        Ok(RotationReport {
            new_kek,
            active_kek: active.to_string(),
            rewrapped: done,
            remaining,
        })
    }
}
