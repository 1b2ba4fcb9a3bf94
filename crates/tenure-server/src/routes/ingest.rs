//! The Segment-compatible HTTP Tracking API: `/v1/identify`, `/v1/track`, `/v1/page`,
//! `/v1/screen`, `/v1/group`, `/v1/alias`, `/v1/batch` (and `/v1/import`, Segment's alias of
//! batch), and what the official libraries send besides:
//! - the browser library (`@segment/analytics-next`) posts to `/v1/t`, `/v1/p`, `/v1/i`,
//!   `/v1/g`, `/v1/a`, `/v1/s` and `/v1/b` (batched), as `text/plain` (any content type is
//!   read as JSON), with the write key as `writeKey` in the body, from another origin (CORS,
//!   preflight included), and its own telemetry to `/v1/m` (accepted and dropped);
//! - it reads its settings from `{cdnURL}/v1/projects/{writeKey}/settings`, which Tenure
//!   serves, so `cdnURL` can point at Tenure and nothing reaches Segment;
//! - server and mobile libraries may send `Content-Encoding: gzip`.
//!
//! The write key is never stored: a `writeKey` field is removed from every message.
//!
//! A batch is accepted per event: valid events are stored together in one transaction,
//! invalid ones are reported by index and field and stored not at all. The answer is 200
//! when every event was stored (or was already stored), 400 when any was rejected; its body
//! says what happened to each event either way (see `docs/ingestion.md`).

use std::io::Read;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tenure_core::message::{MAX_BATCH_BYTES, MAX_MESSAGE_BYTES};
use tenure_core::reserved;
use tenure_core::time::parse_instant;
use tenure_core::{Envelope, FieldError, Message, MessageType};

use crate::AppState;
use crate::error::{ApiError, Code};
use crate::writer::Outcome;

/// One message per request: Segment's paths and the short ones of the browser library
/// (`analytics-next`). The OpenAPI document is built from this table too.
pub(crate) const SINGLE_ROUTES: [(&str, &str, MessageType); 6] = [
    ("/v1/identify", "/v1/i", MessageType::Identify),
    ("/v1/track", "/v1/t", MessageType::Track),
    ("/v1/page", "/v1/p", MessageType::Page),
    ("/v1/screen", "/v1/s", MessageType::Screen),
    ("/v1/group", "/v1/g", MessageType::Group),
    ("/v1/alias", "/v1/a", MessageType::Alias),
];

/// A batch: Segment's `/v1/batch`, its alias `/v1/import`, the browser library's `/v1/b`
/// (the first is the annotated handler's; the OpenAPI document copies it to the others).
pub(crate) const BATCH_ROUTES: [&str; 3] = ["/v1/batch", "/v1/import", "/v1/b"];

pub fn router() -> Router<AppState> {
    let single = |kind: MessageType| {
        post(
            move |state: State<AppState>,
                  headers: HeaderMap,
                  body: Result<Bytes, axum::extract::rejection::BytesRejection>| async move {
                ingest_single(state, headers, body, kind).await
            },
        )
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
    };
    let batch = || post(ingest_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES));
    let mut router = Router::new();
    for (long, short, kind) in SINGLE_ROUTES {
        router = router.route(long, single(kind)).route(short, single(kind));
    }
    for path in BATCH_ROUTES {
        router = router.route(path, batch());
    }
    router
        .route(
            "/v1/m",
            post(library_metrics).layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES)),
        )
        .route("/v1/projects/{write_key}/settings", get(library_settings))
        // Browsers post from the site's origin. Nothing here reads cookies, so any origin
        // may send events: the write key is the credential, and it is public by design.
        .layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([axum::http::Method::POST, axum::http::Method::GET])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    header::CONTENT_ENCODING,
                    axum::http::HeaderName::from_static("x-retry-count"),
                ])
                .max_age(std::time::Duration::from_secs(86_400)),
        )
}

/// `/v1/m`: the browser library's telemetry about itself (not customer events). Accepted so
/// that it does not log errors, and dropped.
#[utoipa::path(
    post, path = "/v1/m", tag = "ingestion",
    request_body(content = Value, content_type = "application/json", description = "The browser library\'s telemetry (dropped)"),
    responses(
        (status = 200, description = "Accepted and dropped"),
    )
)]
pub(crate) async fn library_metrics() -> StatusCode {
    StatusCode::OK
}

