//! Envelope encryption for personal data.
//!
//! A [`Keyring`] holds the key-encryption keys (KEKs) and the blind-index key.
//! Every subject has its own 256-bit data key, stored only wrapped by a KEK
//! ([`WrappedKey`]). Every personal field is sealed with AES-256-GCM under the
//! subject's data key with the subject id and the field name as associated
//! data, so a ciphertext moved to another subject or field does not open.
//! Destroying the wrapped data key (crypto-shredding) leaves every copy of that
//! subject's ciphertext unreadable.
//!
//! ```
//! use derbes_vault::Keyring;
//! let ring = Keyring::ephemeral();
//! let (key, wrapped) = ring.new_data_key("subject-1").unwrap();
//! let sealed = key.seal("subject-1", "full_name.surname", "Иванова".as_bytes()).unwrap();
//! let again = ring.unwrap_key("subject-1", &wrapped).unwrap();
//! assert_eq!(&again.open("subject-1", "full_name.surname", &sealed).unwrap()[..], "Иванова".as_bytes());
//! assert!(again.open("subject-2", "full_name.surname", &sealed).is_err());
//! assert!(again.open("subject-1", "full_name.first_name", &sealed).is_err());
//! ```
//!
//! Blind indexes ([`Keyring::blind_index`]) are HMAC-SHA256 under a separate
//! key, for exact lookups (IIN, phone) without storing the identifier.

pub mod hex;
mod keyring;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

pub use keyring::{KekId, KeyEnv, KeySource, Keyring, KeyringError};

/// Format version of sealed values and wrapped keys.
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// Wrong key, wrong subject or field, or damaged bytes: deliberately one
    /// error, which says nothing about the content.
    #[error("the sealed value cannot be opened (wrong key, subject or field, or damaged)")]
    Open,
    #[error("the system random generator failed")]
    Random,
    #[error("this value was wrapped under key {0}, which is not in the keyring")]
    UnknownKek(String),
}

/// A subject's data key, usable only in memory. Not `Clone`, not printable.
pub struct DataKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<secret>)")
    }
}

/// A data key as stored: encrypted under the KEK named by `kek`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek: KekId,
    pub bytes: Vec<u8>,
}

fn aad(domain: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(domain.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    v.extend_from_slice(domain);
    for p in parts {
        v.push(0);
        v.extend_from_slice(p);
    }
    v
}

pub(crate) fn rng() -> &'static SystemRandom {
    static RNG: std::sync::OnceLock<SystemRandom> = std::sync::OnceLock::new();
    RNG.get_or_init(SystemRandom::new)
}

pub(crate) fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, VaultError> {
    let mut out = Zeroizing::new([0u8; N]);
    rng().fill(&mut out[..]).map_err(|_| VaultError::Random)?;
    Ok(out)
}

/// Fill `out` from the system's secure random generator.
pub fn random_bytes(out: &mut [u8]) -> Result<(), VaultError> {
    rng().fill(out).map_err(|_| VaultError::Random)
}

/// `VERSION || nonce || ciphertext || tag`.
pub(crate) fn seal_with(
    key: &LessSafeKey,
    aad_bytes: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let nonce_bytes = random::<NONCE_LEN>()?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(VERSION);
    out.extend_from_slice(&nonce_bytes[..]);
    out.extend_from_slice(plaintext);
    let nonce = Nonce::assume_unique_for_key(*nonce_bytes);
    let mut body = out.split_off(1 + NONCE_LEN);
    key.seal_in_place_append_tag(nonce, Aad::from(aad_bytes), &mut body)
        .map_err(|_| VaultError::Open)?;
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn open_with(
    key: &LessSafeKey,
    aad_bytes: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
        return Err(VaultError::Open);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
    let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad_bytes),
            &mut buf,
        )
        .map_err(|_| VaultError::Open)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

pub(crate) fn aes_key(bytes: &[u8; 32]) -> Result<LessSafeKey, VaultError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| VaultError::Random)
}

impl DataKey {
    pub(crate) fn from_bytes(bytes: &[u8; 32]) -> Result<DataKey, VaultError> {
        Ok(DataKey {
            key: aes_key(bytes)?,
        })
    }

    /// Seal one field of one subject.
    pub fn seal(
        &self,
        subject: &str,
        field: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        seal_with(
            &self.key,
            &aad(b"derbes/field/v1", &[subject.as_bytes(), field.as_bytes()]),
            plaintext,
        )
    }

    /// Open one field; fails unless `subject` and `field` are the ones it was
    /// sealed for. The plaintext is wiped from memory when dropped.
    pub fn open(
        &self,
        subject: &str,
        field: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        open_with(
            &self.key,
            &aad(b"derbes/field/v1", &[subject.as_bytes(), field.as_bytes()]),
            sealed,
        )
    }
}

/// The associated data binding a wrapped data key to its subject and KEK.
pub(crate) fn wrap_aad(subject: &str, kek: &KekId) -> Vec<u8> {
    aad(
        b"derbes/datakey/v1",
        &[subject.as_bytes(), kek.as_str().as_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seal_open_and_bindings() {
        let ring = Keyring::ephemeral();
        let (k, w) = ring.new_data_key("s1").unwrap();
        let sealed = k.seal("s1", "identity.iin", b"871008401427").unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"871008401427"));
        assert_eq!(
            &k.open("s1", "identity.iin", &sealed).unwrap()[..],
            b"871008401427"
        );
        // Another subject's key, another subject id, another field: no.
        let (other, _) = ring.new_data_key("s2").unwrap();
        assert_eq!(
            other.open("s1", "identity.iin", &sealed),
            Err(VaultError::Open)
        );
        assert_eq!(k.open("s2", "identity.iin", &sealed), Err(VaultError::Open));
        assert_eq!(
            k.open("s1", "contact.phone", &sealed),
            Err(VaultError::Open)
        );
        // A wrapped key moved to another subject does not unwrap.
        assert!(ring.unwrap_key("s2", &w).is_err());
        // Tampering is detected.
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(k.open("s1", "identity.iin", &bad), Err(VaultError::Open));
        assert_eq!(
            k.open("s1", "identity.iin", &sealed[..10]),
            Err(VaultError::Open)
        );
        // Two seals of the same value differ (random nonces).
        assert_ne!(
            k.seal("s1", "f", b"x").unwrap(),
            k.seal("s1", "f", b"x").unwrap()
        );
    }

    #[test]
    fn debug_hides_keys() {
        let ring = Keyring::ephemeral();
        let (k, _) = ring.new_data_key("s").unwrap();
        assert_eq!(format!("{k:?}"), "DataKey(<secret>)");
        let shown = format!("{ring:?}");
        assert!(
            shown.contains(ring.active().as_str()),
            "key ids are not secret: {shown}"
        );
        assert!(!shown.contains("key:"), "{shown}");
    }

    proptest! {
        #[test]
        fn any_value_round_trips(v in proptest::collection::vec(any::<u8>(), 0..512), field in "[a-z_.]{1,30}") {
            let ring = Keyring::ephemeral();
            let (k, w) = ring.new_data_key("subj").unwrap();
            let sealed = k.seal("subj", &field, &v).unwrap();
            let k2 = ring.unwrap_key("subj", &w).unwrap();
            prop_assert_eq!(&k2.open("subj", &field, &sealed).unwrap()[..], &v[..]);
        }
    }
}
