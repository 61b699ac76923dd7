//! `GET/POST /inventory` and `GET /inventory/:node`.

use serde::{Deserialize, Serialize};

/// A node's connection to the PCP broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryNode {
    /// Certname.
    pub name: String,
    /// Whether the node's agent is connected.
    pub connected: bool,
    /// Broker URI (absent for disconnected nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    /// When it connected (absent for disconnected nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// `GET /inventory` and `POST /inventory` bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryList {
    /// One entry per node.
    pub items: Vec<InventoryNode>,
}

/// `POST /inventory` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryRequest {
    /// Certnames to look up.
    pub nodes: Vec<String>,
}
