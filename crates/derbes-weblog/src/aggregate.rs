//! Daily aggregates: requests and unique visitors per route, status,
//! browser, OS, device, referring site, social network and hour. A visitor
//! is GoAccess's: the same client (pseudonym), the same day, the same agent.
//! Unique counts are exact sets up to a limit and a HyperLogLog sketch
//! beyond it; both merge, so aggregates built by several ingesters from parts
//! of the logs add up to the aggregate of the whole.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::NaiveDate;
use serde::Serialize;

/// What a cell is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    Route,
    Status,
    Browser,
    Os,
    Device,
    Referrer,
    Social,
    Hour,
}

impl Dim {
    pub const ALL: [Dim; 8] = [
        Dim::Route,
        Dim::Status,
        Dim::Browser,
        Dim::Os,
        Dim::Device,
        Dim::Referrer,
        Dim::Social,
        Dim::Hour,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Route => "route",
            Dim::Status => "status",
            Dim::Browser => "browser",
            Dim::Os => "os",
            Dim::Device => "device",
            Dim::Referrer => "referrer",
            Dim::Social => "social",
            Dim::Hour => "hour",
        }
    }

    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// The visitor ids are already uniform 64-bit digests: hash them as they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdSet = HashSet<u64, BuildHasherDefault<IdentityHasher>>;
type StrMap<V> = HashMap<Box<str>, V, rustc_hash::FxBuildHasher>;

/// HyperLogLog registers (precision 14: 16,384 registers, ±0.8 %).
const P: u32 = 14;
const M: usize = 1 << P;

/// Unique visitors: exact up to a limit, then a sketch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visitors {
    Exact(IdSet),
    Sketch(Box<[u8; M]>),
}

impl Default for Visitors {
    fn default() -> Self {
        Visitors::Exact(IdSet::default())
    }
}

fn sketch_add(regs: &mut [u8; M], id: u64) {
    let idx = (id >> (64 - P)) as usize;
    let rank = ((id << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
    if regs[idx] < rank {
        regs[idx] = rank;
    }
}

/// The union of two stored visitor sets (for the store's merge).
pub fn merge_stored(a: &[u8], b: &[u8], exact_limit: usize) -> Option<Vec<u8>> {
    let mut x = Visitors::from_bytes(a)?;
    x.merge(&Visitors::from_bytes(b)?, exact_limit);
    Some(x.to_bytes())
}

impl Visitors {
    pub fn insert(&mut self, id: u64, exact_limit: usize) {
        match self {
            Visitors::Exact(set) => {
                set.insert(id);
                if set.len() > exact_limit {
                    self.make_sketch();
                }
            }
            Visitors::Sketch(regs) => sketch_add(regs, id),
        }
    }

    fn make_sketch(&mut self) {
        if let Visitors::Exact(set) = self {
            let mut regs = Box::new([0u8; M]);
            for id in set.iter() {
                sketch_add(&mut regs, *id);
            }
            *self = Visitors::Sketch(regs);
        }
    }

    /// The union.
    pub fn merge(&mut self, other: &Visitors, exact_limit: usize) {
        match other {
            Visitors::Exact(set) => {
                for id in set {
                    self.insert(*id, exact_limit);
                }
            }
            Visitors::Sketch(theirs) => {
                self.make_sketch();
                if let Visitors::Sketch(ours) = self {
                    for (a, b) in ours.iter_mut().zip(theirs.iter()) {
                        *a = (*a).max(*b);
                    }
                }
            }
        }
    }

    /// How many, and whether the figure is an estimate.
    pub fn count(&self) -> (u64, bool) {
        match self {
            Visitors::Exact(set) => (set.len() as u64, false),
            Visitors::Sketch(regs) => {
                let m = M as f64;
                let alpha = 0.7213 / (1.0 + 1.079 / m);
                let sum: f64 = regs.iter().map(|r| 2f64.powi(-(*r as i32))).sum();
                let zeros = regs.iter().filter(|r| **r == 0).count();
                let raw = alpha * m * m / sum;
                let est = if raw <= 2.5 * m && zeros > 0 {
                    m * (m / zeros as f64).ln()
                } else {
                    raw
                };
                (est.round() as u64, true)
            }
        }
    }

    /// Stored form: `0` + sorted ids, or `1` + registers.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Visitors::Exact(set) => {
                let mut ids: Vec<u64> = set.iter().copied().collect();
                ids.sort_unstable();
                let mut out = Vec::with_capacity(1 + ids.len() * 8);
                out.push(0);
                for id in ids {
                    out.extend_from_slice(&id.to_le_bytes());
                }
                out
            }
            Visitors::Sketch(regs) => {
                let mut out = Vec::with_capacity(1 + M);
                out.push(1);
                out.extend_from_slice(&regs[..]);
                out
            }
        }
    }

    pub fn from_bytes(b: &[u8]) -> Option<Visitors> {
        match b.split_first()? {
            (0, ids) if ids.len() % 8 == 0 => Some(Visitors::Exact(
                ids.chunks_exact(8)
                    .map(|c| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        u64::from_le_bytes(a)
                    })
                    .collect(),
            )),
            (1, regs) if regs.len() == M => {
                let mut r = Box::new([0u8; M]);
                r.copy_from_slice(regs);
                Some(Visitors::Sketch(r))
            }
            _ => None,
        }
    }
}

