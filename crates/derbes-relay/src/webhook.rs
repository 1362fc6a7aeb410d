//! Signed webhook deliveries over HTTP/1.1: `https://` with the system's
//! trust store, or `http://` to a loopback receiver. One kept-alive
//! connection per system, opened again when it is closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: received.
    Delivered,
    /// Worth another try later: 5xx, 408, 429, a timeout, a connection
    /// failure.
    Retry(String),
    /// Will not succeed by trying again (another 4xx, a bad URL).
    Refused(String),
}

struct Target {
    tls: bool,
    host: String,
    port: u16,
    /// Path and query.
    path: String,
}

fn parse(url: &str) -> Result<Target, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("not an http(s) URL".into());
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or("a bad IPv6 host")?;
        (h.to_string(), p.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| "a bad port")?,
        None if tls => 443,
        None => 80,
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    Ok(Target {
        tls,
        host,
        port,
        path,
    })
}

/// An HTTP/1.1 connection over `io`, driven in its own task.
async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}

/// Webhook deliveries, one connection per URL kept between them.
pub struct Webhooks {
    tls: tokio_rustls::TlsConnector,
    connections: HashMap<String, SendRequest<Full<Bytes>>>,
    timeout: Duration,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// With the system's trust store (`rustls-native-certs`).
    pub fn new(timeout: Duration) -> Webhooks {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth());
        let config = match config {
            Ok(c) => c,
            // The defaults are always valid with ring; an empty config
            // would only fail each https delivery, never panic.
            Err(_) => tokio_rustls::rustls::ClientConfig::builder()
                .with_root_certificates(tokio_rustls::rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        Webhooks {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            connections: HashMap::new(),
            timeout,
        }
    }

    async fn connect(&self, t: &Target) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let _ = tcp.set_nodelay(true);
        if t.tls {
            let name = rustls_pki_types::ServerName::try_from(t.host.clone())
                .map_err(|_| "a bad host name".to_string())?;
            let stream = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            handshake(stream).await
        } else {
            handshake(tcp).await
        }
    }

    /// POST `body` to `url` with the signature headers; what came of it.
    pub async fn post(
        &mut self,
        url: &str,
        event_id: &str,
        signature: &str,
        body: &[u8],
    ) -> Outcome {
        match tokio::time::timeout(
            self.timeout,
            self.post_inner(url, event_id, signature, body),
        )
        .await
        {
            Ok(o) => o,
            Err(_) => {
                self.connections.remove(url);
                Outcome::Retry(format!("timeout after {:?}", self.timeout))
            }
        }
    }

    async fn post_inner(
        &mut self,
        url: &str,
        event_id: &str,
        signature: &str,
        body: &[u8],
    ) -> Outcome {
        let t = match parse(url) {
            Ok(t) => t,
            Err(e) => return Outcome::Refused(e),
        };
        let reuse = self.connections.remove(url).filter(|s| !s.is_closed());
        let mut send = match reuse {
            Some(s) => s,
            None => match self.connect(&t).await {
                Ok(s) => s,
                Err(e) => return Outcome::Retry(e),
            },
        };
        if send.ready().await.is_err() {
            send = match self.connect(&t).await {
                Ok(s) => s,
                Err(e) => return Outcome::Retry(e),
            };
        }
        let host = if (t.tls && t.port == 443) || (!t.tls && t.port == 80) {
            t.host.clone()
        } else if t.host.contains(':') {
            format!("[{}]:{}", t.host, t.port)
        } else {
            format!("{}:{}", t.host, t.port)
        };
        let request = hyper::Request::post(t.path.as_str())
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "derbes-relay")
            .header("x-derbes-event-id", event_id)
            .header("x-derbes-signature", signature)
            .body(Full::new(Bytes::copy_from_slice(body)));
        let request = match request {
            Ok(r) => r,
            Err(e) => return Outcome::Refused(format!("request: {e}")),
        };
        let response = match send.send_request(request).await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(format!("http: {e}")),
        };
        let status = response.status();
        // Read (and drop) the body so the connection can be used again;
        // nothing of it is kept or logged.
        let drained = response.into_body().collect().await.is_ok();
        if drained && !send.is_closed() {
            self.connections.insert(url.to_string(), send);
        }
        let code = status.as_u16();
        match code {
            200..=299 => Outcome::Delivered,
            408 | 429 | 500..=599 => Outcome::Retry(format!("http {code}")),
            _ => Outcome::Refused(format!("http {code}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse("https://a.example/hook?x=1").unwrap_or_else(|e| panic!("{e}"));
        assert!(t.tls && t.host == "a.example" && t.port == 443 && t.path == "/hook?x=1");
        let t = parse("http://127.0.0.1:9000").unwrap_or_else(|e| panic!("{e}"));
        assert!(!t.tls && t.port == 9000 && t.path == "/");
        let t = parse("http://[::1]:81/x").unwrap_or_else(|e| panic!("{e}"));
        assert!(t.host == "::1" && t.port == 81);
        assert!(parse("ftp://x").is_err());
        assert!(parse("http://h:port/").is_err());
    }
}
