//! The consumer loop: deliveries in, committed effects and acknowledgements out.
//!
//! Deliveries are applied in batches: whatever the queue has handed over (up to
//! [`WorkerOptions::batch_size`]) goes through one transaction, in delivery order, and is
//! acknowledged after the commit. Under light load a batch is a single event, so batching adds
//! no wait; under a burst it turns hundreds of commits into a few. When a batch fails as a whole
//! (a bad event, a lost race, a bug), its events are applied again one by one, each settled on
//! its own, so one event's failure never holds up or dead-letters the others.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, ConsumeOptions, Delivery, FailureKind, Settled};
use directory::Directory;
use domain::{
    CurrentState, Decision, EventEnvelope, ImportId, IntegrationState, IssueKind, OwnerFacts,
    Timestamp,
};
use futures_util::{FutureExt, StreamExt};
use provisioner::{Applied, Item, Mode, ProvisionError, Provisioner};
use store::{CachedIntegration, IntegrationCache};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::lookup::{LookupTarget, ResolvedOwners, Unresolved, resolve};
use crate::{DecisionContext, decide};

/// Events of one batch prepared (owners looked up) at the same time.
const PREPARE_CONCURRENCY: usize = 16;

/// How a worker consumes.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Batches processed at once by this worker.
    pub concurrency: usize,
    /// Most events applied in one transaction.
    pub batch_size: usize,
    pub consume: ConsumeOptions,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            batch_size: 128,
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
    directory: Directory,
    options: WorkerOptions,
    /// Webhook-day sync runs this process has made sure exist.
    webhook_days: Arc<std::sync::Mutex<HashSet<ImportId>>>,
}

/// Why an event was not applied this time.
#[derive(Debug, Clone, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Transient(String),
    /// Transient, and the other side said when to come back.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after: Duration,
    },
    #[error("{0}")]
    Permanent(String),
}

impl From<Unresolved> for Failure {
    fn from(unresolved: Unresolved) -> Self {
        match unresolved {
            Unresolved::Throttled {
                message,
                retry_after,
            } => Failure::Throttled {
                message,
                retry_after,
            },
            Unresolved::Unavailable(message) => Failure::Transient(message),
        }
    }
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

/// An event ready to apply: decoded, its integration found, its owners read.
#[derive(Debug)]
struct Prepared {
    envelope: EventEnvelope,
    owners: Vec<OwnerFacts>,
    /// Owners the CRM's directory could not complete: an issue each.
    problems: HashMap<String, (IssueKind, String)>,
    no_owner: Option<String>,
    integration: Arc<CachedIntegration>,
    attempt: u32,
}

impl Prepared {
    fn mode(&self) -> Mode {
        // Events a revoked integration accepted before revocation are still applied: they
        // were answered 2xx.
        match self.integration.integration.state {
            IntegrationState::Draft => Mode::Shadow,
            IntegrationState::Live | IntegrationState::Revoked => Mode::Live,
        }
    }
}

/// Applies prepared events in one transaction, each decided with its integration's settings.
async fn apply_all(
    provisioner: &Provisioner,
    prepared: &[Prepared],
) -> Result<Vec<Applied>, ProvisionError> {
    let deciders: Vec<_> = prepared
        .iter()
        .map(|event| {
            let settings = &event.integration.integration.settings;
            let context = DecisionContext {
                event_type: &event.envelope.event_type,
                occurred_at: event.envelope.occurred_at,
                roster: event.envelope.import_id.is_some(),
            };
            let problems = &event.problems;
            move |owner: &OwnerFacts, state: &CurrentState| match problems.get(&owner.external_id) {
                Some((kind, detail)) => Decision::Issue {
                    kind: *kind,
                    missing: Vec::new(),
                    detail: detail.clone(),
                },
                None => decide(owner, state, settings, &context),
            }
        })
        .collect();
    let items: Vec<Item<'_>> = prepared
        .iter()
        .zip(&deciders)
        .map(|(event, decider)| Item {
            envelope: &event.envelope,
            owners: &event.owners,
            mode: event.mode(),
            attempt: event.attempt,
            decide: decider,
            no_owner: event.no_owner.as_deref(),
        })
        .collect();
    provisioner.apply_batch(&items).await
}

impl Worker {
    #[must_use]
    pub fn new(
        integrations: IntegrationCache,
        bus: Bus,
        provisioner: Provisioner,
        directory: Directory,
        options: WorkerOptions,
    ) -> Self {
        Self {
            integrations,
            bus,
            provisioner,
            directory,
            options,
            webhook_days: Arc::default(),
        }
    }

