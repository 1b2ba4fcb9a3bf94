//! Names and ids only Tenure, or an operator, may write (DESIGN.md, "Reserved names").
//!
//! Tenure records what it does and decides as events in the customer's log: segment
//! memberships, alerts, and soon messages, journeys, points and rewards. A write key is public
//! in every browser app, so if it could send those events it could change memberships, forge
//! a health override, or pre-store the id of a membership event so that the real one is
//! dropped. The rule is one pure function, applied wherever events enter.

use crate::Message;
use crate::message::{FieldError, MessageType};
use crate::seen::OWN_PREFIX;

/// Who is writing an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A write key: the business's apps and pipelines.
    Client,
    /// An admin key over the API: a person acting for the business (a health override).
    Admin,
    /// Someone with the database itself restoring history (`tenure import` of an export):
    /// everything, Tenure's own events included, as it was recorded.
    Restore,
}

/// Events Tenure writes about a customer itself, exactly.
pub const TENURE_EVENTS: [&str; 5] = [
    "Segment Entered",
    "Segment Exited",
    "At Risk Entered",
    "Health Changed",
    "Tier Changed",
];

/// Families of events Tenure writes itself (`Message Sent`, `Journey Entered`, `Points
/// Earned`, `Reward Redeemed`…).
pub const TENURE_PREFIXES: [&str; 4] = ["Message ", "Journey ", "Points ", "Reward "];

/// Events a person records about a customer: an admin key may send them, a write key may not.
/// (Not `semantic::OPERATOR_EVENTS`, the wider list of events that are not the customer's
/// own activity, Tenure's included.)
pub const ADMIN_EVENTS: [&str; 1] = ["Health Overridden"];

/// Whether `event` is one Tenure writes itself.
pub fn is_tenure_event(event: &str) -> bool {
    TENURE_EVENTS.contains(&event) || TENURE_PREFIXES.iter().any(|p| event.starts_with(p))
}

/// Refuses what `writer` may not write: Tenure's message-id namespace and Tenure's own events
/// to anyone but a restore; operator events to write keys.
pub fn check(message: &Message, writer: Writer) -> Result<(), FieldError> {
    if writer == Writer::Restore {
        return Ok(());
    }
    if message.message_id.starts_with(OWN_PREFIX) {
        return Err(FieldError::new(
            "messageId",
            format!(
                "ids starting `{OWN_PREFIX}` are Tenure's own (the events it records itself): choose another id"
            ),
        ));
    }
    if message.kind != MessageType::Track {
        return Ok(());
    }
    let Some(event) = message.name.as_deref() else {
        return Ok(());
    };
    if is_tenure_event(event) {
        return Err(FieldError::new(
            "event",
            format!(
                "`{event}` is an event only Tenure records (docs/security.md, \"Reserved names\"): send your own name for it"
            ),
        ));
    }
    if writer == Writer::Client && ADMIN_EVENTS.contains(&event) {
        return Err(FieldError::new(
            "event",
            format!(
                "`{event}` records what a person decided: send it with an admin key, not a write key"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Envelope;

    fn track(event: &str, id: &str) -> Message {
        Message::parse(
            json!({"type": "track", "userId": "u", "event": event, "messageId": id,
                   "properties": {"grade": "green", "reason": "call", "author": "ana",
                                  "expires_at": "2024-01-01T00:00:00Z", "segment_id": "seg_1"}}),
            None,
            Envelope {
                received_at: 1_700_000_000_000,
                batch_sent_at: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn each_writer_may_write_what_it_is_for() {
        let cases = [
            ("Logged In", "m1", [true, true, true]),
            ("Health Overridden", "m2", [false, true, true]),
            ("Segment Entered", "m3", [false, false, true]),
            ("Points Earned", "m4", [false, false, true]),
            ("Message Sent", "m5", [false, false, true]),
            (
                "Logged In",
                "tenure:seg_1.v1:cus_x:in:1",
                [false, false, true],
            ),
        ];
        for (event, id, allowed) in cases {
            let m = track(event, id);
            for (writer, ok) in [Writer::Client, Writer::Admin, Writer::Restore]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(check(&m, writer).is_ok(), ok, "{event} {id} by {writer:?}");
            }
        }
        let e = check(&track("Segment Exited", "m"), Writer::Client).unwrap_err();
        assert_eq!(e.field, "event");
        // "Messages Imported" is not in a reserved family: the prefix includes the space.
        assert!(check(&track("Messages Imported", "m"), Writer::Client).is_ok());
    }
}
