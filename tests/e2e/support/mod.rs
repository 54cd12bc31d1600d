//! Shared helpers for the end-to-end suite.

#![allow(dead_code)]

pub mod app;
pub mod load;
pub mod proxy;
pub mod schemes;
pub mod services;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub use app::{Backend, Client, Integration, Process, Spawn, TestEnv};

/// Polls `check` until it answers `Some`, or panics naming `what` after `timeout`. Tests wait
/// for effects this way, never with fixed sleeps.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

pub fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

/// Standard Webhooks headers, computed here independently of rollcall's own code.
pub fn sign(
    secret: &str,
    message_id: &str,
    timestamp: i64,
    body: &str,
) -> Vec<(&'static str, String)> {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("a whsec_ secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{message_id}.{timestamp}.{body}").as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("webhook-id", message_id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", format!("v1,{signature}")),
    ]
}

/// A canonical event for one owner.
pub fn event(id: &str, event_type: &str, owner: &Value) -> String {
    json!({
        "id": id,
        "type": event_type,
        "occurred_at": "2026-11-21T10:00:00Z",
        "owner": owner,
        "record": {"kind": "opportunity", "id": "006B000002"},
    })
    .to_string()
}

/// An owner with every required field.
pub fn owner(id: &str, first: &str, last: &str, email: &str) -> Value {
    json!({"id": id, "first_name": first, "last_name": last, "email": email, "status": "active"})
}

/// The `.eml` files in a directory (none if it does not exist).
pub fn eml_files(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "eml"))
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .collect();
    files.sort();
    files
}

/// Decodes quoted-printable soft line breaks and `=XX` escapes, enough to read a link.
pub fn unfold_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(value) = joined
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first item of a JSON list answer, for readable assertions.
pub fn only(items: &[Value], what: &str) -> Value {
    assert_eq!(
        items.len(),
        1,
        "expected exactly one {what}, got {items:#?}"
    );
    items[0].clone()
}
