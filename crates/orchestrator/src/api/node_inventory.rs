//! PE's Node Inventory API v1 under `/inventory/v1`, on the service's port
//! with the same tokens: `command/create-connection`,
//! `command/delete-connection` and `query/connections` (GET and POST), with
//! PE's status codes and `puppetlabs.inventory/*` error kinds.
//!
//! Checks run in PE's order of concerns: the token (401), the `Accept`
//! header (406), the permission (403), the `Content-Type` (416, as PE
//! documents it), the JSON (400 `json-parse-error`), its shape and values
//! (400 `schema-validation-error`), then duplicates (409). Messages name
//! keys, never values.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orchestrator_types::connection::kind;
use serde_json::{Map, Value, json};

use super::{Shared, token};
use crate::app::App;
use crate::config::TokenSpec;
use crate::error::Failure;
use crate::inventory::validate::Invalid;
use crate::inventory::{CreateError, Entry, NewEntry};
use crate::query::Params;

type Answer<T> = Result<T, Failure>;

/// The routes, to nest under `/inventory/v1`.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/command/create-connection", post(create))
        .route("/command/delete-connection", post(delete))
        .route("/query/connections", get(query_get).post(query_post))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn(acceptable))
        .layer(middleware::from_fn_with_state(app, super::auth))
}

fn fail(status: StatusCode, kind: &str, msg: impl Into<String>, details: Value) -> Failure {
    Failure::new(status, kind, msg).details(details)
}

fn schema(e: Invalid) -> Failure {
    let details = match &e.key {
        Some(k) => json!({ "key": k }),
        None => json!({}),
    };
    fail(
        StatusCode::BAD_REQUEST,
        kind::SCHEMA_VALIDATION_ERROR,
        e.msg,
        details,
    )
}

fn invalid(msg: impl Into<String>) -> Failure {
    schema(Invalid::new(msg))
}

async fn not_found(uri: axum::http::Uri) -> Failure {
    fail(
        StatusCode::NOT_FOUND,
        "puppetlabs.inventory/not-found",
        "No such endpoint; the Node Inventory API has command/create-connection, command/delete-connection and query/connections",
        json!({ "path": uri.path() }),
    )
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Failure {
    fail(
        StatusCode::METHOD_NOT_ALLOWED,
        "puppetlabs.inventory/method-not-allowed",
        format!("{method} is not allowed on {}", uri.path()),
        json!({ "method": method.as_str(), "path": uri.path() }),
    )
}

/// 406 unless the `Accept` header (when there is one) admits JSON.
async fn acceptable(req: Request, next: Next) -> Response {
    let ok = match req.headers().get(ACCEPT).map(|v| v.to_str()) {
        None => true,
        Some(Err(_)) => false,
        Some(Ok(accept)) => accept.split(',').any(|r| {
            let mime = r.split(';').next().unwrap_or("").trim();
            let mime = mime.to_ascii_lowercase();
            mime.is_empty()
                || matches!(mime.as_str(), "*/*" | "application/*" | "application/json")
                || mime.ends_with("+json")
        }),
    };
    if ok {
        next.run(req).await
    } else {
        fail(
            StatusCode::NOT_ACCEPTABLE,
            kind::NOT_ACCEPTABLE,
            "accept must include content-type json",
            json!({ "accept": req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()) }),
        )
        .into_response()
    }
}

/// Whether `spec` may create and delete entries (PE's "Nodes: Add and
/// delete connection information from inventory service").
fn may_edit(spec: &TokenSpec) -> Answer<()> {
    if spec.may_edit_inventory() {
        return Ok(());
    }
    Err(fail(
        StatusCode::FORBIDDEN,
        kind::NOT_PERMITTED,
        format!(
            "The token of {} may not add or delete connection entries (its spec sets `inventory: false`, or it is limited to a task target)",
            spec.login
        ),
        json!({ "login": spec.login }),
    ))
}

/// The JSON body: 416 unless it is sent as JSON, 400 unless it parses.
async fn json_body(app: &App, headers: &HeaderMap, body: Body) -> Answer<Value> {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" && !mime.ends_with("+json") {
        return Err(fail(
            StatusCode::RANGE_NOT_SATISFIABLE,
            kind::UNSUPPORTED_TYPE,
            "content-type must be application/json",
            json!({ "content-type": ct }),
        ));
    }
    let bytes = axum::body::to_bytes(body, app.config.max_body_bytes)
        .await
        .map_err(|_| {
            fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                kind::SCHEMA_VALIDATION_ERROR,
                format!(
                    "The request body is larger than the {} byte limit",
                    app.config.max_body_bytes
                ),
                json!({ "limit": app.config.max_body_bytes }),
            )
        })?;
    // serde_json's syntax errors give a line and column, no content.
    serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            kind::JSON_PARSE_ERROR,
            format!("The request body is not valid JSON: {e}"),
            json!({}),
        )
    })
}

