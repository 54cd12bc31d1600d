//! Route handlers, one module per resource.

pub(crate) mod events;
pub(crate) mod integrations;
pub(crate) mod issues;
pub(crate) mod tenants;
pub(crate) mod users;

use store::Cursor;

use crate::error::{AdminError, ApiResult};

/// Decodes an optional `cursor` query parameter.
pub(crate) fn cursor(text: Option<&str>) -> ApiResult<Option<Cursor>> {
    text.filter(|text| !text.is_empty())
        .map(|text| {
            Cursor::parse(text)
                .map_err(|err| AdminError::bad_request(Some("cursor"), err.to_string()))
        })
        .transpose()
}
