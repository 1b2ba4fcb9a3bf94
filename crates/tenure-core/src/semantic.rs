//! Semantic events: the track events whose meaning Tenure knows, with their required
//! properties (names follow Segment's e-commerce and B2B SaaS specs where they exist).
//!
//! | event | required properties |
//! |---|---|
//! | `Order Completed` | `order_id`, numeric `revenue` (or `total`), `currency` |
//! | `Order Refunded` | `order_id`; optional numeric `revenue` (else the whole order) |
//! | `Subscription Started` / `Changed` | `subscription_id`, `plan`, `interval`, numeric `amount` ≥ 0 (list price per interval), `currency`; optional `trial_end`, `discount` (amount off per interval, ≤ `amount`) |
//! | `Subscription Renewed` / `Cancelled` / `Paused` / `Resumed` | `subscription_id`; `Cancelled` optionally `ends_at` |
//! | `Survey Shown` | `survey_id` |
//! | `Survey Responded` | `survey_id`; optional `scale` (10: NPS, default; 5: CSAT), `score` 0–`scale` (absent = skipped), `comment` |
//! | `Ticket Opened` / `Ticket Resolved` | `ticket_id` |
//! | `Referral Code Used` | `code`; optional `referrer_id` |
//!
//! Any other event name is a custom event and is accepted as it is.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::field_error::FieldError;
use crate::money::{Currency, Money};
use crate::time::{Millis, parse_instant};

/// How often a subscription bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "day" | "daily" => Self::Day,
            "week" | "weekly" => Self::Week,
            "month" | "monthly" => Self::Month,
            "year" | "yearly" | "annual" | "annually" => Self::Year,
            _ => return None,
        })
    }

    /// An amount billed every interval, normalised to a month, in minor units
    /// (annual ÷ 12, weekly × 52 ÷ 12, daily × 365 ÷ 12), rounded half up.
    pub fn monthly(&self, minor: i64) -> i64 {
        let (num, den) = match self {
            Self::Day => (365, 12),
            Self::Week => (52, 12),
            Self::Month => (1, 1),
            Self::Year => (1, 12),
        };
        (minor * num * 2 + den) / (den * 2)
    }
}

/// A track event Tenure understands, with its typed properties.
#[derive(Debug, Clone, PartialEq)]
pub enum Semantic {
    SignedUp,
    OrderCompleted {
        order_id: String,
        revenue: Money,
    },
    OrderRefunded {
        order_id: String,
        amount: Option<Money>,
    },
    SubscriptionStarted(SubscriptionTerms),
    SubscriptionChanged(SubscriptionTerms),
    SubscriptionRenewed {
        subscription_id: String,
    },
    SubscriptionCancelled {
        subscription_id: String,
        ends_at: Option<Millis>,
    },
    SubscriptionPaused {
        subscription_id: String,
    },
    SubscriptionResumed {
        subscription_id: String,
    },
    TrialStarted,
    TrialEnded,
    SurveyShown {
        survey_id: String,
    },
    SurveyResponded {
        survey_id: String,
        /// The highest possible score: 10 (NPS, 0–10) or 5 (CSAT, 1–5).
        scale: u8,
        score: Option<u8>,
        comment: Option<String>,
    },
    TicketOpened {
        ticket_id: String,
    },
    TicketResolved {
        ticket_id: String,
    },
    ReferralCodeUsed {
        code: String,
        referrer_id: Option<String>,
    },
    /// A person sets a customer's health grade (and optionally score) by hand until
    /// `expires_at`; the log of these events is the audit trail (docs/health.md).
    HealthOverridden(HealthOverride),
    /// Tenure records that the customer entered (`true`) or left a segment
    /// (docs/segments.md); the customer's memberships are the fold of these events.
    SegmentMembership {
        segment: crate::ids::SegmentId,
        entered: bool,
    },
    Custom,
}

