//! Customer-base predictions from a workspace's own data (`tenure-clv`), cached per workspace
//! and refitted when the day has changed, or when the engine has folded new events and the
//! fit is [`REFIT_AFTER`] old: a fit takes from a millisecond (BG/NBD) to most of a second
//! (Pareto/NBD on the demo's 1,548 purchasers), and under steady ingest every profile would
//! otherwise pay it:
//!
//! - **orders**: BG/NBD and Pareto/NBD for purchases, of which the one with the higher
//!   log-likelihood is kept (both have four parameters), and Gamma-Gamma for spend, on every
//!   customer with an order. Time unit: weeks; T runs to the current UTC day. CLV: 12 months
//!   at 1% a month, `lifetimes`' convention, in the workspace's main order currency.
//! - **subscriptions**: sBG on the first monthly subscription of every subscriber (months paid
//!   without a break; reactivations start a new life and are not part of it). Contractual CLV
//!   = current MRR × DERL, the discounted expected residual lifetime at 1% a month.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tenure_clv::bgnbd::Rft;
use tenure_clv::clv::customer_lifetime_value;
use tenure_clv::gamma_gamma::GammaGamma;
use tenure_clv::optimize::Fit;
use tenure_clv::purchases::{PurchaseModel, PurchaseModelKind};
use tenure_clv::sbg::ShiftedBetaGeometric;
use tenure_core::customer::CustomerState;
use tenure_core::money::Currency;
use tenure_core::segments::{CustomerValues, DailyValues};
use tenure_core::time::{Millis, day_of};
use tenure_core::{LiveWorkspace, WorkspaceId};

/// A fit older than this is redone when the log has moved on (see the module's doc).
pub const REFIT_AFTER: Millis = 5 * 60 * 1000;

/// Fewer purchasers than this and the models are not fitted (the estimates would be noise).
const MIN_CUSTOMERS: usize = 30;
const WEEK: f64 = 7.0;
const CLV_MONTHS: u32 = 12;
const MONTHLY_DISCOUNT: f64 = 0.01;
const WEEKS_PER_MONTH: f64 = 4.345;

pub struct OrderModels {
    purchases: PurchaseModel,
    /// Every candidate's fit (the kept one among them).
    candidates: Vec<(PurchaseModelKind, Fit)>,
    gamma_gamma: Option<(GammaGamma, Fit)>,
    currency: Currency,
    customers: usize,
    day_at_fit: i32,
}

/// What a customer's profile shows.
#[derive(Debug, Clone, Serialize)]
pub struct Predictions {
    pub model: &'static str,
    pub fitted_on_customers: usize,
    pub probability_alive: f64,
    pub expected_orders_next_52_weeks: f64,
    /// Discounted value of the next 12 months of orders (Gamma-Gamma spend × BG/NBD
    /// purchases); absent when the spend model could not be fitted.
    pub predicted_clv_12_months: Option<f64>,
    pub currency: String,
}

/// What a subscriber's profile shows.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionPredictions {
    pub model: &'static str,
    pub fitted_on_subscribers: usize,
    /// Months paid without a break since the first monthly subscription started.
    pub renewals: u32,
    /// Probability of paying the coming month.
    pub retention_next_month: f64,
    /// DERL: expected months still to be paid (the coming one included), discounted at 1% a month.
    pub expected_remaining_months: f64,
    /// Current MRR × DERL, per currency, major units.
    pub predicted_clv: std::collections::BTreeMap<String, f64>,
}

pub struct SubscriptionModel {
    sbg: ShiftedBetaGeometric,
    subscribers: usize,
}

#[derive(Default, Clone)]
pub struct PredictionCache {
    fitted: Arc<Mutex<HashMap<WorkspaceId, Attempt<OrderModels>>>>,
    subscriptions: Arc<Mutex<HashMap<WorkspaceId, Attempt<SubscriptionModel>>>>,
}

/// The last fit of a workspace's model, kept even when it failed (too few customers, no
/// convergence), so that a failure is computed and logged once per fit, not on every
/// profile read.
struct Attempt<T> {
    model: Option<Arc<T>>,
    events_at_fit: u64,
    day_at_fit: i32,
    fitted_at: Millis,
}

impl<T> Attempt<T> {
    fn new(model: Option<T>, engine: &LiveWorkspace, now: Millis) -> Self {
        Self {
            model: model.map(Arc::new),
            events_at_fit: engine.events_applied(),
            day_at_fit: day_of(now),
            fitted_at: now,
        }
    }

