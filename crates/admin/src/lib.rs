//! The internal API (admin listener): tenants and their tokens, integrations, users, teams,
//! events, issues, invitations and dead letters. Bearer-token authentication; an operator token sees every
//! tenant, a tenant token only its own (anything else answers 404, never 403, so existence
//! does not leak).
//!
//! This crate owns request validation and the JSON shapes of the API, and maps its one error
//! type to problem+json in one place (`error.rs`). It must not provision: it reads and edits
//! through `store` and republishes through `bus`; decisions stay in `resolver`.

mod auth;
mod error;
mod extract;
mod openapi;
mod routes;
pub mod service;

use axum::Router;
use axum::middleware;
use std::sync::Arc;

use axum::Json;
use axum::routing::get;
use bus::Bus;
use store::{IntegrationCache, Store};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Actor, Principal};
pub use error::{AdminError, ApiResult};

/// What the internal API needs.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub store: Store,
    /// This process's integration cache, evicted as soon as an integration changes here
    /// (other processes hear of the change from the database).
    pub integrations: IntegrationCache,
    pub bus: Bus,
    /// Base of webhook URLs shown to admins.
    pub public_url: String,
    /// SHA-256 (hex) of `ROLLCALL_ADMIN_TOKEN`, when the operator token is configured rather
    /// than generated.
    pub operator_token_hash: Option<String>,
    /// For previews of payloads that name owners by id only.
    pub directory: directory::Directory,
}

/// Every `/v1` route and its OpenAPI description, from one list: a route cannot be served
/// without being documented, nor documented without being served.
fn api() -> OpenApiRouter<AdminState> {
    use routes::{
        dead_letters, events, imports, integrations, invitations, issues, teams, tenants, tokens,
        users,
    };
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(tenants::create, tenants::list))
        .routes(routes!(tenants::show, tenants::update))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(integrations::create, integrations::list))
        .routes(routes!(
            integrations::show,
            integrations::update,
            integrations::revoke
        ))
        .routes(routes!(integrations::publish))
        .routes(routes!(integrations::test))
        .routes(routes!(integrations::rotate))
        .routes(routes!(imports::create))
        .routes(routes!(imports::list))
        .routes(routes!(imports::show))
        .routes(routes!(imports::errors))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::show, users::update))
        .routes(routes!(users::deactivate))
        .routes(routes!(users::reactivate))
        .routes(routes!(invitations::send))
        .routes(routes!(invitations::accept))
        .routes(routes!(teams::create, teams::list))
        .routes(routes!(teams::show, teams::rename, teams::delete))
        .routes(routes!(teams::add_member, teams::remove_member))
        .routes(routes!(events::list))
        .routes(routes!(events::show))
        .routes(routes!(issues::list))
        .routes(routes!(issues::csv))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::replay_many))
        .routes(routes!(dead_letters::show, dead_letters::drop_one))
        .routes(routes!(dead_letters::replay_one))
}

/// The OpenAPI 3.1 document of the internal API.
#[must_use]
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(api().into_openapi())
}

/// The `/v1` routes, all behind bearer authentication, and `GET /openapi.json` (public: it
/// describes the API, it holds no data).
pub fn router(state: AdminState) -> Router {
    let (routes, _) = api().split_for_parts();
    let document = Arc::new(openapi_document());
    routes
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .route(
            "/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .with_state(state)
}
