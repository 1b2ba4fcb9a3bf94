//! The segment definition language: a JSON condition tree, parsed into [`Condition`] with
//! errors that name the path of the offending node (`all[1].performed.within_days`).
//!
//! The format, with examples, is documented in `docs/segments.md`.

use serde_json::Value;

/// Events Tenure appends about segments; a definition may not use them (a segment defined
/// on its own entries could flip for ever).
pub const SEGMENT_EVENTS: [&str; 2] = ["Segment Entered", "Segment Exited"];

/// A comparison of one value (a trait, a property, a computed value) with a constant.
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    pub op: Op,
    /// The constant (`Null` for `exists` / `not_exists`; an array for `in`).
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
    Exists,
    NotExists,
}

impl Op {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "in" => Self::In,
            "contains" => Self::Contains,
            "exists" => Self::Exists,
            "not_exists" => Self::NotExists,
            _ => return None,
        })
    }
}

/// A value Tenure computes from the customer's state at the instant of evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed {
    /// Health score 0–100 under the workspace's health model.
    Health,
    /// `red`, `yellow` or `green`.
    Grade,
    /// Latest NPS answer, 0–10.
    Nps,
    /// `promoter` (9–10), `passive` (7–8), `detractor` (0–6); absent without an answer.
    NpsCategory,
    /// Whole days since the customer was first seen.
    TenureDays,
    /// The plan of each current (trialing or paying) subscription.
    Plan,
    /// MRR in the customer's main currency, minor units.
    Mrr,
    /// `lead`, `trialing`, `active`, `paused` or `churned`.
    Status,
    /// Completed orders so far.
    Orders,
    /// Probability of churning within the horizon under the workspace's churn-risk model
    /// (docs/risk.md); absent without a model or for a customer who is not current.
    Risk,
    /// Probability alive from the order models, as of the day's table (`daily.rs`).
    PAlive,
    /// Predicted 12-month CLV of orders, major units, as of the day's table.
    PredictedClv,
    /// 0–100 rank by trailing-12-month revenue, as of the day's table.
    RevenuePercentile,
}

impl Computed {
    pub(crate) const NAMES: [(&'static str, Computed); 13] = [
        ("health", Self::Health),
        ("grade", Self::Grade),
        ("nps", Self::Nps),
        ("nps_category", Self::NpsCategory),
        ("tenure_days", Self::TenureDays),
        ("plan", Self::Plan),
        ("mrr", Self::Mrr),
        ("status", Self::Status),
        ("orders", Self::Orders),
        ("risk", Self::Risk),
        ("p_alive", Self::PAlive),
        ("predicted_clv", Self::PredictedClv),
        ("revenue_percentile", Self::RevenuePercentile),
    ];

    /// Read from the day's table of values (frozen until the next one).
    pub fn is_daily(self) -> bool {
        matches!(
            self,
            Self::PAlive | Self::PredictedClv | Self::RevenuePercentile
        )
    }
}

/// How many times, for `performed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    AtLeast(u32),
    AtMost(u32),
    Exactly(u32),
}

impl Count {
    pub fn holds(self, n: u64) -> bool {
        match self {
            Self::AtLeast(k) => n >= u64::from(k),
            Self::AtMost(k) => n <= u64::from(k),
            Self::Exactly(k) => n == u64::from(k),
        }
    }
}

/// Which days count. Windows are whole UTC days ending with the day of the instant
/// evaluated, as health windows are: `within_days: 30` is today and the 29 days before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Ever,
    LastDays(u32),
}

/// When a first or last occurrence must fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Strictly before this UTC day.
    Before(i32),
    /// On or after this UTC day.
    Since(i32),
    /// Within the last N days (today and the N − 1 before).
    WithinDays(u32),
}

