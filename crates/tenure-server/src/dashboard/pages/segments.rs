//! Segments: the list with live counts, each segment's members and definition, and an
//! editor that previews a definition (count and sample, nothing saved) before saving it
//! through the writer (backfilled before it goes live, docs/segments.md).

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use tenure_core::CustomerId;

use super::{customer_link, empty};
use crate::AppState;
use crate::dashboard::format;
use crate::dashboard::session::Session;
use crate::dashboard::{Nav, PageError, PageResult, csrf_refusal, html_response, layout, respond};
use crate::error::{ApiError, Code};

const EXAMPLE: &str = r#"{
  "all": [
    {"computed": "status", "op": "eq", "value": "active"},
    {"computed": "grade", "op": "eq", "value": "red"}
  ]
}"#;

pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    let body = async {
        let segments = crate::routes::segments::load(&state, &session.workspace).await?;
        Ok(html! {
            p { a href="/dashboard/segments/new" { "New segment" } " · definitions are documented in docs/segments.md; members change as events arrive and as time passes." }
            @if segments.is_empty() {
                (empty(html! { "No segments yet — " a href="/dashboard/segments/new" { "define one" } ", or load a file with " code { "tenure apply FILE" } "." }))
            } @else {
                section.panel {
                    table #segments {
                        thead { tr { th { "Segment" } th.num { "Members now" } th.num { "Version" } th { "Updated" } } }
                        tbody { @for s in &segments {
                            tr data-segment=(format::text(&s["id"])) data-members=(s["members"]) {
                                td { a href=(format!("/dashboard/segments/{}", format::text(&s["id"]))) { (format::text(&s["name"])) } span.muted { " " (format::text(&s["id"])) } }
                                td.num { (format::count(s["members"].as_u64().unwrap_or(0))) }
                                td.num { (s["version"]) }
                                td { (format::date(s["updated_at"].as_str().unwrap_or(""))) }
                            }
                        } }
                    }
                }
            }
        })
    }
    .await;
    respond("Segments", Nav::Segments, &session, body)
}

/// The editor; `preview` is the result of a preview to show under it.
fn editor(
    session: &Session,
    id: Option<&str>,
    name: &str,
    definition: &str,
    preview: Option<&Value>,
    error: Option<&str>,
) -> Markup {
    html! {
        section.panel #editor {
            h2 { @if id.is_some() { "Edit the definition" } @else { "Define a segment" } }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/dashboard/segments/edit" {
                input type="hidden" name="csrf" value=(session.csrf);
                @if let Some(id) = id { input type="hidden" name="id" value=(id); }
                p { label { "Name " input type="text" name="name" value=(name) required maxlength="200"; } }
                label for="definition" { "Definition (JSON, docs/segments.md)" }
                textarea #definition name="definition" spellcheck="false" { (definition) }
                p { button.secondary type="submit" name="action" value="preview" { "Preview" } " "
                    button type="submit" name="action" value="save" { "Save and backfill" } }
            }
            @if let Some(p) = preview {
                div #preview role="status" {
                    @if let Some(id) = id { p { a href=(format!("/dashboard/segments/{id}")) { "← the segment as saved, with its members" } } }
                    p { strong data-field="preview.count" { (format::count(p["count"].as_u64().unwrap_or(0))) } " of " (format::count(p["customers"].as_u64().unwrap_or(0))) " customers would be members now." }
                    ul { @for c in p["sample"].as_array().into_iter().flatten() {
                        @let cid = format::text(&c["id"]);
                        li { (customer_link(&cid, c["email"].as_str().or(c["user_id"].as_str()).unwrap_or(&cid))) }
                    } }
                }
            }
        }
    }
}

pub async fn new(session: Session) -> Response {
    let body = Ok(editor(&session, None, "", EXAMPLE, None, None));
    respond("New segment", Nav::Segments, &session, body)
}

#[derive(Debug, Deserialize)]
pub struct MembersQuery {
    after: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<MembersQuery>,
) -> Response {
    let body = show_body(&state, &session, &id, q.after.as_deref()).await;
    respond(&format!("Segment {id}"), Nav::Segments, &session, body)
}

