//! What provisioning decides for one owner of one event, and the state it decides from.
//!
//! The resolver computes a [`Decision`] with a pure function of owner facts, [`CurrentState`]
//! and settings; the provisioner applies it in one transaction. Both sides share these types.

use serde::{Deserialize, Serialize};

use crate::{EventOutcome, NormalizedEmail, TeamId, Timestamp, UserId, UserStatus};

/// The user an owner is linked to, or could be linked to, as stored now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSnapshot {
    pub id: UserId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub avatar_url: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub location: Option<String>,
    pub employee_ids: Vec<String>,
    pub member_type: Option<String>,
    pub role: String,
    pub status: UserStatus,
    pub team_id: Option<TeamId>,
    /// The CRM's `occurred_at` of the newest event applied to this user.
    pub source_updated_at: Option<Timestamp>,
}

/// What the database says about an owner before the decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentState {
    /// The user the identity link `(integration, external_id)` points at.
    pub linked_user: Option<UserSnapshot>,
    /// The tenant's user holding the owner's email, if it is a different (or no) linked user.
    pub email_user: Option<UserSnapshot>,
    /// Whether that email user already has an identity on this integration (then it belongs to
    /// another owner and must never be re-pointed).
    pub email_user_linked_here: bool,
}

/// Profile fields a CRM can set. `None` in a change set means "leave as is".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar_url: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub location: Option<String>,
    pub member_type: Option<String>,
    pub employee_ids: Option<Vec<String>>,
}

impl Profile {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Profile::default()
    }
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: NormalizedEmail,
    pub first_name: String,
    pub last_name: String,
    pub profile: Profile,
    pub role: String,
    pub status: UserStatus,
    /// Queue an invitation in the same transaction.
    pub invite: bool,
}

/// Why an owner did not get an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// First name, last name or email is missing.
    MissingFields,
    /// The email is not a valid address.
    InvalidEmail,
    /// The email belongs to another user and the match policy does not allow linking.
    EmailConflict,
}

impl IssueKind {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            IssueKind::MissingFields => "missing_fields",
            IssueKind::InvalidEmail => "invalid_email",
            IssueKind::EmailConflict => "email_conflict",
        }
    }
}

/// The decision for one owner of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Create(NewUser),
    /// Link the owner to an existing, unlinked user (match policy `email`/`email_and_id`) and
    /// apply the changes.
    Link {
        user_id: UserId,
        email: Option<NormalizedEmail>,
        changes: Profile,
    },
    Update {
        user_id: UserId,
        email: Option<NormalizedEmail>,
        changes: Profile,
    },
    Deactivate {
        user_id: UserId,
    },
    Reactivate {
        user_id: UserId,
        status: UserStatus,
    },
    /// Known owner, nothing to change.
    Unchanged {
        user_id: UserId,
    },
    Ignore {
        user_id: Option<UserId>,
        reason: String,
    },
    Issue {
        kind: IssueKind,
        missing: Vec<&'static str>,
        detail: String,
    },
}

impl Decision {
    /// The outcome the event log records for this decision.
    #[must_use]
    pub fn outcome(&self) -> EventOutcome {
        match self {
            Decision::Create(_) => EventOutcome::Created,
            Decision::Link { .. } | Decision::Update { .. } => EventOutcome::Updated,
            Decision::Deactivate { .. } => EventOutcome::Deactivated,
            Decision::Reactivate { .. } => EventOutcome::Reactivated,
            Decision::Unchanged { .. } => EventOutcome::Unchanged,
            Decision::Ignore { .. } => EventOutcome::Ignored,
            Decision::Issue { .. } => EventOutcome::Issue,
        }
    }
}
