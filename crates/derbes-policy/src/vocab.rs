//! The fixed vocabularies the engine decides with. The policy file gives each
//! term its published wording; the engine's meaning lives here.

use serde::{Deserialize, Serialize};

macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every term, in the order the policy lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case identifier used in files, JSON and URLs.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            /// Parse an identifier; `None` for an unknown one.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// Processing operations (the policy's introduction; the Law's list).
    Operation {
        Collection => "collection",
        Recording => "recording",
        Systematisation => "systematisation",
        Storage => "storage",
        Update => "update",
        Extraction => "extraction",
        Use => "use",
        Transfer => "transfer",
        CrossBorderTransfer => "cross_border_transfer",
        Depersonalisation => "depersonalisation",
        Blocking => "blocking",
        Deletion => "deletion",
        Destruction => "destruction",
    }
);

vocabulary!(
    /// Communication channels (section 2, 7.11).
    Channel {
        Sms => "sms",
        Whatsapp => "whatsapp",
        Telegram => "telegram",
        Push => "push",
        Email => "email",
        PhoneCall => "phone_call",
    }
);

vocabulary!(
    /// What a purpose is for; `Marketing` needs the channel's own consent.
    /// `Rights` answers the data subject's own requests (7.11, the Law): it
    /// needs no consent, is allowed while the subject is blocked or has
    /// withdrawn, and never justifies keeping data (its retention is nil).
    PurposeKind {
        Service => "service",
        Marketing => "marketing",
        Analytics => "analytics",
        Security => "security",
        Legal => "legal",
        Rights => "rights",
    }
);

vocabulary!(
    /// What a purpose that reaches the subject over a channel sends: a
    /// `service` message (notifications, feedback — an objection stops it)
    /// or a `marketing` one (offers, surveys — it also needs the channel's
    /// own marketing consent, and an objection stops it too).
    ContactKind {
        Service => "service",
        Marketing => "marketing",
    }
);

vocabulary!(
    /// Kinds of recipient (section 6).
    RecipientKind {
        Affiliate => "affiliate",
        Partner => "partner",
        FinancialInstitution => "financial_institution",
        AdPlatform => "ad_platform",
        Advertiser => "advertiser",
        Telecom => "telecom",
        Contractor => "contractor",
        Assignee => "assignee",
        Authority => "authority",
        ThirdParty => "third_party",
        LegalProtection => "legal_protection",
    }
);

vocabulary!(
    /// Kinds of source (5.1).
    SourceKind {
        Subject => "subject",
        Representative => "representative",
        Device => "device",
        ThirdParty => "third_party",
    }
);

vocabulary!(
    /// Kinds of consent the ledger records.
    ConsentKind {
        Policy => "policy",
        Marketing => "marketing",
        Cookies => "cookies",
        Entrepreneur => "entrepreneur",
    }
);

vocabulary!(
    /// The type of a field's value, which decides how input is validated.
    FieldType {
        Iin => "iin",
        Bin => "bin",
        Phone => "phone",
        Email => "email",
        Iban => "iban",
        Bik => "bik",
        Text => "text",
        Url => "url",
        IpAddress => "ip_address",
        Boolean => "boolean",
    }
);

vocabulary!(
    /// From when a purpose's retention period runs.
    RetentionStart {
        Collection => "collection",
        RelationshipEnd => "relationship_end",
    }
);

vocabulary!(
    /// The data subject's rights and the deadlines that go with them.
    Right {
        Access => "access",
        Information => "information",
        Rectification => "rectification",
        Blocking => "blocking",
        Unblocking => "unblocking",
        Objection => "objection",
        Withdrawal => "withdrawal",
        Destruction => "destruction",
        Complaint => "complaint",
    }
);

vocabulary!(
    /// What a staff role may do, besides using data for its purposes.
    /// Complaints (reported violations of the policy) are routed to the
    /// roles with `answer_complaints` — the data-protection officer.
    /// `send_events` feeds app telemetry into the usage statistics;
    /// `read_stats` reads those depersonalised statistics.
    /// `approve_irreversible` verifies the requests that destroy (destruction,
    /// withdrawal, a minor's report) and places or releases legal holds — the
    /// data-protection officer's alone, and never on a request they filed.
    /// `in_app_requests` acts for the user signed in to the app: requests it
    /// files in-app are verified by that sign-in and worked at once.
    /// `manage_breaches` keeps the breach register (the data-protection
    /// officer and security); `manage_systems` connects the operator's other
    /// systems that must follow what derbes does (the administrator).
    Capability {
        RegisterSubjects => "register_subjects",
        Lookup => "lookup",
        ReadData => "read_data",
        Rectify => "rectify",
        RecordConsents => "record_consents",
        Decide => "decide",
        Disclose => "disclose",
        ReadDisclosures => "read_disclosures",
        ReadAudit => "read_audit",
        ManageStaff => "manage_staff",
        ManageKeys => "manage_keys",
        WorkRequests => "work_requests",
        AnswerComplaints => "answer_complaints",
        SendEvents => "send_events",
        ReadStats => "read_stats",
        ApproveIrreversible => "approve_irreversible",
        InAppRequests => "in_app_requests",
        ManageBreaches => "manage_breaches",
        ManageSystems => "manage_systems",
    }
);

vocabulary!(
    /// The blocks the published document is made of.
    BlockKind {
        Title => "title",
        Heading => "heading",
        Paragraph => "paragraph",
        Item => "item",
        Subitem => "subitem",
        Term => "term",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(*op));
            assert_eq!(serde_json::to_string(op).unwrap(), format!("\"{op}\""));
        }
        assert_eq!(Channel::parse("carrier_pigeon"), None);
    }
}
