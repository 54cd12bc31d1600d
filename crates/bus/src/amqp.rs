//! RabbitMQ through lapin.
//!
//! Topology (declared with queue arguments by every process, idempotently; see
//! `deploy/rabbitmq/definitions.json` for the same as a definitions file):
//! - `{prefix}rollcall.events`: durable direct exchange; events are published to it with
//!   routing key `work`, `mandatory` set, persistent, and a publisher confirm awaited.
//! - `{prefix}rollcall.work`: quorum queue bound to it. `x-delivery-limit` caps redeliveries;
//!   past it the broker dead-letters the message to `{prefix}rollcall.dead-letter` (fanout)
//!   with the `at-least-once` strategy (which needs `x-overflow: reject-publish`), so a
//!   dead-lettered message is never dropped in transit.
//! - `{prefix}rollcall.dead`: quorum queue bound to the dead-letter exchange.
//!
//! Connections use lapin's auto-recovery; a supervisor task around it reconnects from scratch
//! when recovery gives up, so the process never needs a restart after a broker outage.

use std::sync::Arc;
use std::time::Duration;

use domain::EventId;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::{RwLock, watch};
use tokio_util::sync::CancellationToken;

use crate::{BusError, ConsumeOptions, Delivery, DeliveryHandle, Published};

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
}

impl AmqpConfig {
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: String::new(),
            delivery_limit: 20,
            confirm_timeout: Duration::from_secs(5),
        }
    }
}

