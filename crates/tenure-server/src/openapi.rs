//! The OpenAPI document of the HTTP API, generated from the handlers: each handler carries
//! its `#[utoipa::path]` (method, path, parameters, body, answers), query structs derive
//! `IntoParams` and bodies `ToSchema`. What is not one handler's own is added here from the
//! code that defines it: the single-message ingestion routes from their routing table
//! (`ingest::SINGLE_ROUTES`, one closure serves them all), the paths a handler serves twice
//! (`BATCH_ROUTES`, `READY_ROUTES`), the metrics parameters from
//! `tenure_core::metrics::PARAMETERS` and the tables from `Table::ALL`, the error codes from
//! `error::Code::ALL`, and the answers every authenticated route can give (a missing or
//! wrong key, throttling, an unavailable database). Served at `GET /v1/openapi.json`;
//! `tests/openapi.rs` checks that every route of the router is in it.

use std::sync::OnceLock;

use serde::Serialize;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::Code;
use crate::routes;

/// Every error answer: `{"success": false, "error": {...}}` (docs/errors.md).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorDetail,
}

/// What went wrong, and where to read about it.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What was wrong and where (the field, the parameter, the line).
    pub message: String,
    /// One of the codes of docs/errors.md.
    pub code: String,
    /// `auth`, `invalid_request` or `system`.
    pub r#type: String,
    /// docs/errors.md at this code.
    pub link: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenure",
        description = "Customer retention: Segment-compatible ingestion, metrics, health, churn risk, segments and predictions. Authenticate with HTTP Basic: the key as the user name and no password (a write key for ingestion, an admin key for everything else); every read and write is scoped to the key's workspace.",
        license(name = "Apache-2.0"),
    ),
    paths(
        routes::customers::list,
        routes::customers::show,
        routes::customers::erase,
        routes::customers::export,
        routes::health::live,
        routes::health::ready,
        routes::health_models::list,
        routes::health_models::show,
        routes::health_models::put,
        routes::health_models::delete,
        routes::health_scores::overview,
        routes::ingest::ingest_batch,
        routes::ingest::library_metrics,
        routes::ingest::library_settings,
        routes::keys::list,
        routes::keys::create,
        routes::keys::revoke,
        routes::keys::audit_log,
        routes::metrics::all,
        routes::metrics::one,
        routes::metrics::clv,
        routes::metrics::put_spend,
        routes::metrics::list_spend,
        routes::metrics::openapi,
        routes::risk::train,
        routes::risk::model,
        routes::risk::customers,
        routes::segments::list,
        routes::segments::create,
        routes::segments::show,
        routes::segments::update,
        routes::segments::remove,
        routes::segments::preview,
        routes::segments::members,
        routes::segments::customer_segments,
        routes::tasks::list,
        routes::tasks::show,
        routes::workspace::show,
        routes::workspace::update,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&FromTheCode),
)]
struct ApiDoc;

/// The parts of the document that come from tables in the code (see the module's doc).
struct FromTheCode;

/// Paths that need no key.
const PUBLIC: [&str; 5] = [
    "/health",
    "/health/ready",
    "/health/live",
    "/v1/openapi.json",
    "/v1/m",
];

impl Modify for FromTheCode {
    fn modify(&self, doc: &mut Document) {
        add_single_message_routes(doc);
        for (from, to) in aliases() {
            if let Some(item) = doc.paths.paths.get(from).cloned() {
                doc.paths.paths.insert(to.to_owned(), item);
            }
        }
        add_metrics_parameters(doc);
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        if let Some(RefOr::T(Schema::Object(detail))) = components.schemas.get_mut("ErrorDetail")
            && let Some(RefOr::T(Schema::Object(code))) = detail.properties.get_mut("code")
        {
            code.enum_values = Some(Code::ALL.iter().map(|c| c.as_str().into()).collect());
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let public = PUBLIC.contains(&path.as_str());
            for operation in operations(item) {
                add_common_answers(operation, path, public);
            }
        }
    }
}

