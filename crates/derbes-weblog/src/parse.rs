//! Log lines to hits, without allocating for the common formats: nginx and
//! Apache `combined` and `common`, and JSON lines (nginx `escape=json` logs
//! and the app's own telemetry events). A line that is not a hit is refused
//! with a reason — never with its content.

use std::borrow::Cow;

use serde::Deserialize;

/// A log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`
    Combined,
    /// `combined` without referrer and agent.
    Common,
    /// One JSON object per line.
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "combined" => Some(Format::Combined),
            "common" => Some(Format::Common),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// One request (or app event) as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    /// Unix seconds, UTC.
    pub at: i64,
    /// The client address as logged; only ever pseudonymised.
    pub client: Cow<'a, str>,
    /// The path without its query string (queries carry personal data).
    pub path: Cow<'a, str>,
    pub status: u16,
    /// Empty when absent.
    pub referrer: Cow<'a, str>,
    /// Empty when absent.
    pub agent: Cow<'a, str>,
}

/// Why a line is not a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Malformed {
    InvalidUtf8,
    Binary,
    TooLong,
    Truncated,
    BadAddress,
    BadTime,
    BadRequest,
    BadStatus,
    MissingField,
    BadJson,
}

impl Malformed {
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::InvalidUtf8 => "invalid_utf8",
            Malformed::Binary => "binary",
            Malformed::TooLong => "too_long",
            Malformed::Truncated => "truncated",
            Malformed::BadAddress => "bad_address",
            Malformed::BadTime => "bad_time",
            Malformed::BadRequest => "bad_request",
            Malformed::BadStatus => "bad_status",
            Malformed::MissingField => "missing_field",
            Malformed::BadJson => "bad_json",
        }
    }
}

/// Parse one line (without its newline).
pub fn parse_line(format: Format, line: &[u8]) -> Result<Hit<'_>, Malformed> {
    if memchr::memchr(0, line).is_some() {
        return Err(Malformed::Binary);
    }
    let text = std::str::from_utf8(line).map_err(|_| Malformed::InvalidUtf8)?;
    let text = text.strip_suffix('\r').unwrap_or(text);
    match format {
        Format::Combined => access_line(text, true),
        Format::Common => access_line(text, false),
        Format::Json => json_line(text),
    }
}

/// A cursor over an access-log line.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn word(&mut self) -> Option<&'a str> {
        let rest = self.s.get(self.i..)?;
        let end = memchr::memchr(b' ', rest.as_bytes()).unwrap_or(rest.len());
        self.i += end + 1;
        Some(&rest[..end])
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.s.as_bytes().get(self.i) == Some(&b)).then(|| self.i += 1)
    }

    /// `[...]`
    fn bracketed(&mut self) -> Option<&'a str> {
        self.expect(b'[')?;
        let rest = &self.s[self.i..];
        let end = memchr::memchr(b']', rest.as_bytes())?;
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// `"..."` with `\"` escapes (Apache) left in place.
    fn quoted(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let bytes = self.s.as_bytes();
        let start = self.i;
        let mut j = start;
        loop {
            let k = memchr::memchr(b'"', &bytes[j..])? + j;
            if k > start && bytes[k - 1] == b'\\' && !(k > start + 1 && bytes[k - 2] == b'\\') {
                j = k + 1;
                continue;
            }
            self.i = k + 1;
            return Some(&self.s[start..k]);
        }
    }

    fn space(&mut self) -> Option<()> {
        self.expect(b' ')
    }
}

