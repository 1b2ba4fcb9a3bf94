//! The churn-risk model's vocabulary in the domain (docs/risk.md):
//!
//! - [`features`]: what the model sees of a customer as of an instant;
//! - [`labels`]: who is a current customer, and who churned within a horizon;
//! - [`ChurnRisk`]: what segments read of a trained model (a customer's probability).
//!
//! Training, the model itself and its learners are the `tenure-risk` crate, which builds on
//! this; the core does not depend on it (so it does not compile the learners), and a
//! workspace's model reaches the segments as an `Arc<dyn ChurnRisk>`.

pub mod features;
pub mod labels;

use crate::customer::CustomerState;
use crate::names::NameTable;
use crate::time::Millis;

/// A trained churn-risk model as segments (`computed: risk`) and the live workspace see it.
pub trait ChurnRisk: Send + Sync + std::fmt::Debug {
    /// The probability that the customer churns within the model's horizon, as of `now`;
    /// `None` for one who is not a current customer then.
    fn probability(&self, state: &CustomerState, names: &NameTable, now: Millis) -> Option<f64>;

    /// When the model was trained.
    fn trained_at(&self) -> Millis;
}
