//! Operations shared by the HTTP routes and the command line: validation, secret and token
//! generation, and the representation of what is created.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::collections::BTreeMap;

use domain::{DirectoryAccess, IntegrationSettings, Source, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use store::{Integration, NewIntegration, Store, Tenant, TokenKind};
use verifier::{SchemeConfig, SecretOrigin};

use crate::error::{AdminError, ApiResult};
use crate::extract::parse_json;

/// A new random bearer token with a recognisable prefix (`rc_op_`, `rc_tk_`).
#[must_use]
pub fn generate_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A fresh secret in the form `scheme` expects: `whsec_…` for Standard Webhooks,
/// `rollcall:…` (user and password) for Basic, 256 random bits otherwise.
#[must_use]
pub fn generate_secret(scheme: &SchemeConfig) -> String {
    match scheme {
        SchemeConfig::StandardWebhooks => {
            let bytes: [u8; 24] = rand::random();
            format!("whsec_{}", STANDARD.encode(bytes))
        }
        SchemeConfig::Basic => {
            let bytes: [u8; 24] = rand::random();
            format!("rollcall:{}", URL_SAFE_NO_PAD.encode(bytes))
        }
        _ => {
            let bytes: [u8; 32] = rand::random();
            URL_SAFE_NO_PAD.encode(bytes)
        }
    }
}

/// Checks a secret an admin gave for `scheme`.
fn check_secret(scheme: &SchemeConfig, secret: &str) -> ApiResult<()> {
    let invalid = |message: &str| Err(AdminError::invalid("secret", message));
    if secret.trim().is_empty() || secret.len() > 1024 {
        return invalid("secret must be 1 to 1024 characters");
    }
    match scheme {
        SchemeConfig::StandardWebhooks => {
            let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
            match STANDARD.decode(encoded) {
                Ok(key) if key.len() >= 16 => Ok(()),
                _ => invalid(
                    "a Standard Webhooks secret is whsec_ followed by base64 of at least 16 bytes",
                ),
            }
        }
        SchemeConfig::Basic if !secret.contains(':') => invalid("a Basic secret is user:password"),
        _ => Ok(()),
    }
}

/// The secret to store for `scheme`: the one given (checked), a generated one, or none when
/// the scheme fetches its key per request.
fn secret_for(scheme: &SchemeConfig, given: Option<String>) -> ApiResult<Option<String>> {
    match (scheme.secret_origin(), given) {
        (SecretOrigin::FetchedPerRequest, None) => Ok(None),
        (SecretOrigin::FetchedPerRequest, Some(_)) => Err(AdminError::invalid(
            "secret",
            format!(
                "{} fetches its signing key per request; it takes no secret",
                scheme.name()
            ),
        )),
        (_, Some(secret)) => check_secret(scheme, &secret).map(|()| Some(secret)),
        (SecretOrigin::IssuedByTheCrm, None) => Err(AdminError::invalid(
            "secret",
            format!(
                "{} secrets are issued by the CRM: give the one it shows",
                scheme.name()
            ),
        )),
        (SecretOrigin::GeneratedUnlessGiven, None) => Ok(Some(generate_secret(scheme))),
    }
}

/// For schemes whose credential travels in the URL, the URL to paste into the CRM.
#[must_use]
pub fn endpoint_url(webhook_url: &str, scheme: &SchemeConfig, secret: &str) -> Option<String> {
    let parameter = match scheme {
        SchemeConfig::SalesforceOutbound { .. } => "token".to_owned(),
        SchemeConfig::Token {
            query: Some(name), ..
        } => name.clone(),
        _ => return None,
    };
    Some(format!("{webhook_url}?{parameter}={}", url_encode(secret)))
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Parses and validates a `verification` object.
pub fn parse_scheme(value: &serde_json::Value) -> ApiResult<SchemeConfig> {
    let scheme: SchemeConfig = parse_json(value.to_string().as_bytes())
        .map_err(|err| AdminError::invalid("verification", format!("verification: {err}")))?;
    scheme.validate().map_err(|message| {
        AdminError::invalid("verification", format!("verification: {message}"))
    })?;
    Ok(scheme)
}

/// Parses and validates a `settings` object.
pub fn parse_settings(value: &serde_json::Value) -> ApiResult<IntegrationSettings> {
    let settings: IntegrationSettings = parse_json(value.to_string().as_bytes())
        .map_err(|err| AdminError::invalid("settings", format!("settings: {err}")))?;
    settings
        .validate()
        .map_err(|err| AdminError::invalid(&format!("settings.{}", err.field), err.to_string()))?;
    Ok(settings)
}

/// Creates the operator token on first start unless one is configured or stored. Answers the
/// new token's value (to print once) when it created one.
pub async fn ensure_operator_token(store: &Store, configured: bool) -> ApiResult<Option<String>> {
    if configured || store.has_operator_token().await? {
        return Ok(None);
    }
    // Two processes starting together: only the one that claims the flag creates the token.
    if !store
        .set_setting_if_absent("operator_token_created", &Timestamp::now().to_rfc3339())
        .await?
    {
        return Ok(None);
    }
    let token = generate_token("rc_op_");
    store
        .insert_token(
            TokenKind::Operator,
            None,
            "operator",
            &token,
            Timestamp::now(),
        )
        .await?;
    Ok(Some(token))
}

/// Trimmed, non-empty text of at most `max` characters, naming `field` otherwise.
pub fn non_empty(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AdminError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if trimmed.chars().count() > max {
        return Err(AdminError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A token's name: what it is for, shown in listings.
pub fn token_name(name: &str) -> ApiResult<String> {
    non_empty("name", name, 200)
}

/// A person's first or last name.
pub fn person_name(field: &str, value: &str) -> ApiResult<String> {
    non_empty(field, value, 200)
}

/// An email address, checked by the same parser as owners' emails.
pub fn email(field: &str, value: &str) -> ApiResult<domain::NormalizedEmail> {
    domain::NormalizedEmail::parse(value)
        .map_err(|err| AdminError::invalid(field, format!("{field}: {err}")))
}

/// A team's name.
pub fn team_name(name: &str) -> ApiResult<String> {
    non_empty("name", name, 200)
}

/// Whether `user`, becoming active now, gets the invitation they never had: the rule of the
/// integrations they are linked to (see [`resolver::invites_when_activated`]).
pub async fn invites_when_activated(store: &Store, user: domain::UserId) -> ApiResult<bool> {
    let identities = store.identities_of(&[user]).await?;
    let mut modes = Vec::new();
    for identity in identities.get(&user).into_iter().flatten() {
        if let Some(integration) = store.integration(identity.integration_id).await? {
            modes.push(integration.settings.invite_mode);
        }
    }
    Ok(resolver::invites_when_activated(&modes))
}

pub async fn create_tenant(store: &Store, name: &str) -> ApiResult<Tenant> {
    let name = tenant_name(name)?;
    Ok(store.create_tenant(&name, Timestamp::now()).await?)
}

/// A tenant's name as given: trimmed, not empty, at most 200 characters.
pub fn tenant_name(name: &str) -> ApiResult<String> {
    non_empty("name", name, 200)
}

/// A request to create an integration.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    /// Required with the operator token; a tenant token creates in its own tenant.
    pub tenant_id: Option<TenantId>,
    pub name: String,
    #[serde(default = "default_source")]
    pub source: Source,
    /// `{"scheme": "standard-webhooks"}` when absent.
    pub verification: Option<serde_json::Value>,
    /// The signing secret, for schemes where the CRM issues it (or to choose one).
    pub secret: Option<String>,
    pub settings: Option<serde_json::Value>,
    /// How rollcall reaches the CRM's users API, for sources whose webhooks carry only an
    /// owner id or a record id.
    pub directory: Option<DirectoryRequest>,
}

/// Directory access as the API takes it: the credentials are stored encrypted and never shown
/// again (the integration shows their names).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryRequest {
    /// The CRM API's base URL; omit it for CRMs with one public address.
    pub base_url: Option<String>,
    /// Credential name → value (which names each source needs: see the README).
    pub credentials: BTreeMap<String, String>,
}

/// Checks directory access against what the source's directory needs.
pub fn parse_directory(source: Source, request: DirectoryRequest) -> ApiResult<DirectoryAccess> {
    let base_url = match request.base_url {
        None => None,
        Some(url) => {
            let url = url.trim().trim_end_matches('/').to_owned();
            let valid = (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() <= 2000
                && url
                    .parse::<http::Uri>()
                    .is_ok_and(|uri| uri.host().is_some());
            if !valid {
                return Err(AdminError::invalid(
                    "directory.base_url",
                    "directory.base_url must be an http(s) URL",
                ));
            }
            Some(url)
        }
    };
    let access = DirectoryAccess {
        base_url,
        credentials: request
            .credentials
            .into_iter()
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect(),
    };
    directory::check_access(source, &access)
        .map_err(|problem| AdminError::invalid(problem.field, problem.message))?;
    Ok(access)
}

fn default_source() -> Source {
    Source::Rollcall
}

/// An integration as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IntegrationView {
    #[serde(flatten)]
    pub integration: Integration,
    pub webhook_url: String,
}

impl IntegrationView {
    #[must_use]
    pub fn new(integration: Integration, public_url: &str) -> Self {
        let webhook_url = format!(
            "{}/hooks/{}",
            public_url.trim_end_matches('/'),
            integration.id
        );
        Self {
            integration,
            webhook_url,
        }
    }
}

/// A created integration, with its secret shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedIntegration {
    #[serde(flatten)]
    pub view: IntegrationView,
    /// `None` for schemes that fetch their key per request.
    pub secret: Option<String>,
    /// For schemes whose credential travels in the URL: the webhook URL with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

pub async fn create_integration(
    store: &Store,
    public_url: &str,
    request: CreateIntegration,
) -> ApiResult<CreatedIntegration> {
    let tenant_id = request
        .tenant_id
        .ok_or_else(|| AdminError::invalid("tenant_id", "tenant_id is required"))?;
    if store.tenant(tenant_id).await?.is_none() {
        return Err(AdminError::invalid("tenant_id", "no such tenant"));
    }
    let name = non_empty("name", &request.name, 200)?;
    let directory = request
        .directory
        .map(|directory| parse_directory(request.source, directory))
        .transpose()?;
    let verification = request
        .verification
        .unwrap_or_else(|| serde_json::json!({"scheme": "standard-webhooks"}));
    let scheme = parse_scheme(&verification)?;
    let settings = match request.settings {
        None => IntegrationSettings::default(),
        Some(value) => parse_settings(&value)?,
    };
    let secret = secret_for(&scheme, request.secret)?;
    let integration = store
        .create_integration(
            NewIntegration {
                tenant_id,
                name,
                source: request.source,
                verification: serde_json::to_value(&scheme)
                    .map_err(|err| AdminError::Internal(err.to_string()))?,
                settings,
                secret: secret.clone(),
                directory,
            },
            Timestamp::now(),
        )
        .await?;
    let view = IntegrationView::new(integration, public_url);
    let endpoint_url = secret
        .as_deref()
        .and_then(|secret| endpoint_url(&view.webhook_url, &scheme, secret));
    Ok(CreatedIntegration {
        view,
        secret,
        endpoint_url,
    })
}

/// A request to rotate an integration's secret.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// The new secret (required for schemes whose secret the CRM issues).
    pub secret: Option<String>,
    /// How long the previous secret keeps verifying (default one day, at most 30 days).
    pub grace_seconds: Option<u64>,
}

/// The new secret, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    pub previous_secret_valid_until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

const DEFAULT_GRACE_SECONDS: u64 = 86_400;
const MAX_GRACE_SECONDS: u64 = 30 * 86_400;

pub async fn rotate_secret(
    store: &Store,
    public_url: &str,
    integration: &Integration,
    request: RotateSecret,
) -> ApiResult<RotatedSecret> {
    let scheme: SchemeConfig = serde_json::from_value(integration.verification.clone())
        .map_err(|err| AdminError::Internal(format!("stored verification: {err}")))?;
    let grace = request.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(AdminError::invalid(
            "grace_seconds",
            format!("grace_seconds must be at most {MAX_GRACE_SECONDS} (30 days)"),
        ));
    }
    let secret = secret_for(&scheme, request.secret)?.ok_or_else(|| {
        AdminError::invalid(
            "secret",
            format!("{} has no stored secret to rotate", scheme.name()),
        )
    })?;
    let previous_secret_valid_until = store
        .rotate_integration_secret(
            integration.id,
            &secret,
            std::time::Duration::from_secs(grace),
            Timestamp::now(),
        )
        .await?;
    let webhook_url = IntegrationView::new(integration.clone(), public_url).webhook_url;
    Ok(RotatedSecret {
        endpoint_url: endpoint_url(&webhook_url, &scheme, &secret),
        secret,
        previous_secret_valid_until,
    })
}

/// What a (bulk) replay did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReplayReport {
    /// Dead letters the filter matched.
    pub matched: u64,
    /// Republished (absent on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<u64>,
    /// Dead letters that could not be replayed, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<ReplayFailure>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplayFailure {
    pub id: domain::DeadLetterId,
    pub error: String,
}

