//! Integration settings: what an admin configures about how a CRM's events become accounts.
//! Unknown keys are refused so that a typo (`auto_creat`) is an error, not a silent default.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::states::text_enum;

text_enum!(
    /// How a CRM payload becomes owner facts (each has a preset field mapping and scheme).
    Source, "source", {
        /// rollcall's canonical JSON, signed the Standard Webhooks way.
        Rollcall => "rollcall",
        Hubspot => "hubspot",
        SalesforceOutbound => "salesforce-outbound",
        Pipedrive => "pipedrive",
        Connectwise => "connectwise",
        Jobber => "jobber",
        HousecallPro => "housecall-pro",
        Freshteam => "freshteam",
        Zoho => "zoho",
        /// Any JSON, mapped only by the integration's field mapping.
        Json => "json",
    }
);

text_enum!(
    /// Which CRM members get accounts, and in which status (product behaviour 11).
    StatusFilter, "status filter", {
        /// Only active members get accounts.
        Active => "active",
        /// Active members become active users, inactive ones inactive users.
        All => "all",
        /// Accounts are created inactive (activated later by the host application).
        Inactive => "inactive",
    }
);

text_enum!(
    /// How an owner is linked to an existing user the first time (product behaviour 7).
    MatchPolicy, "match policy", {
        /// Only by the CRM's owner id; an email collision is an issue.
        ExternalId => "external_id",
        /// An unlinked user with the same email (case-insensitive) gets linked.
        Email => "email",
        /// Same email AND the user already carries one of the owner's employee ids.
        EmailAndId => "email_and_id",
    }
);

text_enum!(
    /// When new users are invited.
    InviteMode, "invite mode", {
        Automatic => "automatic",
        /// Only when an admin asks.
        Manual => "manual",
        Off => "off",
    }
);

/// An event-type pattern: literal text where `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "deal.*")]
pub struct WorkflowPattern(String);

