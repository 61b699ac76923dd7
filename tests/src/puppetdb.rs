//! The loopback PuppetDB started by `tests/scripts/puppetdb-up.sh`, fed by the puppetserver of
//! [`crate::Stack`] (facts, catalogs and reports of every agent run).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::stack::ENV_REQUIRE_STACK;

/// Env var holding PuppetDB's query URL (printed by `puppetdb-up.sh`, exported by `make test`).
pub const ENV_PUPPETDB: &str = "KICK_TEST_PUPPETDB_URL";

/// A PuppetDB answering PQL on plain HTTP at loopback.
#[derive(Debug, Clone)]
pub struct PuppetDb {
    url: String,
}

impl PuppetDb {
    /// The PuppetDB named by `KICK_TEST_PUPPETDB_URL`, checked to be answering.
    ///
    /// Like [`crate::Stack::from_env`]: `None` with a skip note when unset, a panic when unset
    /// under `KICK_REQUIRE_STACK=1` or when set but not answering.
    pub fn from_env() -> Option<PuppetDb> {
        let required = std::env::var(ENV_REQUIRE_STACK).is_ok_and(|v| v == "1");
        let Some(url) = std::env::var(ENV_PUPPETDB).ok().filter(|u| !u.is_empty()) else {
            assert!(
                !required,
                "{ENV_REQUIRE_STACK}=1 but {ENV_PUPPETDB} is not set: start PuppetDB with \
                 `tests/scripts/puppetdb-up.sh` and export the {ENV_PUPPETDB}=… line it prints \
                 (or run `make test`, which does both)"
            );
            eprintln!(
                "note: skipping PuppetDB test: {ENV_PUPPETDB} is not set \
                 (run `make test`, or tests/scripts/puppetdb-up.sh and export its last line)"
            );
            return None;
        };
        let db = PuppetDb {
            url: url.trim_end_matches('/').to_owned(),
        };
        let version = db.get("/pdb/meta/v1/version");
        assert!(
            version.as_ref().is_some_and(|v| v["version"].is_string()),
            "{ENV_PUPPETDB}={} is set but PuppetDB does not answer /pdb/meta/v1/version \
             ({version:?}): start it with tests/scripts/puppetdb-up.sh (log: \
             /tmp/kick-puppetdb/puppetdb.log)",
            db.url
        );
        Some(db)
    }

    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The answer to a PQL query, or `None` when PuppetDB refused it or did not answer.
    pub fn query(&self, pql: &str) -> Option<Value> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "30", "-G"])
            .arg(format!("{}/pdb/query/v4", self.url))
            .arg("--data-urlencode")
            .arg(format!("query={pql}"))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// Stores facts for `certnames` through PuppetDB's command API (`replace facts`), as a
    /// puppetserver does after an agent run, and waits until a query sees them all. Cheaper
    /// than an agent run per node when a test only needs the nodes to be known.
    pub fn store_facts(&self, certnames: &[&str], facts: &Value, timeout: Duration) {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        for c in certnames {
            let payload = serde_json::json!({
                "certname": c, "environment": "production", "values": facts,
                "producer_timestamp": now, "producer": "kick-e2e",
            });
            let out = Command::new("curl")
                .args(["-sf", "--max-time", "30", "-X", "POST"])
                .args(["-H", "Content-Type: application/json"])
                .arg(format!(
                    "{}/pdb/cmd/v1?command=replace_facts&version=5&certname={c}",
                    self.url
                ))
                .arg("--data-binary")
                .arg(payload.to_string())
                .output()
                .expect("run curl");
            assert!(
                out.status.success(),
                "PuppetDB refused the facts of {c}: {out:?}"
            );
        }
        let list = certnames
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(",");
        let pql = format!("nodes[certname] {{ certname in [{list}] }}");
        let t0 = Instant::now();
        loop {
            let seen = self.query(&pql).and_then(|v| v.as_array().map(Vec::len));
            if seen == Some(certnames.len()) {
                return;
            }
            assert!(
                t0.elapsed() < timeout,
                "PuppetDB shows {seen:?} of {certnames:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str) -> Option<Value> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5"])
            .arg(format!("{}{path}", self.url))
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Waits until each of `certnames` has a report in PuppetDB stored at or after `since`
    /// (an RFC 3339 UTC time), since PuppetDB stores commands asynchronously (tens of ms).
    /// Panics after `timeout` naming the nodes still missing.
    pub fn wait_for_reports(&self, certnames: &[&str], since: &str, timeout: Duration) {
        let list = certnames
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(",");
        let pql = format!(
            "nodes[certname] {{ certname in [{list}] and report_timestamp >= \"{since}\" }}"
        );
        let t0 = Instant::now();
        loop {
            let seen = self.query(&pql).and_then(|v| v.as_array().map(Vec::len));
            if seen == Some(certnames.len()) {
                return;
            }
            assert!(
                t0.elapsed() < timeout,
                "PuppetDB at {} has reports since {since} for {seen:?} of {certnames:?} after {timeout:?}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
