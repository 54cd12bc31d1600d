//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`. The HMAC key is the whole
//! secret string, `whsec_` included (not decoded); signed content is `t.body`. As in Stripe's
//! libraries, the signatures are checked first, then the age: a timestamp more than
//! `tolerance` seconds old is refused (exactly `tolerance` passes), one in the future is not.

use crate::{Rejection, Request, Secret, Verified, any_matches, hmac_sha256, required_header};

const HEADER: &str = "stripe-signature";

pub(crate) fn verify(
    secrets: &[Secret],
    request: &Request<'_>,
    now_unix_seconds: i64,
    tolerance_seconds: u64,
) -> Result<Verified, Rejection> {
    let value = required_header(request.headers, HEADER)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in value.split(',') {
        let Some((key, val)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = Some(val),
            "v1" => {
                if let Ok(bytes) = hex::decode(val) {
                    candidates.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| Rejection::malformed(HEADER, "no t= timestamp"))?;
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| Rejection::malformed(HEADER, "t= is not an integer"))?;
    if candidates.is_empty() {
        return Err(Rejection::malformed(HEADER, "no v1 signature"));
    }
    let signed = [timestamp.as_bytes(), b".", request.body];
    let matched = secrets.iter().fold(false, |found, secret| {
        any_matches(
            &hmac_sha256(secret.expose().as_bytes(), &signed),
            &candidates,
        ) | found
    });
    if !matched {
        return Err(Rejection::NoMatchingSignature);
    }
    let tolerance = i64::try_from(tolerance_seconds).unwrap_or(i64::MAX);
    if tolerance > 0 && now_unix_seconds.saturating_sub(seconds) > tolerance {
        return Err(Rejection::TimestampOutOfTolerance { tolerance_seconds });
    }
    Ok(Verified::default())
}
