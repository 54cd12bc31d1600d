//! How an integration says which scheme signs its webhooks, with the scheme's parameters.

use serde::{Deserialize, Serialize};

/// The scheme and its non-secret parameters, as stored on an integration under
/// `verification`. Secrets are kept apart (encrypted) and passed to [`crate::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SchemeConfig {
    /// `webhook-id` / `webhook-timestamp` / `webhook-signature` (or `svix-*`), ±300 s.
    StandardWebhooks,
}

impl SchemeConfig {
    /// The scheme's name as the contract spells it.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            SchemeConfig::StandardWebhooks => "standard-webhooks",
        }
    }

    /// Whether rollcall generates the secret (as opposed to the CRM issuing it).
    #[must_use]
    pub const fn generates_secret(&self) -> bool {
        matches!(self, SchemeConfig::StandardWebhooks)
    }
}

/// A scheme name that rollcall does not know; such integrations fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown verification scheme {0:?}")]
pub struct UnknownScheme(pub String);
