//! Which events the event log may hold, summarised in memory so that most webhooks need not ask it.
//!
//! Almost every webhook is new, and asking the event log about each costs a query's share of
//! the database's CPU and holds the webhook for a round trip. A Bloom filter over every id in
//! the log answers "certainly not there" with no query at all; only a "maybe" (an id it holds,
//! or about one in a hundred others) goes on to the log, which answers exactly.
//!
//! The filter learns ids three ways: at start-up by reading the whole log (until then it is not
//! [`ready`](KnownEvents::ready) and every question goes to the log), from this process as it
//! accepts each event (before publishing it, so it is known before any consumer can record it),
//! and from the log every second, for events accepted by other ingress processes. An event
//! another process accepted within the last second can therefore be answered "queued" instead
//! of "duplicate": it is published again, and the consumer ignores it because the log already
//! holds it, so nothing is processed twice.
//!
//! A filter has a fixed size. When the newest one is full, another twice as large is added and
//! takes new ids; a question asks them all (a "scalable Bloom filter"), so memory grows with the
//! log (1.2 to 2.4 bytes per event) and the share of "maybe"s stays near one in a hundred per
//! filter.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use domain::{EventId, Timestamp};
use fastbloom::AtomicBloomFilter;
use store::{EventLogPosition, Store};

/// Ids the first filter is sized for; later filters double it.
const FIRST_CAPACITY: usize = 1 << 20;
/// The share of absent ids each filter calls "maybe".
const FALSE_POSITIVES: f64 = 0.01;
/// Entries read from the log per query.
const PAGE: u64 = 10_000;
/// How often the log is read for entries written since.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// How far back each read starts before the newest entry already read: an entry is stamped
/// when processed but becomes visible when its transaction commits, a little later, so one
/// stamped earlier than the newest read may appear after it.
const OVERLAP: Duration = Duration::from_secs(5);
/// The wait before reading again after the log could not be read.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A Bloom filter of event ids, shared by every request; cheap to ask from many threads.
#[derive(Debug)]
pub(crate) struct KnownEvents {
    generations: RwLock<Vec<Generation>>,
    ready: AtomicBool,
}

#[derive(Debug)]
struct Generation {
    filter: AtomicBloomFilter,
    capacity: usize,
    held: AtomicUsize,
}

impl Generation {
    fn new(capacity: usize) -> Self {
        Self {
            filter: AtomicBloomFilter::with_false_pos(FALSE_POSITIVES).expected_items(capacity),
            capacity,
            held: AtomicUsize::new(0),
        }
    }
}

impl KnownEvents {
    pub(crate) fn new() -> Self {
        Self::with_first_capacity(FIRST_CAPACITY)
    }

    fn with_first_capacity(capacity: usize) -> Self {
        Self {
            generations: RwLock::new(vec![Generation::new(capacity)]),
            ready: AtomicBool::new(false),
        }
    }

    /// Whether the whole log has been read, so that an id the filter lacks is not in the log.
    pub(crate) fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// False only if the log certainly does not hold `id` (or the filter is not ready).
    pub(crate) fn may_hold(&self, id: EventId) -> bool {
        let generations = self
            .generations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        generations
            .iter()
            .any(|generation| generation.filter.contains(&id))
    }

    pub(crate) fn insert(&self, id: EventId) {
        let full = {
            let generations = self
                .generations
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(newest) = generations.last() else {
                return;
            };
            // `insert` says whether the id was (maybe) there already; only new ids fill it up.
            !newest.filter.insert(&id)
                && newest.held.fetch_add(1, Ordering::Relaxed) + 1 >= newest.capacity
        };
        if full {
            self.grow();
        }
    }

    fn grow(&self) {
        let mut generations = self
            .generations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // Another thread may have grown it between the read and this write.
        let next = match generations.last() {
            Some(newest) if newest.held.load(Ordering::Relaxed) < newest.capacity => return,
            Some(newest) => newest.capacity.saturating_mul(2),
            None => FIRST_CAPACITY,
        };
        generations.push(Generation::new(next));
    }

