//! `tenure clv fit`: customer-lifetime models on any transactions file, without a Tenure
//! database — the drop-in for `lifetimes` users (same summaries, same parameters).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Value, json};
use tenure_clv::bgbb::{BgBb, Opportunities};
use tenure_clv::bgnbd::Rft;
use tenure_clv::clv::units_per_month;
use tenure_clv::gamma_gamma::GammaGamma;
use tenure_clv::optimize::Fit;
use tenure_clv::purchases::{PurchaseModel, PurchaseModelKind};
use tenure_clv::sbg::ShiftedBetaGeometric;
use tenure_clv::summary::{CustomerSummary, Transaction, days_from_civil, summarize};
use tenure_core::predictions::batch::{Horizon, forecast_all};
use tenure_core::time::{day_of, parse_instant};

#[derive(Args)]
pub struct ClvFitArgs {
    /// A CSV of transactions (one row per purchase), or for `--model sbg` a CSV whose first
    /// column is the period and whose other columns are cohorts' counts of customers still
    /// active at the start of each period.
    file: PathBuf,
    #[arg(long, value_enum)]
    model: Model,
    #[arg(long, default_value = "customer_id")]
    customer_column: String,
    /// Dates as YYYY-MM-DD, YYYYMMDD or ISO-8601 date-times (UTC).
    #[arg(long, default_value = "date")]
    date_column: String,
    /// Transaction value (needed by `gg`).
    #[arg(long)]
    value_column: Option<String>,
    #[arg(long, value_enum, default_value = "week")]
    time_unit: TimeUnit,
    /// Fit on purchases up to this date (inclusive) and compare the predictions with what
    /// happened after it, up to the last date in the file.
    #[arg(long)]
    calibration_end: Option<String>,
    /// Monthly discount rate for customer lifetime value (`lifetimes`' `discount_rate`).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    discount_rate: f64,
    /// CLV horizon in months (`lifetimes`' `time`).
    #[arg(long, default_value_t = 12)]
    clv_months: u32,
    /// Write one row per customer to this CSV: the summary (frequency, recency, T, monetary
    /// value), probability alive, expected purchases over the CLV horizon, CLV and DERT.
    #[arg(long)]
    predictions: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Model {
    Bgnbd,
    Mbgnbd,
    Pnbd,
    Bgbb,
    Gg,
    Sbg,
}

#[derive(Clone, Copy, ValueEnum)]
enum TimeUnit {
    Day,
    Week,
    Month,
}

impl TimeUnit {
    fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
            TimeUnit::Month => 365.25 / 12.0,
        }
    }
}

