//! Training the churn-risk model on the workspace's own history (docs/risk.md).
//!
//! At several past cut-offs, every current customer is a row: features from the state as of
//! the cut-off, label = churned within the next `horizon_days`. Subscribers churn when they
//! no longer pay at the end of the horizon; customers who only order churn when they place
//! no order in it. Cut-offs are the end of a UTC day, and a row reads no fact stamped after
//! its cut-off.
//!
//! The sets are split by time: the holdout cut-off is the latest whose horizon has fully
//! passed; the training cut-offs end their horizons at or before it (no label overlaps the
//! holdout's features window), the latest of them being the validation set. Both learners
//! are fitted on the training cut-offs before the validation one and compared on it; the
//! better is kept, refitted on every training cut-off, and evaluated once on the holdout,
//! next to the other learner and the recency-only baseline.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use tenure_core::customer::CustomerState;
use tenure_core::names::NameTable;
use tenure_core::random::Rng;
use tenure_core::risk::features::{CategoryCounts, FeatureSpec};
pub use tenure_core::risk::labels::{Standing, churned, standing};
use tenure_core::time::{MILLIS_PER_DAY, Millis, day_of, format_instant};

use crate::evaluation::{Evaluation, evaluate};
use crate::{Learner, RiskModel, Rows};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingOptions {
    /// The horizon of the prediction: churned within this many days.
    pub horizon_days: u32,
    /// Training cut-offs (the latest is the validation set).
    pub cutoffs: u32,
    /// Days between training cut-offs.
    pub spacing_days: u32,
    /// Rows beyond this are sampled (the same share of every cut-off, by customer).
    pub max_rows: usize,
}

impl TrainingOptions {
    /// Refuses options out of range, before any work (`cutoffs: 1000000` once ran 47 s and
    /// answered a 12 MB error).
    pub fn validate(&self) -> Result<(), TrainingError> {
        if self.horizon_days == 0 || self.spacing_days == 0 || self.cutoffs < 2 {
            return Err(TrainingError::Options(
                "horizon_days and spacing_days must be at least 1, cutoffs at least 2".into(),
            ));
        }
        if self.horizon_days > MAX_HORIZON_DAYS
            || self.spacing_days > MAX_SPACING_DAYS
            || self.cutoffs > MAX_CUTOFFS
        {
            return Err(TrainingError::Options(format!(
                "horizon_days goes up to {MAX_HORIZON_DAYS}, spacing_days up to {MAX_SPACING_DAYS} and cutoffs up to {MAX_CUTOFFS} (asked: {}, {}, {})",
                self.horizon_days, self.spacing_days, self.cutoffs
            )));
        }
        Ok(())
    }
}

impl Default for TrainingOptions {
    fn default() -> Self {
        Self {
            horizon_days: 30,
            cutoffs: 8,
            spacing_days: 30,
            max_rows: 400_000,
        }
    }
}

/// Largest training options accepted (a year's horizon, two years of cut-offs a month apart).
pub const MAX_HORIZON_DAYS: u32 = 365;
pub const MAX_SPACING_DAYS: u32 = 365;
pub const MAX_CUTOFFS: u32 = 24;

/// Fewer rows, churners or stayers than this in a set and training refuses: the evaluation
/// would be noise.
pub const MIN_ROWS: usize = 100;
pub const MIN_CHURNED: usize = 10;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainingError {
    #[error(
        "not enough history to train the risk model: the {set} set ({cutoffs}) has {rows} current customers of whom {churned} churned within {horizon} days; at least {MIN_ROWS} rows and {MIN_CHURNED} churners and {MIN_CHURNED} who stayed are needed (more customers, or more months of events)"
    )]
    NotEnoughHistory {
        set: &'static str,
        cutoffs: String,
        rows: usize,
        churned: usize,
        horizon: u32,
    },
    #[error("invalid training options: {0}")]
    Options(String),
    #[error("the {learner} learner failed: {message}")]
    Learner {
        learner: &'static str,
        message: String,
    },
}

/// What the report says of one set of cut-offs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetSummary {
    pub cutoffs: Vec<String>,
    pub rows: usize,
    pub churned: usize,
}