/// The object of a body, refusing keys other than `allowed`.
fn object(v: Value, allowed: &[&str]) -> Answer<Map<String, Value>> {
    let Value::Object(o) = v else {
        return Err(invalid("The request body must be a JSON object"));
    };
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(schema(Invalid {
            msg: format!(
                "unknown key `{k}` in the request body; the keys are {}",
                allowed.join(", ")
            ),
            key: Some(k.clone()),
        }));
    }
    Ok(o)
}

fn certnames(v: Option<&Value>, key: &str) -> Answer<Option<Vec<String>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|c| {
                c.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("`{key}` must be an array of certname strings")))
            })
            .collect::<Answer<Vec<_>>>()
            .map(Some),
        Some(_) => Err(invalid(format!(
            "`{key}` must be an array of certname strings"
        ))),
    }
}

fn parameters(o: &mut Map<String, Value>, key: &str) -> Answer<Map<String, Value>> {
    match o.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(invalid(format!("`{key}` must be a JSON object"))),
    }
}

/// A create-connection body, checked.
fn create_request(v: Value) -> Answer<NewEntry> {
    let mut o = object(
        v,
        &[
            "certnames",
            "type",
            "parameters",
            "sensitive_parameters",
            "duplicates",
        ],
    )?;
    let names = certnames(o.get("certnames"), "certnames")?
        .ok_or_else(|| invalid("`certnames` is required: the nodes this entry is for"))?;
    match o.get("type").and_then(Value::as_str) {
        Some("ssh") => {}
        Some("winrm") => {
            return Err(invalid(
                "type winrm is not supported: WinRM is not supported by Kick's orchestrator, which reaches agentless nodes over SSH only; use type ssh",
            ));
        }
        Some(_) | None => return Err(invalid("`type` must be \"ssh\"")),
    }
    let replace = match o.get("duplicates") {
        None | Some(Value::Null) => false,
        Some(v) if v == "error" => false,
        Some(v) if v == "replace" => true,
        Some(_) => return Err(invalid("`duplicates` must be \"error\" or \"replace\"")),
    };
    let params = parameters(&mut o, "parameters")?;
    let sensitive = parameters(&mut o, "sensitive_parameters")?;
    NewEntry::ssh(names, params, sensitive, replace).map_err(schema)
}

/// `POST /command/create-connection`: 201 `{connection_id}`.
async fn create(State(app): Shared, req: Request) -> Answer<Response> {
    may_edit(&token(req.extensions()))?;
    let (parts, body) = req.into_parts();
    let new = create_request(json_body(&app, &parts.headers, body).await?)?;
    let certnames = new.certnames.len();
    let app2 = app.clone();
    let made = tokio::task::spawn_blocking(move || app2.inventory.create(new))
        .await
        .map_err(|e| internal(e.to_string()))?;
    match made {
        Ok(id) => {
            tracing::info!(connection_id = %id, certnames, "connection entry created");
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({ "connection_id": id })),
            )
                .into_response())
        }
        Err(CreateError::Duplicates(taken)) => Err(fail(
            StatusCode::CONFLICT,
            kind::DUPLICATE_CERTNAMES,
            format!(
                "{} already have a connection entry; delete it first, or send \"duplicates\": \"replace\"",
                taken.join(", ")
            ),
            json!({ "certnames": taken }),
        )),
        Err(CreateError::Store(m)) => Err(internal(m)),
    }
}

fn internal(msg: String) -> Failure {
    fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        kind::UNKNOWN_ERROR,
        msg,
        json!({}),
    )
}

