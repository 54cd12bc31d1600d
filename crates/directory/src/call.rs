//! One lookup's conversation with a CRM: credentials and base URL from the integration's
//! directory access, safe URLs, the per-integration "slow down" gate, timeouts, capped bodies,
//! and the meaning of the statuses every CRM shares.

use std::time::Duration;

use domain::{DirectoryAccess, IntegrationId, OwnerFacts, Source};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde_json::Value;
use time::OffsetDateTime;
use time::PrimitiveDateTime;
use time::macros::format_description;

use crate::{Directory, LookupError};

/// Wait after a rate-limit answer that says nothing about how long.
pub(crate) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Wait after a CRM's daily or rolling-quota answer that says nothing about how long.
pub(crate) const QUOTA_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// Never ask again sooner than this after a rate-limit answer, whatever it says.
const MIN_WAIT: Duration = Duration::from_secs(1);
/// Never wait longer than this, whatever a CRM says.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
/// A directory answer is a small JSON document; anything bigger is not one.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest CRM message quoted in an error.
const MAX_DETAIL_CHARS: usize = 200;

/// What an id in a URL may look like.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdRule {
    /// HubSpot, Pipedrive, ConnectWise and Zoho ids are integers.
    Digits,
    /// Salesforce ids: 15 or 18 letters and digits.
    Salesforce,
    /// Sent as data (a GraphQL variable), never in a URL: any printable text.
    Opaque,
}