/// One learner's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub learner: Learner,
    pub settings: String,
    /// AUC on the validation cut-off, fitted on the earlier training cut-offs.
    pub validation_auc: f64,
    /// Refitted on every training cut-off, evaluated on the holdout.
    pub holdout: Evaluation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    pub feature: String,
    /// Mean |contribution| to the log-odds over the holdout rows.
    pub mean_abs_contribution: f64,
}

/// The evaluation report, kept with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskReport {
    #[serde(with = "tenure_core::time::iso")]
    pub trained_at: Millis,
    pub options: TrainingOptions,
    pub kept: Learner,
    pub why: String,
    pub fit: SetSummary,
    pub validation: SetSummary,
    pub holdout: SetSummary,
    pub candidates: Vec<Candidate>,
    /// Days since the last activity as the score (never active = highest), on the holdout.
    pub recency_baseline: Evaluation,
    /// The kept model's holdout AUC minus the baseline's.
    pub auc_gain_over_recency: f64,
    pub importance: Vec<FeatureImportance>,
}

/// The cut-off of day `day`: its first instant minus one, so the features read the days
/// before it in full.
fn cutoff(day: i32) -> Millis {
    i64::from(day) * MILLIS_PER_DAY - 1
}

/// Whether the customer is sampled in (`share` of 1 keeps all): by their id (the stable
/// hash the seen-ids filter uses), so the same customers at every cut-off, whatever slice
/// they come in.
fn sampled(state: &CustomerState, share: f64) -> bool {
    share >= 1.0
        || Rng::derive(0x005E_ED41, tenure_core::seen::hash(state.id.as_str()).0).uniform() < share
}

fn rows_at(
    states: &[&CustomerState],
    names: &NameTable,
    spec: &FeatureSpec,
    at: Millis,
    horizon: u32,
    share: f64,
) -> Rows {
    let cols = spec.columns();
    let parts: Vec<(Vec<f64>, bool)> = states
        .par_iter()
        .filter(|state| sampled(state, share))
        .filter_map(|state| {
            let standing = standing(state, at)?;
            let mut x = Vec::with_capacity(cols);
            spec.extract(state, names, at, &mut x);
            Some((x, churned(state, standing, at, horizon)))
        })
        .collect();
    let mut rows = Rows {
        x: Vec::with_capacity(parts.len() * cols),
        y: Vec::with_capacity(parts.len()),
        cols,
    };
    for (x, y) in parts {
        rows.x.extend(x);
        rows.y.push(y);
    }
    rows
}

fn summary(days: &[i32], rows: &Rows) -> SetSummary {
    SetSummary {
        cutoffs: days
            .iter()
            .map(|d| format_instant(cutoff(*d))[..10].to_owned())
            .collect(),
        rows: rows.len(),
        churned: rows.positives(),
    }
}

fn enough(set: &'static str, s: &SetSummary, horizon: u32) -> Result<(), TrainingError> {
    if s.rows < MIN_ROWS || s.churned < MIN_CHURNED || s.rows - s.churned < MIN_CHURNED {
        return Err(TrainingError::NotEnoughHistory {
            set,
            cutoffs: s.cutoffs.join(", "),
            rows: s.rows,
            churned: s.churned,
            horizon,
        });
    }
    Ok(())
}

fn fit(learner: Learner, rows: &Rows) -> Result<crate::Fitted, TrainingError> {
    crate::fit(learner, rows).map_err(|e| TrainingError::Learner {
        learner: e.learner.label(),
        message: e.message,
    })
}

/// The recency-only baseline: days since the last activity (never active scores highest).
fn recency_scores(rows: &Rows) -> Vec<f64> {
    (0..rows.len())
        .map(|i| {
            let r = rows.row(i)[0];
            if r.is_nan() { f64::INFINITY } else { r }
        })
        .collect()
}

/// The rows of every set, built from the customers' states; fitting needs nothing else, so
/// a caller can let go of the states (e.g. a lock on the engine) before it.
pub struct Dataset {
    now: Millis,
    options: TrainingOptions,
    spec: FeatureSpec,
    fit: Rows,
    validation: Rows,
    holdout: Rows,
    summaries: [SetSummary; 3],
}

