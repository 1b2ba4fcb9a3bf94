//! `tenure import`: JSONL (one Segment message per line) and CSV (customers, orders,
//! subscriptions, survey responses, generic events) with a column mapping.
//!
//! Every row becomes a Segment message and goes through the same validation and the same
//! writer as the HTTP API, as history ([`Message::parse_recorded`]): the time of the import
//! is never an event's time. A row without an explicit message id gets one derived from its
//! content and its occurrence in the file (the second identical row is a second event), so
//! re-running an import stores nothing twice and two real events never merge. Valid rows are
//! stored even when others are rejected; the report lists every rejected row by line number
//! and field, and the command then exits with status 1.
//!
//! `--replace` repairs events stored wrong: a message whose id is already in the log
//! rewrites that event (same type and identity) instead of being skipped as a duplicate.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tenure_core::message::derived_message_id;
use tenure_core::time::{Clock, parse_instant};
use tenure_core::{FieldError, Message, Recorded};
use tenure_server::Core;
use tenure_server::writer::Outcome;
use tenure_store::{DatabaseUrl, Replaced, Store};

/// Messages handed to the writer at a time.
const CHUNK: usize = 2000;

/// Longest JSONL line read. A message is at most 32 KB once parsed (the API's limit, which
/// then applies); a line beyond this is refused without being held in memory.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

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
    /// The event time of rows and messages that carry no time of their own (ISO 8601,
    /// e.g. 2024-01-01T00:00:00Z). Without it such rows are refused: the time of the import
    /// is never an event's time.
    #[arg(long, value_name = "INSTANT")]
    default_timestamp: Option<String>,
    /// Rewrite events already in the log with the file's version (same message id, type and
    /// identity): the repair of events stored wrong. A running `tenure serve` must be
    /// restarted to see the rewritten events.
    #[arg(long)]
    replace: bool,
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
    /// Events already in the log rewritten with the file's version (`--replace`).
    replaced: u64,
    rejected: u64,
    errors: Vec<RejectedRow>,
}

impl Report {
    fn reject(&mut self, line: u64, errors: Vec<FieldError>) {
        self.rejected += 1;
        if self.errors.len() < 1000 {
            self.errors.push(RejectedRow { line, errors });
        }
    }
}

/// Message ids for rows without one: the content's hash, then `-2`, `-3`… for the second
/// and later identical rows of the same file. The first keeps the bare hash, as imports
/// before occurrence numbers wrote it, so re-running an old file still stores nothing twice.
#[derive(Default)]
struct OccurrenceIds {
    seen: HashMap<u128, u32>,
}

