//! Pipedrive webhooks (`source: pipedrive`), both versions: one event per request.
//!
//! - v1 (`meta.v: 1`): `meta.object` and `meta.action` (`added`, `updated`, `merged`,
//!   `deleted`), the record in `current` (and `previous`).
//! - v2 (`meta.version: "2.0"`, the default for webhooks created since March 2025):
//!   `meta.entity` and `meta.action` (`create`, `change`, `delete`), the record in `data`.
//!
//! The type is `{object}.{action}` in the sender's words (`deal.updated`, `deal.change`). The
//! dedupe key is `{webhook_id}:{object}:{entity id}:{action}:{timestamp}`: Pipedrive sends no
//! delivery id, and every part is the same on a retry, while the retry counters (`retry`,
//! `meta.attempt`) are left out on purpose. `meta.timestamp` (Unix seconds, or RFC 3339 text)
//! is when the change happened.
//!
//! Owners: a `user` event is the person (named from the record); any other record (deal,
//! person, organization, activity, lead, product…) names its owner by id (v1 `user_id`, v2
//! `owner_id`, with v1's `owner_name` as a name hint) for the directory to look up. Deletions
//! and records without an owner concern no one.

use domain::{OwnerFacts, OwnerStatus, Timestamp};
use serde_json::{Map, Value};

use crate::fields;
use crate::{EventOwners, IncomingEvent, PayloadError};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    /// Where the record is.
    const fn record_field(self) -> &'static str {
        match self {
            Version::V1 => "current",
            Version::V2 => "data",
        }
    }
}

fn version(body: &Map<String, Value>, meta: &Map<String, Value>) -> Result<Version, PayloadError> {
    if meta.get("version").and_then(Value::as_str) == Some("2.0") {
        return Ok(Version::V2);
    }
    if meta.get("v").and_then(Value::as_i64) == Some(1) {
        return Ok(Version::V1);
    }
    // Older or trimmed bodies may lack the version marker; the record's field tells.
    match (body.contains_key("data"), body.contains_key("current")) {
        (true, false) => Ok(Version::V2),
        (false, true) => Ok(Version::V1),
        _ => Err(PayloadError::invalid(
            "not a Pipedrive webhook: expected meta.v = 1 (v1) or meta.version = \"2.0\" (v2)",
        )),
    }
}

struct Meta<'a> {
    meta: &'a Map<String, Value>,
    version: Version,
    object: String,
    action: String,
    body: &'a Map<String, Value>,
}

fn meta(value: &Value) -> Result<Meta<'_>, PayloadError> {
    let Value::Object(body) = value else {
        return Err(PayloadError::invalid(
            "a Pipedrive webhook body is a JSON object",
        ));
    };
    let meta = fields::required_object(body.get("meta"), "meta")?;
    let version = version(body, meta)?;
    let object = match version {
        Version::V1 => fields::required_text(meta.get("object"), "meta.object")?,
        Version::V2 => fields::required_text(meta.get("entity"), "meta.entity")?,
    };
    let action = fields::required_text(meta.get("action"), "meta.action")?;
    Ok(Meta {
        meta,
        version,
        object: object.to_lowercase(),
        action: action.to_lowercase(),
        body,
    })
}

pub(crate) fn split(body: &[u8]) -> Result<Vec<IncomingEvent>, PayloadError> {
    let value = fields::parse_json(body)?;
    let parsed = meta(&value)?;
    let meta = parsed.meta;
    let record_field = parsed.version.record_field();
    let record = fields::object(parsed.body.get(record_field), record_field)?;
    let previous = fields::object(parsed.body.get("previous"), "previous")?;
    // The record's id: in meta (v2 `entity_id`, both `id`), else in the record itself (a v1
    // deletion has only `previous`).
    let record_id = format!("{record_field}.id");
    let candidates = [
        (meta.get("entity_id"), "meta.entity_id"),
        (meta.get("id"), "meta.id"),
        (record.and_then(|r| r.get("id")), record_id.as_str()),
        (previous.and_then(|r| r.get("id")), "previous.id"),
    ];
    let entity_id = candidates
        .into_iter()
        .find(|(value, _)| value.is_some_and(|v| !v.is_null()))
        .map(|(value, path)| fields::required_id(value, path))
        .transpose()?
        .ok_or_else(|| PayloadError::invalid("meta.id is required (the changed record's id)"))?;
    let webhook = fields::key_part(meta.get("webhook_id"), "meta.webhook_id")?;
    let timestamp = fields::key_part(meta.get("timestamp"), "meta.timestamp")?;
    let occurred_at = match meta.get("timestamp") {
        // Pipedrive's numbers are Unix seconds, whatever their size.
        Some(Value::Number(number)) => {
            Some(Timestamp::from_unix_seconds(number.as_i64().ok_or_else(
                || PayloadError::invalid("meta.timestamp must be Unix seconds"),
            )?))
        }
        other => fields::instant(other, "meta.timestamp")?,
    };
    let Meta { object, action, .. } = parsed;
    Ok(vec![IncomingEvent {
        provider_event_id: format!("{webhook}:{object}:{entity_id}:{action}:{timestamp}"),
        event_type: format!("{object}.{action}"),
        occurred_at,
        payload: value,
    }])
}

