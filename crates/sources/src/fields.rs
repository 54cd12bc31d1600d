//! Typed readers the hand-written formats share, so that every source refuses the same things
//! the same way: a wrong type names the field (`entity.primaryEmail must be a string`), and
//! text carrying U+0000 is refused here rather than failing later in PostgreSQL, which cannot
//! store it in text or JSONB.
//!
//! Paths in messages are dotted (`data.employee.id`, `job.assigned_employees[2].email`) so the
//! sender can find the field in the body it sent.

use domain::{OwnerFacts, Timestamp};
use serde_json::{Map, Value};

use crate::PayloadError;

/// The longest dedupe key or event type accepted: they are stored and shown, and no CRM's real
/// ones come close.
pub(crate) const MAX_KEY_CHARS: usize = 256;

/// Parses a body as JSON. `serde_json` refuses nesting deeper than 128 levels with an error
/// (never a stack overflow), so a hostile body becomes a `NotJson`.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, PayloadError> {
    serde_json::from_slice(body).map_err(|err| PayloadError::NotJson(err.to_string()))
}

/// The value `pointer` (a JSON Pointer, RFC 6901) refers to, exactly as
/// [`Value::pointer`] answers, without its allocation of two strings per reference token: owner
/// fields are looked up a dozen times per event, on every webhook.
pub(crate) fn pointer<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    let tokens = pointer.strip_prefix('/')?;
    tokens.split('/').try_fold(value, |target, token| {
        let token: std::borrow::Cow<'_, str> = if token.contains('~') {
            token.replace("~1", "/").replace("~0", "~").into()
        } else {
            token.into()
        };
        match target {
            Value::Object(map) => map.get(token.as_ref()),
            Value::Array(items) => array_index(&token).and_then(|index| items.get(index)),
            _ => None,
        }
    })
}

/// An array index as RFC 6901 writes it: decimal digits, no sign, no leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// Refuses text carrying U+0000.
pub(crate) fn no_nul(text: &str, path: impl std::fmt::Display) -> Result<(), PayloadError> {
    if text.contains('\0') {
        return Err(PayloadError::invalid(format!(
            "{path} must not contain U+0000 (a NUL character)"
        )));
    }
    Ok(())
}

/// Optional text: absent and `null` are `None`, and so is text that is empty once trimmed
/// (CRMs send `""` for "not set").
pub(crate) fn text(value: Option<&Value>, path: &str) -> Result<Option<String>, PayloadError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            no_nul(text, path)?;
            let trimmed = text.trim();
            Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
        }
        Some(_) => Err(PayloadError::invalid(format!("{path} must be a string"))),
    }
}

/// Required text.
pub(crate) fn required_text(value: Option<&Value>, path: &str) -> Result<String, PayloadError> {
    text(value, path)?.ok_or_else(|| missing(value, path))
}

/// An optional id: CRMs write ids as strings or as integers (`178`, `"pro_…"`), and both are
/// the same id to rollcall. Fractions are not ids.
pub(crate) fn id(value: Option<&Value>, path: &str) -> Result<Option<String>, PayloadError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            no_nul(text, path)?;
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Err(PayloadError::invalid(format!("{path} must not be empty")));
            }
            Ok(Some(trimmed.to_owned()))
        }
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => {
            Ok(Some(number.to_string()))
        }
        Some(_) => Err(PayloadError::invalid(format!(
            "{path} must be a string or an integer"
        ))),
    }
}

/// A required id.
pub(crate) fn required_id(value: Option<&Value>, path: &str) -> Result<String, PayloadError> {
    id(value, path)?.ok_or_else(|| missing(value, path))
}

fn missing(value: Option<&Value>, path: &str) -> PayloadError {
    match value {
        Some(Value::String(_)) => PayloadError::invalid(format!("{path} must not be empty")),
        _ => PayloadError::invalid(format!("{path} is required")),
    }
}

/// An optional boolean.
pub(crate) fn flag(value: Option<&Value>, path: &str) -> Result<Option<bool>, PayloadError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(_) => Err(PayloadError::invalid(format!(
            "{path} must be true or false"
        ))),
    }
}

/// An optional object (absent and `null` are `None`).
pub(crate) fn object<'a>(
    value: Option<&'a Value>,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, PayloadError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(PayloadError::invalid(format!("{path} must be an object"))),
    }
}

/// A required object.
pub(crate) fn required_object<'a>(
    value: Option<&'a Value>,
    path: &str,
) -> Result<&'a Map<String, Value>, PayloadError> {
    object(value, path)?.ok_or_else(|| PayloadError::invalid(format!("{path} is required")))
}

/// An optional array (absent and `null` are `None`).
pub(crate) fn array<'a>(
    value: Option<&'a Value>,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, PayloadError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(PayloadError::invalid(format!("{path} must be an array"))),
    }
}

/// A full name split at its last space (`Ann Marie Lee` → `Ann Marie` / `Lee`); a single word
/// is a first name.
pub(crate) fn split_name(full: &str) -> (Option<String>, Option<String>) {
    let full = full.trim();
    if full.is_empty() {
        return (None, None);
    }
    match full.rsplit_once(' ') {
        Some((first, last)) => (Some(first.trim().to_owned()), Some(last.trim().to_owned())),
        None => (Some(full.to_owned()), None),
    }
}

