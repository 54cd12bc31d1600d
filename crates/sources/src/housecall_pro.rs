//! Housecall Pro webhooks (`source: housecall-pro`): one event per request, a JSON object naming
//! the event in `event` (`job.created`, `job.scheduled`, `job.on_my_way`, `job.started`,
//! `job.completed`, `job.canceled`, `job.deleted`, `job.appointment.*`, `estimate.*`,
//! `customer.*`, `lead.*`, `invoice.*`…) with the company's id and the whole record under the
//! key of its kind: `{"event": "job.started", "company_id": "…", "job": {…}}`.
//!
//! What this is based on. Housecall Pro's own webhook reference (docs.housecallpro.com) was not
//! in the material available, so the shape comes from public, third-party evidence:
//! - payloads captured from real accounts, kept as samples by an integrator
//!   (github.com/wolfgodmessi12/CRM, `app/controllers/integrations/housecall/
//!   webhook_samples_controller.rb`): `job.created` and `job.started` carry `job` with `id`,
//!   `work_status`, `schedule`, `work_timestamps`, `created_at`/`updated_at` (missing from the
//!   `job.created` capture) and `assigned_employees: [{id: "pro_…", first_name, last_name,
//!   email, mobile_number, color_hex, avatar_url, role: "field tech", tags, permissions,
//!   company_id}]`; `job.appointment.*` carry `appointment: {id, job_id, start_time,
//!   end_time, dispatched_employees: [same employee shape]}`; `estimate.*` carry `estimate`;
//! - the same job object in the public API (`GET /jobs`, e.g. the JSON Schema in
//!   github.com/api-evangelist/housecall-pro and a recorded list response in
//!   github.com/posholokia/vasthoodcleaning `src/services/crm/house_mock/mock/jobs.py`);
//! - event names from Ampersand's connector guide (docs.withampersand.com/provider-guides/
//!   housecallPro) and Rollout's API guide (rollout.com/integration-guides/housecall-pro);
//! - a receiver's notes that saving the webhook URL in Housecall Pro's settings sends one test
//!   POST with the body `{"foo":"bar"}`: no `event`, no record.
//!
//! The body has no event id and no delivery time, and no delivery-id header is documented. The
//! dedupe key is the delivery id when the verifier found one; otherwise it is
//! `{event}:{record id}:{record updated_at}` (the job's, or the appointment's for
//! `job.appointment.*`), which a retry repeats and a later change of the same record does not.
//! Without `updated_at` (as in the captured `job.created`) it is `{event}:{record id}`: one
//! event of each kind per record, which is right for creations; a repeated `job.scheduled` of
//! the same job without a timestamp is then taken for a duplicate. `occurred_at` is the
//! record's `updated_at` when there is one.
//!
//! The setup test (an object with no `event` and no record) is acknowledged with no event.
//!
//! Owners: every employee assigned to a job (`job.assigned_employees`), or dispatched to an
//! appointment (`appointment.dispatched_employees`), each resolved on its own, at most
//! [`MAX_OWNERS`]. A deleted job, a discarded appointment, unassigned pros, a job with no one
//! assigned and every event that is not about a job concern no one.

use domain::OwnerFacts;
use serde_json::{Map, Value};

use crate::fields;
use crate::{DeliveryHints, EventOwners, IncomingEvent, MAX_OWNERS, PayloadError};

/// Keys under which an event carries its record; a body with none of them and no `event` is
/// the setup test.
const RECORD_KEYS: &[&str] = &[
    "job",
    "appointment",
    "estimate",
    "customer",
    "lead",
    "invoice",
    "employee",
    "data",
];

/// The key of the record an event is about: `appointment` for `job.appointment.*`, else the
/// event's first segment (`job.started` → `job`).
fn record_key(event: &str) -> &str {
    if event.starts_with("job.appointment.") {
        return "appointment";
    }
    event.split('.').next().unwrap_or(event)
}

