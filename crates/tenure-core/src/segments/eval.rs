//! Evaluating a condition for one customer at one instant, and the next instant at which
//! its answer can change without a new event (the segment's timer).
//!
//! Both read the customer's state as of the instant: facts stamped later (a late clock, a
//! scheduled cancellation) are not yet true, and become true at their own instant, which
//! is therefore a candidate for the timer. Behaviour windows are whole UTC days, so an
//! occurrence leaves a window at the midnight that starts day `day + D`.

use serde_json::Value;

use crate::customer::{CustomerState, DayCount};
use crate::health::model::Grade;
use crate::names::NameId;
use crate::names::NameTable;
use crate::segments::definition::{Computed, Condition, When, Window, passes};
use crate::time::{MILLIS_PER_DAY, Millis, day_of};

/// What segments read of health: a customer's score and grade at an instant under the
/// workspace's models, and when the model that scores them can change. The health module
/// implements it ([`HealthModels`](crate::health::HealthModels)); choosing a model evaluates
/// segment conditions, so segments see health through this rather than import it.
pub trait HealthSource: Sync {
    /// The score and grade at `at` (a manual override in force included).
    fn grade(
        &self,
        state: &CustomerState,
        names: &NameTable,
        at: Millis,
    ) -> (Option<f64>, Option<Grade>);
    /// Whether one model scores every customer (no model changes to watch).
    fn is_single(&self) -> bool;
    /// The earliest instant after `at` at which the model chosen for the customer can
    /// change without an event.
    fn next_assignment_change(
        &self,
        state: &CustomerState,
        names: &NameTable,
        at: Millis,
    ) -> Option<Millis>;
}

/// What a condition is evaluated over.
pub struct Subject<'a> {
    pub state: &'a CustomerState,
    pub names: &'a NameTable,
    pub health: &'a dyn HealthSource,
    /// The workspace's churn-risk model, if one is trained.
    pub risk: Option<&'a dyn crate::risk::ChurnRisk>,
    /// The day's table of values (`daily.rs`), if the shell has computed one.
    pub daily: Option<&'a crate::segments::DailyValues>,
    /// For each slot of the definition: the customer's matching occurrences per UTC day,
    /// sorted by day.
    pub slots: &'a [&'a [(i32, u32)]],
}

fn midnight(day: i32) -> Millis {
    i64::from(day) * MILLIS_PER_DAY
}

/// Occurrences of one event per day: either from the state's activity (an event name) or
/// from a slot (a filtered leaf).
enum Days<'a> {
    Activity(&'a [DayCount], Option<NameId>),
    Slot(&'a [(i32, u32)]),
}

/// The iterator of [`Days::range`]: the entries from the start of the range, up to its
/// last day (`to`).
enum DayRange<'a> {
    /// The state's activity, every event's days: only `name`'s are taken.
    Activity(std::slice::Iter<'a, DayCount>, NameId, i32),
    Slot(std::slice::Iter<'a, (i32, u32)>, i32),
}

impl Iterator for DayRange<'_> {
    type Item = (i32, u32);

    fn next(&mut self) -> Option<(i32, u32)> {
        match self {
            DayRange::Activity(days, name, to) => {
                for d in days.by_ref() {
                    if d.day > *to {
                        *days = [].iter();
                        return None;
                    }
                    if d.name == *name {
                        return Some((d.day, d.count));
                    }
                }
                None
            }
            DayRange::Slot(days, to) => match days.next() {
                Some(&(day, count)) if day <= *to => Some((day, count)),
                Some(_) => {
                    *days = [].iter();
                    None
                }
                None => None,
            },
        }
    }
}

impl Days<'_> {
    fn of<'a>(subject: &Subject<'a>, event: &str, slot: Option<usize>) -> Days<'a> {
        match slot {
            Some(i) => Days::Slot(subject.slots.get(i).copied().unwrap_or(&[])),
            None => Days::Activity(&subject.state.activity, subject.names.get(event)),
        }
    }

    /// `(day, count)` for the days `from..=to`, in day order (no allocation: evaluation
    /// calls this for every customer).
    fn range(&self, from: i32, to: i32) -> DayRange<'_> {
        match *self {
            Days::Activity(_, None) => DayRange::Slot([].iter(), to),
            Days::Activity(activity, Some(name)) => {
                let start = activity.partition_point(|d| d.day < from);
                DayRange::Activity(activity[start..].iter(), name, to)
            }
            Days::Slot(days) => {
                let start = days.partition_point(|(d, _)| *d < from);
                DayRange::Slot(days[start..].iter(), to)
            }
        }
    }

    fn count(&self, from: i32, to: i32) -> u64 {
        self.range(from, to).map(|(_, c)| u64::from(c)).sum()
    }

    fn first(&self, to: i32) -> Option<i32> {
        self.range(i32::MIN, to).next().map(|(d, _)| d)
    }

    fn last(&self, to: i32) -> Option<i32> {
        self.range(i32::MIN, to).last().map(|(d, _)| d)
    }

    /// The first day after `today` with an occurrence: it enters every window at its
    /// midnight.
    fn next_after(&self, today: i32) -> Option<Millis> {
        self.range(today + 1, i32::MAX)
            .next()
            .map(|(d, _)| midnight(d))
    }
}