/// A manual health override, as folded into the customer's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthOverride {
    #[serde(with = "crate::time::iso")]
    pub at: Millis,
    pub grade: crate::health::model::Grade,
    pub score: Option<f64>,
    pub reason: String,
    pub author: String,
    #[serde(with = "crate::time::iso")]
    pub expires_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionTerms {
    pub subscription_id: String,
    pub plan: String,
    pub interval: Interval,
    pub amount: Money,
    /// Amount off per interval (same currency, at most `amount`).
    pub discount: Option<Money>,
    pub trial_end: Option<Millis>,
}

/// Events that record what a person or Tenure did about a customer, not what the customer
/// did: folded for their meaning, never counted as the customer's activity (usage,
/// retention, health).
pub const OPERATOR_EVENTS: [&str; 5] = [
    "Health Overridden",
    "Segment Entered",
    "Segment Exited",
    "At Risk Entered",
    "Health Changed",
];

/// Every event name with a meaning of its own.
pub const SEMANTIC_EVENTS: [&str; 19] = [
    "Signed Up",
    "Order Completed",
    "Order Refunded",
    "Subscription Started",
    "Subscription Changed",
    "Subscription Renewed",
    "Subscription Cancelled",
    "Subscription Paused",
    "Subscription Resumed",
    "Trial Started",
    "Trial Ended",
    "Survey Shown",
    "Survey Responded",
    "Ticket Opened",
    "Ticket Resolved",
    "Referral Code Used",
    "Health Overridden",
    "Segment Entered",
    "Segment Exited",
];

impl Semantic {
    /// Whether `event` is a semantic event (anything else is custom).
    pub fn is_known(event: &str) -> bool {
        SEMANTIC_EVENTS.contains(&event)
    }

