//! What can go wrong asking PuppetDB, worded for the person at the terminal.

/// An error from PuppetDB's configuration, the network or its query API.
#[derive(Debug, thiserror::Error)]
pub enum PuppetDbError {
    /// Nothing says where PuppetDB is.
    #[error(
        "no PuppetDB is configured to resolve --query: pass --puppetdb-url https://<puppetdb>:8081, set KICK_PUPPETDB_URL, or set puppetdb.server_urls in ~/.puppetlabs/client-tools/puppetdb.conf"
    )]
    NotConfigured,

    /// Missing or malformed configuration.
    #[error("PuppetDB configuration error: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },

    /// The token or CA file, shared with the orchestrator client.
    #[error(transparent)]
    Setup(#[from] crate::Error),

    /// PuppetDB refused the query (PQL syntax, unknown entity or field).
    #[error(
        "PuppetDB refused the query (HTTP {status}): {message}; check the PQL (e.g. `inventory[certname] {{ facts.os.family = \"Debian\" }}`)"
    )]
    Query {
        /// HTTP status.
        status: u16,
        /// PuppetDB's explanation.
        message: String,
    },

    /// The token was not accepted or does not allow queries.
    #[error(
        "PuppetDB at {url} refused access (HTTP {status}): {message}; check the token (`puppet access login`) and the RBAC permission \"Nodes: View node data from PuppetDB\", or the client certificate"
    )]
    Denied {
        /// The server.
        url: String,
        /// HTTP status.
        status: u16,
        /// PuppetDB's explanation.
        message: String,
    },

    /// None of the servers could be reached or answered in time.
    #[error(
        "no answer from PuppetDB at {urls}: {detail}; check --puppetdb-url (or puppetdb.conf) and that PuppetDB is running"
    )]
    Unreachable {
        /// The servers tried.
        urls: String,
        /// The last failure.
        detail: String,
    },

    /// The server's certificate was not accepted.
    #[error(
        "TLS verification of PuppetDB at {url} failed: {detail}; check that puppetdb.cacert (or --cacert) names the CA that signed PuppetDB's certificate"
    )]
    Tls {
        /// The server.
        url: String,
        /// The verifier's complaint.
        detail: String,
    },

    /// The answer was not a PuppetDB answer, or lacks what kick needs.
    #[error("unexpected answer from PuppetDB at {url}: {reason}")]
    BadResponse {
        /// The server.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}
