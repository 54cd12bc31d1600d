//! How an integration says which scheme signs its webhooks, with the scheme's parameters.

use serde::{Deserialize, Serialize};

use crate::hmac_generic::HmacConfig;
use crate::token::TokenLocation;

/// The scheme and its non-secret parameters, as stored on an integration under
/// `verification`. Secrets are kept apart (encrypted) and passed to [`crate::verify`].
/// An unknown `scheme` does not deserialize, so an integration with one fails closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SchemeConfig {
    /// `webhook-id` / `webhook-timestamp` / `webhook-signature` (or `svix-*`), ±300 s.
    StandardWebhooks,
    /// `Stripe-Signature: t=…,v1=…`; timestamps older than `tolerance_seconds` are refused.
    Stripe {
        #[serde(default = "default_tolerance")]
        tolerance_seconds: u64,
    },
    /// `X-Hub-Signature-256: sha256=<hex>`; the delivery id is `X-GitHub-Delivery`.
    Github,
    /// `X-HubSpot-Signature-v3` (and the legacy v1/v2 `X-HubSpot-Signature`).
    Hubspot,
    /// `X-Jobber-Hmac-SHA256`: base64 HMAC of the body with the app's client secret.
    Jobber,
    /// `x-content-signature`, keyed by a signing key fetched from the payload's
    /// `Metadata.key_url` (the ingress fetches it from allow-listed hosts only).
    Connectwise {
        /// When set, the payload's `CompanyId` must equal it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        company_id: Option<String>,
    },
    /// Any HMAC-SHA256 scheme: header, prefix, encoding, timestamp and signed content.
    Hmac(HmacConfig),
    /// `Authorization: Basic …` against a `user:password` secret (Pipedrive).
    Basic,
    /// A shared token in a header, a query parameter or the JSON body (Zoho's `token`).
    Token {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        json_pointer: Option<String>,
    },
    /// Salesforce outbound messages: no signature exists; the `OrganizationId` in the SOAP
    /// body must be this org (15- or 18-character form) and the URL must carry the token.
    SalesforceOutbound { organization_id: String },
}

const fn default_tolerance() -> u64 {
    300
}

impl SchemeConfig {
    /// The scheme's name as the contract spells it.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            SchemeConfig::StandardWebhooks => "standard-webhooks",
            SchemeConfig::Stripe { .. } => "stripe",
            SchemeConfig::Github => "github",
            SchemeConfig::Hubspot => "hubspot",
            SchemeConfig::Jobber => "jobber",
            SchemeConfig::Connectwise { .. } => "connectwise",
            SchemeConfig::Hmac(_) => "hmac",
            SchemeConfig::Basic => "basic",
            SchemeConfig::Token { .. } => "token",
            SchemeConfig::SalesforceOutbound { .. } => "salesforce-outbound",
        }
    }

    /// Where a `token` scheme finds its token.
    pub fn token_location(&self) -> Result<TokenLocation, String> {
        match self {
            SchemeConfig::Token {
                header,
                query,
                json_pointer,
            } => TokenLocation::from_parts(header.as_ref(), query.as_ref(), json_pointer.as_ref()),
            _ => Err("not a token scheme".to_owned()),
        }
    }

    /// Where the integration's secret comes from.
    #[must_use]
    pub const fn secret_origin(&self) -> SecretOrigin {
        match self {
            SchemeConfig::StandardWebhooks
            | SchemeConfig::Github
            | SchemeConfig::Hmac(_)
            | SchemeConfig::Basic
            | SchemeConfig::Token { .. }
            | SchemeConfig::SalesforceOutbound { .. } => SecretOrigin::GeneratedUnlessGiven,
            SchemeConfig::Stripe { .. } | SchemeConfig::Hubspot | SchemeConfig::Jobber => {
                SecretOrigin::IssuedByTheCrm
            }
            SchemeConfig::Connectwise { .. } => SecretOrigin::FetchedPerRequest,
        }
    }

    /// Checks parameters the types alone cannot (header names, templates, ids).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            SchemeConfig::Hmac(config) => config.validate(),
            SchemeConfig::Token { .. } => self
                .token_location()
                .and_then(|location| location.validate()),
            SchemeConfig::SalesforceOutbound { organization_id } => {
                crate::salesforce::normalize_org_id(organization_id)
                    .map(|_| ())
                    .ok_or_else(|| {
                        "organization_id must be a 15- or 18-character Salesforce id".to_owned()
                    })
            }
            _ => Ok(()),
        }
    }
}

/// Who provides an integration's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    /// rollcall generates one unless the admin gives one (they paste it into the CRM).
    GeneratedUnlessGiven,
    /// The CRM issues it (an app's client secret, Stripe's endpoint secret): it must be given.
    IssuedByTheCrm,
    /// There is no stored secret: the key is fetched for each request (ConnectWise).
    FetchedPerRequest,
}
