//! HubSpot webhooks (`source: hubspot`): the body is a JSON array of up to 100 events, each its
//! own event. HubSpot documents that `eventId` alone is not unique, so the dedupe key is
//! `portalId:subscriptionId:eventId:occurredAt` (the subscription is included because two
//! subscriptions of one portal may share an event id and time). The type is
//! `subscriptionType` (older payloads call it `eventType`); `occurredAt` is in milliseconds.

use domain::Timestamp;
use serde_json::Value;

use crate::{IncomingEvent, PayloadError};

const MAX_EVENTS: usize = 100;

fn id_part(event: &Value, field: &str, index: usize) -> Result<String, PayloadError> {
    match event.get(field) {
        Some(Value::Number(number)) => Ok(number.to_string()),
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        _ => Err(PayloadError::invalid(format!(
            "event [{index}] has no {field}"
        ))),
    }
}

pub(crate) fn split(body: &[u8]) -> Result<Vec<IncomingEvent>, PayloadError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| PayloadError::NotJson(err.to_string()))?;
    let Value::Array(events) = value else {
        return Err(PayloadError::invalid(
            "a HubSpot webhook body is a JSON array of events",
        ));
    };
    if events.is_empty() {
        return Err(PayloadError::invalid("the event array is empty"));
    }
    if events.len() > MAX_EVENTS {
        return Err(PayloadError::invalid(format!(
            "more than {MAX_EVENTS} events in one request"
        )));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            if !event.is_object() {
                return Err(PayloadError::invalid(format!(
                    "event [{index}] is not an object"
                )));
            }
            let portal = id_part(&event, "portalId", index)?;
            let event_id = id_part(&event, "eventId", index)?;
            let occurred = event
                .get("occurredAt")
                .and_then(Value::as_i64)
                .ok_or_else(|| {
                    PayloadError::invalid(format!(
                        "event [{index}] has no occurredAt (milliseconds)"
                    ))
                })?;
            let subscription = id_part(&event, "subscriptionId", index).unwrap_or_default();
            let event_type = event
                .get("subscriptionType")
                .or_else(|| event.get("eventType"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    PayloadError::invalid(format!("event [{index}] has no subscriptionType"))
                })?
                .to_owned();
            Ok(IncomingEvent {
                provider_event_id: format!("{portal}:{subscription}:{event_id}:{occurred}"),
                event_type,
                occurred_at: Some(Timestamp::from_millis(occurred)),
                payload: event,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/payloads/hubspot-webhook-payloads.json"
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn each_array_element_is_an_event_with_its_own_key() {
        let body = samples()["docs_example_contact_property_change"]["body"].to_string();
        let events = split(body.as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].provider_event_id,
            "33:25:3816279340:1462216307945"
        );
        assert_eq!(events[0].event_type, "contact.propertyChange");
        assert_eq!(
            events[1].provider_event_id,
            "33:22:3816279480:1462216307945"
        );
        assert_eq!(events[1].event_type, "contact.creation");
        assert_eq!(
            events[0].occurred_at,
            Some(Timestamp::from_millis(1_462_216_307_945))
        );
    }

    #[test]
    fn the_deal_owner_change_keeps_its_payload() {
        let body = samples()["deal_owner_change_project_example"]["body"].to_string();
        let events = split(body.as_bytes()).unwrap();
        assert_eq!(events[0].event_type, "deal.propertyChange");
        assert_eq!(events[0].payload["propertyName"], "hubspot_owner_id");
        assert_eq!(events[0].payload["propertyValue"], "123456789");
    }

    #[test]
    fn malformed_batches_are_refused() {
        let too_many = Value::Array(
            (0..101)
                .map(|n| serde_json::json!({"portalId": 1, "eventId": n, "occurredAt": 1, "subscriptionType": "x"}))
                .collect(),
        );
        for (body, expected) in [
            ("{}".to_owned(), "JSON array"),
            ("[]".to_owned(), "empty"),
            ("[1]".to_owned(), "not an object"),
            (
                r#"[{"eventId":1,"occurredAt":1,"subscriptionType":"x"}]"#.to_owned(),
                "portalId",
            ),
            (
                r#"[{"portalId":1,"eventId":1,"subscriptionType":"x"}]"#.to_owned(),
                "occurredAt",
            ),
            (
                r#"[{"portalId":1,"eventId":1,"occurredAt":1}]"#.to_owned(),
                "subscriptionType",
            ),
            (too_many.to_string(), "more than 100"),
        ] {
            let err = split(body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
    }
}
