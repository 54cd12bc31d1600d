//! Schemes that sign only the body with HMAC-SHA256, base64 in one header: Jobber (keyed with
//! the app's client secret) and ConnectWise (keyed with the SHA-256 of the fetched signing
//! key). Neither has a timestamp; replays are stopped by deduplicating on the event id.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{Rejection, Request, Verified, any_matches, hmac_sha256, required_header};

pub(crate) fn verify(
    header_name: &str,
    keys: impl Iterator<Item = Vec<u8>>,
    request: &Request<'_>,
) -> Result<Verified, Rejection> {
    let value = required_header(request.headers, header_name)?;
    let candidates: Vec<Vec<u8>> = value
        .split([',', ' '])
        .filter(|item| !item.is_empty())
        .filter_map(|item| STANDARD.decode(item).ok())
        .collect();
    if candidates.is_empty() {
        return Err(Rejection::malformed(header_name, "not base64"));
    }
    let matched = keys.fold(false, |found, key| {
        any_matches(&hmac_sha256(&key, &[request.body]), &candidates) | found
    });
    if matched {
        Ok(Verified::default())
    } else {
        Err(Rejection::NoMatchingSignature)
    }
}