/// Whether the condition holds for the subject at `now`.
pub fn holds(condition: &Condition, s: &Subject<'_>, now: Millis) -> bool {
    let today = day_of(now);
    match condition {
        Condition::All(cs) => cs.iter().all(|c| holds(c, s, now)),
        Condition::Any(cs) => cs.iter().any(|c| holds(c, s, now)),
        Condition::Not(c) => !holds(c, s, now),
        Condition::Trait { key, test } => passes(test, s.state.traits.get(key)),
        Condition::Computed { value, test } => computed_passes(*value, test, s, now),
        Condition::Performed {
            event,
            count,
            window,
            slot,
            ..
        } => {
            let days = Days::of(s, event, *slot);
            let n = match window {
                Window::Ever => days.count(i32::MIN, today),
                Window::LastDays(d) => days.count(today - *d as i32 + 1, today),
            };
            count.holds(n)
        }
        Condition::HealthBand { grade, for_days } => (0..i64::from(*for_days))
            .all(|k| s.health.grade(s.state, s.names, now - k * MILLIS_PER_DAY).1 == Some(*grade)),
        Condition::HealthDrop {
            points,
            within_days,
        } => {
            let now_score = s.health.grade(s.state, s.names, now).0;
            let before = s
                .health
                .grade(
                    s.state,
                    s.names,
                    now - i64::from(*within_days) * MILLIS_PER_DAY,
                )
                .0;
            matches!((now_score, before), (Some(n), Some(b)) if b - n >= *points)
        }
        Condition::FirstPerformed { event, when } => Days::of(s, event, None)
            .first(today)
            .is_some_and(|day| when_holds(*when, day, today)),
        Condition::LastPerformed { event, when } => Days::of(s, event, None)
            .last(today)
            .is_some_and(|day| when_holds(*when, day, today)),
        Condition::Sequence {
            first,
            then,
            within_days,
        } => {
            let a = Days::of(s, first, None);
            let b = Days::of(s, then, None);
            // For each day with `then`, is there a `first` on it or up to T days before?
            let firsts: Vec<i32> = a.range(i32::MIN, today).map(|(d, _)| d).collect();
            b.range(i32::MIN, today).any(|(day, _)| {
                let i = firsts.partition_point(|f| *f < day - *within_days as i32);
                firsts.get(i).is_some_and(|f| *f <= day)
            })
        }
    }
}

fn when_holds(when: When, day: i32, today: i32) -> bool {
    match when {
        When::Before(d) => day < d,
        When::Since(d) => day >= d,
        When::WithinDays(n) => day > today - n as i32,
    }
}

