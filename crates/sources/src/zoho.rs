//! Zoho CRM notifications (`source: zoho`): a callback for a watched channel, `{server_time,
//! module, operation, ids: [...], channel_id, token, resource_uri, query_params,
//! affected_fields, affected_values?}`, where `ids` may batch several records.
//!
//! Each id is its own event, typed `{module in lower case}.{operation}` (`deals.update`) and
//! deduplicated on `{channel_id}:{server_time}:{id}:{operation}` (`server_time` is the
//! callback's time in milliseconds; Zoho sends no delivery id). At most 100 ids per callback.
//!
//! `token` is the channel's shared secret (the verifier compares it), so the body is never
//! kept: each event's payload is built afresh with only `module`, `operation`, `record_id`,
//! `channel_id`, `server_time` and, when the channel returns affected values
//! (`return_affected_field_values`) including the record's `Owner`, `owner_id`.
//!
//! Owners: a deletion concerns no one; a known `owner_id` names the owner by id; otherwise the
//! record, whose owner the directory reads (`object` is the module's API name as given,
//! `Deals`).

use serde_json::{Map, Value, json};

use crate::fields;
use crate::{EventOwners, IncomingEvent, PayloadError};

/// The most records one callback may name.
const MAX_IDS: usize = 100;

/// The record's new owner from `affected_values`, when the channel returns them.
fn owner_of(affected: Option<&Vec<Value>>, record: &str) -> Result<Option<String>, PayloadError> {
    for (i, entry) in affected.into_iter().flatten().enumerate() {
        let at = format!("affected_values[{i}]");
        let entry = fields::required_object(Some(entry), &at)?;
        if fields::id(entry.get("record_id"), &format!("{at}.record_id"))?.as_deref()
            != Some(record)
        {
            continue;
        }
        let Some(values) = fields::object(entry.get("values"), &format!("{at}.values"))? else {
            continue;
        };
        let path = format!("{at}.values.Owner");
        if let Some(owner) = fields::object(values.get("Owner"), &path)? {
            return fields::id(owner.get("id"), &format!("{path}.id"));
        }
    }
    Ok(None)
}

pub(crate) fn split(body: &[u8]) -> Result<Vec<IncomingEvent>, PayloadError> {
    let value = fields::parse_json(body)?;
    let Value::Object(callback) = &value else {
        return Err(PayloadError::invalid(
            "a Zoho CRM notification is a JSON object",
        ));
    };
    let module = fields::required_text(callback.get("module"), "module")?;
    let operation = fields::required_text(callback.get("operation"), "operation")?;
    let channel = fields::required_id(callback.get("channel_id"), "channel_id")?;
    let server_time = match callback.get("server_time") {
        Some(Value::Number(number)) => number
            .as_i64()
            .ok_or_else(|| PayloadError::invalid("server_time must be milliseconds"))?,
        None | Some(Value::Null) => return Err(PayloadError::invalid("server_time is required")),
        Some(_) => return Err(PayloadError::invalid("server_time must be a number")),
    };
    let ids = fields::array(callback.get("ids"), "ids")?
        .ok_or_else(|| PayloadError::invalid("ids is required"))?;
    if ids.is_empty() {
        return Err(PayloadError::invalid("ids must not be empty"));
    }
    if ids.len() > MAX_IDS {
        return Err(PayloadError::invalid(format!(
            "ids holds more than {MAX_IDS} entries"
        )));
    }
    let affected = fields::array(callback.get("affected_values"), "affected_values")?;
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let record = fields::required_id(Some(id), &format!("ids[{i}]"))?;
            let mut payload = Map::new();
            payload.insert("module".to_owned(), json!(module));
            payload.insert("operation".to_owned(), json!(operation));
            payload.insert("record_id".to_owned(), json!(record));
            payload.insert("channel_id".to_owned(), json!(channel));
            payload.insert("server_time".to_owned(), json!(server_time));
            if let Some(owner) = owner_of(affected, &record)? {
                payload.insert("owner_id".to_owned(), json!(owner));
            }
            Ok(IncomingEvent {
                provider_event_id: format!("{channel}:{server_time}:{record}:{operation}"),
                event_type: format!("{}.{operation}", module.to_lowercase()),
                occurred_at: Some(domain::Timestamp::from_millis(server_time)),
                payload: Value::Object(payload),
            })
        })
        .collect()
}

