//! Shifted-beta-geometric (sBG) retention, Fader & Hardie (2007), "How to project customer
//! retention", Journal of Interactive Marketing 21(1); DERL from Fader & Hardie (2010),
//! "Customer-base valuation in a contractual setting", Marketing Science 29(1).
//!
//! Each customer renews every period with their own probability 1 − θ, θ ~ Beta(α, β).
//! Fitted on the number of customers of a cohort still active at the start of each period.

use serde::Serialize;

use crate::optimize::{Fit, maximize};
use crate::special::{hyp2f1, ln_beta};

/// Fitted sBG parameters: each customer's churn probability θ ~ Beta(α, β).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ShiftedBetaGeometric {
    /// α of θ ~ Beta(α, β).
    pub alpha: f64,
    /// β of θ ~ Beta(α, β).
    pub beta: f64,
}

/// Why cohort counts cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SbgError {
    /// A cohort's count of customers alive went up.
    #[error(
        "cohort {cohort}: customers alive must not increase ({earlier} then {later} at period {period})"
    )]
    Increasing {
        /// Index of the cohort.
        cohort: usize,
        /// Period at which it went up.
        period: usize,
        /// Customers alive the period before.
        earlier: u64,
        /// Customers alive at `period`.
        later: u64,
    },
    /// A cohort with fewer than two counts (its index).
    #[error("cohort {0} needs at least two periods (the start and one later count)")]
    TooShort(usize),
}

impl ShiftedBetaGeometric {
    /// S(t): share of a cohort still active after t periods, B(α, β + t) / B(α, β).
    pub fn survival(&self, t: f64) -> f64 {
        (ln_beta(self.alpha, self.beta + t) - ln_beta(self.alpha, self.beta)).exp()
    }

    /// P(T = t): share lost in period t ≥ 1, B(α + 1, β + t − 1) / B(α, β).
    pub fn churn_probability(&self, t: f64) -> f64 {
        (ln_beta(self.alpha + 1.0, self.beta + t - 1.0) - ln_beta(self.alpha, self.beta)).exp()
    }

    /// r_t: retention rate from period t − 1 to t, (β + t − 1) / (α + β + t − 1).
    pub fn retention_rate(&self, t: f64) -> f64 {
        (self.beta + t - 1.0) / (self.alpha + self.beta + t - 1.0)
    }

    /// ln L of cohorts given as counts alive at the start of periods 0, 1, …, n.
    pub fn log_likelihood(&self, cohorts: &[Vec<u64>]) -> f64 {
        let mut ll = 0.0;
        for alive in cohorts {
            for t in 1..alive.len() {
                let lost = alive[t - 1].saturating_sub(alive[t]) as f64;
                if lost > 0.0 {
                    ll += lost * self.churn_probability(t as f64).ln();
                }
            }
            if let Some(last) = alive.last() {
                ll += *last as f64 * self.survival((alive.len() - 1) as f64).ln();
            }
        }
        ll
    }

    /// Fits on one or several cohorts (counts alive at the start of each period).
    pub fn fit(cohorts: &[Vec<u64>]) -> Result<(ShiftedBetaGeometric, Fit), SbgError> {
        for (i, alive) in cohorts.iter().enumerate() {
            if alive.len() < 2 {
                return Err(SbgError::TooShort(i));
            }
            for t in 1..alive.len() {
                if alive[t] > alive[t - 1] {
                    return Err(SbgError::Increasing {
                        cohort: i,
                        period: t,
                        earlier: alive[t - 1],
                        later: alive[t],
                    });
                }
            }
        }
        let fit = maximize(
            &|p| {
                ShiftedBetaGeometric {
                    alpha: p[0],
                    beta: p[1],
                }
                .log_likelihood(cohorts)
            },
            &[1.0, 1.0],
            cohorts.iter().filter_map(|c| c.first()).sum::<u64>() as f64,
        );
        Ok((
            ShiftedBetaGeometric {
                alpha: fit.params[0],
                beta: fit.params[1],
            },
            fit,
        ))
    }

    /// Discounted expected lifetime of a new customer, in periods, at discount rate d per
    /// period: Σ_t S(t) / (1 + d)^t = ₂F₁(1, β; α + β; 1/(1 + d)).
    pub fn discounted_expected_lifetime(&self, discount: f64) -> f64 {
        hyp2f1(
            1.0,
            self.beta,
            self.alpha + self.beta,
            1.0 / (1.0 + discount),
        )
    }

    /// DERL: discounted expected residual lifetime, in periods, of a customer active after n
    /// renewals, counting the coming renewal undiscounted (payment at the start of a period,
    /// FH 2010's convention): Σ_{t>n} S(t)/S(n) / (1 + d)^(t−n−1) =
    /// (β + n) / (α + β + n) · ₂F₁(1, β + n + 1; α + β + n + 1; 1/(1 + d)).
    pub fn discounted_expected_residual_lifetime(&self, renewals: f64, discount: f64) -> f64 {
        let Self { alpha, beta } = *self;
        (beta + renewals) / (alpha + beta + renewals)
            * hyp2f1(
                1.0,
                beta + renewals + 1.0,
                alpha + beta + renewals + 1.0,
                1.0 / (1.0 + discount),
            )
    }
}
