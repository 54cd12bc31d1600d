//! `rollcall import`: a roster file through the queue, with progress on the terminal.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::{ImportId, IntegrationId};
use importer::{ImportRequest, Progress};
use store::{RunState, Store, SyncRun};

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The integration whose owners the file lists.
    #[arg(long)]
    integration: IntegrationId,
    /// CSV with a header row (`.csv`) or JSON lines (`.jsonl`); columns named like the owner
    /// fields (id, email, first_name, last_name, name, status, title, department, …).
    file: PathBuf,
    /// Read a differently named column as an owner field, e.g. `--map "Work Email=email"`.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    map: Vec<String>,
    /// The file is the whole roster: owners of the integration absent from it leave.
    #[arg(long)]
    full_roster: bool,
    /// With --full-roster: stop, changing no one, if more than this share of the current
    /// owners would leave.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    max_deactivate_percent: u8,
    /// Show what each row would do; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Return once every row is queued instead of waiting for the outcomes.
    #[arg(long)]
    no_wait: bool,
    /// Print the result as JSON (no progress lines).
    #[arg(long)]
    json: bool,
}

/// Progress lines on stderr: rewritten in place on a terminal, a line a second otherwise.
struct Meter {
    started: Instant,
    last: std::sync::Mutex<Instant>,
    terminal: bool,
    quiet: bool,
}

impl Meter {
    fn new(quiet: bool) -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: std::sync::Mutex::new(now.checked_sub(Duration::from_secs(2)).unwrap_or(now)),
            terminal: std::io::stderr().is_terminal(),
            quiet,
        }
    }

    fn show(&self, line: &str, force: bool) {
        if self.quiet {
            return;
        }
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !force && last.elapsed() < Duration::from_secs(1) {
            return;
        }
        *last = Instant::now();
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if !self.quiet && self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }

    fn reading(&self, progress: Progress) {
        let rate = rate(progress.rows_read, self.started.elapsed());
        self.show(
            &format!(
                "read {} · queued {} · invalid {} · {rate:.0} rows/s",
                progress.rows_read, progress.rows_queued, progress.rows_invalid
            ),
            false,
        );
    }

    fn applying(&self, run: &SyncRun, since: Instant, force: bool) {
        let queued = run.rows_queued + run.absent.unwrap_or(0);
        let rate = rate(run.processed, since.elapsed());
        let eta = if rate > 0.0 && run.processed < queued {
            format!("{:.0}s", (queued - run.processed) as f64 / rate)
        } else {
            "-".to_owned()
        };
        self.show(
            &format!(
                "read {} · queued {queued} · applied {} · issues {} · failed {} · {rate:.0} rows/s · ETA {eta}",
                run.rows_read, run.processed, run.counts.issues, run.counts.failed
            ),
            force,
        );
    }
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

pub(crate) async fn import(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    let store = crate::setup::open_store(config).await?;
    let integration = store
        .integration(args.integration)
        .await?
        .with_context(|| format!("no integration {}", args.integration))?;
    let request = ImportRequest {
        integration,
        file_name: args
            .file
            .file_name()
            .and_then(|name| name.to_str())
            .map(str::to_owned),
        path: args.file.clone(),
        format: None,
        map: args.map.clone(),
        full_roster: args.full_roster,
        max_deactivate_percent: args.max_deactivate_percent,
        created_by: format!("cli ({})", crate::commands::whoami()),
    };
    if args.dry_run {
        let result = importer::dry_run(&store, &request).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
            return Ok(());
        }
        for decision in result.decisions.iter().take(20) {
            println!(
                "row {}: {} {}{}",
                decision.row,
                decision.decision.action,
                decision.decision.external_id,
                decision
                    .decision
                    .reason
                    .as_deref()
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default()
            );
        }
        if result.decisions.len() > 20 {
            println!(
                "… {} more rows (--json shows every row)",
                result.decisions.len() - 20
            );
        }
        for error in &result.errors {
            println!("row {}: invalid: {}", error.row, error.reason);
        }
        let actions: Vec<String> = result
            .actions
            .iter()
            .map(|(action, count)| format!("{action} {count}"))
            .collect();
        println!(
            "dry run: {} rows read, {} invalid; would {}; nothing was written",
            result.rows_read,
            result.rows_invalid,
            if actions.is_empty() {
                "do nothing".to_owned()
            } else {
                actions.join(" · ")
            }
        );
        return Ok(());
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let bus = crate::serve::build_bus(config, &store, shutdown.clone())?;
    crate::commands::wait_until_ready(&bus).await?;
    let meter = Meter::new(args.json);
    let run = importer::import(&store, &bus, &request, &|_, progress| {
        meter.reading(progress)
    })
    .await;
    shutdown.cancel();
    let run = run?;
    let result = if args.no_wait {
        current(&store, run).await?
    } else {
        wait(&store, run, &meter).await?
    };
    meter.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        summary(&result);
    }
    match result.state {
        RunState::Stopped | RunState::Failed => anyhow::bail!(
            "{}",
            result
                .stop_reason
                .as_deref()
                .unwrap_or("the import did not complete")
        ),
        _ => Ok(()),
    }
}

async fn current(store: &Store, run: ImportId) -> anyhow::Result<SyncRun> {
    store
        .sync_run(run)
        .await?
        .with_context(|| format!("import {run} vanished"))
}

/// Polls the run until every queued row has an outcome (or the run stopped).
async fn wait(store: &Store, run: ImportId, meter: &Meter) -> anyhow::Result<SyncRun> {
    let since = Instant::now();
    let mut idle_since = Instant::now();
    let mut last_processed = 0;
    loop {
        let state = current(store, run).await?;
        match state.state {
            RunState::Applying | RunState::Reading => {}
            _ => {
                meter.applying(&state, since, true);
                return Ok(state);
            }
        }
        meter.applying(&state, since, false);
        if state.processed != last_processed {
            last_processed = state.processed;
            idle_since = Instant::now();
        } else if idle_since.elapsed() > Duration::from_secs(60) {
            // Nothing applied for a minute: no worker is running. The rows stay queued.
            meter.finish();
            anyhow::bail!(
                "no row was applied for a minute (is a worker running?); the rows stay queued: \
                 follow them with GET /v1/imports/{run}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn summary(run: &SyncRun) {
    let took = run
        .finished_at
        .map(|at| {
            format!(
                " in {:.1} s",
                (at.millis() - run.started_at.millis()) as f64 / 1000.0
            )
        })
        .unwrap_or_default();
    println!(
        "import {} {}{took}: {} rows read, {} queued, {} invalid{}",
        run.id,
        serde_json::to_value(run.state)
            .ok()
            .and_then(|state| state.as_str().map(str::to_owned))
            .unwrap_or_default(),
        run.rows_read,
        run.rows_queued,
        run.rows_invalid,
        run.absent
            .map(|absent| format!(", {absent} absent from the roster"))
            .unwrap_or_default()
    );
    let counts = &run.counts;
    println!(
        "created {} · updated {} · unchanged {} · deactivated {} · reactivated {} · ignored {} · issues {} · failed {}",
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.deactivated,
        counts.reactivated,
        counts.ignored,
        counts.issues,
        counts.failed
    );
    if counts.issues + counts.failed > 0 {
        println!("rows with problems: GET /v1/imports/{}/errors.csv", run.id);
    }
    if let Some(reason) = &run.stop_reason {
        println!("stopped: {reason}");
    }
}
