//! Every rule of `decide`, one row each.

use domain::{
    CurrentState, Decision, EventOutcome, IntegrationSettings, InviteMode, IssueKind, MatchPolicy,
    OwnerFacts, OwnerStatus, StatusFilter, TeamId, Timestamp, UserId, UserSnapshot, UserStatus,
    WorkflowPattern,
};

use super::{DecisionContext, decide};

fn ann() -> OwnerFacts {
    OwnerFacts {
        external_id: "005A".to_owned(),
        email: Some("ann.lee@example.com".to_owned()),
        first_name: Some("Ann".to_owned()),
        last_name: Some("Lee".to_owned()),
        status: Some(OwnerStatus::Active),
        employee_ids: vec!["AL01".to_owned()],
        member_type: Some("F".to_owned()),
        ..OwnerFacts::default()
    }
}

fn user(email: &str, status: UserStatus) -> UserSnapshot {
    UserSnapshot {
        id: UserId::new(),
        email: email.to_owned(),
        first_name: "Ann".to_owned(),
        last_name: "Lee".to_owned(),
        avatar_url: None,
        title: None,
        department: None,
        location: None,
        employee_ids: vec!["AL01".to_owned()],
        member_type: Some("F".to_owned()),
        role: "member".to_owned(),
        status,
        team_id: None,
        source_updated_at: Some(Timestamp::from_millis(2_000)),
        invited: status == UserStatus::Active,
    }
}

fn linked(status: UserStatus) -> CurrentState {
    CurrentState {
        linked_user: Some(user("ann.lee@example.com", status)),
        ..CurrentState::default()
    }
}

fn email_holder(linked_here: bool, employee_ids: &[&str]) -> CurrentState {
    let mut holder = user("Ann.Lee@example.com", UserStatus::Active);
    holder.employee_ids = employee_ids.iter().map(|id| (*id).to_owned()).collect();
    CurrentState {
        linked_user: None,
        email_user: Some(holder),
        email_user_linked_here: linked_here,
    }
}

/// What a row expects.
#[derive(Debug)]
enum Expect {
    Create {
        status: UserStatus,
        invite: bool,
        role: &'static str,
    },
    Link {
        status: Option<UserStatus>,
    },
    Update {
        outcome: EventOutcome,
        status: Option<UserStatus>,
        email: Option<&'static str>,
        note: bool,
    },
    Unchanged,
    Ignore(&'static str),
    Issue(IssueKind, &'static [&'static str]),
}

struct Row {
    name: &'static str,
    owner: OwnerFacts,
    state: CurrentState,
    settings: IntegrationSettings,
    event: &'static str,
    occurred_ms: Option<i64>,
    expect: Expect,
}

fn row(name: &'static str, expect: Expect) -> Row {
    Row {
        name,
        owner: ann(),
        state: CurrentState::default(),
        settings: IntegrationSettings::default(),
        event: "opportunity.updated",
        occurred_ms: Some(3_000),
        expect,
    }
}

impl Row {
    fn owner(mut self, change: impl FnOnce(&mut OwnerFacts)) -> Self {
        change(&mut self.owner);
        self
    }
    fn state(mut self, state: CurrentState) -> Self {
        self.state = state;
        self
    }
    fn settings(mut self, change: impl FnOnce(&mut IntegrationSettings)) -> Self {
        change(&mut self.settings);
        self
    }
    fn event(mut self, event: &'static str) -> Self {
        self.event = event;
        self
    }
    fn at(mut self, millis: Option<i64>) -> Self {
        self.occurred_ms = millis;
        self
    }
}

fn patterns(list: &[&str]) -> Vec<WorkflowPattern> {
    list.iter().map(|p| WorkflowPattern::new(*p)).collect()
}

