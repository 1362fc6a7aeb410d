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
    /// The KEK to wrap new data keys under: the one the database names
    /// active (named now, as this keyring's active one, if none is yet),
    /// which this keyring must hold — it is read again from the data
    /// directory when another process rotated.
    pub(crate) async fn wrapping_kek(&self) -> Result<KekId, EngineError> {
        if let Some(k) = self.wrap_kek.read().ok().and_then(|k| k.clone()) {
            return Ok(k);
        }
        let named = match self.store.active_kek().await? {
            Some(k) => k,
            None => {
                let mut w = self.write().await?;
                let k = w
                    .claim_active_kek(self.keyring().active().as_str(), self.now())
                    .await?;
                w.commit().await?;
                k
            }
        };
        let kek = KekId::from_stored(&named);
        if !self.keyring().has(&kek) {
            self.reload_keys()?;
            if !self.keyring().has(&kek) {
                return Err(EngineError::Internal(format!(
                    "the active KEK {named} (named in the database) is not in this keyring"
                )));
            }
        }
        if let Ok(mut k) = self.wrap_kek.write() {
            *k = Some(kek.clone());
        }
        Ok(kek)
    }

    /// A new data key for `owner`, wrapped under the active KEK. The KEK is
    /// found first and the keyring read after it: finding it may load the
    /// keyring again (another process rotated), and a keyring read before
    /// that would not hold it.
    pub(crate) async fn new_data_key(
        &self,
        owner: &str,
    ) -> Result<(derbes_vault::DataKey, WrappedKey), EngineError> {
        let kek = self.wrapping_kek().await?;
        Ok(self.keyring().new_data_key_under(owner, &kek)?)
    }

    /// A write found the active KEK changed (another process rotated).
    pub(crate) fn kek_changed(&self) {
        if let Ok(mut k) = self.wrap_kek.write() {
            *k = None;
        }
    }

    /// A key wrapped under a KEK that is no longer the active one (another
    /// process rotated while it was being stored): wrapped again under the
    /// active one.
    pub(crate) async fn rewrap_for_active(
        &self,
        owner: &str,
        wrapped: &WrappedKey,
    ) -> Result<WrappedKey, EngineError> {
        self.kek_changed();
        let kek = self.wrapping_kek().await?;
        if kek == wrapped.kek {
            return Err(EngineError::Internal(
                "the active KEK changed and changed back while a key was stored".into(),
            ));
        }
        Ok(self.keyring().rewrap_under(owner, wrapped, &kek)?)
    }

    pub async fn key_status(&self) -> Result<KeyStatus, EngineError> {
        // Read again: another process may have rotated.
        self.kek_changed();
        let active = self.wrapping_kek().await?.to_string();
        let ring = self.keyring();
        let counts = self.store.keys_per_kek().await?;
        let ids = ring.kek_ids();
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

    /// Rotate the KEK. The keyring's active KEK (its `keys/active` file, or
    /// `DERBES_MASTER_KEY`) is made the one the database names, if it is
    /// not yet (a rotation whose switch was interrupted, or a new master
    /// key); otherwise, unless keys are still under an older KEK, a new KEK
    /// is created (durable before it is named) and named. From the moment
    /// the database names it every process wraps new keys under it; then
    /// every key under another KEK is re-wrapped, in batches of `batch`,
    /// each a compare-and-swap unit of work, until none is left — keys other
    /// processes wrapped just before the switch included. Safe to
    /// interrupt: every data key is always under a KEK that is still in the
    /// keyring, and running again resumes. `max_batches` stops early (to
    /// test interruption); `progress` is told how many keys are done.
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
        self.reload_keys()?;
        let named = self.wrapping_kek().await?;
        let mut new_kek = None;
        let target = if self.keyring().active() != &named {
            self.keyring().active().clone()
        } else if status.pending_rewrap == 0 {
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
            id
        } else {
            named.clone()
        };
        if target != named {
            let mut w = self.write().await?;
            w.set_active_kek(target.as_str(), self.now()).await?;
            w.commit().await?;
            self.kek_changed();
        }
        let ring = self.keyring();
        let total = self.key_status().await?.pending_rewrap;
        let mut done = 0u64;
        let mut batches = 0u64;
        loop {
            if max_batches.is_some_and(|m| batches >= m) {
                break;
            }
            let rows = self
                .store
                .keys_not_under(target.as_str(), batch.max(1))
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
                let rewrapped = ring.rewrap_under(&row.subject_id, &wrapped, &target)?;
                updates.push(derbes_store::Rewrap {
                    subject_id: row.subject_id,
                    old_kek: row.key.kek_id,
                    key: derbes_store::WrappedKey {
                        kek_id: target.to_string(),
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
        self.audit(Record::new(&crate::Actor::system(crate::SystemJob::Keys), "keys.rotate").details(serde_json::json!({"new_kek": new_kek, "active_kek": target.to_string(), "rewrapped": done, "remaining": remaining})))
        .await?;
        Ok(RotationReport {
            new_kek,
            active_kek: target.to_string(),
            rewrapped: done,
            remaining,
        })
    }

    /// Retire a KEK: refused while it is the active one or any data key is
    /// still wrapped under it (finish the rotation first); otherwise its key
    /// file is overwritten and removed, so old copies of wrapped keys — in
    /// backups — die with it. Audited.
    pub async fn retire_kek(&self, id: &str) -> Result<(), EngineError> {
        let kek = KekId::from_stored(id);
        let status = self.key_status().await?;
        if status.active_kek == id {
            return Err(EngineError::invalid(
                "kek",
                "kek_active",
                "the active KEK cannot be retired; rotate first",
            ));
        }
        let wrapping = status
            .keks
            .iter()
            .find(|k| k.id == id)
            .map_or(0, |k| k.data_keys);
        if wrapping > 0 {
            return Err(EngineError::invalid(
                "kek",
                "kek_in_use",
                format!("{wrapping} data keys are still wrapped under it; run `derbes keys rotate` to finish"),
            ));
        }
        let Some(dir) = &self.data_dir else {
            return Err(EngineError::Internal(
                "retiring a KEK needs a data directory".into(),
            ));
        };
        let mut ring = derbes_vault::Keyring::open(dir, &self.key_env)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        ring.retire(&kek).map_err(|e| match e {
            derbes_vault::KeyringError::NoKeyFile(_) => EngineError::NotFound("KEK key file"),
            e => EngineError::Internal(e.to_string()),
        })?;
        self.replace_keyring(ring);
        self.audit(
            Record::new(&crate::Actor::system(crate::SystemJob::Keys), "keys.retire")
                .details(serde_json::json!({"kek": id})),
        )
        .await?;
        Ok(())
    }
}
