//! `tenure risk …`: train the churn-risk model on a database, show its evaluation report and
//! the current customers most likely to churn, with reasons (docs/risk.md).

use std::io::Write;
use std::sync::RwLock;

use anyhow::Context;
use clap::{Args, Subcommand};
use tenure_core::time::{Clock, MILLIS_PER_DAY, format_instant, parse_instant};
use tenure_core::{LiveWorkspace, WorkspaceId};
use tenure_risk::RiskModel;
use tenure_risk::evaluation::Evaluation;
use tenure_risk::training::{RiskReport, TrainingOptions, churned, standing};
use tenure_store::{DatabaseUrl, Store};

use crate::segments::Common;

#[derive(Subcommand)]
pub enum RiskCommand {
    /// Train on the workspace's history now: both learners, a time-based holdout, the report
    /// kept with the model (which becomes the one in use).
    Train(TrainArgs),
    /// The evaluation report of the model in use.
    Report(Common),
    /// The current customers most likely to churn within the horizon, with reasons.
    Customers {
        /// How many to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
pub struct TrainArgs {
    /// Churned within this many days.
    #[arg(long, default_value_t = 30)]
    horizon_days: u32,
    /// Training cut-offs (the latest is the validation set).
    #[arg(long, default_value_t = 8)]
    cutoffs: u32,
    /// Days between training cut-offs.
    #[arg(long, default_value_t = 30)]
    spacing_days: u32,
    /// Train as of this date or instant (default: now): the data ends there.
    #[arg(long)]
    at: Option<String>,
    /// Also write the holdout rows (customer, probability, churned, recency) to this CSV, to
    /// check the report's figures independently. Every current customer is written: beyond
    /// 400,000 rows training samples them, and the CSV then holds more than the report read.
    #[arg(long)]
    holdout_csv: Option<std::path::PathBuf>,
    #[command(flatten)]
    common: Common,
}

fn open(database: &DatabaseUrl, workspace: Option<&str>) -> anyhow::Result<(Store, WorkspaceId)> {
    let store = Store::open(database.clone())?;
    store.with(|c| c.migrate().map(|_| ()))?;
    let ws = crate::resolve_workspace(&store, workspace)?;
    Ok((store, ws.id))
}

fn engine(store: &Store, ws: &WorkspaceId) -> anyhow::Result<LiveWorkspace> {
    store
        .with(|c| tenure_server::writer::rebuild(c, ws))
        .context("loading the workspace's events")
}

fn latest(store: &Store, ws: &WorkspaceId) -> anyhow::Result<(i64, RiskModel)> {
    let row = store.with(|c| c.latest_risk_model(ws))?.context(
        "no churn-risk model has been trained in this workspace yet: run `tenure risk train`",
    )?;
    let model = RiskModel::from_json(&row.model).map_err(anyhow::Error::msg)?;
    Ok((row.id, model))
}

pub fn run(database: &DatabaseUrl, command: RiskCommand, clock: &dyn Clock) -> anyhow::Result<()> {
    match command {
        RiskCommand::Train(args) => train(database, args, clock),
        RiskCommand::Report(common) => {
            let (store, ws) = open(database, common.workspace.as_deref())?;
            let (id, model) = latest(&store, &ws)?;
            if common.json {
                println!("{}", serde_json::to_string_pretty(&model.report)?);
            } else {
                print_report(id, &model.report);
            }
            Ok(())
        }
        RiskCommand::Customers { limit, common } => {
            let (store, ws) = open(database, common.workspace.as_deref())?;
            let (id, model) = latest(&store, &ws)?;
            let engine = engine(&store, &ws)?;
            let now = clock.now();
            let ranked = model.riskiest(engine.customers(), engine.names(), now, limit);
            if common.json {
                let data: Vec<_> = ranked
                    .top
                    .iter()
                    .map(|(s, p)| serde_json::json!({"customer_id": s.id, "user_id": s.user_id, "prediction": p}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "model": id, "as_of": format_instant(now),
                        "current_customers": ranked.current_customers,
                        "expected_churners": ranked.expected_churners, "data": data}))?
                );
                return Ok(());
            }
            println!(
                "{} current customers — paying and not cancelling, or never subscribed with an order in the last 365 days (docs/metrics.md, \"Current customers\"); {:.1} expected to churn within {} days (model {id}, {}, trained {}):",
                ranked.current_customers,
                ranked.expected_churners,
                model.horizon_days,
                model.report.kept.label(),
                &format_instant(model.trained_at)[..10],
            );
            println!("{:<28} {:<16} {:>6}  why", "customer", "user id", "risk");
            for (state, p) in &ranked.top {
                let why: Vec<String> = p
                    .reasons
                    .iter()
                    .map(|r| {
                        let value = r.value.map_or("—".to_owned(), |v| format!("{v:.1}"));
                        format!("{} {value} (+{:.2})", r.feature, r.contribution)
                    })
                    .collect();
                println!(
                    "{:<28} {:<16} {:>5.1}%  {}",
                    state.id,
                    state.user_id.as_deref().unwrap_or("—"),
                    100.0 * p.probability,
                    why.join(", ")
                );
            }
            Ok(())
        }
    }
}

