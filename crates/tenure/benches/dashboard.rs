//! Dashboard page times (`cargo bench -p tenure --bench dashboard`), with the page's own
//! JSON endpoints side by side.
//!
//! Starts the real binary, `tenure demo --listen 127.0.0.1:PORT` (default size: 2,000
//! customers, 24 months; `BENCH_CUSTOMERS` to change it), logs in with the admin key it
//! prints, then requests every page `BENCH_ROUNDS` times (default 50, after 3 warm-up
//! requests) and, for each, the API calls that give the same data. Prints p50 / p95 / max
//! of the server's response as seen by the client on loopback (the whole body read).
//! Timings are printed, never asserted. Figures: docs/benchmarks.md ("Dashboard").
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

struct Timing {
    p50: f64,
    p95: f64,
    max: f64,
    bytes: usize,
}

async fn time(rounds: usize, request: impl Fn() -> reqwest::RequestBuilder) -> Timing {
    let mut bytes = 0;
    for _ in 0..3 {
        let response = request().send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        bytes = response.bytes().await.unwrap().len();
    }
    let mut ms = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let body = request().send().await.unwrap().bytes().await.unwrap();
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        bytes = body.len();
    }
    ms.sort_by(f64::total_cmp);
    Timing {
        p50: percentile(&ms, 0.5),
        p95: percentile(&ms, 0.95),
        max: ms[ms.len() - 1],
        bytes,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let customers = std::env::var("BENCH_CUSTOMERS").unwrap_or_else(|_| "2000".into());
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = std::env::temp_dir().join(format!("tenure-bench-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args([
            "demo",
            "--customers",
            &customers,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(&dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut key = String::new();
    for line in BufReader::new(demo.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(k) = line.trim().strip_prefix("admin key") {
            key = k.trim().to_owned();
        }
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    assert!(key.starts_with("tnr_a_"), "no admin key printed");
    let base = format!("http://127.0.0.1:{port}");
    println!(
        "tenure demo --customers {customers}; {rounds} requests per line, after 3 warm-up requests\n"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // Log in as a browser does: the form's token and its cookie, then the session.
        let login = client
            .get(format!("{base}/dashboard/login"))
            .send()
            .await
            .unwrap();
        let cookie = login.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = login.text().await.unwrap();
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let response = client
            .post(format!("{base}/dashboard/login"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("key={key}&csrf={csrf}&next=%2Fdashboard"))
            .send()
            .await
            .unwrap();
        let session = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("tenure_session="))
            .unwrap();
        let ranking: serde_json::Value = client
            .get(format!("{base}/v1/risk/customers?limit=1"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let customer = ranking["data"][0]["customer_id"]
            .as_str()
            .unwrap_or("user_000001")
            .to_owned();
        let pages: Vec<(String, Vec<String>)> = vec![
            (
                "/dashboard".into(),
                vec![
                    "/v1/metrics?metric=subscriptions,voice,referrals".into(),
                    "/v1/health-scores?limit=1".into(),
                ],
            ),
            (
                "/dashboard?grain=week".into(),
                vec!["/v1/metrics?metric=subscriptions,voice,referrals&grain=week".into()],
            ),
            (
                "/dashboard/cohorts".into(),
                vec!["/v1/metrics?metric=cohorts,activity".into()],
            ),
            (
                "/dashboard/voice".into(),
                vec!["/v1/metrics?metric=voice,nps_breakdown,verbatims".into()],
            ),
            (
                "/dashboard/value".into(),
                vec!["/v1/metrics?metric=concentration,channels,what_if".into()],
            ),
            (
                "/dashboard/at-risk".into(),
                vec!["/v1/risk/customers?sort=expected_loss&limit=50".into()],
            ),
            (
                format!("/dashboard/customers/{customer}"),
                vec![format!("/v1/customers/{customer}")],
            ),
            ("/dashboard/segments".into(), vec!["/v1/segments".into()]),
            (
                "/dashboard/segments/seg_1".into(),
                vec!["/v1/segments/seg_1/members?limit=50".into()],
            ),
        ];
        println!("| Page | p50 ms | p95 ms | max ms | KB | same data from the API: p50 ms (p95) |");
        println!("|---|---|---|---|---|---|");
        for (page, apis) in &pages {
            let t = time(rounds, || {
                client
                    .get(format!("{base}{page}"))
                    .header("cookie", &session)
            })
            .await;
            let mut api_text = Vec::new();
            for api in apis {
                let a = time(rounds, || {
                    client.get(format!("{base}{api}")).bearer_auth(&key)
                })
                .await;
                api_text.push(format!("`{api}` {:.1} ({:.1})", a.p50, a.p95));
            }
            println!(
                "| `{page}` | {:.1} | {:.1} | {:.1} | {:.0} | {} |",
                t.p50,
                t.p95,
                t.max,
                t.bytes as f64 / 1024.0,
                api_text.join("; ")
            );
        }
    });
    let _ = demo.kill();
    let _ = demo.wait();
    std::thread::sleep(Duration::from_millis(100));
    let _ = std::fs::remove_dir_all(&dir);
}
