//! Dashboard sessions: logging in with an admin key opens a session bound to the key's
//! workspace; its random token travels in an `HttpOnly`, `SameSite=Lax` cookie. Every form
//! carries the session's CSRF token, checked on every POST (the login form, which has no
//! session yet, uses a double-submit cookie instead). Sessions live in memory: a restart
//! logs everyone out (docs/dashboard.md).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use tenure_core::WorkspaceId;
use tenure_core::time::Millis;

use crate::AppState;
use crate::auth::hash_secret;

/// The session cookie.
pub const SESSION_COOKIE: &str = "tenure_session";
/// The login form's double-submit cookie.
pub const LOGIN_CSRF_COOKIE: &str = "tenure_login_csrf";
/// A session ends this long after it was opened.
pub const SESSION_HOURS: i64 = 12;

/// A logged-in admin: their workspace and the token every form must echo.
#[derive(Debug, Clone)]
pub struct Session {
    pub workspace: WorkspaceId,
    pub csrf: String,
    /// The hash of the admin key that opened it: revoking the key ends the session.
    key_hash: String,
    expires_at: Millis,
    /// The session token's hash (the key of the table), to log out.
    id: String,
}

/// Open sessions by the SHA-256 of their token (a memory dump shows no usable cookie).
#[derive(Clone, Default)]
pub struct Sessions {
    open: Arc<RwLock<HashMap<String, Session>>>,
}

/// 160 random bits as base32 text.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)?;
    Ok(tenure_core::ids::base32(&bytes))
}

impl Sessions {
    /// Opens a session for the workspace; returns the token to set as the cookie.
    pub fn open(
        &self,
        workspace: WorkspaceId,
        key_hash: String,
        now: Millis,
    ) -> Result<String, getrandom::Error> {
        let token = random_token()?;
        let id = hash_secret(&token);
        let session = Session {
            workspace,
            key_hash,
            csrf: random_token()?,
            expires_at: now + SESSION_HOURS * 3_600_000,
            id: id.clone(),
        };
        if let Ok(mut open) = self.open.write() {
            // Expired sessions go when a new one opens: the table never grows past the
            // sessions opened in one lifetime.
            open.retain(|_, s| s.expires_at > now);
            open.insert(id, session);
        }
        Ok(token)
    }

    pub fn find(&self, token: &str, now: Millis) -> Option<Session> {
        let open = self.open.read().ok()?;
        open.get(&hash_secret(token))
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    pub fn close(&self, session: &Session) {
        if let Ok(mut open) = self.open.write() {
            open.remove(&session.id);
        }
    }
}

/// The value of a cookie in the request (the first of that name; a malformed pair is
/// skipped, as browsers do).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
}

/// Equal texts, compared in time that does not depend on where they differ (`subtle`).
pub fn same_token(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// `Set-Cookie` for a cookie readable only by the server, on every dashboard path; `Secure`
/// when the page was served over HTTPS ([`served_over_https`]).
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    cookie::Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age_seconds))
        .secure(secure)
        .build()
        .to_string()
}

/// Whether the browser reached us over HTTPS. Tenure serves plain HTTP; behind a proxy that
/// ends TLS, the proxy says so with `X-Forwarded-Proto: https` (or `Forwarded: proto=https`).
/// `TENURE_SECURE_COOKIES=true` marks every cookie `Secure` whatever the request says.
pub fn served_over_https(headers: &HeaderMap) -> bool {
    if std::env::var("TENURE_SECURE_COOKIES").is_ok_and(|v| v == "true" || v == "1") {
        return true;
    }
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split([';', ','])
                .any(|part| part.trim().eq_ignore_ascii_case("proto=https"))
        });
    forwarded_proto || forwarded
}

/// A page needs a session: without one, the browser is sent to the login page, which
/// brings it back here after.
impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let now = state.clock.now();
        if let Some(session) =
            cookie(&parts.headers, SESSION_COOKIE).and_then(|t| state.sessions.find(t, now))
        {
            // The key that opened it must still work (a revoked admin key's sessions end).
            match state.keys.check_hash(session.key_hash.clone()).await {
                Ok(caller) if caller.require_admin().is_ok() => return Ok(session),
                _ => state.sessions.close(&session),
            }
        }
        let next = parts
            .uri
            .path_and_query()
            .map_or("/dashboard", |p| p.as_str());
        let target = format!("/dashboard/login?next={}", super::format::url_encode(next));
        Err(Redirect::to(&target).into_response())
    }
}
