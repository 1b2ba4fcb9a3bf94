//! What a metrics request asks for, parsed from `name=value` pairs: the same names are the
//! CLI's flags (`--grain month`) and the API's query parameters (`?grain=month`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Grain;
use super::activity::{CohortKind, ReturnMode, Window};
use crate::customer::CustomerState;
use crate::money::Currency;
use crate::subscription::{BillingPolicy, ChurnDate, Discounts};
use crate::time::{Millis, day_of, format_instant, parse_instant};

/// A parameter that could not be used, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[error("parameter `{parameter}`: {message}")]
pub struct QueryError {
    pub parameter: String,
    pub message: String,
}

impl QueryError {
    fn new(parameter: &str, message: impl Into<String>) -> Self {
        Self {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }
}

/// Which customers a metric counts. Every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Filter {
    /// Acquisition channel (lower case, as stored).
    pub channel: Option<String>,
    /// The customer's plan: the plan of the subscription that started or changed last.
    pub plan: Option<String>,
    /// Sign-up cohort: the period (at the query's grain) of the customer's first event.
    #[serde(skip)]
    pub cohort: Option<(Grain, i32)>,
    pub cohort_label: Option<String>,
    /// `(trait, value)`: the trait's value, as text, equals `value`.
    pub trait_equals: Option<(String, String)>,
    /// Members of this segment now (docs/segments.md): a segment is a set of customers at
    /// the instant of the report, and their whole history is counted.
    pub segment: Option<crate::ids::SegmentId>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn matches(&self, c: &CustomerState) -> bool {
        if let Some(channel) = &self.channel
            && c.acquisition.channel.as_deref() != Some(channel.as_str())
        {
            return false;
        }
        if let Some((grain, start)) = self.cohort
            && grain.floor_day(day_of(c.first_seen)) != start
        {
            return false;
        }
        if let Some((key, value)) = &self.trait_equals
            && !c.trait_equals(key, value)
        {
            return false;
        }
        if let Some(plan) = &self.plan
            && c.latest_plan() != Some(plan.as_str())
        {
            return false;
        }
        if let Some(segment) = self.segment
            && c.segments
                .binary_search_by_key(&segment, |(s, _)| *s)
                .is_err()
        {
            return false;
        }
        true
    }
}

/// Conventions where the anchors disagree (docs/metrics.md, "Settings").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    #[serde(flatten)]
    pub policy: BillingPolicy,
    /// A customer who pays again within this many days of churning is a reactivation; later
    /// they count as new business again. `None`: always a reactivation.
    pub reactivation_window_days: Option<u32>,
    /// Periods in the trailing churn average.
    pub smoothing_periods: usize,
    /// Share of revenue kept as gross margin (0–1], for LTV and CAC payback.
    pub gross_margin: f64,
    /// The reporting currency; by default the most used one.
    #[serde(skip)]
    pub currency: Option<Currency>,
    /// Units of the reporting currency per unit of another currency.
    #[serde(skip)]
    pub rates: BTreeMap<Currency, f64>,
    /// Whether the query named `renewals` (else the workspace's default applies).
    #[serde(skip)]
    pub renewals_given: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            policy: BillingPolicy::default(),
            reactivation_window_days: None,
            smoothing_periods: 6,
            gross_margin: 1.0,
            renewals_given: false,
            currency: None,
            rates: BTreeMap::new(),
        }
    }
}

/// Options of activity retention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityOptions {
    /// Events that put a customer in a cohort; empty: any named event.
    pub events: Vec<String>,
    /// Events that count as a return; empty: the same as `events`.
    pub return_events: Vec<String>,
    pub cohort_kind: CohortKind,
    pub mode: ReturnMode,
    pub window: Window,
    /// Occurrences needed in an interval to count as active in it.
    pub min_occurrences: u32,
}

impl Default for ActivityOptions {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            return_events: Vec::new(),
            cohort_kind: CohortKind::FirstTime,
            mode: ReturnMode::On,
            window: Window::Calendar,
            min_occurrences: 1,
        }
    }
}

