//! Jobber: the users assigned to a visit, or to any visit of a job.
//!
//! - GraphQL, `POST https://api.getjobber.com/api/graphql` with `Authorization: Bearer`
//!   (credential `access_token`) and `X-JOBBER-GRAPHQL-VERSION`:
//!   <https://developer.getjobber.com/docs/using_jobbers_api/api_queries_and_mutations>,
//!   <https://developer.getjobber.com/docs/using_jobbers_api/api_versioning>. An invalid token
//!   gets HTTP 401.
//! - Schema (<https://developer.getjobber.com/docs>): `visit(id: EncodedId!): Visit` with
//!   `assignedUsers: UserConnection`; `job(id: EncodedId!): Job` with `visits: VisitConnection`;
//!   `User { id, name: Name { first, last }, email: UserEmail { raw }, status }`. An unknown id
//!   answers `data.visit: null`.
//! - Rate limits: HTTP 429 from the DDoS guard (2500 requests / 5 min), and the query-cost leaky
//!   bucket, which answers 200 with an error whose `extensions.code` is `THROTTLED` and
//!   `extensions.cost.throttleStatus {currentlyAvailable, restoreRate}`:
//!   <https://developer.getjobber.com/docs/using_jobbers_api/api_rate_limits>. Connections are
//!   given `first:` so the requested cost stays small.

use std::time::Duration;

use domain::{OwnerFacts, OwnerStatus};
use serde_json::{Value, json};

use crate::LookupError;
use crate::call::{Call, DEFAULT_RETRY_AFTER, IdRule, dedupe, id_text, shorten, text};

const DEFAULT_BASE: &str = "https://api.getjobber.com/api/graphql";
const CREDENTIAL: &str = "access_token";
/// The API version rollcall's queries are written against (Jobber's changelog).
pub(crate) const API_VERSION: &str = "2025-04-16";

const USER_FIELDS: &str = "id name { first last } email { raw } status";

fn visit_query() -> String {
    format!(
        "query RollcallVisitAssignees($id: EncodedId!) {{ visit(id: $id) {{ id assignedUsers(first: 50) {{ nodes {{ {USER_FIELDS} }} }} }} }}"
    )
}

