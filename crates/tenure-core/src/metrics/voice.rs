//! Voice of the customer: NPS, CSAT and response rate per period, NPS by acquisition channel
//! and plan, and verbatims (docs/metrics.md, "Voice").

use std::collections::BTreeMap;

use serde::Serialize;

use super::fold::{Plan, compute};
use super::{Dataset, PeriodHeader, Periods, Prepared, Query, ratio};
use crate::customer::SurveyAnswer;
use crate::time::format_instant;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiceRow {
    #[serde(flatten)]
    pub header: PeriodHeader,
    pub surveys_shown: u64,
    /// Every submitted answer (NPS and CSAT, scored or skipped).
    pub responses: u64,
    pub response_rate: Option<f64>,
    /// NPS answers with a score.
    pub nps_responses: u64,
    /// NPS answers that skipped the score (never in the NPS denominator).
    pub nps_skipped: u64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    /// % promoters − % detractors, from −100 to 100.
    pub nps: Option<f64>,
    pub csat_responses: u64,
    /// Share of CSAT scores of 4 or 5.
    pub csat: Option<f64>,
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Tally {
    shown: u64,
    responses: u64,
    skipped: u64,
    promoters: u64,
    passives: u64,
    detractors: u64,
    csat: u64,
    satisfied: u64,
}

impl Tally {
    fn answer(&mut self, a: &SurveyAnswer) {
        self.responses += 1;
        match (a.scale, a.score) {
            (5, Some(s)) => {
                self.csat += 1;
                if s >= 4 {
                    self.satisfied += 1;
                }
            }
            (5, None) => {}
            (_, None) => self.skipped += 1,
            (_, Some(s)) if s >= 9 => self.promoters += 1,
            (_, Some(s)) if s >= 7 => self.passives += 1,
            (_, Some(_)) => self.detractors += 1,
        }
    }

    fn add(&mut self, o: &Self) {
        self.shown += o.shown;
        self.responses += o.responses;
        self.skipped += o.skipped;
        self.promoters += o.promoters;
        self.passives += o.passives;
        self.detractors += o.detractors;
        self.csat += o.csat;
        self.satisfied += o.satisfied;
    }

    fn answered(&self) -> u64 {
        self.promoters + self.passives + self.detractors
    }

    fn nps(&self) -> Option<f64> {
        ratio(
            100.0 * (self.promoters as f64 - self.detractors as f64),
            self.answered() as f64,
        )
    }
}

pub fn voice_metrics(data: &Dataset, query: &Query) -> Vec<VoiceRow> {
    compute(data, &VoicePlan::new(query))
}

pub(crate) struct VoicePlan {
    periods: Periods,
}

impl VoicePlan {
    pub(crate) fn new(query: &Query) -> Self {
        Self {
            periods: query.periods(),
        }
    }
}

impl<'a> Plan<'a> for VoicePlan {
    type Acc = Vec<Tally>;
    type Output = Vec<VoiceRow>;
    fn empty(&self) -> Self::Acc {
        vec![Tally::default(); self.periods.len()]
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        let (periods, as_of) = (&self.periods, self.periods.as_of);
        for shown in c.state.surveys_shown.iter().filter(|t| **t <= as_of) {
            if let Some(i) = periods.index_of(*shown) {
                acc[i].shown += 1;
            }
        }
        for a in c.state.survey_answers.iter().filter(|a| a.at <= as_of) {
            if let Some(i) = periods.index_of(a.at) {
                acc[i].answer(a);
            }
        }
    }
    fn merge(&self, a: &mut Self::Acc, b: Self::Acc) {
        a.iter_mut().zip(&b).for_each(|(x, y)| x.add(y));
    }
    fn finish(&self, tallies: Self::Acc) -> Self::Output {
        let periods = &self.periods;
        tallies
            .iter()
            .enumerate()
            .map(|(i, t)| VoiceRow {
                header: periods.header(i),
                surveys_shown: t.shown,
                responses: t.responses,
                response_rate: ratio(t.responses as f64, t.shown as f64),
                nps_responses: t.answered(),
                nps_skipped: t.skipped,
                promoters: t.promoters,
                passives: t.passives,
                detractors: t.detractors,
                nps: t.nps(),
                csat_responses: t.csat,
                csat: ratio(t.satisfied as f64, t.csat as f64),
            })
            .collect()
    }
}

/// NPS over the whole range for each value of a dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NpsBreakdownRow {
    /// `channel` or `plan`.
    pub dimension: String,
    /// The channel or plan (`unknown` when the customer has none).
    pub value: String,
    pub nps_responses: u64,
    pub nps_skipped: u64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    pub nps: Option<f64>,
}

