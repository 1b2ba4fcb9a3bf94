//! Pareto/NBD, Schmittlein, Morrison & Colombo (1987); likelihood in the form of Fader,
//! Hardie & Lee (2005), "A note on deriving the Pareto/NBD model and related expressions".
//!
//! While alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α); their
//! lifetime is exponential with rate μ ~ Gamma(s, β).

use serde::Serialize;

use crate::bgnbd::{Rft, group};
use crate::optimize::{Fit, maximize_with_gradient};
use crate::special::{digamma, discounted_survival_integral, hyp2f1, ln_gamma, log_sum_exp};

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
        crate::parallel::sum(customers, |(c, w)| [w * self.log_likelihood_one(c)])[0]
    }

    /// Maximum-likelihood fit (central-difference gradient) from the start (1, 1, 1, 1); identical customers are grouped first.
    pub fn fit(customers: &[Rft]) -> (ParetoNbd, Fit) {
        let grouped = group(customers);
        let fit = maximize_with_gradient(
            &|p| ParetoNbd::from_params(p).log_likelihood(&grouped),
            Some(&|p| ParetoNbd::from_params(p).gradient(&grouped).to_vec()),
            &[1.0, 1.0, 1.0, 1.0],
            customers.len() as f64,
        );
        (ParetoNbd::from_params(&fit.params), fit)
    }

    /// ∂ Σ weight × ln L / ∂(r, α, s, β).
    pub fn gradient(&self, customers: &[(Rft, f64)]) -> [f64; 4] {
        crate::parallel::sum(customers, |(c, w)| self.gradient_one(c).map(|g| w * g))
    }

    /// ∂ ln L / ∂(r, α, s, β) for one customer. Analytic: the ₂F₁(a, b; a + 1; z) of A₀ is
    /// a series whose derivatives in a, b and z are series with the same terms (summed in
    /// the same loop); where the series is not used (z > 0.75, the 1 − z transformation),
    /// central differences of this customer's ln L.
    fn gradient_one(&self, c: &Rft) -> [f64; 4] {
        let Self { r, alpha, s, beta } = *self;
        let x = c.x;
        let a = r + s + x;
        // Which parameter each of a, b, m (the larger of α, β) and z moves with.
        let (larger, b, gap, db, dm) = if alpha >= beta {
            (
                alpha,
                s + 1.0,
                alpha - beta,
                [0.0, 0.0, 1.0, 0.0],
                [0.0, 1.0, 0.0, 0.0],
            )
        } else {
            (
                beta,
                r + x,
                beta - alpha,
                [1.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 1.0],
            )
        };
        let z_of = |t: f64| gap / (larger + t);
        if z_of(c.t_x).max(z_of(c.t)) > 0.75 {
            return self.numeric_gradient_one(c);
        }
        let da = [1.0, 0.0, 1.0, 0.0];
        let dz = |t: f64| -> [f64; 4] {
            let m = larger + t;
            if alpha >= beta {
                [0.0, (beta + t) / (m * m), 0.0, -1.0 / m]
            } else {
                [0.0, -1.0 / m, 0.0, (alpha + t) / (m * m)]
            }
        };
        // ln F(t) and its gradient, F(t) = ₂F₁(a, b; a+1; z_t) (m + t)^(−a).
        let ln_f = |t: f64| -> (f64, [f64; 4]) {
            let z = z_of(t);
            let (value, d_a, d_b, d_z) = hyp2f1_a_a1_with_derivatives(a, b, z);
            let ln_m = (larger + t).ln();
            let dz = dz(t);
            let mut g = [0.0; 4];
            for k in 0..4 {
                g[k] = (d_a * da[k] + d_b * db[k] + d_z * dz[k]) / value
                    - da[k] * ln_m
                    - a * dm[k] / (larger + t);
            }
            (value.ln() - a * ln_m, g)
        };
        let head = [
            digamma(r + x) - digamma(r) + alpha.ln(),
            r / alpha,
            beta.ln(),
            s / beta,
        ];
        let survived = -(r + x) * (alpha + c.t).ln() - s * (beta + c.t).ln();
        let d_survived = [
            -(alpha + c.t).ln(),
            -(r + x) / (alpha + c.t),
            -(beta + c.t).ln(),
            -s / (beta + c.t),
        ];
        let ln_a0 = self.ln_a0(c);
        let died = (s / a).ln() + ln_a0;
        let total = log_sum_exp(survived, died);
        let w_survived = (survived - total).exp();
        let w_died = (died - total).exp();
        let mut g = [0.0; 4];
        for k in 0..4 {
            g[k] = head[k] + w_survived * d_survived[k];
        }
        if w_died > 0.0 {
            let (ln_tx, g_tx) = ln_f(c.t_x);
            let (ln_t, g_t) = ln_f(c.t);
            // A₀ = F(t_x) − F(T): d ln A₀ = (g(t_x) − q g(T)) / (1 − q), q = F(T) / F(t_x).
            let q = (ln_t - ln_tx).exp();
            let d_died = [-1.0 / a, 0.0, 1.0 / s - 1.0 / a, 0.0];
            for k in 0..4 {
                g[k] += w_died * (d_died[k] + (g_tx[k] - q * g_t[k]) / (1.0 - q));
            }
        }
        g
    }

    fn numeric_gradient_one(&self, c: &Rft) -> [f64; 4] {
        let p = [self.r, self.alpha, self.s, self.beta];
        let mut g = [0.0; 4];
        for k in 0..4 {
            let h = 1e-6 * p[k];
            let (mut up, mut down) = (p, p);
            up[k] += h;
            down[k] -= h;
            g[k] = (ParetoNbd::from_params(&up).log_likelihood_one(c)
                - ParetoNbd::from_params(&down).log_likelihood_one(c))
                / (2.0 * h);
        }
        g
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
        self.dert_with_integral(c, self.dert_integral(delta, c.t))
    }

    /// The factor of DERT that depends on T alone: J(s, δ(β + T)), a numerical integral
    /// ([`discounted_survival_integral`]) and all but all of DERT's cost. Customers observed
    /// for the same T share it ([`Self::dert_with_integral`]).
    pub fn dert_integral(&self, delta: f64, t: f64) -> f64 {
        discounted_survival_integral(self.s, delta * (self.beta + t))
    }

    /// DERT from the customer's [`Self::dert_integral`] (the same number, to the bit, as
    /// [`Self::discounted_expected_residual_transactions`]).
    pub fn dert_with_integral(&self, c: &Rft, integral: f64) -> f64 {
        let Self { r, alpha, s, beta } = *self;
        let x = c.x;
        let ln_dert = ln_gamma(r + x + 1.0) - ln_gamma(r) + r * alpha.ln()
            - (r + x + 1.0) * (alpha + c.t).ln()
            + s * beta.ln()
            + (1.0 - s) * (beta + c.t).ln()
            + integral.ln()
            - self.log_likelihood_one(c);
        ln_dert.exp()
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in the next t (FHL note, eq. 22; needs s > 1).
    pub fn conditional_expected_purchases(&self, t: f64, c: &Rft) -> f64 {
        self.conditional_expected_purchases_given(t, c, self.probability_alive(c))
    }

    /// The same from the customer's P(alive) (its one costly factor): for several horizons
    /// of one customer, P(alive) is computed once.
    pub fn conditional_expected_purchases_given(
        &self,
        t: f64,
        c: &Rft,
        probability_alive: f64,
    ) -> f64 {
        let Self { r, alpha, s, beta } = *self;
        let x = c.x;
        (r + x) * (beta + c.t) / ((alpha + c.t) * (s - 1.0))
            * (1.0 - ((beta + c.t) / (beta + c.t + t)).powf(s - 1.0))
            * probability_alive
    }
}

