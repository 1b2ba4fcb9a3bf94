//! Pareto/NBD, Schmittlein, Morrison & Colombo (1987); likelihood in the form of Fader,
//! Hardie & Lee (2005), "A note on deriving the Pareto/NBD model and related expressions".
//!
//! While alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α); their
//! lifetime is exponential with rate μ ~ Gamma(s, β).

use serde::Serialize;

use crate::bgnbd::{Rft, group};
use crate::optimize::{Fit, maximize};
use crate::special::{discounted_survival_integral, hyp2f1, ln_gamma, log_sum_exp};

/// Fitted Pareto/NBD parameters: λ ~ Gamma(r, α), death rate μ ~ Gamma(s, β).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ParetoNbd {
    /// Shape r of the purchase rate λ ~ Gamma(r, α).
    pub r: f64,
    /// Scale α of λ ~ Gamma(r, α), in the time unit of the data.
    pub alpha: f64,
    /// Shape s of the death rate μ ~ Gamma(s, β).
    pub s: f64,
    /// Scale β of μ ~ Gamma(s, β), in the time unit of the data.
    pub beta: f64,
}

impl ParetoNbd {
    fn from_params(p: &[f64]) -> Self {
        Self {
            r: p[0],
            alpha: p[1],
            s: p[2],
            beta: p[3],
        }
    }

    /// ln A₀ of the likelihood (FHL note, eq. 19–20): the difference of the two ₂F₁ terms
    /// at t_x and T, taken in log space so that t_x = T (A₀ = 0) and high frequencies
    /// neither cancel nor overflow. Returns −∞ when A₀ = 0.
    fn ln_a0(&self, c: &Rft) -> f64 {
        let Self { r, alpha, s, beta } = *self;
        let x = c.x;
        let a = r + s + x;
        let (larger, b, gap) = if alpha >= beta {
            (alpha, s + 1.0, alpha - beta)
        } else {
            (beta, r + x, beta - alpha)
        };
        let term = |t: f64| hyp2f1(a, b, a + 1.0, gap / (larger + t)).ln() - a * (larger + t).ln();
        let at_tx = term(c.t_x);
        let at_t = term(c.t);
        if at_t >= at_tx {
            return f64::NEG_INFINITY;
        }
        at_tx + (-(at_t - at_tx).exp()).ln_1p()
    }

    /// ln L for one customer (FHL note, eq. 18).
    pub fn log_likelihood_one(&self, c: &Rft) -> f64 {
        let Self { r, alpha, s, beta } = *self;
        let x = c.x;
        let head = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
        let survived = -(r + x) * (alpha + c.t).ln() - s * (beta + c.t).ln();
        let died = (s / (r + s + x)).ln() + self.ln_a0(c);
        head + log_sum_exp(survived, died)
    }

    /// Σ weight × ln L over (customer, weight) pairs.
    pub fn log_likelihood(&self, customers: &[(Rft, f64)]) -> f64 {
        customers
            .iter()
            .map(|(c, w)| w * self.log_likelihood_one(c))
            .sum()
    }

    /// Maximum-likelihood fit (central-difference gradient) from the start (1, 1, 1, 1); identical customers are grouped first.
    pub fn fit(customers: &[Rft]) -> (ParetoNbd, Fit) {
        let grouped = group(customers);
        let fit = maximize(
            &|p| ParetoNbd::from_params(p).log_likelihood(&grouped),
            &[1.0, 1.0, 1.0, 1.0],
            customers.len() as f64,
        );
        (ParetoNbd::from_params(&fit.params), fit)
    }

    /// P(alive | x, t_x, T) (FHL note, eq. 21).
    pub fn probability_alive(&self, c: &Rft) -> f64 {
        let Self { r, alpha, s, beta } = *self;
        let x = c.x;
        let ln_ratio = (s / (r + s + x)).ln()
            + (r + x) * (alpha + c.t).ln()
            + s * (beta + c.t).ln()
            + self.ln_a0(c);
        1.0 / (1.0 + ln_ratio.exp())
    }

    /// DERT(δ | x, t_x, T): discounted expected residual transactions, the present value at T
    /// of all the customer's future purchases with continuous discounting at rate δ per time
    /// unit (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves", eq. 2):
    ///
    /// DERT = α^r β^s δ^(s−1) Γ(r+x+1) Ψ(s, s; δ(β+T)) / (Γ(r) (α+T)^(r+x+1) L(x, t_x, T)),
    ///
    /// with Ψ = Tricomi's U. It is evaluated as
    /// α^r Γ(r+x+1) / (Γ(r) (α+T)^(r+x+1)) · β^s (β+T)^(1−s) J(s, δ(β+T)) / L, where
    /// J(s, z) = ∫₀^∞ e^(−zy) (1+y)^(−s) dy = z^(s−1) U(s, s; z), all in log space. For an
    /// annual rate d and weekly data, δ = ln(1 + d) / 52. Any s > 0 (unlike the undiscounted
    /// expectation, which needs s > 1).
    pub fn discounted_expected_residual_transactions(&self, delta: f64, c: &Rft) -> f64 {
        let Self { r, alpha, s, beta } = *self;
        let x = c.x;
        let ln_dert = ln_gamma(r + x + 1.0) - ln_gamma(r) + r * alpha.ln()
            - (r + x + 1.0) * (alpha + c.t).ln()
            + s * beta.ln()
            + (1.0 - s) * (beta + c.t).ln()
            + discounted_survival_integral(s, delta * (beta + c.t)).ln()
            - self.log_likelihood_one(c);
        ln_dert.exp()
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in the next t (FHL note, eq. 22; needs s > 1).
    pub fn conditional_expected_purchases(&self, t: f64, c: &Rft) -> f64 {
        let Self { r, alpha, s, beta } = *self;
        let x = c.x;
        (r + x) * (beta + c.t) / ((alpha + c.t) * (s - 1.0))
            * (1.0 - ((beta + c.t) / (beta + c.t + t)).powf(s - 1.0))
            * self.probability_alive(c)
    }
}
