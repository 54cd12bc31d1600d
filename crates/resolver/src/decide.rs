//! The provisioning rules as one pure function: owner facts, the stored state and the
//! integration's settings in, a [`Decision`] out. No clock, no IO.
//!
//! The rules, in the order they apply:
//! 1. Only event types of the integration's `workflows` count; others are ignored.
//! 2. With `member_types` set, only those member types sync (an empty list: none).
//! 3. A known owner (identity link exists) is kept in step: an event older than the last one
//!    applied is ignored as stale; otherwise changed profile fields, an email change and a
//!    status change are applied. Terminated or deleted owners become leavers; inactive ones
//!    become leavers too, except under `status_filter: all`, where they become inactive users.
//!    An active owner who is a leaver or inactive comes back (to `pending` when the integration
//!    keeps new users pending until they are on a team and they are on none; under
//!    `status_filter: inactive` a leaver comes back as inactive, since there the host
//!    application activates accounts).
//! 4. An unknown owner who has left is ignored; one who is inactive is ignored unless the
//!    status filter is `all`.
//! 5. First name, last name and a valid email are required, or it is a provisioning issue.
//! 6. An existing user with that email is linked only as the match policy allows (`email`;
//!    `email_and_id` with a shared employee id, compared exactly); never a user another owner of
//!    the integration holds. Otherwise it is an issue, never a merge.
//! 7. Creation needs `auto_create`, and under `require_completed_work` a completing event type.
//!    New users get the default role; they are `inactive` under `status_filter: inactive` (or
//!    when the CRM says so under `all`), `pending` under `pending_until_team`, else `active`,
//!    and only active new users are invited (under `invite_mode: automatic`).
//! 8. Under `department_to_team`, the owner's department names the user's team (created if
//!    missing): a new user starts on it (so is not held pending), a stored user moves to it
//!    when they are on no team or their department changed, and a pending user placed on a
//!    team this way becomes active (and is invited then, under `automatic`).

use domain::{
    CurrentState, Decision, IntegrationSettings, InviteMode, IssueKind, MatchPolicy, NewUser,
    NormalizedEmail, OwnerFacts, OwnerStatus, Profile, StatusFilter, Timestamp, UserChanges,
    UserSnapshot, UserStatus,
};

/// What the decision needs to know about the event besides its owner.
#[derive(Debug, Clone, Copy)]
pub struct DecisionContext<'a> {
    pub event_type: &'a str,
    /// The CRM's time for the change, when it gives one.
    pub occurred_at: Option<Timestamp>,
    /// A row of a roster import: it states who the owner is, not what they did, so the
    /// filters on CRM activity (`workflows`, `require_completed_work`) do not apply to it.
    pub roster: bool,
}

/// Decides what one event means for one owner's account.
#[must_use]
pub fn decide(
    owner: &OwnerFacts,
    state: &CurrentState,
    settings: &IntegrationSettings,
    context: &DecisionContext<'_>,
) -> Decision {
    let linked = state.linked_user.as_ref().map(|user| user.id);
    if !context.roster && !settings.counts_event(context.event_type) {
        return Decision::Ignore {
            user_id: linked,
            reason: format!(
                "event type {} is not one of the integration's workflows",
                context.event_type
            ),
        };
    }
    if let Some(reason) = member_type_excluded(owner, settings) {
        return Decision::Ignore {
            user_id: linked,
            reason,
        };
    }
    match &state.linked_user {
        Some(user) => decide_known(owner, user, state, settings, context),
        None => decide_unknown(owner, state, settings, context),
    }
}

fn member_type_excluded(owner: &OwnerFacts, settings: &IntegrationSettings) -> Option<String> {
    let types = settings.member_types.as_ref()?;
    if types.is_empty() {
        return Some("member_types is empty: no member type syncs".to_owned());
    }
    match &owner.member_type {
        Some(member_type) if types.iter().any(|t| t.eq_ignore_ascii_case(member_type)) => None,
        Some(member_type) => Some(format!(
            "member type {member_type} does not sync (member_types: {})",
            types.join(", ")
        )),
        None => Some(format!(
            "the owner's member type is unknown and only {} sync",
            types.join(", ")
        )),
    }
}

