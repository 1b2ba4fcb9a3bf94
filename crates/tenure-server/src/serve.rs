//! The HTTP server: connections and the limits that keep one client from taking it down.
//!
//! ```text
//!  accept ◄─ a permit per connection (max_connections): beyond it, connections wait in
//!    │       the kernel's backlog and hold no file descriptor here; one address holds at
//!    │       most max_connections_per_address (more are closed at once)
//!    ▼
//!  hyper HTTP/1 with a timer: headers within header_read_timeout (slow or idle sockets
//!    │       are closed), keep-alive connections idle that long are closed too
//!    ▼
//!  tower: load shedding (503 + Retry-After beyond max_in_flight requests), body read
//!         timeout (the handler's read fails: 400), request timeout (503) ─► the router
//! ```
//!
//! axum's own `serve` sets no hyper timer, so its header timeout never fires: 20,000 sockets
//! sending half a request once exhausted the file descriptors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::error::{ApiError, Code};

/// The server's limits (docs/security.md, "Limits").
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most; more wait to be accepted.
    pub max_connections: usize,
    /// Open connections from one client address at most; more are closed at once, so one
    /// client cannot hold every connection slot.
    pub max_connections_per_address: usize,
    /// A request's headers must arrive within this (and an idle keep-alive connection is
    /// closed after it).
    pub header_read_timeout: Duration,
    /// A request's body must arrive within this.
    pub body_read_timeout: Duration,
    /// A request must be answered within this (a segment backfill over a million customers
    /// takes seconds; training is a background task).
    pub request_timeout: Duration,
    /// Requests being handled at once at most; beyond, `503` with `Retry-After`.
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_address: 128,
            header_read_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_in_flight: 512,
        }
    }
}

/// Seconds a shed client is told to wait.
const RETRY_AFTER_SECONDS: &str = "1";

/// The router behind load shedding and timeouts.
pub fn limited(router: axum::Router, limits: &Limits) -> axum::Router {
    router
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.body_read_timeout,
        ))
        .layer(
            tower::ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(limits.max_in_flight)
                .timeout(limits.request_timeout),
        )
}

async fn overloaded(error: tower::BoxError) -> Response {
    let (code, message) = if error.is::<tower::load_shed::error::Overloaded>() {
        (
            Code::Unavailable,
            "the server is at its limit of requests in flight: retry after the time in Retry-After",
        )
    } else if error.is::<tower::timeout::error::Elapsed>() {
        (
            Code::Unavailable,
            "the request took longer than the server's request timeout; nothing half-done is kept, retry it",
        )
    } else {
        tracing::error!("request failed in the service stack: {error}");
        (Code::Internal, "the request failed (see the server's log)")
    };
    let mut response = ApiError::new(code, message).into_response();
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}

/// A connection's place in its address's count, given back when it closes.
struct AddressSlot {
    open: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    address: std::net::IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish
/// (at most 30 s). Each request carries the client's address (`ConnectInfo<SocketAddr>`).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let per_address: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> =
        Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a reset before accept: wait a little, go on.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let address = client.ip();
        {
            let mut open = per_address.lock().unwrap_or_else(|e| e.into_inner());
            let count = open.entry(address).or_insert(0);
            if *count >= limits.max_connections_per_address {
                tracing::debug!(%address, "closing a connection over the per-address limit");
                drop(stream);
                continue;
            }
            *count += 1;
        }
        let release = AddressSlot {
            open: per_address.clone(),
            address,
        };
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(client));
                router.clone().oneshot(request)
            });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%client, "connection closed: {e}");
            }
            drop(release);
            drop(permit);
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("connections still open 30 s after shutdown began were dropped");
        }
    }
    Ok(())
}
