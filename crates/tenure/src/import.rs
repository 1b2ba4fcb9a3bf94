//! `tenure import`: JSONL (one Segment message per line) and CSV (customers, orders,
//! subscriptions, survey responses, generic events) with a column mapping.
//!
//! Every row becomes a Segment message and goes through the same validation and the same
//! writer as the HTTP API. A row without an explicit message id gets one derived from its
//! content, so re-running an import stores nothing twice. Valid rows are stored even when
//! others are rejected; the report lists every rejected row by line number and field, and
//! the command then exits with status 1.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tenure_core::message::derived_message_id;
use tenure_core::time::Clock;
use tenure_core::{Envelope, FieldError, Message};
use tenure_server::Core;
use tenure_server::writer::Outcome;
use tenure_store::DatabaseUrl;

/// Messages handed to the writer at a time.
const CHUNK: usize = 2000;

#[derive(Args)]
pub struct ImportArgs {
    /// The file to import.
    file: PathBuf,
    /// Workspace id or name (may be omitted when there is only one).
    #[arg(long)]
    workspace: Option<String>,
    #[arg(long, value_enum)]
    format: Format,
    /// What the rows of a CSV file are.
    #[arg(long, value_enum, default_value = "events")]
    kind: CsvKind,
    /// Read a field from a differently named column: `--map user_id=customer_email`.
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    map: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Do not draw a progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CsvKind {
    /// user_id, created_at; every other column is a trait.
    Customers,
    /// user_id, order_id, revenue, currency, timestamp.
    Orders,
    /// user_id, subscription_id, event (started|changed|renewed|cancelled|paused|resumed),
    /// plan, interval, amount, currency, timestamp, ends_at, trial_end.
    Subscriptions,
    /// user_id, survey_id, score, comment, timestamp.
    SurveyResponses,
    /// user_id, event, timestamp; every other column is a property.
    Events,
}

#[derive(Debug, Serialize)]
struct RejectedRow {
    line: u64,
    errors: Vec<FieldError>,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    rows: u64,
    stored: u64,
    duplicates: u64,
    rejected: u64,
    errors: Vec<RejectedRow>,
}

/// Fields each CSV kind reads, besides the pass-through columns.
fn known_fields(kind: CsvKind) -> &'static [&'static str] {
    match kind {
        CsvKind::Customers => &["user_id", "created_at", "message_id"],
        CsvKind::Orders => &[
            "user_id",
            "order_id",
            "revenue",
            "currency",
            "timestamp",
            "message_id",
        ],
        CsvKind::Subscriptions => &[
            "user_id",
            "subscription_id",
            "event",
            "plan",
            "interval",
            "amount",
            "currency",
            "timestamp",
            "ends_at",
            "trial_end",
            "message_id",
        ],
        CsvKind::SurveyResponses => &[
            "user_id",
            "survey_id",
            "score",
            "comment",
            "timestamp",
            "message_id",
        ],
        CsvKind::Events => &["user_id", "event", "timestamp", "message_id"],
    }
}

