//! Boundaries and malformed input for every scheme, beyond the published vectors.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use http::HeaderMap;
use rollcall_verifier::{
    Encoding, HmacConfig, Rejection, Request, SchemeConfig, Secret, TimestampUnit, verify,
};
use serde_json::json;

const URL: &str = "https://hooks.example.com/hooks/abc";
const BODY: &[u8] = br#"{"id":"evt_1","type":"deal.updated"}"#;

fn check(
    scheme: &SchemeConfig,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    url: &str,
    now_ms: i64,
) -> Result<(), Rejection> {
    let request = Request {
        method: "POST",
        url,
        headers,
        body,
    };
    verify(scheme, &[Secret::new(secret)], &request, now_ms).map(|_| ())
}

fn code(result: Result<(), Rejection>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(rejection) => rejection.code(),
    }
}

mod standard_webhooks {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn signed(ts: i64) -> HeaderMap {
        headers(&[
            ("webhook-id", "msg_1".to_owned()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", standard_webhooks("msg_1", ts, BODY)),
        ])
    }

    fn at(ts: i64) -> &'static str {
        code(check(
            &SchemeConfig::StandardWebhooks,
            SW_SECRET,
            &signed(ts),
            BODY,
            URL,
            NOW * 1000,
        ))
    }

    #[test]
    fn tolerance_is_300_seconds_both_ways_inclusive() {
        assert_eq!(at(NOW), "ok");
        assert_eq!(at(NOW - 300), "ok");
        assert_eq!(at(NOW + 300), "ok");
        assert_eq!(at(NOW - 301), "stale_timestamp");
        assert_eq!(at(NOW + 301), "stale_timestamp");
        assert_eq!(at(i64::MIN), "stale_timestamp");
        assert_eq!(at(i64::MAX), "stale_timestamp");
    }

    #[test]
    fn svix_header_names_and_any_case_work() {
        let value = standard_webhooks("msg_1", NOW, BODY);
        let svix = headers(&[
            ("Svix-Id", "msg_1".to_owned()),
            ("SVIX-TIMESTAMP", NOW.to_string()),
            ("svix-signature", value),
        ]);
        let request = Request {
            method: "POST",
            url: URL,
            headers: &svix,
            body: BODY,
        };
        let verified = verify(
            &SchemeConfig::StandardWebhooks,
            &[Secret::new(SW_SECRET)],
            &request,
            NOW * 1000,
        )
        .unwrap();
        assert_eq!(verified.provider_event_id.as_deref(), Some("msg_1"));
    }

