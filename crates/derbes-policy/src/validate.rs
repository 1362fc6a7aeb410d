//! From the file as written to the validated [`Policy`], collecting every
//! problem with its position instead of stopping at the first.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;

use chrono::NaiveDate;
use derbes_kz::Bin;
use toml::Spanned;

use crate::model::*;
use crate::raw::*;
use crate::vocab::*;
use crate::{Problem, Problems};

struct Ctx<'a> {
    source: &'a str,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.source, span.start);
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }

    fn text(&mut self, t: RawText) -> Text {
        for s in [&t.ru, &t.en] {
            if s.get_ref().trim().is_empty() {
                self.at(s.span(), "text must not be empty");
            }
        }
        Text {
            ru: t.ru.into_inner(),
            en: t.en.into_inner(),
            kk: t.kk,
        }
    }

    fn id(&mut self, s: &S, what: &str, seen: &mut HashSet<String>) -> String {
        let v = s.get_ref();
        let ok = v.starts_with(|c: char| c.is_ascii_lowercase())
            && v.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            self.at(
                s.span(),
                format!("{what} id `{v}` must be lowercase snake_case (a-z, 0-9, _)"),
            );
        } else if !seen.insert(v.clone()) {
            self.at(s.span(), format!("duplicate {what} id `{v}`"));
        }
        v.clone()
    }

    fn count(&mut self, n: &Spanned<i64>, what: &str, min: i64, max: i64) -> u32 {
        let v = *n.get_ref();
        if v < 0 && min >= 0 {
            self.at(n.span(), format!("{what} cannot be negative ({v})"));
            return 0;
        }
        if v < min || v > max {
            self.at(
                n.span(),
                format!("{what} must be between {min} and {max}, found {v}"),
            );
            return 0;
        }
        u32::try_from(v).unwrap_or(0)
    }

    fn vocab<T>(
        &mut self,
        s: &S,
        what: &str,
        parse: fn(&str) -> Option<T>,
        all: &[&str],
    ) -> Option<T> {
        let r = parse(s.get_ref());
        if r.is_none() {
            self.at(
                s.span(),
                format!(
                    "unknown {what} `{}`; expected one of: {}",
                    s.get_ref(),
                    all.join(", ")
                ),
            );
        }
        r
    }

    fn refs(&mut self, list: &[S], what: &str, known: &HashSet<String>) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for s in list {
            let v = s.get_ref();
            if !known.contains(v) {
                self.at(s.span(), format!("unknown {what} `{v}`"));
            } else if !seen.insert(v.clone()) {
                self.at(s.span(), format!("{what} `{v}` is listed twice"));
            } else {
                out.push(v.clone());
            }
        }
        out
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = source
        .get(line_start..offset)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

fn names<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|x| f(*x)).collect()
}

