use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::{IntegrationId, IntegrationState, Timestamp};
use serde::Deserialize;
use store::{Integration, Page};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, parse_id, parse_json};
use crate::service::{
    self, CreateIntegration, CreatedIntegration, IntegrationView, RotateSecret, RotatedSecret,
};
use crate::{AdminState, Principal};

#[utoipa::path(post, path = "/v1/integrations", tag = "integrations", request_body = CreateIntegration, responses((status = 201, description = "Created in draft; the secret is shown this once", body = CreatedIntegration)))]
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

#[utoipa::path(get, path = "/v1/integrations", tag = "integrations", params(ListQuery), responses((status = 200, description = "OK", body = Page<IntegrationView>)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<IntegrationView>>> {
    let Some(tenant) = super::list_scope(principal, query.tenant_id.as_deref())? else {
        return Ok(Json(Page {
            items: Vec::new(),
            next_cursor: None,
        }));
    };
    let after = super::cursor(query.cursor.as_deref())?;
    let page = state
        .store
        .list_integrations(tenant, after.as_ref(), super::limit(query.limit)?)
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

#[utoipa::path(get, path = "/v1/integrations/{id}", tag = "integrations", params(("id" = domain::IntegrationId, Path, description = "integration id (UUID)")), responses((status = 200, description = "OK", body = IntegrationView)))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    let integration = visible(&state, principal, &id).await?;
    Ok(Json(IntegrationView::new(integration, &state.public_url)))
}

#[utoipa::path(post, path = "/v1/integrations/{id}/publish", tag = "integrations", params(("id" = domain::IntegrationId, Path, description = "integration id (UUID)")), responses((status = 200, description = "Live", body = IntegrationView)))]
pub(crate) async fn publish(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    let integration = visible(&state, principal, &id).await?;
    if integration.state == IntegrationState::Revoked {
        return Err(AdminError::Conflict(
            "a revoked integration cannot be published".to_owned(),
        ));
    }
    let published = state
        .store
        .publish_integration(integration.id, Timestamp::now())
        .await?
        .ok_or(AdminError::NotFound("integration"))?;
    state.integrations.invalidate(integration.id);
    Ok(Json(IntegrationView::new(published, &state.public_url)))
}

/// `POST /v1/integrations/{id}/secrets/rotate`: a new secret (shown once); the previous one
/// keeps working for the grace period.
#[utoipa::path(post, path = "/v1/integrations/{id}/secrets/rotate", tag = "integrations", params(("id" = domain::IntegrationId, Path, description = "integration id (UUID)")), request_body = RotateSecret, responses((status = 200, description = "OK", body = RotatedSecret)))]
pub(crate) async fn rotate(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<RotatedSecret>> {
    let integration = visible(&state, principal, &id).await?;
    if integration.state == IntegrationState::Revoked {
        return Err(AdminError::Conflict(
            "a revoked integration has no secret to rotate".to_owned(),
        ));
    }
    // The body is optional: an empty one rotates to a generated secret with the default grace.
    let request: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        parse_json(&body)?
    };
    let rotated =
        service::rotate_secret(&state.store, &state.public_url, &integration, request).await?;
    state.integrations.invalidate(integration.id);
    Ok(Json(rotated))
}

