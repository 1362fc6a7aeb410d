//! Where a subject and a request stand: closed vocabularies, stored as
//! their snake_case names. Reading a name that is not one of them is
//! damage, never a guess (`parse` is `None`).

use serde::{Deserialize, Serialize};

/// Where a subject stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SubjectStatus {
    Active,
    /// Frozen during a verification: nothing but storage (4.2).
    Blocked,
    /// Consent withdrawn: processing stopped, destruction pending.
    Withdrawn,
    Destroyed,
    /// Found to be under 18 (7.7).
    BarredMinor,
}

impl SubjectStatus {
    pub const ALL: [SubjectStatus; 5] = [
        SubjectStatus::Active,
        SubjectStatus::Blocked,
        SubjectStatus::Withdrawn,
        SubjectStatus::Destroyed,
        SubjectStatus::BarredMinor,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectStatus::Active => "active",
            SubjectStatus::Blocked => "blocked",
            SubjectStatus::Withdrawn => "withdrawn",
            SubjectStatus::Destroyed => "destroyed",
            SubjectStatus::BarredMinor => "barred_minor",
        }
    }

    pub fn parse(s: &str) -> Option<SubjectStatus> {
        SubjectStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where a request stands: received → identity_verified → in_progress →
/// completed | refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Received,
    IdentityVerified,
    InProgress,
    Completed,
    Refused,
}

impl RequestState {
    pub const ALL: [RequestState; 5] = [
        RequestState::Received,
        RequestState::IdentityVerified,
        RequestState::InProgress,
        RequestState::Completed,
        RequestState::Refused,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Received => "received",
            RequestState::IdentityVerified => "identity_verified",
            RequestState::InProgress => "in_progress",
            RequestState::Completed => "completed",
            RequestState::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<RequestState> {
        RequestState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A request never leaves these.
    pub fn is_final(self) -> bool {
        matches!(self, RequestState::Completed | RequestState::Refused)
    }
}

impl std::fmt::Display for SubjectStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for s in SubjectStatus::ALL {
            assert_eq!(SubjectStatus::parse(s.as_str()), Some(s));
        }
        for s in RequestState::ALL {
            assert_eq!(RequestState::parse(s.as_str()), Some(s));
        }
        assert_eq!(SubjectStatus::parse("gone"), None);
        assert_eq!(RequestState::parse("lost"), None);
        assert_eq!(format!("[{:<10}]", RequestState::Received), "[received  ]");
    }
}
