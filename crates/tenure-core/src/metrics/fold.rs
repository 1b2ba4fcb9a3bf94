//! One pass over the customers for every table of a report.
//!
//! Each table is a [`Plan`]: what it knows before looking at customers (periods, lookups),
//! an accumulator each customer adds to, how two partial accumulators merge, and how the
//! result is finished into rows. [`compute`] runs one plan over a dataset in parallel; a
//! tuple or an `Option` of plans is itself a plan, so the report folds every table it was
//! asked for in a single pass: each customer's state and lists are brought into cache once
//! for all the tables, not once per table (on a million customers the passes were bound by
//! those cache misses; docs/benchmarks.md).

use rayon::prelude::*;

use super::{Dataset, Prepared};
use crate::customer::CustomerState;

pub(crate) trait Plan<'a>: Sync {
    type Acc: Send;
    type Output;
    fn empty(&self) -> Self::Acc;
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>);
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    fn finish(&self, acc: Self::Acc) -> Self::Output;
}

/// Folds every customer of `data` into the plan's accumulator (both cores) and finishes it.
pub(crate) fn compute<'a, P: Plan<'a>>(data: &Dataset<'a>, plan: &P) -> P::Output {
    let acc = data
        .customers
        .par_iter()
        .fold(
            || plan.empty(),
            |mut acc, c| {
                plan.add(&mut acc, c);
                acc
            },
        )
        .reduce(
            || plan.empty(),
            |mut a, b| {
                plan.merge(&mut a, b);
                a
            },
        );
    plan.finish(acc)
}

/// A table not asked for costs nothing.
impl<'a, P: Plan<'a>> Plan<'a> for Option<P> {
    type Acc = Option<P::Acc>;
    type Output = Option<P::Output>;
    fn empty(&self) -> Self::Acc {
        self.as_ref().map(P::empty)
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        if let (Some(plan), Some(acc)) = (self, acc) {
            plan.add(acc, c);
        }
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        if let (Some(plan), Some(acc), Some(other)) = (self, acc, other) {
            plan.merge(acc, other);
        }
    }
    fn finish(&self, acc: Self::Acc) -> Self::Output {
        self.as_ref().zip(acc).map(|(plan, acc)| plan.finish(acc))
    }
}

/// Two plans in one pass.
impl<'a, A: Plan<'a>, B: Plan<'a>> Plan<'a> for (A, B) {
    type Acc = (A::Acc, B::Acc);
    type Output = (A::Output, B::Output);
    fn empty(&self) -> Self::Acc {
        (self.0.empty(), self.1.empty())
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        self.0.add(&mut acc.0, c);
        self.1.add(&mut acc.1, c);
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        self.0.merge(&mut acc.0, other.0);
        self.1.merge(&mut acc.1, other.1);
    }
    fn finish(&self, acc: Self::Acc) -> Self::Output {
        (self.0.finish(acc.0), self.1.finish(acc.1))
    }
}

/// What the streaming pass counted besides the tables.
pub(crate) struct Counted {
    /// Customers the filters kept.
    pub customers: usize,
    /// Of whom some amount had no rate to the reporting currency.
    pub without_rate: usize,
}

/// Like [`compute`], preparing each customer inside the pass (`frame` from
/// [`Dataset::frame`]): no prepared customer outlives its turn, and the state is read once
/// for the preparation and every table.
pub(crate) fn compute_streaming<'a, P: Plan<'a>>(
    frame: &Dataset<'a>,
    customers: &[&'a CustomerState],
    plan: &P,
) -> (P::Output, Counted) {
    let (acc, kept, without_rate) = customers
        .par_iter()
        .fold(
            || (plan.empty(), 0usize, 0usize),
            |(mut acc, kept, without_rate), c| match frame.prepare_one(c) {
                Some(p) => {
                    plan.add(&mut acc, &p);
                    (acc, kept + 1, without_rate + usize::from(p.missing_rate))
                }
                None => (acc, kept, without_rate),
            },
        )
        .reduce(
            || (plan.empty(), 0, 0),
            |(mut a, ka, wa), (b, kb, wb)| {
                plan.merge(&mut a, b);
                (a, ka + kb, wa + wb)
            },
        );
    (
        plan.finish(acc),
        Counted {
            customers: kept,
            without_rate,
        },
    )
}
