//! Ingest and rebuild benchmark (`cargo bench -p tenure --bench ingest`).
//!
//! 1. HTTP ingest: the real `Application` (release build) on SQLite and on PostgreSQL,
//!    `BENCH_CONCURRENCY` clients posting `/v1/batch` requests of 100 demo-business events;
//!    throughput and acknowledgement latency (p50 / p99 / max).
//! 2. The ceiling, side by side: the same rows loaded by the `sqlite3` shell (`.import` in
//!    one transaction) and by PostgreSQL's `COPY`, into a fresh table with the same schema.
//! 3. LiveWorkspace rebuild from the SQLite log: read + parse + fold, then the fold alone; memory.
//! 4. Segments end to end on that SQLite database: 20 segments defined (19 of
//!    `benches/segments.json` and one a probe enters), background ingest at
//!    `BENCH_SEGMENT_RATE` events/s (5,000), and probes: one event each for a new user, which
//!    enters the probe segment. The time from sending the request to its answer is the time
//!    to a committed `Segment Entered` (the writer commits it in the same transaction);
//!    every probe's entry is checked in the log afterwards.
//!
//! Settings: `BENCH_EVENTS` (default 1,000,000; 20,000 when run by `cargo test`), `BENCH_CONCURRENCY` (16),
//! `BENCH_BACKENDS` (`sqlite,postgres`), `TENURE_TEST_POSTGRES` (admin URL).
//! Timings are printed, never asserted: the machine is shared. Figures: docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenure_core::Message;
use tenure_core::demo::{DemoBusiness, DemoConfig};
use tenure_core::time::parse_instant;
use tenure_server::{Application, Settings, SystemClock};
use tenure_store::{DatabaseUrl, KeyKind, Store};

const BATCH: usize = 100;

#[path = "support/batch_clients.rs"]
mod batch_clients;
#[path = "support/sqlite_ceiling.rs"]
mod sqlite_ceiling;
use sqlite_ceiling::{COLUMNS, sqlite_ceiling};

/// The same allocator as the `tenure` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Anonymous resident memory (heap), without the memory-mapped database file.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Demo-business events as ready-to-send batch bodies.
fn batches(total: usize) -> Vec<Vec<u8>> {
    let end = parse_instant("2026-01-01").unwrap();
    let business = DemoBusiness::new(DemoConfig {
        customers: 1_000_000,
        months: 24,
        seed: 1,
        end,
    });
    let mut events: Vec<Value> = Vec::with_capacity(total);
    for customer in business.customers() {
        events.extend(customer.events);
        if events.len() >= total {
            break;
        }
    }
    events.truncate(total);
    events
        .chunks(BATCH)
        .map(|chunk| serde_json::to_vec(&json!({"batch": chunk})).unwrap())
        .collect()
}

struct Run {
    events: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

async fn http_ingest(base: &str, key: &str, bodies: Arc<Vec<Vec<u8>>>, concurrency: usize) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let latencies = batch_clients::post_batches(
        &client,
        (base, key),
        bodies.clone(),
        next,
        concurrency,
        None,
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick =
        |q: f64| ms(latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)]);
    Run {
        events: bodies.len() * BATCH,
        seconds,
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        max_ms: ms(*latencies.last().unwrap()),
    }
}

fn fresh_database(
    backend: &str,
    dir: &std::path::Path,
    label: &str,
) -> Option<(DatabaseUrl, Option<String>)> {
    match backend {
        "sqlite" => {
            let path = dir.join(format!("{label}.db"));
            Some((DatabaseUrl::Sqlite(path), None))
        }
        "postgres" => {
            let admin = std::env::var("TENURE_TEST_POSTGRES")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let name = format!("tenure_bench_{label}_{}", std::process::id());
            let ok = Command::new("psql")
                .args([&admin, "-qc", &format!("CREATE DATABASE {name}")])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                println!("PostgreSQL not reachable at {admin}: skipped");
                return None;
            }
            let base = admin
                .rsplit_once('/')
                .map_or(admin.as_str(), |(b, _)| b)
                .to_owned();
            Some((DatabaseUrl::Postgres(format!("{base}/{name}")), Some(name)))
        }
        _ => None,
    }
}

