//! ConnectWise PSA callbacks (`source: connectwise`): one envelope per request, deduplicated on
//! `MessageId`, typed `<Type>.<Action>` (`opportunity.updated`, `member.added`). The changed
//! record travels as a JSON-encoded string in `Entity`; it is decoded into the event's payload
//! (`entity`) so later stages read it as JSON.
//!
//! Owners: a `member` callback is the person itself (named from the member record); an
//! `opportunity` names its `primarySalesRep` and a `ticket` its `owner`, both as member
//! references `{id, identifier, name}` whose details the directory looks up. Deletions and
//! every other callback type (contacts, companies…) concern no member.

use domain::{OwnerFacts, OwnerStatus, Timestamp};
use serde_json::{Map, Value};

use crate::fields;
use crate::{EventOwners, IncomingEvent, PayloadError};

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

/// Who one callback is about. `payload` is the envelope [`split`] produced.
pub(crate) fn owners(payload: &Value) -> Result<EventOwners, PayloadError> {
    let kind = fields::required_text(payload.get("Type"), "Type")?.to_lowercase();
    let action = fields::required_text(payload.get("Action"), "Action")?.to_lowercase();
    let deleted = action == "deleted";
    match kind.as_str() {
        "member" => {
            let entity = fields::required_object(payload.get("entity"), "entity")?;
            member(entity, deleted).map(|member| EventOwners::Named(vec![member]))
        }
        "opportunity" | "ticket" if deleted => Ok(EventOwners::NoOwner(format!(
            "a deleted ConnectWise {kind} names no member to provision"
        ))),
        "opportunity" => reference(
            payload,
            "primarySalesRep",
            "the opportunity has no primary sales rep",
        ),
        "ticket" => reference(payload, "owner", "the ticket has no owner"),
        other => Ok(EventOwners::NoOwner(format!(
            "ConnectWise {other} callbacks name no member"
        ))),
    }
}

/// A member record (`GET /system/members/{id}`) as owner facts.
fn member(entity: &Map<String, Value>, deleted: bool) -> Result<OwnerFacts, PayloadError> {
    let text = |field: &str| fields::text(entity.get(field), &format!("entity.{field}"));
    let name_of = |field: &str| -> Result<Option<String>, PayloadError> {
        let path = format!("entity.{field}");
        match fields::object(entity.get(field), &path)? {
            Some(reference) => fields::text(reference.get("name"), &format!("{path}.name")),
            None => Ok(None),
        }
    };
    let external_id = fields::required_id(entity.get("id"), "entity.id")?;
    let status = if deleted {
        Some(OwnerStatus::Deleted)
    } else {
        fields::flag(entity.get("inactiveFlag"), "entity.inactiveFlag")?.map(|inactive| {
            if inactive {
                OwnerStatus::Inactive
            } else {
                OwnerStatus::Active
            }
        })
    };
    Ok(OwnerFacts {
        external_id,
        email: email(entity)?,
        first_name: text("firstName")?,
        last_name: text("lastName")?,
        // `photo` is a document reference ({id, name}), not an address: fetching it needs the
        // CRM's credentials, and a bare document name would be a broken avatar link.
        avatar_url: None,
        status,
        member_type: text("licenseClass")?,
        // The login identifier, then the HR employee number when set (the model spells the
        // field `employeeIdentifer`).
        employee_ids: text("identifier")?
            .into_iter()
            .chain(text("employeeIdentifer")?)
            .collect(),
        title: match name_of("workRole")? {
            Some(role) => Some(role),
            None => text("title")?,
        },
        department: name_of("defaultDepartment")?,
        location: name_of("defaultLocation")?,
    })
}

/// The member's address: `primaryEmail`, else `officeEmail`, else the default. In the Member
/// model `defaultEmail` is a selector (`Office`, `Mobile`, `Home`, like `defaultPhone`), not an
/// address: it is followed to the address it names, and used itself only if it is one.
fn email(entity: &Map<String, Value>) -> Result<Option<String>, PayloadError> {
    let text = |field: &str| fields::text(entity.get(field), &format!("entity.{field}"));
    for field in ["primaryEmail", "officeEmail"] {
        if let Some(address) = text(field)? {
            return Ok(Some(address));
        }
    }
    Ok(match text("defaultEmail")? {
        Some(address) if address.contains('@') => Some(address),
        Some(selector) => match selector.to_ascii_lowercase().as_str() {
            "mobile" => text("mobileEmail")?,
            "home" => text("homeEmail")?,
            _ => None,
        },
        None => None,
    })
}

