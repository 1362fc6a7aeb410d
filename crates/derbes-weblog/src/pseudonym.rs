//! Client addresses → pseudonyms: HMAC-SHA256 under a key of the day
//! (Asia/Almaty), created when the day is first seen and destroyed when the
//! day's window closes. A pseudonym can be neither reversed nor linked to
//! another day's, and once a day's key is gone nobody — derbes included —
//! can produce that day's pseudonyms again. The raw address is never stored.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Errors of the key store (IO only; never a key or an address).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("weblog keys: {0}")]
    Io(#[from] std::io::Error),
    #[error("weblog keys: the system random generator failed")]
    Random,
    #[error("weblog keys: a key file is damaged ({0})")]
    Damaged(String),
}

/// The keys of the open days.
pub struct DailyKeys {
    dir: Option<PathBuf>,
    window_days: u32,
    keys: BTreeMap<NaiveDate, hmac::Key>,
}

impl std::fmt::Debug for DailyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailyKeys")
            .field("window_days", &self.window_days)
            .field("open_days", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn key_path(dir: &Path, day: NaiveDate) -> PathBuf {
    dir.join(format!("{day}.key"))
}

/// Days a day's key lives unless told otherwise: today and yesterday.
pub const DEFAULT_WINDOW_DAYS: u32 = 2;

/// The file in the key directory that records the window, so that every
/// process opening the keys — `serve`'s scheduler, `ingest`, `ingest
/// --follow` — keeps them for the same days.
const WINDOW_FILE: &str = "window";

impl DailyKeys {
    /// Keys kept in `dir` (created, mode 0700): several ingesters on one
    /// machine share a day's key, and a restart keeps it. A day is open for
    /// the window's days (1: today only), plus tomorrow for clock skew. The
    /// window is the one recorded with the keys; `set_window` records a new
    /// one (and it is then every process's), else the recorded one holds,
    /// else [`DEFAULT_WINDOW_DAYS`].
    pub fn open(dir: &Path, set_window: Option<u32>) -> Result<DailyKeys, KeyError> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let recorded = Self::recorded_window(dir)?;
        let window_days = match set_window.map(|w| w.max(1)) {
            Some(w) if Some(w) != recorded => {
                write_private(&dir.join(WINDOW_FILE), format!("{w}\n").as_bytes())?;
                w
            }
            Some(w) => w,
            None => recorded.unwrap_or(DEFAULT_WINDOW_DAYS),
        };
        Ok(DailyKeys {
            dir: Some(dir.to_path_buf()),
            window_days,
            keys: BTreeMap::new(),
        })
    }

    /// The window recorded in `dir`, if one is.
    pub fn recorded_window(dir: &Path) -> Result<Option<u32>, KeyError> {
        match std::fs::read_to_string(dir.join(WINDOW_FILE)) {
            Ok(text) => text
                .trim()
                .parse::<u32>()
                .map(|w| Some(w.max(1)))
                .map_err(|_| KeyError::Damaged(WINDOW_FILE.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Days a day's key lives here.
    pub fn window_days(&self) -> u32 {
        self.window_days
    }

    /// Keys in memory only (they die with the process).
    pub fn ephemeral(window_days: u32) -> DailyKeys {
        DailyKeys {
            dir: None,
            window_days: window_days.max(1),
            keys: BTreeMap::new(),
        }
    }

    /// Is `day` open on `today`?
    pub fn is_open(&self, day: NaiveDate, today: NaiveDate) -> bool {
        let first = today - chrono::Days::new(self.window_days as u64 - 1);
        day >= first && day <= today + chrono::Days::new(1)
    }

    /// Destroy the keys of every day that closed by `today` (files
    /// overwritten, synced, removed). Returns the days destroyed.
    pub fn close_days(&mut self, today: NaiveDate) -> Result<Vec<NaiveDate>, KeyError> {
        let mut closed: Vec<NaiveDate> = self
            .keys
            .keys()
            .copied()
            .filter(|d| !self.is_open(*d, today))
            .collect();
        for d in &closed {
            self.keys.remove(d);
        }
        if let Some(dir) = &self.dir {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                let Some(day) = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                else {
                    continue;
                };
                if self.is_open(day, today) {
                    continue;
                }
                if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
                    f.write_all(&[0u8; 32])?;
                    f.sync_all()?;
                }
                std::fs::remove_file(&path)?;
                if !closed.contains(&day) {
                    closed.push(day);
                }
            }
        }
        closed.sort();
        Ok(closed)
    }

    /// The key of `day` — created when the day is first seen — or `None`
    /// when the day is not open on `today` (its key is gone, or it is too
    /// far ahead).
    pub fn key(
        &mut self,
        day: NaiveDate,
        today: NaiveDate,
    ) -> Result<Option<&hmac::Key>, KeyError> {
        if !self.is_open(day, today) {
            return Ok(None);
        }
        if !self.keys.contains_key(&day) {
            let bytes = self.load_or_create(day)?;
            self.keys
                .insert(day, hmac::Key::new(hmac::HMAC_SHA256, &bytes));
        }
        Ok(self.keys.get(&day))
    }

    fn load_or_create(&self, day: NaiveDate) -> Result<[u8; 32], KeyError> {
        let mut fresh = [0u8; 32];
        SystemRandom::new()
            .fill(&mut fresh)
            .map_err(|_| KeyError::Random)?;
        let Some(dir) = &self.dir else {
            return Ok(fresh);
        };
        let path = key_path(dir, day);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&path) {
            Ok(mut f) => {
                f.write_all(&fresh)?;
                f.sync_all()?;
                Ok(fresh)
            }
            // Another ingester created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = std::fs::read(&path)?;
                bytes
                    .try_into()
                    .map_err(|_| KeyError::Damaged(format!("{day}.key")))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The pseudonym of a client address under a day's key (64 bits of the HMAC).
pub fn pseudonym(key: &hmac::Key, client: &str) -> u64 {
    let tag = hmac::sign(key, client.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&tag.as_ref()[..8]);
    u64::from_le_bytes(b)
}

/// Write `bytes` to `path` (mode 0600), replacing it whole: a temporary
/// file, synced, renamed over it.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_window_is_recorded_with_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DailyKeys::open(dir.path(), None).unwrap().window_days(), 2);
        assert_eq!(DailyKeys::recorded_window(dir.path()).unwrap(), None);
        // An ingest told 14 records it; a process told nothing follows it
        // and keeps a 13-day-old key that a 2-day window would destroy.
        let mut ingest = DailyKeys::open(dir.path(), Some(14)).unwrap();
        let today = d("2026-11-30");
        let old = d("2026-11-17");
        assert!(ingest.key(old, today).unwrap().is_some());
        let mut serve = DailyKeys::open(dir.path(), None).unwrap();
        assert_eq!(serve.window_days(), 14);
        assert!(serve.close_days(today).unwrap().is_empty());
        assert!(dir.path().join("2026-11-17.key").exists());
        // Told a new window, it is everyone's.
        let mut narrow = DailyKeys::open(dir.path(), Some(2)).unwrap();
        assert_eq!(narrow.close_days(today).unwrap(), vec![old]);
        assert_eq!(DailyKeys::open(dir.path(), None).unwrap().window_days(), 2);
        std::fs::write(dir.path().join("window"), "soon").unwrap();
        assert!(DailyKeys::open(dir.path(), None).is_err());
    }

    #[test]
    fn yesterdays_pseudonym_cannot_be_produced_today() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = DailyKeys::open(dir.path(), Some(1)).unwrap();
        let mon = d("2026-11-23");
        let p_mon = pseudonym(keys.key(mon, mon).unwrap().unwrap(), "203.0.113.7");
        // Same day, another process: the same pseudonym (the key is shared on disk).
        let mut other = DailyKeys::open(dir.path(), Some(1)).unwrap();
        assert_eq!(
            pseudonym(other.key(mon, mon).unwrap().unwrap(), "203.0.113.7"),
            p_mon
        );
        // Tuesday: Monday's window closed; its key is destroyed.
        let tue = d("2026-11-24");
        assert_eq!(keys.close_days(tue).unwrap(), vec![mon]);
        assert!(!dir.path().join("2026-11-23.key").exists());
        assert!(
            keys.key(mon, tue).unwrap().is_none(),
            "Monday cannot be keyed again"
        );
        let p_tue = pseudonym(keys.key(tue, tue).unwrap().unwrap(), "203.0.113.7");
        assert_ne!(p_tue, p_mon, "not linkable across days");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("2026-11-24.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn windows() {
        let keys = DailyKeys::ephemeral(3);
        let today = d("2026-11-24");
        assert!(keys.is_open(d("2026-11-22"), today));
        assert!(!keys.is_open(d("2026-11-21"), today));
        assert!(keys.is_open(d("2026-11-25"), today), "clock skew");
        assert!(!keys.is_open(d("2026-11-26"), today));
    }
}
