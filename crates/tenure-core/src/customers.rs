//! The engine's customers: each state in a dense table, in the order customers were first
//! seen, and an index by id for lookups and id-ordered listing.
//!
//! ```text
//!   by_id: BTreeMap<CustomerId, Place> ──► states: Vec<Option<CustomerState>>
//!          (id order: pages, reports)        (first-seen order: data-parallel passes,
//!                                             timers, a backfill's changes)
//! ```
//!
//! Why a table rather than a map of states: the passes over every customer (a segment's
//! backfill or preview, the reconcile after a restart) split a slice across cores without
//! first collecting a million references out of a tree, and the segment book keys its timers
//! and a backfill its changes by a [`Place`] — a number — instead of hashing and comparing
//! id strings. A merged-away customer leaves an empty place that is never reused, so a place
//! names one customer for the engine's life. Customers are created in log order, so a
//! rebuild from the same log gives every customer the same place.

use std::collections::BTreeMap;

use crate::customer::CustomerState;
use crate::ids::CustomerId;

/// A customer's place in the engine's table: dense, given in first-seen order, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place(u32);

impl Place {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The place at a table index (as [`Customers::table`] enumerates them).
    pub(crate) fn at(index: usize) -> Self {
        // A table is indexed by u32: four billion customers per workspace.
        Self(u32::try_from(index).unwrap_or(u32::MAX))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Customers {
    /// Every customer ever created, at its place; `None` once merged into another.
    states: Vec<Option<CustomerState>>,
    /// The live customers' places, sorted by id.
    by_id: BTreeMap<CustomerId, Place>,
}

impl Customers {
    /// How many customers there are (merged-away ones not counted).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Adds a customer at the next place.
    pub fn insert(&mut self, state: CustomerState) -> Place {
        let place = Place::at(self.states.len());
        self.by_id.insert(state.id.clone(), place);
        self.states.push(Some(state));
        place
    }

    /// Takes a customer out (merged into another); its place stays empty.
    pub fn remove(&mut self, id: &CustomerId) -> Option<CustomerState> {
        let place = self.by_id.remove(id)?;
        self.states.get_mut(place.index())?.take()
    }

    pub fn place(&self, id: &CustomerId) -> Option<Place> {
        self.by_id.get(id).copied()
    }

    pub fn get(&self, id: &CustomerId) -> Option<&CustomerState> {
        self.at(self.place(id)?)
    }

    pub fn get_mut(&mut self, id: &CustomerId) -> Option<&mut CustomerState> {
        let place = self.place(id)?;
        self.at_mut(place)
    }

    pub fn at(&self, place: Place) -> Option<&CustomerState> {
        self.states.get(place.index())?.as_ref()
    }

    pub fn at_mut(&mut self, place: Place) -> Option<&mut CustomerState> {
        self.states.get_mut(place.index())?.as_mut()
    }

    /// The live customers in id order.
    pub fn in_id_order(&self) -> impl Iterator<Item = &CustomerState> {
        self.by_id.values().filter_map(|p| self.at(*p))
    }

    /// The live customers' ids and places, in id order.
    pub fn places_in_id_order(&self) -> impl Iterator<Item = (&CustomerId, Place)> {
        self.by_id.iter().map(|(id, p)| (id, *p))
    }

    /// The live customers in id order, after `after`.
    pub fn after(&self, after: Option<&CustomerId>) -> impl Iterator<Item = &CustomerState> {
        let range = match after {
            Some(after) => self.by_id.range::<CustomerId, _>((
                std::ops::Bound::Excluded(after),
                std::ops::Bound::Unbounded,
            )),
            None => self.by_id.range::<CustomerId, _>(..),
        };
        range.filter_map(|(_, p)| self.at(*p))
    }

    /// The whole table, in place order (empty places included): for data-parallel passes,
    /// with [`Place::at`] for an entry's place.
    pub fn table(&self) -> &[Option<CustomerState>] {
        &self.states
    }

    pub fn table_mut(&mut self) -> &mut [Option<CustomerState>] {
        &mut self.states
    }

    /// Every live customer mutably, in place order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut CustomerState> {
        self.states.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str) -> CustomerState {
        CustomerState::new(CustomerId::parse(id).unwrap(), 0)
    }

    /// Places are given in insertion order and never reused; id order is kept beside them.
    #[test]
    fn places_are_dense_stable_and_never_reused() {
        let mut c = Customers::default();
        let b = c.insert(state("cus_b"));
        let a = c.insert(state("cus_a"));
        assert_eq!((b.index(), a.index()), (0, 1));
        let ids: Vec<&str> = c.in_id_order().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["cus_a", "cus_b"]);
        let gone = c.remove(&CustomerId::parse("cus_b").unwrap()).unwrap();
        assert_eq!(gone.id.as_str(), "cus_b");
        assert!(c.at(b).is_none());
        assert_eq!(c.len(), 1);
        let z = c.insert(state("cus_z"));
        assert_eq!(z.index(), 2, "an empty place is not reused");
        assert_eq!(c.table().len(), 3);
        let after: Vec<&str> = c
            .after(Some(&CustomerId::parse("cus_a").unwrap()))
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(after, ["cus_z"]);
        let z_id = CustomerId::parse("cus_z").unwrap();
        assert_eq!(c.place(&z_id), Some(z));
        assert_eq!(c.get(&z_id).unwrap().id, z_id);
    }
}