/// A metrics request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    pub grain: Grain,
    #[serde(serialize_with = "crate::time::iso::serialize")]
    pub from: Millis,
    /// The instant the report is evaluated at (inclusive).
    #[serde(serialize_with = "crate::time::iso::serialize")]
    pub to: Millis,
    pub filter: Filter,
    pub settings: Settings,
    pub activity: ActivityOptions,
    /// What-if horizon, in periods.
    pub horizon: usize,
    /// What-if change of the churn rate, in percent (−10: churn falls by a tenth).
    pub churn_change: f64,
}

/// Most periods a report covers: a cohort or activity table holds up to this many squared
/// cells (160,000), a few megabytes of JSON. Two years of days, seven of weeks, 33 of months.
pub const MAX_PERIODS: usize = 400;

/// Every parameter name a query accepts.
pub const PARAMETERS: [&str; 25] = [
    "grain",
    "from",
    "to",
    "channel",
    "segment",
    "plan",
    "cohort",
    "trait",
    "currency",
    "rate",
    "churn_date",
    "past_due_days",
    "renewals",
    "reactivation_window_days",
    "discounts",
    "smoothing_periods",
    "gross_margin",
    "event",
    "return_event",
    "cohort_kind",
    "mode",
    "window",
    "min_occurrences",
    "horizon",
    "churn_change",
];

impl Query {
    /// The default query at `now`: monthly, the last 12 periods.
    pub fn at(now: Millis) -> Self {
        let grain = Grain::Month;
        Self {
            grain,
            from: default_from(grain, now),
            to: now,
            filter: Filter::default(),
            settings: Settings::default(),
            activity: ActivityOptions::default(),
            horizon: 12,
            churn_change: -10.0,
        }
    }

