//! ConnectWise PSA REST API 3.0 members, Basic `companyId+publicKey:privateKey` plus `clientId`,
//! errors `{code, message}`. <https://developer.connectwise.com/Products/Manage/REST>.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::{FakeUser, Incoming, Shared, Target, method_not_allowed, numeric, render};

pub(crate) const BASE_PATH: &str = "/v4_6_release/apis/3.0";
pub(crate) const COMPANY_ID: &str = "fakeco";
pub(crate) const PUBLIC_KEY: &str = "5QBrF9Eobsojjl19";
pub(crate) const PRIVATE_KEY: &str = "gNfvfMdPxIAPOIvB";
pub(crate) const CLIENT_ID: &str = "00000000-fake-4c1e-9d1d-0000c0ffee00";

pub(crate) async fn handle(shared: &Shared, request: &Incoming) -> Response {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{COMPANY_ID}+{PUBLIC_KEY}:{PRIVATE_KEY}"))
    );
    if request.header("authorization") != Some(expected.as_str())
        || request.header("clientid") != Some(CLIENT_ID)
    {
        return unauthorized();
    }
    if request.method != "GET" {
        return method_not_allowed();
    }
    let Some(segments) = request.segments_after(BASE_PATH) else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested URL was not found",
        );
    };
    match segments.as_slice() {
        ["system", "members", id] => {
            if let Some(canned) = shared.canned(id) {
                return render(shared, &canned, Target::User(id)).await;
            }
            match shared.user(id) {
                Some(user) => crate::json(StatusCode::OK, member(id, &user)),
                None => not_found(Target::User(id)),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested URL was not found",
        ),
    }
}

fn reference(id: u64, name: Option<&String>) -> Value {
    name.map_or(
        Value::Null,
        |name| json!({ "id": id, "name": name, "_info": {} }),
    )
}

fn member(id: &str, user: &FakeUser) -> Value {
    json!({
        "id": numeric(id),
        "identifier": user.employee_id.clone().unwrap_or_else(|| format!("member{id}")),
        "firstName": user.first_name,
        "lastName": user.last_name,
        "primaryEmail": user.email,
        "officeEmail": user.email,
        "inactiveFlag": !user.active,
        "licenseClass": user.member_type.clone().unwrap_or_else(|| "F".to_owned()),
        "title": user.title,
        "defaultDepartment": reference(10, user.department.as_ref()),
        "defaultLocation": reference(2, user.location.as_ref()),
        "adminFlag": false,
        "hireDate": "2019-12-25T00:00:00Z",
        "_info": { "lastUpdated": "2024-02-03T09:15:44Z", "updatedBy": "fakeco" },
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    crate::json(status, json!({ "code": code, "message": message }))
}

pub(crate) fn not_found(target: Target<'_>) -> Response {
    let message = match target {
        Target::User(id) => format!("Member Id {id} not found"),
        Target::Record(object, id) => format!("{object} {id} not found"),
    };
    error(StatusCode::NOT_FOUND, "NotFound", &message)
}

pub(crate) fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "Incorrect public/private key or clientId",
    )
}

pub(crate) fn too_many_requests() -> Response {
    error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Too many requests, please slow down",
    )
}
