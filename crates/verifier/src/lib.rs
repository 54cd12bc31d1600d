//! Webhook signature verification: given a scheme's configuration, the integration's secrets,
//! the request exactly as received and the current time, says whether the request is genuine.
//!
//! This crate is pure: no IO, no clock (time is an argument). It reads the raw body bytes
//! before anything parses them; the only schemes that look inside the body are those whose
//! credential lives there (Zoho's echoed token, Salesforce's organization id). It compares in
//! constant time, tries every signature a header carries against every secret given, and never
//! returns or formats a secret or an expected signature, so its errors can be shown to a
//! caller. The ingress and `rollcall verify` run the same code.

mod basic;
mod body_hmac;
mod config;
mod github;
mod hmac_generic;
mod hubspot;
mod salesforce;
mod standard_webhooks;
mod stripe;
mod token;

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::Sha256;

pub use config::{SchemeConfig, SecretOrigin};
pub use hmac_generic::{Encoding, HmacConfig, TimestampUnit};
pub use salesforce::normalize_org_id;
pub use standard_webhooks::sign as sign_standard_webhooks;
pub use token::TokenLocation;

/// A request as the ingress received it. `body` is the raw bytes, never re-serialised.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The full URL the sender called (scheme, host, path and query), for schemes that sign it.
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A signing secret in its textual form (as the CRM shows it or rollcall generated it).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What a successful verification learned from the headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// The sender's id for this delivery, when the scheme carries one in a header.
    pub provider_event_id: Option<String>,
}

/// Why a request was refused. The message names what is wrong without revealing a secret or
/// an expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing header {0}")]
    MissingHeader(String),
    #[error("malformed header {header}: {problem}")]
    MalformedHeader {
        header: String,
        problem: &'static str,
    },
    #[error("timestamp outside the tolerance window of {tolerance_seconds} s")]
    TimestampOutOfTolerance { tolerance_seconds: u64 },
    #[error("no signature matches")]
    NoMatchingSignature,
    #[error("credentials do not match")]
    BadCredentials,
    #[error("{0}")]
    MalformedBody(&'static str),
    #[error("the message comes from another organization")]
    WrongOrganization,
    #[error("the integration has no usable secret")]
    NoSecret,
}

impl Rejection {
    /// A stable, low-cardinality label for metrics and logs.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Rejection::MissingHeader(_) => "missing_header",
            Rejection::MalformedHeader { .. } => "malformed_header",
            Rejection::TimestampOutOfTolerance { .. } => "stale_timestamp",
            Rejection::NoMatchingSignature => "bad_signature",
            Rejection::BadCredentials => "bad_credentials",
            Rejection::MalformedBody(_) => "malformed_body",
            Rejection::WrongOrganization => "wrong_organization",
            Rejection::NoSecret => "no_secret",
        }
    }

    pub(crate) fn missing(name: &str) -> Self {
        Rejection::MissingHeader(name.to_owned())
    }

    pub(crate) fn malformed(name: &str, problem: &'static str) -> Self {
        Rejection::MalformedHeader {
            header: name.to_owned(),
            problem,
        }
    }
}

/// Verifies `request` under `scheme` against each of `secrets` (current and still-valid rotated
/// ones; for ConnectWise, the signing key fetched for this request), at the instant
/// `now_unix_ms`.
pub fn verify(
    scheme: &SchemeConfig,
    secrets: &[Secret],
    request: &Request<'_>,
    now_unix_ms: i64,
) -> Result<Verified, Rejection> {
    if secrets.is_empty() {
        return Err(Rejection::NoSecret);
    }
    let now_seconds = now_unix_ms.div_euclid(1000);
    match scheme {
        SchemeConfig::StandardWebhooks => standard_webhooks::verify(secrets, request, now_seconds),
        SchemeConfig::Stripe { tolerance_seconds } => {
            stripe::verify(secrets, request, now_seconds, *tolerance_seconds)
        }
        SchemeConfig::Github => github::verify(secrets, request),
        SchemeConfig::Hubspot => hubspot::verify(secrets, request, now_unix_ms),
        SchemeConfig::Jobber => body_hmac::verify(
            "x-jobber-hmac-sha256",
            secrets.iter().map(|s| s.expose().as_bytes().to_vec()),
            request,
        ),
        SchemeConfig::Connectwise { .. } => body_hmac::verify(
            "x-content-signature",
            // ConnectWise keys the HMAC with the SHA-256 of the signing key, not the key itself.
            secrets
                .iter()
                .map(|s| sha256(s.expose().as_bytes()).to_vec()),
            request,
        ),
        SchemeConfig::Hmac(config) => hmac_generic::verify(config, secrets, request, now_unix_ms),
        SchemeConfig::Basic => basic::verify(secrets, request),
        SchemeConfig::Token { .. } => {
            // A stored configuration that does not say where the token is fails closed.
            let location = scheme
                .token_location()
                .map_err(|_| Rejection::BadCredentials)?;
            token::verify(&location, secrets, request)
        }
        SchemeConfig::SalesforceOutbound { organization_id } => {
            salesforce::verify(organization_id, secrets, request)
        }
    }
}

/// The value of header `name`, if present, as text. Header names are case-insensitive.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Rejection> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| Rejection::malformed(name, "not visible ASCII")),
    }
}

pub(crate) fn required_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<&'a str, Rejection> {
    header(headers, name)?.ok_or_else(|| Rejection::missing(name))
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(bytes).into()
}

/// An HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail; an empty MAC would never match.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    for part in parts {
        mac.update(part);
    }
    mac
}

/// Whether any candidate equals the MAC, comparing each in constant time.
pub(crate) fn any_matches(mac: &Hmac<Sha256>, candidates: &[Vec<u8>]) -> bool {
    // Every candidate is checked (no early exit), so timing says nothing about which matched.
    candidates.iter().fold(false, |found, candidate| {
        mac.clone().verify_slice(candidate).is_ok() | found
    })
}

/// Constant-time equality of two byte strings (their lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
