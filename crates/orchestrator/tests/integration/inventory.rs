//! PE's Node Inventory API v1 (`/inventory/v1`): every status code and
//! error kind, entries surviving restarts with their secrets sealed, who
//! sees `sensitive_parameters`, and a job run over SSH on a node known only
//! by its connection entry.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kick_orchestrator::TokenSpec;
use serde_json::{Value, json};

use crate::common::{Server, TOKEN, config};

const PASSWORD: &str = "pw-Zq8#kick-inventory-test";
const SUDO: &str = "sudo-Xy7-kick-inventory-test";

fn key() -> String {
    std::fs::read_to_string(crate::common::fixtures().join("ssh/id_ed25519")).unwrap()
}

/// A token that may read secrets, one that may not edit, one for a task target.
fn tokens() -> [TokenSpec; 3] {
    let mut viewer = TokenSpec::new("viewer");
    viewer.view_sensitive = true;
    let mut reader = TokenSpec::new("reader");
    reader.inventory = false;
    reader.login = "reader".into();
    let mut target = TokenSpec::new("target");
    target.task_target = Some("1".into());
    [viewer, reader, target]
}

async fn start(dir: &Path) -> Server {
    start_with(dir, |b| b).await
}

/// [`start`], the config changed by `tweak`.
async fn start_with(
    dir: &Path,
    tweak: impl FnOnce(kick_orchestrator::ConfigBuilder) -> kick_orchestrator::ConfigBuilder,
) -> Server {
    let mut b = config(1).state_dir(dir);
    for t in tokens() {
        b = b.token_spec(t);
    }
    Server::start(tweak(b).build()).await
}

