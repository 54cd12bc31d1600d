//! Freshteam (`source: freshteam`). Freshteam's public API has no signed webhooks of its own;
//! change events are Freshworks *product events* (`onEmployeeCreate`, `onEmployeeUpdate`,
//! `onNewHireCreate`) that a marketplace app receives and relays here unchanged:
//! `{account_id, domain, event, region, timestamp, data: {employee: {…}}, iparams: {…}}`.
//!
//! `iparams` are the app's installation parameters, where API keys and shared secrets live:
//! they are dropped from the event's payload so no secret is stored with the event.
//!
//! The type is the event name as `{object}.{action}` in snake case (`onEmployeeUpdate` →
//! `employee.update`, `onNewHireCreate` → `new_hire.create`); a name not of that form is kept in
//! lower case. The dedupe key is the delivery id when the relay's signature scheme gives one,
//! else `{account_id}:{event}:{employee id}:{timestamp}`, all of which a re-sent event repeats.
//! `timestamp` is Unix time (seconds or milliseconds).
//!
//! Owners: the employee, named from the record. The address is `official_email` only: a
//! `personal_email` must never receive a work invitation. `deleted` makes the status Deleted
//! and `terminated` Terminated (a leaver); otherwise `status` (`active`, or `inactive` for long
//! leave) is used. A `draft` employee is not hired yet and concerns no one. `department_id` and
//! `branch_id` are ids, not names, so department and location stay unset.

use domain::{OwnerFacts, OwnerStatus};
use serde_json::{Map, Value};

use crate::fields;
use crate::{DeliveryHints, EventOwners, IncomingEvent, PayloadError};

/// `onEmployeeUpdate` → `employee.update`.
fn event_type(event: &str) -> String {
    let Some(rest) = event
        .strip_prefix("on")
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
    else {
        return event.to_lowercase();
    };
    // The action is the last capitalised word; what comes before it is the object.
    let Some(at) = rest
        .rfind(|c: char| c.is_ascii_uppercase())
        .filter(|at| *at > 0)
    else {
        return rest.to_lowercase();
    };
    let (object, action) = rest.split_at(at);
    let mut snake = String::with_capacity(object.len() + 4);
    for (i, c) in object.char_indices() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    format!("{snake}.{}", action.to_lowercase())
}

fn employee(payload: &Value) -> Result<&Map<String, Value>, PayloadError> {
    let data = fields::required_object(payload.get("data"), "data")?;
    fields::required_object(data.get("employee"), "data.employee")
}

pub(crate) fn split(
    body: &[u8],
    hints: &DeliveryHints<'_>,
) -> Result<Vec<IncomingEvent>, PayloadError> {
    let mut value = fields::parse_json(body)?;
    let Some(map) = value.as_object_mut() else {
        return Err(PayloadError::invalid(
            "a Freshteam product event is a JSON object",
        ));
    };
    map.remove("iparams");
    let event = fields::required_text(value.get("event"), "event")?;
    let occurred_at = fields::instant(value.get("timestamp"), "timestamp")?;
    let provider_event_id = match hints.delivery_id {
        Some(delivery) => delivery.to_owned(),
        None => {
            let account = fields::key_part(value.get("account_id"), "account_id")?;
            let timestamp = fields::key_part(value.get("timestamp"), "timestamp")?;
            let id = fields::required_id(employee(&value)?.get("id"), "data.employee.id")?;
            format!("{account}:{event}:{id}:{timestamp}")
        }
    };
    Ok(vec![IncomingEvent {
        provider_event_id,
        event_type: event_type(&event),
        occurred_at,
        payload: value,
    }])
}

/// The employee one product event is about.
pub(crate) fn owners(payload: &Value) -> Result<EventOwners, PayloadError> {
    let employee = employee(payload)?;
    let text = |field: &str| fields::text(employee.get(field), &format!("data.employee.{field}"));
    let flag = |field: &str| fields::flag(employee.get(field), &format!("data.employee.{field}"));
    let external_id = fields::required_id(employee.get("id"), "data.employee.id")?;
    if flag("draft")? == Some(true) {
        return Ok(EventOwners::NoOwner(
            "a draft employee is not hired yet".to_owned(),
        ));
    }
    let status = if flag("deleted")? == Some(true) {
        Some(OwnerStatus::Deleted)
    } else if flag("terminated")? == Some(true) {
        Some(OwnerStatus::Terminated)
    } else {
        match text("status")?.map(|s| s.to_ascii_lowercase()).as_deref() {
            None => None,
            Some("active") => Some(OwnerStatus::Active),
            Some("inactive") => Some(OwnerStatus::Inactive),
            Some(_) => {
                return Err(PayloadError::invalid(
                    "data.employee.status must be active or inactive",
                ));
            }
        }
    };
    Ok(EventOwners::Named(vec![OwnerFacts {
        external_id,
        email: text("official_email")?,
        first_name: text("first_name")?,
        last_name: text("last_name")?,
        avatar_url: None,
        status,
        member_type: None,
        employee_ids: fields::id(employee.get("employee_id"), "data.employee.employee_id")?
            .into_iter()
            .collect(),
        title: text("designation")?,
        department: None,
        location: None,
    }]))
}

#[cfg(test)]
mod tests {
    use domain::Timestamp;
    use serde_json::json;

    use super::*;

