//! Standard Webhooks (and Svix, which uses the same algorithm under `svix-*` header names).
//!
//! Signed content is `id.timestamp.body`; the key is the base64-decoded secret after `whsec_`;
//! the signature header is a space-separated list of `v1,<base64>`. A timestamp more than 300 s
//! away from now in either direction is refused; exactly 300 s passes, as in the reference
//! libraries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{Rejection, Request, Secret, Verified, header};

const TOLERANCE_SECONDS: i64 = 300;
const SECRET_PREFIX: &str = "whsec_";

struct Headers<'a> {
    id: &'a str,
    timestamp: &'a str,
    signature: &'a str,
}

fn find_headers<'a>(request: &Request<'a>) -> Result<Headers<'a>, Rejection> {
    // The `webhook-*` names are the standard; `svix-*` are what Svix-based senders use.
    let sets = [
        ("webhook-id", "webhook-timestamp", "webhook-signature"),
        ("svix-id", "svix-timestamp", "svix-signature"),
    ];
    for (id_name, ts_name, sig_name) in sets {
        if let Some(id) = header(request.headers, id_name)? {
            let timestamp =
                header(request.headers, ts_name)?.ok_or(Rejection::MissingHeader(ts_name))?;
            let signature =
                header(request.headers, sig_name)?.ok_or(Rejection::MissingHeader(sig_name))?;
            return Ok(Headers {
                id,
                timestamp,
                signature,
            });
        }
    }
    Err(Rejection::MissingHeader("webhook-id"))
}

fn key(secret: &Secret) -> Option<Vec<u8>> {
    let text = secret.expose();
    let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
    STANDARD.decode(encoded).ok().filter(|key| !key.is_empty())
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

pub(crate) fn verify(
    secrets: &[Secret],
    request: &Request<'_>,
    now_unix_seconds: i64,
) -> Result<Verified, Rejection> {
    let headers = find_headers(request)?;
    if headers.id.is_empty() {
        return Err(Rejection::MalformedHeader {
            header: "webhook-id",
            problem: "empty",
        });
    }
    let timestamp: i64 =
        headers
            .timestamp
            .trim()
            .parse()
            .map_err(|_| Rejection::MalformedHeader {
                header: "webhook-timestamp",
                problem: "not an integer number of seconds",
            })?;
    if now_unix_seconds.saturating_sub(timestamp) > TOLERANCE_SECONDS
        || timestamp.saturating_sub(now_unix_seconds) > TOLERANCE_SECONDS
    {
        return Err(Rejection::TimestampOutOfTolerance {
            tolerance_seconds: TOLERANCE_SECONDS.unsigned_abs(),
        });
    }
    let candidates: Vec<Vec<u8>> = headers
        .signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    if candidates.is_empty() {
        return Err(Rejection::MalformedHeader {
            header: "webhook-signature",
            problem: "no v1 signature",
        });
    }
    let keys: Vec<Vec<u8>> = secrets.iter().filter_map(key).collect();
    if keys.is_empty() {
        return Err(Rejection::NoSecret);
    }
    for key in &keys {
        let Some(mac) = mac(key, headers.id, headers.timestamp, request.body) else {
            continue;
        };
        // Every candidate is checked against every key; `verify_slice` compares in constant
        // time, so the position of a match leaks nothing about the expected value.
        if candidates
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        {
            return Ok(Verified {
                provider_event_id: Some(headers.id.to_owned()),
            });
        }
    }
    Err(Rejection::NoMatchingSignature)
}

/// The `webhook-signature` value for a message, as a sender computes it.
#[must_use]
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = key(secret)?;
    let mac = mac(&key, id, &timestamp.to_string(), body)?;
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}
