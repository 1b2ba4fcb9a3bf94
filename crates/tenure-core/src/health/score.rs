//! Scoring a customer with a health model at an instant: each component's value read from
//! the state, mapped by its scale, combined by weights into a score and a grade with its
//! breakdown; a manual override in force wins (docs/health.md).
//!
//! A component whose value is undefined for a customer (no NPS answer yet, no usage in the
//! previous window to compare with, a missing trait) is left out and the other weights are
//! renormalised, so a score never counts a missing answer as a bad one; the breakdown says
//! which components counted.

use serde::Serialize;

use super::model::{Grade, HealthModel, Metric};
use crate::customer::CustomerState;
use crate::names::{NameId, NameTable};
use crate::time::{Millis, day_of};

/// Whether a score rose, fell or held against an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Same,
}

/// The score now against the score `days` ago.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub days: u32,
    pub previous_score: Option<f64>,
    /// `same` within ± [`TREND_TOLERANCE`] points (or when either score is undefined).
    pub direction: Direction,
}

/// Points a score must move to count as up or down.
pub const TREND_TOLERANCE: f64 = 5.0;

/// One point of a score's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    #[serde(with = "crate::time::iso")]
    pub at: Millis,
    pub score: Option<f64>,
    pub grade: Option<Grade>,
}

/// A customer's score with its breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthScore {
    pub model: String,
    /// 0–100; `None` when no component had a value. Under a manual override, the
    /// override's score (or the computed one if it gave none).
    pub score: Option<f64>,
    /// Under a manual override, the override's grade.
    pub grade: Option<Grade>,
    /// What the model computed, override or not.
    pub computed_score: Option<f64>,
    pub computed_grade: Option<Grade>,
    /// The manual override in force (set by a `Health Overridden` event, until it expires).
    #[serde(rename = "override")]
    pub manual_override: Option<crate::semantic::HealthOverride>,
    pub components: Vec<ComponentScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentScore {
    pub name: String,
    /// The value read (`None`: undefined for this customer, left out of the score).
    pub value: Option<f64>,
    pub score: Option<f64>,
    pub weight: f64,
    /// Points this component adds to the score (its share of the weights that counted ×
    /// its score); the contributions add up to the score.
    pub contribution: Option<f64>,
}

impl HealthModel {
    /// The customer's score and grade at `now` (a manual override in force included),
    /// without the breakdown: no allocation, for scoring every customer.
    pub fn grade(
        &self,
        state: &CustomerState,
        names: &NameTable,
        now: Millis,
    ) -> (Option<f64>, Option<Grade>) {
        let (mut weighted, mut counted) = (0.0, 0.0);
        for c in &self.components {
            if let Some(v) = c.metric.value(state, names, now) {
                weighted += c.weight * c.scale.score(v);
                counted += c.weight;
            }
        }
        let computed = (counted > 0.0).then(|| weighted / counted);
        match active_override(state, now) {
            Some(o) => (o.score.or(computed), Some(o.grade)),
            None => (computed, computed.map(|s| self.bands.grade(s))),
        }
    }

    /// The customer's score at `now`.
    pub fn score(&self, state: &CustomerState, names: &NameTable, now: Millis) -> HealthScore {
        let values: Vec<Option<f64>> = self
            .components
            .iter()
            .map(|c| c.metric.value(state, names, now))
            .collect();
        let scores: Vec<Option<f64>> = self
            .components
            .iter()
            .zip(&values)
            .map(|(c, v)| v.map(|v| c.scale.score(v)))
            .collect();
        let counted: f64 = self
            .components
            .iter()
            .zip(&scores)
            .filter(|(_, s)| s.is_some())
            .map(|(c, _)| c.weight)
            .sum();
        let components: Vec<ComponentScore> = self
            .components
            .iter()
            .zip(values.iter().zip(&scores))
            .map(|(c, (value, score))| ComponentScore {
                name: c.name.clone(),
                value: *value,
                score: *score,
                weight: c.weight,
                contribution: score.map(|s| s * c.weight / counted),
            })
            .collect();
        // Accumulated as in `grade`, so both give the same number to the last bit.
        let weighted: f64 = self
            .components
            .iter()
            .zip(&scores)
            .filter_map(|(c, s)| s.map(|s| c.weight * s))
            .sum();
        let computed = (counted > 0.0).then(|| weighted / counted);
        let computed_grade = computed.map(|s| self.bands.grade(s));
        let manual_override = active_override(state, now).cloned();
        let (score, grade) = match &manual_override {
            Some(o) => (o.score.or(computed), Some(o.grade)),
            None => (computed, computed_grade),
        };
        HealthScore {
            model: self.name.clone(),
            score,
            grade,
            computed_score: computed,
            computed_grade,
            manual_override,
            components,
        }
    }
}

