//! The learners of the churn-risk model, on plain rows of numbers (docs/risk.md).
//!
//! - [`fit`]: gradient-boosted trees (forust-ml) or L2-regularised logistic regression on
//!   standardised features (linfa-logistic), with fixed settings ([`settings`]);
//! - [`Fitted`]: probabilities for many rows or one, and each feature's contribution to
//!   the log-odds of a row (Shapley values for the trees, weight × standardised value for
//!   the regression);
//! - [`evaluation`]: AUC, calibration, lift and capture of a score on rows whose outcome is
//!   known.
//!
//! - [`training`]: rows at past cut-offs of a workspace's history, both learners compared on
//!   a time-based split, the better kept and evaluated on a holdout;
//! - [`model`]: the trained model: a customer's probability and its reasons, the riskiest
//!   customers; it is what segments read (`tenure_core::risk::ChurnRisk`).
//!
//! What a customer looks like as a row, and who is a current customer, is
//! `tenure_core::risk`; the core does not depend on this crate, so it never compiles the
//! solvers (and their generic code, monomorphised where it is compiled).

pub mod evaluation;
mod forest;
pub mod model;
pub mod training;

pub use model::{RiskModel, RiskPrediction, RiskReason, Riskiest};

use std::sync::OnceLock;

use forust_ml::{GradientBooster, Matrix, gradientbooster::ContributionsMethod};
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use serde::{Deserialize, Serialize};

/// The learners compared at every training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learner {
    GradientBoostedTrees,
    LogisticRegression,
}

impl Learner {
    pub const ALL: [Learner; 2] = [Learner::GradientBoostedTrees, Learner::LogisticRegression];

    pub fn label(self) -> &'static str {
        match self {
            Learner::GradientBoostedTrees => "gradient-boosted trees",
            Learner::LogisticRegression => "logistic regression",
        }
    }
}

/// Rows of `cols` features, row-major (NaN: missing), each with its outcome.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub x: Vec<f64>,
    pub y: Vec<bool>,
    pub cols: usize,
}

impl Rows {
    pub fn empty(cols: usize) -> Rows {
        Rows {
            x: Vec::new(),
            y: Vec::new(),
            cols,
        }
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// How many rows have the outcome (churned).
    pub fn positives(&self) -> usize {
        self.y.iter().filter(|c| **c).count()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.cols..(i + 1) * self.cols]
    }

    /// One row and its outcome appended.
    pub fn push(&mut self, row: &[f64], outcome: bool) {
        self.x.extend_from_slice(row);
        self.y.push(outcome);
    }

    pub fn concat(parts: Vec<Rows>, cols: usize) -> Rows {
        let mut all = Rows::empty(cols);
        for p in parts {
            all.x.extend(p.x);
            all.y.extend(p.y);
        }
        all
    }
}

/// A learner failed to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FitError {
    pub learner: Learner,
    pub message: String,
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} learner failed: {}",
            self.learner.label(),
            self.message
        )
    }
}

impl std::error::Error for FitError {}

/// The settings of the trees (fixed: chosen on the demo business and CDNOW-like order data,
/// docs/risk.md; shallow trees and a small learning rate so a few hundred rows do not
/// over-fit).
const TREES: usize = 200;
const TREE_DEPTH: usize = 3;
const LEARNING_RATE: f32 = 0.05;
const MIN_LEAF_WEIGHT: f32 = 5.0;
/// L2 penalty of the logistic regression, on standardised features.
const LOGISTIC_ALPHA: f64 = 1.0;

/// The learner's fixed settings, as a report states them.
pub fn settings(learner: Learner) -> String {
    match learner {
        Learner::GradientBoostedTrees => format!(
            "{TREES} trees of depth {TREE_DEPTH}, learning rate {LEARNING_RATE}, min leaf weight {MIN_LEAF_WEIGHT} (forust-ml)"
        ),
        Learner::LogisticRegression => format!(
            "L2 penalty {LOGISTIC_ALPHA} on standardised features, missing values at the mean (linfa-logistic)"
        ),
    }
}

