//! What a hit says once nothing personal is left: the route (ids and query
//! dropped), the browser, OS and device class (woothee, cached per agent;
//! the app's own agent recognised), the referring site and social network.

use std::collections::HashMap;

/// Device classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    Phone,
    Tablet,
    Desktop,
    Bot,
    /// The iBusiness app itself.
    App,
    Other,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Phone => "phone",
            Device::Tablet => "tablet",
            Device::Desktop => "desktop",
            Device::Bot => "bot",
            Device::App => "app",
            Device::Other => "other",
        }
    }
}

/// A user agent, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub browser: String,
    pub os: String,
    pub device: Device,
    /// A stable 64-bit digest of the agent string (the same in every
    /// process), part of a visitor's identity as GoAccess defines it.
    pub digest: u64,
}

/// FNV-1a, 64 bit: stable across processes and versions.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Classify an agent string (uncached; see [`AgentCache`]).
pub fn classify_agent(parser: &woothee::parser::Parser, ua: &str) -> Agent {
    let digest = fnv1a(ua.as_bytes());
    if let Some(rest) = ua.strip_prefix("iBusiness/") {
        // `iBusiness/3.2.1 (Android 13; SM-A515F)`
        let version: String = rest
            .split([' ', '('])
            .next()
            .unwrap_or("")
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".");
        let os = rest
            .split_once('(')
            .and_then(|(_, r)| r.split([';', ')']).next())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        return Agent {
            browser: format!("iBusiness app {version}").trim_end().to_string(),
            os,
            device: Device::App,
            digest,
        };
    }
    if ua.is_empty() {
        return Agent {
            browser: "(none)".into(),
            os: "unknown".into(),
            device: Device::Other,
            digest,
        };
    }
    match parser.parse(ua) {
        None => Agent {
            browser: "unknown".into(),
            os: "unknown".into(),
            device: Device::Other,
            digest,
        },
        Some(r) => {
            let device = match r.category {
                "pc" => Device::Desktop,
                "crawler" => Device::Bot,
                "smartphone" | "mobilephone"
                    if ua.contains("iPad")
                        || (ua.contains("Android") && !ua.contains("Mobile")) =>
                {
                    Device::Tablet
                }
                "smartphone" | "mobilephone" => Device::Phone,
                _ => Device::Other,
            };
            let known = |s: &str| {
                if s == "UNKNOWN" || s.is_empty() {
                    "unknown".to_string()
                } else {
                    s.to_string()
                }
            };
            Agent {
                browser: known(r.name),
                os: known(r.os),
                device,
                digest,
            }
        }
    }
}

/// Agents classified once each: the hot path looks a string up instead of
/// parsing it again. Bounded: past `capacity` distinct agents it starts over.
pub struct AgentCache {
    parser: woothee::parser::Parser,
    ids: HashMap<Box<str>, u32>,
    agents: Vec<Agent>,
    capacity: usize,
}

impl std::fmt::Debug for AgentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCache")
            .field("agents", &self.agents.len())
            .finish_non_exhaustive()
    }
}

impl Default for AgentCache {
    fn default() -> Self {
        AgentCache::new(100_000)
    }
}

