//! The embedded queue: jobs in the database (see `store::queue`). Publishing commits a row;
//! consumers claim rows with a visibility timeout, delete them on ack, push them into the
//! future on retry, and move them to the dead-letter store when they are given up. A process
//! that publishes wakes its own consumers at once; consumers in other processes find work by
//! polling.
//!
//! Publishes are committed together: each joins a queue, and a single task writes whatever has
//! gathered in one transaction, answering every publisher after the commit. On SQLite a commit
//! is an fsync and there is one writer, so one commit per webhook capped the ingress at the
//! disk's fsync rate; shared, the batches grow while a commit runs. An idle process still
//! commits a lone publish at once.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use domain::{EventId, Timestamp};
use store::{AttemptError, DeadReason, NewDeadLetter, QueueJob, Store};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    BusError, ConsumeOptions, Delivery, DeliveryHandle, FailureKind, Published, QueueDepths,
    RetryPolicy, Settled,
};

#[derive(Debug)]
pub(crate) struct Embedded {
    store: Store,
    retry: RetryPolicy,
    wake: Arc<Notify>,
    /// Publishes waiting for their commit; the committing task starts with the first publish
    /// (inside the runtime) and ends when the queue is dropped.
    publishes: OnceLock<mpsc::Sender<Publish>>,
}

/// Publishes waiting beyond this make publishers wait for room (back-pressure, not memory).
const PUBLISH_QUEUE: usize = 4096;
/// Most jobs in one commit.
const MAX_PUBLISH_BATCH: usize = 256;

type PublishAnswer = Result<Published, BusError>;

#[derive(Debug)]
struct Publish {
    event_id: EventId,
    envelope: String,
    answer: oneshot::Sender<PublishAnswer>,
}

fn unavailable(err: &store::StoreError) -> BusError {
    BusError::Unavailable(err.to_string())
}

impl Embedded {
    pub(crate) fn new(store: Store, retry: RetryPolicy) -> Self {
        Self {
            store,
            retry,
            wake: Arc::new(Notify::new()),
            publishes: OnceLock::new(),
        }
    }

