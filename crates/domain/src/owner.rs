//! What a CRM event says about the person who owns a record.

use serde::{Deserialize, Serialize};

use crate::states::text_enum;

text_enum!(
    /// The owner's standing in the CRM.
    OwnerStatus, "owner status", {
        Active => "active",
        Inactive => "inactive",
        /// Left the company.
        Terminated => "terminated",
        /// Removed from the CRM.
        Deleted => "deleted",
    }
);

impl OwnerStatus {
    /// Inactive, terminated and deleted owners all count as gone.
    #[must_use]
    pub const fn is_active(self) -> bool {
        matches!(self, OwnerStatus::Active)
    }
}

/// The owner of a CRM record as far as one event tells. Every field but the external id may be
/// missing: provisioning decides what it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerFacts {
    /// The CRM's own id for the owner (the identity link's key).
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OwnerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub employee_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl OwnerFacts {
    /// The owner's email, normalized, if it is a valid address (provisioning's key; an
    /// invalid one is an issue, decided elsewhere).
    #[must_use]
    pub fn normalized_email(&self) -> Option<crate::NormalizedEmail> {
        self.email
            .as_deref()
            .and_then(|email| crate::NormalizedEmail::parse(email).ok())
    }
}
