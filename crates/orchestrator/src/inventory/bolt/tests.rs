use std::path::Path;

use secrecy::ExposeSecret;
use serde_json::json;

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bolt")
}

/// Each entry's certname, parameters and secrets (opened).
fn entries(loaded: &Loaded) -> Vec<(String, Value, Value)> {
    loaded
        .entries
        .iter()
        .map(|e| {
            let s: Value = serde_json::from_str(e.sensitive.expose_secret()).unwrap();
            (
                e.certnames.join(","),
                Value::Object(e.parameters.clone()),
                s,
            )
        })
        .collect()
}

#[test]
fn targets_groups_and_config_become_one_entry_per_ssh_target() {
    let text = std::fs::read_to_string(fixtures().join("inventory.yaml")).unwrap();
    let loaded = parse(&text, &fixtures()).unwrap();
    let got = entries(&loaded);
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "bastion.example",
            "web1.example",
            "10.0.0.12",
            "web3.example",
            "db1.example"
        ]
    );
    let key = std::fs::read_to_string(fixtures().join("../ssh/id_ed25519")).unwrap();
    let by = |n: &str| got.iter().find(|(name, _, _)| name == n).unwrap();
    let (_, p, s) = by("bastion.example");
    assert_eq!(
        p,
        &json!({"user": "deploy", "host-key-check": true, "connect-timeout": 5})
    );
    assert_eq!(s, &json!({"private-key-content": key}));
    // The group's config over the top's; its first place (the group `web`,
    // before its subgroup `canary`) decides the port.
    let (_, p, _) = by("web1.example");
    assert_eq!(p["port"], 2222);
    assert_eq!(p["run-as"], "root");
    // The URI's user and port win over the config's.
    let (_, p, _) = by("10.0.0.12");
    assert_eq!((&p["user"], &p["port"]), (&json!("admin"), &json!(2200)));
    assert!(p.get("hostname").is_none(), "the name is the host");
    // A named target reached at its uri; its own config deepest.
    let (_, p, _) = by("web3.example");
    assert_eq!(p["hostname"], "10.0.0.13");
    assert_eq!(p["host-key-check"], false);
    assert_eq!(p["tmpdir"], "/var/tmp");
    // `private-key: ~` unsets the key the top config set.
    let (_, p, s) = by("db1.example");
    assert_eq!(
        s,
        &json!({"password": "s3cr3t-db", "sudo-password": "s3cr3t-sudo"})
    );
    assert!(p.get("password").is_none());
    assert!(loaded.entries.iter().all(|e| e.replace));

    let w = loaded.warnings.join("\n");
    for want in [
        "config.ssh.native-ssh: a Bolt SSH key Kick does not support, ignored",
        "groups[0](web).facts: ignored",
        "groups[0](web).targets[2].alias: ignored",
        "groups[1](db).config.ssh.colour: unknown SSH key, ignored",
        "groups[2](windows).colour: unknown key, ignored",
        "groups[2](windows).config.winrm: ignored (Kick reaches nodes over SSH only)",
        "groups[2](windows).targets[0] (win1.example): transport winrm is not supported",
    ] {
        assert!(w.contains(want), "missing warning {want:?} in:\n{w}");
    }
    assert!(!w.contains("s3cr3t"), "{w}");
}

#[test]
fn what_cannot_be_used_stops_the_load_and_says_where() {
    let text = std::fs::read_to_string(fixtures().join("plugin.yaml")).unwrap();
    let e = parse(&text, &fixtures()).unwrap_err();
    assert!(
        e.contains("config.ssh.password") && e.contains("plugins"),
        "{e}"
    );
    for (text, says) in [
        ("version: 1\ntargets: [a]", "version 1 is not supported"),
        ("targets: [a]", "targets[0] (a): `user`"),
        (
            "config: {ssh: {user: u, password: p, port: 70000}}\ntargets: [a]",
            "targets[0] (a): `port` must be an integer",
        ),
        (
            "config: {ssh: {user: u, private-key: missing-key}}\ntargets: [a]",
            "cannot read the private key",
        ),
        ("targets: ['ssh://u:pw@a']", "a password in a target URI"),
        (
            "groups: [{targets: [a]}]",
            "groups[0]: a group needs a `name`",
        ),
        ("- a\n- b", "expected a mapping"),
    ] {
        let e = parse(text, &fixtures()).unwrap_err();
        assert!(e.contains(says), "{text}: {e}");
    }
}

#[test]
fn target_uris() {
    let u = |s| parse_uri(s).unwrap();
    assert_eq!(
        u("ssh://root@h.example:2222"),
        Uri {
            scheme: Some("ssh".into()),
            user: Some("root".into()),
            host: "h.example".into(),
            port: Some(2222),
        }
    );
    assert_eq!(u("h.example").host, "h.example");
    assert_eq!(u("h.example:22").port, Some(22));
    assert_eq!(
        (u("[::1]:2200").host.as_str(), u("[::1]:2200").port),
        ("::1", Some(2200))
    );
    assert_eq!(u("winrm://w").scheme.as_deref(), Some("winrm"));
    assert!(parse_uri("h:0").is_err());
    assert!(parse_uri("ssh://").is_err());
}
