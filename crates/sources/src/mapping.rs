//! Field mapping: where an event's owners and each of their fields are, as JSON Pointers. Each
//! source has a preset; an integration's `settings.field_mapping` overrides it key by key.
//!
//! `owners` points at an array of owner objects and `owner` at a single one (tried in that
//! order); every other key points into an owner object. `""` is the document itself (for a
//! payload that *is* the person, like a roster row). `name` is a full name, split at its last
//! space when first and last names are not mapped; `active_flag`/`inactive_flag` are booleans
//! for CRMs that say `inactiveFlag: true` instead of a status.
//!
//! The `json` source also reads `event_id`, `event_type` and `occurred_at` from the mapping:
//! pointers into the body, not into an owner (see `json.rs`). Text read through the mapping
//! refuses U+0000 like every other source (`fields.rs`).

use std::collections::BTreeMap;
use std::fmt;

use domain::{OwnerFacts, OwnerStatus, Source};
use serde_json::Value;

use crate::PayloadError;
use crate::fields::{self, no_nul};

/// Owner-field → JSON Pointer: the integration's overrides, then the source's preset. It
/// borrows both, so building one for every webhook costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct FieldMapping<'a> {
    preset: &'static [(&'static str, &'static str)],
    overrides: Option<&'a BTreeMap<String, String>>,
}

/// At most this many owners per event: a job with more assigned workers is not plausible, and
/// the cap bounds the work one event can cause.
pub const MAX_OWNERS: usize = 100;

impl<'a> FieldMapping<'a> {
    /// The source's preset with `overrides` applied.
    #[must_use]
    pub fn for_source(source: Source, overrides: Option<&'a BTreeMap<String, String>>) -> Self {
        Self {
            preset: preset(source),
            overrides,
        }
    }