/// One condition of a definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Trait {
        key: String,
        test: Test,
    },
    Computed {
        value: Computed,
        test: Test,
    },
    /// Performed `event` (optionally only occurrences whose properties pass every filter)
    /// a number of times in a window. `slot` numbers the filtered leaves of a definition:
    /// their occurrences are counted by the segment itself (the customer state keeps no
    /// properties).
    Performed {
        event: String,
        filters: Vec<(String, Test)>,
        count: Count,
        window: Window,
        slot: Option<usize>,
    },
    FirstPerformed {
        event: String,
        when: When,
    },
    LastPerformed {
        event: String,
        when: When,
    },
    /// The health grade has been `grade` at this instant and at the same time of day on
    /// each of the `for_days - 1` days before (hysteresis: a customer who dips into red
    /// for one day does not raise an alert).
    HealthBand {
        grade: crate::health::model::Grade,
        for_days: u32,
    },
    /// The health score is at least `points` lower than `within_days` days earlier.
    HealthDrop {
        points: f64,
        within_days: u32,
    },
    /// Performed `first`, then `then` on the same day or up to `within_days` days later.
    Sequence {
        first: String,
        then: String,
        within_days: u32,
    },
}

/// A parsed definition, with the filtered `performed` leaves it needs counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub condition: Condition,
    /// For each slot: the event and its property filters.
    pub slots: Vec<(String, Vec<(String, Test)>)>,
    /// The alert event each entry also appends (`"alert"` beside the top condition).
    pub alert: Option<&'static str>,
}

/// The events an alert may raise (operator events: never the customer's activity).
pub const ALERT_EVENTS: [&str; 2] = ["At Risk Entered", "Health Changed"];

impl Definition {
    /// Whether any condition reads health (the score, the grade, a band or a drop).
    pub fn reads_health(&self) -> bool {
        fn reads(c: &Condition) -> bool {
            match c {
                Condition::All(cs) | Condition::Any(cs) => cs.iter().any(reads),
                Condition::Not(c) => reads(c),
                Condition::HealthBand { .. } | Condition::HealthDrop { .. } => true,
                Condition::Computed { value, .. } => {
                    matches!(value, Computed::Health | Computed::Grade)
                }
                _ => false,
            }
        }
        reads(&self.condition)
    }

    /// Whether any condition reads the day's table of values (`p_alive`, `predicted_clv`,
    /// `revenue_percentile`): the shell makes sure today's table is there before it
    /// evaluates the definition.
    pub fn reads_daily_values(&self) -> bool {
        fn reads(c: &Condition) -> bool {
            match c {
                Condition::All(cs) | Condition::Any(cs) => cs.iter().any(reads),
                Condition::Not(c) => reads(c),
                Condition::Computed { value, .. } => value.is_daily(),
                _ => false,
            }
        }
        reads(&self.condition)
    }

