//! The segment definition language: a JSON condition tree, parsed into [`Condition`] with
//! errors that name the path of the offending node (`all[1].performed.within_days`).
//!
//! The format, with examples, is documented in `docs/segments.md`.

use serde_json::{Map, Value};

use crate::semantic::OPERATOR_EVENTS;
use crate::time::{day_of, parse_instant};

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
    fn parse(text: &str) -> Option<Self> {
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
    const NAMES: [(&'static str, Computed); 13] = [
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
    /// Parses a definition's condition (the `definition` field of the API). The top object
    /// may also name an alert, `"alert": "At Risk Entered"` or `"Health Changed"`: every
    /// entry then appends that event too.
    pub fn parse(value: &Value) -> Result<Definition, String> {
        let mut slots = Vec::new();
        let (value, alert) = match value {
            Value::Object(map) if map.contains_key("alert") => {
                let alert = match map.get("alert") {
                    Some(Value::String(name)) => ALERT_EVENTS
                        .iter()
                        .find(|a| **a == name.as_str())
                        .copied()
                        .ok_or_else(|| {
                            format!(
                                "definition.alert: `{name}` is not an alert event (one of {})",
                                ALERT_EVENTS.map(|a| format!("`{a}`")).join(", ")
                            )
                        })?,
                    _ => {
                        return Err(format!(
                            "definition.alert: must be one of {}",
                            ALERT_EVENTS.map(|a| format!("`{a}`")).join(", ")
                        ));
                    }
                };
                let mut rest = map.clone();
                rest.remove("alert");
                (Value::Object(rest), Some(alert))
            }
            _ => (value.clone(), None),
        };
        let condition = parse_condition(&value, "definition", 0, &mut slots)?;
        Ok(Definition {
            condition,
            slots,
            alert,
        })
    }

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

/// Deepest nesting accepted (a guard against pathological input, not a practical limit).
const MAX_DEPTH: usize = 32;

const CONDITION_KEYS: &str = "all, any, not, trait, computed, performed, not_performed, \
                              first_performed, last_performed, sequence, health_band or health_drop";

fn parse_condition(
    value: &Value,
    at: &str,
    depth: usize,
    slots: &mut Vec<(String, Vec<(String, Test)>)>,
) -> Result<Condition, String> {
    if depth > MAX_DEPTH {
        return Err(format!("{at}: nested deeper than {MAX_DEPTH} levels"));
    }
    let Value::Object(map) = value else {
        return Err(format!(
            "{at}: a condition must be a JSON object with one of {CONDITION_KEYS}"
        ));
    };
    let kinds: Vec<&str> = [
        "all",
        "any",
        "not",
        "trait",
        "computed",
        "performed",
        "not_performed",
        "first_performed",
        "last_performed",
        "sequence",
        "health_band",
        "health_drop",
    ]
    .into_iter()
    .filter(|k| map.contains_key(*k))
    .collect();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "{at}: a condition needs one of {CONDITION_KEYS} (found {})",
                keys(map)
            ));
        }
        many => {
            return Err(format!(
                "{at}: a condition has exactly one of {CONDITION_KEYS}; this one has {}",
                many.join(" and ")
            ));
        }
    };
    let here = format!("{at}.{kind}");
    match kind {
        "all" | "any" => {
            only(map, at, &[kind])?;
            let Some(items) = map[kind].as_array() else {
                return Err(format!("{here}: must be an array of conditions"));
            };
            if items.is_empty() {
                return Err(format!("{here}: must hold at least one condition"));
            }
            let parsed = items
                .iter()
                .enumerate()
                .map(|(i, c)| parse_condition(c, &format!("{here}[{i}]"), depth + 1, slots))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if kind == "all" {
                Condition::All(parsed)
            } else {
                Condition::Any(parsed)
            })
        }
        "not" => {
            only(map, at, &["not"])?;
            Ok(Condition::Not(Box::new(parse_condition(
                &map["not"],
                &here,
                depth + 1,
                slots,
            )?)))
        }
        "trait" => {
            only(map, at, &["trait", "op", "value"])?;
            let key = text(&map["trait"], &here)?;
            Ok(Condition::Trait {
                key,
                test: parse_test(map, at)?,
            })
        }
        "computed" => {
            only(map, at, &["computed", "op", "value"])?;
            let name = text(&map["computed"], &here)?;
            let value = Computed::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| *c)
                .ok_or_else(|| {
                    let known: Vec<&str> = Computed::NAMES.iter().map(|(n, _)| *n).collect();
                    format!(
                        "{here}: unknown value `{name}`: expected one of {}",
                        known.join(", ")
                    )
                })?;
            Ok(Condition::Computed {
                value,
                test: parse_test(map, at)?,
            })
        }
        "performed" | "not_performed" => {
            let negative = kind == "not_performed";
            only(
                map,
                at,
                if negative {
                    &["not_performed", "where", "within_days"]
                } else {
                    &[
                        "performed",
                        "where",
                        "within_days",
                        "at_least",
                        "at_most",
                        "exactly",
                    ]
                },
            )?;
            let event = event_name(&map[kind], &here)?;
            let window = match map.get("within_days") {
                None => Window::Ever,
                Some(v) => Window::LastDays(positive(v, &format!("{at}.within_days"))?),
            };
            let counts: Vec<Count> = [
                ("at_least", Count::AtLeast as fn(u32) -> Count),
                ("at_most", Count::AtMost),
                ("exactly", Count::Exactly),
            ]
            .into_iter()
            .filter_map(|(k, f)| map.get(k).map(|v| (k, v, f)))
            .map(|(k, v, f)| count(v, &format!("{at}.{k}")).map(f))
            .collect::<Result<_, _>>()?;
            let count = match counts.as_slice() {
                [] if negative => Count::Exactly(0),
                [] => Count::AtLeast(1),
                [one] => *one,
                _ => {
                    return Err(format!(
                        "{at}: use one of at_least, at_most and exactly, not several"
                    ));
                }
            };
            let filters = match map.get("where") {
                None => Vec::new(),
                Some(v) => parse_filters(v, &format!("{at}.where"))?,
            };
            let slot = (!filters.is_empty()).then(|| {
                slots.push((event.clone(), filters.clone()));
                slots.len() - 1
            });
            Ok(Condition::Performed {
                event,
                filters,
                count,
                window,
                slot,
            })
        }
        "first_performed" | "last_performed" => {
            only(map, at, &[kind, "before", "since", "within_days"])?;
            let event = event_name(&map[kind], &here)?;
            let whens: Vec<When> = ["before", "since", "within_days"]
                .into_iter()
                .filter_map(|k| map.get(k).map(|v| (k, v)))
                .map(|(k, v)| {
                    let path = format!("{at}.{k}");
                    match k {
                        "within_days" => positive(v, &path).map(When::WithinDays),
                        _ => {
                            let day = date(v, &path)?;
                            Ok(if k == "before" {
                                When::Before(day)
                            } else {
                                When::Since(day)
                            })
                        }
                    }
                })
                .collect::<Result<_, _>>()?;
            let when = match whens.as_slice() {
                [one] => *one,
                [] => {
                    return Err(format!(
                        "{at}: `{kind}` needs one of before (a date), since (a date) or within_days"
                    ));
                }
                _ => {
                    return Err(format!(
                        "{at}: use one of before, since and within_days, not several"
                    ));
                }
            };
            Ok(if kind == "first_performed" {
                Condition::FirstPerformed { event, when }
            } else {
                Condition::LastPerformed { event, when }
            })
        }
        "sequence" => {
            only(map, at, &["sequence", "within_days"])?;
            let pair = map["sequence"].as_array().filter(|a| a.len() == 2);
            let Some(pair) = pair else {
                return Err(format!(
                    "{here}: must be two event names, [\"first\", \"then\"]"
                ));
            };
            let first = event_name(&pair[0], &format!("{here}[0]"))?;
            let then = event_name(&pair[1], &format!("{here}[1]"))?;
            let within_days = match map.get("within_days") {
                Some(v) => count(v, &format!("{at}.within_days"))?,
                None => {
                    return Err(format!(
                        "{at}: `sequence` needs within_days (0 = the same day)"
                    ));
                }
            };
            Ok(Condition::Sequence {
                first,
                then,
                within_days,
            })
        }
        "health_band" => {
            only(map, at, &["health_band", "for_days"])?;
            let grade = match map["health_band"].as_str() {
                Some("red") => crate::health::model::Grade::Red,
                Some("yellow") => crate::health::model::Grade::Yellow,
                Some("green") => crate::health::model::Grade::Green,
                _ => return Err(format!("{here}: must be red, yellow or green")),
            };
            let for_days = match map.get("for_days") {
                Some(v) => positive(v, &format!("{at}.for_days"))?,
                None => 1,
            };
            if for_days > 90 {
                return Err(format!("{at}.for_days: at most 90"));
            }
            Ok(Condition::HealthBand { grade, for_days })
        }
        "health_drop" => {
            only(map, at, &["health_drop", "within_days"])?;
            let points = map["health_drop"]
                .as_f64()
                .filter(|p| *p > 0.0 && *p <= 100.0)
                .ok_or_else(|| format!("{here}: points, a number above 0 and at most 100"))?;
            let within_days = match map.get("within_days") {
                Some(v) => positive(v, &format!("{at}.within_days"))?,
                None => return Err(format!("{at}: `health_drop` needs within_days")),
            };
            Ok(Condition::HealthDrop {
                points,
                within_days,
            })
        }
        _ => unreachable!("kinds are filtered from the list above"),
    }
}

