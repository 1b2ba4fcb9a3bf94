//! What a live definition counts: per filtered leaf (a `performed` with `where`), each
//! customer's matching occurrences per UTC day, kept as events arrive and moved on merges.

use crate::customer_table::Place;
use crate::message::Message;
use crate::segments::definition::{Definition, passes};
use crate::time::day_of;

/// A filtered leaf's counts, keyed by the customer's place: foldhash instead of SipHash
/// (a backfill reads it once per customer).
pub(crate) type PlaceMap<V> = foldhash::HashMap<Place, V>;

/// A defined segment as the engine runs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Live {
    pub(crate) name: String,
    /// Bumped by every edit; part of the ids of the events it causes.
    pub(crate) version: u32,
    pub(crate) definition: Definition,
    /// Per slot: each customer's matching occurrences per UTC day, sorted by day.
    pub(crate) slots: Vec<PlaceMap<Vec<(i32, u32)>>>,
}

impl Live {
    pub(crate) fn new(name: &str, version: u32, definition: Definition) -> Self {
        Self {
            name: name.to_owned(),
            version,
            slots: vec![PlaceMap::default(); definition.slots.len()],
            definition,
        }
    }

    pub(crate) fn subject_slots(&self, place: Place) -> Vec<&[(i32, u32)]> {
        self.slots
            .iter()
            .map(|s| s.get(&place).map_or(&[][..], Vec::as_slice))
            .collect()
    }

    /// Counts one occurrence if the message passes a slot's filters.
    pub(crate) fn observe(&mut self, place: Place, message: &Message) {
        let day = day_of(message.timestamp);
        for i in slots_passed(&self.definition, message) {
            add_day(self.slots[i].entry(place).or_default(), day, 1);
        }
    }
}

/// The slots of the definition whose event and filters the message passes.
pub(crate) fn slots_passed<'a>(
    definition: &'a Definition,
    message: &'a Message,
) -> impl Iterator<Item = usize> + 'a {
    let event = message.name.as_deref();
    definition
        .slots
        .iter()
        .enumerate()
        .filter(move |(_, (slot_event, _))| event == Some(slot_event.as_str()))
        .filter(move |(_, (_, filters))| {
            let properties = message.properties();
            filters
                .iter()
                .all(|(key, test)| passes(test, properties.and_then(|p| p.get(key))))
        })
        .map(|(i, _)| i)
}

pub(crate) fn add_day(days: &mut Vec<(i32, u32)>, day: i32, count: u32) {
    match days.binary_search_by_key(&day, |(d, _)| *d) {
        Ok(i) => days[i].1 += count,
        Err(i) => days.insert(i, (day, count)),
    }
}
