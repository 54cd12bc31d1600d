//! Pipedrive API v1 users, `x-api-token` header, `{success, data}` envelopes.
//! <https://pipedrive.readme.io/docs/core-api-concepts-responses>,
//! <https://developers.pipedrive.com/docs/api/v1/Users#getUser>.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::{FakeUser, Incoming, Shared, Target, method_not_allowed, numeric, render};

pub(crate) const TOKEN: &str = "659c9fddb16335e48cc67114694b52074e8fake01";
const ERROR_INFO: &str =
    "Please check developers.pipedrive.com for more information about Pipedrive API.";

pub(crate) async fn handle(shared: &Shared, request: &Incoming) -> Response {
    if request.header("x-api-token") != Some(TOKEN) {
        return unauthorized();
    }
    if request.method != "GET" {
        return method_not_allowed();
    }
    let Some(segments) = request.segments_after("/api/v1/") else {
        return failure(StatusCode::NOT_FOUND, "Unknown method .", None);
    };
    match segments.as_slice() {
        ["users", id] => {
            if let Some(canned) = shared.canned(id) {
                return render(shared, &canned, Target::User(id)).await;
            }
            match shared.user(id) {
                Some(user) => crate::json(
                    StatusCode::OK,
                    json!({ "success": true, "data": user_data(id, &user) }),
                ),
                None => not_found(Target::User(id)),
            }
        }
        _ => failure(StatusCode::NOT_FOUND, "Unknown method .", None),
    }
}

fn user_data(id: &str, user: &FakeUser) -> Value {
    json!({
        "id": numeric(id),
        "name": user.full_name(),
        "default_currency": "USD",
        "locale": "en_US",
        "lang": 1,
        "email": user.email.clone().unwrap_or_default(),
        "phone": null,
        "activated": true,
        "last_login": "2024-02-03 09:15:44",
        "created": "2019-12-25 13:01:35",
        "modified": "2024-02-03 09:15:44",
        "has_created_company": false,
        "access": [{ "app": "sales", "admin": false, "permission_set_id": "62cc4d7f-4038-4352-abf3-a8c1c822b631" }],
        "active_flag": user.active,
        "timezone_name": "Europe/Tallinn",
        "timezone_offset": "+02:00",
        "role_id": 1,
        "icon_url": user.avatar_url,
        "is_you": false,
        "is_deleted": user.deleted,
    })
}

fn failure(status: StatusCode, error: &str, error_code: Option<u16>) -> Response {
    let mut body = json!({
        "success": false,
        "error": error,
        "error_info": ERROR_INFO,
        "data": null,
        "additional_data": null,
    });
    if let (Some(code), Some(object)) = (error_code, body.as_object_mut()) {
        object.insert("errorCode".to_owned(), Value::from(code));
    }
    crate::json(status, body)
}

pub(crate) fn not_found(target: Target<'_>) -> Response {
    let what = match target {
        Target::User(_) => "User not found",
        Target::Record(_, _) => "Item not found",
    };
    failure(StatusCode::NOT_FOUND, what, None)
}

pub(crate) fn unauthorized() -> Response {
    failure(StatusCode::UNAUTHORIZED, "unauthorized access", Some(401))
}

pub(crate) fn too_many_requests() -> Response {
    failure(
        StatusCode::TOO_MANY_REQUESTS,
        "Request over limit",
        Some(429),
    )
}