fn computed_passes(
    value: Computed,
    test: &crate::segments::Test,
    s: &Subject<'_>,
    now: Millis,
) -> bool {
    let state = s.state;
    let one = |v: Option<Value>| passes(test, v.as_ref());
    match value {
        Computed::Health => one(s
            .health
            .grade(state, s.names, now)
            .0
            .map(|x| Value::from((x * 10.0).round() / 10.0))),
        Computed::Grade => one(s.health.grade(state, s.names, now).1.map(|g| {
            Value::from(match g {
                Grade::Red => "red",
                Grade::Yellow => "yellow",
                Grade::Green => "green",
            })
        })),
        Computed::Nps => one(latest_nps(state, now).map(Value::from)),
        Computed::NpsCategory => one(latest_nps(state, now).map(|n| {
            Value::from(match n {
                9.. => "promoter",
                7 | 8 => "passive",
                _ => "detractor",
            })
        })),
        Computed::TenureDays => one(Some(Value::from(
            (now - state.first_seen).div_euclid(MILLIS_PER_DAY),
        ))),
        Computed::Plan => {
            let mut plans = state.plans_at(now).map(Value::from).peekable();
            // A customer on two plans is "on" each of them; `ne` holds when none matches.
            match test.op {
                crate::segments::Op::Ne => plans.all(|p| passes(test, Some(&p))),
                crate::segments::Op::NotExists => plans.peek().is_none(),
                _ if plans.peek().is_none() => passes(test, None),
                _ => plans.any(|p| passes(test, Some(&p))),
            }
        }
        Computed::Mrr => {
            let mrr = state.main_currency.map_or(0, |c| state.mrr_in(c, now));
            one(Some(Value::from(mrr)))
        }
        Computed::Status => one(Some(Value::from(state.status_at(now).as_str()))),
        Computed::Orders => one(Some(Value::from(
            state.orders.iter().take_while(|o| o.at <= now).count(),
        ))),
        Computed::Risk => one(s
            .risk
            .and_then(|m| m.probability(state, s.names, now))
            .map(Value::from)),
        Computed::PAlive | Computed::PredictedClv | Computed::RevenuePercentile => {
            let values = s.daily.and_then(|d| d.get(&state.id));
            one(values
                .and_then(|v| match value {
                    Computed::PAlive => v.p_alive,
                    Computed::PredictedClv => v.predicted_clv,
                    _ => v.revenue_percentile,
                })
                .map(Value::from))
        }
    }
}

fn latest_nps(state: &CustomerState, now: Millis) -> Option<u8> {
    state
        .survey_answers
        .iter()
        .rev()
        .filter(|a| a.at <= now && a.scale == 10)
        .find_map(|a| a.score)
}

