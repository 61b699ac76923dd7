//! `make dist`'s packages as an administrator gets them: one version everywhere; the kick .deb
//! installed on this machine (then purged) gives `kick --version`, its man pages and a
//! completion that bash, zsh and fish each load from where they look; the kick-orchestrator
//! .deb gives its binary, a unit that passes `systemd-analyze verify` with the hardening asked
//! for, its settings, user, token and state directory, and the binary started by hand with the
//! packaged settings (as the unit starts it) serves the API with the packaged token and the CA
//! it generates. The .rpms are read with rpm, lintian's tags are each explained in
//! docs/packages.md. Only packages this suite built are installed and purged.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kick_e2e::workspace_root;
use serde_json::Value;

/// The workspace's version (`[workspace.package] version`).
fn workspace_version() -> String {
    let toml = std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("Cargo.toml");
    toml.lines()
        .find_map(|l| {
            l.strip_prefix("version = \"")
                .and_then(|r| r.strip_suffix('"'))
        })
        .expect("a version line in Cargo.toml")
        .to_owned()
}

struct Packages {
    version: String,
    kick_deb: PathBuf,
    orch_deb: PathBuf,
    kick_rpm: PathBuf,
    orch_rpm: PathBuf,
    module: PathBuf,
}

/// The built packages, or `None` (skipped, unless `make test` requires them) before `make dist`.
fn packages() -> Option<Packages> {
    let version = workspace_version();
    let pkg = workspace_root().join("pkg");
    let p = Packages {
        kick_deb: pkg.join(format!("kick_{version}-1_amd64.deb")),
        orch_deb: pkg.join(format!("kick-orchestrator_{version}-1_amd64.deb")),
        kick_rpm: pkg.join(format!("kick-{version}-1.x86_64.rpm")),
        orch_rpm: pkg.join(format!("kick-orchestrator-{version}-1.x86_64.rpm")),
        module: pkg.join(format!("kick-psick-{version}.tar.gz")),
        version,
    };
    let all = [
        &p.kick_deb,
        &p.orch_deb,
        &p.kick_rpm,
        &p.orch_rpm,
        &p.module,
    ];
    if all.iter().all(|f| f.is_file()) {
        return Some(p);
    }
    assert!(
        std::env::var("KICK_REQUIRE_STACK").as_deref() != Ok("1"),
        "packages missing in pkg/ (run `make dist`): {:?}",
        all.iter().filter(|f| !f.is_file()).collect::<Vec<_>>()
    );
    eprintln!("skipped: no packages in pkg/ (make dist)");
    None
}

fn run(cmd: &mut Command) -> Output {
    kick_e2e::run_ok(cmd.stdin(Stdio::null()))
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("utf-8")
}

fn sh(script: &str) -> String {
    stdout(Command::new("sh").arg("-c").arg(script))
}