/// Who one record's event is about. `payload` is the object [`split`] built.
pub(crate) fn owners(payload: &Value) -> Result<EventOwners, PayloadError> {
    let operation = fields::required_text(payload.get("operation"), "operation")?;
    if operation.eq_ignore_ascii_case("delete") {
        return Ok(EventOwners::NoOwner(
            "a deleted Zoho CRM record names no owner to provision".to_owned(),
        ));
    }
    if let Some(owner) = fields::id(payload.get("owner_id"), "owner_id")? {
        return Ok(EventOwners::ById(vec![fields::by_id(owner, None)]));
    }
    Ok(EventOwners::Records {
        object: fields::required_text(payload.get("module"), "module")?,
        ids: vec![fields::required_id(payload.get("record_id"), "record_id")?],
    })
}

#[cfg(test)]
mod tests {
    use domain::Timestamp;

    use super::*;

    fn sample() -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/payloads/zoho-crm-notification.json"
        ))
        .unwrap();
        let sample: Value = serde_json::from_str(&text).unwrap();
        let mut callback = sample["callback_example"].clone();
        callback.as_object_mut().unwrap().remove("_example_note");
        callback
    }

    #[test]
    fn the_sample_is_one_deal_update_owned_by_its_owner() {
        let events = split(sample().to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(
            event.provider_event_id,
            "1105420521999070702:1750102639787:6756839000000575405:update"
        );
        assert_eq!(event.event_type, "deals.update");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::from_millis(1_750_102_639_787))
        );
        assert_eq!(
            event.payload,
            json!({"module": "Deals", "operation": "update",
                "record_id": "6756839000000575405", "channel_id": "1105420521999070702",
                "server_time": 1_750_102_639_787_i64, "owner_id": "6756839000000411001"})
        );
        assert!(
            !event.payload.to_string().contains("c3504777"),
            "the token is never kept"
        );
        let EventOwners::ById(owners) = owners(&event.payload).unwrap() else {
            panic!("the owner is named by id")
        };
        assert_eq!(owners[0].external_id, "6756839000000411001");
        assert_eq!(owners[0].email, None);
    }

    #[test]
    fn each_id_is_an_event_and_unknown_owners_are_records() {
        let mut callback = sample();
        callback["ids"] = json!(["6756839000000575405", "111", 222]);
        let events = split(callback.to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[1].provider_event_id,
            "1105420521999070702:1750102639787:111:update"
        );
        assert_eq!(
            owners(&events[1].payload).unwrap(),
            EventOwners::Records {
                object: "Deals".to_owned(),
                ids: vec!["111".to_owned()]
            }
        );
        assert_eq!(events[2].payload["record_id"], "222");
        assert!(matches!(
            owners(&events[0].payload).unwrap(),
            EventOwners::ById(_)
        ));
        callback["operation"] = json!("delete");
        let events = split(callback.to_string().as_bytes()).unwrap();
        assert_eq!(events[0].event_type, "deals.delete");
        assert!(matches!(
            owners(&events[0].payload).unwrap(),
            EventOwners::NoOwner(_)
        ));
    }

    #[test]
    fn malformed_callbacks_name_the_field() {
        let with = |field: &str, value: Value| {
            let mut callback = sample();
            callback[field] = value;
            callback.to_string()
        };
        let too_many = Value::Array((0..=MAX_IDS).map(|n| json!(n.to_string())).collect());
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for (body, expected) in [
            ("[]".to_owned(), "a JSON object"),
            (with("ids", json!([])), "ids must not be empty"),
            (with("ids", json!("1")), "ids must be an array"),
            (with("ids", too_many), "ids holds more than 100 entries"),
            (
                with("ids", json!([{"id": 1}])),
                "ids[0] must be a string or an integer",
            ),
            (
                with("ids", json!(["1\u{0}"])),
                "ids[0] must not contain U+0000",
            ),
            (with("module", json!(null)), "module is required"),
            (with("operation", json!(1)), "operation must be a string"),
            (
                with("server_time", json!("now")),
                "server_time must be a number",
            ),
            (with("channel_id", json!(null)), "channel_id is required"),
            (
                with("affected_values", json!({})),
                "affected_values must be an array",
            ),
            (
                with(
                    "affected_values",
                    json!([{"record_id": "6756839000000575405", "values": {"Owner": {"id": true}}}]),
                ),
                "affected_values[0].values.Owner.id must be a string or an integer",
            ),
            (with("query_params", Value::String(deep.clone())), ""),
            (format!(r#"{{"ids": {deep}}}"#), "recursion limit"),
        ] {
            match split(body.as_bytes()) {
                Err(err) => assert!(
                    !expected.is_empty() && err.to_string().contains(expected),
                    "{expected}: {err}"
                ),
                // A deep string is just text, not nesting.
                Ok(_) => assert!(expected.is_empty(), "{expected}: accepted"),
            }
        }
    }
}
