//! The event queue: publish an accepted event durably, consume it with explicit
//! acknowledgement, retry it later, or give up on it. Two implementations behind one API:
//! RabbitMQ (lapin: quorum queue, publisher confirms, manual acks) and the embedded queue kept
//! in the database (visibility timeout, attempts, delays).
//!
//! This crate is the only one that knows AMQP. It must never buffer an accepted event in
//! memory: `publish` returns only once the broker confirmed the message (or the database
//! committed it), and an error means the caller must not answer 2xx.

mod amqp;
mod embedded;

use std::sync::Arc;
use std::time::Duration;

use domain::{EventEnvelope, EventId};
use store::Store;
use tokio_util::sync::CancellationToken;

pub use amqp::{AmqpConfig, Topology};

/// Why an event could not be queued or acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The broker or database is unreachable, refused the message, or did not confirm in
    /// time. The event is not durable; the sender must retry.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("could not encode the event: {0}")]
    Encode(String),
}

/// The outcome of a successful publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Queued,
    /// The same event is already waiting in the queue (embedded queue only: RabbitMQ cannot
    /// tell, and the consumer's idempotency covers it).
    AlreadyQueued,
}

/// How a consumer takes work.
#[derive(Debug, Clone, Copy)]
pub struct ConsumeOptions {
    /// Deliveries held unacknowledged at once.
    pub prefetch: u16,
    /// Embedded queue: how long a claimed job stays invisible to other consumers.
    pub visibility_timeout: Duration,
    /// Embedded queue: how often to look for work when nothing signalled new events.
    pub poll_interval: Duration,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self {
            prefetch: 32,
            visibility_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// The queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bus {
    kind: Arc<BusKind>,
}

#[derive(Debug)]
enum BusKind {
    Embedded(embedded::Embedded),
    Amqp(amqp::Amqp),
}

impl Bus {
    /// The database-backed queue.
    #[must_use]
    pub fn embedded(store: Store) -> Self {
        Self {
            kind: Arc::new(BusKind::Embedded(embedded::Embedded::new(store))),
        }
    }

    /// RabbitMQ. Returns at once; a background task connects, declares the topology and
    /// reconnects after failures until `shutdown` is cancelled.
    #[must_use]
    pub fn amqp(config: AmqpConfig, shutdown: CancellationToken) -> Self {
        Self {
            kind: Arc::new(BusKind::Amqp(amqp::Amqp::start(config, shutdown))),
        }
    }

    /// `"rabbitmq"` or `"embedded"`.
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        match &*self.kind {
            BusKind::Embedded(_) => "embedded",
            BusKind::Amqp(_) => "rabbitmq",
        }
    }

    /// Makes the event durable. Returns only after the broker's confirm or the database's
    /// commit; any error means the event may not be durable.
    pub async fn publish(&self, envelope: &EventEnvelope) -> Result<Published, BusError> {
        let body = envelope
            .to_json()
            .map_err(|err| BusError::Encode(err.to_string()))?;
        match &*self.kind {
            BusKind::Embedded(queue) => queue.publish(envelope.event_id, &body).await,
            BusKind::Amqp(broker) => broker.publish(envelope.event_id, &body).await,
        }
    }

    /// Whether publishing can succeed now (for `/readyz`).
    pub async fn is_ready(&self) -> bool {
        match &*self.kind {
            BusKind::Embedded(queue) => queue.is_ready().await,
            BusKind::Amqp(broker) => broker.is_ready(),
        }
    }

    /// A consumer that yields deliveries until `shutdown` is cancelled.
    #[must_use]
    pub fn consumer(&self, options: ConsumeOptions, shutdown: CancellationToken) -> Consumer {
        let inner = match &*self.kind {
            BusKind::Embedded(queue) => ConsumerKind::Embedded(queue.consumer(options, shutdown)),
            BusKind::Amqp(broker) => ConsumerKind::Amqp(broker.consumer(options, shutdown)),
        };
        Consumer { inner }
    }
}

/// A stream of deliveries.
#[derive(Debug)]
pub struct Consumer {
    inner: ConsumerKind,
}

#[derive(Debug)]
enum ConsumerKind {
    Embedded(embedded::EmbeddedConsumer),
    Amqp(amqp::AmqpConsumer),
}

impl Consumer {
    /// The next delivery; `None` once shutdown was requested.
    pub async fn next(&mut self) -> Option<Delivery> {
        match &mut self.inner {
            ConsumerKind::Embedded(consumer) => consumer.next().await,
            ConsumerKind::Amqp(consumer) => consumer.next().await,
        }
    }
}

/// One delivery of one event. Exactly one of `ack` or `retry` must be called; dropping it
/// unacknowledged makes the queue redeliver it later (after the visibility timeout, or when
/// the channel closes).
#[derive(Debug)]
pub struct Delivery {
    pub event_id: Option<EventId>,
    pub body: Vec<u8>,
    /// 1 for the first delivery.
    pub attempt: u32,
    handle: DeliveryHandle,
}

#[derive(Debug)]
enum DeliveryHandle {
    Embedded(embedded::JobHandle),
    Amqp(lapin::Acker),
}

impl Delivery {
    /// The event is done with (applied, ignored, or recorded as failed): remove it.
    pub async fn ack(self) -> Result<(), BusError> {
        match self.handle {
            DeliveryHandle::Embedded(job) => job.ack().await,
            DeliveryHandle::Amqp(acker) => amqp::ack(&acker).await,
        }
    }

    /// Processing failed transiently: deliver it again after `delay`.
    pub async fn retry(self, delay: Duration, error: &str) -> Result<(), BusError> {
        match self.handle {
            DeliveryHandle::Embedded(job) => job.retry(delay, error).await,
            DeliveryHandle::Amqp(acker) => amqp::requeue(&acker).await,
        }
    }
}
