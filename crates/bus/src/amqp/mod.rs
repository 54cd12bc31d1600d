//! RabbitMQ through lapin.
//!
//! Topology (declared with queue arguments by every process, idempotently; see
//! `deploy/rabbitmq/definitions.json` for the same as a definitions file):
//! - `{prefix}rollcall.events`: durable direct exchange; events are published to it with
//!   routing key `work`, `mandatory` set, persistent, and a publisher confirm awaited.
//! - `{prefix}rollcall.work`: quorum queue bound to it. `x-delivery-limit` caps redeliveries
//!   (a consumer that keeps crashing on a message); past it the broker dead-letters the message
//!   to `{prefix}rollcall.dead-letter` (fanout) with the `at-least-once` strategy (which needs
//!   `x-overflow: reject-publish`), so a dead-lettered message is never dropped in transit.
//! - `{prefix}rollcall.retry.<ms>ms`: one quorum queue per retry delay (each tier of the retry
//!   policy, at each jitter factor), with that delay as its queue-level `x-message-ttl` and the
//!   events exchange (routing key `work`) as its at-least-once dead-letter target: a message
//!   published there comes back to the work queue when its delay has passed. Queue-level TTL,
//!   not per-message TTL, because RabbitMQ expires messages only at the head of a queue: one
//!   delay per queue keeps expiry in order.
//! - `{prefix}rollcall.dead`: quorum queue bound to the dead-letter exchange, drained into the
//!   database's dead-letter store (see `consume.rs`).
//!
//! A failed event is republished (confirmed) to a retry queue or the dead-letter exchange,
//! carrying `x-rollcall-attempt` and `x-rollcall-errors` headers, and only then is the original
//! acknowledged: a crash in between duplicates the message, never loses it.
//!
//! A supervisor task owns the connection: as soon as the connection or the publishing channel
//! stops being usable it drops them and reconnects from scratch (with backoff), and consumers
//! resubscribe on the new connection. lapin's own auto-recovery is deliberately not used: it is
//! a second reconnect path whose "still recovering" state has no bound, so a publisher waiting
//! on it could keep answering 503 long after the broker is back. Starting over is one code
//! path, always taken, and the same after a short or a long outage.

mod consume;

use std::sync::Arc;
use std::time::Duration;

use domain::EventId;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use store::Store;
use tokio::sync::{RwLock, watch};
use tokio_util::sync::CancellationToken;

pub(crate) use consume::{AmqpConsumer, AmqpHandle};

use crate::{BusError, Published, QueueDepths, RetryPolicy};

/// The routing key of the work queue's binding.
const WORK_ROUTING_KEY: &str = "work";

/// How to reach RabbitMQ and name things there.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:5672/vhost`.
    pub url: String,
    /// Prepended to every exchange and queue name (lets several deployments, or tests, share
    /// one vhost).
    pub prefix: String,
    /// Deliveries of one message before the broker dead-letters it.
    pub delivery_limit: u32,
    /// How long to wait for a publisher confirm before answering "not durable".
    pub confirm_timeout: Duration,
    pub retry: RetryPolicy,
}

impl AmqpConfig {
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: String::new(),
            delivery_limit: 20,
            confirm_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }
}

/// The names of rollcall's exchanges and queues under a prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    retry_delays: Vec<Duration>,
}

impl Topology {
    #[must_use]
    pub fn new(prefix: &str, retry: &RetryPolicy) -> Self {
        Self {
            prefix: prefix.to_owned(),
            retry_delays: retry.all_delays(),
        }
    }

    #[must_use]
    pub fn events_exchange(&self) -> String {
        format!("{}rollcall.events", self.prefix)
    }

    #[must_use]
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}rollcall.dead-letter", self.prefix)
    }

    #[must_use]
    pub fn work_queue(&self) -> String {
        format!("{}rollcall.work", self.prefix)
    }

    #[must_use]
    pub fn dead_queue(&self) -> String {
        format!("{}rollcall.dead", self.prefix)
    }

    /// The queue a retry waiting `delay` goes to.
    #[must_use]
    pub fn retry_queue(&self, delay: Duration) -> String {
        format!("{}rollcall.retry.{}ms", self.prefix, delay.as_millis())
    }

    /// Every retry queue.
    #[must_use]
    pub fn retry_queues(&self) -> Vec<String> {
        self.retry_delays
            .iter()
            .map(|delay| self.retry_queue(*delay))
            .collect()
    }

    /// Every queue name, for tools that inspect or remove them.
    #[must_use]
    pub fn queues(&self) -> Vec<String> {
        let mut queues = vec![self.work_queue(), self.dead_queue()];
        queues.extend(self.retry_queues());
        queues
    }

    /// Every exchange name.
    #[must_use]
    pub fn exchanges(&self) -> Vec<String> {
        vec![self.events_exchange(), self.dead_letter_exchange()]
    }
}

