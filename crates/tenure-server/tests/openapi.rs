//! The OpenAPI document describes the router as it is (issue 18, item 5): every path the
//! server's routing code names, with every method the running router answers on it, is in
//! the document with its path parameters, a body where the method takes one, and its error
//! answers in the shape the server really sends.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, databases};
use serde_json::Value;

/// Every API path literal in the server's routing code (the dashboard's HTML pages are not
/// part of the API).
fn api_routes() -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/routes");
    let mut paths = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for literal in text.split('"').skip(1).step_by(2) {
            let clean = literal
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-_.{}".contains(c))
                && !literal.contains("{}");
            if clean && (literal.starts_with("/v1/") || literal.starts_with("/health")) {
                paths.insert(literal.to_owned());
            }
        }
    }
    assert!(paths.len() > 40, "{paths:?}");
    paths.into_iter().collect()
}

/// The methods the running router serves at a path: the `Allow` header of its 405 to a
/// method no route uses.
async fn methods(app: &TestApp, path: &str) -> Vec<String> {
    let concrete: String = path
        .split('/')
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/");
    let response = app
        .client
        .request(
            reqwest::Method::from_bytes(b"PATCH").unwrap(),
            format!("{}{concrete}", app.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        405,
        "PATCH {path}: the router must not serve it"
    );
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    allow
        .split(',')
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| m != "head" && m != "options")
        .collect()
}

#[tokio::test]
async fn every_route_of_the_router_is_documented_with_its_parameters_bodies_and_errors() {
    let db = databases().remove(0);
    let app = TestApp::spawn(&db).await;
    let spec: Value = app
        .client
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut checked = 0;
    for path in api_routes() {
        let item = &spec["paths"][&path];
        assert!(item.is_object(), "{path} is routed but not documented");
        let served = methods(&app, &path).await;
        assert!(!served.is_empty(), "{path}: no method");
        for method in served {
            let operation = &item[&method];
            assert!(
                operation.is_object(),
                "{method} {path} is routed but not documented"
            );
            let parameters: Vec<&Value> = operation["parameters"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            for name in path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            {
                assert!(
                    parameters
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                    "{method} {path}: path parameter `{name}` undocumented"
                );
            }
            if method == "post" || method == "put" {
                assert!(
                    operation["requestBody"]["content"].is_object(),
                    "{method} {path}: no request body"
                );
            }
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success answer"
            );
            let errors: Vec<&String> = responses
                .keys()
                .filter(|s| s.starts_with('4') || s.starts_with('5'))
                .collect();
            assert!(!errors.is_empty(), "{method} {path}: no error answer");
            for status in errors {
                let schema = &responses[status]["content"]["application/json"]["schema"]["$ref"];
                assert!(
                    schema == "#/components/schemas/ErrorBody" || path.starts_with("/health"),
                    "{method} {path} {status}: not the error body ({schema})"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 45, "{checked} operations");

    // The documented error body is what the server sends, and its codes are the server's.
    let error = app.get("/v1/segments/seg_999999", &app.admin_key).await.1;
    let documented = |name: &str| -> Vec<String> {
        let mut keys: Vec<String> = spec["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let sent = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(sent(&error), documented("ErrorBody"), "{error}");
    assert_eq!(sent(&error["error"]), documented("ErrorDetail"), "{error}");
    let codes = spec["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    assert!(codes.contains(&error["error"]["code"]), "{error}");
    let errors_doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md"))
            .unwrap();
    for code in codes {
        let code = code.as_str().unwrap();
        assert!(
            errors_doc.contains(&format!("`{code}`")),
            "docs/errors.md does not explain `{code}`"
        );
    }
    app.stop();
}
