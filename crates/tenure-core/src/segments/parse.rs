//! The parser of the definition language: one function per kind of node, each naming the
//! path of what it refuses (`all[1].performed.within_days`). The language is documented in
//! docs/segments.md; the types it builds are in [`super::definition`].

use serde_json::{Map, Value};

use super::definition::{
    ALERT_EVENTS, Computed, Condition, Count, Definition, Op, SEGMENT_EVENTS, Test, When, Window,
};
use crate::semantic::OPERATOR_EVENTS;
use crate::time::{day_of, parse_instant};

/// The counter slots of a definition: (event, property filters) per filtered leaf.
pub(super) type Slots = Vec<(String, Vec<(String, Test)>)>;

/// A node being parsed: its object, its kind (the key that names it), its path and the
/// path of its kind's value.
#[derive(Clone, Copy)]
struct Node<'a> {
    map: &'a Map<String, Value>,
    kind: &'a str,
    at: &'a str,
    here: &'a str,
}

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
}

/// Deepest nesting accepted (a guard against pathological input, not a practical limit).
const MAX_DEPTH: usize = 32;

const CONDITION_KEYS: &str = "all, any, not, trait, computed, performed, not_performed, \
                              first_performed, last_performed, sequence, health_band or health_drop";

/// A condition at path `at`, `depth` levels down; property filters get a counter slot in
/// `slots`. Dispatches on the node's one key to the parser of that kind.
pub(super) fn parse_condition(
    value: &Value,
    at: &str,
    depth: usize,
    slots: &mut Slots,
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
    let node = Node {
        map,
        kind,
        at,
        here: &here,
    };
    match kind {
        "all" | "any" => group(&node, depth, slots),
        "not" => not(&node, depth, slots),
        "trait" => trait_test(&node),
        "computed" => computed(&node),
        "performed" | "not_performed" => performed(&node, slots),
        "first_performed" | "last_performed" => first_or_last(&node),
        "sequence" => sequence(&node),
        "health_band" => health_band(&node),
        "health_drop" => health_drop(&node),
        _ => unreachable!("kinds are filtered from the list above"),
    }
}

/// `all` / `any`: a non-empty array of conditions.
fn group(node: &Node<'_>, depth: usize, slots: &mut Slots) -> Result<Condition, String> {
    let Node {
        map,
        kind,
        at,
        here,
    } = *node;
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

/// `not`: one condition.
fn not(node: &Node<'_>, depth: usize, slots: &mut Slots) -> Result<Condition, String> {
    let Node { map, at, here, .. } = *node;
    only(map, at, &["not"])?;
    Ok(Condition::Not(Box::new(parse_condition(
        &map["not"],
        here,
        depth + 1,
        slots,
    )?)))
}

/// `trait` with `op` and `value`.
fn trait_test(node: &Node<'_>) -> Result<Condition, String> {
    let Node { map, at, here, .. } = *node;
    only(map, at, &["trait", "op", "value"])?;
    let key = text(&map["trait"], here)?;
    Ok(Condition::Trait {
        key,
        test: parse_test(map, at)?,
    })
}

/// `computed` (one of [`Computed::NAMES`]) with `op` and `value`.
fn computed(node: &Node<'_>) -> Result<Condition, String> {
    let Node { map, at, here, .. } = *node;
    only(map, at, &["computed", "op", "value"])?;
    let name = text(&map["computed"], here)?;
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

/// `performed` / `not_performed`: an event, counted (`at_least`, `at_most`, `exactly`) ever
/// or `within_days`, optionally filtered by properties (`where`: a counter slot).
fn performed(node: &Node<'_>, slots: &mut Slots) -> Result<Condition, String> {
    let Node {
        map,
        kind,
        at,
        here,
    } = *node;
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
    let event = event_name(&map[kind], here)?;
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

/// `first_performed` / `last_performed`: an event, `before` or `since` a date or `within_days`.
fn first_or_last(node: &Node<'_>) -> Result<Condition, String> {
    let Node {
        map,
        kind,
        at,
        here,
    } = *node;
    only(map, at, &[kind, "before", "since", "within_days"])?;
    let event = event_name(&map[kind], here)?;
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

/// `sequence`: two events, the second within `within_days` of the first.
fn sequence(node: &Node<'_>) -> Result<Condition, String> {
    let Node { map, at, here, .. } = *node;
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

/// `health_band`: a grade held for `for_days` (default 1, at most 90).
fn health_band(node: &Node<'_>) -> Result<Condition, String> {
    let Node { map, at, here, .. } = *node;
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

/// `health_drop`: points lost within `within_days`.
fn health_drop(node: &Node<'_>) -> Result<Condition, String> {
    let Node { map, at, here, .. } = *node;
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
