//! Value: revenue concentration (Lorenz curve, top-20% share, Gini), LTV, retention and CAC
//! payback by acquisition channel, and the what-if projection of a churn change (a slider
//! on `churn_change`, the query parameter of docs/metrics.md).

use maud::html;
use tenure_core::metrics::{Report, Table};

use super::{Params, customer_link, empty, filter_bar, param, segment_choices};
use crate::AppState;
use crate::dashboard::charts::{self, Series, Titles};
use crate::dashboard::format::{self, money, money_short, num, pct};
use crate::dashboard::session::Session;
use crate::dashboard::{Nav, PageResult};

page_handler!("Value", Nav::Value);

async fn build(state: &AppState, session: &Session, params: Params) -> PageResult {
    let ws = &session.workspace;
    let report: Report = crate::routes::metrics::report(
        state,
        ws,
        params.clone(),
        vec![Table::Concentration, Table::Channels, Table::WhatIf],
    )
    .await?;
    let segments = segment_choices(state, ws).await?;
    let currency = report.currency.currency.clone();
    let unit = report.query.grain.name();
    let churn_change = report.query.churn_change;
    let horizon = report.query.horizon;
    let slider = html! {
        label { "What-if: churn change"
            span { input type="range" name="churn_change" min="-50" max="50" step="5" value=(format!("{churn_change:.0}")) data-output="churn-change-value" data-autosubmit;
                " " output #churn-change-value { (format!("{churn_change:.0}%")) } }
        }
        label { "Horizon (" (unit) "s)" input type="number" name="horizon" min="1" max="120" value=(param(&params, "horizon").map_or(horizon.to_string(), str::to_owned)); }
    };
    let axis_money = |v: f64| money_short(v, &currency);
    Ok(html! {
        (filter_bar("/dashboard/value", &params, &segments, slider, &["churn_change", "horizon"]))
        section.panel {
            h2 { "Revenue concentration" }
            @match &report.concentration {
                Some(c) if c.customers > 0 => {
                    p { "Over " (format::date(&c.window_start)) " – " (format::date(&c.window_end)) ": the top 20% of " (format::count(c.customers)) " customers bring "
                        strong data-metric="concentration.top_20_share" data-value=(format::raw(c.top_20_share)) { (pct(c.top_20_share)) }
                        " of " (money(Some(c.revenue as f64), &currency)) " revenue (Gini " (num(c.gini, 3)) ")." }
                    @let points: Vec<String> = c.lorenz.iter().map(|p| format!("{:.0}%", p.customers_share * 100.0)).collect();
                    @let series = [
                        Series { name: "Lorenz curve: the bottom x% of customers earn y% of revenue", color: charts::BLUE, values: c.lorenz.iter().map(|p| Some(p.revenue_share)).collect(), dash: None },
                        Series { name: "Equal revenue for everyone", color: charts::GREY, values: c.lorenz.iter().map(|p| Some(p.customers_share)).collect(), dash: Some("6 4") },
                    ];
                    (charts::lines(&Titles { title: "Lorenz curve of revenue", y: "share of revenue", x: "share of customers, smallest first" }, &points, &series, Some((0.0, 1.0)), &|v| format!("{:.0}%", v * 100.0)))
                    h3 { "Largest customers" }
                    table { thead { tr { th { "Customer" } th.num { "Revenue" } } }
                        tbody { @for t in &c.top_customers { tr { td { (customer_link(&t.customer_id, t.user_id.as_deref().unwrap_or(&t.customer_id))) } td.num { (money(Some(t.revenue as f64), &currency)) } } } } }
                }
                _ => (empty(html! { "No revenue in the last 12 months — send subscription or " code { "Order Completed" } " events." })),
            }
        }
        section.panel {
            h2 { "By acquisition channel" }
            @let channels = report.channels.as_deref().unwrap_or_default();
            @if channels.is_empty() {
                (empty(html! { "No acquired customers in this range. Channels come from " code { "utm_source" } ", " code { "acquisition_channel" } " or a referral code." }))
            } @else {
                @let ltv: Vec<(String, Option<f64>)> = channels.iter().map(|c| (c.channel.clone(), c.ltv)).collect();
                (charts::bars("LTV by acquisition channel", &currency, &ltv, &|v| money(Some(v), &currency)))
                table {
                    thead { tr { th { "Channel" } th.num { "New" } th.num { "Active" } th.num { "Retention / " (unit) } th.num { "ARPA" } th.num { "LTV" } th.num { "NPS" } th.num { "Spend" } th.num { "CAC" } th.num { "CAC payback (months)" } th.num { "LTV : CAC" } } }
                    tbody {
                        @for c in channels {
                            tr data-channel=(c.channel) {
                                td { (c.channel) } td.num { (c.new_customers) } td.num { (c.customers) } td.num { (pct(c.retention_rate)) }
                                td.num { (money(c.arpa, &currency)) } td.num { (money(c.ltv, &currency)) } td.num { (num(c.nps, 1)) }
                                td.num { (money(c.spend.map(|s| s as f64), &currency)) } td.num { (money(c.cac, &currency)) }
                                td.num data-field="cac_payback_months" { (num(c.cac_payback_months, 1)) } td.num { (num(c.ltv_to_cac, 1)) }
                            }
                        }
                    }
                }
                @if channels.iter().all(|c| c.spend.is_none()) {
                    p.muted { "CAC and payback need marketing spend: " code { "tenure spend import FILE.csv" } " or " code { "PUT /v1/spend" } "." }
                }
            }
        }
        section.panel {
            h2 { "What if churn changed by " (format!("{churn_change:+.0}%")) "?" }
            @match &report.what_if {
                Some(w) if w.baseline_churn_rate.is_some() => {
                    p { "Churn " (pct(w.baseline_churn_rate)) " → " (pct(w.scenario_churn_rate)) " per " (unit) ", with " (num(Some(w.inflow_per_period), 1)) " new customers per " (unit) ": after " (horizon) " " (unit) "s, "
                        strong data-metric="what_if.revenue_difference" data-value=(format::raw(Some(w.revenue_difference))) { (money(Some(w.revenue_difference), &currency)) }
                        " more cumulative revenue (constant-hazard projection, docs/metrics.md)." }
                    @let points: Vec<String> = w.baseline.iter().map(|p| format!("+{}", p.period)).collect();
                    @let series = [
                        Series { name: "MRR today's churn", color: charts::GREY, values: w.baseline.iter().map(|p| Some(p.mrr)).collect(), dash: Some("6 4") },
                        Series { name: "MRR under the scenario", color: charts::BLUE, values: w.scenario.iter().map(|p| Some(p.mrr)).collect(), dash: None },
                    ];
                    (charts::lines(&Titles { title: "Projected MRR", y: &format!("MRR ({currency})"), x: &format!("{unit}s from now") }, &points, &series, None, &axis_money))
                }
                _ => (empty(html! { "No churn measured yet, so nothing to project: it needs at least one complete period with paying customers at its start." })),
            }
        }
    })
}