pub fn run(
    database: &DatabaseUrl,
    args: ImportArgs,
    clock: &dyn Clock,
) -> anyhow::Result<std::process::ExitCode> {
    let mapping = parse_mapping(&args.map, args.kind)?;
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let core = Core::open(database)?;
    let workspace = crate::resolve_workspace(&core.store, args.workspace.as_deref())?;
    let progress = if args.quiet || args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let reader = BufReader::new(progress.wrap_read(file));
    let now = clock.now();
    let mut report = Report::default();
    let mut pending: Vec<(u64, Message)> = Vec::with_capacity(CHUNK);
    let flush = |pending: &mut Vec<(u64, Message)>, report: &mut Report| -> anyhow::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let messages = pending.drain(..).map(|(_, m)| m).collect();
        let outcomes = core
            .ingestor
            .append_blocking(workspace.id.clone(), messages)?;
        for outcome in outcomes {
            match outcome {
                Outcome::Stored { .. } => report.stored += 1,
                Outcome::Duplicate => report.duplicates += 1,
            }
        }
        Ok(())
    };
    let handle = |line: u64,
                  parsed: Result<Value, Vec<FieldError>>,
                  report: &mut Report,
                  pending: &mut Vec<(u64, Message)>| {
        report.rows += 1;
        let message = parsed.and_then(|value| {
            Message::parse(
                value,
                None,
                Envelope {
                    received_at: now,
                    batch_sent_at: None,
                },
            )
        });
        match message {
            Ok(m) => pending.push((line, m)),
            Err(errors) => {
                report.rejected += 1;
                if report.errors.len() < 1000 {
                    report.errors.push(RejectedRow { line, errors });
                }
            }
        }
    };
    match args.format {
        Format::Jsonl => {
            for (i, line) in reader.lines().enumerate() {
                let line_no = i as u64 + 1;
                let line = line.with_context(|| {
                    format!("line {line_no} cannot be read (is the file UTF-8?)")
                })?;
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = serde_json::from_str::<Value>(&line)
                    .map_err(|e| vec![FieldError::new("", format!("not valid JSON: {e}"))]);
                handle(line_no, parsed, &mut report, &mut pending);
                if pending.len() >= CHUNK {
                    flush(&mut pending, &mut report)?;
                }
            }
        }
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(Box::new(reader) as Box<dyn Read>);
            let headers = csv
                .headers()
                .context("the CSV file has no header row")?
                .clone();
            let columns = resolve_columns(&headers, &mapping, args.kind)?;
            for (i, record) in csv.records().enumerate() {
                // Line 1 is the header.
                let line_no = i as u64 + 2;
                let parsed = match record {
                    Ok(record) => csv_row_to_message(args.kind, &headers, &record, &columns),
                    Err(e) => Err(vec![FieldError::new(
                        "",
                        format!("not a valid CSV row: {e}"),
                    )]),
                };
                handle(line_no, parsed, &mut report, &mut pending);
                if pending.len() >= CHUNK {
                    flush(&mut pending, &mut report)?;
                }
            }
        }
    }
    flush(&mut pending, &mut report)?;
    progress.finish_and_clear();
    core.close();

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} rows: {} stored, {} already there (skipped), {} rejected — workspace {} ({})",
            report.rows,
            report.stored,
            report.duplicates,
            report.rejected,
            workspace.id,
            workspace.name
        );
        for row in report.errors.iter().take(50) {
            for e in &row.errors {
                let field = if e.field.is_empty() {
                    String::new()
                } else {
                    format!(" `{}`", e.field)
                };
                println!("  line {}{field}: {}", row.line, e.message);
            }
        }
        if report.errors.len() > 50 {
            println!(
                "  … and {} more rejected rows (use --json for all of them)",
                report.rejected - 50
            );
        }
    }
    Ok(if report.rejected > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

fn parse_mapping(pairs: &[String], kind: CsvKind) -> anyhow::Result<BTreeMap<String, String>> {
    let mut mapping = BTreeMap::new();
    for pair in pairs {
        let Some((field, column)) = pair.split_once('=') else {
            bail!("--map `{pair}` is not FIELD=COLUMN (e.g. --map user_id=email)");
        };
        if !known_fields(kind).contains(&field) {
            bail!(
                "--map `{pair}`: `{field}` is not a field of {} rows; the fields are {}",
                kind_name(kind),
                known_fields(kind).join(", ")
            );
        }
        mapping.insert(field.to_owned(), column.to_owned());
    }
    Ok(mapping)
}

fn kind_name(kind: CsvKind) -> &'static str {
    match kind {
        CsvKind::Customers => "customers",
        CsvKind::Orders => "orders",
        CsvKind::Subscriptions => "subscriptions",
        CsvKind::SurveyResponses => "survey-responses",
        CsvKind::Events => "events",
    }
}

