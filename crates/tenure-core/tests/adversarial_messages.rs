//! Property test of the message parser on generated malformed and adversarial messages:
//! control characters (NUL included), huge and fractional numbers, deep nesting, odd
//! strings, wrong types, for every message type and both doors (the API's `parse`, a file's
//! `parse_recorded`). It never panics; a refusal names a field for every error (the whole
//! message only for "not an object" and "too large"); what it accepts is storable on both
//! backends (no control character in a column) and reads back from the log unchanged.
#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value, json};
use tenure_core::random::Rng;
use tenure_core::time::parse_instant;
use tenure_core::{Envelope, LogColumns, Message, MessageType, Recorded};

const CASES: u64 = 6_000;

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len() as u64) as usize]
}

/// A string meant to break things.
fn nasty_string(rng: &mut Rng) -> String {
    let pieces = [
        "",
        " ",
        "   ",
        "\u{0}",
        "a\u{0}b",
        "\u{7}",
        "\n",
        "\r\n",
        "\t",
        "\u{1b}[31m",
        "\u{feff}",
        "\u{202e}",
        "ユーザー",
        "🙂",
        "\u{10ffff}",
        "\"",
        "\\",
        "'; DROP TABLE events; --",
        "Order Completed",
        "Subscription Started",
        "Segment Entered",
        "USD",
        "XYZ",
        "usd",
        "2024-05-01T12:00:00Z",
        "1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "soon",
        "2024-02-30T00:00:00Z",
        "tenure:seg_1.v1:cus_x:in:1",
    ];
    let mut s = String::new();
    for _ in 0..rng.below(4) {
        let piece = pick(rng, &pieces);
        s.push_str(piece);
    }
    if rng.chance(0.05) {
        s.push_str(&"x".repeat(rng.below(400) as usize));
    }
    s
}

fn nasty_number(rng: &mut Rng) -> Value {
    let texts = [
        "0",
        "-1",
        "1.5",
        "1e308",
        "-1e308",
        "9007199254740993",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345678901234567890",
        "-9223372036854775808",
        "1e-320",
        "90000000000000.005",
        "0.0000001",
    ];
    let text = pick(rng, &texts);
    serde_json::from_str(text).unwrap()
}

fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for i in 0..depth {
        v = if i % 2 == 0 {
            json!([v])
        } else {
            json!({ "k": v })
        };
    }
    v
}

