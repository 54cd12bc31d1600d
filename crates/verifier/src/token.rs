//! A shared token, compared in constant time, found in a header, a query parameter or the JSON
//! body (Zoho CRM echoes the `token` configured on its notification channel in each callback).

use crate::{Rejection, Request, Secret, Verified, ct_eq, required_header};

/// Where the token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    /// In this header (`Bearer ` is stripped if present).
    Header(String),
    /// In this query parameter of the webhook URL.
    Query(String),
    /// At this JSON Pointer in the body (e.g. `/token`).
    JsonPointer(String),
}

impl TokenLocation {
    /// From the scheme's parameters, of which exactly one must be set.
    pub fn from_parts(
        header: Option<&String>,
        query: Option<&String>,
        json_pointer: Option<&String>,
    ) -> Result<Self, String> {
        match (header, query, json_pointer) {
            (Some(name), None, None) => Ok(TokenLocation::Header(name.clone())),
            (None, Some(name), None) => Ok(TokenLocation::Query(name.clone())),
            (None, None, Some(pointer)) => Ok(TokenLocation::JsonPointer(pointer.clone())),
            _ => Err("give exactly one of header, query or json_pointer".to_owned()),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            TokenLocation::Header(name)
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() =>
            {
                Err(format!("header {name:?} is not a valid header name"))
            }
            TokenLocation::Query(name) if name.is_empty() => {
                Err("query must name a parameter".to_owned())
            }
            TokenLocation::JsonPointer(pointer) if !pointer.starts_with('/') => {
                Err(format!("json_pointer {pointer:?} must start with '/'"))
            }
            _ => Ok(()),
        }
    }
}

/// The value of query parameter `name` in `url`, percent-decoded.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn verify(
    location: &TokenLocation,
    secrets: &[Secret],
    request: &Request<'_>,
) -> Result<Verified, Rejection> {
    let presented: String = match location {
        TokenLocation::Header(name) => {
            let value = required_header(request.headers, name)?.trim();
            value.strip_prefix("Bearer ").unwrap_or(value).to_owned()
        }
        TokenLocation::Query(name) => {
            query_param(request.url, name).ok_or(Rejection::BadCredentials)?
        }
        TokenLocation::JsonPointer(pointer) => {
            // The token travels inside the body, so the body must be read to find it; nothing
            // else in it is trusted until this check passes.
            let body: serde_json::Value = serde_json::from_slice(request.body).map_err(|_| {
                Rejection::MalformedBody("body is not JSON, so it carries no token")
            })?;
            match body.pointer(pointer) {
                Some(serde_json::Value::String(token)) => token.clone(),
                Some(serde_json::Value::Number(number)) => number.to_string(),
                _ => return Err(Rejection::BadCredentials),
            }
        }
    };
    let matched = secrets.iter().fold(false, |found, secret| {
        ct_eq(secret.expose().as_bytes(), presented.as_bytes()) | found
    });
    if matched {
        Ok(Verified::default())
    } else {
        Err(Rejection::BadCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::query_param;

    #[test]
    fn reads_query_parameters() {
        assert_eq!(
            query_param("https://h/x?a=1&token=ab%2Bc&b=2", "token").as_deref(),
            Some("ab+c")
        );
        assert_eq!(query_param("https://h/x?a=1", "token"), None);
        assert_eq!(query_param("https://h/x", "token"), None);
    }
}
