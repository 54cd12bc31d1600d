//! Tenant API tokens: issued by the operator or by the tenant itself, shown once, revocable.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::{TenantId, Timestamp, TokenId};
use serde::{Deserialize, Serialize};
use store::{ApiToken, Page, TokenKind};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::{AdminState, Principal, service};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    /// What the token is for ("reporting job", "SalesScreen sync").
    name: String,
}

/// A token as created: its value appears here and nowhere else, ever.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedToken {
    #[serde(flatten)]
    token: ApiToken,
    value: String,
}

/// The tenant a path names, if the caller may see it (another tenant's is "not found").
async fn visible_tenant(state: &AdminState, principal: Principal, id: &str) -> ApiResult<TenantId> {
    let id: TenantId = parse_id("id", id)?;
    if !principal.sees(id) || state.store.tenant(id).await?.is_none() {
        return Err(AdminError::NotFound("tenant"));
    }
    Ok(id)
}

/// `POST /v1/tenants/{id}/tokens`.
#[utoipa::path(post, path = "/v1/tenants/{id}/tokens", tag = "tokens", params(("id" = domain::TenantId, Path, description = "tenant id (UUID)")), request_body = CreateToken, responses((status = 201, description = "Created; the value is shown this once", body = CreatedToken)))]
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let tenant = visible_tenant(&state, principal, &id).await?;
    let name = service::token_name(&request.name)?;
    let value = service::generate_token("rc_tk_");
    let token = state
        .store
        .insert_token(
            TokenKind::Tenant,
            Some(tenant),
            &name,
            &value,
            Timestamp::now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, value })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /v1/tenants/{id}/tokens`: names, creation, last use and revocation; never values.
#[utoipa::path(get, path = "/v1/tenants/{id}/tokens", tag = "tokens", params(("id" = domain::TenantId, Path, description = "tenant id (UUID)"), ListQuery), responses((status = 200, description = "OK", body = Page<ApiToken>)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<ApiToken>>> {
    let tenant = visible_tenant(&state, principal, &id).await?;
    let after = super::cursor(query.cursor.as_deref())?;
    let limit = super::limit(query.limit)?;
    Ok(Json(
        state
            .store
            .list_tokens(tenant, after.as_ref(), limit)
            .await?,
    ))
}

/// `DELETE /v1/tokens/{id}`: the token stops working at once. Operator tokens are revoked by
/// reconfiguring the process, not through the API a token of theirs is calling.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = domain::TokenId, Path, description = "token id (UUID)")), responses((status = 200, description = "OK", body = ApiToken)))]
pub(crate) async fn revoke(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    let id: TokenId = parse_id("id", &id)?;
    let token = state
        .store
        .token(id)
        .await?
        .filter(|token| {
            token.kind == TokenKind::Tenant && token.tenant_id.is_some_and(|t| principal.sees(t))
        })
        .ok_or(AdminError::NotFound("token"))?;
    state
        .store
        .revoke_token(token.id, Timestamp::now())
        .await?
        .map(Json)
        .ok_or(AdminError::NotFound("token"))
}
