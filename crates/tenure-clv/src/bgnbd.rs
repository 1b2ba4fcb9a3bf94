//! BG/NBD (beta-geometric / negative binomial distribution), Fader, Hardie & Lee (2005),
//! "Counting your customers the easy way: an alternative to the Pareto/NBD model",
//! Marketing Science 24(2).
//!
//! While alive, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each
//! purchase they drop out with probability p ~ Beta(a, b). A customer is summarised by
//! x (repeat purchases), t_x (time of the last one) and T (time since the first purchase).

use serde::Serialize;

use crate::optimize::{Fit, maximize_with_gradient};
use crate::special::{digamma, hyp2f1, ln_beta, ln_gamma, log_sum_exp};

/// A customer's purchase history in the time unit of the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rft {
    /// Number of repeat purchases.
    pub x: f64,
    /// Time of the last repeat purchase (0 if none), since the first purchase.
    pub t_x: f64,
    /// Time from the first purchase to the end of the observation.
    pub t: f64,
}

/// Fitted BG/NBD parameters: λ ~ Gamma(r, α), drop-out probability p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgNbd {
    /// Shape r of the purchase rate λ ~ Gamma(r, α).
    pub r: f64,
    /// Scale α of λ ~ Gamma(r, α), in the time unit of the data.
    pub alpha: f64,
    /// a of the drop-out probability p ~ Beta(a, b).
    pub a: f64,
    /// b of p ~ Beta(a, b).
    pub b: f64,
}

impl BgNbd {
    fn from_params(p: &[f64]) -> Self {
        Self {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
        }
    }

