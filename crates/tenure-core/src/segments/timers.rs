//! One timer per customer: the instant its segments must be evaluated again without an
//! event (a window's edge, a scheduled change), keyed by the customer's [`Place`].
//!
//! Keyed by place rather than id: a backfill over a million customers reads every
//! customer's timer and may move most of them, and a number is compared, hashed and copied
//! for nothing, where an id string is compared byte by byte and reference-counted.

use std::collections::BTreeSet;

use crate::customer_table::Place;
use crate::time::Millis;

/// The timer of a place that has none.
const NONE: Millis = Millis::MAX;

#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    /// `(instant, place)`, earliest first: what the clock fires.
    queue: BTreeSet<(Millis, Place)>,
    /// Each place's timer (`NONE` for none), by place; as long as the highest place that
    /// ever had one.
    of: Vec<Millis>,
}

/// Two books have the same timers when their queues are equal (`of` follows the queue;
/// its length says only which places ever had a timer).
impl PartialEq for Timers {
    fn eq(&self, other: &Self) -> bool {
        self.queue == other.queue
    }
}

impl Timers {
    /// The place's timer, if it has one.
    pub fn get(&self, place: Place) -> Option<Millis> {
        self.of.get(place.index()).copied().filter(|at| *at != NONE)
    }

    /// Every place's timer by place (`Millis::MAX` for none; places past the end have
    /// none): what a data-parallel pass reads.
    pub fn by_place(&self) -> &[Millis] {
        &self.of
    }

    /// The earliest timer.
    pub fn first(&self) -> Option<(Millis, Place)> {
        self.queue.first().copied()
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.of.clear();
    }

    /// Sets (or, with `None`, removes) the place's timer.
    pub fn set(&mut self, place: Place, at: Option<Millis>) {
        if let Some(old) = self.get(place) {
            self.queue.remove(&(old, place));
            self.of[place.index()] = NONE;
        }
        if let Some(at) = at {
            self.queue.insert((at, place));
            *self.entry(place) = at;
        }
    }

    /// Sets many places' timers at once (a backfill). When they are thousands and an eighth
    /// or more of the timers, the queue is rebuilt from `of` in one sorted pass (removing
    /// and inserting a million entries one by one costs a few hundred ms); fewer go one at
    /// a time, which is then cheaper than re-sorting every timer.
    pub fn set_many(&mut self, updates: Vec<(Place, Millis)>) {
        if updates.len() < 4_096 || updates.len() < self.queue.len() / 8 {
            for (place, at) in updates {
                self.set(place, Some(at));
            }
            return;
        }
        for (place, at) in updates {
            *self.entry(place) = at;
        }
        let mut all: Vec<(Millis, Place)> = self
            .of
            .iter()
            .enumerate()
            .filter(|(_, at)| **at != NONE)
            .map(|(i, at)| (*at, Place::at(i)))
            .collect();
        rayon::slice::ParallelSliceMut::par_sort_unstable(&mut all[..]);
        self.queue = all.into_iter().collect();
    }

    /// The place's entry in `of`, grown to reach it.
    fn entry(&mut self, place: Place) -> &mut Millis {
        let i = place.index();
        if self.of.len() <= i {
            self.of.resize(i + 1, NONE);
        }
        &mut self.of[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bulk path of `set_many` leaves the timers as setting each one would.
    #[test]
    fn many_timers_at_once_equal_one_at_a_time() {
        let mut one = Timers::default();
        let mut bulk = Timers::default();
        for i in 0..3_000 {
            one.set(Place::at(i), Some(1_000 + (i % 7) as Millis));
            bulk.set(Place::at(i), Some(1_000 + (i % 7) as Millis));
        }
        // Earlier timers for some known places and for new ones: past the threshold.
        let updates: Vec<(Place, Millis)> = (1_000..6_000)
            .map(|i| (Place::at(i), (i % 5) as Millis))
            .collect();
        for (p, at) in &updates {
            one.set(*p, Some(*at));
        }
        bulk.set_many(updates);
        assert_eq!(bulk.queue, one.queue);
        assert_eq!(bulk.of, one.of);
        assert_eq!(bulk.queue.len(), 6_000);
        assert_eq!(bulk.first(), Some((0, Place::at(1_000))));
    }

    #[test]
    fn a_removed_timer_is_gone_from_both_sides() {
        let mut t = Timers::default();
        t.set(Place::at(3), Some(10));
        t.set(Place::at(1), Some(20));
        assert_eq!(t.first(), Some((10, Place::at(3))));
        t.set(Place::at(3), None);
        assert_eq!(t.get(Place::at(3)), None);
        assert_eq!(t.first(), Some((20, Place::at(1))));
        t.set(Place::at(1), Some(5));
        assert_eq!(t.get(Place::at(1)), Some(5));
        assert_eq!(t.queue.len(), 1);
        assert_eq!(t.get(Place::at(99)), None, "a place past the end has none");
    }
}
