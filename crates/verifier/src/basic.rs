//! HTTP Basic authentication (Pipedrive's webhook "HTTP Auth"): `Authorization: Basic
//! base64(user:password)` compared in constant time with each `user:password` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{Rejection, Request, Secret, Verified, ct_eq, required_header};

pub(crate) fn verify(secrets: &[Secret], request: &Request<'_>) -> Result<Verified, Rejection> {
    let value = required_header(request.headers, "authorization")?;
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| Rejection::malformed("authorization", "expected Basic credentials"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Rejection::malformed(
            "authorization",
            "expected Basic credentials",
        ));
    }
    let presented = STANDARD
        .decode(encoded.trim())
        .map_err(|_| Rejection::malformed("authorization", "credentials are not base64"))?;
    let matched = secrets.iter().fold(false, |found, secret| {
        ct_eq(secret.expose().as_bytes(), &presented) | found
    });
    if matched {
        Ok(Verified::default())
    } else {
        Err(Rejection::BadCredentials)
    }
}
