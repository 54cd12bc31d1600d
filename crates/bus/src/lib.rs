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
mod retry;

use std::sync::Arc;
use std::time::Duration;

use domain::{EventEnvelope, EventId};
use store::{AttemptError, Store};
use tokio_util::sync::CancellationToken;

pub use amqp::{AmqpConfig, Topology};
pub use retry::RetryPolicy;

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

/// How a failed delivery should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// May succeed later (a database or broker outage, a timeout, a CRM's 429/5xx): retried
    /// after a delay until the attempt limit, then dead-lettered.
    Transient,
    /// Can never succeed as is (an undecodable event, an unreadable payload, a bug): straight
    /// to the dead-letter store, to be replayed once the cause is fixed.
    Permanent,
}

/// What became of a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Back on the queue after this delay.
    Retrying { after: Duration },
    /// In the dead-letter store.
    DeadLettered,
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
    pub fn embedded(store: Store, retry: RetryPolicy) -> Self {
        Self {
            kind: Arc::new(BusKind::Embedded(embedded::Embedded::new(store, retry))),
        }
    }

    /// RabbitMQ. Returns at once; a background task connects, declares the topology and
    /// reconnects after failures until `shutdown` is cancelled. `store` receives dead letters.
    #[must_use]
    pub fn amqp(config: AmqpConfig, store: Store, shutdown: CancellationToken) -> Self {
        Self {
            kind: Arc::new(BusKind::Amqp(amqp::Amqp::start(config, store, shutdown))),
        }
    }

    /// Moves messages the broker dead-lettered into the database's dead-letter store until
    /// `shutdown` is cancelled (RabbitMQ only; the embedded queue dead-letters in place).
    pub async fn drain_dead_letters(&self, shutdown: CancellationToken) {
        match &*self.kind {
            BusKind::Embedded(_) => shutdown.cancelled().await,
            BusKind::Amqp(broker) => broker.drain_dead_letters(shutdown).await,
        }
    }

    /// Messages waiting in the work, retry and dead-letter queues (for metrics).
    pub async fn depths(&self) -> Result<QueueDepths, BusError> {
        match &*self.kind {
            BusKind::Embedded(queue) => queue.depths().await,
            BusKind::Amqp(broker) => broker.depths().await,
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
        let published = match &*self.kind {
            BusKind::Embedded(queue) => queue.publish(envelope.event_id, body).await,
            BusKind::Amqp(broker) => broker.publish(envelope.event_id, &body).await,
        };
        match &published {
            Ok(_) => metrics::counter!("rollcall_queue_publish_confirms_total").increment(1),
            Err(_) => metrics::counter!("rollcall_queue_publish_failures_total").increment(1),
        }
        published
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

    /// The next delivery, with up to `max - 1` more that are already at hand (prefetched):
    /// waits for the first only, so a quiet queue yields batches of one.
    pub async fn next_batch(&mut self, max: usize) -> Option<Vec<Delivery>> {
        let first = self.next().await?;
        let mut batch = vec![first];
        while batch.len() < max {
            let more = match &mut self.inner {
                ConsumerKind::Embedded(consumer) => consumer.try_next(),
                ConsumerKind::Amqp(consumer) => consumer.try_next(),
            };
            match more {
                Some(delivery) => batch.push(delivery),
                None => break,
            }
        }
        Some(batch)
    }
}

/// Queue depths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Ready to be consumed (or being consumed).
    pub work: u64,
    /// Waiting out a retry delay.
    pub retry: u64,
    /// Dead-lettered and not yet moved into the database (RabbitMQ), always 0 embedded.
    pub dead: u64,
}

/// One delivery of one event. Exactly one of `ack` or `fail` must be called; dropping it
/// unacknowledged makes the queue redeliver it later (after the visibility timeout, or when
/// the channel closes).
#[derive(Debug)]
pub struct Delivery {
    pub event_id: Option<EventId>,
    pub body: Vec<u8>,
    /// 1 for the first delivery; every earlier failed attempt or redelivery counts.
    pub attempt: u32,
    /// The errors of earlier attempts.
    pub errors: Vec<AttemptError>,
    handle: DeliveryHandle,
}

#[derive(Debug)]
enum DeliveryHandle {
    Embedded(embedded::JobHandle),
    Amqp(amqp::AmqpHandle),
}

impl Delivery {
    /// The event is done with (applied or recorded): remove it.
    pub async fn ack(self) -> Result<(), BusError> {
        match self.handle {
            DeliveryHandle::Embedded(job) => job.ack().await,
            DeliveryHandle::Amqp(handle) => handle.ack().await,
        }
    }

    /// Acknowledges several deliveries (on the embedded queue, in one statement).
    pub async fn ack_all(deliveries: Vec<Delivery>) -> Result<(), BusError> {
        let mut jobs = Vec::new();
        let mut result = Ok(());
        for delivery in deliveries {
            match delivery.handle {
                DeliveryHandle::Embedded(job) => jobs.push(job),
                DeliveryHandle::Amqp(handle) => {
                    if let Err(err) = handle.ack().await {
                        result = Err(err);
                    }
                }
            }
        }
        embedded::JobHandle::ack_many(jobs).await.and(result)
    }

    /// Processing failed: retry it after a delay, or, when the failure is permanent or the
    /// attempts are spent, move it to the dead-letter store.
    pub async fn fail(self, kind: FailureKind, error: &str) -> Result<Settled, BusError> {
        self.fail_not_before(kind, error, Duration::ZERO).await
    }

    /// As [`Delivery::fail`], for a failure that says when to try again (a rate limit's
    /// `Retry-After`): a retry waits at least `not_before`.
    pub async fn fail_not_before(
        self,
        kind: FailureKind,
        error: &str,
        not_before: Duration,
    ) -> Result<Settled, BusError> {
        let mut errors = self.errors;
        errors.push(AttemptError {
            at: domain::Timestamp::now(),
            error: error.chars().take(2000).collect(),
        });
        match self.handle {
            DeliveryHandle::Embedded(job) => job.fail(kind, self.attempt, errors, not_before).await,
            DeliveryHandle::Amqp(handle) => {
                handle.fail(kind, self.attempt, errors, not_before).await
            }
        }
    }
}
