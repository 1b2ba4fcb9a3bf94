//! The web dashboard (docs/dashboard.md), served by the same binary under `/dashboard`.
//!
//! Server-rendered HTML (`maud`, escaped by construction) with SVG charts drawn here
//! (`charts.rs`); one stylesheet and a few lines of optional script, embedded in the
//! binary. Every page reads the same documents the JSON API answers (`routes::…`), so
//! every number is the API's. Filters and periods are query parameters (the names of
//! docs/metrics.md), so a view is shared by its URL.

pub mod charts;
pub mod format;
mod pages;
pub mod session;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, Code};
use session::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_HOURS, Session};

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/dashboard/login", get(login_page).post(login))
        .route("/dashboard/logout", axum::routing::post(logout))
        .route("/dashboard/assets/style.css", get(style))
        .route("/dashboard/assets/app.js", get(script))
        .merge(pages::router())
}

/// The pages, in the navigation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Cohorts,
    Voice,
    Value,
    AtRisk,
    Customers,
    Segments,
}

impl Nav {
    const ALL: [Nav; 6] = [
        Nav::Overview,
        Nav::Cohorts,
        Nav::Voice,
        Nav::Value,
        Nav::AtRisk,
        Nav::Segments,
    ];

    fn path(self) -> &'static str {
        match self {
            Nav::Overview => "/dashboard",
            Nav::Cohorts => "/dashboard/cohorts",
            Nav::Voice => "/dashboard/voice",
            Nav::Value => "/dashboard/value",
            Nav::AtRisk => "/dashboard/at-risk",
            Nav::Customers => "/dashboard/customers",
            Nav::Segments => "/dashboard/segments",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Nav::Overview => "Overview",
            Nav::Cohorts => "Cohorts",
            Nav::Voice => "Voice",
            Nav::Value => "Value",
            Nav::AtRisk => "At risk",
            Nav::Customers => "Customer",
            Nav::Segments => "Segments",
        }
    }
}

/// Every page's `<head>`: the title, the viewport, the stylesheet and, for pages behind
/// the login, the script.
fn head(title: &str, script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Tenure" }
            link rel="stylesheet" href="/dashboard/assets/style.css";
            @if script { script src="/dashboard/assets/app.js" defer {} }
        }
    }
}

