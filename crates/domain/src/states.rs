//! The closed vocabularies rollcall stores as text: user, integration, invitation and event
//! states. Each has one spelling, shared by the database, the API and the CLI.

/// A stored or submitted state string that is not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}; expected one of: {expected}")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal, { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                $crate::schema::text_enum(&[$($text),+])
            }
        }

        impl ::utoipa::ToSchema for $name {}

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::UnknownState {
                        kind: $kind,
                        value: s.chars().take(64).collect(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Where a user account stands.
    UserStatus, "user status", {
        /// Created, waiting to be placed on a team before becoming active.
        Pending => "pending",
        Active => "active",
        /// Synced from the CRM as inactive (status filter `all` or `inactive`).
        Inactive => "inactive",
        /// Left the company according to the CRM or an admin: deactivated, never deleted.
        Leaver => "leaver",
    }
);

text_enum!(
    /// The lifecycle of an integration.
    IntegrationState, "integration state", {
        /// Verifies and decides, creates nobody (shadow mode).
        Draft => "draft",
        Live => "live",
        /// Its webhook URL answers 404.
        Revoked => "revoked",
    }
);

text_enum!(
    /// Where one invitation email stands.
    InvitationStatus, "invitation status", {
        /// Written to the outbox; the relay will send it.
        Queued => "queued",
        /// Claimed by a relay that is sending it now.
        Sending => "sending",
        Sent => "sent",
        /// The mail server refused it permanently.
        Failed => "failed",
        Accepted => "accepted",
        /// Replaced by a newer invitation (resend); its link no longer works.
        Superseded => "superseded",
    }
);

text_enum!(
    /// What processing an event did.
    EventOutcome, "event outcome", {
        Created => "created",
        Updated => "updated",
        /// The owner was known and nothing changed.
        Unchanged => "unchanged",
        Deactivated => "deactivated",
        Reactivated => "reactivated",
        Ignored => "ignored",
        /// A provisioning issue was recorded instead of an account.
        Issue => "issue",
        /// Processing failed past the retry budget; the event is in the dead-letter store.
        DeadLettered => "dead_lettered",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_for_every_value() {
        for status in UserStatus::ALL {
            assert_eq!(status.as_str().parse::<UserStatus>().unwrap(), *status);
        }
        for outcome in EventOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<EventOutcome>().unwrap(), *outcome);
            let json = serde_json::to_string(outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
        }
    }

    #[test]
    fn unknown_values_list_the_expected_ones() {
        let err = "gone".parse::<UserStatus>().unwrap_err();
        assert!(err.to_string().contains("pending active inactive leaver"));
    }
}
