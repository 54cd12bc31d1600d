//! The load generator: correctly signed webhooks (Standard Webhooks) to a running rollcall, at
//! a fixed rate or as fast as `conns` connections allow, with a mix of new owners, known
//! owners, duplicate deliveries and invalid signatures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::Mutex;

/// Shares of each kind of request, in percent (they need not add up to 100; they are weights).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Mix {
    pub new_owners: u32,
    pub known_owners: u32,
    pub duplicates: u32,
    pub invalid: u32,
}

impl Mix {
    pub(crate) const NEW_ONLY: Mix = Mix {
        new_owners: 100,
        known_owners: 0,
        duplicates: 0,
        invalid: 0,
    };

    /// `new=70,known=20,dup=5,invalid=5`.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let mut mix = Mix {
            new_owners: 0,
            known_owners: 0,
            duplicates: 0,
            invalid: 0,
        };
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--mix: {part:?} is not kind=weight"))?;
            let value: u32 = value
                .parse()
                .map_err(|_| anyhow::anyhow!("--mix: {value:?} is not a number"))?;
            match key {
                "new" => mix.new_owners = value,
                "known" => mix.known_owners = value,
                "dup" => mix.duplicates = value,
                "invalid" => mix.invalid = value,
                other => anyhow::bail!("--mix: unknown kind {other:?} (new, known, dup, invalid)"),
            }
        }
        if mix.total() == 0 {
            anyhow::bail!("--mix: at least one weight must be positive");
        }
        Ok(mix)
    }

    fn total(self) -> u32 {
        self.new_owners + self.known_owners + self.duplicates + self.invalid
    }

    /// The kind of the `n`-th request: a fixed, well-spread sequence, so runs are comparable.
    fn kind(self, n: usize) -> Kind {
        let slot = u32::try_from((n as u64).wrapping_mul(2_654_435_761) % u64::from(self.total()))
            .unwrap_or(0);
        if slot < self.new_owners {
            Kind::New
        } else if slot < self.new_owners + self.known_owners {
            Kind::Known
        } else if slot < self.new_owners + self.known_owners + self.duplicates {
            Kind::Duplicate
        } else {
            Kind::Invalid
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    New,
    Known,
    Duplicate,
    Invalid,
}

/// What to send, where, and how fast.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The ingress base URL (`http://127.0.0.1:8080`).
    pub url: String,
    pub integration: String,
    /// The integration's `whsec_…` secret.
    pub secret: String,
    pub conns: usize,
    /// Requests per second in all; `None` for as fast as possible.
    pub rate: Option<f64>,
    /// Stop after this many requests…
    pub count: Option<usize>,
    /// …or after this long.
    pub duration: Option<Duration>,
    pub mix: Mix,
    /// Distinguishes this run's owners and deliveries from other runs'.
    pub run: String,
    /// Known owners are drawn from this many (`K{run}-{n}`); new owners are unique.
    pub known_pool: usize,
    /// New owners cycle through this many (`N{run}-{n % owners}`), so a burst of 20 000 events
    /// can name 5 000 new owners. `None`: every new-owner event names a different owner.
    pub new_owner_cycle: Option<usize>,
}

impl Spec {
    /// As fast as possible until told otherwise, under a run id of its own.
    pub(crate) fn new(url: &str, integration: &str, secret: &str, conns: usize, mix: Mix) -> Self {
        Self {
            url: url.to_owned(),
            integration: integration.to_owned(),
            secret: secret.to_owned(),
            conns,
            rate: None,
            count: None,
            duration: None,
            mix,
            run: run_id(),
            known_pool: 1_000,
            new_owner_cycle: None,
        }
    }
}

/// A short random id telling one run's owners, databases and directories from another's.
pub(crate) fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// What the generator saw.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Outcome {
    pub sent: usize,
    /// 202 queued.
    pub accepted: usize,
    /// 200 duplicate.
    pub duplicates: usize,
    /// 4xx (invalid signatures and the like).
    pub rejected: usize,
    /// 5xx.
    pub server_errors: usize,
    /// Connection errors and timeouts.
    pub transport_errors: usize,
    pub elapsed_seconds: f64,
    /// 2xx per second.
    pub accepted_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

/// Standard Webhooks `(timestamp, signature)` headers for `id` and `body`, signed now.
pub(crate) fn sign(key: &[u8], id: &str, body: &str) -> (String, String) {
    let timestamp = unix_seconds().to_string();
    // HMAC takes keys of any length; the fallback is never used.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return (timestamp, String::new());
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    (
        timestamp,
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())),
    )
}

/// The CRM's id of new owner `index` in the run `run`.
pub(crate) fn new_owner_id(run: &str, index: usize) -> String {
    format!("N{run}-{index}")
}

