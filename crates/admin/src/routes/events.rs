use axum::extract::{Path, State};
use axum::{Extension, Json};
use domain::{EventId, EventOutcome};
use serde::Deserialize;
use store::{EventFilter, EventRecord, Page};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiQuery, parse_id};
use crate::{AdminState, Principal};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[param(format = Uuid)]
    integration_id: Option<String>,
    outcome: Option<String>,
    #[param(format = Uuid)]
    user_id: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    cursor: Option<String>,
}

/// The event log, newest first.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(ListQuery), responses((status = 200, description = "OK", body = Page<EventRecord>)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<EventRecord>>> {
    let outcome = query
        .outcome
        .as_deref()
        .map(|value| {
            value
                .parse::<EventOutcome>()
                .map_err(|err| AdminError::bad_request(Some("outcome"), err.to_string()))
        })
        .transpose()?;
    let filter = EventFilter {
        tenant: principal.scope(),
        integration_id: query
            .integration_id
            .as_deref()
            .map(|v| parse_id("integration_id", v))
            .transpose()?,
        outcome,
        user_id: query
            .user_id
            .as_deref()
            .map(|v| parse_id("user_id", v))
            .transpose()?,
    };
    let after = super::cursor(query.cursor.as_deref())?;
    Ok(Json(
        state
            .store
            .list_events(&filter, after.as_ref(), super::limit(query.limit)?)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/events/{id}", tag = "events", params(("id" = domain::EventId, Path, description = "event id (UUID)")), responses((status = 200, description = "OK", body = EventRecord)))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<EventRecord>> {
    let id: EventId = parse_id("id", &id)?;
    state
        .store
        .event(id)
        .await?
        .filter(|event| principal.sees(event.tenant_id))
        .map(Json)
        .ok_or(AdminError::NotFound("event"))
}
