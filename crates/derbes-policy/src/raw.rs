//! The file as written: every identifier and reference keeps its position so
//! that a problem can be reported as `file:line:column`.

use serde::Deserialize;
use toml::Spanned;

pub type S = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawText {
    pub ru: Spanned<String>,
    pub en: Spanned<String>,
    #[serde(default)]
    pub kk: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicyFile {
    pub schema: Spanned<i64>,
    pub policy: RawHeader,
    pub operator: RawOperator,
    pub subjects: RawSubjects,
    pub consent: RawConsent,
    pub deadlines: RawDeadlines,
    pub notices: RawNotices,
    #[serde(default)]
    pub operations: Vec<RawNamed>,
    #[serde(default)]
    pub channels: Vec<RawNamed>,
    #[serde(default)]
    pub sources: Vec<RawSource>,
    #[serde(default)]
    pub categories: Vec<RawCategory>,
    #[serde(default)]
    pub purposes: Vec<RawPurpose>,
    #[serde(default)]
    pub recipients: Vec<RawRecipient>,
    #[serde(default)]
    pub rights: Vec<RawRight>,
    #[serde(default)]
    pub consent_kinds: Vec<RawConsentKind>,
    #[serde(default)]
    pub forms: Vec<RawForm>,
    #[serde(default)]
    pub roles: Vec<RawRole>,
    #[serde(default)]
    pub document: Vec<RawBlock>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    pub purpose: S,
    pub categories: Vec<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub id: S,
    pub name: RawText,
    pub capabilities: Vec<S>,
    #[serde(default)]
    pub access: Vec<RawAccess>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    pub id: S,
    pub version: S,
    pub published: S,
    pub title: RawText,
    pub law: RawText,
    pub data_residency: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperator {
    pub name: RawText,
    pub bin: S,
    pub address: RawText,
    pub app: String,
    pub website: String,
    #[serde(default)]
    pub includes_affiliates: bool,
    pub responsible_person: RawResponsible,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponsible {
    pub name: RawText,
    pub position: RawText,
    pub email: S,
    pub phone: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotices {
    pub transfer: RawText,
    pub reconsent: RawText,
    pub breach: RawText,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubjects {
    pub minimum_age: Spanned<i64>,
    pub citizenship: S,
    #[serde(default)]
    pub representation: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsent {
    pub cookie_max_months: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeadlines {
    pub access: Spanned<i64>,
    pub information: Spanned<i64>,
    pub refusal: Spanned<i64>,
    pub rectification: Spanned<i64>,
    pub blocking: Spanned<i64>,
    pub unblocking: Spanned<i64>,
    pub destruction: Spanned<i64>,
    pub withdrawal: Spanned<i64>,
    pub objection: Spanned<i64>,
    pub complaint: Spanned<i64>,
    pub transfer_notice: Spanned<i64>,
    pub breach_notice: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNamed {
    pub id: S,
    pub name: RawText,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub id: S,
    pub kind: S,
    pub name: RawText,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub id: S,
    #[serde(rename = "type")]
    pub ty: S,
    pub name: RawText,
    #[serde(default)]
    pub lookup: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategory {
    pub id: S,
    pub name: RawText,
    pub personal: bool,
    #[serde(default)]
    pub technical: bool,
    #[serde(default)]
    pub biometric: bool,
    #[serde(default)]
    pub requires_consent: Option<S>,
    #[serde(default)]
    pub fields: Vec<RawField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub months: Spanned<i64>,
    pub after: S,
    pub basis: RawText,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPurpose {
    pub id: S,
    pub clause: String,
    pub kind: S,
    pub name: RawText,
    pub categories: Vec<S>,
    pub operations: Vec<S>,
    #[serde(default)]
    pub channels: Vec<S>,
    #[serde(default)]
    pub contact: Option<S>,
    #[serde(default)]
    pub depersonalised_only: bool,
    #[serde(default)]
    pub statutory: bool,
    pub retention: RawRetention,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipient {
    pub id: S,
    pub clause: String,
    pub kind: S,
    pub name: RawText,
    pub third_party: bool,
    pub cross_border: bool,
    #[serde(default)]
    pub legal_basis_required: bool,
    pub purposes: Vec<S>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRight {
    pub id: S,
    pub deadline: S,
    pub name: RawText,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsentKind {
    pub id: S,
    pub name: RawText,
    #[serde(default)]
    pub per_channel: bool,
    #[serde(default)]
    pub max_months: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFormField {
    pub field: S,
    pub required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForm {
    pub id: S,
    pub name: RawText,
    #[serde(default)]
    pub consent: Option<S>,
    pub fields: Vec<RawFormField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBlock {
    pub kind: S,
    #[serde(default)]
    pub section: Option<String>,
    #[serde(default)]
    pub clause: Option<String>,
    #[serde(default)]
    pub term: Option<RawText>,
    #[serde(default)]
    pub header: bool,
    pub ru: S,
    pub en: S,
    /// The block in Kazakh.
    #[serde(default)]
    pub kk: Option<String>,
    #[serde(default)]
    pub purposes: Vec<S>,
    #[serde(default)]
    pub categories: Vec<S>,
    #[serde(default)]
    pub recipients: Vec<S>,
    #[serde(default)]
    pub sources: Vec<S>,
    #[serde(default)]
    pub operations: Vec<S>,
    #[serde(default)]
    pub rights: Vec<S>,
    #[serde(default)]
    pub channels: Vec<S>,
    #[serde(default)]
    pub means: Option<String>,
}
