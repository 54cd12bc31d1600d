use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::{DeadLetterId, IntegrationId, Timestamp};
use serde::Deserialize;
use store::{DeadLetterFilter, DeadLetterRecord, Page};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::service::{self, ReplayReport};
use crate::{Actor, AdminState, Principal};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[param(format = Uuid)]
    integration_id: Option<String>,
    /// Dead at or after this RFC 3339 time.
    since: Option<String>,
    /// Dead before this RFC 3339 time.
    until: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /v1/dead-letters`: most recently dead first.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "dead letters", params(ListQuery), responses((status = 200, description = "OK", body = Page<DeadLetterRecord>)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<DeadLetterRecord>>> {
    let filter = DeadLetterFilter {
        tenant: principal.scope(),
        integration_id: query
            .integration_id
            .as_deref()
            .map(|v| parse_id("integration_id", v))
            .transpose()?,
        since: super::time("since", query.since.as_deref())?,
        until: super::time("until", query.until.as_deref())?,
        ids: None,
    };
    let after = super::cursor(query.cursor.as_deref())?;
    Ok(Json(
        state
            .store
            .list_dead_letters(&filter, after.as_ref(), super::limit(query.limit)?)
            .await?,
    ))
}

async fn visible(
    state: &AdminState,
    principal: Principal,
    id: &str,
) -> ApiResult<DeadLetterRecord> {
    let id: DeadLetterId = parse_id("id", id)?;
    state
        .store
        .dead_letter(id)
        .await?
        .filter(|letter| principal.sees(letter.tenant_id))
        .ok_or(AdminError::NotFound("dead letter"))
}

#[utoipa::path(get, path = "/v1/dead-letters/{id}", tag = "dead letters", params(("id" = domain::DeadLetterId, Path, description = "dead letter id (UUID)")), responses((status = 200, description = "OK", body = DeadLetterRecord)))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeadLetterRecord>> {
    Ok(Json(visible(&state, principal, &id).await?))
}

/// `POST /v1/dead-letters/{id}/replay`.
#[utoipa::path(post, path = "/v1/dead-letters/{id}/replay", tag = "dead letters", params(("id" = domain::DeadLetterId, Path, description = "dead letter id (UUID)")), responses((status = 200, description = "OK", body = ReplayReport)))]
pub(crate) async fn replay_one(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<ReplayReport>> {
    let letter = visible(&state, principal, &id).await?;
    let filter = DeadLetterFilter {
        ids: Some(vec![letter.id]),
        ..DeadLetterFilter::default()
    };
    let report =
        service::replay_dead_letters(&state.store, &state.bus, &filter, &actor.0, false).await?;
    Ok(Json(report))
}

/// `DELETE /v1/dead-letters/{id}`: drop it for good.
#[utoipa::path(delete, path = "/v1/dead-letters/{id}", tag = "dead letters", params(("id" = domain::DeadLetterId, Path, description = "dead letter id (UUID)")), responses((status = 204, description = "Dropped")))]
pub(crate) async fn drop_one(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let letter = visible(&state, principal, &id).await?;
    if state.store.delete_dead_letter(letter.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AdminError::NotFound("dead letter"))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayRequest {
    integration_id: Option<IntegrationId>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    ids: Option<Vec<DeadLetterId>>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/dead-letters/replay`: replays every dead letter the filter matches (or, with
/// `dry_run`, says how many it would), answering `{"matched": N, …}`.
#[utoipa::path(post, path = "/v1/dead-letters/replay", tag = "dead letters", request_body = ReplayRequest, responses((status = 200, description = "OK", body = ReplayReport)))]
pub(crate) async fn replay_many(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    ApiJson(request): ApiJson<ReplayRequest>,
) -> ApiResult<Json<ReplayReport>> {
    if request.ids.as_ref().is_some_and(Vec::is_empty) {
        return Err(AdminError::invalid(
            "ids",
            "ids must not be empty (omit it to match by the other filters)",
        ));
    }
    let filter = DeadLetterFilter {
        tenant: principal.scope(),
        integration_id: request.integration_id,
        since: request.since,
        until: request.until,
        ids: request.ids,
    };
    let report =
        service::replay_dead_letters(&state.store, &state.bus, &filter, &actor.0, request.dry_run)
            .await?;
    Ok(Json(report))
}
