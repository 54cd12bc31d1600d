//! Jobber GraphQL API: `POST /api/graphql`, bearer tokens, `visit`/`job` with `assignedUsers`,
//! `THROTTLED` errors and `extensions.cost`.
//! <https://developer.getjobber.com/docs/using_jobbers_api/api_queries_and_mutations>,
//! <https://developer.getjobber.com/docs/using_jobbers_api/api_rate_limits>.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{FakeUser, Incoming, Shared, Target, method_not_allowed, render};

pub(crate) const PATH: &str = "/api/graphql";
pub(crate) const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.fake-jobber-token.0001";

fn cost() -> Value {
    json!({
        "cost": {
            "requestedQueryCost": 142,
            "actualQueryCost": 47,
            "throttleStatus": { "maximumAvailable": 10000, "currentlyAvailable": 9953, "restoreRate": 500 },
        }
    })
}

pub(crate) async fn handle(shared: &Shared, request: &Incoming) -> Response {
    if request.bearer() != Some(TOKEN) {
        return unauthorized();
    }
    if request.path != PATH {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    if request.method != "POST" {
        return method_not_allowed();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return crate::json(
            StatusCode::BAD_REQUEST,
            json!({ "errors": [{ "message": "Unexpected end of document" }] }),
        );
    };
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = body
        .pointer("/variables/id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let object = if query.contains("visit(") {
        "visit"
    } else if query.contains("job(") {
        "job"
    } else {
        return crate::json(
            StatusCode::OK,
            json!({ "errors": [{ "message": "Field is not supported by this fake" }] }),
        );
    };
    if let Some(canned) = shared.canned(&id) {
        return render(shared, &canned, Target::Record(object, &id)).await;
    }
    let state = shared.lock();
    let user = |user_id: &String| assigned_user(user_id, state.users.get(user_id));
    let data = if object == "visit" {
        state
            .records
            .get(&("visit".to_owned(), id.clone()))
            .map(|users| visit(&id, users.iter().map(user).collect()))
    } else {
        state.jobs.get(&id).map(|visits| {
            let visits: Vec<Value> = visits
                .iter()
                .map(|(visit_id, users)| visit(visit_id, users.iter().map(user).collect()))
                .collect();
            json!({ "id": id, "visits": { "nodes": visits } })
        })
    };
    crate::json(
        StatusCode::OK,
        json!({ "data": { object: data }, "extensions": cost() }),
    )
}

fn visit(id: &str, users: Vec<Value>) -> Value {
    json!({ "id": id, "assignedUsers": { "nodes": users } })
}

fn assigned_user(id: &str, user: Option<&FakeUser>) -> Value {
    let fallback = FakeUser::default();
    let user = user.unwrap_or(&fallback);
    json!({
        "id": id,
        "name": { "first": user.first_name.clone().unwrap_or_default(), "last": user.last_name.clone().unwrap_or_default(), "full": user.full_name() },
        "email": { "raw": user.email.clone().unwrap_or_default() },
        "status": if user.active { "ACTIVE" } else { "DEACTIVATED" },
    })
}

pub(crate) fn not_found(target: Target<'_>) -> Response {
    let object = match target {
        Target::Record(object, _) => object,
        Target::User(_) => "visit",
    };
    crate::json(
        StatusCode::OK,
        json!({ "data": { object: null }, "extensions": cost() }),
    )
}

pub(crate) fn unauthorized() -> Response {
    crate::json(
        StatusCode::UNAUTHORIZED,
        json!({ "message": "invalid_request" }),
    )
}

pub(crate) fn throttled() -> Response {
    crate::json(
        StatusCode::OK,
        json!({
            "errors": [{
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://developer.getjobber.com/docs/using_jobbers_api/api_rate_limits",
                },
            }],
            "extensions": {
                "cost": {
                    "requestedQueryCost": 1500,
                    "actualQueryCost": 0,
                    "throttleStatus": { "maximumAvailable": 10000, "currentlyAvailable": 500, "restoreRate": 500 },
                }
            },
        }),
    )
}

/// The DDoS guard's answer (Rack::Attack's default throttled response).
pub(crate) fn too_many_requests() -> Response {
    (StatusCode::TOO_MANY_REQUESTS, "Retry later\n").into_response()
}