    /// Answers once the job is committed (or was already queued).
    pub(crate) async fn publish(&self, event_id: EventId, body: Vec<u8>) -> PublishAnswer {
        let envelope = String::from_utf8(body).map_err(|err| BusError::Encode(err.to_string()))?;
        let publishes = self.publishes.get_or_init(|| {
            let (publishes, incoming) = mpsc::channel(PUBLISH_QUEUE);
            tokio::spawn(commit_publishes(
                self.store.clone(),
                Arc::clone(&self.wake),
                incoming,
            ));
            publishes
        });
        let stopped = || BusError::Unavailable("the embedded queue's writer stopped".to_owned());
        let (answer, answered) = oneshot::channel();
        publishes
            .send(Publish {
                event_id,
                envelope,
                answer,
            })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    pub(crate) async fn is_ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    pub(crate) async fn depths(&self) -> Result<QueueDepths, BusError> {
        let stats = self
            .store
            .queue_stats(Timestamp::now())
            .await
            .map_err(|err| unavailable(&err))?;
        Ok(QueueDepths {
            work: stats.ready + stats.in_flight,
            retry: stats.delayed,
            dead: 0,
        })
    }

    pub(crate) fn consumer(
        &self,
        options: ConsumeOptions,
        shutdown: CancellationToken,
    ) -> EmbeddedConsumer {
        EmbeddedConsumer {
            store: self.store.clone(),
            retry: self.retry.clone(),
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
    retry: RetryPolicy,
    wake: Arc<Notify>,
    options: ConsumeOptions,
    shutdown: CancellationToken,
    claimed: VecDeque<QueueJob>,
}

impl EmbeddedConsumer {
    /// A delivery already claimed, if there is one (never waits).
    pub(crate) fn try_next(&mut self) -> Option<Delivery> {
        if self.shutdown.is_cancelled() {
            return None;
        }
        let job = self.claimed.pop_front()?;
        Some(self.deliver(job))
    }

    fn deliver(&self, job: QueueJob) -> Delivery {
        Delivery {
            event_id: Some(job.event_id),
            body: job.envelope.clone().into_bytes(),
            attempt: u32::try_from(job.attempts).unwrap_or(1),
            errors: job.errors.clone(),
            handle: DeliveryHandle::Embedded(JobHandle {
                store: self.store.clone(),
                retry: self.retry.clone(),
                job,
            }),
        }
    }

    pub(crate) async fn next(&mut self) -> Option<Delivery> {
        let mut failures: u32 = 0;
        loop {
            if self.shutdown.is_cancelled() {
                // Claimed but undelivered jobs would become visible again when their claim
                // expires; releasing them now lets another process take them at once.
                for job in self.claimed.drain(..) {
                    if let Err(err) = self.store.queue_release(job.id).await {
                        tracing::debug!(error = %err, job = job.id, "could not release a claimed job; its claim will expire");
                    }
                }
                return None;
            }
            if let Some(job) = self.claimed.pop_front() {
                return Some(self.deliver(job));
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

/// Commits publishes in batches, one transaction at a time, until every sender is dropped.
async fn commit_publishes(store: Store, wake: Arc<Notify>, mut incoming: mpsc::Receiver<Publish>) {
    let mut batch = Vec::with_capacity(MAX_PUBLISH_BATCH);
    while incoming.recv_many(&mut batch, MAX_PUBLISH_BATCH).await > 0 {
        // The envelopes move into the insert; the answers keep only the event ids.
        let jobs: Vec<(EventId, String)> = batch
            .iter_mut()
            .map(|publish| (publish.event_id, std::mem::take(&mut publish.envelope)))
            .collect();
        match store.queue_push_many(jobs, Timestamp::now()).await {
            Ok(mut added) => {
                if !added.is_empty() {
                    wake.notify_waiters();
                }
                for publish in batch.drain(..) {
                    // An event published twice in one batch was added for the first only.
                    let published = if added.remove(&publish.event_id) {
                        Published::Queued
                    } else {
                        Published::AlreadyQueued
                    };
                    let _ = publish.answer.send(Ok(published));
                }
            }
            Err(err) => {
                for publish in batch.drain(..) {
                    let _ = publish.answer.send(Err(unavailable(&err)));
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

/// Acknowledges, retries or dead-letters one claimed job.
#[derive(Debug)]
pub(crate) struct JobHandle {
    store: Store,
    retry: RetryPolicy,
    job: QueueJob,
}

impl JobHandle {
    /// Acknowledges several jobs at once.
    pub(crate) async fn ack_many(jobs: Vec<JobHandle>) -> Result<(), BusError> {
        let Some(first) = jobs.first() else {
            return Ok(());
        };
        let ids: Vec<i64> = jobs.iter().map(|handle| handle.job.id).collect();
        first
            .store
            .queue_ack_many(&ids)
            .await
            .map_err(|err| unavailable(&err))
    }

    pub(crate) async fn ack(self) -> Result<(), BusError> {
        self.store
            .queue_ack(self.job.id)
            .await
            .map_err(|err| unavailable(&err))
    }

    pub(crate) async fn fail(
        self,
        kind: FailureKind,
        attempt: u32,
        errors: Vec<AttemptError>,
        not_before: Duration,
    ) -> Result<Settled, BusError> {
        let now = Timestamp::now();
        if kind == FailureKind::Transient && self.retry.retries(attempt) {
            let delay = self.retry.delay_at_least(attempt, not_before);
            self.store
                .queue_retry(self.job.id, now.plus(delay), &errors)
                .await
                .map_err(|err| unavailable(&err))?;
            return Ok(Settled::Retrying { after: delay });
        }
        let reason = match kind {
            FailureKind::Permanent => DeadReason::Permanent,
            FailureKind::Transient => DeadReason::AttemptsExhausted,
        };
        let dead = NewDeadLetter {
            event_id: self.job.event_id,
            envelope: self.job.envelope.clone(),
            errors,
            attempts: i32::try_from(attempt).unwrap_or(i32::MAX),
            reason,
        };
        self.store
            .dead_letter_job(self.job.id, &dead, now)
            .await
            .map_err(|err| unavailable(&err))?;
        Ok(Settled::DeadLettered)
    }
}
