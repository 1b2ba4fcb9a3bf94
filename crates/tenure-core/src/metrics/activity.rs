//! Activity retention for any event or set of events, lifecycle and stickiness
//! (docs/metrics.md, "Activity"). Works from each customer's per-day event counts, so a
//! closed period's numbers only change when events for it arrive late.

use serde::Serialize;

use super::fold::{Plan, compute};
use super::{Dataset, PeriodHeader, Periods, Prepared, Query, ratio};
use crate::active_months::month_of_day;
use crate::customer::DayCount;
use crate::names::NameId;
use crate::time::{civil_from_days, days_from_civil, format_instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CohortKind {
    /// Each customer once, in the period they first did the event.
    #[default]
    FirstTime,
    /// Each customer in every period they did the event.
    Recurring,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnMode {
    /// Returned in interval k.
    #[default]
    On,
    /// Returned in interval k or any later one.
    OnOrAfter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Intervals are the calendar periods of the grain.
    #[default]
    Calendar,
    /// Intervals are counted from each customer's own first day (day 0–6 is week 0, …).
    Rolling,
}

/// Events resolved to interned names; `None` means any named event.
pub type EventIds = Option<Vec<NameId>>;

fn counts(set: &EventIds, entry: &DayCount) -> bool {
    set.as_ref().is_none_or(|ids| ids.contains(&entry.name))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityRetention {
    pub cohorts: Vec<ActivityCohort>,
    /// Size-weighted retention per interval over complete cells of non-empty cohorts.
    pub average: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityCohort {
    pub cohort: String,
    pub cohort_start: String,
    pub customers: u64,
    /// Returning customers per interval (index 0: the cohort itself).
    pub returned: Vec<u64>,
    pub retention: Vec<Option<f64>>,
    /// Whether each interval had ended by the report instant.
    pub complete: Vec<bool>,
}

/// Interval index of `day` in a rolling window starting on `first` (whole grains since it).
fn rolling_index(grain: super::Grain, first: i32, day: i32) -> Option<usize> {
    if day < first {
        return None;
    }
    let months = match grain {
        super::Grain::Day => return Some((day - first) as usize),
        super::Grain::Week => return Some(((day - first) / 7) as usize),
        super::Grain::Month => 1,
        super::Grain::Quarter => 3,
        super::Grain::Year => 12,
    };
    let (y1, m1, d1) = civil_from_days(first);
    let (y2, m2, _) = civil_from_days(day);
    let diff = (y2 * 12 + m2 as i32) - (y1 * 12 + m1 as i32);
    // The start of interval k: k·months after `first`, the day clamped to the month's end.
    let start = |k: i32| {
        let index = y1 * 12 + (m1 as i32 - 1) + k * months;
        let (y, m) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
        let last = days_from_civil(y + i32::from(m == 12), m % 12 + 1, 1) - 1;
        days_from_civil(y, m, d1).min(last)
    };
    let mut k = diff.div_euclid(months);
    while start(k) > day {
        k -= 1;
    }
    Some(k as usize)
}

/// Per-period activity of one customer: occurrences of the set's events per period.
fn per_period(activity: &[DayCount], set: &EventIds, lookup: &DayLookup, out: &mut [u32]) {
    out.iter_mut().for_each(|x| *x = 0);
    for entry in activity {
        if !counts(set, entry) {
            continue;
        }
        if let Some(i) = lookup.index(entry.day) {
            out[i] += entry.count;
        }
    }
}

/// Day number → period index, for the days the periods cover.
pub(crate) struct DayLookup {
    first: i32,
    index: Vec<u32>,
}

impl DayLookup {
    pub(crate) fn new(periods: &Periods) -> Self {
        let first = periods.start_day(0);
        let last = periods.start_day(periods.len());
        let mut index = Vec::with_capacity((last - first) as usize);
        for i in 0..periods.len() {
            for _ in periods.start_day(i)..periods.start_day(i + 1) {
                index.push(i as u32);
            }
        }
        Self { first, index }
    }

    pub(crate) fn index(&self, day: i32) -> Option<usize> {
        let k = usize::try_from(day - self.first).ok()?;
        self.index.get(k).map(|i| *i as usize)
    }
}

pub(crate) struct Matrix {
    size: Vec<u64>,
    returned: Vec<u64>,
    scratch: Vec<u32>,
    scratch_returns: Vec<u32>,
}

/// The retention matrix of the query's activity options.
pub fn activity_retention(
    data: &Dataset,
    query: &Query,
    cohort_events: &EventIds,
    return_events: &EventIds,
) -> ActivityRetention {
    compute(
        data,
        &ActivityPlan::new(query, cohort_events, return_events),
    )
}

pub(crate) struct ActivityPlan {
    periods: Periods,
    n: usize,
    lookup: DayLookup,
    options: super::ActivityOptions,
    grain: super::Grain,
    min: u32,
    first_day: i32,
    end_day: i32,
    rolling: bool,
    same_events: bool,
    /// Calendar windows with one occurrence enough: the periods a customer was active in
    /// fit in a bit set, built in the same scan that finds the first occurrence.
    bitsets: bool,
    /// Any event, monthly: the months are indexed in the state (no activity list to walk).
    month_index: bool,
    first_month: i32,
    cohort_events: EventIds,
    return_events: EventIds,
}

impl ActivityPlan {
    pub(crate) fn new(query: &Query, cohort_events: &EventIds, return_events: &EventIds) -> Self {
        let periods = query.periods();
        let n = periods.len();
        let options = query.activity.clone();
        let min = options.min_occurrences;
        let rolling = options.window == Window::Rolling;
        let bitsets = !rolling && min == 1 && n <= 64;
        let first_day = periods.start_day(0);
        Self {
            lookup: DayLookup::new(&periods),
            n,
            grain: query.grain,
            min,
            first_day,
            end_day: periods.start_day(n),
            rolling,
            same_events: cohort_events == return_events,
            bitsets,
            month_index: bitsets
                && query.grain == super::Grain::Month
                && cohort_events.is_none()
                && return_events.is_none(),
            first_month: month_of_day(first_day),
            cohort_events: cohort_events.clone(),
            return_events: return_events.clone(),
            options,
            periods,
        }
    }
}

impl<'a> Plan<'a> for ActivityPlan {
    type Acc = Matrix;
    type Output = ActivityRetention;
    fn empty(&self) -> Matrix {
        let n = self.n;
        Matrix {
            size: vec![0; n],
            returned: vec![0; n * n],
            scratch: vec![0; n],
            scratch_returns: vec![0; n],
        }
    }
    fn add(&self, m: &mut Matrix, c: &Prepared<'a>) {
        let (n, min, first_day, end_day) = (self.n, self.min, self.first_day, self.end_day);
        let (rolling, same_events, bitsets) = (self.rolling, self.same_events, self.bitsets);
        let (month_index, first_month) = (self.month_index, self.first_month);
        let (lookup, options) = (&self.lookup, &self.options);
        let (cohort_events, return_events) = (&self.cohort_events, &self.return_events);
        let activity = &c.state.activity;
        if month_index {
            let months = &c.state.active_months;
            let first = months
                .first()
                .and_then(|f| usize::try_from(f - first_month).ok().filter(|i| *i < n));
            let active = months.window(first_month, n);
            add_bitsets(m, first, active, active, options);
            return;
        }
        if bitsets {
            let (first, cohort, returns) =
                active_periods(activity, cohort_events, return_events, lookup);
            add_bitsets(m, first, cohort, returns, options);
            return;
        }
        if rolling {
            // First-time cohorts only: the first day of the cohort event.
            let Some(first) = activity.iter().find(|e| counts(cohort_events, e)) else {
                return;
            };
            if first.day < first_day || first.day >= end_day {
                return;
            }
            let Some(cohort) = lookup.index(first.day) else {
                return;
            };
            m.size[cohort] += 1;
            let r = &mut m.scratch_returns;
            r.iter_mut().for_each(|x| *x = 0);
            for e in activity.iter().filter(|e| counts(return_events, e)) {
                if let Some(k) = rolling_index(self.grain, first.day, e.day)
                    && k < n - cohort
                {
                    r[k] += e.count;
                }
            }
            add_returns(
                &mut m.returned[cohort * n..],
                &r[..n - cohort],
                min,
                options.mode,
            );
            return;
        }
        per_period(activity, cohort_events, lookup, &mut m.scratch);
        if !same_events {
            per_period(activity, return_events, lookup, &mut m.scratch_returns);
        } else {
            m.scratch_returns.copy_from_slice(&m.scratch);
        }
        match options.cohort_kind {
            CohortKind::FirstTime => {
                let first = activity.iter().find(|e| counts(cohort_events, e));
                if let Some(cohort) = first.and_then(|f| lookup.index(f.day)) {
                    m.size[cohort] += 1;
                    let returns = &m.scratch_returns[cohort..];
                    add_returns(&mut m.returned[cohort * n..], returns, min, options.mode);
                }
            }
            CohortKind::Recurring => {
                for cohort in 0..n {
                    if m.scratch[cohort] >= min {
                        m.size[cohort] += 1;
                        let returns = &m.scratch_returns[cohort..];
                        add_returns(&mut m.returned[cohort * n..], returns, min, options.mode);
                    }
                }
            }
        }
    }
    fn merge(&self, a: &mut Matrix, b: Matrix) {
        a.size.iter_mut().zip(&b.size).for_each(|(x, y)| *x += y);
        a.returned
            .iter_mut()
            .zip(&b.returned)
            .for_each(|(x, y)| *x += y);
    }
    fn finish(&self, m: Matrix) -> ActivityRetention {
        let (periods, n, rolling) = (&self.periods, self.n, self.rolling);
        let (size, returned) = (m.size, m.returned);
        let mut weighted = vec![(0u64, 0u64); n];
        let cohorts = (0..n)
            .map(|c| {
                let cells = n - c;
                // A rolling interval k of cohort c has ended for every member once period
                // c + k + 1 has.
                let complete: Vec<bool> = (0..cells)
                    .map(|k| {
                        if !rolling {
                            return periods.complete(c + k);
                        }
                        let end_day = periods.grain.next_day(periods.start_day(c + k + 1));
                        i64::from(end_day) * crate::time::MILLIS_PER_DAY <= periods.as_of + 1
                    })
                    .collect();
                let mut row: Vec<u64> = returned[c * n..c * n + cells].to_vec();
                row[0] = size[c];
                for k in 0..cells {
                    if complete[k] && size[c] > 0 {
                        weighted[k].0 += size[c];
                        weighted[k].1 += row[k];
                    }
                }
                ActivityCohort {
                    cohort: periods.label(c),
                    cohort_start: format_instant(periods.start(c)),
                    customers: size[c],
                    retention: row
                        .iter()
                        .map(|r| ratio(*r as f64, size[c] as f64))
                        .collect(),
                    returned: row,
                    complete,
                }
            })
            .collect();
        ActivityRetention {
            cohorts,
            average: weighted
                .iter()
                .map(|(size, kept)| ratio(*kept as f64, *size as f64))
                .collect(),
        }
    }
}

/// The periods (calendar windows, at most 64) in which a customer did the cohort events and
/// the return events, as bit sets, and the period of their first cohort event ever (`None`
/// when it is outside the periods), in one scan of the activity list.
fn active_periods(
    activity: &[DayCount],
    cohort_events: &EventIds,
    return_events: &EventIds,
    lookup: &DayLookup,
) -> (Option<usize>, u64, u64) {
    let mut cohort_periods = 0u64;
    let mut return_periods = 0u64;
    let mut first_day = None;
    for e in activity {
        let cohort = counts(cohort_events, e);
        if cohort && first_day.is_none() {
            first_day = Some(e.day);
        }
        if let Some(i) = lookup.index(e.day) {
            if cohort {
                cohort_periods |= 1 << i;
            }
            if counts(return_events, e) {
                return_periods |= 1 << i;
            }
        }
    }
    (
        first_day.and_then(|d| lookup.index(d)),
        cohort_periods,
        return_periods,
    )
}

/// One customer's contribution to the matrix from bit sets of their active periods (at
/// least one occurrence): the same cells as counting occurrences per period, without the
/// per-period vectors.
fn add_bitsets(
    m: &mut Matrix,
    first_period: Option<usize>,
    cohort_periods: u64,
    return_periods: u64,
    options: &super::ActivityOptions,
) {
    let n = m.size.len();
    let mut add = |cohort: usize| {
        m.size[cohort] += 1;
        let row = &mut m.returned[cohort * n..];
        // Intervals k ≥ 1 after the cohort's period.
        let later = (return_periods >> cohort) & !1;
        match options.mode {
            ReturnMode::On => {
                let mut bits = later;
                while bits != 0 {
                    row[bits.trailing_zeros() as usize] += 1;
                    bits &= bits - 1;
                }
            }
            ReturnMode::OnOrAfter => {
                if later != 0 {
                    let last = 63 - later.leading_zeros() as usize;
                    row[1..=last].iter_mut().for_each(|cell| *cell += 1);
                }
            }
        }
    };
    match options.cohort_kind {
        CohortKind::FirstTime => {
            if let Some(cohort) = first_period {
                add(cohort);
            }
        }
        CohortKind::Recurring => {
            let mut bits = cohort_periods;
            while bits != 0 {
                add(bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
    }
}

/// Adds one cohort member's returns (occurrences per interval from the cohort's) to `row`.
fn add_returns(row: &mut [u64], occurrences: &[u32], min: u32, mode: ReturnMode) {
    match mode {
        ReturnMode::On => {
            for (k, count) in occurrences.iter().enumerate().skip(1) {
                if *count >= min {
                    row[k] += 1;
                }
            }
        }
        ReturnMode::OnOrAfter => {
            if let Some(last) = occurrences.iter().rposition(|c| *c >= min) {
                for cell in row.iter_mut().take(last + 1).skip(1) {
                    *cell += 1;
                }
            }
        }
    }
}

/// Customers by lifecycle stage in one period (PostHog's definitions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LifecycleRow {
    #[serde(flatten)]
    pub header: PeriodHeader,
    /// Active for the first time ever.
    pub new: u64,
    /// Active in this period and the previous one.
    pub returning: u64,
    /// Active now, not in the previous period, but at some time before.
    pub resurrecting: u64,
    /// Active in the previous period, not in this one.
    pub dormant: u64,
    pub active: u64,
}

pub fn lifecycle(data: &Dataset, query: &Query, events: &EventIds) -> Vec<LifecycleRow> {
    compute(data, &LifecyclePlan::new(query, events))
}

pub(crate) struct LifecyclePlan {
    /// The query's periods and the one before (to tell returning from new).
    periods: Periods,
    lookup: DayLookup,
    min: u32,
    first_day: i32,
    /// Any event, monthly: the state's month index, one bit per period.
    month_index: bool,
    first_month: i32,
    events: EventIds,
}

impl LifecyclePlan {
    pub(crate) fn new(query: &Query, events: &EventIds) -> Self {
        let periods = query.periods().extended_back(1);
        let min = query.activity.min_occurrences;
        let first_day = periods.start_day(0);
        Self {
            lookup: DayLookup::new(&periods),
            min,
            first_day,
            month_index: query.grain == super::Grain::Month
                && events.is_none()
                && min == 1
                && periods.len() <= 64,
            first_month: month_of_day(first_day),
            events: events.clone(),
            periods,
        }
    }
}

impl<'a> Plan<'a> for LifecyclePlan {
    /// Customers per period and stage (new, returning, resurrecting, dormant), and a
    /// scratch row of occurrences per period.
    type Acc = (Vec<[u64; 4]>, Vec<u32>);
    type Output = Vec<LifecycleRow>;
    fn empty(&self) -> Self::Acc {
        let n = self.periods.len();
        (vec![[0u64; 4]; n], vec![0u32; n])
    }
    fn add(&self, (stages, scratch): &mut Self::Acc, c: &Prepared<'a>) {
        let (n, min, first_month) = (self.periods.len(), self.min, self.first_month);
        let activity = &c.state.activity;
        let (before_range, first_period) = if self.month_index {
            let months = &c.state.active_months;
            let Some(first) = months.first() else {
                return;
            };
            let active = months.window(first_month, n);
            scratch
                .iter_mut()
                .enumerate()
                .for_each(|(i, s)| *s = u32::from(active >> i & 1 == 1));
            let offset = first - first_month;
            (offset < 0, usize::try_from(offset).ok().filter(|i| *i < n))
        } else {
            let Some(first) = activity.iter().find(|e| counts(&self.events, e)) else {
                return;
            };
            per_period(activity, &self.events, &self.lookup, scratch);
            (first.day < self.first_day, self.lookup.index(first.day))
        };
        for i in 1..n {
            let now = scratch[i] >= min;
            let prev = scratch[i - 1] >= min;
            let stage = if now && first_period == Some(i) {
                0
            } else if now && prev {
                1
            } else if now && (before_range || first_period.is_some_and(|f| f < i)) {
                2
            } else if !now && prev {
                3
            } else {
                continue;
            };
            stages[i][stage] += 1;
        }
    }
    fn merge(&self, a: &mut Self::Acc, b: Self::Acc) {
        for (x, y) in a.0.iter_mut().zip(&b.0) {
            for s in 0..4 {
                x[s] += y[s];
            }
        }
    }
    fn finish(&self, (stages, _): Self::Acc) -> Self::Output {
        (1..self.periods.len())
            .map(|i| {
                let [new, returning, resurrecting, dormant] = stages[i];
                LifecycleRow {
                    header: self.periods.header(i),
                    new,
                    returning,
                    resurrecting,
                    dormant,
                    active: new + returning + resurrecting,
                }
            })
            .collect()
    }
}

/// How many customers were active on exactly d days of the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StickinessRow {
    #[serde(flatten)]
    pub header: PeriodHeader,
    pub active_customers: u64,
    /// Element j: customers active on exactly j + 1 days.
    pub customers_by_active_days: Vec<u64>,
    /// Mean active days per active customer.
    pub mean_active_days: Option<f64>,
}

pub fn stickiness(data: &Dataset, query: &Query, events: &EventIds) -> Vec<StickinessRow> {
    compute(data, &StickinessPlan::new(query, events))
}

pub(crate) struct StickinessPlan {
    periods: Periods,
    lookup: DayLookup,
    min: u32,
    /// Days in each period.
    widths: Vec<usize>,
    events: EventIds,
}

impl StickinessPlan {
    pub(crate) fn new(query: &Query, events: &EventIds) -> Self {
        let periods = query.periods();
        let widths = (0..periods.len())
            .map(|i| (periods.start_day(i + 1) - periods.start_day(i)) as usize)
            .collect();
        Self {
            lookup: DayLookup::new(&periods),
            min: query.activity.min_occurrences,
            widths,
            events: events.clone(),
            periods,
        }
    }
}

impl<'a> Plan<'a> for StickinessPlan {
    /// Per period, customers by active days; and a scratch row of active days per period.
    type Acc = (Vec<Vec<u64>>, Vec<usize>);
    type Output = Vec<StickinessRow>;
    fn empty(&self) -> Self::Acc {
        (
            self.widths.iter().map(|w| vec![0u64; *w]).collect(),
            vec![0usize; self.periods.len()],
        )
    }
    fn add(&self, (h, days): &mut Self::Acc, c: &Prepared<'a>) {
        days.iter_mut().for_each(|d| *d = 0);
        let mut current: Option<(i32, u32)> = None;
        let flush = |entry: Option<(i32, u32)>, days: &mut Vec<usize>| {
            if let Some((day, count)) = entry
                && count >= self.min
                && let Some(i) = self.lookup.index(day)
            {
                days[i] += 1;
            }
        };
        for e in c.state.activity.iter().filter(|e| counts(&self.events, e)) {
            match &mut current {
                Some((day, count)) if *day == e.day => *count += e.count,
                _ => {
                    flush(current, days);
                    current = Some((e.day, e.count));
                }
            }
        }
        flush(current, days);
        for (i, d) in days.iter().enumerate() {
            if *d > 0 {
                h[i][d - 1] += 1;
            }
        }
    }
    fn merge(&self, a: &mut Self::Acc, b: Self::Acc) {
        for (x, y) in a.0.iter_mut().zip(&b.0) {
            x.iter_mut().zip(y).for_each(|(p, q)| *p += q);
        }
    }
    fn finish(&self, (hist, _): Self::Acc) -> Self::Output {
        hist.into_iter()
            .enumerate()
            .map(|(i, by_days)| {
                let active: u64 = by_days.iter().sum();
                let total: u64 = by_days
                    .iter()
                    .enumerate()
                    .map(|(j, c)| (j as u64 + 1) * c)
                    .sum();
                StickinessRow {
                    header: self.periods.header(i),
                    active_customers: active,
                    mean_active_days: ratio(total as f64, active as f64),
                    customers_by_active_days: by_days,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Grain;
    use crate::time::{day_of, parse_instant};

    fn day(text: &str) -> i32 {
        day_of(parse_instant(text).unwrap())
    }

    #[test]
    fn rolling_months_clamp_to_the_month_end() {
        let jan31 = day("2026-01-31");
        assert_eq!(
            rolling_index(Grain::Month, jan31, day("2026-02-27")),
            Some(0)
        );
        assert_eq!(
            rolling_index(Grain::Month, jan31, day("2026-02-28")),
            Some(1)
        );
        assert_eq!(
            rolling_index(Grain::Month, jan31, day("2026-03-30")),
            Some(1)
        );
        assert_eq!(
            rolling_index(Grain::Month, jan31, day("2026-03-31")),
            Some(2)
        );
        assert_eq!(
            rolling_index(Grain::Week, jan31, day("2026-02-07")),
            Some(1)
        );
        assert_eq!(rolling_index(Grain::Week, jan31, day("2026-01-30")), None);
    }
}
