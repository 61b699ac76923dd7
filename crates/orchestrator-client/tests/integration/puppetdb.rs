//! The PuppetDB client against the real PuppetDB of `tests/scripts/puppetdb-up.sh`
//! (`KICK_TEST_PUPPETDB_URL`, plain HTTP on loopback; `KICK_TEST_PUPPETDB_TLS_URL` for its TLS port).
//! Each test stores its own nodes through PuppetDB's command API (`replace facts`, under a
//! unique fact value) and deactivates them at the end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use orchestrator_client::puppetdb::{PuppetDb, PuppetDbError, PuppetDbSettings};
use serde_json::json;

/// `KICK_TEST_PUPPETDB_URL`, or `None` (with a note) when PuppetDB is not part of this run.
pub fn puppetdb_url() -> Option<String> {
    let required = std::env::var("KICK_REQUIRE_STACK").is_ok_and(|v| v == "1");
    match std::env::var("KICK_TEST_PUPPETDB_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                !required,
                "KICK_REQUIRE_STACK=1 but KICK_TEST_PUPPETDB_URL is not set: run tests/scripts/puppetdb-up.sh and export its KICK_TEST_PUPPETDB_URL line (make test does)"
            );
            eprintln!("note: skipping PuppetDB test: KICK_TEST_PUPPETDB_URL is not set");
            None
        }
    }
}

pub fn settings(urls: &[&str]) -> PuppetDbSettings {
    PuppetDbSettings {
        server_urls: urls.iter().map(|u| (*u).to_owned()).collect(),
        cacert: None,
        cert: None,
        key: None,
        token_file: None,
        insecure: false,
        request_timeout: Duration::from_secs(20),
        page_size: 10,
    }
}

/// Nodes stored in PuppetDB for one test: `<prefix>-NNN`, fact `kick_test = <prefix>`.
pub struct TestNodes {
    pub url: String,
    pub prefix: String,
    pub names: Vec<String>,
    http: reqwest::Client,
}

