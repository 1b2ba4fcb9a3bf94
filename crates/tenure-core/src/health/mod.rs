//! Customer health scores: a model is a list of components, each a value read from the
//! customer's state at an instant (usage, its trend, recency, breadth, NPS, tickets, billing,
//! a custom event or a numeric trait), mapped to 0–100 by thresholds or a piecewise-linear
//! curve and combined by weights into a score with a grade (docs/health.md).
//!
//! - [`model`]: a model as written, its validation, the shipped default, grades;
//! - [`score`]: a customer scored by one model at an instant, with the breakdown;
//! - [`assignment`]: which of the workspace's models scores a customer (by segment
//!   condition), trends and history;
//! - [`overview`]: every current customer by grade, the reddest first.
//!
//! Pure: the state, the engine's event names and the instant are passed in.

pub mod assignment;
pub mod model;
pub mod overview;
pub mod score;

pub use assignment::{AssignedModel, HealthModels};
pub use model::{Bands, Component, Grade, HealthModel, Metric, Scale};
pub use overview::{AtRisk, HealthOverview};
pub use score::{
    ComponentScore, Direction, HealthScore, HistoryPoint, Reason, TREND_TOLERANCE, Trend,
};
