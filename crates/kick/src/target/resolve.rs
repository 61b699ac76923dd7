//! Turning TARGET flags into certnames (for one job, or to cut into waves): `--nodes` as given, `--query`
//! through PuppetDB (sorted by certname), `--nodes-from JOB[:OUTCOME,...]` and
//! `--nodes-from rollout:ID[:OUTCOME,...]` from the server's records of those jobs.
//!
//! Without a PuppetDB configured, a plain (single-job) `--query` still goes to the
//! orchestrator as `scope.query`, as before; a rollout needs the list and says how to
//! configure PuppetDB.

use std::io::Write;

use orchestrator_client::puppetdb::{PuppetDb, PuppetDbError, PuppetDbSettings};
use orchestrator_client::{Client, NodesQuery, Settings};
use orchestrator_types::Scope;

use crate::cli::TargetArgs;
use crate::error::Error;
use crate::outcome::{NodeReport, Outcome};

/// Outcomes `--nodes-from` and `kick job rerun` take by default.
pub const DEFAULT_RERUN: [Outcome; 4] = [
    Outcome::Failed,
    Outcome::Errored,
    Outcome::Skipped,
    Outcome::Stopped,
];

/// The jobs of the rollout with this id that the state files on this host
/// record (for `--nodes-from rollout:ID`): the rollout layer reads them.
pub type RolloutJobs<'a> = &'a dyn Fn(&str) -> Result<Vec<String>, Error>;

/// Node pages asked for when reading a job's records.
const PAGE: u64 = 1000;

/// What the target came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// These certnames, in wave order.
    Nodes(Vec<String>),
    /// A scope only the orchestrator can resolve (a node group, or a query without
    /// PuppetDB configured here).
    Scope(Scope),
}

impl Resolved {
    /// The request scope.
    pub fn scope(&self) -> Scope {
        match self {
            Resolved::Nodes(n) => Scope::nodes(n.clone()),
            Resolved::Scope(s) => s.clone(),
        }
    }
}

/// Parses `failed,changed,...` (kick's outcome names).
pub fn parse_outcomes(s: &str) -> Result<Vec<Outcome>, Error> {
    let mut out = Vec::new();
    for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let o = Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == word)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{word:?} is not an outcome; use failed, errored, skipped, stopped, changed or unchanged"
                ))
            })?;
        if !out.contains(&o) {
            out.push(o);
        }
    }
    if out.is_empty() {
        return Err(Error::Usage(
            "no outcome given; use e.g. failed,errored or changed".into(),
        ));
    }
    Ok(out)
}

/// The PuppetDB client, when `wanted` and one is configured (files, `KICK_PUPPETDB_URL`,
/// `--puppetdb-url`).
pub fn puppetdb(
    wanted: bool,
    settings: &Settings,
    url_flag: Option<&str>,
    err: &mut dyn Write,
) -> Result<Option<PuppetDb>, Error> {
    if !wanted {
        return Ok(None);
    }
    let (pdb, warnings) = PuppetDbSettings::load(settings, url_flag)?;
    for w in &warnings {
        writeln!(err, "warning: {w}")?;
    }
    let Some(pdb) = pdb else { return Ok(None) };
    let (db, warnings) = PuppetDb::new(&pdb)?;
    for w in &warnings {
        writeln!(err, "warning: {w}")?;
    }
    Ok(Some(db))
}

/// Resolves the target. `need_list`: the caller cuts waves or checks connections, so a scope
/// the orchestrator would resolve is not enough.
pub async fn resolve(
    t: &TargetArgs,
    client: &Client,
    puppetdb: Option<&PuppetDb>,
    rollout_jobs: RolloutJobs<'_>,
    need_list: bool,
) -> Result<Resolved, Error> {
    if let Some(from) = &t.nodes_from {
        return nodes_from(client, rollout_jobs, from)
            .await
            .map(Resolved::Nodes);
    }
    if t.query.is_some() {
        let scope = super::scope(t)?;
        let Some(db) = puppetdb else {
            if need_list {
                return Err(PuppetDbError::NotConfigured.into());
            }
            return Ok(Resolved::Scope(scope));
        };
        let pql = scope
            .query
            .as_ref()
            .and_then(|q| q.as_str())
            .unwrap_or_default();
        let nodes = db.certnames(pql).await?;
        if nodes.is_empty() {
            return Err(Error::Usage(format!(
                "the query matched no node in PuppetDB: {pql}"
            )));
        }
        return Ok(Resolved::Nodes(nodes));
    }
    if t.node_group.is_some() && need_list {
        return Err(Error::Usage(
            "--node-group cannot be cut into waves or checked before the run: kick does not read the classifier; select the nodes with --query (e.g. `inventory[certname] { trusted.extensions.pp_role = \"web\" }`) or --nodes".into(),
        ));
    }
    match super::scope(t)? {
        Scope {
            nodes: Some(nodes), ..
        } => Ok(Resolved::Nodes(nodes)),
        scope => Ok(Resolved::Scope(scope)),
    }
}

