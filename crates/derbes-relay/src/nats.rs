//! A small NATS client: what the relay needs of the protocol and no more —
//! connect (with user/password or token from the URL), request/reply over a
//! private inbox, headers for JetStream's `Nats-Msg-Id` de-duplication,
//! and the JetStream API calls the tests use to make and drop a stream.
//! Requests are pipelined: many may wait for their replies at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// What went wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("NATS URL: {0}")]
    Url(String),
    #[error("NATS connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("NATS refused: {0}")]
    Server(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed")]
    Closed,
    #[error("no stream listens on the subject (no responders)")]
    NoResponders,
    #[error("JetStream: {0}")]
    JetStream(String),
}

/// A reply: its status header (503 = no responders), headers and payload.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: Option<u16>,
    pub payload: Vec<u8>,
}

/// JetStream's acknowledgement of a published message.
#[derive(Debug, Clone, Deserialize)]
pub struct PubAck {
    pub stream: String,
    pub seq: u64,
    /// The message id was seen within the stream's duplicate window: the
    /// message was not stored again.
    #[serde(default)]
    pub duplicate: bool,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;
type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

/// A connection to a NATS server.
#[derive(Debug)]
pub struct Nats {
    writer: Writer,
    pending: Pending,
    inbox: String,
    next: AtomicU64,
    alive: Arc<std::sync::atomic::AtomicBool>,
}

struct Url {
    addr: String,
    user: Option<(String, String)>,
    token: Option<String>,
}

fn parse_url(url: &str) -> Result<Url, NatsError> {
    let rest = url
        .strip_prefix("nats://")
        .ok_or_else(|| NatsError::Url("must start with nats:// (TLS is not supported)".into()))?;
    let rest = rest.trim_end_matches('/');
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    if host.is_empty() {
        return Err(NatsError::Url("no host".into()));
    }
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:4222")
    };
    let (user, token) = match auth {
        None => (None, None),
        Some(a) => match a.split_once(':') {
            Some((u, p)) => (Some((u.to_string(), p.to_string())), None),
            None => (None, Some(a.to_string())),
        },
    };
    Ok(Url { addr, user, token })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Nats {
    /// Connect, authenticate and subscribe to a private inbox.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Nats, NatsError> {
        let u = parse_url(url)?;
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&u.addr))
            .await
            .map_err(|_| NatsError::Timeout(timeout))??;
        stream.set_nodelay(true)?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let mut line = String::new();
        tokio::time::timeout(timeout, read.read_line(&mut line))
            .await
            .map_err(|_| NatsError::Timeout(timeout))??;
        if !line.starts_with("INFO ") {
            return Err(NatsError::Server(format!(
                "expected INFO, got `{}`",
                line.trim()
            )));
        }
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "tls_required": false, "headers": true,
            "no_responders": true, "name": "derbes-relay", "lang": "rust",
            "version": env!("CARGO_PKG_VERSION"), "protocol": 1,
        });
        if let Some((user, pass)) = &u.user {
            connect["user"] = user.clone().into();
            connect["pass"] = pass.clone().into();
        }
        if let Some(t) = &u.token {
            connect["auth_token"] = t.clone().into();
        }
        let inbox = format!("_INBOX.{}", uuid::Uuid::now_v7().simple());
        let hello = format!("CONNECT {connect}\r\nPING\r\nSUB {inbox}.* 1\r\n");
        write.write_all(hello.as_bytes()).await?;
        // Until the PONG: an error here is the server refusing us.
        loop {
            line.clear();
            let n = tokio::time::timeout(timeout, read.read_line(&mut line))
                .await
                .map_err(|_| NatsError::Timeout(timeout))??;
            if n == 0 {
                return Err(NatsError::Closed);
            }
            let l = line.trim_end();
            if l == "PONG" {
                break;
            }
            if let Some(e) = l.strip_prefix("-ERR") {
                return Err(NatsError::Server(e.trim().trim_matches('\'').to_string()));
            }
        }
        let pending: Pending = Arc::default();
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let writer: Writer = Arc::new(tokio::sync::Mutex::new(write));
        let ponger = writer.clone();
        {
            let pending = pending.clone();
            let alive = alive.clone();
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let _ = read_loop(read, &inbox, &pending, &ponger).await;
                alive.store(false, Ordering::SeqCst);
                // Every waiting request learns the connection is gone.
                lock(&pending).clear();
            });
        }
        Ok(Nats {
            writer,
            pending,
            inbox,
            next: AtomicU64::new(1),
            alive,
        })
    }

    /// The connection is still up.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Send a request with headers and wait for its reply.
    pub async fn request(
        &self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Reply, NatsError> {
        if !self.is_alive() {
            return Err(NatsError::Closed);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let reply = format!("{}.{id}", self.inbox);
        let mut frame = Vec::with_capacity(payload.len() + 128);
        if headers.is_empty() {
            frame.extend_from_slice(
                format!("PUB {subject} {reply} {}\r\n", payload.len()).as_bytes(),
            );
        } else {
            let mut h = String::from("NATS/1.0\r\n");
            for (k, v) in headers {
                h.push_str(k);
                h.push_str(": ");
                h.push_str(v);
                h.push_str("\r\n");
            }
            h.push_str("\r\n");
            frame.extend_from_slice(
                format!(
                    "HPUB {subject} {reply} {} {}\r\n",
                    h.len(),
                    h.len() + payload.len()
                )
                .as_bytes(),
            );
            frame.extend_from_slice(h.as_bytes());
        }
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        let sent = self.writer.lock().await.write_all(&frame).await;
        if let Err(e) = sent {
            lock(&self.pending).remove(&id);
            return Err(e.into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(NatsError::Closed),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(NatsError::Timeout(timeout))
            }
        }
    }

    /// Publish to JetStream with `msg_id` for de-duplication (and any
    /// other headers) and wait for the stream's acknowledgement.
    pub async fn publish_js(
        &self,
        subject: &str,
        msg_id: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
        timeout: Duration,
    ) -> Result<PubAck, NatsError> {
        let mut all = vec![("Nats-Msg-Id", msg_id)];
        all.extend_from_slice(headers);
        let r = self.request(subject, &all, payload, timeout).await?;
        js_reply(&r)
    }

    /// A JetStream API call (`$JS.API.<what>`) with a JSON body.
    pub async fn js_api(
        &self,
        what: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, NatsError> {
        let r = self
            .request(
                &format!("$JS.API.{what}"),
                &[],
                body.to_string().as_bytes(),
                timeout,
            )
            .await?;
        js_reply(&r)
    }
}

/// A JetStream reply: its JSON, or the error it carries.
fn js_reply<T: serde::de::DeserializeOwned>(r: &Reply) -> Result<T, NatsError> {
    if r.status == Some(503) {
        return Err(NatsError::NoResponders);
    }
    let v: serde_json::Value = serde_json::from_slice(&r.payload)
        .map_err(|e| NatsError::JetStream(format!("an unreadable reply: {e}")))?;
    if let Some(e) = v.get("error") {
        return Err(NatsError::JetStream(
            e.get("description")
                .and_then(|d| d.as_str())
                .unwrap_or("error")
                .to_string(),
        ));
    }
    serde_json::from_value(v).map_err(|e| NatsError::JetStream(format!("an unexpected reply: {e}")))
}

async fn read_loop(
    mut read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    inbox: &str,
    pending: &Pending,
    writer: &Writer,
) -> Result<(), NatsError> {
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Err(NatsError::Closed);
        }
        let l = line.trim_end();
        let mut parts = l.split(' ');
        match parts.next() {
            Some("PING") => {
                writer.lock().await.write_all(b"PONG\r\n").await?;
            }
            Some("MSG") | Some("HMSG") => {
                let headers = l.starts_with("HMSG");
                let args: Vec<&str> = parts.collect();
                // MSG subject sid [reply] bytes; HMSG subject sid [reply] hbytes bytes.
                let nums = if headers { 2 } else { 1 };
                if args.len() < 2 + nums {
                    return Err(NatsError::Server(format!("a malformed `{l}`")));
                }
                let total: usize = args[args.len() - 1]
                    .parse()
                    .map_err(|_| NatsError::Server("a malformed size".into()))?;
                let hlen: usize = if headers {
                    args[args.len() - 2]
                        .parse()
                        .map_err(|_| NatsError::Server("a malformed size".into()))?
                } else {
                    0
                };
                let subject = args[0].to_string();
                let mut body = vec![0u8; total + 2];
                read.read_exact(&mut body).await?;
                body.truncate(total);
                let status = if headers {
                    let h = String::from_utf8_lossy(&body[..hlen.min(total)]);
                    h.lines()
                        .next()
                        .and_then(|first| first.strip_prefix("NATS/1.0"))
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|code| code.parse().ok())
                } else {
                    None
                };
                let payload = body.split_off(hlen.min(total));
                let id = subject
                    .strip_prefix(inbox)
                    .and_then(|r| r.strip_prefix('.'))
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(id) = id {
                    if let Some(tx) = lock(pending).remove(&id) {
                        let _ = tx.send(Reply { status, payload });
                    }
                }
            }
            Some("-ERR") => {
                tracing::warn!(error = %l, "NATS server error");
                if l.contains("Authorization") || l.contains("Stale") {
                    return Err(NatsError::Server(l.to_string()));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("nats://127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.addr, "127.0.0.1:4222");
        let u = parse_url("nats://me:pw@h:1/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.addr, "h:1");
        assert_eq!(u.user, Some(("me".into(), "pw".into())));
        let u = parse_url("nats://tok@h").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.token.as_deref(), Some("tok"));
        assert!(parse_url("tls://h").is_err());
        assert!(parse_url("nats://").is_err());
    }
}