/// The team an owner's department puts them on, under `department_to_team`.
fn department_team<'a>(owner: &'a OwnerFacts, settings: &IntegrationSettings) -> Option<&'a str> {
    if !settings.department_to_team {
        return None;
    }
    owner
        .department
        .as_deref()
        .map(str::trim)
        .filter(|department| !department.is_empty())
}

/// The department team a stored user moves to: when they are on no team yet, or their
/// department changed. (A user an admin moved stays where they were put until the CRM reports
/// a different department.)
fn team_move(
    owner: &OwnerFacts,
    user: &UserSnapshot,
    settings: &IntegrationSettings,
) -> Option<String> {
    let team = department_team(owner, settings)?;
    let department_changed =
        owner.department.as_deref().map(str::trim) != user.department.as_deref().map(str::trim);
    (user.team_id.is_none() || department_changed).then(|| team.to_owned())
}

/// The status a stored user moves to after an event reporting `reported` (and placing them on
/// a team, when `joins_team`), if it changes. A pending user placed on a team is active.
fn transition(
    reported: Option<OwnerStatus>,
    user: &UserSnapshot,
    settings: &IntegrationSettings,
    joins_team: bool,
) -> Option<UserStatus> {
    let on_a_team = joins_team || user.team_id.is_some();
    let Some(reported) = reported else {
        return (joins_team && user.status == UserStatus::Pending).then_some(UserStatus::Active);
    };
    let target = match reported {
        OwnerStatus::Terminated | OwnerStatus::Deleted => UserStatus::Leaver,
        OwnerStatus::Inactive => match (settings.status_filter, user.status) {
            (_, UserStatus::Leaver) => UserStatus::Leaver,
            (StatusFilter::All, _) => UserStatus::Inactive,
            (StatusFilter::Active | StatusFilter::Inactive, _) => UserStatus::Leaver,
        },
        OwnerStatus::Active => match (user.status, settings.status_filter) {
            (UserStatus::Leaver, StatusFilter::Inactive) => UserStatus::Inactive,
            (
                UserStatus::Leaver | UserStatus::Inactive,
                StatusFilter::Active | StatusFilter::All,
            ) => {
                if settings.pending_until_team && !on_a_team {
                    UserStatus::Pending
                } else {
                    UserStatus::Active
                }
            }
            (UserStatus::Pending, _) if on_a_team => UserStatus::Active,
            (current, _) => current,
        },
    };
    (target != user.status).then_some(target)
}

/// Why an event's changes cannot be applied: becomes a [`Decision::Issue`].
struct Refusal {
    kind: IssueKind,
    detail: String,
}

impl From<Refusal> for Decision {
    fn from(refusal: Refusal) -> Self {
        Decision::Issue {
            kind: refusal.kind,
            missing: Vec::new(),
            detail: refusal.detail,
        }
    }
}

/// The changes an event brings to a stored user, or the issue that stops them.
fn changes_for(
    owner: &OwnerFacts,
    user: &UserSnapshot,
    state: &CurrentState,
    settings: &IntegrationSettings,
) -> Result<UserChanges, Refusal> {
    let email = match owner.email.as_deref() {
        None => None,
        Some(text) => match NormalizedEmail::parse(text) {
            Err(err) => {
                return Err(Refusal {
                    kind: IssueKind::InvalidEmail,
                    detail: err.to_string(),
                });
            }
            Ok(email) if email.normalized() == user.email.to_lowercase() => None,
            // The identity link, not the email, is the key: an email change follows through
            // unless the new address already belongs to someone else.
            Ok(email) if state.email_user.is_some() => {
                return Err(Refusal {
                    kind: IssueKind::EmailConflict,
                    detail: format!(
                        "the new email {} already belongs to another user",
                        email.as_str()
                    ),
                });
            }
            Ok(email) => Some(email),
        },
    };
    let team = team_move(owner, user, settings);
    Ok(UserChanges {
        email,
        profile: profile_changes(owner, user),
        status: transition(owner.status, user, settings, team.is_some()),
        team,
    })
}