/// ₂F₁(a, b; a + 1; z) = Σₙ a/(a+n) · (b)ₙ/n! · zⁿ for 0 ≤ z < 1 and its derivatives in a, b
/// and z, summed in one loop: ∂/∂a multiplies term n by n/(a(a+n)), ∂/∂b by
/// Σ_{k<n} 1/(b+k) (ψ(b+n) − ψ(b)), ∂/∂z by n/z.
fn hyp2f1_a_a1_with_derivatives(a: f64, b: f64, z: f64) -> (f64, f64, f64, f64) {
    let (mut sum, mut d_a, mut d_b, mut d_z) = (1.0, 0.0, 0.0, 0.0);
    // c_n without the a/(a+n) factor: (b)_n z^n / n!.
    let mut rising = 1.0;
    let mut harmonic = 0.0;
    for n in 1..100_000u32 {
        let k = f64::from(n - 1);
        harmonic += 1.0 / (b + k);
        rising *= (b + k) * z / (k + 1.0);
        let n = f64::from(n);
        let term = a / (a + n) * rising;
        sum += term;
        d_a += term * n / (a * (a + n));
        d_b += term * harmonic;
        d_z += term * n;
        if term.abs() <= 1e-17 * sum.abs() || !sum.is_finite() {
            break;
        }
    }
    let d_z = if z > 0.0 { d_z / z } else { a / (a + 1.0) * b };
    (sum, d_a, d_b, d_z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analytic_gradient_matches_finite_differences() {
        let mut customers = crate::bgnbd::tests::gradient_sample();
        // t_x = T: A₀ = 0, the "died" term drops out.
        customers.push(Rft {
            x: 7.0,
            t_x: 38.0,
            t: 38.0,
        });
        let data = group(&customers);
        // α > β and α < β (the two forms of A₀), and a point where z > 0.75 for some
        // customers (the numeric fallback).
        for p in [
            [0.55, 10.6, 0.61, 11.7],
            [0.8, 14.0, 1.3, 3.0],
            [0.4, 300.0, 0.7, 2.0],
        ] {
            let model = |p: &[f64]| ParetoNbd::from_params(p);
            crate::optimize::assert_gradient_matches(
                &|p| model(p).log_likelihood(&data),
                &model(&p).gradient(&data),
                &p,
            );
        }
    }

    #[test]
    fn the_derivative_series_match_differences_of_the_function() {
        let (a, b, z) = (3.7, 1.6, 0.42);
        let (value, d_a, d_b, d_z) = hyp2f1_a_a1_with_derivatives(a, b, z);
        assert!((value - hyp2f1(a, b, a + 1.0, z)).abs() < 1e-14 * value);
        let h = 1e-6;
        let f = |a: f64, b: f64, z: f64| hyp2f1_a_a1_with_derivatives(a, b, z).0;
        for (analytic, numeric) in [
            (d_a, (f(a + h, b, z) - f(a - h, b, z)) / (2.0 * h)),
            (d_b, (f(a, b + h, z) - f(a, b - h, z)) / (2.0 * h)),
            (d_z, (f(a, b, z + h) - f(a, b, z - h)) / (2.0 * h)),
        ] {
            assert!(
                (analytic - numeric).abs() < 1e-7 * (1.0 + numeric.abs()),
                "{analytic} vs {numeric}"
            );
        }
    }
}
