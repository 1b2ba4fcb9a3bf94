//! `tenure report`: the loyalty report of a workspace, straight from the database (SQLite or
//! PostgreSQL): a readable summary, or every table as `--json` / `--csv`. The flags are the
//! query parameters of `GET /v1/metrics` with `-` for `_`.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use tenure_core::metrics::{Query, Report, SubscriptionRow, Table};
use tenure_core::time::Clock;
use tenure_store::{DatabaseUrl, Store};

#[derive(Args, Debug, Default)]
pub struct ReportArgs {
    /// Workspace id or name (may be omitted when there is only one).
    #[arg(long)]
    workspace: Option<String>,
    /// Every selected table as JSON (per-period rows named as in docs/metrics.md).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Every selected table as CSV, each after a `# table` line.
    #[arg(long)]
    csv: bool,
    /// Tables to compute (comma-separated or repeated): subscriptions, cohorts, activity,
    /// lifecycle, stickiness, transactions, voice, nps_breakdown, verbatims, referrals,
    /// channels, concentration, what_if. Default: all.
    #[arg(long, value_delimiter = ',')]
    metric: Vec<String>,
    /// day, week, month (default), quarter or year.
    #[arg(long)]
    grain: Option<String>,
    /// First day covered (default: 12 periods back).
    #[arg(long)]
    from: Option<String>,
    /// Last day covered / the report instant (default: now).
    #[arg(long)]
    to: Option<String>,
    /// Only customers from this acquisition channel.
    #[arg(long)]
    channel: Option<String>,
    /// Only customers whose latest plan is this one.
    #[arg(long)]
    plan: Option<String>,
    /// Only customers first seen in this period (a label at the grain: 2026-03, 2026-Q1…).
    #[arg(long)]
    cohort: Option<String>,
    /// Only customers with this trait value (`name:value`).
    #[arg(long = "trait")]
    trait_equals: Option<String>,
    /// Reporting currency (default: the most used).
    #[arg(long)]
    currency: Option<String>,
    /// Conversion rate into the reporting currency, `CUR:rate` (repeatable).
    #[arg(long)]
    rate: Vec<String>,
    /// period_end (default) or cancellation.
    #[arg(long)]
    churn_date: Option<String>,
    /// Days an unrenewed subscription stays counted before it churns (default 30).
    #[arg(long)]
    past_due_days: Option<String>,
    /// auto (default: a subscription renews itself until its first Subscription Renewed,
    /// then needs one each period), implicit (always renews itself) or explicit (needs a
    /// renewal each period, else past due): docs/metrics.md.
    #[arg(long)]
    renewals: Option<String>,
    /// A comeback within this many days is a reactivation, later it is new (default: none).
    #[arg(long)]
    reactivation_window_days: Option<String>,
    /// apply (default) or ignore.
    #[arg(long)]
    discounts: Option<String>,
    /// Periods in the smoothed churn (default 6).
    #[arg(long)]
    smoothing_periods: Option<String>,
    /// Gross margin for LTV and CAC payback, in (0, 1] (default 1).
    #[arg(long)]
    gross_margin: Option<String>,
    /// Activity retention: events that start a cohort (comma-separated; default any).
    #[arg(long)]
    event: Vec<String>,
    /// Activity retention: events that count as a return (default: --event).
    #[arg(long)]
    return_event: Vec<String>,
    /// first_time (default) or recurring.
    #[arg(long)]
    cohort_kind: Option<String>,
    /// on (default) or on_or_after.
    #[arg(long)]
    mode: Option<String>,
    /// calendar (default) or rolling.
    #[arg(long)]
    window: Option<String>,
    /// Occurrences needed in an interval (default 1).
    #[arg(long)]
    min_occurrences: Option<String>,
    /// What-if horizon in periods (default 12).
    #[arg(long)]
    horizon: Option<String>,
    /// What-if change of churn in percent (e.g. -10).
    #[arg(long, allow_hyphen_values = true)]
    churn_change: Option<String>,
}