fn pending_note(status: UserStatus) -> Option<String> {
    (status == UserStatus::Pending).then(|| "pending: the user is not on a team yet".to_owned())
}

fn decide_known(
    owner: &OwnerFacts,
    user: &UserSnapshot,
    state: &CurrentState,
    settings: &IntegrationSettings,
    context: &DecisionContext<'_>,
) -> Decision {
    if let (Some(occurred), Some(applied)) = (context.occurred_at, user.source_updated_at)
        && occurred < applied
    {
        return Decision::Ignore {
            user_id: Some(user.id),
            reason: format!(
                "stale: occurred at {occurred}, older than the last applied change ({applied})"
            ),
        };
    }
    let changes = match changes_for(owner, user, state, settings) {
        Ok(changes) => changes,
        Err(refusal) => return refusal.into(),
    };
    let note = pending_note(changes.status.unwrap_or(user.status));
    if changes.is_empty() {
        Decision::Unchanged {
            user_id: user.id,
            note,
        }
    } else {
        // Someone created pending (or inactive) was not invited then; becoming active is
        // when they are, once.
        let invite = settings.invite_mode == InviteMode::Automatic
            && !user.invited
            && user.status != UserStatus::Active
            && changes.status == Some(UserStatus::Active);
        Decision::Update {
            user_id: user.id,
            from: user.status,
            changes,
            note,
            invite,
        }
    }
}

