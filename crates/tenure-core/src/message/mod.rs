//! Segment-compatible messages: parsing and validation at the edge.
//!
//! A [`Message`] can only be built by [`Message::parse`], which checks the Segment HTTP
//! Tracking API's fields (`type`, `userId` / `anonymousId`, `messageId`, `timestamp`,
//! `sentAt`, …), applies the spec's clock-skew correction, and validates the required
//! properties of Tenure's semantic events ([`crate::semantic`]). Every problem is reported
//! with the field it concerns, so the API can say "event 3, `properties.revenue`: …".

use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::field_error::FieldError;
use crate::ids::Fnv128;
use crate::semantic::Semantic;
use crate::time::{MILLIS_PER_DAY, Millis, parse_instant};

mod fields;
mod own;
mod stored;

use fields::*;
pub use stored::LogColumns;

/// Largest accepted message, serialized (Segment's limit).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest accepted batch request body (Segment's limit).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Longest accepted id, event name or message id.
pub const MAX_ID_CHARS: usize = 255;
/// Events stamped earlier than this are refused (1990-01-01T00:00:00Z): such a timestamp is
/// almost always a unit mistake (seconds for milliseconds) or a default value.
pub const EARLIEST_TIMESTAMP: Millis = 631_152_000_000;
/// Deepest nesting of arrays and objects accepted in a message. The log's reader (serde_json)
/// stops at 128 levels, so a deeper message would be stored but read back empty.
pub const MAX_DEPTH: usize = 100;
/// How far in the future (after clock-skew correction) a timestamp may lie.
pub const MAX_FUTURE: Millis = MILLIS_PER_DAY;

/// The six Segment message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl MessageType {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "identify" => Self::Identify,
            "track" => Self::Track,
            "page" => Self::Page,
            "screen" => Self::Screen,
            "group" => Self::Group,
            "alias" => Self::Alias,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Identify => "identify",
            Self::Track => "track",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }
}

/// What the receiver knows about a message besides its body.
#[derive(Debug, Clone, Copy)]
pub struct Envelope {
    /// When Tenure received it (server clock).
    pub received_at: Millis,
    /// `sentAt` of the enclosing batch, if any (applies to messages without their own).
    pub batch_sent_at: Option<Millis>,
}

/// A validated message, ready to be appended to the log.
#[derive(Debug, Clone)]
pub struct Message {
    pub message_id: String,
    pub kind: MessageType,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `alias`: the id being merged into `user_id`.
    pub previous_id: Option<String>,
    /// `group`: the account id.
    pub group_id: Option<String>,
    /// `track`: the event name; `page` / `screen`: the page name.
    pub name: Option<String>,
    /// The event time after clock-skew correction.
    pub timestamp: Millis,
    pub received_at: Millis,
    /// `context.campaign.source` (Segment's UTM source), the acquisition signal every
    /// message may carry.
    pub campaign_source: Option<String>,
    body: Body,
}

/// The message as received, with `type` and `messageId` filled in when they were implied.
///
/// A message read back from the log keeps its text and parses it only if someone asks
/// (most events are folded from the fields above alone): this is what makes a rebuild fast.
#[derive(Debug, Clone)]
enum Body {
    /// Validated at the edge, with the text that will be stored.
    Parsed {
        map: Map<String, Value>,
        raw: String,
    },
    Stored {
        raw: String,
        parsed: std::sync::OnceLock<Map<String, Value>>,
    },
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.message_id == other.message_id
            && self.kind == other.kind
            && self.user_id == other.user_id
            && self.anonymous_id == other.anonymous_id
            && self.previous_id == other.previous_id
            && self.group_id == other.group_id
            && self.name == other.name
            && self.timestamp == other.timestamp
            && self.received_at == other.received_at
            && self.campaign_source == other.campaign_source
            && self.body() == other.body()
    }
}

fn campaign_source(context: Option<&Map<String, Value>>) -> Option<String> {
    context?
        .get("campaign")?
        .as_object()?
        .get("source")?
        .as_str()
        .map(str::to_owned)
}

/// How a message's event time is found.
#[derive(Debug, Clone, Copy)]
enum Timing {
    /// Received now over the API: Segment's clock-skew correction against our clock.
    Live(Envelope),
    /// Read from a file (history): the message's own times, never the reading's.
    Recorded(Recorded),
}