fn job_query() -> String {
    format!(
        "query RollcallJobAssignees($id: EncodedId!) {{ job(id: $id) {{ id visits(first: 25) {{ nodes {{ id assignedUsers(first: 10) {{ nodes {{ {USER_FIELDS} }} }} }} }} }} }}"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Object {
    Visit,
    Job,
}

pub(crate) async fn record_owners(
    call: &Call<'_>,
    object: &str,
    id: &str,
) -> Result<Vec<OwnerFacts>, LookupError> {
    let kind = match object.trim().to_ascii_lowercase().as_str() {
        "visit" | "visits" => Object::Visit,
        "job" | "jobs" => Object::Job,
        _ => {
            return Err(LookupError::Refused(format!(
                "Jobber: records of type {:?} have no assignee lookup (visits and jobs have)",
                shorten(object)
            )));
        }
    };
    let (field, query) = match kind {
        Object::Visit => ("visit", visit_query()),
        Object::Job => ("job", job_query()),
    };
    let id = call.checked_id(field, id, IdRule::Opaque)?;
    let token = call.credential(CREDENTIAL)?;
    let url = call.base_url(Some(DEFAULT_BASE))?;
    let what = format!("{field} {}", shorten(id));
    let request = call
        .client()
        .post(url)
        .bearer_auth(token)
        .header("X-JOBBER-GRAPHQL-VERSION", API_VERSION)
        .json(&json!({ "query": query, "variables": { "id": id } }));
    let reply = call.send(request).await?;
    if !reply.status.is_success() {
        let message = reply.value().as_ref().and_then(first_error_message);
        call.check(&reply, &what, CREDENTIAL, message.as_deref())?;
    }
    let body = call.json(&reply, &what)?;
    let node = body.pointer(&format!("/data/{field}"));
    if let Some(errors) = body.get("errors").and_then(Value::as_array)
        && !errors.is_empty()
    {
        let usable = node.is_some_and(|node| !node.is_null());
        if let Some(err) = graphql_error(call, &body, errors, &what, usable) {
            return Err(err);
        }
    }
    let node = match node {
        None => return Err(call.shape(&what, &format!("no data.{field}"))),
        Some(Value::Null) => {
            return Err(LookupError::NotFound(format!(
                "{}: {what} not found",
                call.api
            )));
        }
        Some(node) => node,
    };
    let users: Vec<&Value> = match kind {
        Object::Visit => assigned(node).ok_or_else(|| call.shape(&what, "no assignedUsers"))?,
        Object::Job => {
            let visits = node
                .pointer("/visits/nodes")
                .and_then(Value::as_array)
                .ok_or_else(|| call.shape(&what, "no visits"))?;
            let mut users = Vec::new();
            for visit in visits {
                users.extend(assigned(visit).ok_or_else(|| call.shape(&what, "no assignedUsers"))?);
            }
            users
        }
    };
    let owners = users
        .into_iter()
        .map(|user| parse_user(call, user, &what))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(dedupe(owners))
}

/// A visit's assigned users (`null` connection: nobody).
fn assigned(visit: &Value) -> Option<Vec<&Value>> {
    match visit.get("assignedUsers")? {
        Value::Null => Some(Vec::new()),
        users => Some(users.get("nodes")?.as_array()?.iter().collect()),
    }
}

fn parse_user(call: &Call<'_>, user: &Value, what: &str) -> Result<OwnerFacts, LookupError> {
    let external_id = id_text(user, "/id").ok_or_else(|| call.shape(what, "a user has no id"))?;
    let status =
        text(user, "/status").and_then(|status| match status.to_ascii_uppercase().as_str() {
            "ACTIVE" => Some(OwnerStatus::Active),
            "DEACTIVATED" | "INACTIVE" | "DISABLED" | "ARCHIVED" => Some(OwnerStatus::Inactive),
            _ => None,
        });
    Ok(OwnerFacts {
        external_id,
        email: text(user, "/email/raw"),
        first_name: text(user, "/name/first"),
        last_name: text(user, "/name/last"),
        status,
        ..OwnerFacts::default()
    })
}

fn first_error_message(body: &Value) -> Option<String> {
    text(body, "/errors/0/message")
        .or_else(|| text(body, "/message"))
        .or_else(|| text(body, "/error"))
}

/// What GraphQL errors mean; `None` when the data can be used anyway (`usable`: the object came
/// back, the errors concern something else).
fn graphql_error(
    call: &Call<'_>,
    body: &Value,
    errors: &[Value],
    what: &str,
    usable: bool,
) -> Option<LookupError> {
    let codes: Vec<String> = errors
        .iter()
        .filter_map(|error| text(error, "/extensions/code"))
        .map(|code| code.to_ascii_uppercase())
        .collect();
    let message = errors.iter().find_map(|error| text(error, "/message"));
    if codes.iter().any(|code| code == "THROTTLED") {
        return Some(call.rate_limited(
            Some(throttle_wait(body)),
            DEFAULT_RETRY_AFTER,
            reqwest::StatusCode::OK,
            message.as_deref(),
        ));
    }
    if codes.iter().any(|code| {
        matches!(
            code.as_str(),
            "UNAUTHENTICATED" | "UNAUTHORIZED" | "FORBIDDEN" | "ACCESS_DENIED" | "INVALID_TOKEN"
        )
    }) {
        return Some(LookupError::Refused(format!(
            "{} refused the {CREDENTIAL}{}",
            call.api,
            call.detail(message.as_deref())
        )));
    }
    if codes
        .iter()
        .any(|code| matches!(code.as_str(), "NOT_FOUND" | "RECORD_NOT_FOUND"))
    {
        return Some(LookupError::NotFound(format!(
            "{}: {what} not found{}",
            call.api,
            call.detail(message.as_deref())
        )));
    }
    if usable {
        tracing::warn!(
            api = call.api,
            "Jobber answered the query with errors; using the data it returned"
        );
        return None;
    }
    // No object and errors we do not know: the id is not one Jobber knows (an invalid
    // EncodedId), or Jobber failed. Without the object there is nothing to go on: transient.
    Some(LookupError::Unavailable(format!(
        "{}: {what}: GraphQL errors{}",
        call.api,
        call.detail(message.as_deref())
    )))
}

/// How long until the leaky bucket holds the points the query asked for.
fn throttle_wait(body: &Value) -> Duration {
    let cost = |name: &str| {
        body.pointer(&format!("/extensions/cost/{name}"))
            .and_then(Value::as_f64)
    };
    let requested = cost("requestedQueryCost");
    let available = cost("throttleStatus/currentlyAvailable");
    let rate = cost("throttleStatus/restoreRate").filter(|rate| *rate > 0.0);
    match (requested, available, rate) {
        (Some(requested), Some(available), Some(rate)) => {
            let seconds = ((requested - available) / rate).ceil().clamp(1.0, 3600.0);
            Duration::from_secs_f64(seconds)
        }
        _ => DEFAULT_RETRY_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_waits_for_the_points_to_come_back() {
        let body = json!({
            "extensions": { "cost": {
                "requestedQueryCost": 1500,
                "actualQueryCost": 0,
                "throttleStatus": { "maximumAvailable": 10000, "currentlyAvailable": 500, "restoreRate": 500 },
            }}
        });
        assert_eq!(throttle_wait(&body), Duration::from_secs(2));
        assert_eq!(throttle_wait(&json!({})), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn queries_bound_their_connections() {
        assert!(visit_query().contains("visit(id: $id)"));
        assert!(visit_query().contains("assignedUsers(first: 50)"));
        assert!(job_query().contains("job(id: $id)"));
        assert!(job_query().contains("visits(first: 25)"));
    }
}
