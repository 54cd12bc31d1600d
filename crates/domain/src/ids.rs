//! Typed identifiers. Every id is a UUID; the type keeps a user id from being passed where an
//! integration id is expected. New ids are UUIDv7, so that ordering by id is ordering by
//! creation time (cursor pagination relies on it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A string that is not a UUID was given where an id was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be a UUID, got {value:?}")]
pub struct IdParseError {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                $crate::schema::uuid($kind)
            }
        }

        impl ::utoipa::ToSchema for $name {}

        impl $name {
            /// A fresh, time-ordered id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            #[must_use]
            pub const fn as_uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdParseError {
                    kind: $kind,
                    value: s.chars().take(64).collect(),
                })
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

uuid_id!(
    /// A customer company.
    TenantId, "tenant id"
);
uuid_id!(
    /// One CRM connection of a tenant: a webhook URL, its secrets and settings.
    IntegrationId, "integration id"
);
uuid_id!(
    /// A user account rollcall created or manages.
    UserId, "user id"
);
uuid_id!(
    /// A team of a tenant.
    TeamId, "team id"
);
uuid_id!(
    /// An API token (operator or tenant).
    TokenId, "token id"
);
uuid_id!(
    /// One invitation email (each resend is a new invitation).
    InvitationId, "invitation id"
);
uuid_id!(
    /// A provisioning issue.
    IssueId, "issue id"
);
uuid_id!(
    /// A dead-lettered event.
    DeadLetterId, "dead letter id"
);
uuid_id!(
    /// A bulk import or sync run.
    ImportId, "import id"
);
uuid_id!(
    /// An accepted event. Derived from the integration and the provider's own event id, so the
    /// same webhook delivered twice, or replayed, always carries the same id.
    EventId, "event id"
);

/// Namespace for [`EventId::derive`]; fixed forever, since stored event ids depend on it.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a8e_4b7d_4c1e_9a35_0d8b_7e21_f4c3);

impl EventId {
    /// The id of the event a provider identifies as `provider_event_id` on `integration`.
    #[must_use]
    pub fn derive(integration: IntegrationId, provider_event_id: &str) -> Self {
        let mut name = Vec::with_capacity(16 + provider_event_id.len());
        name.extend_from_slice(integration.as_uuid().as_bytes());
        name.extend_from_slice(provider_event_id.as_bytes());
        Self(Uuid::new_v5(&EVENT_NAMESPACE, &name))
    }
}

/// Namespace for [`ImportId::webhook_day`]; fixed forever, since stored run ids depend on it.
const WEBHOOK_DAY_NAMESPACE: Uuid = Uuid::from_u128(0x2b8f_0c71_95e4_4d0a_b6c2_7f13_8e59_a0d4);

const DAY_MILLIS: i64 = 86_400_000;

impl ImportId {
    /// The sync run of the webhooks `integration` received on the UTC day containing `at`:
    /// the same id for every event of that day, computed without asking anyone. It is a UUIDv7
    /// whose time is the day's start (so runs sort by time like every other id) and whose
    /// other bits come from the integration and the day.
    #[must_use]
    pub fn webhook_day(integration: IntegrationId, at: crate::Timestamp) -> Self {
        let day_start = at.millis().div_euclid(DAY_MILLIS) * DAY_MILLIS;
        let mut name = Vec::with_capacity(24);
        name.extend_from_slice(integration.as_uuid().as_bytes());
        name.extend_from_slice(&day_start.to_be_bytes());
        let mut bytes = *Uuid::new_v5(&WEBHOOK_DAY_NAMESPACE, &name).as_bytes();
        let millis = u64::try_from(day_start).unwrap_or(0).to_be_bytes();
        bytes[..6].copy_from_slice(&millis[2..]);
        bytes[6] = 0x70 | (bytes[6] & 0x0f);
        bytes[8] = 0x80 | (bytes[8] & 0x3f);
        Self(Uuid::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_day_has_one_time_ordered_run_per_integration() {
        let a = IntegrationId::new();
        let morning = crate::Timestamp::parse_rfc3339("2026-11-21T00:00:01Z").unwrap();
        let evening = crate::Timestamp::parse_rfc3339("2026-11-21T23:59:59Z").unwrap();
        let next = crate::Timestamp::parse_rfc3339("2026-11-22T00:00:00Z").unwrap();
        let run = ImportId::webhook_day(a, morning);
        assert_eq!(run, ImportId::webhook_day(a, evening));
        assert_ne!(run, ImportId::webhook_day(IntegrationId::new(), morning));
        assert!(run < ImportId::webhook_day(a, next));
        assert_eq!(run.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn event_id_is_stable_per_integration_and_provider_id() {
        let a = IntegrationId::new();
        let b = IntegrationId::new();
        assert_eq!(EventId::derive(a, "msg_1"), EventId::derive(a, "msg_1"));
        assert_ne!(EventId::derive(a, "msg_1"), EventId::derive(a, "msg_2"));
        assert_ne!(EventId::derive(a, "msg_1"), EventId::derive(b, "msg_1"));
    }

    #[test]
    fn parse_error_names_the_kind() {
        let err = "nope".parse::<UserId>().unwrap_err();
        assert_eq!(err.to_string(), "user id must be a UUID, got \"nope\"");
    }

    #[test]
    fn new_ids_sort_by_creation() {
        let first = UserId::new();
        let second = UserId::new();
        assert!(first < second);
    }
}
