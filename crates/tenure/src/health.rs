//! `tenure health`: the current customers by health grade and the at-risk list, straight
//! from the database (docs/health.md).

use anyhow::Context;
use clap::Args;
use tenure_core::time::{Clock, format_instant};
use tenure_store::{DatabaseUrl, Store};

#[derive(Args)]
pub struct HealthArgs {
    /// Workspace id or name (may be omitted when there is one).
    #[arg(long)]
    workspace: Option<String>,
    /// How many at-risk customers to list.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Score as of this date or instant (default: now).
    #[arg(long)]
    at: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn run(database: &DatabaseUrl, args: HealthArgs, clock: &dyn Clock) -> anyhow::Result<()> {
    let store = Store::open(database.clone())?;
    store.with(|c| c.migrate().map(|_| ()))?;
    let ws = crate::resolve_workspace(&store, args.workspace.as_deref())?;
    let engine = store
        .with(|c| tenure_server::writer::rebuild(c, &ws.id))
        .context("loading the workspace's events")?;
    let now = match &args.at {
        Some(text) => tenure_core::time::parse_instant(text)
            .with_context(|| format!("--at `{text}` is not a date (YYYY-MM-DD) or an instant"))?,
        None => clock.now(),
    };
    let overview =
        engine
            .health_models()
            .overview(engine.customers(), engine.names(), now, args.limit);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&overview)?);
        return Ok(());
    }
    let share = |n: usize| {
        if overview.customers == 0 {
            0.0
        } else {
            100.0 * n as f64 / overview.customers as f64
        }
    };
    println!(
        "Health of {}'s {} current customers — paying a subscription now or an order in the last 365 days, with a score (docs/metrics.md, \"Current customers\") — {} model, {}:",
        ws.name,
        overview.customers,
        overview.model,
        format_instant(now)
    );
    println!(
        "  red {} ({:.1}%)   yellow {} ({:.1}%)   green {} ({:.1}%)",
        overview.red,
        share(overview.red),
        overview.yellow,
        share(overview.yellow),
        overview.green,
        share(overview.green)
    );
    if overview.at_risk.is_empty() {
        println!("\nNo customer is at risk (red).");
        return Ok(());
    }
    println!("\nAt risk, lowest score first:");
    println!("{:<28} {:<16} {:>6}  why", "customer", "user id", "score");
    for c in &overview.at_risk {
        let reasons: Vec<String> = c
            .reasons
            .iter()
            .map(|r| {
                let value = r.value.map_or("—".to_owned(), |v| format!("{v:.2}"));
                format!("{} {value} (−{:.0} pts)", r.component, r.points_lost)
            })
            .collect();
        println!(
            "{:<28} {:<16} {:>6.1}  {}",
            c.customer_id,
            c.user_id.as_deref().unwrap_or("—"),
            c.score,
            reasons.join(", ")
        );
    }
    Ok(())
}
