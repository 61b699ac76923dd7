//! PE's Node Inventory API v1 (`/inventory/v1`): connection entries that
//! tell the orchestrator how to reach nodes without an agent (over SSH).
//!
//! An entry maps certnames to a transport `type`, plain `parameters` and
//! secret `sensitive_parameters` (stored encrypted, shown only on request
//! to callers allowed to see them).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The path prefix of the Node Inventory API v1.
pub const INVENTORY_PREFIX: &str = "/inventory/v1";

/// What `create-connection` does when a certname already has an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Duplicates {
    /// Refuse with 409 `duplicate-certnames` (also what an unset value does).
    Error,
    /// Take the certnames out of their old entries.
    Replace,
}

/// `POST /command/create-connection`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateConnection {
    /// The certnames that get these connection details.
    pub certnames: Vec<String>,
    /// `ssh` (PE also has `winrm`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Non-secret keys (`user`, `hostname`, `port`, `run-as`, ...).
    pub parameters: Map<String, Value>,
    /// Secret keys (`password`, `private-key-content`, `sudo-password`).
    pub sensitive_parameters: Map<String, Value>,
    /// When unset the server behaves as for [`Duplicates::Error`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<Duplicates>,
}

/// The `201` answer of `create-connection`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionCreated {
    /// The new entry's id (a UUID).
    pub connection_id: String,
}

/// `POST /command/delete-connection`: these certnames leave every entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteConnection {
    /// Certnames to remove.
    pub certnames: Vec<String>,
}

/// `POST /query/connections`; every field optional (`{}` lists all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionsQuery {
    /// Only the entries of these certnames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certnames: Option<Vec<String>>,
    /// Include `sensitive_parameters` (needs the permission to see them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<bool>,
    /// Only these keys besides `connection_id` (e.g. `["type"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<Vec<String>>,
}

/// One entry of a `query/connections` answer. Keys left out by `extract`
/// are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// The entry's id.
    pub connection_id: String,
    /// Its certnames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certnames: Option<Vec<String>>,
    /// `ssh` or `winrm`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Non-secret keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// Secret keys, only when asked for and allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive_parameters: Option<Map<String, Value>>,
}

/// `GET` and `POST /query/connections` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionList {
    /// One item per entry.
    pub items: Vec<Connection>,
}

/// The Node Inventory API's error kinds and their HTTP statuses.
pub mod kind {
    /// 500: anything unexpected.
    pub const UNKNOWN_ERROR: &str = "puppetlabs.inventory/unknown-error";
    /// 406: the `Accept` header excludes JSON.
    pub const NOT_ACCEPTABLE: &str = "puppetlabs.inventory/not-acceptable";
    /// 416 (as PE documents it, not 415): the body is not `application/json`.
    pub const UNSUPPORTED_TYPE: &str = "puppetlabs.inventory/unsupported-type";
    /// 400: the body is not JSON.
    pub const JSON_PARSE_ERROR: &str = "puppetlabs.inventory/json-parse-error";
    /// 400: JSON of the wrong shape or with wrong values.
    pub const SCHEMA_VALIDATION_ERROR: &str = "puppetlabs.inventory/schema-validation-error";
    /// 403: the token may not do this.
    pub const NOT_PERMITTED: &str = "puppetlabs.inventory/not-permitted";
    /// 409: a certname already has an entry and `duplicates` is not `replace`.
    pub const DUPLICATE_CERTNAMES: &str = "puppetlabs.inventory/duplicate-certnames";
}
