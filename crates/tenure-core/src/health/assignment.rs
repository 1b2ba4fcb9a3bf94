//! Which model scores a customer: a workspace's health models, each tried in order by its
//! `applies_to` segment condition, the default last (docs/health.md, "Models per segment"),
//! and a customer's score trend and history under them.
//!
//! Choosing a model evaluates a segment condition, and a segment condition can read health:
//! segments see health through [`HealthSource`](crate::segments::eval::HealthSource), which
//! this module implements, so neither module imports the other in a circle.

use super::model::{Grade, HealthModel};
use super::score::{Direction, HealthScore, HistoryPoint, TREND_TOLERANCE, Trend};
use crate::customer::CustomerState;
use crate::names::NameTable;
use crate::segments::definition::Definition;
use crate::segments::eval::{HealthSource, Subject, holds, next_change};
use crate::time::Millis;

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
    applies_to: Definition,
    priority: i64,
}

/// A model as stored and sent over the API: the model's JSON, with optional `applies_to`
/// (a segment condition) and `priority` (default 100) beside its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignedModel {
    pub model: HealthModel,
    pub applies_to: Option<Definition>,
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
                let d = Definition::parse(&v)
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
    fn subject<'a>(&'a self, state: &'a CustomerState, names: &'a NameTable) -> Subject<'a> {
        Subject {
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
            .find(|a| holds(&a.applies_to.condition, &subject, at))
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
            .filter_map(|a| next_change(&a.applies_to.condition, &subject, at))
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

impl HealthSource for HealthModels {
    fn grade(
        &self,
        state: &CustomerState,
        names: &NameTable,
        at: Millis,
    ) -> (Option<f64>, Option<Grade>) {
        HealthModels::grade(self, state, names, at)
    }

    fn is_single(&self) -> bool {
        HealthModels::is_single(self)
    }

    fn next_assignment_change(
        &self,
        state: &CustomerState,
        names: &NameTable,
        at: Millis,
    ) -> Option<Millis> {
        HealthModels::next_assignment_change(self, state, names, at)
    }
}
