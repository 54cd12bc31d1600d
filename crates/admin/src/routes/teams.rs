//! Teams and team membership. A user is on at most one team; placing a `pending` user on a
//! team activates them and queues the invitation the integration's rules call for.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::{TeamId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use store::{Page, Team, TeamDeletion};

use super::users::{UserView, view_of};
use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::{AdminState, Principal, service};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTeam {
    /// Required with the operator token; a tenant token's tenant otherwise.
    #[schema(format = Uuid)]
    tenant_id: Option<String>,
    name: String,
}

/// `POST /v1/teams`.
#[utoipa::path(post, path = "/v1/teams", tag = "teams", request_body = CreateTeam, responses((status = 201, description = "Created", body = Team)))]
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<CreateTeam>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    let name = service::team_name(&request.name)?;
    let tenant = super::owning_tenant(&state, principal, request.tenant_id.as_deref()).await?;
    let team = state
        .store
        .create_team(tenant, &name, Timestamp::now())
        .await?;
    Ok((StatusCode::CREATED, Json(team)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[param(format = Uuid)]
    tenant_id: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /v1/teams`: with member counts.
#[utoipa::path(get, path = "/v1/teams", tag = "teams", params(ListQuery), responses((status = 200, description = "OK", body = Page<Team>)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Team>>> {
    let Some(tenant) = super::list_scope(principal, query.tenant_id.as_deref())? else {
        return Ok(Json(Page {
            items: Vec::new(),
            next_cursor: None,
        }));
    };
    let after = super::cursor(query.cursor.as_deref())?;
    Ok(Json(
        state
            .store
            .list_teams(tenant, after.as_ref(), super::limit(query.limit)?)
            .await?,
    ))
}

async fn visible(state: &AdminState, principal: Principal, id: &str) -> ApiResult<Team> {
    let id: TeamId = parse_id("id", id)?;
    state
        .store
        .team(id)
        .await?
        .filter(|team| principal.sees(team.tenant_id))
        .ok_or(AdminError::NotFound("team"))
}

/// `GET /v1/teams/{id}`.
#[utoipa::path(get, path = "/v1/teams/{id}", tag = "teams", params(("id" = domain::TeamId, Path, description = "team id (UUID)")), responses((status = 200, description = "OK", body = Team)))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Team>> {
    visible(&state, principal, &id).await.map(Json)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameTeam {
    name: String,
}

/// `PATCH /v1/teams/{id}`: rename.
#[utoipa::path(patch, path = "/v1/teams/{id}", tag = "teams", params(("id" = domain::TeamId, Path, description = "team id (UUID)")), request_body = RenameTeam, responses((status = 200, description = "OK", body = Team)))]
pub(crate) async fn rename(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RenameTeam>,
) -> ApiResult<Json<Team>> {
    let team = visible(&state, principal, &id).await?;
    let name = service::team_name(&request.name)?;
    state
        .store
        .rename_team(team.id, &name)
        .await?
        .map(Json)
        .ok_or(AdminError::NotFound("team"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteQuery {
    /// Delete a team that has members, moving them out first.
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeletedTeam {
    id: TeamId,
    members_moved_out: u64,
}

/// `DELETE /v1/teams/{id}`: only when empty, unless `?force=true`.
#[utoipa::path(delete, path = "/v1/teams/{id}", tag = "teams", params(("id" = domain::TeamId, Path, description = "team id (UUID)"), DeleteQuery), responses((status = 200, description = "OK", body = DeletedTeam)))]
pub(crate) async fn delete(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> ApiResult<Json<DeletedTeam>> {
    let team = visible(&state, principal, &id).await?;
    match state
        .store
        .delete_team(team.id, query.force, Timestamp::now())
        .await?
    {
        TeamDeletion::Deleted { members_moved_out } => Ok(Json(DeletedTeam {
            id: team.id,
            members_moved_out,
        })),
        TeamDeletion::NotEmpty { members } => Err(AdminError::Conflict(format!(
            "team {:?} has {members} member(s); move them first or delete with ?force=true",
            team.name
        ))),
    }
}

/// The team and the user a membership path names, both visible to the caller and of the same
/// tenant.
async fn membership(
    state: &AdminState,
    principal: Principal,
    id: &str,
    user_id: &str,
) -> ApiResult<(Team, UserId)> {
    let team = visible(state, principal, id).await?;
    let user_id: UserId = parse_id("user_id", user_id)?;
    let user = state
        .store
        .user(user_id)
        .await?
        .filter(|user| user.tenant_id == team.tenant_id)
        .ok_or(AdminError::NotFound("user"))?;
    Ok((team, user.id))
}

/// `PUT /v1/teams/{id}/members/{user_id}`: puts the user on this team (off any other). A
/// pending user becomes active, and is invited if the integrations they came from invite
/// automatically and they never were.
#[utoipa::path(put, path = "/v1/teams/{id}/members/{user_id}", tag = "teams", params(("id" = domain::TeamId, Path, description = "team id (UUID)"), ("user_id" = domain::UserId, Path, description = "user id (UUID)")), responses((status = 200, description = "The user, now on the team", body = UserView)))]
pub(crate) async fn add_member(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<UserView>> {
    let (team, user_id) = membership(&state, principal, &id, &user_id).await?;
    let invite = service::invites_when_activated(&state.store, user_id).await?;
    let placement = state
        .store
        .place_on_team(team.id, user_id, invite, Timestamp::now())
        .await?;
    if placement.activated {
        tracing::info!(user = %user_id, team = %team.id, invited = placement.invited, "pending user placed on a team: active");
    }
    view_of(&state, placement.user).await.map(Json)
}

/// `DELETE /v1/teams/{id}/members/{user_id}`: takes the user off the team (their status stays).
#[utoipa::path(delete, path = "/v1/teams/{id}/members/{user_id}", tag = "teams", params(("id" = domain::TeamId, Path, description = "team id (UUID)"), ("user_id" = domain::UserId, Path, description = "user id (UUID)")), responses((status = 204, description = "Taken off the team")))]
pub(crate) async fn remove_member(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (team, user_id) = membership(&state, principal, &id, &user_id).await?;
    state
        .store
        .remove_from_team(team.id, user_id, Timestamp::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
