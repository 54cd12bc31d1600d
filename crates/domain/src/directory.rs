//! How rollcall reaches a CRM's directory (its users API) for an integration: where, and with
//! which credentials. Stored encrypted on the integration; never shown back in full.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The base URL of the CRM's API and the credentials it wants, by name (`access_token`,
/// `api_token`, `company_id`/`public_key`/`private_key`/`client_id`…; which ones each source
/// needs is the `directory` crate's knowledge). `Debug` shows credential names, never values.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryAccess {
    /// `None`: the CRM's public API address (where the CRM has one address for everyone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
}

impl DirectoryAccess {
    /// The named credential, if given and not blank.
    #[must_use]
    pub fn credential(&self, name: &str) -> Option<&str> {
        self.credentials
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.trim().is_empty())
    }
}

impl std::fmt::Debug for DirectoryAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryAccess")
            .field("base_url", &self.base_url)
            .field("credentials", &self.credentials.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_credential() {
        let access = DirectoryAccess {
            base_url: None,
            credentials: BTreeMap::from([("access_token".to_owned(), "pat-na1-s3cr3t".to_owned())]),
        };
        let shown = format!("{access:?}");
        assert!(shown.contains("access_token"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
