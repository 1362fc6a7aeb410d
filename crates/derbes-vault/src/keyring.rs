//! Where the keys come from and how they are kept.
//!
//! On disk (the default), the data directory holds `keys/`:
//! - `kek-<id>.key`: one key-encryption key each, 64 hex digits, mode 0600;
//! - `active`: the id of the KEK new data keys are wrapped under;
//! - `index.key`: the blind-index key (never rotated: indexes would change).
//!
//! `DERBES_MASTER_KEY` (64 hex digits) supplies the active KEK instead, and
//! `DERBES_PREVIOUS_MASTER_KEYS` (comma-separated) older ones still needed to
//! re-wrap; `DERBES_INDEX_KEY` the blind-index key. Keys are never logged: a KEK
//! is known by its id, the first 16 hex digits of its SHA-256.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::hmac;
use zeroize::Zeroizing;

use crate::{
    aes_key, hex, open_with, random, seal_with, wrap_aad, DataKey, VaultError, WrappedKey,
};

/// The public name of a KEK.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KekId(String);

impl KekId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accept an id read back from storage.
    pub fn from_stored(s: &str) -> KekId {
        KekId(s.to_string())
    }

    fn of(key: &[u8; 32]) -> KekId {
        let d = ring::digest::digest(&ring::digest::SHA256, key);
        KekId(hex::encode(&d.as_ref()[..8]))
    }
}

impl std::fmt::Display for KekId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the active KEK came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Key files in the data directory.
    Files,
    /// `DERBES_MASTER_KEY`.
    Environment,
    /// In memory only (tests).
    Ephemeral,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("key directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} must be 64 hex digits (32 bytes)")]
    BadKey { what: String },
    #[error("the active key {0} named in keys/active has no key file")]
    MissingActive(String),
    #[error("key file {path} is readable by others (mode {mode:o}); it must be 0600")]
    Permissions { path: String, mode: u32 },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("the active KEK comes from DERBES_MASTER_KEY; to rotate, put the new key there and the old one in DERBES_PREVIOUS_MASTER_KEYS, then re-wrap")]
    EnvironmentManaged,
    #[error("KEK {0} has no key file in this data directory (a KEK from the environment is retired by removing it there)")]
    NoKeyFile(String),
    #[error("KEK {0} is the active one; rotate to a new KEK first")]
    RetireActive(String),
}

struct Kek {
    id: KekId,
    key: ring::aead::LessSafeKey,
}

/// The KEKs, the blind-index key and the audit signing key.
pub struct Keyring {
    keks: Vec<Kek>,
    active: usize,
    index: hmac::Key,
    audit: ring::signature::Ed25519KeyPair,
    source: KeySource,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active().as_str())
            .field(
                "keks",
                &self.keks.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            )
            .field("source", &self.source)
            .finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyringError + '_ {
    move |source| KeyringError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Write `contents` to a new file with mode 0600, durably; fails if it exists.
fn write_secret(path: &Path, contents: &str) -> Result<(), KeyringError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(contents.as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(())
}

/// Create a secret file whole or not at all: written and synced under a
/// temporary name, then linked into place (which fails if the name exists)
/// — a crash never leaves an empty or half-written key file behind.
fn create_secret(path: &Path, contents: &str) -> Result<(), KeyringError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    write_secret(&tmp, contents)?;
    let linked = fs::hard_link(&tmp, path).map_err(io(path));
    let _ = fs::remove_file(&tmp);
    linked?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Replace a small file atomically (write a temporary, fsync, rename, fsync dir).
fn replace_file(path: &Path, contents: &str) -> Result<(), KeyringError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    write_secret(&tmp, contents)?;
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyringError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyringError::Permissions {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), KeyringError> {
    Ok(())
}

/// A key file given by path: private, one hex key.
pub fn read_key_file(path: &Path) -> Result<String, KeyringError> {
    check_private(path)?;
    Ok(fs::read_to_string(path)
        .map_err(io(path))?
        .trim()
        .to_string())
}

fn parse_key(text: &str, what: &str) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
    hex::decode::<32>(text)
        .map(Zeroizing::new)
        .ok_or_else(|| KeyringError::BadKey {
            what: what.to_string(),
        })
}

fn kek(bytes: &[u8; 32]) -> Result<Kek, KeyringError> {
    Ok(Kek {
        id: KekId::of(bytes),
        key: aes_key(bytes)?,
    })
}