#[test]
fn one_version_everywhere() {
    let Some(p) = packages() else {
        return;
    };
    let v = &p.version;
    let meta: Value = serde_json::from_slice(
        &std::fs::read(workspace_root().join("metadata.json")).expect("metadata.json"),
    )
    .expect("JSON");
    assert_eq!(meta["version"].as_str(), Some(v.as_str()), "metadata.json");
    for deb in [&p.kick_deb, &p.orch_deb] {
        let field = stdout(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Version"));
        assert_eq!(field.trim(), format!("{v}-1"), "{}", deb.display());
    }
    for rpm in [&p.kick_rpm, &p.orch_rpm] {
        let q = stdout(
            Command::new("rpm")
                .args(["-qp", "--qf", "%{VERSION}-%{RELEASE}"])
                .arg(rpm),
        );
        assert_eq!(q, format!("{v}-1"), "{}", rpm.display());
    }
    // What the packaged binaries say.
    let dir = tempfile::tempdir().expect("temp dir");
    for (deb, bin) in [(&p.kick_deb, "kick"), (&p.orch_deb, "kick-orchestrator")] {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
        let said = stdout(Command::new(dir.path().join("usr/bin").join(bin)).arg("--version"));
        assert_eq!(said.trim(), format!("{bin} {v}"));
    }
    // The module tarball has the version in its name (make module) and in its metadata.json.
    let tar_meta = stdout(
        Command::new("tar")
            .arg("-xzOf")
            .arg(&p.module)
            .arg(format!("kick-psick-{v}/metadata.json")),
    );
    let tar_meta: Value = serde_json::from_str(&tar_meta).expect("JSON");
    assert_eq!(tar_meta["version"].as_str(), Some(v.as_str()));
}

/// `path` of the .deb's contents listing, with its mode string.
fn deb_listing(deb: &Path) -> Vec<(String, String)> {
    stdout(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .map(|l| {
            let mode = l.split_whitespace().next().unwrap_or_default().to_owned();
            let path = l.split_whitespace().nth(5).unwrap_or_default();
            (path.trim_start_matches('.').to_owned(), mode)
        })
        .collect()
}

#[test]
fn the_packages_hold_what_they_should_and_nothing_surprising() {
    let Some(p) = packages() else {
        return;
    };
    let kick = deb_listing(&p.kick_deb);
    let has = |list: &[(String, String)], path: &str| list.iter().any(|(p, _)| p == path);
    for path in [
        "/usr/bin/kick",
        "/usr/share/man/man1/kick.1.gz",
        "/usr/share/man/man1/kick-agent.1.gz",
        "/usr/share/bash-completion/completions/kick",
        "/usr/share/zsh/vendor-completions/_kick",
        "/usr/share/fish/vendor_completions.d/kick.fish",
        "/usr/share/doc/kick/README.md",
        "/usr/share/doc/kick/copyright",
    ] {
        assert!(has(&kick, path), "kick .deb lacks {path}: {kick:#?}");
    }
    let orch = deb_listing(&p.orch_deb);
    for path in [
        "/usr/bin/kick-orchestrator",
        "/usr/share/man/man1/kick-orchestrator.1.gz",
        "/usr/lib/systemd/system/kick-orchestrator.service",
        "/etc/kick-orchestrator/kick-orchestrator.conf",
        "/usr/lib/sysusers.d/kick-orchestrator.conf",
        "/usr/share/doc/kick-orchestrator/packages.md",
        "/usr/share/doc/kick-orchestrator/copyright",
    ] {
        assert!(
            has(&orch, path),
            "kick-orchestrator .deb lacks {path}: {orch:#?}"
        );
    }
    // No library dependency: the binaries are static. The service's install script needs a
    // sysusers implementation, as dh_installsysusers' packages do.
    let depends = |deb: &Path| {
        stdout(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Depends"))
            .trim()
            .to_owned()
    };
    assert_eq!(depends(&p.kick_deb), "");
    assert_eq!(
        depends(&p.orch_deb),
        "systemd | systemd-standalone-sysusers | systemd-sysusers"
    );
    for bin in ["kick", "kick-orchestrator"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let deb = if bin == "kick" {
            &p.kick_deb
        } else {
            &p.orch_deb
        };
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
        let file = stdout(Command::new("file").arg(dir.path().join("usr/bin").join(bin)));
        assert!(
            file.contains("statically linked") || file.contains("static-pie linked"),
            "{file}"
        );
    }

    // The .rpms: the same files in EL's places, no requirement beyond rpm's own features and
    // the shell the scripts run with, the settings marked as configuration.
    let kick_files = stdout(Command::new("rpm").arg("-qpl").arg(&p.kick_rpm));
    for path in [
        "/usr/bin/kick",
        "/usr/share/man/man1/kick.1.gz",
        "/usr/share/bash-completion/completions/kick",
        "/usr/share/zsh/site-functions/_kick",
        "/usr/share/fish/vendor_completions.d/kick.fish",
        "/usr/share/licenses/kick/LICENSE",
    ] {
        assert!(
            kick_files.lines().any(|l| l == path),
            "kick .rpm lacks {path}:\n{kick_files}"
        );
    }
    let orch_files = stdout(Command::new("rpm").arg("-qpl").arg(&p.orch_rpm));
    for path in [
        "/usr/bin/kick-orchestrator",
        "/usr/lib/systemd/system/kick-orchestrator.service",
        "/etc/kick-orchestrator/kick-orchestrator.conf",
        "/usr/lib/sysusers.d/kick-orchestrator.conf",
    ] {
        assert!(
            orch_files.lines().any(|l| l == path),
            "{path}:\n{orch_files}"
        );
    }
    let config = stdout(Command::new("rpm").arg("-qpc").arg(&p.orch_rpm));
    assert_eq!(
        config.trim(),
        "/etc/kick-orchestrator/kick-orchestrator.conf"
    );
    for rpm in [&p.kick_rpm, &p.orch_rpm] {
        let requires = stdout(Command::new("rpm").args(["-qp", "--requires"]).arg(rpm));
        for r in requires.lines() {
            assert!(
                r.starts_with("rpmlib(") || r == "/bin/sh" || r.starts_with("config("),
                "{}: unexpected requirement {r}\n{requires}",
                rpm.display()
            );
        }
    }
    let scripts = stdout(
        Command::new("rpm")
            .args(["-qp", "--scripts"])
            .arg(&p.orch_rpm),
    );
    for needle in [
        "systemd-sysusers",
        "/etc/kick-orchestrator/tokens",
        "disable --now",
    ] {
        assert!(scripts.contains(needle), "{needle}:\n{scripts}");
    }
    assert!(
        stdout(
            Command::new("rpm")
                .args(["-qp", "--scripts"])
                .arg(&p.kick_rpm)
        )
        .is_empty(),
        "kick's rpm has no scripts"
    );

    // lintian: no error, and every tag it still gives is explained in docs/packages.md.
    let doc = std::fs::read_to_string(workspace_root().join("docs/packages.md")).expect("doc");
    for deb in [&p.kick_deb, &p.orch_deb] {
        let out = Command::new("lintian")
            .args(["--tag-display-limit", "0"])
            .arg(deb)
            .output()
            .expect("run lintian");
        // 0: no error; 1: errors (reported below by their tags); 2: lintian itself failed.
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "lintian failed on {}: {}",
            deb.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            let (level, rest) = line.split_once(": ").unwrap_or(("", line));
            assert_ne!(level, "E", "lintian error on {}: {line}", deb.display());
            let tag = rest
                .split_once(": ")
                .map_or(rest, |(_, t)| t)
                .split_whitespace()
                .next()
                .unwrap_or_default();
            assert!(
                doc.contains(&format!("`{tag}`")),
                "lintian tag {tag} ({line}) is not explained in docs/packages.md"
            );
        }
    }
}

fn dpkg_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).ends_with(" installed"))
}