/// A CRM's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// `Retry-After`, in seconds or as an HTTP-date.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?;
        parse_retry_after(value, OffsetDateTime::now_utc())
    }

    /// A header holding a number of seconds (e.g. Pipedrive's `x-ratelimit-reset`).
    pub(crate) fn header_seconds(&self, name: &str) -> Option<Duration> {
        let value = self.headers.get(name)?.to_str().ok()?;
        value.trim().parse::<u64>().ok().map(Duration::from_secs)
    }

    /// The body as JSON, if it is JSON.
    pub(crate) fn value(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// One lookup against one CRM API for one integration.
pub(crate) struct Call<'a> {
    directory: &'a Directory,
    client: &'a reqwest::Client,
    integration: IntegrationId,
    /// Names the API in every message: "HubSpot Owners API".
    pub(crate) api: &'static str,
    access: Option<&'a DirectoryAccess>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(
        directory: &'a Directory,
        integration: IntegrationId,
        api: &'static str,
        access: Option<&'a DirectoryAccess>,
    ) -> Result<Self, LookupError> {
        let client = directory
            .inner
            .client
            .as_ref()
            .map_err(|why| LookupError::Unavailable(format!("{api}: {why}")))?;
        Ok(Self {
            directory,
            client,
            integration,
            api,
            access,
        })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        self.client
    }

    /// The named credential, or a refusal naming it.
    pub(crate) fn credential(&self, name: &str) -> Result<&'a str, LookupError> {
        let Some(access) = self.access else {
            return Err(LookupError::Refused(format!(
                "{}: the integration has no directory access configured (it needs the `{name}` credential)",
                self.api
            )));
        };
        access.credential(name).ok_or_else(|| {
            LookupError::Refused(format!(
                "{}: the integration's directory access has no `{name}` credential",
                self.api
            ))
        })
    }

    /// The API's base URL: the integration's `base_url`, else `default` (`None`: required).
    pub(crate) fn base_url(&self, default: Option<&str>) -> Result<Url, LookupError> {
        let configured = self
            .access
            .and_then(|access| access.base_url.as_deref())
            .map(str::trim)
            .filter(|url| !url.is_empty());
        let text = match (configured, default) {
            (Some(url), _) => url,
            (None, Some(default)) => default,
            (None, None) => {
                return Err(LookupError::Refused(format!(
                    "{}: the integration's directory access has no `base_url` (this CRM's API address is per account and must be configured)",
                    self.api
                )));
            }
        };
        parse_base_url(text)
            .map_err(|why| LookupError::Refused(format!("{}: `base_url` {why}", self.api)))
    }

    /// `id` if it may go into a URL under `rule`; else the CRM cannot know it (no request).
    pub(crate) fn checked_id<'i>(
        &self,
        what: &str,
        id: &'i str,
        rule: IdRule,
    ) -> Result<&'i str, LookupError> {
        // Not trimmed: an id is used exactly as the webhook gave it, or not at all.
        let trimmed = id;
        let (ok, expected) = match rule {
            IdRule::Digits => (
                !trimmed.is_empty()
                    && trimmed.len() <= 24
                    && trimmed.bytes().all(|byte| byte.is_ascii_digit()),
                "digits only",
            ),
            IdRule::Salesforce => (
                matches!(trimmed.len(), 15 | 18)
                    && trimmed.bytes().all(|byte| byte.is_ascii_alphanumeric()),
                "15 or 18 letters and digits",
            ),
            IdRule::Opaque => (
                !trimmed.is_empty()
                    && trimmed.len() <= 256
                    && !trimmed.chars().any(char::is_control),
                "at most 256 printable characters",
            ),
        };
        if ok {
            Ok(trimmed)
        } else {
            Err(LookupError::NotFound(format!(
                "{}: {what} id {:?} is not a valid id ({expected}); no request was made",
                self.api,
                shorten(id)
            )))
        }
    }

    /// Sends the request unless the integration must still wait; reads at most 1 MiB back.
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Reply, LookupError> {
        if let Some(wait) = self.directory.slowed_down(self.integration) {
            return Err(LookupError::RateLimited {
                retry_after: wait,
                message: format!(
                    "{}: the CRM asked rollcall to slow down; not asking again for {}",
                    self.api,
                    wait_text(wait)
                ),
            });
        }
        let mut response = request
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let headers = response.headers().clone();
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(self.too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| self.transport_error(&err))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(self.too_large());
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            api = self.api,
            integration = %self.integration,
            status = status.as_u16(),
            "CRM directory answered"
        );
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn too_large(&self) -> LookupError {
        LookupError::Unavailable(format!(
            "{}: the answer is larger than {} KiB, not a directory answer",
            self.api,
            MAX_BODY_BYTES / 1024
        ))
    }

    /// reqwest's messages name the URL; ours name the API and what went wrong.
    fn transport_error(&self, err: &reqwest::Error) -> LookupError {
        let what = if err.is_timeout() {
            format!(
                "no answer within {}",
                wait_text(self.directory.inner.options.timeout)
            )
        } else if err.is_connect() {
            "could not connect".to_owned()
        } else if err.is_body() || err.is_decode() {
            "the answer broke off".to_owned()
        } else {
            "the request failed".to_owned()
        };
        LookupError::Unavailable(format!("{}: {what}", self.api))
    }

    /// Remembers that the CRM asked this integration to slow down, and says so.
    pub(crate) fn rate_limited(
        &self,
        retry_after: Option<Duration>,
        default: Duration,
        status: StatusCode,
        detail: Option<&str>,
    ) -> LookupError {
        let wait = retry_after.unwrap_or(default).clamp(MIN_WAIT, MAX_WAIT);
        self.directory.slow_down(self.integration, wait);
        tracing::warn!(
            api = self.api,
            integration = %self.integration,
            wait_secs = wait.as_secs(),
            "CRM rate limit reached"
        );
        LookupError::RateLimited {
            retry_after: wait,
            message: format!(
                "{} rate limit reached ({}){}; retry after {}",
                self.api,
                status.as_u16(),
                self.detail(detail),
                wait_text(wait)
            ),
        }
    }

    /// The meaning of the statuses every CRM shares; `Ok(())` for 2xx. `credential` names what
    /// a 401/403 refused ("access_token"); `detail` is the CRM's own message, if any.
    pub(crate) fn check(
        &self,
        reply: &Reply,
        what: &str,
        credential: &str,
        detail: Option<&str>,
    ) -> Result<(), LookupError> {
        let status = reply.status;
        let code = status.as_u16();
        if status.is_success() {
            return Ok(());
        }
        Err(match code {
            401 | 403 => LookupError::Refused(format!(
                "{} refused the {credential} ({code}){}",
                self.api,
                self.detail(detail)
            )),
            404 | 410 => LookupError::NotFound(format!("{}: {what} not found ({code})", self.api)),
            429 => self.rate_limited(reply.retry_after(), DEFAULT_RETRY_AFTER, status, detail),
            300..=399 => LookupError::Unavailable(format!(
                "{}: {what}: the CRM answered a redirect ({code}); check the base_url",
                self.api
            )),
            408 | 500..=599 => LookupError::Unavailable(format!(
                "{}: {what}: the CRM answered {code}{}",
                self.api,
                self.detail(detail)
            )),
            _ => LookupError::Unavailable(format!(
                "{}: {what}: unexpected answer {code}{}",
                self.api,
                self.detail(detail)
            )),
        })
    }

    /// The body as JSON, or a transient failure (the CRM did not answer what it documents).
    pub(crate) fn json(&self, reply: &Reply, what: &str) -> Result<Value, LookupError> {
        reply.value().ok_or_else(|| {
            LookupError::Unavailable(format!(
                "{}: {what}: the answer ({}) is not JSON",
                self.api,
                reply.status.as_u16()
            ))
        })
    }

    /// The answer is JSON but not the documented shape.
    pub(crate) fn shape(&self, what: &str, missing: &str) -> LookupError {
        LookupError::Unavailable(format!(
            "{}: {what}: the answer is not the documented shape ({missing})",
            self.api
        ))
    }

    /// `": {message}"`: a CRM's message on one line, short, with any credential redacted.
    pub(crate) fn detail(&self, detail: Option<&str>) -> String {
        match detail
            .map(|text| self.clean(text))
            .filter(|text| !text.is_empty())
        {
            Some(text) => format!(": {text}"),
            None => String::new(),
        }
    }

    fn clean(&self, text: &str) -> String {
        let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(access) = self.access {
            for secret in access.credentials.values().map(|value| value.trim()) {
                if secret.len() >= 4 {
                    text = text.replace(secret, "[redacted]");
                }
            }
        }
        shorten_to(&text, MAX_DETAIL_CHARS)
    }
}