/// What an importer knows about a message read from a file.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    /// When the file is read: the stored `receivedAt` of a message without its own, and
    /// the present that "in the future" is judged against. Never an event's time.
    pub read_at: Millis,
    /// The event time of a message with neither `timestamp` nor `receivedAt` (the
    /// importer's explicit `--default-timestamp`); without it such a message is refused.
    pub default_timestamp: Option<Millis>,
}

impl Message {
    /// Validates one message. `implied_type` is the type given by the endpoint
    /// (`/v1/track` implies `track`); inside a batch each message states its own.
    pub fn parse(
        value: Value,
        implied_type: Option<MessageType>,
        envelope: Envelope,
    ) -> Result<Message, Vec<FieldError>> {
        Self::parse_timed(value, implied_type, Timing::Live(envelope))
    }

    /// Validates one message read from a file (an export, a Segment archive, a converted
    /// CSV row). A file is history, so the time of reading never becomes an event's time:
    /// - `receivedAt`, when the message has one, is the stored receive time (else `read_at`);
    /// - with `originalTimestamp` beside it, `timestamp` is already corrected (Segment's
    ///   archives and `tenure export` write both) and is taken as it is;
    /// - else `timestamp` is corrected with `sentAt` against the message's own `receivedAt`
    ///   when it has both, and taken as it is otherwise;
    /// - without `timestamp`, the event happened at `receivedAt`; without either, at the
    ///   explicit default, or the message is refused.
    pub fn parse_recorded(value: Value, recorded: Recorded) -> Result<Message, Vec<FieldError>> {
        Self::parse_timed(value, None, Timing::Recorded(recorded))
    }