fn keys(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        "an empty object".into()
    } else {
        map.keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn only(map: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{at}.{k}: not a field of this condition (allowed: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn text(v: &Value, at: &str) -> Result<String, String> {
    match v.as_str().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => Err(format!("{at}: must be a non-empty string")),
    }
}

fn event_name(v: &Value, at: &str) -> Result<String, String> {
    let name = text(v, at)?;
    if SEGMENT_EVENTS.contains(&name.as_str()) || OPERATOR_EVENTS.contains(&name.as_str()) {
        return Err(format!(
            "{at}: `{name}` is an event Tenure or an operator records about the customer, not the customer's behaviour; segments cannot use it"
        ));
    }
    Ok(name)
}

fn count(v: &Value, at: &str) -> Result<u32, String> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{at}: must be a whole number ≥ 0, got {v}"))
}

fn positive(v: &Value, at: &str) -> Result<u32, String> {
    match count(v, at)? {
        0 => Err(format!("{at}: must be at least 1")),
        n if n > 36_500 => Err(format!("{at}: at most 36500 days")),
        n => Ok(n),
    }
}

fn date(v: &Value, at: &str) -> Result<i32, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{at}: must be a date, e.g. \"2026-06-01\""))?;
    let is_date = s.len() == 10 && s.as_bytes().get(4) == Some(&b'-');
    match parse_instant(s) {
        Some(ms) if is_date => Ok(day_of(ms)),
        _ => Err(format!(
            "{at}: `{s}` is not a date (YYYY-MM-DD; windows are whole UTC days)"
        )),
    }
}

