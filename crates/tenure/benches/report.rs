//! Report benchmark (`cargo bench -p tenure --bench report`), with DuckDB side by side.
//!
//! 1. Generates a business of `BENCH_CUSTOMERS` customers (default 1,000,000; about 30 events
//!    each) over 24 months, folds it into an engine and reports the engine's memory.
//! 2. Times the full report (every table, the default 12 months) and the monthly first-time
//!    activity cohort matrix over all 24 months (median of 5 runs each).
//! 3. Writes the same activity events to CSV and runs `scripts/bench_report_duckdb.py`:
//!    DuckDB loads them into an in-memory table (not timed), then computes the same matrix
//!    (median of 5), and the two matrices must be equal cell by cell.
//!
//! Settings: `BENCH_CUSTOMERS`, `BENCH_ONLY_SEGMENTS=1`, `BENCH_PYTHON` (a Python with `duckdb`, default
//! target/metrics-venv/bin/python), `BENCH_SKIP_DUCKDB=1`. Timings are printed, never
//! asserted: the machine is shared. Figures: docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::Write;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::{Value, json};
use tenure_core::metrics::{Dataset, Query, Report, Table, activity_retention};
use tenure_core::random::Rng;
use tenure_core::time::{MILLIS_PER_DAY, Millis, add_months, format_instant, parse_instant};
use tenure_core::{Envelope, LiveWorkspace, Message, WorkspaceId};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/sqlite_ceiling.rs"]
mod sqlite_ceiling;
use sqlite_ceiling::sqlite_ceiling;

const EVENTS: [&str; 4] = [
    "Dashboard Viewed",
    "Report Viewed",
    "Project Created",
    "Export Completed",
];
const CHANNELS: [&str; 5] = ["organic", "paid_search", "social", "referral", "content"];

/// Anonymous resident memory (the heap). Generation runs in chunks of 2,000 customers, so
/// at most one chunk's transient messages (tens of MB) are counted with the engine.
fn rss_anon() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// One customer's messages: sign-up, maybe a monthly subscription renewed until it churns,
/// ~20 product events over an exponential lifetime, orders, maybe an NPS answer.
fn customer(i: usize, start: Millis, end: Millis) -> Vec<Value> {
    let mut rng = Rng::derive(99, i as u64);
    let user = format!("u{i}");
    let span = (end - start) as f64;
    let signup = start + (rng.uniform() * span * 0.98) as Millis;
    let life = (rng.exponential(8.0) * 30.4 * MILLIS_PER_DAY as f64) as Millis;
    let last = (signup + life).min(end);
    let ts = |t: Millis| format_instant(t);
    let mut m = vec![
        json!({"type": "identify", "userId": user, "timestamp": ts(signup),
               "traits": {"acquisition_channel": CHANNELS[rng.below(5) as usize]}}),
        json!({"type": "track", "userId": user, "event": "Signed Up", "timestamp": ts(signup)}),
    ];
    if rng.chance(0.4) {
        let sub = format!("s{i}");
        let amount = [29.0, 99.0, 299.0][rng.below(3) as usize];
        m.push(json!({"type": "track", "userId": user, "event": "Subscription Started", "timestamp": ts(signup),
            "properties": {"subscription_id": sub, "plan": "p", "interval": "month", "amount": amount, "currency": "USD"}}));
        let hazard = 0.02 + 0.06 * rng.uniform();
        let mut k = 1;
        loop {
            let at = add_months(signup, k);
            if at > end {
                break;
            }
            if rng.chance(hazard) {
                m.push(json!({"type": "track", "userId": user, "event": "Subscription Cancelled", "timestamp": ts(at - MILLIS_PER_DAY),
                    "properties": {"subscription_id": sub}}));
                break;
            }
            m.push(json!({"type": "track", "userId": user, "event": "Subscription Renewed", "timestamp": ts(at),
                "properties": {"subscription_id": sub}}));
            k += 1;
        }
    }
    for _ in 0..rng.poisson(20.0) {
        let at = signup + ((last - signup) as f64 * rng.uniform()) as Millis;
        m.push(json!({"type": "track", "userId": user, "event": EVENTS[rng.below(4) as usize], "timestamp": ts(at)}));
    }
    for n in 0..rng.poisson(1.5) {
        let at = signup + ((last - signup) as f64 * rng.uniform()) as Millis;
        m.push(json!({"type": "track", "userId": user, "event": "Order Completed", "timestamp": ts(at),
            "properties": {"order_id": format!("o{i}_{n}"), "revenue": 20 + rng.below(80), "currency": "USD"}}));
    }
    if rng.chance(0.3) {
        m.push(json!({"type": "track", "userId": user, "event": "Survey Responded", "timestamp": ts(last),
            "properties": {"survey_id": "nps", "score": rng.below(11)}}));
    }
    m
}