    /// Fitted today, and on the engine as it is (or less than `REFIT_AFTER` ago).
    fn fresh(&self, engine: &LiveWorkspace, now: Millis) -> bool {
        self.day_at_fit == day_of(now)
            && (self.events_at_fit == engine.events_applied() || now - self.fitted_at < REFIT_AFTER)
    }
}

/// A customer's (x, t_x, T) in weeks as of `today`, and their mean repeat-order value in
/// major units.
fn summary(state: &CustomerState, today: i32, currency: Currency) -> Option<(Rft, f64)> {
    let (own, days) = state.purchase_days()?;
    if own != currency {
        return None;
    }
    let (first, _) = *days.first()?;
    if first > today {
        return None;
    }
    let repeats: Vec<&(i32, i64)> = days.iter().skip(1).filter(|(d, _)| *d <= today).collect();
    let last = repeats.last().map_or(first, |(d, _)| *d);
    let scale = 10f64.powi(currency.exponent() as i32);
    let mean = if repeats.is_empty() {
        0.0
    } else {
        repeats.iter().map(|(_, v)| *v as f64).sum::<f64>() / scale / repeats.len() as f64
    };
    let rft = Rft {
        x: repeats.len() as f64,
        t_x: f64::from(last - first) / WEEK,
        t: f64::from(today - first) / WEEK,
    };
    Some((rft, mean))
}

impl PredictionCache {
    /// Drops the workspace's fitted models (after an erasure: they were fitted on the
    /// erased customer too); the next read fits again.
    pub fn forget(&self, workspace: &WorkspaceId) {
        if let Ok(mut fitted) = self.fitted.lock() {
            fitted.remove(workspace);
        }
        if let Ok(mut fitted) = self.subscriptions.lock() {
            fitted.remove(workspace);
        }
    }

    /// The workspace's models, refitted if the engine or the day moved on since the last fit.
    pub fn models(&self, engine: &LiveWorkspace, now: Millis) -> Option<Arc<OrderModels>> {
        let mut fitted = self.fitted.lock().ok()?;
        if let Some(attempt) = fitted.get(engine.workspace())
            && attempt.fresh(engine, now)
        {
            return attempt.model.clone();
        }
        let attempt = Attempt::new(fit(engine, now), engine, now);
        let models = attempt.model.clone();
        fitted.insert(engine.workspace().clone(), attempt);
        models
    }
}

impl PredictionCache {
    /// The workspace's subscription retention model, refitted like [`Self::models`].
    pub fn subscription_model(
        &self,
        engine: &LiveWorkspace,
        now: Millis,
    ) -> Option<Arc<SubscriptionModel>> {
        let mut fitted = self.subscriptions.lock().ok()?;
        if let Some(attempt) = fitted.get(engine.workspace())
            && attempt.fresh(engine, now)
        {
            return attempt.model.clone();
        }
        let attempt = Attempt::new(fit_subscriptions(engine, now), engine, now);
        let model = attempt.model.clone();
        fitted.insert(engine.workspace().clone(), attempt);
        model
    }
}

/// sBG on the subscribers' first monthly contracts: customers observed for the same number
/// of months form a cohort, alive at k = those who paid k months without a break.
fn fit_subscriptions(engine: &LiveWorkspace, now: Millis) -> Option<SubscriptionModel> {
    let mut by_length: HashMap<u32, Vec<u32>> = HashMap::new();
    for c in engine.customers() {
        if let Some((_, renewals, observed)) = c.first_monthly_tenure(now)
            && observed > 0
        {
            by_length.entry(observed).or_default().push(renewals);
        }
    }
    let subscribers: usize = by_length.values().map(Vec::len).sum();
    if subscribers < MIN_CUSTOMERS {
        return None;
    }
    let mut lengths: Vec<u32> = by_length.keys().copied().collect();
    lengths.sort_unstable();
    let cohorts: Vec<Vec<u64>> = lengths
        .iter()
        .map(|length| {
            let renewals = &by_length[length];
            (0..=*length)
                .map(|k| renewals.iter().filter(|r| **r >= k).count() as u64)
                .collect()
        })
        .collect();
    let (sbg, fit) = ShiftedBetaGeometric::fit(&cohorts).ok()?;
    if !fit.converged {
        tracing::warn!(workspace = %engine.workspace(), "sBG did not converge on this workspace's subscriptions");
        return None;
    }
    Some(SubscriptionModel { sbg, subscribers })
}

