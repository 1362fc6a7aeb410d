//! Registration of a user as the policy's registration form (clause 7.10)
//! describes it, and validation of any set of field values against the policy.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use derbes_kz::Iin;
use derbes_policy::{ConsentKind, FieldRef, FieldType, Policy};
use serde::Deserialize;
use serde_json::Value;

use crate::consent::ConsentRequest;
use crate::value::{canonical, Problem};

/// A registration as the app submits it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    /// `category.field` → value, e.g. `"identity.iin": "871008401427"`.
    pub fields: BTreeMap<String, Value>,
    /// Where the data comes from (a source id of the policy); default `subject`.
    pub source: Option<String>,
    /// The consents given with the registration; one of kind `policy` is required.
    pub consents: Vec<ConsentRequest>,
}

/// One field ready to be sealed: its canonical text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInput {
    pub field: FieldRef,
    pub ty: FieldType,
    pub value: String,
}

/// A registration that passed every rule: built only by
/// [`validate_registration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRegistration {
    iin: Iin,
    /// E.164.
    phone: Option<String>,
    source: String,
    fields: Vec<FieldInput>,
}

impl ValidRegistration {
    /// The person's IIN.
    pub fn iin(&self) -> &Iin {
        &self.iin
    }

    /// The phone number, E.164.
    pub fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }

    /// The source id of the data (5.1).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every field, canonical.
    pub fn fields(&self) -> &[FieldInput] {
        &self.fields
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.field.to_string() == name)
            .map(|f| f.value.as_str())
    }
}

/// Parse `category.field` against the policy.
pub fn field_ref(policy: &Policy, name: &str) -> Option<(FieldRef, FieldType)> {
    let (c, f) = name.split_once('.')?;
    let field = policy.category(c)?.field(f)?;
    Some((
        FieldRef {
            category: c.into(),
            field: f.into(),
        },
        field.ty,
    ))
}

/// Validate `values` as fields of the policy; `allowed` limits which fields may
/// appear (the forms in play). Every problem is reported, not only the first.
pub fn validate_fields(
    policy: &Policy,
    values: &BTreeMap<String, Value>,
    allowed: &dyn Fn(&FieldRef) -> bool,
    problems: &mut Vec<Problem>,
) -> Vec<FieldInput> {
    let mut out = Vec::new();
    for (name, value) in values {
        let Some((field, ty)) = field_ref(policy, name) else {
            problems.push(Problem::new(
                name,
                "unknown_field",
                "the policy declares no such field",
            ));
            continue;
        };
        if !allowed(&field) {
            problems.push(Problem::new(
                name,
                "field_not_allowed",
                "this field is not part of the form",
            ));
            continue;
        }
        if value.is_null() {
            problems.push(Problem::new(name, "missing_field", "a value is required"));
            continue;
        }
        match canonical(ty, value) {
            Ok(v) => out.push(FieldInput {
                field,
                ty,
                value: v,
            }),
            Err((code, reason)) => problems.push(Problem::new(name, code, reason)),
        }
    }
    out
}

/// Whether `field` belongs to `form`.
pub fn in_form(form: &derbes_policy::Form, field: &FieldRef) -> bool {
    form.fields.iter().any(|x| &x.field == field)
}

/// A `missing_field` problem for each required field of `form` absent from `values`.
pub fn require_form_fields(
    form: &derbes_policy::Form,
    values: &BTreeMap<String, Value>,
    problems: &mut Vec<Problem>,
) {
    for ff in form.fields.iter().filter(|ff| ff.required) {
        let name = ff.field.to_string();
        if !values.contains_key(&name) {
            problems.push(Problem::new(
                name,
                "missing_field",
                format!("required by the {} form", form.id),
            ));
        }
    }
}

