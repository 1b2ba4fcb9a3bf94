//! Overview: the headline numbers with their change against the previous period and a
//! sparkline, MRR movements, and customers by health grade. Each headline card carries
//! `data-metric`, `data-period` and `data-value`: the table, field, row and raw value of
//! `GET /v1/metrics` it shows (the browser test compares them).

use maud::{Markup, html};
use serde_json::Value;
use tenure_core::metrics::{PeriodHeader, Report, Table};

use super::{Params, empty, filter_bar, labels, segment_choices};
use crate::AppState;
use crate::dashboard::charts::{self, Series, Titles};
use crate::dashboard::format::{self, money, money_short, num, pct};
use crate::dashboard::session::Session;
use crate::dashboard::{Nav, PageResult};

page_handler!("Overview", Nav::Overview);

/// The row a headline reads (the last complete period, or the running one when none has
/// ended) and the one before it.
fn pick<T>(rows: &[T], header: impl Fn(&T) -> &PeriodHeader) -> (Option<&T>, Option<&T>) {
    let at = rows
        .iter()
        .rposition(|r| header(r).complete)
        .or(rows.len().checked_sub(1));
    match at {
        Some(i) => (rows.get(i), i.checked_sub(1).and_then(|j| rows.get(j))),
        None => (None, None),
    }
}

/// How a change reads: whether up is good, and how to write the difference.
#[derive(Clone, Copy)]
enum Better {
    Up,
    Down,
}

struct Card<'a> {
    label: &'a str,
    table: &'a str,
    field: &'a str,
    period: Option<&'a str>,
    value: Option<f64>,
    previous: Option<f64>,
    previous_period: Option<&'a str>,
    /// The value exactly as the API writes it.
    raw: String,
    shown: String,
    /// The change as text, given (now − before).
    delta: &'a dyn Fn(f64) -> String,
    better: Better,
    sub: Option<String>,
    series: Vec<Option<f64>>,
}

fn card(c: &Card<'_>) -> Markup {
    let change = match (c.value, c.previous) {
        (Some(a), Some(b)) => {
            let d = a - b;
            let class = if d.abs() < 1e-12 {
                "delta flat"
            } else if (d > 0.0) == matches!(c.better, Better::Up) {
                "delta good"
            } else {
                "delta bad"
            };
            let arrow = if d > 0.0 {
                "▲"
            } else if d < 0.0 {
                "▼"
            } else {
                "■"
            };
            Some((
                class,
                format!(
                    "{arrow} {} vs {}",
                    (c.delta)(d),
                    c.previous_period.unwrap_or("the previous period")
                ),
            ))
        }
        _ => None,
    };
    html! {
        div.card data-metric=(format!("{}.{}", c.table, c.field)) data-period=[c.period] data-value=(c.raw) {
            div.label { (c.label) @if let Some(p) = c.period { " · " (p) } }
            div.value { (c.shown) }
            @if let Some((class, text)) = change { div class=(class) { (text) } } @else { div.delta.flat { "no earlier period to compare" } }
            @if let Some(sub) = &c.sub { div.sub { (sub) } }
            (charts::sparkline(c.label, &c.series))
        }
    }
}

