//! One table of public error codes, rendered as `{"success": false, "error": {message, code,
//! type, link}}` so users can search a code in `docs/errors.md`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    MissingKey,
    InvalidKey,
    AdminKeyRequired,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedEncoding,
    InvalidRequest,
    InvalidEvents,
    CustomerNotFound,
    MetricNotFound,
    SegmentNotFound,
    InvalidSegment,
    RiskModelNotFound,
    NotEnoughHistory,
    InvalidHealthModel,
    HealthModelNotFound,
    InvalidParameter,
    Unavailable,
    TaskRunning,
    TaskNotFound,
    KeyNotFound,
    TooManyFailures,
    Internal,
}

impl Code {
    /// Every code (the OpenAPI document lists them; a test checks docs/errors.md does).
    pub const ALL: [Code; 23] = [
        Code::MissingKey,
        Code::InvalidKey,
        Code::AdminKeyRequired,
        Code::MalformedJson,
        Code::PayloadTooLarge,
        Code::UnsupportedEncoding,
        Code::InvalidRequest,
        Code::InvalidEvents,
        Code::CustomerNotFound,
        Code::MetricNotFound,
        Code::SegmentNotFound,
        Code::InvalidSegment,
        Code::RiskModelNotFound,
        Code::NotEnoughHistory,
        Code::InvalidHealthModel,
        Code::HealthModelNotFound,
        Code::InvalidParameter,
        Code::Unavailable,
        Code::TaskRunning,
        Code::TaskNotFound,
        Code::KeyNotFound,
        Code::TooManyFailures,
        Code::Internal,
    ];

    fn parts(self) -> (&'static str, &'static str, StatusCode) {
        match self {
            Code::MissingKey => ("missing_key", "auth", StatusCode::UNAUTHORIZED),
            Code::InvalidKey => ("invalid_key", "auth", StatusCode::UNAUTHORIZED),
            Code::AdminKeyRequired => ("admin_key_required", "auth", StatusCode::FORBIDDEN),
            Code::MalformedJson => ("malformed_json", "invalid_request", StatusCode::BAD_REQUEST),
            Code::UnsupportedEncoding => (
                "unsupported_encoding",
                "invalid_request",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            Code::TooManyFailures => ("too_many_failures", "auth", StatusCode::TOO_MANY_REQUESTS),
            Code::KeyNotFound => ("key_not_found", "invalid_request", StatusCode::NOT_FOUND),
            Code::TaskRunning => ("task_running", "invalid_request", StatusCode::CONFLICT),
            Code::TaskNotFound => ("task_not_found", "invalid_request", StatusCode::NOT_FOUND),
            Code::PayloadTooLarge => (
                "payload_too_large",
                "invalid_request",
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            Code::InvalidRequest => (
                "invalid_request",
                "invalid_request",
                StatusCode::BAD_REQUEST,
            ),
            Code::InvalidEvents => ("invalid_events", "invalid_request", StatusCode::BAD_REQUEST),
            Code::CustomerNotFound => (
                "customer_not_found",
                "invalid_request",
                StatusCode::NOT_FOUND,
            ),
            Code::MetricNotFound => ("metric_not_found", "invalid_request", StatusCode::NOT_FOUND),
            Code::SegmentNotFound => (
                "segment_not_found",
                "invalid_request",
                StatusCode::NOT_FOUND,
            ),
            Code::InvalidSegment => (
                "invalid_segment",
                "invalid_request",
                StatusCode::BAD_REQUEST,
            ),
            Code::RiskModelNotFound => (
                "risk_model_not_found",
                "invalid_request",
                StatusCode::NOT_FOUND,
            ),
            Code::InvalidHealthModel => (
                "invalid_health_model",
                "invalid_request",
                StatusCode::BAD_REQUEST,
            ),
            Code::HealthModelNotFound => (
                "health_model_not_found",
                "invalid_request",
                StatusCode::NOT_FOUND,
            ),
            Code::NotEnoughHistory => (
                "not_enough_history",
                "invalid_request",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            Code::InvalidParameter => (
                "invalid_parameter",
                "invalid_request",
                StatusCode::BAD_REQUEST,
            ),
            Code::Unavailable => ("unavailable", "system", StatusCode::SERVICE_UNAVAILABLE),
            Code::Internal => ("internal", "system", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.parts().0
    }

    pub fn status(self) -> StatusCode {
        self.parts().2
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The `error` object of a response body.
    pub fn body(&self) -> serde_json::Value {
        let (code, kind, _) = self.code.parts();
        json!({
            "message": self.message,
            "code": code,
            "type": kind,
            "link": format!("https://github.com/tenure/tenure/blob/main/docs/errors.md#{code}"),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let mut response = (
            status,
            axum::Json(json!({"success": false, "error": self.body()})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tenure\""),
            );
        }
        response
    }
}

impl From<tenure_store::StoreError> for ApiError {
    fn from(e: tenure_store::StoreError) -> Self {
        tracing::error!("store: {e}");
        ApiError::new(
            Code::Unavailable,
            "the database could not answer; try again",
        )
    }
}