/// Validate `values` as exactly the fields of one form of the policy.
pub fn validate_form(
    policy: &Policy,
    form_id: &str,
    values: &BTreeMap<String, Value>,
    problems: &mut Vec<Problem>,
) -> Vec<FieldInput> {
    let Some(form) = policy.form(form_id) else {
        problems.push(Problem::new(
            "form",
            "unknown_form",
            format!("the policy declares no `{form_id}` form"),
        ));
        return Vec::new();
    };
    let fields = validate_fields(policy, values, &|f| in_form(form, f), problems);
    require_form_fields(form, values, problems);
    fields
}

/// Check the source id against the policy.
pub fn source_id(policy: &Policy, source: Option<&str>, problems: &mut Vec<Problem>) -> String {
    let s = source.unwrap_or("subject");
    if policy.source(s).is_none() {
        problems.push(Problem::new(
            "source",
            "unknown_source",
            "not a source declared by the policy (5.1)",
        ));
    }
    s.to_string()
}

/// Validate a registration: the registration form's required fields, types,
/// declared citizenship, age on `today` (Asia/Almaty), and the consents that
/// must come with it (`policy` always, `entrepreneur` for 3.5 data).
pub fn validate_registration(
    policy: &Policy,
    req: &RegistrationRequest,
    today: NaiveDate,
) -> Result<ValidRegistration, Vec<Problem>> {
    let mut problems = Vec::new();
    let registration = policy.form("registration");
    let entrepreneur = policy.form("entrepreneur");
    let in_opt = |form: Option<&derbes_policy::Form>, f: &FieldRef| {
        form.is_some_and(|form| in_form(form, f))
    };
    let gives = |kind: ConsentKind| req.consents.iter().any(|c| c.kind == kind);
    let fields = validate_fields(
        policy,
        &req.fields,
        &|f| in_opt(registration, f) || in_opt(entrepreneur, f),
        &mut problems,
    );
    for form in [registration, entrepreneur].into_iter().flatten() {
        let used = form
            .fields
            .iter()
            .any(|ff| req.fields.contains_key(&ff.field.to_string()));
        if form.id != "registration" && !used {
            continue;
        }
        require_form_fields(form, &req.fields, &mut problems);
        if let Some(kind) = form.consent {
            if used && !gives(kind) {
                problems.push(Problem::new(
                    "consents",
                    "consent_required",
                    format!("the {} form needs a `{kind}` consent (clause 3.5)", form.id),
                ));
            }
        }
    }
    if !gives(ConsentKind::Policy) {
        problems.push(Problem::new(
            "consents",
            "consent_required",
            "acceptance of the policy (kind `policy`) is required",
        ));
    }
    let source = source_id(policy, req.source.as_deref(), &mut problems);
    let value = |name: &str| {
        fields
            .iter()
            .find(|f| f.field.to_string() == name)
            .map(|f| f.value.clone())
    };
    if value("identity.rk_citizen").as_deref() == Some("false") {
        problems.push(Problem::new(
            "identity.rk_citizen",
            "not_citizen",
            "users are citizens of the Republic of Kazakhstan (clause 1)",
        ));
    }
    let iin = value("identity.iin").and_then(|s| Iin::parse(&s).ok());
    problems.extend(iin.as_ref().and_then(|i| under_age(policy, i, today)));
    match (iin, problems.is_empty()) {
        (Some(iin), true) => Ok(ValidRegistration {
            iin,
            phone: value("contact.phone"),
            source,
            fields,
        }),
        _ => {
            if problems.is_empty() {
                problems.push(Problem::new(
                    "identity.iin",
                    "missing_field",
                    "required by the registration form",
                ));
            }
            Err(problems)
        }
    }
}

/// The policy's minimum age (clause 1) for the person an IIN names, on the
/// Asia/Almaty date `today`: a problem when they are younger.
pub fn under_age(policy: &Policy, iin: &Iin, today: NaiveDate) -> Option<Problem> {
    let min = policy.subjects.minimum_age as i32;
    (iin.age_on(today) < min).then(|| {
        Problem::new(
            "identity.iin",
            "under_age",
            format!("users must be {min} or older on the day of registration (Asia/Almaty)"),
        )
    })
}
