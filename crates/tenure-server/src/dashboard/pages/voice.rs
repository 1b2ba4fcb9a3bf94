//! Voice of the customer: NPS over time, the promoter / passive / detractor split per
//! period, NPS by channel and plan, and the latest verbatims by category.

use maud::html;
use tenure_core::metrics::{Report, Table};

use super::{Params, customer_link, empty, filter_bar, labels, segment_choices};
use crate::AppState;
use crate::dashboard::charts::{self, Series, Titles};
use crate::dashboard::format::{self, num, pct};
use crate::dashboard::session::Session;
use crate::dashboard::{Nav, PageResult};

page_handler!("Voice of the customer", Nav::Voice);

async fn build(state: &AppState, session: &Session, params: Params) -> PageResult {
    let ws = &session.workspace;
    let report: Report = crate::routes::metrics::report(
        state,
        ws,
        params.clone(),
        vec![Table::Voice, Table::NpsBreakdown, Table::Verbatims],
    )
    .await?;
    let segments = segment_choices(state, ws).await?;
    let voice = report.voice.as_deref().unwrap_or_default();
    let breakdown = report.nps_breakdown.as_deref().unwrap_or_default();
    let verbatims = report.verbatims.as_deref().unwrap_or_default();
    let unit = report.query.grain.name();
    let period_labels = labels(voice, |r| &r.header);
    let answered: u64 = voice.iter().map(|r| r.responses).sum();
    let x_title = format!("{unit} (UTC)");
    let nps_series = [Series {
        name: "NPS",
        color: charts::BLUE,
        values: voice.iter().map(|r| r.nps).collect(),
        dash: None,
    }];
    let split = [
        Series {
            name: "Promoters (9–10)",
            color: charts::GREEN,
            values: voice.iter().map(|r| Some(r.promoters as f64)).collect(),
            dash: None,
        },
        Series {
            name: "Passives (7–8)",
            color: charts::GREY,
            values: voice.iter().map(|r| Some(r.passives as f64)).collect(),
            dash: None,
        },
        Series {
            name: "Detractors (0–6)",
            color: charts::VERMILLION,
            values: voice.iter().map(|r| Some(r.detractors as f64)).collect(),
            dash: None,
        },
    ];
    let whole = |v: f64| format::short(v);
    // NPS categories always (an empty one says so); CSAT and skipped ones where present.
    let categories = [
        ("promoter", "Promoters", true),
        ("passive", "Passives", true),
        ("detractor", "Detractors", true),
        ("satisfied", "Satisfied (CSAT 4–5)", false),
        ("unsatisfied", "Unsatisfied (CSAT 1–3)", false),
        ("skipped", "No score", false),
    ];
    Ok(html! {
        (filter_bar("/dashboard/voice", &params, &segments, html! {}, &[]))
        @if answered == 0 {
            (empty(html! { "No surveys yet — send " code { "Survey Responded" } " events (with a " code { "score" } "), or run a survey. Widen the date range if you expected answers here." }))
        } @else {
            section.panel {
                h2 { "NPS over time" }
                (charts::lines(&Titles { title: "NPS per period, from −100 to 100", y: "NPS (−100 to 100)", x: &x_title }, &period_labels, &nps_series, Some((-100.0, 100.0)), &|v| format!("{v:.0}")))
            }
            section.panel {
                h2 { "Answers by category" }
                (charts::stacked_bars(&Titles { title: "Scored NPS answers per period by category", y: "answers", x: &x_title }, &period_labels, &split, &whole))
                table {
                    thead { tr { th { "Period" } th.num { "Shown" } th.num { "Answers" } th.num { "Response rate" } th.num { "NPS" } th.num { "CSAT" } } }
                    tbody {
                        @for r in voice {
                            tr data-period=(r.header.period) {
                                td { (r.header.period) @if !r.header.complete { " (running)" } }
                                td.num { (format::count(r.surveys_shown)) }
                                td.num { (format::count(r.responses)) }
                                td.num { (pct(r.response_rate)) }
                                td.num data-value=(format::raw(r.nps)) { (num(r.nps, 1)) }
                                td.num { (pct(r.csat)) }
                            }
                        }
                    }
                }
            }
            section.panel {
                h2 { "NPS by channel and plan" }
                table {
                    thead { tr { th { "By" } th { "Value" } th.num { "Answers" } th.num { "Promoters" } th.num { "Passives" } th.num { "Detractors" } th.num { "NPS" } } }
                    tbody {
                        @for r in breakdown {
                            tr { td { (r.dimension) } td { (r.value) } td.num { (r.nps_responses) } td.num { (r.promoters) } td.num { (r.passives) } td.num { (r.detractors) } td.num { (num(r.nps, 1)) } }
                        }
                    }
                }
            }
            section.panel {
                h2 { "What they said" }
                @if verbatims.is_empty() {
                    p.muted { "No comments in this range: answers came without text." }
                } @else {
                    div.cols {
                        @for (category, title, always) in categories {
                            @let said: Vec<_> = verbatims.iter().filter(|v| v.category == category).collect();
                            @if always || !said.is_empty() { div data-category=(category) {
                                h3 { (title) }
                                @if said.is_empty() { p.muted { "none in this range" } }
                                @for v in said {
                                    blockquote {
                                        p { "“" (v.comment) "”" }
                                        footer.muted { (v.score.map_or("no score".to_owned(), |s| s.to_string())) " · " (customer_link(&v.customer_id, &v.customer_id)) " · " (format::date(&v.at)) }
                                    }
                                }
                            } }
                        }
                    }
                }
            }
        }
    })
}