impl SubscriptionModel {
    /// For a customer still paying their first monthly subscription.
    pub fn predict(&self, state: &CustomerState, now: Millis) -> Option<SubscriptionPredictions> {
        let (_, renewals, observed) = state.first_monthly_tenure(now)?;
        if renewals < observed {
            return None;
        }
        let n = f64::from(renewals);
        let derl = self
            .sbg
            .discounted_expected_residual_lifetime(n, MONTHLY_DISCOUNT);
        let predicted_clv = state
            .mrr_at(now)
            .into_iter()
            .map(|(currency, mrr)| {
                (
                    currency.as_str().to_owned(),
                    mrr as f64 / 10f64.powi(currency.exponent() as i32) * derl,
                )
            })
            .collect();
        Some(SubscriptionPredictions {
            model: "sbg",
            fitted_on_subscribers: self.subscribers,
            renewals,
            retention_next_month: self.sbg.retention_rate(n + 1.0),
            expected_remaining_months: derl,
            predicted_clv,
        })
    }
}

fn fit(engine: &LiveWorkspace, now: Millis) -> Option<OrderModels> {
    let today = day_of(now);
    // The main currency: the one most purchasers' first order is in.
    let mut by_currency: HashMap<Currency, usize> = HashMap::new();
    for c in engine.customers() {
        if let Some((currency, _)) = c.purchase_days() {
            *by_currency.entry(currency).or_default() += 1;
        }
    }
    let currency = by_currency
        .into_iter()
        .max_by_key(|(c, n)| (*n, std::cmp::Reverse(*c)))?
        .0;
    let summaries: Vec<(Rft, f64)> = engine
        .customers()
        .filter_map(|c| summary(c, today, currency))
        .collect();
    if summaries.len() < MIN_CUSTOMERS {
        return None;
    }
    let rft: Vec<Rft> = summaries.iter().map(|(c, _)| *c).collect();
    let candidates = [PurchaseModelKind::Bgnbd, PurchaseModelKind::ParetoNbd];
    let Some((purchases, candidates)) = PurchaseModel::fit_best(&candidates, &rft) else {
        tracing::warn!(workspace = %engine.workspace(), "neither BG/NBD nor Pareto/NBD converged on this workspace's orders");
        return None;
    };
    let spend: Vec<(f64, f64)> = summaries.iter().map(|(c, m)| (c.x, *m)).collect();
    let gamma_gamma = GammaGamma::fit(&spend).ok();
    Some(OrderModels {
        purchases,
        candidates,
        gamma_gamma,
        currency,
        customers: rft.len(),
        day_at_fit: today,
    })
}

impl OrderModels {
    pub fn predict(&self, state: &CustomerState) -> Option<Predictions> {
        let (c, mean) = summary(state, self.day_at_fit, self.currency)?;
        let clv = self.gamma_gamma.as_ref().map(|(gg, _)| {
            let value = gg.conditional_expected_value(c.x, mean);
            customer_lifetime_value(
                &|t| self.purchases.conditional_expected_purchases(t, &c),
                value,
                CLV_MONTHS,
                MONTHLY_DISCOUNT,
                WEEKS_PER_MONTH,
            )
        });
        Some(Predictions {
            model: self.purchases.kind().name(),
            fitted_on_customers: self.customers,
            probability_alive: self.purchases.probability_alive(&c),
            expected_orders_next_52_weeks: self.purchases.conditional_expected_purchases(52.0, &c),
            predicted_clv_12_months: clv,
            currency: self.currency.as_str().to_owned(),
        })
    }
}

/// Computes today's table for a workspace whose segments read one (or when `needed`) and
/// hands it to the writer, unless the engine already holds today's: the schedule does it for
/// every loaded workspace once a minute (so within a minute of midnight), a segment's save
/// or preview before it evaluates. The table is computed under a read lock only; the writer
/// then reconciles every segment with it. Blocking. Whether a table was installed.
pub fn refresh_daily_values(
    engine: &std::sync::RwLock<LiveWorkspace>,
    ingestor: &crate::writer::Ingestor,
    now: Millis,
    needed: bool,
) -> Result<bool, crate::writer::WriteError> {
    let (workspace, table) = {
        let Ok(engine) = engine.read() else {
            return Ok(false);
        };
        let wanted = needed || engine.segments_read_daily_values();
        if !wanted || engine.daily_values().is_some_and(|d| d.day == day_of(now)) {
            return Ok(false);
        }
        (engine.workspace().clone(), daily_values(&engine, now))
    };
    ingestor.segment_blocking(
        workspace,
        crate::writer::SegmentOp::SetDailyValues {
            values: Arc::new(table),
        },
    )?;
    Ok(true)
}