async fn build(state: &AppState, session: &Session, params: Params) -> PageResult {
    let ws = &session.workspace;
    let report: Report = crate::routes::metrics::report(
        state,
        ws,
        params.clone(),
        vec![Table::Subscriptions, Table::Voice, Table::Referrals],
    )
    .await?;
    let health = crate::routes::health_scores::document(state, ws, 0).await?;
    let segments = segment_choices(state, ws).await?;
    let currency = report.currency.currency.clone();
    let subs = report.subscriptions.as_deref().unwrap_or_default();
    let voice = report.voice.as_deref().unwrap_or_default();
    let referrals = report.referrals.as_deref().unwrap_or_default();
    let grain = report.query.grain;
    let unit = grain.name();

    let (now_row, prev_row) = pick(subs, |r| &r.header);
    let current = subs.last();
    let before_current = subs.len().checked_sub(2).and_then(|i| subs.get(i));
    let (voice_row, voice_prev) = pick(voice, |r| &r.header);
    let (ref_row, ref_prev) = pick(referrals, |r| &r.header);
    let money_delta = |d: f64| money(Some(d), &currency);
    let points = |d: f64| format!("{:.1} pt", d * 100.0);
    let nps_points = |d: f64| format!("{d:.1}");
    let lifetime = now_row.and_then(|r| r.expected_lifetime);

    let cards = [
        Card {
            label: "MRR",
            table: "subscriptions",
            field: "mrr",
            period: current.map(|r| r.header.period.as_str()),
            value: current.map(|r| r.mrr as f64),
            previous: before_current.map(|r| r.mrr as f64),
            previous_period: before_current.map(|r| r.header.period.as_str()),
            raw: current.map_or_else(|| "null".to_owned(), |r| r.mrr.to_string()),
            shown: money(current.map(|r| r.mrr as f64), &currency),
            delta: &money_delta,
            better: Better::Up,
            sub: current.map(|r| format!("{} paying customers", format::count(r.paying_customers))),
            series: subs.iter().map(|r| Some(r.mrr as f64)).collect(),
        },
        Card {
            label: "Logo churn",
            table: "subscriptions",
            field: "logo_churn_rate",
            period: now_row.map(|r| r.header.period.as_str()),
            value: now_row.and_then(|r| r.logo_churn_rate),
            raw: format::raw(now_row.and_then(|r| r.logo_churn_rate)),
            previous: prev_row.and_then(|r| r.logo_churn_rate),
            previous_period: prev_row.map(|r| r.header.period.as_str()),
            shown: pct(now_row.and_then(|r| r.logo_churn_rate)),
            delta: &points,
            better: Better::Down,
            sub: Some(match lifetime {
                Some(l) => format!("implied lifetime {l:.1} {unit}s"),
                None => "implied lifetime undefined (no churn)".to_owned(),
            }),
            series: subs.iter().map(|r| r.logo_churn_rate).collect(),
        },
        Card {
            label: "Net revenue retention",
            table: "subscriptions",
            field: "net_revenue_retention",
            period: now_row.map(|r| r.header.period.as_str()),
            value: now_row.and_then(|r| r.net_revenue_retention),
            raw: format::raw(now_row.and_then(|r| r.net_revenue_retention)),
            previous: prev_row.and_then(|r| r.net_revenue_retention),
            previous_period: prev_row.map(|r| r.header.period.as_str()),
            shown: pct(now_row.and_then(|r| r.net_revenue_retention)),
            delta: &points,
            better: Better::Up,
            sub: Some(format!(
                "gross {}",
                pct(now_row.and_then(|r| r.gross_revenue_retention))
            )),
            series: subs.iter().map(|r| r.net_revenue_retention).collect(),
        },
        Card {
            label: "NPS",
            table: "voice",
            field: "nps",
            period: voice_row.map(|r| r.header.period.as_str()),
            value: voice_row.and_then(|r| r.nps),
            raw: format::raw(voice_row.and_then(|r| r.nps)),
            previous: voice_prev.and_then(|r| r.nps),
            previous_period: voice_prev.map(|r| r.header.period.as_str()),
            shown: num(voice_row.and_then(|r| r.nps), 1),
            delta: &nps_points,
            better: Better::Up,
            sub: voice_row.map(|r| format!("{} scored answers", format::count(r.nps_responses))),
            series: voice.iter().map(|r| r.nps).collect(),
        },
        Card {
            label: "Referral share",
            table: "referrals",
            field: "referral_share",
            period: ref_row.map(|r| r.header.period.as_str()),
            value: ref_row.and_then(|r| r.referral_share),
            raw: format::raw(ref_row.and_then(|r| r.referral_share)),
            previous: ref_prev.and_then(|r| r.referral_share),
            previous_period: ref_prev.map(|r| r.header.period.as_str()),
            shown: pct(ref_row.and_then(|r| r.referral_share)),
            delta: &points,
            better: Better::Up,
            sub: ref_row.map(|r| {
                format!(
                    "{} of {} new customers referred",
                    r.referred_customers, r.new_customers
                )
            }),
            series: referrals.iter().map(|r| r.referral_share).collect(),
        },
        Card {
            label: "Average LTV",
            table: "subscriptions",
            field: "ltv",
            period: now_row.map(|r| r.header.period.as_str()),
            value: now_row.and_then(|r| r.ltv),
            raw: format::raw(now_row.and_then(|r| r.ltv)),
            previous: prev_row.and_then(|r| r.ltv),
            previous_period: prev_row.map(|r| r.header.period.as_str()),
            shown: money(now_row.and_then(|r| r.ltv), &currency),
            delta: &money_delta,
            better: Better::Up,
            sub: Some(format!(
                "ARPA {}",
                money(now_row.and_then(|r| r.arpa), &currency)
            )),
            series: subs.iter().map(|r| r.ltv).collect(),
        },
    ];

    let period_labels = labels(subs, |r| &r.header);
    let movement =
        |f: fn(&tenure_core::metrics::SubscriptionRow) -> i64, sign: f64| -> Vec<Option<f64>> {
            subs.iter().map(|r| Some(sign * f(r) as f64)).collect()
        };
    let series = [
        Series {
            name: "New",
            color: charts::GREEN,
            values: movement(|r| r.new_mrr, 1.0),
            dash: None,
        },
        Series {
            name: "Expansion",
            color: charts::SKY,
            values: movement(|r| r.expansion_mrr, 1.0),
            dash: None,
        },
        Series {
            name: "Reactivation",
            color: charts::BLUE,
            values: movement(|r| r.reactivation_mrr, 1.0),
            dash: None,
        },
        Series {
            name: "Contraction",
            color: charts::ORANGE,
            values: movement(|r| r.contraction_mrr, -1.0),
            dash: None,
        },
        Series {
            name: "Churned",
            color: charts::VERMILLION,
            values: movement(|r| r.churned_mrr, -1.0),
            dash: None,
        },
    ];
    let axis_money = |v: f64| money_short(v, &currency);
    let y_title = format!("MRR change ({currency})");
    let x_title = format!("{unit} (UTC)");
    let no_subscriptions = subs
        .iter()
        .all(|r| r.mrr == 0 && r.mrr_start == 0 && r.new_mrr == 0);
    let count = |k: &str| health.get(k).and_then(Value::as_u64).unwrap_or(0);
    let grades = [
        ("red", charts::VERMILLION),
        ("yellow", charts::ORANGE),
        ("green", charts::GREEN),
    ];

    Ok(html! {
        (filter_bar("/dashboard", &params, &segments, html! {}, &[]))
        @for w in &report.warnings { p.muted { "Note: " (w) } }
        @if no_subscriptions {
            (empty(html! { "No subscriptions yet — send " code { "Subscription Started" } " events (docs/ingestion.md), or run " code { "tenure demo" } " to see a sample business." }))
        }
        div.cards { @for c in &cards { (card(c)) } }
        p.muted { (format::count(report.customers as u64)) " customers match the filters; as of " (format::date(&report.as_of)) ". Rates are for the last complete " (unit) "; MRR is at the report instant." }
        section.panel {
            h2 { "MRR movements" }
            @if no_subscriptions {
                p.muted { "No MRR movements in this range." }
            } @else {
                (charts::stacked_bars(&Titles { title: "MRR movements per period: gains above the axis, losses below", y: &y_title, x: &x_title }, &period_labels, &series, &axis_money))
            }
        }
        section.panel {
            h2 { "Customers by health grade" }
            @if count("customers") == 0 {
                (empty(html! { "No current customers to score yet: health scores read customers who pay a subscription now or ordered in the last 365 days." }))
            } @else {
                p.muted { "Current customers under " (format::text(&health["model"])) " (docs/health.md)." }
                table.hbars {
                    @for (grade, color) in grades {
                        @let n = count(grade);
                        tr data-grade=(grade) data-count=(n) {
                            th scope="row" { a href=(format!("/dashboard/at-risk?grade={grade}")) { (grade) } }
                            td {
                                span.bar style=(format!("width:{:.1}%;background:{color}", 100.0 * n as f64 / count("customers").max(1) as f64)) {}
                                " " (format::count(n)) " (" (pct(Some(n as f64 / count("customers").max(1) as f64))) ")"
                            }
                        }
                    }
                }
            }
        }
    })
}
