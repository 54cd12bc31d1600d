//! The public webhook endpoint, `POST /hooks/{integration_id}`: find the integration, check the
//! content type and read the body within its limits, verify the signature over the raw bytes,
//! apply the integration's rate limit, split the body into events, drop duplicates, publish
//! each event durably, and only then answer 2xx.
//!
//! This is the only crate that sees raw webhook bodies, and it never parses one before the
//! verifier accepted it — with one exception forced by ConnectWise, whose key URL travels in the
//! unverified body (see `connectwise.rs` for how that URL is confined). It must not buffer
//! accepted events: when the queue cannot take an event it answers 503 with `Retry-After` so
//! the sender retries. It knows nothing of users or provisioning.

mod connectwise;
mod error;
mod known;
mod limits;
mod schemes;
mod seen;

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bus::{Bus, Published};
use domain::{EventEnvelope, EventId, IntegrationId, IntegrationState, Source, Timestamp};
use serde::Serialize;
use sources::DeliveryHints;
use std::sync::Arc;

use store::{CachedIntegration, IntegrationCache, Store};
use verifier::{SchemeConfig, Secret};

pub use connectwise::{DEFAULT_KEY_HOSTS, KeyFetcher, KeyPolicy};
pub use limits::RateLimits;

use crate::connectwise::KeyError;
use crate::error::IngressError;
use crate::schemes::Schemes;
use crate::seen::SeenEvents;

/// What the ingress needs.
#[derive(Debug, Clone)]
pub struct IngressState {
    pub store: Store,
    /// Integrations and their secrets (kept in memory on PostgreSQL).
    pub integrations: IntegrationCache,
    pub bus: Bus,
    /// The public base URL (for schemes that sign the full URL the sender called).
    pub public_url: String,
    /// How long a sender may take to deliver the body.
    pub body_timeout: Duration,
    /// How long handling one request may take in all (body, verification, durable publish).
    pub request_timeout: Duration,
    pub connectwise_keys: KeyFetcher,
    pub rate_limits: RateLimits,
}

/// How long the duplicate check may hold a webhook up before it is published unchecked.
const DUPLICATE_CHECK_BUDGET: Duration = Duration::from_millis(500);

/// The configured state and what the ingress runs beside it.
#[derive(Debug)]
struct Ingress {
    state: IngressState,
    seen: SeenEvents,
    schemes: Schemes,
}

/// The ingress routes (webhooks only; health routes are added by the binary). Starts the
/// duplicate check's batching task, so it must be called inside the runtime.
pub fn router(state: IngressState) -> Router {
    let seen = SeenEvents::start(state.store.clone());
    Router::new()
        .route("/hooks/{integration_id}", post(receive))
        .with_state(Arc::new(Ingress {
            state,
            seen,
            schemes: Schemes::default(),
        }))
}

#[derive(Debug, Serialize)]
struct Accepted {
    event_id: EventId,
    status: &'static str,
}

async fn receive(
    State(ingress): State<Arc<Ingress>>,
    Path(integration_id): Path<String>,
    request: Request,
) -> Response {
    let integration_id = integration_id.parse::<IntegrationId>().ok();
    // Named on this webhook's log lines, not carried by a span (why: the binary's
    // `telemetry::with_request_ids`); at the default level these lines are all a span covered.
    let request_id = request_id(request.headers());
    let started = std::time::Instant::now();
    metrics::counter!("rollcall_webhooks_received_total").increment(1);
    let handled = tokio::time::timeout(
        ingress.state.request_timeout,
        handle(&ingress, integration_id, request_id.as_deref(), request),
    )
    .await
    .unwrap_or_else(|_| {
        Err(IngressError::Unavailable(
            "handling the request timed out".to_owned(),
        ))
    });
    metrics::histogram!("rollcall_ingress_request_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    // Only integrations that exist get their own label: ids made up by a sender must not
    // create metric series without bound.
    let label = |err: Option<&IngressError>| match (integration_id, err) {
        (_, Some(IngressError::UnknownIntegration)) | (None, _) => "unknown".to_owned(),
        (Some(id), _) => id.to_string(),
    };
    match handled {
        Ok(response) => {
            metrics::counter!("rollcall_webhooks_accepted_total", "integration" => label(None))
                .increment(1);
            response
        }
        Err(err) => {
            metrics::counter!("rollcall_webhooks_rejected_total", "reason" => err.reason(), "integration" => label(Some(&err)))
                .increment(1);
            match &err {
                IngressError::Unavailable(cause) => {
                    tracing::warn!(
                        request_id = request_id.as_deref(),
                        integration_id = integration_id.map(tracing::field::display),
                        reason = err.reason(),
                        cause = %cause,
                        "webhook not accepted"
                    );
                }
                _ => tracing::info!(
                    request_id = request_id.as_deref(),
                    integration_id = integration_id.map(tracing::field::display),
                    reason = err.reason(),
                    detail = %err,
                    "webhook rejected"
                ),
            }
            err.into_response()
        }
    }
}

/// The request's `X-Request-Id` (set by the listener when the sender gave none), bounded so
/// a sender cannot make it large.
fn request_id(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(|value| value.chars().take(128).collect())
}

fn unavailable(err: impl std::fmt::Display) -> IngressError {
    IngressError::Unavailable(err.to_string())
}

async fn live_integration(
    integrations: &IntegrationCache,
    id: Option<IntegrationId>,
) -> Result<Arc<CachedIntegration>, IngressError> {
    let id = id.ok_or(IngressError::UnknownIntegration)?;
    let cached = integrations
        .get(id)
        .await
        .map_err(unavailable)?
        .ok_or(IngressError::UnknownIntegration)?;
    if cached.integration.state == IntegrationState::Revoked {
        return Err(IngressError::UnknownIntegration);
    }
    Ok(cached)
}

/// The media types a source's webhooks come as.
fn accepted_content_type(source: Source) -> &'static str {
    match source {
        Source::SalesforceOutbound => "text/xml",
        _ => "application/json",
    }
}

