//! Who is a current customer at an instant, and whether they churned within a horizon: the
//! rows and labels of the churn-risk model (docs/risk.md), and who a prediction is for.

use crate::customer::CustomerState;
use crate::subscription::SubscriptionStatus;
use crate::time::{MILLIS_PER_DAY, Millis};

/// Whether the customer is a current customer at `at`, and of which kind:
/// - a **subscriber** pays a subscription at `at`; one who has already cancelled (still paid
///   up) is not current: that outcome is known, not predicted;
/// - a **buyer** has never had a subscription by `at` and placed an order in the 365 days
///   before it (a lapsed subscriber who still orders is a churned subscriber, not a buyer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Subscriber,
    Buyer,
}

pub fn standing(state: &CustomerState, at: Millis) -> Option<Standing> {
    // From the subscriptions' kept phases (no replay: every customer is judged when a
    // segment on risk is backfilled).
    let (mut started, mut cancelling, mut paying) = (false, false, false);
    for (status, mrr) in state.subscriptions.iter().map(|s| s.status_at(at)) {
        if status == SubscriptionStatus::Unknown {
            continue;
        }
        started = true;
        cancelling |= status == SubscriptionStatus::Cancelling;
        paying |= status.is_paying() && mrr > 0;
    }
    if started {
        return (paying && !cancelling).then_some(Standing::Subscriber);
    }
    let year_ago = at - 365 * MILLIS_PER_DAY;
    state
        .orders
        .iter()
        .any(|o| o.at > year_ago && o.at <= at)
        .then_some(Standing::Buyer)
}

/// Whether a customer current at `at` churned by `at + horizon`: a subscriber has no
/// subscription left that is trialing, paying or paused (a pause is contraction, not churn,
/// PRODUCT.md); a buyer placed no order in the horizon.
pub fn churned(state: &CustomerState, standing: Standing, at: Millis, horizon_days: u32) -> bool {
    let end = at + i64::from(horizon_days) * MILLIS_PER_DAY;
    match standing {
        Standing::Subscriber => !state.subscriptions.iter().any(|s| {
            let status = s.status_at(end).0;
            status.is_paying()
                || matches!(
                    status,
                    SubscriptionStatus::Paused | SubscriptionStatus::Trialing
                )
        }),
        Standing::Buyer => !state.orders.iter().any(|o| o.at > at && o.at <= end),
    }
}
