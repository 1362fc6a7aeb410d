//! The validated policy. Every reference in it resolves: a purpose's categories
//! exist, a recipient's purposes exist, and so on. Built only by
//! [`crate::Policy::parse`].

use chrono::NaiveDate;
use derbes_kz::Bin;
use serde::Serialize;

use crate::vocab::*;

/// A text in the policy's languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Text {
    pub ru: String,
    pub en: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kk: Option<String>,
}

/// A language a text can be rendered in: Russian (the original), Kazakh,
/// English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ru,
    Kk,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ru" => Some(Lang::Ru),
            "kk" => Some(Lang::Kk),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Its code: `ru`, `kk`, `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::Kk => "kk",
            Lang::En => "en",
        }
    }

    /// One of three wordings, by this language.
    pub fn pick<T>(self, ru: T, kk: T, en: T) -> T {
        match self {
            Lang::Ru => ru,
            Lang::Kk => kk,
            Lang::En => en,
        }
    }
}

impl Text {
    /// The text in `lang`; a text the file gives no Kazakh for is shown in
    /// Russian, the original (the seed policy gives every one: tested).
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ru => &self.ru,
            Lang::Kk => self.kk.as_deref().unwrap_or(&self.ru),
            Lang::En => &self.en,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Operator {
    pub name: Text,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "220440001087"))]
    pub bin: Bin,
    pub address: Text,
    pub app: String,
    pub website: String,
    pub includes_affiliates: bool,
    /// The person responsible for organising the processing of personal
    /// data (the Law, art. 25): named in the notices to the authorised body.
    pub responsible_person: ResponsiblePerson,
}

/// The responsible person's contacts (a work position, not a private person's data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponsiblePerson {
    pub name: Text,
    pub position: Text,
    pub email: String,
    /// E.164.
    pub phone: String,
}

/// The texts of the notices derbes has sent through the app's own channel.
/// Placeholders in braces are filled in by derbes; each template may use
/// only its own (see [`NoticeTemplates::PLACEHOLDERS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoticeTemplates {
    /// Art. 19: data was transferred to a third party.
    pub transfer: Text,
    /// 7.6: a new policy version needs the user's consent again.
    pub reconsent: Text,
    /// A breach that concerns the user.
    pub breach: Text,
}