pub(crate) fn split(
    body: &[u8],
    hints: &DeliveryHints<'_>,
) -> Result<Vec<IncomingEvent>, PayloadError> {
    let value = fields::parse_json(body)?;
    let Value::Object(map) = &value else {
        return Err(PayloadError::invalid(
            "a Housecall Pro webhook body is a JSON object",
        ));
    };
    if map.get("event").is_none() && !RECORD_KEYS.iter().any(|key| map.contains_key(*key)) {
        // The test POST sent when the URL is saved: answered 200, nothing to queue.
        return Ok(Vec::new());
    }
    let event = fields::required_text(map.get("event"), "event")?;
    let key = record_key(&event);
    let record = fields::object(map.get(key), key)?;
    let updated = match record {
        Some(record) => record.get("updated_at").filter(|v| !v.is_null()),
        None => None,
    };
    let occurred_at = fields::instant(updated, &format!("{key}.updated_at"))?;
    let provider_event_id = match hints.delivery_id {
        Some(delivery) => delivery.to_owned(),
        None => {
            let record = record.ok_or_else(|| {
                PayloadError::invalid(format!(
                    "{key} is required: a {event} event without its record has no dedupe key"
                ))
            })?;
            let id = fields::required_id(record.get("id"), &format!("{key}.id"))?;
            match updated {
                Some(at) => {
                    let at = fields::key_part(Some(at), &format!("{key}.updated_at"))?;
                    format!("{event}:{id}:{at}")
                }
                None => format!("{event}:{id}"),
            }
        }
    };
    Ok(vec![IncomingEvent {
        provider_event_id,
        event_type: event,
        occurred_at,
        payload: value,
    }])
}

/// Who one webhook is about.
pub(crate) fn owners(payload: &Value) -> Result<EventOwners, PayloadError> {
    let event = fields::required_text(payload.get("event"), "event")?;
    let (key, list) = match event.as_str() {
        "job.deleted" => {
            return Ok(EventOwners::NoOwner(
                "a deleted Housecall Pro job names no one to provision".to_owned(),
            ));
        }
        "job.appointment.appointment_discarded" | "job.appointment.appointment_pros_unassigned" => {
            return Ok(EventOwners::NoOwner(format!(
                "Housecall Pro {event}: the pros are taken off the appointment, not given work"
            )));
        }
        e if e.starts_with("job.appointment.") => ("appointment", "dispatched_employees"),
        e if e.starts_with("job.") => ("job", "assigned_employees"),
        _ => {
            return Ok(EventOwners::NoOwner(format!(
                "Housecall Pro {event} events are not about a job"
            )));
        }
    };
    let record = fields::required_object(payload.get(key), key)?;
    let path = format!("{key}.{list}");
    let employees = fields::array(record.get(list), &path)?
        .map(Vec::as_slice)
        .unwrap_or_default();
    if employees.is_empty() {
        return Ok(EventOwners::NoOwner(format!(
            "no employee is assigned to the {key}"
        )));
    }
    if employees.len() > MAX_OWNERS {
        return Err(PayloadError::invalid(format!(
            "{path} holds more than {MAX_OWNERS} entries"
        )));
    }
    employees
        .iter()
        .enumerate()
        .map(|(i, employee)| {
            let at = format!("{path}[{i}]");
            let employee = fields::required_object(Some(employee), &at)?;
            self::employee(employee, &at)
        })
        .collect::<Result<_, _>>()
        .map(EventOwners::Named)
}

/// One employee (`pro_…`) as owner facts.
fn employee(employee: &Map<String, Value>, at: &str) -> Result<OwnerFacts, PayloadError> {
    let text = |field: &str| fields::text(employee.get(field), &format!("{at}.{field}"));
    // Employees without a photo carry the app's relative placeholder
    // (`/assets/add_image_thumb.png`), which is no avatar.
    let avatar_url =
        text("avatar_url")?.filter(|url| url.starts_with("https://") || url.starts_with("http://"));
    Ok(OwnerFacts {
        external_id: fields::required_id(employee.get("id"), &format!("{at}.id"))?,
        email: text("email")?,
        first_name: text("first_name")?,
        last_name: text("last_name")?,
        avatar_url,
        // The payload says nothing of the employee's standing; the directory may.
        status: None,
        // `role` is the kind of account (`field tech`, `office staff`, `admin`), not a title.
        member_type: text("role")?,
        ..OwnerFacts::default()
    })
}

#[cfg(test)]
mod tests {
    use domain::Timestamp;
    use serde_json::json;

    use super::*;