    /// How many filters there are (one more each time the newest fills up).
    #[cfg(test)]
    fn generations(&self) -> usize {
        self.generations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Reads the whole event log into `known`, marks it ready, then reads what is written since,
/// every second, for as long as `known` is in use.
async fn follow(store: Store, known: Weak<KnownEvents>) {
    let started = std::time::Instant::now();
    let mut after: Option<EventLogPosition> = None;
    let mut read = 0_usize;
    loop {
        let Some(known) = known.upgrade() else {
            return;
        };
        let page = match store.event_log_after(after, PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the event log; duplicates are checked against it directly meanwhile");
                drop(known);
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        for position in &page {
            known.insert(position.id);
        }
        read += page.len();
        metrics::counter!("rollcall_event_log_ids_read_total").increment(page.len() as u64);
        if let Some(last) = page.last() {
            after = Some(*last);
        }
        if page.len() as u64 == PAGE {
            continue;
        }
        if !known.ready.swap(true, Ordering::AcqRel) {
            tracing::info!(
                events = read,
                millis = started.elapsed().as_millis(),
                "event log read; duplicates are now checked in memory first"
            );
        }
        drop(known);
        tokio::time::sleep(FOLLOW_EVERY).await;
        after = after.map(|newest| rewound(newest, OVERLAP));
    }
}

fn rewound(position: EventLogPosition, by: Duration) -> EventLogPosition {
    let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
    EventLogPosition::start_of(Timestamp::from_millis(
        position.processed_at.millis().saturating_sub(by),
    ))
}

/// Starts following the log for a new filter (the task ends when the filter is dropped).
pub(crate) fn start(store: Store) -> Arc<KnownEvents> {
    let known = Arc::new(KnownEvents::new());
    tokio::spawn(follow(store, Arc::downgrade(&known)));
    known
}

#[cfg(test)]
mod tests {
    use domain::IntegrationId;

    use super::*;

    fn ids(integration: IntegrationId, range: std::ops::Range<usize>) -> Vec<EventId> {
        range
            .map(|n| EventId::derive(integration, &format!("evt_{n}")))
            .collect()
    }

    #[test]
    fn holds_every_id_inserted_and_grows_instead_of_filling_up() {
        let known = KnownEvents::with_first_capacity(1_000);
        let integration = IntegrationId::new();
        let inserted = ids(integration, 0..8_000);
        for &id in &inserted {
            known.insert(id);
        }
        // 1,000 + 2,000 + 4,000 fill up after about 7,000 ids (a little more: an id the newest
        // filter already calls "maybe" does not count), and the rest go to a fourth of 8,000.
        assert_eq!(known.generations(), 4);
        assert!(inserted.iter().all(|&id| known.may_hold(id)));
    }

    #[test]
    fn calls_few_absent_ids_maybe() {
        let known = KnownEvents::with_first_capacity(1_000);
        let integration = IntegrationId::new();
        for id in ids(integration, 0..3_000) {
            known.insert(id);
        }
        let absent = ids(integration, 3_000..13_000);
        let maybes = absent.iter().filter(|&&id| known.may_hold(id)).count();
        // Two full filters at 1% each: about 2% of absent ids; 5% leaves room for chance.
        assert!(maybes < absent.len() / 20, "{maybes} of {}", absent.len());
    }

    #[test]
    fn is_not_ready_before_the_log_is_read() {
        assert!(!KnownEvents::new().ready());
    }

    #[test]
    fn a_rewound_position_starts_before_every_entry_of_that_moment() {
        let newest = EventLogPosition {
            processed_at: Timestamp::from_millis(10_000),
            id: EventId::derive(IntegrationId::new(), "evt"),
        };
        let rewound = rewound(newest, Duration::from_secs(5));
        assert_eq!(rewound.processed_at.millis(), 5_000);
        assert_eq!(
            rewound,
            EventLogPosition::start_of(Timestamp::from_millis(5_000))
        );
    }
}