/// The day's table segments read (`tenure_core::segments::DailyValues`, docs/segments.md):
/// each customer's probability alive and predicted 12-month CLV under the order models
/// fitted now on every customer's orders, and their percentile by revenue over the trailing
/// 12 months, counted as `concentration` counts it. Blocking.
pub fn daily_values(engine: &LiveWorkspace, now: Millis) -> DailyValues {
    use rayon::prelude::*;
    let today = day_of(now);
    let customers: Vec<&CustomerState> = engine.customers().collect();
    let mut table = DailyValues {
        day: today,
        currency: None,
        customers: HashMap::new(),
    };
    let started = std::time::Instant::now();
    let fitted = fit(engine, now);
    let fit_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(models) = fitted {
        table.currency = Some(models.currency.as_str().to_owned());
        table.customers = customers
            .par_iter()
            .filter_map(|c| {
                let p = models.predict(c)?;
                Some((
                    c.id.clone(),
                    CustomerValues {
                        p_alive: Some(p.probability_alive),
                        predicted_clv: p.predicted_clv_12_months,
                        revenue_percentile: None,
                    },
                ))
            })
            .collect();
    }
    let predict_ms = started.elapsed().as_secs_f64() * 1000.0 - fit_ms;
    if let Ok(query) = tenure_core::metrics::Query::parse(std::iter::empty::<(&str, &str)>(), now)
        .map(|q| q.with_workspace_renewals(engine.renewals()))
    {
        let data = tenure_core::metrics::Dataset::prepare(&customers, &query);
        table.set_revenue_percentiles(&tenure_core::metrics::revenue_by_customer(&data, &query));
    }
    tracing::info!(
        workspace = %engine.workspace(),
        customers = table.customers.len(),
        fit_ms,
        predict_ms,
        revenue_ms = started.elapsed().as_secs_f64() * 1000.0 - fit_ms - predict_ms,
        "computed the day's values for segments"
    );
    table
}

