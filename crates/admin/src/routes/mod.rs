//! Route handlers, one module per resource.

pub(crate) mod dead_letters;
pub(crate) mod events;
pub(crate) mod imports;
pub(crate) mod integrations;
pub(crate) mod invitations;
pub(crate) mod issues;
pub(crate) mod teams;
pub(crate) mod tenants;
pub(crate) mod tokens;
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

/// The largest page a list answers.
pub(crate) const MAX_PAGE: u64 = 500;

/// Checks a `limit` query parameter: 1 to 500 (absent: the default page size).
pub(crate) fn limit(limit: Option<u64>) -> ApiResult<Option<u64>> {
    match limit {
        Some(0) => Err(AdminError::invalid("limit", "limit must be at least 1")),
        Some(n) if n > MAX_PAGE => Err(AdminError::invalid(
            "limit",
            format!("limit must be at most {MAX_PAGE}"),
        )),
        other => Ok(other),
    }
}

/// The tenant a created object belongs to: a tenant token's own (naming another tenant reads
/// as naming one that does not exist); for the operator, the `tenant_id` given, which must
/// exist.
pub(crate) async fn owning_tenant(
    state: &crate::AdminState,
    principal: crate::Principal,
    asked: Option<&str>,
) -> ApiResult<domain::TenantId> {
    let asked: Option<domain::TenantId> = asked
        .map(|value| crate::extract::parse_id("tenant_id", value))
        .transpose()?;
    let tenant = match (principal.scope(), asked) {
        (Some(own), None) => own,
        (Some(own), Some(asked)) if own == asked => own,
        (None, Some(asked)) => asked,
        (None, None) => {
            return Err(AdminError::invalid(
                "tenant_id",
                "tenant_id is required with the operator token",
            ));
        }
        (Some(_), Some(_)) => return Err(AdminError::invalid("tenant_id", "no such tenant")),
    };
    if state.store.tenant(tenant).await?.is_none() {
        return Err(AdminError::invalid("tenant_id", "no such tenant"));
    }
    Ok(tenant)
}

/// The tenant a list is restricted to, from the caller and an optional `tenant_id` filter:
/// `Some(None)` is every tenant (the operator, unfiltered), `None` means the list is empty
/// (a tenant token asking for another tenant's objects sees none, as if there were none).
pub(crate) fn list_scope(
    principal: crate::Principal,
    asked: Option<&str>,
) -> ApiResult<Option<Option<domain::TenantId>>> {
    let asked: Option<domain::TenantId> = asked
        .map(|value| crate::extract::parse_id("tenant_id", value))
        .transpose()?;
    Ok(match (principal.scope(), asked) {
        (Some(own), Some(asked)) if own != asked => None,
        (Some(own), _) => Some(Some(own)),
        (None, asked) => Some(asked),
    })
}

/// Distinguishes a field that is absent (leave it) from one that is `null` (clear it).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