/// The names of rollcall's exchanges and queues under a prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
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

    /// Every queue name, for tools that inspect or remove them.
    #[must_use]
    pub fn queues(&self) -> Vec<String> {
        vec![self.work_queue(), self.dead_queue()]
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

    let mut work = FieldTable::default();
    work.insert("x-queue-type".into(), text("quorum"));
    work.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(i32::try_from(config.delivery_limit).unwrap_or(i32::MAX)),
    );
    work.insert(
        "x-dead-letter-exchange".into(),
        text(&topology.dead_letter_exchange()),
    );
    work.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    work.insert("x-overflow".into(), text("reject-publish"));
    channel
        .queue_declare(topology.work_queue().as_str().into(), durable_queue, work)
        .await?;
    channel
        .queue_bind(
            topology.work_queue().as_str().into(),
            topology.events_exchange().as_str().into(),
            WORK_ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut dead = FieldTable::default();
    dead.insert("x-queue-type".into(), text("quorum"));
    channel
        .queue_declare(topology.dead_queue().as_str().into(), durable_queue, dead)
        .await?;
    channel
        .queue_bind(
            topology.dead_queue().as_str().into(),
            topology.dead_letter_exchange().as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

async fn connect(config: &AmqpConfig, topology: &Topology) -> lapin::Result<Link> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("rollcall-{}", std::process::id()).as_str().into())
        .enable_auto_recover();
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
        match connect(&shared.config, &shared.topology).await {
            Ok(link) => {
                failures = 0;
                tracing::info!(broker = %redacted, "connected to RabbitMQ");
                *shared.link.write().await = Some(link.clone());
                shared.generation.send_modify(|generation| *generation += 1);
                // Watch the link; lapin recovers short outages by itself, and we start over
                // when it reports the connection closed or failed for good.
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                    let status = link.connection.status();
                    let recovering = status.reconnecting() || status.connecting();
                    if !(link.usable() || recovering) {
                        break;
                    }
                }
                *shared.link.write().await = None;
                if shutdown.is_cancelled() {
                    let _ = link.connection.close(200, "shutdown".into()).await;
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

impl Amqp {
    pub(crate) fn start(config: AmqpConfig, shutdown: CancellationToken) -> Self {
        let topology = Topology::new(&config.prefix);
        let (generation, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            config,
            topology,
            link: RwLock::new(None),
            generation,
        });
        tokio::spawn(supervise(Arc::clone(&shared), shutdown));
        Self { shared }
    }

    async fn link(&self) -> Option<Link> {
        self.shared.link.read().await.clone()
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
        let link = self
            .link()
            .await
            .filter(Link::usable)
            .ok_or_else(|| unavailable("not connected to RabbitMQ"))?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(event_id.to_string().as_str().into());
        let exchange = self.shared.topology.events_exchange();
        let publish = async {
            link.publisher
                .basic_publish(
                    exchange.as_str().into(),
                    WORK_ROUTING_KEY.into(),
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
        match tokio::time::timeout(self.shared.config.confirm_timeout, publish).await {
            Ok(Ok(Confirmation::Ack(None))) => Ok(Published::Queued),
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

    pub(crate) fn consumer(
        &self,
        options: ConsumeOptions,
        shutdown: CancellationToken,
    ) -> AmqpConsumer {
        AmqpConsumer {
            shared: Arc::clone(&self.shared),
            options,
            shutdown,
            subscription: None,
        }
    }
}

/// One channel consuming the work queue, resubscribed after any failure.
pub(crate) struct AmqpConsumer {
    shared: Arc<Shared>,
    options: ConsumeOptions,
    shutdown: CancellationToken,
    subscription: Option<(Channel, lapin::Consumer)>,
}

impl std::fmt::Debug for AmqpConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConsumer")
            .field("subscribed", &self.subscription.is_some())
            .finish_non_exhaustive()
    }
}

impl AmqpConsumer {
    async fn subscribe(&self) -> Result<(Channel, lapin::Consumer), BusError> {
        let link = self
            .shared
            .link
            .read()
            .await
            .clone()
            .filter(Link::usable)
            .ok_or_else(|| unavailable("not connected to RabbitMQ"))?;
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        // Prefetch applies per consumer: `global` has no meaning on quorum queues.
        channel
            .basic_qos(self.options.prefetch, BasicQosOptions { global: false })
            .await
            .map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                self.shared.topology.work_queue().as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: false,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok((channel, consumer))
    }

    pub(crate) async fn next(&mut self) -> Option<Delivery> {
        let mut failures: u32 = 0;
        let mut generation = self.shared.generation.subscribe();
        loop {
            if self.shutdown.is_cancelled() {
                if let Some((channel, _)) = self.subscription.take() {
                    // Closing the channel hands unacknowledged deliveries back to the queue.
                    let _ = channel.close(200, "shutdown".into()).await;
                }
                return None;
            }
            if self.subscription.is_none() {
                match self.subscribe().await {
                    Ok(subscription) => {
                        failures = 0;
                        self.subscription = Some(subscription);
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        if failures == 1 {
                            tracing::debug!(error = %err, "consumer waiting for RabbitMQ");
                        }
                        tokio::select! {
                            () = self.shutdown.cancelled() => {}
                            _ = generation.changed() => {}
                            () = tokio::time::sleep(backoff(failures)) => {}
                        }
                        continue;
                    }
                }
            }
            let Some((_, consumer)) = self.subscription.as_mut() else {
                continue;
            };
            tokio::select! {
                () = self.shutdown.cancelled() => {}
                item = consumer.next() => match item {
                    Some(Ok(delivery)) => return Some(to_delivery(delivery)),
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "consumer channel failed; resubscribing");
                        self.subscription = None;
                    }
                    None => self.subscription = None,
                },
            }
        }
    }
}

fn delivery_count(properties: &BasicProperties) -> u32 {
    let Some(headers) = properties.headers() else {
        return 0;
    };
    match headers.inner().get("x-delivery-count") {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::ShortInt(n)) => u32::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

fn to_delivery(delivery: lapin::message::Delivery) -> Delivery {
    let event_id = delivery
        .properties
        .message_id()
        .as_ref()
        .and_then(|id| id.as_str().parse().ok());
    Delivery {
        event_id,
        attempt: delivery_count(&delivery.properties).saturating_add(1),
        body: delivery.data,
        handle: DeliveryHandle::Amqp(delivery.acker),
    }
}

pub(crate) async fn ack(acker: &lapin::Acker) -> Result<(), BusError> {
    acker
        .ack(BasicAckOptions::default())
        .await
        .map(|_| ())
        .map_err(unavailable)
}

pub(crate) async fn requeue(acker: &lapin::Acker) -> Result<(), BusError> {
    acker
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await
        .map(|_| ())
        .map_err(unavailable)
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
        let topology = Topology::new("t1.");
        assert_eq!(topology.work_queue(), "t1.rollcall.work");
        assert_eq!(topology.events_exchange(), "t1.rollcall.events");
    }
}
