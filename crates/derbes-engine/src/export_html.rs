//! The readable page of an export, in Russian, Kazakh or English: one
//! self-contained HTML document (inline style, no scripts, nothing fetched).

use std::fmt::Write;

use chrono::{DateTime, Utc};
use derbes_core::Until;
use derbes_policy::{html_escape as esc, Lang};
use serde_json::Value;

use crate::SubjectExport;

/// The page's fixed wording.
struct Words {
    title_access: &'static str,
    title_information: &'static str,
    operator: &'static str,
    generated: &'static str,
    request: &'static str,
    received: &'static str,
    due: &'static str,
    subject: &'static str,
    status: &'static str,
    registered: &'static str,
    relationship_ended: &'static str,
    fee: &'static str,
    free: &'static str,
    data: &'static str,
    field: &'static str,
    value: &'static str,
    source: &'static str,
    collected: &'static str,
    kept: &'static str,
    previous: &'static str,
    replaced: &'static str,
    reason: &'static str,
    purposes: &'static str,
    categories: &'static str,
    retention: &'static str,
    sources: &'static str,
    recipients: &'static str,
    third_party: &'static str,
    abroad: &'static str,
    disclosures: &'static str,
    recipient: &'static str,
    purpose: &'static str,
    when: &'static str,
    basis: &'static str,
    consents: &'static str,
    kind: &'static str,
    state: &'static str,
    receipt: &'static str,
    objections: &'static str,
    channel: &'static str,
    obligations: &'static str,
    requests: &'static str,
    none: &'static str,
    policy: &'static str,
    audit: &'static str,
}

const RU: Words = Words {
    title_access: "Копия ваших персональных данных",
    title_information: "Сведения об обработке ваших персональных данных",
    operator: "Оператор",
    generated: "Сформировано",
    request: "Обращение",
    received: "получено",
    due: "срок ответа",
    subject: "Субъект",
    status: "статус",
    registered: "зарегистрирован",
    relationship_ended: "отношения прекращены",
    fee: "Плата",
    free: "бесплатно",
    data: "Данные",
    field: "Поле",
    value: "Значение",
    source: "Источник",
    collected: "Собрано",
    kept: "Хранится до",
    previous: "Прежние значения",
    replaced: "Заменено",
    reason: "Причина",
    purposes: "Цели обработки",
    categories: "Категории",
    retention: "Срок хранения",
    sources: "Источники",
    recipients: "Кому данные могут передаваться",
    third_party: "третье лицо",
    abroad: "за рубежом",
    disclosures: "Кому данные передавались",
    recipient: "Получатель",
    purpose: "Цель",
    when: "Когда",
    basis: "Основание",
    consents: "Согласия",
    kind: "Вид",
    state: "Состояние",
    receipt: "Квитанция (SHA-256)",
    objections: "Отказы от обращений",
    channel: "Канал",
    obligations: "Обязательства",
    requests: "Обращения",
    none: "нет",
    policy: "Политика",
    audit: "запись журнала аудита",
};

const KK: Words = Words {
    title_access: "Дербес деректеріңіздің көшірмесі",
    title_information: "Дербес деректеріңізді өңдеу туралы мәліметтер",
    operator: "Оператор",
    generated: "Қалыптастырылды",
    request: "Өтініш",
    received: "қабылданды",
    due: "жауап беру мерзімі",
    subject: "Субъект",
    status: "мәртебесі",
    registered: "тіркелген",
    relationship_ended: "қатынастар тоқтатылды",
    fee: "Төлем",
    free: "тегін",
    data: "Деректер",
    field: "Өріс",
    value: "Мәні",
    source: "Көзі",
    collected: "Жиналды",
    kept: "Сақталу мерзімі",
    previous: "Бұрынғы мәндер",
    replaced: "Ауыстырылды",
    reason: "Себебі",
    purposes: "Өңдеу мақсаттары",
    categories: "Санаттар",
    retention: "Сақтау мерзімі",
    sources: "Көздер",
    recipients: "Деректер кімге берілуі мүмкін",
    third_party: "үшінші тұлға",
    abroad: "шетелде",
    disclosures: "Деректер кімге берілді",
    recipient: "Алушы",
    purpose: "Мақсат",
    when: "Қашан",
    basis: "Негіз",
    consents: "Келісімдер",
    kind: "Түрі",
    state: "Күйі",
    receipt: "Түбіртек (SHA-256)",
    objections: "Хабарламалардан бас тарту",
    channel: "Арна",
    obligations: "Міндеттемелер",
    requests: "Өтініштер",
    none: "жоқ",
    policy: "Саясат",
    audit: "аудит журналының жазбасы",
};

