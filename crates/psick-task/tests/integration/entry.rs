//! The tasks' entry `tasks/puppet_agent` (POSIX sh), as the runners start it: in an install
//! directory laid out as pxp-agent's and Bolt's (`psick/tasks/puppet_agent`,
//! `psick/files/<arch>/psick-task`, `PT__installdir`), it execs the node's architecture's binary
//! with the runner's stdin, environment and arguments untouched, in its own process; it finds
//! the architecture from /proc/sys/kernel/arch, bash's $HOSTTYPE, dash's C library or
//! `uname -m`; it fails as a psick task fails where there is no binary for the node. The
//! binaries here are stand-ins that record what they were given; the real ones run through the
//! entry in the orchestrator's and the end-to-end tests.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn write_exe(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// An install directory with the entry and a stand-in binary for each of `arches`, which
/// writes what it got to `<dir>/got-<arch>/`: stdin, args, its PID, its PT_ variables.
struct Install {
    dir: tempfile::TempDir,
}

impl Install {
    fn new(arches: &[&str]) -> Install {
        let i = Install {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(i.path("psick/tasks")).unwrap();
        fs::copy(
            repo().join("tasks/puppet_agent"),
            i.path("psick/tasks/puppet_agent"),
        )
        .unwrap();
        for arch in arches {
            let got = i.path(&format!("got-{arch}"));
            write_exe(
                &i.path(&format!("psick/files/{arch}/psick-task")),
                &format!(
                    "#!/bin/sh\nmkdir -p '{g}'\ncat > '{g}/stdin'\n\
                     printf '%s\\n' \"$@\" > '{g}/args'\necho $$ > '{g}/pid'\n\
                     env | grep '^PT_' | sort > '{g}/env'\n\
                     echo '{{\"ran\": \"{arch}\"}}'\n",
                    g = got.display()
                ),
            );
        }
        i
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn entry(&self) -> PathBuf {
        self.path("psick/tasks/puppet_agent")
    }

    /// A copy of the entry with each of `files` it reads replaced by a missing one: as it
    /// behaves on a kernel without /proc/sys/kernel/arch, or a shell without a multiarch C
    /// library in /proc/self/maps.
    fn entry_without(&self, files: &[&str]) -> PathBuf {
        let mut text = fs::read_to_string(self.entry()).unwrap();
        for f in files {
            assert!(text.contains(f), "the entry reads {f}");
            text = text.replace(f, "/nonexistent/file");
        }
        let copy = self.path(&format!("psick/tasks/without_{}", files.len()));
        write_exe(&copy, &text);
        copy
    }

    /// A PATH whose `uname -m` says `machine`, before the system's.
    fn uname_path(&self, machine: &str) -> String {
        write_exe(
            &self.path("bin/uname"),
            &format!("#!/bin/sh\necho {machine}\n"),
        );
        format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn got(&self, arch: &str, what: &str) -> Option<String> {
        fs::read_to_string(self.path(&format!("got-{arch}/{what}"))).ok()
    }
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    pid: u32,
}

/// Runs `cmd` with `stdin` written to it, the env cleared but for `env`, as a runner does.
fn run(mut cmd: Command, env: &[(&str, &str)], stdin: &[u8]) -> Ran {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        pid,
    }
}

fn this_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => panic!("tests run on x86_64 or aarch64, not {other}"),
    }
}

#[test]
fn the_entry_execs_this_machines_binary_with_stdin_env_and_args_untouched() {
    let i = Install::new(&["x86_64", "aarch64"]);
    let dir = i.dir.path().display().to_string();
    // As pxp-agent writes it: compact, the request's key order, no trailing newline.
    let stdin = br#"{"zeta":1,"noop":true,"_installdir":"X","_task":"psick::puppet_agent"}"#;
    let r = run(
        Command::new(i.entry()),
        &[
            ("PT__installdir", &dir),
            ("PT_noop", "true"),
            ("PT__task", "psick::puppet_agent"),
        ],
        stdin,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "");
    let arch = this_arch();
    assert_eq!(r.stdout.trim(), format!("{{\"ran\": \"{arch}\"}}"));
    assert_eq!(i.got(arch, "stdin").unwrap().as_bytes(), stdin);
    assert_eq!(i.got(arch, "args").unwrap(), "\n", "no arguments");
    assert_eq!(
        i.got(arch, "env").unwrap(),
        format!("PT__installdir={dir}\nPT__task=psick::puppet_agent\nPT_noop=true\n")
    );
    // exec: the binary is the process the runner started, which it waits for and signals.
    assert_eq!(i.got(arch, "pid").unwrap().trim(), r.pid.to_string());
    let other = if arch == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    };
    assert!(
        i.got(other, "stdin").is_none(),
        "the other binary never ran"
    );

    // pxp-agent's module mode passes the action as the one argument: it reaches the binary.
    let r = run(Command::new(i.entry()), &[("PT__installdir", &dir)], b"");
    assert_eq!(r.code, 0);
    let r = run(
        {
            let mut c = Command::new(i.entry());
            c.arg("metadata");
            c
        },
        &[("PT__installdir", &dir)],
        b"",
    );
    assert_eq!(r.code, 0);
    assert_eq!(i.got(arch, "args").unwrap(), "metadata\n");
}

