//! `kick inventory add|remove|list` against the in-process orchestrator's
//! Node Inventory API: secrets from a file or standard input only, the
//! table and JSON listings, and who sees secrets.

use std::path::PathBuf;

use kick_orchestrator::TokenSpec;
use serde_json::json;

use crate::harness::{Emu, Run, kick, write_private};

const PASSWORD: &str = "kick-cli-pw-7Hq";
const SUDO: &str = "kick-cli-sudo-2Wz";

fn key_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../orchestrator/tests/fixtures/ssh/id_ed25519")
}

/// `kick inventory add PARTS... --private-key <the fixture key>`.
async fn add_key(emu: &Emu, parts: &[&str]) -> Run {
    let key = key_file().display().to_string();
    let mut v = vec!["inventory", "add"];
    v.extend(parts);
    v.extend(["--private-key", key.as_str()]);
    emu.kick(&v).await
}

/// The orchestrator with a second token, `viewer`, that may see secrets;
/// its token file.
async fn start() -> (Emu, PathBuf) {
    let emu = Emu::start_with(Vec::new(), |b| {
        let mut viewer = TokenSpec::new("viewer-token");
        viewer.view_sensitive = true;
        b.token_spec(viewer)
    })
    .await;
    let file = emu.dir.path().join("viewer-token");
    write_private(&file, "viewer-token\n");
    (emu, file)
}

/// kick in-process as the viewer token.
async fn as_viewer(emu: &Emu, viewer: &std::path::Path, parts: &[&str]) -> Run {
    let mut v: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
    v.extend([
        "--service-url".into(),
        emu.url.clone(),
        "--token-file".into(),
        viewer.display().to_string(),
    ]);
    kick(&v).await
}

