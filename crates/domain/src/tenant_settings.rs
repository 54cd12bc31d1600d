//! How a tenant's invitations look: overrides of rollcall's defaults, set through the API.
//! Checking that the templates render is the notifier's job (it owns the template engine);
//! what can be checked without it is checked here.

use serde::{Deserialize, Serialize};

use crate::NormalizedEmail;

/// The placeholder a link template must carry.
pub const TOKEN_PLACEHOLDER: &str = "{token}";

/// A tenant's invitation overrides. Every field is optional: absent means the default
/// (`ROLLCALL_PUBLIC_URL/invitations/{token}`, `ROLLCALL_MAIL_REPLY_TO`, the templates shipped
/// in the binary or found in `ROLLCALL_TEMPLATES_DIR`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantInvitationSettings {
    /// Where the email's link points, with `{token}` where the one-time token goes, e.g.
    /// `https://app.example.com/join?invite={token}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_template: Option<String>,
    /// The `Reply-To` address of the email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Template of the subject line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Template of the plain-text part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Template of the HTML part (values are HTML-escaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// A setting that cannot work, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TenantSettingError {
    pub field: &'static str,
    pub message: String,
}

impl TenantInvitationSettings {
    /// Checks what does not need the template engine: the link template's shape and the
    /// reply-to address.
    pub fn check(&self) -> Result<(), TenantSettingError> {
        if let Some(template) = &self.link_template {
            let error = |message: &str| TenantSettingError {
                field: "link_template",
                message: message.to_owned(),
            };
            if !template.contains(TOKEN_PLACEHOLDER) {
                return Err(error(
                    "must contain {token}, where the invitation token goes",
                ));
            }
            if !(template.starts_with("https://") || template.starts_with("http://")) {
                return Err(error("must be an absolute http:// or https:// URL"));
            }
            if template.chars().any(char::is_whitespace) {
                return Err(error("must not contain whitespace"));
            }
        }
        if let Some(reply_to) = &self.reply_to {
            // The same rules as owners' emails; stored as given, so no surrounding blanks.
            let valid = reply_to.trim() == reply_to && NormalizedEmail::parse(reply_to).is_ok();
            if !valid {
                return Err(TenantSettingError {
                    field: "reply_to",
                    message: format!("{reply_to:?} is not an email address"),
                });
            }
        }
        Ok(())
    }

    /// The link for `token`: the tenant's template, or `{public_url}/invitations/{token}`.
    #[must_use]
    pub fn link(&self, public_url: &str, token: &str) -> String {
        match &self.link_template {
            Some(template) => template.replace(TOKEN_PLACEHOLDER, token),
            None => format!("{}/invitations/{token}", public_url.trim_end_matches('/')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_link_is_under_the_public_url() {
        let settings = TenantInvitationSettings::default();
        assert_eq!(
            settings.link("https://hooks.example.com/", "abc"),
            "https://hooks.example.com/invitations/abc"
        );
    }

    #[test]
    fn a_link_template_places_the_token() {
        let settings = TenantInvitationSettings {
            link_template: Some("https://app.example.com/join?invite={token}&src=mail".to_owned()),
            ..TenantInvitationSettings::default()
        };
        assert!(settings.check().is_ok());
        assert_eq!(
            settings.link("https://ignored", "abc"),
            "https://app.example.com/join?invite=abc&src=mail"
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        let cases = [
            (
                TenantInvitationSettings {
                    link_template: Some("https://app.example.com/join".to_owned()),
                    ..Default::default()
                },
                "link_template",
            ),
            (
                TenantInvitationSettings {
                    link_template: Some("app.example.com/{token}".to_owned()),
                    ..Default::default()
                },
                "link_template",
            ),
            (
                TenantInvitationSettings {
                    reply_to: Some("not an address".to_owned()),
                    ..Default::default()
                },
                "reply_to",
            ),
            (
                TenantInvitationSettings {
                    reply_to: Some("help@example.com\r\nBcc: x@evil.test".to_owned()),
                    ..Default::default()
                },
                "reply_to",
            ),
        ];
        for (settings, field) in cases {
            assert_eq!(
                settings.check().map_err(|e| e.field),
                Err(field),
                "{settings:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<TenantInvitationSettings>(r#"{"link_templat": "x"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("link_templat"), "{err}");
    }
}
