//! Legitimate ingest beside hostile clients (`cargo bench -p tenure --bench hostile`), on
//! loopback only and bounded in time (issue 17).
//!
//! The real `Application` (release build) on SQLite with its default limits. Legitimate
//! clients post `/v1/batch` requests of 100 demo events for `BENCH_SECONDS` (10) twice:
//! 1. alone, the baseline;
//! 2. beside a slow-connection flood — `BENCH_SLOW` (3,000) sockets from another address
//!    that send half a request header and stall, each reopened as soon as the server closes
//!    it after `BENCH_RECONNECT_MS` (1,000; 0 makes it a connection-churn flood), most at
//!    once (one address holds at most 128 connections) — and a flood
//!    of oversized queries (`GET /v1/metrics/cohorts?grain=day&from=1990-01-01` with an
//!    admin key, as fast as 4 clients can send them; each must be refused with a 400).
//!
//! Printed for each: legitimate events/s, acknowledgement p50 / p99 / max, how many hostile
//! sockets were closed by the server and how many oversized queries were refused. Timings
//! are printed, never asserted. `cargo test` runs it for one second with 100 sockets.
//! Figures: docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenure_core::demo::{DemoBusiness, DemoConfig};
use tenure_core::time::parse_instant;
use tenure_server::{Application, Settings, SystemClock};
use tenure_store::{DatabaseUrl, KeyKind, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/batch_clients.rs"]
mod batch_clients;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Demo events as `/v1/batch` bodies of 100 (unique message ids, so none is a duplicate).
fn bodies(total: usize) -> Vec<Vec<u8>> {
    let business = DemoBusiness::new(DemoConfig {
        customers: 200_000,
        months: 24,
        seed: 3,
        end: parse_instant("2026-01-01").unwrap(),
    });
    let mut events: Vec<Value> = Vec::with_capacity(total);
    for customer in business.customers() {
        events.extend(customer.events);
        if events.len() >= total {
            break;
        }
    }
    events
        .chunks(100)
        .map(|chunk| serde_json::to_vec(&json!({"batch": chunk})).unwrap())
        .collect()
}

struct Legit {
    events: usize,
    seconds: f64,
    latencies: Vec<Duration>,
}

/// Legitimate clients for `seconds`, taking bodies from `next`.
async fn legit(
    base: &str,
    key: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
    seconds: u64,
) -> Legit {
    // The legitimate clients' address; the hostile ones come from others.
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let latencies =
        batch_clients::post_batches(&client, (base, key), bodies, next, 16, Some(until)).await;
    Legit {
        events: latencies.len() * 100,
        seconds: started.elapsed().as_secs_f64(),
        latencies,
    }
}

fn report(label: &str, run: &Legit) {
    if run.latencies.is_empty() {
        println!(
            "{label}: no legitimate request completed in {:.1} s",
            run.seconds
        );
        return;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| {
        ms(run.latencies[((run.latencies.len() as f64 * q) as usize).min(run.latencies.len() - 1)])
    };
    println!(
        "{label}: {} legitimate events in {:.1} s = {:.0} events/s; ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        run.events,
        run.seconds,
        run.events as f64 / run.seconds,
        pick(0.5),
        pick(0.99),
        ms(*run.latencies.last().unwrap())
    );
}

/// Sockets that send half a header and stall; each is reopened when the server closes it.
async fn slow_flood(
    address: String,
    sockets: usize,
    reconnect: Duration,
    stop: Arc<AtomicBool>,
    closed: Arc<AtomicUsize>,
) {
    let mut tasks = Vec::new();
    for _ in 0..sockets {
        let (address, stop, closed) = (address.clone(), stop.clone(), closed.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut socket) = connect_from(&address, 3).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = socket
                    .write_all(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .await;
                let mut buffer = [0u8; 512];
                loop {
                    tokio::select! {
                        read = socket.read(&mut buffer) => match read {
                            Ok(0) | Err(_) => {
                                closed.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(reconnect).await;
                                break;
                            }
                            Ok(_) => {}
                        },
                        () = tokio::time::sleep(Duration::from_millis(200)) => {
                            if stop.load(Ordering::Relaxed) { return; }
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// A socket to `address` from 127.0.0.`last`.
async fn connect_from(address: &str, last: u8) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))?;
    socket
        .connect(address.parse().map_err(std::io::Error::other)?)
        .await
}

/// Oversized queries as fast as 4 clients can send them; counts the 400s.
async fn query_flood(
    base: String,
    admin: String,
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
) {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 4]))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (client, base, admin, stop, refused) = (
            client.clone(),
            base.clone(),
            admin.clone(),
            stop.clone(),
            refused.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let response = client
                    .get(format!(
                        "{base}/v1/metrics/cohorts?grain=day&from=1990-01-01"
                    ))
                    .bearer_auth(&admin)
                    .send()
                    .await;
                if let Ok(r) = response {
                    assert_eq!(r.status(), 400, "an oversized query was not refused");
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let seconds = if full {
        env_usize("BENCH_SECONDS", 10) as u64
    } else {
        1
    };
    let slow = if full {
        env_usize("BENCH_SLOW", 3_000)
    } else {
        100
    };
    let dir = std::env::temp_dir().join(format!("tenure_hostile_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = DatabaseUrl::Sqlite(dir.join("hostile.db"));
    let store = Store::open(url.clone()).unwrap();
    let ws = tenure_server::admin::create_workspace(&store, "hostile", 0).unwrap();
    let (_, write) = tenure_server::admin::create_key(&store, &ws.id, KeyKind::Write, 0).unwrap();
    let (_, admin) = tenure_server::admin::create_key(&store, &ws.id, KeyKind::Admin, 0).unwrap();
    drop(store);
    let total = if full { 2_000_000 } else { 40_000 };
    // Each phase has its own half, so the first cannot leave the second nothing to send.
    let mut first = bodies(total);
    let second = Arc::new(first.split_off(first.len() / 2));
    let first = Arc::new(first);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The server on a runtime of its own (as in production, where clients are elsewhere);
    // the clients, legitimate and hostile, share the other. Both on this machine's 2 cores.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings = Settings {
        database: url.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        clock: Arc::new(SystemClock),
        risk_retrain_days: None,
        limits: Default::default(),
    };
    let app = server_runtime
        .block_on(Application::build(settings))
        .unwrap();
    let address = format!("127.0.0.1:{}", app.port());
    let base = format!("http://{address}");
    let server = server_runtime.spawn(app.run_until_stopped());
    runtime.block_on(async {
        println!("limits: {:?}", tenure_server::serve::Limits::default());

        let alone = legit(&base, &write, first, Arc::new(AtomicUsize::new(0)), seconds).await;
        report("alone", &alone);

        let stop = Arc::new(AtomicBool::new(false));
        let (closed, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let reconnect = Duration::from_millis(env_usize("BENCH_RECONNECT_MS", 1000) as u64);
        let flood = tokio::spawn(slow_flood(
            address.clone(),
            slow,
            reconnect,
            stop.clone(),
            closed.clone(),
        ));
        let queries = tokio::spawn(query_flood(base.clone(), admin.clone(), stop.clone(), refused.clone()));
        // Let the flood build up before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let attacked = legit(&base, &write, second, Arc::new(AtomicUsize::new(0)), seconds).await;
        stop.store(true, Ordering::Relaxed);
        report(
            &format!(
                "beside {slow} stalled sockets (reopened {} ms after a close) and an oversized-query flood",
                reconnect.as_millis()
            ),
            &attacked,
        );
        let _ = flood.await;
        let _ = queries.await;
        println!(
            "hostile: {} stalled sockets closed by the server, {} oversized queries refused (400)",
            closed.load(Ordering::Relaxed),
            refused.load(Ordering::Relaxed)
        );
        server.abort();
    });
    let _ = std::fs::remove_dir_all(dir);
}