/// A member reference (`{id, identifier, name}`) inside the entity: the owner by id, with the
/// identifier and display name as hints for the directory.
fn reference(payload: &Value, field: &str, absent: &str) -> Result<EventOwners, PayloadError> {
    let entity = fields::required_object(payload.get("entity"), "entity")?;
    let path = format!("entity.{field}");
    let Some(reference) = fields::object(entity.get(field), &path)? else {
        return Ok(EventOwners::NoOwner(absent.to_owned()));
    };
    let id = fields::required_id(reference.get("id"), &format!("{path}.id"))?;
    let name = fields::text(reference.get("name"), &format!("{path}.name"))?;
    let mut owner = fields::by_id(id, name.as_deref());
    owner.employee_ids = fields::text(reference.get("identifier"), &format!("{path}.identifier"))?
        .into_iter()
        .collect();
    Ok(EventOwners::ById(vec![owner]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn samples() -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/payloads/connectwise-callback-and-member.json"
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// A callback envelope of `kind`/`action` carrying `entity`, JSON-encoded as ConnectWise
    /// sends it.
    fn callback(kind: &str, action: &str, entity: &Value) -> Value {
        json!({"MessageId": "m-1", "Type": kind, "Action": action, "ID": 1,
            "Entity": entity.to_string()})
    }

    fn read(body: &Value) -> Result<EventOwners, PayloadError> {
        let events = split(body.to_string().as_bytes())?;
        assert_eq!(events.len(), 1);
        owners(&events[0].payload)
    }

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
    fn the_sample_contact_callback_names_no_member() {
        let mut envelope = samples()["callback_envelope_example"].clone();
        envelope.as_object_mut().unwrap().remove("_source");
        assert_eq!(
            read(&envelope).unwrap(),
            EventOwners::NoOwner("ConnectWise contact callbacks name no member".to_owned())
        );
    }

    #[test]
    fn the_sample_member_in_a_member_callback_is_the_owner() {
        let member = samples()["member_model_GET_system_members_id"]["example"].clone();
        let EventOwners::Named(owners) = read(&callback("member", "updated", &member)).unwrap()
        else {
            panic!("a member callback names the member")
        };
        assert_eq!(owners.len(), 1);
        let jane = &owners[0];
        assert_eq!(jane.external_id, "178");
        assert_eq!(jane.employee_ids, vec!["jdoe".to_owned()]);
        assert_eq!(jane.email.as_deref(), Some("jane.doe@example.com"));
        assert_eq!(jane.first_name.as_deref(), Some("Jane"));
        assert_eq!(jane.last_name.as_deref(), Some("Doe"));
        assert_eq!(jane.status, Some(OwnerStatus::Active));
        assert_eq!(jane.member_type.as_deref(), Some("F"));
        assert_eq!(jane.department.as_deref(), Some("Services"));
        assert_eq!(jane.title.as_deref(), Some("Field Technician"));
        assert_eq!(jane.location, None);
        assert_eq!(jane.avatar_url, None, "photo is a document, not a URL");

        let EventOwners::Named(deleted) = read(&callback("member", "deleted", &member)).unwrap()
        else {
            panic!("a deleted member is still named")
        };
        assert_eq!(deleted[0].status, Some(OwnerStatus::Deleted));
    }

    #[test]
    fn member_fields_fall_back_as_the_model_allows() {
        let member = json!({"id": 9, "identifier": "bob", "firstName": "Bob", "lastName": "Ray",
            "inactiveFlag": true, "title": "Engineer", "defaultEmail": "Mobile",
            "mobileEmail": "bob@mobile.example", "defaultLocation": {"id": 2, "name": "Tampa"},
            "employeeIdentifer": "E-77"});
        let EventOwners::Named(owners) = read(&callback("Member", "Added", &member)).unwrap()
        else {
            panic!("named")
        };
        let bob = &owners[0];
        assert_eq!(bob.status, Some(OwnerStatus::Inactive));
        assert_eq!(bob.title.as_deref(), Some("Engineer"));
        assert_eq!(bob.email.as_deref(), Some("bob@mobile.example"));
        assert_eq!(bob.location.as_deref(), Some("Tampa"));
        assert_eq!(bob.employee_ids, vec!["bob".to_owned(), "E-77".to_owned()]);
        let office = json!({"id": 9, "officeEmail": "o@example.com", "defaultEmail": "Office"});
        let EventOwners::Named(owners) = read(&callback("member", "updated", &office)).unwrap()
        else {
            panic!("named")
        };
        assert_eq!(owners[0].email.as_deref(), Some("o@example.com"));
        let selector_only = json!({"id": 9, "defaultEmail": "Office"});
        let EventOwners::Named(owners) =
            read(&callback("member", "updated", &selector_only)).unwrap()
        else {
            panic!("named")
        };
        assert_eq!(owners[0].email, None, "a selector word is not an address");
    }

    #[test]
    fn opportunities_and_tickets_name_members_by_reference() {
        let opportunity = json!({"id": 5, "name": "Big deal", "primarySalesRep":
            {"id": 178, "identifier": "jdoe", "name": "Jane Q Doe",
             "_info": {"member_href": "https://example/members/178"}}});
        let EventOwners::ById(owners) =
            read(&callback("opportunity", "updated", &opportunity)).unwrap()
        else {
            panic!("an opportunity names its sales rep by id")
        };
        assert_eq!(owners[0].external_id, "178");
        assert_eq!(owners[0].employee_ids, vec!["jdoe".to_owned()]);
        assert_eq!(owners[0].first_name.as_deref(), Some("Jane Q"));
        assert_eq!(owners[0].last_name.as_deref(), Some("Doe"));
        assert_eq!(owners[0].email, None);
        assert_eq!(
            read(&callback("opportunity", "deleted", &opportunity)).unwrap(),
            EventOwners::NoOwner(
                "a deleted ConnectWise opportunity names no member to provision".to_owned()
            )
        );
        assert_eq!(
            read(&callback("opportunity", "added", &json!({"id": 5}))).unwrap(),
            EventOwners::NoOwner("the opportunity has no primary sales rep".to_owned())
        );
        let ticket = json!({"id": 7, "owner": {"id": 31, "identifier": "ops"}});
        let EventOwners::ById(owners) = read(&callback("ticket", "updated", &ticket)).unwrap()
        else {
            panic!("a ticket names its owner by id")
        };
        assert_eq!(owners[0].external_id, "31");
        assert_eq!(owners[0].employee_ids, vec!["ops".to_owned()]);
        assert_eq!(owners[0].first_name, None);
        assert_eq!(
            read(&callback("ticket", "added", &json!({"id": 7}))).unwrap(),
            EventOwners::NoOwner("the ticket has no owner".to_owned())
        );
        assert_eq!(
            read(&callback("company", "added", &json!({"id": 7}))).unwrap(),
            EventOwners::NoOwner("ConnectWise company callbacks name no member".to_owned())
        );
    }

    #[test]
    fn malformed_entities_name_the_field() {
        for (body, expected) in [
            (
                callback("member", "added", &json!({"firstName": "X"})),
                "entity.id is required",
            ),
            (
                callback("member", "added", &json!({"id": 1, "primaryEmail": 5})),
                "entity.primaryEmail must be a string",
            ),
            (
                callback("member", "added", &json!({"id": 1, "inactiveFlag": "no"})),
                "entity.inactiveFlag must be true or false",
            ),
            (
                callback("member", "added", &json!({"id": 1, "workRole": "tech"})),
                "entity.workRole must be an object",
            ),
            (
                callback("member", "added", &json!({"id": 1, "lastName": "D\u{0}e"})),
                "entity.lastName must not contain U+0000",
            ),
            (
                callback("member", "added", &json!([1])),
                "entity must be an object",
            ),
            (
                callback(
                    "opportunity",
                    "added",
                    &json!({"primarySalesRep": {"name": "X"}}),
                ),
                "entity.primarySalesRep.id is required",
            ),
            (
                callback(
                    "opportunity",
                    "added",
                    &json!({"primarySalesRep": {"id": 1.5}}),
                ),
                "entity.primarySalesRep.id must be a string or an integer",
            ),
        ] {
            let err = read(&body).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        // Nested beyond serde_json's limit inside the encoded entity: refused, no overflow.
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let body = json!({"MessageId": "m", "Type": "member", "Action": "added", "Entity": deep});
        let err = split(body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("JSON-encoded"), "{err}");
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
