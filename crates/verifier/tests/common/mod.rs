//! Signing as each sender does, written here independently of the crate's verification code.

#![allow(dead_code, unreachable_pub)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

pub fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn headers(pairs: &[(&str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

pub const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn standard_webhooks(id: &str, ts: i64, body: &[u8]) -> String {
    let key = STANDARD
        .decode(SW_SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut message = format!("{id}.{ts}.").into_bytes();
    message.extend_from_slice(body);
    format!("v1,{}", b64(&hmac(&key, &message)))
}

pub fn stripe(secret: &str, ts: i64, body: &[u8]) -> String {
    let mut message = format!("{ts}.").into_bytes();
    message.extend_from_slice(body);
    hex::encode(hmac(secret.as_bytes(), &message))
}

pub fn hubspot_v3(secret: &str, method: &str, uri: &str, body: &[u8], ts_ms: i64) -> String {
    let mut message = format!("{method}{uri}").into_bytes();
    message.extend_from_slice(body);
    message.extend_from_slice(ts_ms.to_string().as_bytes());
    b64(&hmac(secret.as_bytes(), &message))
}

pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}
