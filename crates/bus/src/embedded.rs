//! The embedded queue: jobs in the database (see `store::queue`). Publishing commits a row;
//! consumers claim rows with a visibility timeout, delete them on ack, and push them into the
//! future on retry. A process that publishes wakes its own consumers at once; consumers in
//! other processes find work by polling.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use domain::{EventId, Timestamp};
use store::{AttemptError, QueueJob, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{BusError, ConsumeOptions, Delivery, DeliveryHandle, Published};

#[derive(Debug)]
pub(crate) struct Embedded {
    store: Store,
    wake: Arc<Notify>,
}

fn unavailable(err: &store::StoreError) -> BusError {
    BusError::Unavailable(err.to_string())
}

impl Embedded {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
        }
    }

    pub(crate) async fn publish(
        &self,
        event_id: EventId,
        body: &[u8],
    ) -> Result<Published, BusError> {
        let text = std::str::from_utf8(body).map_err(|err| BusError::Encode(err.to_string()))?;
        let inserted = self
            .store
            .queue_push(event_id, text, Timestamp::now())
            .await
            .map_err(|err| unavailable(&err))?;
        if inserted {
            self.wake.notify_waiters();
            Ok(Published::Queued)
        } else {
            Ok(Published::AlreadyQueued)
        }
    }

    pub(crate) async fn is_ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    pub(crate) fn consumer(
        &self,
        options: ConsumeOptions,
        shutdown: CancellationToken,
    ) -> EmbeddedConsumer {
        EmbeddedConsumer {
            store: self.store.clone(),
            wake: Arc::clone(&self.wake),
            options,
            shutdown,
            claimed: VecDeque::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct EmbeddedConsumer {
    store: Store,
    wake: Arc<Notify>,
    options: ConsumeOptions,
    shutdown: CancellationToken,
    claimed: VecDeque<QueueJob>,
}

impl EmbeddedConsumer {
    pub(crate) async fn next(&mut self) -> Option<Delivery> {
        let mut failures: u32 = 0;
        loop {
            if self.shutdown.is_cancelled() {
                // Claimed but undelivered jobs become visible again when their claim expires;
                // releasing them now lets another process take them at once.
                for job in self.claimed.drain(..) {
                    if let Err(err) = self.store.queue_release(job.id).await {
                        tracing::debug!(error = %err, job = job.id, "could not release a claimed job; its claim will expire");
                    }
                }
                return None;
            }
            if let Some(job) = self.claimed.pop_front() {
                return Some(Delivery {
                    event_id: Some(job.event_id),
                    body: job.envelope.clone().into_bytes(),
                    attempt: u32::try_from(job.attempts).unwrap_or(1),
                    handle: DeliveryHandle::Embedded(JobHandle {
                        store: self.store.clone(),
                        job,
                    }),
                });
            }
            // Register interest before looking, so a publish between the look and the wait
            // still wakes us.
            let woken = self.wake.notified();
            match self
                .store
                .queue_claim(
                    u64::from(self.options.prefetch),
                    self.options.visibility_timeout,
                    Timestamp::now(),
                )
                .await
            {
                Ok(jobs) if !jobs.is_empty() => {
                    failures = 0;
                    self.claimed.extend(jobs);
                }
                Ok(_) => {
                    tokio::select! {
                        () = self.shutdown.cancelled() => {}
                        () = woken => {}
                        () = tokio::time::sleep(self.options.poll_interval) => {}
                    }
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    let pause = backoff(failures);
                    tracing::warn!(error = %err, retry_in_ms = pause.as_millis(), "embedded queue: cannot claim jobs");
                    tokio::select! {
                        () = self.shutdown.cancelled() => {}
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
}

/// 100 ms doubling up to 5 s.
fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_millis(100u64 << exp).min(Duration::from_secs(5))
}

/// Acknowledges or retries one claimed job.
#[derive(Debug)]
pub(crate) struct JobHandle {
    store: Store,
    job: QueueJob,
}

impl JobHandle {
    pub(crate) async fn ack(self) -> Result<(), BusError> {
        self.store
            .queue_ack(self.job.id)
            .await
            .map_err(|err| unavailable(&err))
    }

    pub(crate) async fn retry(self, delay: Duration, error: &str) -> Result<(), BusError> {
        let now = Timestamp::now();
        self.store
            .queue_retry(
                &self.job,
                now.plus(delay),
                AttemptError {
                    at: now,
                    error: error.to_owned(),
                },
            )
            .await
            .map_err(|err| unavailable(&err))
    }
}
