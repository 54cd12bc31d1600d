//! Every published vector, table-driven, with the clock pinned to the case's `now`.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, HeaderName, HeaderValue};
use rollcall_verifier::{Rejection, Request, SchemeConfig, Secret, verify};
use serde_json::Value;

struct Case {
    file: &'static str,
    id: String,
    scheme: SchemeConfig,
    secret: String,
    method: String,
    url: String,
    headers: HeaderMap,
    body: String,
    now_ms: i64,
    expected_valid: bool,
    reason: Option<String>,
}

fn load(file: &'static str, scheme: SchemeConfig) -> Vec<Case> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let document: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    document["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let mut headers = HeaderMap::new();
            for (name, value) in case["headers"].as_object().unwrap() {
                headers.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
                );
            }
            let secret = case["secret"]
                .as_str()
                .or_else(|| case["client_secret"].as_str())
                .or_else(|| case["key_url_response"]["signing_key"].as_str())
                .unwrap()
                .to_owned();
            let now_ms = case["now_ms"]
                .as_i64()
                .or_else(|| case["now"].as_i64().map(|s| s * 1000))
                .unwrap_or(0);
            Case {
                file,
                id: case["id"].as_str().unwrap().to_owned(),
                scheme: scheme.clone(),
                secret,
                method: case["method"].as_str().unwrap_or("POST").to_owned(),
                url: case["uri"]
                    .as_str()
                    .unwrap_or("https://hooks.example.com/hooks/x")
                    .to_owned(),
                headers,
                body: case["body"].as_str().unwrap().to_owned(),
                now_ms,
                expected_valid: case["expected"] == "valid",
                reason: case["reason"].as_str().map(str::to_owned),
            }
        })
        .collect()
}

fn all_cases() -> Vec<Case> {
    [
        load("standard-webhooks.json", SchemeConfig::StandardWebhooks),
        load(
            "stripe.json",
            SchemeConfig::Stripe {
                tolerance_seconds: 300,
            },
        ),
        load("github.json", SchemeConfig::Github),
        load("hubspot.json", SchemeConfig::Hubspot),
        load("jobber.json", SchemeConfig::Jobber),
        load(
            "connectwise.json",
            SchemeConfig::Connectwise { company_id: None },
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The rejection a vector's `reason` describes, when it names one.
fn expected_code(reason: &str) -> Option<&'static str> {
    let reason = reason.to_lowercase();
    if reason.contains("timestamp too")
        || reason.contains("older than")
        || reason.contains("tolerance")
    {
        Some("stale_timestamp")
    } else if reason.contains("no matching signature") {
        Some("bad_signature")
    } else if reason.contains("missing required header") {
        Some("missing_header")
    } else if reason.contains("invalid timestamp") || reason.contains("unable to extract") {
        Some("malformed_header")
    } else {
        None
    }
}

#[test]
fn every_published_vector() {
    let cases = all_cases();
    assert!(
        cases.len() >= 30,
        "all vector files were read ({} cases)",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let request = Request {
            method: &case.method,
            url: &case.url,
            headers: &case.headers,
            body: case.body.as_bytes(),
        };
        let result = verify(
            &case.scheme,
            &[Secret::new(case.secret.clone())],
            &request,
            case.now_ms,
        );
        match (&result, case.expected_valid) {
            (Ok(_), true) => {}
            (Err(rejection), false) => {
                if let Some(code) = case.reason.as_deref().and_then(expected_code)
                    && rejection.code() != code
                {
                    failures.push(format!(
                        "{}/{}: rejected as {} ({rejection}), expected {code}",
                        case.file,
                        case.id,
                        rejection.code()
                    ));
                }
            }
            (Ok(_), false) => failures.push(format!(
                "{}/{}: accepted, expected invalid",
                case.file, case.id
            )),
            (Err(rejection), true) => failures.push(format!(
                "{}/{}: rejected ({rejection}), expected valid",
                case.file, case.id
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_valid_vector_still_passes_among_other_secrets() {
    // Rotation: the integration holds a new secret and the old one; either may have signed.
    for case in all_cases().into_iter().filter(|c| c.expected_valid) {
        let secrets = [
            Secret::new("an-unrelated-newer-secret"),
            Secret::new(case.secret.clone()),
        ];
        let request = Request {
            method: &case.method,
            url: &case.url,
            headers: &case.headers,
            body: case.body.as_bytes(),
        };
        assert!(
            verify(&case.scheme, &secrets, &request, case.now_ms).is_ok(),
            "{}/{} with two secrets",
            case.file,
            case.id
        );
        assert_eq!(
            verify(&case.scheme, &[], &request, case.now_ms),
            Err(Rejection::NoSecret),
            "{}/{} without secrets",
            case.file,
            case.id
        );
    }
}
