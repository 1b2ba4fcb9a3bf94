//! The workspace's health at a glance: current customers by grade and the red ones with
//! the lowest scores, with their reasons.

use rayon::prelude::*;
use serde::Serialize;

use super::assignment::HealthModels;
use super::model::Grade;
use super::score::Reason;
use crate::customer::CustomerState;
use crate::names::NameTable;
use crate::time::Millis;

/// The workspace's current customers by grade, and those at risk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthOverview {
    /// The model, or the models tried in order joined by ` + ` (docs/health.md).
    pub model: String,
    #[serde(with = "crate::time::iso")]
    pub as_of: Millis,
    /// Current customers (paying a subscription now, or with an order in the last 365
    /// days) that have a score.
    pub customers: usize,
    pub red: usize,
    pub yellow: usize,
    pub green: usize,
    /// Red customers, lowest score first (at most the limit asked for).
    pub at_risk: Vec<AtRisk>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtRisk {
    pub customer_id: String,
    pub user_id: Option<String>,
    pub score: f64,
    /// The components that cost the most points, most first (at most two).
    pub reasons: Vec<Reason>,
}

impl HealthModels {
    /// Scores the current customers at `now`: counts by grade and the `limit` red ones with
    /// the lowest scores, with their reasons.
    pub fn overview<'a>(
        &self,
        customers: impl Iterator<Item = &'a CustomerState>,
        names: &NameTable,
        now: Millis,
        limit: usize,
    ) -> HealthOverview {
        let year_ago = now - 365 * crate::time::MILLIS_PER_DAY;
        let mut overview = HealthOverview {
            model: self
                .models()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            as_of: now,
            customers: 0,
            red: 0,
            yellow: 0,
            green: 0,
            at_risk: Vec::new(),
        };
        let states: Vec<&CustomerState> = customers.collect();
        // Every current customer scored in parallel (there is no stored score to go stale);
        // the breakdown only for those listed.
        let scored: Vec<(&CustomerState, f64, Grade)> = states
            .par_iter()
            .filter(|state| {
                state.paying_at(now) || state.orders.iter().any(|o| o.at > year_ago && o.at <= now)
            })
            .filter_map(|state| match self.grade(state, names, now) {
                (Some(score), Some(grade)) => Some((*state, score, grade)),
                _ => None,
            })
            .collect();
        let mut red: Vec<(f64, &CustomerState)> = Vec::new();
        for (state, score, grade) in scored {
            overview.customers += 1;
            match grade {
                Grade::Red => {
                    overview.red += 1;
                    red.push((score, state));
                }
                Grade::Yellow => overview.yellow += 1,
                Grade::Green => overview.green += 1,
            }
        }
        // Only the `limit` lowest are listed: select them, then order those.
        let lowest = |a: &(f64, &CustomerState), b: &(f64, &CustomerState)| {
            a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id))
        };
        if limit > 0 && red.len() > limit {
            red.select_nth_unstable_by(limit - 1, lowest);
        }
        red.truncate(limit);
        red.sort_by(lowest);
        overview.at_risk = red
            .into_iter()
            .map(|(score, state)| AtRisk {
                customer_id: state.id.to_string(),
                user_id: state.user_id.clone(),
                score,
                reasons: self.score(state, names, now).reasons(2),
            })
            .collect();
        overview
    }
}
