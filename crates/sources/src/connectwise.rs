//! ConnectWise PSA callbacks (`source: connectwise`): one envelope per request, deduplicated on
//! `MessageId`, typed `<Type>.<Action>` (`opportunity.updated`, `member.added`). The changed
//! record travels as a JSON-encoded string in `Entity`; it is decoded into the event's payload
//! (`entity`) so later stages read it as JSON.

use domain::Timestamp;
use serde_json::Value;

use crate::{IncomingEvent, PayloadError};

pub(crate) fn split(body: &[u8]) -> Result<Vec<IncomingEvent>, PayloadError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| PayloadError::NotJson(err.to_string()))?;
    let Value::Object(mut envelope) = value else {
        return Err(PayloadError::invalid(
            "a ConnectWise callback is a JSON object",
        ));
    };
    let text = |envelope: &serde_json::Map<String, Value>, field: &str| {
        envelope
            .get(field)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| PayloadError::invalid(format!("the callback has no {field}")))
    };
    let message_id = text(&envelope, "MessageId")?;
    let kind = text(&envelope, "Type")?.to_lowercase();
    let action = text(&envelope, "Action")?.to_lowercase();
    let entity: Value = match envelope.remove("Entity") {
        Some(Value::String(encoded)) => serde_json::from_str(&encoded)
            .map_err(|_| PayloadError::invalid("Entity is not JSON-encoded"))?,
        Some(Value::Object(object)) => Value::Object(object),
        _ => return Err(PayloadError::invalid("the callback has no Entity")),
    };
    let occurred_at = entity
        .pointer("/_info/lastUpdated")
        .and_then(Value::as_str)
        .and_then(|text| Timestamp::parse_rfc3339(text).ok());
    envelope.insert("entity".to_owned(), entity);
    Ok(vec![IncomingEvent {
        provider_event_id: message_id,
        event_type: format!("{kind}.{action}"),
        occurred_at,
        payload: Value::Object(envelope),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_callback_is_one_event_with_its_entity_decoded() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/payloads/connectwise-callback-and-member.json"
        ))
        .unwrap();
        let samples: Value = serde_json::from_str(&text).unwrap();
        let mut envelope = samples["callback_envelope_example"].clone();
        envelope.as_object_mut().unwrap().remove("_source");
        let events = split(envelope.to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(
            event.provider_event_id,
            "cb67323f-43ba-4ef6-b471-6bb90e62ab6a"
        );
        assert_eq!(event.event_type, "contact.added");
        assert_eq!(event.payload["entity"]["firstName"], "Joshua Marvin");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::parse_rfc3339("2026-06-04T17:54:53Z").unwrap())
        );
    }

    #[test]
    fn malformed_callbacks_are_refused() {
        for (body, expected) in [
            ("[]", "JSON object"),
            (
                r#"{"Type":"member","Action":"added","Entity":"{}"}"#,
                "MessageId",
            ),
            (
                r#"{"MessageId":"m","Action":"added","Entity":"{}"}"#,
                "Type",
            ),
            (
                r#"{"MessageId":"m","Type":"member","Action":"added","Entity":"{not json"}"#,
                "JSON-encoded",
            ),
            (
                r#"{"MessageId":"m","Type":"member","Action":"added"}"#,
                "no Entity",
            ),
        ] {
            let err = split(body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
    }
}