/// Trains, compares and evaluates (see the module's documentation); `now` is the instant of
/// training and the end of the data.
pub fn train(
    states: &[&CustomerState],
    names: &NameTable,
    now: Millis,
    options: &TrainingOptions,
) -> Result<RiskModel, TrainingError> {
    Dataset::build(states, names, now, options)?.fit()
}

/// Builds a [`Dataset`] from customers given in slices, so a caller can let go of a lock on
/// the engine between them (ingest then waits for one slice, not for the whole training):
/// every slice to [`count`](Self::count), then [`end_counting`](Self::end_counting), then
/// every slice to [`add`](Self::add), then [`finish`](Self::finish). A customer who
/// appears or merges between the passes changes the sampling share a little, nothing else.
pub struct DatasetBuilder {
    now: Millis,
    options: TrainingOptions,
    holdout_day: i32,
    training_days: Vec<i32>,
    eligible: usize,
    categories: CategoryCounts,
    share: f64,
    spec: FeatureSpec,
    /// Rows per cut-off: the training days in order, then the holdout.
    rows: Vec<Rows>,
}

impl DatasetBuilder {
    pub fn new(now: Millis, options: &TrainingOptions) -> Result<Self, TrainingError> {
        options.validate()?;
        let horizon = options.horizon_days as i32;
        let holdout_day = day_of(now) - horizon;
        let training_days: Vec<i32> = (0..options.cutoffs as i32)
            .map(|k| holdout_day - horizon - k * options.spacing_days as i32)
            .collect();
        Ok(Self {
            now,
            options: options.clone(),
            holdout_day,
            training_days,
            eligible: 0,
            categories: CategoryCounts::default(),
            share: 1.0,
            spec: FeatureSpec::default(),
            rows: Vec::new(),
        })
    }

    fn days(&self) -> impl Iterator<Item = i32> + '_ {
        self.training_days
            .iter()
            .copied()
            .chain(std::iter::once(self.holdout_day))
    }

    /// First pass: counts the rows (to sample the same share of customers everywhere) and
    /// the plans and channels of the training rows.
    pub fn count(&mut self, states: &[&CustomerState]) {
        let days: Vec<i32> = self.days().collect();
        for d in days {
            let at = cutoff(d);
            let current: Vec<&CustomerState> = states
                .par_iter()
                .filter(|s| standing(s, at).is_some())
                .copied()
                .collect();
            self.eligible += current.len();
            if d != self.holdout_day {
                for s in current {
                    self.categories.observe(s, at);
                }
            }
        }
    }

    /// Fixes the sampling share and the plan and channel columns.
    pub fn end_counting(&mut self) {
        self.share = if self.eligible > self.options.max_rows {
            self.options.max_rows as f64 / self.eligible as f64
        } else {
            1.0
        };
        self.spec = std::mem::take(&mut self.categories).spec();
        let cols = self.spec.columns();
        self.rows = self.days().map(|_| Rows::empty(cols)).collect();
    }

    /// Second pass: the rows of these customers at every cut-off.
    pub fn add(&mut self, states: &[&CustomerState], names: &NameTable) {
        let days: Vec<i32> = self.days().collect();
        for (i, d) in days.into_iter().enumerate() {
            let part = rows_at(
                states,
                names,
                &self.spec,
                cutoff(d),
                self.options.horizon_days,
                self.share,
            );
            self.rows[i].x.extend(part.x);
            self.rows[i].y.extend(part.y);
        }
    }

    /// The sets; refuses when one is too small to learn or judge from.
    pub fn finish(mut self) -> Result<Dataset, TrainingError> {
        let horizon = self.options.horizon_days;
        let cols = self.spec.columns();
        let holdout = self.rows.pop().unwrap_or_else(|| Rows::empty(cols));
        let mut training = self.rows.into_iter();
        let validation = training.next().unwrap_or_else(|| Rows::empty(cols));
        let fit = Rows::concat(training.collect(), cols);
        let validation_day = self.training_days[0];
        let fit_days = &self.training_days[1..];
        let summaries = [
            summary(fit_days, &fit),
            summary(&[validation_day], &validation),
            summary(&[self.holdout_day], &holdout),
        ];
        enough("training", &summaries[0], horizon)?;
        enough("validation", &summaries[1], horizon)?;
        enough("holdout", &summaries[2], horizon)?;
        Ok(Dataset {
            now: self.now,
            options: self.options,
            spec: self.spec,
            fit,
            validation,
            holdout,
            summaries,
        })
    }
}