impl AgentCache {
    pub fn new(capacity: usize) -> AgentCache {
        AgentCache {
            parser: woothee::parser::Parser::new(),
            ids: HashMap::new(),
            agents: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// The agent's index in this cache (valid until the cache starts over).
    pub fn id(&mut self, ua: &str) -> u32 {
        if let Some(&id) = self.ids.get(ua) {
            return id;
        }
        if self.agents.len() >= self.capacity {
            self.ids.clear();
            self.agents.clear();
        }
        let id = self.agents.len() as u32;
        self.agents.push(classify_agent(&self.parser, ua));
        self.ids.insert(ua.into(), id);
        id
    }

    pub fn get(&self, id: u32) -> &Agent {
        &self.agents[id as usize]
    }

    /// The agent, classified (once).
    pub fn agent(&mut self, ua: &str) -> &Agent {
        let id = self.id(ua);
        self.get(id)
    }
}

/// Social networks by their hosts.
const SOCIAL: &[(&str, &str)] = &[
    ("instagram.com", "Instagram"),
    ("l.instagram.com", "Instagram"),
    ("t.me", "Telegram"),
    ("telegram.org", "Telegram"),
    ("web.telegram.org", "Telegram"),
    ("facebook.com", "Facebook"),
    ("m.facebook.com", "Facebook"),
    ("l.facebook.com", "Facebook"),
    ("lm.facebook.com", "Facebook"),
    ("fb.com", "Facebook"),
    ("vk.com", "VK"),
    ("m.vk.com", "VK"),
    ("ok.ru", "Odnoklassniki"),
    ("twitter.com", "X (Twitter)"),
    ("x.com", "X (Twitter)"),
    ("t.co", "X (Twitter)"),
    ("youtube.com", "YouTube"),
    ("m.youtube.com", "YouTube"),
    ("tiktok.com", "TikTok"),
    ("linkedin.com", "LinkedIn"),
    ("wa.me", "WhatsApp"),
    ("whatsapp.com", "WhatsApp"),
    ("web.whatsapp.com", "WhatsApp"),
    ("threads.net", "Threads"),
];

/// The referring site (host without `www.` and port; `(direct)` when none)
/// and the social network it belongs to, if any.
pub fn referrer_site(referrer: &str) -> (&str, Option<&'static str>) {
    if referrer.is_empty() {
        return ("(direct)", None);
    }
    let rest = match referrer.find("://") {
        Some(i) => &referrer[i + 3..],
        None => referrer,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    let host = match host.rfind(':') {
        Some(i) if !host.starts_with('[') => &host[..i],
        _ => host,
    };
    let host = host.strip_prefix("www.").unwrap_or(host);
    if host.is_empty() {
        return ("(unknown)", None);
    }
    let social = SOCIAL
        .iter()
        .find(|(h, _)| host.eq_ignore_ascii_case(h))
        .map(|(_, n)| *n);
    (host, social)
}

/// Does a path segment identify something (an id, a token, an e-mail, an
/// IIN), so that it must not become part of a route?
fn is_identifier(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == b.len() {
        return true;
    }
    if seg.contains('@') || seg.contains('%') {
        return true;
    }
    let hexish = b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-');
    if hexish && b.len() >= 16 {
        return true;
    }
    // Tokens: long, mixing letters and many digits.
    b.len() >= 8 && digits >= 3
}

/// The route of a path: identifying segments become `{id}`, at most 8
/// segments and 200 bytes are kept. Borrowed when nothing changes.
pub fn route(path: &str) -> std::borrow::Cow<'_, str> {
    let mut buf = String::new();
    match route_into(path, &mut buf) {
        Some(_) => std::borrow::Cow::Owned(buf),
        None => std::borrow::Cow::Borrowed(path),
    }
}

/// [`route`] without allocating: `None` when the path is its own route,
/// otherwise the route written into `buf` (reused line after line).
pub fn route_into<'b>(path: &str, buf: &'b mut String) -> Option<&'b str> {
    let needs_work = path.len() > 200
        || path.split('/').filter(|s| !s.is_empty()).count() > 8
        || path.split('/').any(is_identifier);
    if !needs_work {
        return None;
    }
    buf.clear();
    for seg in path.split('/').filter(|s| !s.is_empty()).take(8) {
        buf.push('/');
        buf.push_str(if is_identifier(seg) { "{id}" } else { seg });
        if buf.len() > 200 {
            let mut cut = 200;
            while !buf.is_char_boundary(cut) {
                cut -= 1;
            }
            buf.truncate(cut);
            break;
        }
    }
    if buf.is_empty() {
        buf.push('/');
    }
    Some(buf.as_str())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn agents() {
        let mut c = AgentCache::default();
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "Chrome", Device::Desktop),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Safari", Device::Phone),
            ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Safari", Device::Tablet),
            ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "Chrome", Device::Tablet),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", Device::Bot),
            ("iBusiness/3.2.1 (Android 13; SM-A515F)", "iBusiness app 3.2", Device::App),
        ];
        for (ua, browser, device) in cases {
            let a = c.agent(ua).clone();
            assert_eq!((a.browser.as_str(), a.device), (browser, device), "{ua}");
        }
        let app = c.agent("iBusiness/3.2.1 (iOS 17.1; iPhone14,2)").clone();
        assert_eq!(app.os, "iOS 17.1");
        assert_eq!(c.agent("").browser, "(none)");
        // Cached: the same id, and a stable digest.
        let first = c.id(cases[0].0);
        assert_eq!(c.id(cases[0].0), first);
        assert_eq!(c.get(first).digest, fnv1a(cases[0].0.as_bytes()));
        let mut small = AgentCache::new(2);
        for ua in ["a", "b", "c", "d"] {
            let id = small.id(ua);
            assert_eq!(small.get(id).digest, fnv1a(ua.as_bytes()));
        }
    }

    #[test]
    fn referrers() {
        assert_eq!(
            referrer_site("https://www.instagram.com/p/xyz"),
            ("instagram.com", Some("Instagram"))
        );
        assert_eq!(
            referrer_site("https://t.me/ibusiness_kz"),
            ("t.me", Some("Telegram"))
        );
        assert_eq!(
            referrer_site("http://user:pw@example.kz:8080/a?b"),
            ("example.kz", None)
        );
        assert_eq!(referrer_site(""), ("(direct)", None));
        assert_eq!(
            referrer_site("android-app://com.google.android.gm/"),
            ("com.google.android.gm", None)
        );
    }

    #[test]
    fn routes_drop_identifiers() {
        assert_eq!(route("/api/v1/orders"), "/api/v1/orders");
        assert!(matches!(
            route("/api/v1/orders"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(route("/api/v1/orders/123"), "/api/v1/orders/{id}");
        assert_eq!(route("/users/871008401427/profile"), "/users/{id}/profile");
        assert_eq!(route("/s/0190b7e2-6f4c-7abc-8def-0123456789ab"), "/s/{id}");
        assert_eq!(route("/reset/aB3dE9fG7hJ2"), "/reset/{id}");
        assert_eq!(route("/mail/someone@example.kz"), "/mail/{id}");
        assert_eq!(route("/a/b/c/d/e/f/g/h/i/j"), "/a/b/c/d/e/f/g/h");
        assert_eq!(route("/"), "/");
    }
}