/// Who one webhook is about.
pub(crate) fn owners(payload: &Value) -> Result<EventOwners, PayloadError> {
    let Meta {
        version,
        object,
        action,
        body,
        ..
    } = meta(payload)?;
    if matches!(action.as_str(), "deleted" | "delete") {
        return Ok(EventOwners::NoOwner(format!(
            "a deleted Pipedrive {object} names no owner to provision"
        )));
    }
    let field = version.record_field();
    let Some(record) = fields::object(body.get(field), field)? else {
        return Ok(EventOwners::NoOwner(format!(
            "the Pipedrive {object} event carries no record ({field})"
        )));
    };
    let path = |name: &str| format!("{field}.{name}");
    if object == "user" {
        return user(record, field).map(|user| EventOwners::Named(vec![user]));
    }
    // v1 records say `user_id` (leads: `owner_id`), v2 records `owner_id`.
    let keys = match version {
        Version::V1 => ["user_id", "owner_id"],
        Version::V2 => ["owner_id", "user_id"],
    };
    let Some((key, owner)) = keys
        .into_iter()
        .find_map(|key| record.get(key).filter(|v| !v.is_null()).map(|v| (key, v)))
    else {
        return Ok(EventOwners::NoOwner(format!(
            "the Pipedrive {object} has no owner"
        )));
    };
    // The API (and some v1 webhooks) expand the owner into `{id, name, email, …}`.
    let (id, name) = match owner {
        Value::Object(expanded) => (
            fields::required_id(expanded.get("id"), &format!("{}.id", path(key)))?,
            fields::text(expanded.get("name"), &format!("{}.name", path(key)))?,
        ),
        other => (
            fields::required_id(Some(other), &path(key))?,
            fields::text(record.get("owner_name"), &path("owner_name"))?,
        ),
    };
    Ok(EventOwners::ById(vec![fields::by_id(id, name.as_deref())]))
}

