//! Any JSON (`source: json`), read only through the integration's field mapping (the preset is
//! empty: nothing is assumed about the owners' place).
//!
//! One event per request. Besides the owner keys, three mapping keys locate the event itself:
//! `event_id` (default `/id`), `event_type` (default `/type`) and `occurred_at` (default
//! `/occurred_at`, RFC 3339 text or Unix time in seconds or milliseconds). The body's event id
//! is the dedupe key; when the body has none, the delivery id of the signature scheme is used
//! (both are the same on every retry). With neither, or without a type, the body is refused
//! with a message naming the mapping key to set.
//!
//! Owners: the mapping's `owner`/`owners` and field pointers, as for rollcall's canonical JSON.

use serde_json::Value;

use crate::fields;
use crate::{DeliveryHints, EventOwners, FieldMapping, IncomingEvent, PayloadError};

const DEFAULT_EVENT_ID: &str = "/id";
const DEFAULT_EVENT_TYPE: &str = "/type";
const DEFAULT_OCCURRED_AT: &str = "/occurred_at";

pub(crate) fn split(
    body: &[u8],
    hints: &DeliveryHints<'_>,
    mapping: &FieldMapping,
) -> Result<Vec<IncomingEvent>, PayloadError> {
    let value = fields::parse_json(body)?;
    let id_at = mapping.get("event_id").unwrap_or(DEFAULT_EVENT_ID);
    let type_at = mapping.get("event_type").unwrap_or(DEFAULT_EVENT_TYPE);
    let time_at = mapping.get("occurred_at").unwrap_or(DEFAULT_OCCURRED_AT);
    let provider_event_id = match (
        fields::id(fields::pointer(&value, id_at), id_at)?,
        hints.delivery_id,
    ) {
        (Some(id), _) => id,
        (None, Some(delivery)) => delivery.to_owned(),
        (None, None) => {
            return Err(PayloadError::invalid(format!(
                "the event has no id at {id_at:?} and the delivery none: set \
                 field_mapping.event_id to the JSON Pointer of the event's id"
            )));
        }
    };
    let event_type = fields::text(fields::pointer(&value, type_at), type_at)?.ok_or_else(|| {
        PayloadError::invalid(format!(
            "the event has no type at {type_at:?}: set field_mapping.event_type to the JSON \
             Pointer of the event's type"
        ))
    })?;
    let occurred_at = fields::instant(fields::pointer(&value, time_at), time_at)?;
    Ok(vec![IncomingEvent {
        provider_event_id,
        event_type,
        occurred_at,
        payload: value,
    }])
}