/// Fits `learner` to the rows.
pub fn fit(learner: Learner, rows: &Rows) -> Result<Fitted, FitError> {
    let model = match learner {
        Learner::GradientBoostedTrees => fit_trees(rows)?,
        Learner::LogisticRegression => fit_logistic(rows)?,
    };
    Ok(Fitted {
        model,
        forest: OnceLock::new(),
    })
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
enum Model {
    Trees(Box<GradientBooster>),
    Logistic(Logistic),
}

/// A fitted learner. Serialised as the learner's own model (a stored risk model reads back
/// as it was written).
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fitted {
    model: Model,
    /// The kept trees laid out for scoring one row at a time, made at the first score.
    #[serde(skip)]
    forest: OnceLock<Option<forest::Forest>>,
}

impl std::fmt::Debug for Fitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fitted")
            .field("learner", &self.learner())
            .finish_non_exhaustive()
    }
}

/// Row-major rows of `cols` values as the column-major matrix forust reads.
fn column_major(x: &[f64], cols: usize) -> Vec<f64> {
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
    pub fn learner(&self) -> Learner {
        match self.model {
            Model::Trees(_) => Learner::GradientBoostedTrees,
            Model::Logistic(_) => Learner::LogisticRegression,
        }
    }

    /// Probabilities of the outcome for row-major rows of `cols` features.
    pub fn probabilities(&self, x: &[f64], cols: usize) -> Vec<f64> {
        let n = x.len() / cols;
        match &self.model {
            Model::Trees(booster) => {
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
            Model::Logistic(l) => x
                .chunks(cols)
                .map(|row| sigmoid(l.intercept + l.terms(row).iter().sum::<f64>()))
                .collect(),
        }
    }

    /// The probability of one row: through the laid-out forest when these are trees (the
    /// same number as forust's batch prediction, which allocates a vector per tree for each
    /// call: a segment on risk scores every customer one at a time), else the model's own
    /// scoring.
    pub fn probability(&self, row: &[f64]) -> f64 {
        let forest = self.forest.get_or_init(|| match &self.model {
            Model::Trees(booster) => forest::Forest::of(booster),
            Model::Logistic(_) => None,
        });
        match forest {
            Some(forest) => sigmoid(forest.log_odds(row)),
            None => self.probabilities(row, row.len())[0],
        }
    }

    /// Each feature's contribution to the log-odds of one row: Shapley values for the trees
    /// (they add up to the prediction with the bias), weight × standardised value for the
    /// logistic regression.
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        match &self.model {
            Model::Trees(booster) => {
                let mut c = booster.predict_contributions(
                    &Matrix::new(row, 1, row.len()),
                    ContributionsMethod::Shapley,
                    false,
                );
                c.truncate(row.len());
                c
            }
            Model::Logistic(l) => l.terms(row),
        }
    }

    /// Mean |contribution| of each column over (at most 5,000 of) the rows.
    pub fn importance(&self, rows: &Rows) -> Vec<f64> {
        let step = rows.len().div_ceil(5_000).max(1);
        let mut sums = vec![0.0; rows.cols];
        let mut n = 0usize;
        for i in (0..rows.len()).step_by(step) {
            for (s, c) in sums.iter_mut().zip(self.contributions(rows.row(i))) {
                *s += c.abs();
            }
            n += 1;
        }
        sums.into_iter()
            .map(|s| if n > 0 { s / n as f64 } else { 0.0 })
            .collect()
    }
}

fn fit_trees(rows: &Rows) -> Result<Model, FitError> {
    let data = column_major(&rows.x, rows.cols);
    let matrix = Matrix::new(&data, rows.len(), rows.cols);
    let y: Vec<f64> = rows.y.iter().map(|c| f64::from(u8::from(*c))).collect();
    let weights = vec![1.0; rows.len()];
    let mut booster = GradientBooster::default()
        .set_iterations(TREES)
        .set_max_depth(TREE_DEPTH)
        .set_learning_rate(LEARNING_RATE)
        .set_min_leaf_weight(MIN_LEAF_WEIGHT)
        .set_seed(7);
    booster
        .fit(&matrix, &y, &weights, None)
        .map_err(|e| FitError {
            learner: Learner::GradientBoostedTrees,
            message: e.to_string(),
        })?;
    Ok(Model::Trees(Box::new(booster)))
}