    /// The documented employee example, wrapped in the product event that carries it.
    fn product_event(event: &str) -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/payloads/freshteam-employee.json"
        ))
        .unwrap();
        let sample: Value = serde_json::from_str(&text).unwrap();
        json!({"account_id": 81_234, "domain": "acme.freshteam.com", "event": event,
            "region": "US", "timestamp": 1_735_689_600,
            "data": {"employee": sample["example"].clone()},
            "iparams": {"api_key": "installation-secret"}})
    }

    fn one(body: &Value) -> IncomingEvent {
        let mut events = split(body.to_string().as_bytes(), &DeliveryHints::default()).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn the_sample_employee_is_priya() {
        let event = one(&product_event("onEmployeeUpdate"));
        assert_eq!(
            event.provider_event_id,
            "81234:onEmployeeUpdate:5000123456:1735689600"
        );
        assert_eq!(event.event_type, "employee.update");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::from_unix_seconds(1_735_689_600))
        );
        assert!(
            event.payload.get("iparams").is_none(),
            "secrets are not kept"
        );
        let EventOwners::Named(owners) = owners(&event.payload).unwrap() else {
            panic!("the employee is named")
        };
        assert_eq!(owners.len(), 1);
        let priya = &owners[0];
        assert_eq!(priya.external_id, "5000123456");
        assert_eq!(priya.employee_ids, vec!["EMP-0042".to_owned()]);
        assert_eq!(priya.email.as_deref(), Some("priya.nair@example.com"));
        assert_eq!(priya.first_name.as_deref(), Some("Priya"));
        assert_eq!(priya.last_name.as_deref(), Some("Nair"));
        assert_eq!(priya.title.as_deref(), Some("Field Technician"));
        assert_eq!(priya.status, Some(OwnerStatus::Active));
        assert_eq!(priya.department, None);
    }

    #[test]
    fn names_types_and_keys() {
        assert_eq!(event_type("onEmployeeCreate"), "employee.create");
        assert_eq!(event_type("onNewHireCreate"), "new_hire.create");
        assert_eq!(event_type("custom"), "custom");
        assert_eq!(event_type("onX"), "x");
        let event = split(
            product_event("onEmployeeCreate").to_string().as_bytes(),
            &DeliveryHints {
                delivery_id: Some("relay-7"),
            },
        )
        .unwrap();
        assert_eq!(event[0].provider_event_id, "relay-7");
    }

    #[test]
    fn leavers_deletions_and_drafts() {
        let with = |field: &str, value: Value| {
            let mut body = product_event("onEmployeeUpdate");
            body["data"]["employee"][field] = value;
            owners(&one(&body).payload).unwrap()
        };
        let status = |owners: EventOwners| match owners {
            EventOwners::Named(owners) => owners[0].status,
            other => panic!("named: {other:?}"),
        };
        assert_eq!(
            status(with("terminated", json!(true))),
            Some(OwnerStatus::Terminated)
        );
        assert_eq!(
            status(with("deleted", json!(true))),
            Some(OwnerStatus::Deleted)
        );
        assert_eq!(
            status(with("status", json!("inactive"))),
            Some(OwnerStatus::Inactive)
        );
        assert_eq!(
            with("draft", json!(true)),
            EventOwners::NoOwner("a draft employee is not hired yet".to_owned())
        );
        // Without an official address there is none: the personal one is never used.
        let EventOwners::Named(owners) = with("official_email", json!(null)) else {
            panic!("named")
        };
        assert_eq!(owners[0].email, None);
    }

    #[test]
    fn malformed_events_name_the_field() {
        let with = |field: &str, value: Value| {
            let mut body = product_event("onEmployeeUpdate");
            body["data"]["employee"][field] = value;
            body
        };
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for (body, expected) in [
            ("[]".to_owned(), "a JSON object"),
            (json!({"event": "onEmployeeUpdate", "account_id": 1, "timestamp": 1}).to_string(), "data is required"),
            (json!({"account_id": 1, "timestamp": 1, "data": {"employee": {"id": 1}}}).to_string(), "event is required"),
            (json!({"event": "e", "timestamp": 1, "data": {"employee": {"id": 1}}}).to_string(), "account_id is required"),
            (json!({"event": "e", "account_id": 1, "data": {"employee": {"id": 1}}}).to_string(), "timestamp is required"),
            (json!({"event": "e", "account_id": 1, "timestamp": "x", "data": {"employee": {"id": 1}}}).to_string(), "timestamp"),
            (with("id", json!(null)).to_string(), "data.employee.id is required"),
            (format!(r#"{{"event": "e", "data": {deep}}}"#), "recursion limit"),
        ] {
            let err = split(body.as_bytes(), &DeliveryHints::default()).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        for (body, expected) in [
            (
                with("official_email", json!(5)),
                "data.employee.official_email must be a string",
            ),
            (
                with("terminated", json!("yes")),
                "data.employee.terminated must be true or false",
            ),
            (
                with("status", json!("on leave")),
                "data.employee.status must be active or inactive",
            ),
            (
                with("first_name", json!("Pri\u{0}ya")),
                "data.employee.first_name must not contain U+0000",
            ),
            (
                with("employee_id", json!([1])),
                "data.employee.employee_id must be a string or an integer",
            ),
        ] {
            let err = owners(&body).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
    }
}
