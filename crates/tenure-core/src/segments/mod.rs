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
mod counters;
pub mod daily;
pub mod definition;
pub mod eval;
mod events;
mod parse;
mod timers;

pub use crate::ids::SegmentId;
pub use book::{Backfill, BackfillChunk, SegmentBook, SegmentInfo};
pub(crate) use book::{SharedDaily, SharedRisk};
pub use daily::{CustomerValues, DailyValues};
pub use definition::{Computed, Condition, Count, Definition, Op, Test, When, Window};
