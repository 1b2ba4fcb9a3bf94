//! Subscription cohorts by first-paid period: logo retention and net MRR retention.

use serde::Serialize;

use super::fold::{Plan, compute};
use super::{Dataset, Periods, Prepared, Query, ratio};
use crate::time::format_instant;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortTable {
    pub rows: Vec<CohortRow>,
    /// Averages per age over complete cells of non-empty cohorts, weighted by cohort size
    /// (logo) and by initial MRR (MRR).
    pub average: Vec<RetentionAverage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRow {
    pub cohort: String,
    pub cohort_start: String,
    /// Customers whose first payment fell in the cohort period.
    pub customers: u64,
    /// The sum of each member's first MRR.
    pub initial_mrr: i64,
    pub cells: Vec<CohortCell>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortCell {
    /// Periods after the cohort period (0: the cohort period itself).
    pub age: usize,
    pub period: String,
    /// Members paying or paused at the end of the period.
    pub customers: u64,
    pub logo_retention: Option<f64>,
    pub mrr: i64,
    pub net_mrr_retention: Option<f64>,
    /// False while the period is still running.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionAverage {
    pub age: usize,
    /// Cohorts that contributed (non-empty, cell complete).
    pub cohorts: usize,
    pub logo_retention: Option<f64>,
    pub net_mrr_retention: Option<f64>,
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Cell {
    size: u64,
    initial: i64,
    kept: u64,
    mrr: i64,
}

pub fn subscription_cohorts(data: &Dataset, query: &Query) -> CohortTable {
    compute(data, &CohortsPlan::new(query))
}

pub(crate) struct CohortsPlan {
    periods: Periods,
    closes: Vec<i64>,
}

impl CohortsPlan {
    pub(crate) fn new(query: &Query) -> Self {
        let periods = query.periods();
        let closes = (0..periods.len()).map(|i| periods.close(i)).collect();
        Self { periods, closes }
    }
}

impl<'a> Plan<'a> for CohortsPlan {
    /// matrix[c * n + k]: cohort c at age k; `size` and `initial` live in age 0.
    type Acc = Vec<Cell>;
    type Output = CohortTable;
    fn empty(&self) -> Self::Acc {
        let n = self.periods.len();
        vec![Cell::default(); n * n]
    }
    fn add(&self, m: &mut Self::Acc, c: &Prepared<'a>) {
        let n = self.periods.len();
        let Some(first) = c.first_paid else {
            return;
        };
        let Some(cohort) = self.periods.index_of(first) else {
            return;
        };
        let initial = c.mrr.iter().find(|s| s.mrr > 0).map_or(0, |s| s.mrr);
        m[cohort * n].size += 1;
        m[cohort * n].initial += initial;
        for (k, close) in self.closes[cohort..].iter().enumerate() {
            let (mrr, paused) = c.before(*close);
            let cell = &mut m[cohort * n + k];
            if mrr > 0 || paused {
                cell.kept += 1;
            }
            cell.mrr += mrr;
        }
    }
    fn merge(&self, a: &mut Self::Acc, b: Self::Acc) {
        for (x, y) in a.iter_mut().zip(&b) {
            x.size += y.size;
            x.initial += y.initial;
            x.kept += y.kept;
            x.mrr += y.mrr;
        }
    }
    fn finish(&self, matrix: Self::Acc) -> CohortTable {
        cohort_table(&self.periods, &matrix)
    }
}

fn cohort_table(periods: &Periods, matrix: &[Cell]) -> CohortTable {
    let n = periods.len();
    let mut rows = Vec::with_capacity(n);
    let mut sums = vec![(0usize, 0u64, 0u64, 0i64, 0i64); n];
    for c in 0..n {
        let head = matrix[c * n];
        let cells = (0..n - c)
            .map(|k| {
                let cell = matrix[c * n + k];
                let complete = periods.complete(c + k);
                if complete && head.size > 0 {
                    let s = &mut sums[k];
                    s.0 += 1;
                    s.1 += head.size;
                    s.2 += cell.kept;
                    s.3 += head.initial;
                    s.4 += cell.mrr;
                }
                CohortCell {
                    age: k,
                    period: periods.label(c + k),
                    customers: cell.kept,
                    logo_retention: ratio(cell.kept as f64, head.size as f64),
                    mrr: cell.mrr,
                    net_mrr_retention: ratio(cell.mrr as f64, head.initial as f64),
                    complete,
                }
            })
            .collect();
        rows.push(CohortRow {
            cohort: periods.label(c),
            cohort_start: format_instant(periods.start(c)),
            customers: head.size,
            initial_mrr: head.initial,
            cells,
        });
    }
    let average = sums
        .iter()
        .enumerate()
        .map(
            |(age, (cohorts, size, kept, initial, mrr))| RetentionAverage {
                age,
                cohorts: *cohorts,
                logo_retention: ratio(*kept as f64, *size as f64),
                net_mrr_retention: ratio(*mrr as f64, *initial as f64),
            },
        )
        .collect();
    CohortTable { rows, average }
}
