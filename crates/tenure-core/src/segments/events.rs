//! The events segments append to the log: `Segment Entered` / `Segment Exited` with their
//! stable ids, the alert a definition names, and a backfill's, built a chunk at a time.

use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::customer::CustomerState;
use crate::customer_table::Place;
use crate::engine::Engine;
use crate::health::HealthModels;
use crate::ids::SegmentId;
use crate::ids::{CustomerId, Identity};
use crate::message::Message;
use crate::names::NameId;
use crate::names::NameTable;
use crate::seen::OWN_PREFIX;
use crate::segments::definition::SEGMENT_EVENTS;
use crate::time::Millis;

use super::counters::Live;

/// The ids of `Segment Entered` and `Segment Exited` for a backfill's changes, each
/// interned when the log first shows it: a rebuild folds the backfill's events in order
/// (each membership, then its alert) and numbers new names as it meets them.
pub(crate) fn intern_in_log_order(
    names: &mut NameTable,
    changes: &[(Place, bool)],
    alerts: &[(Place, Message)],
) -> [Option<NameId>; 2] {
    let mut ids = [None; 2];
    for (place, entered) in changes {
        let direction = usize::from(!*entered);
        if ids[direction].is_none() {
            ids[direction] = Some(names.intern(SEGMENT_EVENTS[direction]));
        }
        if let Ok(i) = alerts.binary_search_by_key(place, |(p, _)| *p)
            && let Some(event) = alerts[i].1.name.as_deref()
        {
            names.intern(event);
        }
    }
    ids
}

/// What defining a segment changed, already folded into the engine: the customers whose
/// membership changed, in id order, and the alerts of those that entered, if the definition
/// names one. The `Segment Entered` / `Segment Exited` events are built when asked for,
/// from the engine that made the backfill (each customer's id and identity) and before it
/// folds anything else: a backfill over a million customers holds a few bytes per member
/// rather than a million messages, and the writer builds and stores them a chunk at a time.
#[derive(Debug, Clone)]
pub struct Backfill {
    pub(crate) segment: SegmentId,
    pub(crate) version: u32,
    pub(crate) name: String,
    /// The instant every event is stamped with, and it formatted.
    pub(crate) at: (Millis, String),
    /// `(place, entered)` in customer id order.
    pub(crate) changes: Vec<(Place, bool)>,
    /// The alerts, sorted by place.
    pub(crate) alerts: Vec<(Place, Message)>,
}

impl Backfill {
    /// How many customers entered the segment.
    pub fn entered(&self) -> usize {
        self.changes.iter().filter(|(_, entered)| *entered).count()
    }

    /// How many customers left it.
    pub fn exited(&self) -> usize {
        self.changes.len() - self.entered()
    }

    /// How many events there are to append (memberships and alerts).
    pub fn len(&self) -> usize {
        self.changes.len() + self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changes `size` customers at a time, in customer id order: each chunk builds its
    /// events when asked.
    pub fn chunks(&self, size: usize) -> impl Iterator<Item = BackfillChunk<'_>> {
        self.changes
            .chunks(size.max(1))
            .map(move |changes| BackfillChunk {
                backfill: self,
                changes,
            })
    }

    /// Every event to append, in customer id order.
    pub fn messages(&self, engine: &Engine) -> Vec<(CustomerId, Message)> {
        self.chunks(usize::MAX)
            .flat_map(|chunk| chunk.messages(engine))
            .collect()
    }
}

/// Some of a [`Backfill`]'s changes.
pub struct BackfillChunk<'a> {
    backfill: &'a Backfill,
    changes: &'a [(Place, bool)],
}

impl BackfillChunk<'_> {
    /// The chunk's events, in customer id order (a membership, then its alert), built in
    /// parallel from `engine`: the one that made the backfill.
    pub fn messages(&self, engine: &Engine) -> Vec<(CustomerId, Message)> {
        let b = self.backfill;
        self.changes
            .par_iter()
            .flat_map_iter(|(place, entered)| {
                let membership = engine.customer_at(*place).and_then(|state| {
                    let identity = sender(state)?;
                    let message = membership_message(
                        (b.segment, b.version, &b.name),
                        (&state.id, &identity, *entered),
                        (b.at.0, &b.at.1),
                        b.at.0,
                        "definition",
                    );
                    Some((state.id.clone(), message))
                });
                let alert = b
                    .alerts
                    .binary_search_by_key(place, |(p, _)| *p)
                    .ok()
                    .zip(membership.as_ref())
                    .map(|(i, (customer, _))| (customer.clone(), b.alerts[i].1.clone()));
                membership.into_iter().chain(alert)
            })
            .collect()
    }
}

/// Whether the customer has an identity Tenure's events about it can be sent under.
pub(crate) fn has_sender(state: &CustomerState) -> bool {
    state.user_id.is_some() || state.identities.iter().any(|k| k.starts_with("a:"))
}

/// The identity Tenure's events about the customer are sent under (none for a customer
/// with neither a user id nor an anonymous id).
pub(crate) fn sender(state: &CustomerState) -> Option<Identity> {
    match &state.user_id {
        Some(user) => Some(Identity::User(user.clone())),
        None => state
            .identities
            .iter()
            .find_map(|k| k.strip_prefix("a:"))
            .map(|anon| Identity::Anonymous(anon.to_owned())),
    }
}

/// The `Segment Entered` / `Segment Exited` event of the customer, stamped `at` (`stamp`:
/// `at` formatted). Its id names the segment's version, the customer, the direction and the
/// instant, so the same change is never logged twice.
pub(crate) fn membership_message(
    (segment, version, name): (SegmentId, u32, &str),
    (customer, identity, entered): (&CustomerId, &Identity, bool),
    (at, stamp): (Millis, &str),
    now: Millis,
    cause: &str,
) -> Message {
    Message::tenure_track_text(
        membership_id(segment, version, customer, entered, at),
        identity,
        if entered {
            "Segment Entered"
        } else {
            "Segment Exited"
        },
        (at, stamp),
        now,
        &[
            ("segment_id", &segment.to_string()),
            ("segment_name", name),
            ("cause", cause),
        ],
    )
}

fn membership_id(
    segment: SegmentId,
    version: u32,
    customer: &CustomerId,
    entered: bool,
    at: Millis,
) -> String {
    format!(
        "{OWN_PREFIX}{segment}.v{version}:{customer}:{}:{at}",
        if entered { "in" } else { "out" }
    )
}

/// On an entry, the definition's alert event, if it names one, with the health score and
/// grade of the state at `at`.
pub(crate) fn alert_message(
    state: &CustomerState,
    (segment, live): (SegmentId, &Live),
    (health, names): (&HealthModels, &NameTable),
    (identity, entered): (&Identity, bool),
    (at, stamp): (Millis, &str),
    now: Millis,
    cause: &str,
) -> Option<Message> {
    let event = live.definition.alert.filter(|_| entered)?;
    let mut properties = Map::new();
    properties.insert("segment_id".into(), Value::from(segment.to_string()));
    properties.insert("segment_name".into(), Value::from(live.name.as_str()));
    properties.insert("cause".into(), Value::from(cause));
    let (score, grade) = health.grade(state, names, at);
    properties.insert("health_score".into(), serde_json::json!(score));
    properties.insert("health_grade".into(), serde_json::json!(grade));
    let id = membership_id(segment, live.version, &state.id, entered, at);
    Some(Message::tenure_track_stamped(
        format!("{id}:alert"),
        identity,
        event,
        (at, stamp),
        now,
        properties,
    ))
}