    /// Parses `name=value` pairs (a name may repeat where it says so). Unknown names, bad
    /// values and contradictions are all reported, each naming its parameter.
    pub fn parse<'p>(
        pairs: impl IntoIterator<Item = (&'p str, &'p str)>,
        now: Millis,
    ) -> Result<Self, Vec<QueryError>> {
        let mut q = Self::at(now);
        let mut errors = Vec::new();
        let mut from = None;
        let mut cohort = None;
        let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        // The grain first: other values (cohort labels, the default range) depend on it.
        for (name, value) in &pairs {
            if *name == "grain" {
                match Grain::parse(value) {
                    Some(g) => q.grain = g,
                    None => errors.push(QueryError::new(
                        "grain",
                        format!(
                            "`{value}` is not a grain: expected day, week, month, quarter or year"
                        ),
                    )),
                }
            }
        }
        for (name, value) in pairs {
            let value = value.trim();
            let mut bad = |message: String| errors.push(QueryError::new(name, message));
            match name {
                "grain" => {}
                "from" => match parse_instant(value) {
                    Some(t) => from = Some(t),
                    None => bad(format!("`{value}` is not a date (YYYY-MM-DD) or instant")),
                },
                "to" => match parse_instant(value) {
                    // A date alone means the whole day.
                    Some(t) if value.len() == 10 => q.to = t + crate::time::MILLIS_PER_DAY - 1,
                    Some(t) => q.to = t,
                    None => bad(format!("`{value}` is not a date (YYYY-MM-DD) or instant")),
                },
                "channel" => q.filter.channel = Some(value.to_ascii_lowercase()),
                "segment" => match crate::ids::SegmentId::parse(value) {
                    Some(id) => q.filter.segment = Some(id),
                    None => bad(format!("`{value}` is not a segment id (seg_ and a number)")),
                },
                "plan" => q.filter.plan = Some(value.to_owned()),
                "cohort" => cohort = Some(value.to_owned()),
                "trait" => match value.split_once(':') {
                    Some((k, v)) if !k.is_empty() => {
                        q.filter.trait_equals = Some((k.to_owned(), v.to_owned()))
                    }
                    _ => bad(format!("`{value}` is not `name:value`")),
                },
                "currency" => match Currency::parse(value) {
                    Some(c) => q.settings.currency = Some(c),
                    None => bad(format!("`{value}` is not an ISO 4217 currency code")),
                },
                "rate" => {
                    let parsed = value
                        .split_once([':', '='])
                        .and_then(|(c, r)| Some((Currency::parse(c)?, r.parse::<f64>().ok()?)));
                    match parsed {
                        Some((c, r)) if r.is_finite() && r > 0.0 => {
                            q.settings.rates.insert(c, r);
                        }
                        _ => bad(format!(
                            "`{value}` is not `CUR:rate` with a positive rate (e.g. EUR:1.08)"
                        )),
                    }
                }
                "churn_date" => match value {
                    "period_end" => q.settings.policy.churn_date = ChurnDate::PeriodEnd,
                    "cancellation" => q.settings.policy.churn_date = ChurnDate::Cancellation,
                    _ => bad(format!(
                        "`{value}` is not a churn date: expected period_end or cancellation"
                    )),
                },
                "past_due_days" => match value.parse::<u32>() {
                    Ok(n) => q.settings.policy.past_due_days = n,
                    Err(_) => bad(format!("`{value}` is not a whole number of days")),
                },
                "renewals" => match crate::subscription::Renewals::parse(value) {
                    Some(renewals) => {
                        q.settings.policy.renewals = renewals;
                        q.settings.renewals_given = true;
                    }
                    None => bad(format!(
                        "`{value}` is not a renewal policy: expected auto (implicit until a subscription's first Subscription Renewed), implicit or explicit"
                    )),
                },
                "reactivation_window_days" => match value {
                    "none" | "" => q.settings.reactivation_window_days = None,
                    _ => match value.parse::<u32>() {
                        Ok(n) => q.settings.reactivation_window_days = Some(n),
                        Err(_) => bad(format!("`{value}` is not a whole number of days or `none`")),
                    },
                },
                "discounts" => match value {
                    "apply" => q.settings.policy.discounts = Discounts::Apply,
                    "ignore" => q.settings.policy.discounts = Discounts::Ignore,
                    _ => bad(format!("`{value}` is not apply or ignore")),
                },
                "smoothing_periods" => match value.parse::<usize>() {
                    Ok(n) if (1..=60).contains(&n) => q.settings.smoothing_periods = n,
                    _ => bad(format!("`{value}` is not a number of periods from 1 to 60")),
                },
                "gross_margin" => match value.parse::<f64>() {
                    Ok(m) if m > 0.0 && m <= 1.0 => q.settings.gross_margin = m,
                    _ => bad(format!("`{value}` is not a share in (0, 1]")),
                },
                "event" => q.activity.events.extend(list(value)),
                "return_event" => q.activity.return_events.extend(list(value)),
                "cohort_kind" => match value {
                    "first_time" => q.activity.cohort_kind = CohortKind::FirstTime,
                    "recurring" => q.activity.cohort_kind = CohortKind::Recurring,
                    _ => bad(format!("`{value}` is not first_time or recurring")),
                },
                "mode" => match value {
                    "on" => q.activity.mode = ReturnMode::On,
                    "on_or_after" => q.activity.mode = ReturnMode::OnOrAfter,
                    _ => bad(format!("`{value}` is not on or on_or_after")),
                },
                "window" => match value {
                    "calendar" => q.activity.window = Window::Calendar,
                    "rolling" => q.activity.window = Window::Rolling,
                    _ => bad(format!("`{value}` is not calendar or rolling")),
                },
                "min_occurrences" => match value.parse::<u32>() {
                    Ok(n) if n >= 1 => q.activity.min_occurrences = n,
                    _ => bad(format!("`{value}` is not a whole number ≥ 1")),
                },
                "horizon" => match value.parse::<usize>() {
                    Ok(n) if (1..=120).contains(&n) => q.horizon = n,
                    _ => bad(format!(
                        "`{value}` is not a number of periods from 1 to 120"
                    )),
                },
                "churn_change" => match value.trim_end_matches('%').parse::<f64>() {
                    Ok(x) if (-100.0..=1000.0).contains(&x) => q.churn_change = x,
                    _ => bad(format!(
                        "`{value}` is not a percentage from -100 to 1000 (e.g. -10)"
                    )),
                },
                other => errors.push(QueryError::new(
                    other,
                    format!(
                        "unknown parameter; expected one of: {}",
                        PARAMETERS.join(", ")
                    ),
                )),
            }
        }
        q.from = from.unwrap_or_else(|| default_from(q.grain, q.to));
        // Bounded before anything is computed: a cohort table is periods × periods cells,
        // and `grain=day&from=1990-01-01` once asked for 13,000² of them.
        if q.from <= q.to {
            let periods = q
                .grain
                .periods_between(day_of(q.from), day_of(q.to), MAX_PERIODS + 1);
            if periods > MAX_PERIODS {
                errors.push(QueryError::new(
                    "from",
                    format!(
                        "from {} to {} is more than {MAX_PERIODS} {}s: narrow `from` / `to` or use a coarser `grain` (a report covers at most {MAX_PERIODS} periods)",
                        format_instant(q.from),
                        format_instant(q.to),
                        q.grain.name()
                    ),
                ));
            }
        }
        if q.from > q.to {
            errors.push(QueryError::new(
                "from",
                format!(
                    "{} is after `to` ({})",
                    format_instant(q.from),
                    format_instant(q.to)
                ),
            ));
        }
        if let Some(label) = cohort {
            match q.grain.parse_label(&label) {
                Some(day) => {
                    q.filter.cohort = Some((q.grain, day));
                    q.filter.cohort_label = Some(label);
                }
                None => errors.push(QueryError::new(
                    "cohort",
                    format!(
                        "`{label}` is not a {:?} period label (e.g. {})",
                        q.grain,
                        q.grain.label(q.grain.floor_day(day_of(q.to)))
                    )
                    .to_lowercase(),
                )),
            }
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(errors)
        }
    }

    /// Reads subscriptions under the workspace's renewal policy, unless the query named one.
    pub fn with_workspace_renewals(mut self, renewals: crate::subscription::Renewals) -> Self {
        if !self.settings.renewals_given {
            self.settings.policy.renewals = renewals;
        }
        self
    }

    pub fn periods(&self) -> super::Periods {
        super::Periods::new(self.grain, self.from, self.to)
    }
}