impl ReportArgs {
    /// The flags as the query's `name=value` pairs.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let single = [
            ("grain", &self.grain),
            ("from", &self.from),
            ("to", &self.to),
            ("channel", &self.channel),
            ("plan", &self.plan),
            ("cohort", &self.cohort),
            ("trait", &self.trait_equals),
            ("currency", &self.currency),
            ("churn_date", &self.churn_date),
            ("past_due_days", &self.past_due_days),
            ("renewals", &self.renewals),
            ("reactivation_window_days", &self.reactivation_window_days),
            ("discounts", &self.discounts),
            ("smoothing_periods", &self.smoothing_periods),
            ("gross_margin", &self.gross_margin),
            ("cohort_kind", &self.cohort_kind),
            ("mode", &self.mode),
            ("window", &self.window),
            ("min_occurrences", &self.min_occurrences),
            ("horizon", &self.horizon),
            ("churn_change", &self.churn_change),
        ];
        for (name, value) in single {
            if let Some(v) = value {
                pairs.push((name, v.clone()));
            }
        }
        for (name, values) in [
            ("rate", &self.rate),
            ("event", &self.event),
            ("return_event", &self.return_event),
        ] {
            pairs.extend(values.iter().map(|v| (name, v.clone())));
        }
        pairs
    }
}

pub fn run(database: &DatabaseUrl, args: ReportArgs, clock: &dyn Clock) -> anyhow::Result<()> {
    let query = Query::parse(
        args.pairs().iter().map(|(k, v)| (*k, v.as_str())),
        clock.now(),
    )
    .map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("  --{}: {}", e.parameter.replace('_', "-"), e.message))
            .collect();
        anyhow::anyhow!("bad report options:\n{}", lines.join("\n"))
    })?;
    let mut tables = Vec::new();
    for name in args
        .metric
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
    {
        let Some(t) = Table::parse(name) else {
            let names: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
            bail!(
                "--metric: no metric `{name}`; the metrics are: {}",
                names.join(", ")
            );
        };
        tables.push(t);
    }
    if tables.is_empty() {
        tables = Table::ALL.to_vec();
    }
    let store = Store::open(database.clone())?;
    store.with(|c| c.migrate().map(|_| ()))?;
    let ws = crate::resolve_workspace(&store, args.workspace.as_deref())?;
    let spend = store.with(|c| c.spend(&ws.id))?;
    let engine = store
        .with(|c| tenure_server::writer::rebuild(c, &ws.id))
        .context("loading the workspace's events")?;
    let query = query.with_workspace_renewals(engine.renewals());
    let report = Report::build(&engine, &query, &spend, &tables);
    let mut out = String::new();
    if args.json {
        out = serde_json::to_string_pretty(&report)?;
        out.push('\n');
    } else if args.csv {
        write_csv(&report, &mut out)?;
    } else {
        summary(&report, &ws.name, &mut out)?;
    }
    use std::io::Write;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