const EN: Words = Words {
    title_access: "A copy of your personal data",
    title_information: "How your personal data is processed",
    operator: "Operator",
    generated: "Generated",
    request: "Request",
    received: "received",
    due: "answer due",
    subject: "Subject",
    status: "status",
    registered: "registered",
    relationship_ended: "relationship ended",
    fee: "Fee",
    free: "free of charge",
    data: "Data",
    field: "Field",
    value: "Value",
    source: "Source",
    collected: "Collected",
    kept: "Kept until",
    previous: "Previous values",
    replaced: "Replaced",
    reason: "Reason",
    purposes: "Purposes",
    categories: "Categories",
    retention: "Retention",
    sources: "Sources",
    recipients: "Who may receive data",
    third_party: "third party",
    abroad: "abroad",
    disclosures: "Who received data",
    recipient: "Recipient",
    purpose: "Purpose",
    when: "When",
    basis: "Basis",
    consents: "Consents",
    kind: "Kind",
    state: "State",
    receipt: "Receipt (SHA-256)",
    objections: "Objections to communications",
    channel: "Channel",
    obligations: "Obligations",
    requests: "Requests",
    none: "none",
    policy: "Policy",
    audit: "audit record",
};

/// Almaty time with its offset, as a person reads it.
/// The start of a page derbes writes for a person to read and print (an
/// export, a certificate, a notice): its language, title, one inline style
/// with print rules, and the title as its heading.
pub(crate) fn page_start(h: &mut String, lang: Lang, title: &str) {
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>body{{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}}\
         table{{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}}th,td{{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #dde;vertical-align:top}}\
         th{{background:#f3f4f8}}h2{{margin-top:2rem;border-bottom:2px solid #2a5bd7;padding-bottom:.2rem}}code{{font-size:.85em;word-break:break-all}}\
         .muted{{color:#667}}\
         @media print{{body{{margin:0;max-width:none;font-size:11pt}}h2{{break-after:avoid}}tr{{break-inside:avoid}}th{{background:none}}}}</style></head><body>\n<h1>{}</h1>\n",
        lang.code(),
        esc(title),
        esc(title)
    );
}

/// A time as a person reads it: Almaty time with its offset.
pub(crate) fn date(t: &DateTime<Utc>) -> String {
    t.with_timezone(&derbes_kz::ALMATY)
        .format("%Y-%m-%d %H:%M (UTC%:z)")
        .to_string()
}

/// A due date as derbes gives it (RFC 3339 with the Almaty offset), read.
pub(crate) fn due_text(text: &str) -> String {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => date(&t.with_timezone(&Utc)),
        Err(_) => text.to_string(),
    }
}

/// [`due_text`] on a page.
fn due(text: &str) -> String {
    esc(&due_text(text))
}

/// The words for the codes an answer carries (kinds, states, channels),
/// in the page's language; a code it does not know is shown as it is.
fn word(code: &str, lang: Lang) -> String {
    let (ru, kk, en) = match code {
        "access" => ("копия данных", "деректер көшірмесі", "a copy of data"),
        "information" => (
            "сведения об обработке",
            "өңдеу туралы мәліметтер",
            "information on processing",
        ),
        "rectification" => ("исправление", "түзету", "rectification"),
        "blocking" => ("блокирование", "бұғаттау", "blocking"),
        "unblocking" => ("разблокирование", "бұғаттаудан шығару", "unblocking"),
        "objection" => ("возражение", "қарсылық", "objection"),
        "withdrawal" => (
            "отзыв согласия",
            "келісімді кері қайтару",
            "withdrawal of consent",
        ),
        "destruction" => ("уничтожение", "жою", "destruction"),
        "complaint" => ("жалоба", "шағым", "complaint"),
        "received" => ("получено", "қабылданды", "received"),
        "identity_verified" => (
            "личность подтверждена",
            "жеке басы расталды",
            "identity verified",
        ),
        "in_progress" => ("в работе", "орындалуда", "in progress"),
        "completed" => ("выполнено", "орындалды", "completed"),
        "refused" => ("отказано", "бас тартылды", "refused"),
        "active" => ("действует", "белсенді", "active"),
        "blocked" => ("заблокированы", "бұғатталған", "blocked"),
        "withdrawn" => ("отозвано", "кері қайтарылды", "withdrawn"),
        "expired" => ("истекло", "мерзімі өтті", "expired"),
        "barred_minor" => (
            "обработка остановлена",
            "өңдеу тоқтатылды",
            "processing stopped",
        ),
        "destroyed" => ("уничтожены", "жойылды", "destroyed"),
        "policy" => (
            "Политика конфиденциальности",
            "Құпиялылық саясаты",
            "privacy policy",
        ),
        "marketing" => ("реклама", "жарнама", "advertising"),
        "cookies" => ("cookies", "cookies", "cookies"),
        "entrepreneur" => (
            "данные индивидуального предпринимателя",
            "жеке кәсіпкердің деректері",
            "entrepreneur's data",
        ),
        "service" => (
            "служебные сообщения",
            "қызметтік хабарламалар",
            "service messages",
        ),
        "all" => ("все сообщения", "барлық хабарламалар", "all messages"),
        "sms" => ("SMS", "SMS", "SMS"),
        "whatsapp" => ("WhatsApp", "WhatsApp", "WhatsApp"),
        "telegram" => ("Telegram", "Telegram", "Telegram"),
        "push" => (
            "push-уведомления",
            "push-хабарламалар",
            "push notifications",
        ),
        "email" => ("электронная почта", "электрондық пошта", "e-mail"),
        "phone_call" => ("телефонный звонок", "телефон қоңырауы", "phone call"),
        other => return esc(other),
    };
    lang.pick(ru, kk, en).to_string()
}

fn until(u: &Until, lang: Lang) -> String {
    match (u, lang) {
        (Until::Date { at }, _) => date(at),
        (Until::RelationshipThen { months }, Lang::Ru) => {
            format!("пока длятся отношения, затем {months} мес.")
        }
        (Until::RelationshipThen { months }, Lang::Kk) => {
            format!("қатынастар жалғасқанша, содан кейін {months} ай")
        }
        (Until::RelationshipThen { months }, Lang::En) => {
            format!("while the relationship lasts, then {months} months")
        }
        (Until::NoPurpose, Lang::Ru) => "не нужно ни одной цели: подлежит уничтожению".into(),
        (Until::NoPurpose, Lang::Kk) => "ешбір мақсатқа қажет емес: жойылуға тиіс".into(),
        (Until::NoPurpose, Lang::En) => "no purpose needs it: due for destruction".into(),
    }
}

fn value(v: &Value, lang: Lang) -> String {
    match (v, lang) {
        (Value::String(s), _) => esc(s),
        (Value::Bool(true), Lang::Ru) => "да".into(),
        (Value::Bool(false), Lang::Ru) => "нет".into(),
        (Value::Bool(true), Lang::Kk) => "иә".into(),
        (Value::Bool(false), Lang::Kk) => "жоқ".into(),
        (Value::Bool(true), Lang::En) => "yes".into(),
        (Value::Bool(false), Lang::En) => "no".into(),
        (other, _) => esc(&other.to_string()),
    }
}

/// Render an export as a page in `lang`.
pub fn export_html(x: &SubjectExport, lang: Lang) -> String {
    let w = lang.pick(&RU, &KK, &EN);
    let with_values = x.kind == "access";
    let mut h = String::with_capacity(16_384 + x.fields.len() * 256);
    let title = if with_values {
        w.title_access
    } else {
        w.title_information
    };
    page_start(&mut h, lang, title);
    let _ = writeln!(
        h,
        "<p>{}: <b>{}</b>, {} {}, {}<br>{}: {} · {} {} · {} <code>{}</code></p>",
        w.operator,
        esc(x.operator.name.get(lang)),
        lang.pick("БИН", "БСН", "BIN"),
        esc(&x.operator.bin),
        esc(x.operator.address.get(lang)),
        w.generated,
        date(&x.generated_at),
        w.policy,
        esc(&x.policy.version),
        w.audit,
        x.audit_id
    );
    let _ = writeln!(
        h,
        "<p>{}: <code>{}</code> ({}) — {} {}, {} {}<br>{}: <code>{}</code> — {} {}, {} {}{}<br>{}: {}</p>",
        w.request,
        esc(&x.request.request_id),
        word(&x.request.kind, lang),
        w.received,
        date(&x.request.received_at),
        w.due,
        due(&x.request.due),
        w.subject,
        esc(&x.subject.subject_id),
        w.status,
        word(&x.subject.status, lang),
        w.registered,
        date(&x.subject.registered_at),
        x.subject
            .relationship_ended_at
            .map(|t| format!(", {} {}", w.relationship_ended, date(&t)))
            .unwrap_or_default(),
        w.fee,
        if x.fee.amount_kzt == 0 {
            w.free.to_string()
        } else {
            format!("{} KZT", x.fee.amount_kzt)
        }
    );

    let _ = writeln!(h, "<h2>{}</h2>", w.data);
    if x.fields.is_empty() {
        let _ = writeln!(h, "<p class=\"muted\">{}</p>", w.none);
    } else {
        let _ = write!(h, "<table><tr><th>{}</th>", w.field);
        if with_values {
            let _ = write!(h, "<th>{}</th>", w.value);
        }
        let _ = writeln!(
            h,
            "<th>{}</th><th>{}</th><th>{}</th></tr>",
            w.source, w.collected, w.kept
        );
        for f in &x.fields {
            let _ = write!(
                h,
                "<tr><td>{}<br><code class=\"muted\">{}</code></td>",
                esc(f.name.get(lang)),
                esc(&f.field)
            );
            if with_values {
                let _ = write!(
                    h,
                    "<td>{}</td>",
                    f.value.as_ref().map(|v| value(v, lang)).unwrap_or_default()
                );
            }
            let _ = writeln!(
                h,
                "<td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&source_name(x, &f.source, lang)),
                date(&f.collected_at),
                esc(&until(&f.retention.until, lang))
            );
        }
        h.push_str("</table>\n");
    }
    if !x.previous_values.is_empty() {
        let _ = write!(
            h,
            "<h2>{}</h2>\n<table><tr><th>{}</th>",
            w.previous, w.field
        );
        if with_values {
            let _ = write!(h, "<th>{}</th><th>{}</th>", w.value, w.reason);
        }
        let _ = writeln!(h, "<th>{}</th><th>{}</th></tr>", w.replaced, w.kept);
        for p in &x.previous_values {
            let _ = write!(h, "<tr><td><code>{}</code></td>", esc(&p.field));
            if with_values {
                let _ = write!(
                    h,
                    "<td>{}</td><td>{}</td>",
                    p.value.as_ref().map(|v| value(v, lang)).unwrap_or_default(),
                    esc(p.reason.as_deref().unwrap_or(""))
                );
            }
            let _ = writeln!(
                h,
                "<td>{}</td><td>{}</td></tr>",
                date(&p.replaced_at),
                date(&p.keep_until)
            );
        }
        h.push_str("</table>\n");
    }

    let _ = write!(
        h,
        "<h2>{}</h2>\n<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>\n",
        w.purposes, w.purpose, w.categories, w.retention
    );
    for p in &x.purposes {
        let cats: Vec<&str> = p
            .categories
            .iter()
            .map(|c| {
                x.categories
                    .iter()
                    .find(|n| &n.id == c)
                    .map(|n| n.name.get(lang))
                    .unwrap_or(c)
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{} <span class=\"muted\">({})</span></td><td>{}</td><td>{}</td></tr>",
            esc(p.name.get(lang)),
            esc(&p.clause),
            esc(&cats.join("; ")),
            esc(p.retention_basis.get(lang))
        );
    }
    h.push_str("</table>\n");

    let _ = write!(h, "<h2>{}</h2>\n<ul>\n", w.sources);
    for s in &x.sources {
        let _ = writeln!(h, "<li>{}</li>", esc(s.name.get(lang)));
    }
    h.push_str("</ul>\n");

    let _ = write!(h, "<h2>{}</h2>\n<ul>\n", w.recipients);
    for r in &x.recipients {
        let mut notes = Vec::new();
        if r.third_party {
            notes.push(w.third_party);
        }
        if r.cross_border {
            notes.push(w.abroad);
        }
        let _ = writeln!(
            h,
            "<li>{}{}</li>",
            esc(r.name.get(lang)),
            if notes.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"muted\">({})</span>", notes.join(", "))
            }
        );
    }
    h.push_str("</ul>\n");

    table(
        &mut h,
        w.disclosures,
        w.none,
        &[w.recipient, w.purpose, w.categories, w.when, w.basis],
        x.disclosures.iter().map(|d| {
            vec![
                esc(&d.recipient),
                esc(&d.purpose),
                esc(&d.categories.join(", ")),
                date(&d.at),
                esc(&[d.legal_basis.as_deref(), d.reference.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")),
            ]
        }),
    );
    table(
        &mut h,
        w.consents,
        w.none,
        &[w.kind, w.when, w.state, w.receipt],
        x.consents.iter().map(|c| {
            vec![
                format!(
                    "{}{}",
                    word(c.record.kind.as_str(), lang),
                    c.record
                        .channel
                        .map(|ch| format!(" ({})", word(ch.as_str(), lang)))
                        .unwrap_or_default()
                ),
                date(&c.record.given_at),
                word(
                    &serde_json::to_value(c.state)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    lang,
                ),
                format!("<code>{}</code>", esc(&c.record.receipt_sha256)),
            ]
        }),
    );
    table(
        &mut h,
        w.objections,
        w.none,
        &[w.channel, w.kind, w.when],
        x.objections
            .iter()
            .map(|o| vec![word(&o.channel, lang), word(&o.kind, lang), date(&o.at)]),
    );
    if !x.obligations.is_empty() {
        let _ = writeln!(h, "<h2>{}</h2>\n<ul>", w.obligations);
        for o in &x.obligations {
            let _ = writeln!(
                h,
                "<li>{} {} — {}{}</li>",
                esc(&o.kind),
                esc(&o.reference),
                date(&o.created_at),
                o.closed_at
                    .map(|c| format!(" … {}", date(&c)))
                    .unwrap_or_default()
            );
        }
        h.push_str("</ul>\n");
    }
    table(
        &mut h,
        w.requests,
        w.none,
        &[w.kind, w.received, w.due, w.state],
        x.requests.iter().map(|r| {
            vec![
                word(&r.kind, lang),
                date(&r.received_at),
                due(&r.due),
                word(r.state.as_str(), lang),
            ]
        }),
    );
    let _ = writeln!(
        h,
        "<p class=\"muted\">{}: {} · SHA-256 {}</p>\n</body></html>",
        w.policy,
        esc(&x.policy.version),
        esc(&x.policy.sha256),
    );
    h
}

/// A section with a table of already-escaped cells, or `none` when empty.
fn table(
    h: &mut String,
    title: &str,
    none: &str,
    headers: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let _ = writeln!(h, "<h2>{}</h2>", esc(title));
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        let _ = writeln!(h, "<p class=\"muted\">{}</p>", esc(none));
        return;
    }
    h.push_str("<table><tr>");
    for head in headers {
        let _ = write!(h, "<th>{}</th>", esc(head));
    }
    h.push_str("</tr>\n");
    for row in rows {
        h.push_str("<tr>");
        for cell in row {
            let _ = write!(h, "<td>{cell}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn source_name(x: &SubjectExport, id: &str, lang: Lang) -> String {
    x.sources
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.name.get(lang).to_string())
        .unwrap_or_else(|| id.to_string())
}