#[test]
fn the_architecture_comes_from_the_kernel_the_shell_or_uname() {
    let i = Install::new(&["x86_64", "aarch64"]);
    let dir = i.dir.path().display().to_string();
    let arch = this_arch();
    let ran = |r: Ran| -> String {
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert_eq!(r.stderr, "", "nothing on stderr");
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        v["ran"].as_str().unwrap().to_owned()
    };
    let kernel = Path::new("/proc/sys/kernel/arch").is_file();
    let liar = i.uname_path(if arch == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    });
    // Where the kernel says it, `uname` is not asked (the stub would lie).
    if kernel {
        let r = run(
            Command::new(i.entry()),
            &[("PT__installdir", &dir), ("PATH", &liar)],
            b"{}",
        );
        assert_eq!(ran(r), arch, "from /proc/sys/kernel/arch");
    }
    // Without it, Debian's dash reads its C library's multiarch directory in /proc/self/maps,
    // a shell without either the first lines of /proc/cpuinfo, and only then asks
    // `uname -m` ...
    let old = i.entry_without(&["/proc/sys/kernel/arch"]);
    let mut dash = Command::new("dash");
    dash.arg(&old);
    let r = run(dash, &[("PT__installdir", &dir), ("PATH", &liar)], b"{}");
    assert_eq!(ran(r), arch, "dash's /proc/self/maps");
    let neither = i.entry_without(&["/proc/sys/kernel/arch", "/proc/self/maps"]);
    let mut dash = Command::new("dash");
    dash.arg(&neither);
    let r = run(dash, &[("PT__installdir", &dir), ("PATH", &liar)], b"{}");
    assert_eq!(ran(r), arch, "the first lines of /proc/cpuinfo");
    let neither = i.entry_without(&["/proc/sys/kernel/arch", "/proc/self/maps", "/proc/cpuinfo"]);
    let mut dash = Command::new("dash");
    dash.arg(&neither);
    let r = run(dash, &[("PT__installdir", &dir), ("PATH", &liar)], b"{}");
    assert_ne!(ran(r), arch, "then uname -m, which lies here");
    let mut dash = Command::new("dash");
    dash.arg(&neither);
    let r = run(dash, &[("PT__installdir", &dir)], b"{}");
    assert_eq!(ran(r), arch, "the real uname");
    // ... and bash (EL's /bin/sh) knows its own $HOSTTYPE, whatever uname says.
    let mut bash = Command::new("bash");
    bash.arg("--posix").arg(&neither);
    let r = run(bash, &[("PT__installdir", &dir), ("PATH", &liar)], b"{}");
    assert_eq!(ran(r), arch, "bash's HOSTTYPE");
    // PSICK_ARCH overrides all of them; amd64 and arm64 name the same binaries.
    for (name, binary) in [
        ("aarch64", "aarch64"),
        ("arm64", "aarch64"),
        ("amd64", "x86_64"),
    ] {
        let r = run(
            Command::new(i.entry()),
            &[("PT__installdir", &dir), ("PSICK_ARCH", name)],
            b"{}",
        );
        assert_eq!(ran(r), binary, "PSICK_ARCH={name}");
    }
}

#[test]
fn without_an_install_directory_the_binaries_are_beside_the_entry_in_the_module() {
    // A module on disk (a checkout, the tarball unpacked): files/ beside tasks/.
    let i = Install::new(&[this_arch()]);
    let r = run(Command::new(i.entry()), &[], b"{}");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("\"ran\""), "{}", r.stdout);
    // Started by a relative name from tasks/ itself.
    let mut sh = Command::new("sh");
    sh.arg("puppet_agent").current_dir(i.path("psick/tasks"));
    let out = sh
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ran\""));
}

#[test]
fn a_binary_that_lost_its_mode_is_made_executable_again() {
    let i = Install::new(&[this_arch()]);
    let bin = i.path(&format!("psick/files/{}/psick-task", this_arch()));
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o644)).unwrap();
    let dir = i.dir.path().display().to_string();
    let r = run(Command::new(i.entry()), &[("PT__installdir", &dir)], b"{}");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        fs::metadata(&bin).unwrap().permissions().mode() & 0o100,
        0o100
    );
}

#[test]
fn no_binary_for_the_node_is_a_psick_error_not_an_exec_format_error() {
    let i = Install::new(&["x86_64"]);
    let dir = i.dir.path().display().to_string();
    let error = |env: &[(&str, &str)]| -> Value {
        let r = run(Command::new(i.entry()), env, b"{}");
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        assert_eq!(r.stdout.lines().count(), 1, "one JSON line: {}", r.stdout);
        serde_json::from_str::<Value>(&r.stdout).unwrap()["_error"].clone()
    };
    let e = error(&[("PT__installdir", &dir), ("PSICK_ARCH", "riscv64")]);
    assert_eq!(e["kind"], "psick/unsupported-architecture", "{e}");
    assert_eq!(e["details"]["arch"], "riscv64");
    assert!(e["details"]["exitcode"].is_null());
    assert!(
        e["msg"].as_str().unwrap().contains("x86_64 and aarch64"),
        "{e}"
    );
    // A supported architecture whose file the runner did not put there.
    let e = error(&[("PT__installdir", &dir), ("PSICK_ARCH", "aarch64")]);
    assert_eq!(e["kind"], "psick/io-failed", "{e}");
    assert!(
        e["details"]["path"]
            .as_str()
            .unwrap()
            .ends_with("/psick/files/aarch64/psick-task"),
        "{e}"
    );
    // Quotes in the path stay valid JSON.
    let odd = i.path("a \"quoted\\ dir");
    fs::create_dir_all(&odd).unwrap();
    let e = error(&[("PT__installdir", odd.to_str().unwrap())]);
    assert!(
        e["details"]["path"]
            .as_str()
            .unwrap()
            .starts_with(odd.to_str().unwrap()),
        "{e}"
    );
}