    /// ln L for one customer (FHL 2005, eq. 6), in log-sum-exp form.
    pub fn log_likelihood_one(&self, c: &Rft) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let x = c.x;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_beta(a, b + x) - ln_beta(a, b);
        let a3 = -(r + x) * (alpha + c.t).ln();
        let a4 = if x > 0.0 {
            a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.t_x).ln()
        } else {
            f64::NEG_INFINITY
        };
        a1 + a2 + log_sum_exp(a3, a4)
    }

    /// Σ weight × ln L over customers (see [`log_likelihood_by_x`]).
    pub fn log_likelihood(&self, customers: &[(Rft, f64)]) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let (ln_alpha, ln_a, ln_beta_ab, ln_gamma_r) =
            (alpha.ln(), a.ln(), ln_beta(a, b), ln_gamma(r));
        log_likelihood_by_x(customers, r, alpha, |x| {
            let head = ln_gamma(r + x) - ln_gamma_r + r * ln_alpha + ln_beta(a, b + x) - ln_beta_ab;
            let ln_drop = if x > 0.0 {
                ln_a - (b + x - 1.0).ln()
            } else {
                f64::NEG_INFINITY
            };
            (head, ln_drop)
        })
    }

    /// ∂ ln L / ∂ (r, α, a, b), summed with weights ([`gradient_by_x`]):
    /// ∂a = ψ(a+b) − ψ(a+b+x) + q/a; ∂b = ψ(b+x) − ψ(a+b+x) − ψ(b) + ψ(a+b) − q/(b+x−1).
    pub fn gradient(&self, customers: &[(Rft, f64)]) -> [f64; 4] {
        let Self { r, alpha, a, b } = *self;
        let (ln_a, psi_ab) = (a.ln(), digamma(a + b));
        gradient_by_x(customers, r, alpha, |x| {
            let psi_abx = digamma(a + b + x);
            if x > 0.0 {
                XTerms {
                    d_a: psi_ab - psi_abx,
                    d_b: digamma(b + x) - psi_abx - digamma(b) + psi_ab,
                    ln_drop: ln_a - (b + x - 1.0).ln(),
                    d_drop_a: 1.0 / a,
                    d_drop_b: -1.0 / (b + x - 1.0),
                }
            } else {
                XTerms {
                    d_a: 0.0,
                    d_b: 0.0,
                    ln_drop: f64::NEG_INFINITY,
                    d_drop_a: 0.0,
                    d_drop_b: 0.0,
                }
            }
        })
    }

    /// Fits by maximum likelihood (analytic gradient). Identical summaries are grouped first.
    pub fn fit(customers: &[Rft]) -> (BgNbd, Fit) {
        let grouped = group(customers);
        let fit = maximize_with_gradient(
            &|p| BgNbd::from_params(p).log_likelihood(&grouped),
            Some(&|p| BgNbd::from_params(p).gradient(&grouped).to_vec()),
            &[1.0, 1.0, 1.0, 1.0],
            customers.len() as f64,
        );
        (BgNbd::from_params(&fit.params), fit)
    }

    /// E[X(t)]: expected purchases in (0, t] of a customer just acquired (eq. 9).
    pub fn expected_purchases(&self, t: f64) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let z = t / (alpha + t);
        (a + b - 1.0) / (a - 1.0)
            * (1.0 - (alpha / (alpha + t)).powf(r) * hyp2f1(r, b, a + b - 1.0, z))
    }

    /// P(alive | x, t_x, T) (eq. A.2 of FHL's technical note; lifetimes' convention).
    pub fn probability_alive(&self, c: &Rft) -> f64 {
        if c.x == 0.0 {
            return 1.0;
        }
        let Self { r, alpha, a, b } = *self;
        let log_ratio =
            (a / (b + c.x - 1.0)).ln() + (r + c.x) * ((alpha + c.t) / (alpha + c.t_x)).ln();
        1.0 / (1.0 + log_ratio.exp())
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in the next t (eq. 10).
    pub fn conditional_expected_purchases(&self, t: f64, c: &Rft) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let x = c.x;
        let z = t / (alpha + c.t + t);
        let bracket = 1.0
            - ((alpha + c.t) / (alpha + c.t + t)).powf(r + x)
                * hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        (a + b + x - 1.0) / (a - 1.0) * bracket * self.probability_alive(c)
    }

    /// P(X(t) = n) for a customer just acquired (eq. 8).
    pub fn probability_of_purchases(&self, t: f64, n: u32) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let n_f = f64::from(n);
        let ln_poisson_mix = |k: f64| {
            ln_gamma(r + k) - ln_gamma(r) - ln_gamma(k + 1.0)
                + r * (alpha / (alpha + t)).ln()
                + k * (t / (alpha + t)).ln()
        };
        let first = (ln_beta(a, b + n_f) - ln_beta(a, b) + ln_poisson_mix(n_f)).exp();
        if n == 0 {
            return first;
        }
        let partial: f64 = (0..n).map(|j| ln_poisson_mix(f64::from(j)).exp()).sum();
        first + (ln_beta(a + 1.0, b + n_f - 1.0) - ln_beta(a, b)).exp() * (1.0 - partial)
    }
}

/// Σ w · (head(x) + ln(e^(−(r+x) ln(α+T)) + e^(drop(x) − (r+x) ln(α+t_x)))), the shape of the
/// BG/NBD family's log-likelihood. `per_x(x) = (head, drop)` holds the terms that depend on x
/// alone (log-gammas): they are computed once per run of equal x, which [`group`]'s ordering
/// gives.
pub(crate) fn log_likelihood_by_x(
    customers: &[(Rft, f64)],
    r: f64,
    alpha: f64,
    per_x: impl Fn(f64) -> (f64, f64),
) -> f64 {
    let mut cached_x = f64::NAN;
    let (mut head, mut ln_drop) = (0.0, 0.0);
    let mut total = 0.0;
    for (c, w) in customers {
        let x = c.x;
        if x != cached_x {
            cached_x = x;
            (head, ln_drop) = per_x(x);
        }
        let stayed = -(r + x) * (alpha + c.t).ln();
        let dropped = ln_drop - (r + x) * (alpha + c.t_x).ln();
        total += w * (head + log_sum_exp(stayed, dropped));
    }
    total
}

/// The terms of the BG/NBD family's gradient that depend on x alone: ∂/∂a and ∂/∂b of the
/// beta part, the log of the drop-out term's own factor, and its derivatives in a and b.
pub(crate) struct XTerms {
    pub d_a: f64,
    pub d_b: f64,
    pub ln_drop: f64,
    pub d_drop_a: f64,
    pub d_drop_b: f64,
}

