//! rollcall's canonical JSON (`source: rollcall`): `id`, `type`, optional `occurred_at`, and an
//! `owner` object (or an `owners` array) whose `id` is required.

use domain::Timestamp;
use serde_json::{Map, Value};

use crate::{DeliveryHints, IncomingEvent, PayloadError};

fn object(body: &[u8]) -> Result<Map<String, Value>, PayloadError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(PayloadError::invalid("body must be a JSON object")),
        Err(err) => Err(PayloadError::NotJson(err.to_string())),
    }
}

fn required_text<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, PayloadError> {
    match map.get(field) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
        Some(Value::String(_)) => Err(PayloadError::invalid(format!("{field} must not be empty"))),
        Some(_) => Err(PayloadError::invalid(format!("{field} must be a string"))),
        None => Err(PayloadError::invalid(format!("{field} is required"))),
    }
}

/// The event in `body`; its owners are read by the caller, through the field mapping.
pub(crate) fn split(body: &[u8], hints: &DeliveryHints<'_>) -> Result<IncomingEvent, PayloadError> {
    let map = object(body)?;
    let id = required_text(&map, "id")?.to_owned();
    let event_type = required_text(&map, "type")?.to_owned();
    if id.len() > 256 || event_type.len() > 256 {
        return Err(PayloadError::invalid(
            "id and type must be at most 256 characters",
        ));
    }
    let occurred_at = match map.get("occurred_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            Timestamp::parse_rfc3339(text)
                .map_err(|err| PayloadError::invalid(format!("occurred_at: {err}")))?,
        ),
        Some(_) => {
            return Err(PayloadError::invalid(
                "occurred_at must be an RFC 3339 string",
            ));
        }
    };
    let payload = Value::Object(map);
    // The delivery id is the sender's idempotency key (the same on every retry); the body id
    // names the business event. Standard Webhooks makes the former the dedupe key.
    let provider_event_id = hints.delivery_id.map_or_else(|| id.clone(), str::to_owned);
    Ok(IncomingEvent {
        provider_event_id,
        event_type,
        occurred_at,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use domain::{OwnerStatus, Source};

    use super::*;
    use crate::FieldMapping;

    fn preset() -> FieldMapping<'static> {
        FieldMapping::for_source(Source::Rollcall, None)
    }

    /// Through the crate's `split`, which also reads the owners.
    fn split(body: &[u8], hints: &DeliveryHints<'_>) -> Result<IncomingEvent, PayloadError> {
        crate::split(Source::Rollcall, body, hints, &preset()).map(|mut events| events.remove(0))
    }

    fn owners(payload: &serde_json::Value) -> Result<Vec<domain::OwnerFacts>, PayloadError> {
        preset().owners(payload)
    }

    const SAMPLE: &str = r#"{
      "id": "evt_01J", "type": "opportunity.updated", "occurred_at": "2026-11-21T10:00:00Z",
      "owner": {"id": "005A000001", "email": "ann.lee@example.com", "first_name": "Ann",
        "last_name": "Lee", "avatar_url": "https://cdn.example.com/ann.png", "status": "active",
        "member_type": "full", "employee_ids": ["AL01"], "title": "Account Executive",
        "department": "Sales East", "location": "Boston"},
      "record": {"kind": "opportunity", "id": "006B000002"}
    }"#;

    #[test]
    fn reads_the_contract_sample() {
        let event = split(
            SAMPLE.as_bytes(),
            &DeliveryHints {
                delivery_id: Some("msg_1"),
            },
        )
        .unwrap();
        assert_eq!(event.provider_event_id, "msg_1");
        assert_eq!(event.event_type, "opportunity.updated");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::parse_rfc3339("2026-11-21T10:00:00Z").unwrap())
        );
        let owners = owners(&event.payload).unwrap();
        assert_eq!(owners.len(), 1);
        let ann = &owners[0];
        assert_eq!(ann.external_id, "005A000001");
        assert_eq!(ann.email.as_deref(), Some("ann.lee@example.com"));
        assert_eq!(ann.first_name.as_deref(), Some("Ann"));
        assert_eq!(ann.last_name.as_deref(), Some("Lee"));
        assert_eq!(ann.status, Some(OwnerStatus::Active));
        assert_eq!(ann.employee_ids, vec!["AL01".to_owned()]);
        assert_eq!(ann.department.as_deref(), Some("Sales East"));
        assert_eq!(ann.location.as_deref(), Some("Boston"));
    }

    #[test]
    fn without_a_delivery_id_the_body_id_is_the_key() {
        let event = split(SAMPLE.as_bytes(), &DeliveryHints::default()).unwrap();
        assert_eq!(event.provider_event_id, "evt_01J");
    }

    #[test]
    fn several_owners_each_resolve() {
        let body = r#"{"id":"j1","type":"job.completed","owners":[{"id":"a"},{"id":7}]}"#;
        let event = split(body.as_bytes(), &DeliveryHints::default()).unwrap();
        let ids: Vec<_> = owners(&event.payload)
            .unwrap()
            .into_iter()
            .map(|o| o.external_id)
            .collect();
        assert_eq!(ids, ["a", "7"]);
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"type":"x","owner":{"id":"a"}}"#, "id is required"),
            (r#"{"id":"1","owner":{"id":"a"}}"#, "type is required"),
            (
                r#"{"id":1,"type":"x","owner":{"id":"a"}}"#,
                "id must be a string",
            ),
            (r#"{"id":"1","type":"x"}"#, "owner is required"),
            (
                r#"{"id":"1","type":"x","owner":{}}"#,
                "owner.id is required",
            ),
            (
                r#"{"id":"1","type":"x","owner":{"id":"a","email":5}}"#,
                "owner.email must be a string",
            ),
            (
                r#"{"id":"1","type":"x","owner":{"id":"a","status":"gone"}}"#,
                "owner.status must be one of",
            ),
            (
                r#"{"id":"1","type":"x","occurred_at":"yesterday","owner":{"id":"a"}}"#,
                "occurred_at",
            ),
            (
                r#"{"id":"1","type":"x","owners":[]}"#,
                "owners must not be empty",
            ),
            (
                r#"{"id":"1","type":"x","owner":{"id":"a","last_name":"L\u0000e"}}"#,
                "owner.last_name must not contain U+0000",
            ),
            (
                r#"{"id":"1","type":"x","owner":{"id":"a\u0000"}}"#,
                "owner.id must not contain U+0000",
            ),
            (
                r#"{"id":"1","type":"x","owner":{"id":"a","employee_ids":["E\u0000"]}}"#,
                "owner.employee_ids must not contain U+0000",
            ),
        ];
        for (body, expected) in cases {
            let err = split(body.as_bytes(), &DeliveryHints::default()).unwrap_err();
            assert!(err.to_string().contains(expected), "{body}: {err}");
        }
    }
}