/// Twelve periods ending with the one containing `to`.
fn default_from(grain: Grain, to: Millis) -> Millis {
    let mut day = grain.floor_day(day_of(to));
    for _ in 0..11 {
        day = grain.floor_day(day - 1);
    }
    i64::from(day) * crate::time::MILLIS_PER_DAY
}

fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_780_000_000_000; // 2026-05-28

    /// Issue 17, item 1: `grain=day&from=1990-01-01` grew the server to 23.8 GB.
    #[test]
    fn a_report_covers_at_most_max_periods() {
        let errors = Query::parse([("grain", "day"), ("from", "1990-01-01")], NOW).unwrap_err();
        assert_eq!(errors[0].parameter, "from");
        assert!(
            errors[0].message.contains("more than 400 days"),
            "{}",
            errors[0].message
        );
        assert!(Query::parse([("grain", "week"), ("from", "1990-01-01")], NOW).is_err());
        assert!(Query::parse([("grain", "month"), ("from", "1990-01-01")], NOW).is_err());
        assert!(Query::parse([("grain", "year"), ("from", "1990-01-01")], NOW).is_ok());
        let days = Query::parse([("grain", "day"), ("from", "2025-06-01")], NOW);
        assert!(days.is_ok(), "a year of days is fine");
    }

    #[test]
    fn defaults_are_twelve_months_to_now() {
        let q = Query::parse([], NOW).unwrap();
        assert_eq!(q.grain, Grain::Month);
        assert_eq!(format_instant(q.from), "2025-06-01T00:00:00.000Z");
        assert_eq!(q.periods().len(), 12);
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let errors = Query::parse(
            [
                ("grain", "fortnight"),
                ("from", "soon"),
                ("rate", "EUR"),
                ("colour", "red"),
                ("gross_margin", "1.5"),
            ],
            NOW,
        )
        .unwrap_err();
        let names: Vec<&str> = errors.iter().map(|e| e.parameter.as_str()).collect();
        assert_eq!(names, ["grain", "from", "rate", "colour", "gross_margin"]);
        assert!(errors[3].message.contains("expected one of"));
    }

    #[test]
    fn cohort_labels_follow_the_grain() {
        let q = Query::parse([("grain", "quarter"), ("cohort", "2026-Q1")], NOW).unwrap();
        assert_eq!(q.filter.cohort_label.as_deref(), Some("2026-Q1"));
        let errors = Query::parse([("cohort", "2026-Q1")], NOW).unwrap_err();
        assert_eq!(errors[0].parameter, "cohort");
        let q = Query::parse([("to", "2026-03-31"), ("from", "2026-01-01")], NOW).unwrap();
        assert_eq!(format_instant(q.to), "2026-03-31T23:59:59.999Z");
        assert_eq!(q.periods().len(), 3);
    }
}
