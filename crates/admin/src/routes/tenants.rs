use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::{TenantId, TenantInvitationSettings};
use serde::Deserialize;
use store::{Page, Tenant, TenantChanges};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::{AdminState, Principal, service};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTenant {
    name: String,
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant, responses((status = 201, description = "Created", body = Tenant)))]
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    principal.require_operator()?;
    let tenant = service::create_tenant(&state.store, &request.name).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(ListQuery), responses((status = 200, description = "OK", body = Page<Tenant>)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Tenant>>> {
    principal.require_operator()?;
    let after = super::cursor(query.cursor.as_deref())?;
    Ok(Json(
        state
            .store
            .list_tenants(None, after.as_ref(), super::limit(query.limit)?)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = domain::TenantId, Path, description = "tenant id (UUID)")), responses((status = 200, description = "OK", body = Tenant)))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Tenant>> {
    let id: TenantId = parse_id("id", &id)?;
    state
        .store
        .tenant(id)
        .await?
        .filter(|tenant| principal.sees(tenant.id))
        .map(Json)
        .ok_or(AdminError::NotFound("tenant"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateTenant {
    name: Option<String>,
    /// Replaces the tenant's invitation overrides as a whole (`{}` restores the defaults).
    invitation: Option<TenantInvitationSettings>,
}

/// `PATCH /v1/tenants/{id}`: rename, or set how the tenant's invitations look.
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = domain::TenantId, Path, description = "tenant id (UUID)")), request_body = UpdateTenant, responses((status = 200, description = "OK", body = Tenant)))]
pub(crate) async fn update(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateTenant>,
) -> ApiResult<Json<Tenant>> {
    let id: TenantId = parse_id("id", &id)?;
    if !principal.sees(id) {
        return Err(AdminError::NotFound("tenant"));
    }
    let name = request
        .name
        .as_deref()
        .map(service::tenant_name)
        .transpose()?;
    if let Some(settings) = &request.invitation {
        notifier::check_tenant_settings(settings).map_err(|err| {
            AdminError::invalid(&format!("invitation.{}", err.field), err.to_string())
        })?;
    }
    let changes = TenantChanges {
        name,
        invitation: request.invitation,
    };
    state
        .store
        .update_tenant(id, &changes)
        .await?
        .map(Json)
        .ok_or(AdminError::NotFound("tenant"))
}