fn money(minor: f64, currency: &str) -> String {
    tenure_core::money::format_minor(minor, currency)
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

/// "▲ 2.3%" / "▼ 0.4 pt" style change of a value versus the previous period.
fn change(now: Option<f64>, before: Option<f64>, points: bool) -> String {
    let (Some(a), Some(b)) = (now, before) else {
        return String::new();
    };
    let (d, unit) = if points {
        ((a - b) * 100.0, " pt")
    } else if b != 0.0 {
        ((a - b) / b.abs() * 100.0, "%")
    } else {
        return String::new();
    };
    let arrow = match d.partial_cmp(&0.0) {
        Some(std::cmp::Ordering::Greater) => "▲",
        Some(std::cmp::Ordering::Less) => "▼",
        _ => "=",
    };
    format!("{arrow} {:.1}{unit}", d.abs())
}

fn summary(report: &Report, workspace: &str, out: &mut String) -> anyhow::Result<()> {
    let q = &report.query;
    let cur = report.currency.currency.as_str();
    let grain = format!("{:?}", q.grain).to_lowercase();
    writeln!(
        out,
        "Tenure loyalty report — {workspace} ({}), {grain}ly, as of {} — {} customers{}",
        report.workspace,
        report.as_of,
        report.customers,
        if q.filter.is_empty() {
            ""
        } else {
            " (filtered)"
        }
    )?;
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    if let Some(rows) = &report.subscriptions {
        subscriptions_summary(rows, &grain, cur, out)?;
    }
    if let Some(c) = &report.cohorts {
        let ages: Vec<String> = [1usize, 3, 6, 12]
            .iter()
            .filter_map(|k| {
                let a = c.average.get(*k)?;
                a.logo_retention.map(|r| {
                    format!(
                        "{grain} {k}: {} (net MRR {})",
                        pct(Some(r)),
                        pct(a.net_mrr_retention)
                    )
                })
            })
            .collect();
        if !ages.is_empty() {
            writeln!(
                out,
                "\nCohorts (by first payment; size-weighted average retention)"
            )?;
            writeln!(out, "  {}", ages.join(" · "))?;
        }
    }
    if let Some(a) = &report.activity {
        let ages: Vec<String> = [1usize, 2, 3, 6]
            .iter()
            .filter_map(|k| {
                a.average
                    .get(*k)
                    .copied()
                    .flatten()
                    .map(|r| format!("{grain} {k}: {}", pct(Some(r))))
            })
            .collect();
        if !ages.is_empty() {
            let what = if q.activity.events.is_empty() {
                "any event".to_owned()
            } else {
                q.activity.events.join(", ")
            };
            writeln!(out, "\nActivity retention ({what}; first-time cohorts)")?;
            writeln!(out, "  {}", ages.join(" · "))?;
        }
    }
    if let Some(rows) = &report.lifecycle
        && let Some(r) = rows.iter().rev().find(|r| r.header.complete)
    {
        writeln!(
            out,
            "  {}: {} active — {} new, {} returning, {} resurrecting; {} went dormant",
            r.header.period, r.active, r.new, r.returning, r.resurrecting, r.dormant
        )?;
    }
    if let Some(rows) = &report.transactions
        && let Some(r) = rows
            .iter()
            .rev()
            .find(|r| r.header.complete && r.orders > 0)
    {
        writeln!(out, "\nOrders ({})", r.header.period)?;
        writeln!(
            out,
            "  {} orders by {} customers, {} revenue; average order {}; repeat purchase rate {}",
            r.orders,
            r.purchasers,
            money(r.order_revenue as f64, cur),
            r.average_order_value
                .map_or("n/a".into(), |v| money(v, cur)),
            pct(r.repeat_purchase_rate)
        )?;
        writeln!(
            out,
            "  new customers spent {}, existing customers {}",
            money(r.new_customer_revenue as f64, cur),
            money(r.existing_customer_revenue as f64, cur)
        )?;
    }
    if let Some(rows) = &report.voice {
        let complete: Vec<_> = rows.iter().filter(|r| r.header.complete).collect();
        let answered: u64 = rows.iter().map(|r| r.nps_responses).sum();
        if answered > 0 {
            let (p, d, s): (u64, u64, u64) = rows.iter().fold((0, 0, 0), |a, r| {
                (a.0 + r.promoters, a.1 + r.detractors, a.2 + r.nps_skipped)
            });
            let nps = 100.0 * (p as f64 - d as f64) / answered as f64;
            writeln!(out, "\nVoice of the customer (whole range)")?;
            writeln!(
                out,
                "  NPS {nps:+.0} from {answered} scored answers ({p} promoters, {d} detractors; {s} skipped, not counted)"
            )?;
            if let [.., prev, last] = complete.as_slice() {
                writeln!(
                    out,
                    "  {}: NPS {} (previous {})",
                    last.header.period,
                    last.nps.map_or("n/a".into(), |n| format!("{n:+.0}")),
                    prev.nps.map_or("n/a".into(), |n| format!("{n:+.0}"))
                )?;
            }
        }
    }
    if let Some(rows) = &report.referrals {
        let (new, referred) = rows.iter().fold((0, 0), |a, r| {
            (a.0 + r.new_customers, a.1 + r.referred_customers)
        });
        if new > 0 {
            writeln!(out, "\nAcquisition")?;
            writeln!(
                out,
                "  referral share {} ({referred} of {new} new customers)",
                pct(Some(referred as f64 / new as f64))
            )?;
        }
    }
    if let Some(rows) = &report.channels
        && !rows.is_empty()
    {
        writeln!(
            out,
            "  {:<14} {:>6} {:>9} {:>8} {:>14} {:>7} {:>12} {:>9}",
            "channel", "new", "customers", "churn", "LTV", "NPS", "CAC", "payback"
        )?;
        for r in rows {
            writeln!(
                out,
                "  {:<14} {:>6} {:>9} {:>8} {:>14} {:>7} {:>12} {:>9}",
                r.channel,
                r.new_customers,
                r.customers,
                pct(r.logo_churn_rate),
                r.ltv.map_or("n/a".into(), |v| money(v, cur)),
                r.nps.map_or("n/a".into(), |n| format!("{n:+.0}")),
                r.cac.map_or("n/a".into(), |v| money(v, cur)),
                r.cac_payback_months
                    .map_or("n/a".into(), |m| format!("{m:.1} mo")),
            )?;
        }
    }
    if let Some(c) = &report.concentration
        && c.customers > 0
    {
        writeln!(out, "\nRevenue concentration (trailing 12 months)")?;
        writeln!(
            out,
            "  the top 20% of customers earn {} of {} revenue; Gini {:.2}",
            pct(c.top_20_share),
            money(c.revenue as f64, cur),
            c.gini.unwrap_or(0.0)
        )?;
    }
    if let Some(w) = &report.what_if
        && let (Some(b), Some(s)) = (w.baseline.last(), w.scenario.last())
    {
        writeln!(out, "\nWhat if churn changed by {:+}%", q.churn_change)?;
        writeln!(
            out,
            "  in {} {grain}s: {:.0} customers and {} MRR (baseline {:.0} and {}); revenue {}{}",
            b.period,
            s.customers,
            money(s.mrr, cur),
            b.customers,
            money(b.mrr, cur),
            if w.revenue_difference >= 0.0 { "+" } else { "" },
            money(w.revenue_difference, cur)
        )?;
    }
    writeln!(
        out,
        "\nEvery number is defined in docs/metrics.md; --json or --csv give the full tables."
    )?;
    Ok(())
}

fn subscriptions_summary(
    rows: &[SubscriptionRow],
    grain: &str,
    cur: &str,
    out: &mut String,
) -> anyhow::Result<()> {
    let complete: Vec<&SubscriptionRow> = rows.iter().filter(|r| r.header.complete).collect();
    let Some(last) = complete.last().copied() else {
        writeln!(
            out,
            "\nSubscriptions: no complete {grain} in the range yet."
        )?;
        return Ok(());
    };
    if last.mrr == 0 && last.mrr_start == 0 && last.customers == 0 {
        writeln!(
            out,
            "\nSubscriptions: none yet — send `Subscription Started` events (or import subscriptions)."
        )?;
        return Ok(());
    }
    let prev = complete.len().checked_sub(2).map(|i| complete[i]);
    let p = |f: fn(&SubscriptionRow) -> Option<f64>| prev.and_then(f);
    writeln!(
        out,
        "\nSubscriptions — {} (the last complete {grain}; change vs the one before)",
        last.header.period
    )?;
    let line = |out: &mut String, label: &str, value: String, delta: String| {
        writeln!(out, "  {label:<26} {value:>20}   {delta}")
    };
    line(
        out,
        "MRR",
        money(last.mrr as f64, cur),
        change(Some(last.mrr as f64), p(|r| Some(r.mrr as f64)), false),
    )?;
    line(
        out,
        "Paying customers (end)",
        last.paying_customers.to_string(),
        change(
            Some(last.paying_customers as f64),
            p(|r| Some(r.paying_customers as f64)),
            false,
        ),
    )?;
    line(
        out,
        "Logo churn",
        pct(last.logo_churn_rate),
        change(last.logo_churn_rate, p(|r| r.logo_churn_rate), true),
    )?;
    line(
        out,
        "Smoothed logo churn",
        pct(last.smoothed_logo_churn_rate),
        change(
            last.smoothed_logo_churn_rate,
            p(|r| r.smoothed_logo_churn_rate),
            true,
        ),
    )?;
    if let Some(c) = last.smoothed_logo_churn_rate.filter(|c| *c > 0.0) {
        writeln!(
            out,
            "    {:.1}% {grain}ly churn ≈ {:.0}-{grain} average lifetime",
            c * 100.0,
            1.0 / c
        )?;
    } else {
        writeln!(
            out,
            "    no churn in the smoothing window: lifetime and LTV are undefined"
        )?;
    }
    line(
        out,
        "Net revenue retention",
        pct(last.net_revenue_retention),
        change(
            last.net_revenue_retention,
            p(|r| r.net_revenue_retention),
            true,
        ),
    )?;
    line(
        out,
        "Gross revenue retention",
        pct(last.gross_revenue_retention),
        change(
            last.gross_revenue_retention,
            p(|r| r.gross_revenue_retention),
            true,
        ),
    )?;
    line(
        out,
        "Quick ratio",
        last.quick_ratio.map_or("n/a".into(), |q| format!("{q:.2}")),
        String::new(),
    )?;
    line(
        out,
        "ARPA",
        last.arpa.map_or("n/a".into(), |a| money(a, cur)),
        change(last.arpa, p(|r| r.arpa), false),
    )?;
    line(
        out,
        "LTV (ARPA × margin ÷ churn)",
        last.ltv.map_or("undefined".into(), |v| money(v, cur)),
        String::new(),
    )?;
    if last.net_revenue_retention.is_some_and(|n| n > 1.0) {
        writeln!(
            out,
            "    net negative churn: expansion outweighs contraction and churn"
        )?;
    }
    writeln!(
        out,
        "  MRR movements: new +{}, expansion +{}, reactivation +{}, contraction −{}, churn −{} = net {}",
        money(last.new_mrr as f64, cur),
        money(last.expansion_mrr as f64, cur),
        money(last.reactivation_mrr as f64, cur),
        money(last.contraction_mrr as f64, cur),
        money(last.churned_mrr as f64, cur),
        money(last.net_new_mrr as f64, cur)
    )?;
    writeln!(
        out,
        "  customers: {} new, {} reactivated, {} churned of {} at the start; {} joined and left within the {grain} (not in the churn rate)",
        last.new_customers,
        last.reactivated_customers,
        last.churned_customers,
        last.customers_start,
        last.joined_and_churned_customers
    )?;
    writeln!(
        out,
        "\n  {:<9} {:>18} {:>14} {:>14} {:>8} {:>8}",
        "period", "MRR", "new", "churned", "churn", "NRR"
    )?;
    for r in rows {
        writeln!(
            out,
            "  {:<9} {:>18} {:>14} {:>14} {:>8} {:>8}{}",
            r.header.period,
            money(r.mrr as f64, cur),
            money(r.new_mrr as f64, cur),
            money(r.churned_mrr as f64, cur),
            pct(r.logo_churn_rate),
            pct(r.net_revenue_retention),
            if r.header.complete { "" } else { "  (running)" }
        )?;
    }
    Ok(())
}

/// Flattens each table into CSV: per-period tables one row per period; the cohort and
/// activity matrices in long form (one row per cell); nested lists joined with `;`.
fn write_csv(report: &Report, out: &mut String) -> anyhow::Result<()> {
    let value = serde_json::to_value(report)?;
    for table in Table::ALL {
        let Some(v) = value.get(table.name()) else {
            continue;
        };
        let rows: Vec<Value> = match table {
            Table::Cohorts => v["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|row| {
                    let head = row.clone();
                    row["cells"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |cell| {
                            let mut o = serde_json::Map::new();
                            o.insert("cohort".into(), head["cohort"].clone());
                            o.insert("cohort_customers".into(), head["customers"].clone());
                            o.insert("initial_mrr".into(), head["initial_mrr"].clone());
                            if let Value::Object(c) = cell {
                                o.extend(c);
                            }
                            Value::Object(o)
                        })
                })
                .collect(),
            Table::Activity => v["cohorts"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|row| {
                    let n = row["returned"].as_array().map_or(0, Vec::len);
                    (0..n).map(move |k| {
                        serde_json::json!({
                            "cohort": row["cohort"], "customers": row["customers"], "interval": k,
                            "returned": row["returned"][k], "retention": row["retention"][k],
                            "complete": row["complete"][k],
                        })
                    })
                })
                .collect(),
            Table::Concentration => v["lorenz"].as_array().cloned().unwrap_or_default(),
            Table::WhatIf => {
                let mut rows = Vec::new();
                for series in ["baseline", "scenario"] {
                    for p in v[series].as_array().into_iter().flatten() {
                        let mut p = p.clone();
                        p["series"] = Value::String(series.into());
                        rows.push(p);
                    }
                }
                rows
            }
            _ => v.as_array().cloned().unwrap_or_default(),
        };
        writeln!(out, "# {}", table.name())?;
        let Some(Value::Object(first)) = rows.first() else {
            writeln!(out)?;
            continue;
        };
        // Identifying columns first, then the metrics in name order.
        let lead = [
            "period",
            "cohort",
            "channel",
            "dimension",
            "value",
            "series",
            "age",
            "interval",
        ];
        let mut columns: Vec<String> = lead
            .iter()
            .filter(|c| first.contains_key(**c))
            .map(|c| (*c).to_owned())
            .collect();
        columns.extend(
            first
                .keys()
                .filter(|k| !lead.contains(&k.as_str()))
                .cloned(),
        );
        writeln!(out, "{}", columns.join(","))?;
        for row in &rows {
            let cells: Vec<String> = columns.iter().map(|c| csv_cell(&row[c])).collect();
            writeln!(out, "{}", cells.join(","))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn csv_cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(csv_cell).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}