/// Column index of each known field (after mapping); fails if a required one is absent.
fn resolve_columns(
    headers: &csv::StringRecord,
    mapping: &BTreeMap<String, String>,
    kind: CsvKind,
) -> anyhow::Result<BTreeMap<&'static str, usize>> {
    let mut columns = BTreeMap::new();
    for field in known_fields(kind) {
        let column = mapping.get(*field).map_or(*field, String::as_str);
        if let Some(i) = headers.iter().position(|h| h.trim() == column) {
            columns.insert(*field, i);
        } else if mapping.contains_key(*field) {
            bail!(
                "--map {field}={column}: the file has no column `{column}` (columns: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let required: &[&str] = match kind {
        CsvKind::Customers => &["user_id"],
        CsvKind::Orders => &["user_id", "order_id", "revenue", "currency"],
        CsvKind::Subscriptions => &["user_id", "subscription_id", "event"],
        CsvKind::SurveyResponses => &["user_id", "survey_id"],
        CsvKind::Events => &["user_id", "event"],
    };
    for field in required {
        if !columns.contains_key(field) {
            bail!(
                "{} rows need a `{field}` column (or --map {field}=COLUMN); the file's columns are: {}",
                kind_name(kind),
                headers.iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(columns)
}

fn csv_row_to_message(
    kind: CsvKind,
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
    columns: &BTreeMap<&'static str, usize>,
) -> Result<Value, Vec<FieldError>> {
    let get = |field: &str| {
        columns
            .get(field)
            .and_then(|i| record.get(*i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let errors = std::cell::RefCell::new(Vec::new());
    let number = |field: &str| -> Option<Value> {
        let text = get(field)?;
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => serde_json::Number::from_f64(n).map(Value::Number),
            _ => {
                errors
                    .borrow_mut()
                    .push(FieldError::new(field, format!("`{text}` is not a number")));
                None
            }
        }
    };
    let mut props = Map::new();
    let put = |props: &mut Map<String, Value>, key: &str, value: Option<Value>| {
        if let Some(v) = value {
            props.insert(key.to_owned(), v);
        }
    };
    let text = |field: &str| get(field).map(|v| Value::String(v.to_owned()));
    let user_id = text("user_id");
    let timestamp = match kind {
        CsvKind::Customers => text("created_at"),
        _ => text("timestamp"),
    };
    let mut message = match kind {
        CsvKind::Customers => {
            let mut traits = passthrough(headers, record, columns);
            if let Some(created) = text("created_at") {
                traits.insert("created_at".into(), created);
            }
            json!({"type": "identify", "traits": traits})
        }
        CsvKind::Orders => {
            put(&mut props, "order_id", text("order_id"));
            let revenue = number("revenue");
            put(&mut props, "revenue", revenue);
            put(&mut props, "currency", text("currency"));
            json!({"type": "track", "event": "Order Completed", "properties": props})
        }
        CsvKind::Subscriptions => {
            let event = match get("event").map(str::to_ascii_lowercase).as_deref() {
                Some("started") => "Subscription Started",
                Some("changed") => "Subscription Changed",
                Some("renewed") => "Subscription Renewed",
                Some("cancelled" | "canceled") => "Subscription Cancelled",
                Some("paused") => "Subscription Paused",
                Some("resumed") => "Subscription Resumed",
                other => {
                    errors.borrow_mut().push(FieldError::new(
                        "event",
                        format!("`{}` is not one of started, changed, renewed, cancelled, paused, resumed", other.unwrap_or("")),
                    ));
                    "Subscription Started"
                }
            };
            for field in [
                "subscription_id",
                "plan",
                "interval",
                "currency",
                "ends_at",
                "trial_end",
            ] {
                put(&mut props, field, text(field));
            }
            let amount = number("amount");
            put(&mut props, "amount", amount);
            json!({"type": "track", "event": event, "properties": props})
        }
        CsvKind::SurveyResponses => {
            put(&mut props, "survey_id", text("survey_id"));
            let score = number("score");
            put(&mut props, "score", score);
            put(&mut props, "comment", text("comment"));
            json!({"type": "track", "event": "Survey Responded", "properties": props})
        }
        CsvKind::Events => {
            let props = passthrough(headers, record, columns);
            json!({"type": "track", "event": text("event"), "properties": props})
        }
    };
    let errors = errors.into_inner();
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(user_id) = user_id {
        message["userId"] = user_id;
    }
    if let Some(ts) = timestamp {
        message["timestamp"] = ts;
    }
    if let Some(Value::Object(m)) = Some(&mut message) {
        let id = match text("message_id") {
            Some(Value::String(id)) => id,
            _ => format!(
                "csv-{}-{}",
                kind_name(kind),
                derived_message_id(m).trim_start_matches("tnr-")
            ),
        };
        m.insert("messageId".into(), Value::String(id));
    }
    Ok(message)
}

/// Columns that are not known fields, as string values.
fn passthrough(
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
    columns: &BTreeMap<&'static str, usize>,
) -> Map<String, Value> {
    let used: Vec<usize> = columns.values().copied().collect();
    headers
        .iter()
        .zip(record.iter())
        .enumerate()
        .filter(|(i, (_, v))| !used.contains(i) && !v.trim().is_empty())
        .map(|(_, (h, v))| (h.trim().to_owned(), Value::String(v.trim().to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        kind: CsvKind,
        header: &str,
        line: &str,
        map: &[&str],
    ) -> Result<Value, Vec<FieldError>> {
        let headers = csv::StringRecord::from(header.split(',').collect::<Vec<_>>());
        let record = csv::StringRecord::from(line.split(',').collect::<Vec<_>>());
        let mapping =
            parse_mapping(&map.iter().map(|s| s.to_string()).collect::<Vec<_>>(), kind).unwrap();
        let columns = resolve_columns(&headers, &mapping, kind).unwrap();
        csv_row_to_message(kind, &headers, &record, &columns)
    }

    #[test]
    fn order_rows_become_order_completed_with_numbers() {
        let m = row(
            CsvKind::Orders,
            "customer,order_id,revenue,currency,timestamp",
            "c1,o1,12.5,EUR,2025-01-01",
            &["user_id=customer"],
        )
        .unwrap();
        assert_eq!(m["event"], "Order Completed");
        assert_eq!(m["userId"], "c1");
        assert_eq!(m["properties"]["revenue"], 12.5);
        assert!(m["messageId"].as_str().unwrap().starts_with("csv-orders-"));
        let again = row(
            CsvKind::Orders,
            "customer,order_id,revenue,currency,timestamp",
            "c1,o1,12.5,EUR,2025-01-01",
            &["user_id=customer"],
        )
        .unwrap();
        assert_eq!(
            m["messageId"], again["messageId"],
            "re-importing the same row gives the same message id"
        );
    }

    #[test]
    fn bad_numbers_and_unknown_subscription_events_name_their_field() {
        let e = row(
            CsvKind::Orders,
            "user_id,order_id,revenue,currency",
            "c1,o1,twelve,EUR",
            &[],
        )
        .unwrap_err();
        assert_eq!(e[0].field, "revenue");
        let e = row(
            CsvKind::Subscriptions,
            "user_id,subscription_id,event",
            "c1,s1,upgraded",
            &[],
        )
        .unwrap_err();
        assert_eq!(e[0].field, "event");
    }

    #[test]
    fn customer_rows_keep_other_columns_as_traits() {
        let m = row(
            CsvKind::Customers,
            "user_id,email,plan",
            "c1,a@b.c,pro",
            &[],
        )
        .unwrap();
        assert_eq!(m["type"], "identify");
        assert_eq!(m["traits"]["email"], "a@b.c");
        assert_eq!(m["traits"]["plan"], "pro");
    }

    #[test]
    fn mapping_errors_are_explained() {
        assert!(parse_mapping(&["user_id".into()], CsvKind::Orders).is_err());
        assert!(
            parse_mapping(&["colour=x".into()], CsvKind::Orders)
                .unwrap_err()
                .to_string()
                .contains("not a field")
        );
        let headers = csv::StringRecord::from(vec!["a", "b"]);
        let err = resolve_columns(&headers, &BTreeMap::new(), CsvKind::Orders)
            .unwrap_err()
            .to_string();
        assert!(err.contains("need a `user_id` column"), "{err}");
    }
}
