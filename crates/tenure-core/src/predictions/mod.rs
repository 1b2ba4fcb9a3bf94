//! Customer-base predictions from a workspace's own data (`tenure-clv`): what the profile,
//! `GET /v1/metrics/clv`, the dashboard, segments (`p_alive`, `predicted_clv`) and
//! `tenure clv` show.
//!
//! - [`orders`]: BG/NBD or Pareto/NBD (the better fit) and Gamma-Gamma on the customers'
//!   orders; a customer's prediction and the workspace's forecast;
//! - [`subscriptions`]: sBG on first monthly subscriptions; DERL and contractual CLV;
//! - [`batch`]: one purchase model's forecast for many customers (equal histories share
//!   one computation, the rest in parallel) — the profile, the day's table and the CLI's
//!   file-based fits all go through it;
//! - [`daily`]: the day's table segments read.
//!
//! Pure: the engine and the instant are passed in; a shell caches fits (they take from a
//! millisecond to most of a second) and says when to refit.

pub mod batch;
pub mod daily;
pub mod orders;
pub mod subscriptions;

pub use daily::daily_values;
pub use orders::{CandidateFit, ChannelForecast, OrderForecast, OrderModels, Predictions};
pub use subscriptions::{SubscriptionForecast, SubscriptionModel, SubscriptionPredictions};

/// Fewer customers than this and a model is not fitted (the estimates would be noise).
pub const MIN_CUSTOMERS: usize = 30;
/// The monthly discount rate of every CLV shown (`lifetimes`' convention: 1% a month).
pub const MONTHLY_DISCOUNT: f64 = 0.01;

/// Why a workspace has no model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoModel {
    /// Fewer than [`MIN_CUSTOMERS`] customers to fit on (how many there are).
    TooFew(usize),
    /// The fit did not converge (which).
    DidNotConverge(&'static str),
}

impl std::fmt::Display for NoModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoModel::TooFew(n) => write!(
                f,
                "{n} customers to fit on: at least {MIN_CUSTOMERS} are needed"
            ),
            NoModel::DidNotConverge(what) => f.write_str(what),
        }
    }
}
