//! Cohorts: logo and net MRR retention by first-payment cohort, and activity retention with
//! the options of docs/metrics.md (`event`, `cohort_kind`, `mode`, `window`,
//! `min_occurrences`), each a heatmap with the size-weighted average below.

use maud::{Markup, html};
use tenure_core::metrics::{CohortTable, Report, Table};

use super::{Params, empty, filter_bar, param, segment_choices};
use crate::AppState;
use crate::dashboard::charts::HeatScale;
use crate::dashboard::format::{self, pct};
use crate::dashboard::session::Session;
use crate::dashboard::{Nav, PageResult};

page_handler!("Cohorts", Nav::Cohorts);

/// A subscription cohort table as a heatmap of one measure, with the average row.
fn cohort_heatmap(
    table: &CohortTable,
    what: &str,
    measure: &str,
    value: impl Fn(&tenure_core::metrics::CohortCell) -> Option<f64>,
    average: impl Fn(&tenure_core::metrics::RetentionAverage) -> Option<f64>,
) -> Markup {
    let ages = table.rows.iter().map(|r| r.cells.len()).max().unwrap_or(0);
    let scale = HeatScale::over(
        table
            .rows
            .iter()
            .flat_map(|r| r.cells.iter().filter(|c| c.complete).filter_map(&value)),
    );
    html! {
        (scale.legend(what))
        table.heatmap data-measure=(measure) {
            thead { tr { th { "Cohort" } th.num { "Customers" } @for k in 0..ages { th.num { "+" (k) } } } }
            tbody {
                @for row in &table.rows {
                    tr {
                        th scope="row" { (row.cohort) }
                        td.num { (format::count(row.customers)) }
                        @for cell in &row.cells {
                            @let v = value(cell);
                            td style=(scale.style(v)) title=(format!("{} at +{}: {}{}", row.cohort, cell.age, pct(v), if cell.complete { "" } else { " (period still running)" })) {
                                (pct(v)) @if !cell.complete { "*" }
                            }
                        }
                    }
                }
                tr.average { th scope="row" { "Average" } td {} @for a in &table.average { td style=(scale.style(average(a))) { (pct(average(a))) } } }
            }
        }
    }
}

async fn build(state: &AppState, session: &Session, params: Params) -> PageResult {
    let ws = &session.workspace;
    let report: Report = crate::routes::metrics::report(
        state,
        ws,
        params.clone(),
        vec![Table::Cohorts, Table::Activity],
    )
    .await?;
    let segments = segment_choices(state, ws).await?;
    let unit = report.query.grain.name();
    let cohort_kind = param(&params, "cohort_kind").unwrap_or("first_time");
    let mode = param(&params, "mode").unwrap_or("on");
    let window = param(&params, "window").unwrap_or("calendar");
    let options = html! {
        label { "Activity event" input type="text" name="event" placeholder="any event" value=[param(&params, "event")]; }
        label { "Cohorts" select name="cohort_kind" {
            option value="first_time" selected[cohort_kind == "first_time"] { "first-time" }
            option value="recurring" selected[cohort_kind == "recurring"] { "recurring" } } }
        label { "Counted" select name="mode" {
            option value="on" selected[mode == "on"] { "on period k" }
            option value="on_or_after" selected[mode == "on_or_after"] { "on or after k" } } }
        label { "Intervals" select name="window" {
            option value="calendar" selected[window == "calendar"] { "calendar" }
            option value="rolling" selected[window == "rolling"] { "rolling" } } }
        label { "Min. events" input type="number" min="1" name="min_occurrences" value=(param(&params, "min_occurrences").unwrap_or("1")); }
    };
    let cohorts = report.cohorts.as_ref();
    let activity = report.activity.as_ref();
    Ok(html! {
        (filter_bar("/dashboard/cohorts", &params, &segments, options, &["event", "cohort_kind", "mode", "window", "min_occurrences"]))
        p.muted { "Cohorts by first payment, one row per " (unit) "; column +k is k " (unit) "s later. * marks a period still running. Averages are weighted by cohort size over complete cells (docs/metrics.md)." }
        @match cohorts {
            Some(t) if !t.rows.is_empty() => {
                section.panel {
                    h2 { "Logo retention" }
                    (cohort_heatmap(t, "share of the cohort still active", "logo_retention", |c| c.logo_retention, |a| a.logo_retention))
                }
                section.panel {
                    h2 { "Net MRR retention" }
                    (cohort_heatmap(t, "MRR kept, of the cohort's first MRR (can exceed 100%)", "net_mrr_retention", |c| c.net_mrr_retention, |a| a.net_mrr_retention))
                }
            }
            _ => (empty(html! { "No paying customers in this range — cohorts start at a customer's first payment. Send " code { "Subscription Started" } " events, or widen the range." })),
        }
        section.panel {
            h2 { "Activity retention" }
            @match activity {
                Some(a) if !a.cohorts.is_empty() => {
                    @let scale = HeatScale::over(a.cohorts.iter().flat_map(|c| {
                        c.retention.iter().zip(&c.complete).filter(|(_, done)| **done).filter_map(|(v, _)| *v)
                    }));
                    (scale.legend("share of the cohort active"))
                    @let ages = a.cohorts.iter().map(|c| c.retention.len()).max().unwrap_or(0);
                    table.heatmap data-measure="activity_retention" {
                        thead { tr { th { "Cohort" } th.num { "Customers" } @for k in 0..ages { th.num { "+" (k) } } } }
                        tbody {
                            @for c in &a.cohorts {
                                tr {
                                    th scope="row" { (c.cohort) }
                                    td.num { (format::count(c.customers)) }
                                    @for (k, v) in c.retention.iter().enumerate() {
                                        @let complete = c.complete.get(k).copied().unwrap_or(true);
                                        td style=(scale.style(*v)) title=(format!("{} at +{k}: {} of {}", c.cohort, c.returned.get(k).copied().unwrap_or(0), c.customers)) {
                                            (pct(*v)) @if !complete { "*" }
                                        }
                                    }
                                }
                            }
                            tr { th scope="row" { "Average" } td {} @for v in &a.average { td style=(scale.style(*v)) { (pct(*v)) } } }
                        }
                    }
                }
                _ => (empty(html! { "No activity in this range for these events — send " code { "track" } " or " code { "page" } " events, or choose another event." })),
            }
        }
    })
}