/// The earliest instant after `now` at which `holds` may answer differently, if no event
/// arrives before it. `None`: only a new event can change it.
pub fn next_change(condition: &Condition, s: &Subject<'_>, now: Millis) -> Option<Millis> {
    let today = day_of(now);
    match condition {
        Condition::All(cs) | Condition::Any(cs) => cs
            .iter()
            .map(|c| next_change(c, s, now))
            .fold(None, earliest),
        Condition::Not(c) => next_change(c, s, now),
        Condition::Trait { .. } => None,
        Condition::Computed { value, .. } => computed_next_change(*value, s, now),
        // Scores are read at `now` and at whole days before it: all of them cross midnight
        // together, and a dated fact at `t` reaches the score k days back at `t + k` days.
        Condition::HealthBand { for_days, .. } => health_next_change(s, now, *for_days - 1),
        Condition::HealthDrop { within_days, .. } => (0..=*within_days)
            .step_by(*within_days as usize)
            .map(|k| health_next_change(s, now, k))
            .fold(None, earliest),
        Condition::Performed {
            event,
            window,
            slot,
            ..
        } => {
            let days = Days::of(s, event, *slot);
            let entering = days.next_after(today);
            match window {
                Window::Ever => entering,
                Window::LastDays(d) => {
                    // The oldest day in the window leaves it first; whether the count then
                    // crosses the threshold is decided when the timer fires.
                    let leaving = days
                        .range(today - *d as i32 + 1, today)
                        .next()
                        .map(|(day, _)| midnight(day + *d as i32));
                    earliest(entering, leaving)
                }
            }
        }
        Condition::FirstPerformed { event, when } | Condition::LastPerformed { event, when } => {
            let days = Days::of(s, event, None);
            let is_first = matches!(condition, Condition::FirstPerformed { .. });
            let day = if is_first {
                days.first(today)
            } else {
                days.last(today)
            };
            // A first occurrence never changes once it is in the past; a later last does.
            let entering = if is_first && day.is_some() {
                None
            } else {
                days.next_after(today)
            };
            let expiring = match (when, day) {
                // Only while it holds: an older day has already left the window.
                (When::WithinDays(n), Some(day)) if day > today - *n as i32 => {
                    Some(midnight(day + *n as i32))
                }
                _ => None,
            };
            earliest(entering, expiring)
        }
        Condition::Sequence { first, then, .. } => earliest(
            Days::of(s, first, None).next_after(today),
            Days::of(s, then, None).next_after(today),
        ),
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn computed_next_change(value: Computed, s: &Subject, now: Millis) -> Option<Millis> {
    let state = s.state;
    match value {
        // Health reads day windows, recency in days and every dated fact.
        Computed::Health | Computed::Grade => health_next_change(s, now, 0),
        Computed::Nps | Computed::NpsCategory => state
            .survey_answers
            .iter()
            .map(|a| a.at)
            .filter(|at| *at > now)
            .min(),
        Computed::TenureDays => {
            let elapsed = (now - state.first_seen).div_euclid(MILLIS_PER_DAY);
            Some(state.first_seen + (elapsed + 1) * MILLIS_PER_DAY)
        }
        Computed::Plan | Computed::Mrr | Computed::Status => state.next_subscription_change(now),
        Computed::Orders => state.orders.iter().map(|o| o.at).find(|at| *at > now),
        // The risk features read whole days (recency, windows, tenure), dated facts
        // (answers, tickets, subscription changes) and orders: a later-stamped one, or one
        // leaving the 365-day window at its exact instant.
        Computed::Risk => {
            let orders = state
                .orders
                .iter()
                .flat_map(|o| [o.at, o.at + 365 * MILLIS_PER_DAY])
                .filter(|at| *at > now)
                .min();
            [
                Some(midnight(day_of(now) + 1)),
                next_dated_fact(state, now),
                orders,
            ]
            .into_iter()
            .flatten()
            .min()
        }
        // Frozen until the next day's table, whose arrival reconciles every segment: no
        // timer (the shell's schedule brings the table).
        Computed::PAlive | Computed::PredictedClv | Computed::RevenuePercentile => None,
    }
}

/// When a health score read at `now - k days` for any `k` in `0..=back` can next change:
/// a midnight, a dated fact health reads, or a change of the model that scores the customer
/// (a workspace with models per segment, docs/health.md).
fn health_next_change(s: &Subject, now: Millis, back: u32) -> Option<Millis> {
    let next_midnight = midnight(day_of(now) + 1);
    (0..=i64::from(back))
        .flat_map(|k| {
            let shift = k * MILLIS_PER_DAY;
            let assignment = (!s.health.is_single())
                .then(|| {
                    s.health
                        .next_assignment_change(s.state, s.names, now - shift)
                })
                .flatten();
            [next_dated_fact(s.state, now - shift), assignment]
                .into_iter()
                .flatten()
                .map(move |t| t + shift)
        })
        .chain(Some(next_midnight))
        .min()
}

/// The first instant after `now` of any fact health reads that is not a day boundary.
fn next_dated_fact(state: &CustomerState, now: Millis) -> Option<Millis> {
    let later = |at: Millis| (at > now).then_some(at);
    let tickets = state
        .tickets
        .iter()
        .flat_map(|t| [t.opened_at, t.resolved_at])
        .flatten()
        .filter_map(later);
    let answers = state.survey_answers.iter().filter_map(|a| later(a.at));
    let overrides = state
        .health_overrides
        .iter()
        .flat_map(|o| [o.at, o.expires_at])
        .filter_map(later);
    tickets
        .chain(answers)
        .chain(overrides)
        .chain(state.next_subscription_change(now))
        .min()
}