/// The 20 definitions the segment figures use (`benches/segments.json`): every kind of
/// condition, with and without a property filter (the 13th), over the events this
/// generator and the demo business send.
fn twenty_segments() -> Vec<Value> {
    serde_json::from_str(include_str!("segments.json")).unwrap()
}

/// Segments on the whole engine: the backfill of each of 20 definitions (the one with a
/// property filter counts from the log's orders, re-derived here), then event → membership
/// latency with all 20 live: fold one event and re-evaluate its customer against every
/// segment, as the writer does, p50 / p99 / max over 20,000 events.
fn segments(engine: &mut LiveWorkspace, end: Millis, envelope: Envelope) {
    use tenure_core::segments::{Definition, SegmentId};
    let defs = twenty_segments();
    let customers = engine.customer_count();
    // The orders the filtered definition counts, as the server reads them from the log.
    let history: Vec<Message> = (0..customers)
        .into_par_iter()
        .flat_map_iter(|i| {
            customer(i, add_months(end, -24), end)
                .into_iter()
                .filter(|m| m["event"] == "Order Completed")
                .map(|v| Message::parse(v, None, envelope).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    // Each definition: the evaluation alone (who is in, every customer, as a preview
    // does), then the whole backfill (evaluation, one membership event built and folded
    // per member, timers set).
    let (mut evaluations, mut backfills) = (Vec::new(), Vec::new());
    let mut members = 0usize;
    let mut largest: Option<(usize, tenure_core::segments::Backfill)> = None;
    for (i, def) in defs.iter().enumerate() {
        let definition = Definition::parse(def).unwrap();
        let history = if definition.slots.is_empty() {
            &[][..]
        } else {
            &history[..]
        };
        let t = Instant::now();
        let (count, _) = engine.preview_segment(&definition, history, end, 10);
        evaluations.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let backfill =
            engine.define_segment(SegmentId(i as u32 + 1), "bench", definition, history, end);
        backfills.push(t.elapsed().as_secs_f64());
        assert_eq!(
            (backfill.entered(), backfill.len()),
            (count, count),
            "the backfill enters exactly the previewed customers"
        );
        if largest
            .as_ref()
            .is_none_or(|(_, b)| b.len() < backfill.len())
        {
            largest = Some((i, backfill));
        }
        if std::env::var("BENCH_VERBOSE").is_ok() {
            println!(
                "  {def}: {count} members, evaluation {:.3} s, backfill {:.3} s",
                evaluations[i], backfills[i]
            );
        }
        members += count;
    }
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "segments: 20 definitions over {customers} customers ({members} memberships): evaluating a definition for every customer median {:.3} s, max {:.3} s; the whole backfill (plus one membership event per member, and timers) median {:.3} s, max {:.3} s (the filtered one counts {} logged orders: {:.3} s)",
        median(evaluations.clone()),
        max(&evaluations),
        median(backfills.clone()),
        max(&backfills),
        history.len(),
        backfills[12]
    );
    if let Some((i, backfill)) = largest {
        persist(i, &backfill, engine);
    }
    let mut rng = Rng::new(5);
    let mut latencies = Vec::with_capacity(20_000);
    let mut changed = 0usize;
    for k in 0..20_000u64 {
        let user = format!("u{}", rng.below(customers as u64));
        let event = EVENTS[rng.below(4) as usize];
        let at = end + k as Millis;
        let m = Message::parse(
            json!({"type": "track", "userId": user, "event": event, "timestamp": format_instant(at)}),
            None,
            Envelope { received_at: at, batch_sent_at: None },
        )
        .unwrap();
        let t = Instant::now();
        let applied = engine.apply(&m);
        changed += engine.segment_changes(&[applied.customer], at).len();
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // A restart: the definitions loaded again, then the first tick evaluates every
    // customer against all 20 (a day later, so memberships move) and folds what changed.
    for (i, def) in defs.iter().enumerate() {
        engine.load_segment(
            SegmentId(i as u32 + 1),
            "bench",
            2,
            Definition::parse(def).unwrap(),
        );
    }
    let t = Instant::now();
    let caught_up = engine.due_segment_changes(end + MILLIS_PER_DAY).len();
    println!(
        "segments: reconcile after a restart, {customers} customers × 20 segments a day later: {:.2} s ({caught_up} membership changes)",
        t.elapsed().as_secs_f64()
    );
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "segments: event → membership with 20 live segments, 20,000 events: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({changed} membership changes)",
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    more_segments(engine, end);
}

/// Definitions beyond the 20, each evaluated and backfilled over everyone a day later: the
/// demo's two health alerts (a score read on 3 and on 2 days per customer), and churn risk
/// (`{"computed": "risk", …}`) under a model trained on the first 20,000 customers (its
/// quality is beside the point). Last, because installing a model reconciles every segment.
fn more_segments(engine: &mut LiveWorkspace, end: Millis) {
    use tenure_core::segments::{Definition, SegmentId};
    use tenure_risk::training::{TrainingOptions, train};
    let at = end + MILLIS_PER_DAY;
    let define = |engine: &mut LiveWorkspace, id: u32, label: &str, definition: Value| {
        let definition = Definition::parse(&definition).unwrap();
        let t = Instant::now();
        let (count, _) = engine.preview_segment(&definition, &[], at, 10);
        let evaluation = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let backfill = engine.define_segment(SegmentId(id), label, definition, &[], at);
        let backfilled = t.elapsed().as_secs_f64();
        assert_eq!(backfill.entered(), count);
        let alerts = backfill.len() - count;
        println!(
            "segments: {label}: {count} members ({alerts} alerts); evaluation {evaluation:.3} s, backfill {backfilled:.3} s"
        );
    };
    define(
        engine,
        97,
        "active and red for 3 days",
        json!({"all": [{"computed": "status", "op": "eq", "value": "active"}, {"health_band": "red", "for_days": 3}],
               "alert": "At Risk Entered"}),
    );
    define(
        engine,
        98,
        "active and health fell 20 points in 7 days",
        json!({"all": [{"computed": "status", "op": "eq", "value": "active"}, {"health_drop": 20, "within_days": 7}],
               "alert": "Health Changed"}),
    );
    let sample: Vec<_> = engine.customers_by_place().take(20_000).collect();
    let t = Instant::now();
    let model = match train(&sample, engine.names(), end, &TrainingOptions::default()) {
        Ok(model) => model,
        Err(e) => {
            println!("segments: no risk model could be trained on the sample: {e}");
            return;
        }
    };
    let trained = t.elapsed().as_secs_f64();
    let label = format!(
        "risk ≥ 0.3 ({} trained on 20,000 customers in {trained:.1} s)",
        model.report.kept.label()
    );
    engine.set_risk_model(Some(std::sync::Arc::new(model)));
    engine.due_segment_changes(at);
    define(
        engine,
        99,
        &label,
        json!({"computed": "risk", "op": "gte", "value": 0.3}),
    );
}

/// The largest backfill's events stored as the writer stores them: built and appended to
/// a new SQLite log (the embedded default, WAL, synchronous FULL) in chunks of 20,000
/// customers, one transaction each; and built alone, to separate the two.
fn persist(i: usize, backfill: &tenure_core::segments::Backfill, engine: &LiveWorkspace) {
    use tenure_store::{Append, DatabaseUrl, NewEvent, Store};
    let t = Instant::now();
    let built: usize = backfill
        .chunks(20_000)
        .map(|c| c.messages(engine).len())
        .sum();
    let build = t.elapsed().as_secs_f64();
    let dir = std::env::temp_dir().join(format!("tenure_bench_backfill_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(DatabaseUrl::Sqlite(dir.join("log.db"))).unwrap();
    let ws = WorkspaceId::parse("ws_bench").unwrap();
    store
        .with(|c| {
            c.create_workspace(&tenure_store::Workspace {
                id: ws.clone(),
                name: "bench".into(),
                created_at: 0,
            })
        })
        .unwrap();
    let mut conn = store.connect().unwrap();
    let t = Instant::now();
    for chunk in backfill.chunks(20_000) {
        let chunk = chunk.messages(engine);
        let append = Append {
            workspace: &ws,
            events: chunk
                .iter()
                .map(|(customer, message)| NewEvent { message, customer })
                .collect(),
            customers: Vec::new(),
        };
        conn.append(std::slice::from_ref(&append)).unwrap();
    }
    let stored = t.elapsed().as_secs_f64();
    drop(conn);
    drop(store);
    println!(
        "segments: storing the largest backfill (definition {}, {built} events) in SQLite as the writer does: {stored:.2} s ({:.0} events/s), of which building the events {build:.2} s",
        i + 1,
        built as f64 / stored
    );
    // The ceiling, same run: the same rows bulk-loaded by the `sqlite3` shell.
    match sqlite_ceiling(&dir.join("log.db"), &dir) {
        Some((rows, seconds)) => println!(
            "segments: the same {rows} rows loaded by the sqlite3 shell (one transaction, same schema and pragmas): {seconds:.2} s ({:.0} rows/s)",
            rows as f64 / seconds
        ),
        None => println!("segments: the sqlite3 shell is not there: no ceiling measured"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: a smoke run then
    // (small, and without DuckDB unless its Python is there).
    let full = std::env::args().any(|a| a == "--bench");
    let customers: usize = std::env::var("BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 5_000 });
    let end = parse_instant("2026-01-01T00:00:00Z").unwrap();
    let start = add_months(end, -24);
    let envelope = Envelope {
        received_at: end + 1,
        batch_sent_at: None,
    };
    let csv_path = std::env::temp_dir().join("tenure_bench_activity.csv");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path).unwrap());
    writeln!(csv, "customer,ts").unwrap();

    let rss_before = rss_anon();
    let t = Instant::now();
    let mut engine = LiveWorkspace::new(WorkspaceId::parse("ws_bench").unwrap());
    let mut events = 0u64;
    for chunk in (0..customers).collect::<Vec<_>>().chunks(2_000) {
        let parsed: Vec<Vec<Message>> = chunk
            .par_iter()
            .map(|i| {
                customer(*i, start, end)
                    .into_iter()
                    .map(|v| Message::parse(v, None, envelope).unwrap())
                    .collect()
            })
            .collect();
        for (i, messages) in chunk.iter().zip(parsed) {
            for message in &messages {
                if message.name.is_some() {
                    writeln!(csv, "{i},{}", message.timestamp).unwrap();
                }
                engine.apply(message);
                events += 1;
            }
        }
    }
    csv.flush().unwrap();
    drop(csv);
    let built = t.elapsed().as_secs_f64();
    let heap = rss_anon().saturating_sub(rss_before);
    println!(
        "engine: {customers} customers, {events} events, generated + parsed + folded in {built:.1} s; heap (RssAnon) grew {:.0} MiB = {:.0} B per customer with its events, {:.1} B per event",
        heap as f64 / 1048576.0,
        heap as f64 / customers as f64,
        heap as f64 / events as f64
    );

    // `BENCH_ONLY_SEGMENTS=1`: the segment figures alone (to profile them).
    if std::env::var("BENCH_ONLY_SEGMENTS").is_ok_and(|v| v == "1") {
        segments(&mut engine, end, envelope);
        return;
    }

    // The full report, every table, default range (12 months to the end).
    let query = Query::parse([], end).unwrap();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let report = Report::build(&engine, &query, &[], &Table::ALL);
        runs.push(t.elapsed().as_secs_f64());
        assert_eq!(report.customers, customers);
    }
    println!(
        "full report (13 tables, 12 months): median {:.3} s (runs {:?})",
        median(runs.clone()),
        runs.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>()
    );

    // Each table alone (prepare included), to see where the time goes.
    let mut per_table = Vec::new();
    for table in Table::ALL {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            Report::build(&engine, &query, &[], &[table]);
            runs.push(t.elapsed().as_secs_f64());
        }
        per_table.push(format!("{} {:.3}", table.name(), median(runs)));
    }
    println!("each table alone (s): {}", per_table.join(", "));

    // The activity matrix alone: first-time monthly cohorts over all 24 months, any event.
    let q = Query::parse([("from", "2024-01-01"), ("to", "2025-12-31")], end).unwrap();
    let refs: Vec<_> = engine.customers_by_place().collect();
    let mut runs = Vec::new();
    let mut matrix = None;
    for _ in 0..5 {
        let t = Instant::now();
        let data = Dataset::prepare_with(&refs, &q, false, false);
        let a = activity_retention(&data, &q, &None, &None);
        runs.push(t.elapsed().as_secs_f64());
        matrix = Some(a);
    }
    let tenure_matrix = median(runs.clone());
    println!(
        "activity cohort matrix (24 × 24 months, first-time, any event; filter + matrix): median {tenure_matrix:.3} s"
    );
    let matrix = matrix.unwrap();

    // Health: every customer scored under the shipped model (what rescoring costs; the
    // breakdown is built when a profile shows it), and the
    // at-risk overview (current customers only), median of 3 each.
    let model = tenure_core::health::HealthModels::default();
    let mut runs = Vec::new();
    let mut scored = 0;
    for _ in 0..3 {
        let t = Instant::now();
        scored = refs
            .par_iter()
            .filter(|s| model.grade(s, engine.names(), end).0.is_some())
            .count();
        runs.push(t.elapsed().as_secs_f64());
    }
    let rescore = median(runs);
    let mut runs = Vec::new();
    let mut overview = None;
    for _ in 0..3 {
        let t = Instant::now();
        overview = Some(model.overview(engine.customers_by_place(), engine.names(), end, 20));
        runs.push(t.elapsed().as_secs_f64());
    }
    let overview = overview.unwrap();
    println!(
        "health: every customer scored ({scored} with a score) in {rescore:.3} s; at-risk overview of {} current customers ({} red) in {:.3} s",
        overview.customers,
        overview.red,
        median(runs)
    );
    drop(refs);
    segments(&mut engine, end, envelope);
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/metrics-venv/bin/python"
        )
        .into()
    });
    let no_python = !full && !std::path::Path::new(&python).exists();
    if std::env::var("BENCH_SKIP_DUCKDB").is_ok_and(|v| v == "1") || no_python {
        let _ = std::fs::remove_file(csv_path);
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/bench_report_duckdb.py"
    );
    let out = std::process::Command::new(&python)
        .args([script, csv_path.to_str().unwrap(), "2024-01", "24"])
        .output()
        .expect("run the DuckDB script (pip install duckdb into BENCH_PYTHON)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let duck: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seconds = duck["median_seconds"].as_f64().unwrap();
    println!(
        "DuckDB {}: load {:.1} s (not timed), same matrix median {seconds:.3} s (runs {}) — Tenure is {:.1}× faster",
        duck["version"],
        duck["load_seconds"].as_f64().unwrap(),
        duck["runs"],
        seconds / tenure_matrix
    );
    // The two matrices must agree cell by cell.
    let cells = duck["cells"].as_array().unwrap();
    let mut compared = 0;
    for cell in cells {
        let (c, k, n) = (
            cell[0].as_u64().unwrap() as usize,
            cell[1].as_u64().unwrap() as usize,
            cell[2].as_u64().unwrap(),
        );
        assert_eq!(matrix.cohorts[c].returned[k], n, "cohort {c} age {k}");
        compared += 1;
    }
    let nonzero = matrix
        .cohorts
        .iter()
        .flat_map(|c| c.returned.iter())
        .filter(|n| **n > 0)
        .count();
    assert_eq!(compared, nonzero, "every non-empty cell in both");
    println!("matrices equal: {compared} non-empty cells");
    let _ = std::fs::remove_file(csv_path);
}
