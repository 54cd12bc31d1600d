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
    /// An invitation was queued for this user at some point (sent, failed or not).
    pub invited: bool,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
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
    /// Put the user on the tenant's team of this name (created if missing): the CRM's
    /// department under `department_to_team`.
    pub team: Option<String>,
}

/// Changes to an existing user: profile fields, an email change, a status change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub email: Option<NormalizedEmail>,
    pub profile: Profile,
    pub status: Option<UserStatus>,
    /// Move the user to the tenant's team of this name (created if missing).
    pub team: Option<String>,
}

impl UserChanges {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.profile.is_empty()
            && self.status.is_none()
            && self.team.is_none()
    }
}

/// Why an owner did not get (or keep in step) an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// First name, last name or email is missing.
    MissingFields,
    /// The email is not a valid address.
    InvalidEmail,
    /// The email belongs to another user and the match policy does not allow linking.
    EmailConflict,
    /// Policy `email_and_id`: the user with this email carries none of the owner's employee ids.
    EmployeeIdMismatch,
    /// The CRM's directory has no such owner (its users API answered "not found").
    OwnerNotFound,
    /// The CRM's directory refused rollcall's credentials, or the integration has none.
    DirectoryRefused,
}

impl IssueKind {
    pub const ALL: [IssueKind; 6] = [
        IssueKind::MissingFields,
        IssueKind::InvalidEmail,
        IssueKind::EmailConflict,
        IssueKind::EmployeeIdMismatch,
        IssueKind::OwnerNotFound,
        IssueKind::DirectoryRefused,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            IssueKind::MissingFields => "missing_fields",
            IssueKind::InvalidEmail => "invalid_email",
            IssueKind::EmailConflict => "email_conflict",
            IssueKind::EmployeeIdMismatch => "employee_id_mismatch",
            IssueKind::OwnerNotFound => "owner_not_found",
            IssueKind::DirectoryRefused => "directory_refused",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        IssueKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// The decision for one owner of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Create(NewUser),
    /// Link the owner to an existing user that no owner of this integration holds (match
    /// policy `email` or `email_and_id`), then apply the changes.
    Link {
        user_id: UserId,
        changes: UserChanges,
    },
    /// Apply changes to the linked user. A status change to `leaver` or `inactive` is a
    /// deactivation; from `leaver`/`inactive` to `active`/`pending` a reactivation.
    Update {
        user_id: UserId,
        from: UserStatus,
        changes: UserChanges,
        /// Flag for the event log (e.g. activity of a pending user).
        note: Option<String>,
        /// Queue the invitation a user created pending or inactive did not get then.
        invite: bool,
    },
    /// Known owner, nothing to change.
    Unchanged {
        user_id: UserId,
        note: Option<String>,
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

const fn is_down(status: UserStatus) -> bool {
    matches!(status, UserStatus::Leaver | UserStatus::Inactive)
}

impl Decision {
    /// The outcome the event log records for this decision.
    #[must_use]
    pub fn outcome(&self) -> EventOutcome {
        match self {
            Decision::Create(_) => EventOutcome::Created,
            Decision::Link { .. } => EventOutcome::Updated,
            Decision::Update { from, changes, .. } => match changes.status {
                Some(to) if is_down(to) && !is_down(*from) => EventOutcome::Deactivated,
                Some(UserStatus::Leaver) if *from != UserStatus::Leaver => {
                    EventOutcome::Deactivated
                }
                Some(to) if !is_down(to) && is_down(*from) => EventOutcome::Reactivated,
                _ => EventOutcome::Updated,
            },
            Decision::Unchanged { .. } => EventOutcome::Unchanged,
            Decision::Ignore { .. } => EventOutcome::Ignored,
            Decision::Issue { .. } => EventOutcome::Issue,
        }
    }

    /// The user the decision touches, when there is one already.
    #[must_use]
    pub fn user(&self) -> Option<UserId> {
        match self {
            Decision::Link { user_id, .. }
            | Decision::Update { user_id, .. }
            | Decision::Unchanged { user_id, .. } => Some(*user_id),
            Decision::Ignore { user_id, .. } => *user_id,
            Decision::Create(_) | Decision::Issue { .. } => None,
        }
    }

    /// The reason or note the event log shows.
    #[must_use]
    pub fn reason(&self) -> Option<String> {
        match self {
            Decision::Ignore { reason, .. } => Some(reason.clone()),
            Decision::Issue { detail, .. } => Some(detail.clone()),
            Decision::Update { note, .. } | Decision::Unchanged { note, .. } => note.clone(),
            Decision::Create(_) | Decision::Link { .. } => None,
        }
    }

    /// A short name for previews (`create`, `link`, `update`, …).
    #[must_use]
    pub const fn action(&self) -> &'static str {
        match self {
            Decision::Create(_) => "create",
            Decision::Link { .. } => "link",
            Decision::Update { .. } => "update",
            Decision::Unchanged { .. } => "none",
            Decision::Ignore { .. } => "ignore",
            Decision::Issue { .. } => "issue",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(from: UserStatus, to: Option<UserStatus>) -> Decision {
        Decision::Update {
            user_id: UserId::new(),
            from,
            changes: UserChanges {
                status: to,
                ..UserChanges::default()
            },
            note: None,
            invite: false,
        }
    }

    #[test]
    fn status_transitions_name_their_outcome() {
        use UserStatus::{Active, Inactive, Leaver, Pending};
        let cases = [
            (Active, Some(Leaver), EventOutcome::Deactivated),
            (Active, Some(Inactive), EventOutcome::Deactivated),
            (Inactive, Some(Leaver), EventOutcome::Deactivated),
            (Pending, Some(Leaver), EventOutcome::Deactivated),
            (Leaver, Some(Active), EventOutcome::Reactivated),
            (Inactive, Some(Active), EventOutcome::Reactivated),
            (Leaver, Some(Pending), EventOutcome::Reactivated),
            (Leaver, Some(Inactive), EventOutcome::Updated),
            (Active, None, EventOutcome::Updated),
        ];
        for (from, to, expected) in cases {
            assert_eq!(update(from, to).outcome(), expected, "{from} → {to:?}");
        }
    }
}
