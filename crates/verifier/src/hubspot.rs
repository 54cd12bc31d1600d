//! HubSpot request signatures.
//!
//! - v3 (`X-HubSpot-Signature-v3`): base64 HMAC-SHA256 keyed with the app's client secret
//!   over `METHOD + URI + body + timestamp`, the timestamp (`X-HubSpot-Request-Timestamp`) in
//!   milliseconds. The URI is the full URL HubSpot called, with twelve percent-escapes decoded
//!   as HubSpot's documentation lists them. Requests older than 300 000 ms are refused; exactly
//!   300 000 ms passes (as HubSpot's Node library and documentation do).
//! - v1 (`X-HubSpot-Signature`, version `v1` or absent): hex SHA-256 — not an HMAC — of
//!   `client_secret + body`, used by legacy CRM-object subscriptions; v2 adds `METHOD + URI`.
//!   Neither has a timestamp; deduplication stops replays.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{
    Rejection, Request, Secret, Verified, any_matches, ct_eq, header, hmac_sha256, required_header,
    sha256,
};

const V3: &str = "x-hubspot-signature-v3";
const TIMESTAMP: &str = "x-hubspot-request-timestamp";
const LEGACY: &str = "x-hubspot-signature";
const VERSION: &str = "x-hubspot-signature-version";
const MAX_AGE_MS: i64 = 300_000;

/// The escapes HubSpot decodes in the URI before signing (case-insensitive).
const DECODED: [(&str, char); 12] = [
    ("%3A", ':'),
    ("%2F", '/'),
    ("%3F", '?'),
    ("%40", '@'),
    ("%21", '!'),
    ("%24", '$'),
    ("%27", '\''),
    ("%28", '('),
    ("%29", ')'),
    ("%2A", '*'),
    ("%2C", ','),
    ("%3B", ';'),
];

fn decode_uri(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape.and_then(|e| {
            DECODED
                .iter()
                .find(|(code, _)| code.eq_ignore_ascii_case(e))
        }) {
            Some((_, decoded)) => {
                out.push(*decoded);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn verify_v3(
    secrets: &[Secret],
    request: &Request<'_>,
    signature: &str,
    now_ms: i64,
) -> Result<Verified, Rejection> {
    let timestamp = required_header(request.headers, TIMESTAMP)?;
    let millis: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Rejection::malformed(TIMESTAMP, "not an integer number of milliseconds"))?;
    if now_ms.saturating_sub(millis) > MAX_AGE_MS {
        return Err(Rejection::TimestampOutOfTolerance {
            tolerance_seconds: 300,
        });
    }
    let candidates: Vec<Vec<u8>> = signature
        .split(',')
        .filter_map(|item| STANDARD.decode(item.trim()).ok())
        .collect();
    if candidates.is_empty() {
        return Err(Rejection::malformed(V3, "not base64"));
    }
    let uri = decode_uri(request.url);
    let signed = [
        request.method.as_bytes(),
        uri.as_bytes(),
        request.body,
        timestamp.as_bytes(),
    ];
    let matched = secrets.iter().fold(false, |found, secret| {
        any_matches(
            &hmac_sha256(secret.expose().as_bytes(), &signed),
            &candidates,
        ) | found
    });
    if matched {
        Ok(Verified::default())
    } else {
        Err(Rejection::NoMatchingSignature)
    }
}

fn verify_legacy(
    secrets: &[Secret],
    request: &Request<'_>,
    signature: &str,
) -> Result<Verified, Rejection> {
    let version = header(request.headers, VERSION)?.unwrap_or("v1");
    let with_request_line = match version.trim() {
        "v1" => false,
        "v2" => true,
        _ => return Err(Rejection::malformed(VERSION, "expected v1 or v2")),
    };
    let candidates: Vec<Vec<u8>> = signature
        .split(',')
        .filter_map(|item| hex::decode(item.trim()).ok())
        .collect();
    if candidates.is_empty() {
        return Err(Rejection::malformed(LEGACY, "not hex"));
    }
    let mut matched = false;
    for secret in secrets {
        let mut source = Vec::with_capacity(secret.expose().len() + request.body.len() + 64);
        source.extend_from_slice(secret.expose().as_bytes());
        if with_request_line {
            source.extend_from_slice(request.method.as_bytes());
            source.extend_from_slice(request.url.as_bytes());
        }
        source.extend_from_slice(request.body);
        let digest = sha256(&source);
        for candidate in &candidates {
            matched |= ct_eq(&digest, candidate);
        }
    }
    if matched {
        Ok(Verified::default())
    } else {
        Err(Rejection::NoMatchingSignature)
    }
}

pub(crate) fn verify(
    secrets: &[Secret],
    request: &Request<'_>,
    now_ms: i64,
) -> Result<Verified, Rejection> {
    if let Some(signature) = header(request.headers, V3)? {
        return verify_v3(secrets, request, signature, now_ms);
    }
    if let Some(signature) = header(request.headers, LEGACY)? {
        return verify_legacy(secrets, request, signature);
    }
    Err(Rejection::missing(V3))
}

#[cfg(test)]
mod tests {
    use super::decode_uri;

    #[test]
    fn decodes_only_the_listed_escapes() {
        assert_eq!(
            decode_uri("https://h.example/p%3Fa%3Db%2Cc%20d%2f?x=%40%zz%"),
            "https://h.example/p?a%3Db,c%20d/?x=@%zz%"
        );
    }
}