    fn parse_timed(
        value: Value,
        implied_type: Option<MessageType>,
        timing: Timing,
    ) -> Result<Message, Vec<FieldError>> {
        let Value::Object(mut body) = value else {
            return Err(vec![FieldError::new("", "a message must be a JSON object")]);
        };
        let mut errors = Vec::new();

        let kind = match (body.get("type"), implied_type) {
            (Some(Value::String(t)), implied) => match MessageType::parse(t) {
                Some(kind) if implied.is_none_or(|i| i == kind) => Some(kind),
                Some(kind) => {
                    errors.push(FieldError::new(
                        "type",
                        format!(
                            "type `{}` sent to the `{}` endpoint",
                            kind.as_str(),
                            implied.map_or("", |i| i.as_str())
                        ),
                    ));
                    None
                }
                None => {
                    errors.push(FieldError::new(
                        "type",
                        format!(
                            "unknown message type `{t}`: expected identify, track, page, screen, group or alias"
                        ),
                    ));
                    None
                }
            },
            (None, Some(implied)) => Some(implied),
            (None, None) => {
                errors.push(FieldError::new(
                    "type",
                    "missing: every message in a batch needs a `type`",
                ));
                None
            }
            (Some(_), _) => {
                errors.push(FieldError::new("type", "must be a string"));
                None
            }
        };

        let user_id = id_field(&body, "userId", &mut errors);
        let anonymous_id = id_field(&body, "anonymousId", &mut errors);
        let previous_id = id_field(&body, "previousId", &mut errors);
        let group_id = id_field(&body, "groupId", &mut errors);
        let explicit_message_id = id_field(&body, "messageId", &mut errors);

        if user_id.is_none() && anonymous_id.is_none() {
            errors.push(FieldError::new(
                "userId",
                "every message needs a `userId` or an `anonymousId`",
            ));
        }

        let mut name = None;
        match kind {
            Some(MessageType::Track) => match body.get("event") {
                Some(Value::String(e)) if e.trim().is_empty() => {
                    errors.push(FieldError::new("event", "must not be empty"))
                }
                Some(Value::String(e)) => name = name_field(e, "event", &mut errors),
                Some(_) => errors.push(FieldError::new("event", "must be a string")),
                None => errors.push(FieldError::new(
                    "event",
                    "missing: a track call names its event",
                )),
            },
            Some(MessageType::Page | MessageType::Screen) => match body.get("name") {
                Some(Value::String(n)) if n.is_empty() => {}
                Some(Value::String(n)) if n.trim().is_empty() => errors.push(FieldError::new(
                    "name",
                    "is only spaces: leave `name` out for an unnamed page or screen",
                )),
                Some(Value::String(n)) => name = name_field(n, "name", &mut errors),
                Some(Value::Null) | None => {}
                Some(_) => errors.push(FieldError::new("name", "must be a string")),
            },
            Some(MessageType::Alias) => {
                if previous_id.is_none() {
                    errors.push(FieldError::new(
                        "previousId",
                        "missing: alias needs `previousId`",
                    ));
                }
                if user_id.is_none() {
                    errors.push(FieldError::new("userId", "missing: alias needs `userId`"));
                }
            }
            Some(MessageType::Group) => {
                if group_id.is_none() {
                    errors.push(FieldError::new("groupId", "missing: group needs `groupId`"));
                }
            }
            Some(MessageType::Identify) | None => {}
        }

        for field in ["properties", "traits", "context", "integrations"] {
            match body.get(field) {
                None | Some(Value::Null) | Some(Value::Object(_)) => {}
                Some(_) => errors.push(FieldError::new(field, "must be an object")),
            }
        }
        for (field, value) in &body {
            if nested_at_least(value, MAX_DEPTH + 1) {
                // A key may be empty; the path still names it.
                let path = if field.is_empty() {
                    "\"\""
                } else {
                    field.as_str()
                };
                errors.push(FieldError::new(
                    path,
                    format!("nested more than {MAX_DEPTH} levels deep: flatten it"),
                ));
            }
        }

        let timestamp = instant_field(&body, "timestamp", &mut errors);
        let sent_at = instant_field(&body, "sentAt", &mut errors);
        let (corrected, received_at, now) = match timing {
            Timing::Live(envelope) => {
                // Segment's clock-skew correction: the device clock may be wrong, but the
                // interval between the event and the send is right, so shift it onto the
                // server's clock.
                let corrected = match (timestamp, sent_at.or(envelope.batch_sent_at)) {
                    (Some(ts), Some(sent)) => envelope.received_at - (sent - ts),
                    (Some(ts), None) => ts,
                    (None, _) => envelope.received_at,
                };
                (corrected, envelope.received_at, envelope.received_at)
            }
            Timing::Recorded(recorded) => {
                let own_received = instant_field(&body, "receivedAt", &mut errors);
                let original = instant_field(&body, "originalTimestamp", &mut errors);
                let corrected = match (timestamp, original, sent_at, own_received) {
                    (Some(ts), Some(_), _, _) => Some(ts),
                    (Some(ts), None, Some(sent), Some(received)) => Some(received - (sent - ts)),
                    (Some(ts), None, _, _) => Some(ts),
                    (None, _, _, Some(received)) => Some(received),
                    (None, _, _, None) => recorded.default_timestamp,
                };
                if corrected.is_none() && !errors.iter().any(|e| e.field == "timestamp") {
                    errors.push(FieldError::new(
                        "timestamp",
                        "missing: a file is history, so the time of the import is never an event's time; give the row a timestamp (or the message a receivedAt), or pass --default-timestamp",
                    ));
                }
                (
                    corrected.unwrap_or(recorded.read_at),
                    own_received.unwrap_or(recorded.read_at),
                    recorded.read_at,
                )
            }
        };
        if timestamp.is_some() || matches!(timing, Timing::Recorded(_)) {
            if corrected < EARLIEST_TIMESTAMP {
                errors.push(FieldError::new(
                    "timestamp",
                    "before 1990-01-01 (after clock-skew correction): check the unit and the sentAt field",
                ));
            } else if corrected > now + MAX_FUTURE {
                errors.push(FieldError::new(
                    "timestamp",
                    "more than 24 hours in the future (after clock-skew correction)",
                ));
            }
        }

        if let (Some(MessageType::Track), Some(event)) = (kind, &name) {
            let properties = body.get("properties").and_then(Value::as_object);
            if let Err(mut semantic_errors) = Semantic::parse(event, properties) {
                errors.append(&mut semantic_errors);
            }
        }

        let Some(kind) = kind.filter(|_| errors.is_empty()) else {
            // Report an oversize message too, whatever else is wrong with it.
            let size = serde_json::to_vec(&body).map_or(usize::MAX, |v| v.len());
            if size > MAX_MESSAGE_BYTES {
                errors.insert(0, too_large(size));
            }
            return Err(errors);
        };

        let message_id = match explicit_message_id {
            Some(id) => id,
            None => derived_message_id(&body),
        };
        body.insert("type".into(), Value::String(kind.as_str().into()));
        body.insert("messageId".into(), Value::String(message_id.clone()));
        // Serialized once: for the size limit, and as the text the log stores.
        let raw = serde_json::to_string(&body).unwrap_or_default();
        if raw.len() > MAX_MESSAGE_BYTES {
            return Err(vec![too_large(raw.len())]);
        }

        let campaign_source = campaign_source(body.get("context").and_then(Value::as_object));
        // `previousId` means something only to an alias, `groupId` only to a group (as the
        // log's reader has it): elsewhere they stay in the text, validated, unused.
        let previous_id = previous_id.filter(|_| kind == MessageType::Alias);
        let group_id = group_id.filter(|_| kind == MessageType::Group);
        Ok(Message {
            message_id,
            kind,
            user_id,
            anonymous_id,
            previous_id,
            group_id,
            name,
            timestamp: corrected,
            received_at,
            campaign_source,
            body: Body::Parsed { map: body, raw },
        })
    }

