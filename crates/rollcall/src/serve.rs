//! `rollcall serve`: the listeners, the worker and the invitation relay, in any combination
//! of roles, with graceful shutdown on SIGTERM or Ctrl-C.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bus::{AmqpConfig, Bus, ConsumeOptions};
use notifier::{MailTransport, Relay, RelayConfig, Templates};
use provisioner::Provisioner;
use resolver::{Worker, WorkerOptions};
use store::Store;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::{health, setup, telemetry};

/// A part of rollcall a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Role {
    /// The public webhook listener.
    Ingress,
    /// The queue consumer and the invitation relay.
    Worker,
    /// The internal API listener.
    Admin,
}

/// How long in-flight work may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn build_bus(
    config: &Config,
    store: &Store,
    shutdown: CancellationToken,
) -> anyhow::Result<Bus> {
    let retry = config.retry_policy()?;
    Ok(match &config.amqp_url {
        Some(url) => {
            let mut amqp = AmqpConfig::new(url.clone());
            amqp.prefix.clone_from(&config.amqp_prefix);
            amqp.delivery_limit = config.amqp_delivery_limit;
            amqp.retry = retry;
            Bus::amqp(amqp, store.clone(), shutdown)
        }
        None => Bus::embedded(store.clone(), retry),
    })
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: no new work is taken; in-flight work finishes");
    shutdown.cancel();
}

async fn listen(
    name: &str,
    addr: &str,
    router: axum::Router,
    shutdown: CancellationToken,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>> + use<>> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {name} listener to {addr}"))?;
    let bound = listener.local_addr()?;
    say(&format!("{name} listening on http://{bound}"));
    Ok(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(anyhow::Error::from)
    })
}

