//! `tenure`: the command line. Configuration comes from flags, then `TENURE_*` environment
//! variables, then `tenure.toml` in the working directory (or `--config`).

mod apply;
mod clv;
mod config;
mod customers;
mod demo;
mod export;
mod health;
mod import;
mod keys;
mod report;
mod risk;
mod segments;
mod spend;

use std::io::Write;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use tenure_core::WorkspaceId;
use tenure_core::time::Clock;
use tenure_server::{Application, Settings, SystemClock};
use tenure_store::{Store, Workspace};

use crate::config::Config;

/// mimalloc instead of the system allocator: ingest and rebuild allocate many small, short-
/// lived strings and JSON nodes (see docs/benchmarks.md for the measured difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tenure",
    version,
    about = "Customer-retention engine: measure, diagnose, act."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub struct GlobalArgs {
    /// Database URL: sqlite://PATH (default sqlite://tenure.db) or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "TENURE_DATABASE_URL")]
    database: Option<String>,
    /// Configuration file (default: tenure.toml if it exists).
    #[arg(long, global = true, env = "TENURE_CONFIG")]
    config: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the ingestion and admin API.
    Serve {
        /// Address to listen on (default 127.0.0.1:7878).
        #[arg(long, env = "TENURE_LISTEN")]
        listen: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long)]
        json: bool,
    },
    /// Manage workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// A customer's erasure and export (GDPR / CCPA requests).
    #[command(subcommand)]
    Customers(customers::CustomersCommand),
    /// What admins did in a workspace (keys, definitions, settings, erasures), newest first.
    Audit {
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Import events from a JSONL (Segment messages) or CSV file. Re-running never duplicates.
    Import(import::ImportArgs),
    /// Generate a demo business, load it and serve it.
    Demo(demo::DemoArgs),
    /// The loyalty report: subscriptions, cohorts, activity, orders, NPS, acquisition,
    /// concentration and what-if (see docs/metrics.md).
    Report(Box<report::ReportArgs>),
    /// Customer health: current customers by grade and the at-risk list with reasons.
    Health(health::HealthArgs),
    /// Store health models (and segments) from a JSON file; segments are reconciled.
    Apply(apply::ApplyArgs),
    /// Churn risk: train the model, see its evaluation report and the customers most at risk.
    #[command(subcommand)]
    Risk(risk::RiskCommand),
    /// Segments: list, show, preview, apply (create / update from a file) and delete.
    #[command(subcommand)]
    Segments(segments::SegmentsCommand),
    /// Write a workspace's event log as JSONL (Segment messages).
    Export(export::ExportArgs),
    /// Marketing spend per channel and month, for CAC.
    #[command(subcommand)]
    Spend(spend::SpendCommand),
    /// Customer-lifetime models on a transactions file (no database needed).
    #[command(subcommand)]
    Clv(ClvCommand),
}