fn fit_logistic(rows: &Rows) -> Result<Model, FitError> {
    let n = rows.len();
    let cols = rows.cols;
    let mut means = vec![0.0; cols];
    let mut scales = vec![1.0; cols];
    for j in 0..cols {
        let values: Vec<f64> = (0..n)
            .map(|i| rows.x[i * cols + j])
            .filter(|v| !v.is_nan())
            .collect();
        if values.is_empty() {
            continue;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        means[j] = mean;
        scales[j] = if var > 0.0 { var.sqrt() } else { 1.0 };
    }
    let standard = Logistic {
        intercept: 0.0,
        weights: vec![0.0; cols],
        means,
        scales,
    };
    let mut z = ndarray::Array2::<f64>::zeros((n, cols));
    for i in 0..n {
        for (j, v) in standard.standardise(rows.row(i)).into_iter().enumerate() {
            z[[i, j]] = v;
        }
    }
    let y = ndarray::Array1::from_iter(rows.y.iter().copied());
    let fitted = LogisticRegression::default()
        .alpha(LOGISTIC_ALPHA)
        .max_iterations(100)
        // linfa's gradient is a sum over the rows: a tolerance per row, so a large workspace
        // stops when converged rather than at the iteration cap.
        .gradient_tolerance(1e-6 * n as f64)
        .fit(&linfa::Dataset::new(z, y))
        .map_err(|e| FitError {
            learner: Learner::LogisticRegression,
            message: e.to_string(),
        })?;
    // The fitted probability is of the label linfa calls positive; make it "churned".
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    Ok(Model::Logistic(Logistic {
        intercept: sign * fitted.intercept(),
        weights: fitted.params().iter().map(|w| sign * w).collect(),
        ..standard
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    fn rows(seed: u64) -> Rows {
        let mut rng = StdRng::seed_from_u64(seed);
        let cols = 6;
        let mut rows = Rows::empty(cols);
        for _ in 0..3_000 {
            let row: Vec<f64> = (0..cols)
                .map(|j| {
                    if rng.random_bool(0.05) {
                        f64::NAN
                    } else {
                        rng.random::<f64>() * (j + 1) as f64
                    }
                })
                .collect();
            let signal = row[0].max(0.0) + 0.5 * row[2].max(0.0);
            let outcome = rng.random::<f64>() * 3.0 < signal;
            rows.push(&row, outcome);
        }
        rows
    }

    /// One row scored through the laid-out forest equals the same row scored in forust's
    /// batch, to the last bit, missing values included; a logistic model has no forest.
    #[test]
    fn one_row_scores_as_in_a_batch() {
        let rows = rows(11);
        for learner in Learner::ALL {
            let fitted = fit(learner, &rows).expect("fits");
            let batch = fitted.probabilities(&rows.x, rows.cols);
            for (i, row) in rows.x.chunks(rows.cols).enumerate() {
                assert_eq!(
                    fitted.probability(row).to_bits(),
                    batch[i].to_bits(),
                    "{learner:?}, row {i}"
                );
            }
            let laid_out = fitted.forest.get().is_some_and(Option::is_some);
            assert_eq!(laid_out, learner == Learner::GradientBoostedTrees);
            assert!(batch.iter().any(|p| *p > 0.6) && batch.iter().any(|p| *p < 0.4));
        }
    }

    /// The signal is in columns 0 and 2: both learners rank them first, and a model reads
    /// back from its JSON scoring the same.
    #[test]
    fn the_informative_columns_matter_most_and_survive_a_round_trip() {
        let rows = rows(5);
        for learner in Learner::ALL {
            let fitted = fit(learner, &rows).expect("fits");
            let importance = fitted.importance(&rows);
            let mut order: Vec<usize> = (0..rows.cols).collect();
            order.sort_by(|a, b| importance[*b].total_cmp(&importance[*a]));
            let mut top = [order[0], order[1]];
            top.sort_unstable();
            assert_eq!(top, [0, 2], "{learner:?}: {importance:?}");
            let json = serde_json::to_string(&fitted).expect("serialises");
            let back: Fitted = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back.learner(), learner);
            assert_eq!(
                back.probabilities(&rows.x, rows.cols),
                fitted.probabilities(&rows.x, rows.cols)
            );
        }
    }
}
