//! Throughput measured fairly on a shared machine. Each endpoint is warmed up (connection
//! pools, caches and allocator growth on both sides of the wire) before anything counts, then
//! measured in several short phases instead of one long one, and the phase of median
//! throughput is reported. Endpoints compared with each other take their phases in turn,
//! round after round, so a slow spell of the machine falls on both, and their comparison is
//! the median of the per-round ratios.

use std::time::Duration;

use serde::Serialize;

use crate::load::{self, Mix, Outcome, Spec};

/// Something the load generator can send webhooks to.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub url: String,
    pub integration: String,
    /// The integration's `whsec_…` secret.
    pub secret: String,
}

impl Endpoint {
    /// Load of `mix` over `conns` connections to this endpoint (as fast as it goes, until the
    /// caller sets a rate, count or duration).
    pub(crate) fn load(&self, conns: usize, mix: Mix) -> Spec {
        Spec::new(&self.url, &self.integration, &self.secret, conns, mix)
    }
}

/// How long to warm up, how long each phase lasts, and how many rounds of phases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub warmup: Duration,
    pub phase: Duration,
    pub rounds: usize,
}

/// One endpoint's phases.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Measured {
    /// The phase of median throughput, with its latencies.
    #[serde(flatten)]
    pub median: Outcome,
    /// 2xx per second of every phase, in the order they were taken.
    pub phases_per_second: Vec<f64>,
}

impl Measured {
    fn of(phases: Vec<Outcome>) -> Self {
        let phases_per_second = phases.iter().map(|o| o.accepted_per_second).collect();
        let mut by_rate = phases;
        by_rate.sort_by(|a, b| a.accepted_per_second.total_cmp(&b.accepted_per_second));
        // With an even count, the lower of the middle two: the figure is never flattered.
        let median = by_rate
            .get(by_rate.len().saturating_sub(1) / 2)
            .cloned()
            .unwrap_or_default();
        Self {
            median,
            phases_per_second,
        }
    }
}

/// An endpoint measured in turn with its ceiling.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Paired {
    pub ceiling: Measured,
    /// Endpoint / ceiling, round by round.
    pub ratios: Vec<f64>,
    /// The median of `ratios`.
    pub ratio: f64,
}

/// Sends `mix` to every endpoint at `conns` connections: a warm-up for each, then `rounds`
/// rounds in which each endpoint takes one phase, in the order given. Answers each endpoint's
/// phases, in the order of `endpoints`.
pub(crate) async fn in_turn(
    endpoints: &[&Endpoint],
    conns: usize,
    mix: Mix,
    schedule: Schedule,
) -> anyhow::Result<Vec<Measured>> {
    for endpoint in endpoints {
        phase(endpoint, conns, mix, schedule.warmup).await?;
    }
    let mut phases: Vec<Vec<Outcome>> = vec![Vec::with_capacity(schedule.rounds); endpoints.len()];
    for _ in 0..schedule.rounds.max(1) {
        for (endpoint, taken) in endpoints.iter().zip(&mut phases) {
            taken.push(phase(endpoint, conns, mix, schedule.phase).await?);
        }
    }
    Ok(phases.into_iter().map(Measured::of).collect())
}

/// `measured` against `ceiling`, taken in turn by [`in_turn`].
pub(crate) fn paired(measured: &Measured, ceiling: Measured) -> Paired {
    let ratios: Vec<f64> = measured
        .phases_per_second
        .iter()
        .zip(&ceiling.phases_per_second)
        .map(|(rate, ceiling)| rate / ceiling.max(1e-9))
        .collect();
    let ratio = median(&mut ratios.clone());
    Paired {
        ceiling,
        ratios,
        ratio,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

async fn phase(
    endpoint: &Endpoint,
    conns: usize,
    mix: Mix,
    length: Duration,
) -> anyhow::Result<Outcome> {
    let mut spec = endpoint.load(conns, mix);
    spec.duration = Some(length);
    load::run(spec).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(rate: f64, p99_ms: f64) -> Outcome {
        Outcome {
            accepted_per_second: rate,
            p99_ms,
            ..Outcome::default()
        }
    }

    #[test]
    fn the_median_phase_is_reported_with_its_own_latencies() {
        let measured = Measured::of(vec![
            outcome(900.0, 9.0),
            outcome(500.0, 50.0),
            outcome(700.0, 7.0),
        ]);
        assert_eq!(measured.phases_per_second, vec![900.0, 500.0, 700.0]);
        assert!((measured.median.accepted_per_second - 700.0).abs() < f64::EPSILON);
        assert!((measured.median.p99_ms - 7.0).abs() < f64::EPSILON);
        // An even count reports the lower middle phase.
        let even = Measured::of(vec![
            outcome(4.0, 0.0),
            outcome(1.0, 0.0),
            outcome(3.0, 0.0),
            outcome(2.0, 0.0),
        ]);
        assert!((even.median.accepted_per_second - 2.0).abs() < f64::EPSILON);
    }

    #[test]
    fn a_pairing_compares_round_by_round() {
        let rollcall = Measured::of(vec![
            outcome(70.0, 0.0),
            outcome(40.0, 0.0),
            outcome(90.0, 0.0),
        ]);
        let ceiling = Measured::of(vec![
            outcome(100.0, 0.0),
            outcome(50.0, 0.0),
            outcome(100.0, 0.0),
        ]);
        let paired = paired(&rollcall, ceiling);
        // Round 2 was slow for both: its ratio (0.8) is as fair as the others.
        assert_eq!(paired.ratios, vec![0.7, 0.8, 0.9]);
        assert!((paired.ratio - 0.8).abs() < 1e-12);
        assert!((median(&mut [1.0, 4.0, 2.0, 3.0]) - 2.5).abs() < f64::EPSILON);
        assert!(median(&mut []).abs() < f64::EPSILON);
    }
}
