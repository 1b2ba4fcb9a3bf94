//! BG/BB (beta-geometric / beta-binomial), Fader, Hardie & Shang (2010), "Customer-base
//! analysis in a discrete-time noncontractual setting", Marketing Science 29(6).
//!
//! At each of n discrete opportunities an alive customer transacts with probability
//! p ~ Beta(α, β) and then dies with probability θ ~ Beta(γ, δ). A customer is summarised by
//! x (transactions), t_x (the opportunity of the last one) and n.

use serde::Serialize;

use crate::optimize::{Fit, maximize};
use crate::special::{hyp2f1, ln_beta, ln_gamma, log_sum_exp};

/// Fitted BG/BB parameters: p ~ Beta(α, β) per opportunity, θ ~ Beta(γ, δ) of dying after each.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgBb {
    /// α of the transaction probability p ~ Beta(α, β).
    pub alpha: f64,
    /// β of p ~ Beta(α, β).
    pub beta: f64,
    /// γ of the drop-out probability θ ~ Beta(γ, δ).
    pub gamma: f64,
    /// δ of θ ~ Beta(γ, δ).
    pub delta: f64,
}

/// One group of customers with the same history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Opportunities {
    /// Transactions in the n opportunities.
    pub x: u32,
    /// The opportunity of the last transaction (0 if none).
    pub t_x: u32,
    /// Opportunities observed.
    pub n: u32,
    /// How many customers have this history.
    pub weight: f64,
}

impl BgBb {
    /// ln L of one history (FHS 2010, eq. 5), summed in log-space.
    pub fn log_likelihood_one(&self, h: &Opportunities) -> f64 {
        let Self {
            alpha,
            beta,
            gamma,
            delta,
        } = *self;
        let (x, t_x, n) = (f64::from(h.x), f64::from(h.t_x), f64::from(h.n));
        let base_ab = ln_beta(alpha, beta);
        let base_gd = ln_beta(gamma, delta);
        let mut ll =
            ln_beta(alpha + x, beta + n - x) - base_ab + ln_beta(gamma, delta + n) - base_gd;
        for i in 0..(h.n - h.t_x) {
            let i = f64::from(i);
            let term = ln_beta(alpha + x, beta + t_x - x + i) - base_ab
                + ln_beta(gamma + 1.0, delta + t_x + i)
                - base_gd;
            ll = log_sum_exp(ll, term);
        }
        ll
    }

    /// Σ weight × ln L over histories.
    pub fn log_likelihood(&self, histories: &[Opportunities]) -> f64 {
        histories
            .iter()
            .map(|h| h.weight * self.log_likelihood_one(h))
            .sum()
    }

    /// Maximum-likelihood fit from the deterministic start (1, 1, 1, 1).
    pub fn fit(histories: &[Opportunities]) -> (BgBb, Fit) {
        let ll = |p: &[f64]| {
            BgBb {
                alpha: p[0],
                beta: p[1],
                gamma: p[2],
                delta: p[3],
            }
            .log_likelihood(histories)
        };
        let fit = maximize(
            &ll,
            &[1.0, 1.0, 1.0, 1.0],
            histories.iter().map(|h| h.weight).sum(),
        );
        (
            BgBb {
                alpha: fit.params[0],
                beta: fit.params[1],
                gamma: fit.params[2],
                delta: fit.params[3],
            },
            fit,
        )
    }

    /// P(alive at opportunity n + 1 | x, t_x, n) (FHS 2010, eq. 11).
    pub fn probability_alive(&self, h: &Opportunities) -> f64 {
        self.ln_alive_at_next(h, 0.0).exp()
    }

    /// ln [B(α+x+k, β+n−x)/B(α, β) · B(γ, δ+n+1)/B(γ, δ) / L(x, t_x, n)]: the posterior
    /// weight of being alive at opportunity n + 1, with k = 1 also weighting by p (one
    /// expected transaction). P(alive) is k = 0; DERT starts from k = 1.
    fn ln_alive_at_next(&self, h: &Opportunities, k: f64) -> f64 {
        let Self {
            alpha,
            beta,
            gamma,
            delta,
        } = *self;
        let (x, n) = (f64::from(h.x), f64::from(h.n));
        ln_beta(alpha + x + k, beta + n - x) - ln_beta(alpha, beta)
            + ln_beta(gamma, delta + n + 1.0)
            - ln_beta(gamma, delta)
            - self.log_likelihood_one(h)
    }

    /// δ/(γ−1) · Γ(γ+δ)/Γ(1+δ) · [Γ(1+δ+n)/Γ(γ+δ+n) − Γ(1+δ+n+m)/Γ(γ+δ+n+m)]: the expected
    /// number of future opportunities survived between n and n + m, shared by both predictions.
    fn survival_span(&self, n: f64, m: f64) -> f64 {
        let Self { gamma, delta, .. } = *self;
        let front = delta / (gamma - 1.0) * (ln_gamma(gamma + delta) - ln_gamma(1.0 + delta)).exp();
        let at = |k: f64| (ln_gamma(1.0 + delta + k) - ln_gamma(gamma + delta + k)).exp();
        front * (at(n) - at(n + m))
    }

    /// E[X(n)]: expected transactions of a new customer in the first n opportunities (FHS 2010, eq. 8).
    pub fn expected_transactions(&self, n: u32) -> f64 {
        self.alpha / (self.alpha + self.beta) * self.survival_span(0.0, f64::from(n))
    }

    /// DERT(d | x, t_x, n): discounted expected residual transactions, the present value at n
    /// of the transactions at opportunities n + 1, n + 2, …, the one at n + t discounted by
    /// (1 + d)^t (Fader, Hardie & Shang 2010, eq. 14):
    ///
    /// DERT = B(α+x+1, β+n−x)/B(α, β) · B(γ, δ+n+1)/(B(γ, δ)(1+d))
    ///        · ₂F₁(1, δ+n+1; γ+δ+n+1; 1/(1+d)) / L(x, t_x, n).
    pub fn discounted_expected_residual_transactions(
        &self,
        discount: f64,
        h: &Opportunities,
    ) -> f64 {
        let b = self.delta + f64::from(h.n) + 1.0;
        (self.ln_alive_at_next(h, 1.0) - discount.ln_1p()).exp()
            * hyp2f1(1.0, b, self.gamma + b, 1.0 / (1.0 + discount))
    }

    /// E[X(n, n + m) | x, t_x, n]: expected transactions in the next m opportunities of a
    /// customer with this history (FHS 2010, eq. 13).
    pub fn conditional_expected_transactions(&self, m: u32, h: &Opportunities) -> f64 {
        let Self { alpha, beta, .. } = *self;
        let (x, n) = (f64::from(h.x), f64::from(h.n));
        let ln_ratio = ln_beta(alpha + x + 1.0, beta + n - x)
            - ln_beta(alpha, beta)
            - self.log_likelihood_one(h);
        ln_ratio.exp() * self.survival_span(n, f64::from(m))
    }
}
