//! The churn-risk model: who is likely to leave within the horizon, and why (docs/risk.md).
//!
//! - [`features`]: what the model sees of a customer as of an instant;
//! - [`training`]: rows at past cut-offs, both learners compared on a time-based split;
//! - [`evaluation`]: AUC, calibration, lift and capture.
//!
//! A prediction is computed from the customer's state at the instant asked, like health: it
//! is never stored, so it cannot be stale.

pub mod evaluation;
pub mod features;
mod forest;
pub mod training;

use forust_ml::{GradientBooster, Matrix, gradientbooster::ContributionsMethod};
use serde::{Deserialize, Serialize};

use crate::customer::CustomerState;
use crate::engine::NameTable;
use crate::time::Millis;
use features::{BASE_FEATURES, FeatureSpec};
use training::{FeatureImportance, RiskReport, standing};

/// The learners compared at every training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learner {
    GradientBoostedTrees,
    LogisticRegression,
}

impl Learner {
    pub fn label(self) -> &'static str {
        match self {
            Learner::GradientBoostedTrees => "gradient-boosted trees",
            Learner::LogisticRegression => "logistic regression",
        }
    }
}

/// Logistic regression on standardised features (missing values at the mean, i.e. 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    pub intercept: f64,
    pub weights: Vec<f64>,
    pub means: Vec<f64>,
    pub scales: Vec<f64>,
}

impl Logistic {
    fn standardise(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .zip(self.means.iter().zip(&self.scales))
            .map(|(v, (m, s))| if v.is_nan() { 0.0 } else { (v - m) / s })
            .collect()
    }