impl Metric {
    /// The component's value for this customer at `now`; `None` when undefined.
    pub fn value(&self, state: &CustomerState, names: &NameTable, now: Millis) -> Option<f64> {
        let today = day_of(now);
        match self {
            Metric::UsageFrequency {
                events,
                window_days,
            } => {
                let ids = resolve(names, events);
                Some(occurrences(state, &ids, today - *window_days as i32 + 1, today) as f64)
            }
            Metric::UsageTrend {
                events,
                window_days,
            } => {
                let ids = resolve(names, events);
                let d = *window_days as i32;
                let now = occurrences(state, &ids, today - d + 1, today);
                let before = occurrences(state, &ids, today - 2 * d + 1, today - d);
                (before > 0).then(|| now as f64 / before as f64)
            }
            Metric::Recency { events } => {
                let ids = resolve(names, events);
                state
                    .activity
                    .iter()
                    .rev()
                    .filter(|e| e.day <= today)
                    .find(|e| ids.as_ref().is_none_or(|ids| ids.contains(&e.name)))
                    .map(|e| f64::from(today - e.day))
            }
            Metric::Breadth { window_days } => {
                let from = today - *window_days as i32 + 1;
                let start = state.activity.partition_point(|e| e.day < from);
                // Distinct names: a bit per name for the first 128 names interned (the
                // common ones: names are numbered as first seen), a list past them. No
                // allocation for most customers: every customer is scored on a rescore.
                let (mut low, mut high) = (0u128, Vec::new());
                for e in state.activity[start..]
                    .iter()
                    .take_while(|e| e.day <= today)
                {
                    match 1u128.checked_shl(e.name) {
                        Some(bit) => low |= bit,
                        None if !high.contains(&e.name) => high.push(e.name),
                        None => {}
                    }
                }
                Some(f64::from(low.count_ones()) + high.len() as f64)
            }
            Metric::Nps => state
                .survey_answers
                .iter()
                .rev()
                .filter(|a| a.at <= now && a.scale == 10)
                .find_map(|a| a.score)
                .map(f64::from),
            Metric::OpenTickets => Some(
                state
                    .tickets
                    .iter()
                    .filter(|t| {
                        t.opened_at.is_some_and(|o| o <= now)
                            && t.resolved_at.is_none_or(|r| r > now)
                    })
                    .count() as f64,
            ),
            Metric::BillingProblems => Some(state.past_due_at(now) as f64),
            Metric::Trait { key } => state.traits.get(key).and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            }),
        }
    }
}

/// The latest override made by `now`, if it has not expired (a later override replaces an
/// earlier one, even after the later one expires).
fn active_override(state: &CustomerState, now: Millis) -> Option<&crate::semantic::HealthOverride> {
    state
        .health_overrides
        .iter()
        .rev()
        .find(|o| o.at <= now)
        .filter(|o| o.expires_at > now)
}

/// Event names to ids; `None` for "any named event". A name never received matches nothing.
fn resolve(names: &NameTable, events: &[String]) -> Option<Vec<NameId>> {
    (!events.is_empty()).then(|| events.iter().filter_map(|e| names.get(e)).collect())
}

/// Occurrences of the events on the days `from..=to`.
fn occurrences(state: &CustomerState, ids: &Option<Vec<NameId>>, from: i32, to: i32) -> u64 {
    let start = state.activity.partition_point(|e| e.day < from);
    state.activity[start..]
        .iter()
        .take_while(|e| e.day <= to)
        .filter(|e| ids.as_ref().is_none_or(|ids| ids.contains(&e.name)))
        .map(|e| u64::from(e.count))
        .sum()
}

/// A component's share of what keeps a score from 100.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    pub component: String,
    pub value: Option<f64>,
    pub score: f64,
    /// Points of the total this component loses: its weight share × (100 − its score).
    pub points_lost: f64,
}

impl HealthScore {
    /// The components that cost the most points, most first.
    pub fn reasons(&self, most: usize) -> Vec<Reason> {
        let counted: f64 = self
            .components
            .iter()
            .filter(|c| c.score.is_some())
            .map(|c| c.weight)
            .sum();
        let mut reasons: Vec<Reason> = self
            .components
            .iter()
            .filter_map(|c| {
                let score = c.score?;
                Some(Reason {
                    component: c.name.clone(),
                    value: c.value,
                    score,
                    points_lost: c.weight / counted * (100.0 - score),
                })
            })
            .filter(|r| r.points_lost > 0.0)
            .collect();
        reasons.sort_by(|a, b| b.points_lost.total_cmp(&a.points_lost));
        reasons.truncate(most);
        reasons
    }
}
