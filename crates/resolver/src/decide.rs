//! The provisioning rules as one pure function.

use domain::{
    CurrentState, Decision, IntegrationSettings, InviteMode, IssueKind, NewUser, NormalizedEmail,
    OwnerFacts, Profile, Timestamp, UserSnapshot, UserStatus,
};

/// What the decision needs to know about the event besides its owner.
#[derive(Debug, Clone, Copy)]
pub struct DecisionContext<'a> {
    pub event_type: &'a str,
    /// The CRM's time for the change, when it gives one.
    pub occurred_at: Option<Timestamp>,
}

/// Decides what one event means for one owner's account.
#[must_use]
pub fn decide(
    owner: &OwnerFacts,
    state: &CurrentState,
    settings: &IntegrationSettings,
    context: &DecisionContext<'_>,
) -> Decision {
    match &state.linked_user {
        Some(user) => decide_known(owner, user, state, context),
        None => decide_unknown(owner, state, settings),
    }
}

fn decide_known(
    owner: &OwnerFacts,
    user: &UserSnapshot,
    state: &CurrentState,
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
    let email = match owner.email.as_deref().map(NormalizedEmail::parse) {
        Some(Ok(email)) if email.normalized() != user.email.to_lowercase() => {
            if state.email_user.is_some() {
                return Decision::Issue {
                    kind: IssueKind::EmailConflict,
                    missing: Vec::new(),
                    detail: format!(
                        "the new email {} already belongs to another user",
                        email.as_str()
                    ),
                };
            }
            Some(email)
        }
        _ => None,
    };
    let changes = profile_changes(owner, user);
    if email.is_none() && changes.is_empty() {
        Decision::Unchanged { user_id: user.id }
    } else {
        Decision::Update {
            user_id: user.id,
            email,
            changes,
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
) -> Decision {
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
    if state.email_user.is_some() {
        return Decision::Issue {
            kind: IssueKind::EmailConflict,
            missing: Vec::new(),
            detail: format!("{} already belongs to another user", email.as_str()),
        };
    }
    let profile = Profile {
        avatar_url: owner.avatar_url.clone(),
        title: owner.title.clone(),
        department: owner.department.clone(),
        location: owner.location.clone(),
        member_type: owner.member_type.clone(),
        employee_ids: (!owner.employee_ids.is_empty()).then(|| owner.employee_ids.clone()),
        first_name: None,
        last_name: None,
    };
    Decision::Create(NewUser {
        email,
        first_name: first_name.to_owned(),
        last_name: last_name.to_owned(),
        profile,
        role: settings.default_role.clone(),
        status: UserStatus::Active,
        invite: settings.invite_mode == InviteMode::Automatic,
    })
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
mod tests {
    use domain::UserId;

    use super::*;

    fn ann() -> OwnerFacts {
        OwnerFacts {
            external_id: "005A".to_owned(),
            email: Some("Ann.Lee@example.com".to_owned()),
            first_name: Some("Ann".to_owned()),
            last_name: Some("Lee".to_owned()),
            ..OwnerFacts::default()
        }
    }

    fn stored(owner: &OwnerFacts) -> UserSnapshot {
        UserSnapshot {
            id: UserId::new(),
            email: owner.email.clone().unwrap_or_default(),
            first_name: owner.first_name.clone().unwrap_or_default(),
            last_name: owner.last_name.clone().unwrap_or_default(),
            avatar_url: None,
            title: None,
            department: None,
            location: None,
            employee_ids: Vec::new(),
            member_type: None,
            role: "member".to_owned(),
            status: UserStatus::Active,
            team_id: None,
            source_updated_at: None,
        }
    }

    const CONTEXT: DecisionContext<'static> = DecisionContext {
        event_type: "opportunity.updated",
        occurred_at: None,
    };

    #[test]
    fn unknown_owner_with_required_fields_is_created_and_invited() {
        let decision = decide(
            &ann(),
            &CurrentState::default(),
            &IntegrationSettings::default(),
            &CONTEXT,
        );
        let Decision::Create(new) = decision else {
            panic!("expected Create, got {decision:?}");
        };
        assert_eq!(new.email.normalized(), "ann.lee@example.com");
        assert_eq!(new.role, "member");
        assert_eq!(new.status, UserStatus::Active);
        assert!(new.invite);
    }

    #[test]
    fn missing_fields_are_an_issue_naming_them() {
        let owner = OwnerFacts {
            first_name: None,
            email: Some("  ".to_owned()),
            ..ann()
        };
        let decision = decide(
            &owner,
            &CurrentState::default(),
            &IntegrationSettings::default(),
            &CONTEXT,
        );
        assert_eq!(
            decision,
            Decision::Issue {
                kind: IssueKind::MissingFields,
                missing: vec!["first_name", "email"],
                detail: "missing first_name, email".to_owned(),
            }
        );
    }

    #[test]
    fn known_owner_is_never_created_again() {
        let owner = ann();
        let state = CurrentState {
            linked_user: Some(stored(&owner)),
            ..CurrentState::default()
        };
        let decision = decide(&owner, &state, &IntegrationSettings::default(), &CONTEXT);
        assert!(
            matches!(decision, Decision::Unchanged { .. }),
            "{decision:?}"
        );
    }

    #[test]
    fn changed_fields_are_updated() {
        let owner = OwnerFacts {
            title: Some("VP Sales".to_owned()),
            ..ann()
        };
        let state = CurrentState {
            linked_user: Some(stored(&ann())),
            ..CurrentState::default()
        };
        let Decision::Update { changes, email, .. } =
            decide(&owner, &state, &IntegrationSettings::default(), &CONTEXT)
        else {
            panic!("expected Update");
        };
        assert_eq!(changes.title.as_deref(), Some("VP Sales"));
        assert_eq!(changes.first_name, None);
        assert_eq!(email, None);
    }
}
