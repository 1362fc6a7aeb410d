use derbes_core::Problem;
use derbes_store::StoreError;

/// What can go wrong, in terms a caller can act on. Internal causes are kept
/// for the log; none of them carries personal data.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Each problem names the field and why, never the value.
    #[error("the input was refused: {}", problems(.0))]
    Invalid(Vec<Problem>),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A subject is already registered with this identifying field's value.
    #[error("a subject with this {field} is already registered")]
    DuplicateSubject { field: String },
    /// An organisation with this BIN is already registered.
    #[error("an organisation with this BIN is already registered")]
    DuplicateOrganization,
    #[error("{0} changed meanwhile; read it again")]
    Conflict(String),
    #[error("the subject's data has been destroyed")]
    Destroyed,
    /// The decision point said no; the refusal is audited as `audit_id`.
    #[error("denied by the decision point")]
    Denied {
        reasons: Vec<derbes_core::Reason>,
        audit_id: i64,
    },
    /// The actor's role lacks the capability.
    #[error("the actor's role may not {0}")]
    Forbidden(&'static str),
    /// The engine cannot start as configured (a policy version published
    /// with other content, say); the message says why.
    #[error("{0}")]
    Refused(String),
    #[error("the request waits for {0} connected system(s) to confirm they followed")]
    AwaitingSystems(i64),
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    pub fn invalid(field: &str, code: &'static str, reason: impl Into<String>) -> EngineError {
        EngineError::Invalid(vec![Problem::new(field, code, reason)])
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(kind) => EngineError::DuplicateSubject { field: kind },
            StoreError::Conflict(f) => EngineError::Conflict(f),
            StoreError::NotFound(what) => EngineError::NotFound(what),
            StoreError::AwaitingSystems(n) => EngineError::AwaitingSystems(n),
            other => EngineError::Internal(other.to_string()),
        }
    }
}

impl From<derbes_vault::VaultError> for EngineError {
    fn from(e: derbes_vault::VaultError) -> Self {
        EngineError::Internal(e.to_string())
    }
}

impl From<serde_json::Error> for EngineError {
    fn from(e: serde_json::Error) -> Self {
        EngineError::Internal(format!("json: {e}"))
    }
}

fn problems(p: &[Problem]) -> String {
    p.iter()
        .map(|p| format!("{}: {}", p.field, p.reason))
        .collect::<Vec<_>>()
        .join("; ")
}
