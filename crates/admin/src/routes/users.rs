use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::{
    IntegrationId, IntegrationSettings, InvitationStatus, NewUser, Profile, TeamId, Timestamp,
    UserId, UserStatus,
};
use serde::{Deserialize, Serialize};
use store::{
    EventFilter, EventRecord, IdentityRecord, InvitationRecord, ManualUser, Page, UserEdit,
    UserFilter, UserRecord,
};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::{AdminState, Principal, service};

/// Where a user's invitation stands, as the API names it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct InvitationView {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    queued_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    attempts: i32,
}

impl InvitationView {
    pub(crate) fn of(invitation: Option<&InvitationRecord>, now: Timestamp) -> Self {
        let Some(invitation) = invitation else {
            return Self {
                state: "not_sent",
                queued_at: None,
                sent_at: None,
                accepted_at: None,
                expires_at: None,
                last_error: None,
                attempts: 0,
            };
        };
        let expired = invitation.expires_at.is_some_and(|at| at <= now);
        let state = match invitation.status {
            InvitationStatus::Queued | InvitationStatus::Sending => "queued",
            InvitationStatus::Sent if expired => "expired",
            InvitationStatus::Sent => "sent",
            InvitationStatus::Failed => "failed",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Superseded => "expired",
        };
        Self {
            state,
            queued_at: Some(invitation.created_at),
            sent_at: invitation.sent_at,
            accepted_at: invitation.accepted_at,
            expires_at: invitation.expires_at,
            last_error: invitation.last_error.clone(),
            attempts: invitation.attempts,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct UserView {
    #[serde(flatten)]
    user: UserRecord,
    identities: Vec<IdentityRecord>,
    invitation: InvitationView,
}

/// One user as the API shows it.
pub(crate) async fn view_of(state: &AdminState, user: UserRecord) -> ApiResult<UserView> {
    views(state, vec![user])
        .await?
        .pop()
        .ok_or(AdminError::NotFound("user"))
}

async fn views(state: &AdminState, users: Vec<UserRecord>) -> ApiResult<Vec<UserView>> {
    let ids: Vec<UserId> = users.iter().map(|user| user.id).collect();
    let mut identities = state.store.identities_of(&ids).await?;
    let invitations: HashMap<UserId, InvitationRecord> =
        state.store.latest_invitations_of(&ids).await?;
    let now = Timestamp::now();
    Ok(users
        .into_iter()
        .map(|user| UserView {
            identities: identities.remove(&user.id).unwrap_or_default(),
            invitation: InvitationView::of(invitations.get(&user.id), now),
            user,
        })
        .collect())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<String>,
    #[param(format = Uuid)]
    team_id: Option<String>,
    #[param(format = Uuid)]
    integration_id: Option<String>,
    q: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/users", tag = "users", params(ListQuery), responses((status = 200, description = "OK", body = Page<UserView>)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<UserView>>> {
    let status = query
        .status
        .as_deref()
        .map(|value| {
            value
                .parse::<UserStatus>()
                .map_err(|err| AdminError::bad_request(Some("status"), err.to_string()))
        })
        .transpose()?;
    let filter = UserFilter {
        tenant: principal.scope(),
        status,
        team_id: query
            .team_id
            .as_deref()
            .map(|v| parse_id("team_id", v))
            .transpose()?,
        integration_id: query
            .integration_id
            .as_deref()
            .map(|v| parse_id("integration_id", v))
            .transpose()?,
        q: query.q,
    };
    let after = super::cursor(query.cursor.as_deref())?;
    let page = state
        .store
        .list_users(&filter, after.as_ref(), super::limit(query.limit)?)
        .await?;
    Ok(Json(Page {
        items: views(&state, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

async fn visible(state: &AdminState, principal: Principal, id: &str) -> ApiResult<UserRecord> {
    let id: UserId = parse_id("id", id)?;
    state
        .store
        .user(id)
        .await?
        .filter(|user| principal.sees(user.tenant_id))
        .ok_or(AdminError::NotFound("user"))
}

/// How many of a user's latest events `GET /v1/users/{id}` shows; the rest are at
/// `GET /v1/events?user_id=…`.
const RECENT_EVENTS: u64 = 20;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TeamRef {
    id: TeamId,
    name: String,
}

/// One user in full: the list's view plus their team and the latest events that touched them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UserDetail {
    #[serde(flatten)]
    view: UserView,
    team: Option<TeamRef>,
    recent_events: Vec<EventRecord>,
    /// Where the rest of the user's events are, when there are more.
    more_events: Option<String>,
}

/// `GET /v1/users/{id}`.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = domain::UserId, Path, description = "user id (UUID)")), responses((status = 200, description = "OK", body = UserDetail)))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<UserDetail>> {
    let user = visible(&state, principal, &id).await?;
    let team = match user.team_id {
        Some(team) => state.store.team(team).await?.map(|team| TeamRef {
            id: team.id,
            name: team.name,
        }),
        None => None,
    };
    let filter = EventFilter {
        tenant: Some(user.tenant_id),
        user_id: Some(user.id),
        ..EventFilter::default()
    };
    let events = state
        .store
        .list_events(&filter, None, Some(RECENT_EVENTS))
        .await?;
    let more_events = events
        .next_cursor
        .map(|cursor| format!("/v1/events?user_id={}&cursor={cursor}", user.id));
    Ok(Json(UserDetail {
        view: view_of(&state, user).await?,
        team,
        recent_events: events.items,
        more_events,
    }))
}

/// The optional profile fields a user carries, as the API takes them.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    /// Required with the operator token; a tenant token's tenant otherwise.
    #[schema(format = Uuid)]
    tenant_id: Option<String>,
    email: String,
    first_name: String,
    last_name: String,
    role: Option<String>,
    avatar_url: Option<String>,
    title: Option<String>,
    department: Option<String>,
    location: Option<String>,
    member_type: Option<String>,
    employee_ids: Option<Vec<String>>,
    #[schema(format = Uuid)]
    team_id: Option<String>,
    /// Link the user to this owner of an integration (both or neither), whose settings then
    /// apply: default role, pending until on a team, invitation mode.
    #[schema(format = Uuid)]
    integration_id: Option<String>,
    external_id: Option<String>,
    /// Send (or hold back) the invitation regardless of the invitation mode.
    invite: Option<bool>,
}

/// `POST /v1/users`: a user created by hand, under the same rules as auto-creation.
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUser, responses((status = 201, description = "Created", body = UserView)))]
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let tenant = super::owning_tenant(&state, principal, request.tenant_id.as_deref()).await?;
    let email = service::email("email", &request.email)?;
    let first_name = service::person_name("first_name", &request.first_name)?;
    let last_name = service::person_name("last_name", &request.last_name)?;
    let team_id: Option<TeamId> = request
        .team_id
        .as_deref()
        .map(|value| parse_id("team_id", value))
        .transpose()?;
    if let Some(team) = team_id
        && state
            .store
            .team(team)
            .await?
            .is_none_or(|team| team.tenant_id != tenant)
    {
        return Err(AdminError::invalid("team_id", "no such team"));
    }
    let (settings, link) = match (
        request.integration_id.as_deref(),
        request.external_id.as_deref(),
    ) {
        (None, None) => (IntegrationSettings::default(), None),
        (Some(integration), Some(external_id)) => {
            let id: IntegrationId = parse_id("integration_id", integration)?;
            let integration = state
                .store
                .integration(id)
                .await?
                .filter(|integration| integration.tenant_id == tenant)
                .ok_or_else(|| AdminError::invalid("integration_id", "no such integration"))?;
            let external_id = service::non_empty("external_id", external_id, 255)?;
            (integration.settings, Some((integration.id, external_id)))
        }
        (Some(_), None) => {
            return Err(AdminError::invalid(
                "external_id",
                "external_id is required with integration_id",
            ));
        }
        (None, Some(_)) => {
            return Err(AdminError::invalid(
                "integration_id",
                "integration_id is required with external_id",
            ));
        }
    };
    let (status, invite) = resolver::manual_creation(&settings, team_id.is_some(), request.invite);
    let role = match request.role.as_deref() {
        Some(role) => service::non_empty("role", role, 100)?,
        None => settings.default_role.clone(),
    };
    let new = NewUser {
        email,
        first_name,
        last_name,
        profile: Profile {
            avatar_url: request.avatar_url,
            title: request.title,
            department: request.department,
            location: request.location,
            member_type: request.member_type,
            employee_ids: request.employee_ids,
            first_name: None,
            last_name: None,
        },
        role,
        status,
        invite,
        team: None,
    };
    let manual = ManualUser {
        tenant,
        user: &new,
        team_id,
        link: link.as_ref().map(|(id, external)| (*id, external.as_str())),
    };
    let user = state.store.create_user(&manual, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, Json(view_of(&state, user).await?)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUser {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    role: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    avatar_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    title: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    department: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    location: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    member_type: Option<Option<String>>,
    employee_ids: Option<Vec<String>>,
}

/// `PATCH /v1/users/{id}`: edits profile fields, email and role. Status has its own routes,
/// and the team its own, because both carry rules (leavers, pending users, invitations).
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", params(("id" = domain::UserId, Path, description = "user id (UUID)")), request_body = UpdateUser, responses((status = 200, description = "OK", body = UserView)))]
pub(crate) async fn update(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateUser>,
) -> ApiResult<Json<UserView>> {
    let user = visible(&state, principal, &id).await?;
    let edit = UserEdit {
        email: request
            .email
            .as_deref()
            .map(|email| service::email("email", email))
            .transpose()?,
        first_name: request
            .first_name
            .as_deref()
            .map(|name| service::person_name("first_name", name))
            .transpose()?,
        last_name: request
            .last_name
            .as_deref()
            .map(|name| service::person_name("last_name", name))
            .transpose()?,
        role: request
            .role
            .as_deref()
            .map(|role| service::non_empty("role", role, 100))
            .transpose()?,
        avatar_url: request.avatar_url,
        title: request.title,
        department: request.department,
        location: request.location,
        member_type: request.member_type,
        employee_ids: request.employee_ids,
    };
    let user = state
        .store
        .edit_user(user.id, &edit, Timestamp::now())
        .await?
        .ok_or(AdminError::NotFound("user"))?;
    view_of(&state, user).await.map(Json)
}

/// `POST /v1/users/{id}/deactivate`: the user becomes a leaver (as when the CRM says they left).
#[utoipa::path(post, path = "/v1/users/{id}/deactivate", tag = "users", params(("id" = domain::UserId, Path, description = "user id (UUID)")), responses((status = 200, description = "Now a leaver", body = UserView)))]
pub(crate) async fn deactivate(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let user = visible(&state, principal, &id).await?;
    let (user, _) = state
        .store
        .set_user_status(user.id, UserStatus::Leaver, false, Timestamp::now())
        .await?
        .ok_or(AdminError::NotFound("user"))?;
    view_of(&state, user).await.map(Json)
}

/// `POST /v1/users/{id}/reactivate`: a leaver or inactive user becomes active again, and gets
/// the invitation they never had under their integrations' rules. A pending user is activated
/// by placing them on a team instead.
#[utoipa::path(post, path = "/v1/users/{id}/reactivate", tag = "users", params(("id" = domain::UserId, Path, description = "user id (UUID)")), responses((status = 200, description = "Active again", body = UserView)))]
pub(crate) async fn reactivate(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let user = visible(&state, principal, &id).await?;
    if user.status == UserStatus::Pending {
        return Err(AdminError::Conflict(
            "the user is pending until placed on a team: PUT /v1/teams/{id}/members/{user_id}"
                .to_owned(),
        ));
    }
    let invite = service::invites_when_activated(&state.store, user.id).await?;
    let (user, _) = state
        .store
        .set_user_status(user.id, UserStatus::Active, invite, Timestamp::now())
        .await?
        .ok_or(AdminError::NotFound("user"))?;
    view_of(&state, user).await.map(Json)
}
