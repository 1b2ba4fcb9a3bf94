//! The demo business: a SaaS company generated deterministically from a seed.
//!
//! The generating process is documented in `docs/demo.md`; its parameters are the constants
//! of [`DemoParams`], and the hidden per-customer truth (engagement, churn hazard) is exposed
//! through [`DemoCustomer`] so tests can check that Tenure recovers what was generated.
//!
//! Customers are generated one at a time from their own random stream, so generating
//! customer `i` never depends on how many customers come after it, and memory stays flat.

use serde_json::{Value, json};

use crate::random::Rng;
use crate::time::{MILLIS_PER_DAY, Millis, add_months, format_instant};

/// Size and shape of the generated business.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub customers: usize,
    pub months: u32,
    pub seed: u64,
    /// The instant the story ends (no event is later).
    pub end: Millis,
}

/// The documented constants of the generating process.
pub struct DemoParams;

impl DemoParams {
    /// Acquisition channels and their shares of sign-ups.
    pub const CHANNELS: [(&'static str, f64); 5] = [
        ("organic", 0.33),
        ("paid_search", 0.22),
        ("social", 0.15),
        ("referral", 0.15),
        ("content", 0.15),
    ];
    /// Plans and their monthly price in USD; annual billing costs 10 months.
    pub const PLANS: [(&'static str, f64, f64); 3] = [
        ("starter", 29.0, 0.55),
        ("growth", 99.0, 0.35),
        ("scale", 299.0, 0.10),
    ];
    pub const ANNUAL_SHARE: f64 = 0.2;
    pub const TRIAL_SHARE: f64 = 0.6;
    pub const TRIAL_DAYS: i64 = 14;
    /// Engagement e ~ Gamma(shape, scale), mean 1.
    pub const ENGAGEMENT_SHAPE: f64 = 2.0;
    pub const ENGAGEMENT_SCALE: f64 = 0.5;
    /// Monthly churn hazard h = BASE × exp(−SLOPE × (e − 1)) × (REFERRAL_FACTOR if referred),
    /// clamped to [0.005, 0.5].
    pub const BASE_MONTHLY_CHURN: f64 = 0.045;
    pub const CHURN_SLOPE: f64 = 1.2;
    pub const REFERRAL_CHURN_FACTOR: f64 = 0.6;
    /// Product sessions per week = SESSIONS × e; each session is 1–3 usage events.
    pub const WEEKLY_SESSIONS: f64 = 2.0;
    /// Usage falls linearly to this fraction over the weeks before a cancellation.
    pub const PRE_CHURN_USAGE_FLOOR: f64 = 0.15;
    pub const PRE_CHURN_WEEKS: i64 = 6;
    pub const REACTIVATION_PROBABILITY: f64 = 0.12;
    pub const MONTHLY_UPGRADE: f64 = 0.025;
    pub const MONTHLY_DOWNGRADE: f64 = 0.012;
    pub const MONTHLY_PAUSE: f64 = 0.006;
    pub const NPS_RESPONSE_RATE: f64 = 0.4;
    pub const NPS_SKIP_RATE: f64 = 0.1;
    pub const MONTHLY_TICKETS: f64 = 0.25;
    /// Add-on orders per month while subscribed ~ Gamma(0.6, 0.5).
    pub const ORDER_RATE_SHAPE: f64 = 0.6;
    pub const ORDER_RATE_SCALE: f64 = 0.5;

    /// Marketing spend per sign-up of the paid channels, USD (organic and referral cost
    /// nothing): what makes the demo's CAC and CAC payback defined.
    pub const COST_PER_SIGNUP: [(&'static str, f64); 3] =
        [("paid_search", 180.0), ("social", 120.0), ("content", 60.0)];

    pub fn monthly_churn_hazard(engagement: f64, referred: bool) -> f64 {
        let factor = if referred {
            Self::REFERRAL_CHURN_FACTOR
        } else {
            1.0
        };
        (Self::BASE_MONTHLY_CHURN * (-Self::CHURN_SLOPE * (engagement - 1.0)).exp() * factor)
            .clamp(0.005, 0.5)
    }

    pub fn trial_conversion(engagement: f64) -> f64 {
        (0.3 + 0.35 * engagement).min(0.9)
    }
}

const USAGE_EVENTS: [(&str, f64); 6] = [
    ("Dashboard Viewed", 0.35),
    ("Report Viewed", 0.25),
    ("Project Created", 0.15),
    ("Invite Sent", 0.08),
    ("Export Completed", 0.1),
    ("Integration Connected", 0.07),
];

/// One generated customer: the hidden truth and the events it produced.
#[derive(Debug, Clone)]
pub struct DemoCustomer {
    pub index: usize,
    pub user_id: String,
    pub channel: &'static str,
    pub referred_by: Option<String>,
    pub engagement: f64,
    /// The monthly churn hazard used while the customer paid monthly.
    pub monthly_churn_hazard: f64,
    pub signed_up_at: Millis,
    /// Segment messages, in time order.
    pub events: Vec<Value>,
}

/// Generates the business customer by customer.
pub struct DemoBusiness {
    config: DemoConfig,
    start: Millis,
}

impl DemoBusiness {
    pub fn new(config: DemoConfig) -> Self {
        let start = add_months(config.end, -(config.months as i32));
        Self { config, start }
    }

    pub fn config(&self) -> &DemoConfig {
        &self.config
    }

    pub fn start(&self) -> Millis {
        self.start
    }

    pub fn customers(&self) -> impl Iterator<Item = DemoCustomer> + '_ {
        (0..self.config.customers).map(|i| self.customer(i))
    }

    /// Sign-ups grow linearly: the density at the end of the window is 3× the start's.
    fn signup_time(&self, rng: &mut Rng) -> Millis {
        // Inverse CDF of density ∝ 1 + 2x on [0, 1].
        let u = rng.uniform();
        let x = (-1.0 + (1.0 + 8.0 * u).sqrt()) / 2.0;
        let span = (self.config.end - self.start) as f64;
        self.start + (x * span * 0.98) as Millis
    }

    pub fn customer(&self, index: usize) -> DemoCustomer {
        let seed = self.config.seed;
        let mut rng = Rng::derive(seed, index as u64);
        let user_id = format!("user_{index:06}");
        let signed_up_at = self.signup_time(&mut rng);
        let channel_weights: Vec<f64> = DemoParams::CHANNELS.iter().map(|(_, w)| *w).collect();
        let mut channel = DemoParams::CHANNELS[rng.weighted(&channel_weights)].0;
        // A referral needs an earlier customer to refer; the very first customers cannot be.
        let referred_by = if channel == "referral" && index > 0 {
            Some(format!("user_{:06}", rng.below(index as u64)))
        } else {
            if channel == "referral" {
                channel = "organic";
            }
            None
        };
        let engagement = rng.gamma(DemoParams::ENGAGEMENT_SHAPE, DemoParams::ENGAGEMENT_SCALE);
        let hazard = DemoParams::monthly_churn_hazard(engagement, referred_by.is_some());
        let mut story = Story {
            seed,
            index,
            user_id: user_id.clone(),
            end: self.config.end,
            events: Vec::new(),
            counter: 0,
        };

        let anonymous_id = format!("anon_{index:06}");
        let first_visit = signed_up_at - (rng.exponential(2.0) * MILLIS_PER_DAY as f64) as Millis;
        let mut visit = json!({"type": "page", "anonymousId": anonymous_id, "name": "Pricing",
            "properties": {"path": "/pricing"}});
        if referred_by.is_none() {
            visit["context"] = json!({"campaign": {"source": channel}});
        }
        story.push(first_visit, visit);
        story.push(
            signed_up_at,
            json!({"type": "identify", "userId": user_id, "anonymousId": anonymous_id, "traits": {
                "email": format!("{user_id}@example.com"),
                "name": format!("Customer {index}"),
                "company": format!("Company {}", index / 3),
                "seats": 1 + rng.poisson(engagement * 4.0),
            }}),
        );
        story.track(signed_up_at, "Signed Up", json!({}));
        if let Some(referrer) = &referred_by {
            story.track(
                signed_up_at,
                "Referral Code Used",
                json!({"code": format!("REF-{referrer}"), "referrer_id": referrer}),
            );
        }

        let active_until =
            self.subscription_life(&mut rng, &mut story, signed_up_at, engagement, hazard);
        self.usage(
            &mut rng,
            &mut story,
            signed_up_at,
            &active_until,
            engagement,
        );
        story.events.sort_by_key(|(at, n, _)| (*at, *n));
        DemoCustomer {
            index,
            user_id,
            channel,
            referred_by,
            engagement,
            monthly_churn_hazard: hazard,
            signed_up_at,
            events: story.events.into_iter().map(|(_, _, v)| v).collect(),
        }
    }

    /// Trial, subscription periods, plan changes, pauses, cancellation and reactivation.
    /// Returns the intervals during which the customer used the product, with the instant
    /// a cancellation was decided (usage fades before it).
    fn subscription_life(
        &self,
        rng: &mut Rng,
        story: &mut Story,
        signed_up_at: Millis,
        engagement: f64,
        hazard: f64,
    ) -> Vec<(Millis, Millis, Option<Millis>)> {
        let end = self.config.end;
        let mut lives = Vec::new();
        let mut start = signed_up_at;
        let mut generation = 0;
        loop {
            let subscription_id = format!("sub_{}_{generation}", story.index);
            let plan_weights: Vec<f64> = DemoParams::PLANS.iter().map(|p| p.2).collect();
            let mut plan = rng.weighted(&plan_weights);
            let annual = rng.chance(DemoParams::ANNUAL_SHARE);
            let terms = |plan: usize| {
                let (name, price, _) = DemoParams::PLANS[plan];
                let (interval, amount) = if annual {
                    ("year", price * 10.0)
                } else {
                    ("month", price)
                };
                json!({"subscription_id": subscription_id, "plan": name, "interval": interval, "amount": amount, "currency": "USD"})
            };
            let trial = generation == 0 && rng.chance(DemoParams::TRIAL_SHARE);
            let mut paid_from = start;
            let mut started = terms(plan);
            if trial {
                paid_from = start + DemoParams::TRIAL_DAYS * MILLIS_PER_DAY;
                started["trial_end"] = json!(format_instant(paid_from));
                story.track(
                    start,
                    "Trial Started",
                    json!({"subscription_id": subscription_id}),
                );
            }
            story.track(start, "Subscription Started", started);
            if trial {
                if paid_from > end {
                    lives.push((start, end, None));
                    return lives;
                }
                let converted = rng.chance(DemoParams::trial_conversion(engagement));
                story.track(
                    paid_from,
                    "Trial Ended",
                    json!({"subscription_id": subscription_id, "converted": converted}),
                );
                if !converted {
                    let decided = paid_from - MILLIS_PER_DAY;
                    story.track(
                        decided,
                        "Subscription Cancelled",
                        json!({"subscription_id": subscription_id}),
                    );
                    lives.push((start, paid_from, Some(decided)));
                    return lives;
                }
            }
            // Billing periods.
            let months_per_period = if annual { 12 } else { 1 };
            let period_hazard = if annual {
                1.0 - (1.0 - hazard * 0.8).powi(12)
            } else {
                hazard
            };
            let mut period_start = paid_from;
            let mut paused_until: Option<Millis> = None;
            let churned_at = loop {
                let period_end = add_months(period_start, months_per_period);
                if period_start > end {
                    break None;
                }
                if rng.chance(period_hazard) {
                    let decided = period_start
                        + ((period_end - period_start) as f64 * rng.uniform()) as Millis;
                    if decided <= end {
                        story.track(
                            decided,
                            "Subscription Cancelled",
                            json!({"subscription_id": subscription_id}),
                        );
                        break Some((decided, period_end));
                    }
                    break None;
                }
                // Plan changes and pauses happen mid-period (monthly payers only pause).
                let mid = period_start + (period_end - period_start) / 2;
                if mid <= end {
                    if plan + 1 < DemoParams::PLANS.len()
                        && rng.chance(
                            DemoParams::MONTHLY_UPGRADE * engagement * months_per_period as f64,
                        )
                    {
                        plan += 1;
                        story.track(mid, "Subscription Changed", terms(plan));
                    } else if plan > 0
                        && rng.chance(DemoParams::MONTHLY_DOWNGRADE * months_per_period as f64)
                    {
                        plan -= 1;
                        story.track(mid, "Subscription Changed", terms(plan));
                    } else if !annual
                        && paused_until.is_none()
                        && rng.chance(DemoParams::MONTHLY_PAUSE)
                    {
                        story.track(
                            mid,
                            "Subscription Paused",
                            json!({"subscription_id": subscription_id}),
                        );
                        let resume = add_months(mid, 1);
                        if resume <= end {
                            story.track(
                                resume,
                                "Subscription Resumed",
                                json!({"subscription_id": subscription_id}),
                            );
                        }
                        paused_until = Some(resume);
                    }
                }
                if period_end <= end {
                    story.track(
                        period_end,
                        "Subscription Renewed",
                        json!({"subscription_id": subscription_id}),
                    );
                }
                period_start = period_end;
            };
            match churned_at {
                None => {
                    lives.push((start, end, None));
                    return lives;
                }
                Some((decided, ends)) => {
                    lives.push((start, ends, Some(decided)));
                    if generation > 0 || !rng.chance(DemoParams::REACTIVATION_PROBABILITY) {
                        return lives;
                    }
                    let back = add_months(ends, 1 + rng.below(6) as i32);
                    if back > end {
                        return lives;
                    }
                    generation += 1;
                    start = back;
                }
            }
        }
    }

    /// Product usage, NPS answers, tickets and add-on orders while the customer is around.
    fn usage(
        &self,
        rng: &mut Rng,
        story: &mut Story,
        signed_up_at: Millis,
        lives: &[(Millis, Millis, Option<Millis>)],
        engagement: f64,
    ) {
        let week = 7 * MILLIS_PER_DAY;
        let order_rate = rng.gamma(DemoParams::ORDER_RATE_SHAPE, DemoParams::ORDER_RATE_SCALE);
        let breadth = 1 + (engagement * 2.5).round().min(5.0) as usize;
        let mut next_survey = signed_up_at + 30 * MILLIS_PER_DAY;
        for &(from, until, decided) in lives {
            let mut t = from;
            while t < until.min(story.end) {
                let fade = match decided {
                    Some(d) if t > d - DemoParams::PRE_CHURN_WEEKS * week => {
                        let left =
                            (d - t).max(0) as f64 / (DemoParams::PRE_CHURN_WEEKS * week) as f64;
                        DemoParams::PRE_CHURN_USAGE_FLOOR
                            + (1.0 - DemoParams::PRE_CHURN_USAGE_FLOOR) * left
                    }
                    _ => 1.0,
                };
                let fade = if decided.is_some_and(|d| t > d) {
                    DemoParams::PRE_CHURN_USAGE_FLOOR * 0.5
                } else {
                    fade
                };
                let sessions = rng.poisson(DemoParams::WEEKLY_SESSIONS * engagement * fade);
                for _ in 0..sessions {
                    let at = t + rng.below(week as u64) as Millis;
                    let weights: Vec<f64> =
                        USAGE_EVENTS.iter().take(breadth).map(|(_, w)| *w).collect();
                    for _ in 0..1 + rng.below(3) {
                        let (name, _) = USAGE_EVENTS[rng.weighted(&weights)];
                        story.track(at + rng.below(1_800_000) as Millis, name, json!({}));
                    }
                }
                let pre_churn = decided.is_some_and(|d| t > d - 8 * week);
                let ticket_rate =
                    DemoParams::MONTHLY_TICKETS / 4.3 * if pre_churn { 3.0 } else { 1.0 };
                for _ in 0..rng.poisson(ticket_rate) {
                    let opened = t + rng.below(week as u64) as Millis;
                    let ticket_id = format!("tkt_{}_{}", story.index, story.counter);
                    story.track(
                        opened,
                        "Ticket Opened",
                        json!({"ticket_id": ticket_id, "subject": "Help needed"}),
                    );
                    let resolved =
                        opened + (rng.exponential(2.0) * MILLIS_PER_DAY as f64) as Millis;
                    story.track(resolved, "Ticket Resolved", json!({"ticket_id": ticket_id}));
                }
                for _ in 0..rng.poisson(order_rate / 4.3) {
                    let at = t + rng.below(week as u64) as Millis;
                    let order_id = format!("ord_{}_{}", story.index, story.counter);
                    let revenue = (10.0 + rng.gamma(2.0, 20.0) * 100.0).round() / 100.0;
                    story.track(at, "Order Completed", json!({"order_id": order_id, "revenue": revenue, "currency": "USD", "products": [{"sku": "addon"}]}));
                }
                if t >= next_survey {
                    let survey_id = format!("nps_{}", story.counter);
                    story.track(t, "Survey Shown", json!({"survey_id": survey_id}));
                    if rng.chance(DemoParams::NPS_RESPONSE_RATE) {
                        let mut props = json!({"survey_id": survey_id});
                        if !rng.chance(DemoParams::NPS_SKIP_RATE) {
                            let mood = 6.0 + 2.2 * (engagement - 1.0) + 1.6 * rng.normal()
                                - if pre_churn { 2.0 } else { 0.0 };
                            let score = mood.round().clamp(0.0, 10.0) as u8;
                            props["score"] = json!(score);
                            // One answer in three comes with a comment, picked without
                            // drawing from the random stream (the business stays the same).
                            if story.counter.is_multiple_of(3) {
                                props["comment"] = json!(demo_comment(score, story.counter));
                            }
                        }
                        story.track(t + 3_600_000, "Survey Responded", props);
                    }
                    next_survey = t + 90 * MILLIS_PER_DAY;
                }
                t += week;
            }
        }
    }
}

/// What a demo customer writes beside their score.
fn demo_comment(score: u8, n: u64) -> &'static str {
    const PROMOTERS: [&str; 4] = [
        "Saves my team hours every week.",
        "The exports are exactly what we needed.",
        "Support answered within the hour, twice.",
        "We recommended it to two other teams already.",
    ];
    const PASSIVES: [&str; 4] = [
        "Good, but the reports could load faster.",
        "Does the job; the setup took longer than promised.",
        "Fine for now, missing a few integrations.",
        "Useful, though the pricing tiers are confusing.",
    ];
    const DETRACTORS: [&str; 4] = [
        "Too expensive for how much we use it.",
        "We keep hitting the same bug in the integration.",
        "Hard to get the rest of the team to adopt it.",
        "Looking at cheaper tools at the moment.",
    ];
    let list = match score {
        9.. => &PROMOTERS,
        7..=8 => &PASSIVES,
        _ => &DETRACTORS,
    };
    list[(n / 3 % list.len() as u64) as usize]
}

/// Collects one customer's messages with deterministic message ids.
struct Story {
    seed: u64,
    index: usize,
    user_id: String,
    end: Millis,
    events: Vec<(Millis, u64, Value)>,
    counter: u64,
}

impl Story {
    fn push(&mut self, at: Millis, mut message: Value) {
        if at > self.end {
            return;
        }
        self.counter += 1;
        message["messageId"] = json!(format!(
            "demo-{}-{}-{}",
            self.seed, self.index, self.counter
        ));
        message["timestamp"] = json!(format_instant(at));
        self.events.push((at, self.counter, message));
    }

    fn track(&mut self, at: Millis, event: &str, properties: Value) {
        let message = json!({"type": "track", "userId": self.user_id, "event": event, "properties": properties});
        self.push(at, message);
    }
}

/// The demo's marketing spend: for each paid channel and month, its sign-ups that month
/// (customers first seen then, by acquisition channel) × [`DemoParams::COST_PER_SIGNUP`].
pub fn demo_spend<'a>(
    customers: impl Iterator<Item = &'a crate::customer::CustomerState>,
) -> Vec<crate::metrics::Spend> {
    use crate::metrics::Grain;
    let mut signups: std::collections::BTreeMap<(&'static str, String), u32> = Default::default();
    for c in customers {
        let Some(channel) = c.acquisition.channel.as_deref() else {
            continue;
        };
        let Some((name, _)) = DemoParams::COST_PER_SIGNUP
            .iter()
            .find(|(n, _)| *n == channel)
        else {
            continue;
        };
        let day = c.first_seen.div_euclid(MILLIS_PER_DAY) as i32;
        *signups
            .entry((name, Grain::Month.label(Grain::Month.floor_day(day))))
            .or_default() += 1;
    }
    signups
        .into_iter()
        .filter_map(|((channel, month), n)| {
            let cost = DemoParams::COST_PER_SIGNUP
                .iter()
                .find(|(c, _)| *c == channel)?
                .1;
            crate::metrics::Spend::parse(channel, &month, cost * f64::from(n), "USD").ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_instant;

    fn business(customers: usize) -> DemoBusiness {
        DemoBusiness::new(DemoConfig {
            customers,
            months: 24,
            seed: 7,
            end: parse_instant("2026-01-01").unwrap(),
        })
    }

    #[test]
    fn the_same_seed_gives_the_same_business() {
        let a: Vec<_> = business(30).customers().flat_map(|c| c.events).collect();
        let b: Vec<_> = business(30).customers().flat_map(|c| c.events).collect();
        assert_eq!(a, b);
        let c: Vec<_> = DemoBusiness::new(DemoConfig {
            seed: 8,
            ..business(30).config().clone()
        })
        .customers()
        .flat_map(|c| c.events)
        .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn no_event_is_after_the_end_and_customers_are_independent_of_the_count() {
        let b = business(50);
        for c in b.customers() {
            for e in &c.events {
                let at = parse_instant(e["timestamp"].as_str().unwrap()).unwrap();
                assert!(at <= b.config().end && at >= b.start() - 60 * MILLIS_PER_DAY);
            }
        }
        assert_eq!(
            business(50).customer(10).events,
            business(20).customer(10).events
        );
    }

    #[test]
    fn spend_is_each_paid_sign_up_at_its_channels_cost() {
        let b = business(300);
        let envelope = crate::Envelope {
            received_at: b.config().end + 1,
            batch_sent_at: None,
        };
        let mut engine = crate::Engine::new(crate::WorkspaceId::parse("ws_demo").unwrap());
        for c in b.customers() {
            for e in c.events {
                engine.apply(&crate::Message::parse(e, None, envelope).unwrap());
            }
        }
        let spend = demo_spend(engine.customers());
        for (channel, cost) in DemoParams::COST_PER_SIGNUP {
            let signups = engine
                .customers()
                .filter(|c| c.acquisition.channel.as_deref() == Some(channel))
                .count() as i64;
            assert!(signups > 0, "{channel}");
            let total: i64 = spend
                .iter()
                .filter(|s| s.channel == channel)
                .map(|s| s.amount)
                .sum();
            assert_eq!(total, signups * (cost * 100.0) as i64, "{channel}");
        }
        assert!(
            spend
                .iter()
                .all(|s| s.channel != "organic" && s.channel != "referral")
        );
        assert!(
            spend
                .iter()
                .all(|s| s.month.len() == 7 && s.currency.as_str() == "USD")
        );
    }

    #[test]
    fn referral_share_is_near_its_parameter() {
        let b = business(4000);
        let referred = b.customers().filter(|c| c.referred_by.is_some()).count() as f64 / 4000.0;
        // 15% ± 3 standard errors (sqrt(0.15·0.85/4000) ≈ 0.0056).
        assert!((referred - 0.15).abs() < 0.017, "referral share {referred}");
    }
}