    /// The pointer configured for `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        if let Some(pointer) = self.overrides.and_then(|overrides| overrides.get(key)) {
            return Some(pointer);
        }
        self.preset
            .iter()
            .find(|(preset_key, _)| *preset_key == key)
            .map(|(_, pointer)| *pointer)
    }

    /// The owners `payload` names.
    pub fn owners(&self, payload: &Value) -> Result<Vec<OwnerFacts>, PayloadError> {
        let located = |key: &str| {
            self.get(key)
                .and_then(|pointer| fields::pointer(payload, pointer).map(|v| (pointer, v)))
        };
        match (located("owners"), located("owner")) {
            (Some((pointer, Value::Array(items))), _) => {
                if items.is_empty() {
                    return Err(PayloadError::invalid(format!(
                        "{} must not be empty",
                        Label(pointer)
                    )));
                }
                if items.len() > MAX_OWNERS {
                    return Err(PayloadError::invalid(format!(
                        "{} holds more than {MAX_OWNERS} entries",
                        Label(pointer)
                    )));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.owner(item, &format_args!("{}[{i}]", Label(pointer))))
                    .collect()
            }
            (Some((pointer, _)), _) => Err(PayloadError::invalid(format!(
                "{} must be an array",
                Label(pointer)
            ))),
            (None, Some((pointer, item))) => Ok(vec![self.owner(item, &Label(pointer))?]),
            (None, None) => Err(PayloadError::invalid(
                match (self.get("owner"), self.get("owners")) {
                    (Some(pointer), _) | (None, Some(pointer)) => {
                        format!("{} is required", Label(pointer))
                    }
                    (None, None) => "the field mapping does not say where the owner is".to_owned(),
                },
            )),
        }
    }

    fn owner(&self, value: &Value, at: &dyn fmt::Display) -> Result<OwnerFacts, PayloadError> {
        if !value.is_object() {
            return Err(PayloadError::invalid(format!("{at} must be an object")));
        }
        let field = |key: &str| {
            self.get(key)
                .and_then(|pointer| fields::pointer(value, pointer))
        };
        // Formatted only when a message names the field.
        let path = |key: &str| FieldPath {
            owner: at,
            pointer: self.get(key).unwrap_or_default(),
        };
        let text = |key: &str| -> Result<Option<String>, PayloadError> {
            match field(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => {
                    no_nul(text, path(key))?;
                    let trimmed = text.trim();
                    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
                }
                // Codes (a member type, a license class) may come as numbers; names and
                // addresses may not.
                Some(Value::Number(number)) if key == "member_type" => Ok(Some(number.to_string())),
                Some(_) => Err(PayloadError::invalid(format!(
                    "{} must be a string",
                    path(key)
                ))),
            }
        };
        let flag = |key: &str| -> Result<Option<bool>, PayloadError> {
            match field(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(flag)) => Ok(Some(*flag)),
                Some(_) => Err(PayloadError::invalid(format!(
                    "{} must be true or false",
                    path(key)
                ))),
            }
        };
        let external_id = match field("id") {
            Some(Value::String(text)) if !text.trim().is_empty() => {
                no_nul(text, path("id"))?;
                text.trim().to_owned()
            }
            Some(Value::Number(number)) => number.to_string(),
            Some(Value::String(_)) => {
                return Err(PayloadError::invalid(format!(
                    "{} must not be empty",
                    path("id")
                )));
            }
            Some(_) => {
                return Err(PayloadError::invalid(format!(
                    "{} must be a string",
                    path("id")
                )));
            }
            None => return Err(PayloadError::invalid(format!("{} is required", path("id")))),
        };
        let status = match text("status")? {
            Some(text) => Some(parse_status(&text).ok_or_else(|| {
                PayloadError::invalid(format!(
                    "{} must be one of active, inactive, terminated, deleted",
                    path("status")
                ))
            })?),
            None => match (flag("active_flag")?, flag("inactive_flag")?) {
                (Some(true), _) | (None, Some(false)) => Some(OwnerStatus::Active),
                (Some(false), _) | (None, Some(true)) => Some(OwnerStatus::Inactive),
                (None, None) => None,
            },
        };
        let employee_ids = match field("employee_ids") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => {
                        no_nul(text, path("employee_ids")).map(|()| text.clone())
                    }
                    Value::Number(number) => Ok(number.to_string()),
                    _ => Err(PayloadError::invalid(format!(
                        "{} must hold strings",
                        path("employee_ids")
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(Value::String(text)) if !text.is_empty() => {
                no_nul(text, path("employee_ids"))?;
                vec![text.clone()]
            }
            Some(Value::Number(number)) => vec![number.to_string()],
            Some(_) => {
                return Err(PayloadError::invalid(format!(
                    "{} must be an array",
                    path("employee_ids")
                )));
            }
        };
        let (mut first_name, mut last_name) = (text("first_name")?, text("last_name")?);
        if first_name.is_none()
            && last_name.is_none()
            && let Some(full) = text("name")?
        {
            match full.rsplit_once(' ') {
                Some((first, last)) => {
                    first_name = Some(first.trim().to_owned());
                    last_name = Some(last.trim().to_owned());
                }
                None => first_name = Some(full),
            }
        }
        Ok(OwnerFacts {
            external_id,
            email: text("email")?,
            first_name,
            last_name,
            avatar_url: text("avatar_url")?,
            status,
            member_type: text("member_type")?,
            employee_ids,
            title: text("title")?,
            department: text("department")?,
            location: text("location")?,
        })
    }
}

/// `/owner/email` → `owner.email`, for messages.
struct Label<'a>(&'a str);

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trimmed = self.0.trim_start_matches('/');
        if trimmed.is_empty() {
            return f.write_str("the document");
        }
        for (i, part) in trimmed.split('/').enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// A field of an owner, for messages: `owner.email`, `job.crew[1].mail`.
