//! The client against the real local orchestrator (the kick-orchestrator crate) over
//! HTTPS with its self-signed CA pinned: submit, follow, page, list.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kick_orchestrator::{Config, NodeSpec, Tls};
use orchestrator_client::types::{JobState, Scope, TaskRequest};
use orchestrator_client::{Client, JobsQuery, MARKER_KEY, Settings};

use crate::support::{TOKEN, fast_retry, write_token};

/// A module `demo` with a task `hello` printing JSON that names the node.
fn write_module(dir: &Path) {
    let tasks = dir.join("demo/tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    let script = tasks.join("hello.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '{\"greeting\": \"hello from %s\"}\\n' \"$NODE_NAME\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        tasks.join("hello.json"),
        r#"{"description": "Say hello", "parameters": {}}"#,
    )
    .unwrap();
}

struct Orchestrator {
    client: Client,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Orchestrator {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn start(nodes: usize, token_in_file: &str) -> Orchestrator {
    let dir = tempfile::tempdir().unwrap();
    write_module(&dir.path().join("modules"));
    let ca = dir.path().join("ca.pem");
    let mut builder = Config::builder()
        .token(TOKEN)
        .modulepath(dir.path().join("modules"))
        .tls(Tls::SelfSigned {
            write_ca_to: ca.clone(),
        });
    for i in 0..nodes {
        let name = format!("node{i}.example");
        let mut spec = NodeSpec::new(&name);
        spec.env.insert("NODE_NAME".into(), name);
        builder = builder.node(spec);
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kick_orchestrator::serve_tls(
        listener,
        builder.build(),
        async move {
            let _ = rx.await;
        },
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ca.exists() {
        assert!(Instant::now() < deadline, "orchestrator wrote no CA");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settings = Settings {
        service_url: format!("https://{addr}"),
        cacert: Some(ca),
        token_file: Some(write_token(dir.path(), &format!("{token_in_file}\n"))),
        environment: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
        retry: fast_retry(3),
    };
    let (client, warnings) = Client::new(&settings).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    Orchestrator {
        client,
        _dir: dir,
        stop: Some(tx),
    }
}

#[tokio::test]
async fn task_round_trip_over_pinned_tls() {
    let emu = start(5, TOKEN).await;
    let client = &emu.client;
    client.root().await.unwrap();

    let tasks = client.tasks(None).await.unwrap();
    assert!(
        tasks.items.iter().any(|t| t.name == "demo::hello"),
        "{tasks:?}"
    );
    let details = client
        .task("demo::hello", Some("production"))
        .await
        .unwrap();
    assert_eq!(details.name, "demo::hello");

    let job_ref = client
        .run_task(TaskRequest {
            environment: Some("production".into()),
            scope: Scope::nodes((0..5).map(|i| format!("node{i}.example"))),
            task: "demo::hello".into(),
            description: Some("client test".into()),
            ..TaskRequest::default()
        })
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let job = client.job(&job_ref.name).await.unwrap();
        if job.state.is_terminal() {
            break job;
        }
        assert!(Instant::now() < deadline, "job did not finish: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job.state, JobState::Finished, "{job:?}");

    // The marker is where the look-up after a lost response searches.
    let listed = client
        .jobs(&JobsQuery {
            limit: Some(50),
            order_by: Some("timestamp".into()),
            order: Some("desc".into()),
            job_type: Some("task".into()),
            ..JobsQuery::default()
        })
        .await
        .unwrap();
    let mine = listed
        .items
        .iter()
        .find(|j| j.name == job_ref.name)
        .expect("the job is listed");
    let marker = mine
        .options
        .get("userdata")
        .or(mine.userdata.as_ref())
        .and_then(|u| u.get(MARKER_KEY))
        .and_then(|m| m.as_str())
        .expect("marker stored with the job");
    let description = mine
        .options
        .get("description")
        .and_then(|d| d.as_str())
        .or(mine.description.as_deref())
        .unwrap();
    assert_eq!(description, format!("client test [kick:{marker}]"));

    // Paging with a page smaller than the job.
    let nodes: Vec<_> = client
        .nodes(&job_ref.name, 2)
        .map(|n| n.unwrap())
        .collect()
        .await;
    let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "node0.example",
            "node1.example",
            "node2.example",
            "node3.example",
            "node4.example"
        ]
    );
    for n in &nodes {
        let result = n.result.as_ref().unwrap();
        assert_eq!(result["greeting"], format!("hello from {}", n.name));
    }

    let events = client.events(&job_ref.name, None).await.unwrap();
    assert!(
        events.items.iter().any(|e| e.event_type.ends_job()),
        "{events:?}"
    );
    let next = events.next_events.as_ref().and_then(|n| n.start()).unwrap();
    let last = events.items.iter().map(|e| e.number()).max().unwrap();
    assert_eq!(next, last + 1);
    let rest = client.events(&job_ref.name, Some(next)).await.unwrap();
    assert!(rest.items.is_empty(), "{rest:?}");

    let report = client.report(&job_ref.name).await.unwrap();
    assert_eq!(report.report.len(), 5);

    let inv = client
        .inventory_nodes(&["node1.example".into(), "ghost.example".into()])
        .await
        .unwrap();
    assert_eq!(inv.items.len(), 2);

    // Stopping a finished job is harmless (the API's stop is idempotent).
    let stopped = client.stop(&job_ref.name, false).await.unwrap();
    assert_eq!(stopped.job.name, job_ref.name);
}

#[tokio::test]
async fn wrong_token_is_an_auth_error() {
    let emu = start(1, "not-the-token").await;
    let err = emu.client.jobs(&JobsQuery::default()).await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(err.to_string().contains("puppet access login"), "{err}");
}

#[tokio::test]
async fn unknown_job_and_task_have_hints() {
    let emu = start(1, TOKEN).await;
    let err = emu.client.job("999999").await.unwrap_err();
    assert_eq!(
        err.api_kind(),
        Some("puppetlabs.orchestrator/unknown-job"),
        "{err:?}"
    );
    assert!(err.to_string().contains("kick job list"), "{err}");
    let err = emu.client.task("demo::nope", None).await.unwrap_err();
    assert_eq!(
        err.api_kind(),
        Some("puppetlabs.orchestrator/unknown-task"),
        "{err:?}"
    );
    assert!(err.to_string().contains("kick tasks list"), "{err}");
}

/// A proxy in front of `upstream` (plain HTTP) that forwards every request
/// but, for `POST /command/*`, throws the orchestrator's answer away and drops
/// the client's connection: the job is created, the response is lost.
async fn lossy_proxy(
    upstream: std::net::SocketAddr,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let counter = posts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let Some(req) = crate::http_request::read_request(&mut client).await else {
                    return;
                };
                let lost =
                    req.method == "POST" && req.target.starts_with("/orchestrator/v1/command/");
                if lost {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                // One request per upstream connection, so its end is the
                // response's end.
                let mut forwarded = req.head[..req.head.len() - 2].to_owned();
                forwarded.push_str("Connection: close\r\n\r\n");
                let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = up.write_all(forwarded.as_bytes()).await;
                let _ = up.write_all(&req.body).await;
                let mut response = Vec::new();
                let _ = up.read_to_end(&mut response).await;
                if !lost {
                    let _ = client.write_all(&response).await;
                }
            });
        }
    });
    (url, posts)
}

#[tokio::test]
async fn lost_submit_response_is_recovered_from_the_real_job_list() {
    let dir = tempfile::tempdir().unwrap();
    write_module(&dir.path().join("modules"));
    let mut spec = NodeSpec::new("node0.example");
    spec.env.insert("NODE_NAME".into(), "node0.example".into());
    let config = Config::builder()
        .token(TOKEN)
        .modulepath(dir.path().join("modules"))
        .node(spec)
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(kick_orchestrator::serve(
        listener,
        config,
        std::future::pending(),
    ));
    let (url, posts) = lossy_proxy(upstream).await;

    let mut settings = crate::support::settings(&url);
    settings.token_file = Some(write_token(dir.path(), TOKEN));
    let (client, _) = Client::new(&settings).unwrap();
    let job = client
        .run_task(TaskRequest {
            environment: Some("production".into()),
            scope: Scope::nodes(["node0.example"]),
            task: "demo::hello".into(),
            ..TaskRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(posts.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Exactly one job exists, and it is the one returned.
    let all = client.jobs(&JobsQuery::default()).await.unwrap();
    assert_eq!(all.items.len(), 1, "{all:?}");
    assert_eq!(all.items[0].name, job.name);
}
