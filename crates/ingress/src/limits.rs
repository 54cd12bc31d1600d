//! Per-integration rate limits (`settings.rate_limit_per_second`), enforced by each ingress
//! process on its own (a fleet of N ingress processes admits up to N times the limit; the
//! limit protects the pipeline from one runaway sender, not a billing quota).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::IntegrationId;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota};

/// One integration's limiter and the rate it was built for.
type Limiter = (u32, Arc<DefaultDirectRateLimiter>);

/// The limiters of every integration seen, rebuilt when an integration's limit changes.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    limiters: Arc<Mutex<HashMap<IntegrationId, Limiter>>>,
}

impl RateLimits {
    /// Takes one request from the integration's budget; `Err` carries how long until one is
    /// available again.
    pub(crate) fn check(
        &self,
        integration: IntegrationId,
        per_second: Option<u32>,
    ) -> Result<(), Duration> {
        let Some(rate) = per_second.and_then(NonZeroU32::new) else {
            return Ok(());
        };
        let limiter = {
            let Ok(mut limiters) = self.limiters.lock() else {
                return Ok(());
            };
            let entry = limiters.entry(integration).or_insert_with(|| {
                (
                    rate.get(),
                    Arc::new(DefaultDirectRateLimiter::direct(Quota::per_second(rate))),
                )
            });
            if entry.0 != rate.get() {
                *entry = (
                    rate.get(),
                    Arc::new(DefaultDirectRateLimiter::direct(Quota::per_second(rate))),
                );
            }
            Arc::clone(&entry.1)
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_limit_is_refused_with_a_wait() {
        let limits = RateLimits::default();
        let id = IntegrationId::new();
        let admitted = (0..10)
            .filter(|_| limits.check(id, Some(3)).is_ok())
            .count();
        assert_eq!(admitted, 3);
        let wait = limits.check(id, Some(3)).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(
            limits.check(IntegrationId::new(), Some(3)).is_ok(),
            "limits are per integration"
        );
        assert!(
            (0..100).all(|_| limits.check(id, None).is_ok()),
            "no limit configured"
        );
    }
}