/// Environment inputs, read by the caller so that this crate stays testable.
#[derive(Debug, Default, Clone)]
pub struct KeyEnv {
    pub master_key: Option<String>,
    pub previous_master_keys: Option<String>,
    pub index_key: Option<String>,
}

impl KeyEnv {
    /// `DERBES_MASTER_KEY` (or `DERBES_MASTER_KEY_FILE`, a file holding it,
    /// which must be mode 0600), `DERBES_PREVIOUS_MASTER_KEYS`,
    /// `DERBES_INDEX_KEY`.
    pub fn from_process() -> Result<KeyEnv, KeyringError> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let master_key = match (get("DERBES_MASTER_KEY"), get("DERBES_MASTER_KEY_FILE")) {
            (Some(k), _) => Some(k),
            (None, Some(path)) => Some(read_key_file(Path::new(&path))?),
            (None, None) => None,
        };
        Ok(KeyEnv {
            master_key,
            previous_master_keys: get("DERBES_PREVIOUS_MASTER_KEYS"),
            index_key: get("DERBES_INDEX_KEY"),
        })
    }
}

impl Keyring {
    /// A keyring that lives only in memory (tests, benchmarks).
    pub fn ephemeral() -> Keyring {
        // The system generator failing is not recoverable in a test.
        let (k, i) = match (random::<32>(), random::<32>()) {
            (Ok(k), Ok(i)) => (k, i),
            _ => (Zeroizing::new([7u8; 32]), Zeroizing::new([9u8; 32])),
        };
        let Ok(kek) = kek(&k) else {
            unreachable_keyring()
        };
        let Ok(audit) = new_audit_key().map(|(k, _)| k) else {
            unreachable_keyring()
        };
        Keyring {
            keks: vec![kek],
            active: 0,
            index: hmac::Key::new(hmac::HMAC_SHA256, &i[..]),
            audit,
            source: KeySource::Ephemeral,
            dir: None,
        }
    }

