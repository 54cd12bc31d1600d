//! CRM payload formats: how a verified webhook body splits into events (each with its own
//! dedupe key and type), and how each event names its owners as [`OwnerFacts`].
//!
//! Pure: no IO, no clock. Where a CRM's payload carries only an owner id, this crate says so
//! (the resolver looks the owner up); it never calls a CRM itself. The ingress uses
//! [`split`] to validate and route a body; the resolver uses [`owners`] to read owners.

mod canonical;
mod connectwise;
mod hubspot;
mod mapping;
mod salesforce;

pub use mapping::{FieldMapping, MAX_OWNERS};
pub use salesforce::ACK as SALESFORCE_ACK;

use domain::{OwnerFacts, Source, Timestamp};

/// One event found in a webhook body.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingEvent {
    /// The CRM's id for the event: the dedupe key.
    pub provider_event_id: String,
    pub event_type: String,
    pub occurred_at: Option<Timestamp>,
    /// The event's own JSON (one element of a batch body).
    pub payload: serde_json::Value,
}

/// A body that is not what the integration's source format expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    Invalid(String),
    #[error("source {0} is not supported")]
    Unsupported(&'static str),
}

impl PayloadError {
    fn invalid(message: impl Into<String>) -> Self {
        PayloadError::Invalid(message.into())
    }
}

/// What the sender told us about the delivery outside the body (headers the verifier read).
#[derive(Debug, Clone, Default)]
pub struct DeliveryHints<'a> {
    /// The delivery id from a signature header (`webhook-id`, …), when the scheme has one.
    pub delivery_id: Option<&'a str>,
}

/// Splits a verified body into its events. `mapping` is the integration's field mapping: for
/// sources that carry owners in the payload, the split checks they can be read, so a malformed
/// event is refused with 400 rather than failing later in the queue.
pub fn split(
    source: Source,
    body: &[u8],
    hints: &DeliveryHints<'_>,
    mapping: &FieldMapping,
) -> Result<Vec<IncomingEvent>, PayloadError> {
    match source {
        Source::Rollcall => canonical::split(body, hints, mapping).map(|event| vec![event]),
        Source::SalesforceOutbound => salesforce::split(body),
        Source::Hubspot => hubspot::split(body),
        Source::Connectwise => connectwise::split(body),
        other => Err(PayloadError::Unsupported(other.as_str())),
    }
}

/// The owners one event names, in the order it names them, read through `mapping` (the
/// source's preset with the integration's overrides).
pub fn owners(
    source: Source,
    payload: &serde_json::Value,
    mapping: &FieldMapping,
) -> Result<Vec<OwnerFacts>, PayloadError> {
    match source {
        Source::Rollcall => mapping.owners(payload),
        Source::SalesforceOutbound => salesforce::owners(payload),
        other => Err(PayloadError::Unsupported(other.as_str())),
    }
}

/// Whether rollcall can take webhooks of this source today.
#[must_use]
pub const fn is_supported(source: Source) -> bool {
    matches!(source, Source::Rollcall | Source::SalesforceOutbound)
}
