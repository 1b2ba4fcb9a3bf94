//! The Segment-compatible HTTP Tracking API: `/v1/identify`, `/v1/track`, `/v1/page`,
//! `/v1/screen`, `/v1/group`, `/v1/alias`, `/v1/batch` (and `/v1/import`, Segment's alias of
//! batch).
//!
//! A batch is accepted per event: valid events are stored together in one transaction,
//! invalid ones are reported by index and field and stored not at all. The answer is 200
//! when every event was stored (or was already stored), 400 when any was rejected; its body
//! says what happened to each event either way (see `docs/ingestion.md`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use tenure_core::message::{MAX_BATCH_BYTES, MAX_MESSAGE_BYTES};
use tenure_core::time::parse_instant;
use tenure_core::{Envelope, FieldError, Message, MessageType};

use crate::AppState;
use crate::error::{ApiError, Code};
use crate::writer::Outcome;

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
    Router::new()
        .route("/v1/identify", single(MessageType::Identify))
        .route("/v1/track", single(MessageType::Track))
        .route("/v1/page", single(MessageType::Page))
        .route("/v1/screen", single(MessageType::Screen))
        .route("/v1/group", single(MessageType::Group))
        .route("/v1/alias", single(MessageType::Alias))
        .route(
            "/v1/batch",
            post(ingest_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)),
        )
        .route(
            "/v1/import",
            post(ingest_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)),
        )
}

pub(crate) fn read_json(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
) -> Result<Value, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Code::PayloadTooLarge,
                format!("the request body is larger than {} KB", limit / 1024),
            )
        } else {
            ApiError::new(
                Code::InvalidRequest,
                format!("the request body could not be read: {e}"),
            )
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
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
    let caller = state.keys.check(&headers).await?;
    let mut value = read_json(body, MAX_MESSAGE_BYTES)?;
    let envelope = Envelope {
        received_at: state.clock.now(),
        batch_sent_at: None,
    };
    let mut ids = FreshIds::new()?;
    ids.fill_missing(&mut value);
    let items = vec![Message::parse(value, Some(kind), envelope)];
    store_and_answer(&state, caller.workspace, items).await
}

async fn ingest_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = state.keys.check(&headers).await?;
    let value = read_json(body, MAX_BATCH_BYTES)?;
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
            ids.fill_missing(&mut message);
            Message::parse(message, None, envelope)
        })
        .collect();
    store_and_answer(&state, caller.workspace, items).await
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
    workspace: tenure_core::WorkspaceId,
    items: Vec<Result<Message, Vec<FieldError>>>,
) -> Result<Response, ApiError> {
    let mut valid = Vec::with_capacity(items.len());
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