/// Requests and visitors of one cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    pub requests: u64,
    pub visitors: Visitors,
}

impl Cell {
    fn add(&mut self, visitor: u64, exact_limit: usize) {
        self.requests += 1;
        self.visitors.insert(visitor, exact_limit);
    }

    pub fn merge(&mut self, other: &Cell, exact_limit: usize) {
        self.requests += other.requests;
        self.visitors.merge(&other.visitors, exact_limit);
    }
}

/// One day's cells.
#[derive(Debug, Clone, Default)]
pub struct Day {
    pub total: Cell,
    pub cells: [StrMap<Cell>; 8],
}

/// The values one hit adds to (`None`: no cell, e.g. no social network).
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    pub values: [Option<&'a str>; 8],
}

/// Aggregates by Almaty day.
#[derive(Debug, Clone)]
pub struct Aggregates {
    pub days: BTreeMap<NaiveDate, Day>,
    /// Exact visitor sets up to this size, then a sketch.
    pub exact_limit: usize,
}

/// Default size up to which unique counts are exact.
pub const EXACT_LIMIT: usize = 10_000;

impl Default for Aggregates {
    fn default() -> Self {
        Aggregates::new(EXACT_LIMIT)
    }
}

impl Aggregates {
    pub fn new(exact_limit: usize) -> Aggregates {
        Aggregates {
            days: BTreeMap::new(),
            exact_limit,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// Count one hit of `visitor` on `day`.
    pub fn add(&mut self, day: NaiveDate, values: &Values<'_>, visitor: u64) {
        let limit = self.exact_limit;
        let d = self.days.entry(day).or_default();
        d.total.add(visitor, limit);
        for (i, v) in values.values.iter().enumerate() {
            if let Some(v) = v {
                match d.cells[i].get_mut(*v) {
                    Some(c) => c.add(visitor, limit),
                    None => {
                        let mut c = Cell::default();
                        c.add(visitor, limit);
                        d.cells[i].insert((*v).into(), c);
                    }
                }
            }
        }
    }

    /// Add a stored cell (`dim` `None`: the day's total).
    pub fn merge_cell(&mut self, day: NaiveDate, dim: Option<Dim>, value: &str, cell: &Cell) {
        let limit = self.exact_limit;
        let d = self.days.entry(day).or_default();
        match dim {
            None => d.total.merge(cell, limit),
            Some(dim) => d.cells[dim as usize]
                .entry(value.into())
                .or_default()
                .merge(cell, limit),
        }
    }

    /// Add everything of `other`.
    pub fn merge(&mut self, other: &Aggregates) {
        for (day, d) in &other.days {
            self.merge_cell(*day, None, "", &d.total);
            for dim in Dim::ALL {
                for (value, cell) in &d.cells[dim as usize] {
                    self.merge_cell(*day, Some(dim), value, cell);
                }
            }
        }
    }

    /// Every cell: (day, dim or `None` for the total, value, cell).
    pub fn cells(&self) -> impl Iterator<Item = (NaiveDate, Option<Dim>, &str, &Cell)> {
        self.days.iter().flat_map(|(day, d)| {
            std::iter::once((*day, None, "", &d.total)).chain(Dim::ALL.into_iter().flat_map(
                move |dim| {
                    d.cells[dim as usize]
                        .iter()
                        .map(move |(v, c)| (*day, Some(dim), v.as_ref(), c))
                },
            ))
        })
    }

    /// Every cell in stored form: (day `YYYY-MM-DD`, dimension or `total`,
    /// value, requests, visitors as bytes).
    pub fn to_rows(&self) -> Vec<(String, &'static str, String, u64, Vec<u8>)> {
        self.cells()
            .map(|(day, dim, value, cell)| {
                (
                    day.to_string(),
                    dim.map(Dim::as_str).unwrap_or("total"),
                    value.to_string(),
                    cell.requests,
                    cell.visitors.to_bytes(),
                )
            })
            .collect()
    }

    /// Add a stored row (see [`Aggregates::to_rows`]); false if it is damaged.
    pub fn add_row(
        &mut self,
        day: &str,
        dim: &str,
        value: &str,
        requests: u64,
        visitors: &[u8],
    ) -> bool {
        let Ok(day) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
            return false;
        };
        let dim = match dim {
            "total" => None,
            d => match Dim::parse(d) {
                Some(d) => Some(d),
                None => return false,
            },
        };
        let Some(visitors) = Visitors::from_bytes(visitors) else {
            return false;
        };
        self.merge_cell(day, dim, value, &Cell { requests, visitors });
        true
    }

    /// Total requests.
    pub fn requests(&self) -> u64 {
        self.days.values().map(|d| d.total.requests).sum()
    }

    /// The cells of `dim` (or `None`: per day) over every day held, merged,
    /// with k-anonymity: a cell of fewer than `k` visitors is suppressed
    /// (counted in `suppressed`, never shown).
    pub fn report(&self, by: Report, k: u64) -> StatsReport {
        let mut merged: BTreeMap<String, Cell> = BTreeMap::new();
        for (day, d) in &self.days {
            match by {
                Report::Day => merged
                    .entry(day.to_string())
                    .or_default()
                    .merge(&d.total, self.exact_limit),
                Report::Dim(dim) => {
                    for (v, c) in &d.cells[dim as usize] {
                        merged
                            .entry(v.to_string())
                            .or_default()
                            .merge(c, self.exact_limit);
                    }
                }
            }
        }
        let mut out = StatsReport {
            by: match by {
                Report::Day => "day",
                Report::Dim(d) => d.as_str(),
            },
            k,
            rows: Vec::new(),
            suppressed_cells: 0,
            suppressed_requests: 0,
        };
        for (value, cell) in merged {
            let (visitors, approximate) = cell.visitors.count();
            if visitors < k {
                out.suppressed_cells += 1;
                out.suppressed_requests += cell.requests;
                continue;
            }
            out.rows.push(StatRow {
                value,
                requests: cell.requests,
                visitors,
                approximate,
            });
        }
        out.rows
            .sort_by(|a, b| b.requests.cmp(&a.requests).then(a.value.cmp(&b.value)));
        if matches!(by, Report::Day | Report::Dim(Dim::Hour)) {
            out.rows.sort_by(|a, b| a.value.cmp(&b.value));
        }
        out
    }
}

/// What a report is by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Day,
    Dim(Dim),
}

