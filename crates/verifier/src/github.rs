//! GitHub: `X-Hub-Signature-256: sha256=<lowercase hex>` of the body, keyed with the secret.
//! No timestamp: replays are stopped by deduplicating on `X-GitHub-Delivery`.

use crate::{
    Rejection, Request, Secret, Verified, any_matches, header, hmac_sha256, required_header,
};

const HEADER: &str = "x-hub-signature-256";

pub(crate) fn verify(secrets: &[Secret], request: &Request<'_>) -> Result<Verified, Rejection> {
    let value = required_header(request.headers, HEADER)?;
    let candidates: Vec<Vec<u8>> = value
        .split(',')
        .filter_map(|item| item.trim().strip_prefix("sha256="))
        .filter_map(|hex_text| hex::decode(hex_text).ok())
        .collect();
    if candidates.is_empty() {
        return Err(Rejection::malformed(HEADER, "expected sha256=<hex>"));
    }
    let matched = secrets.iter().fold(false, |found, secret| {
        any_matches(
            &hmac_sha256(secret.expose().as_bytes(), &[request.body]),
            &candidates,
        ) | found
    });
    if !matched {
        return Err(Rejection::NoMatchingSignature);
    }
    Ok(Verified {
        provider_event_id: header(request.headers, "x-github-delivery")?
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
    })
}