fn rows() -> Vec<Row> {
    use Expect::*;
    use UserStatus::{Active, Inactive, Leaver, Pending};
    let create = Create {
        status: Active,
        invite: true,
        role: "member",
    };
    vec![
        // Workflows.
        row(
            "a listed workflow counts",
            Create {
                status: Active,
                invite: true,
                role: "member",
            },
        )
        .settings(|s| s.workflows = patterns(&["deal.*"]))
        .event("deal.propertyChange"),
        row(
            "an unlisted event type is ignored",
            Ignore("not one of the integration's workflows"),
        )
        .settings(|s| s.workflows = patterns(&["deal.*"]))
        .event("contact.creation"),
        row(
            "an unlisted event type is ignored for known owners too",
            Ignore("not one of"),
        )
        .state(linked(Active))
        .settings(|s| s.workflows = patterns(&["job.completed"]))
        .event("job.created"),
        // Member types.
        row(
            "no member_types: all sync",
            Create {
                status: Active,
                invite: true,
                role: "member",
            },
        ),
        row(
            "a listed member type syncs, any case",
            Create {
                status: Active,
                invite: true,
                role: "member",
            },
        )
        .owner(|o| o.member_type = Some("f".to_owned()))
        .settings(|s| s.member_types = Some(vec!["F".to_owned()])),
        row(
            "an unlisted member type does not sync",
            Ignore("member type X does not sync"),
        )
        .owner(|o| o.member_type = Some("X".to_owned()))
        .settings(|s| s.member_types = Some(vec!["F".to_owned(), "A".to_owned()])),
        row(
            "an empty member_types list syncs nobody",
            Ignore("no member type syncs"),
        )
        .settings(|s| s.member_types = Some(Vec::new())),
        row(
            "an unknown member type does not sync under a list",
            Ignore("member type is unknown"),
        )
        .owner(|o| o.member_type = None)
        .settings(|s| s.member_types = Some(vec!["F".to_owned()])),
        // Auto-creation.
        row(
            "auto_create off ignores unknown owners",
            Ignore("auto_create is off"),
        )
        .settings(|s| s.auto_create = false),
        row(
            "auto_create off still keeps known owners in step",
            Update {
                outcome: EventOutcome::Updated,
                status: None,
                email: None,
                note: false,
            },
        )
        .owner(|o| o.title = Some("VP".to_owned()))
        .state(linked(Active))
        .settings(|s| s.auto_create = false),
        row(
            "auto_create off still links by email under the email policy",
            Link { status: None },
        )
        .state(email_holder(false, &[]))
        .settings(|s| {
            s.auto_create = false;
            s.match_policy = MatchPolicy::Email;
        }),
        // Completed work.
        row(
            "no account before completed work",
            Ignore("no completed work yet"),
        )
        .settings(|s| s.require_completed_work = true)
        .event("job.created"),
        row("completed work creates the account", create)
            .settings(|s| s.require_completed_work = true)
            .event("job.completed"),
        row(
            "earlier events still update a known owner",
            Update {
                outcome: EventOutcome::Updated,
                status: None,
                email: None,
                note: false,
            },
        )
        .owner(|o| o.title = Some("Technician".to_owned()))
        .state(linked(Active))
        .settings(|s| s.require_completed_work = true)
        .event("job.created"),
        // Required fields.
        row(
            "a missing first name is an issue naming it",
            Issue(IssueKind::MissingFields, &["first_name"]),
        )
        .owner(|o| o.first_name = None),
        row(
            "all three missing are named",
            Issue(
                IssueKind::MissingFields,
                &["first_name", "last_name", "email"],
            ),
        )
        .owner(|o| {
            o.first_name = Some(" ".to_owned());
            o.last_name = None;
            o.email = None;
        }),
        row(
            "an invalid email is an issue",
            Issue(IssueKind::InvalidEmail, &[]),
        )
        .owner(|o| o.email = Some("ann at example".to_owned())),
        // Matching.
        row(
            "external_id policy: a taken email is an issue, not a merge",
            Issue(IssueKind::EmailConflict, &[]),
        )
        .state(email_holder(false, &["AL01"])),
        row(
            "email policy links an unlinked user with the same email, any case",
            Link { status: None },
        )
        .state(email_holder(false, &[]))
        .settings(|s| s.match_policy = MatchPolicy::Email),
        row(
            "email policy never re-points a user linked to another owner",
            Issue(IssueKind::EmailConflict, &[]),
        )
        .state(email_holder(true, &[]))
        .settings(|s| s.match_policy = MatchPolicy::Email),
        row(
            "email_and_id links with a shared employee id",
            Link { status: None },
        )
        .state(email_holder(false, &["ZZ9", "AL01"]))
        .settings(|s| s.match_policy = MatchPolicy::EmailAndId),
        row(
            "email_and_id compares employee ids case-sensitively",
            Issue(IssueKind::EmployeeIdMismatch, &[]),
        )
        .state(email_holder(false, &["al01"]))
        .settings(|s| s.match_policy = MatchPolicy::EmailAndId),
        row(
            "email_and_id needs an employee id",
            Issue(IssueKind::EmployeeIdMismatch, &[]),
        )
        .owner(|o| o.employee_ids.clear())
        .state(email_holder(false, &["AL01"]))
        .settings(|s| s.match_policy = MatchPolicy::EmailAndId),
        row(
            "a linked user brought back by email is reactivated",
            Link {
                status: Some(Active),
            },
        )
        .state({
            let mut state = email_holder(false, &[]);
            if let Some(holder) = state.email_user.as_mut() {
                holder.status = Leaver;
            }
            state
        })
        .settings(|s| s.match_policy = MatchPolicy::Email),
        // Keeping users in step.
        row("a known owner with nothing new is unchanged", Unchanged).state(linked(Active)),
        row(
            "changed fields are updated",
            Update {
                outcome: EventOutcome::Updated,
                status: None,
                email: None,
                note: false,
            },
        )
        .owner(|o| {
            o.title = Some("VP Sales".to_owned());
            o.department = Some("Sales East".to_owned());
        })
        .state(linked(Active)),
        row(
            "an email change follows the identity link",
            Update {
                outcome: EventOutcome::Updated,
                status: None,
                email: Some("ann@newco.example"),
                note: false,
            },
        )
        .owner(|o| o.email = Some("ann@newco.example".to_owned()))
        .state(linked(Active)),
        row(
            "a new email another user holds is an issue",
            Issue(IssueKind::EmailConflict, &[]),
        )
        .owner(|o| o.email = Some("bob@example.com".to_owned()))
        .state(CurrentState {
            email_user: Some(user("bob@example.com", Active)),
            ..linked(Active)
        }),
        row("a case-only email difference is no change", Unchanged)
            .owner(|o| o.email = Some("ANN.LEE@example.com".to_owned()))
            .state(linked(Active)),
        row(
            "an older event never overwrites newer data",
            Ignore("stale"),
        )
        .owner(|o| o.title = Some("Old title".to_owned()))
        .state(linked(Active))
        .at(Some(1_999)),
        row(
            "an event as old as the last applied one still applies",
            Update {
                outcome: EventOutcome::Updated,
                status: None,
                email: None,
                note: false,
            },
        )
        .owner(|o| o.title = Some("Same instant".to_owned()))
        .state(linked(Active))
        .at(Some(2_000)),
        row("an event without a time is not stale", Unchanged)
            .state(linked(Active))
            .at(None),
        // Status filter and leavers.
        row(
            "an unknown inactive owner is ignored under the active filter",
            Ignore("inactive in the CRM"),
        )
        .owner(|o| o.status = Some(OwnerStatus::Inactive)),
        row(
            "an unknown inactive owner becomes an inactive user under all",
            Create {
                status: Inactive,
                invite: false,
                role: "member",
            },
        )
        .owner(|o| o.status = Some(OwnerStatus::Inactive))
        .settings(|s| s.status_filter = StatusFilter::All),
        row(
            "the inactive filter creates accounts inactive",
            Create {
                status: Inactive,
                invite: false,
                role: "member",
            },
        )
        .settings(|s| s.status_filter = StatusFilter::Inactive),
        row(
            "a terminated unknown owner is never created",
            Ignore("terminated in the CRM"),
        )
        .owner(|o| o.status = Some(OwnerStatus::Terminated))
        .settings(|s| s.status_filter = StatusFilter::All),
        row(
            "terminated makes a leaver",
            Update {
                outcome: EventOutcome::Deactivated,
                status: Some(Leaver),
                email: None,
                note: false,
            },
        )
        .owner(|o| o.status = Some(OwnerStatus::Terminated))
        .state(linked(Active)),
        row(
            "deleted makes a leaver",
            Update {
                outcome: EventOutcome::Deactivated,
                status: Some(Leaver),
                email: None,
                note: false,
            },
        )
        .owner(|o| o.status = Some(OwnerStatus::Deleted))
        .state(linked(Pending)),
        row(
            "inactive makes a leaver under the active filter",
            Update {
                outcome: EventOutcome::Deactivated,
                status: Some(Leaver),
                email: None,
                note: false,
            },
        )
        .owner(|o| o.status = Some(OwnerStatus::Inactive))
        .state(linked(Active)),
        row(
            "inactive makes an inactive user under all",
            Update {
                outcome: EventOutcome::Deactivated,
                status: Some(Inactive),
                email: None,
                note: false,
            },
        )
        .owner(|o| o.status = Some(OwnerStatus::Inactive))
        .state(linked(Active))
        .settings(|s| s.status_filter = StatusFilter::All),
        row(
            "an active owner reactivates a leaver",
            Update {
                outcome: EventOutcome::Reactivated,
                status: Some(Active),
                email: None,
                note: false,
            },
        )
        .state(linked(Leaver)),
        row(
            "an active owner reactivates an inactive user under all",
            Update {
                outcome: EventOutcome::Reactivated,
                status: Some(Active),
                email: None,
                note: false,
            },
        )
        .state(linked(Inactive))
        .settings(|s| s.status_filter = StatusFilter::All),
        row(
            "under the inactive filter a leaver comes back inactive",
            Update {
                outcome: EventOutcome::Updated,
                status: Some(Inactive),
                email: None,
                note: false,
            },
        )
        .state(linked(Leaver))
        .settings(|s| s.status_filter = StatusFilter::Inactive),
        row(
            "under the inactive filter rollcall does not activate",
            Unchanged,
        )
        .state(linked(Inactive))
        .settings(|s| s.status_filter = StatusFilter::Inactive),
        row("a leaver reported deleted again is unchanged", Unchanged)
            .owner(|o| o.status = Some(OwnerStatus::Deleted))
            .state(linked(Leaver)),
        row(
            "a reactivated leaver waits for a team under pending_until_team",
            Update {
                outcome: EventOutcome::Reactivated,
                status: Some(Pending),
                email: None,
                note: true,
            },
        )
        .state(linked(Leaver))
        .settings(|s| s.pending_until_team = true),
        row(
            "a reactivated leaver on a team is active under pending_until_team",
            Update {
                outcome: EventOutcome::Reactivated,
                status: Some(Active),
                email: None,
                note: false,
            },
        )
        .state({
            let mut state = linked(Leaver);
            if let Some(user) = state.linked_user.as_mut() {
                user.team_id = Some(TeamId::new());
            }
            state
        })
        .settings(|s| s.pending_until_team = true),
        row("no reported status means no status change", Unchanged)
            .owner(|o| o.status = None)
            .state(linked(Leaver)),
        // Roles, pending, invitations.
        row(
            "new users get the default role",
            Create {
                status: Active,
                invite: true,
                role: "viewer",
            },
        )
        .settings(|s| s.default_role = "viewer".to_owned()),
        row(
            "pending_until_team creates pending users, not invited yet",
            Create {
                status: Pending,
                invite: false,
                role: "member",
            },
        )
        .settings(|s| s.pending_until_team = true),
        row(
            "manual invitations are not sent on creation",
            Create {
                status: Active,
                invite: false,
                role: "member",
            },
        )
        .settings(|s| s.invite_mode = InviteMode::Manual),
        row(
            "invitations off",
            Create {
                status: Active,
                invite: false,
                role: "member",
            },
        )
        .settings(|s| s.invite_mode = InviteMode::Off),
        row(
            "activity of a pending user is recorded and flagged",
            Update {
                outcome: EventOutcome::Updated,
                status: None,
                email: None,
                note: true,
            },
        )
        .owner(|o| o.title = Some("Rep".to_owned()))
        .state(linked(Pending)),
    ]
}

