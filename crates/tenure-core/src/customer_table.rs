//! The engine's customers: each state in a dense table, in the order customers were first
//! seen, and an index by id for lookups and id-ordered listing.
//!
//! ```text
//!   by_id: BTreeMap<CustomerId, Place> ──► chunks: [[Option<CustomerState>; 16,384], …]
//!          (id order: pages, reports)        (first-seen order: data-parallel passes,
//!                                             timers, a backfill's changes)
//! ```
//!
//! Why a table rather than a map of states: the passes over every customer (a segment's
//! backfill or preview, the reconcile after a restart, a report) split the table across
//! cores as it lies in memory, without first collecting a million references out of a tree
//! and then visiting states in id order (ids are hashes: every state a cache miss); and the
//! segment book keys its timers and a backfill its changes by a [`Place`] — a number —
//! instead of hashing and comparing id strings. A merged-away customer leaves an empty
//! place that is never reused, so a place names one customer for the engine's life.
//! CustomerTable are created in log order, so a rebuild from the same log gives every customer
//! the same place.
//!
//! The table is a list of chunks of [`CHUNK`] places, not one vector: one vector doubles by
//! copying, and at 1,048,576 customers of 584 bytes that copy held the engine's write lock
//! for 1.6 s. A chunk grows by doubling only up to 9.5 MB.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::customer::CustomerState;
use crate::ids::CustomerId;

/// Places per chunk of the table.
pub const CHUNK: usize = 1 << 14;

/// A customer's place in the engine's table: dense, given in first-seen order, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place(u32);

impl Place {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The place at a table index.
    pub(crate) fn at(index: usize) -> Self {
        // A table is indexed by u32: four billion customers per workspace.
        Self(u32::try_from(index).unwrap_or(u32::MAX))
    }

    fn chunk(self) -> (usize, usize) {
        (self.index() / CHUNK, self.index() % CHUNK)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CustomerTable {
    /// Every customer ever created, at its place (chunk by chunk); `None` once merged into
    /// another. Every chunk but the last holds [`CHUNK`] places.
    chunks: Vec<Vec<Option<CustomerState>>>,
    /// The live customers' places, sorted by id.
    by_id: BTreeMap<CustomerId, Place>,
}

impl CustomerTable {
    /// How many customers there are (merged-away ones not counted).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// How many places there are (merged-away ones counted): one past the last place.
    pub fn places(&self) -> usize {
        self.chunks.len().saturating_sub(1) * CHUNK + self.chunks.last().map_or(0, Vec::len)
    }

    /// Adds a customer at the next place.
    pub fn insert(&mut self, state: CustomerState) -> Place {
        let place = Place::at(self.places());
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::new());
        }
        self.by_id.insert(state.id.clone(), place);
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(Some(state));
        }
        place
    }

    /// Takes a customer out (merged into another); its place stays empty.
    pub fn remove(&mut self, id: &CustomerId) -> Option<CustomerState> {
        let place = self.by_id.remove(id)?;
        let (chunk, offset) = place.chunk();
        self.chunks.get_mut(chunk)?.get_mut(offset)?.take()
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
        let (chunk, offset) = place.chunk();
        self.chunks.get(chunk)?.get(offset)?.as_ref()
    }

    pub fn at_mut(&mut self, place: Place) -> Option<&mut CustomerState> {
        let (chunk, offset) = place.chunk();
        self.chunks.get_mut(chunk)?.get_mut(offset)?.as_mut()
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

    /// The live customers in place order.
    pub fn by_place(&self) -> impl Iterator<Item = &CustomerState> {
        self.chunks.iter().flatten().flatten()
    }

    /// Every place with its customer (`None` where one was merged away), in place order,
    /// split across cores a chunk at a time: what `collect` gathers from it has one entry
    /// per place, in order.
    pub fn par_by_place(&self) -> impl ParallelIterator<Item = (Place, Option<&CustomerState>)> {
        self.chunks
            .par_iter()
            .enumerate()
            .flat_map_iter(|(k, chunk)| {
                chunk
                    .iter()
                    .enumerate()
                    .map(move |(i, c)| (Place::at(k * CHUNK + i), c.as_ref()))
            })
    }

    /// Every live customer mutably, in place order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut CustomerState> {
        self.chunks.iter_mut().flatten().flatten()
    }

    /// Every place mutably, chunk by chunk in parallel, with `values[place]` beside it
    /// (`values` holds one entry per place).
    pub fn par_zip_mut<'a, T: Sync>(
        &'a mut self,
        values: &'a [T],
    ) -> impl ParallelIterator<Item = (Option<&'a mut CustomerState>, &'a T)> {
        self.chunks
            .par_iter_mut()
            .zip(values.par_chunks(CHUNK))
            .flat_map_iter(|(chunk, values)| {
                chunk.iter_mut().map(Option::as_mut).zip(values.iter())
            })
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
        let mut c = CustomerTable::default();
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
        assert_eq!(c.places(), 3);
        let after: Vec<&str> = c
            .after(Some(&CustomerId::parse("cus_a").unwrap()))
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(after, ["cus_z"]);
        let z_id = CustomerId::parse("cus_z").unwrap();
        assert_eq!(c.place(&z_id), Some(z));
        assert_eq!(c.get(&z_id).unwrap().id, z_id);
    }

    /// Across chunk boundaries: every place found where it was put, the parallel walk gives
    /// one entry per place in order, and the parallel zip meets each place's value.
    #[test]
    fn chunks_keep_places_in_order() {
        let mut c = CustomerTable::default();
        let n = 2 * CHUNK + 5;
        let id = |i: usize| CustomerId::parse(&format!("cus_{i}")).unwrap();
        for i in 0..n {
            assert_eq!(c.insert(CustomerState::new(id(i), i as i64)).index(), i);
        }
        assert_eq!(c.chunks.len(), 3);
        assert!(c.remove(&id(CHUNK)).is_some());
        assert_eq!((c.places(), c.len()), (n, n - 1));
        let walked: Vec<(Place, Option<i64>)> = c
            .par_by_place()
            .map(|(p, s)| (p, s.map(|s| s.first_seen)))
            .collect();
        assert_eq!(walked.len(), n);
        for (i, (place, first_seen)) in walked.iter().enumerate() {
            assert_eq!(place.index(), i);
            let expected = (i != CHUNK).then_some(i as i64);
            assert_eq!(*first_seen, expected);
            assert_eq!(c.at(*place).map(|s| s.first_seen), expected);
        }
        let values: Vec<i64> = (0..n as i64).collect();
        c.par_zip_mut(&values).for_each(|(state, v)| {
            if let Some(state) = state {
                state.last_seen = *v * 10;
            }
        });
        assert!(c.by_place().all(|s| s.last_seen == s.first_seen * 10));
        assert_eq!(c.by_place().count(), n - 1);
    }
}