impl NoticeTemplates {
    /// The placeholders each template may use.
    pub const PLACEHOLDERS: [(&'static str, &'static [&'static str]); 3] = [
        (
            "transfer",
            &[
                "app",
                "operator",
                "recipient",
                "purpose",
                "categories",
                "date",
            ],
        ),
        ("reconsent", &["app", "operator", "version", "published"]),
        (
            "breach",
            &["app", "operator", "categories", "date", "measures"],
        ),
    ];

    /// Fill in `template`'s placeholders (`{name}`) from `values`; an
    /// unknown placeholder stays as written.
    pub fn render(template: &str, values: &[(&str, &str)]) -> String {
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}').map(|close| (&after[..close], close)) {
                Some((name, close)) => {
                    match values.iter().find(|(k, _)| *k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push('{');
                            out.push_str(name);
                            out.push('}');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The placeholders `template` uses.
    pub fn used(template: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            out.push(&after[..close]);
            rest = &after[close + 1..];
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subjects {
    pub minimum_age: u32,
    pub citizenship: String,
    pub representation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentRules {
    pub cookie_max_months: u32,
}

/// Deadlines in working days of the Kazakhstan calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deadlines {
    pub access: u32,
    pub information: u32,
    pub refusal: u32,
    pub rectification: u32,
    pub blocking: u32,
    pub unblocking: u32,
    pub destruction: u32,
    pub withdrawal: u32,
    pub objection: u32,
    pub complaint: u32,
    pub transfer_notice: u32,
    pub breach_notice: u32,
}

impl Deadlines {
    /// Every deadline by its key, in file order.
    pub fn entries(&self) -> [(&'static str, u32); 12] {
        [
            ("access", self.access),
            ("information", self.information),
            ("refusal", self.refusal),
            ("rectification", self.rectification),
            ("blocking", self.blocking),
            ("unblocking", self.unblocking),
            ("destruction", self.destruction),
            ("withdrawal", self.withdrawal),
            ("objection", self.objection),
            ("complaint", self.complaint),
            ("transfer_notice", self.transfer_notice),
            ("breach_notice", self.breach_notice),
        ]
    }

    pub fn get(&self, key: &str) -> Option<u32> {
        self.entries()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationDef {
    pub id: Operation,
    pub name: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelDef {
    pub id: Channel,
    pub name: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Source {
    pub id: String,
    pub kind: SourceKind,
    pub name: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Field {
    pub id: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
    pub name: Text,
    /// Subjects are found by this field (through a blind index of its
    /// type: `iin`, `phone`); one such field per type, unique per subject.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lookup: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Category {
    pub id: String,
    pub name: Text,
    /// False for data that is not personal data (3.4: organisation details).
    pub personal: bool,
    pub technical: bool,
    pub biometric: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_consent: Option<ConsentKind>,
    pub fields: Vec<Field>,
}

impl Category {
    pub fn field(&self, id: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Retention {
    pub months: u32,
    pub after: RetentionStart,
    pub basis: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Purpose {
    pub id: String,
    /// The clause that declares it ("2" for section 2's list).
    pub clause: String,
    pub kind: PurposeKind,
    pub name: Text,
    pub categories: Vec<String>,
    pub operations: Vec<Operation>,
    pub channels: Vec<Channel>,
    /// A purpose that reaches the subject over its `channels` sends this
    /// kind of message; `None` for purposes that contact nobody.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactKind>,
    /// Only depersonalised aggregates or pseudonyms: never a subject's fields.
    pub depersonalised_only: bool,
    /// A law obliges the operator to keep data for this purpose: it is kept
    /// (for this purpose only) after the subject withdraws consent or asks
    /// for destruction, until its retention ends. Only `legal` purposes.
    pub statutory: bool,
    pub retention: Retention,
}

impl Purpose {
    pub fn allows_category(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }

    pub fn allows_operation(&self, op: Operation) -> bool {
        self.operations.contains(&op)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recipient {
    pub id: String,
    pub clause: String,
    pub kind: RecipientKind,
    pub name: Text,
    /// Needs the subject's consent to transfer to third parties.
    pub third_party: bool,
    /// Located abroad: needs consent to cross-border transfer.
    pub cross_border: bool,
    /// Receives data only on a legal basis with a reference.
    pub legal_basis_required: bool,
    pub purposes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RightDef {
    pub id: Right,
    /// The key in [`Deadlines`].
    pub deadline: String,
    pub deadline_days: u32,
    pub name: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentKindDef {
    pub id: ConsentKind,
    pub name: Text,
    pub per_channel: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_months: Option<u32>,
}

/// A field named `category.field`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct FieldRef {
    pub category: String,
    pub field: String,
}

impl From<FieldRef> for String {
    fn from(f: FieldRef) -> String {
        format!("{}.{}", f.category, f.field)
    }
}

impl std::fmt::Display for FieldRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.category, self.field)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FormField {
    /// `category.field`, e.g. `identity.iin`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "identity.iin"))]
    pub field: FieldRef,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Form {
    pub id: String,
    pub name: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentKind>,
    pub fields: Vec<FormField>,
}

/// A role's need-to-know for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Access {
    pub purpose: String,
    pub categories: Vec<String>,
}

/// The role a data subject acts in through their own door (`/me`): not a
/// staff role, so no policy may name a role so and no staff token can hold
/// it. Its need-to-know is every category, for the purposes that answer
/// the subject's own requests only; which subject is the session's.
pub const SUBJECT_ROLE: &str = "data_subject";

/// A staff role: what it may do and which data it needs for which purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Role {
    pub id: String,
    pub name: Text,
    pub capabilities: Vec<Capability>,
    pub access: Vec<Access>,
}

impl Role {
    pub fn can(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }

    /// The categories this role may use for `purpose` (empty: none).
    pub fn categories_for(&self, purpose: &str) -> &[String] {
        self.access
            .iter()
            .find(|a| a.purpose == purpose)
            .map(|a| a.categories.as_slice())
            .unwrap_or(&[])
    }
}

/// What a block of the document means to the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rights: Vec<Right>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
}

/// One block of the published document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Block {
    pub kind: BlockKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<Text>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub header: bool,
    pub text: Text,
    pub refs: Refs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub means: Option<String>,
}

/// The whole validated policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    pub schema: u32,
    pub id: String,
    pub version: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub published: NaiveDate,
    pub title: Text,
    pub law: Text,
    pub data_residency: String,
    pub operator: Operator,
    pub subjects: Subjects,
    pub consent: ConsentRules,
    pub deadlines: Deadlines,
    pub notices: NoticeTemplates,
    pub operations: Vec<OperationDef>,
    pub channels: Vec<ChannelDef>,
    pub sources: Vec<Source>,
    pub categories: Vec<Category>,
    pub purposes: Vec<Purpose>,
    pub recipients: Vec<Recipient>,
    pub rights: Vec<RightDef>,
    pub consent_kinds: Vec<ConsentKindDef>,
    pub forms: Vec<Form>,
    pub roles: Vec<Role>,
    pub document: Vec<Block>,
}

impl Policy {
    pub fn purpose(&self, id: &str) -> Option<&Purpose> {
        self.purposes.iter().find(|p| p.id == id)
    }

    pub fn category(&self, id: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.id == id)
    }

    pub fn recipient(&self, id: &str) -> Option<&Recipient> {
        self.recipients.iter().find(|r| r.id == id)
    }

    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.id == id)
    }

    pub fn form(&self, id: &str) -> Option<&Form> {
        self.forms.iter().find(|f| f.id == id)
    }

    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    pub fn right(&self, id: Right) -> Option<&RightDef> {
        self.rights.iter().find(|r| r.id == id)
    }

    /// The field `category.field`, if declared.
    pub fn field(&self, r: &FieldRef) -> Option<&Field> {
        self.category(&r.category)?.field(&r.field)
    }

    /// The fields subjects are looked up by, with their type (the blind
    /// index's kind).
    pub fn lookup_fields(&self) -> impl Iterator<Item = (FieldRef, FieldType)> + '_ {
        self.categories.iter().flat_map(|c| {
            c.fields.iter().filter(|f| f.lookup).map(move |f| {
                (
                    FieldRef {
                        category: c.id.clone(),
                        field: f.id.clone(),
                    },
                    f.ty,
                )
            })
        })
    }

    /// The lookup field of type `ty`, if the policy has one.
    pub fn lookup_field(&self, ty: FieldType) -> Option<FieldRef> {
        self.lookup_fields().find(|(_, t)| *t == ty).map(|(f, _)| f)
    }

    /// The blind-index kind of the field `category.field`, if it is a lookup field.
    pub fn index_kind(&self, field: &str) -> Option<&'static str> {
        self.lookup_fields()
            .find(|(f, _)| f.to_string() == field)
            .map(|(_, t)| t.as_str())
    }
}
