//! `tenure demo`: generates the demo business (`tenure_core::demo`), loads it through the
//! same writer as the HTTP API, creates keys, and serves it.

use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tenure_core::demo::{DemoBusiness, DemoConfig};
use tenure_core::time::{Clock, MILLIS_PER_DAY, format_instant, parse_instant};
use tenure_core::{Envelope, Message};
use tenure_server::writer::Outcome;
use tenure_server::{Application, Core, Settings, SystemClock};
use tenure_store::{DatabaseUrl, KeyKind};

use crate::config::Config;

/// The database the demo uses unless told otherwise; recreated on every run.
pub const DEMO_DATABASE: &str = "tenure-demo.db";
const DEMO_WORKSPACE: &str = "demo";
/// Messages per writer request while loading.
const CHUNK: usize = 5000;

#[derive(Args)]
pub struct DemoArgs {
    /// Number of customers to generate.
    #[arg(long, default_value_t = 2000)]
    customers: usize,
    /// Months of history.
    #[arg(long, default_value_t = 24)]
    months: u32,
    /// Random seed: the same seed gives the same business.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Last day of the story (default: today, UTC).
    #[arg(long)]
    end: Option<String>,
    /// Address to serve on.
    #[arg(long, env = "TENURE_LISTEN")]
    listen: Option<String>,
    /// Load the data and exit without serving (prints a JSON summary).
    #[arg(long)]
    no_serve: bool,
}