    /// Reads the semantic meaning of a track event, or the list of what is missing.
    pub fn parse(
        event: &str,
        properties: Option<&Map<String, Value>>,
    ) -> Result<Semantic, Vec<FieldError>> {
        let empty = Map::new();
        let p = Props {
            map: properties.unwrap_or(&empty),
            errors: Vec::new(),
        };
        let mut p = p;
        let semantic =
            match event {
                "Signed Up" => Semantic::SignedUp,
                "Order Completed" => {
                    let order_id = p.id("order_id");
                    let currency = p.currency("currency");
                    let amount_key =
                        if p.map.contains_key("revenue") || !p.map.contains_key("total") {
                            "revenue"
                        } else {
                            "total"
                        };
                    let revenue = p.money(amount_key, currency);
                    match (order_id, revenue) {
                        (Some(order_id), Some(revenue)) => {
                            Semantic::OrderCompleted { order_id, revenue }
                        }
                        _ => Semantic::Custom,
                    }
                }
                "Order Refunded" => {
                    let order_id = p.id("order_id");
                    let amount = if p.map.get("revenue").is_some_and(|v| !v.is_null()) {
                        let currency = p.currency("currency");
                        p.money("revenue", currency)
                    } else {
                        None
                    };
                    match order_id {
                        Some(order_id) => Semantic::OrderRefunded { order_id, amount },
                        None => Semantic::Custom,
                    }
                }
                "Subscription Started" | "Subscription Changed" => {
                    let subscription_id = p.id("subscription_id");
                    let plan = p.id("plan");
                    let interval = p.interval("interval");
                    let currency = p.currency("currency");
                    let amount = p.money("amount", currency);
                    let trial_end = p.instant("trial_end");
                    let discount = p.optional_money("discount", currency);
                    if let (Some(d), Some(a)) = (discount, amount)
                        && d.minor > a.minor
                    {
                        p.errors.push(FieldError::new(
                            "properties.discount",
                            "must not exceed `amount`",
                        ));
                    }
                    match (subscription_id, plan, interval, amount) {
                        (Some(subscription_id), Some(plan), Some(interval), Some(amount)) => {
                            let terms = SubscriptionTerms {
                                subscription_id,
                                plan,
                                interval,
                                amount,
                                discount,
                                trial_end,
                            };
                            if event == "Subscription Started" {
                                Semantic::SubscriptionStarted(terms)
                            } else {
                                Semantic::SubscriptionChanged(terms)
                            }
                        }
                        _ => Semantic::Custom,
                    }
                }
                "Subscription Renewed" => p
                    .id("subscription_id")
                    .map_or(Semantic::Custom, |subscription_id| {
                        Semantic::SubscriptionRenewed { subscription_id }
                    }),
                "Subscription Cancelled" => {
                    let ends_at = p.instant("ends_at");
                    p.id("subscription_id")
                        .map_or(Semantic::Custom, |subscription_id| {
                            Semantic::SubscriptionCancelled {
                                subscription_id,
                                ends_at,
                            }
                        })
                }
                "Subscription Paused" => p
                    .id("subscription_id")
                    .map_or(Semantic::Custom, |subscription_id| {
                        Semantic::SubscriptionPaused { subscription_id }
                    }),
                "Subscription Resumed" => p
                    .id("subscription_id")
                    .map_or(Semantic::Custom, |subscription_id| {
                        Semantic::SubscriptionResumed { subscription_id }
                    }),
                "Trial Started" => Semantic::TrialStarted,
                "Trial Ended" => Semantic::TrialEnded,
                "Survey Shown" => {
                    p.id("survey_id")
                        .map_or(Semantic::Custom, |survey_id| Semantic::SurveyShown {
                            survey_id,
                        })
                }
                "Survey Responded" => {
                    let survey_id = p.id("survey_id");
                    let scale = p.scale("scale");
                    let score = p.score("score", scale);
                    let comment = p
                        .map
                        .get("comment")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    survey_id.map_or(Semantic::Custom, |survey_id| Semantic::SurveyResponded {
                        survey_id,
                        scale,
                        score,
                        comment,
                    })
                }
                "Ticket Opened" => {
                    p.id("ticket_id")
                        .map_or(Semantic::Custom, |ticket_id| Semantic::TicketOpened {
                            ticket_id,
                        })
                }
                "Ticket Resolved" => p.id("ticket_id").map_or(Semantic::Custom, |ticket_id| {
                    Semantic::TicketResolved { ticket_id }
                }),
                "Referral Code Used" => {
                    let code = p.id("code");
                    let referrer_id = p.optional_id("referrer_id");
                    code.map_or(Semantic::Custom, |code| Semantic::ReferralCodeUsed {
                        code,
                        referrer_id,
                    })
                }
                "Health Overridden" => {
                    let grade = p.grade("grade");
                    let score = p.optional_percent("score");
                    let reason = p.id("reason");
                    let author = p.id("author");
                    let expires_at = p.required_instant("expires_at");
                    match (grade, reason, author, expires_at) {
                        (Some(grade), Some(reason), Some(author), Some(expires_at)) => {
                            Semantic::HealthOverridden(HealthOverride {
                                // The event's own time is set when it is folded.
                                at: 0,
                                grade,
                                score,
                                reason,
                                author,
                                expires_at,
                            })
                        }
                        _ => Semantic::Custom,
                    }
                }
                "Segment Entered" | "Segment Exited" => p
                    .id("segment_id")
                    .and_then(|id| crate::ids::SegmentId::parse(&id))
                    .map_or(Semantic::Custom, |segment| Semantic::SegmentMembership {
                        segment,
                        entered: event == "Segment Entered",
                    }),
                _ => Semantic::Custom,
            };
        if p.errors.is_empty() {
            Ok(semantic)
        } else {
            Err(p.errors)
        }
    }
}

