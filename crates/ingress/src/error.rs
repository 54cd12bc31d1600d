//! Every way the ingress refuses a webhook, and the one place they become HTTP answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use problem::Problem;

/// Seconds a sender should wait before retrying when the event could not be made durable.
pub(crate) const RETRY_AFTER_SECONDS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub(crate) enum IngressError {
    #[error("no such integration")]
    UnknownIntegration,
    #[error("signature rejected: {0}")]
    Unauthorized(String),
    #[error("{0}")]
    MalformedPayload(String),
    #[error("body is larger than this integration's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("content type {got:?} is not accepted; send {expected}")]
    UnsupportedMediaType { got: String, expected: &'static str },
    #[error("the body was not received in time")]
    BodyTimeout,
    #[error("this integration's rate limit is exceeded; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the event could not be made durable; retry later")]
    Unavailable(String),
}

impl IngressError {
    /// A stable label for logs and metrics.
    pub(crate) const fn reason(&self) -> &'static str {
        match self {
            IngressError::UnknownIntegration => "unknown_integration",
            IngressError::Unauthorized(_) => "unauthorized",
            IngressError::MalformedPayload(_) => "malformed",
            IngressError::TooLarge { .. } => "too_large",
            IngressError::UnsupportedMediaType { .. } => "unsupported_media_type",
            IngressError::BodyTimeout => "body_timeout",
            IngressError::RateLimited { .. } => "rate_limited",
            IngressError::Unavailable(_) => "unavailable",
        }
    }
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        let problem = match &self {
            IngressError::UnknownIntegration => {
                Problem::new(StatusCode::NOT_FOUND, "unknown-integration", detail)
            }
            IngressError::Unauthorized(_) => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid-signature", detail)
            }
            IngressError::MalformedPayload(_) => {
                Problem::new(StatusCode::BAD_REQUEST, "malformed-payload", detail)
            }
            IngressError::TooLarge { .. } => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", detail)
            }
            IngressError::UnsupportedMediaType { .. } => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                detail,
            ),
            IngressError::BodyTimeout => {
                Problem::new(StatusCode::REQUEST_TIMEOUT, "body-timeout", detail)
            }
            IngressError::RateLimited { retry_after } => {
                Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", detail)
                    .with_retry_after(*retry_after)
            }
            // The cause (a broker or database error) is logged, not shown to the sender.
            IngressError::Unavailable(_) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
                    .with_retry_after(RETRY_AFTER_SECONDS)
            }
        };
        problem.into_response()
    }
}