fn access_line(s: &str, combined: bool) -> Result<Hit<'_>, Malformed> {
    let mut c = Cursor { s, i: 0 };
    let client = c.word().ok_or(Malformed::Truncated)?;
    if client.is_empty()
        || !client
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
    {
        return Err(Malformed::BadAddress);
    }
    c.word().ok_or(Malformed::Truncated)?; // ident
    c.word().ok_or(Malformed::Truncated)?; // user
    let time = c.bracketed().ok_or(Malformed::BadTime)?;
    let at = clf_time(time).ok_or(Malformed::BadTime)?;
    c.space().ok_or(Malformed::Truncated)?;
    let request = c.quoted().ok_or(Malformed::BadRequest)?;
    let path = request_path(request).ok_or(Malformed::BadRequest)?;
    c.space().ok_or(Malformed::Truncated)?;
    let status = c.word().ok_or(Malformed::Truncated)?;
    let status = parse_status(status).ok_or(Malformed::BadStatus)?;
    let bytes = c.word().ok_or(Malformed::Truncated)?;
    if !(bytes == "-" || (!bytes.is_empty() && bytes.bytes().all(|b| b.is_ascii_digit()))) {
        return Err(Malformed::MissingField);
    }
    let (referrer, agent) = if combined {
        let r = c.quoted().ok_or(Malformed::Truncated)?;
        c.space().ok_or(Malformed::Truncated)?;
        let a = c.quoted().ok_or(Malformed::Truncated)?;
        (r, a)
    } else {
        ("", "")
    };
    Ok(Hit {
        at,
        client: Cow::Borrowed(client),
        path: Cow::Borrowed(path),
        status,
        referrer: Cow::Borrowed(if referrer == "-" { "" } else { referrer }),
        agent: Cow::Borrowed(if agent == "-" { "" } else { agent }),
    })
}

fn parse_status(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) || b[0] == b'0' {
        return None;
    }
    Some((b[0] - b'0') as u16 * 100 + (b[1] - b'0') as u16 * 10 + (b[2] - b'0') as u16)
}

/// `GET /path?query HTTP/1.1` → `/path`.
fn request_path(request: &str) -> Option<&str> {
    let mut parts = request.splitn(3, ' ');
    let method = parts.next()?;
    let target = parts.next()?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    path_of(target)
}

/// The path of a request target: query and fragment dropped, an absolute
/// URL reduced to its path.
pub fn path_of(target: &str) -> Option<&str> {
    let target = match target.find("://") {
        Some(i) => {
            let after = &target[i + 3..];
            &after[after.find('/').unwrap_or(after.len())..]
        }
        None => target,
    };
    let end = target.find(['?', '#']).unwrap_or(target.len());
    let path = &target[..end];
    if path.is_empty() {
        return Some("/");
    }
    path.starts_with('/').then_some(path)
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn digits(b: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &d in b {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (d - b'0') as i64;
    }
    Some(n)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn unix(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, offset_secs: i64) -> Option<i64> {
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs)
}

/// `10/Oct/2000:13:55:36 -0700`
pub fn clf_time(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 26
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
        || b[20] != b' '
    {
        return None;
    }
    let mon = MONTHS.iter().position(|m| &b[3..6] == *m)? as i64 + 1;
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off = sign * (digits(&b[22..24])? * 3600 + digits(&b[24..26])? * 60);
    unix(
        digits(&b[7..11])?,
        mon,
        digits(&b[0..2])?,
        digits(&b[12..14])?,
        digits(&b[15..17])?,
        digits(&b[18..20])?,
        off,
    )
}

/// RFC 3339 / ISO 8601 (`2026-11-24T10:00:00+05:00`, `...Z`, fractions allowed), or unix seconds.
pub fn iso_time(t: &str) -> Option<i64> {
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return digits(t.as_bytes()).filter(|n| *n < 253_402_300_800);
    }
    let b = t.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + n..];
    }
    let off = match rest {
        [b'Z'] | [b'z'] => 0,
        [s @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let v = digits(&[*h1, *h2])? * 3600 + digits(&[*m1, *m2])? * 60;
            if *s == b'+' {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    unix(
        digits(&b[0..4])?,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
        off,
    )
}

/// The keys nginx `escape=json` logs and the app's events use.
#[derive(Debug, Deserialize)]
struct JsonLine<'a> {
    #[serde(
        borrow,
        default,
        alias = "time_iso8601",
        alias = "timestamp",
        alias = "@timestamp",
        alias = "ts"
    )]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time_local: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        alias = "remote_addr",
        alias = "client_ip",
        alias = "ip",
        alias = "client"
    )]
    addr: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        alias = "request_uri",
        alias = "uri",
        alias = "path",
        alias = "screen"
    )]
    target: Option<Cow<'a, str>>,
    #[serde(default)]
    status: Option<serde_json::Value>,
    #[serde(borrow, default, alias = "http_referer", alias = "referer")]
    referrer: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "http_user_agent", alias = "user_agent")]
    agent: Option<Cow<'a, str>>,
    /// An app telemetry event (`screen_view`, ...); its `screen` is the path.
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
}