fn parse_test(map: &Map<String, Value>, at: &str) -> Result<Test, String> {
    let op_text = match map.get("op") {
        Some(v) => v
            .as_str()
            .ok_or_else(|| format!("{at}.op: must be a string"))?,
        None => return Err(format!("{at}: missing `op`")),
    };
    let op = Op::parse(op_text).ok_or_else(|| {
        format!(
            "{at}.op: unknown operator `{op_text}`: expected eq, ne, gt, gte, lt, lte, in, contains, exists or not_exists"
        )
    })?;
    let value = map.get("value").cloned();
    let value = match (op, value) {
        (Op::Exists | Op::NotExists, None) => Value::Null,
        (Op::Exists | Op::NotExists, Some(_)) => {
            return Err(format!("{at}.value: `{op_text}` takes no value"));
        }
        (_, None) => return Err(format!("{at}: `{op_text}` needs a `value`")),
        (Op::In, Some(v)) if !v.is_array() => {
            return Err(format!("{at}.value: `in` needs an array of values"));
        }
        (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(v)) if !(v.is_number() || v.is_string()) => {
            return Err(format!(
                "{at}.value: `{op_text}` compares with a number or a string, got {v}"
            ));
        }
        (_, Some(v)) => v,
    };
    Ok(Test { op, value })
}

fn parse_filters(v: &Value, at: &str) -> Result<Vec<(String, Test)>, String> {
    let Some(items) = v.as_array() else {
        return Err(format!(
            "{at}: must be an array of property filters, e.g. [{{\"property\": \"plan\", \"op\": \"eq\", \"value\": \"pro\"}}]"
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let here = format!("{at}[{i}]");
            let Value::Object(map) = f else {
                return Err(format!("{here}: a property filter must be an object"));
            };
            only(map, &here, &["property", "op", "value"])?;
            let key = match map.get("property") {
                Some(p) => text(p, &format!("{here}.property"))?,
                None => return Err(format!("{here}: missing `property`")),
            };
            Ok((key, parse_test(map, &here)?))
        })
        .collect()
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
