//! The derbes domain, without IO: identifiers, field values, registration,
//! consents and their receipts. Everything here is checked against the policy
//! (`derbes-policy`) and decided with an explicit clock passed in.
//!
//! ```
//! use derbes_core::{validate_registration, RegistrationRequest};
//! # let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/ibusiness.toml")).unwrap();
//! # let policy = derbes_policy::Policy::parse(&text).unwrap();
//! let req: RegistrationRequest = serde_json::from_value(serde_json::json!({
//!     "fields": {
//!         "identity.iin": "871008401427", "identity.rk_citizen": true,
//!         "full_name.surname": "Сейткали", "full_name.first_name": "Айгерим",
//!         "contact.phone": "8 701 123 45 67"
//!     },
//!     "consents": [{"kind": "policy"}]
//! })).unwrap();
//! let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
//! let ok = validate_registration(&policy, &req, today).unwrap();
//! assert_eq!(ok.phone(), Some("+77011234567"));
//! ```

pub mod consent;
pub mod decision;
pub mod facts;
pub mod ids;
pub mod input;
pub mod registration;
pub mod retention;
pub mod states;
pub mod synthetic;
pub mod value;

pub use consent::{
    build_consent, receipt_of, CollectedVia, ConsentRecord, ConsentRequest, ConsentState,
    ConsentTerms, EvidenceInput, Purposes, Receipt, ReceiptOperator, SignedReceipt,
};
pub use decision::{
    may_contact, objection_bit, Compiled, ConsentFacts, Coverage, Decision, DecisionInput, Reason,
    RecipientInput, SubjectFacts, SubjectStatus,
};
pub use ids::{ConsentId, IdError, OrganizationId, SubjectId};
pub use registration::{
    field_ref, in_form, require_form_fields, source_id, under_age, validate_fields, validate_form,
    validate_registration, FieldInput, RegistrationRequest, ValidRegistration,
};
pub use retention::{FieldRetention, RetentionRules, Until};
pub use states::RequestState;
pub use value::{canonical, free_text, is_invisible_control, Problem};

/// Today's date in Asia/Almaty for an instant.
pub fn almaty_date(at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    at.with_timezone(&derbes_kz::ALMATY).date_naive()
}