impl TestNodes {
    pub async fn store(url: &str, count: usize) -> TestNodes {
        let prefix = format!(
            "pdbtest-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let names: Vec<String> = (0..count).map(|i| format!("{prefix}-{i:03}")).collect();
        let nodes = TestNodes {
            url: url.trim_end_matches('/').to_owned(),
            prefix,
            names,
            http: reqwest::Client::new(),
        };
        // Reverse order, so that sorted answers prove the sorting.
        for name in nodes.names.iter().rev() {
            nodes
                .command(
                    "replace_facts",
                    5,
                    name,
                    json!({
                        "certname": name,
                        "environment": "production",
                        "values": {"kick_test": nodes.prefix, "role": "web"},
                        "producer_timestamp": now(),
                        "producer": "kick-tests",
                    }),
                )
                .await;
        }
        nodes.wait_for(count).await;
        nodes
    }

    pub fn pql(&self) -> String {
        format!(
            "inventory[certname] {{ facts.kick_test = \"{}\" }}",
            self.prefix
        )
    }

    async fn command(
        &self,
        command: &str,
        version: u32,
        certname: &str,
        payload: serde_json::Value,
    ) {
        let resp = self
            .http
            .post(format!("{}/pdb/cmd/v1", self.url))
            .query(&[
                ("command", command),
                ("version", &version.to_string()),
                ("certname", certname),
            ])
            .json(&payload)
            .send()
            .await
            .expect("PuppetDB command API");
        assert!(resp.status().is_success(), "{command}: {}", resp.status());
    }

    /// PuppetDB stores commands asynchronously.
    async fn wait_for(&self, count: usize) {
        let t0 = Instant::now();
        loop {
            let rows: Vec<serde_json::Value> = self
                .http
                .get(format!("{}/pdb/query/v4", self.url))
                .query(&[("query", self.pql())])
                .send()
                .await
                .expect("query")
                .json()
                .await
                .expect("json");
            if rows.len() == count {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "PuppetDB shows {} of {count} stored nodes after 60 s",
                rows.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn deactivate(self) {
        for name in &self.names {
            self.command(
                "deactivate_node",
                3,
                name,
                json!({"certname": name, "producer_timestamp": now()}),
            )
            .await;
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[tokio::test]
async fn pql_answers_are_paged_sorted_and_deduplicated() {
    let Some(url) = puppetdb_url() else { return };
    let nodes = TestNodes::store(&url, 25).await;
    // Page size 10: three pages (10, 10, 5).
    let (db, warnings) = PuppetDb::new(&settings(&[&url])).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let got = db.certnames(&nodes.pql()).await.unwrap();
    assert_eq!(got, nodes.names);
    // A page size that divides the answer exactly: five pages, each told by its extra row
    // whether another follows, none lost or repeated.
    let mut s = settings(&[&url]);
    s.page_size = 5;
    let (db5, _) = PuppetDb::new(&s).unwrap();
    assert_eq!(db5.certnames(&nodes.pql()).await.unwrap(), nodes.names);
    // One row per fact: many rows per node, one certname each in the answer.
    let facts = format!("facts[certname] {{ certname ~ \"^{}-\" }}", nodes.prefix);
    assert_eq!(db.certnames(&facts).await.unwrap(), nodes.names);
    // A query with its own paging goes as it is.
    let own = format!(
        "inventory[certname] {{ facts.kick_test = \"{}\" order by certname desc limit 3 }}",
        nodes.prefix
    );
    let got = db.certnames(&own).await.unwrap();
    assert_eq!(got, nodes.names[22..].to_vec());
    // The AST form of the same query.
    let ast = json!([
        "from",
        "inventory",
        [
            "extract",
            ["certname"],
            ["=", "facts.kick_test", nodes.prefix]
        ]
    ]);
    assert_eq!(db.certnames(&ast.to_string()).await.unwrap(), nodes.names);
    // Node reports: none were sent for these fact-only nodes; unknown names are absent.
    let mut ask = nodes.names[..2].to_vec();
    ask.push("never-seen.example".into());
    let reports = db.node_reports(&ask).await.unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].certname, nodes.names[0]);
    assert_eq!(reports[0].report_timestamp, None);
    nodes.deactivate().await;
}

#[tokio::test]
async fn refusals_and_outages_say_what_to_do() {
    let Some(url) = puppetdb_url() else { return };
    let (db, _) = PuppetDb::new(&settings(&[&url])).unwrap();
    let e = db
        .certnames("nodes[certname] { certname ~~ }")
        .await
        .unwrap_err();
    assert!(
        matches!(e, PuppetDbError::Query { status: 400, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("PQL parse error"), "{e}");
    assert!(e.to_string().contains("check the PQL"), "{e}");
    let e = db
        .certnames("facts[value] { name = \"kernel\" }")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("rows without a certname"), "{e}");

    // A dead first server is skipped for the next one.
    let dead = dead_url().await;
    let nodes = TestNodes::store(&url, 3).await;
    let (db, _) = PuppetDb::new(&settings(&[&dead, &url])).unwrap();
    assert_eq!(db.certnames(&nodes.pql()).await.unwrap(), nodes.names);
    // None answering: one error naming them all.
    let (db, _) = PuppetDb::new(&settings(&[&dead])).unwrap();
    let e = db.certnames(&nodes.pql()).await.unwrap_err();
    assert!(matches!(e, PuppetDbError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains(&dead), "{e}");
    assert!(e.to_string().contains("--puppetdb-url"), "{e}");
    nodes.deactivate().await;
}

/// PuppetDB's TLS port with the Puppet CA and a client certificate from it, as the
/// puppetserver's terminus uses it.
#[tokio::test]
async fn tls_port_with_the_puppet_ca_and_a_client_certificate() {
    let Some(url) = puppetdb_url() else { return };
    let Some(tls) = std::env::var("KICK_TEST_PUPPETDB_TLS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("note: skipping PuppetDB TLS test: KICK_TEST_PUPPETDB_TLS_URL is not set");
        return;
    };
    let ssl = PathBuf::from("/var/lib/puppet/ssl");
    let nodes = TestNodes::store(&url, 2).await;
    let mut s = settings(&[&tls]);
    s.cacert = Some(ssl.join("certs/ca.pem"));
    s.cert = Some(ssl.join("certs/localhost.pem"));
    s.key = Some(ssl.join("private_keys/localhost.pem"));
    let (db, _) = PuppetDb::new(&s).unwrap();
    assert_eq!(db.certnames(&nodes.pql()).await.unwrap(), nodes.names);
    // Another CA: verification fails, and the error says which setting to check.
    let dir = tempfile::tempdir().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["other".into()]).unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, other.cert.pem()).unwrap();
    s.cacert = Some(other_ca);
    let (db, _) = PuppetDb::new(&s).unwrap();
    let e = db.certnames(&nodes.pql()).await.unwrap_err();
    assert!(matches!(e, PuppetDbError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("cacert"), "{e}");
    nodes.deactivate().await;
}

async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}
