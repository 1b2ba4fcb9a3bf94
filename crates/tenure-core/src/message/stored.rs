//! Messages read back from the log: the rebuild reads only the top-level fields the fold
//! needs, without building a tree; the rest of the text is parsed on first use.

use super::*;

/// A row of the log, as the rebuild reads it.
pub struct LogColumns<'a> {
    pub message_id: String,
    pub kind: &'a str,
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub timestamp: Millis,
    pub received_at: Millis,
    pub raw: String,
}

/// The top-level fields the fold needs, read from a stored message without building a
/// tree: strings are borrowed where they have no escapes, everything else is skipped.
#[derive(serde::Deserialize)]
pub(super) struct StoredFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(rename = "messageId", default, borrow)]
    message_id: Option<&'a serde_json::value::RawValue>,
    #[serde(rename = "userId", default, borrow)]
    user_id: Option<&'a serde_json::value::RawValue>,
    #[serde(rename = "anonymousId", default, borrow)]
    anonymous_id: Option<&'a serde_json::value::RawValue>,
    #[serde(rename = "previousId", default, borrow)]
    previous_id: Option<&'a serde_json::value::RawValue>,
    #[serde(rename = "groupId", default, borrow)]
    group_id: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    event: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    name: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    context: Option<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize)]
pub(super) struct CampaignContext<'a> {
    #[serde(borrow)]
    campaign: Option<Campaign<'a>>,
}

#[derive(serde::Deserialize)]
pub(super) struct Campaign<'a> {
    #[serde(borrow)]
    source: Option<std::borrow::Cow<'a, str>>,
}

/// A stored id: a string, or a number kept as its text (as `Message::parse` accepts).
pub(super) fn raw_text(raw: Option<&serde_json::value::RawValue>) -> Option<String> {
    let text = raw?.get();
    if text.starts_with('"') {
        serde_json::from_str::<std::borrow::Cow<'_, str>>(text)
            .ok()
            .map(|c| c.into_owned())
            .filter(|s| !s.is_empty())
    } else if text == "null" || text.starts_with('{') || text.starts_with('[') {
        None
    } else {
        Some(text.to_owned())
    }
}

/// `context.campaign.source` of a stored message's `context`, if it is a string.
pub(super) fn stored_campaign_source(
    context: Option<&serde_json::value::RawValue>,
) -> Option<String> {
    let context: CampaignContext<'_> = serde_json::from_str(context?.get()).ok()?;
    context.campaign?.source.map(std::borrow::Cow::into_owned)
}

impl Message {
    /// Rebuilds a message from the log, where it was validated when it was appended.
    /// The stored corrected timestamp is authoritative. Only the top-level fields are read
    /// now; the rest of the text is parsed on first use.
    pub fn from_log(
        raw: String,
        timestamp: Millis,
        received_at: Millis,
    ) -> Result<Message, String> {
        let fields: StoredFields<'_> =
            serde_json::from_str(&raw).map_err(|e| format!("stored JSON: {e}"))?;
        let kind = MessageType::parse(&fields.kind).ok_or("stored message has no valid type")?;
        let name = match kind {
            MessageType::Track => raw_text(fields.event),
            MessageType::Page | MessageType::Screen => raw_text(fields.name),
            _ => None,
        };
        let campaign_source = stored_campaign_source(fields.context);
        let message = Message {
            message_id: raw_text(fields.message_id).unwrap_or_default(),
            kind,
            user_id: raw_text(fields.user_id),
            anonymous_id: raw_text(fields.anonymous_id),
            previous_id: raw_text(fields.previous_id).filter(|_| kind == MessageType::Alias),
            group_id: raw_text(fields.group_id).filter(|_| kind == MessageType::Group),
            name,
            timestamp,
            received_at,
            campaign_source,
            body: Body::Stored {
                raw: String::new(),
                parsed: std::sync::OnceLock::new(),
            },
        };
        Ok(Message {
            body: Body::Stored {
                raw,
                parsed: std::sync::OnceLock::new(),
            },
            ..message
        })
    }

    /// Rebuilds a message from the log's columns, reading its text only for what the
    /// columns do not hold (`previousId`, `groupId`, `context.campaign.source`). This is the
    /// rebuild's fast path: most events are folded without parsing any JSON.
    pub fn from_log_columns(columns: LogColumns) -> Result<Message, String> {
        let kind = MessageType::parse(columns.kind)
            .ok_or_else(|| format!("stored message has type `{}`", columns.kind))?;
        let raw = columns.raw;
        // The columns hold everything else the fold reads; a substring test spares the
        // parse for the many messages without a campaign (a false hit only costs a parse).
        let needs_fields =
            matches!(kind, MessageType::Alias | MessageType::Group) || raw.contains("\"campaign\"");
        let (previous_id, group_id, campaign_source) = if needs_fields {
            let fields: StoredFields<'_> =
                serde_json::from_str(&raw).map_err(|e| format!("stored JSON: {e}"))?;
            let campaign = stored_campaign_source(fields.context);
            (
                raw_text(fields.previous_id),
                raw_text(fields.group_id),
                campaign,
            )
        } else {
            (None, None, None)
        };
        Ok(Message {
            message_id: columns.message_id,
            kind,
            user_id: columns.user_id,
            anonymous_id: columns.anonymous_id,
            previous_id,
            group_id,
            name: columns.name,
            timestamp: columns.timestamp,
            received_at: columns.received_at,
            campaign_source,
            body: Body::Stored {
                raw,
                parsed: std::sync::OnceLock::new(),
            },
        })
    }
}
