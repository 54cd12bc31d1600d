//! Standard Webhooks (and Svix, which uses the same algorithm under `svix-*` header names).
//!
//! Signed content is `id.timestamp.body`; the key is the base64-decoded secret after `whsec_`;
//! the signature header is a space-separated list of `v1,<base64>`. A timestamp more than 300 s
//! away from now in either direction is refused; exactly 300 s passes, as in the reference
//! libraries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{
    Rejection, Request, Secret, Verified, any_matches, header, hmac_sha256, required_header,
};

const TOLERANCE_SECONDS: i64 = 300;
const SECRET_PREFIX: &str = "whsec_";

struct Headers<'a> {
    id: &'a str,
    timestamp: &'a str,
    signature: &'a str,
}

fn find_headers<'a>(request: &Request<'a>) -> Result<Headers<'a>, Rejection> {
    // The `webhook-*` names are the standard; `svix-*` are what Svix-based senders use.
    for prefix in ["webhook", "svix"] {
        let id_name = format!("{prefix}-id");
        if let Some(id) = header(request.headers, &id_name)? {
            return Ok(Headers {
                id,
                timestamp: required_header(request.headers, &format!("{prefix}-timestamp"))?,
                signature: required_header(request.headers, &format!("{prefix}-signature"))?,
            });
        }
    }
    Err(Rejection::missing("webhook-id"))
}

fn key(secret: &Secret) -> Option<Vec<u8>> {
    let text = secret.expose();
    let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
    STANDARD.decode(encoded).ok().filter(|key| !key.is_empty())
}

pub(crate) fn verify(
    secrets: &[Secret],
    request: &Request<'_>,
    now_unix_seconds: i64,
) -> Result<Verified, Rejection> {
    let headers = find_headers(request)?;
    if headers.id.is_empty() {
        return Err(Rejection::malformed("webhook-id", "empty"));
    }
    let timestamp: i64 = headers.timestamp.trim().parse().map_err(|_| {
        Rejection::malformed("webhook-timestamp", "not an integer number of seconds")
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
        return Err(Rejection::malformed("webhook-signature", "no v1 signature"));
    }
    let keys: Vec<Vec<u8>> = secrets.iter().filter_map(key).collect();
    if keys.is_empty() {
        return Err(Rejection::NoSecret);
    }
    let signed = [
        headers.id.as_bytes(),
        b".",
        headers.timestamp.as_bytes(),
        b".",
        request.body,
    ];
    let matched = keys.iter().fold(false, |found, key| {
        any_matches(&hmac_sha256(key, &signed), &candidates) | found
    });
    if matched {
        Ok(Verified {
            provider_event_id: Some(headers.id.to_owned()),
        })
    } else {
        Err(Rejection::NoMatchingSignature)
    }
}

/// The `webhook-signature` value for a message, as a sender computes it.
#[must_use]
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    use hmac::Mac;
    let key = key(secret)?;
    let timestamp = timestamp.to_string();
    let mac = hmac_sha256(
        &key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}
