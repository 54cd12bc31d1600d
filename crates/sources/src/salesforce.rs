//! Salesforce outbound messages (`source: salesforce-outbound`): a SOAP envelope with up to 100
//! `Notification`s, each naming one sObject and its selected fields. Each notification is its
//! own event, deduplicated on `Notification/Id`; its type is `<object>.updated`
//! (`opportunity.updated`), since outbound messages fire on the create-or-update criteria of
//! a workflow rule or flow.
//!
//! The parser refuses document type declarations (no entity expansion, ever), caps nesting
//! depth and the number of notifications, and turns each notification into JSON:
//! `{"organization_id", "action_id", "notification_id", "object", "fields": {…}}`.

use domain::{OwnerFacts, Timestamp};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde_json::{Map, Value, json};

use crate::{IncomingEvent, PayloadError};

/// Salesforce sends at most 100 notifications per message.
const MAX_NOTIFICATIONS: usize = 100;
const MAX_DEPTH: usize = 32;

#[derive(Default)]
struct Notification {
    id: String,
    object: String,
    fields: Map<String, Value>,
}

fn local(name: &[u8]) -> &[u8] {
    name.rsplit(|b| *b == b':').next().unwrap_or(name)
}

fn object_type(start: &BytesStart<'_>) -> String {
    start
        .attributes()
        .filter_map(Result::ok)
        .find(|attribute| local(attribute.key.as_ref().as_bytes()) == b"type")
        .map(|attribute| {
            let value: &str = &attribute.value;
            value.rsplit(':').next().unwrap_or(value).to_owned()
        })
        .unwrap_or_default()
}

struct Message {
    organization_id: String,
    action_id: String,
    notifications: Vec<Notification>,
}

