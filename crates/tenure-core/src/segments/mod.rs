//! Segments: definitions of groups of customers, kept exact and up to date as events arrive
//! and as time passes.
//!
//! ```text
//!  event ──► Engine::apply ──► Engine::segment_changes(customer, now) ──► Segment Entered / Exited
//!                                   │ evaluate every definition for the customer at `now`
//!                                   └ set the customer's timer: the earliest instant any
//!                                     definition's answer can change without an event
//!  clock ──► Engine::due_segment_changes(now): for each timer ≤ now, in time order,
//!            evaluate at the timer's own instant (changes are stamped with it)
//! ```
//!
//! Membership is a fold of the log: the engine proposes `Segment Entered` / `Segment Exited`
//! messages, the caller appends and applies them, and [`CustomerState::segments`] is what
//! they say. A rebuild folds them again and then reconciles once against an evaluation at
//! the current instant (what changed while nothing ran is appended then).
//!
//! [`CustomerState::segments`]: crate::customer::CustomerState::segments

mod book;
pub mod daily;
pub mod definition;
pub mod eval;
mod timers;

pub use book::{Backfill, BackfillChunk, SegmentBook, SegmentInfo};
pub use daily::{CustomerValues, DailyValues};
pub use definition::{Computed, Condition, Count, Definition, Op, Test, When, Window};

use std::fmt;

/// A segment's id: `seg_` and a number the store assigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u32);

impl SegmentId {
    pub fn parse(text: &str) -> Option<Self> {
        let n = text.strip_prefix("seg_")?;
        if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse().ok().map(Self)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seg_{}", self.0)
    }
}

impl serde::Serialize for SegmentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
