//! The readable policy document, in Russian, Kazakh or English, as Markdown or HTML.

use crate::model::{Lang, Policy};
use crate::vocab::BlockKind;

/// Output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "md" | "markdown" => Some(Format::Markdown),
            "html" => Some(Format::Html),
            _ => None,
        }
    }
}

/// The layout-neutral pieces a document is made of.
enum El {
    Title(String),
    Meta(String),
    Heading(String),
    Para(String),
    /// A list item and its nesting level (0 or 1).
    Item(String, u8),
    /// A two-column table: header and rows.
    Table(Vec<(String, String)>),
}

fn label(lang: Lang, ru: &'static str, kk: &'static str, en: &'static str) -> &'static str {
    lang.pick(ru, kk, en)
}

fn elements(p: &Policy, lang: Lang) -> Vec<El> {
    let mut out = Vec::new();
    let mut table: Vec<(String, String)> = Vec::new();
    for b in &p.document {
        if b.kind != BlockKind::Term && !table.is_empty() {
            out.push(El::Table(std::mem::take(&mut table)));
        }
        let text = b.text.get(lang).to_string();
        match b.kind {
            BlockKind::Title => {
                out.push(El::Title(text));
                out.push(El::Meta(format!(
                    "{} {} · {} {} · {} ({} {})",
                    label(lang, "Редакция", "Редакциясы", "Version"),
                    p.version,
                    label(lang, "опубликована", "жарияланды", "published"),
                    p.published,
                    p.operator.name.get(lang),
                    label(lang, "БИН", "БСН", "BIN"),
                    p.operator.bin,
                )));
            }
            BlockKind::Heading => out.push(El::Heading(text)),
            BlockKind::Paragraph => out.push(El::Para(text)),
            BlockKind::Item => out.push(El::Item(text, 0)),
            BlockKind::Subitem => out.push(El::Item(text, 1)),
            BlockKind::Term => {
                let term = b
                    .term
                    .as_ref()
                    .map(|t| t.get(lang).to_string())
                    .unwrap_or_default();
                table.push((term, text));
            }
        }
    }
    if !table.is_empty() {
        out.push(El::Table(table));
    }
    appendix(p, lang, &mut out);
    out
}

/// What the policy means in practice: purposes, recipients and deadlines.
fn appendix(p: &Policy, lang: Lang, out: &mut Vec<El>) {
    out.push(El::Heading(
        label(
            lang,
            "Приложение. Цели, получатели и сроки",
            "Қосымша. Мақсаттар, алушылар және мерзімдер",
            "Appendix. Purposes, recipients and deadlines",
        )
        .into(),
    ));
    let cat = |id: &str| {
        p.category(id)
            .map(|c| c.name.get(lang).to_string())
            .unwrap_or_default()
    };
    let mut rows = vec![(
        label(lang, "Цель", "Мақсат", "Purpose").to_string(),
        label(
            lang,
            "Данные и срок хранения",
            "Деректер және сақтау мерзімі",
            "Data and retention",
        )
        .to_string(),
    )];
    for pu in &p.purposes {
        let cats: Vec<String> = pu.categories.iter().map(|c| cat(c)).collect();
        rows.push((
            pu.name.get(lang).to_string(),
            format!("{}. {}", cats.join(", "), pu.retention.basis.get(lang)),
        ));
    }
    out.push(El::Table(rows));
    let mut rows = vec![(
        label(lang, "Получатель", "Алушы", "Recipient").to_string(),
        label(lang, "Цели", "Мақсаттар", "Purposes").to_string(),
    )];
    for r in &p.recipients {
        let purposes: Vec<String> = r
            .purposes
            .iter()
            .filter_map(|id| p.purpose(id).map(|x| x.name.get(lang).to_string()))
            .collect();
        let abroad = if r.cross_border {
            label(
                lang,
                " (трансграничная передача)",
                " (трансшекаралық беру)",
                " (cross-border)",
            )
        } else {
            ""
        };
        rows.push((format!("{}{abroad}", r.name.get(lang)), purposes.join("; ")));
    }
    out.push(El::Table(rows));
    let mut rows = vec![(
        label(lang, "Право", "Құқық", "Right").to_string(),
        label(
            lang,
            "Срок ответа, рабочих дней",
            "Жауап беру мерзімі, жұмыс күндері",
            "Answered within, working days",
        )
        .to_string(),
    )];
    for r in &p.rights {
        rows.push((r.name.get(lang).to_string(), r.deadline_days.to_string()));
    }
    out.push(El::Table(rows));
}

/// Render the policy as a document a person reads.
pub fn render(p: &Policy, lang: Lang, format: Format) -> String {
    let els = elements(p, lang);
    match format {
        Format::Markdown => markdown(&els),
        Format::Html => html(p, lang, &els),
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn markdown(els: &[El]) -> String {
    let mut s = String::new();
    let mut in_list = false;
    for el in els {
        if in_list && !matches!(el, El::Item(..)) {
            s.push('\n');
            in_list = false;
        }
        match el {
            El::Title(t) => s.push_str(&format!("# {t}\n\n")),
            El::Meta(t) => s.push_str(&format!("_{t}_\n\n")),
            El::Heading(t) => s.push_str(&format!("## {t}\n\n")),
            El::Para(t) => s.push_str(&format!("{t}\n\n")),
            El::Item(t, level) => {
                in_list = true;
                let indent = "  ".repeat(usize::from(*level));
                s.push_str(&format!("{indent}- {t}\n"));
            }
            El::Table(rows) => {
                for (i, (a, b)) in rows.iter().enumerate() {
                    s.push_str(&format!("| {} | {} |\n", md_cell(a), md_cell(b)));
                    if i == 0 {
                        s.push_str("|---|---|\n");
                    }
                }
                s.push('\n');
            }
        }
    }
    s
}

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(p: &Policy, lang: Lang, els: &[El]) -> String {
    let code = lang.code();
    let mut s = format!(
        "<!doctype html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}}table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:.4rem;vertical-align:top;text-align:left}}.meta{{color:#555}}</style>\n</head>\n<body>\n",
        esc(p.title.get(lang))
    );
    let mut depth: u8 = 0;
    let close_lists = |s: &mut String, depth: &mut u8, to: u8| {
        while *depth > to {
            s.push_str("</ul>\n");
            *depth -= 1;
        }
    };
    for el in els {
        match el {
            El::Item(t, level) => {
                let want = level + 1;
                while depth < want {
                    s.push_str("<ul>\n");
                    depth += 1;
                }
                close_lists(&mut s, &mut depth, want);
                s.push_str(&format!("<li>{}</li>\n", esc(t)));
                continue;
            }
            _ => close_lists(&mut s, &mut depth, 0),
        }
        match el {
            El::Title(t) => s.push_str(&format!("<h1>{}</h1>\n", esc(t))),
            El::Meta(t) => s.push_str(&format!("<p class=\"meta\">{}</p>\n", esc(t))),
            El::Heading(t) => s.push_str(&format!("<h2>{}</h2>\n", esc(t))),
            El::Para(t) => s.push_str(&format!("<p>{}</p>\n", esc(t))),
            El::Table(rows) => {
                s.push_str("<table>\n");
                for (i, (a, b)) in rows.iter().enumerate() {
                    let tag = if i == 0 { "th" } else { "td" };
                    s.push_str(&format!(
                        "<tr><{tag}>{}</{tag}><{tag}>{}</{tag}></tr>\n",
                        esc(a),
                        esc(b)
                    ));
                }
                s.push_str("</table>\n");
            }
            El::Item(..) => {}
        }
    }
    close_lists(&mut s, &mut depth, 0);
    s.push_str("</body>\n</html>\n");
    s
}
