//! Zoho CRM: a user by id, and the owner of a record.
//!
//! - API v8, `GET {base}/{module_api_name}/{record_id}?fields=Owner` → `{data: [{id, Owner: {id,
//!   name, email}}]}`: <https://www.zoho.com/crm/developer/docs/api/v8/get-records.html>;
//!   `GET {base}/users/{user_id}` → `{users: [{id, first_name, last_name, full_name, email,
//!   status, role {name}, profile {name}, city, …}]}`:
//!   <https://www.zoho.com/crm/developer/docs/api/v8/get-users.html>.
//! - Auth: `Authorization: Zoho-oauthtoken {access_token}` (credential `access_token`); base
//!   `https://www.zohoapis.com/crm/v8`, or the account's data centre (`.eu`, `.in`, …).
//! - Answers: `204 No Content` when there is no data for the input; errors `{code, details,
//!   message, status: "error"}` (also inside `data[]`/`users[]`): 401 `INVALID_TOKEN` /
//!   `AUTHENTICATION_FAILURE` / `OAUTH_SCOPE_MISMATCH`, 403 `NO_PERMISSION`, 400 `INVALID_DATA`
//!   (an id that is not a record), 429 `TOO_MANY_REQUESTS`:
//!   <https://www.zoho.com/crm/developer/docs/api/v8/status-codes.html>.

use domain::{OwnerFacts, OwnerStatus};
use serde_json::Value;

use crate::LookupError;
use crate::call::{
    self, Call, DEFAULT_RETRY_AFTER, IdRule, Reply, id_text, secret_header, shorten, split_name,
    text,
};

const DEFAULT_BASE: &str = "https://www.zohoapis.com/crm/v8";
const CREDENTIAL: &str = "access_token";

pub(crate) async fn owner(call: &Call<'_>, id: &str) -> Result<OwnerFacts, LookupError> {
    let id = call.checked_id("user", id, IdRule::Digits)?;
    let what = format!("user {id}");
    let body = get(call, &["users", id], &[], &what).await?;
    let user = match body.get("users").and_then(Value::as_array) {
        Some(users) => match users.first() {
            Some(user) => user,
            None => return Err(not_found(call, &what, "no users")),
        },
        None => return Err(call.shape(&what, "no users")),
    };
    let external_id = id_text(user, "/id").ok_or_else(|| call.shape(&what, "no id"))?;
    let status = text(user, "/status").map(|status| match status.to_ascii_lowercase().as_str() {
        "active" => OwnerStatus::Active,
        "deleted" => OwnerStatus::Deleted,
        _ => OwnerStatus::Inactive,
    });
    let (mut first_name, mut last_name) = (text(user, "/first_name"), text(user, "/last_name"));
    if first_name.is_none()
        && last_name.is_none()
        && let Some(full) = text(user, "/full_name")
    {
        (first_name, last_name) = split_name(&full);
    }
    Ok(OwnerFacts {
        external_id,
        email: text(user, "/email"),
        first_name,
        last_name,
        status,
        member_type: text(user, "/profile/name"),
        title: text(user, "/role/name"),
        location: text(user, "/city"),
        ..OwnerFacts::default()
    })
}

pub(crate) async fn record_owners(
    call: &Call<'_>,
    module: &str,
    id: &str,
) -> Result<Vec<OwnerFacts>, LookupError> {
    let module = module.trim();
    let valid_name = !module.is_empty()
        && module.len() <= 100
        && module.starts_with(|c: char| c.is_ascii_alphabetic())
        && module
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if !valid_name {
        return Err(LookupError::Refused(format!(
            "{}: {:?} is not a module API name",
            call.api,
            shorten(module)
        )));
    }
    let id = call.checked_id("record", id, IdRule::Digits)?;
    let what = format!("{module} record {id}");
    let body = get(call, &[module, id], &[("fields", "Owner")], &what).await?;
    let record = match body.get("data").and_then(Value::as_array) {
        Some(records) => match records.first() {
            Some(record) => record,
            None => return Err(not_found(call, &what, "no data")),
        },
        None => return Err(call.shape(&what, "no data")),
    };
    if let Some(error) = error_code(record) {
        return Err(meaning(
            call,
            &what,
            None,
            &error,
            text(record, "/message").as_deref(),
        ));
    }
    let owner = match record.get("Owner") {
        None => return Err(call.shape(&what, "no Owner")),
        Some(Value::Null) => return Ok(Vec::new()),
        Some(owner) => owner,
    };
    let external_id = id_text(owner, "/id").ok_or_else(|| call.shape(&what, "no Owner.id"))?;
    let (first_name, last_name) = text(owner, "/name")
        .map(|name| split_name(&name))
        .unwrap_or_default();
    Ok(vec![OwnerFacts {
        external_id,
        email: text(owner, "/email"),
        first_name,
        last_name,
        ..OwnerFacts::default()
    }])
}

