//! Operations shared by the HTTP routes and the command line: validation, secret and token
//! generation, and the representation of what is created.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use domain::{IntegrationSettings, Source, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use store::{Integration, NewIntegration, Store, Tenant, TokenKind};
use verifier::SchemeConfig;

use crate::error::{AdminError, ApiResult};
use crate::extract::parse_json;

/// A new random bearer token with a recognisable prefix (`rc_op_`, `rc_tk_`).
#[must_use]
pub fn generate_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A Standard Webhooks secret: `whsec_` and 24 random bytes in base64.
#[must_use]
pub fn generate_webhook_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", STANDARD.encode(bytes))
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

fn non_empty(field: &str, value: &str, max: usize) -> ApiResult<String> {
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

pub async fn create_tenant(store: &Store, name: &str) -> ApiResult<Tenant> {
    let name = non_empty("name", name, 200)?;
    Ok(store.create_tenant(&name, Timestamp::now()).await?)
}

/// A request to create an integration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    /// Required with the operator token; a tenant token creates in its own tenant.
    pub tenant_id: Option<TenantId>,
    pub name: String,
    #[serde(default = "default_source")]
    pub source: Source,
    /// `{"scheme": "standard-webhooks"}` when absent.
    pub verification: Option<serde_json::Value>,
    pub settings: Option<serde_json::Value>,
}

fn default_source() -> Source {
    Source::Rollcall
}

/// An integration as the API shows it.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct CreatedIntegration {
    #[serde(flatten)]
    pub view: IntegrationView,
    pub secret: String,
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
    if !sources::is_supported(request.source) {
        return Err(AdminError::invalid(
            "source",
            format!("source {} is not supported by this version", request.source),
        ));
    }
    let verification = request
        .verification
        .unwrap_or_else(|| serde_json::json!({"scheme": "standard-webhooks"}));
    let scheme: SchemeConfig = parse_json(verification.to_string().as_bytes())
        .map_err(|err| AdminError::invalid("verification", format!("verification: {err}")))?;
    let settings: IntegrationSettings = match request.settings {
        None => IntegrationSettings::default(),
        Some(value) => parse_json(value.to_string().as_bytes())
            .map_err(|err| AdminError::invalid("settings", format!("settings: {err}")))?,
    };
    settings
        .validate()
        .map_err(|err| AdminError::invalid(&format!("settings.{}", err.field), err.to_string()))?;
    let secret = if scheme.generates_secret() {
        generate_webhook_secret()
    } else {
        return Err(AdminError::invalid(
            "verification",
            "this scheme needs a secret",
        ));
    };
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
            },
            Timestamp::now(),
        )
        .await?;
    Ok(CreatedIntegration {
        view: IntegrationView::new(integration, public_url),
        secret,
    })
}
