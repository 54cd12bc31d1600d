//! Invitation email templates (minijinja). Three parts: the subject line, the plain-text body
//! and the HTML body. Each part comes from, most specific first: the tenant's settings (set
//! through the API), `ROLLCALL_TEMPLATES_DIR/{tenant_id}/`, `ROLLCALL_TEMPLATES_DIR/`, and the
//! templates shipped in the binary. Directory templates are read and checked once, at start, so
//! a broken file stops the process instead of failing emails later.
//!
//! Templates render strictly: a misspelt variable is an error when the template is saved or
//! loaded, not a blank in someone's inbox. HTML parts escape every value.

use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

use domain::{TenantId, TenantInvitationSettings, TenantSettingError};
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// One part of the email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    /// The file name in a templates directory; its extension also selects HTML escaping.
    const fn file_name(self) -> &'static str {
        match self {
            Part::Subject => "invitation.subject.txt",
            Part::Text => "invitation.txt",
            Part::Html => "invitation.html",
        }
    }

    const fn builtin(self) -> &'static str {
        match self {
            Part::Subject => include_str!("../templates/invitation.subject.txt"),
            Part::Text => include_str!("../templates/invitation.txt"),
            Part::Html => include_str!("../templates/invitation.html"),
        }
    }

    /// The tenant setting that overrides it.
    const fn setting(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        }
    }

    const fn index(self) -> usize {
        match self {
            Part::Subject => 0,
            Part::Text => 1,
            Part::Html => 2,
        }
    }

    fn of_settings(self, settings: &TenantInvitationSettings) -> Option<&str> {
        match self {
            Part::Subject => settings.subject.as_deref(),
            Part::Text => settings.text.as_deref(),
            Part::Html => settings.html.as_deref(),
        }
    }
}

/// What a template can use.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationVars<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub full_name: &'a str,
    pub email: &'a str,
    pub tenant_name: &'a str,
    pub link: &'a str,
    /// `2026-11-29 10:00 UTC`.
    pub expires_at: &'a str,
}

impl InvitationVars<'static> {
    /// Values to check templates against.
    const SAMPLE: Self = Self {
        first_name: "Zoë",
        last_name: "Ångström",
        full_name: "Zoë Ångström",
        email: "zoe@example.com",
        tenant_name: "Example & Co",
        link: "https://app.example.com/invitations/token",
        expires_at: "2026-11-29 10:00 UTC",
    };
}

/// The three rendered parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedInvitation {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A template that does not parse or render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct TemplateError {
    /// Which template: a file path, or a tenant setting's name.
    pub origin: String,
    pub message: String,
}

/// The templates in force: the shipped ones with the directory's overrides.
#[derive(Debug, Clone)]
pub struct Templates {
    defaults: [String; 3],
    tenants: HashMap<TenantId, [Option<String>; 3]>,
}

