//! Jobber webhooks (`source: jobber`): `{"data": {"webHookEvent": {topic, appId, accountId,
//! itemId, occurredAt}}}`, one event per request, ids only (Jobber's encoded ids,
//! base64 of `gid://Jobber/<Type>/<n>`).
//!
//! Apps created before December 2023 may receive the misspelled `occuredAt`; both spellings
//! are read. Jobber delivers at least once and sends no delivery id, so the dedupe key is
//! `{accountId}:{topic}:{itemId}:{occurredAt}` (the time as sent, byte for byte). The type is
//! the topic in lower case with its first `_` as `.`: `JOB_UPDATE` → `job.update`,
//! `VISIT_COMPLETE` → `visit.complete`.
//!
//! Owners: job and visit topics name the record, whose assigned users the directory reads
//! (`Records { object: "job" | "visit" }`); destroyed records and every other topic (clients,
//! quotes, invoices, app connections…) concern no one.

use serde_json::{Map, Value};

use crate::fields;
use crate::{EventOwners, IncomingEvent, PayloadError};

/// The `webHookEvent` object of a body.
fn hook_event(value: &Value) -> Result<&Map<String, Value>, PayloadError> {
    let data = fields::required_object(value.get("data"), "data")?;
    fields::required_object(data.get("webHookEvent"), "data.webHookEvent")
}

/// `occurredAt`, or the misspelling older apps receive.
fn occurred(event: &Map<String, Value>) -> Result<String, PayloadError> {
    match (event.get("occurredAt"), event.get("occuredAt")) {
        (Some(value), _) if !value.is_null() => {
            fields::required_text(Some(value), "data.webHookEvent.occurredAt")
        }
        (_, Some(value)) => fields::required_text(Some(value), "data.webHookEvent.occuredAt"),
        _ => Err(PayloadError::invalid(
            "data.webHookEvent.occurredAt is required",
        )),
    }
}

pub(crate) fn split(body: &[u8]) -> Result<Vec<IncomingEvent>, PayloadError> {
    let value = fields::parse_json(body)?;
    let event = hook_event(&value)?;
    let text = |field: &str| {
        fields::required_text(event.get(field), &format!("data.webHookEvent.{field}"))
    };
    let topic = text("topic")?;
    let account = text("accountId")?;
    let item = text("itemId")?;
    let occurred = occurred(event)?;
    let occurred_at = fields::instant(
        Some(&Value::String(occurred.clone())),
        "data.webHookEvent.occurredAt",
    )?;
    let event_type = match topic.to_lowercase().split_once('_') {
        Some((object, action)) => format!("{object}.{action}"),
        None => topic.to_lowercase(),
    };
    Ok(vec![IncomingEvent {
        provider_event_id: format!("{account}:{topic}:{item}:{occurred}"),
        event_type,
        occurred_at,
        payload: value,
    }])
}

/// Who one webhook is about.
pub(crate) fn owners(payload: &Value) -> Result<EventOwners, PayloadError> {
    let event = hook_event(payload)?;
    let topic = fields::required_text(event.get("topic"), "data.webHookEvent.topic")?;
    if topic.ends_with("_DESTROY") {
        return Ok(EventOwners::NoOwner(format!(
            "Jobber {topic}: the record is gone, no one to provision"
        )));
    }
    let object = if topic.starts_with("JOB_") {
        "job"
    } else if topic.starts_with("VISIT_") {
        "visit"
    } else {
        return Ok(EventOwners::NoOwner(format!(
            "Jobber {topic} events name no job or visit"
        )));
    };
    let item = fields::required_text(event.get("itemId"), "data.webHookEvent.itemId")?;
    Ok(EventOwners::Records {
        object: object.to_owned(),
        ids: vec![item],
    })
}

#[cfg(test)]
mod tests {
    use domain::Timestamp;
    use serde_json::json;

    use super::*;

