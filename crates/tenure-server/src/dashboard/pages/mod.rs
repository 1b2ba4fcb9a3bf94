//! The dashboard's pages, one module each, and what they share: the filter bar, which
//! writes the report's query parameters (docs/metrics.md) into the URL.

/// The handler of a page drawn from the query parameters: `build(&state, &session,
/// params)` in the layout, under `$title` and the `$nav` entry.
macro_rules! page_handler {
    ($title:expr, $nav:expr) => {
        pub async fn page(
            axum::extract::State(state): axum::extract::State<crate::AppState>,
            session: crate::dashboard::session::Session,
            axum::extract::Query(params): axum::extract::Query<super::Params>,
        ) -> axum::response::Response {
            let body = build(&state, &session, super::non_empty(params)).await;
            crate::dashboard::respond($title, $nav, &session, body)
        }
    };
}

mod at_risk;
mod cohorts;
mod customer;
mod overview;
mod segments;
mod value;
mod voice;

use axum::Router;
use axum::routing::get;
use maud::{Markup, html};
use tenure_core::WorkspaceId;

use crate::AppState;
use crate::error::{ApiError, Code};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(overview::page))
        .route("/dashboard/cohorts", get(cohorts::page))
        .route("/dashboard/voice", get(voice::page))
        .route("/dashboard/value", get(value::page))
        .route("/dashboard/at-risk", get(at_risk::page))
        .route("/dashboard/customers", get(customer::find))
        .route("/dashboard/customers/{id}", get(customer::page))
        .route("/dashboard/segments", get(segments::list))
        .route("/dashboard/segments/new", get(segments::new))
        .route(
            "/dashboard/segments/edit",
            axum::routing::post(segments::submit),
        )
        .route("/dashboard/segments/{id}", get(segments::show))
}

/// Query parameters as given, without the empty ones an unfilled form field sends.
pub type Params = Vec<(String, String)>;

pub fn non_empty(params: Params) -> Params {
    params
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.trim().to_owned()))
        .collect()
}

pub fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The workspace's segments, for the filter bar: `(seg_…, name)`.
pub async fn segment_choices(
    state: &AppState,
    ws: &WorkspaceId,
) -> Result<Vec<(String, String)>, ApiError> {
    let engine = crate::routes::engine_for(state, ws).await?;
    let engine = engine
        .read()
        .map_err(|_| ApiError::new(Code::Internal, "engine lock poisoned"))?;
    Ok(engine
        .segments()
        .into_iter()
        .map(|s| (s.id.to_string(), s.name))
        .collect())
}

const GRAINS: [&str; 5] = ["day", "week", "month", "quarter", "year"];

/// The filter bar: grain, date range, channel, plan, segment, and `extra` controls; the
/// other current parameters ride along as hidden fields, so nothing set elsewhere is lost.
pub fn filter_bar(
    action: &str,
    params: &Params,
    segments: &[(String, String)],
    extra: Markup,
    extra_names: &[&str],
) -> Markup {
    let shown = ["grain", "from", "to", "channel", "plan", "segment"];
    let grain = param(params, "grain").unwrap_or("month");
    let segment = param(params, "segment").unwrap_or("");
    html! {
        form.filters method="get" action=(action) {
            label { "Period"
                select name="grain" data-autosubmit {
                    @for g in GRAINS { option value=(g) selected[g == grain] { (g) } }
                }
            }
            label { "From" input type="date" name="from" value=[param(params, "from")]; }
            label { "To" input type="date" name="to" value=[param(params, "to")]; }
            label { "Channel" input type="text" name="channel" placeholder="any" value=[param(params, "channel")]; }
            label { "Plan" input type="text" name="plan" placeholder="any" value=[param(params, "plan")]; }
            label { "Segment"
                select name="segment" {
                    option value="" { "all customers" }
                    @for (id, name) in segments { option value=(id) selected[id == segment] { (name) } }
                }
            }
            (extra)
            @for (k, v) in params {
                @if !shown.contains(&k.as_str()) && !extra_names.contains(&k.as_str()) {
                    input type="hidden" name=(k) value=(v);
                }
            }
            button type="submit" { "Apply" }
            a href=(action) { "Reset" }
        }
    }
}

/// A health grade as a labelled badge (the word is there, not only the colour).
pub fn grade_badge(grade: Option<&str>) -> Markup {
    match grade {
        Some(g) => html! { span class=(format!("grade {g}")) { (g) } },
        None => html! { span.muted { "no score" } },
    }
}

/// A customer id as a link to their page.
pub fn customer_link(id: &str, label: &str) -> Markup {
    html! { a href=(format!("/dashboard/customers/{}", super::format::url_encode(id))) { (label) } }
}

/// What a page shows where there is no data yet, and what to do about it.
pub fn empty(message: Markup) -> Markup {
    html! { div.empty role="status" { (message) } }
}

/// Period labels and rows of a report table.
pub fn labels<T>(
    rows: &[T],
    header: impl Fn(&T) -> &tenure_core::metrics::PeriodHeader,
) -> Vec<String> {
    rows.iter().map(|r| header(r).period.clone()).collect()
}
