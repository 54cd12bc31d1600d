//! The same creation and invitation rules as auto-creation, for what an admin does by hand:
//! creating a user, placing a pending user on a team, reactivating a leaver.

use domain::{IntegrationSettings, InviteMode, UserStatus};

/// The status and invitation of a user created by hand under `settings` (the linked
/// integration's, or the defaults when the user is linked to none). Pending until on a team
/// when the integration says so; invited only when active under `invite_mode: automatic`.
/// `invite` overrides the mode either way, as an explicit admin act.
#[must_use]
pub fn manual_creation(
    settings: &IntegrationSettings,
    on_a_team: bool,
    invite: Option<bool>,
) -> (UserStatus, bool) {
    let status = if settings.pending_until_team && !on_a_team {
        UserStatus::Pending
    } else {
        UserStatus::Active
    };
    let invite = status == UserStatus::Active
        && invite.unwrap_or(settings.invite_mode == InviteMode::Automatic);
    (status, invite)
}

/// Whether a user who becomes active now (and was never invited) gets their invitation: when
/// any integration they are linked to invites automatically; a user linked to none follows
/// the default mode, `automatic`.
#[must_use]
pub fn invites_when_activated(linked: &[InviteMode]) -> bool {
    linked.is_empty() || linked.contains(&InviteMode::Automatic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pending_until_team: bool, invite_mode: InviteMode) -> IntegrationSettings {
        IntegrationSettings {
            pending_until_team,
            invite_mode,
            ..IntegrationSettings::default()
        }
    }

    #[test]
    fn manual_creation_follows_the_integration() {
        use InviteMode::{Automatic, Manual, Off};
        use UserStatus::{Active, Pending};
        let rows = [
            // pending_until_team, mode, on a team, explicit invite => status, invited
            (false, Automatic, false, None, Active, true),
            (false, Manual, false, None, Active, false),
            (false, Off, false, None, Active, false),
            (false, Automatic, false, Some(false), Active, false),
            (false, Manual, false, Some(true), Active, true),
            (true, Automatic, false, None, Pending, false),
            (true, Automatic, false, Some(true), Pending, false),
            (true, Automatic, true, None, Active, true),
        ];
        for (pending, mode, team, invite, status, invited) in rows {
            assert_eq!(
                manual_creation(&settings(pending, mode), team, invite),
                (status, invited),
                "pending_until_team {pending}, {mode:?}, on a team {team}, invite {invite:?}"
            );
        }
    }

    #[test]
    fn activation_invites_under_any_automatic_integration() {
        assert!(invites_when_activated(&[]));
        assert!(invites_when_activated(&[
            InviteMode::Off,
            InviteMode::Automatic
        ]));
        assert!(!invites_when_activated(&[InviteMode::Manual]));
        assert!(!invites_when_activated(&[
            InviteMode::Off,
            InviteMode::Manual
        ]));
    }
}