pub fn run(args: ClvFitArgs) -> anyhow::Result<()> {
    let report = if args.model == Model::Sbg {
        fit_sbg(&args)?
    } else {
        fit_transactions(&args)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn parse_day(text: &str) -> Option<i32> {
    let text = text.trim();
    if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        let n: u32 = text.parse().ok()?;
        let (y, m, d) = ((n / 10_000) as i32, n / 100 % 100, n % 100);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        return Some(days_from_civil(y, m, d));
    }
    parse_instant(text).map(day_of)
}

fn column(headers: &csv::StringRecord, name: &str, flag: &str) -> anyhow::Result<usize> {
    headers
        .iter()
        .position(|h| h.trim() == name)
        .with_context(|| {
            format!(
                "the file has no column `{name}` ({flag}); its columns are: {}",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
}

/// The transactions, and each customer's id by index.
fn read_transactions(args: &ClvFitArgs) -> anyhow::Result<(Vec<Transaction>, Vec<String>)> {
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = if args.json || size < 50_000_000 {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    progress.set_style(
        ProgressStyle::with_template("reading {bar:40} {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(progress.wrap_read(file)));
    let headers = reader
        .headers()
        .context("the file has no header row")?
        .clone();
    let customer_col = column(&headers, &args.customer_column, "--customer-column")?;
    let date_col = column(&headers, &args.date_column, "--date-column")?;
    let value_col = args
        .value_column
        .as_deref()
        .map(|v| column(&headers, v, "--value-column"))
        .transpose()?;
    if args.model == Model::Gg && value_col.is_none() {
        bail!("the Gamma-Gamma model needs transaction values: give --value-column");
    }
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut transactions = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.with_context(|| format!("line {line}: not a valid CSV row"))?;
        let customer = record.get(customer_col).unwrap_or_default();
        let next_id = ids.len() as u32;
        let customer = *ids.entry(customer.to_owned()).or_insert(next_id);
        let date = record.get(date_col).unwrap_or_default();
        let day = parse_day(date).with_context(|| {
            format!("line {line}: `{date}` is not a date (YYYY-MM-DD, YYYYMMDD or ISO-8601)")
        })?;
        let value = match value_col {
            Some(c) => {
                let text = record.get(c).unwrap_or_default();
                text.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .with_context(|| format!("line {line}: value `{text}` is not a number"))?
            }
            None => 0.0,
        };
        transactions.push(Transaction {
            customer,
            day,
            value,
        });
    }
    progress.finish_and_clear();
    if transactions.is_empty() {
        bail!("{} has no transactions", args.file.display());
    }
    let mut names = vec![String::new(); ids.len()];
    for (name, index) in ids {
        names[index as usize] = name;
    }
    Ok((transactions, names))
}

fn fit_transactions(args: &ClvFitArgs) -> anyhow::Result<Value> {
    if !(args.discount_rate.is_finite() && args.discount_rate >= 0.0) {
        bail!(
            "--discount-rate {} must be a monthly rate ≥ 0 (0.01 for 1% a month)",
            args.discount_rate
        );
    }
    if args.clv_months == 0 {
        bail!("--clv-months must be at least 1");
    }
    let (mut transactions, names) = read_transactions(args)?;
    let last_day = transactions.iter().map(|t| t.day).max().unwrap_or(0);
    let calibration_end = match &args.calibration_end {
        Some(text) => {
            parse_day(text).with_context(|| format!("--calibration-end `{text}` is not a date"))?
        }
        None => last_day,
    };
    let holdout_end = (calibration_end < last_day).then_some(last_day);
    let unit = args.time_unit.days();
    let summaries = summarize(&mut transactions, calibration_end, holdout_end, unit);
    if summaries.is_empty() {
        bail!("no customer made a first purchase on or before the calibration end");
    }
    let rft: Vec<Rft> = summaries
        .iter()
        .map(|s| Rft {
            x: s.x,
            t_x: s.t_x,
            t: s.t,
        })
        .collect();
    let mut report = json!({
        "model": args.model,
        "customers_in_file": names.len(),
        "customers_fitted": summaries.len(),
        "transactions": transactions.len(),
        "time_unit_days": unit,
    });
    let value = Valuation::new(args, unit);
    let predictions: Vec<CustomerPrediction> = match args.model {
        Model::Bgnbd | Model::Mbgnbd | Model::Pnbd => {
            let kind = match args.model {
                Model::Mbgnbd => PurchaseModelKind::Mbgnbd,
                Model::Pnbd => PurchaseModelKind::ParetoNbd,
                _ => PurchaseModelKind::Bgnbd,
            };
            let (model, fit) = PurchaseModel::fit(kind, &rft);
            report["fit"] = fit_json(kind.parameter_names(), &fit);
            if holdout_end.is_some() {
                report["holdout"] = holdout_comparison(&summaries, &rft, &|t, c| {
                    model.conditional_expected_purchases(t, c)
                });
            }
            let spend = spend_model(args, &summaries, &mut report)?;
            let horizon = Horizon {
                units: value.horizon_units(),
                clv_months: args.clv_months,
                monthly_discount: args.discount_rate,
                units_per_month: value.units_per_month,
                dert_rate: Some(value.continuous_rate),
            };
            // Equal (x, t_x, T) share one computation, the rest in parallel.
            let forecasts = forecast_all(&model, &rft, &horizon);
            summaries
                .iter()
                .zip(forecasts)
                .map(|(s, f)| {
                    let expected_value =
                        spend.map(|gg| gg.conditional_expected_value(s.x, s.mean_value));
                    CustomerPrediction {
                        summary: *s,
                        probability_alive: f.probability_alive,
                        expected_purchases: f.expected_purchases,
                        expected_value,
                        clv: expected_value.map(|v| v * f.clv_per_value),
                        dert: f.dert,
                        dert_clv: expected_value.zip(f.dert).map(|(v, d)| v * d),
                    }
                })
                .collect()
        }
        Model::Gg => {
            let pairs: Vec<(f64, f64)> = summaries.iter().map(|s| (s.x, s.mean_value)).collect();
            let (gg, fit) = GammaGamma::fit(&pairs)?;
            report["fit"] = fit_json(&["p", "q", "gamma"], &fit);
            summaries
                .iter()
                .map(|s| CustomerPrediction {
                    summary: *s,
                    expected_value: Some(gg.conditional_expected_value(s.x, s.mean_value)),
                    ..CustomerPrediction::of(*s)
                })
                .collect()
        }
        Model::Bgbb => {
            let histories = discrete_histories(&summaries, &transactions, calibration_end, unit);
            let (model, fit) = BgBb::fit(&group_histories(&histories));
            report["fit"] = fit_json(&["alpha", "beta", "gamma", "delta"], &fit);
            let spend = spend_model(args, &summaries, &mut report)?;
            let opportunities = value.horizon_units().round() as u32;
            summaries
                .iter()
                .zip(&histories)
                .map(|(s, h)| {
                    let dert =
                        model.discounted_expected_residual_transactions(value.per_unit_rate, h);
                    let expected_value =
                        spend.map(|gg| gg.conditional_expected_value(s.x, s.mean_value));
                    CustomerPrediction {
                        summary: *s,
                        probability_alive: model.probability_alive(h),
                        expected_purchases: model
                            .conditional_expected_transactions(opportunities, h),
                        expected_value,
                        clv: None,
                        dert: Some(dert),
                        dert_clv: expected_value.map(|v| v * dert),
                    }
                })
                .collect()
        }
        Model::Sbg => bail!("internal: sBG is fitted from cohort counts"),
    };
    if args.model != Model::Gg {
        report["predictions"] = prediction_totals(&predictions, &value, args);
    }
    if let Some(path) = &args.predictions {
        write_predictions(path, &predictions, &names)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report)
}

/// The discounting of `--discount-rate` (monthly) in the file's time unit.
struct Valuation {
    months: u32,
    units_per_month: f64,
    /// Continuous rate per time unit equivalent to the monthly rate (Pareto/NBD DERT).
    continuous_rate: f64,
    /// Rate per time unit compounded (BG/BB DERT: one opportunity per unit).
    per_unit_rate: f64,
}

impl Valuation {
    fn new(args: &ClvFitArgs, unit_days: f64) -> Self {
        let units_per_month = units_per_month(unit_days);
        let continuous_rate = args.discount_rate.ln_1p() / units_per_month;
        Self {
            months: args.clv_months,
            units_per_month,
            continuous_rate,
            per_unit_rate: continuous_rate.exp_m1(),
        }
    }

    fn horizon_units(&self) -> f64 {
        f64::from(self.months) * self.units_per_month
    }
}

/// Gamma-Gamma on the repeat buyers when values were given, for CLV; its fit goes into the
/// report. Without values there is no CLV (and no error).
fn spend_model(
    args: &ClvFitArgs,
    summaries: &[CustomerSummary],
    report: &mut Value,
) -> anyhow::Result<Option<GammaGamma>> {
    if args.value_column.is_none() {
        return Ok(None);
    }
    let pairs: Vec<(f64, f64)> = summaries.iter().map(|s| (s.x, s.mean_value)).collect();
    match GammaGamma::fit(&pairs) {
        Ok((gg, fit)) => {
            report["spend_fit"] = fit_json(&["p", "q", "gamma"], &fit);
            Ok(Some(gg))
        }
        Err(e) => {
            report["spend_fit"] = json!({"error": e.to_string()});
            Ok(None)
        }
    }
}

/// One customer's summary and what the models predict for them.
struct CustomerPrediction {
    summary: CustomerSummary,
    probability_alive: f64,
    expected_purchases: f64,
    expected_value: Option<f64>,
    clv: Option<f64>,
    dert: Option<f64>,
    dert_clv: Option<f64>,
}

impl CustomerPrediction {
    fn of(summary: CustomerSummary) -> Self {
        Self {
            summary,
            probability_alive: f64::NAN,
            expected_purchases: f64::NAN,
            expected_value: None,
            clv: None,
            dert: None,
            dert_clv: None,
        }
    }
}

fn prediction_totals(
    predictions: &[CustomerPrediction],
    value: &Valuation,
    args: &ClvFitArgs,
) -> Value {
    let n = predictions.len() as f64;
    let sum = |f: &dyn Fn(&CustomerPrediction) -> Option<f64>| -> Option<f64> {
        predictions.iter().map(f).sum::<Option<f64>>()
    };
    let mut clvs: Vec<f64> = predictions
        .iter()
        .filter_map(|p| p.clv.or(p.dert_clv))
        .collect();
    clvs.sort_by(|a, b| b.total_cmp(a));
    let top = (clvs.len() as f64 * 0.2).ceil() as usize;
    let top_share = (!clvs.is_empty()).then(|| {
        let total: f64 = clvs.iter().sum();
        clvs[..top].iter().sum::<f64>() / total
    });
    json!({
        "horizon_months": value.months,
        "horizon_units": value.horizon_units(),
        "monthly_discount_rate": args.discount_rate,
        "mean_probability_alive": predictions.iter().map(|p| p.probability_alive).sum::<f64>() / n,
        "customers_probably_alive": predictions.iter().filter(|p| p.probability_alive > 0.5).count(),
        "expected_purchases": predictions.iter().map(|p| p.expected_purchases).sum::<f64>(),
        "clv_total": sum(&|p| p.clv),
        "dert_total": sum(&|p| p.dert),
        "dert_clv_total": sum(&|p| p.dert_clv),
        "top_20_percent_clv_share": top_share,
    })
}

fn write_predictions(
    path: &std::path::Path,
    predictions: &[CustomerPrediction],
    names: &[String],
) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_path(path)?;
    out.write_record([
        "customer_id",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "probability_alive",
        "expected_purchases",
        "expected_value",
        "clv",
        "dert",
        "dert_clv",
    ])?;
    let cell = |v: Option<f64>| {
        v.filter(|v| v.is_finite())
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    for p in predictions {
        let s = &p.summary;
        out.write_record([
            names[s.customer as usize].clone(),
            s.x.to_string(),
            s.t_x.to_string(),
            s.t.to_string(),
            s.mean_value.to_string(),
            cell(Some(p.probability_alive)),
            cell(Some(p.expected_purchases)),
            cell(p.expected_value),
            cell(p.clv),
            cell(p.dert),
            cell(p.dert_clv),
        ])?;
    }
    out.flush()?;
    Ok(())
}

/// BG/BB on transactions: each time unit after the first purchase is an opportunity; x is
/// the number of them with a purchase, t_x the last such one. One history per summary, in
/// the same order.
fn discrete_histories(
    summaries: &[CustomerSummary],
    transactions: &[Transaction],
    calibration_end: i32,
    unit: f64,
) -> Vec<Opportunities> {
    // `summarize` sorted the transactions by customer and day.
    let mut by_customer: HashMap<u32, (i32, Vec<u32>)> = HashMap::new();
    for t in transactions.iter().filter(|t| t.day <= calibration_end) {
        let entry = by_customer.entry(t.customer).or_insert((t.day, Vec::new()));
        let period = (f64::from(t.day - entry.0) / unit).floor() as u32;
        if period > 0 && entry.1.last() != Some(&period) {
            entry.1.push(period);
        }
    }
    summaries
        .iter()
        .map(|s| {
            // Every summarised customer bought by the calibration end, so is in the map.
            let (first, periods) = &by_customer[&s.customer];
            Opportunities {
                x: periods.len() as u32,
                t_x: periods.last().copied().unwrap_or(0),
                n: (f64::from(calibration_end - first) / unit).floor() as u32,
                weight: 1.0,
            }
        })
        .collect()
}

/// Identical histories as one weighted history (the BG/BB likelihood is per history).
fn group_histories(histories: &[Opportunities]) -> Vec<Opportunities> {
    let mut counts: HashMap<(u32, u32, u32), f64> = HashMap::new();
    for h in histories {
        *counts.entry((h.x, h.t_x, h.n)).or_default() += h.weight;
    }
    let mut grouped: Vec<Opportunities> = counts
        .into_iter()
        .map(|((x, t_x, n), weight)| Opportunities { x, t_x, n, weight })
        .collect();
    grouped.sort_by_key(|h| (h.n, h.x, h.t_x));
    grouped
}

fn fit_json(names: &[&str], fit: &Fit) -> Value {
    // A list, in the model's order (a JSON object would sort the names).
    let params: Vec<Value> = names
        .iter()
        .zip(fit.params.iter().zip(&fit.standard_errors))
        .map(|(n, (p, se))| json!({"name": n, "value": p, "standard_error": se}))
        .collect();
    json!({
        "parameters": params,
        "log_likelihood": fit.log_likelihood,
        "converged": fit.converged,
        "iterations": fit.iterations,
        "gradient_norm": fit.gradient_norm,
    })
}

/// Actual vs predicted repeat purchases in the holdout, in total and by calibration
/// frequency (0, 1, …, 6, 7+), as `lifetimes`' calibration-vs-holdout plot shows them.
fn holdout_comparison(
    summaries: &[CustomerSummary],
    rft: &[Rft],
    predict: &dyn Fn(f64, &Rft) -> f64,
) -> Value {
    let mut rows: Vec<(f64, f64, f64)> = vec![(0.0, 0.0, 0.0); 8];
    let (mut actual_total, mut predicted_total) = (0.0, 0.0);
    for (s, c) in summaries.iter().zip(rft) {
        let predicted = predict(s.holdout_duration, c);
        actual_total += s.holdout_x;
        predicted_total += predicted;
        let row = &mut rows[(s.x as usize).min(7)];
        row.0 += 1.0;
        row.1 += s.holdout_x;
        row.2 += predicted;
    }
    let by_frequency: Vec<Value> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.0 > 0.0)
        .map(|(x, r)| {
            json!({"calibration_frequency": if x == 7 { "7+".to_owned() } else { x.to_string() },
                   "customers": r.0, "mean_actual": r.1 / r.0, "mean_predicted": r.2 / r.0})
        })
        .collect();
    json!({
        "duration": summaries.first().map_or(0.0, |s| s.holdout_duration),
        "actual_repeat_purchases": actual_total,
        "predicted_repeat_purchases": predicted_total,
        "by_frequency": by_frequency,
    })
}

fn fit_sbg(args: &ClvFitArgs) -> anyhow::Result<Value> {
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(file));
    let headers = reader
        .headers()
        .context("the file has no header row")?
        .clone();
    if headers.len() < 2 {
        bail!(
            "an sBG file has a period column and at least one cohort column of customers still active"
        );
    }
    let mut cohorts: Vec<Vec<u64>> = vec![Vec::new(); headers.len() - 1];
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("line {}: not a valid CSV row", i + 2))?;
        for (c, cohort) in cohorts.iter_mut().enumerate() {
            let text = record.get(c + 1).unwrap_or_default();
            if text.is_empty() {
                continue;
            }
            cohort.push(text.parse().with_context(|| {
                format!(
                    "line {}: `{text}` is not a whole number of customers",
                    i + 2
                )
            })?);
        }
    }
    let (model, fit) = ShiftedBetaGeometric::fit(&cohorts)?;
    let longest = cohorts.iter().map(Vec::len).max().unwrap_or(0);
    let projection: Vec<Value> = (0..longest + 5)
        .map(|t| json!({"period": t, "survival": model.survival(t as f64), "retention_rate": if t > 0 { model.retention_rate(t as f64) } else { 1.0 }}))
        .collect();
    Ok(json!({
        "model": "sbg",
        "cohorts": headers.iter().skip(1).collect::<Vec<_>>(),
        "fit": fit_json(&["alpha", "beta"], &fit),
        "projection": projection,
        "discounted_expected_lifetime_at_10pct": model.discounted_expected_lifetime(0.1),
    }))
}

fn print_report(report: &Value) {
    println!("model: {}", report["model"].as_str().unwrap_or(""));
    if let Some(n) = report["customers_fitted"].as_u64() {
        println!(
            "customers: {n} fitted ({} in the file), {} transactions",
            report["customers_in_file"], report["transactions"]
        );
    }
    let fit = &report["fit"];
    println!("\n{:<8} {:>12} {:>12}", "param", "value", "std. error");
    for p in fit["parameters"].as_array().into_iter().flatten() {
        println!(
            "{:<8} {:>12.4} {:>12.4}",
            p["name"].as_str().unwrap_or(""),
            p["value"].as_f64().unwrap_or(f64::NAN),
            p["standard_error"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "\nlog-likelihood {:.4}, {} after {} iterations",
        fit["log_likelihood"].as_f64().unwrap_or(f64::NAN),
        if fit["converged"].as_bool() == Some(true) {
            "converged"
        } else {
            "NOT converged"
        },
        fit["iterations"]
    );
    let holdout = &report["holdout"];
    if holdout.is_object() {
        println!(
            "\nholdout ({:.2} units): {:.0} repeat purchases happened, the model predicted {:.1}",
            holdout["duration"].as_f64().unwrap_or(0.0),
            holdout["actual_repeat_purchases"].as_f64().unwrap_or(0.0),
            holdout["predicted_repeat_purchases"]
                .as_f64()
                .unwrap_or(0.0)
        );
        println!(
            "{:>10} {:>10} {:>12} {:>12}",
            "frequency", "customers", "mean actual", "mean model"
        );
        for row in holdout["by_frequency"].as_array().into_iter().flatten() {
            println!(
                "{:>10} {:>10.0} {:>12.3} {:>12.3}",
                row["calibration_frequency"].as_str().unwrap_or(""),
                row["customers"].as_f64().unwrap_or(0.0),
                row["mean_actual"].as_f64().unwrap_or(0.0),
                row["mean_predicted"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let spend = &report["spend_fit"];
    if let Some(error) = spend["error"].as_str() {
        println!("\nno CLV: the spend model does not fit ({error})");
    } else if spend.is_object() {
        let p: Vec<String> = spend["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{} = {:.4}",
                    p["name"].as_str().unwrap_or(""),
                    p["value"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect();
        println!("\nspend (Gamma-Gamma on repeat buyers): {}", p.join(", "));
    }
    let predictions = &report["predictions"];
    if predictions.is_object() {
        let number = |key: &str| predictions[key].as_f64();
        println!(
            "\nnext {} months ({:.1} time units), discounted at {}% a month:",
            predictions["horizon_months"],
            number("horizon_units").unwrap_or(0.0),
            number("monthly_discount_rate").unwrap_or(0.0) * 100.0
        );
        println!(
            "  probably alive (P > 0.5): {} customers; mean P(alive) {:.3}",
            predictions["customers_probably_alive"],
            number("mean_probability_alive").unwrap_or(f64::NAN)
        );
        println!(
            "  expected purchases: {:.1}",
            number("expected_purchases").unwrap_or(f64::NAN)
        );
        if let Some(clv) = number("clv_total") {
            println!("  CLV (lifetimes' convention): {clv:.2} in all");
        }
        if let Some(dert) = number("dert_total") {
            println!("  DERT (every future purchase, discounted): {dert:.1} purchases");
        }
        if let Some(clv) = number("dert_clv_total") {
            println!("  CLV from DERT × expected spend: {clv:.2} in all");
        }
        if let Some(share) = number("top_20_percent_clv_share") {
            println!(
                "  the top 20% of customers hold {:.1}% of it",
                share * 100.0
            );
        }
    }
    if let Some(projection) = report["projection"].as_array() {
        println!("\n{:>6} {:>10} {:>10}", "period", "survival", "retention");
        for p in projection {
            println!(
                "{:>6} {:>10.4} {:>10.4}",
                p["period"],
                p["survival"].as_f64().unwrap_or(0.0),
                p["retention_rate"].as_f64().unwrap_or(0.0)
            );
        }
    }
}
