//! Request extractors whose failures are problem+json naming the offending field, instead of
//! axum's plain-text rejections.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::AdminError;

/// A JSON body, deserialised with the path of any error (`settings.match: unknown variant`).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let essence = value.split(';').next().unwrap_or("").trim();
                essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
            });
        if !is_json {
            return Err(AdminError::bad_request(
                None,
                "send a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|err| AdminError::bad_request(None, err.body_text()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserialises `bytes`, naming the path of the first error. Text holding U+0000 is refused:
/// no field has a use for it, and PostgreSQL cannot store it.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|err| AdminError::bad_request(None, format!("body is not valid JSON: {err}")))?;
    if let Some(path) = nul_path(&value, String::new()) {
        let field = (!path.is_empty()).then_some(path);
        let message = match &field {
            Some(field) => format!("{field}: text must not contain U+0000"),
            None => "text must not contain U+0000".to_owned(),
        };
        return Err(AdminError::BadRequest { field, message });
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let field = (path != ".").then_some(path);
        let message = match &field {
            Some(field) => format!("{field}: {inner}"),
            None => inner.to_string(),
        };
        AdminError::BadRequest { field, message }
    })
}

/// The path (`a.b[2]`) of the first string, or object key, that holds U+0000.
fn nul_path(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0').then_some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let here = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            if key.contains('\0') {
                Some(here)
            } else {
                nul_path(item, here)
            }
        }),
        _ => None,
    }
}

/// Query parameters, with errors as problem+json.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        if query.contains("%00") {
            return Err(AdminError::bad_request(
                None,
                "query parameters must not contain U+0000",
            ));
        }
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|query| ApiQuery(query.0))
            .map_err(|err| AdminError::bad_request(None, err.body_text()))
    }
}

/// Parses a path or query id, naming the field when it is not a UUID.
pub(crate) fn parse_id<T: std::str::FromStr>(field: &str, value: &str) -> Result<T, AdminError> {
    value.parse().map_err(|_| {
        AdminError::bad_request(
            Some(field),
            format!("{field} must be a UUID, got {:?}", truncate(value)),
        )
    })
}

fn truncate(value: &str) -> String {
    value.chars().take(64).collect()
}
