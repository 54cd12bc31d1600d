//! "Was this event already processed?", answered from memory when it can be, and otherwise asked
//! of the event log for many requests at once.
//!
//! Most questions end in memory: [`KnownEvents`] knows which ids the log certainly lacks, and
//! a webhook whose events are all among them is not held up at all. The rest, a "maybe" (an
//! event sent again, or about one in a hundred new ones) and every question until the log has
//! been read at start-up, go to the log.
//!
//! There, under load, dozens of questions arrive while one query runs; asking for each on its
//! own would cost a database round trip, a pooled connection and a backend's CPU per webhook.
//! Instead every question joins a queue, and a single task sends whatever has gathered as one
//! query, with few such queries in flight. When the ingress is idle a question goes out alone
//! and at once, so batching adds no delay: the batches grow only while earlier queries run. On
//! PostgreSQL one query is in flight, on a connection kept for it ([`store::EventLogProbe`]),
//! and queries start at most once a millisecond: each costs a round trip and the server's CPU,
//! so fewer and bigger batches answer more webhooks. SQLite answers in-process, from several
//! reader connections at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use domain::EventId;
use store::{Backend, EventLogProbe, Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::known::{self, KnownEvents};

/// Questions waiting beyond this make askers wait for room (back-pressure, not memory growth).
const QUEUE: usize = 4096;
/// Most ids in one query.
const MAX_BATCH: usize = 512;
/// Queries in flight at once, by database.
const fn in_flight(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 1,
        Backend::Sqlite => 4,
    }
}

/// Least time between the starts of two queries, by database. On PostgreSQL a query answers
/// in a fraction of a millisecond, so batches sized only by the query in flight stay small
/// (about 8 ids at 7,000 webhooks a second) and each query's fixed cost — a round trip, a
/// backend's wake-up — was half the ingress's database work. A millisecond more holds
/// webhooks only while others arrive; longer pauses cost more throughput than they save,
/// because each of a sender's connections waits out the pause (measured: 5 ms lost a fifth).
const fn gather(backend: Backend) -> Duration {
    match backend {
        Backend::Postgres => Duration::from_millis(1),
        Backend::Sqlite => Duration::ZERO,
    }
}

type Answer = Result<bool, StoreError>;

struct Question {
    event_id: EventId,
    answer: oneshot::Sender<Answer>,
}

/// A handle on the batching task; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct SeenEvents {
    questions: mpsc::Sender<Question>,
    known: Arc<KnownEvents>,
}

impl SeenEvents {
    /// Starts the batching task and the reading of the log into memory (both end when every
    /// handle is dropped).
    pub(crate) fn start(store: Store) -> Self {
        let (questions, incoming) = mpsc::channel(QUEUE);
        let known = known::start(store.clone());
        tokio::spawn(batch(store, incoming));
        Self { questions, known }
    }

    /// Notes that this process accepted `event_id` and is about to publish it. Noted before
    /// publishing, it is in memory before any consumer can record it, so the next question
    /// about it goes on to the log, which then answers exactly.
    pub(crate) fn accepted(&self, event_id: EventId) {
        self.known.insert(event_id);
    }

    /// Which of `event_ids` the event log already holds. Those the log may hold are all asked
    /// before any answer is awaited, so the ids of one webhook travel in the same batch.
    pub(crate) async fn recorded(
        &self,
        event_ids: &[EventId],
    ) -> Result<HashSet<EventId>, StoreError> {
        let stopped = || StoreError::Database("the duplicate check stopped".to_owned());
        let ready = self.known.ready();
        let mut pending = Vec::with_capacity(event_ids.len());
        for &event_id in event_ids {
            if ready && !self.known.may_hold(event_id) {
                continue;
            }
            let (answer, answered) = oneshot::channel();
            self.questions
                .send(Question { event_id, answer })
                .await
                .map_err(|_| stopped())?;
            pending.push((event_id, answered));
        }
        let mut recorded = HashSet::new();
        for (event_id, answered) in pending {
            if answered.await.map_err(|_| stopped())?? {
                recorded.insert(event_id);
            }
        }
        Ok(recorded)
    }
}

async fn batch(store: Store, mut incoming: mpsc::Receiver<Question>) {
    // One probe per query in flight: waiting for a free probe before taking questions is
    // what lets batches grow under load.
    let in_flight = in_flight(store.backend());
    let (free, mut probes) = mpsc::channel::<EventLogProbe>(in_flight);
    for _ in 0..in_flight {
        let _ = free.try_send(store.event_log_probe());
    }
    let gather = gather(store.backend());
    let mut last_sent: Option<Instant> = None;
    while let Some(probe) = probes.recv().await {
        // No timer at all where there is no pause (SQLite).
        if !gather.is_zero()
            && let Some(sent) = last_sent
        {
            tokio::time::sleep_until(sent + gather).await;
        }
        let mut questions = Vec::new();
        if incoming.recv_many(&mut questions, MAX_BATCH).await == 0 {
            break;
        }
        last_sent = Some(Instant::now());
        let mut lent = Lent {
            probe: Some(probe),
            free: free.clone(),
        };
        tokio::spawn(async move {
            let ids: Vec<EventId> = questions.iter().map(|q| q.event_id).collect();
            let Some(probe) = lent.probe.as_mut() else {
                return;
            };
            // Boxed: the query's future is large (about 14 KiB), and a task's future is
            // copied as it is spawned and finished; a box moves once, then stays put.
            match Box::pin(probe.recorded(&ids)).await {
                Ok(recorded) => answer_all(questions, &recorded),
                Err(err) => {
                    for question in questions {
                        let _ = question.answer.send(Err(err.clone()));
                    }
                }
            }
        });
    }
}

/// A probe out on a query; it goes back to the free ones when the query ends, however it ends.
struct Lent {
    probe: Option<EventLogProbe>,
    free: mpsc::Sender<EventLogProbe>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(probe) = self.probe.take() {
            // The channel holds every probe there is, so there is always room.
            let _ = self.free.try_send(probe);
        }
    }
}

fn answer_all(questions: Vec<Question>, recorded: &HashSet<EventId>) {
    for question in questions {
        let _ = question
            .answer
            .send(Ok(recorded.contains(&question.event_id)));
    }
}