/// apt-get on a local .deb or a package name, waiting for dpkg's lock (other tests use it too).
fn apt(args: &[&str], deb: Option<&Path>) {
    let mut cmd = Command::new("apt-get");
    cmd.args(["-y", "-q", "-o", "DPkg::Lock::Timeout=300"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive");
    if let Some(d) = deb {
        cmd.arg(d);
    }
    run(&mut cmd);
}

/// Purges the package when dropped, so a failed assertion leaves nothing installed.
struct Installed(&'static str);

impl Drop for Installed {
    fn drop(&mut self) {
        if dpkg_installed(self.0) {
            let _ = Command::new("apt-get")
                .args(["-y", "-q", "-o", "DPkg::Lock::Timeout=300", "purge", self.0])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output();
        }
    }
}

#[test]
fn the_debs_install_work_and_purge_on_this_machine() {
    let Some(p) = packages() else {
        return;
    };
    assert!(
        is_root(),
        "installing the packages needs root (make test runs as root)"
    );
    kick_deb(&p);
    orchestrator_deb(&p);
}

fn is_root() -> bool {
    sh("id -u").trim() == "0"
}

fn kick_deb(p: &Packages) {
    let guard = Installed("kick");
    apt(&["install"], Some(&p.kick_deb));
    assert!(dpkg_installed("kick"));
    assert_eq!(
        stdout(Command::new("/usr/bin/kick").arg("--version")).trim(),
        format!("kick {}", p.version)
    );
    for page in ["kick", "kick-agent", "kick-task"] {
        let path = stdout(Command::new("man").args(["-w", page]));
        assert_eq!(path.trim(), format!("/usr/share/man/man1/{page}.1.gz"));
    }
    // bash: bash-completion's loader finds the script by the command's name, and the
    // completion offers the subcommands.
    let bash = stdout(Command::new("bash").arg("-c").arg(
        "source /usr/share/bash-completion/bash_completion
         __load_completion kick || exit 3
         complete -p kick
         f=$(complete -p kick | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')
         COMP_WORDS=(kick ag); COMP_CWORD=1; COMP_LINE='kick ag'; COMP_POINT=7
         \"$f\" kick ag kick
         printf 'reply:%s\\n' \"${COMPREPLY[@]}\"",
    ));
    assert!(bash.contains("complete "), "{bash}");
    assert!(bash.lines().any(|l| l == "reply:agent"), "{bash}");
    // zsh: compinit finds _kick on the default fpath.
    let zsh = stdout(Command::new("zsh").arg("-fc").arg(
        "autoload -Uz compinit && compinit -u -d \"$(mktemp)\" && print -r -- \"kick=$_comps[kick]\"",
    ));
    assert_eq!(zsh.trim(), "kick=_kick", "{zsh}");
    // fish: the vendor completion completes kick's subcommands (a fresh home: no user
    // configuration; --no-config would also empty fish's completion path).
    let home = tempfile::tempdir().expect("temp dir");
    let fish = stdout(
        Command::new("fish")
            .arg("-c")
            .arg("complete -C 'kick '")
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME"),
    );
    assert!(fish.lines().any(|l| l.starts_with("agent")), "{fish}");

    drop(guard);
    assert!(!dpkg_installed("kick"));
    assert!(!Path::new("/usr/bin/kick").exists());
    assert!(!Path::new("/usr/share/man/man1/kick.1.gz").exists());
    assert!(!Path::new("/usr/share/bash-completion/completions/kick").exists());
}

/// The unit's `key=value` lines of section `[Service]` (and the others), in order.
fn unit_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// An EnvironmentFile as systemd reads it (for this file's simple NAME=value and "quoted" lines).
fn environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// ExecStart's argv as systemd expands it: `${X}` is one word, `$X` is split on spaces.
fn exec_start(line: &str, env: &[(String, String)]) -> Vec<String> {
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut argv = Vec::new();
    for word in line.split_whitespace() {
        if let Some(name) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
            argv.push(get(name));
        } else if let Some(name) = word.strip_prefix('$') {
            argv.extend(get(name).split_whitespace().map(str::to_owned));
        } else {
            argv.push(word.to_owned());
        }
    }
    argv
}

fn orchestrator_deb(p: &Packages) {
    assert!(
        !dpkg_installed("kick-orchestrator"),
        "kick-orchestrator is installed on this machine already: the test would purge it"
    );
    // Declared first, dropped last: after the purge, which leaves the user.
    let _user = SystemUser::new("kick-orchestrator");
    let guard = Installed("kick-orchestrator");
    apt(&["install"], Some(&p.orch_deb));
    assert!(
        user_exists("kick-orchestrator"),
        "the install made the service's system user"
    );

    // Files, user, token and state directory.
    let unit_path = Path::new("/usr/lib/systemd/system/kick-orchestrator.service");
    let conf_path = Path::new("/etc/kick-orchestrator/kick-orchestrator.conf");
    for f in [
        Path::new("/usr/bin/kick-orchestrator"),
        unit_path,
        conf_path,
        Path::new("/usr/lib/sysusers.d/kick-orchestrator.conf"),
    ] {
        assert!(f.is_file(), "{} missing", f.display());
    }
    assert_eq!(
        stdout(Command::new("man").args(["-w", "kick-orchestrator"])).trim(),
        "/usr/share/man/man1/kick-orchestrator.1.gz"
    );
    let conffiles =
        stdout(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "kick-orchestrator"]));
    assert!(
        conffiles.contains("/etc/kick-orchestrator/kick-orchestrator.conf"),
        "{conffiles}"
    );
    let user = sh("getent passwd kick-orchestrator");
    assert!(
        user.contains(":/var/lib/kick-orchestrator:") && user.trim_end().ends_with("nologin"),
        "{user}"
    );
    let uid = user.split(':').nth(2).unwrap().parse::<u32>().unwrap();
    assert!(uid < 1000, "a system user: {user}");
    let tokens = Path::new("/etc/kick-orchestrator/tokens");
    let meta = std::fs::metadata(tokens).expect("the first token");
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(meta.uid(), 0);
    let token = std::fs::read_to_string(tokens).unwrap().trim().to_owned();
    assert_eq!(token.len(), 48, "48 hex digits");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let state = std::fs::metadata("/var/lib/kick-orchestrator").expect("state dir");
    assert_eq!(state.permissions().mode() & 0o777, 0o700);
    assert_eq!(state.uid(), uid);

    // The unit: it verifies, and it has what the service's sandbox needs.
    let verify = Command::new("systemd-analyze")
        .args(["verify"])
        .arg(unit_path)
        .output()
        .expect("systemd-analyze");
    let verify_err = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && !verify_err.contains("kick-orchestrator"),
        "systemd-analyze verify: {verify_err}"
    );
    let unit = unit_settings(&std::fs::read_to_string(unit_path).unwrap());
    let setting = |k: &str| {
        unit.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the unit has no {k}="))
    };
    for (k, v) in [
        ("User", "kick-orchestrator"),
        ("StateDirectory", "kick-orchestrator"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        (
            "EnvironmentFile",
            "/etc/kick-orchestrator/kick-orchestrator.conf",
        ),
    ] {
        assert_eq!(setting(k), v, "{k}");
    }

    // The binary started by hand as the unit starts it: its user, its settings (the listen
    // address moved to a free port), the packaged token, the CA it generates.
    let env = environment_file(&std::fs::read_to_string(conf_path).unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| {
            if k == "KICK_ORCHESTRATOR_LISTEN" {
                assert_eq!(v, "127.0.0.1:8143", "the packaged default");
                (k, format!("127.0.0.1:{port}"))
            } else {
                (k, v)
            }
        })
        .collect();
    let argv = exec_start(setting("ExecStart"), &env);
    assert_eq!(argv[0], "/usr/bin/kick-orchestrator");
    let mut service = Command::new("setpriv")
        .args([
            "--reuid=kick-orchestrator",
            "--regid=kick-orchestrator",
            "--init-groups",
            "--",
        ])
        .args(&argv)
        .current_dir(setting("WorkingDirectory"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kick-orchestrator");
    let pid = service.id();
    let stop = |service: &mut std::process::Child| {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while service.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = service.kill();
        service.wait().expect("reap the service")
    };
    let ready = {
        use std::io::BufRead;
        let out = service.stdout.take().unwrap();
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        line
    };
    if !ready.contains("listening") {
        let status = stop(&mut service);
        let mut err = String::new();
        use std::io::Read;
        let _ = service.stderr.take().unwrap().read_to_string(&mut err);
        panic!("kick-orchestrator did not start ({status}): {ready}{err}");
    }
    let ca = "/var/lib/kick-orchestrator/ca.pem";
    assert!(ready.contains(&format!("cacert={ca}")), "{ready}");
    let url = format!("https://127.0.0.1:{port}/orchestrator/v1/jobs");
    let status_with = |token: &str| {
        sh(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --cacert {ca} -H 'X-Authentication: {token}' {url}"
        ))
    };
    let ok = status_with(&token);
    let refused = status_with("not-the-token");
    let status = stop(&mut service);
    assert_eq!(ok, "200", "with the packaged token");
    assert_eq!(refused, "401", "with another token");
    assert!(status.success(), "SIGTERM ends it cleanly: {status}");

    drop(guard);
    assert!(!dpkg_installed("kick-orchestrator"));
    for gone in [
        "/usr/bin/kick-orchestrator",
        "/usr/lib/systemd/system/kick-orchestrator.service",
        "/etc/kick-orchestrator/kick-orchestrator.conf",
        "/etc/kick-orchestrator/tokens",
        "/var/lib/kick-orchestrator",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after the purge");
    }
    assert!(
        user_exists("kick-orchestrator"),
        "a purge leaves the system user, as Debian leaves system users (docs/packages.md)"
    );
}

fn user_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["passwd", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Removes, when dropped, the system user (and its group) that installing the
/// package made, unless it was there before the test: the machine is left as
/// the test found it.
struct SystemUser {
    name: &'static str,
    existed: bool,
}

impl SystemUser {
    fn new(name: &'static str) -> SystemUser {
        SystemUser {
            name,
            existed: user_exists(name),
        }
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        if self.existed {
            return;
        }
        if user_exists(self.name) {
            let _ = Command::new("userdel").arg(self.name).output();
        }
        let group = Command::new("getent").args(["group", self.name]).output();
        if group.is_ok_and(|o| o.status.success()) {
            let _ = Command::new("groupdel").arg(self.name).output();
        }
    }
}