/// A request to `/inventory/v1{path}` as `token`, JSON body unless `raw`.
async fn call(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}/inventory/v1{path}", s.base);
    let mut r = s
        .client
        .request(method.parse().unwrap(), url)
        .header("X-Authentication", token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(s: &Server, path: &str, body: Value) -> (u16, Value) {
    call(s, "POST", path, TOKEN, Some(body)).await
}

/// Creates the entry of [`create_body`]; its id.
async fn create(s: &Server, certnames: &[&str]) -> String {
    let (st, b) = post(s, "/command/create-connection", create_body(certnames)).await;
    assert_eq!(st, 201, "{b}");
    b["connection_id"].as_str().unwrap().to_owned()
}

fn create_body(certnames: &[&str]) -> Value {
    json!({
        "certnames": certnames,
        "type": "ssh",
        "parameters": {"user": "deploy", "run-as": "root", "port": 2222},
        "sensitive_parameters": {"password": PASSWORD, "sudo-password": SUDO},
        "duplicates": "error"
    })
}

fn assert_error(got: &(u16, Value), status: u16, kind: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["kind"], kind, "{}", got.1);
    assert!(
        got.1["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
    assert!(got.1["details"].is_object(), "{}", got.1);
}

#[tokio::test]
async fn connections_are_created_listed_replaced_and_deleted_as_pe_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    let b = json!({"connection_id": create(&s, &["web1", "web2"]).await});
    let id = b["connection_id"].as_str().unwrap().to_owned();
    assert_eq!(b.as_object().unwrap().len(), 1, "{b}");
    assert!(
        id.len() == 36
            && id.chars().filter(|c| *c == '-').count() == 4
            && id.as_bytes()[14] == b'4',
        "a v4 UUID: {id}"
    );

    let (st, all) = call(&s, "GET", "/query/connections", TOKEN, None).await;
    assert_eq!(st, 200, "{all}");
    assert_eq!(
        all,
        json!({"items": [{"connection_id": id, "certnames": ["web1", "web2"], "type": "ssh",
                          "parameters": {"user": "deploy", "run-as": "root", "port": 2222}}]})
    );
    // One certname, by GET; several, by POST; an unknown one: nothing.
    let (_, one) = call(&s, "GET", "/query/connections?certname=web2", TOKEN, None).await;
    assert_eq!(one, all);
    let (_, none) = call(&s, "GET", "/query/connections?certname=db9", TOKEN, None).await;
    assert_eq!(none, json!({"items": []}));
    let (st, p) = post(
        &s,
        "/query/connections",
        json!({"certnames": ["web1", "db9"]}),
    )
    .await;
    assert_eq!((st, &p), (200, &all));
    let (_, p) = post(&s, "/query/connections", json!({})).await;
    assert_eq!(p, all);

    // A certname in an entry: 409, unless `replace`.
    let dup = post(
        &s,
        "/command/create-connection",
        create_body(&["web2", "web3"]),
    )
    .await;
    assert_error(&dup, 409, "puppetlabs.inventory/duplicate-certnames");
    assert_eq!(dup.1["details"]["certnames"], json!(["web2"]));
    let mut unset = create_body(&["web2"]);
    unset.as_object_mut().unwrap().remove("duplicates");
    let dup = post(&s, "/command/create-connection", unset).await;
    assert_error(&dup, 409, "puppetlabs.inventory/duplicate-certnames");
    let mut replace = create_body(&["web2", "web3"]);
    replace["duplicates"] = json!("replace");
    replace["parameters"]["port"] = json!(22);
    let (st, b) = post(&s, "/command/create-connection", replace).await;
    assert_eq!(st, 201, "{b}");
    let id2 = b["connection_id"].as_str().unwrap().to_owned();
    let (_, all) = call(&s, "GET", "/query/connections", TOKEN, None).await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{all}");
    assert_eq!(items[0]["connection_id"], id.as_str());
    assert_eq!(items[0]["certnames"], json!(["web1"]));
    assert_eq!(items[1]["connection_id"], id2.as_str());
    assert_eq!(items[1]["certnames"], json!(["web2", "web3"]));

    // `extract`: connection_id always, then only what was asked.
    let (st, x) = call(
        &s,
        "GET",
        "/query/connections?certname=web3&extract=%5B%22type%22%5D",
        TOKEN,
        None,
    )
    .await;
    assert_eq!(
        (st, x),
        (
            200,
            json!({"items": [{"connection_id": id2, "type": "ssh"}]})
        )
    );
    let (_, x) = post(
        &s,
        "/query/connections",
        json!({"certnames": ["web1"], "extract": ["certnames", "parameters"]}),
    )
    .await;
    assert_eq!(
        x,
        json!({"items": [{"connection_id": id, "certnames": ["web1"],
                          "parameters": {"user": "deploy", "run-as": "root", "port": 2222}}]})
    );

    // Delete: 204, no body; an entry left without certnames goes.
    let r = s
        .client
        .post(format!("{}/inventory/v1/command/delete-connection", s.base))
        .header("X-Authentication", TOKEN)
        .json(&json!({"certnames": ["web1", "web3", "never-there"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    let (_, all) = call(&s, "GET", "/query/connections", TOKEN, None).await;
    assert_eq!(
        all["items"],
        json!([{"connection_id": id2, "certnames": ["web2"], "type": "ssh",
                "parameters": {"user": "deploy", "run-as": "root", "port": 22}}])
    );
    s.stop().await;
}

#[tokio::test]
async fn secrets_are_shown_only_to_tokens_allowed_to_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    // PE's documented example: `username`, under sensitive_parameters.
    let (st, b) = post(
        &s,
        "/command/create-connection",
        json!({"certnames": ["db1"], "type": "ssh", "parameters": {},
               "sensitive_parameters": {"username": "admin", "password": PASSWORD}}),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let secrets = json!({"username": "admin", "password": PASSWORD});
    for (token, sees) in [("viewer", true), (TOKEN, false), ("reader", false)] {
        for (method, path, body) in [
            ("GET", "/query/connections?sensitive=true", None),
            (
                "GET",
                "/query/connections?certname=db1&sensitive=true",
                None,
            ),
            (
                "POST",
                "/query/connections",
                Some(json!({"sensitive": "true"})),
            ),
            (
                "POST",
                "/query/connections",
                Some(json!({"sensitive": true, "certnames": ["db1"]})),
            ),
        ] {
            let (st, b) = call(&s, method, path, token, body).await;
            assert_eq!(st, 200, "{b}");
            let item = &b["items"][0];
            assert_eq!(item["certnames"], json!(["db1"]));
            if sees {
                assert_eq!(item["sensitive_parameters"], secrets, "{token} {path}");
            } else {
                assert!(
                    item.get("sensitive_parameters").is_none(),
                    "{token} {path}: {b}"
                );
                assert!(!b.to_string().contains(PASSWORD));
            }
        }
        // Not asked for: never shown.
        let (_, b) = call(&s, "GET", "/query/connections", token, None).await;
        assert!(!b.to_string().contains(PASSWORD), "{b}");
        let (_, b) = post(&s, "/query/connections", json!({"sensitive": false})).await;
        assert!(!b.to_string().contains(PASSWORD), "{b}");
    }
    // extract limits the secrets too.
    let (_, b) = call(
        &s,
        "POST",
        "/query/connections",
        "viewer",
        Some(json!({"sensitive": true, "extract": ["type"]})),
    )
    .await;
    assert!(b["items"][0].get("sensitive_parameters").is_none(), "{b}");
    // A secret sent in `parameters` is sealed with the others.
    let (st, _) = post(
        &s,
        "/command/create-connection",
        json!({"certnames": ["db2"], "type": "ssh",
               "parameters": {"user": "u", "password": PASSWORD}, "sensitive_parameters": {}}),
    )
    .await;
    assert_eq!(st, 201);
    let (_, b) = call(&s, "GET", "/query/connections?certname=db2", TOKEN, None).await;
    assert_eq!(b["items"][0]["parameters"], json!({"user": "u"}), "{b}");
    let (_, b) = call(
        &s,
        "GET",
        "/query/connections?certname=db2&sensitive=true",
        "viewer",
        None,
    )
    .await;
    assert_eq!(
        b["items"][0]["sensitive_parameters"],
        json!({"password": PASSWORD})
    );
    s.stop().await;
}

#[tokio::test]
async fn every_error_kind_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    let url = |p: &str| format!("{}/inventory/v1{p}", s.base);
    let send = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        let st = r.status().as_u16();
        (st, r.json::<Value>().await.unwrap_or(Value::Null))
    };

    // 401: no token, a wrong one (the orchestrator's RBAC kinds).
    let (st, _) = send(s.client.get(url("/query/connections"))).await;
    assert_eq!(st, 401);
    let (st, _) = call(&s, "GET", "/query/connections", "wrong", None).await;
    assert_eq!(st, 401);
    // 406: an Accept without JSON.
    let got = send(
        s.client
            .get(url("/query/connections"))
            .header("X-Authentication", TOKEN)
            .header("Accept", "text/html"),
    )
    .await;
    assert_error(&got, 406, "puppetlabs.inventory/not-acceptable");
    assert_eq!(got.1["msg"], "accept must include content-type json");
    for ok in [
        "application/json",
        "*/*",
        "text/html, application/json;q=0.5",
        "application/*",
    ] {
        let (st, _) = send(
            s.client
                .get(url("/query/connections"))
                .header("X-Authentication", TOKEN)
                .header("Accept", ok),
        )
        .await;
        assert_eq!(st, 200, "{ok}");
    }
    // 416 (PE's documented code): a body that is not JSON by its type.
    for path in [
        "/command/create-connection",
        "/command/delete-connection",
        "/query/connections",
    ] {
        let got = send(
            s.client
                .post(url(path))
                .header("X-Authentication", TOKEN)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("certnames=a"),
        )
        .await;
        assert_error(&got, 416, "puppetlabs.inventory/unsupported-type");
    }
    // 400 json-parse-error.
    let got = send(
        s.client
            .post(url("/command/create-connection"))
            .header("X-Authentication", TOKEN)
            .header("Content-Type", "application/json")
            .body(format!(
                "{{\"certnames\": [\"a\"], \"sensitive_parameters\": {{\"password\": \"{PASSWORD}\""
            )),
    )
    .await;
    assert_error(&got, 400, "puppetlabs.inventory/json-parse-error");
    assert!(!got.1.to_string().contains(PASSWORD));
    // 403: a token without the permission, and one limited to a task target.
    for t in ["reader", "target"] {
        for (path, body) in [
            ("/command/create-connection", create_body(&["x"])),
            ("/command/delete-connection", json!({"certnames": ["x"]})),
        ] {
            let got = call(&s, "POST", path, t, Some(body)).await;
            assert_error(&got, 403, "puppetlabs.inventory/not-permitted");
        }
        // Reading stays allowed.
        let (st, _) = call(&s, "GET", "/query/connections", t, None).await;
        assert_eq!(st, 200);
    }
    // 400 schema-validation-error, naming the key, never a value.
    let ssh = |params: Value, sensitive: Value| json!({"certnames": ["n1"], "type": "ssh", "parameters": params, "sensitive_parameters": sensitive});
    let cases = [
        (
            json!({"certnames": ["n1"], "type": "winrm", "parameters": {"user": "u"},
                "sensitive_parameters": {"password": PASSWORD}}),
            "WinRM is not supported",
            None,
        ),
        (
            json!({"certnames": ["n1"], "type": "telnet"}),
            "`type`",
            None,
        ),
        (json!({"type": "ssh"}), "`certnames` is required", None),
        (json!({"certnames": "n1", "type": "ssh"}), "array", None),
        (
            json!({"certnames": [], "type": "ssh"}),
            "at least one",
            None,
        ),
        (
            json!({"certnames": ["n1"], "type": "ssh", "colour": 1}),
            "unknown key `colour`",
            Some("colour"),
        ),
        (
            json!({"certnames": ["n1"], "type": "ssh", "duplicates": "merge"}),
            "`duplicates`",
            None,
        ),
        (
            ssh(
                json!({"user": "u", "proxy": "x"}),
                json!({"password": PASSWORD}),
            ),
            "unknown SSH connection key `proxy`",
            Some("proxy"),
        ),
        (
            ssh(json!({}), json!({"password": PASSWORD})),
            "`user`",
            Some("user"),
        ),
        (
            ssh(json!({"user": "u"}), json!({})),
            "exactly one",
            Some("password"),
        ),
        (
            ssh(
                json!({"user": "u"}),
                json!({"password": PASSWORD, "private-key-content": key()}),
            ),
            "not both",
            Some("password"),
        ),
        (
            ssh(
                json!({"user": "u", "port": 65536}),
                json!({"password": PASSWORD}),
            ),
            "1 to 65535",
            Some("port"),
        ),
        (
            ssh(
                json!({"user": "u", "tmpdir": "relative"}),
                json!({"password": PASSWORD}),
            ),
            "absolute",
            Some("tmpdir"),
        ),
        (
            ssh(
                json!({"user": "u", "run-as-command": ["doas"]}),
                json!({"password": PASSWORD}),
            ),
            "not supported",
            Some("run-as-command"),
        ),
        (
            ssh(
                json!({"user": "u"}),
                json!({"private-key-content": format!("garbage {PASSWORD}")}),
            ),
            "not a private key",
            Some("private-key-content"),
        ),
        (
            ssh(json!({"user": "u"}), json!({"password": 5})),
            "string",
            Some("password"),
        ),
        (json!([1]), "JSON object", None),
    ];
    for (body, says, key) in cases {
        let got = post(&s, "/command/create-connection", body.clone()).await;
        assert_error(&got, 400, "puppetlabs.inventory/schema-validation-error");
        let msg = got.1["msg"].as_str().unwrap();
        assert!(msg.contains(says), "{body}: {msg}");
        if let Some(k) = key {
            assert_eq!(got.1["details"]["key"], k, "{body}");
        }
        assert!(!got.1.to_string().contains(PASSWORD), "{}", got.1);
    }
    for (path, body, says) in [
        (
            "/command/delete-connection",
            json!({}),
            "`certnames` is required",
        ),
        (
            "/command/delete-connection",
            json!({"certnames": [1]}),
            "array of certname",
        ),
        (
            "/query/connections",
            json!({"sensitive": "maybe"}),
            "`sensitive`",
        ),
        (
            "/query/connections",
            json!({"extract": ["password"]}),
            "`extract`",
        ),
        (
            "/query/connections",
            json!({"certname": "a"}),
            "unknown key `certname`",
        ),
    ] {
        let got = post(&s, path, body).await;
        assert_error(&got, 400, "puppetlabs.inventory/schema-validation-error");
        assert!(got.1["msg"].as_str().unwrap().contains(says), "{}", got.1);
    }
    for q in ["extract=type", "certnames=a", "sensitive=yes"] {
        let got = call(&s, "GET", &format!("/query/connections?{q}"), TOKEN, None).await;
        assert_error(&got, 400, "puppetlabs.inventory/schema-validation-error");
    }
    // 404 and 405 in the same shape.
    let got = call(&s, "GET", "/query/nodes", TOKEN, None).await;
    assert_eq!(got.0, 404);
    let got = call(&s, "GET", "/command/create-connection", TOKEN, None).await;
    assert_eq!(got.0, 405);
    // 500 unknown-error: the database refuses the write.
    let db = rusqlite::Connection::open(dir.path().join("jobs.db")).unwrap();
    db.execute_batch("CREATE TRIGGER no_more BEFORE INSERT ON connections BEGIN SELECT RAISE(ABORT, 'disk says no'); END;")
        .unwrap();
    let got = post(&s, "/command/create-connection", create_body(&["n9"])).await;
    assert_error(&got, 500, "puppetlabs.inventory/unknown-error");
    assert!(!got.1.to_string().contains(PASSWORD));
    // Nothing of it was kept.
    let (_, b) = call(&s, "GET", "/query/connections", TOKEN, None).await;
    assert_eq!(b, json!({"items": []}));
    s.stop().await;
}

/// Runs fixture::echo_json on `node`: the job and the node.
async fn run(s: &Server, node: &str) -> (Value, Value) {
    let job = s
        .task("fixture::echo_json", json!({"message": "hi"}), &[node])
        .await;
    let j = s.wait(&job).await;
    (j, s.nodes(&job).await.remove(0))
}

/// Every entry, secrets included.
async fn with_secrets(s: &Server) -> Vec<Value> {
    let (st, b) = call(
        s,
        "GET",
        "/query/connections?sensitive=true",
        "viewer",
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    b["items"].as_array().unwrap().clone()
}

/// Every byte of the state directory's database files.
fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("jobs.db")
        {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn entries_survive_a_restart_sealed_under_a_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    create(&s, &["web1"]).await;
    let mut k = create_body(&["web2"]);
    k["sensitive_parameters"] = json!({"private-key-content": key()});
    let (st, _) = post(&s, "/command/create-connection", k).await;
    assert_eq!(st, 201);
    s.stop().await;

    let key_file = dir.path().join("inventory.key");
    let meta = std::fs::metadata(&key_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let bytes = db_bytes(dir.path());
    assert!(contains(&bytes, "deploy"), "the plain parameters are there");
    let pem_line = key().lines().nth(1).unwrap().to_owned();
    for secret in [PASSWORD, SUDO, pem_line.as_str()] {
        assert!(
            !contains(&bytes, secret),
            "{secret} in the clear in the database"
        );
    }

    let s = start(dir.path()).await;
    let items = with_secrets(&s).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0]["sensitive_parameters"],
        json!({"password": PASSWORD, "sudo-password": SUDO})
    );
    assert_eq!(
        items[1]["sensitive_parameters"]["private-key-content"],
        key()
    );
    s.stop().await;

    // A key file others may read stops the start, saying what to do.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = kick_orchestrator::router(config(0).state_dir(dir.path()).build())
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("inventory.key") && e.contains("chmod 600"),
        "{e}"
    );
}

#[tokio::test]
async fn a_state_dir_of_the_schema_before_connections_upgrades_and_keeps_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    let job = s
        .task("fixture::trivial", json!({}), &["node-0000.example"])
        .await;
    s.wait(&job).await;
    s.stop().await;
    {
        // What the release before versioning left: no connection tables,
        // user_version 0, and no key file.
        let db = rusqlite::Connection::open(dir.path().join("jobs.db")).unwrap();
        db.execute_batch(
            "DROP TABLE connection_certnames; DROP TABLE connections; PRAGMA user_version = 0;",
        )
        .unwrap();
        std::fs::remove_file(dir.path().join("inventory.key")).unwrap();
    }
    let s = start(dir.path()).await;
    let (st, j) = s.get(&format!("/jobs/{job}")).await;
    assert_eq!((st, j["state"].as_str()), (200, Some("finished")), "{j}");
    create(&s, &["web1"]).await;
    s.stop().await;
    let db = rusqlite::Connection::open(dir.path().join("jobs.db")).unwrap();
    let v: u32 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 2);
}

