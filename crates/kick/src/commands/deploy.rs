//! `kick deploy`: the orchestrator's `command/deploy` (`puppet job run`).

use orchestrator_types::DeployRequest;

use crate::Context;
use crate::cli::DeployArgs;
use crate::error::Error;

/// The environment a deploy runs in when none is configured (PE requires one).
const DEFAULT_ENVIRONMENT: &str = "production";

/// Runs `kick deploy`.
pub async fn run(ctx: &mut Context, args: DeployArgs) -> Result<u8, Error> {
    let scope = crate::target::scope(&args.target)?;
    let (client, settings) = super::connect(
        &args.run.conn,
        Some(&args.run.env),
        ctx.streams.err.as_mut(),
    )?;
    let req = DeployRequest {
        environment: Some(
            settings
                .environment
                .clone()
                .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned()),
        ),
        scope,
        concurrency: args.concurrency,
        noop: args.noop.then_some(true),
        no_noop: args.no_noop.then_some(true),
        description: args.run.description.clone(),
        timeout: args.run.timeout,
        ..DeployRequest::default()
    };
    let job = client.deploy(req).await?;
    super::follow_started(ctx, &client, job, &args.run).await
}
