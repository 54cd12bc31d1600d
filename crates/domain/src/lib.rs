//! Pure types shared by every rollcall crate: identifiers, timestamps, normalized emails, the
//! event envelope that travels on the queue, owner facts, integration settings, decisions and
//! the vocabulary of states (users, integrations, invitations, event outcomes).
//!
//! This crate owns *meaning*, not behaviour: it does no IO, reads no clock except through
//! [`Timestamp::now`] (which pure code never calls; it takes time as an argument), and knows no
//! wire format other than the envelope's JSON. Parsing CRM payloads lives in `sources`, SQL in
//! `store`, AMQP in `bus`.

mod decision;
mod directory;
mod email;
mod envelope;
mod ids;
mod owner;
mod schema;
mod settings;
mod states;
mod tenant_settings;
mod timestamp;

pub use decision::{
    CurrentState, Decision, IssueKind, NewUser, Profile, UserChanges, UserSnapshot,
};
pub use directory::DirectoryAccess;
pub use email::{EmailError, NormalizedEmail};
pub use envelope::{EventEnvelope, ReplayInfo};
pub use ids::{
    DeadLetterId, EventId, IdParseError, ImportId, IntegrationId, InvitationId, IssueId, TeamId,
    TenantId, TokenId, UserId,
};
pub use owner::{OwnerFacts, OwnerStatus};
pub use settings::{
    FIELD_MAPPING_KEYS, IntegrationSettings, InviteMode, MAX_BODY_BYTES_CEILING, MatchPolicy,
    SettingsError, Source, StatusFilter, WorkflowPattern,
};
pub use states::{EventOutcome, IntegrationState, InvitationStatus, UnknownState, UserStatus};
pub use tenant_settings::{TOKEN_PLACEHOLDER, TenantInvitationSettings, TenantSettingError};
pub use timestamp::{Timestamp, TimestampError};
