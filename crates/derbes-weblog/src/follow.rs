//! Following a log file as it grows, across rotation (rename to `<file>.1`,
//! or copy-and-truncate) and restarts: from the position committed last, a
//! step reads what is new and says what to commit, each commit carrying the
//! file's identity and the position it reached, so that every line is
//! counted exactly once.

use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::aggregate::Aggregates;
use crate::ingest::{IngestError, Ingester, Summary};

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: IngestError,
    },
}

/// What to commit: the aggregates of what was read, and where the file stands.
#[derive(Debug)]
pub struct Commit {
    pub aggregates: Aggregates,
    pub summary: Summary,
    /// The identity of the file the position is in (`dev:inode`).
    pub file_id: String,
    /// The position after the last complete line read.
    pub position: u64,
}

/// A file being followed.
#[derive(Debug, Clone)]
pub struct Follower {
    path: PathBuf,
    /// The checkpoint's name for it: its canonical path.
    source: String,
    /// Where a rotation by rename puts it.
    rotated: PathBuf,
}

/// `dev:inode` of a file: it changes when the file is replaced (rotation).
fn identity(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        format!("{}:{}", meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        format!("{:?}", meta.created().ok())
    }
}

impl Follower {
    pub fn new(path: &Path) -> Result<Follower, FollowError> {
        let path = std::fs::canonicalize(path).map_err(|e| io(path, e))?;
        let source = path.display().to_string();
        Ok(Follower {
            rotated: PathBuf::from(format!("{source}.1")),
            source,
            path,
        })
    }

    /// The name checkpoints know this file by.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Read what is new since `committed` (`(file id, position)` of the last
    /// commit, if any) into `ing`, and return what to commit, in order: if
    /// the file was rotated by rename since, the rest of the old file first
    /// (its last line is complete), then what the current file holds; a file
    /// truncated in place is read again from the start. A partial last line
    /// is held back until it is complete. No commit when nothing was read.
    pub fn step(
        &self,
        ing: &mut Ingester,
        committed: Option<(String, u64)>,
    ) -> Result<Vec<Commit>, FollowError> {
        let meta = std::fs::metadata(&self.path).map_err(|e| io(&self.path, e))?;
        let current = identity(&meta);
        let mut commits = Vec::new();
        let (mut position, known) = match committed {
            Some((id, pos)) => (pos, Some(id)),
            None => (0, None),
        };
        if let Some(old) = known.filter(|id| *id != current) {
            if std::fs::metadata(&self.rotated).is_ok_and(|m| identity(&m) == old) {
                read_from(ing, &self.rotated, position, false)?;
            }
            let (aggregates, summary) = ing.take();
            commits.push(Commit {
                aggregates,
                summary,
                file_id: current.clone(),
                position: 0,
            });
            position = 0;
        } else if meta.len() < position {
            // Truncated in place (copytruncate): start again.
            position = 0;
        }
        let read = read_from(ing, &self.path, position, true)?;
        if read > 0 {
            let (aggregates, summary) = ing.take();
            commits.push(Commit {
                aggregates,
                summary,
                file_id: current,
                position: position + read,
            });
        }
        Ok(commits)
    }
}

fn io(path: &Path, source: std::io::Error) -> FollowError {
    FollowError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Read `path` from `position` to its last complete line; the bytes read.
fn read_from(
    ing: &mut Ingester,
    path: &Path,
    position: u64,
    hold_partial: bool,
) -> Result<u64, FollowError> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    f.seek(SeekFrom::Start(position)).map_err(|e| io(path, e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, f);
    ing.read(&mut reader, hold_partial)
        .map_err(|source| FollowError::Read {
            path: path.display().to_string(),
            source,
        })
}