/// The built binary with `stdin` piped in.
async fn with_stdin(emu: &Emu, parts: &[&str], stdin: &str) -> Run {
    let (code, stdout, stderr) = crate::agent_flags::with_stdin(emu, parts, stdin).await;
    Run {
        code,
        stdout,
        stderr,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_are_added_listed_replaced_and_removed() {
    let (emu, viewer) = start().await;
    let r = add_key(
        &emu,
        &[
            "web1.example",
            "web2.example",
            "--user",
            "deploy",
            "--run-as",
            "root",
            "--port",
            "2222",
            "--tmpdir",
            "/var/tmp",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("Added web1.example, web2.example (connection "),
        "{}",
        r.stdout
    );
    let r = emu.kick(&["inventory", "list"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[0].starts_with("NODE") && lines[0].contains("HOST-KEY-CHECK"));
    assert!(
        lines[1].starts_with("web1.example  deploy  web1.example:2222  root    default"),
        "{}",
        r.stdout
    );
    // JSON: the API's answer as it came, no secrets unless asked for.
    let v = emu.kick(&["inventory", "list", "--json"]).await.json();
    let item = &v["items"][0];
    assert_eq!(item["certnames"], json!(["web1.example", "web2.example"]));
    assert_eq!(
        item["parameters"],
        json!({"user": "deploy", "run-as": "root", "port": 2222, "tmpdir": "/var/tmp"})
    );
    assert!(item.get("sensitive_parameters").is_none(), "{v}");

    // The same node again: the API's 409 says what to do.
    let r = add_key(&emu, &["web2.example", "--user", "u"]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("duplicate-certnames") && r.stderr.contains("replace"),
        "{}",
        r.stderr
    );
    let r = add_key(
        &emu,
        &[
            "web2.example",
            "--user",
            "u",
            "--replace",
            "--no-host-key-check",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.json()["connection_id"].is_string());
    let r = as_viewer(
        &emu,
        &viewer,
        &[
            "inventory",
            "list",
            "web2.example",
            "--sensitive",
            "--format",
            "json",
        ],
    )
    .await;
    let item = &r.json()["items"][0];
    assert_eq!(
        item["parameters"],
        json!({"user": "u", "host-key-check": false})
    );
    assert_eq!(
        item["sensitive_parameters"]["private-key-content"],
        std::fs::read_to_string(key_file()).unwrap()
    );

    let r = emu
        .kick(&["inventory", "remove", "web1.example", "web2.example"])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "Removed the connection entries of web1.example, web2.example.\n"
    );
    let r = emu.kick(&["inventory", "list", "--format", "jsonl"]).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    // The PCP listing is still `kick inventory [NODE...]`.
    let r = emu.kick(&["inventory", "ghost", "--format", "json"]).await;
    assert_eq!(r.json()["items"][0]["connected"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_come_from_stdin_and_only_the_allowed_token_sees_them() {
    let (emu, viewer) = start().await;
    let r = with_stdin(
        &emu,
        &[
            "inventory",
            "add",
            "db1.example",
            "--user",
            "admin",
            "--run-as",
            "root",
            "--password-stdin",
            "--sudo-password-stdin",
        ],
        &format!("{PASSWORD}\n{SUDO}\n"),
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains(PASSWORD) && !r.stderr.contains(PASSWORD));
    let r = with_stdin(
        &emu,
        &[
            "inventory",
            "add",
            "db2.example",
            "--user",
            "admin",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\r\n"),
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");

    let r = as_viewer(
        &emu,
        &viewer,
        &["inventory", "list", "--sensitive", "--json"],
    )
    .await;
    let v = r.json();
    assert_eq!(
        v["items"][0]["sensitive_parameters"],
        json!({"password": PASSWORD, "sudo-password": SUDO})
    );
    assert_eq!(
        v["items"][1]["sensitive_parameters"],
        json!({"password": PASSWORD})
    );
    // The table names the secrets, never shows them.
    let r = as_viewer(&emu, &viewer, &["inventory", "list", "--sensitive"]).await;
    assert!(r.stdout.contains("password, sudo-password"), "{}", r.stdout);
    assert!(!r.stdout.contains(PASSWORD), "{}", r.stdout);
    // A token without the permission: nothing secret, and a note why.
    let r = emu
        .kick(&["inventory", "list", "--sensitive", "--json"])
        .await;
    assert!(!r.stdout.contains(PASSWORD), "{}", r.stdout);
    let r = emu.kick(&["inventory", "list", "--sensitive"]).await;
    assert!(r.stdout.contains("(not shown)"), "{}", r.stdout);
    assert!(r.stderr.contains("permission"), "{}", r.stderr);

    // Standard input missing a line: refused before anything is sent.
    let r = with_stdin(
        &emu,
        &[
            "inventory",
            "add",
            "db3.example",
            "--user",
            "admin",
            "--password-stdin",
            "--sudo-password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    )
    .await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no sudo password"), "{}", r.stderr);
    assert!(!r.stderr.contains(PASSWORD));
    let v = emu
        .kick(&["inventory", "list", "db3.example", "--json"])
        .await
        .json();
    assert_eq!(v["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_never_taken_from_arguments() {
    let (emu, _) = start().await;
    // There is no --password: a secret on the command line shows in `ps`.
    let r = emu
        .kick(&[
            "inventory",
            "add",
            "n1",
            "--user",
            "u",
            "--password",
            PASSWORD,
        ])
        .await;
    assert_eq!(r.code, 1, "{r:?}");
    // One way to log in is required (bolt-server's rule).
    let r = emu.kick(&["inventory", "add", "n1", "--user", "u"]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--private-key"), "{}", r.stderr);
    let r = add_key(&emu, &["n1", "n2", "--user", "u", "--hostname", "h"]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("--hostname names one address"),
        "{}",
        r.stderr
    );
    // The orchestrator's validation comes back as it said it.
    let bad = emu.dir.path().join("not-a-key");
    std::fs::write(&bad, "not a key").unwrap();
    let r = emu
        .kick(&[
            "inventory",
            "add",
            "n1",
            "--user",
            "u",
            "--private-key",
            &bad.display().to_string(),
        ])
        .await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a private key"), "{}", r.stderr);
}
