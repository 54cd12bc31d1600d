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

use crate::{EventOwners, IncomingEvent, PayloadError};

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
    // No `trim_text`: quick-xml trims each piece of text on its own, which would eat the
    // spaces around a reference (`Ben &amp; Jerry`); values are trimmed whole instead.
    let mut reader = Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut message = Message {
        organization_id: String::new(),
        action_id: String::new(),
        notifications: Vec::new(),
    };
    let mut current: Option<Notification> = None;
    // The text of the element being read.
    let mut value = String::new();
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
                value.clear();
                path.push(name);
            }
            Event::Empty(_) => {}
            // quick-xml reports text in pieces around each reference (`Ben &amp; Jerry` is
            // text, a reference, text): the pieces are gathered and the value is taken at the
            // element's end.
            Event::Text(text) => value.push_str(&text),
            Event::CData(data) => value.push_str(&data.xml10_content()),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    // `&#0;` is refused here: U+0000 is not an XML character.
                    Err(err) => return Err(bad(&format!("not well-formed XML ({err})"))),
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&reference)
                        .ok_or_else(|| bad("entities other than XML's own are not accepted"))?
                        .to_owned(),
                };
                value.push_str(&resolved);
            }
            Event::End(end) => {
                let name = local(end.name().as_ref().as_bytes()).to_vec();
                let text = std::mem::take(&mut value).trim().to_owned();
                let depth = path.len();
                let parent = depth.checked_sub(2).and_then(|i| path.get(i));
                match (parent.map(Vec::as_slice), name.as_slice()) {
                    (Some(b"notifications"), b"OrganizationId") => message.organization_id = text,
                    (Some(b"notifications"), b"ActionId") => message.action_id = text,
                    (Some(b"Notification"), b"Id") => {
                        if let Some(notification) = current.as_mut() {
                            notification.id = text;
                        }
                    }
                    (Some(b"sObject"), field) => {
                        if let Some(notification) = current.as_mut() {
                            let field = String::from_utf8_lossy(field).into_owned();
                            notification.fields.insert(field, Value::String(text));
                        }
                    }
                    _ => {}
                }
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
pub(crate) fn owners(payload: &Value) -> Result<EventOwners, PayloadError> {
    let fields = payload
        .get("fields")
        .and_then(Value::as_object)
        .ok_or_else(|| PayloadError::invalid("outbound message event has no fields"))?;
    // Field values are text (the XML's); the shared reader refuses U+0000 (`&#0;`) by name.
    let text = |name: &str| crate::fields::text(fields.get(name), &format!("sObject.{name}"));
    if payload.get("object").and_then(Value::as_str) == Some("User") {
        let external_id =
            text("Id")?.ok_or_else(|| PayloadError::invalid("User notification without Id"))?;
        let status = text("IsActive")?.map(|active| {
            if active == "true" {
                domain::OwnerStatus::Active
            } else {
                domain::OwnerStatus::Inactive
            }
        });
        return Ok(EventOwners::Named(vec![OwnerFacts {
            external_id,
            email: text("Email")?,
            first_name: text("FirstName")?,
            last_name: text("LastName")?,
            avatar_url: text("FullPhotoUrl")?,
            status,
            title: text("Title")?,
            department: text("Department")?,
            location: text("City")?,
            employee_ids: text("EmployeeNumber")?.into_iter().collect(),
            member_type: text("UserType")?,
        }]));
    }
    let owner = text("OwnerId")?.ok_or_else(|| {
        PayloadError::invalid(
            "the notification's sObject has no OwnerId (add it to the outbound message's fields)",
        )
    })?;
    Ok(EventOwners::ById(vec![OwnerFacts {
        external_id: owner,
        ..OwnerFacts::default()
    }]))
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
        let EventOwners::ById(owners) = owners(&event.payload).unwrap() else {
            panic!("an opportunity names its owner by id")
        };
        assert_eq!(owners[0].external_id, "0055w00000BhqR0AAJ");
        assert_eq!(owners[0].email, None);
    }

    fn user_message(last_name: &str) -> String {
        format!(
            "<Envelope><Body><notifications><OrganizationId>00D</OrganizationId><Notification>\
             <Id>04l1</Id><sObject xsi:type=\"sf:User\"><sf:Id>005A1</sf:Id>\
             <sf:Email>ann.lee@example.com</sf:Email><sf:FirstName>Ann</sf:FirstName>\
             <sf:LastName>{last_name}</sf:LastName><sf:IsActive>false</sf:IsActive>\
             <sf:EmployeeNumber>AL01</sf:EmployeeNumber></sObject></Notification>\
             </notifications></Body></Envelope>"
        )
    }

    #[test]
    fn references_and_cdata_are_part_of_the_value() {
        let message = wrap_one(
            "<sf:Name>Ben &amp; Jerry&#39;s &lt;East&gt;</sf:Name><sf:Note><![CDATA[a<b]]></sf:Note><sf:OwnerId>005</sf:OwnerId>",
        );
        let events = split(message.as_bytes()).unwrap();
        assert_eq!(events[0].payload["fields"]["Name"], "Ben & Jerry's <East>");
        assert_eq!(events[0].payload["fields"]["Note"], "a<b");
        for (inner, expected) in [
            ("<sf:OwnerId>005&#0;</sf:OwnerId>", "not well-formed"),
            (
                "<sf:OwnerId>005&custom;</sf:OwnerId>",
                "entities other than XML's own",
            ),
        ] {
            let err = split(wrap_one(inner).as_bytes()).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
    }

    fn wrap_one(fields: &str) -> String {
        format!(
            "<Envelope><Body><notifications><OrganizationId>00D</OrganizationId><Notification>\
             <Id>04l1</Id><sObject xsi:type=\"sf:Opportunity\">{fields}</sObject>\
             </Notification></notifications></Body></Envelope>"
        )
    }

    #[test]
    fn a_user_notification_is_the_person() {
        let events = split(user_message("Lee").as_bytes()).unwrap();
        assert_eq!(events[0].event_type, "user.updated");
        let EventOwners::Named(owners) = owners(&events[0].payload).unwrap() else {
            panic!("a user is named")
        };
        assert_eq!(owners[0].external_id, "005A1");
        assert_eq!(owners[0].email.as_deref(), Some("ann.lee@example.com"));
        assert_eq!(owners[0].first_name.as_deref(), Some("Ann"));
        assert_eq!(owners[0].last_name.as_deref(), Some("Lee"));
        assert_eq!(owners[0].status, Some(domain::OwnerStatus::Inactive));
        assert_eq!(owners[0].employee_ids, vec!["AL01".to_owned()]);
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