    fn sample_body() -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/payloads/jobber-webhook-payload.json"
        ))
        .unwrap();
        let sample: Value = serde_json::from_str(&text).unwrap();
        sample["body"].clone()
    }

    fn one(body: &Value) -> IncomingEvent {
        let mut events = split(body.to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn with_topic(topic: &str) -> Value {
        let mut body = sample_body();
        body["data"]["webHookEvent"]["topic"] = json!(topic);
        body["data"]["webHookEvent"]["itemId"] = json!("Z2lkOi8vSm9iYmVyL1Zpc2l0LzIxNjA5MTE0MDE=");
        body
    }

    #[test]
    fn the_sample_is_a_client_creation_naming_no_one() {
        let event = one(&sample_body());
        assert_eq!(
            event.provider_event_id,
            "MQ==:CLIENT_CREATE:MQ==:2021-08-12T16:31:36-06:00"
        );
        assert_eq!(event.event_type, "client.create");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::parse_rfc3339("2021-08-12T22:31:36Z").unwrap())
        );
        assert_eq!(
            owners(&event.payload).unwrap(),
            EventOwners::NoOwner("Jobber CLIENT_CREATE events name no job or visit".to_owned())
        );
    }

    #[test]
    fn jobs_and_visits_name_their_record() {
        let visit = one(&with_topic("VISIT_COMPLETE"));
        assert_eq!(visit.event_type, "visit.complete");
        assert_eq!(
            owners(&visit.payload).unwrap(),
            EventOwners::Records {
                object: "visit".to_owned(),
                ids: vec!["Z2lkOi8vSm9iYmVyL1Zpc2l0LzIxNjA5MTE0MDE=".to_owned()]
            }
        );
        let job = one(&with_topic("JOB_UPDATE"));
        assert_eq!(job.event_type, "job.update");
        assert!(matches!(
            owners(&job.payload).unwrap(),
            EventOwners::Records { object, .. } if object == "job"
        ));
        for topic in [
            "JOB_DESTROY",
            "VISIT_DESTROY",
            "QUOTE_CREATE",
            "INVOICE_UPDATE",
            "APP_DISCONNECT",
        ] {
            let event = one(&with_topic(topic));
            let EventOwners::NoOwner(reason) = owners(&event.payload).unwrap() else {
                panic!("{topic} concerns no one")
            };
            assert!(reason.contains(topic), "{reason}");
        }
        assert_eq!(
            one(&with_topic("APP_DISCONNECT")).event_type,
            "app.disconnect"
        );
    }

    #[test]
    fn the_misspelled_time_of_older_apps_is_read() {
        let mut body = sample_body();
        let event = body["data"]["webHookEvent"].as_object_mut().unwrap();
        let at = event.remove("occurredAt").unwrap();
        event.insert("occuredAt".to_owned(), at);
        let event = one(&body);
        assert_eq!(
            event.provider_event_id,
            "MQ==:CLIENT_CREATE:MQ==:2021-08-12T16:31:36-06:00"
        );
        assert!(event.occurred_at.is_some());
    }

    #[test]
    fn malformed_webhooks_name_the_field() {
        let with = |field: &str, value: Value| {
            let mut body = sample_body();
            body["data"]["webHookEvent"][field] = value;
            body.to_string()
        };
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for (body, expected) in [
            ("{}".to_owned(), "data is required"),
            (
                r#"{"data": {"webHookEvent": []}}"#.to_owned(),
                "data.webHookEvent must be an object",
            ),
            (
                with("topic", json!(null)),
                "data.webHookEvent.topic is required",
            ),
            (
                with("itemId", json!(7)),
                "data.webHookEvent.itemId must be a string",
            ),
            (
                with("accountId", json!("M\u{0}==")),
                "data.webHookEvent.accountId must not contain U+0000",
            ),
            (with("occurredAt", json!(null)), "occurredAt is required"),
            (
                with("occurredAt", json!("yesterday")),
                "data.webHookEvent.occurredAt",
            ),
            (format!(r#"{{"data": {deep}}}"#), "recursion limit"),
        ] {
            let err = split(body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
    }
}
