//! The pipeline: bytes → lines → hits → (pseudonym, agent, route, site,
//! Almaty day and hour) → aggregates. Nothing per line is allocated once
//! the caches are warm: agents are classified once, a client's pseudonym is
//! computed once a day, the Almaty offset once an hour.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use chrono::{NaiveDate, Offset, TimeZone};
use serde::Serialize;

use crate::aggregate::{Aggregates, Dim, Values};
use crate::classify::{referrer_site, route_into, AgentCache};
use crate::parse::{parse_line, Format, Malformed};
use crate::pseudonym::{pseudonym, DailyKeys, KeyError};

/// Lines longer than this are refused (`too_long`) without being buffered.
pub const MAX_LINE: usize = 64 * 1024;
/// Line numbers kept per refusal reason.
const KEEP_LINES: usize = 20;

/// How one reason's refusals went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Refusals {
    pub count: u64,
    /// The first line numbers (1-based) refused for this reason.
    pub lines: Vec<u64>,
}

/// What an ingest did. Never holds a line's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub lines: u64,
    pub bytes: u64,
    /// Lines counted in the aggregates.
    pub counted: u64,
    /// Lines of days whose key was already destroyed (or too far ahead):
    /// they cannot be pseudonymised, so they are not counted.
    pub outside_window: u64,
    /// The oldest day of those lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_outside: Option<NaiveDate>,
    /// Refused lines by reason.
    pub malformed: BTreeMap<&'static str, Refusals>,
    /// The input ended in the middle of a line.
    pub truncated_last_line: bool,
}

impl Summary {
    pub fn malformed_total(&self) -> u64 {
        self.malformed.values().map(|r| r.count).sum()
    }

    fn refuse(&mut self, reason: Malformed, line: u64) {
        let r = self.malformed.entry(reason.as_str()).or_default();
        r.count += 1;
        if r.lines.len() < KEEP_LINES {
            r.lines.push(line);
        }
    }

    /// Add another summary (several files).
    pub fn merge(&mut self, other: &Summary) {
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.counted += other.counted;
        self.outside_window += other.outside_window;
        self.oldest_outside = match (self.oldest_outside, other.oldest_outside) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.truncated_last_line |= other.truncated_last_line;
        for (k, v) in &other.malformed {
            let r = self.malformed.entry(k).or_default();
            r.count += v.count;
            for l in &v.lines {
                if r.lines.len() < KEEP_LINES {
                    r.lines.push(*l);
                }
            }
        }
    }
}

