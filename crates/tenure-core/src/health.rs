//! Customer health scores: a model is a list of components, each a value read from the
//! customer's state at an instant (usage, its trend, recency, breadth, NPS, tickets, billing,
//! a custom event or a numeric trait), mapped to 0–100 by thresholds or a piecewise-linear
//! curve and combined by weights into a score with a grade (docs/health.md).
//!
//! Pure: the state, the engine's event names and the instant are passed in. A component
//! whose value is undefined for a customer (no NPS answer yet, no usage in the previous
//! window to compare with, a missing trait) is left out and the other weights are
//! renormalised, so a score never counts a missing answer as a bad one; the breakdown says
//! which components counted.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::customer::{CustomerState, NameId};
use crate::engine::NameTable;
use crate::time::{Millis, day_of};

/// A health model, as written in JSON (docs/health.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthModel {
    pub name: String,
    pub components: Vec<Component>,
    #[serde(default)]
    pub bands: Bands,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    pub metric: Metric,
    pub scale: Scale,
    pub weight: f64,
}

/// What a component reads from the customer's state. Windows are whole UTC days ending with
/// the day of the instant scored (`window_days: 30` = today and the 29 days before).
/// `events` lists event names; empty means any named event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Metric {
    /// Occurrences of the events in the window.
    UsageFrequency {
        #[serde(default)]
        events: Vec<String>,
        window_days: u32,
    },
    /// Occurrences in the window ÷ occurrences in the window before it (undefined when
    /// the previous window is empty).
    UsageTrend {
        #[serde(default)]
        events: Vec<String>,
        window_days: u32,
    },
    /// Days since the last occurrence of the events (undefined if never).
    Recency {
        #[serde(default)]
        events: Vec<String>,
    },
    /// Distinct named events done in the window (breadth of feature use).
    Breadth { window_days: u32 },
    /// The latest NPS answer, 0–10 (undefined before the first one).
    Nps,
    /// Support tickets opened and not resolved.
    OpenTickets,
    /// Subscriptions past due (the paid period ended without a renewal).
    BillingProblems,
    /// A numeric trait (undefined when absent or not a number; e.g. seats used).
    Trait { key: String },
}

/// How a component's value becomes a 0–100 score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scale {
    /// `[[at_least, score], …]` in increasing `at_least`: the score of the last step whose
    /// `at_least` the value reaches (below the first step: the first step's score).
    Thresholds { steps: Vec<[f64; 2]> },
    /// `[[value, score], …]` in increasing value: linear between points, flat outside.
    Curve { points: Vec<[f64; 2]> },
}

/// Grades: red below `yellow_from`, yellow below `green_from`, green from it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    pub yellow_from: f64,
    pub green_from: f64,
}