/// The canonical event for request `n`.
fn request(spec: &Spec, n: usize) -> (Kind, String, String) {
    let kind = spec.mix.kind(n);
    let (delivery, owner) = match kind {
        // A duplicate repeats the delivery just before it (of the same run), body and id.
        Kind::Duplicate if n > 0 => {
            return (kind, format!("{}-{}", spec.run, n - 1), body(spec, n - 1));
        }
        Kind::Known => (
            format!("{}-{n}", spec.run),
            format!("K{}-{}", spec.run, n % spec.known_pool.max(1)),
        ),
        _ => {
            let owner = spec.new_owner_cycle.map_or(n, |cycle| n % cycle.max(1));
            (format!("{}-{n}", spec.run), new_owner_id(&spec.run, owner))
        }
    };
    let body = serde_json::json!({
        "id": delivery,
        "type": "deal.updated",
        "occurred_at": "2026-11-21T10:00:00Z",
        "owner": {
            "id": owner,
            "email": format!("{}@bench.example.com", owner.to_lowercase()),
            "first_name": "Bench",
            "last_name": owner,
            "status": "active",
            "title": "Account Executive",
        },
        "record": {"kind": "opportunity", "id": format!("006-{n}")},
    })
    .to_string();
    (kind, delivery, body)
}

fn body(spec: &Spec, n: usize) -> String {
    request(spec, n).2
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// Runs the load and reports what it saw.
pub(crate) async fn run(spec: Spec) -> anyhow::Result<Outcome> {
    let key = STANDARD.decode(spec.secret.trim_start_matches("whsec_"))?;
    let wrong_key: Vec<u8> = key.iter().map(|b| b ^ 0x5a).collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(spec.conns)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(
        spec.count.unwrap_or(100_000),
    )));
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let started = Instant::now();
    let spec = Arc::new(spec);
    let url = format!(
        "{}/hooks/{}",
        spec.url.trim_end_matches('/'),
        spec.integration
    );
    let mut tasks = Vec::with_capacity(spec.conns);
    for _ in 0..spec.conns {
        let (client, next, latencies, outcome, spec, url, key, wrong_key) = (
            client.clone(),
            Arc::clone(&next),
            Arc::clone(&latencies),
            Arc::clone(&outcome),
            Arc::clone(&spec),
            url.clone(),
            key.clone(),
            wrong_key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut tally = Outcome::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if spec.count.is_some_and(|count| n >= count)
                    || spec.duration.is_some_and(|d| started.elapsed() >= d)
                {
                    break;
                }
                if let Some(rate) = spec.rate {
                    // Request n is due at n / rate seconds after the start.
                    let due = started + Duration::from_secs_f64(n as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let (kind, delivery, body) = request(&spec, n);
                let (timestamp, signature) = sign(
                    if kind == Kind::Invalid {
                        &wrong_key
                    } else {
                        &key
                    },
                    &delivery,
                    &body,
                );
                let sent_at = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &delivery)
                    .header("webhook-timestamp", timestamp)
                    .header("webhook-signature", signature)
                    .body(body)
                    .send()
                    .await;
                tally.sent += 1;
                match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        // Read the body so the connection is reused.
                        let _ = response.bytes().await;
                        let micros =
                            u32::try_from(sent_at.elapsed().as_micros()).unwrap_or(u32::MAX);
                        match status {
                            202 => {
                                tally.accepted += 1;
                                mine.push(micros);
                            }
                            200 => {
                                tally.duplicates += 1;
                                mine.push(micros);
                            }
                            400..=499 => tally.rejected += 1,
                            _ => tally.server_errors += 1,
                        }
                    }
                    Err(_) => tally.transport_errors += 1,
                }
            }
            latencies.lock().await.extend(mine);
            let mut total = outcome.lock().await;
            total.sent += tally.sent;
            total.accepted += tally.accepted;
            total.duplicates += tally.duplicates;
            total.rejected += tally.rejected;
            total.server_errors += tally.server_errors;
            total.transport_errors += tally.transport_errors;
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *latencies.lock().await);
    latencies.sort_unstable();
    let mut outcome = outcome.lock().await.clone();
    outcome.elapsed_seconds = elapsed;
    outcome.accepted_per_second =
        (outcome.accepted + outcome.duplicates) as f64 / elapsed.max(1e-9);
    outcome.p50_ms = percentile(&latencies, 50.0);
    outcome.p99_ms = percentile(&latencies, 99.0);
    outcome.max_ms = latencies.last().map_or(0.0, |max| f64::from(*max) / 1000.0);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_its_weights() {
        let mix = Mix::parse("new=70,known=20,dup=5,invalid=5").unwrap();
        let kinds: Vec<Kind> = (0..10_000).map(|n| mix.kind(n)).collect();
        let share = |kind| kinds.iter().filter(|k| **k == kind).count();
        assert!(
            (6_800..7_200).contains(&share(Kind::New)),
            "{}",
            share(Kind::New)
        );
        assert!((400..600).contains(&share(Kind::Invalid)));
        assert!(Mix::parse("new=1,bogus=2").is_err());
    }

    #[test]
    fn percentiles_of_sorted_micros() {
        let sorted: Vec<u32> = (1..=100).map(|n| n * 1000).collect();
        assert!((percentile(&sorted, 50.0) - 50.0).abs() < f64::EPSILON);
        assert!((percentile(&sorted, 99.0) - 99.0).abs() < f64::EPSILON);
    }
}