#[derive(Subcommand)]
enum ClvCommand {
    /// Fit BG/NBD, MBG/NBD, Pareto/NBD, BG/BB, Gamma-Gamma or sBG by maximum likelihood.
    Fit(clv::ClvFitArgs),
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace.
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List workspaces.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a workspace's settings.
    Set {
        /// Workspace id or name (may be omitted when there is only one).
        #[arg(long)]
        workspace: Option<String>,
        /// The renewal policy profiles, health, segments and reports read subscriptions
        /// under: auto (implicit until a subscription's first Subscription Renewed),
        /// implicit or explicit (docs/metrics.md, "Renewals").
        #[arg(long)]
        renewals: String,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TENURE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Colours only on a terminal: a log written to a file keeps no escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let config = Config::load(cli.global.config.as_deref())?;
    let database = config.database(cli.global.database.as_deref())?;
    let clock = SystemClock;
    match cli.command {
        Command::Serve { listen } => {
            let listen = config.listen(listen.as_deref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let app = Application::build(Settings {
                    database,
                    listen,
                    clock: std::sync::Arc::new(clock),
                    risk_retrain_days: Some(config::risk_retrain_days()?),
                    limits: config::limits()?,
                })
                .await?;
                eprintln!(
                    "tenure is listening on http://{}:{}",
                    listen.ip(),
                    app.port()
                );
                eprintln!(
                    "the dashboard is at http://{}:{}/dashboard (log in with an admin key)",
                    listen.ip(),
                    app.port()
                );
                app.run_until_stopped().await?;
                anyhow::Ok(())
            })?;
        }
        Command::Migrate { json } => {
            let mut conn = tenure_store::connect(&database)?;
            let applied = conn.migrate()?;
            if json {
                println!(
                    "{}",
                    json!({"database": database.backend_name(), "applied": applied})
                );
            } else {
                println!(
                    "database is up to date ({}; {} migration(s) applied now)",
                    database.backend_name(),
                    applied.len()
                );
                for name in applied {
                    println!("  applied {name}");
                }
            }
        }
        Command::Workspace(WorkspaceCommand::Create { name, json }) => {
            let store = Store::open(database)?;
            let ws = tenure_server::admin::create_workspace(&store, &name, clock.now())?;
            if json {
                println!("{}", serde_json::to_string(&ws)?);
            } else {
                println!("created workspace {} ({})", ws.id, ws.name);
            }
        }
        Command::Workspace(WorkspaceCommand::Set {
            workspace,
            renewals,
            json,
        }) => {
            let Some(policy) = tenure_core::subscription::Renewals::parse(&renewals) else {
                bail!("--renewals `{renewals}`: expected auto, implicit or explicit");
            };
            let core = tenure_server::Core::open(&database)?;
            let ws = resolve_workspace(&core.store, workspace.as_deref())?;
            let done = core.ingestor.segment_blocking(
                ws.id.clone(),
                tenure_server::writer::WorkspaceOp::SetRenewals { renewals: policy },
            )?;
            core.close();
            let (entered, exited) = match done {
                tenure_server::writer::OpDone::Reconciled { entered, exited } => (entered, exited),
                _ => (0, 0),
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"workspace": ws.id, "renewals": policy.as_str(),
                        "segments_reconciled": {"entered": entered, "exited": exited}})
                );
            } else {
                println!(
                    "workspace {} ({}) reads renewals as `{}` now ({entered} segment entries, {exited} exits); a running `tenure serve` follows after a restart",
                    ws.id,
                    ws.name,
                    policy.as_str()
                );
            }
        }
        Command::Workspace(WorkspaceCommand::List { json }) => {
            let store = Store::open(database)?;
            let workspaces = store.with(|c| c.workspaces())?;
            if json {
                println!("{}", serde_json::to_string(&workspaces)?);
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{:<24} NAME", "ID")?;
                for ws in workspaces {
                    writeln!(out, "{:<24} {}", ws.id, ws.name)?;
                }
            }
        }
        Command::Keys(command) => keys::run(&database, command, &clock)?,
        Command::Customers(command) => customers::run(&database, command, &clock)?,
        Command::Audit {
            workspace,
            limit,
            json,
        } => keys::audit(&database, workspace.as_deref(), limit, json)?,
        Command::Import(args) => return import::run(&database, args, &clock),
        Command::Demo(args) => demo::run(&config, cli.global.database.as_deref(), args)?,
        Command::Clv(ClvCommand::Fit(args)) => clv::run(args)?,
        Command::Report(args) => {
            let database = reading_database(&config, cli.global.database.as_deref(), database);
            report::run(&database, *args, &clock)?
        }
        Command::Health(args) => {
            let database = reading_database(&config, cli.global.database.as_deref(), database);
            health::run(&database, args, &clock)?
        }
        Command::Apply(args) => {
            let database = reading_database(&config, cli.global.database.as_deref(), database);
            apply::run(&database, args)?
        }
        Command::Risk(command) => {
            let database = reading_database(&config, cli.global.database.as_deref(), database);
            risk::run(&database, command, &clock)?
        }
        Command::Segments(command) => {
            let database = reading_database(&config, cli.global.database.as_deref(), database);
            segments::run(&database, command, &clock)?
        }
        Command::Spend(command) => spend::run(&database, command)?,
        Command::Export(args) => export::run(&database, args)?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The database a reading command uses: straight after `tenure demo`, with nothing
/// configured and no tenure.db here, the demo's.
fn reading_database(
    config: &Config,
    flag: Option<&str>,
    database: tenure_store::DatabaseUrl,
) -> tenure_store::DatabaseUrl {
    let demo = std::path::Path::new(demo::DEMO_DATABASE);
    if !config.database_is_explicit(flag)
        && !std::path::Path::new("tenure.db").exists()
        && demo.exists()
    {
        eprintln!(
            "(no tenure.db here: reading the demo database {})",
            demo.display()
        );
        tenure_store::DatabaseUrl::Sqlite(demo.to_path_buf())
    } else {
        database
    }
}

/// A workspace by id or name; may be omitted when the database has exactly one.
pub fn resolve_workspace(store: &Store, wanted: Option<&str>) -> anyhow::Result<Workspace> {
    let workspaces = store.with(|c| c.workspaces())?;
    match wanted {
        Some(w) => {
            let by_id = WorkspaceId::parse(w).ok();
            workspaces
                .into_iter()
                .find(|ws| Some(&ws.id) == by_id.as_ref() || ws.name == w)
                .with_context(|| {
                    format!("no workspace `{w}`: list them with `tenure workspace list`")
                })
        }
        None => match workspaces.len() {
            0 => bail!("there is no workspace yet: create one with `tenure workspace create NAME`"),
            1 => Ok(workspaces
                .into_iter()
                .next()
                .context("workspace vanished")?),
            n => bail!(
                "there are {n} workspaces: say which with --workspace ID (see `tenure workspace list`)"
            ),
        },
    }
}
