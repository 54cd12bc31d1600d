//! The unit that travels on the queue: one verified event, with what every consumer needs to
//! route and deduplicate it.

use serde::{Deserialize, Serialize};

use crate::{EventId, ImportId, IntegrationId, TenantId, Timestamp};

/// One accepted event. The ingress builds it after the signature check; the resolver consumes
/// it. `payload` is the event's own JSON as the CRM sent it (one element of a batch body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    /// The CRM's id for this event (`webhook-id`, HubSpot's `eventId`, …): the dedupe key.
    pub provider_event_id: String,
    pub event_type: String,
    /// When the CRM says the change happened; orders updates to the same user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    pub received_at: Timestamp,
    pub payload: serde_json::Value,
    /// Set when an operator replays a dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayInfo>,
    /// Set when the event comes from a bulk import rather than a webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_id: Option<ImportId>,
    /// The webhook request's `X-Request-Id`, so the worker's logs can be joined to the
    /// ingress's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Who replayed a dead-lettered event, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayInfo {
    pub replayed_by: String,
    pub replayed_at: Timestamp,
}

impl EventEnvelope {
    /// The sync run this event counts toward: its import, or its integration's webhook day.
    #[must_use]
    pub fn sync_run(&self) -> ImportId {
        self.import_id
            .unwrap_or_else(|| ImportId::webhook_day(self.integration_id, self.received_at))
    }

    /// The JSON form put on the queue.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