fn cow_path(c: Cow<'_, str>) -> Option<Cow<'_, str>> {
    match c {
        Cow::Borrowed(s) => path_of(s).map(Cow::Borrowed),
        Cow::Owned(s) => path_of(&s).map(|p| Cow::Owned(p.to_string())),
    }
}

fn json_line(s: &str) -> Result<Hit<'_>, Malformed> {
    let j: JsonLine<'_> = serde_json::from_str(s).map_err(|e| {
        if e.is_eof() {
            Malformed::Truncated
        } else {
            Malformed::BadJson
        }
    })?;
    let at = match (&j.time, &j.time_local) {
        (Some(t), _) => iso_time(t).ok_or(Malformed::BadTime)?,
        (None, Some(t)) => clf_time(t).ok_or(Malformed::BadTime)?,
        (None, None) => return Err(Malformed::MissingField),
    };
    let client = j.addr.ok_or(Malformed::MissingField)?;
    if client.is_empty()
        || !client
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
    {
        return Err(Malformed::BadAddress);
    }
    let path = match (j.target, j.request) {
        (Some(t), _) => cow_path(t).ok_or(Malformed::BadRequest)?,
        (None, Some(Cow::Borrowed(r))) => {
            Cow::Borrowed(request_path(r).ok_or(Malformed::BadRequest)?)
        }
        (None, Some(Cow::Owned(r))) => {
            Cow::Owned(request_path(&r).ok_or(Malformed::BadRequest)?.to_string())
        }
        (None, None) => return Err(Malformed::MissingField),
    };
    let status = match &j.status {
        None if j.event.is_some() => 200,
        None => return Err(Malformed::MissingField),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .filter(|n| (100..=999).contains(n))
            .ok_or(Malformed::BadStatus)? as u16,
        Some(serde_json::Value::String(s)) => parse_status(s).ok_or(Malformed::BadStatus)?,
        Some(_) => return Err(Malformed::BadStatus),
    };
    fn dash(c: Option<Cow<'_, str>>) -> Cow<'_, str> {
        match c {
            Some(c) if c != "-" => c,
            _ => Cow::Borrowed(""),
        }
    }
    Ok(Hit {
        at,
        client,
        path,
        status,
        referrer: dash(j.referrer),
        agent: dash(j.agent),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const COMBINED: &str = r#"203.0.113.7 - - [24/Nov/2026:10:15:02 +0500] "GET /api/v1/orders/123?phone=77011234567 HTTP/1.1" 200 512 "https://t.me/ibusiness" "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1""#;

    #[test]
    fn combined() {
        let h = parse_line(Format::Combined, COMBINED.as_bytes()).unwrap();
        assert_eq!(h.client, "203.0.113.7");
        assert_eq!(h.path, "/api/v1/orders/123", "the query is dropped");
        assert_eq!(h.status, 200);
        assert_eq!(h.referrer, "https://t.me/ibusiness");
        assert!(h.agent.starts_with("Mozilla/5.0 (iPhone"));
        // 10:15:02 in +05:00 is 05:15:02 UTC.
        assert_eq!(h.at, iso_time("2026-11-24T05:15:02Z").unwrap());
        assert!(matches!(h.client, Cow::Borrowed(_)), "no allocation");
    }

    #[test]
    fn common_and_apache_escapes() {
        let line = r#"2001:db8::1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let h = parse_line(Format::Common, line.as_bytes()).unwrap();
        assert_eq!(
            (h.client.as_ref(), h.path.as_ref(), h.status),
            ("2001:db8::1", "/apache_pb.gif", 200)
        );
        assert_eq!(h.at, 971_211_336);
        let escaped = r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 404 - "-" "agent with \"quotes\" inside""#;
        let h = parse_line(Format::Combined, escaped.as_bytes()).unwrap();
        assert_eq!(h.agent, r#"agent with \"quotes\" inside"#);
        assert_eq!(h.referrer, "");
    }

    #[test]
    fn json_lines_nginx_and_app_events() {
        let nginx = r#"{"time_iso8601":"2026-11-24T10:15:02+05:00","remote_addr":"198.51.100.4","request":"POST /api/v1/login?next=%2F HTTP/2.0","status":"302","http_referer":"","http_user_agent":"iBusiness/3.2.1 (Android 13; SM-A515F)"}"#;
        let h = parse_line(Format::Json, nginx.as_bytes()).unwrap();
        assert_eq!((h.path.as_ref(), h.status), ("/api/v1/login", 302));
        assert_eq!(h.agent, "iBusiness/3.2.1 (Android 13; SM-A515F)");
        let event = r#"{"event":"screen_view","screen":"/orders","time":"2026-11-24T05:00:00Z","ip":"198.51.100.4","agent":"iBusiness/3.2.1 (iOS 17.1; iPhone14,2)"}"#;
        let h = parse_line(Format::Json, event.as_bytes()).unwrap();
        assert_eq!((h.path.as_ref(), h.status), ("/orders", 200));
        let escaped = r#"{"time":"2026-11-24T05:00:00Z","ip":"10.1.1.1","uri":"/caf\u00e9","status":200,"user_agent":"x\"y"}"#;
        let h = parse_line(Format::Json, escaped.as_bytes()).unwrap();
        assert_eq!((h.path.as_ref(), h.agent.as_ref()), ("/café", "x\"y"));
    }

    #[test]
    fn refusals_name_a_reason() {
        let cases: &[(Format, &[u8], Malformed)] = &[
            (
                Format::Combined,
                b"\xff\xfe garbage",
                Malformed::InvalidUtf8,
            ),
            (
                Format::Combined,
                b"1.2.3.4 - - [24/Nov\0",
                Malformed::Binary,
            ),
            (
                Format::Combined,
                b"not-an-ip - - [24/Nov/2026:10:15:02 +0500] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
                Malformed::BadAddress,
            ),
            (
                Format::Combined,
                b"1.2.3.4 - - [31/Feb/2026:10:15:02 +0500] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
                Malformed::BadTime,
            ),
            (
                Format::Combined,
                b"1.2.3.4 - - [24/Nov/2026:10:15:02 +0500] \"\\x16\\x03\\x01\" 400 1 \"-\" \"-\"",
                Malformed::BadRequest,
            ),
            (
                Format::Combined,
                b"1.2.3.4 - - [24/Nov/2026:10:15:02 +0500] \"GET / HTTP/1.1\" 2000 1 \"-\" \"-\"",
                Malformed::BadStatus,
            ),
            (
                Format::Combined,
                b"1.2.3.4 - - [24/Nov/2026:10:15:02 +0500] \"GET / HTTP/1.1\" 200 1 \"-\" \"Mozil",
                Malformed::Truncated,
            ),
            (
                Format::Json,
                b"{\"time\":\"2026-11-24T05:00:00Z\",\"ip\":\"1.2.3.4\"",
                Malformed::Truncated,
            ),
            (Format::Json, b"[1,2]", Malformed::BadJson),
            (
                Format::Json,
                b"{\"ip\":\"1.2.3.4\",\"uri\":\"/\",\"status\":200}",
                Malformed::MissingField,
            ),
        ];
        for (format, line, want) in cases {
            assert_eq!(
                parse_line(*format, line),
                Err(*want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn paths() {
        assert_eq!(path_of("/a/b?c=d#e"), Some("/a/b"));
        assert_eq!(path_of("https://example.kz/x?y"), Some("/x"));
        assert_eq!(path_of("https://example.kz"), Some("/"));
        assert_eq!(path_of("*"), None);
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            for f in [Format::Combined, Format::Common, Format::Json] {
                let _ = parse_line(f, &line);
            }
        }

        #[test]
        fn clf_time_agrees_with_chrono(secs in 0i64..4_000_000_000, off_min in -720i64..840) {
            let off = chrono::FixedOffset::east_opt((off_min * 60) as i32).unwrap();
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&off);
            let text = t.format("%d/%b/%Y:%H:%M:%S %z").to_string();
            prop_assert_eq!(clf_time(&text), Some(secs));
            prop_assert_eq!(iso_time(&t.to_rfc3339()), Some(secs));
        }
    }
}