impl Default for Bands {
    fn default() -> Self {
        Self {
            yellow_from: 40.0,
            green_from: 70.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Red,
    Yellow,
    Green,
}

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
    /// Parses and checks a model; the error names the component and field at fault.
    pub fn parse(json: &str) -> Result<Self, String> {
        let model: HealthModel =
            serde_json::from_str(json).map_err(|e| format!("not a health model: {e}"))?;
        model.validate()?;
        Ok(model)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.components.is_empty() {
            return Err("components: a model needs at least one component".into());
        }
        for (i, c) in self.components.iter().enumerate() {
            let at = |field: &str| format!("components[{i}] (`{}`).{field}", c.name);
            if self.components[..i].iter().any(|o| o.name == c.name) {
                return Err(format!("{}: the name is used twice", at("name")));
            }
            if !(c.weight.is_finite() && c.weight > 0.0) {
                return Err(format!("{}: must be a number > 0", at("weight")));
            }
            match &c.metric {
                Metric::UsageFrequency { window_days, .. }
                | Metric::UsageTrend { window_days, .. }
                | Metric::Breadth { window_days }
                    if *window_days == 0 =>
                {
                    return Err(format!("{}: must be at least 1", at("metric.window_days")));
                }
                _ => {}
            }
            let (field, points) = match &c.scale {
                Scale::Thresholds { steps } => ("scale.steps", steps),
                Scale::Curve { points } => ("scale.points", points),
            };
            if points.is_empty() {
                return Err(format!(
                    "{}: needs at least one [value, score] pair",
                    at(field)
                ));
            }
            if points.windows(2).any(|w| w[1][0] <= w[0][0]) {
                return Err(format!("{}: values must increase", at(field)));
            }
            if points
                .iter()
                .any(|[v, s]| !v.is_finite() || !(0.0..=100.0).contains(s))
            {
                return Err(format!(
                    "{}: values must be numbers and scores between 0 and 100",
                    at(field)
                ));
            }
        }
        if !(0.0..=100.0).contains(&self.bands.yellow_from)
            || !(self.bands.yellow_from..=100.0).contains(&self.bands.green_from)
        {
            return Err("bands: need 0 ≤ yellow_from ≤ green_from ≤ 100".into());
        }
        Ok(())
    }

    /// The model Tenure ships with, for a SaaS business (docs/health.md explains each
    /// choice): usage 30%, its trend 20%, recency 20%, breadth 10%, NPS 10%, open tickets 5%,
    /// billing 5%.
    pub fn saas_default() -> Self {
        let curve = |points: &[[f64; 2]]| Scale::Curve {
            points: points.to_vec(),
        };
        let component = |name: &str, metric: Metric, scale: Scale, weight: f64| Component {
            name: name.into(),
            metric,
            scale,
            weight,
        };
        HealthModel {
            name: "saas_default".into(),
            components: vec![
                component(
                    "usage",
                    Metric::UsageFrequency {
                        events: Vec::new(),
                        window_days: 30,
                    },
                    curve(&[[0.0, 0.0], [4.0, 40.0], [12.0, 80.0], [30.0, 100.0]]),
                    30.0,
                ),
                component(
                    "usage_trend",
                    Metric::UsageTrend {
                        events: Vec::new(),
                        window_days: 30,
                    },
                    curve(&[[0.0, 0.0], [0.5, 30.0], [1.0, 70.0], [1.5, 100.0]]),
                    20.0,
                ),
                component(
                    "recency",
                    Metric::Recency { events: Vec::new() },
                    curve(&[
                        [0.0, 100.0],
                        [7.0, 90.0],
                        [14.0, 60.0],
                        [30.0, 20.0],
                        [60.0, 0.0],
                    ]),
                    20.0,
                ),
                component(
                    "breadth",
                    Metric::Breadth { window_days: 30 },
                    curve(&[[0.0, 0.0], [1.0, 30.0], [3.0, 80.0], [5.0, 100.0]]),
                    10.0,
                ),
                component(
                    "nps",
                    Metric::Nps,
                    Scale::Thresholds {
                        steps: vec![[0.0, 10.0], [7.0, 60.0], [9.0, 100.0]],
                    },
                    10.0,
                ),
                component(
                    "open_tickets",
                    Metric::OpenTickets,
                    curve(&[[0.0, 100.0], [1.0, 70.0], [3.0, 20.0], [5.0, 0.0]]),
                    5.0,
                ),
                component(
                    "billing",
                    Metric::BillingProblems,
                    Scale::Thresholds {
                        steps: vec![[0.0, 100.0], [1.0, 0.0]],
                    },
                    5.0,
                ),
            ],
            bands: Bands::default(),
        }
    }

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

impl HealthModels {
    /// The score `days` before `now` against the score now. Scores are computed from the
    /// facts as of each instant (events, answers, tickets and subscriptions carry their
    /// business time), so the past score is what the model said then — except for traits,
    /// of which only the current value is kept.
    pub fn trend(&self, state: &CustomerState, names: &NameTable, now: Millis, days: u32) -> Trend {
        let current = self.score(state, names, now).score;
        let previous = self
            .score(
                state,
                names,
                now - i64::from(days) * crate::time::MILLIS_PER_DAY,
            )
            .score;
        let direction = match (current, previous) {
            (Some(c), Some(p)) if c - p >= TREND_TOLERANCE => Direction::Up,
            (Some(c), Some(p)) if p - c >= TREND_TOLERANCE => Direction::Down,
            _ => Direction::Same,
        };
        Trend {
            days,
            previous_score: previous,
            direction,
        }
    }

    /// Scores every `step_days` back from `now`, `points` of them, oldest first.
    pub fn history(
        &self,
        state: &CustomerState,
        names: &NameTable,
        now: Millis,
        points: u32,
        step_days: u32,
    ) -> Vec<HistoryPoint> {
        (0..points)
            .rev()
            .map(|k| {
                let at = now - i64::from(k * step_days) * crate::time::MILLIS_PER_DAY;
                let s = self.score(state, names, at);
                HistoryPoint {
                    at,
                    score: s.score,
                    grade: s.grade,
                }
            })
            .collect()
    }
}

impl Bands {
    pub fn grade(&self, score: f64) -> Grade {
        if score >= self.green_from {
            Grade::Green
        } else if score >= self.yellow_from {
            Grade::Yellow
        } else {
            Grade::Red
        }
    }
}

impl Scale {
    pub fn score(&self, value: f64) -> f64 {
        match self {
            Scale::Thresholds { steps } => steps
                .iter()
                .rev()
                .find(|[at_least, _]| value >= *at_least)
                .or(steps.first())
                .map_or(0.0, |[_, s]| *s),
            Scale::Curve { points } => {
                let i = points.partition_point(|[x, _]| *x <= value);
                match (i.checked_sub(1).map(|k| points[k]), points.get(i).copied()) {
                    (Some([x0, y0]), Some([x1, y1])) => y0 + (y1 - y0) * (value - x0) / (x1 - x0),
                    (Some([_, y]), None) | (None, Some([_, y])) => y,
                    (None, None) => 0.0,
                }
            }
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

/// The workspace's current customers by grade, and those at risk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthOverview {
    /// The model, or the models tried in order joined by ` + ` (docs/health.md).
    pub model: String,
    #[serde(with = "crate::time::iso")]
    pub as_of: Millis,
    /// Current customers (paying a subscription now, or with an order in the last 365
    /// days) that have a score.
    pub customers: usize,
    pub red: usize,
    pub yellow: usize,
    pub green: usize,
    /// Red customers, lowest score first (at most the limit asked for).
    pub at_risk: Vec<AtRisk>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtRisk {
    pub customer_id: String,
    pub user_id: Option<String>,
    pub score: f64,
    /// The components that cost the most points, most first (at most two).
    pub reasons: Vec<Reason>,
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

impl HealthModels {
    /// Scores the current customers at `now`: counts by grade and the `limit` red ones with
    /// the lowest scores, with their reasons.
    pub fn overview<'a>(
        &self,
        customers: impl Iterator<Item = &'a CustomerState>,
        names: &NameTable,
        now: Millis,
        limit: usize,
    ) -> HealthOverview {
        let year_ago = now - 365 * crate::time::MILLIS_PER_DAY;
        let mut overview = HealthOverview {
            model: self
                .models()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            as_of: now,
            customers: 0,
            red: 0,
            yellow: 0,
            green: 0,
            at_risk: Vec::new(),
        };
        let states: Vec<&CustomerState> = customers.collect();
        // Every current customer scored in parallel (there is no stored score to go stale);
        // the breakdown only for those listed.
        let scored: Vec<(&CustomerState, f64, Grade)> = states
            .par_iter()
            .filter(|state| {
                state.paying_at(now) || state.orders.iter().any(|o| o.at > year_ago && o.at <= now)
            })
            .filter_map(|state| match self.grade(state, names, now) {
                (Some(score), Some(grade)) => Some((*state, score, grade)),
                _ => None,
            })
            .collect();
        let mut red: Vec<(f64, &CustomerState)> = Vec::new();
        for (state, score, grade) in scored {
            overview.customers += 1;
            match grade {
                Grade::Red => {
                    overview.red += 1;
                    red.push((score, state));
                }
                Grade::Yellow => overview.yellow += 1,
                Grade::Green => overview.green += 1,
            }
        }
        // Only the `limit` lowest are listed: select them, then order those.
        let lowest = |a: &(f64, &CustomerState), b: &(f64, &CustomerState)| {
            a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id))
        };
        if limit > 0 && red.len() > limit {
            red.select_nth_unstable_by(limit - 1, lowest);
        }
        red.truncate(limit);
        red.sort_by(lowest);
        overview.at_risk = red
            .into_iter()
            .map(|(score, state)| AtRisk {
                customer_id: state.id.to_string(),
                user_id: state.user_id.clone(),
                score,
                reasons: self.score(state, names, now).reasons(2),
            })
            .collect();
        overview
    }
}

/// The health models of a workspace (docs/health.md, "Models per segment"): each customer
/// is scored, at each instant, by the first assigned model whose `applies_to` condition
/// holds then (lowest `priority` first, then by name), else by the default model (the one
/// stored without `applies_to`, or the shipped `saas_default`).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthModels {
    assigned: Vec<Assigned>,
    default: HealthModel,
}

#[derive(Debug, Clone, PartialEq)]
struct Assigned {
    model: HealthModel,
    applies_to: crate::segments::Definition,
    priority: i64,
}

/// A model as stored and sent over the API: the model's JSON, with optional `applies_to`
/// (a segment condition) and `priority` (default 100) beside its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignedModel {
    pub model: HealthModel,
    pub applies_to: Option<crate::segments::Definition>,
    pub priority: i64,
}

impl AssignedModel {
    /// Parses and checks a stored or submitted model. `applies_to` may use any segment
    /// condition that reads neither health (it chooses the model health is computed by)
    /// nor property filters (it is evaluated without the segments' counters).
    pub fn parse(value: &serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(map) = value else {
            return Err("a health model must be a JSON object".into());
        };
        let mut rest = map.clone();
        let applies_to = rest.remove("applies_to");
        let priority = match rest.remove("priority") {
            None => 100,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| "priority: must be a whole number".to_owned())?,
        };
        let model: HealthModel = serde_json::from_value(serde_json::Value::Object(rest))
            .map_err(|e| format!("not a health model: {e}"))?;
        model.validate()?;
        if model.name.trim().is_empty() {
            return Err("name: must not be empty".into());
        }
        let applies_to = applies_to
            .map(|v| {
                let d = crate::segments::Definition::parse(&v)
                    .map_err(|e| e.replacen("definition", "applies_to", 1))?;
                if d.alert.is_some() {
                    return Err("applies_to.alert: an alert belongs to a segment".to_owned());
                }
                if !d.slots.is_empty() {
                    return Err("applies_to: property filters (`where`) are not allowed here".to_owned());
                }
                if d.reads_daily_values() {
                    return Err("applies_to: cannot read p_alive, predicted_clv or revenue_percentile (the day's table is not consulted when a health model is chosen)".to_owned());
                }
                if d.reads_health() {
                    return Err("applies_to: cannot read health (health, grade, health_band, health_drop): it chooses the model health is computed by".to_owned());
                }
                Ok(d)
            })
            .transpose()?;
        Ok(Self {
            model,
            applies_to,
            priority,
        })
    }
}