/// First name, last name and email, trimmed; or the names of those missing.
fn required_fields(owner: &OwnerFacts) -> Result<(&str, &str, &str), Vec<&'static str>> {
    fn present(value: &Option<String>) -> Option<&str> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|value| !value.is_empty())
    }
    match (
        present(&owner.first_name),
        present(&owner.last_name),
        present(&owner.email),
    ) {
        (Some(first), Some(last), Some(email)) => Ok((first, last, email)),
        (first, last, email) => Err([
            ("first_name", first.is_none()),
            ("last_name", last.is_none()),
            ("email", email.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect()),
    }
}

fn decide_unknown(
    owner: &OwnerFacts,
    state: &CurrentState,
    settings: &IntegrationSettings,
    context: &DecisionContext<'_>,
) -> Decision {
    match owner.status {
        Some(status @ (OwnerStatus::Terminated | OwnerStatus::Deleted)) => {
            return Decision::Ignore {
                user_id: None,
                reason: format!("the owner is {status} in the CRM; no account is created"),
            };
        }
        Some(OwnerStatus::Inactive) if settings.status_filter != StatusFilter::All => {
            return Decision::Ignore {
                user_id: None,
                reason: format!(
                    "the owner is inactive in the CRM and the status filter is {}",
                    settings.status_filter
                ),
            };
        }
        _ => {}
    }
    let (first_name, last_name, email) = match required_fields(owner) {
        Ok(fields) => fields,
        Err(missing) => {
            return Decision::Issue {
                kind: IssueKind::MissingFields,
                detail: format!("missing {}", missing.join(", ")),
                missing,
            };
        }
    };
    let email = match NormalizedEmail::parse(email) {
        Ok(email) => email,
        Err(err) => {
            return Decision::Issue {
                kind: IssueKind::InvalidEmail,
                missing: Vec::new(),
                detail: err.to_string(),
            };
        }
    };
    if let Some(existing) = &state.email_user {
        return link_or_issue(owner, existing, state, settings, &email);
    }
    if !settings.auto_create {
        return Decision::Ignore {
            user_id: None,
            reason: "auto_create is off: unknown owners are not created".to_owned(),
        };
    }
    if settings.require_completed_work
        && !context.roster
        && !settings
            .completed_work_events
            .iter()
            .any(|pattern| pattern.matches(context.event_type))
    {
        let patterns: Vec<&str> = settings
            .completed_work_events
            .iter()
            .map(|p| p.as_str())
            .collect();
        return Decision::Ignore {
            user_id: None,
            reason: format!(
                "no completed work yet: an account is created on {}",
                patterns.join(", ")
            ),
        };
    }
    let team = department_team(owner, settings).map(str::to_owned);
    let status = match (settings.status_filter, owner.status) {
        (StatusFilter::Inactive, _) | (StatusFilter::All, Some(OwnerStatus::Inactive)) => {
            UserStatus::Inactive
        }
        _ if settings.pending_until_team && team.is_none() => UserStatus::Pending,
        _ => UserStatus::Active,
    };
    Decision::Create(NewUser {
        email,
        first_name: first_name.to_owned(),
        last_name: last_name.to_owned(),
        profile: Profile {
            avatar_url: owner.avatar_url.clone(),
            title: owner.title.clone(),
            department: owner.department.clone(),
            location: owner.location.clone(),
            member_type: owner.member_type.clone(),
            employee_ids: (!owner.employee_ids.is_empty()).then(|| owner.employee_ids.clone()),
            first_name: None,
            last_name: None,
        },
        role: settings.default_role.clone(),
        status,
        invite: settings.invite_mode == InviteMode::Automatic && status == UserStatus::Active,
        team,
    })
}

/// An unknown owner whose email an existing user holds: link as the policy allows, or say why
/// not. A user already linked to another owner of this integration is never re-pointed.
fn link_or_issue(
    owner: &OwnerFacts,
    existing: &UserSnapshot,
    state: &CurrentState,
    settings: &IntegrationSettings,
    email: &NormalizedEmail,
) -> Decision {
    let conflict = |detail: String| Decision::Issue {
        kind: IssueKind::EmailConflict,
        missing: Vec::new(),
        detail,
    };
    if state.email_user_linked_here {
        return conflict(format!(
            "{} belongs to a user already linked to another owner of this integration",
            email.as_str()
        ));
    }
    match settings.match_policy {
        MatchPolicy::ExternalId => {
            return conflict(format!(
                "{} belongs to an existing user; the match policy external_id links by owner id only",
                email.as_str()
            ));
        }
        MatchPolicy::Email => {}
        MatchPolicy::EmailAndId => {
            // Exact, case-sensitive comparison of employee ids, as the policy promises.
            let shared = owner
                .employee_ids
                .iter()
                .any(|id| existing.employee_ids.contains(id));
            if !shared {
                return Decision::Issue {
                    kind: IssueKind::EmployeeIdMismatch,
                    missing: Vec::new(),
                    detail: format!(
                        "{} belongs to a user who carries none of the owner's employee ids",
                        email.as_str()
                    ),
                };
            }
        }
    }
    let team = team_move(owner, existing, settings);
    let changes = UserChanges {
        email: None,
        profile: profile_changes(owner, existing),
        status: transition(owner.status, existing, settings, team.is_some()),
        team,
    };
    Decision::Link {
        user_id: existing.id,
        changes,
    }
}

/// The fields the event sets to something other than what the user has.
fn profile_changes(owner: &OwnerFacts, user: &UserSnapshot) -> Profile {
    fn changed(new: &Option<String>, old: &str) -> Option<String> {
        new.as_ref().filter(|value| value.as_str() != old).cloned()
    }
    fn changed_opt(new: &Option<String>, old: &Option<String>) -> Option<String> {
        new.as_ref()
            .filter(|value| Some(*value) != old.as_ref())
            .cloned()
    }
    Profile {
        first_name: changed(&owner.first_name, &user.first_name),
        last_name: changed(&owner.last_name, &user.last_name),
        avatar_url: changed_opt(&owner.avatar_url, &user.avatar_url),
        title: changed_opt(&owner.title, &user.title),
        department: changed_opt(&owner.department, &user.department),
        location: changed_opt(&owner.location, &user.location),
        member_type: changed_opt(&owner.member_type, &user.member_type),
        employee_ids: (!owner.employee_ids.is_empty() && owner.employee_ids != user.employee_ids)
            .then(|| owner.employee_ids.clone()),
    }
}

#[cfg(test)]
mod tests;