pub fn nps_breakdown(data: &Dataset, query: &Query) -> Vec<NpsBreakdownRow> {
    compute(data, &NpsBreakdownPlan::new(query))
}

pub(crate) struct NpsBreakdownPlan {
    from: i64,
    to: i64,
}

impl NpsBreakdownPlan {
    pub(crate) fn new(query: &Query) -> Self {
        Self {
            from: query.from,
            to: query.to,
        }
    }
}

/// Tallies by channel and by plan (borrowed from the customers' states).
type ByDimension<'a> = [BTreeMap<&'a str, Tally>; 2];

impl<'a> Plan<'a> for NpsBreakdownPlan {
    type Acc = ByDimension<'a>;
    type Output = Vec<NpsBreakdownRow>;
    fn empty(&self) -> Self::Acc {
        Default::default()
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        let state = c.state;
        let answers = || {
            state
                .survey_answers
                .iter()
                .filter(|a| a.at >= self.from && a.at <= self.to && a.scale == 10)
        };
        if answers().next().is_none() {
            return;
        }
        let values = [state.acquisition.channel.as_deref(), state.latest_plan()];
        for (by, value) in acc.iter_mut().zip(values) {
            let tally = by.entry(value.unwrap_or("unknown")).or_default();
            answers().for_each(|a| tally.answer(a));
        }
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        for (by, other) in acc.iter_mut().zip(other) {
            for (value, t) in other {
                by.entry(value).or_default().add(&t);
            }
        }
    }
    fn finish(&self, acc: Self::Acc) -> Self::Output {
        let mut rows = Vec::new();
        for (dimension, by) in ["channel", "plan"].into_iter().zip(acc) {
            rows.extend(by.into_iter().map(|(value, t)| NpsBreakdownRow {
                dimension: dimension.to_owned(),
                value: value.to_owned(),
                nps_responses: t.answered(),
                nps_skipped: t.skipped,
                promoters: t.promoters,
                passives: t.passives,
                detractors: t.detractors,
                nps: t.nps(),
            }));
        }
        rows
    }
}

/// A comment left with a survey answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verbatim {
    pub customer_id: String,
    pub at: String,
    pub survey_id: String,
    pub score: Option<u8>,
    /// promoter, passive, detractor, or skipped (NPS); satisfied / unsatisfied (CSAT).
    pub category: &'static str,
    pub comment: String,
}

/// The most recent comments in the range, newest first.
pub fn verbatims(data: &Dataset, query: &Query, limit: usize) -> Vec<Verbatim> {
    compute(data, &VerbatimsPlan::new(query, limit))
}

pub(crate) struct VerbatimsPlan {
    from: i64,
    to: i64,
    limit: usize,
}

impl VerbatimsPlan {
    pub(crate) fn new(query: &Query, limit: usize) -> Self {
        Self {
            from: query.from,
            to: query.to,
            limit,
        }
    }
}

impl<'a> Plan<'a> for VerbatimsPlan {
    /// Answers with a comment in the range, with their customer.
    type Acc = Vec<(&'a crate::customer::CustomerState, &'a SurveyAnswer)>;
    type Output = Vec<Verbatim>;
    fn empty(&self) -> Self::Acc {
        Vec::new()
    }
    fn add(&self, acc: &mut Self::Acc, c: &Prepared<'a>) {
        let state = c.state;
        for a in &state.survey_answers {
            if a.comment.as_ref().is_some_and(|t| !t.trim().is_empty())
                && a.at >= self.from
                && a.at <= self.to
            {
                acc.push((state, a));
            }
        }
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        acc.extend(other);
    }
    fn finish(&self, mut all: Self::Acc) -> Self::Output {
        all.sort_by(|(ca, a), (cb, b)| b.at.cmp(&a.at).then_with(|| ca.id.cmp(&cb.id)));
        all.into_iter()
            .take(self.limit)
            .map(|(state, a)| Verbatim {
                customer_id: state.id.to_string(),
                at: format_instant(a.at),
                survey_id: a.survey_id.clone(),
                score: a.score,
                category: match (a.scale, a.score) {
                    (5, Some(s)) if s >= 4 => "satisfied",
                    (5, Some(_)) => "unsatisfied",
                    (_, None) => "skipped",
                    (_, Some(s)) if s >= 9 => "promoter",
                    (_, Some(s)) if s >= 7 => "passive",
                    (_, Some(_)) => "detractor",
                },
                comment: a.comment.clone().unwrap_or_default(),
            })
            .collect()
    }
}