async fn get(
    call: &Call<'_>,
    segments: &[&str],
    query: &[(&str, &str)],
    what: &str,
) -> Result<Value, LookupError> {
    let token = secret_header(&format!("Zoho-oauthtoken {}", call.credential(CREDENTIAL)?))?;
    let base = call.base_url(Some(DEFAULT_BASE))?;
    let url = call::url(&base, segments, query);
    let reply = call
        .send(
            call.client()
                .get(url)
                .header(reqwest::header::AUTHORIZATION, token),
        )
        .await?;
    check(call, &reply, what)?;
    call.json(&reply, what)
}

fn not_found(call: &Call<'_>, what: &str, why: &str) -> LookupError {
    LookupError::NotFound(format!("{}: {what} not found ({why})", call.api))
}

/// `code` of a Zoho error object, if it is one.
fn error_code(value: &Value) -> Option<String> {
    (text(value, "/status").as_deref() == Some("error"))
        .then(|| text(value, "/code"))
        .flatten()
}

fn check(call: &Call<'_>, reply: &Reply, what: &str) -> Result<(), LookupError> {
    if reply.status.as_u16() == 204 {
        return Err(not_found(call, what, "204 no content"));
    }
    if reply.status.is_success() {
        return Ok(());
    }
    let body = reply.value();
    // The error is the body itself, or the first item of `data`/`users`.
    let error = body.as_ref().and_then(|body| {
        std::iter::once(body)
            .chain(body.pointer("/data/0"))
            .chain(body.pointer("/users/0"))
            .find(|value| error_code(value).is_some())
    });
    let code = error.and_then(error_code);
    let message = error.and_then(|error| text(error, "/message"));
    if reply.status.as_u16() == 429 || code.as_deref() == Some("TOO_MANY_REQUESTS") {
        return Err(call.rate_limited(
            reply.retry_after(),
            DEFAULT_RETRY_AFTER,
            reply.status,
            message.as_deref(),
        ));
    }
    let status = Some(reply.status.as_u16());
    match code.map(|code| meaning(call, what, status, &code, message.as_deref())) {
        // Codes with no special meaning fall back to what the status means.
        None | Some(LookupError::Unavailable(_)) => {
            call.check(reply, what, CREDENTIAL, message.as_deref())
        }
        Some(err) => Err(err),
    }
}

/// What a Zoho error code means; `Unavailable` for codes without a special meaning.
fn meaning(
    call: &Call<'_>,
    what: &str,
    status: Option<u16>,
    code: &str,
    message: Option<&str>,
) -> LookupError {
    let code_text = match status {
        Some(status) => format!("{status} {code}"),
        None => code.to_owned(),
    };
    match code {
        "INVALID_TOKEN"
        | "AUTHENTICATION_FAILURE"
        | "OAUTH_SCOPE_MISMATCH"
        | "NO_PERMISSION"
        | "INVALID_OAUTHTOKEN" => LookupError::Refused(format!(
            "{} refused the {CREDENTIAL} ({code_text}){}",
            call.api,
            call.detail(message)
        )),
        "INVALID_DATA" | "RECORD_NOT_FOUND" | "INVALID_MODULE" | "INVALID_URL_PATTERN" => {
            LookupError::NotFound(format!("{}: {what} not found ({code_text})", call.api))
        }
        "TOO_MANY_REQUESTS" => call.rate_limited(
            None,
            DEFAULT_RETRY_AFTER,
            reqwest::StatusCode::TOO_MANY_REQUESTS,
            message,
        ),
        _ => LookupError::Unavailable(format!(
            "{}: {what}: {code}{}",
            call.api,
            call.detail(message)
        )),
    }
}
