//! Consuming from RabbitMQ: the resubscribing consumer, settling a delivery (ack, retry through
//! a TTL queue, dead-letter), and the drainer that moves dead letters into the database.

use std::sync::Arc;
use std::time::Duration;

use domain::{EventId, Timestamp};
use futures_util::{FutureExt, StreamExt};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use store::{AttemptError, DeadReason, NewDeadLetter};
use tokio_util::sync::CancellationToken;

use super::{Shared, backoff, properties, text, unavailable};
use crate::{BusError, ConsumeOptions, Delivery, DeliveryHandle, FailureKind, Settled};

const ATTEMPT_HEADER: &str = "x-rollcall-attempt";
const ERRORS_HEADER: &str = "x-rollcall-errors";
const REASON_HEADER: &str = "x-rollcall-reason";

/// One channel consuming a queue (the work queue; or the dead-letter queue, for the drainer),
/// resubscribed after any failure.
pub(crate) struct AmqpConsumer {
    shared: Arc<Shared>,
    queue: String,
    options: ConsumeOptions,
    shutdown: CancellationToken,
    subscription: Option<(Channel, lapin::Consumer)>,
}

impl std::fmt::Debug for AmqpConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConsumer")
            .field("queue", &self.queue)
            .field("subscribed", &self.subscription.is_some())
            .finish_non_exhaustive()
    }
}

impl AmqpConsumer {
    pub(super) fn new(
        shared: Arc<Shared>,
        queue: String,
        options: ConsumeOptions,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            shared,
            queue,
            options,
            shutdown,
            subscription: None,
        }
    }

    async fn subscribe(&self) -> Result<(Channel, lapin::Consumer), BusError> {
        let link = self.shared.usable_link().await?;
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
                self.queue.as_str().into(),
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

    /// The next event to process; `None` once shutdown was requested.
    pub(crate) async fn next(&mut self) -> Option<Delivery> {
        let delivery = self.next_raw().await?;
        Some(to_delivery(&self.shared, delivery))
    }

    /// A delivery the broker has already pushed, if there is one (never waits).
    pub(crate) fn try_next(&mut self) -> Option<Delivery> {
        if self.shutdown.is_cancelled() {
            return None;
        }
        let (_, consumer) = self.subscription.as_mut()?;
        match consumer.next().now_or_never() {
            Some(Some(Ok(delivery))) => Some(to_delivery(&self.shared, delivery)),
            // A failed or ended stream is resubscribed by the next `next`.
            Some(Some(Err(_)) | None) => {
                self.subscription = None;
                None
            }
            None => None,
        }
    }

    async fn next_raw(&mut self) -> Option<lapin::message::Delivery> {
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
                            tracing::debug!(error = %err, queue = %self.queue, "consumer waiting for RabbitMQ");
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
                    Some(Ok(delivery)) => return Some(delivery),
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, queue = %self.queue, "consumer channel failed; resubscribing");
                        self.subscription = None;
                    }
                    None => self.subscription = None,
                },
            }
        }
    }
}

fn header<'a>(properties: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    properties.headers().as_ref()?.inner().get(name)
}

fn header_count(properties: &BasicProperties, name: &str) -> u32 {
    match header(properties, name) {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::ShortInt(n)) => u32::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    match header(properties, name)? {
        AMQPValue::LongString(text) => Some(String::from_utf8_lossy(text.as_bytes()).into_owned()),
        AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
        _ => None,
    }
}

fn errors_of(properties: &BasicProperties) -> Vec<AttemptError> {
    header_text(properties, ERRORS_HEADER)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

fn event_id_of(properties: &BasicProperties) -> Option<EventId> {
    properties
        .message_id()
        .as_ref()
        .and_then(|id| id.as_str().parse().ok())
}

fn to_delivery(shared: &Arc<Shared>, delivery: lapin::message::Delivery) -> Delivery {
    let props = &delivery.properties;
    // Attempts already failed (carried across retries) plus redeliveries of this copy.
    let attempt = header_count(props, ATTEMPT_HEADER)
        .saturating_add(header_count(props, "x-delivery-count"))
        .saturating_add(1);
    let event_id = event_id_of(props);
    Delivery {
        event_id,
        attempt,
        errors: errors_of(props),
        body: delivery.data.clone(),
        handle: DeliveryHandle::Amqp(AmqpHandle {
            shared: Arc::clone(shared),
            acker: delivery.acker,
            body: delivery.data,
            event_id,
        }),
    }
}

/// Acknowledges, retries or dead-letters one delivery.
pub(crate) struct AmqpHandle {
    shared: Arc<Shared>,
    acker: lapin::Acker,
    body: Vec<u8>,
    event_id: Option<EventId>,
}

impl std::fmt::Debug for AmqpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpHandle")
            .field("event_id", &self.event_id)
            .finish_non_exhaustive()
    }
}