impl Default for HealthModels {
    fn default() -> Self {
        Self::single(HealthModel::saas_default())
    }
}

impl HealthModels {
    /// One model for every customer.
    pub fn single(model: HealthModel) -> Self {
        Self {
            assigned: Vec::new(),
            default: model,
        }
    }

    /// The set from its models; refuses two defaults (models without `applies_to`).
    pub fn new(models: Vec<AssignedModel>) -> Result<Self, String> {
        let mut default = None;
        let mut assigned = Vec::new();
        for m in models {
            match m.applies_to {
                None => {
                    if let Some(HealthModel { name, .. }) = &default {
                        return Err(format!(
                            "`{}` and `{name}` both apply to every customer: give one an `applies_to`",
                            m.model.name
                        ));
                    }
                    default = Some(m.model);
                }
                Some(applies_to) => assigned.push(Assigned {
                    model: m.model,
                    applies_to,
                    priority: m.priority,
                }),
            }
        }
        assigned.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| a.model.name.cmp(&b.model.name))
        });
        Ok(Self {
            assigned,
            default: default.unwrap_or_else(HealthModel::saas_default),
        })
    }

    /// What an `applies_to` condition is evaluated over (it reads neither health nor
    /// counters, so `health` and `slots` are never consulted).
    fn subject<'a>(
        &'a self,
        state: &'a CustomerState,
        names: &'a NameTable,
    ) -> crate::segments::eval::Subject<'a> {
        crate::segments::eval::Subject {
            state,
            names,
            health: self,
            risk: None,
            daily: None,
            slots: &[],
        }
    }

    /// The model that scores the customer at `at`.
    pub fn model_for(&self, state: &CustomerState, names: &NameTable, at: Millis) -> &HealthModel {
        let subject = self.subject(state, names);
        self.assigned
            .iter()
            .find(|a| crate::segments::eval::holds(&a.applies_to.condition, &subject, at))
            .map_or(&self.default, |a| &a.model)
    }

    /// The earliest instant after `at` at which the model chosen for the customer can change
    /// without an event (the segments' health timers include it).
    pub fn next_assignment_change(
        &self,
        state: &CustomerState,
        names: &NameTable,
        at: Millis,
    ) -> Option<Millis> {
        let subject = self.subject(state, names);
        self.assigned
            .iter()
            .filter_map(|a| {
                crate::segments::eval::next_change(&a.applies_to.condition, &subject, at)
            })
            .filter(|t| *t > at)
            .min()
    }

    pub fn is_single(&self) -> bool {
        self.assigned.is_empty()
    }

    /// Every model, assigned ones first in the order they are tried, the default last.
    pub fn models(&self) -> impl Iterator<Item = &HealthModel> {
        self.assigned
            .iter()
            .map(|a| &a.model)
            .chain(std::iter::once(&self.default))
    }

    pub fn grade(
        &self,
        state: &CustomerState,
        names: &NameTable,
        now: Millis,
    ) -> (Option<f64>, Option<Grade>) {
        self.model_for(state, names, now).grade(state, names, now)
    }

    pub fn score(&self, state: &CustomerState, names: &NameTable, now: Millis) -> HealthScore {
        self.model_for(state, names, now).score(state, names, now)
    }
}