fn parse(body: &[u8]) -> Result<Message, PayloadError> {
    let bad = |what: &str| PayloadError::invalid(format!("outbound message: {what}"));
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut message = Message {
        organization_id: String::new(),
        action_id: String::new(),
        notifications: Vec::new(),
    };
    let mut current: Option<Notification> = None;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|err| bad(&format!("not well-formed XML ({err})")))?;
        match event {
            Event::DocType(_) => return Err(bad("document type declarations are not accepted")),
            Event::Start(start) => {
                let name = local(start.name().as_ref().as_bytes()).to_vec();
                if path.len() >= MAX_DEPTH {
                    return Err(bad("nested too deeply"));
                }
                if name == b"Notification" {
                    if message.notifications.len() >= MAX_NOTIFICATIONS {
                        return Err(bad("more than 100 notifications"));
                    }
                    current = Some(Notification::default());
                } else if name == b"sObject"
                    && let Some(notification) = current.as_mut()
                {
                    notification.object = object_type(&start);
                }
                path.push(name);
            }
            Event::Empty(_) => {}
            Event::Text(text) => {
                let value: &str = text.as_ref();
                let value = value.trim().to_owned();
                let depth = path.len();
                let Some(leaf) = path.last() else { continue };
                let parent = depth.checked_sub(2).and_then(|i| path.get(i));
                match (parent.map(Vec::as_slice), leaf.as_slice()) {
                    (Some(b"notifications"), b"OrganizationId") => message.organization_id = value,
                    (Some(b"notifications"), b"ActionId") => message.action_id = value,
                    (Some(b"Notification"), b"Id") => {
                        if let Some(notification) = current.as_mut() {
                            notification.id = value;
                        }
                    }
                    (Some(b"sObject"), field) => {
                        if let Some(notification) = current.as_mut() {
                            let field = String::from_utf8_lossy(field).into_owned();
                            notification.fields.insert(field, Value::String(value));
                        }
                    }
                    _ => {}
                }
            }
            Event::End(end) => {
                let name = local(end.name().as_ref().as_bytes()).to_vec();
                path.pop();
                if name == b"Notification"
                    && let Some(notification) = current.take()
                {
                    message.notifications.push(notification);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if message.notifications.is_empty() {
        return Err(bad("no Notification"));
    }
    Ok(message)
}

pub(crate) fn split(body: &[u8]) -> Result<Vec<IncomingEvent>, PayloadError> {
    let message = parse(body)?;
    message
        .notifications
        .into_iter()
        .map(|notification| {
            if notification.id.is_empty() {
                return Err(PayloadError::invalid(
                    "outbound message: a Notification has no Id",
                ));
            }
            if notification.object.is_empty() {
                return Err(PayloadError::invalid(
                    "outbound message: an sObject has no xsi:type",
                ));
            }
            let occurred_at = notification
                .fields
                .get("LastModifiedDate")
                .and_then(Value::as_str)
                .and_then(|text| Timestamp::parse_rfc3339(text).ok());
            Ok(IncomingEvent {
                provider_event_id: notification.id.clone(),
                event_type: format!("{}.updated", notification.object.to_lowercase()),
                occurred_at,
                payload: json!({
                    "organization_id": message.organization_id,
                    "action_id": message.action_id,
                    "notification_id": notification.id,
                    "object": notification.object,
                    "fields": notification.fields,
                }),
            })
        })
        .collect()
}

/// The owner a notification names. For a `User` sObject the record is the person; for any
/// other object it is the record's `OwnerId`, whose details the directory lookup fills in.
pub(crate) fn owners(payload: &Value) -> Result<Vec<OwnerFacts>, PayloadError> {
    let fields = payload
        .get("fields")
        .and_then(Value::as_object)
        .ok_or_else(|| PayloadError::invalid("outbound message event has no fields"))?;
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if payload.get("object").and_then(Value::as_str) == Some("User") {
        let external_id =
            text("Id").ok_or_else(|| PayloadError::invalid("User notification without Id"))?;
        let status = text("IsActive").map(|active| {
            if active == "true" {
                domain::OwnerStatus::Active
            } else {
                domain::OwnerStatus::Inactive
            }
        });
        return Ok(vec![OwnerFacts {
            external_id,
            email: text("Email"),
            first_name: text("FirstName"),
            last_name: text("LastName"),
            avatar_url: text("FullPhotoUrl"),
            status,
            title: text("Title"),
            department: text("Department"),
            location: text("City"),
            employee_ids: text("EmployeeNumber").into_iter().collect(),
            member_type: text("UserType"),
        }]);
    }
    let owner = text("OwnerId").ok_or_else(|| {
        PayloadError::invalid(
            "the notification's sObject has no OwnerId (add it to the outbound message's fields)",
        )
    })?;
    Ok(vec![OwnerFacts {
        external_id: owner,
        ..OwnerFacts::default()
    }])
}

/// The answer Salesforce requires once every notification is durable: one `Ack` for all.
pub const ACK: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
    r#"<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">"#,
    r#"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#
);

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/payloads/salesforce-outbound-message-opportunity.xml"
        ))
        .unwrap()
    }

    #[test]
    fn the_sample_message_is_one_opportunity_event() {
        let events = split(&sample()).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.provider_event_id, "04l5w00005286hAAAQ");
        assert_eq!(event.event_type, "opportunity.updated");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::parse_rfc3339("2020-05-09T03:04:32.000Z").unwrap())
        );
        assert_eq!(event.payload["organization_id"], "00D5w000004qGTOEA2");
        assert_eq!(event.payload["fields"]["OwnerId"], "0055w00000BhqR0AAJ");
        assert_eq!(
            event.payload["fields"]["Name"],
            "Backpackers, Inc. (Sample)"
        );
        let owners = owners(&event.payload).unwrap();
        assert_eq!(owners[0].external_id, "0055w00000BhqR0AAJ");
        assert_eq!(owners[0].email, None);
    }

    #[test]
    fn the_ack_is_the_documented_response() {
        let documented = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/payloads/salesforce-outbound-ack.xml"
        ))
        .unwrap();
        let strip = |xml: &str| {
            let without_comments = match (xml.find("<!--"), xml.find("-->")) {
                (Some(a), Some(b)) => format!("{}{}", &xml[..a], &xml[b + 3..]),
                _ => xml.to_owned(),
            };
            without_comments.split_whitespace().collect::<String>()
        };
        assert_eq!(strip(ACK), strip(&documented));
    }

    #[test]
    fn hostile_or_broken_messages_are_refused() {
        let notification = |n: usize| {
            format!(
                "<Notification><Id>04l{n:015}</Id><sObject xsi:type=\"sf:Opportunity\"><sf:OwnerId>005</sf:OwnerId></sObject></Notification>"
            )
        };
        let wrap = |inner: &str| {
            format!(
                "<Envelope><Body><notifications><OrganizationId>00D</OrganizationId>{inner}</notifications></Body></Envelope>"
            )
        };
        let too_many: String = (0..101).map(notification).collect();
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        let cases = [
            (wrap(&too_many), "more than 100"),
            (
                format!(
                    r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>{}"#,
                    wrap(&notification(1))
                ),
                "document type",
            ),
            (wrap(""), "no Notification"),
            (deep, "nested too deeply"),
            ("<a><b></a>".to_owned(), "not well-formed"),
            (
                wrap("<Notification><sObject xsi:type=\"sf:Opportunity\"/></Notification>"),
                "no Id",
            ),
        ];
        for (body, expected) in cases {
            let err = split(body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        assert_eq!(
            split(wrap(&(0..100).map(notification).collect::<String>()).as_bytes())
                .unwrap()
                .len(),
            100
        );
    }
}
