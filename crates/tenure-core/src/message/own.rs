//! Tenure's own messages about a customer (a segment entered, an alert, a journey step):
//! built already valid, with ids of Tenure's own (DESIGN.md, "Reserved names").

use serde_json::{Map, Value};

use super::*;

impl Message {
    /// A `track` message Tenure itself records about a customer (a segment entered…) with
    /// only its JSON text (parsed on first use, as a stored one is):
    /// what a backfill builds for each of up to a million members, where the tree is never
    /// read. `properties` holds string values only.
    pub fn tenure_track_text(
        message_id: String,
        identity: &crate::ids::Identity,
        event: &str,
        (timestamp, stamp): (Millis, &str),
        received_at: Millis,
        properties: &[(&str, &str)],
    ) -> Message {
        #[derive(serde::Serialize)]
        struct Text<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            event: &'a str,
            #[serde(rename = "messageId")]
            message_id: &'a str,
            timestamp: &'a str,
            #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
            user_id: Option<&'a str>,
            #[serde(rename = "anonymousId", skip_serializing_if = "Option::is_none")]
            anonymous_id: Option<&'a str>,
            properties: Properties<'a>,
        }
        struct Properties<'a>(&'a [(&'a str, &'a str)]);
        impl serde::Serialize for Properties<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        let (user_id, anonymous_id) = identity_fields(identity);
        let raw = serde_json::to_string(&Text {
            kind: "track",
            event,
            message_id: &message_id,
            timestamp: stamp,
            user_id: user_id.as_deref(),
            anonymous_id: anonymous_id.as_deref(),
            properties: Properties(properties),
        })
        .unwrap_or_default();
        let body = Body::Stored {
            raw,
            parsed: std::sync::OnceLock::new(),
        };
        Self::own_track(
            message_id,
            (user_id, anonymous_id),
            event,
            (timestamp, received_at),
            body,
        )
    }

    /// A track message Tenure itself sends (`tenure_track_*`).
    fn own_track(
        message_id: String,
        (user_id, anonymous_id): (Option<String>, Option<String>),
        event: &str,
        (timestamp, received_at): (Millis, Millis),
        body: Body,
    ) -> Message {
        Message {
            message_id,
            kind: MessageType::Track,
            user_id,
            anonymous_id,
            previous_id: None,
            group_id: None,
            name: Some(event.to_owned()),
            timestamp,
            received_at,
            campaign_source: None,
            body,
        }
    }

    /// A `track` message Tenure itself records about a customer (a segment entered…),
    /// built without the validation an incoming message needs: the caller guarantees the
    /// id, the name and one identity. Stored exactly as an incoming one would be.
    /// The timestamp comes already formatted (many messages are stamped alike).
    pub fn tenure_track_stamped(
        message_id: String,
        identity: &crate::ids::Identity,
        event: &str,
        (timestamp, stamp): (Millis, &str),
        received_at: Millis,
        properties: Map<String, Value>,
    ) -> Message {
        let (user_id, anonymous_id) = identity_fields(identity);
        let mut body = Map::new();
        body.insert("type".into(), Value::from("track"));
        body.insert("event".into(), Value::from(event));
        body.insert("messageId".into(), Value::from(message_id.as_str()));
        body.insert("timestamp".into(), Value::from(stamp));
        match identity {
            crate::ids::Identity::User(u) => body.insert("userId".into(), Value::from(u.as_str())),
            crate::ids::Identity::Anonymous(a) => {
                body.insert("anonymousId".into(), Value::from(a.as_str()))
            }
        };
        body.insert("properties".into(), Value::Object(properties));
        let raw = serde_json::to_string(&body).unwrap_or_default();
        let body = Body::Parsed { map: body, raw };
        Self::own_track(
            message_id,
            (user_id, anonymous_id),
            event,
            (timestamp, received_at),
            body,
        )
    }
}

pub(super) fn identity_fields(identity: &crate::ids::Identity) -> (Option<String>, Option<String>) {
    match identity {
        crate::ids::Identity::User(u) => (Some(u.clone()), None),
        crate::ids::Identity::Anonymous(a) => (None, Some(a.clone())),
    }
}
