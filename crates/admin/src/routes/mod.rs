//! Route handlers, one module per resource.

pub(crate) mod dead_letters;
pub(crate) mod events;
pub(crate) mod integrations;
pub(crate) mod invitations;
pub(crate) mod issues;
pub(crate) mod tenants;
pub(crate) mod users;

use store::Cursor;

use crate::error::{AdminError, ApiResult};

/// Parses an optional RFC 3339 time parameter, naming it when malformed.
pub(crate) fn time(field: &str, text: Option<&str>) -> ApiResult<Option<domain::Timestamp>> {
    text.map(|text| {
        domain::Timestamp::parse_rfc3339(text)
            .map_err(|err| AdminError::bad_request(Some(field), format!("{field}: {err}")))
    })
    .transpose()
}

/// Decodes an optional `cursor` query parameter.
pub(crate) fn cursor(text: Option<&str>) -> ApiResult<Option<Cursor>> {
    text.filter(|text| !text.is_empty())
        .map(|text| {
            Cursor::parse(text)
                .map_err(|err| AdminError::bad_request(Some("cursor"), err.to_string()))
        })
        .transpose()
}