#[tokio::test]
async fn a_bolt_inventory_file_loads_at_start_over_entries_of_the_same_certname() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    create(&s, &["web1.example", "other"]).await;
    s.stop().await;
    let s = start_with(dir.path(), |b| {
        b.inventory_file(crate::common::fixtures().join("bolt/inventory.yaml"))
    })
    .await;
    let items = with_secrets(&s).await;
    let names: Vec<&Value> = items.iter().map(|i| &i["certnames"]).collect();
    assert_eq!(
        names,
        [
            &json!(["other"]),
            &json!(["bastion.example"]),
            &json!(["web1.example"]),
            &json!(["10.0.0.12"]),
            &json!(["web3.example"]),
            &json!(["db1.example"])
        ],
        "{items:#?}"
    );
    assert_eq!(items[2]["parameters"]["port"], 2222);
    assert_eq!(
        items[2]["sensitive_parameters"]["private-key-content"],
        key()
    );
    s.stop().await;
    // A file that cannot be used stops the start.
    let e = kick_orchestrator::router(
        config(0)
            .inventory_file(crate::common::fixtures().join("bolt/plugin.yaml"))
            .build(),
    )
    .expect_err("refused")
    .to_string();
    assert!(e.contains("plugin.yaml") && e.contains("_plugin"), "{e}");
}