/// A Pipedrive user record (`GET /v1/users/{id}`: id, name, email, active_flag).
fn user(record: &Map<String, Value>, field: &str) -> Result<OwnerFacts, PayloadError> {
    let path = |name: &str| format!("{field}.{name}");
    let external_id = fields::required_id(record.get("id"), &path("id"))?;
    let (first_name, last_name) = fields::text(record.get("name"), &path("name"))?
        .as_deref()
        .map(fields::split_name)
        .unwrap_or_default();
    let active = match fields::flag(record.get("active_flag"), &path("active_flag"))? {
        Some(active) => Some(active),
        None => fields::flag(record.get("is_active"), &path("is_active"))?,
    };
    Ok(OwnerFacts {
        external_id,
        email: fields::text(record.get("email"), &path("email"))?,
        first_name,
        last_name,
        status: active.map(|active| {
            if active {
                OwnerStatus::Active
            } else {
                OwnerStatus::Inactive
            }
        }),
        ..OwnerFacts::default()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn samples() -> Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/payloads/pipedrive-webhooks.json"
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn sample(name: &str) -> Value {
        let mut sample = samples()[name].clone();
        sample.as_object_mut().unwrap().remove("_source");
        sample
    }

    fn one(body: &Value) -> IncomingEvent {
        let mut events = split(body.to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    #[test]
    fn the_v1_sample_is_a_deal_update_owned_by_jane() {
        let event = one(&sample("v1_updated_deal"));
        assert_eq!(event.provider_event_id, "171:deal:201:updated:1707436800");
        assert_eq!(event.event_type, "deal.updated");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::from_unix_seconds(1_707_436_800))
        );
        let EventOwners::ById(owners) = owners(&event.payload).unwrap() else {
            panic!("a deal names its owner by id")
        };
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].external_id, "2428657");
        assert_eq!(owners[0].first_name.as_deref(), Some("Jane"));
        assert_eq!(owners[0].last_name.as_deref(), Some("Doe"));
        assert_eq!(owners[0].email, None);
    }

    #[test]
    fn the_v2_sample_is_a_deal_change_owned_by_its_owner_id() {
        let event = one(&sample("v2_change_deal"));
        assert_eq!(event.provider_event_id, "99:deal:1:change:1727447128");
        assert_eq!(event.event_type, "deal.change");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::from_unix_seconds(1_727_447_128))
        );
        let EventOwners::ById(owners) = owners(&event.payload).unwrap() else {
            panic!("a deal names its owner by id")
        };
        assert_eq!(owners[0].external_id, "18487521");
        assert_eq!(owners[0].first_name, None);
    }

    #[test]
    fn retries_keep_the_key() {
        let mut first = sample("v2_change_deal");
        let key = one(&first).provider_event_id;
        first["meta"]["attempt"] = json!(3);
        assert_eq!(one(&first).provider_event_id, key);
        let mut v1 = sample("v1_updated_deal");
        let key = one(&v1).provider_event_id;
        v1["retry"] = json!(2);
        assert_eq!(one(&v1).provider_event_id, key);
    }

    #[test]
    fn users_are_named_and_deletions_concern_no_one() {
        let user = json!({"v": 1, "meta": {"v": 1, "action": "updated", "object": "user",
            "id": 7, "webhook_id": "3", "timestamp": "2024-02-09T00:00:00Z"},
            "current": {"id": 7, "name": "Ann Marie Lee", "email": "ann@example.com",
                "active_flag": false}});
        let event = one(&user);
        assert_eq!(event.event_type, "user.updated");
        assert_eq!(
            event.occurred_at,
            Some(Timestamp::from_unix_seconds(1_707_436_800))
        );
        let EventOwners::Named(users) = owners(&event.payload).unwrap() else {
            panic!("a user is the person")
        };
        assert_eq!(users[0].external_id, "7");
        assert_eq!(users[0].first_name.as_deref(), Some("Ann Marie"));
        assert_eq!(users[0].last_name.as_deref(), Some("Lee"));
        assert_eq!(users[0].email.as_deref(), Some("ann@example.com"));
        assert_eq!(users[0].status, Some(OwnerStatus::Inactive));

        let deleted = json!({"meta": {"version": "2.0", "action": "delete", "entity": "deal",
            "entity_id": 4, "webhook_id": 9, "timestamp": 1}, "data": null,
            "previous": {"id": 4, "owner_id": 5}});
        let event = one(&deleted);
        assert_eq!(event.provider_event_id, "9:deal:4:delete:1");
        assert!(
            matches!(owners(&event.payload).unwrap(), EventOwners::NoOwner(r) if r.contains("deleted"))
        );
        let v1_deleted = json!({"v": 1, "meta": {"v": 1, "action": "deleted", "object": "person",
            "webhook_id": "3", "timestamp": 5}, "current": null, "previous": {"id": 12}});
        let event = one(&v1_deleted);
        assert_eq!(event.provider_event_id, "3:person:12:deleted:5");
        assert!(matches!(
            owners(&event.payload).unwrap(),
            EventOwners::NoOwner(_)
        ));

        let unowned = json!({"meta": {"version": "2.0", "action": "create", "entity": "person",
            "entity_id": 4, "webhook_id": 9, "timestamp": 1}, "data": {"id": 4, "owner_id": null}});
        assert_eq!(
            owners(&one(&unowned).payload).unwrap(),
            EventOwners::NoOwner("the Pipedrive person has no owner".to_owned())
        );
        let expanded = json!({"v": 1, "meta": {"v": 1, "action": "added", "object": "activity",
            "id": 8, "webhook_id": "3", "timestamp": 5},
            "current": {"id": 8, "user_id": {"id": 44, "name": "Raj Patel", "email": "r@x.example"}}});
        let EventOwners::ById(by_id) = owners(&one(&expanded).payload).unwrap() else {
            panic!("by id")
        };
        assert_eq!(by_id[0].external_id, "44");
        assert_eq!(by_id[0].last_name.as_deref(), Some("Patel"));
    }

    #[test]
    fn malformed_webhooks_name_the_field() {
        let base = sample("v1_updated_deal");
        let with = |pointer: &str, value: Value| {
            let mut body = base.clone();
            *body.pointer_mut(pointer).unwrap() = value;
            body.to_string()
        };
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for (body, expected) in [
            ("[]".to_owned(), "a JSON object"),
            (r#"{"meta": 5}"#.to_owned(), "meta must be an object"),
            (r#"{"meta": {}}"#.to_owned(), "meta.v = 1"),
            (with("/meta/object", json!(null)), "meta.object is required"),
            (
                with("/meta/action", json!(3)),
                "meta.action must be a string",
            ),
            (
                with("/meta/timestamp", json!(null)),
                "meta.timestamp is required",
            ),
            (with("/meta/timestamp", json!("soon")), "meta.timestamp"),
            (
                with("/meta/webhook_id", json!(null)),
                "meta.webhook_id is required",
            ),
            (
                with("/meta/id", json!(1.5)),
                "meta.id must be a string or an integer",
            ),
            (with("/current", json!(5)), "current must be an object"),
            (
                format!(r#"{{"meta": {{"v": 1}}, "current": {deep}}}"#),
                "recursion limit",
            ),
        ] {
            let err = split(body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        for (body, expected) in [
            (
                with("/current/user_id", json!(true)),
                "current.user_id must be a string or an integer",
            ),
            (
                with("/current/owner_name", json!("Jane\u{0}")),
                "current.owner_name must not contain U+0000",
            ),
            (
                with("/current/user_id", json!({"name": "x"})),
                "current.user_id.id is required",
            ),
        ] {
            let event = one(&serde_json::from_str(&body).unwrap());
            let err = owners(&event.payload).unwrap_err();
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        let user = json!({"meta": {"version": "2.0", "action": "change", "entity": "user",
            "entity_id": 4, "webhook_id": 9, "timestamp": 1},
            "data": {"id": 4, "email": ["a@example.com"]}});
        let err = owners(&one(&user).payload).unwrap_err();
        assert!(
            err.to_string().contains("data.email must be a string"),
            "{err}"
        );
    }
}
