//! `rollcall-bench`: the load generator and the benchmark scenarios behind `make bench`.
//!
//! `run` measures, in one sitting on this machine: the ceilings (an HMAC-only HTTP endpoint, a
//! bare lapin publisher with confirms, single-row PostgreSQL transactions), then each
//! deployment (embedded: one process on SQLite and the embedded queue; distributed: separate
//! ingress, API and worker processes on PostgreSQL and RabbitMQ) under the standard scenarios,
//! and writes `bench/results/latest.json` and a Markdown table. `load` drives a running
//! rollcall by hand. Nothing here asserts on time: these are measurements, not tests.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod ceilings;
mod deployment;
mod load;
mod report;
mod rounds;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use smtp_sink::SmtpSink;

use crate::deployment::Deployment;
use crate::load::{Mix, Spec, run_id};
use crate::report::{Burst, DeploymentReport, Report, Steady};
use crate::rounds::{Endpoint, Measured, Schedule};

#[derive(Debug, Parser)]
#[command(name = "rollcall-bench", about = "Benchmarks for rollcall")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// HTTP, broker and database ceilings.
    Ceilings,
    /// SQLite and the embedded queue, one process.
    Embedded,
    /// PostgreSQL and RabbitMQ, separate ingress, API and worker processes.
    Distributed,
}

/// A part of a deployment's measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    /// Accepted webhooks per second at 64 and 256 connections (against the broker ceiling
    /// through HTTP, in turn, on the distributed deployment).
    Ingress,
    /// Bursts of new owners: users provisioned per second.
    Burst,
    /// A steady stream: webhook → user latency.
    Steady,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the standard scenarios and write the report.
    Run {
        /// Run only these (repeat); all by default.
        #[arg(long = "scenario", value_enum)]
        scenarios: Vec<Scenario>,
        /// Measure only these phases of the deployments (repeat); all by default.
        #[arg(long = "phase", value_enum)]
        phases: Vec<Phase>,
        /// Smaller sizes and shorter runs (for trying the benchmark out, not for figures).
        #[arg(long)]
        quick: bool,
        /// The rollcall binary to measure.
        #[arg(long, default_value = "target/release/rollcall")]
        rollcall: PathBuf,
        #[arg(long, default_value = "bench/results/latest.json")]
        out: PathBuf,
        /// PostgreSQL on this machine: plain TCP on loopback, like the broker's link (TLS
        /// between processes of one host only adds encryption to what is measured).
        #[arg(
            long,
            env = "ROLLCALL_BENCH_PG_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
        )]
        pg_url: String,
        #[arg(
            long,
            env = "ROLLCALL_BENCH_AMQP_URL",
            default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
        )]
        amqp_url: String,
    },
    /// Send load to a running rollcall.
    Load {
        /// The ingress base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long)]
        integration: String,
        /// The integration's whsec_ secret.
        #[arg(long)]
        secret: String,
        #[arg(long, default_value_t = 64)]
        conns: usize,
        /// Requests per second (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long)]
        count: Option<usize>,
        /// Seconds.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Weights of request kinds.
        #[arg(long, default_value = "new=70,known=20,dup=5,invalid=5")]
        mix: String,
        /// New owners cycle through this many (a burst naming each owner several times).
        #[arg(long)]
        new_owner_cycle: Option<usize>,
    },
    /// The HTTP ceiling's server (started by `run`).
    CeilingServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
        #[arg(long)]
        secret: String,
        /// Publish each verified body to a quorum queue here, confirmed, before answering.
        #[arg(long)]
        amqp_url: Option<String>,
        /// The quorum queue's name (a fresh one by default).
        #[arg(long)]
        queue: Option<String>,
    },
}

/// Sizes of one benchmark run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Throughput phases (ingress and the HTTP ceilings).
    ingress: Schedule,
    /// The broker and database ceilings' single phase.
    phase: Duration,
    burst_events: usize,
    burst_owners: usize,
    /// Bursts measured; the report takes the median (one burst of a few seconds is at the
    /// mercy of whatever else the machine is doing).
    bursts: usize,
    steady_rate: f64,
    steady: Duration,
}

const FULL: Sizes = Sizes {
    ingress: Schedule {
        warmup: Duration::from_secs(2),
        phase: Duration::from_secs(3),
        rounds: 3,
    },
    phase: Duration::from_secs(10),
    burst_events: 20_000,
    burst_owners: 5_000,
    bursts: 3,
    steady_rate: 500.0,
    steady: Duration::from_secs(20),
};

