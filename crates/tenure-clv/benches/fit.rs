//! Fit and summary timings (`cargo bench -p tenure-clv --bench fit`), printed as JSON lines
//! for `scripts/bench-clv`, which runs Python `lifetimes` on the same data in the same run.
//! Each timing is the median of several runs. Nothing is asserted: the machine is shared.
#![allow(clippy::unwrap_used)]

use rand::{RngExt, SeedableRng, rngs::StdRng};
use std::time::Instant;

use tenure_clv::bgbb::{BgBb, Opportunities};
use tenure_clv::bgnbd::{BgNbd, Rft};
use tenure_clv::gamma_gamma::GammaGamma;
use tenure_clv::mbgnbd::MbgNbd;
use tenure_clv::pareto_nbd::ParetoNbd;
use tenure_clv::sbg::ShiftedBetaGeometric;
use tenure_clv::summary::{Transaction, summarize};

#[path = "../../../tests/support/reference_data.rs"]
mod reference_data;

use reference_data::read as shared;

/// Median time of `runs` runs of `f`, and what the last run returned (a fit's parameters).
fn median_ms(runs: usize, mut f: impl FnMut() -> Vec<f64>) -> (f64, Vec<f64>) {
    let mut times = Vec::with_capacity(runs);
    let mut last = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        last = f();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[runs / 2], last)
}

fn report(name: &str, customers: usize, (ms, params): (f64, Vec<f64>)) {
    let params: Vec<String> = params.iter().map(|p| format!("{p:.6}")).collect();
    println!(
        "{{\"impl\": \"tenure-clv\", \"task\": \"{name}\", \"customers\": {customers}, \"ms\": {ms:.3}, \"params\": [{}]}}",
        params.join(", ")
    );
}

/// xorshift64*: a deterministic resample of the CDNOW customers. Written out (not a crate's
/// generator) because scripts/bench_lifetimes.py draws the same stream in Python, so both
/// fit the same 100,000 rows.
fn resample(base: &[Rft], n: usize) -> Vec<Rft> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            base[(state.wrapping_mul(0x2545_F491_4F6C_DD1D) % base.len() as u64) as usize]
        })
        .collect()
}

fn main() {
    if !reference_data::available("the fit benchmark") {
        return;
    }
    let rows: Vec<(Rft, f64)> = shared("cdnow/cdnow_customers_summary_with_transactions.csv")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|v| v.trim().parse().unwrap()).collect();
            (
                Rft {
                    x: f[1],
                    t_x: f[2],
                    t: f[3],
                },
                f[4],
            )
        })
        .collect();
    let cdnow: Vec<Rft> = rows.iter().map(|(c, _)| *c).collect();
    let n = cdnow.len();
    report(
        "bgnbd_fit_cdnow",
        n,
        median_ms(21, || BgNbd::fit(&cdnow).1.params),
    );
    report(
        "mbgnbd_fit_cdnow",
        n,
        median_ms(21, || MbgNbd::fit(&cdnow).1.params),
    );
    report(
        "pnbd_fit_cdnow",
        n,
        median_ms(11, || ParetoNbd::fit(&cdnow).1.params),
    );
    let repeat: Vec<(f64, f64)> = rows
        .iter()
        .filter(|(c, _)| c.x > 0.0)
        .map(|(c, z)| (c.x, *z))
        .collect();
    report(
        "gg_fit_cdnow",
        repeat.len(),
        median_ms(21, || GammaGamma::fit(&repeat).unwrap().1.params),
    );
    let model = BgNbd::fit(&cdnow).0;
    report(
        "bgnbd_predict_cdnow",
        n,
        median_ms(21, || {
            vec![
                cdnow
                    .iter()
                    .map(|c| model.conditional_expected_purchases(39.0, c))
                    .sum(),
            ]
        }),
    );
    let big = resample(&cdnow, 100_000);
    report(
        "pnbd_fit_100k",
        big.len(),
        median_ms(3, || ParetoNbd::fit(&big).1.params),
    );
    report(
        "bgnbd_fit_100k",
        big.len(),
        median_ms(3, || BgNbd::fit(&big).1.params),
    );

    let donations: Vec<Opportunities> = shared("donations/donations.csv")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<u32> = l.split(',').map(|v| v.trim().parse().unwrap()).collect();
            Opportunities {
                x: f[0],
                t_x: f[1],
                n: f[2],
                weight: f64::from(f[3]),
            }
        })
        .collect();
    report(
        "bgbb_fit_donations",
        11_104,
        median_ms(21, || BgBb::fit(&donations).1.params),
    );
    let sbg: Vec<Vec<u64>> = vec![vec![1000, 631, 468, 382, 326, 289, 262, 241]];
    report(
        "sbg_fit_regular",
        1000,
        median_ms(21, || ShiftedBetaGeometric::fit(&sbg).unwrap().1.params),
    );

    // Summary building: 1,000,000 transactions of 100,000 customers (the size lifetimes is
    // measured on), then 10,000,000 of 1,000,000 customers, over two years.
    let mut rng = StdRng::seed_from_u64(7);
    let small: Vec<Transaction> = (0..1_000_000)
        .map(|_| Transaction {
            customer: rng.random_range(0..100_000),
            day: rng.random_range(0..730),
            value: f64::from(rng.random_range(0..10_000u32)) / 100.0,
        })
        .collect();
    let (ms, _) = median_ms(5, || {
        let mut copy = small.clone();
        vec![summarize(&mut copy, 547, None, 7.0).len() as f64]
    });
    println!(
        "{{\"impl\": \"tenure-clv\", \"task\": \"summary_1m_transactions\", \"customers\": 100000, \"ms\": {ms:.1}}}"
    );
    let mut rng = StdRng::seed_from_u64(42);
    let transactions: Vec<Transaction> = (0..10_000_000)
        .map(|_| Transaction {
            customer: rng.random_range(0..1_000_000),
            day: rng.random_range(0..730),
            value: f64::from(rng.random_range(0..10_000u32)) / 100.0,
        })
        .collect();
    let (ms, _) = median_ms(3, || {
        let mut copy = transactions.clone();
        vec![summarize(&mut copy, 547, Some(729), 7.0).len() as f64]
    });
    println!(
        "{{\"impl\": \"tenure-clv\", \"task\": \"summary_10m_transactions\", \"customers\": 1000000, \"ms\": {ms:.1}}}"
    );
}
