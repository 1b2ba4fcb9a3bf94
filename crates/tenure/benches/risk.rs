//! Churn-risk benchmark (`cargo bench -p tenure --bench risk`), with scikit-learn side by side.
//!
//! 1. Generates the demo business with `BENCH_CUSTOMERS` customers (default 50,000) over 24
//!    months and folds it into an engine.
//! 2. Times the training: building the rows in slices of 2,000 customers as the server does
//!    (each slice under its own read lock: the longest is the longest ingest wait), then
//!    fitting and comparing both learners (four fits).
//! 3. Times ranking every current customer (`GET /v1/risk/customers`) and one customer's
//!    prediction with reasons (what a profile adds): p50 / p99 over 2,000 customers.
//! 4. Writes the same rows to CSV and runs `scripts/bench_risk_sklearn.py`: scikit-learn's
//!    HistGradientBoostingClassifier and LogisticRegression with the same settings fit the
//!    same fit + validation rows (timed) and are evaluated on the same holdout rows.
//!
//! Settings: `BENCH_CUSTOMERS`, `BENCH_PYTHON` (a Python with scikit-learn, default
//! target/bench-venv/bin/python), `BENCH_SKIP_SKLEARN=1`. Timings are printed, never
//! asserted. Figures: docs/benchmarks.md ("Churn risk").
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Instant;

use tenure_core::demo::{DemoBusiness, DemoConfig};
use tenure_core::time::parse_instant;
use tenure_core::{Envelope, LiveWorkspace, Message, WorkspaceId};
use tenure_risk::training::{DatasetBuilder, TrainingOptions};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let customers: usize = std::env::var("BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let end = parse_instant("2026-12-01").unwrap();
    let started = Instant::now();
    let business = DemoBusiness::new(DemoConfig {
        customers,
        months: 24,
        seed: 42,
        end,
    });
    let envelope = Envelope {
        received_at: end + 1,
        batch_sent_at: None,
    };
    let mut engine = LiveWorkspace::new(WorkspaceId::parse("ws_bench").unwrap());
    let mut events = 0u64;
    for customer in business.customers() {
        for event in customer.events {
            engine.apply(&Message::parse(event, None, envelope).unwrap());
            events += 1;
        }
    }
    println!(
        "demo business: {customers} customers, {events} events, generated and folded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let states: Vec<_> = engine.customers().collect();
    let options = TrainingOptions::default();
    // As the server builds them: 2,000 customers at a time, each slice under its own read
    // lock (the longest slice is how long ingest can wait).
    let t = Instant::now();
    let mut builder = DatasetBuilder::new(end, &options).unwrap();
    let mut longest: f64 = 0.0;
    for slice in states.chunks(2_000) {
        let s = Instant::now();
        builder.count(slice);
        longest = longest.max(s.elapsed().as_secs_f64());
    }
    builder.end_counting();
    for slice in states.chunks(2_000) {
        let s = Instant::now();
        builder.add(slice, engine.names());
        longest = longest.max(s.elapsed().as_secs_f64());
    }
    let dataset = builder.finish().unwrap();
    let build = t.elapsed().as_secs_f64();
    let rows = dataset.rows();
    let csv = std::env::temp_dir().join(format!("tenure_risk_bench_{}.csv", std::process::id()));
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        dataset.write_csv(&mut out).unwrap();
    }
    let t = Instant::now();
    let model = dataset.fit().unwrap();
    let fit = t.elapsed().as_secs_f64();
    let r = &model.report;
    println!(
        "training: {rows} rows ({} fit, {} validation, {} holdout); building the rows {build:.2} s in slices of 2,000 customers (longest slice, i.e. the longest ingest wait: {:.0} ms), fitting and comparing both learners {fit:.2} s",
        r.fit.rows,
        r.validation.rows,
        r.holdout.rows,
        longest * 1e3
    );
    for c in &r.candidates {
        println!(
            "  tenure {:<24} validation AUC {:.4}  holdout AUC {:.4}  top-decile lift {:.2}",
            c.learner.label(),
            c.validation_auc,
            c.holdout.auc,
            c.holdout.top_decile.lift
        );
    }
    println!(
        "  recency baseline             holdout AUC {:.4}; kept {}",
        r.recency_baseline.auc,
        r.kept.label()
    );

    let t = Instant::now();
    let ranked = model.riskiest(engine.customers(), engine.names(), end, 20);
    println!(
        "ranking every current customer ({}): {:.3} s",
        ranked.current_customers,
        t.elapsed().as_secs_f64()
    );
    let mut each: Vec<f64> = states
        .iter()
        .take(2_000)
        .map(|s| {
            let t = Instant::now();
            std::hint::black_box(model.predict(s, engine.names(), end));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    each.sort_by(f64::total_cmp);
    println!(
        "one prediction with reasons: p50 {:.3} ms, p99 {:.3} ms",
        percentile(&each, 0.5),
        percentile(&each, 0.99)
    );

    if std::env::var("BENCH_SKIP_SKLEARN").is_ok_and(|v| v == "1") {
        let _ = std::fs::remove_file(&csv);
        return;
    }
    let python =
        std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "target/bench-venv/bin/python".to_owned());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = std::process::Command::new(&python)
        .arg(format!("{root}/scripts/bench_risk_sklearn.py"))
        .arg(&csv)
        .output();
    match out {
        Ok(out) if out.status.success() => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Ok(out) => println!(
            "scikit-learn run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => println!(
            "scikit-learn not run ({python}: {e}); create it with: python3 -m venv target/bench-venv && target/bench-venv/bin/pip install scikit-learn"
        ),
    }
    let _ = std::fs::remove_file(&csv);
}