const QUICK: Sizes = Sizes {
    ingress: Schedule {
        warmup: Duration::from_secs(1),
        phase: Duration::from_secs(2),
        rounds: 1,
    },
    phase: Duration::from_secs(3),
    burst_events: 4_000,
    burst_owners: 1_000,
    bursts: 1,
    steady_rate: 500.0,
    steady: Duration::from_secs(5),
};

/// The ingress phases' load, sent to rollcall and to the ceiling servers alike: new owners,
/// known owners, repeated deliveries and forged signatures.
const INGRESS_MIX: &str = "new=70,known=20,dup=5,invalid=5";

/// Owners of the burst probed for completion (see `Deployment::provisioned`).
const BURST_PROBE: usize = 16;

const BENCH_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";

/// A running `rollcall-bench ceiling-server`.
struct CeilingServer {
    process: tokio::process::Child,
    endpoint: Endpoint,
    /// The broker and the queue it publishes to, if it does.
    queue: Option<(String, String)>,
}

impl CeilingServer {
    /// The HMAC-only endpoint; with `amqp_url`, answering once the body is confirmed by a
    /// quorum queue there.
    async fn start(amqp_url: Option<&str>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut command = tokio::process::Command::new(exe);
        command.args(["ceiling-server", "--secret", BENCH_SECRET]);
        let queue = amqp_url.map(|url| (url.to_owned(), ceilings::ceiling_queue_name()));
        if let Some((url, queue)) = &queue {
            command.args(["--amqp-url", url, "--queue", queue]);
        }
        let mut process = command
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = process.stdout.take().context("stdout")?;
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let url = lines
            .next_line()
            .await?
            .and_then(|line| line.strip_prefix("listening on ").map(str::to_owned))
            .context("the ceiling server did not start")?;
        Ok(Self {
            process,
            endpoint: Endpoint {
                url,
                integration: "ceiling".to_owned(),
                secret: BENCH_SECRET.to_owned(),
            },
            queue,
        })
    }

    /// Stops the server and deletes its queue.
    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.process.kill().await;
        if let Some((url, queue)) = &self.queue {
            ceilings::delete_queue(url, queue).await?;
        }
        Ok(())
    }
}

/// The ceiling server under load at 64 and 256 connections.
async fn ceiling_load(
    sizes: Sizes,
    amqp_url: Option<&str>,
) -> anyhow::Result<BTreeMap<usize, Measured>> {
    let server = CeilingServer::start(amqp_url).await?;
    let mut figures = BTreeMap::new();
    for conns in [64, 256] {
        let measured = rounds::in_turn(
            &[&server.endpoint],
            conns,
            Mix::parse(INGRESS_MIX)?,
            sizes.ingress,
        )
        .await?;
        figures.insert(conns, measured.into_iter().next().unwrap_or_default());
    }
    server.stop().await?;
    Ok(figures)
}

async fn ceilings(sizes: Sizes, pg_url: &str, amqp_url: &str) -> anyhow::Result<report::Ceilings> {
    eprintln!("ceilings: HTTP (HMAC only)…");
    let http = ceiling_load(sizes, None).await?;
    eprintln!("ceilings: broker (confirmed publishes)…");
    let broker = ceilings::broker(amqp_url, 64, sizes.phase).await?;
    eprintln!("ceilings: broker through HTTP (HMAC, then a confirmed publish)…");
    let http_durable = ceiling_load(sizes, Some(amqp_url)).await?;
    eprintln!("ceilings: database (single-row transactions)…");
    let database = ceilings::database(pg_url, 16, sizes.phase).await?;
    Ok(report::Ceilings {
        http,
        broker,
        http_durable,
        database,
    })
}

/// Whether `phase` is measured when `phases` were asked for (none: all).
fn wanted(phases: &[Phase], phase: Phase) -> bool {
    phases.is_empty() || phases.contains(&phase)
}

