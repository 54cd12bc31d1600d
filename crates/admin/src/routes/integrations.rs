use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::{IntegrationId, Timestamp};
use serde::Deserialize;
use store::{Integration, Page};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::service::{self, CreateIntegration, CreatedIntegration, IntegrationView};
use crate::{AdminState, Principal};

pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiJson(mut request): ApiJson<CreateIntegration>,
) -> ApiResult<(StatusCode, Json<CreatedIntegration>)> {
    match (principal, request.tenant_id) {
        (Principal::Tenant(own), None) => request.tenant_id = Some(own),
        // Another tenant's id is treated like a tenant that does not exist.
        (Principal::Tenant(own), Some(asked)) if asked != own => {
            return Err(AdminError::invalid("tenant_id", "no such tenant"));
        }
        _ => {}
    }
    let created = service::create_integration(&state.store, &state.public_url, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    tenant_id: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<IntegrationView>>> {
    let asked = query
        .tenant_id
        .as_deref()
        .map(|value| parse_id("tenant_id", value))
        .transpose()?;
    let tenant = match (principal.scope(), asked) {
        (Some(own), Some(asked)) if own != asked => {
            return Ok(Json(Page {
                items: Vec::new(),
                next_cursor: None,
            }));
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    let after = super::cursor(query.cursor.as_deref())?;
    let page = state
        .store
        .list_integrations(tenant, after.as_ref(), query.limit)
        .await?;
    Ok(Json(Page {
        items: page
            .items
            .into_iter()
            .map(|integration| IntegrationView::new(integration, &state.public_url))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

pub(crate) async fn visible(
    state: &AdminState,
    principal: Principal,
    id: &str,
) -> ApiResult<Integration> {
    let id: IntegrationId = parse_id("id", id)?;
    state
        .store
        .integration(id)
        .await?
        .filter(|integration| principal.sees(integration.tenant_id))
        .ok_or(AdminError::NotFound("integration"))
}

pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    let integration = visible(&state, principal, &id).await?;
    Ok(Json(IntegrationView::new(integration, &state.public_url)))
}

pub(crate) async fn publish(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    let integration = visible(&state, principal, &id).await?;
    if integration.state == domain::IntegrationState::Revoked {
        return Err(AdminError::Conflict(
            "a revoked integration cannot be published".to_owned(),
        ));
    }
    let published = state
        .store
        .publish_integration(integration.id, Timestamp::now())
        .await?
        .ok_or(AdminError::NotFound("integration"))?;
    Ok(Json(IntegrationView::new(published, &state.public_url)))
}