fn check_content_type(headers: &HeaderMap, source: Source) -> Result<(), IngressError> {
    let expected = accepted_content_type(source);
    let got = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = got
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json_like = expected == "application/json"
        && (essence == "application/json" || essence.ends_with("+json"));
    let xml_like =
        expected == "text/xml" && (essence == "text/xml" || essence == "application/xml");
    if json_like || xml_like {
        Ok(())
    } else {
        Err(IngressError::UnsupportedMediaType {
            got: got.chars().take(100).collect(),
            expected,
        })
    }
}

async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: u64,
    timeout: Duration,
) -> Result<bytes::Bytes, IngressError> {
    let too_large = IngressError::TooLarge { limit };
    // A declared length over the limit is refused before reading a byte.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err(too_large),
        Err(_) => Err(IngressError::BodyTimeout),
    }
}

/// The request as the verifier sees it.
struct Received {
    method: String,
    url: String,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Received {
    fn as_request(&self) -> verifier::Request<'_> {
        verifier::Request {
            method: &self.method,
            url: &self.url,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// Verifies the request. ConnectWise keys are fetched (allow-listed hosts only); every other
/// scheme uses the integration's stored, unexpired secrets.
async fn verify(
    state: &IngressState,
    cached: &CachedIntegration,
    scheme: &SchemeConfig,
    received: &Received,
    now: Timestamp,
) -> Result<verifier::Verified, IngressError> {
    let unauthorized =
        |rejection: verifier::Rejection| IngressError::Unauthorized(rejection.to_string());
    if let SchemeConfig::Connectwise { company_id } = scheme {
        let url = connectwise::key_url(&received.body)
            .map_err(|err| IngressError::Unauthorized(err.to_string()))?;
        let key = state
            .connectwise_keys
            .key(&url, false)
            .await
            .map_err(key_error)?;
        let mut verified = verifier::verify(
            scheme,
            &[Secret::new(key)],
            &received.as_request(),
            now.millis(),
        );
        // ConnectWise may have rotated the key behind the same URL: refetch once, at most a
        // minute after the last fetch, so a forged request cannot make us hammer the key host.
        if verified.is_err()
            && state
                .connectwise_keys
                .cached_longer_than(&url, Duration::from_secs(60))
        {
            let key = state
                .connectwise_keys
                .key(&url, true)
                .await
                .map_err(key_error)?;
            verified = verifier::verify(
                scheme,
                &[Secret::new(key)],
                &received.as_request(),
                now.millis(),
            );
        }
        let verified = verified.map_err(unauthorized)?;
        if let Some(expected) = company_id {
            let body: serde_json::Value =
                serde_json::from_slice(&received.body).unwrap_or_default();
            if body.get("CompanyId").and_then(serde_json::Value::as_str) != Some(expected.as_str())
            {
                return Err(IngressError::Unauthorized(
                    "the callback is for another company".to_owned(),
                ));
            }
        }
        return Ok(verified);
    }
    let secrets = |cached: &CachedIntegration| -> Vec<Secret> {
        cached
            .secrets_at(now)
            .into_iter()
            .map(Secret::new)
            .collect()
    };
    let verified = verifier::verify(
        scheme,
        &secrets(cached),
        &received.as_request(),
        now.millis(),
    );
    let Err(rejection) = verified else {
        return verified.map_err(unauthorized);
    };
    // The secret may have been rotated in another process a moment ago, before this one heard
    // of it: read the secrets again (at most once a second) before refusing.
    match state
        .integrations
        .refresh(cached)
        .await
        .map_err(unavailable)?
    {
        Some(fresh) => verifier::verify(
            scheme,
            &secrets(&fresh),
            &received.as_request(),
            now.millis(),
        )
        .map_err(unauthorized),
        None => Err(unauthorized(rejection)),
    }
}

fn key_error(err: KeyError) -> IngressError {
    match err {
        KeyError::Refused(message) => IngressError::Unauthorized(message),
        KeyError::Unavailable(message) => IngressError::Unavailable(message),
    }
}

async fn handle(
    ingress: &Ingress,
    integration_id: Option<IntegrationId>,
    request_id: Option<&str>,
    request: Request,
) -> Result<Response, IngressError> {
    let state = &ingress.state;
    let cached = live_integration(&state.integrations, integration_id).await?;
    let integration = &cached.integration;
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    check_content_type(&headers, integration.source)?;
    let method = parts.method.as_str().to_owned();
    let url = format!(
        "{}{}",
        state.public_url.trim_end_matches('/'),
        parts.uri.path_and_query().map_or("", |pq| pq.as_str())
    );
    let body = read_body(
        &headers,
        body,
        integration.settings.max_body_bytes,
        state.body_timeout,
    )
    .await?;
    let received = Received {
        method,
        url,
        headers,
        body,
    };

    let now = Timestamp::now();
    let scheme = ingress.schemes.of(&cached)?;
    let verified = verify(state, &cached, &scheme, &received, now).await?;

    // Limited after verification, so forged requests cannot use up a genuine sender's budget.
    state
        .rate_limits
        .check(integration.id, integration.settings.rate_limit_per_second)
        .map_err(|wait| IngressError::RateLimited {
            retry_after: wait.as_secs().max(1),
        })?;

    let hints = DeliveryHints {
        delivery_id: verified.provider_event_id.as_deref(),
    };
    let mapping = sources::FieldMapping::for_source(
        integration.source,
        integration.settings.field_mapping.as_ref(),
    );
    let events = sources::split(integration.source, &received.body, &hints, &mapping)
        .map_err(|err| IngressError::MalformedPayload(err.to_string()))?;

    let event_ids: Vec<EventId> = events
        .iter()
        .map(|event| EventId::derive(integration.id, &event.provider_event_id))
        .collect();
    // Without a timely answer from the event log, publishing anyway is safe because the
    // consumer ignores an event it already recorded; the sender just hears "queued" twice.
    let recorded =
        match tokio::time::timeout(DUPLICATE_CHECK_BUDGET, ingress.seen.recorded(&event_ids)).await
        {
            Ok(Ok(recorded)) => recorded,
            Ok(Err(err)) => {
                tracing::debug!(request_id, error = %err, "duplicate check skipped");
                HashSet::new()
            }
            Err(_) => {
                tracing::debug!(request_id, "duplicate check skipped: no answer in time");
                HashSet::new()
            }
        };
    let mut answers = Vec::with_capacity(events.len());
    for (event, event_id) in events.into_iter().zip(event_ids) {
        let duplicate = recorded.contains(&event_id);
        if duplicate {
            metrics::counter!("rollcall_webhooks_duplicates_total").increment(1);
            answers.push(Accepted {
                event_id,
                status: "duplicate",
            });
            continue;
        }
        ingress.seen.accepted(event_id);
        let envelope = EventEnvelope {
            event_id,
            tenant_id: integration.tenant_id,
            integration_id: integration.id,
            provider_event_id: event.provider_event_id,
            event_type: event.event_type,
            occurred_at: event.occurred_at,
            received_at: now,
            payload: event.payload,
            replay: None,
            import_id: None,
            request_id: request_id.map(str::to_owned),
        };
        let published = state.bus.publish(&envelope).await.map_err(unavailable)?;
        tracing::debug!(request_id, integration_id = %integration.id, event_id = %event_id, already_queued = (published == Published::AlreadyQueued), "event accepted");
        answers.push(Accepted {
            event_id,
            status: "queued",
        });
    }
    Ok(respond(integration.source, answers))
}

fn respond(source: Source, mut answers: Vec<Accepted>) -> Response {
    if source == Source::SalesforceOutbound {
        // Salesforce needs exactly this acknowledgement, once every notification is durable.
        let mut response = (StatusCode::OK, sources::SALESFORCE_ACK).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        );
        return response;
    }
    let all_duplicates = answers.iter().all(|answer| answer.status == "duplicate");
    let status = if all_duplicates {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    if answers.len() == 1 {
        let answer = answers.remove(0);
        (status, Json(answer)).into_response()
    } else {
        (status, Json(serde_json::json!({ "events": answers }))).into_response()
    }
}