/// An owner known only by its CRM id, with a display name as a hint when the payload has one.
pub(crate) fn by_id(external_id: String, name: Option<&str>) -> OwnerFacts {
    let (first_name, last_name) = name.map(split_name).unwrap_or_default();
    OwnerFacts {
        external_id,
        first_name,
        last_name,
        ..OwnerFacts::default()
    }
}

/// Unix time in seconds or milliseconds. Senders rarely say which; any value from 10^11 on is
/// taken as milliseconds (10^11 seconds is in the year 5138, 10^11 ms in 1973).
pub(crate) const fn epoch(number: i64) -> Timestamp {
    if number.unsigned_abs() >= 100_000_000_000 {
        Timestamp::from_millis(number)
    } else {
        Timestamp::from_unix_seconds(number)
    }
}

/// An optional instant written as RFC 3339 text or as Unix time (see [`epoch`]).
pub(crate) fn instant(
    value: Option<&Value>,
    path: &str,
) -> Result<Option<Timestamp>, PayloadError> {
    let wrong = || {
        PayloadError::invalid(format!(
            "{path} must be an RFC 3339 timestamp or a Unix time"
        ))
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Timestamp::parse_rfc3339(text)
            .map(Some)
            .map_err(|err| PayloadError::invalid(format!("{path}: {err}"))),
        Some(Value::Number(number)) => number.as_i64().map(epoch).map(Some).ok_or_else(wrong),
        Some(_) => Err(wrong()),
    }
}

/// The text of a scalar as it appears in the body (`1707436800`, `"171"` → `171`), for dedupe
/// keys: retries repeat the body byte for byte, so its own spelling is the stable one.
pub(crate) fn key_part(value: Option<&Value>, path: &str) -> Result<String, PayloadError> {
    match value {
        Some(Value::Number(number)) => Ok(number.to_string()),
        other => required_text(other, path),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pointers_resolve_exactly_as_serde_json_resolves_them() {
        let doc = json!({
            "owner": {"id": "7", "email": "a@b.c", "": {"x": 1}},
            "a/b": {"m~n": [10, 20, {"k": true}]},
            "list": [{"id": 1}, {"id": 2}],
            "~1": "escaped twice",
        });
        let pointers = [
            "",
            "/",
            "/owner",
            "/owner/id",
            "/owner/missing",
            "/owner//x",
            "/a~1b",
            "/a~1b/m~0n",
            "/a~1b/m~0n/2/k",
            "/a~1b/m~0n/02",
            "/a~1b/m~0n/+1",
            "/a~1b/m~0n/-1",
            "/list/1/id",
            "/list/9",
            "/list/01",
            "/list/0/id/extra",
            "/~01",
            "owner",
            "/owner/id/0",
        ];
        for at in pointers {
            assert_eq!(pointer(&doc, at), doc.pointer(at), "{at:?}");
        }
        assert_eq!(pointer(&doc, "/~01"), Some(&json!("escaped twice")));
    }

    #[test]
    fn readers_name_the_field_and_refuse_nul() {
        let doc = json!({"a": "x\u{0}y", "b": 5, "c": "  ", "d": 1.5, "e": "ok "});
        let err = text(doc.get("a"), "doc.a").unwrap_err();
        assert!(
            err.to_string().contains("doc.a must not contain U+0000"),
            "{err}"
        );
        let err = text(doc.get("b"), "doc.b").unwrap_err();
        assert!(err.to_string().contains("doc.b must be a string"), "{err}");
        assert_eq!(text(doc.get("c"), "doc.c").unwrap(), None);
        assert_eq!(text(doc.get("e"), "doc.e").unwrap().as_deref(), Some("ok"));
        assert_eq!(id(doc.get("b"), "doc.b").unwrap().as_deref(), Some("5"));
        let err = id(doc.get("d"), "doc.d").unwrap_err();
        assert!(err.to_string().contains("string or an integer"), "{err}");
        let err = required_id(doc.get("c"), "doc.c").unwrap_err();
        assert!(err.to_string().contains("doc.c must not be empty"), "{err}");
        let err = required_id(doc.get("z"), "doc.z").unwrap_err();
        assert!(err.to_string().contains("doc.z is required"), "{err}");
        let err = id(doc.get("a"), "doc.a").unwrap_err();
        assert!(err.to_string().contains("U+0000"), "{err}");
    }

    #[test]
    fn unix_times_in_seconds_or_milliseconds() {
        assert_eq!(
            epoch(1_707_436_800),
            Timestamp::from_unix_seconds(1_707_436_800)
        );
        assert_eq!(
            epoch(1_750_102_639_787),
            Timestamp::from_millis(1_750_102_639_787)
        );
        assert_eq!(
            instant(Some(&json!("2024-02-09T00:00:00Z")), "t").unwrap(),
            Some(Timestamp::from_unix_seconds(1_707_436_800))
        );
        assert!(instant(Some(&json!(true)), "t").is_err());
        assert!(instant(Some(&json!("soon")), "t").is_err());
    }

    #[test]
    fn names_split_at_the_last_space() {
        assert_eq!(
            split_name("Ann Marie Lee"),
            (Some("Ann Marie".to_owned()), Some("Lee".to_owned()))
        );
        assert_eq!(split_name("Cher"), (Some("Cher".to_owned()), None));
        assert_eq!(split_name(" "), (None, None));
    }
}