async fn show_body(
    state: &AppState,
    session: &Session,
    id: &str,
    after: Option<&str>,
) -> PageResult {
    let ws = &session.workspace;
    let number = crate::routes::segments::parse_id(id)?;
    let segments = crate::routes::segments::load(state, ws).await?;
    let Some(segment) = segments.into_iter().find(|s| s["id"] == id) else {
        return Err(PageError(ApiError::new(
            Code::SegmentNotFound,
            format!("no segment {id} in this workspace"),
        )));
    };
    let after = after.map(CustomerId::parse).transpose().map_err(|e| {
        ApiError::new(
            Code::InvalidParameter,
            format!("query parameter `after`: {e}"),
        )
    })?;
    let page = crate::routes::segments::members_document(state, ws, number, after, 50).await?;
    let definition = serde_json::to_string_pretty(&segment["definition"]).unwrap_or_default();
    Ok(html! {
        p { strong data-field="members" { (format::count(segment["members"].as_u64().unwrap_or(0))) } " members now · version " (segment["version"]) " · "
            a href=(format!("/dashboard?segment={id}")) { "this segment's metrics" } " · " a href=(format!("/dashboard/cohorts?segment={id}")) { "cohorts" } }
        section.panel {
            h2 { "Members" }
            @let members = page["data"].as_array().cloned().unwrap_or_default();
            @if members.is_empty() { p.muted { "No members now." } }
            table #members {
                thead { tr { th { "Customer" } th { "Email" } th { "Entered" } } }
                tbody { @for m in &members {
                    @let cid = format::text(&m["id"]);
                    tr { td { (customer_link(&cid, &cid)) } td { (format::text(&m["email"])) } td { (format::date(m["entered_at"].as_str().unwrap_or(""))) } }
                } }
            }
            @if let Some(next) = page["next"].as_str() {
                p.pager { a href=(format!("/dashboard/segments/{id}?after={}", format::url_encode(next))) { "Next page →" } }
            }
        }
        (editor(session, Some(id), segment["name"].as_str().unwrap_or(""), &definition, None, None))
    })
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    csrf: String,
    id: Option<String>,
    name: String,
    definition: String,
    action: String,
}

/// Preview or save, from the editor. Nothing is saved on a preview, on a bad definition, or
/// without the session's CSRF token.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<EditForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&session, &form.csrf) {
        return refused;
    }
    let id = form.id.as_deref().filter(|i| !i.is_empty());
    let title = id.map_or_else(|| "New segment".to_owned(), |i| format!("Segment {i}"));
    let again = |status: StatusCode, preview: Option<&Value>, error: Option<&str>| {
        html_response(
            status,
            layout(
                &title,
                Nav::Segments,
                &session,
                editor(&session, id, &form.name, &form.definition, preview, error),
            ),
        )
    };
    let definition: Value = match serde_json::from_str(&form.definition) {
        Ok(v) => v,
        Err(e) => {
            return again(
                StatusCode::BAD_REQUEST,
                None,
                Some(&format!("the definition is not JSON: {e}")),
            );
        }
    };
    let ws = &session.workspace;
    match form.action.as_str() {
        "preview" => match crate::routes::segments::preview_document(
            &state,
            ws,
            &json!({"definition": definition, "sample": 10}),
        )
        .await
        {
            Ok(preview) => again(StatusCode::OK, Some(&preview), None),
            Err(e) => again(e.code.status(), None, Some(&e.message)),
        },
        "save" => {
            let number = match id.map(crate::routes::segments::parse_id).transpose() {
                Ok(n) => n,
                Err(e) => return again(e.code.status(), None, Some(&e.message)),
            };
            let body = json!({"name": form.name, "definition": definition}).to_string();
            match crate::routes::segments::save(&state, ws, number, Ok(body.into())).await {
                Ok(saved) => Redirect::to(&format!(
                    "/dashboard/segments/{}",
                    format::text(&saved["id"])
                ))
                .into_response(),
                Err(e) => again(e.code.status(), None, Some(&e.message)),
            }
        }
        other => again(
            StatusCode::BAD_REQUEST,
            None,
            Some(&format!("unknown action `{other}`: preview or save")),
        ),
    }
}
