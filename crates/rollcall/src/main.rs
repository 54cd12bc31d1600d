//! The `rollcall` binary: configuration, logging, the wiring of every role (`serve`), and the
//! command line. It holds no business logic of its own: each command calls the crate that
//! owns the behaviour.
//!
//! The command line prints by design: results to stdout (JSON with `--json`), logs to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;
mod config;
mod health;
mod import;
mod serve;
mod setup;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

// Webhook handling allocates and frees many small buffers across threads; glibc's allocator
// spent about a fifth of the ingress's CPU on that under load, mimalloc a fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// rollcall: CRM webhooks in, user accounts and invitations out.
#[derive(Debug, Parser)]
#[command(name = "rollcall", version, about)]
struct Cli {
    /// A TOML file with settings (environment variables override it).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run rollcall (all roles, or those given with --role).
    Serve {
        /// Run only this role; repeat for several.
        #[arg(long = "role", value_enum)]
        roles: Vec<serve::Role>,
    },
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Tenants (customer companies).
    Tenant {
        #[command(subcommand)]
        command: commands::TenantCommand,
    },
    /// Integrations (CRM connections).
    Integration {
        #[command(subcommand)]
        command: commands::IntegrationCommand,
    },
    /// Dead letters: events given up after their retries.
    Dlq {
        #[command(subcommand)]
        command: commands::DlqCommand,
    },
    /// Users.
    Users {
        #[command(subcommand)]
        command: commands::UsersCommand,
    },
    /// Sign a sample canonical event with an integration's secret and post it to the ingress.
    SendTestEvent(commands::SendTestEvent),
    /// Print the Standard Webhooks headers for a body read from stdin.
    Sign(commands::Sign),
    /// Check one request's signature offline, with the ingress's code: prints `valid` (exit 0)
    /// or `invalid: <reason>` (exit 1). The body is read from stdin.
    Verify(commands::Verify),
    /// Import a roster file (CSV or JSON lines): one event per row, through the queue.
    Import(import::ImportArgs),
    /// Print a new random key for ROLLCALL_SECRET_KEY.
    Keygen,
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: escape codes in a log file or a collector are noise, and
    // styling every span's fields was a measurable part of each webhook's cost.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // TLS for outgoing HTTPS (CRM APIs, the test-event sender) uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // These two need no configuration or database.
    match &cli.command {
        Command::Keygen => {
            println!("{}", store::SecretCipher::generate_key());
            return Ok(());
        }
        Command::Verify(args) => {
            return if commands::verify(args)? {
                Ok(())
            } else {
                Err(Invalid.into())
            };
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config);
    match cli.command {
        Command::Serve { roles } => serve::serve(config, &roles).await,
        Command::Migrate => {
            setup::open_store(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Tenant { command } => commands::tenant(&config, command).await,
        Command::Integration { command } => commands::integration(&config, command).await,
        Command::Users { command } => commands::users(&config, command).await,
        Command::Dlq { command } => commands::dlq(&config, command).await,
        Command::SendTestEvent(args) => commands::send_test_event(&config, args).await,
        Command::Sign(args) => commands::sign(&args),
        Command::Import(args) => import::import(&config, args).await,
        Command::Keygen | Command::Verify(_) => Ok(()),
    }
}

/// `rollcall verify` found the request invalid (already printed): exit 1 without more output.
#[derive(Debug)]
struct Invalid;

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid")
    }
}

impl std::error::Error for Invalid {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Fault-test builds read FAILPOINTS (e.g. `worker-after-commit=1*return`) from the
    // environment; ordinary builds have no failpoints at all.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rollcall: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<Invalid>() => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("rollcall: {err:#}");
            ExitCode::FAILURE
        }
    }
}