/// A base URL rollcall may send credentials to: `https` (plain `http` only to this machine,
/// for tests), no user info, no query or fragment.
pub(crate) fn parse_base_url(text: &str) -> Result<Url, &'static str> {
    let url = Url::parse(text).map_err(|_| "is not a URL")?;
    if url.cannot_be_a_base() {
        return Err("is not an http(s) URL");
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("must use https"),
        _ => return Err("is not an http(s) URL"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(url)
}

/// `base` with each of `segments` appended as one percent-encoded path segment (so `/`, `?`,
/// `#` and `%` inside a segment cannot change the path or the query), then `query`.
pub(crate) fn url(base: &Url, segments: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// A header value that is a secret: never shown by `Debug` of the request.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, LookupError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        LookupError::Refused(
            "a credential contains characters that cannot be sent in an HTTP header".to_owned(),
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); `None` when neither.
pub(crate) fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let moment = PrimitiveDateTime::parse(value, &format).ok()?.assume_utc();
    let seconds = (moment - now).whole_seconds();
    Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// "30 s", "250 ms".
pub(crate) fn wait_text(wait: Duration) -> String {
    if wait < Duration::from_secs(1) {
        format!("{} ms", wait.as_millis())
    } else {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        format!("{seconds} s")
    }
}

/// Text from a webhook, made safe to quote: at most 64 characters.
pub(crate) fn shorten(text: &str) -> String {
    shorten_to(text, 64)
}

fn shorten_to(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max).collect();
        short.push('…');
        short
    }
}

