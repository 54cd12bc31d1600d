//! Answers kept for a while: bounded, oldest first out.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use domain::{IntegrationId, OwnerFacts, Source};

use crate::LookupError;

/// What was asked: of which integration's CRM, what kind of lookup, about which id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    integration: IntegrationId,
    source: Source,
    kind: String,
    id: String,
}

impl CacheKey {
    pub(crate) fn new(integration: IntegrationId, source: Source, kind: &str, id: &str) -> Self {
        Self {
            integration,
            source,
            kind: kind.to_owned(),
            id: id.to_owned(),
        }
    }
}

/// An answer worth keeping: found, or the CRM's word that there is no such thing.
#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Owner(Box<OwnerFacts>),
    Owners(Vec<OwnerFacts>),
    NotFound(String),
}

impl Cached {
    pub(crate) fn into_owner(self) -> Result<OwnerFacts, LookupError> {
        match self {
            Cached::Owner(owner) => Ok(*owner),
            Cached::Owners(owners) => owners
                .into_iter()
                .next()
                .ok_or_else(|| LookupError::NotFound("no owner".to_owned())),
            Cached::NotFound(message) => Err(LookupError::NotFound(message)),
        }
    }

    pub(crate) fn into_owners(self) -> Result<Vec<OwnerFacts>, LookupError> {
        match self {
            Cached::Owner(owner) => Ok(vec![*owner]),
            Cached::Owners(owners) => Ok(owners),
            Cached::NotFound(message) => Err(LookupError::NotFound(message)),
        }
    }
}

#[derive(Debug)]
struct Entry {
    value: Cached,
    expires: Instant,
    seq: u64,
}

/// A TTL cache holding at most `capacity` answers. Every entry lives as long as the others, so
/// insertion order is also expiry order: expired and, when full, oldest entries are dropped from
/// the front of `order`.
#[derive(Debug)]
pub(crate) struct Cache {
    capacity: usize,
    entries: HashMap<CacheKey, Entry>,
    /// Keys in insertion order with the insertion's sequence number (an entry re-inserted later
    /// leaves a stale item behind, skipped when reached).
    order: VecDeque<(CacheKey, u64)>,
    next_seq: u64,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&mut self, key: &CacheKey, now: Instant) -> Option<Cached> {
        match self.entries.get(key) {
            Some(entry) if entry.expires > now => Some(entry.value.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&mut self, key: CacheKey, value: Cached, expires: Instant, now: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            key.clone(),
            Entry {
                value,
                expires,
                seq,
            },
        );
        self.order.push_back((key, seq));
        self.evict(now);
    }

    fn evict(&mut self, now: Instant) {
        while let Some((key, seq)) = self.order.front() {
            match self.entries.get(key) {
                Some(entry) if entry.seq == *seq => {
                    if entry.expires <= now || self.entries.len() > self.capacity {
                        self.entries.remove(key);
                        self.order.pop_front();
                    } else {
                        break;
                    }
                }
                // Replaced by a later insertion, or already dropped.
                _ => {
                    self.order.pop_front();
                }
            }
        }
        if self.order.len() > self.capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order
                .retain(|(key, seq)| entries.get(key).is_some_and(|entry| entry.seq == *seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(id: &str) -> CacheKey {
        let integration: IntegrationId = "00000000-0000-0000-0000-000000000001".parse().unwrap();
        CacheKey::new(integration, Source::Hubspot, "owner", id)
    }

    fn owner(id: &str) -> Cached {
        Cached::Owner(Box::new(OwnerFacts {
            external_id: id.to_owned(),
            ..OwnerFacts::default()
        }))
    }

    #[test]
    fn answers_expire() {
        let mut cache = Cache::new(10);
        let now = Instant::now();
        cache.insert(key("1"), owner("1"), now + Duration::from_secs(5), now);
        assert!(cache.get(&key("1"), now + Duration::from_secs(4)).is_some());
        assert!(cache.get(&key("1"), now + Duration::from_secs(5)).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn size_stays_bounded_and_oldest_go_first() {
        let mut cache = Cache::new(100);
        let now = Instant::now();
        for n in 0..1_000 {
            let id = n.to_string();
            cache.insert(key(&id), owner(&id), now + Duration::from_secs(60), now);
            assert!(cache.len() <= 100);
            assert!(cache.order.len() <= 200);
        }
        assert!(cache.get(&key("0"), now).is_none());
        assert!(cache.get(&key("999"), now).is_some());
        assert!(cache.get(&key("900"), now).is_some());
    }

    #[test]
    fn expired_entries_make_room_first() {
        let mut cache = Cache::new(3);
        let now = Instant::now();
        cache.insert(key("old"), owner("old"), now + Duration::from_secs(1), now);
        let later = now + Duration::from_secs(2);
        for id in ["a", "b", "c"] {
            cache.insert(key(id), owner(id), later + Duration::from_secs(60), later);
        }
        assert_eq!(cache.len(), 3);
        for id in ["a", "b", "c"] {
            assert!(cache.get(&key(id), later).is_some(), "{id}");
        }
    }

    #[test]
    fn reinserting_keeps_one_entry() {
        let mut cache = Cache::new(2);
        let now = Instant::now();
        for _ in 0..10 {
            cache.insert(
                key("same"),
                owner("same"),
                now + Duration::from_secs(60),
                now,
            );
        }
        assert_eq!(cache.len(), 1);
        assert!(cache.order.len() <= 4);
        assert!(cache.get(&key("same"), now).is_some());
    }
}
