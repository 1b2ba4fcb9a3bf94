//! The checks of single fields: names, ids, instants, nesting. Each reports the field it
//! concerns.

use serde_json::{Map, Value};

use super::*;

/// Whether a value has arrays or objects nested `levels` deep or more (a scalar has none).
/// Recursion never goes deeper than `levels`, and nothing is allocated (this runs on every
/// field of every message).
pub(super) fn nested_at_least(value: &Value, levels: usize) -> bool {
    if levels == 0 {
        return true;
    }
    match value {
        Value::Array(items) => items.iter().any(|i| nested_at_least(i, levels - 1)),
        Value::Object(map) => map.values().any(|i| nested_at_least(i, levels - 1)),
        _ => false,
    }
}

/// An event, page or screen name: at most [`MAX_ID_CHARS`] characters, no control
/// characters (a NUL cannot be stored in a PostgreSQL text column, and no name needs one).
pub(super) fn name_field(text: &str, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    if text.chars().count() > MAX_ID_CHARS {
        errors.push(FieldError::new(
            field,
            format!("longer than {MAX_ID_CHARS} characters"),
        ));
        return None;
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        errors.push(FieldError::new(
            field,
            format!(
                "contains the control character U+{:04X}: names are printable text",
                u32::from(c)
            ),
        ));
        return None;
    }
    Some(text.to_owned())
}

/// An identifier field: a non-empty string (whole numbers are accepted and kept as their
/// decimal text, as Segment does), at most [`MAX_ID_CHARS`] characters, not only spaces,
/// without control characters.
pub(super) fn id_field(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let text = match body.get(field)? {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        // Only whole numbers that JSON parsing kept exactly: a fraction, or an integer
        // beyond 64 bits (read as a float), would be stored as a different text, and two
        // distinct ids could merge.
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        Value::Number(n) => {
            errors.push(FieldError::new(
                field,
                format!(
                    "the number {n} is not a whole number that fits in 64 bits: send the id as a string"
                ),
            ));
            return None;
        }
        _ => {
            errors.push(FieldError::new(field, "must be a string"));
            return None;
        }
    };
    if text.is_empty() {
        return None;
    }
    if text.chars().count() > MAX_ID_CHARS {
        errors.push(FieldError::new(
            field,
            format!("longer than {MAX_ID_CHARS} characters"),
        ));
        return None;
    }
    if text.chars().any(char::is_control) {
        errors.push(FieldError::new(field, "contains control characters"));
        return None;
    }
    if text.trim().is_empty() {
        errors.push(FieldError::new(
            field,
            "is only spaces: an id must have a visible character",
        ));
        return None;
    }
    Some(text)
}

pub(super) fn instant_field(
    body: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Millis> {
    match body.get(field)? {
        Value::Null => None,
        Value::String(s) => match parse_instant(s) {
            Some(ms) => Some(ms),
            None => {
                errors.push(FieldError::new(
                    field,
                    format!("`{s}` is not an ISO-8601 date-time (e.g. 2024-05-01T12:00:00Z)"),
                ));
                None
            }
        },
        _ => {
            errors.push(FieldError::new(
                field,
                "must be an ISO-8601 date-time string",
            ));
            None
        }
    }
}