/// ∂ ln L / ∂ (r, α, a, b) for the shape of [`log_likelihood_by_x`]. With q the share of the
/// drop-out term in each customer's sum and p = 1 − q:
/// ∂r = ψ(r+x) − ψ(r) + ln α − p ln(α+T) − q ln(α+t_x); ∂α = r/α − (r+x)(p/(α+T) + q/(α+t_x));
/// ∂a, ∂b = the beta part's derivatives + q × the drop-out factor's.
pub(crate) fn gradient_by_x(
    customers: &[(Rft, f64)],
    r: f64,
    alpha: f64,
    per_x: impl Fn(f64) -> XTerms,
) -> [f64; 4] {
    let (psi_r, ln_alpha) = (digamma(r), alpha.ln());
    let mut cached_x = f64::NAN;
    let mut d_r_x = 0.0;
    let mut terms = XTerms {
        d_a: 0.0,
        d_b: 0.0,
        ln_drop: f64::NEG_INFINITY,
        d_drop_a: 0.0,
        d_drop_b: 0.0,
    };
    let mut g = [0.0; 4];
    for (c, w) in customers {
        let x = c.x;
        if x != cached_x {
            cached_x = x;
            d_r_x = digamma(r + x) - psi_r + ln_alpha;
            terms = per_x(x);
        }
        let stayed = -(r + x) * (alpha + c.t).ln();
        let dropped = terms.ln_drop - (r + x) * (alpha + c.t_x).ln();
        let q = if dropped == f64::NEG_INFINITY {
            0.0
        } else {
            1.0 / (1.0 + (stayed - dropped).exp())
        };
        let p = 1.0 - q;
        g[0] += w * (d_r_x - p * (alpha + c.t).ln() - q * (alpha + c.t_x).ln());
        g[1] += w * (r / alpha - (r + x) * (p / (alpha + c.t) + q / (alpha + c.t_x)));
        g[2] += w * (terms.d_a + q * terms.d_drop_a);
        g[3] += w * (terms.d_b + q * terms.d_drop_b);
    }
    g
}

/// Identical (x, t_x, T) rows counted once with a weight: the CDNOW calibration sample has
/// 2,357 customers but far fewer distinct summaries.
pub fn group(customers: &[Rft]) -> Vec<(Rft, f64)> {
    let mut keyed: Vec<(Rft, f64)> = customers.iter().map(|c| (*c, 1.0)).collect();
    keyed.sort_by(|(a, _), (b, _)| {
        (a.x, a.t_x, a.t)
            .partial_cmp(&(b.x, b.t_x, b.t))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut grouped: Vec<(Rft, f64)> = Vec::with_capacity(keyed.len());
    for (c, w) in keyed {
        match grouped.last_mut() {
            Some((last, weight)) if last == &c => *weight += w,
            _ => grouped.push((c, w)),
        }
    }
    grouped
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Customers the models' gradient tests share: no repeat, one, several, and a recent
    /// high frequency.
    pub(crate) fn gradient_sample() -> Vec<Rft> {
        vec![
            Rft {
                x: 0.0,
                t_x: 0.0,
                t: 30.0,
            },
            Rft {
                x: 1.0,
                t_x: 3.0,
                t: 35.0,
            },
            Rft {
                x: 4.0,
                t_x: 20.5,
                t: 38.0,
            },
            Rft {
                x: 12.0,
                t_x: 37.0,
                t: 38.0,
            },
        ]
    }

    #[test]
    fn the_analytic_gradient_matches_finite_differences() {
        let data = group(&gradient_sample());
        let p = [0.4, 3.0, 0.9, 2.1];
        let model = |p: &[f64]| BgNbd::from_params(p);
        crate::optimize::assert_gradient_matches(
            &|p| model(p).log_likelihood(&data),
            &model(&p).gradient(&data),
            &p,
        );
    }
}
