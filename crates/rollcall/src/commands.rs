//! The command-line verbs other than `serve`. They work on the database directly (the same
//! configuration as the server), through the same service functions as the internal API.

use std::io::Read;

use anyhow::Context;
use clap::{Args, Subcommand};
use domain::{Source, TenantId, Timestamp, UserStatus};
use serde::Serialize;
use store::UserFilter;
use verifier::Secret;

use crate::config::Config;
use crate::setup;

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn admin_error(err: admin::AdminError) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}

#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn tenant(config: &Config, command: TenantCommand) -> anyhow::Result<()> {
    let store = setup::open_store(config).await?;
    match command {
        TenantCommand::Create { name, json } => {
            let tenant = admin::service::create_tenant(&store, &name)
                .await
                .map_err(admin_error)?;
            if json {
                print_json(&tenant)
            } else {
                println!("created tenant {} ({})", tenant.id, tenant.name);
                Ok(())
            }
        }
        TenantCommand::List { json } => {
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = store.list_tenants(None, after.as_ref(), Some(500)).await?;
                all.extend(page.items);
                match page.next_cursor {
                    Some(cursor) => after = Some(store::Cursor::parse(&cursor)?),
                    None => break,
                }
            }
            if json {
                return print_json(&all);
            }
            for tenant in all {
                println!("{}  {}", tenant.id, tenant.name);
            }
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum IntegrationCommand {
    /// Create an integration (in draft); prints its webhook URL and secret (shown once).
    Create {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "rollcall")]
        source: Source,
        /// The verification scheme and its parameters as JSON (default Standard Webhooks),
        /// e.g. '{"scheme": "hubspot"}'.
        #[arg(long)]
        verification: Option<String>,
        /// The signing secret, when the CRM issues it (HubSpot, Jobber, Stripe) or to choose one.
        #[arg(long)]
        secret: Option<String>,
        /// Settings as JSON, e.g. '{"invite_mode": "manual"}'.
        #[arg(long)]
        settings: Option<String>,
        /// Access to the CRM's users API as JSON, for sources whose webhooks name owners by id,
        /// e.g. '{"credentials": {"access_token": "pat-…"}}'.
        #[arg(long)]
        directory: Option<String>,
        /// Make it live at once (skip the draft/shadow stage).
        #[arg(long)]
        publish: bool,
        #[arg(long)]
        json: bool,
    },
    /// List integrations.
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
        #[arg(long)]
        json: bool,
    },
    /// Make a draft integration live.
    Publish {
        id: domain::IntegrationId,
        #[arg(long)]
        json: bool,
    },
    /// Replace the signing secret; the old one keeps working for the grace period.
    Rotate {
        id: domain::IntegrationId,
        /// The new secret (required when the CRM issues it); generated otherwise.
        #[arg(long)]
        secret: Option<String>,
        /// How long the old secret keeps verifying (default 86400).
        #[arg(long)]
        grace_seconds: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke: the webhook URL answers 404 from now on.
    Revoke {
        id: domain::IntegrationId,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn integration(
    config: &Config,
    command: IntegrationCommand,
) -> anyhow::Result<()> {
    let store = setup::open_store(config).await?;
    match command {
        IntegrationCommand::Create {
            tenant,
            name,
            source,
            verification,
            secret,
            settings,
            directory,
            publish,
            json,
        } => {
            let directory = directory
                .map(|text| serde_json::from_str(&text).context("--directory is not valid JSON"))
                .transpose()?;
            let settings = settings
                .map(|text| serde_json::from_str(&text).context("--settings is not valid JSON"))
                .transpose()?;
            let verification = verification
                .map(|text| serde_json::from_str(&text).context("--verification is not valid JSON"))
                .transpose()?;
            let mut created = admin::service::create_integration(
                &store,
                &config.public_url,
                admin::service::CreateIntegration {
                    tenant_id: Some(tenant),
                    name,
                    source,
                    verification,
                    secret,
                    settings,
                    directory,
                },
            )
            .await
            .map_err(admin_error)?;
            if publish
                && let Some(live) = store
                    .publish_integration(created.view.integration.id, Timestamp::now())
                    .await?
            {
                created.view = admin::service::IntegrationView::new(live, &config.public_url);
            }
            if json {
                return print_json(&created);
            }
            let integration = &created.view.integration;
            println!(
                "created integration {} ({}, {})",
                integration.id, integration.name, integration.state
            );
            println!("webhook URL: {}", created.view.webhook_url);
            if let Some(url) = &created.endpoint_url {
                println!("URL to paste into the CRM (carries the token): {url}");
            }
            match &created.secret {
                Some(secret) => println!("secret (shown once): {secret}"),
                None => println!("no stored secret: the signing key is fetched per request"),
            }
            Ok(())
        }
        IntegrationCommand::List { tenant, json } => {
            let page = store.list_integrations(tenant, None, Some(500)).await?;
            let views: Vec<_> = page
                .items
                .into_iter()
                .map(|integration| {
                    admin::service::IntegrationView::new(integration, &config.public_url)
                })
                .collect();
            if json {
                return print_json(&views);
            }
            for view in views {
                let integration = &view.integration;
                println!(
                    "{}  {:<8} {:<20} {}  {}",
                    integration.id,
                    integration.state,
                    integration.source,
                    integration.name,
                    view.webhook_url
                );
            }
            Ok(())
        }
        IntegrationCommand::Rotate {
            id,
            secret,
            grace_seconds,
            json,
        } => {
            let integration = store
                .integration(id)
                .await?
                .with_context(|| format!("no integration {id}"))?;
            let rotated = admin::service::rotate_secret(
                &store,
                &config.public_url,
                &integration,
                admin::service::RotateSecret {
                    secret,
                    grace_seconds,
                },
            )
            .await
            .map_err(admin_error)?;
            if json {
                return print_json(&rotated);
            }
            println!("new secret (shown once): {}", rotated.secret);
            if let Some(until) = rotated.previous_secret_valid_until {
                println!("the previous secret keeps working until {until}");
            }
            if let Some(url) = &rotated.endpoint_url {
                println!("URL to paste into the CRM (carries the token): {url}");
            }
            Ok(())
        }
        IntegrationCommand::Revoke { id, json } => {
            let integration = store
                .revoke_integration(id, Timestamp::now())
                .await?
                .with_context(|| format!("no integration {id}"))?;
            if json {
                return print_json(&admin::service::IntegrationView::new(
                    integration,
                    &config.public_url,
                ));
            }
            println!("integration {} is {}", integration.id, integration.state);
            Ok(())
        }
        IntegrationCommand::Publish { id, json } => {
            let integration = store
                .publish_integration(id, Timestamp::now())
                .await?
                .with_context(|| format!("no integration {id}"))?;
            if json {
                return print_json(&admin::service::IntegrationView::new(
                    integration,
                    &config.public_url,
                ));
            }
            println!("integration {} is {}", integration.id, integration.state);
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// List users.
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
        #[arg(long)]
        status: Option<UserStatus>,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn users(config: &Config, command: UsersCommand) -> anyhow::Result<()> {
    let store = setup::open_store(config).await?;
    match command {
        UsersCommand::List {
            tenant,
            status,
            json,
        } => {
            let filter = UserFilter {
                tenant,
                status,
                ..UserFilter::default()
            };
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = store.list_users(&filter, after.as_ref(), Some(500)).await?;
                all.extend(page.items);
                match page.next_cursor {
                    Some(cursor) => after = Some(store::Cursor::parse(&cursor)?),
                    None => break,
                }
            }
            if json {
                return print_json(&all);
            }
            for user in all {
                println!(
                    "{}  {:<8} {} {} <{}>",
                    user.id, user.status, user.first_name, user.last_name, user.email
                );
            }
            Ok(())
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct SendTestEvent {
    /// The integration to post to.
    #[arg(long)]
    integration: domain::IntegrationId,
    /// The integration's `whsec_…` secret (shown when it was created).
    #[arg(long)]
    secret: String,
    /// Where the ingress is (default: ROLLCALL_PUBLIC_URL).
    #[arg(long)]
    url: Option<String>,
    #[arg(long, default_value = "opportunity.updated")]
    event_type: String,
    #[arg(long, default_value = "005A000001")]
    owner_id: String,
    #[arg(long, default_value = "ann.lee@example.com")]
    email: String,
    #[arg(long, default_value = "Ann")]
    first_name: String,
    #[arg(long, default_value = "Lee")]
    last_name: String,
    #[arg(long)]
    json: bool,
}

/// Standard Webhooks headers for `body`, signed now.
fn signed_headers(secret: &Secret, body: &[u8]) -> anyhow::Result<(String, i64, String)> {
    let id = format!("msg_{}", uuid_simple());
    let timestamp = Timestamp::now().unix_seconds();
    let signature = verifier::sign_standard_webhooks(secret, &id, timestamp, body)
        .context("the secret is not a Standard Webhooks secret (whsec_ followed by base64)")?;
    Ok((id, timestamp, signature))
}

fn uuid_simple() -> String {
    domain::EventId::new().to_string().replace('-', "")
}

pub(crate) async fn send_test_event(config: &Config, args: SendTestEvent) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "id": format!("evt_{}", uuid_simple()),
        "type": args.event_type,
        "occurred_at": Timestamp::now().to_rfc3339(),
        "owner": {
            "id": args.owner_id,
            "email": args.email,
            "first_name": args.first_name,
            "last_name": args.last_name,
            "status": "active",
        },
        "record": {"kind": "opportunity", "id": "006TEST"},
    })
    .to_string();
    let secret = Secret::new(args.secret);
    let (id, timestamp, signature) = signed_headers(&secret, body.as_bytes())?;
    let base = args.url.unwrap_or_else(|| config.public_url.clone());
    let url = format!("{}/hooks/{}", base.trim_end_matches('/'), args.integration);
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .with_context(|| format!("posting to {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if args.json {
        println!("{text}");
    } else {
        println!("{} {}", status.as_u16(), text);
    }
    if status.is_success() {
        Ok(())
    } else {
        anyhow::bail!("the ingress answered {status}")
    }
}

#[derive(Debug, Args)]
pub(crate) struct Sign {
    /// The `whsec_…` secret.
    #[arg(long)]
    secret: String,
}

pub(crate) fn sign(args: &Sign) -> anyhow::Result<()> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("reading the body from stdin")?;
    let (id, timestamp, signature) = signed_headers(&Secret::new(args.secret.clone()), &body)?;
    println!("webhook-id: {id}");
    println!("webhook-timestamp: {timestamp}");
    println!("webhook-signature: {signature}");
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct Verify {
    /// The scheme: standard-webhooks, stripe, github, hubspot, jobber, connectwise, hmac,
    /// basic, token, salesforce-outbound.
    #[arg(long)]
    scheme: String,
    /// A scheme parameter as key=value (e.g. --param header=X-Signature --param encoding=hex);
    /// repeat as needed.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// The secret (repeat to try several; for connectwise, the signing key).
    #[arg(long = "secret", required = true)]
    secrets: Vec<String>,
    /// The clock: Unix seconds (milliseconds for hubspot); default now.
    #[arg(long)]
    now: Option<i64>,
    #[arg(long, default_value = "POST")]
    method: String,
    /// The full URL the sender called (hubspot signs it; salesforce and token read it).
    #[arg(long, default_value = "https://localhost/hooks/verify")]
    url: String,
    /// A request header as 'Name: value'; repeat as needed.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
}

fn parameter(text: &str) -> anyhow::Result<(String, serde_json::Value)> {
    let (key, value) = text
        .split_once('=')
        .with_context(|| format!("--param {text:?} is not key=value"))?;
    // Numbers and booleans keep their type; anything else is text.
    let value = match serde_json::from_str::<serde_json::Value>(value) {
        Ok(parsed @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => parsed,
        _ => serde_json::Value::String(value.to_owned()),
    };
    Ok((key.to_owned(), value))
}

/// `rollcall verify`: answers whether a request is genuine, with the ingress's code.
pub(crate) fn verify(args: &Verify) -> anyhow::Result<bool> {
    let mut config = serde_json::Map::new();
    config.insert(
        "scheme".to_owned(),
        serde_json::Value::String(args.scheme.clone()),
    );
    for param in &args.params {
        let (key, value) = parameter(param)?;
        config.insert(key, value);
    }
    let scheme: verifier::SchemeConfig = serde_json::from_value(serde_json::Value::Object(config))
        .map_err(|err| anyhow::anyhow!("--scheme/--param: {err}"))?;
    scheme
        .validate()
        .map_err(|err| anyhow::anyhow!("--param: {err}"))?;
    let mut headers = http::HeaderMap::new();
    for line in &args.headers {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("--header {line:?} is not 'Name: value'"))?;
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes())
                .with_context(|| format!("--header: {:?} is not a header name", name.trim()))?,
            http::HeaderValue::from_str(value.trim())
                .with_context(|| format!("--header: the value of {} is not valid", name.trim()))?,
        );
    }
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("reading the body from stdin")?;
    let now_ms = match (args.now, &scheme) {
        (Some(ms), verifier::SchemeConfig::Hubspot) => ms,
        (Some(seconds), _) => seconds.saturating_mul(1000),
        (None, _) => Timestamp::now().millis(),
    };
    let secrets: Vec<Secret> = args.secrets.iter().cloned().map(Secret::new).collect();
    let request = verifier::Request {
        method: &args.method,
        url: &args.url,
        headers: &headers,
        body: &body,
    };
    match verifier::verify(&scheme, &secrets, &request, now_ms) {
        Ok(_) => {
            println!("valid");
            Ok(true)
        }
        Err(rejection) => {
            println!("invalid: {rejection}");
            Ok(false)
        }
    }
}

/// Which dead letters a `dlq` command applies to.
#[derive(Debug, Args)]
pub(crate) struct DlqFilter {
    /// Dead letter ids (all matching the other filters when none is given).
    ids: Vec<domain::DeadLetterId>,
    #[arg(long)]
    integration: Option<domain::IntegrationId>,
    /// Dead at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Dead before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
}

impl DlqFilter {
    fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.integration.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    fn to_filter(&self) -> anyhow::Result<store::DeadLetterFilter> {
        let time = |flag: &str, text: &Option<String>| {
            text.as_deref()
                .map(|text| {
                    Timestamp::parse_rfc3339(text).map_err(|err| anyhow::anyhow!("--{flag}: {err}"))
                })
                .transpose()
        };
        Ok(store::DeadLetterFilter {
            tenant: None,
            integration_id: self.integration,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            ids: (!self.ids.is_empty()).then(|| self.ids.clone()),
        })
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// List dead letters, most recently dead first.
    List {
        #[command(flatten)]
        filter: DlqFilter,
        #[arg(long)]
        json: bool,
    },
    /// Replay dead letters (republished with their original event ids).
    Replay {
        #[command(flatten)]
        filter: DlqFilter,
        /// Only say how many would be replayed.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Drop dead letters for good.
    Drop {
        #[command(flatten)]
        filter: DlqFilter,
        /// Drop every dead letter (required when no id or filter is given).
        #[arg(long)]
        all: bool,
        /// Only say how many would be dropped.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn dlq(config: &Config, command: DlqCommand) -> anyhow::Result<()> {
    let store = setup::open_store(config).await?;
    match command {
        DlqCommand::List { filter, json } => {
            let filter = filter.to_filter()?;
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .list_dead_letters(&filter, after.as_ref(), Some(500))
                    .await?;
                all.extend(page.items);
                match page.next_cursor {
                    Some(cursor) => after = Some(store::Cursor::parse(&cursor)?),
                    None => break,
                }
            }
            if json {
                return print_json(&all);
            }
            for letter in &all {
                let last_error = letter
                    .errors
                    .last()
                    .map_or("", |error| error.error.as_str());
                println!(
                    "{}  {}  {:?}  attempts {}  {}  {}",
                    letter.id,
                    letter.dead_at,
                    letter.reason,
                    letter.attempts,
                    letter.event_type,
                    last_error
                );
            }
            println!("{} dead letter(s)", all.len());
            Ok(())
        }
        DlqCommand::Replay {
            filter,
            dry_run,
            json,
        } => {
            let filter = filter.to_filter()?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            let bus = crate::serve::build_bus(config, &store, shutdown.clone())?;
            if !dry_run {
                wait_until_ready(&bus).await?;
            }
            let actor = format!("cli ({})", whoami());
            let report =
                admin::service::replay_dead_letters(&store, &bus, &filter, &actor, dry_run)
                    .await
                    .map_err(admin_error);
            shutdown.cancel();
            let report = report?;
            if json {
                return print_json(&report);
            }
            match report.replayed {
                None => println!("{} dead letter(s) would be replayed", report.matched),
                Some(replayed) => {
                    println!("replayed {replayed} of {} dead letter(s)", report.matched)
                }
            }
            for failure in &report.failed {
                println!("not replayed {}: {}", failure.id, failure.error);
            }
            Ok(())
        }
        DlqCommand::Drop {
            filter,
            all,
            dry_run,
            json,
        } => {
            if filter.is_empty() && !all {
                anyhow::bail!(
                    "give dead letter ids or a filter (--integration, --since, --until), or --all"
                );
            }
            let filter = filter.to_filter()?;
            let count = if dry_run {
                store.count_dead_letters(&filter).await?
            } else {
                store.delete_dead_letters(&filter).await?
            };
            if json {
                return print_json(
                    &serde_json::json!({"matched": count, "dropped": (!dry_run).then_some(count)}),
                );
            }
            if dry_run {
                println!("{count} dead letter(s) would be dropped");
            } else {
                println!("dropped {count} dead letter(s)");
            }
            Ok(())
        }
    }
}

/// The queue may still be connecting (RabbitMQ): wait a little for it.
pub(crate) async fn wait_until_ready(bus: &bus::Bus) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !bus.is_ready().await {
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the queue ({}) is not reachable", bus.backend_name());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

pub(crate) fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown user".to_owned())
}
