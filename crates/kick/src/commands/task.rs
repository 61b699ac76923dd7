//! `kick task run`.

use orchestrator_client::Settings;
use orchestrator_types::TaskRequest;
use serde_json::{Map, Value};

use crate::cli::TaskRunArgs;
use crate::context::Context;
use crate::error::Error;

/// The task request for `kick task run`, without its scope (also what
/// `kick schedule add task` schedules).
pub fn request(
    args: &TaskRunArgs,
    params: Map<String, Value>,
    userdata: Option<Map<String, Value>>,
    settings: &Settings,
) -> TaskRequest {
    TaskRequest {
        environment: settings.environment.clone(),
        scope: Default::default(),
        task: args.task.clone(),
        params,
        description: args.job.run.description.clone(),
        noop: args.noop.then_some(true),
        timeout: args.job.run.timeout,
        userdata,
    }
}

/// Runs `kick task run`.
pub async fn run(ctx: &mut Context, mut args: TaskRunArgs) -> Result<u8, Error> {
    crate::params::check_stdin(
        args.job.target.nodes.as_deref(),
        args.params_json.as_deref(),
    )?;
    crate::target::read_stdin_nodes(&mut args.job.target)?;
    let params = crate::params::parse(&args.params, args.params_json.as_deref())?;
    if args.job.target.nodes_from.is_none() {
        crate::target::scope(&args.job.target)?;
    }
    super::start(ctx, &args.job, "task run", |userdata, settings| {
        request(&args, params, userdata, settings)
    })
    .await
}
