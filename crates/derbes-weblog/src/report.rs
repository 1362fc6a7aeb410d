//! One self-contained page of usage statistics: inline SVG charts, inline
//! style, no script, nothing fetched. Every figure is k-anonymous already.

use std::fmt::Write;

use chrono::NaiveDate;
use derbes_policy::html_escape as esc;

use crate::aggregate::StatsReport;

fn title(by: &str) -> &'static str {
    match by {
        "day" => "Requests and visitors per day",
        "route" => "Routes",
        "status" => "Status codes",
        "browser" => "Browsers",
        "os" => "Operating systems",
        "device" => "Devices",
        "referrer" => "Referring sites",
        "social" => "Social networks",
        "hour" => "Hours of the day (Asia/Almaty)",
        _ => "Other",
    }
}

/// Horizontal bars: one per row (at most `top`), requests to scale.
fn bars(h: &mut String, r: &StatsReport, top: usize) {
    let rows: Vec<_> = r.rows.iter().take(top).collect();
    let max = rows.iter().map(|x| x.requests).max().unwrap_or(1).max(1) as f64;
    let row_h = 22;
    let height = rows.len() * row_h + 4;
    let _ = writeln!(
        h,
        "<svg viewBox=\"0 0 760 {height}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        esc(title(r.by))
    );
    for (i, row) in rows.iter().enumerate() {
        let y = i * row_h;
        let w = (row.requests as f64 / max * 430.0).max(1.0);
        let _ = writeln!(
            h,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"220\" y=\"{}\" width=\"{w:.1}\" height=\"16\" fill=\"#2a5bd7\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"12\" fill=\"#333\">{} · {}{}</text>",
            y + 15,
            esc(&truncate(&row.value, 32)),
            y + 3,
            226.0 + w,
            y + 15,
            row.requests,
            row.visitors,
            if row.approximate { "~" } else { "" }
        );
    }
    h.push_str("</svg>\n");
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// The page: one section per report (`day` first as columns, the rest as bars).
pub fn report_html(
    sections: &[StatsReport],
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    k: u64,
) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let range = match (from, to) {
        (None, None) => "all days".to_string(),
        (f, t) => format!(
            "{} – {}",
            f.map(|d| d.to_string()).unwrap_or_else(|| "…".into()),
            t.map(|d| d.to_string()).unwrap_or_else(|| "…".into())
        ),
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Usage statistics</title><style>body{{font:15px/1.45 system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#1d2330}}\
         h2{{margin-top:2rem;border-bottom:2px solid #2a5bd7}}table{{border-collapse:collapse}}td,th{{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #eee}}\
         td:first-child,th:first-child{{text-align:left}}.muted{{color:#667}}</style></head><body>\n\
         <h1>Usage statistics</h1>\n<p class=\"muted\">{} · depersonalised (policy 3.2): client addresses were pseudonymised under keys destroyed daily; \
         cells describing fewer than {k} visitors are suppressed. Figures: requests · unique visitors (same client, day and agent; ~ estimated).</p>\n",
        esc(&range)
    );
    for r in sections {
        let _ = writeln!(h, "<h2>{}</h2>", esc(title(r.by)));
        if r.rows.is_empty() {
            let _ = writeln!(h, "<p class=\"muted\">nothing to show</p>");
        } else if r.by == "day" {
            let max = r.rows.iter().map(|x| x.requests).max().unwrap_or(1).max(1) as f64;
            let n = r.rows.len().max(1);
            let bw = (740.0 / n as f64).min(40.0);
            let _ = writeln!(
                h,
                "<svg viewBox=\"0 0 760 180\" width=\"100%\" role=\"img\" aria-label=\"requests per day\">"
            );
            for (i, row) in r.rows.iter().enumerate() {
                let bh = row.requests as f64 / max * 150.0;
                let _ = writeln!(
                    h,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#2a5bd7\"><title>{} · {} requests · {} visitors</title></rect>",
                    10.0 + i as f64 * bw,
                    160.0 - bh,
                    (bw - 2.0).max(1.0),
                    esc(&row.value),
                    row.requests,
                    row.visitors
                );
            }
            h.push_str("</svg>\n<table><tr><th>day</th><th>requests</th><th>visitors</th></tr>\n");
            for row in &r.rows {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&row.value),
                    row.requests,
                    row.visitors
                );
            }
            h.push_str("</table>\n");
        } else {
            bars(&mut h, r, 20);
        }
        if r.suppressed_cells > 0 {
            let _ = writeln!(
                h,
                "<p class=\"muted\">{} cells of fewer than {} visitors suppressed ({} requests).</p>",
                r.suppressed_cells, r.k, r.suppressed_requests
            );
        }
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::aggregate::StatRow;

    #[test]
    fn self_contained_and_escaped() {
        let r = StatsReport {
            by: "route",
            k: 5,
            rows: vec![StatRow {
                value: "/<script>alert(1)</script>".into(),
                requests: 10,
                visitors: 6,
                approximate: false,
            }],
            suppressed_cells: 2,
            suppressed_requests: 3,
        };
        let page = report_html(&[r], None, None, 5);
        assert!(!page.contains("<script"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(page.contains("2 cells of fewer than 5 visitors suppressed"));
    }
}
