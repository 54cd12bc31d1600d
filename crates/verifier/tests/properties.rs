//! Properties over generated input: nothing makes the verifier panic, and changing any byte of
//! a genuine request makes it fail.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use http::HeaderMap;
use proptest::prelude::*;
use rollcall_verifier::{
    Encoding, HmacConfig, Request, SchemeConfig, Secret, TimestampUnit, verify,
};

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://hooks.example.com/hooks/abc?token=tok";

fn all_schemes() -> Vec<SchemeConfig> {
    vec![
        SchemeConfig::StandardWebhooks,
        SchemeConfig::Stripe {
            tolerance_seconds: 300,
        },
        SchemeConfig::Github,
        SchemeConfig::Hubspot,
        SchemeConfig::Jobber,
        SchemeConfig::Connectwise { company_id: None },
        SchemeConfig::Hmac(HmacConfig {
            header: "x-signature".to_owned(),
            prefix: "sha256=".to_owned(),
            encoding: Encoding::Hex,
            timestamp_header: Some("x-timestamp".to_owned()),
            timestamp_unit: TimestampUnit::Milliseconds,
            tolerance_seconds: 300,
            signed_content: "{timestamp}.{method}.{url}.{body}".to_owned(),
        }),
        SchemeConfig::Basic,
        SchemeConfig::Token {
            header: None,
            query: None,
            json_pointer: Some("/token".to_owned()),
        },
        SchemeConfig::SalesforceOutbound {
            organization_id: "00D000000000062".to_owned(),
        },
    ]
}

const HEADER_NAMES: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "stripe-signature",
    "x-hub-signature-256",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-hubspot-signature",
    "x-hubspot-signature-version",
    "x-jobber-hmac-sha256",
    "x-content-signature",
    "x-signature",
    "x-timestamp",
    "authorization",
];

fn arbitrary_headers() -> impl Strategy<Value = HeaderMap> {
    let value = prop_oneof![
        any::<Vec<u8>>(),
        "[ -~]{0,80}".prop_map(String::into_bytes),
        "(v1,|t=|sha256=|Basic )[A-Za-z0-9+/=,. ]{0,90}".prop_map(String::into_bytes),
        (-1_000_000_000_000_000i64..4_000_000_000_000i64).prop_map(|n| n.to_string().into_bytes()),
    ];
    proptest::collection::vec((proptest::sample::select(HEADER_NAMES), value), 0..8).prop_map(
        |pairs| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                if let Ok(value) = http::HeaderValue::from_bytes(&value) {
                    map.append(name, value);
                }
            }
            map
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_input_makes_any_scheme_panic(
        headers in arbitrary_headers(),
        body in prop_oneof![any::<Vec<u8>>(), "[<>/a-zA-Z0-9=\" ]{0,200}".prop_map(String::into_bytes)],
        now in any::<i64>(),
        secret in "[ -~]{0,40}",
    ) {
        for scheme in all_schemes() {
            let request = Request { method: "POST", url: URL, headers: &headers, body: &body };
            let _ = verify(&scheme, &[Secret::new(secret.clone()), Secret::new(SW_SECRET)], &request, now);
        }
    }
}

/// A genuine request for `scheme` with `body`: its headers, URL and secret.
fn genuine(scheme: &SchemeConfig, body: &[u8]) -> (HeaderMap, String, String) {
    match scheme {
        SchemeConfig::StandardWebhooks => (
            headers(&[
                ("webhook-id", "msg_1".to_owned()),
                ("webhook-timestamp", NOW.to_string()),
                ("webhook-signature", standard_webhooks("msg_1", NOW, body)),
            ]),
            URL.to_owned(),
            SW_SECRET.to_owned(),
        ),
        SchemeConfig::Stripe { .. } => (
            headers(&[(
                "stripe-signature",
                format!("t={NOW},v1={}", stripe("whsec_s", NOW, body)),
            )]),
            URL.to_owned(),
            "whsec_s".to_owned(),
        ),
        SchemeConfig::Github => (
            headers(&[(
                "x-hub-signature-256",
                format!("sha256={}", hex::encode(hmac(b"gh", body))),
            )]),
            URL.to_owned(),
            "gh".to_owned(),
        ),
        SchemeConfig::Hubspot => (
            headers(&[
                (
                    "x-hubspot-signature-v3",
                    hubspot_v3("hs", "POST", URL, body, NOW * 1000),
                ),
                ("x-hubspot-request-timestamp", (NOW * 1000).to_string()),
            ]),
            URL.to_owned(),
            "hs".to_owned(),
        ),
        SchemeConfig::Jobber => (
            headers(&[("x-jobber-hmac-sha256", b64(&hmac(b"jb", body)))]),
            URL.to_owned(),
            "jb".to_owned(),
        ),
        _ => unreachable!("only signing schemes are mutated"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_changed_body_byte_is_refused(
        body in proptest::collection::vec(any::<u8>(), 1..300),
        at in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
    ) {
        for scheme in all_schemes().into_iter().take(5) {
            let (headers, url, secret) = genuine(&scheme, &body);
            let secrets = [Secret::new(secret)];
            let request = Request { method: "POST", url: &url, headers: &headers, body: &body };
            prop_assert!(verify(&scheme, &secrets, &request, NOW * 1000).is_ok(), "{} genuine", scheme.name());
            let mut changed = body.clone();
            let i = at.index(changed.len());
            changed[i] ^= flip;
            let request = Request { method: "POST", url: &url, headers: &headers, body: &changed };
            prop_assert!(verify(&scheme, &secrets, &request, NOW * 1000).is_err(), "{} accepted a changed body", scheme.name());
        }
    }

    #[test]
    fn any_changed_signature_header_byte_is_refused(
        body in proptest::collection::vec(any::<u8>(), 0..100),
        at in any::<proptest::sample::Index>(),
        replacement in proptest::sample::select(b"0123456789abcdefABCDEF+/=,vt".to_vec()),
    ) {
        for scheme in all_schemes().into_iter().take(5) {
            let (headers, url, secret) = genuine(&scheme, &body);
            // Mutate one byte of every header value in turn (id, timestamp and signature).
            for (name, value) in &headers {
                let mut bytes = value.as_bytes().to_vec();
                let i = at.index(bytes.len());
                // Hex is case-insensitive: `a` and `A` are the same signature byte.
                let hex_header = matches!(scheme, SchemeConfig::Github | SchemeConfig::Stripe { .. });
                if bytes[i] == replacement || (hex_header && bytes[i].eq_ignore_ascii_case(&replacement)) {
                    continue;
                }
                bytes[i] = replacement;
                let mut changed = headers.clone();
                changed.insert(name.clone(), http::HeaderValue::from_bytes(&bytes).unwrap());
                let request = Request { method: "POST", url: &url, headers: &changed, body: &body };
                let result = verify(&scheme, &[Secret::new(secret.clone())], &request, NOW * 1000);
                prop_assert!(result.is_err(), "{} accepted {name} changed at {i}", scheme.name());
            }
        }
    }
}