struct FieldPath<'a> {
    owner: &'a dyn fmt::Display,
    /// Into the owner object; empty for the owner itself.
    pointer: &'a str,
}

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.owner)
        } else {
            write!(f, "{}.{}", self.owner, Label(self.pointer))
        }
    }
}

/// CRM status words rollcall understands (any case).
fn parse_status(text: &str) -> Option<OwnerStatus> {
    match text.to_ascii_lowercase().as_str() {
        "active" | "enabled" => Some(OwnerStatus::Active),
        "inactive" | "disabled" | "suspended" => Some(OwnerStatus::Inactive),
        "terminated" | "left" => Some(OwnerStatus::Terminated),
        "deleted" | "archived" => Some(OwnerStatus::Deleted),
        _ => None,
    }
}

fn preset(source: Source) -> &'static [(&'static str, &'static str)] {
    match source {
        Source::Rollcall => &[
            ("owners", "/owners"),
            ("owner", "/owner"),
            ("id", "/id"),
            ("email", "/email"),
            ("first_name", "/first_name"),
            ("last_name", "/last_name"),
            ("avatar_url", "/avatar_url"),
            ("status", "/status"),
            ("member_type", "/member_type"),
            ("employee_ids", "/employee_ids"),
            ("title", "/title"),
            ("department", "/department"),
            ("location", "/location"),
        ],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn overrides_replace_preset_fields() {
        let payload = json!({"owner": {"id": 7, "work_email": "a@example.com", "email": "old@example.com", "name": "Ann Marie Lee"}});
        let overrides = overrides(&[("email", "/work_email"), ("name", "/name")]);
        let owners = FieldMapping::for_source(Source::Rollcall, Some(&overrides))
            .owners(&payload)
            .unwrap();
        assert_eq!(owners[0].external_id, "7");
        assert_eq!(owners[0].email.as_deref(), Some("a@example.com"));
        assert_eq!(owners[0].first_name.as_deref(), Some("Ann Marie"));
        assert_eq!(owners[0].last_name.as_deref(), Some("Lee"));
    }

    #[test]
    fn a_payload_can_be_the_person_itself() {
        let payload =
            json!({"employee_id": "E1", "official_email": "e@example.com", "terminated": true});
        let owners = FieldMapping::for_source(
            Source::Json,
            Some(&BTreeMap::from([
                ("owner".to_owned(), String::new()),
                ("id".to_owned(), "/employee_id".to_owned()),
                ("email".to_owned(), "/official_email".to_owned()),
                ("inactive_flag".to_owned(), "/terminated".to_owned()),
            ])),
        )
        .owners(&payload)
        .unwrap();
        assert_eq!(owners[0].external_id, "E1");
        assert_eq!(owners[0].status, Some(OwnerStatus::Inactive));
    }

    #[test]
    fn arrays_of_owners_and_wrong_types_are_named() {
        let payload = json!({"job": {"crew": [{"uid": "a"}, {"uid": "b", "mail": 5}]}});
        let crew_fields = overrides(&[("owners", "/job/crew"), ("id", "/uid"), ("email", "/mail")]);
        let crew = FieldMapping::for_source(Source::Rollcall, Some(&crew_fields));
        let err = crew.owners(&payload).unwrap_err();
        assert!(
            err.to_string()
                .contains("job.crew[1].mail must be a string"),
            "{err}"
        );
        let ok = json!({"job": {"crew": [{"uid": "a"}, {"uid": "b"}]}});
        assert_eq!(crew.owners(&ok).unwrap().len(), 2);
        let err = FieldMapping::for_source(Source::Rollcall, None)
            .owners(&json!({"owner": {"id": "a", "status": "gone"}}))
            .unwrap_err();
        assert!(
            err.to_string().contains("owner.status must be one of"),
            "{err}"
        );
        let err = FieldMapping::for_source(Source::Json, None)
            .owners(&json!({}))
            .unwrap_err();
        assert!(
            err.to_string().contains("does not say where the owner is"),
            "{err}"
        );
    }
}