impl AmqpHandle {
    pub(crate) async fn ack(self) -> Result<(), BusError> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Republishes the event to a retry queue or the dead-letter exchange (confirmed), then
    /// acknowledges the original. If the republish fails, the original goes back to the work
    /// queue instead (and counts toward the broker's delivery limit).
    pub(crate) async fn fail(
        self,
        kind: FailureKind,
        attempt: u32,
        errors: Vec<AttemptError>,
        not_before: Duration,
    ) -> Result<Settled, BusError> {
        let retry = &self.shared.config.retry;
        let mut headers = FieldTable::default();
        headers.insert(
            ATTEMPT_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(attempt)),
        );
        headers.insert(
            ERRORS_HEADER.into(),
            text(&serde_json::to_string(&errors).unwrap_or_else(|_| "[]".to_owned())),
        );
        let event_id = self.event_id.unwrap_or_default();
        let (exchange, routing_key, settled) =
            if kind == FailureKind::Transient && retry.retries(attempt) {
                let delay = retry.delay_at_least(attempt, not_before);
                (
                    String::new(),
                    self.shared.topology.retry_queue(delay),
                    Settled::Retrying { after: delay },
                )
            } else {
                let reason = match kind {
                    FailureKind::Permanent => "permanent",
                    FailureKind::Transient => "attempts_exhausted",
                };
                headers.insert(REASON_HEADER.into(), text(reason));
                (
                    self.shared.topology.dead_letter_exchange(),
                    String::new(),
                    Settled::DeadLettered,
                )
            };
        let published = self
            .shared
            .publish_confirmed(
                &exchange,
                &routing_key,
                &self.body,
                properties(event_id, Some(headers)),
            )
            .await;
        match published {
            Ok(()) => {
                self.acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(unavailable)?;
                Ok(settled)
            }
            Err(err) => {
                let _ = self
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await;
                Err(err)
            }
        }
    }
}

/// What the drainer stores for a message a worker (or the broker) dead-lettered.
fn dead_letter_of(delivery: &lapin::message::Delivery) -> NewDeadLetter {
    let props = &delivery.properties;
    let envelope = String::from_utf8_lossy(&delivery.data).into_owned();
    let event_id = event_id_of(props)
        .or_else(|| {
            domain::EventEnvelope::from_json(&delivery.data)
                .ok()
                .map(|e| e.event_id)
        })
        .unwrap_or_default();
    let reason = match header_text(props, REASON_HEADER).as_deref() {
        Some("permanent") => DeadReason::Permanent,
        Some("attempts_exhausted") => DeadReason::AttemptsExhausted,
        // No reason header: the broker gave up after `x-delivery-limit` redeliveries.
        _ => DeadReason::DeliveryLimit,
    };
    let mut errors = errors_of(props);
    if reason == DeadReason::DeliveryLimit {
        errors.push(AttemptError {
            at: Timestamp::now(),
            error: "the broker's delivery limit was reached (consumers kept failing before acknowledging it)"
                .to_owned(),
        });
    }
    let attempts =
        header_count(props, ATTEMPT_HEADER).max(u32::try_from(errors.len()).unwrap_or(u32::MAX));
    NewDeadLetter {
        event_id,
        envelope,
        errors,
        attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
        reason,
    }
}

/// Consumes the dead-letter queue into the database's dead-letter store, acknowledging each
/// message only once it is stored (storing is idempotent on the event id).
pub(super) async fn drain_dead_letters(shared: Arc<Shared>, shutdown: CancellationToken) {
    let queue = shared.topology.dead_queue();
    let store = shared.store.clone();
    let mut consumer = AmqpConsumer::new(
        shared,
        queue,
        ConsumeOptions {
            prefetch: 16,
            ..ConsumeOptions::default()
        },
        shutdown.clone(),
    );
    let mut failures: u32 = 0;
    while let Some(delivery) = consumer.next_raw().await {
        let dead = dead_letter_of(&delivery);
        match store.save_dead_letter(&dead, Timestamp::now()).await {
            Ok(()) => {
                failures = 0;
                tracing::warn!(event_id = %dead.event_id, reason = ?dead.reason, attempts = dead.attempts, "event dead-lettered");
                metrics::counter!("rollcall_dead_letters_stored_total").increment(1);
                if let Err(err) = delivery.acker.ack(BasicAckOptions::default()).await {
                    tracing::debug!(error = %err, "dead letter stored but not acknowledged; storing it again is harmless");
                }
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                let pause = backoff(failures).max(Duration::from_millis(500));
                tracing::warn!(error = %err, retry_in_ms = pause.as_millis(), "cannot store a dead letter yet; it stays in the queue");
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(pause) => {}
                }
                let _ = delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await;
            }
        }
    }
}
