//! HTTPS with the generated CA: clients pin it as `cacert`; without it they refuse.

use std::time::Duration;

use kick_orchestrator::Tls;
use serde_json::Value;

use crate::common::{TOKEN, config};

#[tokio::test]
async fn self_signed_ca_is_written_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("state/ca.pem");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = config(1)
        .tls(Tls::SelfSigned {
            write_ca_to: ca.clone(),
        })
        .build();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kick_orchestrator::serve_tls(listener, cfg, async move {
        let _ = rx.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ca.is_file() {
        assert!(tokio::time::Instant::now() < deadline, "CA not written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pem = std::fs::read(&ca).unwrap();
    let pinned = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{port}/orchestrator/v1/jobs");
        let mut r = None;
        for _ in 0..50 {
            match pinned
                .get(&url)
                .header("X-Authentication", TOKEN)
                .send()
                .await
            {
                Ok(resp) => {
                    r = Some(resp);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let r = r.expect("HTTPS answer with the pinned CA");
        assert_eq!(r.status(), 200);
        let b: Value = r.json().await.unwrap();
        assert!(b["items"].is_array());
    }
    let (_, created) = {
        let r = pinned
            .post(format!(
                "https://127.0.0.1:{port}/orchestrator/v1/command/task"
            ))
            .header("X-Authentication", TOKEN)
            .json(
                &serde_json::json!({"task": "fixture::trivial", "params": {},
                "scope": {"nodes": ["node-0000.example"]}}),
            )
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert!(
        created["job"]["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("https://127.0.0.1:{port}/")),
        "{created}"
    );
    let unpinned = reqwest::Client::new();
    assert!(
        unpinned
            .get(format!("https://127.0.0.1:{port}/orchestrator/v1/jobs"))
            .send()
            .await
            .is_err(),
        "verification is on: an unknown CA is refused"
    );
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}