/// A live connection and its publishing channel (in confirm mode).
#[derive(Clone)]
struct Link {
    connection: Arc<Connection>,
    publisher: Channel,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

impl Link {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

#[derive(Debug)]
struct Shared {
    config: AmqpConfig,
    topology: Topology,
    store: Store,
    link: RwLock<Option<Link>>,
    /// Bumped whenever a new link is installed, so waiting consumers resubscribe.
    generation: watch::Sender<u64>,
}

#[derive(Debug)]
pub(crate) struct Amqp {
    shared: Arc<Shared>,
}

fn unavailable(err: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(err.to_string())
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

/// Arguments shared by every quorum queue that dead-letters somewhere: the `at-least-once`
/// strategy (a message is only removed once the target confirmed it), which needs
/// `reject-publish` overflow.
fn dead_lettering(target_exchange: &str, routing_key: Option<&str>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert("x-dead-letter-exchange".into(), text(target_exchange));
    if let Some(key) = routing_key {
        args.insert("x-dead-letter-routing-key".into(), text(key));
    }
    args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    args.insert("x-overflow".into(), text("reject-publish"));
    args
}

async fn declare_topology(
    channel: &Channel,
    config: &AmqpConfig,
    topology: &Topology,
) -> lapin::Result<()> {
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let bind = |queue: String, exchange: String, key: &'static str| async move {
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    };
    channel
        .exchange_declare(
            topology.events_exchange().as_str().into(),
            ExchangeKind::Direct,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            topology.dead_letter_exchange().as_str().into(),
            ExchangeKind::Fanout,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;

    let mut work = dead_lettering(&topology.dead_letter_exchange(), None);
    work.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(i32::try_from(config.delivery_limit).unwrap_or(i32::MAX)),
    );
    channel
        .queue_declare(topology.work_queue().as_str().into(), durable_queue, work)
        .await?;
    bind(
        topology.work_queue(),
        topology.events_exchange(),
        WORK_ROUTING_KEY,
    )
    .await?;

    for delay in &topology.retry_delays {
        let mut retry = dead_lettering(&topology.events_exchange(), Some(WORK_ROUTING_KEY));
        retry.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        );
        channel
            .queue_declare(
                topology.retry_queue(*delay).as_str().into(),
                durable_queue,
                retry,
            )
            .await?;
    }

    let mut dead = FieldTable::default();
    dead.insert("x-queue-type".into(), text("quorum"));
    channel
        .queue_declare(topology.dead_queue().as_str().into(), durable_queue, dead)
        .await?;
    bind(topology.dead_queue(), topology.dead_letter_exchange(), "").await?;
    Ok(())
}

async fn connect(config: &AmqpConfig, topology: &Topology) -> lapin::Result<Link> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("rollcall-{}", std::process::id()).as_str().into());
    let connection = Connection::connect(&config.url, properties).await?;
    let publisher = connection.create_channel().await?;
    declare_topology(&publisher, config, topology).await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(Link {
        connection: Arc::new(connection),
        publisher,
    })
}

/// How long connecting and declaring the topology may take before trying again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// 200 ms doubling up to 5 s, with up to 20 % jitter so a fleet does not reconnect in step.
fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(5);
    let base = Duration::from_millis(200u64 << exp).min(Duration::from_secs(5));
    let jitter = rand::random_range(0.0..0.2);
    base.mul_f64(1.0 + jitter)
}

async fn supervise(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut failures: u32 = 0;
    let redacted = redact(&shared.config.url);
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        // A half-open link can leave the handshake waiting forever: bound it.
        let attempt =
            tokio::time::timeout(CONNECT_TIMEOUT, connect(&shared.config, &shared.topology))
                .await
                .unwrap_or_else(|_| {
                    Err(lapin::Error::from(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    )))
                });
        match attempt {
            Ok(link) => {
                failures = 0;
                tracing::info!(broker = %redacted, "connected to RabbitMQ");
                *shared.link.write().await = Some(link.clone());
                shared.generation.send_modify(|generation| *generation += 1);
                // Watch the link and start over the moment it stops being usable.
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                    if !link.usable() {
                        break;
                    }
                }
                *shared.link.write().await = None;
                // A connection whose publishing channel failed may itself still be open.
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    link.connection.close(200, "reconnecting".into()),
                )
                .await;
                if shutdown.is_cancelled() {
                    break;
                }
                tracing::warn!(broker = %redacted, "lost the RabbitMQ connection; reconnecting");
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                let pause = backoff(failures);
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(broker = %redacted, error = %err, failures, "cannot connect to RabbitMQ; retrying");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// `amqp://user:***@host/vhost`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => match url[start + 3..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..start + 3 + colon], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// Persistent JSON properties for an event, with rollcall's retry headers when given.
fn properties(event_id: EventId, headers: Option<FieldTable>) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(event_id.to_string().as_str().into());
    match headers {
        Some(headers) => properties.with_headers(headers),
        None => properties,
    }
}