/// Ingress at 64 and 256 connections, then (workers running) bursts of new owners and a
/// steady stream, each on a drained backlog and a settled database; only the `phases` asked
/// for, when any are.
async fn measure(
    deployment: &mut Deployment,
    sizes: Sizes,
    phases: &[Phase],
    start_workers: &[&str],
    ceiling_in_turn: Option<&str>,
) -> anyhow::Result<DeploymentReport> {
    let wants = |phase| wanted(phases, phase);
    let name = deployment.name;
    let ingress_url = deployment.ingress_url()?;
    let admin_url = deployment.admin_url()?;
    // The ingress phases' integration sends no invitations: their tens of thousands of new
    // owners are drained before the bursts only so that each burst starts on an idle system,
    // and sending their emails over SMTP would take that draining many minutes.
    let (integration, secret) =
        deployment::integration(&admin_url, serde_json::json!({"invite_mode": "off"})).await?;
    let ingress_only = Endpoint {
        url: ingress_url.clone(),
        integration,
        secret,
    };
    let (integration, secret) = deployment::integration(&admin_url, serde_json::json!({})).await?;
    let mut report = DeploymentReport::default();
    let rollcall = Endpoint {
        url: ingress_url,
        integration,
        secret,
    };
    // Compared with the broker ceiling through HTTP, that ceiling takes its phases in turn
    // with rollcall's, on a queue of the same broker.
    let ceiling = match ceiling_in_turn {
        Some(amqp_url) if wants(Phase::Ingress) => {
            Some(CeilingServer::start(Some(amqp_url)).await?)
        }
        _ => None,
    };
    let ingress_connections: &[usize] = if wants(Phase::Ingress) {
        &[64, 256]
    } else {
        &[]
    };
    for &conns in ingress_connections {
        eprintln!("{name}: ingress at {conns} connections…");
        let mix = Mix::parse(INGRESS_MIX)?;
        let mut endpoints = vec![&ingress_only];
        endpoints.extend(ceiling.as_ref().map(|server| &server.endpoint));
        let mut measured = rounds::in_turn(&endpoints, conns, mix, sizes.ingress)
            .await?
            .into_iter();
        let ours = measured.next().unwrap_or_default();
        if let Some(theirs) = measured.next() {
            report
                .ingress_vs_ceiling_in_turn
                .insert(conns, rounds::paired(&ours, theirs));
        }
        report.ingress.insert(conns, ours);
    }
    if let Some(server) = ceiling {
        server.stop().await?;
    }
    // Only provisioning is measured on a drained backlog: a run of the ingress alone leaves
    // its backlog to the deployment's teardown instead of minutes of draining.
    if !(wants(Phase::Burst) || wants(Phase::Steady)) {
        record_peak_rss(deployment, &mut report);
        return Ok(report);
    }
    if !start_workers.is_empty() {
        deployment.spawn(start_workers).await?;
    }
    eprintln!("{name}: draining the ingress phase's backlog…");
    deployment.drain(Duration::from_secs(600)).await?;
    let bursts = if wants(Phase::Burst) { sizes.bursts } else { 0 };
    for trial in 1..=bursts {
        deployment.settle_database().await?;
        eprintln!(
            "{name}: burst {trial} of {}: {} events for {} new owners…",
            sizes.bursts, sizes.burst_events, sizes.burst_owners
        );
        let burst = burst(deployment, sizes, &rollcall).await?;
        report.bursts.push(burst);
        deployment.drain(Duration::from_secs(600)).await?;
    }
    report.burst = median_burst(&report.bursts);
    if wants(Phase::Steady) {
        deployment.settle_database().await?;
        report.steady = Some(steady(deployment, sizes, &rollcall).await?);
    }
    record_peak_rss(deployment, &mut report);
    Ok(report)
}

fn record_peak_rss(deployment: &Deployment, report: &mut DeploymentReport) {
    for process in &deployment.processes {
        if let Some(rss) = process.peak_rss_mib() {
            report.peak_rss_mib.insert(process.role.clone(), rss);
        }
    }
}

/// A steady stream of new owners at `sizes.steady_rate`: how long each event took from being
/// accepted to its user being visible.
async fn steady(
    deployment: &mut Deployment,
    sizes: Sizes,
    rollcall: &Endpoint,
) -> anyhow::Result<Steady> {
    let name = deployment.name;
    eprintln!("{name}: steady {} events/s…", sizes.steady_rate);
    let mut steady = rollcall.load(64, Mix::NEW_ONLY);
    steady.rate = Some(sizes.steady_rate);
    steady.duration = Some(sizes.steady);
    let run = steady.run.clone();
    let sent = load::run(steady).await?;
    deployment.drain(Duration::from_secs(600)).await?;
    let mut millis = deployment.processing_millis(&run).await?;
    millis.sort_unstable();
    let at = |p: f64| -> f64 {
        if millis.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * millis.len() as f64).ceil() as usize;
        millis[rank.clamp(1, millis.len()) - 1] as f64
    };
    Ok(Steady {
        rate: sizes.steady_rate,
        events: millis.len(),
        p50_ms: at(50.0),
        p99_ms: at(99.0),
        max_ms: millis.last().copied().unwrap_or(0) as f64,
        ingress: sent,
    })
}

