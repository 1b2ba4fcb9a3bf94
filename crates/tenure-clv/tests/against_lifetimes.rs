//! Predictions against Python `lifetimes`, an independent implementation
//! (tests/data/lifetimes_predictions.csv, made by scripts/lifetimes_reference.py).
#![allow(clippy::unwrap_used)]

use tenure_clv::bgnbd::{BgNbd, Rft};
use tenure_clv::mbgnbd::MbgNbd;
use tenure_clv::pareto_nbd::ParetoNbd;

#[test]
fn probability_alive_and_expected_purchases_match_lifetimes() {
    let bgnbd = BgNbd {
        r: 0.2426,
        alpha: 4.4137,
        a: 0.7930,
        b: 2.4262,
    };
    let mbgnbd = MbgNbd {
        r: 0.525,
        alpha: 6.183,
        a: 0.891,
        b: 1.614,
    };
    let pnbd = ParetoNbd {
        r: 0.553,
        alpha: 10.58,
        s: 0.606,
        beta: 11.66,
    };
    let mut checked = 0;
    for line in include_str!("data/lifetimes_predictions.csv")
        .lines()
        .skip(1)
    {
        let f: Vec<&str> = line.split(',').collect();
        let n = |i: usize| f[i].parse::<f64>().unwrap();
        let c = Rft {
            x: n(1),
            t_x: n(2),
            t: n(3),
        };
        let t = n(4);
        let (alive, expected) = match f[0] {
            "bgnbd" => (
                bgnbd.probability_alive(&c),
                bgnbd.conditional_expected_purchases(t, &c),
            ),
            "mbgnbd" => (
                mbgnbd.probability_alive(&c),
                mbgnbd.conditional_expected_purchases(t, &c),
            ),
            "pnbd" => (
                pnbd.probability_alive(&c),
                pnbd.conditional_expected_purchases(t, &c),
            ),
            other => panic!("unknown model {other}"),
        };
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-8 * want.abs().max(1e-6);
        assert!(close(alive, n(5)), "{line}: P(alive) {alive}");
        assert!(close(expected, n(6)), "{line}: E[Y] {expected}");
        checked += 1;
    }
    assert_eq!(checked, 42);
}

#[test]
fn customer_lifetime_value_matches_lifetimes() {
    use tenure_clv::clv::{customer_lifetime_value, units_per_month};
    use tenure_clv::gamma_gamma::GammaGamma;
    let bgnbd = BgNbd {
        r: 0.2426,
        alpha: 4.4137,
        a: 0.7930,
        b: 2.4262,
    };
    let gg = GammaGamma {
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
    };
    let mut checked = 0;
    for line in include_str!("data/lifetimes_clv.csv").lines().skip(1) {
        let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let c = Rft {
            x: f[0],
            t_x: f[1],
            t: f[2],
        };
        let value = gg.conditional_expected_value(c.x, f[3]);
        let clv = customer_lifetime_value(
            &|t| bgnbd.conditional_expected_purchases(t, &c),
            value,
            f[4] as u32,
            f[5],
            units_per_month(7.0),
        );
        assert!((clv - f[6]).abs() <= 1e-8 * f[6], "{line}: {clv}");
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn bgbb_predictions_match_lifetimes() {
    use tenure_clv::bgbb::{BgBb, Opportunities};
    let model = BgBb {
        alpha: 1.204,
        beta: 0.750,
        gamma: 0.657,
        delta: 2.784,
    };
    let mut checked = 0;
    for line in include_str!("data/lifetimes_bgbb.csv").lines().skip(1) {
        let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let h = Opportunities {
            x: f[0] as u32,
            t_x: f[1] as u32,
            n: f[2] as u32,
            weight: 1.0,
        };
        let alive = model.probability_alive(&h);
        let expected = model.conditional_expected_transactions(f[3] as u32, &h);
        assert!(
            (alive - f[4]).abs() <= 1e-8 * f[4],
            "{line}: P(alive) {alive}"
        );
        assert!(
            (expected - f[5]).abs() <= 1e-8 * f[5],
            "{line}: E[X] {expected}"
        );
        checked += 1;
    }
    assert_eq!(checked, 15);
    // A customer with no history yet is a new customer.
    let fresh = Opportunities {
        x: 0,
        t_x: 0,
        n: 0,
        weight: 1.0,
    };
    for m in [1, 5, 20] {
        let new = model.expected_transactions(m);
        assert!(
            (model.conditional_expected_transactions(m, &fresh) - new).abs() < 1e-12,
            "{m}"
        );
    }
}