/// (path documented by a handler, another path the router serves it at).
fn aliases() -> Vec<(&'static str, &'static str)> {
    let (batch, others) = routes::ingest::BATCH_ROUTES.split_at(1);
    let (ready, more) = routes::health::READY_ROUTES.split_at(1);
    others
        .iter()
        .map(|p| (batch[0], *p))
        .chain(more.iter().map(|p| (ready[0], *p)))
        .collect()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// The answers of the layers in front of every handler: authentication (and its
/// throttle), the writer or database being unavailable, the request's own limits.
fn add_common_answers(operation: &mut Operation, path: &str, public: bool) {
    let mut add = |status: &str, description: &str| {
        if !operation.responses.responses.contains_key(status) {
            operation
                .responses
                .responses
                .insert(status.to_owned(), RefOr::T(error_response(description)));
        }
    };
    if !public {
        // The browser library's settings carry the write key in their path, not in a header.
        let key_in_path = path.starts_with("/v1/projects/");
        let ingestion = key_in_path
            || routes::ingest::BATCH_ROUTES.contains(&path)
            || routes::ingest::SINGLE_ROUTES
                .iter()
                .any(|(long, short, _)| *long == path || *short == path);
        add(
            "401",
            "`missing_key` or `invalid_key` (also revoked or expired)",
        );
        if !ingestion {
            add("403", "`admin_key_required`: a write key only ingests");
        }
        add(
            "429",
            "`too_many_failures`: too many failed authentications from this address",
        );
        if !key_in_path {
            operation.security = Some(vec![SecurityRequirement::new("key", Vec::<String>::new())]);
        }
    }
    add(
        "503",
        "`unavailable`: the database or the writer cannot answer now; retry",
    );
}

/// `/v1/identify`, `/v1/track`… and their short forms: one closure serves them, so their
/// operations are built from the routing table.
fn add_single_message_routes(doc: &mut Document) {
    for (long, short, kind) in routes::ingest::SINGLE_ROUTES {
        let kind = kind.as_str();
        let operation = OperationBuilder::new()
            .tag("ingestion")
            .operation_id(Some(format!("ingest_{kind}")))
            .summary(Some(format!("One Segment `{kind}` message")))
            .description(Some(
                "Segment's Tracking API (docs/ingestion.md): the message is validated, stored and folded; gzip bodies are accepted. `messageId` makes a retry idempotent.",
            ))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .description(Some(format!("A Segment `{kind}` message")))
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                            .build(),
                    )
                    .build(),
            ))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("Stored (or a duplicate of a stored message)")
                    .build(),
            )
            .response(
                "400",
                error_response("`malformed_json`, `invalid_events`: the field at fault named"),
            )
            .response("413", error_response("`payload_too_large`"))
            .response("415", error_response("`unsupported_encoding`"))
            .build();
        for path in [long, short] {
            doc.paths.paths.insert(
                path.to_owned(),
                PathItem::new(HttpMethod::Post, operation.clone()),
            );
        }
    }
}

/// The report's query parameters (`tenure_core::metrics::PARAMETERS`) on `/v1/metrics` and
/// `/v1/metrics/{table}`; the table names as the path parameter's enum.
fn add_metrics_parameters(doc: &mut Document) {
    let names = tenure_core::metrics::PARAMETERS;
    let parameter = |name: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(format!(
                "docs/metrics.md, \"Query parameters\": `{name}`"
            )))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let tables: Vec<&str> = tenure_core::metrics::Table::ALL
        .iter()
        .map(|t| t.name())
        .collect();
    for path in ["/v1/metrics", "/v1/metrics/{table}"] {
        let Some(operation) = doc.paths.paths.get_mut(path).and_then(|i| i.get.as_mut()) else {
            continue;
        };
        let parameters = operation.parameters.get_or_insert_with(Vec::new);
        for p in parameters.iter_mut() {
            if p.name == "table" {
                p.schema = Some(RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(tables.clone()))
                        .build(),
                )));
            }
        }
        parameters.extend(names.iter().map(|n| parameter(n)));
    }
}

/// The document, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
}
