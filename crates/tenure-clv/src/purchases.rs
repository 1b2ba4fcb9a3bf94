//! One interface over the continuous-time purchase-count models (BG/NBD, MBG/NBD,
//! Pareto/NBD), for callers that choose the model at run time: `tenure clv fit --model`, or
//! the engine, which keeps the better-fitting of BG/NBD and Pareto/NBD on a workspace's orders.

use serde::Serialize;

use crate::bgnbd::{BgNbd, Rft, group};
use crate::mbgnbd::MbgNbd;
use crate::optimize::Fit;
use crate::pareto_nbd::ParetoNbd;

/// Which purchase-count model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseModelKind {
    /// BG/NBD (Fader, Hardie & Lee 2005).
    Bgnbd,
    /// MBG/NBD (Batislam, Denizel & Filiztekin 2007).
    Mbgnbd,
    /// Pareto/NBD (Schmittlein, Morrison & Colombo 1987).
    ParetoNbd,
}

impl PurchaseModelKind {
    /// The model's name in reports and the API (`bgnbd`, `mbgnbd`, `pareto_nbd`).
    pub fn name(self) -> &'static str {
        match self {
            PurchaseModelKind::Bgnbd => "bgnbd",
            PurchaseModelKind::Mbgnbd => "mbgnbd",
            PurchaseModelKind::ParetoNbd => "pareto_nbd",
        }
    }

    /// The parameters' names, in the order of [`Fit::params`].
    pub fn parameter_names(self) -> &'static [&'static str] {
        match self {
            PurchaseModelKind::ParetoNbd => &["r", "alpha", "s", "beta"],
            _ => &["r", "alpha", "a", "b"],
        }
    }
}

/// A fitted purchase-count model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum PurchaseModel {
    /// A fitted BG/NBD.
    Bgnbd(BgNbd),
    /// A fitted MBG/NBD.
    Mbgnbd(MbgNbd),
    /// A fitted Pareto/NBD.
    ParetoNbd(ParetoNbd),
}

impl PurchaseModel {
    /// Fits one model by maximum likelihood.
    pub fn fit(kind: PurchaseModelKind, customers: &[Rft]) -> (PurchaseModel, Fit) {
        match kind {
            PurchaseModelKind::Bgnbd => {
                let (m, fit) = BgNbd::fit(customers);
                (PurchaseModel::Bgnbd(m), fit)
            }
            PurchaseModelKind::Mbgnbd => {
                let (m, fit) = MbgNbd::fit(customers);
                (PurchaseModel::Mbgnbd(m), fit)
            }
            PurchaseModelKind::ParetoNbd => {
                let (m, fit) = ParetoNbd::fit(customers);
                (PurchaseModel::ParetoNbd(m), fit)
            }
        }
    }

    /// Fits each candidate and keeps the one with the highest log-likelihood among those that
    /// converged (all candidates have four parameters, so this is also the lowest AIC).
    /// Returns every candidate's fit, in the order given, with the chosen model.
    pub fn fit_best(
        candidates: &[PurchaseModelKind],
        customers: &[Rft],
    ) -> Option<(PurchaseModel, Vec<(PurchaseModelKind, Fit)>)> {
        let mut fits = Vec::new();
        let mut best: Option<(PurchaseModel, f64)> = None;
        for &kind in candidates {
            let (model, fit) = PurchaseModel::fit(kind, customers);
            if fit.converged && best.is_none_or(|(_, ll)| fit.log_likelihood > ll) {
                best = Some((model, fit.log_likelihood));
            }
            fits.push((kind, fit));
        }
        best.map(|(model, _)| (model, fits))
    }

    /// Which model this is.
    pub fn kind(&self) -> PurchaseModelKind {
        match self {
            PurchaseModel::Bgnbd(_) => PurchaseModelKind::Bgnbd,
            PurchaseModel::Mbgnbd(_) => PurchaseModelKind::Mbgnbd,
            PurchaseModel::ParetoNbd(_) => PurchaseModelKind::ParetoNbd,
        }
    }

    /// P(alive | x, t_x, T) under this model.
    pub fn probability_alive(&self, c: &Rft) -> f64 {
        match self {
            PurchaseModel::Bgnbd(m) => m.probability_alive(c),
            PurchaseModel::Mbgnbd(m) => m.probability_alive(c),
            PurchaseModel::ParetoNbd(m) => m.probability_alive(c),
        }
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in the next t.
    pub fn conditional_expected_purchases(&self, t: f64, c: &Rft) -> f64 {
        match self {
            PurchaseModel::Bgnbd(m) => m.conditional_expected_purchases(t, c),
            PurchaseModel::Mbgnbd(m) => m.conditional_expected_purchases(t, c),
            PurchaseModel::ParetoNbd(m) => m.conditional_expected_purchases(t, c),
        }
    }

    /// E[Y(t) | x, t_x, T] for several t, in their order: Pareto/NBD computes the customer's
    /// P(alive) once for all of them (the same numbers as one call per t).
    pub fn conditional_expected_purchases_at(&self, ts: &[f64], c: &Rft) -> Vec<f64> {
        match self {
            PurchaseModel::ParetoNbd(m) => {
                let p = m.probability_alive(c);
                ts.iter()
                    .map(|t| m.conditional_expected_purchases_given(*t, c, p))
                    .collect()
            }
            _ => ts
                .iter()
                .map(|t| self.conditional_expected_purchases(*t, c))
                .collect(),
        }
    }

    /// DERT at a continuous rate per time unit, for the model with a closed form
    /// (Pareto/NBD); `None` for the others.
    pub fn discounted_expected_residual_transactions(&self, rate: f64, c: &Rft) -> Option<f64> {
        match self {
            PurchaseModel::ParetoNbd(m) => {
                Some(m.discounted_expected_residual_transactions(rate, c))
            }
            _ => None,
        }
    }

    /// The part of DERT that depends on T alone (`None` without DERT): see
    /// [`ParetoNbd::dert_integral`].
    pub fn dert_integral(&self, rate: f64, t: f64) -> Option<f64> {
        match self {
            PurchaseModel::ParetoNbd(m) => Some(m.dert_integral(rate, t)),
            _ => None,
        }
    }

    /// DERT from [`Self::dert_integral`] of the customer's T: the same number as
    /// [`Self::discounted_expected_residual_transactions`].
    pub fn dert_with_integral(&self, c: &Rft, integral: f64) -> Option<f64> {
        match self {
            PurchaseModel::ParetoNbd(m) => Some(m.dert_with_integral(c, integral)),
            _ => None,
        }
    }

    /// Σ ln L over customers.
    pub fn log_likelihood(&self, customers: &[Rft]) -> f64 {
        let grouped = group(customers);
        match self {
            PurchaseModel::Bgnbd(m) => m.log_likelihood(&grouped),
            PurchaseModel::Mbgnbd(m) => m.log_likelihood(&grouped),
            PurchaseModel::ParetoNbd(m) => m.log_likelihood(&grouped),
        }
    }
}