    fn employee(id: &str, first: &str, last: &str) -> Value {
        json!({"id": id, "first_name": first, "last_name": last,
            "email": format!("{}@example.com", first.to_lowercase()),
            "mobile_number": "5165150124", "color_hex": "0089d1",
            "avatar_url": "/assets/add_image_thumb.png", "role": "field tech", "tags": [],
            "permissions": {"is_admin": false, "can_see_full_schedule": true},
            "company_id": "20a987bc-44ea-4315-be8f-f777adedb627"})
    }

    /// A `job.started` shaped like the captured one (values invented).
    fn job_started() -> Value {
        let mut adan = employee("pro_e7bda6d1911b41ebafc5e5c5abb6b680", "Adan", "G.");
        adan["avatar_url"] = json!(
            "https://housecall-attachments-production.s3.amazonaws.com/service_pros/avatars/000/449/927/thumb/avatar_1666367314.png?1666367314"
        );
        json!({"event": "job.started", "company_id": "ae8afda8-3b9d-45d5-a5f2-307b2abb3816",
            "job": {"id": "job_54926b4572c74c328737f3d922b23b4c", "invoice_number": "58704",
                "description": "Visit #1", "customer": {"id": "cus_0b2b", "first_name": "Kasia"},
                "work_status": "in progress",
                "work_timestamps": {"on_my_way_at": "2023-11-29T14:25:08Z",
                    "started_at": "2023-11-29T15:06:48Z", "completed_at": null},
                "schedule": {"scheduled_start": "2023-11-29T15:00:00Z",
                    "scheduled_end": "2023-11-29T16:00:00Z", "arrival_window": 240},
                "assigned_employees": [adan, employee("pro_2", "Maria", "Lopez")],
                "created_at": "2023-11-27T16:44:35Z", "updated_at": "2023-11-29T14:25:09Z"}})
    }