    #[test]
    fn any_one_of_several_signatures_may_match() {
        let good = standard_webhooks("msg_1", NOW, BODY);
        for list in [
            format!("v1,AAAA {good}"),
            format!("{good} v1,AAAA"),
            format!("v2,xyz v1a,bad {good}"),
        ] {
            let map = headers(&[
                ("webhook-id", "msg_1".to_owned()),
                ("webhook-timestamp", NOW.to_string()),
                ("webhook-signature", list.clone()),
            ]);
            assert_eq!(
                code(check(
                    &SchemeConfig::StandardWebhooks,
                    SW_SECRET,
                    &map,
                    BODY,
                    URL,
                    NOW * 1000
                )),
                "ok",
                "{list}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_named() {
        let cases = [
            (
                vec![
                    ("webhook-id", ""),
                    ("webhook-timestamp", "1700000000"),
                    ("webhook-signature", "v1,AAAA"),
                ],
                "malformed_header",
            ),
            (
                vec![
                    ("webhook-id", "m"),
                    ("webhook-timestamp", " 17e8 "),
                    ("webhook-signature", "v1,AAAA"),
                ],
                "malformed_header",
            ),
            (
                vec![
                    ("webhook-id", "m"),
                    ("webhook-timestamp", "1700000000"),
                    ("webhook-signature", "AAAA"),
                ],
                "malformed_header",
            ),
            (
                vec![
                    ("webhook-id", "m"),
                    ("webhook-timestamp", "1700000000"),
                    ("webhook-signature", "v1,!!!not base64"),
                ],
                "malformed_header",
            ),
            (
                vec![
                    ("webhook-id", "m"),
                    ("webhook-timestamp", "1700000000"),
                    ("webhook-signature", "v1,AAAA"),
                ],
                "bad_signature",
            ),
            (
                vec![("webhook-id", "m"), ("webhook-signature", "v1,AAAA")],
                "missing_header",
            ),
            (vec![], "missing_header"),
        ];
        for (pairs, expected) in cases {
            let owned: Vec<(&str, String)> =
                pairs.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
            assert_eq!(
                code(check(
                    &SchemeConfig::StandardWebhooks,
                    SW_SECRET,
                    &headers(&owned),
                    BODY,
                    URL,
                    NOW * 1000
                )),
                expected,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn a_secret_that_is_not_base64_verifies_nothing() {
        let map = signed(NOW);
        assert_eq!(
            code(check(
                &SchemeConfig::StandardWebhooks,
                "whsec_%%%",
                &map,
                BODY,
                URL,
                NOW * 1000
            )),
            "no_secret"
        );
    }
}

mod stripe {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_700_000_000;
    const SCHEME: SchemeConfig = SchemeConfig::Stripe {
        tolerance_seconds: 300,
    };

    fn header_for(ts: i64, extra: &str) -> HeaderMap {
        headers(&[(
            "Stripe-Signature",
            format!("t={ts},{extra}v1={}", stripe(SECRET, ts, BODY)),
        )])
    }

    #[test]
    fn only_age_is_limited_as_in_stripes_libraries() {
        let at = |ts| {
            code(check(
                &SCHEME,
                SECRET,
                &header_for(ts, ""),
                BODY,
                URL,
                NOW * 1000,
            ))
        };
        assert_eq!(at(NOW - 300), "ok");
        assert_eq!(at(NOW - 301), "stale_timestamp");
        // Stripe's libraries do not refuse timestamps from the future.
        assert_eq!(at(NOW + 3600), "ok");
    }

    #[test]
    fn the_key_is_the_whole_secret_string() {
        let decoded_key_signature = {
            let key = SECRET.trim_start_matches("whsec_");
            headers(&[(
                "Stripe-Signature",
                format!("t={NOW},v1={}", stripe(key, NOW, BODY)),
            )])
        };
        assert_eq!(
            code(check(
                &SCHEME,
                SECRET,
                &decoded_key_signature,
                BODY,
                URL,
                NOW * 1000
            )),
            "bad_signature"
        );
    }

    #[test]
    fn several_signatures_and_other_schemes_in_the_header() {
        let map = header_for(NOW, "v0=deadbeef,v1=00ff,");
        assert_eq!(
            code(check(&SCHEME, SECRET, &map, BODY, URL, NOW * 1000)),
            "ok"
        );
        let only_v0 = headers(&[(
            "Stripe-Signature",
            format!("t={NOW},v0={}", stripe(SECRET, NOW, BODY)),
        )]);
        assert_eq!(
            code(check(&SCHEME, SECRET, &only_v0, BODY, URL, NOW * 1000)),
            "malformed_header"
        );
        let bad_t = headers(&[("Stripe-Signature", "t=soon,v1=00".to_owned())]);
        assert_eq!(
            code(check(&SCHEME, SECRET, &bad_t, BODY, URL, NOW * 1000)),
            "malformed_header"
        );
    }
}

mod github {
    use super::*;

    const SECRET: &str = "It's a Secret to Everybody";

    #[test]
    fn delivery_id_and_prefix() {
        let signature = hex::encode(hmac(SECRET.as_bytes(), BODY));
        let map = headers(&[
            ("X-Hub-Signature-256", format!("sha256={signature}")),
            (
                "X-GitHub-Delivery",
                "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned(),
            ),
        ]);
        let request = Request {
            method: "POST",
            url: URL,
            headers: &map,
            body: BODY,
        };
        let verified = verify(&SchemeConfig::Github, &[Secret::new(SECRET)], &request, 0).unwrap();
        assert_eq!(
            verified.provider_event_id.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        let sha1 = headers(&[("X-Hub-Signature-256", format!("sha1={signature}"))]);
        assert_eq!(
            code(check(&SchemeConfig::Github, SECRET, &sha1, BODY, URL, 0)),
            "malformed_header"
        );
        let upper = headers(&[(
            "X-Hub-Signature-256",
            format!("sha256={}", signature.to_uppercase()),
        )]);
        assert_eq!(
            code(check(&SchemeConfig::Github, SECRET, &upper, BODY, URL, 0)),
            "ok",
            "hex is compared as bytes"
        );
    }
}

mod hubspot {
    use super::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const NOW_MS: i64 = 1_735_689_603_000;

    fn v3(ts_ms: i64, url: &str, signed_uri: &str) -> Result<(), Rejection> {
        let map = headers(&[
            (
                "X-HubSpot-Signature-v3",
                hubspot_v3(SECRET, "POST", signed_uri, BODY, ts_ms),
            ),
            ("X-HubSpot-Request-Timestamp", ts_ms.to_string()),
        ]);
        check(&SchemeConfig::Hubspot, SECRET, &map, BODY, url, NOW_MS)
    }

    #[test]
    fn older_than_five_minutes_is_refused_exactly_at_the_boundary() {
        assert_eq!(code(v3(NOW_MS - 300_000, URL, URL)), "ok");
        assert_eq!(code(v3(NOW_MS - 300_001, URL, URL)), "stale_timestamp");
        assert_eq!(code(v3(NOW_MS + 60_000, URL, URL)), "ok");
    }

    #[test]
    fn the_uri_is_signed_with_hubspots_escapes_decoded() {
        let url = "https://hooks.example.com/hooks/abc?tag=a%3Ab%2Cc&x=%20";
        let decoded = "https://hooks.example.com/hooks/abc?tag=a:b,c&x=%20";
        assert_eq!(code(v3(NOW_MS, url, decoded)), "ok");
        assert_eq!(code(v3(NOW_MS, url, url)), "bad_signature");
    }

    #[test]
    fn legacy_v1_and_v2() {
        let v1 = headers(&[(
            "X-HubSpot-Signature",
            sha256_hex(&[SECRET.as_bytes(), BODY]),
        )]);
        assert_eq!(
            code(check(
                &SchemeConfig::Hubspot,
                SECRET,
                &v1,
                BODY,
                URL,
                NOW_MS
            )),
            "ok"
        );
        let v2 = headers(&[
            (
                "X-HubSpot-Signature",
                sha256_hex(&[SECRET.as_bytes(), b"POST", URL.as_bytes(), BODY]),
            ),
            ("X-HubSpot-Signature-Version", "v2".to_owned()),
        ]);
        assert_eq!(
            code(check(
                &SchemeConfig::Hubspot,
                SECRET,
                &v2,
                BODY,
                URL,
                NOW_MS
            )),
            "ok"
        );
        let v9 = headers(&[
            (
                "X-HubSpot-Signature",
                sha256_hex(&[SECRET.as_bytes(), BODY]),
            ),
            ("X-HubSpot-Signature-Version", "v9".to_owned()),
        ]);
        assert_eq!(
            code(check(
                &SchemeConfig::Hubspot,
                SECRET,
                &v9,
                BODY,
                URL,
                NOW_MS
            )),
            "malformed_header"
        );
        let no_timestamp = headers(&[("X-HubSpot-Signature-v3", "AAAA".to_owned())]);
        assert_eq!(
            code(check(
                &SchemeConfig::Hubspot,
                SECRET,
                &no_timestamp,
                BODY,
                URL,
                NOW_MS
            )),
            "missing_header"
        );
    }
}

mod connectwise {
    use super::*;

    #[test]
    fn the_key_is_the_sha256_of_the_signing_key() {
        let signing_key = "test-signing-key";
        let derived = sha2_digest(signing_key.as_bytes());
        let right = headers(&[("x-content-signature", b64(&hmac(&derived, BODY)))]);
        let scheme = SchemeConfig::Connectwise { company_id: None };
        assert_eq!(
            code(check(&scheme, signing_key, &right, BODY, URL, 0)),
            "ok"
        );
        let raw_key = headers(&[(
            "x-content-signature",
            b64(&hmac(signing_key.as_bytes(), BODY)),
        )]);
        assert_eq!(
            code(check(&scheme, signing_key, &raw_key, BODY, URL, 0)),
            "bad_signature"
        );
    }

    fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).to_vec()
    }
}

mod hmac_scheme {
    use super::*;

    const SECRET: &str = "shared-hmac-secret";
    const NOW: i64 = 1_700_000_000;

    fn config(encoding: Encoding, prefix: &str, timestamp: bool, template: &str) -> SchemeConfig {
        SchemeConfig::Hmac(HmacConfig {
            header: "X-Signature".to_owned(),
            prefix: prefix.to_owned(),
            encoding,
            timestamp_header: timestamp.then(|| "X-Timestamp".to_owned()),
            timestamp_unit: TimestampUnit::Seconds,
            tolerance_seconds: 300,
            signed_content: template.to_owned(),
        })
    }

    #[test]
    fn hex_with_prefix_and_base64() {
        let hex_config = config(Encoding::Hex, "sha256=", false, "{body}");
        let map = headers(&[(
            "x-signature",
            format!("sha256={}", hex::encode(hmac(SECRET.as_bytes(), BODY))),
        )]);
        assert_eq!(code(check(&hex_config, SECRET, &map, BODY, URL, 0)), "ok");
        let no_prefix = headers(&[("x-signature", hex::encode(hmac(SECRET.as_bytes(), BODY)))]);
        assert_eq!(
            code(check(&hex_config, SECRET, &no_prefix, BODY, URL, 0)),
            "malformed_header"
        );
        let b64_config = config(Encoding::Base64, "", false, "{body}");
        let map = headers(&[(
            "x-signature",
            format!("AAAA,{}", b64(&hmac(SECRET.as_bytes(), BODY))),
        )]);
        assert_eq!(code(check(&b64_config, SECRET, &map, BODY, URL, 0)), "ok");
    }

    #[test]
    fn timestamp_template_and_tolerance() {
        let scheme = config(Encoding::Hex, "", true, "v0:{timestamp}:{body}");
        let signed = |ts: i64| {
            let mut message = format!("v0:{ts}:").into_bytes();
            message.extend_from_slice(BODY);
            headers(&[
                (
                    "x-signature",
                    hex::encode(hmac(SECRET.as_bytes(), &message)),
                ),
                ("x-timestamp", ts.to_string()),
            ])
        };
        assert_eq!(
            code(check(
                &scheme,
                SECRET,
                &signed(NOW - 300),
                BODY,
                URL,
                NOW * 1000
            )),
            "ok"
        );
        assert_eq!(
            code(check(
                &scheme,
                SECRET,
                &signed(NOW - 301),
                BODY,
                URL,
                NOW * 1000
            )),
            "stale_timestamp"
        );
        assert_eq!(
            code(check(
                &scheme,
                SECRET,
                &signed(NOW + 301),
                BODY,
                URL,
                NOW * 1000
            )),
            "stale_timestamp"
        );
        let mut replaced = signed(NOW);
        replaced.insert("x-timestamp", (NOW + 1).to_string().parse().unwrap());
        assert_eq!(
            code(check(&scheme, SECRET, &replaced, BODY, URL, NOW * 1000)),
            "bad_signature"
        );
    }

    #[test]
    fn bad_configurations_are_refused_before_use() {
        for (template, timestamp) in [
            ("{timestamp}", true),
            ("{timestamp}.{body}", false),
            ("{body}{bdy}", false),
        ] {
            assert!(
                config(Encoding::Hex, "", timestamp, template)
                    .validate()
                    .is_err(),
                "{template}"
            );
        }
        let bad_header = SchemeConfig::Hmac(HmacConfig {
            header: "X Signature".to_owned(),
            ..match config(Encoding::Hex, "", false, "{body}") {
                SchemeConfig::Hmac(c) => c,
                _ => unreachable!(),
            }
        });
        assert!(bad_header.validate().is_err());
    }
}

mod basic_and_token {
    use super::*;

    #[test]
    fn basic_credentials() {
        let secret = "pipedrive:s3cret";
        let ok = headers(&[("Authorization", format!("Basic {}", b64(secret.as_bytes())))]);
        assert_eq!(
            code(check(&SchemeConfig::Basic, secret, &ok, BODY, URL, 0)),
            "ok"
        );
        let wrong = headers(&[(
            "Authorization",
            format!("basic {}", b64(b"pipedrive:guess")),
        )]);
        assert_eq!(
            code(check(&SchemeConfig::Basic, secret, &wrong, BODY, URL, 0)),
            "bad_credentials"
        );
        let bearer = headers(&[(
            "Authorization",
            format!("Bearer {}", b64(secret.as_bytes())),
        )]);
        assert_eq!(
            code(check(&SchemeConfig::Basic, secret, &bearer, BODY, URL, 0)),
            "malformed_header"
        );
        let garbage = headers(&[("Authorization", "Basic %%%".to_owned())]);
        assert_eq!(
            code(check(&SchemeConfig::Basic, secret, &garbage, BODY, URL, 0)),
            "malformed_header"
        );
        assert_eq!(
            code(check(
                &SchemeConfig::Basic,
                secret,
                &HeaderMap::new(),
                BODY,
                URL,
                0
            )),
            "missing_header"
        );
    }

    fn token(header: Option<&str>, query: Option<&str>, pointer: Option<&str>) -> SchemeConfig {
        SchemeConfig::Token {
            header: header.map(str::to_owned),
            query: query.map(str::to_owned),
            json_pointer: pointer.map(str::to_owned),
        }
    }

    #[test]
    fn tokens_in_a_header_a_query_or_the_body() {
        let secret = "zoho-token-123";
        let in_header = token(Some("X-Webhook-Token"), None, None);
        let map = headers(&[("x-webhook-token", format!("Bearer {secret}"))]);
        assert_eq!(code(check(&in_header, secret, &map, BODY, URL, 0)), "ok");
        let in_query = token(None, Some("token"), None);
        assert_eq!(
            code(check(
                &in_query,
                secret,
                &HeaderMap::new(),
                BODY,
                &format!("{URL}?token={secret}"),
                0
            )),
            "ok"
        );
        assert_eq!(
            code(check(&in_query, secret, &HeaderMap::new(), BODY, URL, 0)),
            "bad_credentials"
        );
        let in_body = token(None, None, Some("/token"));
        let body = json!({"token": secret, "ids": ["1"]}).to_string();
        assert_eq!(
            code(check(
                &in_body,
                secret,
                &HeaderMap::new(),
                body.as_bytes(),
                URL,
                0
            )),
            "ok"
        );
        let body = json!({"token": "guess"}).to_string();
        assert_eq!(
            code(check(
                &in_body,
                secret,
                &HeaderMap::new(),
                body.as_bytes(),
                URL,
                0
            )),
            "bad_credentials"
        );
        assert_eq!(
            code(check(
                &in_body,
                secret,
                &HeaderMap::new(),
                b"not json",
                URL,
                0
            )),
            "malformed_body"
        );
        assert!(token(Some("a"), Some("b"), None).validate().is_err());
        assert!(token(None, None, None).validate().is_err());
        assert!(token(None, None, Some("token")).validate().is_err());
    }
}

mod salesforce {
    use super::*;

    fn soap(org: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>{org}</OrganizationId><ActionId>04k000000000001</ActionId></notifications></soapenv:Body></soapenv:Envelope>"#
        )
    }

    fn at(configured: &str, sent: &str, url: &str) -> &'static str {
        let scheme = SchemeConfig::SalesforceOutbound {
            organization_id: configured.to_owned(),
        };
        code(check(
            &scheme,
            "url-token",
            &HeaderMap::new(),
            soap(sent).as_bytes(),
            url,
            0,
        ))
    }

    #[test]
    fn organization_in_either_form_and_the_url_token() {
        let url = format!("{URL}?token=url-token");
        assert_eq!(at("00D000000000062", "00D000000000062EAA", &url), "ok");
        assert_eq!(at("00D000000000062EAA", "00D000000000062", &url), "ok");
        assert_eq!(
            at("00D000000000062", "00D000000000063", &url),
            "wrong_organization"
        );
        assert_eq!(
            at("00D000000000062", "00d000000000062", &url),
            "wrong_organization"
        );
        assert_eq!(
            at("00D000000000062", "00D000000000062EAA", URL),
            "bad_credentials"
        );
        assert_eq!(
            at(
                "00D000000000062",
                "00D000000000062EAA",
                &format!("{URL}?token=guess")
            ),
            "bad_credentials"
        );
        assert!(
            SchemeConfig::SalesforceOutbound {
                organization_id: "nope".to_owned()
            }
            .validate()
            .is_err()
        );
    }
}

#[test]
fn unknown_schemes_do_not_deserialize_and_so_fail_closed() {
    for stored in [
        json!({"scheme": "md5"}),
        json!({"scheme": "none"}),
        json!({}),
        json!({"scheme": "stripe", "tolerance": 5}),
    ] {
        assert!(
            serde_json::from_value::<SchemeConfig>(stored.clone()).is_err(),
            "{stored}"
        );
    }
}

#[test]
fn every_configuration_round_trips() {
    for stored in [
        json!({"scheme": "standard-webhooks"}),
        json!({"scheme": "stripe", "tolerance_seconds": 300}),
        json!({"scheme": "github"}),
        json!({"scheme": "hubspot"}),
        json!({"scheme": "jobber"}),
        json!({"scheme": "connectwise", "company_id": "myCompany"}),
        json!({"scheme": "hmac", "header": "X-Sig", "prefix": "", "encoding": "hex", "timestamp_unit": "seconds", "tolerance_seconds": 300, "signed_content": "{body}"}),
        json!({"scheme": "basic"}),
        json!({"scheme": "token", "json_pointer": "/token"}),
        json!({"scheme": "salesforce-outbound", "organization_id": "00D000000000062"}),
    ] {
        let scheme: SchemeConfig =
            serde_json::from_value(stored.clone()).unwrap_or_else(|e| panic!("{stored}: {e}"));
        scheme.validate().unwrap();
        assert_eq!(serde_json::to_value(&scheme).unwrap(), stored);
    }
}
