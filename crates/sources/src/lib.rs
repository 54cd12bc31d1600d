//! CRM payload formats: how a verified webhook body splits into events (each with its own
//! dedupe key and type), and how each event names its owners as [`OwnerFacts`].
//!
//! Pure: no IO, no clock. Where a CRM's payload carries only an owner id, this crate says so
//! (the resolver looks the owner up); it never calls a CRM itself. The ingress uses
//! [`split`] to validate and route a body; the resolver uses [`owners`] to read owners.

mod canonical;
mod connectwise;
mod fields;
mod freshteam;
mod housecall_pro;
mod hubspot;
mod jobber;
mod json;
mod mapping;
mod pipedrive;
mod salesforce;
mod zoho;

pub use mapping::{FieldMapping, MAX_OWNERS};
pub use salesforce::ACK as SALESFORCE_ACK;

use domain::{OwnerFacts, Source, Timestamp};

/// One event found in a webhook body.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingEvent {
    /// The CRM's id for the event: the dedupe key.
    pub provider_event_id: String,
    pub event_type: String,
    pub occurred_at: Option<Timestamp>,
    /// The event's own JSON: the body, or one element of a batch body, less what must not be
    /// stored (Zoho's `token`, Freshteam's `iparams`).
    pub payload: serde_json::Value,
}

/// A body that is not what the integration's source format expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    Invalid(String),
}

impl PayloadError {
    fn invalid(message: impl Into<String>) -> Self {
        PayloadError::Invalid(message.into())
    }
}

/// What the sender told us about the delivery outside the body (headers the verifier read).
#[derive(Debug, Clone, Default)]
pub struct DeliveryHints<'a> {
    /// The delivery id from a signature header (`webhook-id`, …), when the scheme has one.
    pub delivery_id: Option<&'a str>,
}

/// Splits a verified body into its events. `mapping` is the integration's field mapping.
///
/// Every event's owners are read once here (with [`owners`]), so an event the worker could
/// not read is refused with 400 at once rather than failing later in the queue; in a batch,
/// the message names the event's position. A body may hold no event at all (Housecall Pro's
/// setup test), which the ingress acknowledges without queueing anything.
pub fn split(
    source: Source,
    body: &[u8],
    hints: &DeliveryHints<'_>,
    mapping: &FieldMapping,
) -> Result<Vec<IncomingEvent>, PayloadError> {
    let events = match source {
        Source::Rollcall => canonical::split(body, hints).map(|event| vec![event]),
        Source::SalesforceOutbound => salesforce::split(body),
        Source::Hubspot => hubspot::split(body),
        Source::Connectwise => connectwise::split(body),
        Source::Pipedrive => pipedrive::split(body),
        Source::Jobber => jobber::split(body),
        Source::HousecallPro => housecall_pro::split(body, hints),
        Source::Freshteam => freshteam::split(body, hints),
        Source::Zoho => zoho::split(body),
        Source::Json => json::split(body, hints, mapping),
    }?;
    let batch = events.len() > 1;
    for (index, event) in events.iter().enumerate() {
        let checked = check_key(event).and_then(|()| owners(source, &event.payload, mapping));
        if let Err(err) = checked {
            return Err(match err {
                PayloadError::Invalid(message) if batch => {
                    PayloadError::invalid(format!("event [{index}]: {message}"))
                }
                other => other,
            });
        }
    }
    Ok(events)
}

/// The dedupe key and type are stored and shown: they must be short, non-empty text without
/// U+0000, whatever the sender put in the fields they are built from.
fn check_key(event: &IncomingEvent) -> Result<(), PayloadError> {
    for (what, text) in [
        ("the event id", &event.provider_event_id),
        ("the event type", &event.event_type),
    ] {
        fields::no_nul(text, what)?;
        if text.trim().is_empty() {
            return Err(PayloadError::invalid(format!("{what} must not be empty")));
        }
        if text.chars().count() > fields::MAX_KEY_CHARS {
            return Err(PayloadError::invalid(format!(
                "{what} must be at most {} characters",
                fields::MAX_KEY_CHARS
            )));
        }
    }
    Ok(())
}

/// Who one event is about, as far as its payload tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOwners {
    /// The payload names its owners with their details, in the order it names them.
    Named(Vec<OwnerFacts>),
    /// The payload names its owners by the CRM's id only (with whatever hints it carries,
    /// such as a display name): the CRM's directory supplies the rest.
    ById(Vec<OwnerFacts>),
    /// The payload names records only: the CRM's directory says who owns or works them.
    /// `object` is the CRM's own name for the record type (`deals`, `Deals`, `visit`).
    Records { object: String, ids: Vec<String> },
    /// The event concerns no owner rollcall acts on (a deletion, a contact); why.
    NoOwner(String),
}