    /// Open the keyring of a data directory, creating keys on first start.
    pub fn open(data_dir: &Path, env: &KeyEnv) -> Result<Keyring, KeyringError> {
        let dir = data_dir.join("keys");
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
            }
        }
        // KEK files.
        let mut keks = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("kek-") && name.ends_with(".key") {
                check_private(&path)?;
                let text = Zeroizing::new(fs::read_to_string(&path).map_err(io(&path))?);
                keks.push(kek(&*parse_key(
                    &text,
                    &format!("key file {}", path.display()),
                )?)?);
            }
        }
        keks.sort_by(|a, b| a.id.cmp(&b.id));
        let mut source = KeySource::Files;
        let active_id = if let Some(m) = &env.master_key {
            let k = kek(&*parse_key(m, "DERBES_MASTER_KEY")?)?;
            let id = k.id.clone();
            keks.retain(|x| x.id != id);
            keks.push(k);
            source = KeySource::Environment;
            id
        } else {
            let active_path = dir.join("active");
            if active_path.exists() {
                KekId(
                    fs::read_to_string(&active_path)
                        .map_err(io(&active_path))?
                        .trim()
                        .to_string(),
                )
            } else if let Some(first) = keks.first() {
                let id = first.id.clone();
                replace_file(&active_path, id.as_str())?;
                id
            } else {
                // First start: a new KEK, written before it is named active.
                let bytes = random::<32>()?;
                let k = kek(&bytes)?;
                let id = k.id.clone();
                create_secret(&dir.join(format!("kek-{id}.key")), &hex::encode(&bytes[..]))?;
                replace_file(&active_path, id.as_str())?;
                keks.push(k);
                id
            }
        };
        if let Some(prev) = &env.previous_master_keys {
            for (i, p) in prev
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .enumerate()
            {
                let k = kek(&*parse_key(
                    p,
                    &format!("DERBES_PREVIOUS_MASTER_KEYS entry {}", i + 1),
                )?)?;
                if !keks.iter().any(|x| x.id == k.id) {
                    keks.push(k);
                }
            }
        }
        let active = keks
            .iter()
            .position(|k| k.id == active_id)
            .ok_or_else(|| KeyringError::MissingActive(active_id.0.clone()))?;
        // Blind-index key.
        let index_bytes = match &env.index_key {
            Some(k) => parse_key(k, "DERBES_INDEX_KEY")?,
            None => {
                let path = dir.join("index.key");
                if path.exists() {
                    check_private(&path)?;
                    let text = Zeroizing::new(fs::read_to_string(&path).map_err(io(&path))?);
                    parse_key(&text, "keys/index.key")?
                } else {
                    let bytes = random::<32>()?;
                    create_secret(&path, &hex::encode(&bytes[..]))?;
                    bytes
                }
            }
        };
        // Audit checkpoint signing key (Ed25519, PKCS#8), beside the KEK.
        let audit_path = dir.join("audit.ed25519");
        let audit = if audit_path.exists() {
            check_private(&audit_path)?;
            let text = Zeroizing::new(fs::read_to_string(&audit_path).map_err(io(&audit_path))?);
            let der = hex_vec(&text).ok_or_else(|| KeyringError::BadKey {
                what: "keys/audit.ed25519".into(),
            })?;
            ring::signature::Ed25519KeyPair::from_pkcs8(&der).map_err(|_| KeyringError::BadKey {
                what: "keys/audit.ed25519".into(),
            })?
        } else {
            let (pair, der) = new_audit_key()?;
            create_secret(&audit_path, &hex::encode(&der))?;
            pair
        };
        Ok(Keyring {
            keks,
            active,
            index: hmac::Key::new(hmac::HMAC_SHA256, &index_bytes[..]),
            audit,
            source,
            dir: Some(dir),
        })
    }

    /// The KEK new data keys are wrapped under.
    pub fn active(&self) -> &KekId {
        &self.keks[self.active].id
    }

    /// Every KEK the keyring holds.
    pub fn kek_ids(&self) -> Vec<KekId> {
        self.keks.iter().map(|k| k.id.clone()).collect()
    }

    pub fn source(&self) -> KeySource {
        self.source
    }

    /// A fresh data key for `subject`, and the same key wrapped for storage
    /// under the active KEK.
    pub fn new_data_key(&self, subject: &str) -> Result<(DataKey, WrappedKey), VaultError> {
        self.new_data_key_under(subject, self.active())
    }

    /// A fresh data key for `subject`, wrapped under the KEK `kek` (the one
    /// the database names active, which another process may have rotated
    /// to since this keyring was read).
    pub fn new_data_key_under(
        &self,
        subject: &str,
        kek: &KekId,
    ) -> Result<(DataKey, WrappedKey), VaultError> {
        let bytes = random::<32>()?;
        let kek = self.kek_of(kek)?;
        let wrapped = seal_with(&kek.key, &wrap_aad(subject, &kek.id), &bytes[..])?;
        Ok((
            DataKey::from_bytes(&bytes)?,
            WrappedKey {
                kek: kek.id.clone(),
                bytes: wrapped,
            },
        ))
    }

    /// Whether the keyring holds this KEK.
    pub fn has(&self, kek: &KekId) -> bool {
        self.kek_of(kek).is_ok()
    }

    fn kek_of(&self, id: &KekId) -> Result<&Kek, VaultError> {
        self.keks
            .iter()
            .find(|k| &k.id == id)
            .ok_or_else(|| VaultError::UnknownKek(id.0.clone()))
    }

    fn unwrap_bytes(
        &self,
        subject: &str,
        wrapped: &WrappedKey,
    ) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        let kek = self.kek_of(&wrapped.kek)?;
        let plain = open_with(&kek.key, &wrap_aad(subject, &kek.id), &wrapped.bytes)?;
        let mut out = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(VaultError::Open);
        }
        out.copy_from_slice(&plain);
        Ok(out)
    }

    /// The data key of `subject` from its stored form.
    pub fn unwrap_key(&self, subject: &str, wrapped: &WrappedKey) -> Result<DataKey, VaultError> {
        DataKey::from_bytes(&*self.unwrap_bytes(subject, wrapped)?)
    }

    /// Re-wrap a data key under the active KEK (key rotation).
    pub fn rewrap(&self, subject: &str, wrapped: &WrappedKey) -> Result<WrappedKey, VaultError> {
        self.rewrap_under(subject, wrapped, self.active())
    }

    /// Re-wrap a data key under the KEK `kek`.
    pub fn rewrap_under(
        &self,
        subject: &str,
        wrapped: &WrappedKey,
        kek: &KekId,
    ) -> Result<WrappedKey, VaultError> {
        let bytes = self.unwrap_bytes(subject, wrapped)?;
        let kek = self.kek_of(kek)?;
        Ok(WrappedKey {
            kek: kek.id.clone(),
            bytes: seal_with(&kek.key, &wrap_aad(subject, &kek.id), &bytes[..])?,
        })
    }

    /// A new KEK on disk, made active. The key file is durable before
    /// `keys/active` names it, so a crash at any point loses nothing.
    pub fn rotate(&mut self) -> Result<KekId, KeyringError> {
        let dir = match (&self.source, &self.dir) {
            (KeySource::Environment, _) => return Err(KeyringError::EnvironmentManaged),
            (_, Some(dir)) => dir.clone(),
            (_, None) => {
                let k = kek(&*random::<32>()?)?;
                self.keks.push(k);
                self.active = self.keks.len() - 1;
                return Ok(self.active().clone());
            }
        };
        let bytes = random::<32>()?;
        let k = kek(&bytes)?;
        let id = k.id.clone();
        create_secret(&dir.join(format!("kek-{id}.key")), &hex::encode(&bytes[..]))?;
        replace_file(&dir.join("active"), id.as_str())?;
        self.keks.push(k);
        self.active = self.keks.len() - 1;
        Ok(id)
    }

    /// Retire a KEK that wraps nothing any more (the caller checked): its
    /// file is overwritten with zeros, synced and removed, so copies of
    /// wrapped keys made under it — in backups — can never be opened again.
    /// The active KEK is refused.
    pub fn retire(&mut self, id: &KekId) -> Result<(), KeyringError> {
        if self.active() == id {
            return Err(KeyringError::RetireActive(id.0.clone()));
        }
        let path = match &self.dir {
            Some(dir) => dir.join(format!("kek-{}.key", id.0)),
            None => return Err(KeyringError::NoKeyFile(id.0.clone())),
        };
        if !path.exists() {
            return Err(KeyringError::NoKeyFile(id.0.clone()));
        }
        let len = fs::metadata(&path).map_err(io(&path))?.len() as usize;
        let mut f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(&vec![0u8; len]).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
        drop(f);
        fs::remove_file(&path).map_err(io(&path))?;
        if let Some(dir) = path.parent() {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let active = self.active().clone();
        self.keks.retain(|k| &k.id != id);
        self.active = self
            .keks
            .iter()
            .position(|k| k.id == active)
            .ok_or(KeyringError::MissingActive(active.0))?;
        Ok(())
    }

    /// HMAC-SHA256 of `value` under the blind-index key, separated by `kind`
    /// (`iin`, `phone`, ...). Equal inputs give equal digests; nothing else
    /// can be learned from one.
    pub fn blind_index(&self, kind: &str, value: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.index);
        ctx.update(kind.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The public key audit checkpoints are signed with.
    pub fn audit_public_key(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.audit.public_key().as_ref().to_vec()
    }

    /// Sign an audit checkpoint message.
    pub fn sign_audit(&self, message: &[u8]) -> Vec<u8> {
        self.audit.sign(message).as_ref().to_vec()
    }

    /// Check an Ed25519 signature (audit verification).
    pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
            .verify(message, signature)
            .is_ok()
    }

    /// A short pseudonym (hex) for evidence such as a client address.
    pub fn pseudonym(&self, kind: &str, value: &str) -> String {
        hex::encode(&self.blind_index(kind, value)[..12])
    }
}

