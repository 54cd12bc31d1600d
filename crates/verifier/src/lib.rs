//! Webhook signature verification: given a scheme's configuration, the integration's secrets,
//! the request exactly as received and the current time, says whether the request is genuine.
//!
//! This crate is pure: no IO, no clock (time is an argument), no parsing of the body beyond
//! what a scheme signs. It never returns or formats a secret or an expected signature, so its
//! errors can be shown to a caller. The ingress and `rollcall verify` run the same code.

mod config;
mod standard_webhooks;

use std::fmt;

pub use config::{SchemeConfig, UnknownScheme};
use http::HeaderMap;
pub use standard_webhooks::sign as sign_standard_webhooks;

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
    MissingHeader(&'static str),
    #[error("malformed header {header}: {problem}")]
    MalformedHeader {
        header: &'static str,
        problem: &'static str,
    },
    #[error("timestamp outside the tolerance window of {tolerance_seconds} s")]
    TimestampOutOfTolerance { tolerance_seconds: u64 },
    #[error("no signature matches")]
    NoMatchingSignature,
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
            Rejection::NoSecret => "no_secret",
        }
    }
}

/// Verifies `request` under `scheme` against each of `secrets` (current and still-valid rotated
/// ones), at the instant `now_unix_ms`.
pub fn verify(
    scheme: &SchemeConfig,
    secrets: &[Secret],
    request: &Request<'_>,
    now_unix_ms: i64,
) -> Result<Verified, Rejection> {
    if secrets.is_empty() {
        return Err(Rejection::NoSecret);
    }
    match scheme {
        SchemeConfig::StandardWebhooks => {
            standard_webhooks::verify(secrets, request, now_unix_ms.div_euclid(1000))
        }
    }
}

/// The value of header `name`, if present, as text.
pub(crate) fn header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, Rejection> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| Rejection::MalformedHeader {
                header: name,
                problem: "not visible ASCII",
            }),
    }
}
