//! The benchmark's report: every figure, the targets checked against them, and the Markdown
//! table printed at the end.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::ceilings::Ceiling;
use crate::load::Outcome;
use crate::rounds::{Measured, Paired};

#[derive(Debug, Default, Serialize)]
pub(crate) struct Ceilings {
    /// HMAC-only HTTP endpoint, by connections.
    pub http: BTreeMap<usize, Measured>,
    /// Confirmed publishes to a quorum queue.
    pub broker: Ceiling,
    /// The HMAC-only endpoint answering once the body is confirmed by a quorum queue (durable
    /// 2xx per second), by connections: the least any durable ingress does per request.
    pub http_durable: BTreeMap<usize, Measured>,
    /// Single-row PostgreSQL transactions.
    pub database: Ceiling,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Burst {
    pub events: usize,
    pub owners: usize,
    pub seconds_until_all_users: f64,
    pub seconds_until_all_invitations: f64,
    pub users_per_second: f64,
    pub ingress: Outcome,
}

#[derive(Debug, Serialize)]
pub(crate) struct Steady {
    pub rate: f64,
    pub events: usize,
    /// Webhook accepted → user visible (the decision committed), from the event log.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub ingress: Outcome,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct DeploymentReport {
    /// Mixed load (70 % new owners, 20 % known, 5 % duplicates, 5 % invalid), by connections.
    pub ingress: BTreeMap<usize, Measured>,
    /// The broker ceiling through HTTP measured in turn with `ingress` (distributed only), by
    /// connections, with the per-round ratios: the fair comparison on a shared machine.
    pub ingress_vs_ceiling_in_turn: BTreeMap<usize, Paired>,
    /// The median of `bursts` by users per second: the figure the target is checked against.
    pub burst: Option<Burst>,
    /// Every burst measured, in order.
    pub bursts: Vec<Burst>,
    pub steady: Option<Steady>,
    /// Peak resident set (VmHWM) of each process, MiB.
    pub peak_rss_mib: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Target {
    pub name: String,
    pub measured: f64,
    pub target: String,
    pub met: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub cpus: usize,
    pub quick: bool,
    pub ceilings: Option<Ceilings>,
    pub embedded: Option<DeploymentReport>,
    pub distributed: Option<DeploymentReport>,
    pub targets: Vec<Target>,
}

impl Report {
    pub(crate) fn new(quick: bool) -> Self {
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            quick,
            ceilings: None,
            embedded: None,
            distributed: None,
            targets: Vec::new(),
        }
    }

    pub(crate) fn check_targets(&mut self) {
        let mut targets = Vec::new();
        let mut at_least = |name: &str, measured: f64, target: f64, unit: &str| {
            targets.push(Target {
                name: name.to_owned(),
                measured,
                target: format!(">= {target}{unit}"),
                met: measured >= target,
            });
        };
        if let Some(ratio) = self.durable_ratio(64) {
            at_least(
                "distributed ingress / broker ceiling through HTTP, 64 connections",
                ratio,
                0.7,
                "",
            );
        }
        if let Some(burst) = self.distributed.as_ref().and_then(|d| d.burst.as_ref()) {
            at_least(
                "distributed burst: users provisioned per second",
                burst.users_per_second,
                2000.0,
                "",
            );
        }
        if let Some(embedded) = &self.embedded
            && let Some(ingress) = embedded.ingress.get(&64)
        {
            at_least(
                "embedded accepted per second",
                ingress.median.accepted_per_second,
                1000.0,
                "",
            );
        }
        let mut below = |name: &str, measured: f64, target: f64| {
            targets.push(Target {
                name: name.to_owned(),
                measured,
                target: format!("< {target}"),
                met: measured < target,
            });
        };
        if let Some(ingress) = self.distributed.as_ref().and_then(|d| d.ingress.get(&64)) {
            below(
                "distributed ingress p99 ms at 64 connections",
                ingress.median.p99_ms,
                50.0,
            );
        }
        if let Some(steady) = self.distributed.as_ref().and_then(|d| d.steady.as_ref()) {
            below(
                "distributed p99 ms webhook -> user at 500/s",
                steady.p99_ms,
                250.0,
            );
        }
        for (name, deployment) in [
            ("embedded", &self.embedded),
            ("distributed", &self.distributed),
        ] {
            for (role, rss) in deployment.iter().flat_map(|d| &d.peak_rss_mib) {
                below(&format!("{name} {role} process: peak RSS MiB"), *rss, 150.0);
            }
        }
        self.targets = targets;
    }

