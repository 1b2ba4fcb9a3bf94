//! The trained churn-risk model: who is likely to leave within the horizon, and why
//! (docs/risk.md). A prediction is computed from the customer's state at the instant asked,
//! like health: it is never stored, so it cannot be stale.

use serde::{Deserialize, Serialize};
use tenure_core::customer::CustomerState;
use tenure_core::names::NameTable;
use tenure_core::risk::features::{BASE_FEATURES, FeatureSpec};
use tenure_core::risk::labels::standing;
use tenure_core::time::Millis;

use crate::training::RiskReport;
use crate::{Fitted, Learner};

/// A trained model with its evaluation report.
#[derive(Serialize, Deserialize)]
pub struct RiskModel {
    pub horizon_days: u32,
    #[serde(with = "tenure_core::time::iso")]
    pub trained_at: Millis,
    pub features: FeatureSpec,
    pub(crate) fitted: Fitted,
    pub report: RiskReport,
}

impl std::fmt::Debug for RiskModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskModel")
            .field("learner", &self.report.kept)
            .field("horizon_days", &self.horizon_days)
            .field("trained_at", &self.trained_at)
            .finish_non_exhaustive()
    }
}

/// A customer's risk, as the profile shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskPrediction {
    /// Probability of churning within `horizon_days`.
    pub probability: f64,
    pub horizon_days: u32,
    pub learner: Learner,
    #[serde(with = "tenure_core::time::iso")]
    pub model_trained_at: Millis,
    /// What raises the risk most, most first (at most three; only features that raise it,
    /// and a plan or channel only where it is the customer's).
    pub reasons: Vec<RiskReason>,
}

/// See [`RiskModel::riskiest`].
pub struct Riskiest<'a> {
    pub current_customers: usize,
    pub expected_churners: f64,
    pub top: Vec<(&'a CustomerState, RiskPrediction)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskReason {
    pub feature: String,
    /// The feature's value (`null`: undefined, e.g. no NPS answer).
    pub value: Option<f64>,
    /// How much it adds to the log-odds of churning.
    pub contribution: f64,
}

impl RiskModel {
    /// The customer's risk at `now`; `None` for one who is not a current customer (or has
    /// already cancelled: that outcome is known, not predicted).
    pub fn predict(
        &self,
        state: &CustomerState,
        names: &NameTable,
        now: Millis,
    ) -> Option<RiskPrediction> {
        let row = self.row(state, names, now)?;
        let probability = self.score(&row);
        Some(RiskPrediction {
            probability,
            horizon_days: self.horizon_days,
            learner: self.report.kept,
            model_trained_at: self.trained_at,
            reasons: self.reasons(&row, 3),
        })
    }

    /// Only the probability (no reasons): for ranking every customer.
    pub fn probability(
        &self,
        state: &CustomerState,
        names: &NameTable,
        now: Millis,
    ) -> Option<f64> {
        let row = self.row(state, names, now)?;
        Some(self.score(&row))
    }

    /// The probability of one row (tenure_risk scores one row without allocating).
    fn score(&self, row: &[f64]) -> f64 {
        self.fitted.probability(row)
    }

    /// The customer's features at `now`, if a current customer then.
    fn row(&self, state: &CustomerState, names: &NameTable, now: Millis) -> Option<Vec<f64>> {
        standing(state, now)?;
        let mut row = Vec::with_capacity(self.features.columns());
        self.features.extract(state, names, now, &mut row);
        Some(row)
    }

    /// Every current customer scored (in parallel): how many there are, how many of them are
    /// expected to churn within the horizon (Σ probabilities), and the `limit` most likely
    /// to, most first, with their reasons.
    pub fn riskiest<'a>(
        &self,
        customers: impl Iterator<Item = &'a CustomerState>,
        names: &NameTable,
        now: Millis,
        limit: usize,
    ) -> Riskiest<'a> {
        self.ranked_by(customers, names, now, limit, |p, _| p)
    }

    /// The same, the `limit` first by `rank(probability, customer)`, highest first (e.g.
    /// probability × MRR: the revenue expected to leave).
    pub fn ranked_by<'a>(
        &self,
        customers: impl Iterator<Item = &'a CustomerState>,
        names: &NameTable,
        now: Millis,
        limit: usize,
        rank: impl Fn(f64, &CustomerState) -> f64 + Sync,
    ) -> Riskiest<'a> {
        use rayon::prelude::*;
        let states: Vec<&CustomerState> = customers.collect();
        let probabilities: Vec<(f64, f64, &CustomerState)> = states
            .par_iter()
            .filter_map(|s| {
                let p = self.probability(s, names, now)?;
                Some((p, rank(p, s), *s))
            })
            .collect();
        let current_customers = probabilities.len();
        let expected_churners = probabilities.iter().map(|(p, _, _)| p).sum();
        let mut scored: Vec<(f64, &CustomerState)> =
            probabilities.into_iter().map(|(_, r, s)| (r, s)).collect();
        let riskier = |a: &(f64, &CustomerState), b: &(f64, &CustomerState)| {
            b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id))
        };
        if limit > 0 && scored.len() > limit {
            scored.select_nth_unstable_by(limit - 1, riskier);
        }
        scored.truncate(limit);
        scored.sort_by(riskier);
        let top = scored
            .into_iter()
            .filter_map(|(_, s)| Some((s, self.predict(s, names, now)?)))
            .collect();
        Riskiest {
            current_customers,
            expected_churners,
            top,
        }
    }

    fn reasons(&self, row: &[f64], most: usize) -> Vec<RiskReason> {
        let names = self.features.names();
        let mut reasons: Vec<RiskReason> = self
            .fitted
            .contributions(row)
            .into_iter()
            .enumerate()
            .filter(|(_, c)| *c > 0.0)
            // "Not on plan X" is no reason to give a person: a plan or channel column is a
            // reason only where it is the customer's own.
            .filter(|(j, _)| *j < BASE_FEATURES.len() || row[*j] == 1.0)
            .map(|(j, contribution)| RiskReason {
                feature: names[j].clone(),
                value: (!row[j].is_nan()).then_some(row[j]),
                contribution,
            })
            .collect();
        reasons.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        reasons.truncate(most);
        reasons
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("stored risk model: {e}"))
    }
}

impl tenure_core::risk::ChurnRisk for RiskModel {
    fn probability(&self, state: &CustomerState, names: &NameTable, now: Millis) -> Option<f64> {
        RiskModel::probability(self, state, names, now)
    }

    fn trained_at(&self) -> Millis {
        self.trained_at
    }
}