/// `DELETE /v1/integrations/{id}`: revoke. The webhook URL answers 404 from now on.
#[utoipa::path(delete, path = "/v1/integrations/{id}", tag = "integrations", params(("id" = domain::IntegrationId, Path, description = "integration id (UUID)")), responses((status = 200, description = "Revoked", body = IntegrationView)))]
pub(crate) async fn revoke(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    let integration = visible(&state, principal, &id).await?;
    let revoked = state
        .store
        .revoke_integration(integration.id, Timestamp::now())
        .await?
        .ok_or(AdminError::NotFound("integration"))?;
    state.integrations.invalidate(integration.id);
    Ok(Json(IntegrationView::new(revoked, &state.public_url)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchIntegration {
    name: Option<String>,
    /// Keys to change; `null` resets a key to its default.
    settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// New scheme parameters (the scheme itself cannot change: its secret would not fit).
    verification: Option<serde_json::Value>,
    /// New directory access (replaces the old one whole); `null` removes it.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<service::DirectoryRequest>)]
    directory: Option<Option<service::DirectoryRequest>>,
}

/// `PATCH /v1/integrations/{id}`: rename, change settings, change scheme parameters.
#[utoipa::path(patch, path = "/v1/integrations/{id}", tag = "integrations", params(("id" = domain::IntegrationId, Path, description = "integration id (UUID)")), request_body = PatchIntegration, responses((status = 200, description = "OK", body = IntegrationView)))]
pub(crate) async fn update(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<PatchIntegration>,
) -> ApiResult<Json<IntegrationView>> {
    let integration = visible(&state, principal, &id).await?;
    if integration.state == IntegrationState::Revoked {
        return Err(AdminError::Conflict(
            "a revoked integration cannot be changed".to_owned(),
        ));
    }
    let name = patch
        .name
        .as_deref()
        .map(|name| {
            let trimmed = name.trim();
            if trimmed.is_empty() || trimmed.chars().count() > 200 {
                Err(AdminError::invalid(
                    "name",
                    "name must be 1 to 200 characters",
                ))
            } else {
                Ok(trimmed.to_owned())
            }
        })
        .transpose()?;
    let settings = match patch.settings {
        None => None,
        Some(changes) => {
            let mut merged = match serde_json::to_value(&integration.settings) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            for (key, value) in changes {
                if value.is_null() {
                    merged.remove(&key);
                } else {
                    merged.insert(key, value);
                }
            }
            Some(service::parse_settings(&serde_json::Value::Object(merged))?)
        }
    };
    let verification = match patch.verification {
        None => None,
        Some(value) => {
            let scheme = service::parse_scheme(&value)?;
            let current = integration
                .verification
                .get("scheme")
                .and_then(|s| s.as_str());
            if current != Some(scheme.name()) {
                return Err(AdminError::invalid(
                    "verification",
                    "the scheme cannot change; create a new integration for another scheme",
                ));
            }
            Some(
                serde_json::to_value(&scheme)
                    .map_err(|err| AdminError::Internal(err.to_string()))?,
            )
        }
    };
    let directory = patch
        .directory
        .map(|directory| {
            directory
                .map(|request| service::parse_directory(integration.source, request))
                .transpose()
        })
        .transpose()?;
    let mut updated = state
        .store
        .update_integration(
            integration.id,
            name.as_deref(),
            settings.as_ref(),
            verification.as_ref(),
            Timestamp::now(),
        )
        .await?
        .ok_or(AdminError::NotFound("integration"))?;
    if let Some(directory) = directory {
        updated = state
            .store
            .set_integration_directory(integration.id, directory.as_ref(), Timestamp::now())
            .await?
            .ok_or(AdminError::NotFound("integration"))?;
    }
    state.integrations.invalidate(integration.id);
    Ok(Json(IntegrationView::new(updated, &state.public_url)))
}

/// `POST /v1/integrations/{id}/test`: the decisions a sample payload (sent as the CRM would,
/// without a signature) would lead to now, computed as the worker would. Writes nothing.
#[utoipa::path(post, path = "/v1/integrations/{id}/test", tag = "integrations", params(("id" = domain::IntegrationId, Path, description = "integration id (UUID)")), request_body = Object, responses((status = 200, description = "The decisions the sample payload would lead to; nothing is written", body = Object)))]
pub(crate) async fn test(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let integration = visible(&state, principal, &id).await?;
    let events = resolver::preview(&state.store, &state.directory, &integration, &body)
        .await
        .map_err(|err| match err {
            resolver::PreviewError::Payload(message) => AdminError::bad_request(None, message),
            resolver::PreviewError::Directory(_) => {
                AdminError::DirectoryUnavailable(err.to_string())
            }
            resolver::PreviewError::Store(err) => err.into(),
        })?;
    Ok(Json(serde_json::json!({
        "integration_id": integration.id,
        "state": integration.state,
        "events": events,
    })))
}