pub fn run(config: &Config, database_flag: Option<&str>, args: DemoArgs) -> anyhow::Result<()> {
    let clock = SystemClock;
    let now = clock.now();
    let explicit_database = database_flag.or(config.database.as_deref());
    let database = match explicit_database {
        Some(url) => DatabaseUrl::parse(url)?,
        None => {
            for suffix in ["", "-wal", "-shm"] {
                let path = format!("{DEMO_DATABASE}{suffix}");
                if std::path::Path::new(&path).exists() {
                    std::fs::remove_file(&path).with_context(|| {
                        format!("cannot remove the previous demo database {path}")
                    })?;
                }
            }
            DatabaseUrl::Sqlite(DEMO_DATABASE.into())
        }
    };
    let end = match &args.end {
        Some(text) => parse_instant(text)
            .with_context(|| format!("--end `{text}` is not a date (YYYY-MM-DD)"))?,
        None => now.div_euclid(MILLIS_PER_DAY) * MILLIS_PER_DAY,
    };
    if end > now {
        bail!(
            "--end {} is in the future; the demo only generates the past",
            format_instant(end)
        );
    }
    if args.customers == 0 || args.months == 0 {
        bail!("--customers and --months must be at least 1");
    }

    let started = Instant::now();
    let core = Core::open(&database)?;
    if core
        .store
        .with(|c| c.workspaces())?
        .iter()
        .any(|w| w.name == DEMO_WORKSPACE)
    {
        bail!(
            "the database already has a `{DEMO_WORKSPACE}` workspace: give the demo a fresh database (or omit --database)"
        );
    }
    let workspace = tenure_server::admin::create_workspace(&core.store, DEMO_WORKSPACE, now)?;
    let business = DemoBusiness::new(DemoConfig {
        customers: args.customers,
        months: args.months,
        seed: args.seed,
        end,
    });

    let progress = if args.no_serve {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.customers as u64)
    };
    progress.set_style(
        ProgressStyle::with_template("generating and loading {bar:40} {pos}/{len} customers {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Generation and validation on one thread, appends on this one: the two cores overlap.
    let (chunks, incoming) = mpsc::sync_channel::<Vec<Message>>(4);
    let envelope = Envelope {
        received_at: now,
        batch_sent_at: None,
    };
    let generator_progress = progress.clone();
    let generator = std::thread::spawn(move || -> Result<(), String> {
        let mut chunk = Vec::with_capacity(CHUNK);
        for customer in business.customers() {
            for event in customer.events {
                let message = Message::parse(event, None, envelope)
                    .map_err(|e| format!("generated an invalid event: {e:?}"))?;
                chunk.push(message);
            }
            if chunk.len() >= CHUNK
                && chunks
                    .send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                    .is_err()
            {
                return Ok(());
            }
            generator_progress.inc(1);
        }
        if !chunk.is_empty() {
            let _ = chunks.send(chunk);
        }
        Ok(())
    });
    let mut stored = 0u64;
    for chunk in incoming {
        for outcome in core.ingestor.append_blocking(workspace.id.clone(), chunk)? {
            if let Outcome::Stored { .. } = outcome {
                stored += 1;
            }
        }
    }
    generator
        .join()
        .map_err(|_| anyhow::anyhow!("the generator panicked"))?
        .map_err(anyhow::Error::msg)?;
    progress.finish_and_clear();
    let customers = core
        .engines
        .get(&workspace.id)?
        .read()
        .map_err(|_| anyhow::anyhow!("engine lock poisoned"))?
        .customer_count();
    let segments = define_demo_segments(&core, &workspace.id)?;
    // Marketing spend of the paid channels, so CAC and CAC payback are defined.
    let spend = {
        let engine = core.engines.get(&workspace.id)?;
        let engine = engine
            .read()
            .map_err(|_| anyhow::anyhow!("engine lock poisoned"))?;
        tenure_core::demo::demo_spend(engine.customers())
    };
    core.store.with(|c| c.put_spend(&workspace.id, &spend))?;
    // The churn-risk model, trained on the demo's own history (docs/risk.md). A demo too
    // small to train on says so and goes on without one.
    let risk = {
        let engine = core.engines.get(&workspace.id)?;
        match tenure_server::risk::train_and_keep(
            &core.store,
            &engine,
            &workspace.id,
            now,
            &tenure_risk::training::TrainingOptions::default(),
        ) {
            Ok((_, model)) => {
                let model = std::sync::Arc::new(model);
                tenure_server::risk::install_blocking(
                    &core.ingestor,
                    &workspace.id,
                    model.clone(),
                )?;
                let r = &model.report;
                let kept = r.candidates.iter().find(|c| c.learner == r.kept);
                json!({"learner": r.kept, "holdout_auc": kept.map(|c| c.holdout.auc),
                       "recency_auc": r.recency_baseline.auc, "holdout_churners": r.holdout.churned})
            }
            Err(e) => {
                eprintln!("(no churn-risk model: {e})");
                serde_json::Value::Null
            }
        }
    };
    let (_, admin_key) =
        tenure_server::admin::create_key(&core.store, &workspace.id, KeyKind::Admin, now)?;
    let (_, write_key) =
        tenure_server::admin::create_key(&core.store, &workspace.id, KeyKind::Write, now)?;
    let elapsed = started.elapsed();

    if args.no_serve {
        println!(
            "{}",
            json!({"workspace": workspace.id, "customers": customers, "events": stored, "segments": segments, "risk": risk, "seconds": elapsed.as_secs_f64(),
                   "admin_key": admin_key, "write_key": write_key, "database": format!("{database:?}")})
        );
        core.close();
        return Ok(());
    }

    let listen = config.listen(args.listen.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = Application::from_core(core, Settings { database: database.clone(), listen, clock: std::sync::Arc::new(clock), risk_retrain_days: Some(crate::config::risk_retrain_days()?), limits: crate::config::limits()? }).await?;
        let base = format!("http://{}:{}", listen.ip(), app.port());
        println!(
            "\nTenure demo: {customers} customers, {stored} events over {} months, loaded in {:.1} s ({}).\n",
            args.months,
            elapsed.as_secs_f64(),
            match &database {
                DatabaseUrl::Sqlite(p) => format!("SQLite file {}", p.display()),
                DatabaseUrl::Postgres(_) => "PostgreSQL".into(),
            }
        );
        println!("  Dashboard  {base}/dashboard   (open it in a browser and log in with the key below)");
        println!("  API        {base}   (health: {base}/health)");
        println!("  workspace  {} ({DEMO_WORKSPACE})", workspace.id);
        println!("  admin key  {admin_key}");
        println!("  write key  {write_key}\n");
        println!("Look at the customers:\n  curl -s -H 'Authorization: Bearer {admin_key}' '{base}/v1/customers?limit=5'");
        println!("  curl -s -H 'Authorization: Bearer {admin_key}' {base}/v1/customers/user_000001\n");
        // Run from a build directory (`cargo run`), `tenure` is not on the PATH yet.
        let tenure = cli_name();
        println!("The loyalty report (in another terminal, in this directory):\n  {tenure} report");
        println!("  curl -s -H 'Authorization: Bearer {admin_key}' '{base}/v1/metrics/subscriptions'\n");
        println!("Who is at risk, and why:\n  {tenure} health");
        println!("  curl -s -H 'Authorization: Bearer {admin_key}' '{base}/v1/health-scores?limit=10'\n");
        if let Some(auc) = risk["holdout_auc"].as_f64() {
            println!(
                "Churn risk ({}, holdout AUC {auc:.3} against {:.3} for recency alone):\n  {tenure} risk customers      {tenure} risk report",
                risk["learner"].as_str().unwrap_or(""),
                risk["recency_auc"].as_f64().unwrap_or(f64::NAN)
            );
            println!("  curl -s -H 'Authorization: Bearer {admin_key}' '{base}/v1/risk/customers?limit=10'\n");
        }
        println!("Segments ({segments} defined, members kept exact as events arrive and time passes):\n  {tenure} segments list");
        println!("  curl -s -H 'Authorization: Bearer {admin_key}' {base}/v1/segments\n");
        println!(
            "Send an event (Segment format):\n  curl -s -u '{write_key}:' {base}/v1/track -H 'Content-Type: application/json' \\\n    -d '{{\"userId\": \"user_000001\", \"event\": \"Report Viewed\"}}'\n"
        );
        println!("Press Ctrl-C to stop.");
        app.run_until_stopped().await?;
        anyhow::Ok(())
    })
}

/// The segments the demo ships with (`demo_segments.json`), saved and backfilled like any
/// other definition. Returns how many.
fn define_demo_segments(
    core: &Core,
    workspace: &tenure_core::WorkspaceId,
) -> anyhow::Result<usize> {
    let items = serde_json::from_str(include_str!("demo_segments.json"))?;
    let parsed = crate::segments::parse_items(items, "demo_segments.json")?;
    Ok(crate::segments::save(core, workspace, parsed)?.len())
}

/// How to run the CLI from where this demo was started: `tenure` when the binary is
/// installed, the `cargo run` line when it runs from a build directory (where `tenure` is
/// not on the PATH).
fn cli_name() -> &'static str {
    let in_build_dir =
        std::env::current_exe().is_ok_and(|p| p.components().any(|c| c.as_os_str() == "target"));
    if in_build_dir {
        "cargo run --release -p tenure --"
    } else {
        "tenure"
    }
}
