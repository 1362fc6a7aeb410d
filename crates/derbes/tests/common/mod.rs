//! The real binary, started and stopped as an operator would: helpers the
//! command-line and crash tests share.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn derbes() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_derbes"));
    c.current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL");
    c
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn run(args: &[&str]) -> Output {
    derbes().args(args).output().unwrap()
}

pub fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

pub struct Server {
    child: Child,
    pub addr: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub fn start(data_dir: &std::path::Path, database_url: Option<&str>) -> Server {
        Server::start_with(data_dir, database_url, &[])
    }

    /// `derbes serve` with further arguments.
    pub fn start_with(
        data_dir: &std::path::Path,
        database_url: Option<&str>,
        args: &[&str],
    ) -> Server {
        let mut cmd = derbes();
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("address=http") {
                    let rest = &line[i + "address=".len()..];
                    let addr = rest[rest.find("://").unwrap() + 3..]
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .to_string();
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let said = log.lock().map(|l| l.clone()).unwrap_or_default();
                panic!("server did not start:\n{said}")
            });
        Server { child, addr, log }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let status: u16 = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = raw
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// One HTTP/1.1 request with a bearer token and a JSON body; `Err` when
    /// the connection fails (the server is down or was killed meanwhile).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        call(&self.addr, method, path, token, body)
    }

    /// `kill -9`: no shutdown, no flush, nothing the process could finish.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait: graceful shutdown exits 0.
    pub fn stop(mut self) -> (i32, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                let log = self.log.lock().unwrap().clone();
                return (status.code().unwrap_or(-1), log);
            }
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One HTTP/1.1 request to `addr` with a bearer token and a JSON body; `Err`
/// when the connection fails (the server is down or was killed meanwhile).
pub fn call(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    exchange(addr, method, path, token, body).map(|(status, _, v)| (status, v))
}

/// As [`call`], with the response's head (status line and headers) too.
pub fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, String, Value)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        addr,
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status: u16 = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((
        status,
        head.to_string(),
        serde_json::from_str(&body).unwrap_or(Value::Null),
    ))
}

/// A chunked body's content; what a cut-off body holds so far.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    out
}

/// A runtime and a fresh PostgreSQL database, or `None` where there is no
/// PostgreSQL (in CI there must be: see `derbes_store::testing`).
pub fn postgres_db() -> Option<(
    tokio::runtime::Runtime,
    derbes_store::testing::TestDb,
    String,
)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(derbes_store::testing::TestDb::postgres())?;
    let derbes_store::StoreConfig::Postgres { url } = &db.config else {
        unreachable!()
    };
    let url = url.clone();
    Some((rt, db, url))
}

/// Runs `f` with the URL of a fresh PostgreSQL database (dropped after).
pub fn with_postgres<F: FnOnce(&str)>(f: F) {
    if let Some((_rt, db, url)) = postgres_db() {
        f(&url);
        drop(db);
    }
}

/// A staff token of `role`, made with the CLI.
pub fn staff(dir: &std::path::Path, url: Option<&str>, role: &str) -> String {
    let mut c = derbes();
    c.args([
        "staff",
        "add",
        "--name",
        role,
        "--role",
        role,
        "--json",
        "--data-dir",
    ])
    .arg(dir);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    json_of(&o)["token"].as_str().unwrap().to_string()
}

/// Adult synthetic people, one per index.
pub fn person(i: u64) -> Value {
    let today = derbes_core::almaty_date(chrono::Utc::now());
    let mut i = i * 2;
    loop {
        let s = derbes_core::synthetic::subject(77, i, today);
        if !s.minor {
            return s.registration;
        }
        i += 1;
    }
}

/// The store of a data directory (SQLite) or a database.
pub async fn store(dir: &std::path::Path, url: Option<&str>) -> derbes_store::Store {
    let config = match url {
        Some(u) => derbes_store::StoreConfig::Postgres { url: u.to_string() },
        None => derbes_store::StoreConfig::sqlite_in(dir),
    };
    derbes_store::Store::open(&config).await.unwrap()
}

