//! A customer as the profile API shows it: identities, traits, status, MRR and its
//! history, subscriptions, orders, answers, tickets and the segments they are in, evaluated
//! at an instant.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::customer::{Acquisition, CustomerState, Order, SurveyAnswer, Ticket};
use crate::ids::{CustomerId, SegmentId};
use crate::live::LiveWorkspace;
use crate::subscription::{CustomerStatus, SubscriptionView, customer_status};
use crate::time::{Millis, format_instant};

impl LiveWorkspace {
    /// The segments the customer is in, with their names.
    pub fn memberships(&self, state: &CustomerState) -> Vec<SegmentMembership> {
        state
            .segments
            .iter()
            .map(|(id, at)| SegmentMembership {
                id: *id,
                name: self.segment_name(*id).map(str::to_owned),
                entered_at: format_instant(*at),
            })
            .collect()
    }

    /// The customer as the profile API shows it, evaluated at `now`.
    pub fn profile(&self, state: &CustomerState, now: Millis) -> CustomerProfile {
        let subscriptions = state.subscriptions_at(now);
        let mrr = state
            .mrr_at(now)
            .into_iter()
            .map(|(c, v)| (c.as_str().to_owned(), v))
            .collect();
        let revenue = state
            .order_revenue_until(now)
            .into_iter()
            .map(|(c, v)| (c.as_str().to_owned(), v))
            .collect();
        let mut event_counts: Vec<(String, u32)> = state
            .event_counts
            .iter()
            .map(|(n, c)| (self.names().name(*n).to_owned(), *c))
            .collect();
        event_counts.sort();
        let status = customer_status(&subscriptions);
        CustomerProfile {
            id: state.id.clone(),
            user_id: state.user_id.clone(),
            anonymous_ids: state
                .identities
                .iter()
                // An alias's previous id is bound both ways (its kind is unknown); show it once,
                // as an alias.
                .filter_map(|k| k.strip_prefix("a:"))
                .filter(|a| {
                    !state
                        .identities
                        .iter()
                        .any(|k| k.strip_prefix("u:") == Some(*a))
                })
                .map(str::to_owned)
                .collect(),
            aliases: state
                .identities
                .iter()
                .filter_map(|k| k.strip_prefix("u:"))
                .filter(|u| Some(*u) != state.user_id.as_deref())
                .map(str::to_owned)
                .collect(),
            merged_customers: state.merged.clone(),
            traits: state.traits.clone(),
            first_seen: format_instant(state.first_seen),
            last_seen: format_instant(state.last_seen),
            status,
            events: state.event_total,
            active_days: state.active_days.len(),
            event_counts: event_counts.into_iter().collect(),
            acquisition: state.acquisition.clone(),
            mrr,
            mrr_history: state
                .mrr_history()
                .into_iter()
                .map(|(at, v)| MrrPoint {
                    at: format_instant(at),
                    mrr: v,
                })
                .collect(),
            subscriptions,
            orders: state.orders.clone(),
            order_revenue: revenue,
            surveys_shown: state.surveys_shown.len(),
            survey_answers: state.survey_answers.clone(),
            tickets: state.tickets.clone(),
            open_tickets: state.open_tickets(),
            groups: state.groups.clone(),
            segments: self.memberships(state),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MrrPoint {
    pub at: String,
    pub mrr: i64,
}

/// The folded state of a customer as the API returns it. Money is in minor units.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerProfile {
    pub id: CustomerId,
    pub user_id: Option<String>,
    pub anonymous_ids: Vec<String>,
    pub aliases: Vec<String>,
    pub merged_customers: Vec<CustomerId>,
    pub traits: Map<String, Value>,
    pub first_seen: String,
    pub last_seen: String,
    pub status: CustomerStatus,
    pub events: u32,
    pub active_days: usize,
    pub event_counts: BTreeMap<String, u32>,
    pub acquisition: Acquisition,
    /// Current MRR per currency, minor units.
    pub mrr: BTreeMap<String, i64>,
    pub mrr_history: Vec<MrrPoint>,
    pub subscriptions: Vec<SubscriptionView>,
    pub orders: Vec<Order>,
    /// Completed minus refunded order revenue per currency, minor units.
    pub order_revenue: BTreeMap<String, i64>,
    pub surveys_shown: usize,
    pub survey_answers: Vec<SurveyAnswer>,
    pub tickets: Vec<Ticket>,
    pub open_tickets: usize,
    pub groups: Vec<String>,
    /// The segments the customer is in now.
    pub segments: Vec<SegmentMembership>,
}

/// One segment a customer is in.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentMembership {
    pub id: SegmentId,
    pub name: Option<String>,
    pub entered_at: String,
}