/// What the browser library reads at load from `{cdnURL}/v1/projects/{writeKey}/settings`:
/// send everything to this server (the host it was asked on) and load nothing else.
#[utoipa::path(
    get, path = "/v1/projects/{write_key}/settings", tag = "ingestion",
    params(("write_key" = String, Path, description = "The workspace\'s write key")),
    responses(
        (status = 200, description = "The settings analytics-next reads at load", body = Value),
        (status = 401, description = "`invalid_key`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn library_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(write_key): Path<String>,
) -> Result<Response, ApiError> {
    state.keys.check_secret(&write_key).await?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let protocol = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    let settings = json!({
        "integrations": {"Segment.io": {
            "apiKey": write_key,
            "apiHost": format!("{host}/v1"),
            "protocol": protocol,
            "unbundledIntegrations": [],
            "addBundledMetadata": false,
        }},
        "plan": {"track": {"__default": {"enabled": true}}, "identify": {"__default": {"enabled": true}}},
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": [],
    });
    Ok(axum::Json(settings).into_response())
}

/// The request body, decompressed when it says `Content-Encoding: gzip`, at most `limit`
/// bytes once decompressed (a small gzip body may expand a thousandfold).
fn body_bytes(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the request body is larger than {} KB", limit / 1024),
        )
    };
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::new(
                Code::InvalidRequest,
                format!("the request body could not be read: {e}"),
            )
        }
    })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(bytes),
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::new(
                        Code::UnsupportedEncoding,
                        format!(
                            "the body says Content-Encoding: gzip but does not decompress: {e}"
                        ),
                    )
                })?;
            if out.len() > limit {
                return Err(too_large());
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(ApiError::new(
            Code::UnsupportedEncoding,
            format!(
                "Content-Encoding `{other}` is not supported: send the body uncompressed or with gzip"
            ),
        )),
    }
}

/// The caller named by the `Authorization` header, checked before the body is read; `None`
/// without the header.
async fn header_caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<crate::auth::Caller>, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return state.keys.check(headers).await.map(Some);
    }
    Ok(None)
}

/// The caller: the key of the `Authorization` header, else the `writeKey` field of the
/// body (the browser library's way). The field is removed either way, so that a key is
/// never stored.
async fn ingest_caller(
    state: &AppState,
    headers: &HeaderMap,
    from_header: Option<crate::auth::Caller>,
    value: &mut Value,
) -> Result<crate::auth::Caller, ApiError> {
    let in_body = match value {
        Value::Object(m) => match m.remove("writeKey") {
            Some(Value::String(key)) if !key.is_empty() => Some(key),
            _ => None,
        },
        _ => None,
    };
    match (from_header, in_body) {
        (Some(caller), _) => Ok(caller),
        (None, Some(key)) => state.keys.check_secret(&key).await,
        (None, None) => state.keys.check(headers).await,
    }
}

/// Removes a `writeKey` a message may carry (the browser library puts it in each).
fn strip_write_key(message: &mut Value) {
    if let Value::Object(m) = message {
        m.remove("writeKey");
    }
}

pub(crate) fn read_json(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
) -> Result<Value, ApiError> {
    parse_json(&body_bytes(&HeaderMap::new(), body, limit)?)
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            Code::MalformedJson,
            format!(
                "the body is not valid JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

async fn ingest_single(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    kind: MessageType,
) -> Result<Response, ApiError> {
    let early = header_caller(&state, &headers).await?;
    let mut value = parse_json(&body_bytes(&headers, body, MAX_MESSAGE_BYTES)?)?;
    let caller = ingest_caller(&state, &headers, early, &mut value).await?;
    let envelope = Envelope {
        received_at: state.clock.now(),
        batch_sent_at: None,
    };
    let mut ids = FreshIds::new()?;
    ids.fill_missing(&mut value);
    let items = vec![Message::parse(value, Some(kind), envelope)];
    store_and_answer(&state, caller, items).await
}

#[utoipa::path(
    post, path = "/v1/batch", tag = "ingestion",
    request_body(content = Value, content_type = "application/json", description = "`{\"batch\": [messages]}`, Segment\'s batch (gzip accepted)"),
    responses(
        (status = 200, description = "Every message stored or a duplicate, in order", body = Value),
        (status = 400, description = "`malformed_json`, `invalid_events`: each bad message named", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 415, description = "`unsupported_encoding`", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn ingest_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let early = header_caller(&state, &headers).await?;
    let mut value = parse_json(&body_bytes(&headers, body, MAX_BATCH_BYTES)?)?;
    let caller = ingest_caller(&state, &headers, early, &mut value).await?;
    let Value::Object(mut request) = value else {
        return Err(ApiError::new(
            Code::InvalidRequest,
            "a batch is an object: {\"batch\": [ …messages… ]}",
        ));
    };
    let Some(Value::Array(batch)) = request.remove("batch") else {
        return Err(ApiError::new(
            Code::InvalidRequest,
            "`batch` is missing or is not an array of messages",
        ));
    };
    let batch_sent_at = match request.get("sentAt") {
        Some(Value::String(s)) => Some(parse_instant(s).ok_or_else(|| {
            ApiError::new(
                Code::InvalidRequest,
                format!("`sentAt` `{s}` is not an ISO-8601 date-time"),
            )
        })?),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(ApiError::new(
                Code::InvalidRequest,
                "the batch's `sentAt` must be an ISO-8601 date-time string",
            ));
        }
    };
    let shared_context = batch_object(&request, "context")?;
    let shared_integrations = batch_object(&request, "integrations")?;
    let envelope = Envelope {
        received_at: state.clock.now(),
        batch_sent_at,
    };
    let mut ids = FreshIds::new()?;
    let items = batch
        .into_iter()
        .map(|mut message| {
            if let Value::Object(m) = &mut message {
                inherit(m, "context", shared_context.as_ref());
                inherit(m, "integrations", shared_integrations.as_ref());
            }
            strip_write_key(&mut message);
            ids.fill_missing(&mut message);
            Message::parse(message, None, envelope)
        })
        .collect();
    store_and_answer(&state, caller, items).await
}

/// A batch-level `context` or `integrations`: an object, or absent.
fn batch_object(
    request: &Map<String, Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>, ApiError> {
    match request.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(ApiError::new(
            Code::InvalidRequest,
            format!("the batch's `{field}` must be an object (it applies to every message)"),
        )),
    }
}

/// Message ids for messages sent over HTTP without one. Each such message is a new event,
/// as Segment treats it: two identical `Logged In` calls are two logins. (A file import
/// derives ids from the content instead, so that re-running it stores nothing twice.)
struct FreshIds {
    base: u128,
    next: u128,
}

impl FreshIds {
    fn new() -> Result<Self, ApiError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| {
            ApiError::new(
                Code::Internal,
                format!("no randomness for message ids: {e}"),
            )
        })?;
        Ok(Self {
            base: u128::from_le_bytes(bytes),
            next: 0,
        })
    }

    /// Gives an object without a usable `messageId` (absent, null or "") a fresh one.
    fn fill_missing(&mut self, message: &mut Value) {
        let Value::Object(m) = message else { return };
        let missing = match m.get("messageId") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if missing {
            let id = format!("tnr-{:032x}", self.base.wrapping_add(self.next));
            self.next += 1;
            m.insert("messageId".into(), Value::String(id));
        }
    }
}