/// One burst of new owners, sent while the workers run: how long until every owner is a user
/// and every invitation is sent.
async fn burst(
    deployment: &mut Deployment,
    sizes: Sizes,
    rollcall: &Endpoint,
) -> anyhow::Result<Burst> {
    let name = deployment.name;
    let since = std::time::SystemTime::now();
    let mut burst = rollcall.load(64, Mix::NEW_ONLY);
    burst.count = Some(sizes.burst_events);
    burst.new_owner_cycle = Some(sizes.burst_owners);
    // The owners provisioned last, probed before the full counts are asked.
    let sample: Vec<String> = (sizes.burst_owners.saturating_sub(BURST_PROBE)..sizes.burst_owners)
        .map(|index| load::new_owner_id(&burst.run, index))
        .collect();
    let sampled = i64::try_from(sample.len()).unwrap_or(i64::MAX);
    let started = Instant::now();
    // Polled while the burst is still being sent: users are provisioned as their first
    // events arrive, so waiting for the load generator to finish would time the sending.
    let mut sending = tokio::spawn(load::run(burst));
    let mut sent = None;
    let owners = i64::try_from(sizes.burst_owners).unwrap_or(i64::MAX);
    let mut users_done = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    // Polled cheaply (see `provisioned`): the measuring must not take the CPU it measures.
    loop {
        if sent.is_none() && sending.is_finished() {
            sent = Some((&mut sending).await??);
        }
        let (users, invited) = deployment
            .provisioned(&rollcall.integration, &sample)
            .await?;
        if users_done.is_none()
            && users == sampled
            && deployment.created_since("users", since, "").await? >= owners
        {
            users_done = Some(started.elapsed());
        }
        if users_done.is_some()
            && sent.is_some()
            && invited == sampled
            && deployment
                .created_since("invitations", since, "status = 'sent'")
                .await?
                >= owners
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name}: the burst did not complete"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = sent.context("the burst's load did not report")?;
    let users_seconds = users_done.map_or(0.0, |d| d.as_secs_f64());
    let all_seconds = started.elapsed().as_secs_f64();
    Ok(Burst {
        events: sizes.burst_events,
        owners: sizes.burst_owners,
        seconds_until_all_users: users_seconds,
        seconds_until_all_invitations: all_seconds,
        users_per_second: sizes.burst_owners as f64 / users_seconds.max(1e-9),
        ingress: sent,
    })
}

/// The burst with the median users per second (the lower middle of an even count).
fn median_burst(bursts: &[Burst]) -> Option<Burst> {
    let mut sorted: Vec<&Burst> = bursts.iter().collect();
    sorted.sort_by(|a, b| a.users_per_second.total_cmp(&b.users_per_second));
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .map(|burst| (*burst).clone())
}

fn workdir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rollcall-bench-{name}-{}", run_id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn embedded(
    binary: PathBuf,
    sizes: Sizes,
    phases: &[Phase],
) -> anyhow::Result<DeploymentReport> {
    let dir = workdir("embedded")?;
    let mut deployment = Deployment {
        name: "embedded",
        binary,
        database_url: format!("sqlite://{}?mode=rwc", dir.join("rollcall.db").display()),
        dir,
        amqp: None,
        smtp: None,
        pg_cleanup: None,
        processes: Vec::new(),
        db: None,
    };
    deployment.spawn(&[]).await?;
    let result = measure(&mut deployment, sizes, phases, &[], None).await;
    deployment.stop().await?;
    result
}