    /// Distributed ingress / broker ceiling through HTTP: the median of the rounds taken in
    /// turn; failing that, against the ceiling measured in the ceilings scenario.
    fn durable_ratio(&self, conns: usize) -> Option<f64> {
        let distributed = self.distributed.as_ref()?;
        if let Some(paired) = distributed.ingress_vs_ceiling_in_turn.get(&conns) {
            return Some(paired.ratio);
        }
        let ingress = distributed.ingress.get(&conns)?;
        let durable = self.ceilings.as_ref()?.http_durable.get(&conns)?;
        Some(ingress.median.accepted_per_second / durable.median.accepted_per_second.max(1e-9))
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## rollcall benchmark ({} CPUs{})\n",
            self.cpus,
            if self.quick { ", quick" } else { "" }
        );
        if let Some(ceilings) = &self.ceilings {
            let _ = writeln!(
                out,
                "| ceiling | per second | concurrency |\n|---|---:|---:|"
            );
            for (conns, http) in &ceilings.http {
                let _ = writeln!(
                    out,
                    "| HTTP, HMAC only (p99 {:.1} ms) | {:.0} | {conns} |",
                    http.median.p99_ms, http.median.accepted_per_second
                );
            }
            let _ = writeln!(
                out,
                "| RabbitMQ confirmed publishes (quorum) | {:.0} | {} |",
                ceilings.broker.per_second, ceilings.broker.concurrency
            );
            for (conns, durable) in &ceilings.http_durable {
                let _ = writeln!(
                    out,
                    "| HTTP, HMAC, then a confirmed publish (p99 {:.1} ms) | {:.0} | {conns} |",
                    durable.median.p99_ms, durable.median.accepted_per_second
                );
            }
            let _ = writeln!(
                out,
                "| PostgreSQL single-row transactions | {:.0} | {} |\n",
                ceilings.database.per_second, ceilings.database.concurrency
            );
        }
        let http = |conns: &usize| {
            self.ceilings
                .as_ref()
                .and_then(|c| c.http.get(conns))
                .map(|o| o.median.accepted_per_second)
        };
        let database = self.ceilings.as_ref().map(|c| c.database.per_second);
        for (name, deployment) in [
            ("embedded", &self.embedded),
            ("distributed", &self.distributed),
        ] {
            let Some(deployment) = deployment else {
                continue;
            };
            let _ = writeln!(
                out,
                "### {name}\n\n| measure | value | vs ceiling |\n|---|---:|---:|"
            );
            for (conns, measured) in &deployment.ingress {
                let ingress = &measured.median;
                let mut versus = Vec::new();
                if name == "distributed"
                    && let Some(ratio) = self.durable_ratio(*conns)
                {
                    versus.push(format!("{ratio:.2} of HTTP + broker"));
                }
                if let Some(http) = http(conns) {
                    versus.push(format!("{:.2} of HTTP", ingress.accepted_per_second / http));
                }
                let versus = versus.join("; ");
                let _ = writeln!(
                    out,
                    "| ingress at {conns} connections: accepted/s (p50 / p99 / max ms) | {:.0} ({:.1} / {:.1} / {:.1}) | {versus} |",
                    ingress.accepted_per_second, ingress.p50_ms, ingress.p99_ms, ingress.max_ms
                );
            }
            for (conns, paired) in &deployment.ingress_vs_ceiling_in_turn {
                let ratios: Vec<String> = paired.ratios.iter().map(|r| format!("{r:.2}")).collect();
                let _ = writeln!(
                    out,
                    "| broker ceiling through HTTP, in turn at {conns} connections: per second | {:.0} | rounds: {} |",
                    paired.ceiling.median.accepted_per_second,
                    ratios.join(", ")
                );
            }
            if let Some(burst) = &deployment.burst {
                let versus = database.map_or(String::new(), |db| {
                    format!("{:.2} of DB", burst.users_per_second / db)
                });
                let trials: Vec<String> = deployment
                    .bursts
                    .iter()
                    .map(|trial| format!("{:.0}", trial.users_per_second))
                    .collect();
                let _ = writeln!(
                    out,
                    "| burst {} events / {} new owners: users/s, median of {} ({}; all users {:.1} s, all invitations {:.1} s) | {:.0} | {versus} |",
                    burst.events,
                    burst.owners,
                    trials.len(),
                    trials.join(", "),
                    burst.seconds_until_all_users,
                    burst.seconds_until_all_invitations,
                    burst.users_per_second
                );
            }
            if let Some(steady) = &deployment.steady {
                let _ = writeln!(
                    out,
                    "| steady {:.0}/s: webhook → user p50 / p99 / max ms | {:.0} / {:.0} / {:.0} | |",
                    steady.rate, steady.p50_ms, steady.p99_ms, steady.max_ms
                );
            }
            for (role, rss) in &deployment.peak_rss_mib {
                let _ = writeln!(out, "| peak RSS of the {role} process (MiB) | {rss:.0} | |");
            }
            out.push('\n');
        }
        if !self.targets.is_empty() {
            let _ = writeln!(
                out,
                "| target | measured | target | met |\n|---|---:|---|---|"
            );
            for target in &self.targets {
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {} | {} |",
                    target.name,
                    target.measured,
                    target.target,
                    if target.met { "yes" } else { "NO" }
                );
            }
        }
        out
    }
}