/// `derbes audit verify` passes.
pub fn audit_verify(dir: &std::path::Path, url: Option<&str>) {
    let mut c = derbes();
    c.args(["audit", "verify", "--json", "--data-dir"]).arg(dir);
    if let Some(u) = url {
        c.env("DATABASE_URL", u);
    }
    let o = c.output().unwrap();
    assert_eq!(
        code(&o),
        0,
        "the audit chain is intact: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Registrations from four clients spread over `addrs` until `stop`; the
/// ids acknowledged.
pub fn load(
    addrs: &[String],
    token: &str,
    first: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    registered: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(first));
    (0..4)
        .map(|c| {
            let addr = addrs[c % addrs.len()].clone();
            let (token, next, stop, registered) = (
                token.to_string(),
                next.clone(),
                stop.clone(),
                registered.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let p = person(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                    let (status, v) =
                        call(&addr, "POST", "/api/v1/subjects", &token, Some(&p)).unwrap();
                    assert_eq!(status, 201, "{v}");
                    registered
                        .lock()
                        .unwrap()
                        .push(v["subject_id"].as_str().unwrap().to_string());
                }
            })
        })
        .collect()
}

/// A sample of `ids` (at most about `samples`) is readable through `addr`.
pub fn readable(addr: &str, token: &str, ids: &[String], samples: usize) {
    for id in ids
        .iter()
        .step_by(ids.len().div_ceil(samples.max(1)).max(1))
    {
        let (status, v) = call(
            addr,
            "GET",
            &format!("/api/v1/subjects/{id}/data?purpose=identification"),
            token,
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "{v}");
    }
}

/// The audit records about subject `id`.
pub async fn subject_records(st: &derbes_store::Store, id: &str) -> Vec<derbes_store::AuditRow> {
    st.audit_records(&derbes_store::AuditQuery {
        subject_id: Some(derbes_core::SubjectId::parse(id).unwrap()),
        limit: 1000,
        ..derbes_store::AuditQuery::default()
    })
    .await
    .unwrap()
}

/// Waits (at most `within`) until every request of `requests` is completed.
pub fn wait_completed(
    dir: &std::path::Path,
    url: Option<&str>,
    requests: &[String],
    within: Duration,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + within;
    loop {
        let done = rt.block_on(async {
            let st = store(dir, url).await;
            let mut done = 0;
            for r in requests {
                if st.request(r).await.unwrap().unwrap().state
                    == derbes_store::RequestState::Completed
                {
                    done += 1;
                }
            }
            st.close().await;
            done
        });
        if done == requests.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {} requests completed",
            requests.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A current-thread runtime for a test's store checks.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Registers synthetic person `i` through `addr`; the subject id.
pub fn register(addr: &str, token: &str, i: u64) -> String {
    let (status, v) = call(addr, "POST", "/api/v1/subjects", token, Some(&person(i))).unwrap();
    assert_eq!(status, 201, "{v}");
    v["subject_id"].as_str().unwrap().to_string()
}

/// Files a destruction request for `subject` through `addr`; its id.
pub fn request_destruction(addr: &str, token: &str, subject: &str) -> String {
    let body = serde_json::json!({"subject_id": subject, "kind": "destruction",
                                  "channel": "written", "requester": "subject"});
    let (status, v) = call(addr, "POST", "/api/v1/requests", token, Some(&body)).unwrap();
    assert_eq!(status, 201, "{v}");
    v["request_id"].as_str().unwrap().to_string()
}

/// Verifies request `r` through `addr` (an approver who did not file it).
pub fn verify_request(addr: &str, token: &str, r: &str) {
    let body = serde_json::json!({"action": "verify"});
    let (status, v) = call(
        addr,
        "POST",
        &format!("/api/v1/requests/{r}/actions"),
        token,
        Some(&body),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
}