    /// Consumes until `shutdown` is cancelled, then finishes the batches in flight.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut consumer = self.bus.consumer(self.options.consume, shutdown.clone());
        let slots = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        // A free slot is taken before deliveries are: while every slot is busy, deliveries
        // gather in the consumer and the next batch is bigger.
        while let Ok(slot) = Arc::clone(&slots).acquire_owned().await {
            let Some(batch) = consumer.next_batch(self.options.batch_size.max(1)).await else {
                break;
            };
            let worker = self.clone();
            in_flight.spawn(async move {
                worker.handle_batch(batch).await;
                drop(slot);
            });
            while in_flight.try_join_next().is_some() {}
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Applies a batch and settles every delivery in it: acknowledged once its effects are
    /// committed, retried after a delay when the failure is transient, dead-lettered when it
    /// is permanent or the attempts are spent. A panic while processing is contained here
    /// (treated as a permanent failure of the event that caused it: a bug does not fix itself
    /// on retry); the consumer carries on.
    async fn handle_batch(&self, deliveries: Vec<Delivery>) {
        let mut ready = Vec::with_capacity(deliveries.len());
        let mut prepared = Vec::with_capacity(deliveries.len());
        // Preparing may ask a CRM's directory (a network round trip per owner not in the
        // cache): the batch's events are prepared side by side, a bounded number at a time so
        // a burst does not turn into a burst against the CRM's API.
        let mut preparing = Vec::with_capacity(deliveries.len());
        for delivery in &deliveries {
            preparing.push(AssertUnwindSafe(self.prepare(delivery)).catch_unwind());
        }
        let outcomes: Vec<_> = futures_util::stream::iter(preparing)
            .buffered(PREPARE_CONCURRENCY)
            .collect()
            .await;
        for (delivery, outcome) in deliveries.into_iter().zip(outcomes) {
            match outcome.unwrap_or_else(|panic| Err(panicked(&*panic))) {
                Ok(event) => {
                    ready.push(delivery);
                    prepared.push(event);
                }
                Err(failure) => self.settle(delivery, Err(failure)).await,
            }
        }
        if prepared.is_empty() {
            return;
        }
        let prepared = Arc::new(prepared);
        let span = tracing::debug_span!("batch", events = prepared.len());
        let provisioner = self.provisioner.clone();
        let batch = Arc::clone(&prepared);
        let applied =
            tokio::spawn(async move { apply_all(&provisioner, &batch).await }.instrument(span))
                .await;
        match applied {
            Ok(Ok(applied)) => {
                // Fault tests crash here: effects committed, deliveries not yet acknowledged.
                #[cfg(feature = "failpoints")]
                fail::fail_point!("worker-after-commit", |_| std::process::abort());
                for (event, applied) in prepared.iter().zip(&applied) {
                    log_applied(event, applied);
                }
                self.acknowledge(ready, &applied).await;
            }
            // A single event failed on its own: settle it with that failure.
            Ok(Err(err)) if ready.len() == 1 => {
                for delivery in ready {
                    self.settle(delivery, Err(err.clone().into())).await;
                }
            }
            Ok(Err(_)) | Err(_) => self.one_by_one(ready, &prepared).await,
        }
    }

    /// Applies each event of a failed batch on its own, in order, and settles it.
    async fn one_by_one(&self, deliveries: Vec<Delivery>, prepared: &Arc<Vec<Prepared>>) {
        for (index, delivery) in deliveries.into_iter().enumerate() {
            let provisioner = self.provisioner.clone();
            let events = Arc::clone(prepared);
            let span = tracing::debug_span!("event", event_id = %prepared[index].envelope.event_id);
            let result = match tokio::spawn(
                async move { apply_all(&provisioner, &events[index..=index]).await }
                    .instrument(span),
            )
            .await
            {
                Ok(Ok(mut applied)) => applied
                    .pop()
                    .ok_or_else(|| Failure::Permanent("nothing was applied".to_owned())),
                Ok(Err(err)) => Err(err.into()),
                Err(join) => Err(match join.try_into_panic() {
                    Ok(panic) => panicked(&*panic),
                    Err(join) => Failure::Transient(format!("processing was cancelled: {join}")),
                }),
            };
            if let Ok(applied) = &result {
                #[cfg(feature = "failpoints")]
                fail::fail_point!("worker-after-commit", |_| std::process::abort());
                log_applied(&prepared[index], applied);
            }
            self.settle(delivery, result).await;
        }
    }

    /// Decodes a delivery, finds its integration and reads its owners.
    async fn prepare(&self, delivery: &Delivery) -> Result<Prepared, Failure> {
        let envelope = EventEnvelope::from_json(&delivery.body)
            .map_err(|err| Failure::Permanent(format!("undecodable envelope: {err}")))?;
        // Whatever preparing logs (a directory lookup, a failure) carries the event's ids.
        let span = tracing::info_span!(
            "event",
            event_id = %envelope.event_id,
            tenant_id = %envelope.tenant_id,
            integration_id = %envelope.integration_id,
            request_id = envelope.request_id.as_deref().unwrap_or_default(),
            attempt = delivery.attempt,
        );
        self.prepare_envelope(envelope, delivery)
            .instrument(span)
            .await
    }

    async fn prepare_envelope(
        &self,
        envelope: EventEnvelope,
        delivery: &Delivery,
    ) -> Result<Prepared, Failure> {
        let integration = self
            .integrations
            .get(envelope.integration_id)
            .await?
            .ok_or_else(|| Failure::Permanent("integration no longer exists".to_owned()))?;
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
        if envelope.import_id.is_some() {
            // A roster row: the importer already read it into owner facts.
            let owner: OwnerFacts = serde_json::from_value(envelope.payload.clone())
                .map_err(|err| Failure::Permanent(format!("import row: {err}")))?;
            return Ok(Prepared {
                envelope,
                owners: vec![owner],
                problems: HashMap::new(),
                no_owner: None,
                integration,
                attempt: delivery.attempt,
            });
        }
        self.note_webhook_day(&envelope).await?;
        let source = integration.integration.source;
        let mapping = sources::FieldMapping::for_source(
            source,
            integration.integration.settings.field_mapping.as_ref(),
        );
        let owners = sources::owners(source, &envelope.payload, &mapping)
            .map_err(|err| Failure::Permanent(format!("payload: {err}")))?;
        let target = LookupTarget {
            directory: &self.directory,
            integration: envelope.integration_id,
            source,
            access: integration.directory(),
        };
        let ResolvedOwners {
            owners,
            problems,
            no_owner,
        } = resolve(target, owners).await?;
        Ok(Prepared {
            envelope,
            owners,
            problems,
            no_owner,
            integration,
            attempt: delivery.attempt,
        })
    }

    /// Makes sure the sync run of the event's webhook day exists, once per day and
    /// integration per process (the event log's rows point at it).
    async fn note_webhook_day(&self, envelope: &EventEnvelope) -> Result<(), Failure> {
        let run = envelope.sync_run();
        let seen = |runs: &std::sync::Mutex<HashSet<ImportId>>| {
            runs.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&run)
        };
        if seen(&self.webhook_days) {
            return Ok(());
        }
        self.provisioner
            .store()
            .ensure_webhook_day_run(
                run,
                envelope.tenant_id,
                envelope.integration_id,
                envelope.received_at,
            )
            .await?;
        let mut runs = self
            .webhook_days
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Days pass: the set is small, but never grows without bound.
        if runs.len() > 10_000 {
            runs.clear();
        }
        runs.insert(run);
        Ok(())
    }

