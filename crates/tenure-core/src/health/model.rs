//! A health model as written in JSON (docs/health.md): components, each a metric read from
//! the customer's state and a scale that maps it to 0–100, weights and grade bands; its
//! validation and the shipped default. What it reads and how it scores is in
//! [`super::score`].

use serde::{Deserialize, Serialize};

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
