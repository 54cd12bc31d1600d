//! HubSpot: owners and the owner of a deal, contact, company or ticket.
//!
//! - Owners API v3, `GET /crm/v3/owners/{ownerId}` → `{id, email, type, firstName, lastName,
//!   userId, createdAt, updatedAt, archived, teams: [{id, name, primary}]}`; `archived=true`
//!   returns only archived owners (deactivated users), so a 404 is asked again with it:
//!   <https://developers.hubspot.com/docs/api-reference/latest/crm/owners/get-owner>,
//!   <https://developers.hubspot.com/docs/api-reference/crm-crm-owners-v3/guide>.
//! - CRM objects API v3, `GET /crm/v3/objects/{objectType}/{objectId}?properties=hubspot_owner_id`
//!   → `{id, properties: {hubspot_owner_id}}`.
//! - Auth: private-app or OAuth access token, `Authorization: Bearer` (credential
//!   `access_token`).
//! - Errors: `{status: "error", message, correlationId, category}`; 401 invalid token, 403 missing
//!   scope, 429 `{errorType: "RATE_LIMIT", policyName: "DAILY" | "TEN_SECONDLY_ROLLING" …}`:
//!   <https://developers.hubspot.com/docs/faq/api-error-responses>,
//!   <https://developers.hubspot.com/docs/api/usage-details>.

use std::time::Duration;

use domain::{OwnerFacts, OwnerStatus};
use reqwest::Url;
use serde_json::Value;

use crate::LookupError;
use crate::call::{self, Call, IdRule, QUOTA_RETRY_AFTER, Reply, id_text, shorten, text};

const DEFAULT_BASE: &str = "https://api.hubapi.com";
const CREDENTIAL: &str = "access_token";
/// HubSpot's burst limits are per ten seconds.
const BURST_RETRY_AFTER: Duration = Duration::from_secs(10);

/// HubSpot's CRM object type for what `sources` calls the record.
pub(crate) fn object_type(object: &str) -> Result<&'static str, LookupError> {
    match object.trim().to_ascii_lowercase().as_str() {
        "deal" | "deals" | "0-3" => Ok("deals"),
        "contact" | "contacts" | "0-1" => Ok("contacts"),
        "company" | "companies" | "0-2" => Ok("companies"),
        "ticket" | "tickets" | "0-5" => Ok("tickets"),
        _ => Err(LookupError::Refused(format!(
            "HubSpot: records of type {:?} have no owner lookup (deals, contacts, companies and tickets have)",
            shorten(object)
        ))),
    }
}

pub(crate) async fn owner(call: &Call<'_>, id: &str) -> Result<OwnerFacts, LookupError> {
    let id = call.checked_id("owner", id, IdRule::Digits)?;
    let token = call.credential(CREDENTIAL)?;
    let base = call.base_url(Some(DEFAULT_BASE))?;
    let what = format!("owner {id}");
    match fetch_owner(call, &base, token, id, false, &what).await {
        Err(LookupError::NotFound(message)) => {
            // A deactivated user's owner is archived: only `archived=true` returns it.
            match fetch_owner(call, &base, token, id, true, &what).await {
                Err(LookupError::NotFound(_)) => Err(LookupError::NotFound(message)),
                other => other,
            }
        }
        other => other,
    }
}

async fn fetch_owner(
    call: &Call<'_>,
    base: &Url,
    token: &str,
    id: &str,
    archived: bool,
    what: &str,
) -> Result<OwnerFacts, LookupError> {
    let query: &[(&str, &str)] = if archived {
        &[("archived", "true")]
    } else {
        &[]
    };
    let url = call::url(base, &["crm", "v3", "owners", id], query);
    let reply = call.send(call.client().get(url).bearer_auth(token)).await?;
    check(call, &reply, what)?;
    let body = call.json(&reply, what)?;
    parse_owner(call, &body, what)
}

fn parse_owner(call: &Call<'_>, body: &Value, what: &str) -> Result<OwnerFacts, LookupError> {
    let external_id = id_text(body, "/id").ok_or_else(|| call.shape(what, "no id"))?;
    let archived = body
        .get("archived")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let teams = body
        .get("teams")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let team = teams
        .iter()
        .find(|team| team.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| teams.first())
        .and_then(|team| text(team, "/name"));
    Ok(OwnerFacts {
        external_id,
        email: text(body, "/email"),
        first_name: text(body, "/firstName"),
        last_name: text(body, "/lastName"),
        status: Some(if archived {
            OwnerStatus::Inactive
        } else {
            OwnerStatus::Active
        }),
        member_type: text(body, "/type"),
        department: team,
        ..OwnerFacts::default()
    })
}

/// The owner id on a record (`None`: the record has no owner).
pub(crate) async fn record_owner_id(
    call: &Call<'_>,
    object: &'static str,
    id: &str,
) -> Result<Option<String>, LookupError> {
    let singular = match object {
        "companies" => "company",
        other => other.trim_end_matches('s'),
    };
    let id = call.checked_id(singular, id, IdRule::Digits)?;
    let token = call.credential(CREDENTIAL)?;
    let base = call.base_url(Some(DEFAULT_BASE))?;
    let what = format!("{singular} {id}");
    let url = call::url(
        &base,
        &["crm", "v3", "objects", object, id],
        &[("properties", "hubspot_owner_id")],
    );
    let reply = call.send(call.client().get(url).bearer_auth(token)).await?;
    check(call, &reply, &what)?;
    let body = call.json(&reply, &what)?;
    let properties = body
        .get("properties")
        .filter(|properties| properties.is_object())
        .ok_or_else(|| call.shape(&what, "no properties"))?;
    Ok(id_text(properties, "/hubspot_owner_id"))
}

fn check(call: &Call<'_>, reply: &Reply, what: &str) -> Result<(), LookupError> {
    let body = reply.value();
    let message = body.as_ref().and_then(|body| text(body, "/message"));
    if reply.status.as_u16() == 429 {
        // The body names the limit: the daily one resets at midnight, the others in seconds.
        let daily = body
            .as_ref()
            .and_then(|body| text(body, "/policyName"))
            .as_deref()
            == Some("DAILY");
        let default = if daily {
            QUOTA_RETRY_AFTER
        } else {
            BURST_RETRY_AFTER
        };
        return Err(call.rate_limited(
            reply.retry_after(),
            default,
            reply.status,
            message.as_deref(),
        ));
    }
    call.check(reply, what, CREDENTIAL, message.as_deref())
}