    /// Acknowledges deliveries whose effects are committed.
    async fn acknowledge(&self, deliveries: Vec<Delivery>, applied: &[Applied]) {
        metrics::counter!("rollcall_event_attempts_total").increment(deliveries.len() as u64);
        for applied in applied {
            count_processed(applied);
        }
        if let Err(err) = Delivery::ack_all(deliveries).await {
            // The queue will deliver them again; the event log makes that delivery a no-op.
            tracing::warn!(error = %err, "could not acknowledge deliveries");
        }
    }

    /// Settles one delivery with its result.
    async fn settle(&self, delivery: Delivery, result: Result<Applied, Failure>) {
        let event_id = delivery.event_id;
        let attempt = delivery.attempt;
        metrics::counter!("rollcall_event_attempts_total").increment(1);
        let settled = match &result {
            Ok(applied) => {
                count_processed(applied);
                delivery.ack().await
            }
            Err(failure) => {
                let (kind, not_before) = match failure {
                    Failure::Transient(_) => (FailureKind::Transient, Duration::ZERO),
                    Failure::Throttled { retry_after, .. } => {
                        (FailureKind::Transient, *retry_after)
                    }
                    Failure::Permanent(_) => (FailureKind::Permanent, Duration::ZERO),
                };
                match delivery
                    .fail_not_before(kind, &failure.to_string(), not_before)
                    .await
                {
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
}

/// A panic while processing an event, as its failure: permanent, since a bug does not fix
/// itself on retry.
fn panicked(panic: &(dyn std::any::Any + Send)) -> Failure {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    Failure::Permanent(format!("processing panicked: {message}"))
}

fn count_processed(applied: &Applied) {
    let outcome = match applied {
        Applied::Recorded { outcome, .. } => outcome.as_str(),
        Applied::AlreadyProcessed => "already_processed",
    };
    metrics::counter!("rollcall_events_processed_total", "outcome" => outcome).increment(1);
}

fn log_applied(event: &Prepared, applied: &Applied) {
    let envelope = &event.envelope;
    match applied {
        Applied::Recorded { outcome, .. } => {
            let latency_ms = Timestamp::now().millis() - envelope.received_at.millis();
            // Webhook accepted → effects committed: the latency users feel.
            metrics::histogram!("rollcall_event_processing_seconds")
                .record(latency_ms.max(0) as f64 / 1000.0);
            tracing::info!(
                event_id = %envelope.event_id,
                tenant_id = %envelope.tenant_id,
                integration_id = %envelope.integration_id,
                request_id = envelope.request_id.as_deref().unwrap_or_default(),
                import_id = envelope.import_id.map(|id| id.to_string()).unwrap_or_default(),
                event_type = %envelope.event_type,
                outcome = %outcome,
                latency_ms,
                "event processed"
            );
        }
        Applied::AlreadyProcessed => {
            tracing::debug!(event_id = %envelope.event_id, "event already processed");
        }
    }
}