/// Reads typed properties and collects every problem, each with its dotted field path.
struct Props<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Props<'_> {
    fn field(key: &str) -> String {
        format!("properties.{key}")
    }

    fn id(&mut self, key: &str) -> Option<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    "required property is missing",
                ));
                None
            }
            _ => self.optional_id(key),
        }
    }

    /// A health grade: `red`, `yellow` or `green`.
    fn grade(&mut self, key: &str) -> Option<crate::health::model::Grade> {
        use crate::health::model::Grade;
        let grade = match self.map.get(key).and_then(Value::as_str) {
            Some("red") => Some(Grade::Red),
            Some("yellow") => Some(Grade::Yellow),
            Some("green") => Some(Grade::Green),
            _ => None,
        };
        if grade.is_none() {
            self.errors.push(FieldError::new(
                Self::field(key),
                "is required: one of `red`, `yellow`, `green`",
            ));
        }
        grade
    }

    /// An optional number from 0 to 100.
    fn optional_percent(&mut self, key: &str) -> Option<f64> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_f64().filter(|s| (0.0..=100.0).contains(s)) {
                Some(s) => Some(s),
                None => {
                    self.errors.push(FieldError::new(
                        Self::field(key),
                        "must be a number from 0 to 100",
                    ));
                    None
                }
            },
        }
    }

    /// A required ISO-8601 instant.
    fn required_instant(&mut self, key: &str) -> Option<Millis> {
        if self.map.get(key).is_none_or(Value::is_null) {
            self.errors.push(FieldError::new(
                Self::field(key),
                "is required (an ISO-8601 date-time)",
            ));
            return None;
        }
        self.instant(key)
    }

    fn optional_id(&mut self, key: &str) -> Option<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    "must be a non-empty string",
                ));
                None
            }
        }
    }

    fn currency(&mut self, key: &str) -> Option<Currency> {
        match self.map.get(key) {
            Some(Value::String(s)) => {
                let c = Currency::parse(s);
                if c.is_none() {
                    self.errors.push(FieldError::new(
                        Self::field(key),
                        format!("`{s}` is not an ISO 4217 currency code (e.g. USD)"),
                    ));
                }
                c
            }
            None | Some(Value::Null) => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    "required property is missing (e.g. \"USD\")",
                ));
                None
            }
            Some(_) => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    "must be a currency code string",
                ));
                None
            }
        }
    }

    /// Like [`Self::money`], but absent or null is `None` without an error.
    fn optional_money(&mut self, key: &str, currency: Option<Currency>) -> Option<Money> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(_) => self.money(key, currency),
        }
    }

    /// A decimal amount; negative amounts are refused (refunds are their own event); zero is
    /// allowed (free orders, free plans).
    fn money(&mut self, key: &str, currency: Option<Currency>) -> Option<Money> {
        let amount = match self.map.get(key) {
            Some(Value::Number(n)) => n.as_f64(),
            None | Some(Value::Null) => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    "required property is missing",
                ));
                return None;
            }
            Some(other) => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    format!("must be a number, got {}", json_kind(other)),
                ));
                return None;
            }
        }?;
        if amount < 0.0 {
            self.errors
                .push(FieldError::new(Self::field(key), "must not be negative"));
            return None;
        }
        let currency = currency?;
        let money = Money::from_decimal(amount, currency);
        if money.is_none() {
            self.errors.push(FieldError::new(
                Self::field(key),
                format!(
                    "{amount} is out of range: amounts go from 0 to {} {currency}",
                    crate::money::max_decimal(currency)
                ),
            ));
        }
        money
    }

    fn interval(&mut self, key: &str) -> Option<Interval> {
        match self.map.get(key) {
            Some(Value::String(s)) => {
                let i = Interval::parse(s);
                if i.is_none() {
                    self.errors.push(FieldError::new(
                        Self::field(key),
                        format!("`{s}` is not an interval: expected day, week, month or year"),
                    ));
                }
                i
            }
            _ => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    "required: day, week, month or year",
                ));
                None
            }
        }
    }

    fn instant(&mut self, key: &str) -> Option<Millis> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let t = parse_instant(s);
                if t.is_none() {
                    self.errors.push(FieldError::new(
                        Self::field(key),
                        format!("`{s}` is not an ISO-8601 date-time"),
                    ));
                }
                t
            }
            Some(_) => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    "must be an ISO-8601 date-time string",
                ));
                None
            }
        }
    }

    /// A survey's scale: 10 (NPS, the default) or 5 (CSAT).
    fn scale(&mut self, key: &str) -> u8 {
        match self.map.get(key) {
            None | Some(Value::Null) => 10,
            Some(Value::Number(n)) if n.as_u64() == Some(10) => 10,
            Some(Value::Number(n)) if n.as_u64() == Some(5) => 5,
            Some(other) => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    format!("must be 10 (NPS) or 5 (CSAT), got {other}"),
                ));
                10
            }
        }
    }

    fn score(&mut self, key: &str, scale: u8) -> Option<u8> {
        let low = if scale == 5 { 1.0 } else { 0.0 };
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(s) if (low..=f64::from(scale)).contains(&s) && s.fract() == 0.0 => {
                    Some(s as u8)
                }
                _ => {
                    self.errors.push(FieldError::new(
                        Self::field(key),
                        format!("{n} is not a whole score from {low} to {scale}"),
                    ));
                    None
                }
            },
            Some(other) => {
                self.errors.push(FieldError::new(
                    Self::field(key),
                    format!("must be a number, got {}", json_kind(other)),
                ));
                None
            }
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(event: &str, props: Value) -> Result<Semantic, Vec<FieldError>> {
        Semantic::parse(event, props.as_object())
    }

    #[test]
    fn order_completed_needs_numeric_revenue_and_currency() {
        let ok = parse(
            "Order Completed",
            json!({"order_id": "o1", "revenue": 19.99, "currency": "usd"}),
        )
        .unwrap();
        let Semantic::OrderCompleted { revenue, .. } = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(revenue.minor, 1999);
        assert_eq!(revenue.currency.as_str(), "USD");

        let errors = parse(
            "Order Completed",
            json!({"order_id": "o1", "revenue": "19.99"}),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["properties.currency", "properties.revenue"]);
        assert!(errors[1].message.contains("got a string"));
    }

    #[test]
    fn subscription_terms_are_typed_and_normalised() {
        let s = parse(
            "Subscription Started",
            json!({"subscription_id": "s1", "plan": "pro", "interval": "annual", "amount": 1200, "currency": "EUR"}),
        )
        .unwrap();
        let Semantic::SubscriptionStarted(terms) = s else {
            panic!()
        };
        assert_eq!(terms.interval, Interval::Year);
        assert_eq!(terms.interval.monthly(terms.amount.minor), 10_000);
        assert!(parse("Subscription Started", json!({"subscription_id": "s1"})).is_err());
        assert!(parse("Subscription Cancelled", json!({})).is_err());
    }

    #[test]
    fn monthly_normalisation_rounds_half_up() {
        assert_eq!(Interval::Year.monthly(1000), 83); // 83.33
        assert_eq!(Interval::Year.monthly(1002), 84); // 83.5
        assert_eq!(Interval::Week.monthly(1200), 5200);
        assert_eq!(Interval::Month.monthly(4999), 4999);
    }

    #[test]
    fn survey_scores_must_be_whole_0_to_10_and_may_be_skipped() {
        assert!(matches!(
            parse("Survey Responded", json!({"survey_id": "nps", "score": 9})).unwrap(),
            Semantic::SurveyResponded { score: Some(9), .. }
        ));
        assert!(matches!(
            parse("Survey Responded", json!({"survey_id": "nps"})).unwrap(),
            Semantic::SurveyResponded { score: None, .. }
        ));
        assert!(parse("Survey Responded", json!({"survey_id": "nps", "score": 11})).is_err());
        assert!(
            parse(
                "Survey Responded",
                json!({"survey_id": "nps", "score": 7.5})
            )
            .is_err()
        );
    }

    #[test]
    fn the_list_of_semantic_events_matches_the_parser() {
        // A listed name either needs properties (an error without them) or has a meaning of
        // its own; an unlisted name is custom.
        for name in SEMANTIC_EVENTS {
            let parsed = Semantic::parse(name, None);
            assert!(
                !matches!(parsed, Ok(Semantic::Custom)),
                "{name} is listed but parsed as custom"
            );
        }
        assert_eq!(
            Semantic::parse("Order Shipped", None).unwrap(),
            Semantic::Custom
        );
        assert!(!Semantic::is_known("Order Shipped"));
    }

    #[test]
    fn custom_events_are_accepted_as_they_are() {
        assert_eq!(
            parse("Report Exported", json!({"anything": [1, 2]})).unwrap(),
            Semantic::Custom
        );
    }
}
