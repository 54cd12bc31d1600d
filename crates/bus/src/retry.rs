//! How long to wait before retrying a failed event, and when to stop.

use std::time::Duration;

/// Delay tiers and the attempt limit. Attempt `n` (1-based) that fails transiently is retried
/// after `delays[n-1]` (the last tier repeats), stretched by a jitter factor so a burst of
/// failures does not come back as a burst; the `max_attempts`-th failure is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub delays: Vec<Duration>,
    pub max_attempts: u32,
}

/// The jitter factors. On RabbitMQ each tier has one queue per factor (queue-level TTL, never
/// per-message TTL); the embedded queue picks the same factors.
pub(crate) const JITTER_PERCENT: [u64; 2] = [100, 125];

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delays: [1, 5, 30, 120, 600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// Whether a transient failure of attempt `attempt` is retried.
    #[must_use]
    pub fn retries(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The base delay after failed attempt `attempt`.
    #[must_use]
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.delays
            .get(index)
            .or_else(|| self.delays.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }

    /// Every distinct delay a retry may wait, jitter included (one RabbitMQ queue each).
    #[must_use]
    pub fn all_delays(&self) -> Vec<Duration> {
        let mut delays: Vec<Duration> = self
            .delays
            .iter()
            .flat_map(|base| {
                JITTER_PERCENT
                    .iter()
                    .map(move |percent| jittered(*base, *percent))
            })
            .collect();
        delays.sort();
        delays.dedup();
        delays
    }

    /// The delay after failed attempt `attempt`, with a random jitter factor.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let percent = JITTER_PERCENT[rand::random_range(0..JITTER_PERCENT.len())];
        jittered(self.base_delay(attempt), percent)
    }

    /// The delay after failed attempt `attempt` when the failure itself says when to come
    /// back (a CRM's `Retry-After`): the attempt's usual delay if that is long enough, else
    /// the shortest delay of the policy that is (the longest if none is). Only the policy's
    /// own delays are used: on RabbitMQ each is a queue.
    #[must_use]
    pub fn delay_at_least(&self, attempt: u32, at_least: Duration) -> Duration {
        let usual = self.delay(attempt);
        if usual >= at_least {
            return usual;
        }
        let delays = self.all_delays();
        delays
            .iter()
            .copied()
            .find(|delay| *delay >= at_least)
            .or_else(|| delays.last().copied())
            .unwrap_or(usual)
    }
}

fn jittered(base: Duration, percent: u64) -> Duration {
    let millis = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(millis.saturating_mul(percent) / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_picks_the_first_delay_long_enough() {
        let policy = RetryPolicy::default();
        // 1 s would be the first retry; the CRM asked for 20 s: 30 s is the first tier over.
        assert_eq!(
            policy.delay_at_least(1, Duration::from_secs(20)),
            Duration::from_secs(30)
        );
        // Longer than any tier: the longest one.
        assert_eq!(
            policy.delay_at_least(1, Duration::from_secs(3600)),
            Duration::from_secs(750)
        );
        // Already long enough: unchanged tier (with its jitter).
        let usual = policy.delay_at_least(4, Duration::from_secs(2));
        assert!(usual == Duration::from_secs(120) || usual == Duration::from_secs(150));
    }

    #[test]
    fn delays_grow_and_the_last_tier_repeats() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.base_delay(1), Duration::from_secs(1));
        assert_eq!(policy.base_delay(3), Duration::from_secs(30));
        assert_eq!(policy.base_delay(7), Duration::from_secs(600));
        assert!(policy.retries(7));
        assert!(!policy.retries(8));
        for attempt in 1..8 {
            let delay = policy.delay(attempt);
            let base = policy.base_delay(attempt);
            assert!(delay >= base && delay <= base.mul_f64(1.25), "{delay:?}");
            assert!(policy.all_delays().contains(&delay));
        }
        assert_eq!(policy.all_delays().len(), 10);
    }
}