/// `JOB[:OUTCOME,...]` or `rollout:ID[:OUTCOME,...]`.
async fn nodes_from(
    client: &Client,
    rollout_jobs: RolloutJobs<'_>,
    spec: &str,
) -> Result<Vec<String>, Error> {
    let (jobs, outcomes) = match spec.strip_prefix("rollout:") {
        Some(rest) => {
            let (id, outcomes) = split_outcomes(rest)?;
            let jobs = rollout_jobs(id)?;
            if jobs.is_empty() {
                return Err(Error::Usage(format!(
                    "rollout {id} has started no wave yet, so it has no nodes to take"
                )));
            }
            (jobs, outcomes)
        }
        None => {
            let (job, outcomes) = split_outcomes(spec)?;
            (vec![job.to_owned()], outcomes)
        }
    };
    let mut nodes = Vec::new();
    for job in &jobs {
        nodes.extend(job_nodes(client, job, &outcomes).await?);
    }
    if nodes.is_empty() {
        let which: Vec<&str> = outcomes.iter().map(|o| o.as_str()).collect();
        return Err(Error::Usage(format!(
            "--nodes-from {spec}: no node of {} ended {}; nothing to run",
            if jobs.len() == 1 {
                "that job"
            } else {
                "those jobs"
            },
            which.join(" or ")
        )));
    }
    let mut seen = std::collections::HashSet::new();
    nodes.retain(|n| seen.insert(n.clone()));
    Ok(nodes)
}

fn split_outcomes(s: &str) -> Result<(&str, Vec<Outcome>), Error> {
    match s.split_once(':') {
        Some((id, list)) => Ok((id, parse_outcomes(list)?)),
        None => Ok((s, DEFAULT_RERUN.to_vec())),
    }
}

/// The nodes of an ended job whose outcome is one of `outcomes`, in the server's name order.
pub async fn job_nodes(
    client: &Client,
    job: &str,
    outcomes: &[Outcome],
) -> Result<Vec<String>, Error> {
    let info = client.job(job).await?;
    if !info.state.is_terminal() {
        return Err(Error::Usage(format!(
            "job {job} is still {}; its nodes' outcomes are not known yet (follow it with `kick job watch {job}`)",
            info.state.as_str()
        )));
    }
    let noop = crate::watch::JobInfo::from_job(&info).noop;
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = client
            .nodes_page(
                job,
                &NodesQuery {
                    limit: Some(PAGE),
                    offset: Some(offset),
                    order_by: Some("name".into()),
                    ..NodesQuery::default()
                },
            )
            .await?;
        let n = page.items.len() as u64;
        for node in page.items {
            let report = NodeReport::from_node_keeping(node, noop, |_| false);
            if outcomes.contains(&report.outcome) {
                out.push(report.name);
            }
        }
        if n < PAGE {
            return Ok(out);
        }
        offset += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_lists_parse_and_refuse_unknown_words() {
        assert_eq!(
            parse_outcomes("failed, changed,failed").unwrap(),
            [Outcome::Failed, Outcome::Changed]
        );
        let e = parse_outcomes("failed,broken").unwrap_err().to_string();
        assert!(e.contains("\"broken\"") && e.contains("unchanged"), "{e}");
        assert!(parse_outcomes(",").is_err());
        assert_eq!(
            split_outcomes("12").unwrap(),
            ("12", DEFAULT_RERUN.to_vec())
        );
        assert_eq!(
            split_outcomes("12:changed").unwrap(),
            ("12", vec![Outcome::Changed])
        );
    }
}