fn new_audit_key() -> Result<(ring::signature::Ed25519KeyPair, Zeroizing<Vec<u8>>), KeyringError> {
    let der = ring::signature::Ed25519KeyPair::generate_pkcs8(crate::rng())
        .map_err(|_| VaultError::Random)?;
    let der = Zeroizing::new(der.as_ref().to_vec());
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&der).map_err(|_| VaultError::Random)?;
    Ok((pair, der))
}

fn hex_vec(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[allow(clippy::panic)]
fn unreachable_keyring() -> ! {
    panic!("AES-256-GCM rejected a 32-byte key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_private_keys_and_reopens_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = Keyring::open(dir.path(), &KeyEnv::default()).unwrap();
        let (k, w) = a.new_data_key("s").unwrap();
        let sealed = k.seal("s", "f", b"secret").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for entry in fs::read_dir(dir.path().join("keys")).unwrap() {
                let p = entry.unwrap().path();
                let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", p.display());
            }
            let mode = fs::metadata(dir.path().join("keys"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o700);
        }
        let b = Keyring::open(dir.path(), &KeyEnv::default()).unwrap();
        assert_eq!(a.active(), b.active());
        assert_eq!(a.blind_index("iin", "x"), b.blind_index("iin", "x"));
        let k2 = b.unwrap_key("s", &w).unwrap();
        assert_eq!(&k2.open("s", "f", &sealed).unwrap()[..], b"secret");
    }

    #[test]
    fn rotation_keeps_old_keys_usable_and_rewraps() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(dir.path(), &KeyEnv::default()).unwrap();
        let old = ring.active().clone();
        let (_, w) = ring.new_data_key("s").unwrap();
        let new = ring.rotate().unwrap();
        assert_ne!(old, new);
        let reopened = Keyring::open(dir.path(), &KeyEnv::default()).unwrap();
        assert_eq!(reopened.active(), &new);
        assert!(
            reopened.unwrap_key("s", &w).is_ok(),
            "the old KEK is still there"
        );
        let rw = reopened.rewrap("s", &w).unwrap();
        assert_eq!(rw.kek, new);
        assert!(reopened.unwrap_key("s", &rw).is_ok());
    }

    #[test]
    fn wrapping_under_a_named_kek_and_retiring_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open(dir.path(), &KeyEnv::default()).unwrap();
        let old = ring.active().clone();
        let new = ring.rotate().unwrap();
        // The database may still name the old one active: wrap under it.
        let (_, w) = ring.new_data_key_under("s", &old).unwrap();
        assert_eq!(w.kek, old);
        let moved = ring.rewrap_under("s", &w, &new).unwrap();
        assert_eq!(moved.kek, new);
        assert!(matches!(
            ring.new_data_key_under("s", &KekId("f".repeat(16))),
            Err(VaultError::UnknownKek(_))
        ));
        assert!(matches!(
            ring.retire(&new),
            Err(KeyringError::RetireActive(_))
        ));
        ring.retire(&old).unwrap();
        assert!(!ring.has(&old));
        assert!(!dir.path().join(format!("keys/kek-{}.key", old.0)).exists());
        let reopened = Keyring::open(dir.path(), &KeyEnv::default()).unwrap();
        assert!(!reopened.has(&old), "gone for good");
        assert!(matches!(
            reopened.unwrap_key("s", &w),
            Err(VaultError::UnknownKek(_))
        ));
        assert!(reopened.unwrap_key("s", &moved).is_ok());
        assert!(matches!(ring.retire(&old), Err(KeyringError::NoKeyFile(_))));
    }

    #[test]
    fn environment_keys() {
        let dir = tempfile::tempdir().unwrap();
        let env = KeyEnv {
            master_key: Some("11".repeat(32)),
            previous_master_keys: None,
            index_key: Some("22".repeat(32)),
        };
        let mut ring = Keyring::open(dir.path(), &env).unwrap();
        assert_eq!(ring.source(), KeySource::Environment);
        assert!(!dir.path().join("keys/index.key").exists());
        assert!(matches!(
            ring.rotate(),
            Err(KeyringError::EnvironmentManaged)
        ));
        let bad = KeyEnv {
            master_key: Some("xyz".into()),
            ..KeyEnv::default()
        };
        let err = Keyring::open(dir.path(), &bad).unwrap_err().to_string();
        assert!(
            err.contains("DERBES_MASTER_KEY must be 64 hex digits"),
            "{err}"
        );
        assert!(!err.contains("xyz"));
    }

    #[cfg(unix)]
    #[test]
    fn readable_key_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path(), &KeyEnv::default()).unwrap();
        let path = dir.path().join(format!("keys/kek-{}.key", ring.active()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Keyring::open(dir.path(), &KeyEnv::default()),
            Err(KeyringError::Permissions { .. })
        ));
    }

    #[test]
    fn blind_index_separates_kinds() {
        let ring = Keyring::ephemeral();
        assert_ne!(ring.blind_index("iin", "1"), ring.blind_index("phone", "1"));
        assert_eq!(ring.blind_index("iin", "1"), ring.blind_index("iin", "1"));
        assert_eq!(ring.pseudonym("ip", "1.2.3.4").len(), 24);
    }
}
