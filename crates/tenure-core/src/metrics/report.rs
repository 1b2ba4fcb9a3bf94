//! The report: every table a query asks for, computed from one engine snapshot.

use serde::Serialize;

use super::activity::{ActivityPlan, EventIds, LifecyclePlan, StickinessPlan};
use super::cohorts::CohortsPlan;
use super::fold::compute_streaming;
use super::subscriptions::SubscriptionsPlan;
use super::transactions::TransactionsPlan;
use super::value::{ChannelsPlan, ConcentrationPlan, ReferralsPlan};
use super::voice::{NpsBreakdownPlan, VerbatimsPlan, VoicePlan};
use super::{
    ActivityRetention, ChannelRow, CohortTable, Concentration, CurrencyInfo, Dataset, LifecycleRow,
    NpsBreakdownRow, Query, ReferralRow, Spend, StickinessRow, SubscriptionRow, TransactionRow,
    Verbatim, VoiceRow, WhatIf,
};
use crate::engine::Engine;
use crate::time::format_instant;

/// The tables of a report, by the name used in `--metric` and `/v1/metrics/{table}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Subscriptions,
    Cohorts,
    Activity,
    Lifecycle,
    Stickiness,
    Transactions,
    Voice,
    NpsBreakdown,
    Verbatims,
    Referrals,
    Channels,
    Concentration,
    WhatIf,
}

impl Table {
    pub const ALL: [Table; 13] = [
        Self::Subscriptions,
        Self::Cohorts,
        Self::Activity,
        Self::Lifecycle,
        Self::Stickiness,
        Self::Transactions,
        Self::Voice,
        Self::NpsBreakdown,
        Self::Verbatims,
        Self::Referrals,
        Self::Channels,
        Self::Concentration,
        Self::WhatIf,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Subscriptions => "subscriptions",
            Self::Cohorts => "cohorts",
            Self::Activity => "activity",
            Self::Lifecycle => "lifecycle",
            Self::Stickiness => "stickiness",
            Self::Transactions => "transactions",
            Self::Voice => "voice",
            Self::NpsBreakdown => "nps_breakdown",
            Self::Verbatims => "verbatims",
            Self::Referrals => "referrals",
            Self::Channels => "channels",
            Self::Concentration => "concentration",
            Self::WhatIf => "what_if",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let text = text.replace('-', "_");
        Self::ALL.into_iter().find(|t| t.name() == text)
    }
}

/// Everything a query asked for. Absent tables are left out of the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workspace: String,
    pub as_of: String,
    pub query: Query,
    pub currency: CurrencyInfo,
    /// Customers matching the filters.
    pub customers: usize,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<Vec<SubscriptionRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohorts: Option<CohortTable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<ActivityRetention>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Vec<LifecycleRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<Vec<StickinessRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<TransactionRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<Vec<VoiceRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps_breakdown: Option<Vec<NpsBreakdownRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verbatims: Option<Vec<Verbatim>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrals: Option<Vec<ReferralRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<ChannelRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concentration: Option<Concentration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_if: Option<WhatIf>,
}

/// Resolves event names; names never seen are reported and match nothing.
fn resolve(engine: &Engine, names: &[String], warnings: &mut Vec<String>) -> EventIds {
    if names.is_empty() {
        return None;
    }
    let mut ids = Vec::new();
    for name in names {
        match engine.names().get(name) {
            Some(id) => ids.push(id),
            None => warnings.push(format!("no event named `{name}` has been received")),
        }
    }
    Some(ids)
}

impl Report {
    pub fn build(engine: &Engine, query: &Query, spend: &[Spend], tables: &[Table]) -> Self {
        // In place order: the folds merge in any order (rayon splits the work as it
        // likes), and the table's order is the fastest to walk.
        let customers: Vec<_> = engine.customers_by_place().collect();
        // MRR step functions only when a table reads them.
        let with_mrr = tables.iter().any(|t| {
            matches!(
                t,
                Table::Subscriptions
                    | Table::Cohorts
                    | Table::Referrals
                    | Table::Channels
                    | Table::Concentration
                    | Table::WhatIf
            )
        });
        let needs_money = with_mrr || tables.contains(&Table::Transactions);
        let mut data = Dataset::frame(&customers, query, with_mrr, needs_money);
        let mut warnings = Vec::new();
        let cohort_events = resolve(engine, &query.activity.events, &mut warnings);
        let return_events = if query.activity.return_events.is_empty() {
            cohort_events.clone()
        } else {
            resolve(engine, &query.activity.return_events, &mut warnings)
        };
        let kept;
        let wants = |t: Table| tables.contains(&t);
        let plan = |t: Table| wants(t).then_some(());
        // Every table asked for, in one pass over the customers (see `fold`).
        let plans = (
            (wants(Table::Subscriptions) || wants(Table::WhatIf))
                .then(|| SubscriptionsPlan::new(query)),
            (
                plan(Table::Cohorts).map(|()| CohortsPlan::new(query)),
                (
                    plan(Table::Activity)
                        .map(|()| ActivityPlan::new(query, &cohort_events, &return_events)),
                    (
                        plan(Table::Lifecycle).map(|()| LifecyclePlan::new(query, &cohort_events)),
                        (
                            plan(Table::Stickiness)
                                .map(|()| StickinessPlan::new(query, &cohort_events)),
                            (
                                plan(Table::Transactions)
                                    .map(|()| TransactionsPlan::new(&data, query)),
                                (
                                    plan(Table::Voice).map(|()| VoicePlan::new(query)),
                                    (
                                        plan(Table::NpsBreakdown)
                                            .map(|()| NpsBreakdownPlan::new(query)),
                                        (
                                            plan(Table::Verbatims)
                                                .map(|()| VerbatimsPlan::new(query, 50)),
                                            (
                                                plan(Table::Referrals)
                                                    .map(|()| ReferralsPlan::new(query)),
                                                (
                                                    plan(Table::Channels).map(|()| {
                                                        ChannelsPlan::new(&data, query, spend)
                                                    }),
                                                    plan(Table::Concentration).map(|()| {
                                                        ConcentrationPlan::new(&data, query)
                                                    }),
                                                ),
                                            ),
                                        ),
                                    ),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        );
        let (
            subscriptions,
            (
                cohorts,
                (
                    activity,
                    (
                        lifecycle,
                        (
                            stickiness,
                            (
                                transactions,
                                (
                                    voice,
                                    (
                                        nps_breakdown,
                                        (verbatims, (referrals, (channels, concentration))),
                                    ),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ) = {
            let (outputs, counted) = compute_streaming(&data, &customers, &plans);
            data.currency.customers_without_rate = counted.without_rate;
            kept = counted.customers;
            outputs
        };
        if data.currency.customers_without_rate > 0 {
            warnings.push(format!(
                "{} customers have amounts in a currency without a rate to {}; those amounts are left out (pass rate=CUR:rate)",
                data.currency.customers_without_rate, data.currency.currency
            ));
        }
        let what_if = wants(Table::WhatIf)
            .then(|| super::what_if(subscriptions.as_deref().unwrap_or_default(), query));
        Self {
            workspace: engine.workspace().to_string(),
            as_of: format_instant(query.to),
            query: query.clone(),
            currency: data.currency.clone(),
            customers: kept,
            subscriptions: subscriptions.filter(|_| wants(Table::Subscriptions)),
            cohorts,
            activity,
            lifecycle,
            stickiness,
            transactions,
            voice,
            nps_breakdown,
            verbatims,
            referrals,
            channels,
            concentration,
            what_if,
            warnings,
        }
    }
}