/// `POST /command/delete-connection`: 204.
async fn delete(State(app): Shared, req: Request) -> Answer<StatusCode> {
    may_edit(&token(req.extensions()))?;
    let (parts, body) = req.into_parts();
    let o = object(json_body(&app, &parts.headers, body).await?, &["certnames"])?;
    let names = certnames(o.get("certnames"), "certnames")?
        .ok_or_else(|| invalid("`certnames` is required: the nodes whose entries go"))?;
    let app2 = app.clone();
    let n = names.len();
    tokio::task::spawn_blocking(move || app2.inventory.delete(&names))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(internal)?;
    tracing::info!(
        certnames = n,
        "certnames removed from the connection entries"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// What a query asks for.
struct Query {
    certnames: Option<Vec<String>>,
    sensitive: bool,
    extract: Option<Vec<String>>,
}

/// Keys `extract` may name (`connection_id` is always there).
const EXTRACTABLE: [&str; 5] = [
    "connection_id",
    "certnames",
    "type",
    "parameters",
    "sensitive_parameters",
];

fn sensitive_flag(v: Option<&Value>) -> Answer<bool> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(invalid("`sensitive` must be true or false")),
    }
}

fn extract(v: Option<&Value>) -> Answer<Option<Vec<String>>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let bad = || {
        invalid(format!(
            "`extract` must be an array of keys among {}",
            EXTRACTABLE.join(", ")
        ))
    };
    let Value::Array(a) = v else {
        return Err(bad());
    };
    a.iter()
        .map(|k| {
            k.as_str()
                .filter(|k| EXTRACTABLE.contains(k))
                .map(str::to_owned)
                .ok_or_else(bad)
        })
        .collect::<Answer<Vec<_>>>()
        .map(Some)
}

/// `GET /query/connections?certname=&sensitive=&extract=`.
async fn query_get(State(app): Shared, req: Request) -> Answer<axum::Json<Value>> {
    let p = Params::parse(req.uri().query());
    if let Some(k) = p
        .keys()
        .find(|k| !matches!(*k, "certname" | "sensitive" | "extract" | "token"))
    {
        return Err(schema(Invalid {
            msg: format!(
                "unknown query parameter `{k}`; the parameters are certname, sensitive and extract (POST takes certnames)"
            ),
            key: Some(k.to_owned()),
        }));
    }
    let extract_v = match p.get("extract") {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<Value>(text)
                .map_err(|_| invalid("`extract` must be a JSON array, e.g. extract=[\"type\"]"))?,
        ),
    };
    let q = Query {
        certnames: p.get("certname").map(|c| vec![c.to_owned()]),
        sensitive: sensitive_flag(p.get("sensitive").map(|s| json!(s)).as_ref())?,
        extract: extract(extract_v.as_ref())?,
    };
    Ok(answer(&app, &token(req.extensions()), q))
}

/// `POST /query/connections` with `{certnames?, sensitive?, extract?}`.
async fn query_post(State(app): Shared, req: Request) -> Answer<axum::Json<Value>> {
    let spec = token(req.extensions());
    let (parts, body) = req.into_parts();
    let o = object(
        json_body(&app, &parts.headers, body).await?,
        &["certnames", "sensitive", "extract"],
    )?;
    let q = Query {
        certnames: certnames(o.get("certnames"), "certnames")?,
        sensitive: sensitive_flag(o.get("sensitive"))?,
        extract: extract(o.get("extract"))?,
    };
    Ok(answer(&app, &spec, q))
}

/// The entries a query names, with `sensitive_parameters` only when asked
/// for and allowed (otherwise left out, as PE does).
fn answer(app: &App, spec: &TokenSpec, q: Query) -> axum::Json<Value> {
    let show_secrets = q.sensitive && spec.view_sensitive;
    if q.sensitive && !spec.view_sensitive {
        tracing::info!(login = %spec.login, "sensitive connection parameters asked for without the permission; left out");
    }
    let wants = |k: &str| q.extract.as_ref().is_none_or(|e| e.iter().any(|x| x == k));
    let items: Vec<Value> = app
        .inventory
        .entries(q.certnames.as_deref())
        .iter()
        .map(|e| item(app, e, &wants, show_secrets))
        .collect();
    axum::Json(json!({ "items": items }))
}

fn item(app: &App, e: &Entry, wants: &dyn Fn(&str) -> bool, secrets: bool) -> Value {
    let mut m = Map::new();
    m.insert("connection_id".into(), json!(e.id));
    if wants("certnames") {
        m.insert("certnames".into(), json!(e.certnames));
    }
    if wants("type") {
        m.insert("type".into(), json!(e.kind));
    }
    if wants("parameters") {
        m.insert("parameters".into(), Value::Object(e.parameters.clone()));
    }
    if secrets && wants("sensitive_parameters") {
        let s = app.inventory.sensitive(e).unwrap_or_else(|err| {
            tracing::error!(connection_id = %e.id, "{err}");
            Map::new()
        });
        m.insert("sensitive_parameters".into(), Value::Object(s));
    }
    Value::Object(m)
}
