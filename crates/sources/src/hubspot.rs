//! HubSpot webhooks (`source: hubspot`): the body is a JSON array of up to 100 events, each its
//! own event. HubSpot documents that `eventId` alone is not unique, so the dedupe key is
//! `portalId:subscriptionId:eventId:occurredAt` (the subscription is included because two
//! subscriptions of one portal may share an event id and time). The type is
//! `subscriptionType` (older payloads call it `eventType`); `occurredAt` is in milliseconds.
//!
//! Events carry ids only. A change of `hubspot_owner_id` names the new owner's id (HubSpot
//! owner ids are the same across object types, so this holds for any object); the directory
//! looks the owner up. Creations, restores and other property changes of deals, contacts and
//! companies name the record, whose owner the directory reads (`object` is the CRM v3 API name:
//! `deals`, `contacts`, `companies`). Deletions, merges and association changes concern no
//! owner, nor do object types rollcall does not follow (tickets, products…).

use domain::Timestamp;
use serde_json::Value;

use crate::fields;
use crate::{EventOwners, IncomingEvent, PayloadError};

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

/// The property whose change names a record's new owner.
const OWNER_PROPERTY: &str = "hubspot_owner_id";

/// Who one HubSpot event is about.
pub(crate) fn owners(event: &Value) -> Result<EventOwners, PayloadError> {
    let subscription = event
        .get("subscriptionType")
        .or_else(|| event.get("eventType"));
    let subscription = fields::required_text(subscription, "subscriptionType")?;
    let (object, action) = subscription
        .split_once('.')
        .unwrap_or((subscription.as_str(), ""));
    if matches!(
        action,
        "deletion" | "privacyDeletion" | "merge" | "associationChange"
    ) {
        return Ok(EventOwners::NoOwner(format!(
            "HubSpot {subscription} events concern no owner"
        )));
    }
    if action == "propertyChange"
        && fields::text(event.get("propertyName"), "propertyName")?.as_deref()
            == Some(OWNER_PROPERTY)
    {
        // The value is the owner id as a string; HubSpot sends "" when the owner is removed.
        let owner = match event.get("propertyValue") {
            Some(Value::String(text)) if text.trim().is_empty() => None,
            value => fields::id(value, "propertyValue")?,
        };
        return Ok(match owner {
            Some(owner) => EventOwners::ById(vec![fields::by_id(owner, None)]),
            None => EventOwners::NoOwner("the record's owner was removed".to_owned()),
        });
    }
    let records = match object {
        "deal" => "deals",
        "contact" => "contacts",
        "company" => "companies",
        other => {
            return Ok(EventOwners::NoOwner(format!(
                "HubSpot {other} events name no owner rollcall follows"
            )));
        }
    };
    if !matches!(action, "creation" | "restore" | "propertyChange") {
        return Ok(EventOwners::NoOwner(format!(
            "HubSpot {subscription} events are not ones rollcall reads"
        )));
    }
    let id = fields::required_id(event.get("objectId"), "objectId")?;
    Ok(EventOwners::Records {
        object: records.to_owned(),
        ids: vec![id],
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
    fn the_samples_name_their_owner_or_record() {
        let docs = samples()["docs_example_contact_property_change"]["body"].to_string();
        let events = split(docs.as_bytes()).unwrap();
        assert_eq!(
            owners(&events[0].payload).unwrap(),
            EventOwners::Records {
                object: "contacts".to_owned(),
                ids: vec!["1246965".to_owned()]
            }
        );
        assert_eq!(
            owners(&events[1].payload).unwrap(),
            EventOwners::Records {
                object: "contacts".to_owned(),
                ids: vec!["1246978".to_owned()]
            }
        );
        let deal = samples()["deal_owner_change_project_example"]["body"].to_string();
        let events = split(deal.as_bytes()).unwrap();
        assert_eq!(
            events[0].provider_event_id,
            "62515:25:3816279340:1735689600000"
        );
        let EventOwners::ById(owners) = owners(&events[0].payload).unwrap() else {
            panic!("an owner change names the owner by id")
        };
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].external_id, "123456789");
        assert_eq!(owners[0].email, None);
        assert_eq!(owners[0].first_name, None);
    }

    fn event(subscription: &str, extra: &Value) -> Value {
        let mut event = json!({"portalId": 1, "eventId": 2, "occurredAt": 3,
            "subscriptionType": subscription, "objectId": 42});
        if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
            event.extend(extra.clone());
        }
        event
    }

    #[test]
    fn each_kind_of_event_says_who_it_is_about() {
        let removed = event(
            "deal.propertyChange",
            &json!({"propertyName": "hubspot_owner_id", "propertyValue": ""}),
        );
        assert_eq!(
            owners(&removed).unwrap(),
            EventOwners::NoOwner("the record's owner was removed".to_owned())
        );
        let amount = event(
            "deal.propertyChange",
            &json!({"propertyName": "amount", "propertyValue": "10"}),
        );
        assert_eq!(
            owners(&amount).unwrap(),
            EventOwners::Records {
                object: "deals".to_owned(),
                ids: vec!["42".to_owned()]
            }
        );
        for (subscription, object) in [
            ("company.creation", "companies"),
            ("deal.restore", "deals"),
            ("contact.creation", "contacts"),
        ] {
            let EventOwners::Records { object: got, ids } =
                owners(&event(subscription, &json!({}))).unwrap()
            else {
                panic!("{subscription} names its record")
            };
            assert_eq!((got.as_str(), ids), (object, vec!["42".to_owned()]));
        }
        for subscription in [
            "deal.deletion",
            "contact.privacyDeletion",
            "company.merge",
            "deal.associationChange",
            "ticket.creation",
            "product.propertyChange",
        ] {
            let EventOwners::NoOwner(reason) = owners(&event(subscription, &json!({}))).unwrap()
            else {
                panic!("{subscription} concerns no owner")
            };
            let kind = subscription.split('.').next().unwrap();
            assert!(reason.contains(kind), "{subscription}: {reason}");
        }
        // Tickets have owners too: a change of owner is read whatever the object.
        let ticket = event(
            "ticket.propertyChange",
            &json!({"propertyName": "hubspot_owner_id", "propertyValue": "77"}),
        );
        assert!(
            matches!(owners(&ticket).unwrap(), EventOwners::ById(o) if o[0].external_id == "77")
        );
    }

    #[test]
    fn malformed_events_name_the_field() {
        for (event, expected) in [
            (
                event(
                    "deal.propertyChange",
                    &json!({"propertyName": "hubspot_owner_id", "propertyValue": "1\u{0}"}),
                ),
                "propertyValue must not contain U+0000",
            ),
            (
                event(
                    "deal.propertyChange",
                    &json!({"propertyName": "hubspot_owner_id", "propertyValue": ["1"]}),
                ),
                "propertyValue must be a string or an integer",
            ),
            (
                event("deal.creation", &json!({"objectId": null})),
                "objectId is required",
            ),
            (
                event("deal.creation", &json!({"objectId": {"id": 1}})),
                "objectId must be a string or an integer",
            ),
            (
                event("deal.propertyChange", &json!({"propertyName": 5})),
                "propertyName must be a string",
            ),
        ] {
            let err = owners(&event).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
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
