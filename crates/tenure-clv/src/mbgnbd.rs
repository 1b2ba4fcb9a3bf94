//! MBG/NBD, Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of
//! models for customer base analysis", IJRM 24(3): the BG/NBD with a drop-out opportunity
//! at time zero too, so customers with no repeat purchase can be inactive.

use serde::Serialize;

use crate::bgnbd::{Rft, XTerms, gradient_by_x, group, log_likelihood_by_x};
use crate::optimize::{Fit, maximize_with_gradient};
use crate::special::{digamma, hyp2f1, ln_beta, ln_gamma, log_sum_exp};

/// Fitted MBG/NBD parameters: λ ~ Gamma(r, α); drop-out probability p ~ Beta(a, b), also at time 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MbgNbd {
    /// Shape r of the purchase rate λ ~ Gamma(r, α).
    pub r: f64,
    /// Scale α of λ ~ Gamma(r, α), in the time unit of the data.
    pub alpha: f64,
    /// a of the drop-out probability p ~ Beta(a, b).
    pub a: f64,
    /// b of p ~ Beta(a, b).
    pub b: f64,
}

impl MbgNbd {
    fn from_params(p: &[f64]) -> Self {
        Self {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
        }
    }

    /// ln L for one customer (Batislam, Denizel & Filiztekin 2007, eq. 4), in log-sum-exp form.
    pub fn log_likelihood_one(&self, c: &Rft) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let x = c.x;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_beta(a, b + x + 1.0) - ln_beta(a, b);
        let a3 = -(r + x) * (alpha + c.t).ln();
        let a4 = a.ln() - (b + x).ln() - (r + x) * (alpha + c.t_x).ln();
        a1 + a2 + log_sum_exp(a3, a4)
    }

    /// Σ weight × ln L (see [`crate::bgnbd::log_likelihood_by_x`]).
    pub fn log_likelihood(&self, customers: &[(Rft, f64)]) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let (ln_alpha, ln_a, ln_beta_ab, ln_gamma_r) =
            (alpha.ln(), a.ln(), ln_beta(a, b), ln_gamma(r));
        log_likelihood_by_x(customers, r, alpha, |x| {
            let head =
                ln_gamma(r + x) - ln_gamma_r + r * ln_alpha + ln_beta(a, b + x + 1.0) - ln_beta_ab;
            (head, ln_a - (b + x).ln())
        })
    }

    /// ∂ ln L / ∂ (r, α, a, b): the BG/NBD's, with B(a, b+x+1) and a drop-out term for
    /// every customer: ∂a = ψ(a+b) − ψ(a+b+x+1) + q/a;
    /// ∂b = ψ(b+x+1) − ψ(a+b+x+1) − ψ(b) + ψ(a+b) − q/(b+x).
    pub fn gradient(&self, customers: &[(Rft, f64)]) -> [f64; 4] {
        let Self { r, alpha, a, b } = *self;
        let (ln_a, psi_ab, psi_b) = (a.ln(), digamma(a + b), digamma(b));
        gradient_by_x(customers, r, alpha, |x| {
            let psi_abx = digamma(a + b + x + 1.0);
            XTerms {
                d_a: psi_ab - psi_abx,
                d_b: digamma(b + x + 1.0) - psi_abx - psi_b + psi_ab,
                ln_drop: ln_a - (b + x).ln(),
                d_drop_a: 1.0 / a,
                d_drop_b: -1.0 / (b + x),
            }
        })
    }

    /// Maximum-likelihood fit with the analytic gradient, from the start (1, 1, 1, 1).
    pub fn fit(customers: &[Rft]) -> (MbgNbd, Fit) {
        let grouped = group(customers);
        let fit = maximize_with_gradient(
            &|p| MbgNbd::from_params(p).log_likelihood(&grouped),
            Some(&|p| MbgNbd::from_params(p).gradient(&grouped).to_vec()),
            &[1.0, 1.0, 1.0, 1.0],
            customers.len() as f64,
        );
        (MbgNbd::from_params(&fit.params), fit)
    }

    /// P(alive | x, t_x, T).
    pub fn probability_alive(&self, c: &Rft) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let ln_ratio = (a / (b + c.x)).ln() + (r + c.x) * ((alpha + c.t) / (alpha + c.t_x)).ln();
        1.0 / (1.0 + ln_ratio.exp())
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in the next t (Batislam et al. 2007, eq. 14).
    pub fn conditional_expected_purchases(&self, t: f64, c: &Rft) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let x = c.x;
        let z = t / (alpha + c.t + t);
        let bracket = 1.0
            - ((alpha + c.t) / (alpha + c.t + t)).powf(r + x)
                * hyp2f1(r + x, b + x + 1.0, a + b + x, z);
        (a + b + x) / (a - 1.0) * bracket * self.probability_alive(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analytic_gradient_matches_finite_differences() {
        let data = group(&[
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
                x: 7.0,
                t_x: 30.5,
                t: 38.0,
            },
        ]);
        let p = [0.5, 6.0, 0.9, 1.6];
        let model = |p: &[f64]| MbgNbd::from_params(p);
        crate::optimize::assert_gradient_matches(
            &|p| model(p).log_likelihood(&data),
            &model(&p).gradient(&data),
            &p,
        );
    }
}
