//! The consumer loop: deliveries in, committed effects and acknowledgements out.

use std::sync::Arc;

use bus::{Bus, ConsumeOptions, Delivery, FailureKind, Settled};
use domain::{EventEnvelope, IntegrationState, Timestamp};
use provisioner::{Applied, Mode, ProvisionError, Provisioner};
use store::IntegrationCache;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{DecisionContext, decide};

/// How a worker consumes.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Events processed at once by this worker.
    pub concurrency: usize,
    pub consume: ConsumeOptions,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            consume: ConsumeOptions::default(),
        }
    }
}

/// Consumes events and provisions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Worker {
    integrations: IntegrationCache,
    bus: Bus,
    provisioner: Provisioner,
    options: WorkerOptions,
}

/// Why an event was not applied this time.
#[derive(Debug, Clone, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

impl From<ProvisionError> for Failure {
    fn from(err: ProvisionError) -> Self {
        match err {
            ProvisionError::Transient(message) => Failure::Transient(message),
            ProvisionError::Permanent(message) => Failure::Permanent(message),
        }
    }
}

impl From<store::StoreError> for Failure {
    fn from(err: store::StoreError) -> Self {
        if err.is_transient() {
            Failure::Transient(err.to_string())
        } else {
            Failure::Permanent(err.to_string())
        }
    }
}

impl Worker {
    #[must_use]
    pub fn new(
        integrations: IntegrationCache,
        bus: Bus,
        provisioner: Provisioner,
        options: WorkerOptions,
    ) -> Self {
        Self {
            integrations,
            bus,
            provisioner,
            options,
        }
    }

    /// Consumes until `shutdown` is cancelled, then finishes the events in flight.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut consumer = self.bus.consumer(self.options.consume, shutdown.clone());
        let slots = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        while let Some(delivery) = consumer.next().await {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let worker = self.clone();
            in_flight.spawn(async move {
                worker.handle(delivery).await;
                drop(slot);
            });
            while in_flight.try_join_next().is_some() {}
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Processes one delivery and settles it: acknowledged once its effects are committed,
    /// retried after a delay when the failure is transient, dead-lettered when it is permanent
    /// or the attempts are spent. A panic while processing is contained here (treated as a
    /// permanent failure: a bug does not fix itself on retry); the consumer carries on.
    async fn handle(&self, delivery: Delivery) {
        let worker = self.clone();
        let body = delivery.body.clone();
        let attempt = delivery.attempt;
        let result = match tokio::spawn(async move { worker.process(&body, attempt).await }).await {
            Ok(result) => result,
            Err(join) => Err(Failure::Permanent(format!("processing panicked: {join}"))),
        };
        let event_id = delivery.event_id;
        metrics::counter!("rollcall_event_attempts_total").increment(1);
        let settled = match &result {
            Ok(applied) => {
                let outcome = match applied {
                    Applied::Recorded { outcome, .. } => outcome.as_str(),
                    Applied::AlreadyProcessed => "already_processed",
                };
                metrics::counter!("rollcall_events_processed_total", "outcome" => outcome)
                    .increment(1);
                // Fault tests crash here: effects committed, delivery not yet acknowledged.
                #[cfg(feature = "failpoints")]
                fail::fail_point!("worker-after-commit", |_| std::process::abort());
                delivery.ack().await
            }
            Err(failure) => {
                let kind = match failure {
                    Failure::Transient(_) => FailureKind::Transient,
                    Failure::Permanent(_) => FailureKind::Permanent,
                };
                match delivery.fail(kind, &failure.to_string()).await {
                    Ok(Settled::Retrying { after }) => {
                        metrics::counter!("rollcall_event_retries_total").increment(1);
                        tracing::warn!(event_id = ?event_id, attempt, retry_in_ms = after.as_millis(), error = %failure, "event not processed; will retry");
                        Ok(())
                    }
                    Ok(Settled::DeadLettered) => {
                        metrics::counter!("rollcall_events_dead_lettered_total").increment(1);
                        tracing::warn!(event_id = ?event_id, attempt, error = %failure, "event given up: moved to the dead-letter store");
                        Ok(())
                    }
                    Err(err) => Err(err),
                }
            }
        };
        if let Err(err) = settled {
            // The queue will deliver it again; the event log makes that delivery a no-op.
            tracing::warn!(event_id = ?event_id, error = %err, "could not settle the delivery");
        }
    }

    async fn process(&self, body: &[u8], attempt: u32) -> Result<Applied, Failure> {
        let envelope = EventEnvelope::from_json(body)
            .map_err(|err| Failure::Permanent(format!("undecodable envelope: {err}")))?;
        let span = tracing::info_span!(
            "event",
            event_id = %envelope.event_id,
            integration_id = %envelope.integration_id,
            tenant_id = %envelope.tenant_id,
        );
        self.apply(envelope, attempt).instrument(span).await
    }

    async fn apply(&self, envelope: EventEnvelope, attempt: u32) -> Result<Applied, Failure> {
        let cached = self
            .integrations
            .get(envelope.integration_id)
            .await?
            .ok_or_else(|| Failure::Permanent("integration no longer exists".to_owned()))?;
        let integration = &cached.integration;
        // Fault tests make chosen events (delivery ids starting with "poison") fail the way a
        // persistent transient fault would.
        #[cfg(feature = "failpoints")]
        fail::fail_point!(
            "process-event",
            envelope.provider_event_id.starts_with("poison"),
            |_| Err(Failure::Transient(
                "injected failure (process-event failpoint)".to_owned()
            ))
        );
        let mapping = sources::FieldMapping::for_source(
            integration.source,
            integration.settings.field_mapping.as_ref(),
        );
        let owners = sources::owners(integration.source, &envelope.payload, &mapping)
            .map_err(|err| Failure::Permanent(format!("payload: {err}")))?;
        // Events a revoked integration accepted before revocation are still applied: they
        // were answered 2xx.
        let mode = match integration.state {
            IntegrationState::Draft => Mode::Shadow,
            IntegrationState::Live | IntegrationState::Revoked => Mode::Live,
        };
        let settings = &integration.settings;
        let context = DecisionContext {
            event_type: &envelope.event_type,
            occurred_at: envelope.occurred_at,
        };
        let applied = self
            .provisioner
            .apply(&envelope, &owners, mode, attempt, |owner, state| {
                decide(owner, state, settings, &context)
            })
            .await?;
        match &applied {
            Applied::Recorded { outcome, .. } => tracing::debug!(
                outcome = %outcome,
                latency_ms = Timestamp::now().millis() - envelope.received_at.millis(),
                "event processed"
            ),
            Applied::AlreadyProcessed => tracing::debug!("event already processed"),
        }
        Ok(applied)
    }
}