fn nasty_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 2 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(0.5)),
        2 => nasty_number(rng),
        3 | 4 => Value::String(nasty_string(rng)),
        5 => (0..rng.below(4))
            .map(|_| nasty_value(rng, depth + 1))
            .collect(),
        6 => {
            let mut m = Map::new();
            for _ in 0..rng.below(4) {
                m.insert(nasty_string(rng), nasty_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => nested(rng.below(200) as usize),
    }
}

/// A message that is often almost right, with one or more fields made hostile.
fn nasty_message(rng: &mut Rng) -> Value {
    let types = [
        "identify", "track", "page", "screen", "group", "alias", "Track", "", "purchase",
    ];
    let events = [
        "Order Completed",
        "Order Refunded",
        "Subscription Started",
        "Subscription Changed",
        "Subscription Cancelled",
        "Survey Responded",
        "Referral Code Used",
        "Logged In",
        "Health Overridden",
    ];
    let mut m = Map::new();
    m.insert("type".into(), json!(pick(rng, &types)));
    m.insert("userId".into(), json!("u1"));
    m.insert("event".into(), json!(pick(rng, &events)));
    m.insert(
        "properties".into(),
        json!({"order_id": "o1", "revenue": 10, "currency": "USD", "subscription_id": "s1",
               "plan": "pro", "interval": "month", "amount": 10, "survey_id": "nps", "score": 9}),
    );
    m.insert("timestamp".into(), json!("2024-05-01T11:00:00Z"));
    let fields = [
        "type",
        "userId",
        "anonymousId",
        "messageId",
        "previousId",
        "groupId",
        "event",
        "name",
        "timestamp",
        "sentAt",
        "receivedAt",
        "originalTimestamp",
        "properties",
        "traits",
        "context",
        "integrations",
    ];
    for _ in 0..rng.below(3) {
        let field = *pick(rng, &fields);
        let value = nasty_value(rng, 0);
        if field == "properties" && rng.chance(0.5) {
            // Break one property rather than all of them.
            if let Some(Value::Object(p)) = m.get_mut("properties") {
                let key = *pick(
                    rng,
                    &[
                        "revenue", "currency", "amount", "interval", "score", "discount",
                    ],
                );
                p.insert(key.into(), value);
            }
        } else if rng.chance(0.1) {
            m.remove(field);
        } else {
            m.insert(field.into(), value);
        }
    }
    if rng.chance(0.02) {
        m.insert("blob".into(), json!("y".repeat(40_000)));
    }
    if rng.chance(0.03) {
        return nasty_value(rng, 0);
    }
    Value::Object(m)
}

fn storable(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn check(value: Value, outcome: Result<Message, Vec<tenure_core::FieldError>>, case: u64) {
    match outcome {
        Ok(m) => {
            let columns = [
                &m.user_id,
                &m.anonymous_id,
                &m.name,
                &m.previous_id,
                &m.group_id,
            ];
            for text in columns.into_iter().flatten() {
                assert!(storable(text), "case {case}: a column holds {text:?}");
                assert!(
                    !text.trim().is_empty(),
                    "case {case}: a blank id or name {m:?}"
                );
            }
            assert!(storable(&m.message_id), "case {case}");
            let raw = m.raw_json();
            assert!(raw.len() <= tenure_core::message::MAX_MESSAGE_BYTES);
            let columns = LogColumns {
                message_id: m.message_id.clone(),
                kind: m.kind.as_str(),
                name: m.name.clone(),
                user_id: m.user_id.clone(),
                anonymous_id: m.anonymous_id.clone(),
                timestamp: m.timestamp,
                received_at: m.received_at,
                raw: raw.clone(),
            };
            assert_eq!(
                Message::from_log_columns(columns).unwrap(),
                m,
                "case {case}"
            );
            assert_eq!(
                Message::from_log(raw, m.timestamp, m.received_at).unwrap(),
                m,
                "case {case}"
            );
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "case {case}: refused without a reason");
            for e in &errors {
                assert!(!e.message.is_empty(), "case {case}");
                let whole = e.message.contains("must be a JSON object")
                    || e.message.contains("the limit is");
                assert!(
                    !e.field.is_empty() || whole,
                    "case {case}: an error names no field: {e:?} for {value}"
                );
            }
        }
    }
}

#[test]
fn the_parser_never_panics_and_names_a_field_for_every_refusal() {
    let received_at = parse_instant("2024-05-01T12:00:00Z").unwrap();
    let live = Envelope {
        received_at,
        batch_sent_at: None,
    };
    let recorded = Recorded {
        read_at: received_at,
        default_timestamp: None,
    };
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..CASES {
        let mut rng = Rng::derive(16, case);
        let value = nasty_message(&mut rng);
        let implied = *pick(
            &mut rng,
            &[
                None,
                Some(MessageType::Track),
                Some(MessageType::Identify),
                Some(MessageType::Page),
            ],
        );
        let outcome = Message::parse(value.clone(), implied, live);
        match &outcome {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
        check(value.clone(), outcome, case);
        check(
            value.clone(),
            Message::parse_recorded(value, recorded),
            case,
        );
    }
    // The generator must exercise both sides.
    assert!(
        accepted > CASES / 20 && refused > CASES / 20,
        "{accepted} / {refused}"
    );
}

#[test]
fn deep_nesting_in_text_is_an_error_not_a_crash() {
    // serde_json stops at 128 levels: the importer reports it as invalid JSON.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(serde_json::from_str::<Value>(&deep).is_err());
    // Within the limit, a deep property is kept as it is; beyond, it is refused with its
    // field, never stored to read back empty.
    let message =
        json!({"type": "track", "userId": "u", "event": "X", "properties": {"deep": nested(90)}});
    let envelope = Envelope {
        received_at: parse_instant("2024-05-01T12:00:00Z").unwrap(),
        batch_sent_at: None,
    };
    let m = Message::parse(message, None, envelope).unwrap();
    assert_eq!(m.properties().unwrap()["deep"], nested(90));
    let back = Message::from_log(m.raw_json(), m.timestamp, m.received_at).unwrap();
    assert_eq!(back.properties().unwrap()["deep"], nested(90));
    let deeper =
        json!({"type": "track", "userId": "u", "event": "X", "properties": {"deep": nested(127)}});
    let errors = Message::parse(deeper, None, envelope).unwrap_err();
    assert_eq!(errors[0].field, "properties");
}