fn drop_database(name: Option<String>) {
    if let Some(name) = name {
        let admin = std::env::var("TENURE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let _ = Command::new("psql")
            .args([
                &admin,
                "-qc",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ])
            .status();
    }
}

/// Loads the rows Tenure stored into an empty copy of the table with the database's own
/// bulk loader; returns (rows, seconds).
fn ceiling(backend: &str, url: &DatabaseUrl, dir: &std::path::Path) -> Option<(usize, f64)> {
    match url {
        DatabaseUrl::Sqlite(path) => sqlite_ceiling(path, dir),
        DatabaseUrl::Postgres(url) => {
            let csv = dir.join(format!("{backend}-rows.csv"));
            let export = Command::new("psql")
                .args([
                    url.as_str(),
                    "-qc",
                    &format!(
                        "\\copy (SELECT {COLUMNS} FROM events ORDER BY seq) TO '{}' CSV",
                        csv.display()
                    ),
                ])
                .status()
                .ok()?;
            if !export.success() {
                return None;
            }
            // An empty table with the same columns, constraints and indexes.
            let setup = Command::new("psql")
                .args([
                    url.as_str(),
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    "CREATE TABLE events_ceiling (LIKE events INCLUDING ALL)",
                ])
                .output()
                .ok()?;
            if !setup.status.success() {
                println!(
                    "COPY setup failed: {}",
                    String::from_utf8_lossy(&setup.stderr)
                );
                return None;
            }
            // COPY is one statement, hence one transaction.
            let t = Instant::now();
            let out = Command::new("psql")
                .args([
                    url.as_str(),
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    &format!(
                        "\\copy events_ceiling ({COLUMNS}) FROM '{}' CSV",
                        csv.display()
                    ),
                ])
                .output()
                .ok()?;
            let seconds = t.elapsed().as_secs_f64();
            if !out.status.success() {
                println!("COPY failed: {}", String::from_utf8_lossy(&out.stderr));
                return None;
            }
            let count = Command::new("psql")
                .args([url.as_str(), "-qAtc", "SELECT count(*) FROM events_ceiling"])
                .output()
                .ok()?;
            let rows = String::from_utf8_lossy(&count.stdout).trim().parse().ok()?;
            Some((rows, seconds))
        }
    }
}

/// Rebuild measured in a fresh child process (so the resident memory it reports is the
/// engine's, not buffers left over from the ingest run).
fn rebuild(url: &DatabaseUrl) {
    let DatabaseUrl::Sqlite(path) = url else {
        return;
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_REBUILD_ONLY", path)
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        println!(
            "rebuild run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn rebuild_child(path: &str) {
    let store = Store::open(DatabaseUrl::Sqlite(path.into())).unwrap();
    let ws = store.with(|c| c.workspaces()).unwrap().remove(0);
    let before = rss_bytes();
    let t = Instant::now();
    let engine = store
        .with(|c| tenure_server::writer::rebuild(c, &ws.id))
        .unwrap();
    let full = t.elapsed().as_secs_f64();
    let after = rss_bytes();
    let events = engine.events_applied() as f64;
    let customers = engine.customer_count() as f64;
    let grown = after.saturating_sub(before) as f64;
    println!(
        "rebuild from the log (read + decode + fold): {events} events, {customers} customers in {full:.3} s = {:.0} events/s; heap (RssAnon) grew {:.1} MiB ({:.0} B per customer with its events, {:.1} B per event)",
        events / full,
        grown / 1048576.0,
        grown / customers,
        grown / events,
    );
    drop(engine);

    // The same work split: reading the rows alone; reading and decoding them into
    // messages; folding the decoded messages.
    let t = Instant::now();
    let mut n = 0u64;
    store
        .with(|c| c.scan_log(&ws.id, 0, &mut |_, _| n += 1))
        .unwrap();
    let read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut messages = Vec::with_capacity(n as usize);
    store
        .with(|c| {
            c.scan_log(&ws.id, 0, &mut |_, columns| {
                messages.push(Message::from_log_columns(columns).unwrap())
            })
        })
        .unwrap();
    let decode = t.elapsed().as_secs_f64() - read;
    let t = Instant::now();
    let mut engine = tenure_core::LiveWorkspace::new(ws.id.clone());
    for m in &messages {
        engine.apply(m);
    }
    let fold = t.elapsed().as_secs_f64();
    let n = n as f64;
    println!(
        "  split (warm cache): read rows {read:.3} s ({:.0}/s), decode {decode:.3} s ({:.0}/s), fold {fold:.3} s ({:.0}/s)",
        n / read,
        n / decode,
        n / fold
    );
}

fn main() {
    if let Ok(path) = std::env::var("BENCH_REBUILD_ONLY") {
        rebuild_child(&path);
        return;
    }
    if std::env::var("BENCH_TRACE").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter("tenure_server=debug")
            .with_writer(std::io::stderr)
            .init();
    }
    // `cargo test --all-targets` runs this binary without `--bench`: a smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let total = env_usize("BENCH_EVENTS", if full { 1_000_000 } else { 20_000 });
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let dir = std::env::temp_dir().join(format!("tenure_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("generating {total} demo events in batches of {BATCH}…");
    let bodies = Arc::new(batches(total));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sqlite_url = None;
    for backend in backends.split(',') {
        let Some((url, pg_name)) = fresh_database(backend, &dir, "ingest") else {
            continue;
        };
        let store = Store::open(url.clone()).unwrap();
        let ws = tenure_server::admin::create_workspace(&store, "bench", 0).unwrap();
        let (_, key) = tenure_server::admin::create_key(&store, &ws.id, KeyKind::Write, 0).unwrap();
        drop(store);
        let run = runtime.block_on(async {
            let (base, server) = start_app(&url).await;
            let run = http_ingest(&base, &key, bodies.clone(), concurrency).await;
            server.abort();
            run
        });
        println!(
            "{backend}: HTTP ingest {} events in {:.2} s = {:.0} events/s ({} clients, batches of {BATCH}); ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            run.events,
            run.seconds,
            run.events as f64 / run.seconds,
            concurrency,
            run.p50_ms,
            run.p99_ms,
            run.max_ms
        );
        match ceiling(backend, &url, &dir) {
            Some((rows, seconds)) => println!(
                "{backend}: ceiling ({}) {rows} rows in {seconds:.2} s = {:.0} rows/s; Tenure over HTTP reaches {:.0}% of it",
                if backend == "sqlite" {
                    "sqlite3 shell, one transaction"
                } else {
                    "COPY"
                },
                rows as f64 / seconds,
                100.0 * (run.events as f64 / run.seconds) / (rows as f64 / seconds)
            ),
            None => println!("{backend}: ceiling not measured"),
        }
        if backend == "sqlite" {
            sqlite_url = Some(url);
        }
        drop_database(pg_name);
    }
    if let Some(url) = sqlite_url {
        rebuild(&url);
        runtime.block_on(segments_end_to_end(&url, full));
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The real application on port 0 (wall clock): its base URL and the serving task.
async fn start_app(url: &DatabaseUrl) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let settings = Settings {
        database: url.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        clock: Arc::new(SystemClock),
        risk_retrain_days: None,
        limits: Default::default(),
    };
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    (base, tokio::spawn(app.run_until_stopped()))
}

/// Section 4 (see the top of the file).
async fn segments_end_to_end(url: &DatabaseUrl, full: bool) {
    let rate = env_usize("BENCH_SEGMENT_RATE", 5_000);
    let seconds = if full { 20 } else { 2 };
    let store = Store::open(url.clone()).unwrap();
    let ws = store.with(|c| c.workspaces()).unwrap().remove(0);
    let (_, admin) = tenure_server::admin::create_key(&store, &ws.id, KeyKind::Admin, 0).unwrap();
    let (_, write) = tenure_server::admin::create_key(&store, &ws.id, KeyKind::Write, 0).unwrap();
    drop(store);
    let (base, server) = start_app(url).await;
    let client = reqwest::Client::new();
    let mut definitions: Vec<Value> = serde_json::from_str(include_str!("segments.json")).unwrap();
    definitions.truncate(19);
    definitions.push(json!({"performed": "Probe Sent", "within_days": 1}));
    let defining = Instant::now();
    let mut probe_segment = String::new();
    for (i, definition) in definitions.iter().enumerate() {
        let response = client
            .post(format!("{base}/v1/segments"))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("bench {i}"), "definition": definition}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        probe_segment = body["id"].as_str().unwrap().to_owned();
    }
    println!(
        "segments: 20 defined and backfilled over HTTP in {:.2} s",
        defining.elapsed().as_secs_f64()
    );
    // Background load: batches of 50 events for existing demo users, paced to the rate.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let load = {
        let (client, base, write, stop, sent) = (
            client.clone(),
            base.clone(),
            write.clone(),
            stop.clone(),
            sent.clone(),
        );
        tokio::spawn(async move {
            let per_batch = 50;
            let mut interval =
                tokio::time::interval(Duration::from_secs_f64(per_batch as f64 / rate as f64));
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                interval.tick().await;
                let batch: Vec<Value> = (0..per_batch)
                    .map(|_| {
                        k += 1;
                        let event = ["Report Viewed", "Dashboard Viewed", "Project Created", "Export Completed"][(k % 4) as usize];
                        json!({"type": "track", "userId": format!("user_{:06}", 1 + k * 7919 % 2000),
                               "event": event, "messageId": format!("load-{k}")})
                    })
                    .collect();
                let (client, base, write, sent) =
                    (client.clone(), base.clone(), write.clone(), sent.clone());
                tokio::spawn(async move {
                    let r = client
                        .post(format!("{base}/v1/batch"))
                        .basic_auth(&write, Some(""))
                        .json(&json!({"batch": batch}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    sent.fetch_add(per_batch, Ordering::Relaxed);
                });
            }
        })
    };
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut probe = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        probe += 1;
        let t = Instant::now();
        let r = client
            .post(format!("{base}/v1/track"))
            .basic_auth(&write, Some(""))
            .json(&json!({"userId": format!("probe-{probe}"), "event": "Probe Sent"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    let achieved = sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    // Every probe entered the segment, as an event in its log.
    for p in 1..=probe {
        let body: Value = client
            .get(format!("{base}/v1/customers/probe-{p}/segments"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == probe_segment.as_str()),
            "probe {p}: {body}"
        );
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick =
        |q: f64| ms(latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)]);
    println!(
        "segments: HTTP request → committed Segment Entered, 20 segments, background ingest {achieved:.0} events/s: {} probes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (every entry found in the log)",
        latencies.len(),
        pick(0.5),
        pick(0.99),
        ms(*latencies.last().unwrap())
    );
    server.abort();
}
