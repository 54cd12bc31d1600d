//! Salesforce: a User by id, and the owner of any sObject row (`OwnerId`).
//!
//! - REST API, `GET {instance}/services/data/v62.0/sobjects/User/{id}?fields=…` → the row's
//!   fields plus `attributes`; `GET …/sobjects/{sObject}/{id}?fields=OwnerId` for records
//!   ("Get Field Values from a Standard Object Record"):
//!   <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_get_field_values.htm>.
//! - Auth: OAuth access token (session id), `Authorization: Bearer` (credential `access_token`);
//!   the base URL is the org's instance URL (`https://acme.my.salesforce.com`), required.
//! - Errors are arrays `[{"message", "errorCode", "fields"?}]`: 401 `INVALID_SESSION_ID`, 404
//!   `NOT_FOUND`, 400 `MALFORMED_ID` / `INVALID_FIELD`, 403 `REQUEST_LIMIT_EXCEEDED` when the
//!   org's API request limit is used up:
//!   <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm>.

use domain::{OwnerFacts, OwnerStatus};
use serde_json::Value;

use crate::LookupError;
use crate::call::{self, Call, IdRule, QUOTA_RETRY_AFTER, Reply, id_text, shorten, text};

const VERSION: &str = "v62.0";
const CREDENTIAL: &str = "access_token";
const USER_FIELDS: &str = "Id,Email,FirstName,LastName,IsActive,Title,Department,City,EmployeeNumber,FullPhotoUrl,UserType";
/// Salesforce User ids start with this key prefix (queues and groups, which can own records,
/// start with `00G`).
const USER_PREFIX: &str = "005";

pub(crate) async fn owner(call: &Call<'_>, id: &str) -> Result<OwnerFacts, LookupError> {
    let id = call.checked_id("user", id, IdRule::Salesforce)?;
    let token = call.credential(CREDENTIAL)?;
    let base = call.base_url(None)?;
    let what = format!("user {id}");
    let url = call::url(
        &base,
        &["services", "data", VERSION, "sobjects", "User", id],
        &[("fields", USER_FIELDS)],
    );
    let reply = call.send(call.client().get(url).bearer_auth(token)).await?;
    check(call, &reply, &what)?;
    let body = call.json(&reply, &what)?;
    let external_id = id_text(&body, "/Id").ok_or_else(|| call.shape(&what, "no Id"))?;
    let status = body.get("IsActive").and_then(Value::as_bool).map(|active| {
        if active {
            OwnerStatus::Active
        } else {
            OwnerStatus::Inactive
        }
    });
    Ok(OwnerFacts {
        external_id,
        email: text(&body, "/Email"),
        first_name: text(&body, "/FirstName"),
        last_name: text(&body, "/LastName"),
        avatar_url: text(&body, "/FullPhotoUrl"),
        status,
        member_type: text(&body, "/UserType"),
        employee_ids: text(&body, "/EmployeeNumber").into_iter().collect(),
        title: text(&body, "/Title"),
        department: text(&body, "/Department"),
        location: text(&body, "/City"),
    })
}

/// The user owning row `id` of sObject `object` (`None`: no owner, or a queue or group).
pub(crate) async fn record_owner_id(
    call: &Call<'_>,
    object: &str,
    id: &str,
) -> Result<Option<String>, LookupError> {
    let object = object.trim();
    let valid_name = !object.is_empty()
        && object.len() <= 80
        && object.starts_with(|c: char| c.is_ascii_alphabetic())
        && object
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if !valid_name {
        return Err(LookupError::Refused(format!(
            "{}: {:?} is not an sObject API name",
            call.api,
            shorten(object)
        )));
    }
    let id = call.checked_id(object, id, IdRule::Salesforce)?;
    let token = call.credential(CREDENTIAL)?;
    let base = call.base_url(None)?;
    let what = format!("{object} {id}");
    let url = call::url(
        &base,
        &["services", "data", VERSION, "sobjects", object, id],
        &[("fields", "OwnerId")],
    );
    let reply = call.send(call.client().get(url).bearer_auth(token)).await?;
    check(call, &reply, &what)?;
    let body = call.json(&reply, &what)?;
    if body.get("OwnerId").is_none() {
        return Err(call.shape(&what, "no OwnerId"));
    }
    Ok(id_text(&body, "/OwnerId").filter(|owner| owner.starts_with(USER_PREFIX)))
}

fn check(call: &Call<'_>, reply: &Reply, what: &str) -> Result<(), LookupError> {
    let body = reply.value();
    let first = body
        .as_ref()
        .and_then(Value::as_array)
        .and_then(|errors| errors.first());
    let code = first.and_then(|error| text(error, "/errorCode"));
    let message = first.and_then(|error| text(error, "/message"));
    match (reply.status.as_u16(), code.as_deref()) {
        (403 | 429, Some("REQUEST_LIMIT_EXCEEDED")) => Err(call.rate_limited(
            reply.retry_after(),
            QUOTA_RETRY_AFTER,
            reply.status,
            message.as_deref(),
        )),
        (400, Some("MALFORMED_ID" | "INVALID_ID_FIELD" | "NOT_FOUND")) => {
            Err(LookupError::NotFound(format!(
                "{}: {what} not found ({})",
                call.api,
                reply.status.as_u16()
            )))
        }
        // A field or sObject this org does not have: no retry will help, an operator must look.
        (400, Some("INVALID_FIELD" | "INVALID_TYPE")) => Err(LookupError::Refused(format!(
            "{}: {what}: the org rejected the query (400 {}){}",
            call.api,
            code.as_deref().unwrap_or_default(),
            call.detail(message.as_deref())
        ))),
        _ => call.check(reply, what, CREDENTIAL, message.as_deref()),
    }
}