#[tokio::test]
async fn a_node_known_only_by_its_connection_entry_runs_tasks_over_ssh_across_restarts() {
    let sshd = crate::ssh::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let tmp = sshd.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let s = start(dir.path()).await;
    let (st, b) = post(
        &s,
        "/command/create-connection",
        json!({"certnames": ["ssh-inv.example"], "type": "ssh",
               "parameters": {"user": "root", "hostname": sshd.addr, "tmpdir": tmp,
                              "host-key-check": false, "connect-timeout": 5},
               "sensitive_parameters": {"private-key-content": sshd.key}}),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let (j, n) = run(&s, "ssh-inv.example").await;
    assert_eq!(j["state"], "finished", "{n:#}");
    assert_eq!(n["result"]["stdin"]["message"], "hi", "{n:#}");
    s.stop().await;
    // After a restart the entry, opened with the same key, still reaches it.
    let s = start(dir.path()).await;
    let (j, n) = run(&s, "ssh-inv.example").await;
    assert_eq!(j["state"], "finished", "{n:#}");
    // The job's records carry no secret.
    let (_, jobs) = s.get("/jobs").await;
    let text = format!("{jobs}{n}");
    assert!(!text.contains(sshd.key.lines().nth(1).unwrap()), "{text}");
    // Deleted: the node is unknown again.
    let (st, _) = post(
        &s,
        "/command/delete-connection",
        json!({"certnames": ["ssh-inv.example"]}),
    )
    .await;
    assert_eq!(st, 204);
    let (j, n) = run(&s, "ssh-inv.example").await;
    assert_eq!(j["state"], "failed", "{n:#}");
    assert_eq!(n["state"], "errored", "{n:#}");
    // A clear error: it says the node has no connection entry and how to add one.
    let said = n["details"]["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("has no connection entry") && said.contains("kick inventory add"),
        "{n:#}"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_entry_that_cannot_be_decrypted_fails_its_node_with_the_reason() {
    let sshd = crate::ssh::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    let (st, b) = post(
        &s,
        "/command/create-connection",
        json!({"certnames": ["ssh-key.example"], "type": "ssh",
               "parameters": {"user": "root", "hostname": sshd.addr, "host-key-check": false},
               "sensitive_parameters": {"private-key-content": sshd.key}}),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    s.stop().await;
    // Another key file (a restore from the wrong backup): the entry cannot be opened.
    let key = dir.path().join("inventory.key");
    let len = std::fs::metadata(&key).unwrap().len() as usize;
    std::fs::write(&key, vec![7u8; len]).unwrap();
    let s = start(dir.path()).await;
    let (j, n) = run(&s, "ssh-key.example").await;
    assert_eq!(j["state"], "failed", "{n:#}");
    assert_eq!(n["state"], "failed", "{n:#}");
    let e = &n["result"]["_error"];
    assert_eq!(e["kind"], "puppetlabs.tasks/connect-error", "{n:#}");
    assert!(
        !e["msg"].as_str().unwrap_or_default().contains("PCP"),
        "the reason, not an unknown node: {n:#}"
    );
    assert!(!n.to_string().contains(sshd.key.lines().nth(1).unwrap()));
    s.stop().await;
}
