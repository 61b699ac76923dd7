//! kick → orchestrator → the real psick::puppet_agent binary → the real puppetserver, on three
//! simulated nodes: a noop run (pending changes: exit 2), a real run (changes: exit 2), then
//! another real run (converged: exit 0).

use kick_e2e::{LocalNodes, Stack};
use serde_json::Value;

use crate::kick_cli::kick;

const TOKEN: &str = "e2e-kick-token";

fn outcomes(doc: &Value) -> Vec<String> {
    doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["outcome"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_agent_noop_then_real_runs_give_exit_codes_2_2_0() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let emu = LocalNodes::start(&stack, "kick", 3, TOKEN).await;
    let url = emu.url.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let names = emu.certnames().join(",");
    let token = token_file.display().to_string();
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["agent".into(), "--nodes".into(), names.clone()];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v.extend([
            "-e".into(),
            "idem".into(),
            "--format".into(),
            "json".into(),
            "--service-url".into(),
            url.clone(),
            "--token-file".into(),
            token.clone(),
        ]);
        v
    };

    let run = |extra: &'static [&'static str]| {
        let argv = base(extra);
        async move {
            let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
            kick(&refs).await
        }
    };

    // 1. noop: every node would change → exit 2, nothing changed.
    let (code, doc, err) = run(&["--noop"]).await;
    assert_eq!(code, 2, "{doc:#}\n{err}");
    assert_eq!(outcomes(&doc), ["changed"; 3], "{doc:#}");
    assert_eq!(doc["job"]["noop"], true);
    for n in doc["nodes"].as_array().expect("nodes") {
        assert!(
            n["resources"]["noop_pending"].as_u64().unwrap_or(0) > 0,
            "{n:#}"
        );
        assert_eq!(n["resources"]["changed"], 0, "{n:#}");
        assert!(!n["output"].as_str().unwrap_or("").contains('\u{1b}'));
    }
    // 2. real run: changes applied → exit 2.
    let (code, doc, err) = run(&["--no-noop"]).await;
    assert_eq!(code, 2, "{doc:#}\n{err}");
    assert_eq!(outcomes(&doc), ["changed"; 3], "{doc:#}");
    for n in doc["nodes"].as_array().expect("nodes") {
        assert!(n["resources"]["changed"].as_u64().unwrap_or(0) > 0, "{n:#}");
        assert_eq!(n["exitcode"], 2);
    }
    // 3. again: converged → exit 0.
    let (code, doc, err) = run(&["--no-noop"]).await;
    assert_eq!(code, 0, "{doc:#}\n{err}");
    assert_eq!(outcomes(&doc), ["unchanged"; 3], "{doc:#}");
    assert_eq!(doc["summary"]["unchanged"], 3);

    emu.stop().await;
}
