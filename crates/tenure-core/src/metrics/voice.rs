//! Voice of the customer: NPS, CSAT and response rate per period, NPS by acquisition channel
//! and plan, and verbatims (docs/metrics.md, "Voice").

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::{Dataset, PeriodHeader, Query, ratio};
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
struct Tally {
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
    let periods = query.periods();
    let n = periods.len();
    let as_of = periods.as_of;
    let tallies = data
        .customers
        .par_iter()
        .fold(
            || vec![Tally::default(); n],
            |mut acc, c| {
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
                acc
            },
        )
        .reduce(
            || vec![Tally::default(); n],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| x.add(y));
                a
            },
        );
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
    let (from, to) = (query.from, query.to);
    let mut rows = Vec::new();
    for dimension in ["channel", "plan"] {
        let mut by: BTreeMap<String, Tally> = BTreeMap::new();
        for c in &data.customers {
            let mut answers = c
                .state
                .survey_answers
                .iter()
                .filter(|a| a.at >= from && a.at <= to && a.scale == 10)
                .peekable();
            if answers.peek().is_none() {
                continue;
            }
            let value = match dimension {
                "channel" => c.state.acquisition.channel.clone(),
                _ => c.state.latest_plan().map(str::to_owned),
            }
            .unwrap_or_else(|| "unknown".to_owned());
            let tally = by.entry(value).or_default();
            answers.for_each(|a| tally.answer(a));
        }
        rows.extend(by.into_iter().map(|(value, t)| NpsBreakdownRow {
            dimension: dimension.to_owned(),
            value,
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
    let mut all: Vec<(i64, Verbatim)> = Vec::new();
    for c in &data.customers {
        for a in &c.state.survey_answers {
            let Some(comment) = a.comment.as_ref().filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            if a.at < query.from || a.at > query.to {
                continue;
            }
            let category = match (a.scale, a.score) {
                (5, Some(s)) if s >= 4 => "satisfied",
                (5, Some(_)) => "unsatisfied",
                (_, None) => "skipped",
                (_, Some(s)) if s >= 9 => "promoter",
                (_, Some(s)) if s >= 7 => "passive",
                (_, Some(_)) => "detractor",
            };
            all.push((
                a.at,
                Verbatim {
                    customer_id: c.state.id.to_string(),
                    at: format_instant(a.at),
                    survey_id: a.survey_id.clone(),
                    score: a.score,
                    category,
                    comment: comment.clone(),
                },
            ));
        }
    }
    all.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.customer_id.cmp(&b.1.customer_id))
    });
    all.into_iter().take(limit).map(|(_, v)| v).collect()
}