pub(crate) fn owners(payload: &Value, mapping: &FieldMapping) -> Result<EventOwners, PayloadError> {
    mapping.owners(payload).map(EventOwners::Named)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use domain::{OwnerStatus, Source, Timestamp};
    use serde_json::json;

    use super::*;

    /// A mapping with these overrides (kept for the rest of the test run).
    fn mapping(pairs: &[(&str, &str)]) -> FieldMapping<'static> {
        let overrides: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        FieldMapping::for_source(Source::Json, Some(Box::leak(Box::new(overrides))))
    }

    /// A roster row pushed by an HR tool: the row is the person.
    fn roster() -> FieldMapping<'static> {
        mapping(&[
            ("event_id", "/change/uuid"),
            ("event_type", "/change/kind"),
            ("occurred_at", "/change/at"),
            ("owner", "/person"),
            ("id", "/badge"),
            ("email", "/work_email"),
            ("name", "/full_name"),
            ("inactive_flag", "/on_leave"),
        ])
    }

    #[test]
    fn the_mapping_locates_the_event_and_its_owner() {
        let body = json!({"change": {"uuid": "c-1", "kind": "person.updated", "at": 1_735_689_600},
            "person": {"badge": 4411, "work_email": "li.wei@example.com",
                "full_name": "Li Wei", "on_leave": false}});
        let events = split(
            body.to_string().as_bytes(),
            &DeliveryHints::default(),
            &roster(),
        )
        .unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.provider_event_id, "c-1");
        assert_eq!(event.event_type, "person.updated");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::from_unix_seconds(1_735_689_600))
        );
        let EventOwners::Named(owners) = owners(&event.payload, &roster()).unwrap() else {
            panic!("named")
        };
        assert_eq!(owners[0].external_id, "4411");
        assert_eq!(owners[0].email.as_deref(), Some("li.wei@example.com"));
        assert_eq!(owners[0].first_name.as_deref(), Some("Li"));
        assert_eq!(owners[0].last_name.as_deref(), Some("Wei"));
        assert_eq!(owners[0].status, Some(OwnerStatus::Active));
    }

    #[test]
    fn defaults_and_the_delivery_id() {
        let crew = mapping(&[("owners", "/crew"), ("id", "/uid")]);
        let body = json!({"type": "job.done", "occurred_at": "2026-01-02T03:04:05Z",
            "crew": [{"uid": "a"}, {"uid": "b"}]});
        let hints = DeliveryHints {
            delivery_id: Some("msg_9"),
        };
        let events = split(body.to_string().as_bytes(), &hints, &crew).unwrap();
        assert_eq!(events[0].provider_event_id, "msg_9");
        assert_eq!(
            events[0].occurred_at,
            Some(Timestamp::parse_rfc3339("2026-01-02T03:04:05Z").unwrap())
        );
        let EventOwners::Named(owners) = owners(&events[0].payload, &crew).unwrap() else {
            panic!("named")
        };
        assert_eq!(owners.len(), 2);
        // The body's id wins over the delivery id when there is one.
        let mut with_id = body.clone();
        with_id["id"] = json!(12);
        let events = split(with_id.to_string().as_bytes(), &hints, &crew).unwrap();
        assert_eq!(events[0].provider_event_id, "12");
    }

    #[test]
    fn malformed_bodies_say_which_mapping_to_set() {
        let none = mapping(&[("owner", "/o")]);
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for (body, expected) in [
            ("nope".to_owned(), "not valid JSON"),
            (deep, "recursion limit"),
            (json!({"type": "t"}).to_string(), "no id at \"/id\""),
            (json!({"type": "t"}).to_string(), "field_mapping.event_id"),
            (json!({"id": "1"}).to_string(), "field_mapping.event_type"),
            (
                json!({"id": [1], "type": "t"}).to_string(),
                "/id must be a string or an integer",
            ),
            (
                json!({"id": "1", "type": 5}).to_string(),
                "/type must be a string",
            ),
            (
                json!({"id": "1", "type": "t\u{0}"}).to_string(),
                "/type must not contain U+0000",
            ),
            (
                json!({"id": "1", "type": "t", "occurred_at": "later"}).to_string(),
                "/occurred_at",
            ),
        ] {
            let err = split(body.as_bytes(), &DeliveryHints::default(), &none).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        let too_many = json!({"crew": (0..=100).map(|n| json!({"uid": n})).collect::<Vec<_>>()});
        let crew = mapping(&[("owners", "/crew"), ("id", "/uid"), ("email", "/mail")]);
        let err = owners(&too_many, &crew).unwrap_err();
        assert!(
            err.to_string().contains("crew holds more than 100 entries"),
            "{err}"
        );
        let nul = json!({"crew": [{"uid": "a", "mail": "a\u{0}@example.com"}]});
        let err = owners(&nul, &crew).unwrap_err();
        assert!(
            err.to_string()
                .contains("crew[0].mail must not contain U+0000"),
            "{err}"
        );
        let nul_id = json!({"crew": [{"uid": "a\u{0}"}]});
        let err = owners(&nul_id, &crew).unwrap_err();
        assert!(
            err.to_string()
                .contains("crew[0].uid must not contain U+0000"),
            "{err}"
        );
    }
}
