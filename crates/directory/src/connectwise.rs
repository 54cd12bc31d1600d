//! ConnectWise PSA (Manage): a member by id.
//!
//! - REST API 3.0, `GET {site}/v4_6_release/apis/3.0/system/members/{id}` → Member `{id,
//!   identifier, firstName, lastName, primaryEmail, officeEmail, inactiveFlag, licenseClass
//!   ("F" full, "A" API, "C" StreamlineIT, "X" subcontractor), title, workRole {name},
//!   defaultDepartment {name}, defaultLocation {name}, employeeIdentifer, …}`:
//!   <https://developer.connectwise.com/Products/Manage/REST> (System → Members).
//! - Auth: `Authorization: Basic base64("{companyId}+{publicKey}:{privateKey}")` plus the
//!   integration's `clientId` header (credentials `company_id`, `public_key`, `private_key`,
//!   `client_id`); the base URL (the site's API root) is required.
//! - Errors: `{code, message, errors?}` (`NotFound`, `Unauthorized`…).

use domain::{OwnerFacts, OwnerStatus};
use serde_json::Value;

use crate::LookupError;
use crate::call::{self, Call, IdRule, Reply, flag, id_text, secret_header, text};

const CREDENTIALS: &str = "API keys (company_id, public_key, private_key) or client_id";

pub(crate) async fn owner(call: &Call<'_>, id: &str) -> Result<OwnerFacts, LookupError> {
    let id = call.checked_id("member", id, IdRule::Digits)?;
    let company = call.credential("company_id")?;
    let public_key = call.credential("public_key")?;
    let private_key = call.credential("private_key")?;
    let client_id = secret_header(call.credential("client_id")?)?;
    let base = call.base_url(None)?;
    let what = format!("member {id}");
    let url = call::url(&base, &["system", "members", id], &[]);
    let request = call
        .client()
        .get(url)
        .basic_auth(format!("{company}+{public_key}"), Some(private_key))
        .header("clientId", client_id);
    let reply = call.send(request).await?;
    check(call, &reply, &what)?;
    let body = call.json(&reply, &what)?;
    parse_member(call, &body, &what)
}

fn parse_member(call: &Call<'_>, body: &Value, what: &str) -> Result<OwnerFacts, LookupError> {
    let external_id = id_text(body, "/id").ok_or_else(|| call.shape(what, "no id"))?;
    let mut employee_ids: Vec<String> = text(body, "/identifier").into_iter().collect();
    // The API spells it `employeeIdentifer`.
    if let Some(employee) = text(body, "/employeeIdentifer")
        && !employee_ids.contains(&employee)
    {
        employee_ids.push(employee);
    }
    let status = flag(body, "/inactiveFlag").map(|inactive| {
        if inactive {
            OwnerStatus::Inactive
        } else {
            OwnerStatus::Active
        }
    });
    Ok(OwnerFacts {
        external_id,
        email: text(body, "/primaryEmail").or_else(|| text(body, "/officeEmail")),
        first_name: text(body, "/firstName"),
        last_name: text(body, "/lastName"),
        avatar_url: None,
        status,
        member_type: text(body, "/licenseClass"),
        employee_ids,
        title: text(body, "/title").or_else(|| text(body, "/workRole/name")),
        department: text(body, "/defaultDepartment/name"),
        location: text(body, "/defaultLocation/name"),
    })
}

fn check(call: &Call<'_>, reply: &Reply, what: &str) -> Result<(), LookupError> {
    let message = reply.value().and_then(|body| text(&body, "/message"));
    call.check(reply, what, CREDENTIALS, message.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_falls_back_to_the_work_role() {
        let directory = crate::Directory::new(crate::DirectoryOptions::default());
        let call = Call::new(
            &directory,
            domain::IntegrationId::new(),
            "ConnectWise members API",
            None,
        )
        .unwrap();
        let body = serde_json::json!({
            "id": 7,
            "identifier": "alee",
            "employeeIdentifer": "E-17",
            "firstName": "Ada",
            "lastName": "Lee",
            "officeEmail": "ada@example.com",
            "inactiveFlag": false,
            "licenseClass": "F",
            "workRole": { "id": 3, "name": "Engineer" },
        });
        let member = parse_member(&call, &body, "member 7").unwrap();
        assert_eq!(member.external_id, "7");
        assert_eq!(member.email.as_deref(), Some("ada@example.com"));
        assert_eq!(member.title.as_deref(), Some("Engineer"));
        assert_eq!(
            member.employee_ids,
            vec!["alee".to_owned(), "E-17".to_owned()]
        );
        assert_eq!(member.status, Some(OwnerStatus::Active));
    }
}
