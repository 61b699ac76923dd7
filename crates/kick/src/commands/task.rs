//! `kick task run`.

use orchestrator_client::Settings;
use orchestrator_types::{Scope, TaskRequest};
use serde_json::{Map, Value};

use crate::Context;
use crate::cli::TaskRunArgs;
use crate::error::Error;

/// The task request for `kick task run` (also what `kick schedule add
/// task` schedules).
pub fn request(
    args: &TaskRunArgs,
    scope: Scope,
    params: Map<String, Value>,
    settings: &Settings,
) -> TaskRequest {
    TaskRequest {
        environment: settings.environment.clone(),
        scope,
        task: args.task.clone(),
        params,
        description: args.run.description.clone(),
        noop: args.noop.then_some(true),
        timeout: args.run.timeout,
        userdata: None,
    }
}

/// Runs `kick task run`.
pub async fn run(ctx: &mut Context, args: TaskRunArgs) -> Result<u8, Error> {
    let params = crate::params::parse(&args.params, args.params_json.as_deref())?;
    let scope = crate::target::scope(&args.target)?;
    let (client, settings) = super::connect(&args.run.conn, &ctx.watch, ctx.streams.err.as_mut())?;
    let req = request(&args, scope, params, &settings);
    let job = client.run_task(req).await?;
    super::follow_started(ctx, &client, job, &args.run).await
}