    fn one(body: &Value, delivery_id: Option<&str>) -> IncomingEvent {
        let mut events =
            split(body.to_string().as_bytes(), &DeliveryHints { delivery_id }).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn a_started_job_names_each_assigned_employee() {
        let event = one(&job_started(), None);
        assert_eq!(
            event.provider_event_id,
            "job.started:job_54926b4572c74c328737f3d922b23b4c:2023-11-29T14:25:09Z"
        );
        assert_eq!(event.event_type, "job.started");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::parse_rfc3339("2023-11-29T14:25:09Z").unwrap())
        );
        let EventOwners::Named(owners) = owners(&event.payload).unwrap() else {
            panic!("a job names its employees")
        };
        assert_eq!(owners.len(), 2);
        let adan = &owners[0];
        assert_eq!(adan.external_id, "pro_e7bda6d1911b41ebafc5e5c5abb6b680");
        assert_eq!(adan.first_name.as_deref(), Some("Adan"));
        assert_eq!(adan.last_name.as_deref(), Some("G."));
        assert_eq!(adan.email.as_deref(), Some("adan@example.com"));
        assert_eq!(adan.member_type.as_deref(), Some("field tech"));
        assert!(
            adan.avatar_url
                .as_deref()
                .unwrap()
                .starts_with("https://housecall-attachments")
        );
        assert_eq!(adan.status, None);
        let maria = &owners[1];
        assert_eq!(maria.external_id, "pro_2");
        assert_eq!(maria.avatar_url, None, "the placeholder is no avatar");
        // With a delivery id, that is the key.
        assert_eq!(one(&job_started(), Some("d-1")).provider_event_id, "d-1");
    }

    #[test]
    fn a_created_job_without_updated_at_is_keyed_on_the_job() {
        let mut body = job_started();
        body["event"] = json!("job.created");
        body["job"].as_object_mut().unwrap().remove("updated_at");
        let event = one(&body, None);
        assert_eq!(
            event.provider_event_id,
            "job.created:job_54926b4572c74c328737f3d922b23b4c"
        );
        assert_eq!(event.occurred_at, None);
    }

    #[test]
    fn appointments_name_the_dispatched_employees() {
        let body = json!({"event": "job.appointment.appointment_pros_assigned",
            "company_id": "5f51", "appointment": {"id": "appt_4210", "job_id": "job_16b6",
                "start_time": "2023-10-30T21:00:00Z", "end_time": "2023-10-30T23:00:00Z",
                "dispatched_employees": [employee("pro_c4e0", "Jose", "Quintero")]}});
        let event = one(&body, None);
        assert_eq!(
            event.provider_event_id,
            "job.appointment.appointment_pros_assigned:appt_4210"
        );
        let EventOwners::Named(dispatched) = owners(&event.payload).unwrap() else {
            panic!("named")
        };
        assert_eq!(dispatched[0].external_id, "pro_c4e0");
        let mut unassigned = body.clone();
        unassigned["event"] = json!("job.appointment.appointment_pros_unassigned");
        assert!(matches!(
            owners(&unassigned).unwrap(),
            EventOwners::NoOwner(_)
        ));
    }

    #[test]
    fn events_without_work_concern_no_one() {
        let mut nobody = job_started();
        nobody["job"]["assigned_employees"] = json!([]);
        assert_eq!(
            owners(&nobody).unwrap(),
            EventOwners::NoOwner("no employee is assigned to the job".to_owned())
        );
        let mut deleted = job_started();
        deleted["event"] = json!("job.deleted");
        assert!(
            matches!(owners(&deleted).unwrap(), EventOwners::NoOwner(r) if r.contains("deleted"))
        );
        let estimate = json!({"event": "estimate.created", "company_id": "c",
            "estimate": {"id": "csr_b27b", "updated_at": "2023-11-29T19:27:19Z",
                "assigned_employees": [employee("pro_96f0", "Harvey", "Aleman")]}});
        let event = one(&estimate, None);
        assert_eq!(
            event.provider_event_id,
            "estimate.created:csr_b27b:2023-11-29T19:27:19Z"
        );
        assert_eq!(
            owners(&event.payload).unwrap(),
            EventOwners::NoOwner(
                "Housecall Pro estimate.created events are not about a job".to_owned()
            )
        );
    }

    #[test]
    fn the_setup_test_queues_nothing() {
        let events = split(br#"{"foo":"bar"}"#, &DeliveryHints::default()).unwrap();
        assert!(events.is_empty());
    }

    #[test]
    fn malformed_webhooks_name_the_field() {
        let hints = DeliveryHints::default();
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for (body, expected) in [
            ("[]".to_owned(), "a JSON object"),
            (r#"{"job": {"id": "j"}}"#.to_owned(), "event is required"),
            (
                r#"{"event": 5, "job": {}}"#.to_owned(),
                "event must be a string",
            ),
            (r#"{"event": "job.created"}"#.to_owned(), "job is required"),
            (
                r#"{"event": "job.created", "job": []}"#.to_owned(),
                "job must be an object",
            ),
            (
                r#"{"event": "job.created", "job": {"id": 1.5}}"#.to_owned(),
                "job.id must be a string or an integer",
            ),
            (
                r#"{"event": "job.created", "job": {"id": "j", "updated_at": "later"}}"#.to_owned(),
                "job.updated_at",
            ),
            (
                format!(r#"{{"event": "job.created", "job": {deep}}}"#),
                "recursion limit",
            ),
        ] {
            let err = split(body.as_bytes(), &hints).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        let with_employees = |employees: Value| {
            let mut body = job_started();
            body["job"]["assigned_employees"] = employees;
            body
        };
        let too_many = Value::Array(
            (0..=MAX_OWNERS)
                .map(|n| employee(&format!("pro_{n}"), "A", "B"))
                .collect(),
        );
        let mut nul = employee("pro_1", "A", "B");
        nul["last_name"] = json!("B\u{0}");
        let mut no_id = employee("pro_1", "A", "B");
        no_id.as_object_mut().unwrap().remove("id");
        let mut email_number = employee("pro_1", "A", "B");
        email_number["email"] = json!(5);
        for (employees, expected) in [
            (json!("pro_1"), "job.assigned_employees must be an array"),
            (json!([1]), "job.assigned_employees[0] must be an object"),
            (
                json!([employee("pro_0", "A", "B"), no_id]),
                "job.assigned_employees[1].id is required",
            ),
            (
                json!([email_number]),
                "job.assigned_employees[0].email must be a string",
            ),
            (
                json!([nul]),
                "job.assigned_employees[0].last_name must not contain U+0000",
            ),
            (too_many, "holds more than 100 entries"),
        ] {
            let err = owners(&with_employees(employees)).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        let exactly = Value::Array(
            (0..MAX_OWNERS)
                .map(|n| employee(&format!("pro_{n}"), "A", "B"))
                .collect(),
        );
        assert!(
            matches!(owners(&with_employees(exactly)).unwrap(), EventOwners::Named(o) if o.len() == MAX_OWNERS)
        );
    }
}
