//! Salesforce REST API: sObject rows by id with `?fields=`, OAuth bearer tokens, error arrays.
//! <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm>.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::{FakeUser, Incoming, Shared, Target, method_not_allowed, render};

pub(crate) const TOKEN: &str = "00Dfake0000000001!AQ0AQFakeSalesforceSession";
pub(crate) const SOBJECTS: &str = "/services/data/v62.0/sobjects/";

pub(crate) async fn handle(shared: &Shared, request: &Incoming) -> Response {
    if request.bearer() != Some(TOKEN) {
        return unauthorized();
    }
    if request.method != "GET" {
        return method_not_allowed();
    }
    let Some(segments) = request.segments_after(SOBJECTS) else {
        return errors(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    };
    match segments.as_slice() {
        ["User", id] => {
            if let Some(canned) = shared.canned(id) {
                return render(shared, &canned, Target::User(id)).await;
            }
            match shared.user(id) {
                Some(user) => crate::json(StatusCode::OK, user_row(id, &user)),
                None => not_found(),
            }
        }
        [object, id] => {
            if let Some(canned) = shared.canned(id) {
                return render(shared, &canned, Target::Record(object, id)).await;
            }
            let owners = shared
                .lock()
                .records
                .get(&((*object).to_owned(), (*id).to_owned()))
                .cloned();
            match owners {
                Some(owners) => crate::json(
                    StatusCode::OK,
                    json!({
                        "attributes": {
                            "type": object,
                            "url": format!("{SOBJECTS}{object}/{id}"),
                        },
                        "Id": id,
                        "OwnerId": owners.first(),
                    }),
                ),
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn user_row(id: &str, user: &FakeUser) -> Value {
    json!({
        "attributes": { "type": "User", "url": format!("{SOBJECTS}User/{id}") },
        "Id": id,
        "Email": user.email,
        "FirstName": user.first_name,
        "LastName": user.last_name,
        "IsActive": user.active,
        "Title": user.title,
        "Department": user.department,
        "City": user.location,
        "EmployeeNumber": user.employee_id,
        "FullPhotoUrl": user.avatar_url,
        "UserType": user.member_type.clone().unwrap_or_else(|| "Standard".to_owned()),
    })
}

fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    crate::json(status, json!([{ "message": message, "errorCode": code }]))
}

pub(crate) fn not_found() -> Response {
    errors(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

pub(crate) fn unauthorized() -> Response {
    errors(
        StatusCode::UNAUTHORIZED,
        "INVALID_SESSION_ID",
        "Session expired or invalid",
    )
}

pub(crate) fn request_limit_exceeded() -> Response {
    errors(
        StatusCode::FORBIDDEN,
        "REQUEST_LIMIT_EXCEEDED",
        "TotalRequests Limit exceeded.",
    )
}

pub(crate) fn too_many_requests() -> Response {
    errors(
        StatusCode::TOO_MANY_REQUESTS,
        "REQUEST_LIMIT_EXCEEDED",
        "Too many requests.",
    )
}