/// The workspace's purchase forecast: the models and the sum of every customer's
/// predictions, as `GET /v1/metrics/clv` shows them. Each total is the sum of the profiles'
/// numbers over the same customers.
#[derive(Debug, Clone, Serialize)]
pub struct OrderForecast {
    pub model: &'static str,
    pub time_unit: &'static str,
    /// Every model fitted, the kept one (highest log-likelihood) among them.
    pub candidates: Vec<CandidateFit>,
    pub spend_model: Option<CandidateFit>,
    pub currency: String,
    pub customers: usize,
    /// Customers with P(alive) > 0.5.
    pub customers_probably_alive: usize,
    pub mean_probability_alive: f64,
    pub expected_orders_next_52_weeks: f64,
    /// Absent when the spend model could not be fitted.
    pub predicted_clv_12_months: Option<f64>,
    pub by_channel: Vec<ChannelForecast>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CandidateFit {
    pub model: &'static str,
    pub parameters: std::collections::BTreeMap<&'static str, f64>,
    pub log_likelihood: f64,
    pub converged: bool,
}

impl CandidateFit {
    fn new(model: &'static str, names: &[&'static str], fit: &Fit) -> Self {
        Self {
            model,
            parameters: names
                .iter()
                .copied()
                .zip(fit.params.iter().copied())
                .collect(),
            log_likelihood: fit.log_likelihood,
            converged: fit.converged,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelForecast {
    /// The acquisition channel; `null` for customers without one.
    pub channel: Option<String>,
    pub customers: usize,
    pub mean_probability_alive: f64,
    pub expected_orders_next_52_weeks: f64,
    pub predicted_clv_12_months: Option<f64>,
}

/// Sums of predictions over a group of customers.
#[derive(Default)]
struct Totals {
    customers: usize,
    probably_alive: usize,
    alive: f64,
    orders: f64,
    /// Meaningful only when the spend model was fitted (then every prediction has a CLV).
    clv: f64,
}

impl Totals {
    fn add(&mut self, p: &Predictions) {
        self.customers += 1;
        self.probably_alive += usize::from(p.probability_alive > 0.5);
        self.alive += p.probability_alive;
        self.orders += p.expected_orders_next_52_weeks;
        self.clv += p.predicted_clv_12_months.unwrap_or(0.0);
    }
}

impl OrderModels {
    pub fn forecast(&self, engine: &LiveWorkspace) -> OrderForecast {
        let mut all = Totals::default();
        let mut channels: std::collections::BTreeMap<Option<String>, Totals> = Default::default();
        for state in engine.customers() {
            if let Some(p) = self.predict(state) {
                all.add(&p);
                channels
                    .entry(state.acquisition.channel.clone())
                    .or_default()
                    .add(&p);
            }
        }
        let mean = |sum: f64, n: usize| if n == 0 { 0.0 } else { sum / n as f64 };
        let clv = |t: &Totals| self.gamma_gamma.is_some().then_some(t.clv);
        OrderForecast {
            model: self.purchases.kind().name(),
            time_unit: "week",
            candidates: self
                .candidates
                .iter()
                .map(|(kind, fit)| CandidateFit::new(kind.name(), kind.parameter_names(), fit))
                .collect(),
            spend_model: self
                .gamma_gamma
                .as_ref()
                .map(|(_, fit)| CandidateFit::new("gamma_gamma", &["p", "q", "gamma"], fit)),
            currency: self.currency.as_str().to_owned(),
            customers: all.customers,
            customers_probably_alive: all.probably_alive,
            mean_probability_alive: mean(all.alive, all.customers),
            expected_orders_next_52_weeks: all.orders,
            predicted_clv_12_months: clv(&all),
            by_channel: channels
                .into_iter()
                .map(|(channel, t)| ChannelForecast {
                    channel,
                    customers: t.customers,
                    mean_probability_alive: mean(t.alive, t.customers),
                    expected_orders_next_52_weeks: t.orders,
                    predicted_clv_12_months: clv(&t),
                })
                .collect(),
        }
    }
}

/// The workspace's subscription forecast for `GET /v1/metrics/clv`.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionForecast {
    pub model: &'static str,
    pub parameters: ShiftedBetaGeometric,
    pub fitted_on_subscribers: usize,
    /// S(t): share of a new monthly cohort still paying after t months, t = 0..=12.
    pub retention_curve: Vec<f64>,
    /// Subscribers still in their first monthly subscription (those with a forecast).
    pub current_subscribers: usize,
    pub mean_expected_remaining_months: f64,
    /// Σ current MRR × DERL, per currency, major units.
    pub predicted_clv: std::collections::BTreeMap<String, f64>,
}

impl SubscriptionModel {
    pub fn forecast(&self, engine: &LiveWorkspace, now: Millis) -> SubscriptionForecast {
        let mut current = 0;
        let mut months = 0.0;
        let mut clv: std::collections::BTreeMap<String, f64> = Default::default();
        for state in engine.customers() {
            if let Some(p) = self.predict(state, now) {
                current += 1;
                months += p.expected_remaining_months;
                for (currency, value) in p.predicted_clv {
                    *clv.entry(currency).or_default() += value;
                }
            }
        }
        SubscriptionForecast {
            model: "sbg",
            parameters: self.sbg,
            fitted_on_subscribers: self.subscribers,
            retention_curve: (0..=12).map(|t| self.sbg.survival(f64::from(t))).collect(),
            current_subscribers: current,
            mean_expected_remaining_months: if current == 0 {
                0.0
            } else {
                months / current as f64
            },
            predicted_clv: clv,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16, item 8: a fit that fails was attempted (and logged) again on every profile
    /// read; the failed attempt is now remembered until the engine or the day moves on.
    #[test]
    fn a_failed_fit_is_remembered_like_a_successful_one() {
        let engine = LiveWorkspace::new(WorkspaceId::parse("ws_fits").unwrap());
        let cache = PredictionCache::default();
        let now = 1_700_000_000_000;
        assert!(cache.subscription_model(&engine, now).is_none());
        assert!(cache.models(&engine, now).is_none());
        let remembered = |map: &Mutex<HashMap<WorkspaceId, Attempt<SubscriptionModel>>>| {
            map.lock()
                .unwrap()
                .get(engine.workspace())
                .is_some_and(|a| a.model.is_none() && a.fresh(&engine, now))
        };
        assert!(remembered(&cache.subscriptions));
        assert!(
            cache
                .fitted
                .lock()
                .unwrap()
                .get(engine.workspace())
                .is_some_and(|a| a.model.is_none())
        );
    }
}