/// A visitor id from a day's pseudonym and the agent's digest, well mixed
/// (splitmix64's finaliser) so that sketches see uniform bits.
pub fn visitor_id(pseudonym: u64, agent_digest: u64) -> u64 {
    let mut z = pseudonym ^ agent_digest.rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const HOURS: [&str; 24] = [
    "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23",
];

fn status_text(s: u16) -> std::borrow::Cow<'static, str> {
    const COMMON: [(u16, &str); 16] = [
        (200, "200"),
        (201, "201"),
        (204, "204"),
        (206, "206"),
        (301, "301"),
        (302, "302"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
    ];
    match COMMON.iter().find(|(c, _)| *c == s) {
        Some((_, t)) => std::borrow::Cow::Borrowed(t),
        None => std::borrow::Cow::Owned(s.to_string()),
    }
}

/// Pseudonyms of one day by client address.
type PseudonymCache = HashMap<Box<str>, u64, rustc_hash::FxBuildHasher>;

/// Turns lines into aggregates.
#[derive(Debug)]
pub struct Ingester {
    format: Format,
    keys: DailyKeys,
    today: NaiveDate,
    agents: AgentCache,
    /// Pseudonyms of the day being read, by client address.
    day_cache: Option<(NaiveDate, PseudonymCache)>,
    /// The Almaty offset of the last hour seen: (unix hour, offset seconds).
    hour_offset: (i64, i64),
    pub aggregates: Aggregates,
    pub summary: Summary,
    line_no: u64,
    /// Reused for routes that lose ids.
    route_buf: String,
}

impl Ingester {
    /// `today` is the Almaty date now: it decides which days are open.
    pub fn new(format: Format, keys: DailyKeys, today: NaiveDate, exact_limit: usize) -> Ingester {
        Ingester {
            format,
            keys,
            today,
            agents: AgentCache::default(),
            day_cache: None,
            hour_offset: (i64::MIN, 0),
            aggregates: Aggregates::new(exact_limit),
            summary: Summary::default(),
            line_no: 0,
            route_buf: String::with_capacity(256),
        }
    }

    /// A new day may have begun (a long `--follow`): move `today`, destroy
    /// the keys of days that closed and forget their pseudonyms.
    pub fn advance(&mut self, today: NaiveDate) -> Result<(), KeyError> {
        self.today = today;
        self.keys.close_days(today)?;
        if self
            .day_cache
            .as_ref()
            .is_some_and(|(d, _)| !self.keys.is_open(*d, today))
        {
            self.day_cache = None;
        }
        Ok(())
    }

    /// Start numbering lines afresh (a new file).
    /// Days a day's key lives for this ingester.
    pub fn window_days(&self) -> u32 {
        self.keys.window_days()
    }

    pub fn restart_lines(&mut self) {
        self.line_no = 0;
    }

    /// Take the aggregates and summary gathered so far (the caches stay warm).
    pub fn take(&mut self) -> (Aggregates, Summary) {
        let limit = self.aggregates.exact_limit;
        (
            std::mem::replace(&mut self.aggregates, Aggregates::new(limit)),
            std::mem::take(&mut self.summary),
        )
    }

    fn almaty_offset(&mut self, at: i64) -> i64 {
        let hour = at.div_euclid(3600);
        if self.hour_offset.0 != hour {
            let off = chrono::DateTime::from_timestamp(hour * 3600, 0)
                .map(|t| {
                    derbes_kz::ALMATY
                        .offset_from_utc_datetime(&t.naive_utc())
                        .fix()
                        .local_minus_utc() as i64
                })
                .unwrap_or(5 * 3600);
            self.hour_offset = (hour, off);
        }
        self.hour_offset.1
    }

    /// One line (without its newline).
    pub fn line(&mut self, line: &[u8]) -> Result<(), KeyError> {
        self.process(line, false)
    }

    /// `unterminated`: the input ended inside this line; if it does not
    /// parse it is refused as `truncated`.
    fn process(&mut self, line: &[u8], unterminated: bool) -> Result<(), KeyError> {
        self.line_no += 1;
        self.summary.lines += 1;
        self.summary.bytes += line.len() as u64 + 1;
        if line.len() > MAX_LINE {
            self.summary.refuse(Malformed::TooLong, self.line_no);
            return Ok(());
        }
        let hit = match parse_line(self.format, line) {
            Ok(h) => h,
            Err(m) => {
                let reason = if unterminated {
                    Malformed::Truncated
                } else {
                    m
                };
                self.summary.refuse(reason, self.line_no);
                return Ok(());
            }
        };
        let local = hit.at + self.almaty_offset(hit.at);
        let days = local.div_euclid(86_400);
        let hour = (local.rem_euclid(86_400) / 3600) as usize;
        let Some(day) = NaiveDate::from_num_days_from_ce_opt((days + 719_163) as i32) else {
            self.summary.refuse(Malformed::BadTime, self.line_no);
            return Ok(());
        };
        let cached = match &mut self.day_cache {
            Some((d, map)) if *d == day => map.get(hit.client.as_ref()).copied(),
            _ => {
                self.day_cache = Some((day, HashMap::default()));
                None
            }
        };
        let pseudo = match cached {
            Some(p) => p,
            None => {
                let Some(key) = self.keys.key(day, self.today)? else {
                    self.summary.outside_window += 1;
                    if day < self.today {
                        let oldest = self.summary.oldest_outside.get_or_insert(day);
                        *oldest = (*oldest).min(day);
                    }
                    return Ok(());
                };
                let p = pseudonym(key, &hit.client);
                if let Some((_, map)) = &mut self.day_cache {
                    if map.len() > 1_000_000 {
                        map.clear();
                    }
                    map.insert(hit.client.as_ref().into(), p);
                }
                p
            }
        };
        let agent_id = self.agents.id(&hit.agent);
        let agent = self.agents.get(agent_id);
        let visitor = visitor_id(pseudo, agent.digest);
        let r = route_into(&hit.path, &mut self.route_buf).unwrap_or(&hit.path);
        let status = status_text(hit.status);
        let (site, social) = referrer_site(&hit.referrer);
        let mut values = [None; 8];
        values[Dim::Route as usize] = Some(r);
        values[Dim::Status as usize] = Some(status.as_ref());
        values[Dim::Browser as usize] = Some(agent.browser.as_str());
        values[Dim::Os as usize] = Some(agent.os.as_str());
        values[Dim::Device as usize] = Some(agent.device.as_str());
        values[Dim::Referrer as usize] = Some(site);
        values[Dim::Social as usize] = social;
        values[Dim::Hour as usize] = Some(HOURS[hour]);
        self.aggregates.add(day, &Values { values }, visitor);
        self.summary.counted += 1;
        Ok(())
    }

    /// A line longer than [`MAX_LINE`] (`len` bytes), refused unread.
    fn too_long(&mut self, len: usize) {
        self.line_no += 1;
        self.summary.lines += 1;
        self.summary.bytes += len as u64 + 1;
        self.summary.refuse(Malformed::TooLong, self.line_no);
    }

    /// Read lines until the end of `input`. With `hold_partial`, a last line
    /// without its newline is not counted (a writer may be finishing it) and
    /// the returned offset stops before it; otherwise it is read as a line,
    /// refused as `truncated` if it does not parse, and `truncated_last_line`
    /// is set. Returns the bytes of the lines handled.
    pub fn read(
        &mut self,
        input: &mut dyn BufRead,
        hold_partial: bool,
    ) -> Result<u64, IngestError> {
        self.read_with(input, hold_partial, &mut |_| {})
    }

    /// [`Ingester::read`], telling `progress` how it goes every 65,536 lines.
    pub fn read_with(
        &mut self,
        input: &mut dyn BufRead,
        hold_partial: bool,
        progress: &mut dyn FnMut(&Summary),
    ) -> Result<u64, IngestError> {
        let mut consumed = 0u64;
        let mut next_report = self.summary.lines + 65_536;
        // A line split across buffers: what is kept of it, and its length so far.
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_len = 0usize;
        loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    let len = pending_len + i;
                    if pending_len == 0 {
                        // The whole line is in the buffer: read in place.
                        self.line(&buf[..i])?;
                    } else if len > MAX_LINE {
                        self.too_long(len);
                    } else {
                        pending.extend_from_slice(&buf[..i]);
                        self.line(&pending)?;
                    }
                    pending.clear();
                    pending_len = 0;
                    input.consume(i + 1);
                    consumed += len as u64 + 1;
                    if self.summary.lines >= next_report {
                        next_report = self.summary.lines + 65_536;
                        progress(&self.summary);
                    }
                }
                None => {
                    let n = buf.len();
                    if pending_len + n <= MAX_LINE {
                        pending.extend_from_slice(buf);
                    }
                    pending_len += n;
                    input.consume(n);
                }
            }
        }
        if pending_len > 0 {
            if hold_partial {
                return Ok(consumed);
            }
            self.summary.truncated_last_line = true;
            if pending_len > MAX_LINE {
                self.too_long(pending_len);
                self.summary.bytes -= 1;
            } else {
                self.process(&pending, true)?;
                self.summary.bytes -= 1;
            }
            consumed += pending_len as u64;
        }
        Ok(consumed)
    }
}

/// Why an ingest stopped (nothing of it is committed).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("reading the input: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// `input`, gunzipped when it starts with the gzip magic bytes.
pub fn maybe_gunzip<'a>(
    mut input: Box<dyn BufRead + 'a>,
) -> std::io::Result<Box<dyn BufRead + 'a>> {
    let head = input.fill_buf()?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        let gz = flate2::bufread::MultiGzDecoder::new(input);
        return Ok(Box::new(std::io::BufReader::with_capacity(256 * 1024, gz)));
    }
    Ok(input)
}
