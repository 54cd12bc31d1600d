//! Email addresses as rollcall compares them: validated, trimmed, and compared
//! case-insensitively through a normalized form that the database keeps unique per tenant.

use std::fmt;
use std::str::FromStr;

use email_address::EmailAddress;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A syntactically valid email, with the form it had when given (for display and sending) and
/// its normalized form (for matching).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalizedEmail {
    original: String,
    normalized: String,
}

/// Text that is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid email address")]
pub struct EmailError(String);

impl NormalizedEmail {
    /// Validates `text` (RFC 5321/5322 syntax, no display name) after trimming white space.
    pub fn parse(text: &str) -> Result<Self, EmailError> {
        let trimmed = text.trim();
        let invalid = || EmailError(trimmed.chars().take(128).collect());
        if trimmed.is_empty() || trimmed.len() > 254 || trimmed.contains(['<', '>', ' ']) {
            return Err(invalid());
        }
        let address = EmailAddress::from_str(trimmed).map_err(|_| invalid())?;
        // A domain without a dot is legal but never what a CRM means; rejecting it early turns
        // "ann@localhost"-style typos into a provisioning issue instead of an undeliverable invite.
        if !address.domain().contains('.') {
            return Err(invalid());
        }
        Ok(Self {
            original: trimmed.to_owned(),
            normalized: trimmed.to_lowercase(),
        })
    }

    /// The address as it was given, for display and for sending.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The case-folded key used for matching and for the per-tenant unique index.
    #[must_use]
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

impl fmt::Display for NormalizedEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Serialize for NormalizedEmail {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.original)
    }
}

impl<'de> Deserialize<'de> for NormalizedEmail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_space_but_keeps_the_original() {
        let email = NormalizedEmail::parse("  Ann.Lee@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "Ann.Lee@Example.COM");
        assert_eq!(email.normalized(), "ann.lee@example.com");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann lee@example.com",
            "Ann <a@b.co>",
            "ann@localhost",
        ] {
            assert!(NormalizedEmail::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
