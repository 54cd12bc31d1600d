//! A configurable HMAC-SHA256 scheme for senders that sign their own way: which header carries
//! the signature, an optional prefix (`sha256=`), hex or base64, an optional timestamp header
//! with a tolerance, and a template for the signed content (`{timestamp}.{body}`, …).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::{Rejection, Request, Secret, Verified, any_matches, hmac_sha256, required_header};

/// How the signature bytes are written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

/// The unit of the timestamp header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    Seconds,
    Milliseconds,
}

/// Parameters of the `hmac` scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacConfig {
    /// The header carrying the signature(s); several may be separated by commas or spaces.
    pub header: String,
    /// Text before each signature (e.g. `sha256=`); empty for none.
    #[serde(default)]
    pub prefix: String,
    pub encoding: Encoding,
    /// A header carrying the time of sending; when set, stale requests are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    #[serde(default = "default_unit")]
    pub timestamp_unit: TimestampUnit,
    /// Largest difference between the timestamp and now, either way (default 300 s).
    #[serde(default = "default_tolerance")]
    pub tolerance_seconds: u64,
    /// What is signed: `{body}`, `{timestamp}`, `{method}` and `{url}` are replaced; anything
    /// else is literal. Default `{body}`.
    #[serde(default = "default_template")]
    pub signed_content: String,
}

const fn default_unit() -> TimestampUnit {
    TimestampUnit::Seconds
}

const fn default_tolerance() -> u64 {
    300
}

fn default_template() -> String {
    "{body}".to_owned()
}

const PLACEHOLDERS: [&str; 4] = ["{body}", "{timestamp}", "{method}", "{url}"];

impl HmacConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (what, name) in [
            ("header", Some(&self.header)),
            ("timestamp_header", self.timestamp_header.as_ref()),
        ] {
            if let Some(name) = name
                && http::HeaderName::from_bytes(name.as_bytes()).is_err()
            {
                return Err(format!("{what} {name:?} is not a valid header name"));
            }
        }
        if !self.signed_content.contains("{body}") {
            return Err("signed_content must include {body}".to_owned());
        }
        if self.signed_content.contains("{timestamp}") && self.timestamp_header.is_none() {
            return Err(
                "signed_content uses {timestamp} but no timestamp_header is set".to_owned(),
            );
        }
        // A brace that does not open a known placeholder is almost certainly a typo.
        let mut rest = self.signed_content.as_str();
        while let Some(at) = rest.find('{') {
            let tail = &rest[at..];
            match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
                Some(p) => rest = &tail[p.len()..],
                None => {
                    return Err(format!(
                        "signed_content has an unknown placeholder near {:?}",
                        tail.chars().take(12).collect::<String>()
                    ));
                }
            }
        }
        Ok(())
    }

    fn signed_parts<'a>(&'a self, request: &Request<'a>, timestamp: &'a str) -> Vec<&'a [u8]> {
        let mut parts = Vec::new();
        let mut rest = self.signed_content.as_str();
        while !rest.is_empty() {
            let next = PLACEHOLDERS
                .iter()
                .filter_map(|p| rest.find(p).map(|at| (at, *p)))
                .min_by_key(|(at, _)| *at);
            match next {
                Some((at, placeholder)) => {
                    parts.push(&rest.as_bytes()[..at]);
                    parts.push(match placeholder {
                        "{body}" => request.body,
                        "{timestamp}" => timestamp.as_bytes(),
                        "{method}" => request.method.as_bytes(),
                        _ => request.url.as_bytes(),
                    });
                    rest = &rest[at + placeholder.len()..];
                }
                None => {
                    parts.push(rest.as_bytes());
                    rest = "";
                }
            }
        }
        parts
    }
}

pub(crate) fn verify(
    config: &HmacConfig,
    secrets: &[Secret],
    request: &Request<'_>,
    now_ms: i64,
) -> Result<Verified, Rejection> {
    let value = required_header(request.headers, &config.header)?;
    let candidates: Vec<Vec<u8>> = value
        .split([',', ' '])
        .filter(|item| !item.is_empty())
        .filter_map(|item| item.strip_prefix(config.prefix.as_str()))
        .filter_map(|text| match config.encoding {
            Encoding::Hex => hex::decode(text).ok(),
            Encoding::Base64 => STANDARD.decode(text).ok(),
        })
        .collect();
    if candidates.is_empty() {
        return Err(Rejection::malformed(
            &config.header,
            "no signature in the expected format",
        ));
    }
    let timestamp = match &config.timestamp_header {
        None => "",
        Some(name) => {
            let text = required_header(request.headers, name)?;
            let value: i64 = text
                .trim()
                .parse()
                .map_err(|_| Rejection::malformed(name, "not an integer"))?;
            let value_ms = match config.timestamp_unit {
                TimestampUnit::Seconds => value.saturating_mul(1000),
                TimestampUnit::Milliseconds => value,
            };
            let tolerance_ms = i64::try_from(config.tolerance_seconds)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000);
            if now_ms.saturating_sub(value_ms) > tolerance_ms
                || value_ms.saturating_sub(now_ms) > tolerance_ms
            {
                return Err(Rejection::TimestampOutOfTolerance {
                    tolerance_seconds: config.tolerance_seconds,
                });
            }
            text
        }
    };
    let parts = config.signed_parts(request, timestamp);
    let matched = secrets.iter().fold(false, |found, secret| {
        any_matches(
            &hmac_sha256(secret.expose().as_bytes(), &parts),
            &candidates,
        ) | found
    });
    if matched {
        Ok(Verified::default())
    } else {
        Err(Rejection::NoMatchingSignature)
    }
}
