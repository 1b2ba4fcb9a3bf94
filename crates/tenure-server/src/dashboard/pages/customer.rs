//! Customer 360: the profile of `GET /v1/customers/{id}` (facts, health breakdown and
//! history, predictions, segments, subscriptions, orders, answers, tickets) and the latest
//! events of the customer from the log.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use tenure_core::CustomerId;

use super::{empty, grade_badge};
use crate::AppState;
use crate::dashboard::charts::{self, Series, Titles};
use crate::dashboard::format::{self, money, num, pct};
use crate::dashboard::session::Session;
use crate::dashboard::{Nav, PageResult, respond};
use crate::error::{ApiError, Code};

/// Events shown on the timeline.
const TIMELINE: usize = 100;

#[derive(Debug, Deserialize)]
pub struct Find {
    q: Option<String>,
}

/// The header's search box: to the customer's page.
pub async fn find(_session: Session, Query(find): Query<Find>) -> Response {
    match find.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => {
            Redirect::to(&format!("/dashboard/customers/{}", format::url_encode(q))).into_response()
        }
        None => Redirect::to("/dashboard/at-risk").into_response(),
    }
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let body = build(&state, &session, &id).await;
    respond(&format!("Customer {id}"), Nav::Customers, &session, body)
}

/// A JSON array of flat objects as a table (nested values as compact JSON). Money objects
/// (`{"currency", "minor"}`) are written as money; `minor_units` names the plain numbers in
/// minor units with the money field whose currency they are in (`("mrr", "amount")`).
fn table(rows: &[Value], minor_units: &[(&str, &str)]) -> Markup {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        for key in row.as_object().into_iter().flat_map(|o| o.keys()) {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    html! {
        table {
            thead { tr { @for c in &columns { th { (c.replace('_', " ")) } } } }
            tbody {
                @for row in rows {
                    tr {
                        @for c in &columns {
                            @let v = &row[c.as_str()];
                            @let currency = minor_units.iter().find(|(f, _)| *f == c.as_str()).and_then(|(_, m)| row[*m]["currency"].as_str());
                            @if let (Some(cur), true) = (currency, v.is_number()) {
                                td.num { (money(v.as_f64(), cur)) }
                            } @else if let (Some(minor), Some(cur)) = (v["minor"].as_f64(), v["currency"].as_str()) {
                                td.num { (money(Some(minor), cur)) }
                            } @else {
                                td { (cell_text(v)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A value for a table cell: instants to the minute, the rest as text.
fn cell_text(v: &Value) -> String {
    match v.as_str() {
        Some(s) if s.len() >= 20 && s.as_bytes().get(10) == Some(&b'T') && s.ends_with('Z') => {
            s[..16].replace('T', " ")
        }
        _ => format::text(v),
    }
}

/// The scalar fields of an object as a definition list.
fn facts(value: &Value) -> Markup {
    html! {
        dl.facts {
            @for (k, v) in value.as_object().into_iter().flatten() {
                @if !v.is_object() && !v.is_array() {
                    dt { (k.replace('_', " ")) }
                    dd { @match v.as_f64() { Some(x) if !v.is_u64() && !v.is_i64() => (format!("{x:.4}")), _ => (format::text(v)) } }
                }
            }
        }
    }
}

async fn build(state: &AppState, session: &Session, id: &str) -> PageResult {
    let ws = &session.workspace;
    let profile = crate::routes::customers::profile_document(state, ws, id).await?;
    let mut ids: Vec<CustomerId> = Vec::new();
    for v in std::iter::once(&profile["id"])
        .chain(profile["merged_customers"].as_array().into_iter().flatten())
    {
        if let Some(id) = v.as_str().and_then(|s| CustomerId::parse(s).ok()) {
            ids.push(id);
        }
    }
    let (store, ws2) = (state.store.clone(), ws.clone());
    let events = tokio::task::spawn_blocking(move || {
        store.with(|c| c.customer_events(&ws2, &ids, TIMELINE))
    })
    .await
    .map_err(|_| ApiError::new(Code::Internal, "timeline read interrupted"))?
    .map_err(ApiError::from)?;

    let health = &profile["health"];
    let risk = &profile["predictions"]["risk"];
    let mrr = profile["mrr"].as_object().cloned().unwrap_or_default();
    let history = health["history"].as_array().cloned().unwrap_or_default();
    let history_labels: Vec<String> = history
        .iter()
        .map(|p| format::date(p["at"].as_str().unwrap_or("")).to_owned())
        .collect();
    let history_series = [Series {
        name: "Health score",
        color: charts::BLUE,
        values: history.iter().map(|p| p["score"].as_f64()).collect(),
        dash: None,
    }];
    let subscriptions = profile["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let orders = profile["orders"].as_array().cloned().unwrap_or_default();
    let answers = profile["survey_answers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tickets = profile["tickets"].as_array().cloned().unwrap_or_default();
    let segments = profile["segments"].as_array().cloned().unwrap_or_default();
    Ok(html! {
        div.cols {
            section.panel {
                h2 { "Profile" }
                dl.facts {
                    dt { "Customer id" } dd data-field="id" { (format::text(&profile["id"])) }
                    dt { "userId" } dd { (format::text(&profile["user_id"])) }
                    dt { "Email" } dd { (format::text(&profile["traits"]["email"])) }
                    dt { "Status" } dd data-field="status" { (format::text(&profile["status"])) }
                    dt { "Channel" } dd { (format::text(&profile["acquisition"]["channel"])) }
                    dt { "MRR" } dd data-field="mrr" { @if mrr.is_empty() { "—" } @for (cur, v) in &mrr { (money(v.as_f64(), cur)) " " } }
                    dt { "First seen" } dd { (format::date(profile["first_seen"].as_str().unwrap_or(""))) }
                    dt { "Last seen" } dd { (format::date(profile["last_seen"].as_str().unwrap_or(""))) }
                    dt { "Events" } dd { (format::text(&profile["events"])) " on " (format::text(&profile["active_days"])) " days" }
                    dt { "Open tickets" } dd { (format::text(&profile["open_tickets"])) }
                }
                h3 { "Traits" }
                (facts(&profile["traits"]))
            }
            section.panel {
                h2 { "Health" }
                p { (grade_badge(health["grade"].as_str())) " "
                    strong data-field="health.score" { (num(health["score"].as_f64(), 1)) } " / 100 under " (format::text(&health["model"]))
                    @match health["trend"]["direction"].as_str() {
                        Some("up") => span.delta.good { " ▲ up" },
                        Some("down") => span.delta.bad { " ▼ down" },
                        _ => span.delta.flat { " ■ same" },
                    }
                    " vs " (format::text(&health["trend"]["days"])) " days ago" }
                @if !health["override"].is_null() { p.muted { "Manual override: " (format::text(&health["override"]["reason"])) " — " (format::text(&health["override"]["author"])) } }
                table {
                    thead { tr { th { "Component" } th.num { "Value" } th.num { "Score" } th.num { "Weight" } th.num { "Contribution" } } }
                    tbody { @for c in health["components"].as_array().into_iter().flatten() {
                        tr { td { (format::text(&c["name"]).replace('_', " ")) } td.num { (num(c["value"].as_f64(), 1)) } td.num { (num(c["score"].as_f64(), 0)) } td.num { (num(c["weight"].as_f64(), 2)) } td.num { (num(c["contribution"].as_f64(), 1)) } }
                    } }
                }
                @if !history.is_empty() {
                    (charts::lines(&Titles { title: "Health score, weekly", y: "score (0–100)", x: "week" }, &history_labels, &history_series, Some((0.0, 100.0)), &|v| format!("{v:.0}")))
                }
            }
        }
        section.panel {
            h2 { "Predictions" }
            div.cols {
                div {
                    h3 { "Churn risk" }
                    @if risk.is_null() {
                        p.muted { "No risk score: no model is trained yet, or the customer is not current (not paying now, no recent order)." }
                    } @else {
                        p { strong data-field="risk.probability" { (pct(risk["probability"].as_f64())) } " chance of churning in the model's horizon." }
                        ul { @for r in risk["reasons"].as_array().into_iter().flatten() { li { (format::text(&r["feature"]).replace('_', " ")) " = " (num(r["value"].as_f64(), 1)) } } }
                    }
                }
                div {
                    h3 { "Purchases (BG/NBD, Gamma-Gamma)" }
                    @if profile["predictions"]["orders"].is_null() { p.muted { "No order model: too few customers with orders, or none for this customer." } }
                    @else { (facts(&profile["predictions"]["orders"])) }
                }
                @if !profile["predictions"]["segment_values"].is_null() {
                    div {
                        h3 { "What segments read today" }
                        p.muted { "The day's table (as of " (format::date(profile["predictions"]["segment_values"]["as_of_day"].as_str().unwrap_or(""))) "), docs/segments.md." }
                        (facts(&profile["predictions"]["segment_values"]["values"]))
                    }
                }
                div {
                    h3 { "Subscription (sBG)" }
                    @if profile["predictions"]["subscription"].is_null() { p.muted { "No subscription model for this customer." } }
                    @else { (facts(&profile["predictions"]["subscription"])) }
                }
            }
        }
        section.panel {
            h2 { "Segments" }
            @if segments.is_empty() { p.muted { "In no segment now." } }
            ul { @for s in &segments { li { a href=(format!("/dashboard/segments/{}", format::text(&s["id"]))) { (format::text(&s["name"])) } span.muted { " since " (format::date(s["entered_at"].as_str().unwrap_or(""))) } } } }
        }
        section.panel { h2 { "Subscriptions" } @if subscriptions.is_empty() { p.muted { "None." } } @else { (table(&subscriptions, &[("mrr", "amount")])) } }
        section.panel { h2 { "Orders" } @if orders.is_empty() { p.muted { "None." } } @else { (table(&orders, &[])) } }
        @if !answers.is_empty() { section.panel { h2 { "Survey answers" } (table(&answers, &[])) } }
        @if !tickets.is_empty() { section.panel { h2 { "Tickets" } (table(&tickets, &[])) } }
        section.panel {
            h2 { "Timeline" }
            p.muted { "The latest " (events.len()) " events from the log, newest first." }
            @if events.is_empty() { (empty(html! { "No events." })) }
            table #timeline {
                thead { tr { th { "When (UTC)" } th { "Type" } th { "Event" } th { "Properties" } } }
                tbody {
                    @for e in &events {
                        @let raw: Value = serde_json::from_str(&e.raw).unwrap_or(Value::Null);
                        @let props = raw.get("properties").or_else(|| raw.get("traits")).cloned().unwrap_or(Value::Null);
                        tr {
                            td { (tenure_core::time::format_instant(e.timestamp).replace('T', " ").trim_end_matches('Z')) }
                            td { (e.kind) }
                            td { (e.name.as_deref().unwrap_or("")) }
                            td.muted { @for (k, v) in props.as_object().into_iter().flatten().take(6) { (k) "=" (format::text(v)) " " } }
                        }
                    }
                }
            }
        }
    })
}