    /// Every event name the definition reads.
    pub fn events(&self) -> Vec<&str> {
        let mut out = Vec::new();
        collect_events(&self.condition, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn collect_events<'a>(c: &'a Condition, out: &mut Vec<&'a str>) {
    match c {
        Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| collect_events(c, out)),
        Condition::Not(c) => collect_events(c, out),
        Condition::Performed { event, .. }
        | Condition::FirstPerformed { event, .. }
        | Condition::LastPerformed { event, .. } => out.push(event),
        Condition::Sequence { first, then, .. } => {
            out.push(first);
            out.push(then);
        }
        Condition::Trait { .. }
        | Condition::Computed { .. }
        | Condition::HealthBand { .. }
        | Condition::HealthDrop { .. } => {}
    }
}

/// Whether a value (`None`: absent) passes a test.
pub fn passes(test: &Test, value: Option<&Value>) -> bool {
    let value = value.filter(|v| !v.is_null());
    match (test.op, value) {
        (Op::Exists, v) => v.is_some(),
        (Op::NotExists, v) => v.is_none(),
        (Op::Ne, None) => true,
        (_, None) => false,
        (Op::Eq, Some(v)) => same(v, &test.value),
        (Op::Ne, Some(v)) => !same(v, &test.value),
        (Op::In, Some(v)) => test
            .value
            .as_array()
            .is_some_and(|a| a.iter().any(|c| same(v, c))),
        (Op::Contains, Some(Value::String(s))) => {
            test.value.as_str().is_some_and(|c| s.contains(c))
        }
        (Op::Contains, Some(Value::Array(items))) => items.iter().any(|i| same(i, &test.value)),
        (Op::Contains, Some(_)) => false,
        (op @ (Op::Gt | Op::Gte | Op::Lt | Op::Lte), Some(v)) => {
            let ordering = match (v, &test.value) {
                (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
                (a, b) => match (number(a), number(b)) {
                    (Some(a), Some(b)) => a.partial_cmp(&b),
                    _ => None,
                },
            };
            ordering.is_some_and(|o| match op {
                Op::Gt => o.is_gt(),
                Op::Gte => o.is_ge(),
                Op::Lt => o.is_lt(),
                _ => o.is_le(),
            })
        }
    }
}

/// A number, or a string holding one (traits often arrive as text).
fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => a.as_f64() == b.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(v: Value) -> String {
        Definition::parse(&v).unwrap_err()
    }

    #[test]
    fn errors_name_the_path_of_the_bad_node() {
        assert_eq!(
            error(
                json!({"all": [{"trait": "plan", "op": "eq", "value": "pro"}, {"performed": "Login", "within_days": 0}]})
            ),
            "definition.all[1].within_days: must be at least 1"
        );
        assert!(error(json!({"any": []})).contains("definition.any: must hold at least one"));
        assert!(
            error(json!({"trait": "x", "op": "like", "value": 1}))
                .contains("definition.op: unknown operator `like`")
        );
        assert!(
            error(json!({"computed": "p_live", "op": "gt", "value": 0.5}))
                .contains("unknown value `p_live`: expected one of health")
        );
        assert!(error(json!({"performed": "Segment Entered"})).contains("segments cannot use it"));
        assert!(
            error(json!({"performed": "A", "at_least": 1, "exactly": 2})).contains("not several")
        );
        assert!(error(json!({"first_performed": "A", "before": "June"})).contains("is not a date"));
        assert!(
            error(json!({"not": {"trait": "a", "op": "exists"}, "all": []}))
                .contains("exactly one of")
        );
        assert!(
            error(json!({"performed": "A", "where": [{"property": "p", "op": "in", "value": 3}]}))
                .contains("definition.where[0].value: `in` needs an array")
        );
        assert!(
            error(json!({"performed": "A", "whithin_days": 3}))
                .contains("definition.whithin_days: not a field")
        );
    }

    #[test]
    fn filtered_leaves_get_slots_in_order() {
        let d = Definition::parse(&json!({"any": [
            {"performed": "A", "where": [{"property": "p", "op": "eq", "value": 1}]},
            {"performed": "B"},
            {"not": {"performed": "C", "where": [{"property": "q", "op": "exists"}], "within_days": 7}}
        ]}))
        .unwrap();
        assert_eq!(d.slots.len(), 2);
        assert_eq!(d.slots[1].0, "C");
        assert_eq!(d.events(), vec!["A", "B", "C"]);
    }

    #[test]
    fn tests_compare_like_their_documentation_says() {
        let t = |op, value| Test { op, value };
        assert!(passes(&t(Op::Eq, json!(3)), Some(&json!(3.0))));
        assert!(passes(&t(Op::Ne, json!("pro")), None));
        assert!(!passes(&t(Op::Eq, json!("pro")), None));
        assert!(passes(&t(Op::Gte, json!(10)), Some(&json!("12"))));
        assert!(passes(
            &t(Op::Lt, json!("2026-02-01")),
            Some(&json!("2026-01-15"))
        ));
        assert!(passes(&t(Op::In, json!(["a", "b"])), Some(&json!("b"))));
        assert!(passes(
            &t(Op::Contains, json!("corp")),
            Some(&json!("acme corp"))
        ));
        assert!(passes(
            &t(Op::Contains, json!("x")),
            Some(&json!(["x", "y"]))
        ));
        assert!(passes(&t(Op::NotExists, Value::Null), Some(&Value::Null)));
    }
}
