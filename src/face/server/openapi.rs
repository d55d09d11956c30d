//! The OpenAPI document (server), made from the route table ([`super::routes`]) and the JSON
//! Schemas of the wire types ([`crate::protocol::types`]): every route with its parameters
//! (hashes with their pattern, ids as positive integers), its body with the fields it
//! requires, its answer and the failures it can give. Made once, on the first request.

use super::routes::{errors, paged, Auth, Body, Route, ROUTES};
use crate::protocol::types::{Failure, HASH_PATTERN};
use crate::protocol::{PAGE_AFTER, PAGE_LIMIT};
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

fn reason(status: u16) -> &'static str {
    match status {
        400 => "malformed JSON, a failed validation (see details) or a bad parameter",
        401 => "no token, or one that is invalid, expired or revoked",
        403 => "a browser session's request without its CSRF token (X-CSRF-Token)",
        404 => "no such resource for this account",
        408 => "the body arrived too slowly",
        409 => "a conflict with what is stored (see the summary)",
        413 => "the body is over the size limit (see limit)",
        429 => "too many at once or too many attempts; see Retry-After",
        500 => "a fault of the server",
        502 => "the service the server relays to (the assistant's API) failed or refused",
        503 => "the database is busy or unreachable",
        504 => "the service the server relays to (the assistant's API) did not answer in time",
        507 => {
            "the account's storage quota is full (see quota), or the server's disk is \
             (code disk_full: nothing was changed; try again later)"
        }
        _ => "failure",
    }
}

fn parameter(name: &str) -> Value {
    let schema = if name == "hash" {
        json!({"type": "string", "pattern": HASH_PATTERN})
    } else {
        json!({"type": "integer", "format": "int64", "minimum": 1})
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

/// The query parameters of a paginated list.
fn page_parameters() -> [Value; 2] {
    [
        json!({"name": PAGE_LIMIT, "in": "query", "required": false,
            "description": "The most items in the page: from 1 to the server's largest page \
                (`max_page` in `GET /api/limits`; 5000 unless configured). Without it, the \
                server's default page size (100), or for a project's files the largest page.",
            "schema": {"type": "integer", "minimum": 1}}),
        json!({"name": PAGE_AFTER, "in": "query", "required": false,
            "description": "The `next` cursor of the page before, as given: an opaque string \
                that only the same list of the same server accepts. Without it, the first page.",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"}}),
    ]
}

fn operation(r: &Route, g: &mut schemars::SchemaGenerator, failure: &Value) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), r.doc.summary.into());
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(parameter)
        .collect();
    if paged(r) {
        params.extend(page_parameters());
    }
    params.extend(r.doc.query.iter().map(|q| {
        let schema = if q.integer {
            json!({"type": "integer", "format": "int64", "minimum": 0})
        } else {
            json!({"type": "string"})
        };
        json!({"name": q.name, "in": "query", "required": q.required,
            "description": q.description, "schema": schema})
    }));
    if !params.is_empty() {
        op.insert("parameters".into(), params.into());
    }
    if matches!(r.auth, Auth::Required | Auth::RequiredLimited) {
        // Either: a browser's session cookie (with X-CSRF-Token beside it on every request
        // that is not a GET) or the bearer token.
        op.insert("security".into(), json!([{"bearer": []}, {"session": []}]));
    }
    match (r.body, r.doc.request) {
        (Body::Json, Some(schema)) => {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {
                    "schema": schema(g).to_value()}}}),
            );
        }
        (Body::Blob, _) => {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}}),
            );
        }
        _ => {}
    }
    let mut responses = Map::new();
    let (status, answer) = r.doc.answer;
    let content = match answer {
        Some(schema) => json!({"application/json": {"schema": schema(g).to_value()}}),
        None if r.path.ends_with("openapi.json") => {
            json!({"application/json": {"schema": {"type": "object"}}})
        }
        None if r.path == "/api/assistant" => json!({"application/x-ndjson": {
            "schema": {"type": "string", "description": "One JSON object a line: \
                {\"text\": PIECE} for each piece of the answer as it comes, then \
                {\"done\": true}, or {\"error\": MESSAGE} when the answer broke off"}}}),
        None => json!({"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}),
    };
    responses.insert(
        status.to_string(),
        json!({"description": "success", "content": content}),
    );
    for e in errors(r) {
        responses.insert(
            e.to_string(),
            json!({"description": reason(e),
                "content": {"application/json": {"schema": failure}}}),
        );
    }
    op.insert("responses".into(), responses.into());
    op.into()
}

/// The document, as JSON.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas".into())
        .into_generator();
    let failure = g.subschema_for::<Failure>().to_value();
    let mut paths = Map::new();
    for r in ROUTES {
        let item = paths
            .entry(r.path)
            .or_insert_with(|| Value::Object(Map::new()));
        item[r.method.to_ascii_lowercase()] = operation(r, &mut g, &failure);
    }
    let schemas: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Valyxo account API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Accounts, projects, scripts and file sync, served by `valyxo server` \
                (`man server`). Every answer is a JSON object with `success`; failures add \
                `error`, and `details` for validation, `conflicts` for commit conflicts. Lists \
                come one page at a time: `limit` and `after` in the query, and beside `data` \
                the `next` cursor, null on the last page."
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "session": {"type": "apiKey", "in": "cookie", "name": "valyxo_session",
                    "description": "Set by /api/web/login and /api/web/register. A request \
                        that is not a GET must also send the X-CSRF-Token header, whose value \
                        the readable cookie valyxo_csrf holds."}
            },
            "schemas": schemas
        }
    })
}

/// The document as served, made once.
pub fn text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| document().to_string())
}
