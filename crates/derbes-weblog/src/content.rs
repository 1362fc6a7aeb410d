//! Content checkpoints: the same log ingested twice is counted once. An
//! input is known by the digest of its first line; what was counted of it
//! is remembered as a position (just past its last complete line) and the
//! digest of everything before that position. Ingesting an input that
//! begins with the same first line and the same counted prefix skips that
//! prefix and counts only what was added since — nothing, for the same
//! file again; a grown file's new lines, for a log appended to since.

use std::io::Read;

use derbes_policy::hex;
use ring::digest::{Context, SHA256};

/// The key an input is known by: the SHA-256 of its first complete line
/// (`None` when `head`, the start of the input, holds no complete line).
pub fn first_line_key(head: &[u8]) -> Option<String> {
    let end = memchr::memchr(b'\n', head)?;
    Some(format!(
        "content:{}",
        hex(ring::digest::digest(&SHA256, &head[..=end]).as_ref())
    ))
}

/// A reader that digests every byte that passes through it and remembers
/// the digest as of the last newline.
pub struct Fingerprint<R> {
    inner: R,
    all: Context,
    read: u64,
    /// The digest and position just past the last newline read.
    lines: (Context, u64),
}

impl<R> std::fmt::Debug for Fingerprint<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprint")
            .field("read", &self.read)
            .field("lines_end", &self.lines.1)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Fingerprint<R> {
    pub fn new(inner: R) -> Fingerprint<R> {
        Fingerprint {
            inner,
            all: Context::new(&SHA256),
            read: 0,
            lines: (Context::new(&SHA256), 0),
        }
    }

    /// Read and digest up to `n` bytes without passing them on (a prefix
    /// counted before); how many there were.
    pub fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        std::io::copy(&mut self.by_ref().take(n), &mut std::io::sink())
    }

    /// The digest of everything read so far.
    pub fn digest(&self) -> String {
        hex(self.all.clone().finish().as_ref())
    }

    /// The position just past the last complete line read, and the digest
    /// of everything before it: what a checkpoint records.
    pub fn complete_lines(&self) -> (u64, String) {
        (self.lines.1, hex(self.lines.0.clone().finish().as_ref()))
    }
}

impl<R: Read> Read for Fingerprint<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        match memchr::memrchr(b'\n', chunk) {
            Some(i) => {
                self.all.update(&chunk[..=i]);
                self.lines = (self.all.clone(), self.read + i as u64 + 1);
                self.all.update(&chunk[i + 1..]);
            }
            None => self.all.update(chunk),
        }
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(b: &[u8]) -> String {
        hex(ring::digest::digest(&SHA256, b).as_ref())
    }

    #[test]
    fn remembers_the_last_complete_line() {
        let text = b"one\ntwo\nthr";
        let mut f = Fingerprint::new(&text[..]);
        let mut out = Vec::new();
        // Small reads: lines split across them.
        let mut buf = [0u8; 3];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, text);
        assert_eq!(f.complete_lines(), (8, digest_of(b"one\ntwo\n")));
        assert_eq!(f.digest(), digest_of(text));
    }

    #[test]
    fn a_prefix_is_skipped_and_digested() {
        let text = b"one\ntwo\nthree\n";
        let mut f = Fingerprint::new(&text[..]);
        assert_eq!(f.skip(8).unwrap(), 8);
        assert_eq!(f.digest(), digest_of(b"one\ntwo\n"));
        let mut rest = String::new();
        f.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "three\n");
        assert_eq!(f.complete_lines(), (14, digest_of(text)));
        assert_eq!(f.skip(10).unwrap(), 0);
    }

    #[test]
    fn keys_need_a_complete_line() {
        assert!(first_line_key(b"no newline yet").is_none());
        assert_eq!(first_line_key(b"a\nb\n"), first_line_key(b"a\nc\n"));
        assert_ne!(first_line_key(b"a\nb\n"), first_line_key(b"b\na\n"));
    }
}
