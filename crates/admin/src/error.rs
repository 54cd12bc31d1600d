//! The internal API's one error type and its mapping to HTTP, in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use problem::Problem;
use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("a bearer token is required")]
    MissingToken,
    #[error("the token is not valid")]
    InvalidToken,
    #[error("this route needs the operator token")]
    OperatorOnly,
    /// Absent, or belongs to another tenant: the two are indistinguishable on purpose.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is not well-formed (bad JSON, wrong types, unknown fields, bad ids).
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// Well-formed but not acceptable (a value out of range, an unsupported option).
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    /// It existed but can no longer be used (an expired, used or replaced invitation link);
    /// `kind` is the problem type's slug.
    #[error("{message}")]
    Gone { kind: &'static str, message: String },
    #[error("the database is unavailable; retry later")]
    Unavailable(String),
    /// The CRM's directory could not be asked now (rate limit, timeout, outage).
    #[error("{0}")]
    DirectoryUnavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl AdminError {
    pub(crate) fn bad_request(field: Option<&str>, message: impl Into<String>) -> Self {
        AdminError::BadRequest {
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        AdminError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => AdminError::Unavailable(cause),
            StoreError::Conflict(cause) => AdminError::Conflict(cause),
            StoreError::NotFound(what) => AdminError::NotFound(what),
            StoreError::Corrupt(cause) | StoreError::Database(cause) => AdminError::Internal(cause),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        let problem = match self {
            AdminError::MissingToken | AdminError::InvalidToken => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).with_header(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                )
            }
            AdminError::OperatorOnly => {
                Problem::new(StatusCode::FORBIDDEN, "operator-only", detail)
            }
            AdminError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, "not-found", detail),
            AdminError::BadRequest { field, .. } => {
                let problem = Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail);
                match field {
                    Some(field) => problem.with_field(field),
                    None => problem,
                }
            }
            AdminError::Invalid { field, .. } => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail).with_field(field)
            }
            AdminError::Conflict(_) => Problem::new(StatusCode::CONFLICT, "conflict", detail),
            AdminError::Gone { kind, .. } => Problem::new(StatusCode::GONE, kind, detail),
            AdminError::Unavailable(cause) => {
                tracing::warn!(%cause, "internal API: database unavailable");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
                    .with_retry_after(5)
            }
            AdminError::DirectoryUnavailable(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "directory-unavailable",
                detail,
            )
            .with_retry_after(30),
            AdminError::Internal(cause) => {
                tracing::error!(%cause, "internal API error");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
            }
        };
        problem.into_response()
    }
}

pub type ApiResult<T> = Result<T, AdminError>;