#[test]
fn every_rule() {
    let mut failures = Vec::new();
    let rows = rows();
    assert!(rows.len() >= 45);
    for row in rows {
        let context = DecisionContext {
            event_type: row.event,
            occurred_at: row.occurred_ms.map(Timestamp::from_millis),
            roster: false,
        };
        let decision = decide(&row.owner, &row.state, &row.settings, &context);
        let ok = match (&row.expect, &decision) {
            (
                Expect::Create {
                    status,
                    invite,
                    role,
                },
                Decision::Create(new),
            ) => new.status == *status && new.invite == *invite && new.role == *role,
            (Expect::Link { status }, Decision::Link { changes, user_id }) => {
                changes.status == *status
                    && row
                        .state
                        .email_user
                        .as_ref()
                        .is_some_and(|u| u.id == *user_id)
            }
            (
                Expect::Update {
                    outcome,
                    status,
                    email,
                    note,
                },
                Decision::Update {
                    changes,
                    note: got_note,
                    ..
                },
            ) => {
                decision.outcome() == *outcome
                    && changes.status == *status
                    && changes.email.as_ref().map(|e| e.as_str()) == *email
                    && got_note.is_some() == *note
            }
            (Expect::Unchanged, Decision::Unchanged { .. }) => true,
            (Expect::Ignore(reason), Decision::Ignore { reason: got, .. }) => got.contains(reason),
            (
                Expect::Issue(kind, missing),
                Decision::Issue {
                    kind: got,
                    missing: got_missing,
                    ..
                },
            ) => got == kind && got_missing == missing,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: expected {:?}, got {decision:?}",
                row.name, row.expect
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn created_users_carry_the_owner_profile() {
    let owner = OwnerFacts {
        avatar_url: Some("https://cdn.example.com/ann.png".to_owned()),
        title: Some("AE".to_owned()),
        department: Some("Sales".to_owned()),
        location: Some("Boston".to_owned()),
        ..ann()
    };
    let context = DecisionContext {
        event_type: "x",
        occurred_at: None,
        roster: false,
    };
    let Decision::Create(new) = decide(
        &owner,
        &CurrentState::default(),
        &IntegrationSettings::default(),
        &context,
    ) else {
        panic!("expected a creation");
    };
    assert_eq!(new.email.normalized(), "ann.lee@example.com");
    assert_eq!(
        new.profile.avatar_url.as_deref(),
        Some("https://cdn.example.com/ann.png")
    );
    assert_eq!(new.profile.title.as_deref(), Some("AE"));
    assert_eq!(new.profile.location.as_deref(), Some("Boston"));
    assert_eq!(new.profile.employee_ids, Some(vec!["AL01".to_owned()]));
}

/// The `invite` flag of the decision for an active owner linked to `user`.
fn invites_on_update(user: UserSnapshot, settings: &IntegrationSettings) -> Option<bool> {
    let context = DecisionContext {
        event_type: "x",
        occurred_at: None,
        roster: false,
    };
    let state = CurrentState {
        linked_user: Some(user),
        ..CurrentState::default()
    };
    match decide(&ann(), &state, settings, &context) {
        Decision::Update { invite, .. } => Some(invite),
        _ => None,
    }
}

#[test]
fn a_user_never_invited_is_invited_when_they_become_active() {
    let automatic = IntegrationSettings::default();
    let never_invited = |status| UserSnapshot {
        invited: false,
        ..user("ann.lee@example.com", status)
    };
    assert_eq!(
        invites_on_update(never_invited(UserStatus::Inactive), &automatic),
        Some(true)
    );
    // A pending user stays pending whatever the CRM says (joining a team activates them), so
    // no update and no invitation.
    assert_eq!(
        invites_on_update(never_invited(UserStatus::Pending), &automatic),
        None,
    );
    // Invited before (a returning leaver): no second invitation.
    let invited_before = UserSnapshot {
        invited: true,
        ..user("ann.lee@example.com", UserStatus::Inactive)
    };
    assert_eq!(invites_on_update(invited_before, &automatic), Some(false));
    // Manual and off: an admin sends it, or nobody.
    for mode in [InviteMode::Manual, InviteMode::Off] {
        let settings = IntegrationSettings {
            invite_mode: mode,
            ..IntegrationSettings::default()
        };
        assert_eq!(
            invites_on_update(never_invited(UserStatus::Inactive), &settings),
            Some(false)
        );
    }
    // Already active, a profile change only: nothing to invite for.
    let active = UserSnapshot {
        invited: false,
        title: Some("Old title".to_owned()),
        ..user("ann.lee@example.com", UserStatus::Active)
    };
    let retitled = OwnerFacts {
        title: Some("AE".to_owned()),
        ..ann()
    };
    let state = CurrentState {
        linked_user: Some(active),
        ..CurrentState::default()
    };
    let context = DecisionContext {
        event_type: "x",
        occurred_at: None,
        roster: false,
    };
    assert!(matches!(
        decide(&retitled, &state, &automatic, &context),
        Decision::Update { invite: false, .. }
    ));
}

fn with_department(department: &str) -> OwnerFacts {
    OwnerFacts {
        department: Some(department.to_owned()),
        ..ann()
    }
}

fn department_settings(pending_until_team: bool) -> IntegrationSettings {
    IntegrationSettings {
        department_to_team: true,
        pending_until_team,
        ..IntegrationSettings::default()
    }
}

#[test]
fn a_department_names_the_team_of_a_new_user_who_is_then_not_held_pending() {
    let context = DecisionContext {
        event_type: "deal.updated",
        occurred_at: None,
        roster: false,
    };
    let decided = decide(
        &with_department(" Sales East "),
        &CurrentState::default(),
        &department_settings(true),
        &context,
    );
    let Decision::Create(new) = decided else {
        panic!("{decided:?}")
    };
    assert_eq!(new.team.as_deref(), Some("Sales East"));
    assert_eq!(new.status, UserStatus::Active);
    assert!(new.invite);

    // Without the setting, the department is only a profile field, and the user waits.
    let settings = IntegrationSettings {
        pending_until_team: true,
        ..IntegrationSettings::default()
    };
    let decided = decide(
        &with_department("Sales East"),
        &CurrentState::default(),
        &settings,
        &context,
    );
    let Decision::Create(new) = decided else {
        panic!("{decided:?}")
    };
    assert_eq!(new.team, None);
    assert_eq!(new.status, UserStatus::Pending);
    assert!(!new.invite);

    // A blank department places no one.
    let decided = decide(
        &with_department("  "),
        &CurrentState::default(),
        &department_settings(true),
        &context,
    );
    let Decision::Create(new) = decided else {
        panic!("{decided:?}")
    };
    assert_eq!((new.team, new.status), (None, UserStatus::Pending));
}

#[test]
fn a_stored_user_follows_a_department_change_and_a_pending_one_becomes_active() {
    let context = DecisionContext {
        event_type: "deal.updated",
        occurred_at: None,
        roster: false,
    };
    let changes_of = |decision: Decision| match decision {
        Decision::Update {
            changes, invite, ..
        } => (changes, invite),
        other => panic!("{other:?}"),
    };

    // Pending, on no team: the department places them, they become active and are invited.
    let mut pending = user("ann.lee@example.com", UserStatus::Pending);
    pending.invited = false;
    let state = CurrentState {
        linked_user: Some(pending.clone()),
        ..CurrentState::default()
    };
    let (changes, invite) = changes_of(decide(
        &with_department("Sales East"),
        &state,
        &department_settings(true),
        &context,
    ));
    assert_eq!(changes.team.as_deref(), Some("Sales East"));
    assert_eq!(changes.status, Some(UserStatus::Active));
    assert!(invite);

    // The same with no status in the payload.
    let owner = OwnerFacts {
        status: None,
        ..with_department("Sales East")
    };
    let (changes, _) = changes_of(decide(&owner, &state, &department_settings(true), &context));
    assert_eq!(changes.status, Some(UserStatus::Active));

    // On a team already, same department: nothing moves (an admin's placement stands).
    let mut placed = user("ann.lee@example.com", UserStatus::Active);
    placed.department = Some("Sales East".to_owned());
    placed.team_id = Some(TeamId::new());
    let state = CurrentState {
        linked_user: Some(placed.clone()),
        ..CurrentState::default()
    };
    let decided = decide(
        &with_department("Sales East"),
        &state,
        &department_settings(false),
        &context,
    );
    assert!(matches!(decided, Decision::Unchanged { .. }), "{decided:?}");

    // The department changes: they move to the new department's team.
    let (changes, invite) = changes_of(decide(
        &with_department("Sales West"),
        &state,
        &department_settings(false),
        &context,
    ));
    assert_eq!(changes.team.as_deref(), Some("Sales West"));
    assert_eq!(changes.status, None);
    assert!(!invite);
}

#[test]
fn roster_rows_are_not_filtered_as_crm_activity() {
    let settings = IntegrationSettings {
        workflows: vec![WorkflowPattern::new("deal.*")],
        require_completed_work: true,
        ..IntegrationSettings::default()
    };
    let decide_with = |roster: bool| {
        let context = DecisionContext {
            event_type: "roster.import",
            occurred_at: None,
            roster,
        };
        decide(&ann(), &CurrentState::default(), &settings, &context)
    };
    assert!(matches!(decide_with(false), Decision::Ignore { .. }));
    assert!(matches!(decide_with(true), Decision::Create(_)));
}
