//! Failed authentication, throttled per client address.
//!
//! A key is 160 random bits, so guessing one is hopeless, but thousands of wrong keys a
//! second still cost a database lookup each and fill the log. An address that fails
//! authentication `MAX_FAILURES` times within a window is refused with `429` and
//! `Retry-After` until the window ends; the first refusal of each window is logged at WARN.
//! API requests answered `401` and failed dashboard logins count; a correct key does not.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, Code};

/// Failures an address may have within one window.
pub const MAX_FAILURES: u32 = 30;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Marks a response as a failed authentication that is not a `401` (a dashboard login
/// answered with a redirect back to the form).
#[derive(Debug, Clone, Copy)]
pub struct AuthFailed;

#[derive(Debug)]
struct Window {
    started: Instant,
    failures: u32,
    logged: bool,
}

/// Failures per address in the current window.
#[derive(Debug, Clone, Default)]
pub struct AuthThrottle {
    windows: Arc<Mutex<HashMap<IpAddr, Window>>>,
}

impl AuthThrottle {
    /// `Some(seconds left)` when the address is refused now.
    fn refused(&self, address: IpAddr, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.get_mut(&address)?;
        let elapsed = now.duration_since(window.started);
        if elapsed >= WINDOW {
            windows.remove(&address);
            return None;
        }
        if window.failures < MAX_FAILURES {
            return None;
        }
        if !window.logged {
            window.logged = true;
            tracing::warn!(%address, failures = window.failures, "refusing a client that keeps failing authentication until its window ends");
        }
        Some((WINDOW - elapsed).as_secs().max(1))
    }

    fn failed(&self, address: IpAddr, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        // Forget ended windows now and then, so the table stays the size of the attack.
        if windows.len() > 10_000 {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let window = windows.entry(address).or_insert(Window {
            started: now,
            failures: 0,
            logged: false,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                failures: 0,
                logged: false,
            };
        }
        window.failures += 1;
    }
}

/// The middleware: refuses a throttled address before anything runs, counts failures after.
pub async fn throttle_failed_auth(
    State(throttle): State<AuthThrottle>,
    request: Request,
    next: Next,
) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(address) = address else {
        return next.run(request).await;
    };
    if let Some(seconds) = throttle.refused(address, Instant::now()) {
        let mut response = ApiError::new(
            Code::TooManyFailures,
            format!(
                "too many failed authentications from this address: retry in {seconds} s with a valid key"
            ),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED
        || response.extensions().get::<AuthFailed>().is_some()
    {
        throttle.failed(address, Instant::now());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_window_ends() {
        let throttle = AuthThrottle::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert_eq!(throttle.refused(a, start), None);
            throttle.failed(a, start);
        }
        assert_eq!(throttle.refused(a, start), Some(60));
        assert_eq!(
            throttle.refused(b, start),
            None,
            "another address is not touched"
        );
        assert_eq!(
            throttle.refused(a, start + Duration::from_secs(59)),
            Some(1)
        );
        assert_eq!(throttle.refused(a, start + WINDOW), None, "a new window");
    }
}