    /// The whole message as received (parsed on first use for a message from the log).
    pub fn body(&self) -> &Map<String, Value> {
        match &self.body {
            Body::Parsed { map, .. } => map,
            Body::Stored { raw, parsed } => {
                parsed.get_or_init(|| match serde_json::from_str(raw) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                })
            }
        }
    }

    /// `properties` of a track / page / screen call (empty if none).
    pub fn properties(&self) -> Option<&Map<String, Value>> {
        self.body().get("properties").and_then(Value::as_object)
    }

    /// `traits` of an identify or group call.
    pub fn traits(&self) -> Option<&Map<String, Value>> {
        self.body().get("traits").and_then(Value::as_object)
    }

    pub fn context(&self) -> Option<&Map<String, Value>> {
        self.body().get("context").and_then(Value::as_object)
    }

    /// The message as stored in the log.
    pub fn raw_json(&self) -> String {
        match &self.body {
            Body::Parsed { raw, .. } | Body::Stored { raw, .. } => raw.clone(),
        }
    }
}

/// `(userId, anonymousId)` of a message sent under this identity.
fn too_large(size: usize) -> FieldError {
    FieldError::new(
        "",
        format!("message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (32 KB)"),
    )
}

/// A message id for a message sent without one: a hash of its content (without `sentAt`,
/// which changes between retries), so that a retried identical message is stored once.
pub fn derived_message_id(body: &Map<String, Value>) -> String {
    let mut h = Fnv128::new();
    for (key, value) in body {
        if key == "sentAt" {
            continue;
        }
        h.write(key.as_bytes());
        h.write(&[0]);
        h.write(value.to_string().as_bytes());
        h.write(&[0]);
    }
    format!("tnr-{}", h.hex())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::time::parse_instant;

    fn envelope() -> Envelope {
        Envelope {
            received_at: parse_instant("2024-05-01T12:00:00Z").unwrap(),
            batch_sent_at: None,
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_track_call_is_parsed_with_its_implied_type() {
        let m = Message::parse(
            json!({"userId": "u1", "event": "Logged In", "messageId": "m1", "timestamp": "2024-05-01T11:00:00Z"}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap();
        assert_eq!(m.kind, MessageType::Track);
        assert_eq!(m.name.as_deref(), Some("Logged In"));
        assert_eq!(m.timestamp, parse_instant("2024-05-01T11:00:00Z").unwrap());
        assert_eq!(m.body()["type"], "track");
    }

    #[test]
    fn clock_skew_is_corrected_with_sent_at() {
        // The device clock is two hours fast: it says the event happened at 13:00 and was
        // sent at 13:05; the server received it at 12:00. The event happened 5 minutes earlier.
        let m = Message::parse(
            json!({"userId": "u1", "event": "X", "timestamp": "2024-05-01T13:00:00Z", "sentAt": "2024-05-01T13:05:00Z"}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap();
        assert_eq!(m.timestamp, parse_instant("2024-05-01T11:55:00Z").unwrap());
    }

    #[test]
    fn batch_sent_at_applies_to_messages_without_their_own() {
        let env = Envelope {
            batch_sent_at: parse_instant("2024-05-01T12:10:00Z"),
            ..envelope()
        };
        let m = Message::parse(
            json!({"type": "track", "userId": "u1", "event": "X", "timestamp": "2024-05-01T12:09:00Z"}),
            None,
            env,
        )
        .unwrap();
        assert_eq!(m.timestamp, parse_instant("2024-05-01T11:59:00Z").unwrap());
    }

    #[test]
    fn missing_timestamp_means_received_at() {
        let m = Message::parse(
            json!({"anonymousId": "a", "type": "page"}),
            None,
            envelope(),
        )
        .unwrap();
        assert_eq!(m.timestamp, envelope().received_at);
        assert_eq!(m.anonymous_id.as_deref(), Some("a"));
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let errors = Message::parse(
            json!({"type": "track", "event": 3, "properties": [], "timestamp": "soon"}),
            None,
            envelope(),
        )
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            vec!["userId", "event", "properties", "timestamp"]
        );
    }

    #[test]
    fn unknown_types_and_mismatched_endpoints_are_refused() {
        let e = Message::parse(json!({"type": "purchase", "userId": "u"}), None, envelope())
            .unwrap_err();
        assert!(
            e[0].message.contains("unknown message type `purchase`"),
            "{e:?}"
        );
        let e = Message::parse(
            json!({"type": "identify", "userId": "u"}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap_err();
        assert_eq!(fields(&e), vec!["type"]);
    }

    #[test]
    fn timestamps_far_in_the_future_or_past_are_refused() {
        let future = Message::parse(
            json!({"userId": "u", "event": "X", "timestamp": "2024-05-03T12:00:00Z"}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap_err();
        assert!(future[0].message.contains("future"));
        let past = Message::parse(
            json!({"userId": "u", "event": "X", "timestamp": "1970-01-20T00:00:00Z"}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap_err();
        assert!(past[0].message.contains("1990"));
    }

    #[test]
    fn oversize_messages_and_long_ids_are_refused() {
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        let e = Message::parse(
            json!({"userId": "u", "event": "X", "properties": {"blob": big}}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap_err();
        assert!(e[0].message.contains("32 KB"));
        let e = Message::parse(
            json!({"userId": "u".repeat(300), "event": "X"}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap_err();
        assert_eq!(fields(&e), vec!["userId", "userId"]);
    }

    #[test]
    fn unicode_is_kept_exactly() {
        let m = Message::parse(
            json!({"userId": "ユーザー🙂", "event": "Café ordered", "properties": {"note": "naïve 🚀"}}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap();
        let back = Message::from_log(m.raw_json(), m.timestamp, m.received_at).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn the_column_fast_path_reads_what_parsing_reads() {
        let messages = [
            json!({"type": "alias", "userId": "u", "previousId": "p", "context": {"campaign": {"source": "ads"}}}),
            json!({"type": "group", "userId": 7, "groupId": 42}),
            json!({"type": "track", "anonymousId": "a", "event": "Order Completed",
                   "properties": {"order_id": "o", "revenue": 1, "currency": "USD", "note": "\"campaign\""}}),
            json!({"type": "page", "userId": "u", "name": "Home"}),
        ];
        for value in messages {
            let m = Message::parse(value, None, envelope()).unwrap();
            let raw = m.raw_json();
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
            assert_eq!(Message::from_log_columns(columns).unwrap(), m);
            assert_eq!(
                Message::from_log(raw, m.timestamp, m.received_at).unwrap(),
                m
            );
        }
    }

    #[test]
    fn derived_message_ids_ignore_sent_at_only() {
        let a = Message::parse(
            json!({"userId": "u", "event": "X", "sentAt": "2024-05-01T12:00:00Z"}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap();
        let b = Message::parse(
            json!({"userId": "u", "event": "X", "sentAt": "2024-05-01T12:00:09Z"}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap();
        let c = Message::parse(
            json!({"userId": "u", "event": "Y"}),
            Some(MessageType::Track),
            envelope(),
        )
        .unwrap();
        assert_eq!(a.message_id, b.message_id);
        assert_ne!(a.message_id, c.message_id);
    }

    #[test]
    fn alias_and_group_need_their_ids() {
        let e =
            Message::parse(json!({"type": "alias", "userId": "u"}), None, envelope()).unwrap_err();
        assert_eq!(fields(&e), vec!["previousId"]);
        let e =
            Message::parse(json!({"type": "group", "userId": "u"}), None, envelope()).unwrap_err();
        assert_eq!(fields(&e), vec!["groupId"]);
    }
}