/// `pg_url` naming database `name` instead, with its parameters (such as `sslmode`) kept.
fn with_database(pg_url: &str, name: &str) -> String {
    let (path, query) = pg_url
        .split_once('?')
        .map_or((pg_url, None), |(path, query)| (path, Some(query)));
    let base = path.rsplit_once('/').map_or(path, |(base, _)| base);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

async fn distributed(
    binary: PathBuf,
    sizes: Sizes,
    phases: &[Phase],
    pg_url: &str,
    amqp_url: &str,
) -> anyhow::Result<DeploymentReport> {
    use sea_orm::ConnectionTrait;
    let name = format!("rc_bench_{}", run_id());
    let admin = sea_orm::Database::connect(pg_url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let mut deployment = Deployment {
        name: "distributed",
        binary,
        dir: workdir("distributed")?,
        database_url: with_database(pg_url, &name),
        amqp: Some((amqp_url.to_owned(), format!("bench{}.", run_id()))),
        // Production sends invitations over SMTP, so this deployment does too: to a server in
        // this process, on loopback.
        smtp: Some(SmtpSink::counting().await?),
        pg_cleanup: Some((pg_url.to_owned(), name)),
        processes: Vec::new(),
        db: None,
    };
    deployment.spawn(&["admin"]).await?;
    deployment.spawn(&["ingress"]).await?;
    let result = measure(&mut deployment, sizes, phases, &["worker"], Some(amqp_url)).await;
    deployment.stop().await?;
    result
}

async fn run(
    scenarios: Vec<Scenario>,
    phases: Vec<Phase>,
    quick: bool,
    rollcall: PathBuf,
    out: PathBuf,
    pg_url: String,
    amqp_url: String,
) -> anyhow::Result<()> {
    let sizes = if quick { QUICK } else { FULL };
    let all = scenarios.is_empty();
    let wants = |scenario| all || scenarios.contains(&scenario);
    anyhow::ensure!(
        !(wants(Scenario::Embedded) || wants(Scenario::Distributed)) || rollcall.exists(),
        "{} does not exist: build it first (make bench does: cargo build --release -p rollcall)",
        rollcall.display()
    );
    // The processes run in their own directories: name the binary absolutely.
    let rollcall = std::fs::canonicalize(&rollcall).unwrap_or(rollcall);
    let mut report = Report::new(quick);
    if wants(Scenario::Ceilings) {
        report.ceilings = Some(ceilings(sizes, &pg_url, &amqp_url).await?);
    }
    if wants(Scenario::Embedded) {
        report.embedded = Some(embedded(rollcall.clone(), sizes, &phases).await?);
    }
    if wants(Scenario::Distributed) {
        report.distributed = Some(distributed(rollcall, sizes, &phases, &pg_url, &amqp_url).await?);
    }
    report.check_targets();
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("{}", report.markdown());
    eprintln!("written to {}", out.display());
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rollcall-bench: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run {
                scenarios,
                phases,
                quick,
                rollcall,
                out,
                pg_url,
                amqp_url,
            } => run(scenarios, phases, quick, rollcall, out, pg_url, amqp_url).await,
            Command::Load {
                url,
                integration,
                secret,
                conns,
                rate,
                count,
                duration,
                mix,
                new_owner_cycle,
            } => {
                let mut spec = Spec::new(&url, &integration, &secret, conns, Mix::parse(&mix)?);
                spec.rate = rate;
                spec.count = count;
                spec.new_owner_cycle = new_owner_cycle;
                spec.duration = count.is_none().then(|| Duration::from_secs_f64(duration));
                let outcome = load::run(spec).await?;
                println!("{}", serde_json::to_string_pretty(&outcome)?);
                Ok(())
            }
            Command::CeilingServer {
                addr,
                secret,
                amqp_url,
                queue,
            } => {
                let queue = queue.unwrap_or_else(ceilings::ceiling_queue_name);
                ceilings::serve_http_ceiling(&addr, &secret, amqp_url.as_deref(), &queue).await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rollcall-bench: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Phase, median_burst, wanted, with_database};
    use crate::report::Burst;

    fn burst(users_per_second: f64) -> Burst {
        Burst {
            events: 20_000,
            owners: 5_000,
            seconds_until_all_users: 5_000.0 / users_per_second,
            seconds_until_all_invitations: 10.0,
            users_per_second,
            ingress: crate::load::Outcome::default(),
        }
    }

    #[test]
    fn the_reported_burst_is_the_median_trial_with_its_own_timings() {
        let median = median_burst(&[burst(2_400.0), burst(1_500.0), burst(2_100.0)])
            .expect("a median of three");
        assert_eq!(median.users_per_second, 2_100.0);
        assert_eq!(median.seconds_until_all_users, 5_000.0 / 2_100.0);
        // An even count takes the lower middle: the report never rounds a figure up.
        let lower = median_burst(&[burst(2_400.0), burst(1_500.0)]).expect("a median of two");
        assert_eq!(lower.users_per_second, 1_500.0);
        assert!(median_burst(&[]).is_none());
    }

    #[test]
    fn no_phase_named_measures_every_phase_and_naming_some_measures_only_those() {
        for phase in [Phase::Ingress, Phase::Burst, Phase::Steady] {
            assert!(wanted(&[], phase));
        }
        let asked = [Phase::Burst, Phase::Steady];
        assert!(!wanted(&asked, Phase::Ingress));
        assert!(wanted(&asked, Phase::Burst));
        assert!(wanted(&asked, Phase::Steady));
    }

    #[test]
    fn a_database_url_names_another_database_and_keeps_its_parameters() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "rc_bench_1"),
            "postgres://u@h:5432/rc_bench_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres", "rc_bench_1"),
            "postgres://u@h/rc_bench_1"
        );
    }
}