/// Built once: every email and every check renders through it.
static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(environment);

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // minijinja's HTML escaping also turns `/` into `&#x2f;`: valid, but it makes links
    // unreadable in the source and trips naive link scanners. Escape what HTML needs.
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), AutoEscape::Html)
            && !value.is_safe()
            && let Some(text) = value.as_str()
        {
            return out.write_str(&escape_html(text)).map_err(Into::into);
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn render(part: Part, source: &str, vars: &InvitationVars<'_>) -> Result<String, String> {
    ENVIRONMENT
        .render_named_str(part.file_name(), source, Serde(vars))
        .map_err(|err| {
            let mut message = err.to_string();
            if let Some(detail) = err.detail() {
                message = format!("{message} ({detail})");
            }
            message
        })
}

fn check(part: Part, source: &str, origin: impl Fn() -> String) -> Result<(), TemplateError> {
    render(part, source, &InvitationVars::SAMPLE)
        .map(|_| ())
        .map_err(|message| TemplateError {
            origin: origin(),
            message,
        })
}

impl Default for Templates {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Templates {
    /// The templates shipped in the binary.
    #[must_use]
    pub fn builtin() -> Self {
        Self {
            defaults: Part::ALL.map(|part| part.builtin().to_owned()),
            tenants: HashMap::new(),
        }
    }

    /// The shipped templates overridden by `dir`: `dir/invitation.subject.txt`,
    /// `dir/invitation.txt` and `dir/invitation.html` for every tenant, the same names in
    /// `dir/{tenant_id}/` for one tenant. Any file may be missing; every present one must
    /// render.
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let io_error = |path: &Path, err: std::io::Error| TemplateError {
            origin: path.display().to_string(),
            message: err.to_string(),
        };
        let mut templates = Self::builtin();
        let overrides = read_parts(dir)?;
        for part in Part::ALL {
            if let Some(source) = &overrides[part.index()] {
                templates.defaults[part.index()] = source.clone();
            }
        }
        let entries = std::fs::read_dir(dir).map_err(|err| io_error(dir, err))?;
        for entry in entries {
            let entry = entry.map_err(|err| io_error(dir, err))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name();
            let tenant = name
                .to_str()
                .and_then(|name| name.parse::<TenantId>().ok())
                .ok_or_else(|| TemplateError {
                    origin: path.display().to_string(),
                    message: "a subdirectory of the templates directory must be named by a \
                              tenant id"
                        .to_owned(),
                })?;
            templates.tenants.insert(tenant, read_parts(&path)?);
        }
        Ok(templates)
    }

    fn source<'a>(
        &'a self,
        tenant: TenantId,
        settings: &'a TenantInvitationSettings,
        part: Part,
    ) -> &'a str {
        part.of_settings(settings)
            .or_else(|| {
                self.tenants
                    .get(&tenant)
                    .and_then(|parts| parts[part.index()].as_deref())
            })
            .unwrap_or(&self.defaults[part.index()])
    }

    /// Renders the invitation for `tenant`.
    pub fn render(
        &self,
        tenant: TenantId,
        settings: &TenantInvitationSettings,
        vars: &InvitationVars<'_>,
    ) -> Result<RenderedInvitation, String> {
        let part = |part: Part| {
            render(part, self.source(tenant, settings, part), vars)
                .map_err(|err| format!("{} template: {err}", part.setting()))
        };
        Ok(RenderedInvitation {
            // One line, whatever the template's whitespace.
            subject: part(Part::Subject)?
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            text: part(Part::Text)?,
            html: part(Part::Html)?,
        })
    }
}

/// The parts present in `dir`, each checked.
fn read_parts(dir: &Path) -> Result<[Option<String>; 3], TemplateError> {
    let mut parts: [Option<String>; 3] = Default::default();
    for part in Part::ALL {
        let path = dir.join(part.file_name());
        match std::fs::read_to_string(&path) {
            Ok(source) => {
                check(part, &source, || path.display().to_string())?;
                parts[part.index()] = Some(source);
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(TemplateError {
                    origin: path.display().to_string(),
                    message: err.to_string(),
                });
            }
        }
    }
    Ok(parts)
}

