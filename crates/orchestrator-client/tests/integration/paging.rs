//! The nodes stream pages lazily and yields every node exactly once.

use std::collections::HashSet;

use futures::StreamExt;
use orchestrator_client::{Client, Error};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::settings;

const NODES_PATH: &str = "/orchestrator/v1/jobs/7/nodes";

/// Serves `total` nodes honouring `limit` and `offset`, like PE.
struct Nodes {
    total: u64,
    send_total: bool,
}

impl Respond for Nodes {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        let limit: u64 = q["limit"].parse().unwrap();
        let offset: u64 = q["offset"].parse().unwrap();
        assert_eq!(q.get("order_by").map(String::as_str), Some("name"));
        let items: Vec<_> = (offset..(offset + limit).min(self.total))
            .map(|i| {
                serde_json::json!({
                    "name": format!("node{i:05}.example"),
                    "state": "finished",
                    "duration": 1.5,
                    "result": {"_output": "ok"},
                    "details": {}
                })
            })
            .collect();
        let mut pagination = serde_json::json!({"limit": limit, "offset": offset});
        if self.send_total {
            pagination["total"] = self.total.into();
        }
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "items": items,
            "next-events": {"id": "https://pe/jobs/7/events?start=9", "event": "9"},
            "pagination": pagination,
        }))
    }
}

async fn collect(server: &MockServer, page: u64) -> Vec<String> {
    let (client, _) = Client::new(&settings(&server.uri())).unwrap();
    let mut stream = client.nodes("7", page);
    let mut names = Vec::new();
    while let Some(node) = stream.next().await {
        names.push(node.unwrap().name);
    }
    names
}

async fn pages_fetched(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn all_2500_nodes_once_each_with_total() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(NODES_PATH))
        .respond_with(Nodes {
            total: 2500,
            send_total: true,
        })
        .mount(&server)
        .await;
    let names = collect(&server, 1000).await;
    assert_eq!(names.len(), 2500);
    let unique: HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), 2500);
    assert_eq!(names[0], "node00000.example");
    assert_eq!(names[2499], "node02499.example");
    // 1000 + 1000 + 500: the short page ends it, no empty extra request.
    assert_eq!(pages_fetched(&server).await, 3);
}

#[tokio::test]
async fn without_total_an_exact_multiple_ends_on_an_empty_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(NODES_PATH))
        .respond_with(Nodes {
            total: 2500,
            send_total: false,
        })
        .mount(&server)
        .await;
    let names = collect(&server, 500).await;
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), 2500);
    assert_eq!(names.len(), 2500);
    assert_eq!(pages_fetched(&server).await, 6);
}

#[tokio::test]
async fn total_stops_paging_at_an_exact_multiple() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(NODES_PATH))
        .respond_with(Nodes {
            total: 2500,
            send_total: true,
        })
        .mount(&server)
        .await;
    assert_eq!(collect(&server, 500).await.len(), 2500);
    assert_eq!(pages_fetched(&server).await, 5);
}

#[tokio::test]
async fn a_server_ignoring_offset_is_an_error_not_a_loop() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(NODES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "items": [{"name": "a", "state": "finished"}, {"name": "b", "state": "finished"}],
            "pagination": {"limit": 2, "offset": 0, "total": 10}
        })))
        .mount(&server)
        .await;
    let (client, _) = Client::new(&settings(&server.uri())).unwrap();
    let results: Vec<_> = client.nodes("7", 2).collect().await;
    assert_eq!(results.len(), 3);
    assert!(
        matches!(results[2], Err(Error::BadResponse { .. })),
        "{:?}",
        results[2]
    );
}

#[tokio::test]
async fn an_error_mid_way_ends_the_stream_after_reporting_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orchestrator/v1/jobs/8/nodes"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "kind": "puppetlabs.orchestrator/unknown-job", "msg": "No job 8"
        })))
        .mount(&server)
        .await;
    let (client, _) = Client::new(&settings(&server.uri())).unwrap();
    let results: Vec<_> = client.nodes("8", 100).collect().await;
    assert_eq!(results.len(), 1);
    assert!(results[0].is_err());
}

/// Like [`Nodes`] but never sends more than 100 a page, whatever was asked.
struct CappedNodes;

impl Respond for CappedNodes {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        let offset: u64 = q["offset"].parse().unwrap();
        let total = 2500u64;
        let items: Vec<_> = (offset..(offset + 100).min(total))
            .map(|i| serde_json::json!({"name": format!("n{i:05}"), "state": "finished"}))
            .collect();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "items": items,
            "pagination": {"limit": 100, "offset": offset, "total": total},
        }))
    }
}

#[tokio::test]
async fn a_server_capping_the_page_size_is_paged_by_its_total() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(NODES_PATH))
        .respond_with(CappedNodes)
        .mount(&server)
        .await;
    let names = collect(&server, 1000).await;
    assert_eq!(names.len(), 2500);
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), 2500);
    assert_eq!(pages_fetched(&server).await, 25);
}
