//! `/inventory`: which simulated nodes are connected.

use axum::extract::{Request, State};
use orchestrator_types::inventory::InventoryNode;
use orchestrator_types::{InventoryList, InventoryRequest};

use super::{ApiPath, ApiResult, Shared, body};
use crate::app::App;
use crate::time;
fn inventory_entry(app: &App, name: &str) -> InventoryNode {
    match app.node(name).filter(|n| n.connected) {
        Some(_) => InventoryNode {
            name: name.to_owned(),
            connected: true,
            broker: Some(format!("pcp://{}/server", broker_host(&app.base))),
            timestamp: Some(time::millis(app.started)),
        },
        None => InventoryNode {
            name: name.to_owned(),
            connected: false,
            broker: None,
            timestamp: None,
        },
    }
}

fn broker_host(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.split(['/', ':']).next().unwrap_or(rest)
}

pub async fn list(State(app): Shared) -> axum::Json<InventoryList> {
    let items = app
        .config
        .inventory
        .nodes
        .iter()
        .filter(|n| n.connected)
        .map(|n| inventory_entry(&app, &n.certname))
        .collect();
    axum::Json(InventoryList { items })
}

pub async fn lookup(State(app): Shared, req: Request) -> ApiResult<axum::Json<InventoryList>> {
    let r: InventoryRequest = body(&app, req.into_body()).await?;
    Ok(axum::Json(InventoryList {
        items: r.nodes.iter().map(|n| inventory_entry(&app, n)).collect(),
    }))
}

pub async fn one(State(app): Shared, ApiPath(node): ApiPath<String>) -> axum::Json<InventoryNode> {
    axum::Json(inventory_entry(&app, &node))
}
