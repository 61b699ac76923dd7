//! Which nodes a scope names: certnames, a classifier group of the
//! inventory, or a PuppetDB query (`--puppetdb-url`).

use std::time::Duration;

use axum::http::StatusCode;
use orchestrator_types::Scope;
use orchestrator_types::error::kind;
use serde_json::{Value, json};

use crate::app::App;
use crate::error::Failure;

type ApiResult<T> = Result<T, Failure>;
/// The certnames a scope names, deduplicated, in request order.
pub async fn resolve_scope(app: &App, scope: &Scope, environment: &str) -> ApiResult<Vec<String>> {
    if scope.kinds_set() != 1 {
        return Err(Failure::invalid_body(
            "The scope must have exactly one of 'nodes', 'query' or 'node_group'",
        ));
    }
    let (names, target): (Vec<String>, &str) = if let Some(nodes) = &scope.nodes {
        (nodes.clone(), "nodes")
    } else if let Some(group) = &scope.node_group {
        (
            app.config
                .inventory
                .nodes
                .iter()
                .filter(|n| n.groups.iter().any(|g| g == group))
                .map(|n| n.certname.clone())
                .collect(),
            "node_group",
        )
    } else {
        (
            query_puppetdb(app, scope.query.as_ref().unwrap_or(&Value::Null)).await?,
            "query",
        )
    };
    let mut seen = std::collections::HashSet::new();
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| !n.is_empty() && seen.insert(n.clone()))
        .collect();
    if names.is_empty() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            kind::EMPTY_TARGET,
            "No nodes were found for the specified target. Nothing to do.",
        )
        .details(json!({ "environment": environment, "target": target })));
    }
    Ok(names)
}

pub async fn query_puppetdb(app: &App, query: &Value) -> ApiResult<Vec<String>> {
    let Some(url) = &app.config.puppetdb_url else {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            kind::QUERY_ERROR,
            "PuppetDB query failed: this orchestrator has no PuppetDB configured (start it with --puppetdb-url, or use scope.nodes or scope.node_group)",
        ));
    };
    let endpoint = format!("{}/pdb/query/v4", url.trim_end_matches('/'));
    let resp = app
        .http
        .post(&endpoint)
        .json(&json!({ "query": query }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                kind::PUPPETDB_ERROR,
                format!("Could not reach PuppetDB at {endpoint}: {e}"),
            )
        })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            kind::QUERY_ERROR,
            format!("PuppetDB query failed: {text}"),
        ));
    }
    let rows: Vec<Value> = serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            kind::PUPPETDB_ERROR,
            format!("PuppetDB answered something that is not a JSON array: {e}"),
        )
    })?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            r.get("certname")
                .or_else(|| r.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect())
}
