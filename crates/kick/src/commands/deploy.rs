//! `kick deploy`: the orchestrator's `command/deploy` (`puppet job run`),
//! with the agent flags sent as PE's deploy keys of the same names.

use orchestrator_types::DeployRequest;

use super::agent::{either, tag_list};
use crate::cli::DeployArgs;
use crate::context::Context;
use crate::error::Error;

/// The environment a deploy runs in when none is configured (PE requires one).
const DEFAULT_ENVIRONMENT: &str = "production";

/// The request for the flags, without its environment (read from the
/// settings). The orchestrator's `deploy.rs` reads these keys back into
/// psick::puppet_agent parameters: the same names, mapped the other way, in
/// another program (it also serves PE's own clients).
pub fn request(args: &DeployArgs) -> Result<DeployRequest, Error> {
    let f = &args.puppet;
    let joined = |tags: &[String]| Some(tag_list(tags).join(",")).filter(|t| !t.is_empty());
    Ok(DeployRequest {
        environment: None,
        scope: crate::target::scope(&args.target)?,
        concurrency: args.concurrency,
        noop: args.noop.then_some(true),
        no_noop: args.no_noop.then_some(true),
        debug: f.debug.then_some(true),
        trace: f.trace.then_some(true),
        evaltrace: f.evaltrace.then_some(true),
        tags: joined(&f.tags),
        skip_tags: joined(&f.skip_tags),
        http_connect_timeout: f.connect_timeout,
        http_keepalive_timeout: f.http_keepalive_timeout,
        http_read_timeout: f.http_read_timeout,
        filetimeout: f.filetimeout,
        ordering: f.ordering.map(|o| o.as_str().to_owned()),
        use_cached_catalog: either(f.use_cached_catalog, f.no_use_cached_catalog),
        usecacheonfailure: either(f.usecacheonfailure, f.no_usecacheonfailure),
        enforce_environment: either(args.enforce_environment, args.no_enforce_environment),
        description: args.run.description.clone(),
        timeout: args.run.timeout,
        userdata: crate::params::userdata(&args.run.userdata)?,
    })
}

/// Runs `kick deploy`.
pub async fn run(ctx: &mut Context, mut args: DeployArgs) -> Result<u8, Error> {
    crate::target::read_stdin_nodes(&mut args.target)?;
    let mut req = request(&args)?;
    let (client, settings) = super::connect(
        &args.run.follow.conn,
        Some(&args.run.env),
        ctx.streams.err.as_mut(),
    )?;
    req.environment = Some(
        settings
            .environment
            .clone()
            .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned()),
    );
    let job = client.deploy(req).await?;
    crate::job::follow_started(ctx, &client, job, &args.run).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use serde_json::{Value, json};

    fn deploy(args: &[&str]) -> DeployArgs {
        let mut v = vec!["kick", "deploy", "--nodes", "a"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).unwrap().command {
            Command::Deploy(d) => d,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_become_pe_deploy_keys() {
        let d = deploy(&[
            "--tags",
            "ntp,ssh",
            "--skip-tags",
            "slow",
            "--debug",
            "--trace",
            "--evaltrace",
            "--http-connect-timeout",
            "5",
            "--http-keepalive-timeout",
            "4",
            "--http-read-timeout",
            "60",
            "--filetimeout",
            "15",
            "--ordering",
            "title-hash",
            "--use-cached-catalog",
            "--no-usecacheonfailure",
            "--no-enforce-environment",
            "--userdata",
            "ticket=CHG-1",
            "--noop",
        ]);
        let v = serde_json::to_value(request(&d).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"scope": {"nodes": ["a"]}, "noop": true, "tags": "ntp,ssh",
                   "skip_tags": "slow", "debug": true, "trace": true, "evaltrace": true,
                   "http_connect_timeout": 5, "http_keepalive_timeout": 4,
                   "http_read_timeout": 60, "filetimeout": 15, "ordering": "title-hash",
                   "use_cached_catalog": true, "usecacheonfailure": false,
                   "enforce_environment": false, "userdata": {"ticket": "CHG-1"}})
        );
        let v = serde_json::to_value(request(&deploy(&[])).unwrap()).unwrap();
        assert_eq!(v, json!({"scope": {"nodes": ["a"]}}));
        assert!(v.get("userdata").is_none_or(Value::is_null));
    }
}
