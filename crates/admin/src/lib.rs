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
mod routes;
pub mod service;

use axum::Router;
use axum::middleware;
use axum::routing::{delete, get, post, put};
use bus::Bus;
use store::{IntegrationCache, Store};

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
}

/// The `/v1` routes, all behind bearer authentication.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route(
            "/v1/tenants",
            post(routes::tenants::create).get(routes::tenants::list),
        )
        .route(
            "/v1/integrations",
            post(routes::integrations::create).get(routes::integrations::list),
        )
        .route(
            "/v1/integrations/{id}",
            get(routes::integrations::show)
                .patch(routes::integrations::update)
                .delete(routes::integrations::revoke),
        )
        .route(
            "/v1/integrations/{id}/secrets/rotate",
            post(routes::integrations::rotate),
        )
        .route(
            "/v1/integrations/{id}/test",
            post(routes::integrations::test),
        )
        .route("/v1/dead-letters", get(routes::dead_letters::list))
        .route(
            "/v1/dead-letters/replay",
            post(routes::dead_letters::replay_many),
        )
        .route(
            "/v1/dead-letters/{id}",
            get(routes::dead_letters::show).delete(routes::dead_letters::drop_one),
        )
        .route(
            "/v1/dead-letters/{id}/replay",
            post(routes::dead_letters::replay_one),
        )
        .route("/v1/issues", get(routes::issues::list))
        .route("/v1/issues.csv", get(routes::issues::csv))
        .route(
            "/v1/integrations/{id}/publish",
            post(routes::integrations::publish),
        )
        .route(
            "/v1/users",
            get(routes::users::list).post(routes::users::create),
        )
        .route(
            "/v1/users/{id}",
            get(routes::users::show).patch(routes::users::update),
        )
        .route("/v1/users/{id}/deactivate", post(routes::users::deactivate))
        .route("/v1/users/{id}/reactivate", post(routes::users::reactivate))
        .route(
            "/v1/teams",
            post(routes::teams::create).get(routes::teams::list),
        )
        .route(
            "/v1/teams/{id}",
            get(routes::teams::show)
                .patch(routes::teams::rename)
                .delete(routes::teams::delete),
        )
        .route(
            "/v1/teams/{id}/members/{user_id}",
            put(routes::teams::add_member).delete(routes::teams::remove_member),
        )
        .route(
            "/v1/tenants/{id}/tokens",
            post(routes::tokens::create).get(routes::tokens::list),
        )
        .route("/v1/tokens/{id}", delete(routes::tokens::revoke))
        .route(
            "/v1/users/{id}/invitations",
            post(routes::invitations::send),
        )
        .route(
            "/v1/invitations/{token}/accept",
            post(routes::invitations::accept),
        )
        .route(
            "/v1/tenants/{id}",
            get(routes::tenants::show).patch(routes::tenants::update),
        )
        .route("/v1/events", get(routes::events::list))
        .route("/v1/events/{id}", get(routes::events::show))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state)
}