impl Shared {
    async fn usable_link(&self) -> Result<Link, BusError> {
        self.link
            .read()
            .await
            .clone()
            .filter(Link::usable)
            .ok_or_else(|| unavailable("not connected to RabbitMQ"))
    }

    /// Publishes with `mandatory` set and waits for the broker's confirm; an ack that carries
    /// the message back (unroutable) is a failure.
    async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BusError> {
        let link = self.usable_link().await?;
        let publish = async {
            link.publisher
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    body,
                    properties,
                )
                .await?
                .await
        };
        match tokio::time::timeout(self.config.confirm_timeout, publish).await {
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            // An ack that carries the message back means it reached no queue.
            Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(unavailable(format!(
                "broker returned the message: {}",
                returned.reply_text
            ))),
            Ok(Ok(Confirmation::Nack(_))) => Err(unavailable("broker refused the message")),
            Ok(Ok(Confirmation::NotRequested)) => {
                Err(unavailable("publisher confirms are not enabled"))
            }
            Ok(Err(err)) => Err(unavailable(err)),
            Err(_) => Err(unavailable("no publisher confirm in time")),
        }
    }
}

impl Amqp {
    pub(crate) fn start(config: AmqpConfig, store: Store, shutdown: CancellationToken) -> Self {
        let topology = Topology::new(&config.prefix, &config.retry);
        let (generation, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            config,
            topology,
            store,
            link: RwLock::new(None),
            generation,
        });
        tokio::spawn(supervise(Arc::clone(&shared), shutdown));
        Self { shared }
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.shared
            .link
            .try_read()
            .ok()
            .and_then(|guard| guard.as_ref().map(Link::usable))
            .unwrap_or(false)
    }

    pub(crate) async fn publish(
        &self,
        event_id: EventId,
        body: &[u8],
    ) -> Result<Published, BusError> {
        let exchange = self.shared.topology.events_exchange();
        self.shared
            .publish_confirmed(
                &exchange,
                WORK_ROUTING_KEY,
                body,
                properties(event_id, None),
            )
            .await?;
        Ok(Published::Queued)
    }

    pub(crate) async fn depths(&self) -> Result<QueueDepths, BusError> {
        let link = self.shared.usable_link().await?;
        // A channel of its own: a failed passive declare closes the channel it runs on.
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        let topology = &self.shared.topology;
        let mut depths = QueueDepths::default();
        for (queue, slot) in [(topology.work_queue(), 0), (topology.dead_queue(), 2)]
            .into_iter()
            .chain(topology.retry_queues().into_iter().map(|queue| (queue, 1)))
        {
            let declared = channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
            let count = u64::from(declared.message_count());
            match slot {
                0 => depths.work += count,
                1 => depths.retry += count,
                _ => depths.dead += count,
            }
        }
        let _ = channel.close(200, "done".into()).await;
        Ok(depths)
    }

    pub(crate) fn consumer(
        &self,
        options: crate::ConsumeOptions,
        shutdown: CancellationToken,
    ) -> AmqpConsumer {
        AmqpConsumer::new(
            Arc::clone(&self.shared),
            self.shared.topology.work_queue(),
            options,
            shutdown,
        )
    }

    pub(crate) async fn drain_dead_letters(&self, shutdown: CancellationToken) {
        consume::drain_dead_letters(Arc::clone(&self.shared), shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password() {
        assert_eq!(
            redact("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }

    #[test]
    fn names_carry_the_prefix() {
        let topology = Topology::new("t1.", &RetryPolicy::default());
        assert_eq!(topology.work_queue(), "t1.rollcall.work");
        assert_eq!(topology.events_exchange(), "t1.rollcall.events");
        assert_eq!(
            topology.retry_queue(Duration::from_secs(5)),
            "t1.rollcall.retry.5000ms"
        );
        assert_eq!(topology.queues().len(), 12);
    }
}