/// The CRM's name for messages that concern a source rather than one API.
pub(crate) fn crm_name(source: Source) -> &'static str {
    match source {
        Source::Hubspot => "HubSpot",
        Source::SalesforceOutbound => "Salesforce",
        Source::Pipedrive => "Pipedrive",
        Source::Connectwise => "ConnectWise",
        Source::Jobber => "Jobber",
        Source::Zoho => "Zoho CRM",
        Source::HousecallPro => "Housecall Pro",
        Source::Freshteam => "Freshteam",
        Source::Rollcall => "rollcall",
        Source::Json => "json",
    }
}

/// Non-empty trimmed text at `pointer`.
pub(crate) fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// An id at `pointer`, given as a string or an integer.
pub(crate) fn id_text(value: &Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer)? {
        Value::String(text) => Some(text.trim().to_owned()).filter(|text| !text.is_empty()),
        Value::Number(number) if number.is_u64() || number.is_i64() => Some(number.to_string()),
        _ => None,
    }
}

/// A boolean at `pointer`, given as `true`/`false` or `1`/`0`.
pub(crate) fn flag(value: &Value, pointer: &str) -> Option<bool> {
    match value.pointer(pointer)? {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => number.as_u64().map(|n| n != 0),
        _ => None,
    }
}

/// "Ada King Lovelace" → ("Ada King", "Lovelace"): split at the last space.
pub(crate) fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    match name.rsplit_once(' ') {
        Some((first, last)) => (Some(first.to_owned()), Some(last.to_owned())),
        None if name.is_empty() => (None, None),
        None => (Some(name), None),
    }
}

/// Keeps the first owner with each external id, in order.
pub(crate) fn dedupe(owners: Vec<OwnerFacts>) -> Vec<OwnerFacts> {
    let mut seen = std::collections::HashSet::new();
    owners
        .into_iter()
        .filter(|owner| seen.insert(owner.external_id.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = datetime!(2015-10-21 07:28:00 UTC);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn names_split_at_the_last_space() {
        assert_eq!(
            split_name("Ada King Lovelace"),
            (Some("Ada King".to_owned()), Some("Lovelace".to_owned()))
        );
        assert_eq!(split_name("Cher"), (Some("Cher".to_owned()), None));
        assert_eq!(split_name("  "), (None, None));
        assert_eq!(
            split_name(" Grace   Hopper "),
            (Some("Grace".to_owned()), Some("Hopper".to_owned()))
        );
    }

    #[test]
    fn base_urls_must_be_https_except_on_this_machine() {
        assert!(parse_base_url("https://acme.my.salesforce.com").is_ok());
        assert!(parse_base_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_base_url("http://localhost:8080/x").is_ok());
        assert!(parse_base_url("http://[::1]:8080").is_ok());
        assert_eq!(
            parse_base_url("http://acme.my.salesforce.com").err(),
            Some("must use https")
        );
        assert!(parse_base_url("https://user:pw@acme.example").is_err());
        assert!(parse_base_url("https://acme.example/?a=b").is_err());
        assert!(parse_base_url("mailto:x@example.com").is_err());
        assert!(parse_base_url("ftp://acme.example").is_err());
        assert!(parse_base_url("not a url").is_err());
    }

    #[test]
    fn ids_stay_single_path_segments() {
        let base = Url::parse("https://api.example/v4_6_release/apis/3.0/").unwrap();
        let joined = url(&base, &["system", "members", "1/../../x?y#z"], &[]);
        assert_eq!(
            joined.as_str(),
            "https://api.example/v4_6_release/apis/3.0/system/members/1%2F..%2F..%2Fx%3Fy%23z"
        );
        let with_query = url(&base, &["users", "7"], &[("fields", "Id,Email")]);
        assert_eq!(
            with_query.as_str(),
            "https://api.example/v4_6_release/apis/3.0/users/7?fields=Id%2CEmail"
        );
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(wait_text(Duration::from_millis(250)), "250 ms");
        assert_eq!(wait_text(Duration::from_secs(30)), "30 s");
        assert_eq!(wait_text(Duration::from_millis(1500)), "2 s");
    }
}
