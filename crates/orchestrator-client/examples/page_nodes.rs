//! Measures collecting a large job's nodes through [`Client::nodes`]: an
//! in-process server makes each page on request (N nodes, K KiB of output
//! each), the client streams them. Prints wall time and peak RSS (of the
//! whole process, server included, so an upper bound for the client).
//!
//! `cargo run --release -p orchestrator-client --example page_nodes -- [nodes] [kib] [page]`

use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::routing::get;
use futures::StreamExt;
use orchestrator_client::{Client, RetryPolicy, Settings};

#[derive(serde::Deserialize)]
struct Page {
    limit: u64,
    offset: u64,
}

async fn nodes(State((total, kib)): State<(u64, usize)>, Query(p): Query<Page>) -> String {
    let output = "x".repeat(kib * 1024);
    let items: Vec<_> = (p.offset..(p.offset + p.limit).min(total))
        .map(|i| {
            serde_json::json!({
                "name": format!("node{i:06}.example"), "state": "finished", "duration": 2.0,
                "details": {}, "result": {"_output": output},
            })
        })
        .collect();
    serde_json::json!({"items": items, "pagination": {"limit": p.limit, "offset": p.offset, "total": total}})
        .to_string()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let total = args.first().copied().unwrap_or(10_000);
    let kib = args.get(1).copied().unwrap_or(20) as usize;
    let page = args.get(2).copied().unwrap_or(500);

    let app = axum::Router::new()
        .route("/orchestrator/v1/jobs/1/nodes", get(nodes))
        .with_state((total, kib));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let settings = Settings {
        service_url: url,
        cacert: None,
        token_file: None,
        environment: None,
        insecure: false,
        request_timeout: Duration::from_secs(60),
        retry: RetryPolicy::default(),
    };
    let (client, _) = Client::new(&settings).unwrap();
    let started = Instant::now();
    let mut stream = client.nodes("1", page);
    let (mut count, mut bytes) = (0u64, 0usize);
    while let Some(node) = stream.next().await {
        let node = node.unwrap();
        count += 1;
        bytes += node
            .result
            .as_ref()
            .map_or(0, |r| r["_output"].as_str().map_or(0, str::len));
    }
    println!(
        "{count} nodes, {} MiB of output, page {page}: {:.2}s, peak RSS {} MiB",
        bytes >> 20,
        started.elapsed().as_secs_f64(),
        peak_rss_kib() >> 10
    );
}
