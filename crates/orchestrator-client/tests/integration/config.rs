//! Settings precedence: defaults < global file < user file < env < flags.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use orchestrator_client::{Error, Overrides, Settings};

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn defaults_need_only_a_service_url() {
    let dir = tempfile::tempdir().unwrap();
    let global = write(
        dir.path(),
        "global.conf",
        r#"{"options": {"service-url": "https://pe.example:8143"}}"#,
    );
    let (s, warnings) = Settings::load_from(
        Some(&global),
        Some(&dir.path().join("missing.conf")),
        &env(&[("HOME", "/home/alice")]),
        Overrides::default(),
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(s.service_url, "https://pe.example:8143");
    assert_eq!(
        s.cacert.as_deref(),
        Some(Path::new("/etc/puppetlabs/puppet/ssl/certs/ca.pem"))
    );
    assert_eq!(
        s.token_file.as_deref(),
        Some(Path::new("/home/alice/.puppetlabs/token"))
    );
    assert_eq!(s.environment, None);
    assert!(!s.insecure);
}

#[test]
fn each_layer_overrides_the_one_below() {
    let dir = tempfile::tempdir().unwrap();
    let global = write(
        dir.path(),
        "global.conf",
        r#"{"options": {"service-url": "https://global:8143", "cacert": "/global/ca.pem",
                        "token-file": "/global/token", "environment": "global_env", "color": true}}"#,
    );
    let user = write(
        dir.path(),
        "user.conf",
        r#"{"options": {"service-url": "https://user:8143", "cacert": "~/user-ca.pem", "token-file": "~/user-token"}}"#,
    );
    let home = [("HOME", "/home/bob")];

    // Files only: user over global, global keeps what user does not set.
    let (s, _) = Settings::load_from(
        Some(&global),
        Some(&user),
        &env(&home),
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(s.service_url, "https://user:8143");
    assert_eq!(
        s.cacert.as_deref(),
        Some(Path::new("/home/bob/user-ca.pem"))
    );
    assert_eq!(
        s.token_file.as_deref(),
        Some(Path::new("/home/bob/user-token"))
    );
    assert_eq!(s.environment.as_deref(), Some("global_env"));

    // Environment over files.
    let with_env = env(&[
        ("HOME", "/home/bob"),
        ("KICK_SERVICE_URL", "https://env:8143"),
        ("KICK_TOKEN_FILE", "~/env-token"),
        ("KICK_ENVIRONMENT", "env_env"),
        ("KICK_CACERT", ""),
    ]);
    let (s, _) =
        Settings::load_from(Some(&global), Some(&user), &with_env, Overrides::default()).unwrap();
    assert_eq!(s.service_url, "https://env:8143");
    assert_eq!(
        s.token_file.as_deref(),
        Some(Path::new("/home/bob/env-token"))
    );
    assert_eq!(s.environment.as_deref(), Some("env_env"));
    // An empty variable counts as unset.
    assert_eq!(
        s.cacert.as_deref(),
        Some(Path::new("/home/bob/user-ca.pem"))
    );

    // Flags over everything.
    let (s, _) = Settings::load_from(
        Some(&global),
        Some(&user),
        &with_env,
        Overrides {
            service_url: Some("https://flag:8143".into()),
            cacert: Some("/flag/ca.pem".into()),
            token_file: Some("~/flag-token".into()),
            environment: Some("flag_env".into()),
            insecure: true,
        },
    )
    .unwrap();
    assert_eq!(s.service_url, "https://flag:8143");
    assert_eq!(s.cacert.as_deref(), Some(Path::new("/flag/ca.pem")));
    assert_eq!(
        s.token_file.as_deref(),
        Some(Path::new("/home/bob/flag-token"))
    );
    assert_eq!(s.environment.as_deref(), Some("flag_env"));
    assert!(s.insecure);
}

#[test]
fn missing_service_url_says_where_to_set_it() {
    let err = Settings::load_from(None, None, &env(&[]), Overrides::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(msg.contains("--service-url"), "{msg}");
    assert!(msg.contains("KICK_SERVICE_URL"), "{msg}");
    assert!(msg.contains("orchestrator.conf"), "{msg}");
}

#[test]
fn malformed_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let user = write(dir.path(), "user.conf", r#"{"options": {"service-url": "#);
    let err = Settings::load_from(None, Some(&user), &env(&[]), Overrides::default()).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("user.conf"), "{err}");

    let typed = write(
        dir.path(),
        "typed.conf",
        r#"{"options": {"service-url": 8143}}"#,
    );
    let err = Settings::load_from(None, Some(&typed), &env(&[]), Overrides::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("options.service-url must be a string"),
        "{err}"
    );
}

#[test]
fn unreadable_file_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where a file is expected cannot be read as one.
    let (s, warnings) = Settings::load_from(
        Some(dir.path()),
        None,
        &env(&[("KICK_SERVICE_URL", "https://pe:8143"), ("HOME", "/h")]),
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(s.service_url, "https://pe:8143");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].0.contains("ignoring"), "{warnings:?}");
}

#[test]
fn tilde_without_home_is_an_error() {
    let err = Settings::load_from(
        None,
        None,
        &env(&[("KICK_SERVICE_URL", "https://pe:8143")]),
        Overrides::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("HOME is not set"), "{err}");
}
