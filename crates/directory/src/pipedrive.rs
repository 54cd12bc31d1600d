//! Pipedrive: a user by id.
//!
//! - API v1, `GET /api/v1/users/{id}` → `{success: true, data: {id, name, email, active_flag,
//!   is_deleted, icon_url, …}}` ("Get one user"):
//!   <https://developers.pipedrive.com/docs/api/v1/Users#getUser>.
//! - Auth: API token in the `x-api-token` header (credential `api_token`):
//!   <https://pipedrive.readme.io/docs/core-api-concepts-authentication>. Base URL
//!   `https://api.pipedrive.com` or the company domain `https://{company}.pipedrive.com`.
//! - Errors: `{success: false, error, error_info, errorCode?}`:
//!   <https://pipedrive.readme.io/docs/core-api-concepts-responses>; 429 with `Retry-After` and
//!   `x-ratelimit-reset` (seconds until the window resets):
//!   <https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting>.

use domain::{OwnerFacts, OwnerStatus};
use reqwest::Url;
use serde_json::Value;

use crate::LookupError;
use crate::call::{
    self, Call, DEFAULT_RETRY_AFTER, IdRule, Reply, flag, id_text, secret_header, split_name, text,
};

const DEFAULT_BASE: &str = "https://api.pipedrive.com";
const CREDENTIAL: &str = "api_token";

pub(crate) async fn owner(call: &Call<'_>, id: &str) -> Result<OwnerFacts, LookupError> {
    let id = call.checked_id("user", id, IdRule::Digits)?;
    let token = secret_header(call.credential(CREDENTIAL)?)?;
    let base = call.base_url(Some(DEFAULT_BASE))?;
    let what = format!("user {id}");
    let url = users_url(&base, id);
    let reply = call
        .send(call.client().get(url).header("x-api-token", token))
        .await?;
    check(call, &reply, &what)?;
    let body = call.json(&reply, &what)?;
    if body.get("success").and_then(Value::as_bool) != Some(true) {
        return Err(call.shape(&what, "success is not true"));
    }
    let data = match body.get("data") {
        Some(Value::Object(_)) => &body["data"],
        Some(Value::Null) => {
            return Err(LookupError::NotFound(format!(
                "{}: {what} not found (no data)",
                call.api
            )));
        }
        _ => return Err(call.shape(&what, "no data")),
    };
    let external_id = id_text(data, "/id").ok_or_else(|| call.shape(&what, "no id"))?;
    let (first_name, last_name) = text(data, "/name")
        .map(|name| split_name(&name))
        .unwrap_or_default();
    let status = if flag(data, "/is_deleted") == Some(true) {
        Some(OwnerStatus::Deleted)
    } else {
        flag(data, "/active_flag").map(|active| {
            if active {
                OwnerStatus::Active
            } else {
                OwnerStatus::Inactive
            }
        })
    };
    Ok(OwnerFacts {
        external_id,
        email: text(data, "/email"),
        first_name,
        last_name,
        avatar_url: text(data, "/icon_url"),
        status,
        ..OwnerFacts::default()
    })
}

/// `{base}/api/v1/users/{id}`, accepting a base that already ends in `/api/v1` or `/v1`.
fn users_url(base: &Url, id: &str) -> Url {
    let path = base.path().trim_end_matches('/');
    if path.ends_with("/api/v1") || path.ends_with("/v1") {
        call::url(base, &["users", id], &[])
    } else {
        call::url(base, &["api", "v1", "users", id], &[])
    }
}

fn check(call: &Call<'_>, reply: &Reply, what: &str) -> Result<(), LookupError> {
    let message = reply.value().and_then(|body| text(&body, "/error"));
    if reply.status.as_u16() == 429 {
        let wait = reply
            .retry_after()
            .or_else(|| reply.header_seconds("x-ratelimit-reset"));
        return Err(call.rate_limited(wait, DEFAULT_RETRY_AFTER, reply.status, message.as_deref()));
    }
    call.check(reply, what, CREDENTIAL, message.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_domains_and_versioned_bases_work() {
        let cases = [
            (
                "https://api.pipedrive.com",
                "https://api.pipedrive.com/api/v1/users/7",
            ),
            (
                "https://acme.pipedrive.com/",
                "https://acme.pipedrive.com/api/v1/users/7",
            ),
            (
                "https://acme.pipedrive.com/api/v1",
                "https://acme.pipedrive.com/api/v1/users/7",
            ),
            (
                "https://api.pipedrive.com/v1/",
                "https://api.pipedrive.com/v1/users/7",
            ),
        ];
        for (base, expected) in cases {
            let base = Url::parse(base).unwrap();
            assert_eq!(users_url(&base, "7").as_str(), expected);
        }
    }
}
