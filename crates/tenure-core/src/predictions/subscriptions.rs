//! The subscription model: sBG on the first monthly subscription of every subscriber
//! (months paid without a break; reactivations start a new life and are not part of it).
//! Contractual CLV = current MRR × DERL, the discounted expected residual lifetime at 1% a
//! month.

use std::collections::HashMap;

use serde::Serialize;
use tenure_clv::sbg::ShiftedBetaGeometric;

use super::{MIN_CUSTOMERS, MONTHLY_DISCOUNT, NoModel};
use crate::customer::CustomerState;
use crate::engine::Engine;
use crate::time::Millis;

/// What a subscriber's profile shows.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionPredictions {
    pub model: &'static str,
    pub fitted_on_subscribers: usize,
    /// Months paid without a break since the first monthly subscription started.
    pub renewals: u32,
    /// Probability of paying the coming month.
    pub retention_next_month: f64,
    /// DERL: expected months still to be paid (the coming one included), discounted at 1% a month.
    pub expected_remaining_months: f64,
    /// Current MRR × DERL, per currency, major units.
    pub predicted_clv: std::collections::BTreeMap<String, f64>,
}

/// The fitted subscription model of a workspace.
pub struct SubscriptionModel {
    sbg: ShiftedBetaGeometric,
    subscribers: usize,
}

/// sBG on the subscribers' first monthly contracts: customers observed for the same number
/// of months form a cohort, alive at k = those who paid k months without a break.
impl SubscriptionModel {
    pub fn fit(engine: &Engine, now: Millis) -> Result<SubscriptionModel, NoModel> {
        let mut by_length: HashMap<u32, Vec<u32>> = HashMap::new();
        for c in engine.customers() {
            if let Some((_, renewals, observed)) = c.first_monthly_tenure(now)
                && observed > 0
            {
                by_length.entry(observed).or_default().push(renewals);
            }
        }
        let subscribers: usize = by_length.values().map(Vec::len).sum();
        if subscribers < MIN_CUSTOMERS {
            return Err(NoModel::TooFew(subscribers));
        }
        let mut lengths: Vec<u32> = by_length.keys().copied().collect();
        lengths.sort_unstable();
        let cohorts: Vec<Vec<u64>> = lengths
            .iter()
            .map(|length| {
                let renewals = &by_length[length];
                (0..=*length)
                    .map(|k| renewals.iter().filter(|r| **r >= k).count() as u64)
                    .collect()
            })
            .collect();
        let not_converged =
            NoModel::DidNotConverge("sBG did not converge on this workspace's subscriptions");
        let (sbg, fit) = ShiftedBetaGeometric::fit(&cohorts).map_err(|_| not_converged.clone())?;
        if !fit.converged {
            return Err(not_converged);
        }
        Ok(SubscriptionModel { sbg, subscribers })
    }
}

impl SubscriptionModel {
    /// For a customer still paying their first monthly subscription.
    pub fn predict(&self, state: &CustomerState, now: Millis) -> Option<SubscriptionPredictions> {
        let (_, renewals, observed) = state.first_monthly_tenure(now)?;
        if renewals < observed {
            return None;
        }
        let n = f64::from(renewals);
        let derl = self
            .sbg
            .discounted_expected_residual_lifetime(n, MONTHLY_DISCOUNT);
        let predicted_clv = state
            .mrr_at(now)
            .into_iter()
            .map(|(currency, mrr)| {
                (
                    currency.as_str().to_owned(),
                    mrr as f64 / 10f64.powi(currency.exponent() as i32) * derl,
                )
            })
            .collect();
        Some(SubscriptionPredictions {
            model: "sbg",
            fitted_on_subscribers: self.subscribers,
            renewals,
            retention_next_month: self.sbg.retention_rate(n + 1.0),
            expected_remaining_months: derl,
            predicted_clv,
        })
    }
}

/// The workspace's subscription forecast for `GET /v1/metrics/clv`.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionForecast {
    pub model: &'static str,
    pub parameters: ShiftedBetaGeometric,
    pub fitted_on_subscribers: usize,
    /// S(t): share of a new monthly cohort still paying after t months, t = 0..=12.
    pub retention_curve: Vec<f64>,
    /// Subscribers still in their first monthly subscription (those with a forecast).
    pub current_subscribers: usize,
    pub mean_expected_remaining_months: f64,
    /// Σ current MRR × DERL, per currency, major units.
    pub predicted_clv: std::collections::BTreeMap<String, f64>,
}

impl SubscriptionModel {
    pub fn forecast(&self, engine: &Engine, now: Millis) -> SubscriptionForecast {
        let mut current = 0;
        let mut months = 0.0;
        let mut clv: std::collections::BTreeMap<String, f64> = Default::default();
        for state in engine.customers() {
            if let Some(p) = self.predict(state, now) {
                current += 1;
                months += p.expected_remaining_months;
                for (currency, value) in p.predicted_clv {
                    *clv.entry(currency).or_default() += value;
                }
            }
        }
        SubscriptionForecast {
            model: "sbg",
            parameters: self.sbg,
            fitted_on_subscribers: self.subscribers,
            retention_curve: (0..=12).map(|t| self.sbg.survival(f64::from(t))).collect(),
            current_subscribers: current,
            mean_expected_remaining_months: if current == 0 {
                0.0
            } else {
                months / current as f64
            },
            predicted_clv: clv,
        }
    }
}
