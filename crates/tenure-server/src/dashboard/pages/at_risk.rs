//! At risk: the current customers with the most revenue expected to leave (churn
//! probability × MRR) or the likeliest to leave, with grade, trend and the model's top
//! reasons; filtered by grade, plan and channel. The rows are `GET /v1/risk/customers`.

use maud::html;
use serde_json::Value;

use super::{Params, customer_link, empty, grade_badge, param};
use crate::AppState;
use crate::dashboard::format::{self, money, pct};
use crate::dashboard::session::Session;
use crate::dashboard::{Nav, PageError, PageResult};
use crate::error::Code;
use crate::routes::risk::RankingParams;

page_handler!("At risk", Nav::AtRisk);

/// A feature name as words (`days_since_last_event` → `days since last event`).
fn words(name: &str) -> String {
    name.replace('_', " ").replace('=', " = ")
}

async fn build(state: &AppState, session: &Session, params: Params) -> PageResult {
    let ws = &session.workspace;
    let known = ["sort", "grade", "plan", "channel", "limit"];
    if let Some((k, _)) = params.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(PageError(crate::error::ApiError::new(
            Code::InvalidParameter,
            format!(
                "query parameter `{k}` is not one of this page's: {}",
                known.join(", ")
            ),
        )));
    }
    let sort = param(&params, "sort").unwrap_or("expected_loss").to_owned();
    let grade = param(&params, "grade").unwrap_or("").to_owned();
    let ranking = RankingParams {
        limit: Some(param(&params, "limit").unwrap_or("50").to_owned()),
        sort: Some(sort.clone()),
        plan: param(&params, "plan").map(str::to_owned),
        channel: param(&params, "channel").map(str::to_owned),
        grade: Some(grade.clone()).filter(|g| !g.is_empty()),
    };
    let body = match crate::routes::risk::ranking(state, ws, &ranking).await {
        Ok(body) => body,
        Err(e) if e.code == Code::RiskModelNotFound => {
            return Ok(empty(html! {
                "No churn-risk model yet. Train one on this workspace's history: " code { "tenure risk train" }
                " or " code { "POST /v1/risk/train" } " (docs/risk.md). It retrains by itself every "
                code { "TENURE_RISK_RETRAIN_DAYS" } " days."
            }));
        }
        Err(e) => return Err(e.into()),
    };
    let rows = body["data"].as_array().cloned().unwrap_or_default();
    let horizon = body["horizon_days"].as_u64().unwrap_or(30);
    Ok(html! {
        form.filters method="get" action="/dashboard/at-risk" {
            label { "Order by" select name="sort" data-autosubmit {
                option value="expected_loss" selected[sort == "expected_loss"] { "risk × MRR (revenue at risk)" }
                option value="probability" selected[sort == "probability"] { "churn probability" } } }
            label { "Grade" select name="grade" data-autosubmit {
                option value="" { "any" }
                @for g in ["red", "yellow", "green"] { option value=(g) selected[grade == g] { (g) } } } }
            label { "Plan" input type="text" name="plan" placeholder="any" value=[param(&params, "plan")]; }
            label { "Channel" input type="text" name="channel" placeholder="any" value=[param(&params, "channel")]; }
            label { "Show" input type="number" name="limit" min="1" max="1000" value=(param(&params, "limit").unwrap_or("50")); }
            button type="submit" { "Apply" }
            a href="/dashboard/at-risk" { "Reset" }
        }
        p.muted {
            (format::count(body["current_customers"].as_u64().unwrap_or(0))) " current customers match; "
            (format::num(body["expected_churners"].as_f64(), 1)) " of them are expected to churn within " (horizon) " days (model "
            (format::text(&body["model"])) ", as of " (format::date(&format::text(&body["as_of"]))) "). Reasons are what raise each customer's risk most."
        }
        @if rows.is_empty() {
            (empty(html! { "No current customer matches these filters." }))
        } @else {
            section.panel {
                table #at-risk {
                    thead { tr { th { "Customer" } th { "Plan" } th.num { "MRR" } th.num { "Churn probability" } th.num { "MRR at risk" } th { "Health" } th { "Trend (7 days)" } th { "Top reasons" } } }
                    tbody {
                        @for r in &rows {
                            @let id = format::text(&r["customer_id"]);
                            @let label = r["email"].as_str().or(r["user_id"].as_str()).unwrap_or(&id).to_owned();
                            @let currency = r["mrr"].as_object().and_then(|m| m.keys().next().cloned()).unwrap_or_default();
                            @let mrr: f64 = r["mrr"].as_object().map_or(0.0, |m| m.values().filter_map(Value::as_f64).sum());
                            tr data-customer=(id) data-probability=(r["probability"]) {
                                td { (customer_link(&id, &label)) }
                                td { (format::text(&r["plan"])) }
                                td.num { @if currency.is_empty() { span.muted { "—" } } @else { (money(Some(mrr), &currency)) } }
                                td.num { (pct(r["probability"].as_f64())) }
                                td.num { @if currency.is_empty() { span.muted { "—" } } @else { (money(r["expected_loss"].as_f64(), &currency)) } }
                                td { (grade_badge(r["health"]["grade"].as_str())) " " (format::num(r["health"]["score"].as_f64(), 0)) }
                                td {
                                    @match r["health"]["trend"]["direction"].as_str() {
                                        Some("up") => span.delta.good { "▲ up" },
                                        Some("down") => span.delta.bad { "▼ down" },
                                        _ => span.delta.flat { "■ same" },
                                    }
                                    @if let Some(p) = r["health"]["trend"]["previous_score"].as_f64() { span.muted { " (was " (format!("{p:.0}")) ")" } }
                                }
                                td {
                                    @for reason in r["reasons"].as_array().into_iter().flatten() {
                                        div { (words(reason["feature"].as_str().unwrap_or(""))) span.muted { " = " (format::num(reason["value"].as_f64(), 1)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}