pub(crate) fn validate(source: &str, raw: RawPolicyFile) -> Result<Policy, Problems> {
    let mut cx = Ctx {
        source,
        problems: Vec::new(),
    };

    let schema = *raw.schema.get_ref();
    if schema != 1 {
        cx.at(
            raw.schema.span(),
            format!("unsupported schema {schema}; this derbes reads schema 1"),
        );
    }

    // Header.
    let h = raw.policy;
    let mut unused = HashSet::new();
    let id = cx.id(&h.id, "policy", &mut unused);
    let version = h.version.get_ref().clone();
    if version.trim().is_empty() || version.chars().any(char::is_whitespace) {
        cx.at(
            h.version.span(),
            "version must be a non-empty word without spaces",
        );
    }
    let published = match NaiveDate::parse_from_str(h.published.get_ref(), "%Y-%m-%d") {
        Ok(d) => d,
        Err(_) => {
            cx.at(h.published.span(), "published must be a date YYYY-MM-DD");
            NaiveDate::MIN
        }
    };
    let title = cx.text(h.title);
    let law = cx.text(h.law);
    let data_residency = h.data_residency.get_ref().clone();

    // Operator.
    let o = raw.operator;
    let bin = match Bin::parse(o.bin.get_ref()) {
        Ok(b) => Some(b),
        Err(e) => {
            cx.at(o.bin.span(), format!("operator BIN is not valid: {e}"));
            None
        }
    };
    let operator_name = cx.text(o.name);
    let operator_address = cx.text(o.address);
    let r = o.responsible_person;
    let email = r.email.get_ref().trim();
    let email_ok = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && !email.contains(char::is_whitespace);
    if !email_ok {
        cx.at(
            r.email.span(),
            "the responsible person's email is not an address (name@domain)",
        );
    }
    let phone = match derbes_kz::KzPhone::parse(r.phone.get_ref()) {
        Ok(p) => p.e164(),
        Err(e) => {
            cx.at(
                r.phone.span(),
                format!("the responsible person's phone is not valid: {e}"),
            );
            String::new()
        }
    };
    let responsible_person = ResponsiblePerson {
        name: cx.text(r.name),
        position: cx.text(r.position),
        email: email.to_string(),
        phone,
    };

    let subjects = Subjects {
        minimum_age: cx.count(&raw.subjects.minimum_age, "minimum_age", 1, 150),
        citizenship: raw.subjects.citizenship.get_ref().clone(),
        representation: raw.subjects.representation,
    };
    let consent = ConsentRules {
        cookie_max_months: cx.count(&raw.consent.cookie_max_months, "cookie_max_months", 1, 13),
    };
    let d = &raw.deadlines;
    let mut dl = |n: &Spanned<i64>, k: &str| cx.count(n, &format!("deadline `{k}`"), 0, 366);
    let deadlines = Deadlines {
        access: dl(&d.access, "access"),
        information: dl(&d.information, "information"),
        refusal: dl(&d.refusal, "refusal"),
        rectification: dl(&d.rectification, "rectification"),
        blocking: dl(&d.blocking, "blocking"),
        unblocking: dl(&d.unblocking, "unblocking"),
        destruction: dl(&d.destruction, "destruction"),
        withdrawal: dl(&d.withdrawal, "withdrawal"),
        objection: dl(&d.objection, "objection"),
        complaint: dl(&d.complaint, "complaint"),
        transfer_notice: dl(&d.transfer_notice, "transfer_notice"),
        breach_notice: dl(&d.breach_notice, "breach_notice"),
    };

    // Notice templates: each uses only its own placeholders.
    let n = raw.notices;
    let mut template = |t: RawText, which: &str| {
        let allowed = NoticeTemplates::PLACEHOLDERS
            .iter()
            .find(|(k, _)| *k == which)
            .map(|(_, v)| *v)
            .unwrap_or(&[]);
        // Kazakh has no position of its own: a problem in it is shown at its table.
        let texts = [
            (t.ru.get_ref().as_str(), t.ru.span()),
            (t.en.get_ref().as_str(), t.en.span()),
            (t.kk.as_deref().unwrap_or(""), t.ru.span()),
        ];
        for (text, span) in texts {
            for used in NoticeTemplates::used(text) {
                if !allowed.contains(&used) {
                    cx.at(
                        span.clone(),
                        format!(
                            "notice `{which}` uses `{{{used}}}`; it may use {}",
                            allowed
                                .iter()
                                .map(|a| format!("{{{a}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
        cx.text(t)
    };
    let notices = NoticeTemplates {
        transfer: template(n.transfer, "transfer"),
        reconsent: template(n.reconsent, "reconsent"),
        breach: template(n.breach, "breach"),
    };

    // Vocabularies the engine fixes: each term defined exactly once.
    let op_names = names(Operation::ALL, Operation::as_str);
    let mut ops_seen = HashSet::new();
    let mut operations = Vec::new();
    for n in raw.operations {
        cx.id(&n.id, "operation", &mut ops_seen);
        let name = cx.text(n.name);
        if let Some(id) = cx.vocab(&n.id, "operation", Operation::parse, &op_names) {
            operations.push(OperationDef { id, name });
        }
    }
    let ch_names = names(Channel::ALL, Channel::as_str);
    let mut ch_seen = HashSet::new();
    let mut channels = Vec::new();
    for n in raw.channels {
        cx.id(&n.id, "channel", &mut ch_seen);
        let name = cx.text(n.name);
        if let Some(id) = cx.vocab(&n.id, "channel", Channel::parse, &ch_names) {
            channels.push(ChannelDef { id, name });
        }
    }
    let top = 0..0;
    for op in Operation::ALL {
        if !operations.iter().any(|o| o.id == *op) {
            cx.at(
                top.clone(),
                format!("operation `{op}` is not defined in [[operations]]"),
            );
        }
    }
    for ch in Channel::ALL {
        if !channels.iter().any(|c| c.id == *ch) {
            cx.at(
                top.clone(),
                format!("channel `{ch}` is not defined in [[channels]]"),
            );
        }
    }

    // Sources.
    let sk_names = names(SourceKind::ALL, SourceKind::as_str);
    let mut source_ids = HashSet::new();
    let mut sources = Vec::new();
    for s in raw.sources {
        let id = cx.id(&s.id, "source", &mut source_ids);
        let kind = cx.vocab(&s.kind, "source kind", SourceKind::parse, &sk_names);
        let name = cx.text(s.name);
        if let Some(kind) = kind {
            sources.push(Source { id, kind, name });
        }
    }

    // Categories and fields.
    let ft_names = names(FieldType::ALL, FieldType::as_str);
    let ck_names = names(ConsentKind::ALL, ConsentKind::as_str);
    let mut category_ids = HashSet::new();
    let mut categories = Vec::new();
    let mut lookup_types = HashSet::new();
    for c in raw.categories {
        let id = cx.id(&c.id, "category", &mut category_ids);
        let name = cx.text(c.name);
        let requires_consent = c
            .requires_consent
            .as_ref()
            .and_then(|s| cx.vocab(s, "consent kind", ConsentKind::parse, &ck_names));
        let mut field_ids = HashSet::new();
        let mut fields = Vec::new();
        for f in c.fields {
            let fid = cx.id(&f.id, "field", &mut field_ids);
            let ty = cx.vocab(&f.ty, "field type", FieldType::parse, &ft_names);
            let fname = cx.text(f.name);
            if let Some(ty) = ty {
                if f.lookup {
                    if !matches!(ty, FieldType::Iin | FieldType::Phone) {
                        cx.at(
                            f.id.span(),
                            "only an `iin` or a `phone` field is a lookup field",
                        );
                    } else if !lookup_types.insert(ty) {
                        cx.at(f.id.span(), format!("a second lookup field of type `{ty}`"));
                    }
                }
                fields.push(Field {
                    id: fid,
                    ty,
                    name: fname,
                    lookup: f.lookup,
                });
            }
        }
        if c.biometric && !c.personal {
            cx.at(
                c.id.span(),
                "biometric data is personal data: set personal = true",
            );
        }
        categories.push(Category {
            id,
            name,
            personal: c.personal,
            technical: c.technical,
            biometric: c.biometric,
            requires_consent,
            fields,
        });
    }

    // Purposes.
    let pk_names = names(PurposeKind::ALL, PurposeKind::as_str);
    let rs_names = names(RetentionStart::ALL, RetentionStart::as_str);
    let ct_names = names(ContactKind::ALL, ContactKind::as_str);
    let mut purpose_ids = HashSet::new();
    let mut purposes = Vec::new();
    for p in raw.purposes {
        let id = cx.id(&p.id, "purpose", &mut purpose_ids);
        let kind = cx.vocab(&p.kind, "purpose kind", PurposeKind::parse, &pk_names);
        let name = cx.text(p.name);
        let cats = cx.refs(&p.categories, "category", &category_ids);
        let mut ops = Vec::new();
        for o in &p.operations {
            if let Some(op) = cx.vocab(o, "operation", Operation::parse, &op_names) {
                if ops.contains(&op) {
                    cx.at(o.span(), format!("operation `{op}` is listed twice"));
                } else {
                    ops.push(op);
                }
            }
        }
        let chans: Vec<Channel> = p
            .channels
            .iter()
            .filter_map(|c| cx.vocab(c, "channel", Channel::parse, &ch_names))
            .collect();
        if kind == Some(PurposeKind::Marketing) && chans.is_empty() {
            cx.at(
                p.id.span(),
                "a marketing purpose must list the channels it may use",
            );
        }
        let contact = p
            .contact
            .as_ref()
            .and_then(|c| cx.vocab(c, "contact kind", ContactKind::parse, &ct_names));
        match (chans.is_empty(), contact) {
            (false, None) if p.contact.is_none() => cx.at(
                p.id.span(),
                "a purpose that uses channels says what it sends: contact = \"service\" or \"marketing\"",
            ),
            (true, Some(_)) => cx.at(
                p.id.span(),
                "a purpose with a contact kind lists the channels it may use",
            ),
            _ => {}
        }
        if kind == Some(PurposeKind::Marketing)
            && contact.is_some_and(|c| c != ContactKind::Marketing)
        {
            cx.at(
                p.id.span(),
                "a marketing purpose sends marketing: contact = \"marketing\"",
            );
        }
        if p.statutory && kind != Some(PurposeKind::Legal) {
            cx.at(
                p.id.span(),
                "only a `legal` purpose keeps data by statute (statutory = true)",
            );
        }
        if p.depersonalised_only && !ops.contains(&Operation::Depersonalisation) {
            cx.at(
                p.id.span(),
                "a depersonalised_only purpose must allow the `depersonalisation` operation",
            );
        }
        let months = cx.count(&p.retention.months, "retention months", 0, 1200);
        let after = cx.vocab(
            &p.retention.after,
            "retention start",
            RetentionStart::parse,
            &rs_names,
        );
        let basis = cx.text(p.retention.basis);
        if let (Some(kind), Some(after)) = (kind, after) {
            purposes.push(Purpose {
                id,
                clause: p.clause,
                kind,
                name,
                categories: cats,
                operations: ops,
                channels: chans,
                contact,
                depersonalised_only: p.depersonalised_only,
                statutory: p.statutory,
                retention: Retention {
                    months,
                    after,
                    basis,
                },
            });
        }
    }

    // Recipients.
    let rk_names = names(RecipientKind::ALL, RecipientKind::as_str);
    let mut recipient_ids = HashSet::new();
    let mut recipients = Vec::new();
    for r in raw.recipients {
        let id = cx.id(&r.id, "recipient", &mut recipient_ids);
        let kind = cx.vocab(&r.kind, "recipient kind", RecipientKind::parse, &rk_names);
        let name = cx.text(r.name);
        let rp = cx.refs(&r.purposes, "purpose", &purpose_ids);
        for (pid, span) in rp.iter().zip(r.purposes.iter().map(|s| s.span())) {
            if let Some(p) = purposes.iter().find(|p| &p.id == pid) {
                if !p.allows_operation(Operation::Transfer) {
                    cx.at(span.clone(), format!("purpose `{pid}` does not allow the `transfer` operation, so no recipient may receive data for it"));
                }
                if r.cross_border && !p.allows_operation(Operation::CrossBorderTransfer) {
                    cx.at(span, format!("recipient is cross-border but purpose `{pid}` does not allow `cross_border_transfer`"));
                }
            }
        }
        if kind == Some(RecipientKind::Authority) && !r.legal_basis_required {
            cx.at(
                r.id.span(),
                "an authority receives data only on a legal basis: set legal_basis_required = true",
            );
        }
        if let Some(kind) = kind {
            recipients.push(Recipient {
                id,
                clause: r.clause,
                kind,
                name,
                third_party: r.third_party,
                cross_border: r.cross_border,
                legal_basis_required: r.legal_basis_required,
                purposes: rp,
            });
        }
    }

    // Rights.
    let right_names = names(Right::ALL, Right::as_str);
    let mut right_ids = HashSet::new();
    let mut rights = Vec::new();
    for r in raw.rights {
        cx.id(&r.id, "right", &mut right_ids);
        let id = cx.vocab(&r.id, "right", Right::parse, &right_names);
        let name = cx.text(r.name);
        let days = deadlines.get(r.deadline.get_ref());
        if days.is_none() {
            let keys: Vec<&str> = deadlines.entries().iter().map(|(k, _)| *k).collect();
            cx.at(
                r.deadline.span(),
                format!(
                    "unknown deadline `{}`; expected one of: {}",
                    r.deadline.get_ref(),
                    keys.join(", ")
                ),
            );
        }
        if let (Some(id), Some(days)) = (id, days) {
            rights.push(RightDef {
                id,
                deadline: r.deadline.into_inner(),
                deadline_days: days,
                name,
            });
        }
    }

    // Consent kinds.
    let mut ck_seen = HashSet::new();
    let mut consent_kinds = Vec::new();
    for k in raw.consent_kinds {
        cx.id(&k.id, "consent kind", &mut ck_seen);
        let id = cx.vocab(&k.id, "consent kind", ConsentKind::parse, &ck_names);
        let name = cx.text(k.name);
        let max_months = k
            .max_months
            .as_ref()
            .map(|m| cx.count(m, "max_months", 1, 1200));
        if let (Some(ConsentKind::Cookies), Some(m)) = (id, max_months) {
            if m > consent.cookie_max_months {
                if let Some(span) = k.max_months.as_ref().map(|m| m.span()) {
                    cx.at(
                        span,
                        format!(
                            "cookie consent may last at most {} months (7.5)",
                            consent.cookie_max_months
                        ),
                    );
                }
            }
        }
        if let Some(id) = id {
            consent_kinds.push(ConsentKindDef {
                id,
                name,
                per_channel: k.per_channel,
                max_months,
            });
        }
    }
    for ck in ConsentKind::ALL {
        if !consent_kinds.iter().any(|c| c.id == *ck) {
            cx.at(
                top.clone(),
                format!("consent kind `{ck}` is not defined in [[consent_kinds]]"),
            );
        }
    }

    // Forms.
    let mut form_ids = HashSet::new();
    let mut forms = Vec::new();
    for f in raw.forms {
        let id = cx.id(&f.id, "form", &mut form_ids);
        let name = cx.text(f.name);
        let consent = f
            .consent
            .as_ref()
            .and_then(|s| cx.vocab(s, "consent kind", ConsentKind::parse, &ck_names));
        let mut seen = HashSet::new();
        let mut fields = Vec::new();
        for ff in f.fields {
            let text = ff.field.get_ref();
            let Some((cat, field)) = text.split_once('.') else {
                cx.at(
                    ff.field.span(),
                    format!("a form field is written `category.field`, found `{text}`"),
                );
                continue;
            };
            let r = FieldRef {
                category: cat.to_string(),
                field: field.to_string(),
            };
            let exists = categories
                .iter()
                .find(|c| c.id == cat)
                .and_then(|c| c.field(field))
                .is_some();
            if !exists {
                cx.at(ff.field.span(), format!("unknown field `{text}`"));
            } else if !seen.insert(r.clone()) {
                cx.at(ff.field.span(), format!("field `{text}` is listed twice"));
            } else {
                fields.push(FormField {
                    field: r,
                    required: ff.required,
                });
            }
        }
        forms.push(Form {
            id,
            name,
            consent,
            fields,
        });
    }

    // Staff roles and their need-to-know.
    let cap_names = names(Capability::ALL, Capability::as_str);
    let mut role_ids = HashSet::new();
    let mut roles = Vec::new();
    for r in raw.roles {
        let id = cx.id(&r.id, "role", &mut role_ids);
        if id == crate::SUBJECT_ROLE {
            cx.at(
                r.id.span(),
                format!("role id `{id}` is reserved for the data subjects' own door"),
            );
        }
        let name = cx.text(r.name);
        let capabilities: Vec<Capability> = r
            .capabilities
            .iter()
            .filter_map(|c| cx.vocab(c, "capability", Capability::parse, &cap_names))
            .collect();
        let mut access = Vec::new();
        let mut seen_purposes = HashSet::new();
        for a in r.access {
            let pid = a.purpose.get_ref().clone();
            let Some(purpose) = purposes.iter().find(|p| p.id == pid) else {
                cx.at(a.purpose.span(), format!("unknown purpose `{pid}`"));
                continue;
            };
            if !seen_purposes.insert(pid.clone()) {
                cx.at(
                    a.purpose.span(),
                    format!("purpose `{pid}` is listed twice for this role"),
                );
                continue;
            }
            let cats = cx.refs(&a.categories, "category", &category_ids);
            for (c, span) in cats.iter().zip(a.categories.iter().map(|s| s.span())) {
                if !purpose.allows_category(c) {
                    cx.at(span, format!("purpose `{pid}` may not use category `{c}`, so no role may need it for that purpose"));
                }
            }
            access.push(Access {
                purpose: pid,
                categories: cats,
            });
        }
        roles.push(Role {
            id,
            name,
            capabilities,
            access,
        });
    }
    if !roles.iter().any(|r| r.can(Capability::ManageStaff)) {
        cx.at(
            top.clone(),
            "no role has the `manage_staff` capability: nobody could administer derbes",
        );
    }

    // The document and what its blocks mean.
    let bk_names = names(BlockKind::ALL, BlockKind::as_str);
    let source_set: HashSet<String> = sources.iter().map(|s| s.id.clone()).collect();
    let mut document = Vec::new();
    let mut cited_purposes = BTreeSet::new();
    let mut cited_recipients = BTreeSet::new();
    let mut cited_rights = BTreeSet::new();
    for b in raw.document {
        let kind = cx.vocab(&b.kind, "block kind", BlockKind::parse, &bk_names);
        if kind == Some(BlockKind::Term) && b.term.is_none() {
            cx.at(b.kind.span(), "a term block needs `term = { ru, en }`");
        }
        for s in [&b.ru, &b.en] {
            if s.get_ref().trim().is_empty() {
                cx.at(s.span(), "text must not be empty");
            }
        }
        let refs = Refs {
            purposes: cx.refs(&b.purposes, "purpose", &purpose_ids),
            categories: cx.refs(&b.categories, "category", &category_ids),
            recipients: cx.refs(&b.recipients, "recipient", &recipient_ids),
            sources: cx.refs(&b.sources, "source", &source_set),
            operations: b
                .operations
                .iter()
                .filter_map(|s| cx.vocab(s, "operation", Operation::parse, &op_names))
                .collect(),
            rights: b
                .rights
                .iter()
                .filter_map(|s| cx.vocab(s, "right", Right::parse, &right_names))
                .collect(),
            channels: b
                .channels
                .iter()
                .filter_map(|s| cx.vocab(s, "channel", Channel::parse, &ch_names))
                .collect(),
        };
        cited_purposes.extend(refs.purposes.iter().cloned());
        cited_recipients.extend(refs.recipients.iter().cloned());
        cited_rights.extend(refs.rights.iter().copied());
        let term = b.term.map(|t| cx.text(t));
        if let Some(kind) = kind {
            document.push(Block {
                kind,
                section: b.section,
                clause: b.clause,
                term,
                header: b.header,
                text: Text {
                    ru: b.ru.into_inner(),
                    en: b.en.into_inner(),
                    kk: b.kk,
                },
                refs,
                means: b.means,
            });
        }
    }
    // The published text must cover what the engine does.
    for p in &purposes {
        if !cited_purposes.contains(&p.id) {
            cx.at(
                top.clone(),
                format!("purpose `{}` is not cited by any [[document]] block", p.id),
            );
        }
    }
    for r in &recipients {
        if !cited_recipients.contains(&r.id) {
            cx.at(
                top.clone(),
                format!(
                    "recipient `{}` is not cited by any [[document]] block",
                    r.id
                ),
            );
        }
    }
    for r in &rights {
        if !cited_rights.contains(&r.id) {
            cx.at(
                top.clone(),
                format!("right `{}` is not cited by any [[document]] block", r.id),
            );
        }
    }

    if !cx.problems.is_empty() {
        return Err(Problems(cx.problems));
    }
    let Some(bin) = bin else {
        return Err(Problems(vec![Problem {
            line: 1,
            column: 1,
            message: "operator BIN missing".into(),
        }]));
    };
    Ok(Policy {
        schema: 1,
        id,
        version,
        published,
        title,
        law,
        data_residency,
        operator: Operator {
            name: operator_name,
            bin,
            address: operator_address,
            app: o.app,
            website: o.website,
            includes_affiliates: o.includes_affiliates,
            responsible_person,
        },
        subjects,
        consent,
        deadlines,
        notices,
        operations,
        channels,
        sources,
        categories,
        purposes,
        recipients,
        rights,
        consent_kinds,
        forms,
        roles,
        document,
    })
}
