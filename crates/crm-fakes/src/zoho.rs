//! Zoho CRM API v8: records by id with `?fields=Owner`, users by id,
//! `Authorization: Zoho-oauthtoken …`, errors `{code, details, message, status}`, `204` for no
//! data. <https://www.zoho.com/crm/developer/docs/api/v8/get-records.html>,
//! <https://www.zoho.com/crm/developer/docs/api/v8/get-users.html>,
//! <https://www.zoho.com/crm/developer/docs/api/v8/status-codes.html>.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{FakeUser, Incoming, Shared, Target, method_not_allowed, render};

pub(crate) const BASE_PATH: &str = "/crm/v8";
pub(crate) const TOKEN: &str = "1000.fakezoho41d9c2d1.8fccfake125f";

pub(crate) async fn handle(shared: &Shared, request: &Incoming) -> Response {
    match request.header("authorization") {
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "AUTHENTICATION_FAILURE",
                "Authentication failed",
            );
        }
        Some(value) if value != format!("Zoho-oauthtoken {TOKEN}") => return unauthorized(),
        Some(_) => {}
    }
    if request.method != "GET" {
        return method_not_allowed();
    }
    let Some(segments) = request.segments_after(BASE_PATH) else {
        return error(
            StatusCode::NOT_FOUND,
            "INVALID_URL_PATTERN",
            "Please check if the URL trying to access is a correct one",
        );
    };
    match segments.as_slice() {
        ["users", id] => {
            if let Some(canned) = shared.canned(id) {
                return render(shared, &canned, Target::User(id)).await;
            }
            match shared.user(id) {
                Some(user) => crate::json(
                    StatusCode::OK,
                    json!({
                        "users": [user_json(id, &user)],
                        "info": { "per_page": 200, "count": 1, "page": 1, "more_records": false },
                    }),
                ),
                None => not_found(),
            }
        }
        [module, id] => {
            if let Some(canned) = shared.canned(id) {
                return render(shared, &canned, Target::Record(module, id)).await;
            }
            let state = shared.lock();
            let Some(owners) = state.records.get(&((*module).to_owned(), (*id).to_owned())) else {
                return not_found();
            };
            let owner = owners.first().map(|owner_id| {
                let user = state.users.get(owner_id).cloned().unwrap_or_default();
                json!({ "name": user.full_name(), "id": owner_id, "email": user.email })
            });
            crate::json(
                StatusCode::OK,
                json!({ "data": [{ "Owner": owner, "id": id }] }),
            )
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "INVALID_URL_PATTERN",
            "Please check if the URL trying to access is a correct one",
        ),
    }
}

fn user_json(id: &str, user: &FakeUser) -> Value {
    let status = if user.deleted {
        "deleted"
    } else if user.active {
        "active"
    } else {
        "disabled"
    };
    json!({
        "id": id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "full_name": user.full_name(),
        "email": user.email,
        "status": status,
        "confirm": true,
        "role": user.title.as_ref().map(|name| json!({ "name": name, "id": "1386586000000026008" })),
        "profile": { "name": user.member_type.clone().unwrap_or_else(|| "Standard".to_owned()), "id": "1386586000000026014" },
        "city": user.location,
        "country": null,
        "language": "en_US",
        "locale": "en_US",
        "time_zone": "Europe/Tallinn",
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    crate::json(
        status,
        json!({ "code": code, "details": {}, "message": message, "status": "error" }),
    )
}

/// Zoho answers `204 No Content` when there is no data for the given input.
pub(crate) fn not_found() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
        "invalid oauth token",
    )
}

pub(crate) fn too_many_requests() -> Response {
    error(
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_REQUESTS",
        "You have made too many requests within a short period of time.",
    )
}