/// Checks a tenant's invitation settings as the API receives them: the link and reply-to, and
/// that every template override renders.
pub fn check_tenant_settings(
    settings: &TenantInvitationSettings,
) -> Result<(), TenantSettingError> {
    settings.check()?;
    for part in Part::ALL {
        if let Some(source) = part.of_settings(settings) {
            if source.trim().is_empty() {
                return Err(TenantSettingError {
                    field: part.setting(),
                    message: "must not be empty (leave it out to use the default)".to_owned(),
                });
            }
            check(part, source, String::new).map_err(|err| TenantSettingError {
                field: part.setting(),
                message: err.message,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> InvitationVars<'static> {
        InvitationVars {
            first_name: "Zoë",
            last_name: "<Lee>",
            full_name: "Zoë <Lee>",
            email: "zoe@example.com",
            tenant_name: "Acme & Sons",
            link: "https://x.test/invitations/abc?a=1&b=2",
            expires_at: "2026-11-29 10:00 UTC",
        }
    }

    #[test]
    fn the_shipped_templates_render_and_escape_html_only() {
        let rendered = Templates::builtin()
            .render(
                TenantId::new(),
                &TenantInvitationSettings::default(),
                &vars(),
            )
            .unwrap();
        assert_eq!(rendered.subject, "Acme & Sons invited you");
        assert!(rendered.text.contains("Hi Zoë,"), "{}", rendered.text);
        assert!(rendered.text.contains("Acme & Sons has created"));
        assert!(
            rendered
                .text
                .contains("https://x.test/invitations/abc?a=1&b=2")
        );
        assert!(
            rendered.html.contains("Acme &amp; Sons"),
            "{}",
            rendered.html
        );
        assert!(
            rendered
                .html
                .contains("href=\"https://x.test/invitations/abc?a=1&amp;b=2\""),
            "{}",
            rendered.html
        );
        assert!(rendered.html.contains("2026-11-29 10:00 UTC"));
        // Markup in a value is escaped, never interpreted.
        let hostile = InvitationVars {
            first_name: "<script>alert(1)</script>",
            ..vars()
        };
        let rendered = Templates::builtin()
            .render(
                TenantId::new(),
                &TenantInvitationSettings::default(),
                &hostile,
            )
            .unwrap();
        assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
        assert!(rendered.html.contains("&lt;script&gt;"));
    }

    #[test]
    fn tenant_settings_override_the_directory_which_overrides_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::new();
        std::fs::write(
            dir.path().join("invitation.subject.txt"),
            "Welcome to {{ tenant_name }}",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join(tenant.to_string())).unwrap();
        std::fs::write(
            dir.path().join(tenant.to_string()).join("invitation.txt"),
            "Bonjour {{ first_name }} : {{ link }}",
        )
        .unwrap();
        let templates = Templates::load(dir.path()).unwrap();
        let none = TenantInvitationSettings::default();

        let other = templates.render(TenantId::new(), &none, &vars()).unwrap();
        assert_eq!(other.subject, "Welcome to Acme & Sons");
        assert!(other.text.starts_with("Hi Zoë,"));

        let own = templates.render(tenant, &none, &vars()).unwrap();
        assert_eq!(own.subject, "Welcome to Acme & Sons");
        assert_eq!(
            own.text,
            "Bonjour Zoë : https://x.test/invitations/abc?a=1&b=2"
        );

        let api = TenantInvitationSettings {
            text: Some("Hallo {{ full_name }}".to_owned()),
            ..TenantInvitationSettings::default()
        };
        let own = templates.render(tenant, &api, &vars()).unwrap();
        assert_eq!(own.text, "Hallo Zoë <Lee>");
    }

    #[test]
    fn broken_templates_are_refused_naming_where() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("invitation.html"),
            "<p>{{ frist_name }}</p>",
        )
        .unwrap();
        let err = Templates::load(dir.path()).unwrap_err();
        assert!(err.origin.ends_with("invitation.html"), "{err}");
        assert!(err.message.contains("undefined"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("not-a-tenant")).unwrap();
        assert!(Templates::load(dir.path()).is_err());

        let unclosed = TenantInvitationSettings {
            subject: Some("{{ tenant_name".to_owned()),
            ..TenantInvitationSettings::default()
        };
        assert_eq!(
            check_tenant_settings(&unclosed).map_err(|e| e.field),
            Err("subject")
        );
        let misspelt = TenantInvitationSettings {
            html: Some("{{ lnik }}".to_owned()),
            ..TenantInvitationSettings::default()
        };
        assert_eq!(
            check_tenant_settings(&misspelt).map_err(|e| e.field),
            Err("html")
        );
        let fine = TenantInvitationSettings {
            html: Some("<a href=\"{{ link }}\">{{ first_name }}</a>".to_owned()),
            ..TenantInvitationSettings::default()
        };
        assert!(check_tenant_settings(&fine).is_ok());
    }
}