impl Report {
    pub fn parse(s: &str) -> Option<Report> {
        if s == "day" {
            return Some(Report::Day);
        }
        Dim::parse(s).map(Report::Dim)
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatRow {
    pub value: String,
    pub requests: u64,
    pub visitors: u64,
    /// The visitor count is a sketch's estimate.
    pub approximate: bool,
}

/// A k-anonymous report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsReport {
    pub by: &'static str,
    pub k: u64,
    pub rows: Vec<StatRow>,
    /// Cells of fewer than k visitors, left out.
    pub suppressed_cells: u64,
    pub suppressed_requests: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn v<'a>(route: &'a str, status: &'a str) -> Values<'a> {
        let mut values = [None; 8];
        values[Dim::Route as usize] = Some(route);
        values[Dim::Status as usize] = Some(status);
        Values { values }
    }

    /// A well-mixed visitor id (splitmix64).
    fn id(i: u64) -> u64 {
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn merge_of_halves_equals_the_whole() {
        let mut whole = Aggregates::new(50);
        let (mut a, mut b) = (Aggregates::new(50), Aggregates::new(50));
        for i in 0..1000u64 {
            let d = if i % 3 == 0 {
                day("2026-11-23")
            } else {
                day("2026-11-24")
            };
            let route = ["/a", "/b", "/c"][(i % 3) as usize];
            let status = if i % 7 == 0 { "404" } else { "200" };
            let visitor = id(i % 120);
            whole.add(d, &v(route, status), visitor);
            if i % 2 == 0 { &mut a } else { &mut b }.add(d, &v(route, status), visitor);
        }
        a.merge(&b);
        let key = |x: &Aggregates| {
            let mut v = x.to_rows();
            v.sort();
            v
        };
        assert_eq!(key(&a), key(&whole));
        assert_eq!(whole.requests(), 1000);
    }

    #[test]
    fn exact_then_sketch_and_round_trip() {
        let mut vis = Visitors::default();
        for i in 0..100 {
            vis.insert(id(i), 1000);
            vis.insert(id(i), 1000);
        }
        assert_eq!(vis.count(), (100, false));
        for i in 100..50_000 {
            vis.insert(id(i), 1000);
        }
        let (n, approx) = vis.count();
        assert!(approx);
        let err = (n as f64 - 50_000.0).abs() / 50_000.0;
        assert!(err < 0.05, "{n}");
        assert_eq!(Visitors::from_bytes(&vis.to_bytes()).unwrap(), vis);
        let small = {
            let mut s = Visitors::default();
            s.insert(7, 10);
            s
        };
        assert_eq!(Visitors::from_bytes(&small.to_bytes()).unwrap(), small);
        assert!(Visitors::from_bytes(&[9, 9]).is_none());
    }

    #[test]
    fn k_anonymity_suppresses_small_cells() {
        let mut agg = Aggregates::default();
        for i in 0..10 {
            agg.add(day("2026-11-24"), &v("/popular", "200"), id(i));
        }
        for i in 0..4 {
            agg.add(day("2026-11-24"), &v("/rare", "200"), id(i));
        }
        // Many requests by one visitor are still one visitor.
        for _ in 0..50 {
            agg.add(day("2026-11-24"), &v("/one-person", "200"), id(99));
        }
        let r = agg.report(Report::Dim(Dim::Route), 5);
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].value, "/popular");
        assert_eq!((r.suppressed_cells, r.suppressed_requests), (2, 54));
        let all = agg.report(Report::Dim(Dim::Route), 1);
        assert_eq!(all.rows.len(), 3);
        assert_eq!(all.rows[0].value, "/one-person");
    }
}