/// Who one event is about, read through `mapping` (the source's preset with the
/// integration's overrides).
pub fn owners(
    source: Source,
    payload: &serde_json::Value,
    mapping: &FieldMapping,
) -> Result<EventOwners, PayloadError> {
    match source {
        Source::Rollcall => mapping.owners(payload).map(EventOwners::Named),
        Source::SalesforceOutbound => salesforce::owners(payload),
        Source::Hubspot => hubspot::owners(payload),
        Source::Connectwise => connectwise::owners(payload),
        Source::Pipedrive => pipedrive::owners(payload),
        Source::Jobber => jobber::owners(payload),
        Source::HousecallPro => housecall_pro::owners(payload),
        Source::Freshteam => freshteam::owners(payload),
        Source::Zoho => zoho::owners(payload),
        Source::Json => json::owners(payload, mapping),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn preset(source: Source) -> FieldMapping<'static> {
        FieldMapping::for_source(source, None)
    }

    #[test]
    fn every_source_splits_and_reads_owners() {
        let bodies = [
            (
                Source::Rollcall,
                json!({"id": "e", "type": "t", "owner": {"id": "a"}}),
            ),
            (
                Source::Hubspot,
                json!([{"portalId": 1, "eventId": 2, "occurredAt": 3,
                    "subscriptionType": "deal.creation", "objectId": 4}]),
            ),
            (
                Source::Connectwise,
                json!({"MessageId": "m", "Type": "member", "Action": "added",
                    "Entity": "{\"id\": 1}"}),
            ),
            (
                Source::Pipedrive,
                json!({"meta": {"version": "2.0", "action": "change", "entity": "deal",
                    "entity_id": 1, "webhook_id": 2, "timestamp": 3}, "data": {"owner_id": 4}}),
            ),
            (
                Source::Jobber,
                json!({"data": {"webHookEvent": {"topic": "JOB_UPDATE", "accountId": "a",
                    "itemId": "i", "occurredAt": "2021-08-12T16:31:36-06:00"}}}),
            ),
            (
                Source::HousecallPro,
                json!({"event": "job.completed", "job": {"id": "job_1",
                    "assigned_employees": [{"id": "pro_1"}]}}),
            ),
            (
                Source::Freshteam,
                json!({"account_id": 1, "event": "onEmployeeCreate", "timestamp": 2,
                    "data": {"employee": {"id": 3}}}),
            ),
            (
                Source::Zoho,
                json!({"server_time": 1, "module": "Deals", "operation": "insert",
                    "ids": ["1"], "channel_id": "c"}),
            ),
        ];
        for (source, body) in bodies {
            let events = split(
                source,
                body.to_string().as_bytes(),
                &DeliveryHints::default(),
                &preset(source),
            )
            .unwrap_or_else(|err| panic!("{source}: {err}"));
            assert_eq!(events.len(), 1, "{source}");
            owners(source, &events[0].payload, &preset(source))
                .unwrap_or_else(|err| panic!("{source}: {err}"));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let bodies: [&[u8]; 8] = [
            b"",
            b"[",
            b"null",
            b"42",
            b"\"text\"",
            b"{}",
            b"[{}]",
            b"<a/>",
        ];
        let sources = [
            Source::Rollcall,
            Source::Hubspot,
            Source::SalesforceOutbound,
            Source::Pipedrive,
            Source::Connectwise,
            Source::Jobber,
            Source::HousecallPro,
            Source::Freshteam,
            Source::Zoho,
            Source::Json,
        ];
        for source in sources {
            for body in bodies {
                // An empty object is Housecall Pro's setup test; everything else is refused.
                let result = split(source, body, &DeliveryHints::default(), &preset(source));
                if source == Source::HousecallPro && body == b"{}" {
                    assert_eq!(result, Ok(Vec::new()));
                } else {
                    assert!(
                        result.is_err(),
                        "{source}: {}",
                        String::from_utf8_lossy(body)
                    );
                }
                let _ = owners(source, &json!({}), &preset(source));
                let _ = owners(source, &json!([1, {"a": null}]), &preset(source));
            }
        }
    }

    #[test]
    fn unreadable_owners_are_refused_at_the_ingress() {
        let member = json!({"MessageId": "m", "Type": "member", "Action": "added",
            "Entity": "{\"firstName\": \"Jo\"}"});
        let err = split(
            Source::Connectwise,
            member.to_string().as_bytes(),
            &DeliveryHints::default(),
            &preset(Source::Connectwise),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "entity.id is required");
        let batch = json!([
            {"portalId": 1, "eventId": 2, "occurredAt": 3, "subscriptionType": "deal.creation",
             "objectId": 4},
            {"portalId": 1, "eventId": 3, "occurredAt": 3, "subscriptionType": "deal.creation",
             "objectId": [4]},
        ]);
        let err = split(
            Source::Hubspot,
            batch.to_string().as_bytes(),
            &DeliveryHints::default(),
            &preset(Source::Hubspot),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("event [1]: objectId must be a string or an integer"),
            "{err}"
        );
        let crew_fields = std::collections::BTreeMap::from([
            ("owners".to_owned(), "/crew".to_owned()),
            ("id".to_owned(), "/uid".to_owned()),
        ]);
        let crew = FieldMapping::for_source(Source::Json, Some(&crew_fields));
        let err = split(
            Source::Json,
            br#"{"id": "1", "type": "t", "crew": [{"uid": "a\u0000"}]}"#,
            &DeliveryHints::default(),
            &crew,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("crew[0].uid must not contain U+0000"),
            "{err}"
        );
    }

    #[test]
    fn keys_and_types_are_bounded() {
        let long = "x".repeat(300);
        let body = json!({"id": long, "type": "t", "owner": {"id": "a"}});
        let err = split(
            Source::Json,
            body.to_string().as_bytes(),
            &DeliveryHints::default(),
            &FieldMapping::for_source(
                Source::Json,
                Some(&std::collections::BTreeMap::from([(
                    "owner".to_owned(),
                    "/owner".to_owned(),
                )])),
            ),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("the event id must be at most 256 characters"),
            "{err}"
        );
    }

    #[test]
    fn salesforce_text_with_a_nul_reference_is_refused() {
        let message = concat!(
            "<Envelope><Body><notifications><OrganizationId>00D</OrganizationId><Notification>",
            "<Id>04l1</Id><sObject xsi:type=\"sf:Opportunity\"><sf:OwnerId>005&#0;</sf:OwnerId>",
            "</sObject></Notification></notifications></Body></Envelope>"
        );
        let result = split(
            Source::SalesforceOutbound,
            message.as_bytes(),
            &DeliveryHints::default(),
            &preset(Source::SalesforceOutbound),
        );
        assert!(result.is_err(), "{result:?}");
    }
}
