//! `GET /healthz` (the process answers) and `GET /readyz` (the database and the queue answer),
//! served on both listeners.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use bus::Bus;
use serde_json::{Value, json};
use store::Store;

#[derive(Debug, Clone)]
struct Health {
    store: Store,
    bus: Bus,
}

pub(crate) fn router(store: Store, bus: Bus) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .with_state(Health { store, bus })
}

async fn ready(State(health): State<Health>) -> (StatusCode, Json<Value>) {
    let (database, queue) = tokio::join!(health.store.ping(), health.bus.is_ready());
    let database_ok = database.is_ok();
    let status = if database_ok && queue {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "not ready" },
        "database": if database_ok { "ok" } else { "unreachable" },
        "queue": if queue { "ok" } else { "unreachable" },
        "queue_backend": health.bus.backend_name(),
    });
    (status, Json(body))
}
