//! HubSpot: Owners API v3 and CRM objects API v3, private-app / OAuth bearer tokens.
//! <https://developers.hubspot.com/docs/api-reference/latest/crm/owners/get-owner>,
//! <https://developers.hubspot.com/docs/faq/api-error-responses>.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::{FakeUser, Incoming, Shared, Target, method_not_allowed, numeric, render};

pub(crate) const TOKEN: &str = "pat-na1-fake-hubspot-0001";
const CORRELATION_ID: &str = "aeb5f871-7f07-4993-9211-075dc63e7cbf";

pub(crate) async fn handle(shared: &Shared, request: &Incoming) -> Response {
    if request.bearer() != Some(TOKEN) {
        return unauthorized();
    }
    if request.method != "GET" {
        return method_not_allowed();
    }
    let Some(segments) = request.segments_after("/crm/v3/") else {
        return error(StatusCode::NOT_FOUND, "Not Found", "OBJECT_NOT_FOUND");
    };
    match segments.as_slice() {
        ["owners", id] => {
            if let Some(canned) = shared.canned(id) {
                return render(shared, &canned, Target::User(id)).await;
            }
            // `archived=true` returns only archived owners; the default only active ones.
            let archived = request.query_param("archived").as_deref() == Some("true");
            match shared.user(id) {
                Some(user) if user.active != archived => {
                    crate::json(StatusCode::OK, owner(id, &user))
                }
                _ => not_found(Target::User(id)),
            }
        }
        ["objects", object, id] => {
            if let Some(canned) = shared.canned(id) {
                return render(shared, &canned, Target::Record(object, id)).await;
            }
            let owners = shared
                .lock()
                .records
                .get(&((*object).to_owned(), (*id).to_owned()))
                .cloned();
            match owners {
                Some(owners) => crate::json(StatusCode::OK, record(id, owners.first())),
                None => not_found(Target::Record(object, id)),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found", "OBJECT_NOT_FOUND"),
    }
}

fn owner(id: &str, user: &FakeUser) -> Value {
    let teams: Vec<Value> = user
        .department
        .iter()
        .map(|name| json!({ "id": "178588", "name": name, "primary": true }))
        .collect();
    let user_id = id
        .parse::<u64>()
        .map_or(Value::Null, |n| Value::from(n + 9_000_000));
    json!({
        "id": id,
        "email": user.email,
        "type": user.member_type.clone().unwrap_or_else(|| "PERSON".to_owned()),
        "firstName": user.first_name,
        "lastName": user.last_name,
        "userId": user_id,
        "userIdIncludingInactive": user_id,
        "createdAt": "2019-10-30T03:30:17.883Z",
        "updatedAt": "2019-12-07T16:50:06.678Z",
        "archived": !user.active,
        "teams": teams,
    })
}

fn record(id: &str, owner: Option<&String>) -> Value {
    json!({
        "id": id,
        "properties": {
            "createdate": "2024-01-10T14:22:31.123Z",
            "hs_lastmodifieddate": "2024-02-03T09:15:44.987Z",
            "hs_object_id": numeric(id),
            "hubspot_owner_id": owner,
        },
        "createdAt": "2024-01-10T14:22:31.123Z",
        "updatedAt": "2024-02-03T09:15:44.987Z",
        "archived": false,
    })
}

fn error(status: StatusCode, message: &str, category: &str) -> Response {
    crate::json(
        status,
        json!({
            "status": "error",
            "message": message,
            "correlationId": CORRELATION_ID,
            "category": category,
        }),
    )
}

pub(crate) fn not_found(target: Target<'_>) -> Response {
    match target {
        Target::User(id) => error(
            StatusCode::NOT_FOUND,
            &format!("Unable to find owner with id {id}"),
            "OBJECT_NOT_FOUND",
        ),
        Target::Record(_, _) => error(
            StatusCode::NOT_FOUND,
            "resource not found",
            "OBJECT_NOT_FOUND",
        ),
    }
}

pub(crate) fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        "INVALID_AUTHENTICATION",
    )
}

fn rate_limit(message: &str, policy: &str) -> Response {
    crate::json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": CORRELATION_ID,
            "policyName": policy,
            "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd",
        }),
    )
}

pub(crate) fn secondly_limit() -> Response {
    rate_limit(
        "You have reached your secondly limit.",
        "TEN_SECONDLY_ROLLING",
    )
}

pub(crate) fn daily_limit() -> Response {
    rate_limit("You have reached your daily limit.", "DAILY")
}