impl WorkflowPattern {
    #[must_use]
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `event_type` matches. Only `*` is special; there is no escaping because event
    /// types never contain it.
    #[must_use]
    pub fn matches(&self, event_type: &str) -> bool {
        let mut parts = self.0.split('*');
        let Some(first) = parts.next() else {
            return event_type.is_empty();
        };
        let Some(mut rest) = event_type.strip_prefix(first) else {
            return false;
        };
        let pieces: Vec<&str> = parts.collect();
        let Some((last, middle)) = pieces.split_last() else {
            // No `*` at all: the whole pattern had to match exactly.
            return rest.is_empty();
        };
        for piece in middle {
            match rest.find(piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }
}

impl fmt::Display for WorkflowPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The keys `field_mapping` accepts: where the owner object(s) are, then each owner field
/// relative to an owner object, then (for the `json` source) where the event's id, type and
/// time are in the body.
pub const FIELD_MAPPING_KEYS: &[&str] = &[
    "owner",
    "owners",
    "id",
    "email",
    "first_name",
    "last_name",
    "name",
    "avatar_url",
    "status",
    "active_flag",
    "inactive_flag",
    "member_type",
    "employee_ids",
    "title",
    "department",
    "location",
    // Where a `json` source's event is described (not owner fields).
    "event_id",
    "event_type",
    "occurred_at",
];

/// A setting outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("settings.{field}: {message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

/// The settings of one integration, with the defaults the contract names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationSettings {
    pub auto_create: bool,
    pub workflows: Vec<WorkflowPattern>,
    pub require_completed_work: bool,
    /// Event types that count as completed work when `require_completed_work` is on.
    pub completed_work_events: Vec<WorkflowPattern>,
    pub status_filter: StatusFilter,
    /// Absent: every member type syncs. Empty: none does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_types: Option<Vec<String>>,
    #[serde(rename = "match")]
    pub match_policy: MatchPolicy,
    pub default_role: String,
    pub invite_mode: InviteMode,
    pub pending_until_team: bool,
    pub department_to_team: bool,
    /// Owner field → JSON Pointer into the payload; overrides the source's preset per field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_mapping: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    pub max_body_bytes: u64,
}

/// The largest body an integration may accept: large enough for a 100-notification Salesforce
/// batch with every field, small enough that a hostile sender cannot exhaust memory.
pub const MAX_BODY_BYTES_CEILING: u64 = 16 * 1024 * 1024;

impl Default for IntegrationSettings {
    fn default() -> Self {
        Self {
            auto_create: true,
            workflows: vec![WorkflowPattern::new("*")],
            require_completed_work: false,
            completed_work_events: vec![WorkflowPattern::new("*.completed")],
            status_filter: StatusFilter::Active,
            member_types: None,
            match_policy: MatchPolicy::ExternalId,
            default_role: "member".to_owned(),
            invite_mode: InviteMode::Automatic,
            pending_until_team: false,
            department_to_team: false,
            field_mapping: None,
            rate_limit_per_second: None,
            max_body_bytes: 1_048_576,
        }
    }
}

impl IntegrationSettings {
    /// Checks ranges that the types alone cannot express.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |field, message: &str| {
            Err(SettingsError {
                field,
                message: message.to_owned(),
            })
        };
        if self.default_role.trim().is_empty() || self.default_role.len() > 64 {
            return fail("default_role", "must be 1 to 64 characters");
        }
        if self
            .workflows
            .iter()
            .any(|w| w.as_str().is_empty() || w.as_str().len() > 128)
        {
            return fail("workflows", "each pattern must be 1 to 128 characters");
        }
        if self.max_body_bytes < 1024 || self.max_body_bytes > MAX_BODY_BYTES_CEILING {
            return fail(
                "max_body_bytes",
                &format!("must be between 1024 and {MAX_BODY_BYTES_CEILING}"),
            );
        }
        if self.rate_limit_per_second == Some(0) {
            return fail(
                "rate_limit_per_second",
                "must be at least 1 (omit it for no limit)",
            );
        }
        if let Some(mapping) = &self.field_mapping {
            for (field, pointer) in mapping {
                if !FIELD_MAPPING_KEYS.contains(&field.as_str()) {
                    return Err(SettingsError {
                        field: "field_mapping",
                        message: format!(
                            "unknown field {field:?}; expected one of: {}",
                            FIELD_MAPPING_KEYS.join(", ")
                        ),
                    });
                }
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(SettingsError {
                        field: "field_mapping",
                        message: format!(
                            "{field}: {pointer:?} is not a JSON Pointer (it must start with '/')"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether `event_type` is one of the integration's active workflows.
    #[must_use]
    pub fn counts_event(&self, event_type: &str) -> bool {
        self.workflows.iter().any(|w| w.matches(event_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_globs() {
        let cases = [
            ("*", "deal.propertyChange", true),
            ("deal.*", "deal.propertyChange", true),
            ("deal.*", "contact.creation", false),
            ("job.completed", "job.completed", true),
            ("job.completed", "job.completed.x", false),
            ("*.completed", "job.completed", true),
            ("*.completed", "job.created", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXcYYb", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (pattern, event, expected) in cases {
            assert_eq!(
                WorkflowPattern::new(pattern).matches(event),
                expected,
                "{pattern} vs {event}"
            );
        }
    }

    #[test]
    fn defaults_are_the_contracts() {
        let settings: IntegrationSettings = serde_json::from_str("{}").unwrap();
        assert!(settings.auto_create);
        assert_eq!(settings.status_filter, StatusFilter::Active);
        assert_eq!(settings.match_policy, MatchPolicy::ExternalId);
        assert_eq!(settings.invite_mode, InviteMode::Automatic);
        assert_eq!(settings.default_role, "member");
        assert_eq!(settings.max_body_bytes, 1_048_576);
        assert!(settings.counts_event("anything.at.all"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err =
            serde_json::from_str::<IntegrationSettings>(r#"{"auto_creat": false}"#).unwrap_err();
        assert!(err.to_string().contains("auto_creat"), "{err}");
        let err = serde_json::from_str::<IntegrationSettings>(r#"{"match": "name"}"#).unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
        let settings: IntegrationSettings =
            serde_json::from_str(r#"{"max_body_bytes": 10}"#).unwrap();
        assert_eq!(settings.validate().unwrap_err().field, "max_body_bytes");
    }
}