impl OccurrenceIds {
    fn next(&mut self, derived: String) -> String {
        let mut h = tenure_core::ids::Fnv128::new();
        h.write(derived.as_bytes());
        let count = self.seen.entry(h.finish()).or_insert(0);
        *count += 1;
        if *count == 1 {
            derived
        } else {
            format!("{derived}-{count}")
        }
    }
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
    let default_timestamp = match &args.default_timestamp {
        Some(text) => Some(parse_instant(text).with_context(|| {
            format!("--default-timestamp `{text}` is not an ISO 8601 instant (e.g. 2024-01-01T00:00:00Z)")
        })?),
        None => None,
    };
    let recorded = Recorded {
        read_at: clock.now(),
        default_timestamp,
    };
    let mut report = Report::default();
    if args.replace {
        // First the repair, each chunk in one transaction, before any engine is folded: the
        // engines then fold the corrected log, and the second pass finds the replaced
        // events already there.
        let store = Store::open(database.clone())?;
        let workspace = crate::resolve_workspace(&store, args.workspace.as_deref())?;
        let mut replaced = Report::default();
        read_messages(
            &args,
            &mapping,
            recorded,
            &mut replaced,
            &mut |chunk, report| {
                let messages: Vec<&Message> = chunk.iter().map(|(_, m)| m).collect();
                let results = store.with(|c| c.replace_events(&workspace.id, &messages))?;
                for ((line, m), result) in chunk.iter().zip(results) {
                    match result {
                    Replaced::Replaced => report.replaced += 1,
                    Replaced::NotFound => {}
                    Replaced::IdentityDiffers => report.reject(
                        *line,
                        vec![FieldError::new(
                            "messageId",
                            format!(
                                "`{}` is stored as another type or identity (userId / anonymousId): only its time, name and contents can be replaced",
                                m.message_id
                            ),
                        )],
                    ),
                }
                }
                Ok(())
            },
        )?;
        report.replaced = replaced.replaced;
        report.errors = replaced.errors;
        report.rejected = replaced.rejected;
    }
    let core = Core::open(database)?;
    let workspace = crate::resolve_workspace(&core.store, args.workspace.as_deref())?;
    let mut appended = Report::default();
    read_messages(
        &args,
        &mapping,
        recorded,
        &mut appended,
        &mut |chunk, report| {
            let messages = chunk.drain(..).map(|(_, m)| m).collect();
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
        },
    )?;
    core.close();
    report.rows = appended.rows;
    report.stored = appended.stored;
    // What the first pass rewrote, the second finds already there.
    report.duplicates = appended.duplicates.saturating_sub(report.replaced);
    if !args.replace {
        report.rejected = appended.rejected;
        report.errors = appended.errors;
    } else {
        // Rows refused by the parser were refused in both passes: count them once.
        for row in appended.errors {
            if !report.errors.iter().any(|r| r.line == row.line) {
                report.reject(row.line, row.errors);
            }
        }
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let replaced = if args.replace {
            format!(", {} replaced", report.replaced)
        } else {
            String::new()
        };
        println!(
            "{} rows: {} stored, {} already there (skipped){replaced}, {} rejected — workspace {} ({})",
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
        if args.replace && report.replaced > 0 {
            println!(
                "  a running `tenure serve` on this database must be restarted to read the replaced events"
            );
        }
    }
    Ok(if report.rejected > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// A chunk of valid messages with their line numbers.
type Chunk = Vec<(u64, Message)>;

/// Reads the file, turns each line or row into a message, hands valid ones to `store` a
/// chunk at a time and records rejected ones in `report`.
fn read_messages(
    args: &ImportArgs,
    mapping: &BTreeMap<String, String>,
    recorded: Recorded,
    report: &mut Report,
    store: &mut dyn FnMut(&mut Chunk, &mut Report) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
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
    let mut ids = OccurrenceIds::default();
    let mut pending: Chunk = Vec::with_capacity(CHUNK);
    let mut handle = |line: u64,
                      parsed: Result<Value, Vec<FieldError>>,
                      report: &mut Report,
                      pending: &mut Chunk| {
        report.rows += 1;
        let message = parsed.and_then(|mut value| {
            if let Value::Object(m) = &mut value
                && m.get("messageId").is_none_or(|id| id.is_null() || id == "")
            {
                let csv_kind = matches!(args.format, Format::Csv).then_some(args.kind);
                let id = ids.next(content_id(csv_kind, m));
                m.insert("messageId".into(), Value::String(id));
            }
            Message::parse_recorded(value, recorded)
        });
        match message {
            Ok(m) => pending.push((line, m)),
            Err(errors) => report.reject(line, errors),
        }
    };
    match args.format {
        Format::Jsonl => {
            let mut lines = BoundedLines::new(reader, MAX_LINE_BYTES);
            while let Some((line_no, line)) = lines.next_line()? {
                let parsed = match line {
                    Line::Text(text) if text.trim().is_empty() => continue,
                    Line::Text(text) => serde_json::from_str::<Value>(&text)
                        .map_err(|e| vec![FieldError::new("", format!("not valid JSON: {e}"))]),
                    Line::NotUtf8 { valid_up_to } => Err(vec![FieldError::new(
                        "",
                        format!(
                            "not UTF-8 (the bytes after byte {valid_up_to} of the line are not): save the file as UTF-8"
                        ),
                    )]),
                    Line::TooLong { bytes } => Err(vec![FieldError::new(
                        "",
                        format!(
                            "the line is {bytes} bytes, longer than the {} MiB a line may have (a message is at most 32 KB): not read",
                            MAX_LINE_BYTES / (1024 * 1024)
                        ),
                    )]),
                };
                handle(line_no, parsed, report, &mut pending);
                if pending.len() >= CHUNK {
                    store(&mut pending, report)?;
                    pending.clear();
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
            let headers = strip_bom(headers);
            let columns = resolve_columns(&headers, mapping, args.kind)?;
            let mut record = csv::ByteRecord::new();
            let mut line_no = 1;
            loop {
                // Byte records, so that a row that is not UTF-8 is refused alone.
                let read = csv.read_byte_record(&mut record);
                line_no = record.position().map_or(line_no + 1, |p| p.line());
                let parsed = match read {
                    Ok(false) => break,
                    Ok(true) => match csv::StringRecord::from_byte_record(record.clone()) {
                        Ok(record) => csv_row_to_message(args.kind, &headers, &record, &columns),
                        Err(e) => Err(vec![FieldError::new(
                            "",
                            format!("not UTF-8: {e}; save the file as UTF-8"),
                        )]),
                    },
                    Err(e) => Err(vec![FieldError::new(
                        "",
                        format!("not a valid CSV row: {e}"),
                    )]),
                };
                handle(line_no, parsed, report, &mut pending);
                if pending.len() >= CHUNK {
                    store(&mut pending, report)?;
                    pending.clear();
                }
            }
        }
    }
    if !pending.is_empty() {
        store(&mut pending, report)?;
    }
    progress.finish_and_clear();
    Ok(())
}

/// A header row without a UTF-8 byte-order mark before its first column.
fn strip_bom(headers: csv::StringRecord) -> csv::StringRecord {
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if i == 0 {
                h.trim_start_matches('\u{feff}')
            } else {
                h
            }
        })
        .collect()
}

/// One line of a JSONL file.
#[derive(Debug, PartialEq)]
enum Line {
    Text(String),
    /// Not UTF-8: the valid prefix's length in bytes.
    NotUtf8 {
        valid_up_to: usize,
    },
    /// Longer than the limit: its length (it was skipped, not held).
    TooLong {
        bytes: usize,
    },
}

/// Lines of a file, each read on its own: a line that is not UTF-8 or too long is reported
/// alone, a byte-order mark before the first is dropped, and no line longer than the limit
/// is ever held in memory.
struct BoundedLines<R> {
    reader: R,
    limit: usize,
    line_no: u64,
}

impl<R: BufRead> BoundedLines<R> {
    fn new(reader: R, limit: usize) -> Self {
        Self {
            reader,
            limit,
            line_no: 0,
        }
    }

    fn next_line(&mut self) -> std::io::Result<Option<(u64, Line)>> {
        let mut bytes = Vec::new();
        let mut length = 0usize;
        let mut any = false;
        loop {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (part, done) = match buffer.iter().position(|b| *b == b'\n') {
                Some(i) => (&buffer[..i], Some(i + 1)),
                None => (buffer, None),
            };
            length += part.len();
            if length <= self.limit {
                bytes.extend_from_slice(part);
            } else {
                bytes = Vec::new();
            }
            let consumed = done.unwrap_or(part.len());
            self.reader.consume(consumed);
            if done.is_some() {
                break;
            }
        }
        self.line_no += 1;
        if length > self.limit {
            return Ok(Some((self.line_no, Line::TooLong { bytes: length })));
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if self.line_no == 1 && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes.drain(..3);
        }
        Ok(Some((
            self.line_no,
            match String::from_utf8(bytes) {
                Ok(text) => Line::Text(text),
                Err(e) => Line::NotUtf8 {
                    valid_up_to: e.utf8_error().valid_up_to(),
                },
            },
        )))
    }
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
    // Without a message_id column the importer derives one from the content and the row's
    // occurrence (`content_id`).
    if let Some(id) = text("message_id") {
        message["messageId"] = id;
    }
    Ok(message)
}

/// The id a message without one is given from its content: `tnr-<hash>` for a JSONL line,
/// `csv-<kind>-<hash>` for a CSV row (the occurrence number is added by [`OccurrenceIds`]).
fn content_id(csv_kind: Option<CsvKind>, message: &Map<String, Value>) -> String {
    let derived = derived_message_id(message);
    match csv_kind {
        None => derived,
        Some(kind) => format!(
            "csv-{}-{}",
            kind_name(kind),
            derived.trim_start_matches("tnr-")
        ),
    }
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
        let id = content_id(Some(CsvKind::Orders), m.as_object().unwrap());
        assert!(id.starts_with("csv-orders-"), "{id}");
        let again = row(
            CsvKind::Orders,
            "customer,order_id,revenue,currency,timestamp",
            "c1,o1,12.5,EUR,2025-01-01",
            &["user_id=customer"],
        )
        .unwrap();
        assert_eq!(
            id,
            content_id(Some(CsvKind::Orders), again.as_object().unwrap()),
            "re-importing the same row gives the same message id"
        );
        let mut ids = OccurrenceIds::default();
        let first = ids.next(id.clone());
        let second = ids.next(id.clone());
        assert_eq!(first, id, "the first occurrence keeps the bare id");
        assert_eq!(
            second,
            format!("{id}-2"),
            "a second identical row is another event"
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

    fn lines(bytes: &[u8], limit: usize) -> Vec<(u64, Line)> {
        let mut lines = BoundedLines::new(std::io::BufReader::with_capacity(4, bytes), limit);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn jsonl_lines_are_read_one_by_one() {
        let got = lines(b"\xEF\xBB\xBF{}\r\nab\xFFc\n0123456789abc\n\nlast", 10);
        assert_eq!(
            got,
            vec![
                (1, Line::Text("{}".into())),
                (2, Line::NotUtf8 { valid_up_to: 2 }),
                (3, Line::TooLong { bytes: 13 }),
                (4, Line::Text(String::new())),
                (5, Line::Text("last".into())),
            ]
        );
        assert!(lines(b"", 10).is_empty());
        assert_eq!(
            lines(b"\xEF\xBB\xBF", 10),
            vec![(1, Line::Text(String::new()))],
            "a mark alone is an empty first line"
        );
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
