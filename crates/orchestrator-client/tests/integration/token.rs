//! Token file handling: whitespace, permissions, missing file, the header.

use std::os::unix::fs::PermissionsExt;

use orchestrator_client::{Client, Error, read_token_file};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{TOKEN, settings, write_token};

#[test]
fn trailing_whitespace_is_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_token(dir.path(), &format!("{TOKEN}\r\n  \n"));
    let (token, warnings) = read_token_file(&p).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(format!("{token:?}"), "Token(<redacted>)");
}

#[test]
fn readable_by_others_gives_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_token(dir.path(), TOKEN);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, warnings) = read_token_file(&p).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].0.contains("644"), "{warnings:?}");
    assert!(warnings[0].0.contains("chmod 600"), "{warnings:?}");
    assert!(!warnings[0].0.contains(TOKEN));
}

#[test]
fn missing_file_says_how_to_get_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope");
    let err = read_token_file(&p).unwrap_err();
    assert!(matches!(err, Error::TokenFile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&p.display().to_string()), "{msg}");
    assert!(msg.contains("puppet access login"), "{msg}");
    assert!(msg.contains("--token-file"), "{msg}");
    assert!(err.is_auth());
}

#[test]
fn empty_or_multi_token_files_are_rejected_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_token(dir.path(), " \n");
    let err = read_token_file(&p).unwrap_err();
    assert!(err.to_string().contains("is empty"), "{err}");
    let p = write_token(dir.path(), "tok1 tok2\n");
    let err = read_token_file(&p).unwrap_err();
    assert!(!err.to_string().contains("tok1"), "{err}");
}

#[tokio::test]
async fn token_is_sent_as_x_authentication_and_never_in_debug() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orchestrator/v1"))
        .and(header("x-authentication", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"info": {}})))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&server.uri());
    s.token_file = Some(write_token(dir.path(), &format!("{TOKEN}\n")));
    let (client, warnings) = Client::new(&s).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(!format!("{client:?}").contains(TOKEN));
    client.root().await.unwrap();
}