    /// Each feature's term of the log-odds.
    fn terms(&self, row: &[f64]) -> Vec<f64> {
        self.standardise(row)
            .iter()
            .zip(&self.weights)
            .map(|(z, w)| z * w)
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Fitted {
    Trees(Box<GradientBooster>),
    Logistic(Logistic),
}

/// Row-major rows of `cols` values as the column-major matrix forust reads.
pub(crate) fn column_major(x: &[f64], cols: usize) -> Vec<f64> {
    let n = x.len() / cols;
    let mut out = vec![0.0; x.len()];
    for i in 0..n {
        for j in 0..cols {
            out[j * n + i] = x[i * cols + j];
        }
    }
    out
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Fitted {
    /// Probabilities of churning for row-major rows of `cols` features.
    pub(crate) fn probabilities(&self, x: &[f64], cols: usize) -> Vec<f64> {
        let n = x.len() / cols;
        match self {
            Fitted::Trees(booster) => {
                let data = column_major(x, cols);
                // In parallel only for many rows: one customer's row (a profile, a segment
                // evaluating everyone from its own parallel pass) would pay for a rayon
                // split per prediction.
                booster
                    .predict(&Matrix::new(&data, n, cols), n >= 1_024)
                    .into_iter()
                    .map(sigmoid)
                    .collect()
            }
            Fitted::Logistic(l) => x
                .chunks(cols)
                .map(|row| sigmoid(l.intercept + l.terms(row).iter().sum::<f64>()))
                .collect(),
        }
    }

    /// Each feature's contribution to the log-odds of one row: Shapley values for the trees
    /// (they add up to the prediction with the bias), weight × standardised value for the
    /// logistic regression.
    fn contributions(&self, row: &[f64]) -> Vec<f64> {
        match self {
            Fitted::Trees(booster) => {
                let mut c = booster.predict_contributions(
                    &Matrix::new(row, 1, row.len()),
                    ContributionsMethod::Shapley,
                    false,
                );
                c.truncate(row.len());
                c
            }
            Fitted::Logistic(l) => l.terms(row),
        }
    }

    /// Mean |contribution| per feature over (at most 5,000 of) the rows, largest first.
    pub(crate) fn importance(
        &self,
        rows: &training::Rows,
        names: &[String],
    ) -> Vec<FeatureImportance> {
        let step = rows.len().div_ceil(5_000).max(1);
        let mut sums = vec![0.0; rows.cols];
        let mut n = 0usize;
        for i in (0..rows.len()).step_by(step) {
            for (s, c) in sums.iter_mut().zip(self.contributions(rows.row(i))) {
                *s += c.abs();
            }
            n += 1;
        }
        let mut out: Vec<FeatureImportance> = names
            .iter()
            .zip(sums)
            .map(|(f, s)| FeatureImportance {
                feature: f.clone(),
                mean_abs_contribution: if n > 0 { s / n as f64 } else { 0.0 },
            })
            .collect();
        out.sort_by(|a, b| b.mean_abs_contribution.total_cmp(&a.mean_abs_contribution));
        out
    }
}

/// A trained model with its evaluation report.
#[derive(Serialize, Deserialize)]
pub struct RiskModel {
    pub horizon_days: u32,
    #[serde(with = "crate::time::iso")]
    pub trained_at: Millis,
    pub features: FeatureSpec,
    fitted: Fitted,
    pub report: RiskReport,
    /// The kept trees laid out for scoring one row at a time, made at the first score.
    #[serde(skip)]
    forest: std::sync::OnceLock<Option<forest::Forest>>,
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
    #[serde(with = "crate::time::iso")]
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

    /// The probability of one row: through the laid-out forest when the trees are kept
    /// (the same number as forust's batch prediction, which allocates a vector per tree
    /// for each call: a segment on risk scores every customer one at a time), else the
    /// fitted model's own scoring.
    fn score(&self, row: &[f64]) -> f64 {
        let forest = self.forest.get_or_init(|| match &self.fitted {
            Fitted::Trees(booster) => forest::Forest::of(booster),
            Fitted::Logistic(_) => None,
        });
        match forest {
            Some(forest) => sigmoid(forest.log_odds(row)),
            None => self.fitted.probabilities(row, row.len())[0],
        }
    }

    /// The customer's features at `now`, if a current customer then.
    fn row(&self, state: &CustomerState, names: &NameTable, now: Millis) -> Option<Vec<f64>> {
        standing(state, now)?;
        let mut row = Vec::with_capacity(self.features.len());
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

#[cfg(test)]
mod tests {
    use super::training::{Rows, fit_logistic, fit_trees};

    /// One row scored through the laid-out forest equals the same row scored in forust's
    /// batch, to the last bit, missing values included; a logistic model has no forest.
    #[test]
    fn one_row_scores_as_in_a_batch() {
        let mut rng = crate::random::Rng::new(11);
        let cols = 6;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..3_000 {
            let row: Vec<f64> = (0..cols)
                .map(|j| {
                    if rng.chance(0.05) {
                        f64::NAN
                    } else {
                        rng.uniform() * (j + 1) as f64
                    }
                })
                .collect();
            let signal = row[0].max(0.0) + 0.5 * row[2].max(0.0);
            y.push(rng.uniform() * 3.0 < signal);
            x.extend(row);
        }
        let rows = Rows { x, y, cols };
        for fitted in [fit_trees(&rows).unwrap(), fit_logistic(&rows).unwrap()] {
            let batch = fitted.probabilities(&rows.x, cols);
            let forest = match &fitted {
                super::Fitted::Trees(booster) => super::forest::Forest::of(booster),
                super::Fitted::Logistic(_) => None,
            };
            assert_eq!(forest.is_some(), matches!(fitted, super::Fitted::Trees(_)));
            for (i, row) in rows.x.chunks(cols).enumerate() {
                if let Some(forest) = &forest {
                    let p = super::sigmoid(forest.log_odds(row));
                    assert_eq!(p.to_bits(), batch[i].to_bits(), "row {i}, laid out");
                }
            }
            assert!(batch.iter().any(|p| *p > 0.6) && batch.iter().any(|p| *p < 0.4));
        }
    }
}
