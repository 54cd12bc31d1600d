use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use store::{Page, Tenant};

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery};
use crate::{AdminState, Principal, service};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTenant {
    name: String,
}

pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    principal.require_operator()?;
    let tenant = service::create_tenant(&state.store, &request.name).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<u64>,
    cursor: Option<String>,
}

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
            .list_tenants(None, after.as_ref(), query.limit)
            .await?,
    ))
}