/// Fills a message's `context` / `integrations` with the batch's, the message's own keys
/// winning.
fn inherit(message: &mut Map<String, Value>, field: &str, shared: Option<&Map<String, Value>>) {
    let Some(shared) = shared else { return };
    match message.get_mut(field) {
        Some(Value::Object(own)) => {
            for (k, v) in shared {
                own.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        None | Some(Value::Null) => {
            message.insert(field.to_owned(), Value::Object(shared.clone()));
        }
        Some(_) => {}
    }
}

async fn store_and_answer(
    state: &AppState,
    caller: crate::auth::Caller,
    items: Vec<Result<Message, Vec<FieldError>>>,
) -> Result<Response, ApiError> {
    let workspace = caller.workspace;
    // Tenure's own events and ids, and operator events from a write key, are refused like
    // any other invalid event (docs/security.md, "Reserved names").
    let writer = match caller.kind {
        tenure_store::KeyKind::Write => reserved::Writer::Client,
        tenure_store::KeyKind::Admin => reserved::Writer::Admin,
    };
    let items = items.into_iter().map(|item| {
        item.and_then(|m| match reserved::check(&m, writer) {
            Ok(()) => Ok(m),
            Err(e) => Err(vec![e]),
        })
    });
    let mut valid = Vec::with_capacity(items.size_hint().0);
    let mut slots = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Ok(message) => {
                slots.push(Ok(valid.len()));
                valid.push(message);
            }
            Err(errors) => slots.push(Err(errors)),
        }
    }
    let message_ids: Vec<String> = valid.iter().map(|m| m.message_id.clone()).collect();
    let outcomes = if valid.is_empty() {
        Vec::new()
    } else {
        state
            .ingestor
            .append(workspace, valid)
            .await
            .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?
    };

    let (mut stored, mut duplicates, mut rejected) = (0, 0, 0);
    let results: Vec<Value> = slots
        .into_iter()
        .enumerate()
        .map(|(index, slot)| match slot {
            Ok(i) => {
                let mut result = serde_json::to_value(&outcomes[i]).unwrap_or(Value::Null);
                match outcomes[i] {
                    Outcome::Stored { .. } => stored += 1,
                    Outcome::Duplicate => duplicates += 1,
                }
                result["index"] = json!(index);
                result["messageId"] = json!(message_ids[i]);
                result
            }
            Err(errors) => {
                rejected += 1;
                json!({"index": index, "status": "rejected", "errors": errors})
            }
        })
        .collect();
    let mut body = json!({
        "success": rejected == 0,
        "stored": stored,
        "duplicates": duplicates,
        "rejected": rejected,
        "results": results,
    });
    if rejected > 0 {
        let message = format!(
            "{rejected} of {} events were rejected (see `results` for the index and field of each); the other {} were {}",
            rejected + stored + duplicates,
            stored + duplicates,
            if stored + duplicates == 0 {
                "none"
            } else {
                "stored"
            }
        );
        body["error"] = ApiError::new(Code::InvalidEvents, message).body();
        return Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
    }
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}
