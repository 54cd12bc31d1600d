//! ConnectWise signing keys. A ConnectWise callback names the URL of its signing key in its own
//! (not yet verified) body, under `Metadata.key_url`: an attacker controls that URL. So the key
//! is fetched only from allow-listed hosts, over HTTPS (plain HTTP only when configured, for
//! tests), without following redirects, with a short timeout and a small size cap, and cached.
//! A payload naming any other URL is refused before any connection is made.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The hosts ConnectWise PSA cloud serves callback keys from.
pub const DEFAULT_KEY_HOSTS: &[&str] = &[
    "api-na.myconnectwise.net",
    "api-eu.myconnectwise.net",
    "api-au.myconnectwise.net",
    "api-staging.connectwisedev.com",
    "na.myconnectwise.net",
    "eu.myconnectwise.net",
    "au.myconnectwise.net",
];

/// How long a fetched key is reused.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// A key response is a tiny JSON document; anything bigger is not one.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// Which key URLs may be fetched.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// Host names (optionally `host:port`) that may serve keys, compared exactly.
    pub allowed_hosts: Vec<String>,
    /// Accept `http://` key URLs (tests only).
    pub allow_http: bool,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            allowed_hosts: DEFAULT_KEY_HOSTS
                .iter()
                .map(|host| (*host).to_owned())
                .collect(),
            allow_http: false,
        }
    }
}

/// Why no key could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum KeyError {
    /// The payload's key URL is missing, malformed or not allow-listed: no request was made.
    #[error("{0}")]
    Refused(String),
    /// The allow-listed host did not give a key (down, slow, wrong answer).
    #[error("could not fetch the ConnectWise signing key: {0}")]
    Unavailable(String),
}

/// Fetches and caches signing keys.
#[derive(Debug, Clone)]
pub struct KeyFetcher {
    policy: KeyPolicy,
    client: reqwest::Client,
    cache: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

/// Finds `Metadata.key_url` in a body without trusting anything else in it.
pub(crate) fn key_url(body: &[u8]) -> Result<String, KeyError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        KeyError::Refused("body is not JSON, so it names no signing key".to_owned())
    })?;
    value
        .pointer("/Metadata/key_url")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| KeyError::Refused("the callback has no Metadata.key_url".to_owned()))
}

impl KeyFetcher {
    pub fn new(policy: KeyPolicy) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()?;
        Ok(Self {
            policy,
            client,
            cache: Arc::default(),
        })
    }

    /// Checks a key URL against the policy; `Ok` only for allow-listed hosts and schemes.
    pub(crate) fn check_url(&self, url: &str) -> Result<reqwest::Url, KeyError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| KeyError::Refused("Metadata.key_url is not a URL".to_owned()))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.policy.allow_http => {}
            _ => {
                return Err(KeyError::Refused(
                    "Metadata.key_url must be https".to_owned(),
                ));
            }
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(KeyError::Refused(
                "Metadata.key_url must not carry credentials".to_owned(),
            ));
        }
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let host_port = parsed.port().map(|port| format!("{host}:{port}"));
        let allowed = self.policy.allowed_hosts.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            allowed == host || host_port.as_deref() == Some(allowed.as_str())
        });
        if allowed {
            Ok(parsed)
        } else {
            Err(KeyError::Refused(format!(
                "Metadata.key_url host {host:?} is not an allowed ConnectWise key host"
            )))
        }
    }

    /// The signing key at `url`, from the cache unless `refresh`.
    pub(crate) async fn key(&self, url: &str, refresh: bool) -> Result<String, KeyError> {
        let parsed = self.check_url(url)?;
        if !refresh
            && let Ok(cache) = self.cache.lock()
            && let Some((key, fetched)) = cache.get(url)
            && fetched.elapsed() < CACHE_TTL
        {
            return Ok(key.clone());
        }
        let response = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|err| KeyError::Unavailable(without_url(&err)))?;
        if !response.status().is_success() {
            return Err(KeyError::Unavailable(format!(
                "the key host answered {}",
                response.status()
            )));
        }
        let body = read_capped(response).await?;
        let document: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| KeyError::Unavailable("the key host did not answer JSON".to_owned()))?;
        let key = document
            .get("signing_key")
            .and_then(serde_json::Value::as_str)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                KeyError::Unavailable("the key host's answer has no signing_key".to_owned())
            })?
            .to_owned();
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(url.to_owned(), (key.clone(), Instant::now()));
        }
        Ok(key)
    }

    /// Whether a cached key for `url` is older than `age` (worth refetching after a mismatch,
    /// in case ConnectWise rotated it).
    pub(crate) fn cached_longer_than(&self, url: &str, age: Duration) -> bool {
        self.cache
            .lock()
            .ok()
            .and_then(|cache| cache.get(url).map(|(_, fetched)| fetched.elapsed() > age))
            .unwrap_or(false)
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Bytes, KeyError> {
    if response
        .content_length()
        .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
    {
        return Err(KeyError::Unavailable(
            "the key host's answer is too large".to_owned(),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| KeyError::Unavailable(without_url(&err)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(KeyError::Unavailable(
                "the key host's answer is too large".to_owned(),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// reqwest errors name the URL; the key URL carries the key's id, which stays out of answers.
fn without_url(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "the key host did not answer in time".to_owned()
    } else if err.is_connect() {
        "the key host refused the connection".to_owned()
    } else {
        "the key request failed".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allow_listed_https_urls_pass() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let fetcher = KeyFetcher::new(KeyPolicy::default()).unwrap();
        let ok =
            "https://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails?id=1";
        assert!(fetcher.check_url(ok).is_ok());
        for refused in [
            "http://api-na.myconnectwise.net/key",
            "https://evil.example/key",
            "https://api-na.myconnectwise.net.evil.example/key",
            "https://user:pw@api-na.myconnectwise.net/key",
            "file:///etc/passwd",
            "https://127.0.0.1/key",
            "not a url",
        ] {
            assert!(
                matches!(fetcher.check_url(refused), Err(KeyError::Refused(_))),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_key_url_is_read_from_metadata() {
        assert_eq!(
            key_url(br#"{"Metadata":{"key_url":"https://x/y"}}"#).unwrap(),
            "https://x/y"
        );
        assert!(key_url(br#"{"Metadata":{}}"#).is_err());
        assert!(key_url(b"nope").is_err());
    }
}