/// A whole page: navigation, the workspace, the logout form and the body.
pub fn layout(title: &str, active: Nav, session: &Session, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body {
                header.top {
                    a.brand href="/dashboard" { "Tenure" }
                    nav {
                        @for item in Nav::ALL {
                            a href=(item.path()) aria-current=[(item == active).then_some("page")] { (item.label()) }
                        }
                    }
                    form.find method="get" action="/dashboard/customers" {
                        label.sr for="find-customer" { "Find a customer" }
                        input #find-customer type="search" name="q" placeholder="customer id or userId";
                    }
                    span.workspace title="workspace" { (session.workspace.as_str()) }
                    form method="post" action="/dashboard/logout" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button.link type="submit" { "Log out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A rendered page.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// What a page shows when its data cannot be read: the API's message, with its status.
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

/// A page's body, or the error to show in its place.
pub type PageResult = Result<Markup, PageError>;

/// Wraps a page body in the layout; an error becomes the same layout with the message.
pub fn respond(title: &str, active: Nav, session: &Session, body: PageResult) -> Response {
    match body {
        Ok(markup) => html_response(StatusCode::OK, layout(title, active, session, markup)),
        Err(PageError(e)) => html_response(
            e.code.status(),
            layout(
                title,
                active,
                session,
                html! {
                    div.error role="alert" {
                        p { strong { (e.code.as_str()) } ": " (e.message) }
                        p { a href=(active.path()) { "Back to " (active.label()) " with the default settings" } }
                    }
                },
            ),
        ),
    }
}

/// A CSRF check failed: nothing was done.
pub fn forbidden(message: &str) -> Response {
    html_response(
        StatusCode::FORBIDDEN,
        html! {
            (DOCTYPE)
            html lang="en" { (head("Refused", false))
            body { main { h1 { "Refused" } p.error { (message) } p { a href="/dashboard" { "Back to the dashboard" } } } } }
        },
    )
}

/// Checks a form's CSRF token against the session's: the refusal to send if it differs.
pub fn csrf_refusal(session: &Session, token: &str) -> Option<Response> {
    (!session::same_token(&session.csrf, token)).then(|| {
        forbidden(
            "the form's security token does not match your session (it may be from an older session): reload the page and try again",
        )
    })
}

/// An embedded asset, cached by the browser for an hour.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

/// Only a path inside the dashboard may be the target after logging in (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/dashboard") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/dashboard",
    }
}

fn login_form(next: &str, csrf: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in", false))
            body.login {
                main {
                    h1 { "Tenure" }
                    p { "Log in with an admin key of your workspace: " code { "tenure demo" } " prints one, "
                        code { "tenure keys create --kind admin" } " makes one." }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    form method="post" action="/dashboard/login" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="next" value=(next);
                        label for="key" { "Admin key" }
                        input #key type="password" name="key" autocomplete="current-password" required autofocus;
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    // Already logged in: straight to the page.
    let now = state.clock.now();
    if session::cookie(&headers, SESSION_COOKIE)
        .is_some_and(|t| state.sessions.find(t, now).is_some())
    {
        return Redirect::to(safe_next(q.next.as_deref())).into_response();
    }
    let Ok(csrf) = session::random_token() else {
        return html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            html! { p { "no randomness available" } },
        );
    };
    let error = match q.error.as_deref() {
        Some("key") => Some("That key is not valid: check for typos (keys start with tnr_a_)."),
        Some("write") => {
            Some("That is a write key, which can only send events: log in with an admin key.")
        }
        Some("form") => Some("The login form expired: try again."),
        _ => None,
    };
    let mut response = html_response(
        StatusCode::OK,
        login_form(safe_next(q.next.as_deref()), &csrf, error),
    );
    if let Ok(value) = session::set_cookie(
        LOGIN_CSRF_COOKIE,
        &csrf,
        3600,
        session::served_over_https(&headers),
    )
    .parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    key: String,
    csrf: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let retry = |error: &str| {
        Redirect::to(&format!(
            "/dashboard/login?error={error}&next={}",
            format::url_encode(&next)
        ))
        .into_response()
    };
    // Double-submit: the form's token must equal the cookie set with the form.
    // An empty token never matches: a cookie and a field both left empty once did.
    if form.csrf.is_empty()
        || !session::cookie(&headers, LOGIN_CSRF_COOKIE)
            .is_some_and(|c| session::same_token(c, &form.csrf))
    {
        return retry("form");
    }
    let caller = match state.keys.check_secret(form.key.trim()).await {
        Ok(caller) => caller,
        Err(e) if e.code == Code::InvalidKey || e.code == Code::MissingKey => {
            let mut response = retry("key");
            response
                .extensions_mut()
                .insert(crate::throttle::AuthFailed);
            return response;
        }
        Err(e) => return e.into_response(),
    };
    if caller.require_admin().is_err() {
        return retry("write");
    }
    let key_hash = crate::auth::hash_secret(form.key.trim());
    let Ok(token) = state
        .sessions
        .open(caller.workspace, key_hash, state.clock.now())
    else {
        return ApiError::new(Code::Unavailable, "no randomness available for a session")
            .into_response();
    };
    let mut response = Redirect::to(&next).into_response();
    let cookies = [
        session::set_cookie(
            SESSION_COOKIE,
            &token,
            SESSION_HOURS * 3600,
            session::served_over_https(&headers),
        ),
        session::set_cookie(
            LOGIN_CSRF_COOKIE,
            "",
            0,
            session::served_over_https(&headers),
        ),
    ];
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&session, &form.csrf) {
        return refused;
    }
    state.sessions.close(&session);
    let mut response = Redirect::to("/dashboard/login").into_response();
    if let Ok(value) =
        session::set_cookie(SESSION_COOKIE, "", 0, session::served_over_https(&headers)).parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
