//! `GET /metrics` (Prometheus text format) on the admin listener, and the request ids every
//! listener gives its requests.
//!
//! Counters and histograms are recorded where things happen (the `metrics` facade); the
//! gauges that describe state outside the process — queue depths, dead letters waiting, the
//! database pool — are read when Prometheus scrapes, so they are never stale.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bus::Bus;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use store::Store;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Latency buckets, in seconds: from a cache hit to a slow retry.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the process-wide recorder.
pub(crate) fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)?
        .install_recorder()?;
    // Counters alerts watch exist from the start, at zero, so a first increment is a change.
    for name in [
        "rollcall_webhooks_received_total",
        "rollcall_webhooks_accepted_total",
        "rollcall_events_dead_lettered_total",
        "rollcall_invitations_failed_total",
        "rollcall_queue_publish_failures_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
    Ok(handle)
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    store: Store,
    bus: Bus,
}

pub(crate) fn router(handle: PrometheusHandle, store: Store, bus: Bus) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape { handle, store, bus })
}

async fn scrape(State(scrape): State<Scrape>) -> Response {
    let (depths, stored) = tokio::join!(
        scrape.bus.depths(),
        scrape.store.count_waiting_dead_letters()
    );
    // A gauge that cannot be read now is left out rather than reported as zero.
    if let Ok(depths) = &depths {
        metrics::gauge!("rollcall_queue_depth", "queue" => "work").set(depths.work as f64);
        metrics::gauge!("rollcall_queue_depth", "queue" => "retry").set(depths.retry as f64);
        if let Ok(stored) = &stored {
            metrics::gauge!("rollcall_queue_depth", "queue" => "dead_letter")
                .set((depths.dead + stored) as f64);
        }
    }
    let (in_use, idle) = scrape.store.pool_connections();
    metrics::gauge!("rollcall_db_pool_connections", "state" => "in_use").set(in_use as f64);
    metrics::gauge!("rollcall_db_pool_connections", "state" => "idle").set(idle as f64);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        scrape.handle.render(),
    )
        .into_response()
}

/// Gives every request an `X-Request-Id` (the sender's, or a new UUID) and answers it back.
/// The ingress names it on its own log lines and passes it on with the events it queues; it
/// opens no span per webhook, because at thousands of webhooks a second a span's bookkeeping
/// (its fields formatted, its response body wrapped, the span entered at every poll) cost a
/// tenth of the ingress's throughput.
pub(crate) fn with_request_ids(router: Router) -> Router {
    let name = HeaderName::from_static("x-request-id");
    router
        .layer(PropagateRequestIdLayer::new(name.clone()))
        .layer(SetRequestIdLayer::new(name, MakeRequestUuid))
}

/// [`with_request_ids`], and a span per request carrying its id, method and path, so that
/// whatever a handler logs names its request (the admin listener).
pub(crate) fn with_request_spans(router: Router) -> Router {
    // Inside the request-id layers, so the span sees the id they set.
    with_request_ids(
        router.layer(
            TraceLayer::new_for_http()
                // The path only: a query string may carry a credential, and headers carry
                // bearer tokens, so neither is recorded.
                .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        ),
    )
}
