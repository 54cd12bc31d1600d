//! Bearer-token authentication for the internal API.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::TenantId;
use store::TokenKind;
use subtle::ConstantTimeEq;

use crate::AdminState;
use crate::error::{AdminError, ApiResult};

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// Sees every tenant.
    Operator,
    /// Sees one tenant; anything else answers 404.
    Tenant(TenantId),
}

impl Principal {
    /// The tenant a list must be restricted to, if any.
    #[must_use]
    pub const fn scope(&self) -> Option<TenantId> {
        match self {
            Principal::Operator => None,
            Principal::Tenant(tenant) => Some(*tenant),
        }
    }

    pub fn require_operator(&self) -> ApiResult<()> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Tenant(_) => Err(AdminError::OperatorOnly),
        }
    }

    /// Whether an object of `tenant` is visible to this caller.
    #[must_use]
    pub fn sees(&self, tenant: TenantId) -> bool {
        match self {
            Principal::Operator => true,
            Principal::Tenant(own) => *own == tenant,
        }
    }
}

/// Who made a request, for records such as "replayed by".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

async fn principal(state: &AdminState, token: &str) -> ApiResult<(Principal, Actor)> {
    let hash = store::token_hash(token);
    if let Some(configured) = &state.operator_token_hash
        && bool::from(hash.as_bytes().ct_eq(configured.as_bytes()))
    {
        return Ok((Principal::Operator, Actor("operator".to_owned())));
    }
    // Stored tokens are found by the hash of the presented value, so the secret itself is
    // never compared byte by byte.
    match state.store.token_by_hash(&hash).await? {
        Some(token) => {
            record_use(state, &token).await;
            let actor = Actor(format!("token {} ({})", token.id, token.name));
            match (token.kind, token.tenant_id) {
                (TokenKind::Operator, _) => Ok((Principal::Operator, actor)),
                (TokenKind::Tenant, Some(tenant)) => Ok((Principal::Tenant(tenant), actor)),
                (TokenKind::Tenant, None) => Err(AdminError::InvalidToken),
            }
        }
        None => Err(AdminError::InvalidToken),
    }
}

/// How stale a token's `last_used_at` may get before a request refreshes it: a write per
/// request would turn every read of the API into a write.
const LAST_USED_RESOLUTION_MILLIS: i64 = 60_000;

async fn record_use(state: &AdminState, token: &store::ApiToken) {
    let now = domain::Timestamp::now();
    let stale = token
        .last_used_at
        .is_none_or(|at| now.millis() - at.millis() >= LAST_USED_RESOLUTION_MILLIS);
    if stale && let Err(err) = state.store.touch_token(token.id, now).await {
        // Losing a last-used time must not fail the request it would describe.
        tracing::warn!(error = %err, token = %token.id, "could not record a token's use");
    }
}

/// Middleware: resolves the bearer token into a [`Principal`] request extension.
pub(crate) async fn authenticate(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(&request) else {
        return AdminError::MissingToken.into_response();
    };
    match principal(&state, token).await {
        Ok((principal, actor)) => {
            request.extensions_mut().insert(principal);
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
        Err(err) => err.into_response(),
    }
}
