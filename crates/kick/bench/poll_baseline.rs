//! The baseline of the completion-latency benchmark: what the Ruby
//! `orchestrator_client` (and Bolt's PCP transport, which uses it) does to run
//! a task. `Job#wait` GETs `jobs/:id` at once and then once a second until
//! the state is stopped, finished or failed, then reads the report; `run_task`
//! then GETs the job's nodes once. Same HTTP client, connection reuse and
//! start-up as kick, so the benchmark compares waiting strategies only.
//!
//! `poll-baseline SERVICE_URL TOKEN_FILE TASK_REQUEST_JSON`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use orchestrator_client::{Client, NodesQuery, Overrides, Settings};
use orchestrator_types::TaskRequest;

/// The Ruby client's `job-poll-interval` default.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

async fn run(url: String, token_file: PathBuf, request: &str) -> Result<String, String> {
    let req: TaskRequest =
        serde_json::from_str(request).map_err(|e| format!("bad task request: {e}"))?;
    let (settings, _) = Settings::load(Overrides {
        service_url: Some(url),
        token_file: Some(token_file),
        ..Overrides::default()
    })
    .map_err(|e| e.to_string())?;
    let (client, _) = Client::new(&settings).map_err(|e| e.to_string())?;
    let job = client.run_task(req).await.map_err(|e| e.to_string())?;
    let id = job.name;
    loop {
        let details = client.job(&id).await.map_err(|e| e.to_string())?;
        if details.state.is_terminal() {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    client.report(&id).await.map_err(|e| e.to_string())?;
    let nodes = client
        .nodes_page(&id, &NodesQuery::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("job {id}: {} nodes", nodes.items.len()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token_file, request] = args.as_slice() else {
        eprintln!("usage: poll-baseline SERVICE_URL TOKEN_FILE TASK_REQUEST_JSON");
        return ExitCode::from(1);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(url.clone(), token_file.into(), request)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
