//! The order models: BG/NBD and Pareto/NBD for purchases, of which the one with the higher
//! log-likelihood is kept (both have four parameters), and Gamma-Gamma for spend, fitted on
//! every customer with an order in the workspace's main order currency. Time unit: weeks;
//! T runs to the current UTC day. CLV: 12 months at 1% a month, `lifetimes`' convention.

use std::collections::HashMap;

use serde::Serialize;
use tenure_clv::bgnbd::Rft;
use tenure_clv::gamma_gamma::GammaGamma;
use tenure_clv::optimize::Fit;
use tenure_clv::purchases::{PurchaseModel, PurchaseModelKind};

use super::batch::{self, Horizon, PurchaseForecast};
use super::{MIN_CUSTOMERS, MONTHLY_DISCOUNT, NoModel};
use crate::customer::CustomerState;
use crate::engine::Engine;
use crate::money::Currency;
use crate::time::{Millis, day_of};

const WEEK: f64 = 7.0;
const CLV_MONTHS: u32 = 12;
const WEEKS_PER_MONTH: f64 = 4.345;

/// What a profile forecasts: orders over 52 weeks, CLV over 12 months at 1% a month.
const HORIZON: Horizon = Horizon {
    units: 52.0,
    clv_months: CLV_MONTHS,
    monthly_discount: MONTHLY_DISCOUNT,
    units_per_month: WEEKS_PER_MONTH,
    dert_rate: None,
};

/// The fitted order models of a workspace.
pub struct OrderModels {
    purchases: PurchaseModel,
    /// Every candidate's fit (the kept one among them).
    pub(crate) candidates: Vec<(PurchaseModelKind, Fit)>,
    gamma_gamma: Option<(GammaGamma, Fit)>,
    pub(crate) currency: Currency,
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

impl OrderModels {
    /// Fits the order models on every customer's orders in the main currency as of `now`.
    pub fn fit(engine: &Engine, now: Millis) -> Result<OrderModels, NoModel> {
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
            .max_by_key(|(c, n)| (*n, std::cmp::Reverse(*c)))
            .ok_or(NoModel::TooFew(0))?
            .0;
        let summaries: Vec<(Rft, f64)> = engine
            .customers()
            .filter_map(|c| summary(c, today, currency))
            .collect();
        if summaries.len() < MIN_CUSTOMERS {
            return Err(NoModel::TooFew(summaries.len()));
        }
        let rft: Vec<Rft> = summaries.iter().map(|(c, _)| *c).collect();
        let candidates = [PurchaseModelKind::Bgnbd, PurchaseModelKind::ParetoNbd];
        let (purchases, candidates) =
            PurchaseModel::fit_best(&candidates, &rft).ok_or(NoModel::DidNotConverge(
                "neither BG/NBD nor Pareto/NBD converged on this workspace's orders",
            ))?;
        let spend: Vec<(f64, f64)> = summaries.iter().map(|(c, m)| (c.x, *m)).collect();
        let gamma_gamma = GammaGamma::fit(&spend).ok();
        Ok(OrderModels {
            purchases,
            candidates,
            gamma_gamma,
            currency,
            customers: rft.len(),
            day_at_fit: today,
        })
    }
}

impl OrderModels {
    pub fn predict(&self, state: &CustomerState) -> Option<Predictions> {
        let (c, mean) = summary(state, self.day_at_fit, self.currency)?;
        Some(self.prediction(&c, mean, &batch::forecast(&self.purchases, &c, &HORIZON)))
    }

    /// The profile's numbers from a customer's forecast and mean repeat-order value.
    fn prediction(&self, c: &Rft, mean: f64, f: &PurchaseForecast) -> Predictions {
        let clv = self
            .gamma_gamma
            .as_ref()
            .map(|(gg, _)| gg.conditional_expected_value(c.x, mean) * f.clv_per_value);
        Predictions {
            model: self.purchases.kind().name(),
            fitted_on_customers: self.customers,
            probability_alive: f.probability_alive,
            expected_orders_next_52_weeks: f.expected_purchases,
            predicted_clv_12_months: clv,
            currency: self.currency.as_str().to_owned(),
        }
    }

    /// Every customer's prediction (those with orders in the models' currency), in the
    /// order given: [`batch::forecast_all`], so equal histories share one computation.
    pub fn predict_all<'a>(
        &self,
        customers: &[&'a CustomerState],
    ) -> Vec<(&'a CustomerState, Predictions)> {
        let summaries: Vec<(&CustomerState, Rft, f64)> = customers
            .iter()
            .filter_map(|s| summary(s, self.day_at_fit, self.currency).map(|(c, m)| (*s, c, m)))
            .collect();
        let rft: Vec<Rft> = summaries.iter().map(|(_, c, _)| *c).collect();
        let forecasts = batch::forecast_all(&self.purchases, &rft, &HORIZON);
        summaries
            .into_iter()
            .zip(forecasts)
            .map(|((s, c, m), f)| (s, self.prediction(&c, m, &f)))
            .collect()
    }
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
    pub fn forecast(&self, engine: &Engine) -> OrderForecast {
        let mut all = Totals::default();
        let mut channels: std::collections::BTreeMap<Option<String>, Totals> = Default::default();
        let customers: Vec<&CustomerState> = engine.customers().collect();
        for (state, p) in self.predict_all(&customers) {
            all.add(&p);
            channels
                .entry(state.acquisition.channel.clone())
                .or_default()
                .add(&p);
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