pub(crate) async fn serve(config: Config, roles: &[Role]) -> anyhow::Result<()> {
    let roles: Vec<Role> = if roles.is_empty() {
        vec![Role::Ingress, Role::Worker, Role::Admin]
    } else {
        roles.to_vec()
    };
    let shutdown = CancellationToken::new();
    // The queue connection outlives the intake so that in-flight events can be acknowledged.
    let bus_shutdown = CancellationToken::new();
    let store = setup::open_store(&config).await?;
    let bus = build_bus(&config, &store, bus_shutdown.clone())?;
    let integrations = store.integration_cache(bus_shutdown.clone());
    // One directory client per process: its cache and rate-limit memory are shared by the
    // worker and the admin's previews.
    let directory = config.directory();
    let metrics_handle = telemetry::install()?;
    say(&format!(
        "rollcall {} (database: {:?}, queue: {})",
        env!("CARGO_PKG_VERSION"),
        store.backend(),
        bus.backend_name()
    ));

    if roles.contains(&Role::Admin)
        && let Some(token) =
            admin::service::ensure_operator_token(&store, config.admin_token.is_some())
                .await
                .map_err(|err| anyhow::anyhow!("creating the operator token: {err}"))?
    {
        say(&format!("operator token (shown once; keep it): {token}"));
    }

    tokio::spawn(wait_for_signal(shutdown.clone()));
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();

    if roles.contains(&Role::Ingress) {
        let router = ingress::router(ingress::IngressState {
            store: store.clone(),
            integrations: integrations.clone(),
            bus: bus.clone(),
            public_url: config.public_url.clone(),
            body_timeout: Duration::from_secs(config.body_timeout_seconds),
            request_timeout: Duration::from_secs(config.request_timeout_seconds),
            connectwise_keys: ingress::KeyFetcher::new(config.connectwise_key_policy())
                .context("building the ConnectWise key client")?,
            rate_limits: ingress::RateLimits::default(),
        })
        .merge(health::router(store.clone(), bus.clone()));
        let router = telemetry::with_request_ids(router);
        tasks.spawn(listen("ingress", &config.ingress_addr, router, shutdown.clone()).await?);
    }
    if roles.contains(&Role::Admin) {
        let router = admin::router(admin::AdminState {
            store: store.clone(),
            integrations: integrations.clone(),
            bus: bus.clone(),
            public_url: config.public_url.clone(),
            operator_token_hash: config.admin_token.as_deref().map(store::token_hash),
            directory: directory.clone(),
        })
        .merge(health::router(store.clone(), bus.clone()))
        .merge(telemetry::router(
            metrics_handle.clone(),
            store.clone(),
            bus.clone(),
        ));
        let router = telemetry::with_request_spans(router);
        tasks.spawn(listen("admin", &config.admin_addr, router, shutdown.clone()).await?);
    }
    if roles.contains(&Role::Worker) {
        let invitations_queued = Arc::new(Notify::new());
        let provisioner = Provisioner::new(store.clone(), Arc::clone(&invitations_queued));
        let worker = Worker::new(
            integrations.clone(),
            bus.clone(),
            provisioner,
            directory.clone(),
            WorkerOptions {
                concurrency: config.worker_concurrency,
                batch_size: config.worker_batch_size,
                consume: ConsumeOptions {
                    prefetch: config.worker_prefetch,
                    visibility_timeout: Duration::from_secs(config.queue_visibility_seconds),
                    ..ConsumeOptions::default()
                },
            },
        );
        let intake = shutdown.clone();
        tasks.spawn(async move {
            worker.run(intake).await;
            Ok(())
        });
        let drainer_bus = bus.clone();
        let drainer_stop = shutdown.clone();
        tasks.spawn(async move {
            drainer_bus.drain_dead_letters(drainer_stop).await;
            Ok(())
        });
        let transport = match &config.smtp_url {
            Some(url) => MailTransport::smtp(url, config.smtp_connections)?,
            None => MailTransport::Files(config.data_dir.join("outbox")),
        };
        let from = config.mail_from.parse().with_context(|| {
            format!("ROLLCALL_MAIL_FROM {:?} is not a mailbox", config.mail_from)
        })?;
        let mut relay_config = RelayConfig::new(from, &config.public_url);
        relay_config.invitation_ttl = Duration::from_secs(config.invitation_ttl_seconds);
        relay_config.claim_timeout = Duration::from_secs(config.invitation_claim_seconds.max(1));
        relay_config.retry_base = Duration::from_millis(config.invitation_retry_base_ms);
        relay_config.max_attempts = config.invitation_max_attempts;
        relay_config.reply_to = config
            .mail_reply_to
            .as_deref()
            .map(|address| {
                address
                    .parse()
                    .with_context(|| format!("ROLLCALL_MAIL_REPLY_TO {address:?} is not a mailbox"))
            })
            .transpose()?;
        if let Some(dir) = &config.templates_dir {
            relay_config.templates = Arc::new(
                Templates::load(dir)
                    .map_err(|err| anyhow::anyhow!("ROLLCALL_TEMPLATES_DIR: {err}"))?,
            );
        }
        let relay = Relay::new(store.clone(), transport, relay_config, invitations_queued);
        let stop = shutdown.clone();
        tasks.spawn(async move {
            relay.run(stop).await;
            Ok(())
        });
        say("worker consuming");
    }

    let mut failure = None;
    // Run until a task fails or a shutdown signal arrives.
    tokio::select! {
        () = shutdown.cancelled() => {}
        Some(result) = tasks.join_next() => {
            if let Ok(Err(err)) | Err(err) = result.map_err(anyhow::Error::from) {
                failure = Some(err);
            }
            shutdown.cancel();
        }
    }
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(result) = tasks.join_next().await {
            if let Ok(Err(err)) = result {
                tracing::error!(error = %err, "a task failed while shutting down");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "in-flight work did not finish within {DRAIN_TIMEOUT:?}; unacknowledged events will be redelivered"
        );
    }
    bus_shutdown.cancel();
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}