fn train(database: &DatabaseUrl, args: TrainArgs, clock: &dyn Clock) -> anyhow::Result<()> {
    let (store, ws) = open(database, args.common.workspace.as_deref())?;
    let now = match &args.at {
        Some(text) => parse_instant(text)
            .with_context(|| format!("--at `{text}` is not a date (YYYY-MM-DD) or an instant"))?,
        None => clock.now(),
    };
    let options = TrainingOptions {
        horizon_days: args.horizon_days,
        cutoffs: args.cutoffs,
        spacing_days: args.spacing_days,
        ..TrainingOptions::default()
    };
    let engine = RwLock::new(engine(&store, &ws)?);
    let (id, model) = tenure_server::risk::train_and_keep(&store, &engine, &ws, now, &options)?;
    if let Some(path) = &args.holdout_csv {
        let engine = engine
            .read()
            .map_err(|_| anyhow::anyhow!("engine lock poisoned"))?;
        write_holdout(path, &engine, &model)?;
    }
    if args.common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"id": id, "report": model.report}))?
        );
    } else {
        print_report(id, &model.report);
    }
    Ok(())
}

/// The holdout rows as the report evaluated them: every current customer at the holdout
/// cut-off, the kept model's probability there, the outcome, and days since last activity.
fn write_holdout(
    path: &std::path::Path,
    engine: &LiveWorkspace,
    model: &RiskModel,
) -> anyhow::Result<()> {
    let day = model
        .report
        .holdout
        .cutoffs
        .first()
        .and_then(|d| parse_instant(d))
        .context("the report has no holdout cut-off")?;
    // A cut-off date is the last day the features read: the cut-off is that day's end.
    let at = day + MILLIS_PER_DAY - 1;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    writeln!(out, "customer_id,probability,churned,recency_days")?;
    for state in engine.customers() {
        let Some(standing) = standing(state, at) else {
            continue;
        };
        let Some(p) = model.probability(state, engine.names(), at) else {
            continue;
        };
        let recency = state
            .activity
            .iter()
            .rev()
            .find(|e| i64::from(e.day) * MILLIS_PER_DAY <= at)
            .map(|e| (at.div_euclid(MILLIS_PER_DAY) - i64::from(e.day)).to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "{},{p:.17},{},{recency}",
            state.id,
            u8::from(churned(state, standing, at, model.horizon_days))
        )?;
    }
    out.flush()?;
    Ok(())
}

fn line(name: &str, e: &Evaluation) -> String {
    let calibration = e
        .brier
        .map_or(String::new(), |b| format!("   Brier {b:.4}"));
    format!(
        "  {name:<26} AUC {:.3}   top decile: lift {:.2}, captures {:.0}% of churners{calibration}",
        e.auc,
        e.top_decile.lift,
        100.0 * e.top_decile.capture
    )
}

fn print_report(id: i64, r: &RiskReport) {
    println!(
        "Churn-risk model {id}, trained {} — churn within {} days.",
        format_instant(r.trained_at),
        r.options.horizon_days
    );
    println!(
        "  training: {} cut-offs {} … {}, {} rows, {} churned",
        r.fit.cutoffs.len(),
        r.fit.cutoffs.last().map_or("", String::as_str),
        r.fit.cutoffs.first().map_or("", String::as_str),
        r.fit.rows,
        r.fit.churned
    );
    println!(
        "  validation: {}, {} rows, {} churned;  holdout: {}, {} rows, {} churned",
        r.validation.cutoffs.join(", "),
        r.validation.rows,
        r.validation.churned,
        r.holdout.cutoffs.join(", "),
        r.holdout.rows,
        r.holdout.churned
    );
    println!("\nKept: {} ({}).", r.kept.label(), r.why);
    println!("On the holdout:");
    for c in &r.candidates {
        let kept = if c.learner == r.kept { " (kept)" } else { "" };
        println!(
            "{}",
            line(&format!("{}{kept}", c.learner.label()), &c.holdout)
        );
    }
    println!("{}", line("recency only (baseline)", &r.recency_baseline));
    println!(
        "  gain over the baseline: {:+.3} AUC",
        r.auc_gain_over_recency
    );
    if let Some(kept) = r.candidates.iter().find(|c| c.learner == r.kept)
        && let Some(bins) = &kept.holdout.reliability
    {
        println!("\nCalibration of the kept model on the holdout (predicted → observed):");
        for b in bins.iter().filter(|b| b.rows > 0) {
            println!(
                "  {:>3.0}–{:<3.0}%  {:>6} rows   predicted {:>5.1}%   observed {:>5.1}%",
                100.0 * b.from,
                100.0 * b.to,
                b.rows,
                100.0 * b.mean_predicted.unwrap_or(0.0),
                100.0 * b.observed.unwrap_or(0.0)
            );
        }
    }
    let top: Vec<String> = r
        .importance
        .iter()
        .take(6)
        .map(|f| format!("{} {:.2}", f.feature, f.mean_abs_contribution))
        .collect();
    println!(
        "\nMost important features (mean |log-odds contribution|): {}",
        top.join(", ")
    );
}
