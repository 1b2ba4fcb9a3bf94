//! DERT (discounted expected residual transactions) for Pareto/NBD and BG/BB against 50-digit
//! values from the papers' formulas in mpmath (tests/data/dert_reference.csv, made by
//! scripts/dert_reference.py), and against the definition: the discounted sum of the
//! increments of the conditional expected purchases, which are themselves checked against
//! `lifetimes` (tests/against_lifetimes.rs).
#![allow(clippy::unwrap_used)]

use tenure_clv::bgbb::{BgBb, Opportunities};
use tenure_clv::bgnbd::Rft;
use tenure_clv::pareto_nbd::ParetoNbd;

/// The published fits the reference table uses: CDNOW (FHL 2005) and donations (FHS 2010).
const PNBD: ParetoNbd = ParetoNbd {
    r: 0.5533,
    alpha: 10.5776,
    s: 0.6061,
    beta: 11.6650,
};
const BGBB: BgBb = BgBb {
    alpha: 1.204,
    beta: 0.750,
    gamma: 0.657,
    delta: 2.783,
};

fn reference() -> Vec<(String, [f64; 5])> {
    include_str!("data/dert_reference.csv")
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let n = |i: usize| f[i].parse::<f64>().unwrap();
            (f[0].to_owned(), [n(1), n(2), n(3), n(4), n(5)])
        })
        .collect()
}

#[test]
fn dert_matches_the_papers_formulas_at_high_precision() {
    let mut checked = 0;
    for (model, [x, t_x, t, discount, expected]) in reference() {
        let got = match model.as_str() {
            "pnbd" => PNBD.discounted_expected_residual_transactions(discount, &Rft { x, t_x, t }),
            "bgbb" => BGBB.discounted_expected_residual_transactions(
                discount,
                &Opportunities {
                    x: x as u32,
                    t_x: t_x as u32,
                    n: t as u32,
                    weight: 1.0,
                },
            ),
            other => panic!("unknown model {other}"),
        };
        let error = (got - expected).abs() / expected;
        assert!(
            error < 1e-10,
            "{model} x={x} t_x={t_x} T={t} d={discount}: got {got}, expected {expected} (relative error {error:e})"
        );
        checked += 1;
    }
    assert_eq!(checked, 30);
}

#[test]
fn pareto_nbd_dert_is_the_discounted_sum_of_expected_purchases() {
    // s > 1 and s < 1 (CDNOW): the conditional expectation is finite over any horizon.
    let heavy_tailed = PNBD;
    let light_tailed = ParetoNbd { s: 2.4, ..PNBD };
    for model in [heavy_tailed, light_tailed] {
        for c in [
            Rft {
                x: 0.0,
                t_x: 0.0,
                t: 38.86,
            },
            Rft {
                x: 2.0,
                t_x: 30.43,
                t: 38.86,
            },
            Rft {
                x: 12.0,
                t_x: 38.0,
                t: 38.0,
            },
        ] {
            let delta = 0.05;
            // Midpoint rule over 0.1-week steps out to where e^(−δt) < 1e-17.
            let step = 0.1;
            let mut sum = 0.0;
            let mut previous = 0.0;
            let mut k = 1;
            while f64::from(k) * step < 800.0 {
                let t = f64::from(k) * step;
                let cumulative = model.conditional_expected_purchases(t, &c);
                sum += (-delta * (t - step / 2.0)).exp() * (cumulative - previous);
                previous = cumulative;
                k += 1;
            }
            let dert = model.discounted_expected_residual_transactions(delta, &c);
            assert!(
                (dert - sum).abs() / dert < 1e-5,
                "s = {}: DERT {dert} vs discounted sum {sum} for {c:?}",
                model.s
            );
        }
    }
}

#[test]
fn bgbb_dert_is_the_discounted_sum_of_expected_transactions() {
    for (x, t_x, n) in [(0, 0, 6), (3, 5, 6), (6, 6, 6), (10, 14, 20)] {
        let h = Opportunities {
            x,
            t_x,
            n,
            weight: 1.0,
        };
        let discount = 0.1;
        let mut sum = 0.0;
        let mut previous = 0.0;
        for m in 1..=600 {
            let cumulative = BGBB.conditional_expected_transactions(m, &h);
            sum += (cumulative - previous) / 1.1f64.powi(m as i32);
            previous = cumulative;
        }
        let dert = BGBB.discounted_expected_residual_transactions(discount, &h);
        assert!(
            (dert - sum).abs() / dert < 1e-9,
            "DERT {dert} vs discounted sum {sum} for {h:?}"
        );
    }
}