/// Republishes the dead letters matching `filter` with their original event ids (so replaying
/// twice has no second effect), recording who replayed them and when. With `dry_run`, only
/// counts them.
pub async fn replay_dead_letters(
    store: &Store,
    bus: &bus::Bus,
    filter: &store::DeadLetterFilter,
    actor: &str,
    dry_run: bool,
) -> ApiResult<ReplayReport> {
    if dry_run {
        return Ok(ReplayReport {
            matched: store.count_dead_letters(filter).await?,
            ..ReplayReport::default()
        });
    }
    let letters = store.dead_letters_matching(filter).await?;
    let mut report = ReplayReport {
        matched: letters.len() as u64,
        replayed: Some(0),
        failed: Vec::new(),
    };
    for letter in letters {
        let mut envelope: domain::EventEnvelope =
            match serde_json::from_value(letter.envelope.clone()) {
                Ok(envelope) => envelope,
                Err(err) => {
                    report.failed.push(ReplayFailure {
                        id: letter.id,
                        error: format!("the stored event cannot be decoded: {err}"),
                    });
                    continue;
                }
            };
        let now = Timestamp::now();
        envelope.replay = Some(domain::ReplayInfo {
            replayed_by: actor.to_owned(),
            replayed_at: now,
        });
        match bus.publish(&envelope).await {
            Ok(_) => {
                store.mark_replayed(letter.id, actor, now).await?;
                metrics::counter!("rollcall_replays_total").increment(1);
                report.replayed = report.replayed.map(|n| n + 1);
            }
            Err(err) => {
                // The queue is down: stop here; what was not republished stays dead-lettered.
                return Err(AdminError::Unavailable(err.to_string()));
            }
        }
    }
    Ok(report)
}
