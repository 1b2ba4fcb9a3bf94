//! Gamma-Gamma spend model, Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves
//! for customer base analysis", JMR 42(4), after Colombo & Jiang (1999).
//!
//! A customer's transaction values are Gamma(p, ν) around their own mean, with ν ~ Gamma(q, γ)
//! across customers. Fitted on repeat buyers' (x, mean value z̄).

use serde::Serialize;

use crate::optimize::{Fit, maximize_with_gradient};
use crate::special::{digamma, ln_gamma};

/// Fitted Gamma-Gamma parameters: a customer's transaction values ~ Gamma(shape p, rate ν),
/// ν ~ Gamma(shape q, rate γ) across customers, so E[value] = p·γ/(q − 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GammaGamma {
    /// Shape p of a customer's transaction values.
    pub p: f64,
    /// Shape q of ν ~ Gamma(q, γ) across customers (the mean spend exists only for q > 1).
    pub q: f64,
    /// Rate γ of ν ~ Gamma(q, γ), in the unit of the values.
    pub gamma: f64,
}

/// Why the spend model cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GammaGammaError {
    /// The fitted q is ≤ 1 (its value): the population mean spend is infinite.
    #[error(
        "q = {0:.4} ≤ 1: the population mean spend p·γ/(q − 1) does not exist; the model does not fit these data"
    )]
    InfiniteMean(f64),
    /// No customer with a repeat purchase and a positive mean value.
    #[error("no customer with repeat purchases and a positive mean value to fit on")]
    NoData,
}

impl GammaGamma {
    /// ln L of one customer with x ≥ 1 transactions of mean value z̄ > 0.
    pub fn log_likelihood_one(&self, x: f64, mean_value: f64) -> f64 {
        let Self { p, q, gamma } = *self;
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * gamma.ln()
            + (p * x - 1.0) * mean_value.ln()
            + p * x * x.ln()
            - (p * x + q) * (gamma + x * mean_value).ln()
    }

    /// Fits on (x, z̄) pairs; customers with x = 0 or z̄ ≤ 0 carry no information and are
    /// skipped. Refuses a fit with q ≤ 1 (infinite expected spend).
    pub fn fit(customers: &[(f64, f64)]) -> Result<(GammaGamma, Fit), GammaGammaError> {
        let data: Vec<(f64, f64)> = customers
            .iter()
            .copied()
            .filter(|(x, m)| *x > 0.0 && *m > 0.0)
            .collect();
        if data.is_empty() {
            return Err(GammaGammaError::NoData);
        }
        let ll = |p: &[f64]| {
            let model = GammaGamma {
                p: p[0],
                q: p[1],
                gamma: p[2],
            };
            data.iter()
                .map(|(x, m)| model.log_likelihood_one(*x, *m))
                .sum()
        };
        let gradient = |p: &[f64]| {
            GammaGamma {
                p: p[0],
                q: p[1],
                gamma: p[2],
            }
            .gradient(&data)
            .to_vec()
        };
        let fit = maximize_with_gradient(&ll, Some(&gradient), &[1.0, 1.0, 1.0], data.len() as f64);
        let model = GammaGamma {
            p: fit.params[0],
            q: fit.params[1],
            gamma: fit.params[2],
        };
        if model.q <= 1.0 {
            return Err(GammaGammaError::InfiniteMean(model.q));
        }
        Ok((model, fit))
    }

    /// ∂ ln L / ∂ (p, q, γ) over (x, z̄) pairs:
    /// ∂p = x (ψ(px+q) − ψ(px) + ln z̄ + ln x − ln(γ + x z̄));
    /// ∂q = ψ(px+q) − ψ(q) + ln γ − ln(γ + x z̄); ∂γ = q/γ − (px+q)/(γ + x z̄).
    pub fn gradient(&self, customers: &[(f64, f64)]) -> [f64; 3] {
        let Self { p, q, gamma } = *self;
        let (psi_q, ln_gamma_) = (digamma(q), gamma.ln());
        let mut g = [0.0; 3];
        for &(x, m) in customers {
            let psi_pxq = digamma(p * x + q);
            let ln_total = (gamma + x * m).ln();
            g[0] += x * (psi_pxq - digamma(p * x) + m.ln() + x.ln() - ln_total);
            g[1] += psi_pxq - psi_q + ln_gamma_ - ln_total;
            g[2] += q / gamma - (p * x + q) / (gamma + x * m);
        }
        g
    }

    /// E[Z | z̄, x]: a customer's expected mean transaction value (x = 0 gives the
    /// population mean p·γ/(q − 1)).
    pub fn conditional_expected_value(&self, x: f64, mean_value: f64) -> f64 {
        let Self { p, q, gamma } = *self;
        p * (gamma + x * mean_value) / (p * x + q - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analytic_gradient_matches_finite_differences() {
        let data = [(1.0, 12.5), (3.0, 40.0), (9.0, 22.0)];
        let model = |p: &[f64]| GammaGamma {
            p: p[0],
            q: p[1],
            gamma: p[2],
        };
        let log_likelihood = |p: &[f64]| {
            data.iter()
                .map(|(x, m)| model(p).log_likelihood_one(*x, *m))
                .sum()
        };
        let point = [6.0, 3.7, 15.0];
        crate::optimize::assert_gradient_matches(
            &log_likelihood,
            &model(&point).gradient(&data),
            &point,
        );
    }
}
