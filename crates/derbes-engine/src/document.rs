//! A document derbes writes for a person to read, in one language: a
//! destruction certificate, the notice to the authorised body. Built once as
//! its parts (a title, a line under it, what it states item by item, lists),
//! then written as Markdown or as one self-contained page that prints
//! (inline style, no scripts, nothing fetched) — the same words either way.

use std::fmt::Write;

use derbes_policy::{html_escape as esc, Lang};
use serde::Serialize;

/// A document in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    /// `ru`, `kk` or `en`.
    pub lang: String,
    pub title: String,
    /// The line under the title (the law it answers to, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead: Option<String>,
    /// What it states, label and value.
    pub items: Vec<(String, String)>,
    /// Lists, each with its heading.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<(String, Vec<String>)>,
}

impl Document {
    pub(crate) fn new(lang: Lang, title: impl Into<String>) -> Document {
        Document {
            lang: lang.code().to_string(),
            title: title.into(),
            lead: None,
            items: Vec::new(),
            lists: Vec::new(),
        }
    }

    pub(crate) fn lead(mut self, lead: impl Into<String>) -> Document {
        self.lead = Some(lead.into());
        self
    }

    pub(crate) fn item(&mut self, label: &str, value: impl Into<String>) {
        self.items.push((label.to_string(), value.into()));
    }

    pub(crate) fn list(&mut self, heading: &str, items: Vec<String>) {
        self.lists.push((heading.to_string(), items));
    }

    fn language(&self) -> Lang {
        Lang::parse(&self.lang).unwrap_or(Lang::Ru)
    }

    /// As Markdown: a heading, the lead, a bold-labelled list, then each
    /// list under its own heading. Line breaks inside a value are spaces.
    pub fn markdown(&self) -> String {
        let flat = |s: &str| s.replace(['\r', '\n'], " ");
        let mut out = format!("# {}\n\n", flat(&self.title));
        if let Some(lead) = &self.lead {
            let _ = write!(out, "{}\n\n", flat(lead));
        }
        for (label, value) in &self.items {
            let _ = writeln!(out, "- **{}**: {}", flat(label), flat(value));
        }
        for (heading, items) in &self.lists {
            let _ = write!(out, "\n## {}\n\n", flat(heading));
            if items.is_empty() {
                out.push_str("—\n");
            }
            for i in items {
                let _ = writeln!(out, "- {}", flat(i));
            }
        }
        out
    }

    /// As one page to read and print, every text escaped.
    pub fn html(&self) -> String {
        let mut h = String::with_capacity(4096);
        crate::export_html::page_start(&mut h, self.language(), &self.title);
        if let Some(lead) = &self.lead {
            let _ = writeln!(h, "<p class=\"muted\">{}</p>", esc(lead));
        }
        h.push_str("<table>\n");
        for (label, value) in &self.items {
            let _ = writeln!(
                h,
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                esc(label),
                esc(value)
            );
        }
        h.push_str("</table>\n");
        for (heading, items) in &self.lists {
            let _ = writeln!(h, "<h2>{}</h2>", esc(heading));
            if items.is_empty() {
                h.push_str("<p class=\"muted\">—</p>\n");
                continue;
            }
            h.push_str("<ul>\n");
            for i in items {
                let _ = writeln!(h, "<li>{}</li>", esc(i));
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</body></html>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(lang: Lang) -> Document {
        let mut d = Document::new(lang, "Акт <1>").lead("ст. 25");
        d.item("Оператор", "ТОО «Пример» & Co\nАлматы");
        d.list("Категории", vec!["контакты".into(), "<script>".into()]);
        d
    }

    #[test]
    fn the_page_escapes_every_text_and_names_its_language() {
        let h = sample(Lang::Kk).html();
        assert!(h.contains("<html lang=\"kk\">"));
        assert!(h.contains("Акт &lt;1&gt;"));
        assert!(h.contains("&amp; Co"));
        assert!(h.contains("<li>&lt;script&gt;</li>"));
        assert!(!h.contains("<script>"));
        assert!(h.contains("@media print"));
        assert!(h.ends_with("</body></html>\n"));
    }

    #[test]
    fn markdown_keeps_each_item_on_one_line() {
        let m = sample(Lang::Ru).markdown();
        assert!(m.starts_with("# Акт <1>\n\nст. 25\n\n"));
        assert!(m.contains("- **Оператор**: ТОО «Пример» & Co Алматы\n"));
        assert!(m.contains("\n## Категории\n\n- контакты\n- <script>\n"));
    }

    #[test]
    fn an_empty_list_says_so() {
        let mut d = Document::new(Lang::En, "t");
        d.list("Nothing", Vec::new());
        assert!(d.markdown().ends_with("## Nothing\n\n—\n"));
        assert!(d
            .html()
            .contains("<h2>Nothing</h2>\n<p class=\"muted\">—</p>"));
    }
}
