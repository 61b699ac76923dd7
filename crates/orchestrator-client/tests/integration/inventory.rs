//! PE's Node Inventory API (`/inventory/v1`) through the client, against
//! the real local orchestrator: create, query (POST and GET), duplicates,
//! secrets only for a token allowed to see them, delete; and a
//! create-connection whose outcome is unknown is not sent twice.

use kick_orchestrator::{Config, TokenSpec};
use orchestrator_client::types::connection::kind;
use orchestrator_client::types::{ConnectionsQuery, CreateConnection, Duplicates};
use orchestrator_client::{Client, Error};
use serde_json::json;

use crate::support::{Action, RawServer, TOKEN, settings, write_token};

const PASSWORD: &str = "client-test-password";

/// The orchestrator on 127.0.0.1 and two clients: one with the plain
/// token, one with a token that may view secrets.
async fn start(dir: &std::path::Path) -> (Client, Client, tokio::sync::oneshot::Sender<()>) {
    let mut viewer = TokenSpec::new("viewer-token");
    viewer.view_sensitive = true;
    let config = Config::builder()
        .token(TOKEN)
        .token_spec(viewer)
        .state_dir(dir.join("state"))
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kick_orchestrator::serve(listener, config, async move {
        let _ = rx.await;
    }));
    let client = |token: &str, file: &str| {
        let sub = dir.join(file);
        std::fs::create_dir_all(&sub).unwrap();
        let mut s = settings(&format!("{url}/orchestrator/v1"));
        s.token_file = Some(write_token(&sub, token));
        Client::new(&s).unwrap().0
    };
    (client(TOKEN, "a"), client("viewer-token", "b"), tx)
}

fn entry(certnames: &[&str]) -> CreateConnection {
    CreateConnection {
        certnames: certnames.iter().map(|c| c.to_string()).collect(),
        kind: "ssh".into(),
        parameters: json!({"user": "deploy", "port": 2222})
            .as_object()
            .unwrap()
            .clone(),
        sensitive_parameters: json!({"password": PASSWORD}).as_object().unwrap().clone(),
        duplicates: None,
    }
}

#[tokio::test]
async fn connection_entries_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (client, viewer, _stop) = start(dir.path()).await;
    let id = client
        .create_connection(&entry(&["web1", "web2"]))
        .await
        .unwrap()
        .connection_id;

    let all = client
        .connections(&ConnectionsQuery::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    let c = &all.items[0];
    assert_eq!(c.connection_id, id);
    assert_eq!(
        c.certnames.as_deref(),
        Some(&["web1".to_owned(), "web2".to_owned()][..])
    );
    assert_eq!(c.kind.as_deref(), Some("ssh"));
    assert_eq!(c.parameters.as_ref().unwrap()["port"], 2222);
    assert!(c.sensitive_parameters.is_none());
    assert_eq!(
        client.connections_get(Some("web2"), false).await.unwrap(),
        all
    );
    assert!(
        client
            .connections_get(Some("nope"), false)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Secrets: only when asked for, and only for the allowed token.
    let q = ConnectionsQuery {
        certnames: Some(vec!["web1".into()]),
        sensitive: Some(true),
        extract: Some(vec!["sensitive_parameters".into()]),
    };
    let shown = viewer.connections(&q).await.unwrap();
    assert_eq!(
        shown.items[0].sensitive_parameters.as_ref().unwrap()["password"],
        PASSWORD
    );
    assert!(shown.items[0].certnames.is_none(), "extract");
    let hidden = client.connections(&q).await.unwrap();
    assert!(hidden.items[0].sensitive_parameters.is_none());
    let got = viewer.connections_get(None, true).await.unwrap();
    assert_eq!(
        got.items[0].sensitive_parameters.as_ref().unwrap()["password"],
        PASSWORD
    );

    // A certname already in an entry: PE's 409, unless replace.
    let err = client
        .create_connection(&entry(&["web2"]))
        .await
        .unwrap_err();
    let Error::Api { status, error, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        (*status, error.kind.as_str()),
        (409, kind::DUPLICATE_CERTNAMES)
    );
    let mut replace = entry(&["web2"]);
    replace.duplicates = Some(Duplicates::Replace);
    client.create_connection(&replace).await.unwrap();

    client
        .delete_connection(&["web1".into(), "web2".into()])
        .await
        .unwrap();
    assert!(
        client
            .connections(&ConnectionsQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Validation errors come back as the API's.
    let mut bad = entry(&["x"]);
    bad.kind = "winrm".into();
    let err = client
        .create_connection(&bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("WinRM is not supported"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

#[tokio::test]
async fn a_create_whose_outcome_is_unknown_is_not_sent_again() {
    let server = RawServer::start(|_, _| Action::Drop).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&server.url);
    s.token_file = Some(write_token(dir.path(), TOKEN));
    let (client, _) = Client::new(&s).unwrap();
    let err = client
        .create_connection(&entry(&["web1"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConnectionUncertain { .. }), "{err:?}");
    assert!(
        err.to_string().contains("kick inventory list web1"),
        "{err}"
    );
    assert_eq!(
        server.count("POST", "/inventory/v1/command/create-connection"),
        1
    );
    // Reads and deletes are retried (three attempts here).
    let _ = client
        .delete_connection(&["web1".into()])
        .await
        .unwrap_err();
    assert_eq!(
        server.count("POST", "/inventory/v1/command/delete-connection"),
        3
    );
}
