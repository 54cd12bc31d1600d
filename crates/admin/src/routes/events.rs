use axum::extract::{Path, State};
use axum::{Extension, Json};
use domain::{EventId, EventOutcome};
use serde::Deserialize;
use store::{EventFilter, EventRecord, Page};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiQuery, parse_id};
use crate::{AdminState, Principal};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    integration_id: Option<String>,
    outcome: Option<String>,
    user_id: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

/// The event log, newest first.
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