impl Dataset {
    /// The rows at every cut-off; refuses when a set is too small to learn or judge from.
    pub fn build(
        states: &[&CustomerState],
        names: &NameTable,
        now: Millis,
        options: &TrainingOptions,
    ) -> Result<Self, TrainingError> {
        let mut builder = DatasetBuilder::new(now, options)?;
        builder.count(states);
        builder.end_counting();
        builder.add(states, names);
        builder.finish()
    }

    /// Every row as CSV — `set,churned,<features…>`, an undefined feature empty — to fit the
    /// same rows with another implementation (the benchmark against scikit-learn).
    pub fn write_csv(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "set,churned,{}", self.spec.names().join(","))?;
        for (set, rows) in [
            ("fit", &self.fit),
            ("validation", &self.validation),
            ("holdout", &self.holdout),
        ] {
            for i in 0..rows.len() {
                let values: Vec<String> = rows
                    .row(i)
                    .iter()
                    .map(|v| {
                        if v.is_nan() {
                            String::new()
                        } else {
                            v.to_string()
                        }
                    })
                    .collect();
                writeln!(out, "{set},{},{}", u8::from(rows.y[i]), values.join(","))?;
            }
        }
        Ok(())
    }

    /// Rows in all sets.
    pub fn rows(&self) -> usize {
        self.fit.len() + self.validation.len() + self.holdout.len()
    }

    /// Fits both learners, keeps the better on the validation set, evaluates on the holdout.
    pub fn fit(self) -> Result<RiskModel, TrainingError> {
        let Dataset {
            now,
            options,
            spec,
            fit: fit_rows,
            validation,
            holdout,
            summaries: [fit_summary, validation_summary, holdout_summary],
        } = self;
        let training = Rows::concat(vec![fit_rows.clone(), validation.clone()], spec.columns());
        // Each learner: fitted before the validation cut-off and compared on it, then
        // refitted on every training cut-off and evaluated on the holdout.
        let learners = Learner::ALL;
        let mut candidates = Vec::new();
        let mut finals = Vec::new();
        for learner in learners {
            let early = fit(learner, &fit_rows)?;
            let validation_auc = {
                let p = early.probabilities(&validation.x, validation.cols);
                evaluate(&p, &validation.y, true).auc
            };
            let full = fit(learner, &training)?;
            let p = full.probabilities(&holdout.x, holdout.cols);
            candidates.push(Candidate {
                learner,
                settings: crate::settings(learner),
                validation_auc,
                holdout: evaluate(&p, &holdout.y, true),
            });
            finals.push(full);
        }
        let best = if candidates[0].validation_auc >= candidates[1].validation_auc {
            0
        } else {
            1
        };
        let kept = candidates[best].learner;
        let other = &candidates[1 - best];
        let why = format!(
            "{} had the higher validation AUC ({:.3} against {:.3} for {})",
            kept.label(),
            candidates[best].validation_auc,
            other.validation_auc,
            other.learner.label()
        );
        let recency_baseline = evaluate(&recency_scores(&holdout), &holdout.y, false);
        let fitted = finals.swap_remove(best);
        let mut importance: Vec<FeatureImportance> = spec
            .names()
            .into_iter()
            .zip(fitted.importance(&holdout))
            .map(|(feature, mean_abs_contribution)| FeatureImportance {
                feature,
                mean_abs_contribution,
            })
            .collect();
        importance.sort_by(|a, b| b.mean_abs_contribution.total_cmp(&a.mean_abs_contribution));
        let report = RiskReport {
            trained_at: now,
            options: options.clone(),
            kept,
            why,
            fit: fit_summary,
            validation: validation_summary,
            holdout: holdout_summary,
            auc_gain_over_recency: candidates[best].holdout.auc - recency_baseline.auc,
            candidates,
            recency_baseline,
            importance,
        };
        Ok(RiskModel {
            horizon_days: options.horizon_days,
            trained_at: now,
            features: spec,
            fitted,
            report,
        })
    }
}
