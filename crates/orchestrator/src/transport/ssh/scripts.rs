//! The POSIX `sh` scripts Kick runs on an SSH node, and the command lines
//! that start them. Each runs under `sh -c`, after sudo when the connection
//! escalates, and first says on stderr that it got that far (a line
//! `KICK-READY <id> <pid>`): only then does Kick send the script's stdin, so
//! a sudo password prompt never receives task input and task input never
//! reaches sudo.
//!
//! The node needs a POSIX shell, coreutils' `sha256sum` and `head`, `awk` and `/proc`:
//! every Linux that runs Puppet has them.

use std::fmt::Write as _;

/// The line that ends the escalation phase.
pub const READY: &str = "KICK-READY";
/// The run script's request for files the node's cache lacks:
/// `KICK-NEED <pid> <sha256>/<name>...`.
pub const NEED: &str = "KICK-NEED";
/// A failure of a script's own step: `KICK-ERR <ISSUE_CODE> <message>`.
pub const ERR: &str = "KICK-ERR";
/// The stop script's report: `KICK-STOPPED <TERM|KILL> <pid>...`.
pub const STOPPED: &str = "KICK-STOPPED";
/// The stop script's report of what survived KILL.
pub const LEFT: &str = "KICK-LEFT";
/// The run script's exit status of the task (the script's own status may
/// come from a signal to the script).
pub const EXIT: &str = "KICK-EXIT";

/// Quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    // shlex refuses only NUL bytes, which no path or value of ours holds;
    // drop them rather than fail.
    shlex::try_quote(&s.replace('\0', ""))
        .map(|c| c.into_owned())
        .unwrap_or_default()
}

/// The cache directory of the effective user, under `tmpdir`, checked to be
/// its own and private before anything in it is trusted. The effective UID
/// comes from the shell's own /proc/self/status, read by a builtin: `id -u`
/// would cost a process on every run on every node.
const CACHE_DIR: &str = r#"u=
while read -r k _ e _; do [ "$k" = Uid: ] && { u=$e; break; }; done < /proc/self/status
[ -n "$u" ] || u=$(id -u)
c="$t/kick-cache-$u"
if [ ! -d "$c" ]; then mkdir -m 700 "$c" 2>/dev/null || [ -d "$c" ] || { echo "KICK-ERR TMPDIR_ERROR Could not make the task cache $c in tmpdir $t" >&2; exit 101; }; fi
[ -O "$c" ] || { echo "KICK-ERR TMPDIR_ERROR The task cache $c belongs to another user" >&2; exit 101; }
"#;

/// Checks the cache for every file (`<sha256>/<name>[=<install path>]`, the
/// executable first) and takes the ones it lacks from stdin, then runs the
/// task, with cwd `/` as pxp-agent runs it, with the rest of stdin. A
/// multi-file task gets an install dir (mode 0700, removed at the end).
/// Arguments: tmpdir, run id, files.
///
/// One channel does it all: a first job on a node costs no more round trips
/// nor shells than a cached one (three channels per file cost 13 ms of the
/// node's CPU a node at 1,000 nodes). After `KICK-NEED <pid> <sha>/<name>...`
/// Kick sends each missing file as its size on a line, its bytes (GNU head
/// reads exactly that many), then the sha256 of the bytes it sent, which
/// must be the one asked for. Kick hashes them as it reads them: the bytes
/// cross an SSH channel, whose MAC already guards them, so the node spends
/// no process on hashing them again. Every node process counts: on a
/// trivial task they are most of what a run costs the node.
const RUN: &str = r#"set -u
t=$1; id=$2; shift 2
CACHE
# Every cached file's sha256 by one sha256sum: its line must read "<sha>  <sha>/<name>".
need=
have=
for f; do s=${f%%/*}; r=${f#*/}; n=${r%%=*}
  if [ -f "$c/$s/$n" ]; then have="$have $s/$n"; else need="$need $s/$n"; fi
done
if [ -n "$have" ]; then
  sums=$(cd "$c" && sha256sum $have 2>/dev/null)
  for w in $have; do
    case "
$sums
" in *"
${w%%/*}  $w
"*) ;; *) need="$need $w" ;; esac
  done
fi
if [ -n "$need" ]; then
  echo "KICK-NEED $$$need" >&2
  for w in $need; do s=${w%%/*}; n=${w#*/}
    read -r z || z=
    case $z in '' | *[!0-9]*) echo "KICK-ERR WRITE_ERROR The upload of $n was cut short" >&2; exit 102 ;; esac
    # install makes the sha's dir and an empty file of mode 0700 in one process; head
    # fills it (its mode stays), and the rename makes it appear whole to other runs.
    u="$c/$s/.upload.$$"
    if install -D -m 700 /dev/null "$u" && head -c "$z" > "$u" && read -r e && [ "$e" = "$s" ] && mv -f "$u" "$c/$s/$n"; then :; else
      rm -f "$u"; echo "KICK-ERR WRITE_ERROR Could not write $c/$s/$n (or its sha256 did not match)" >&2; exit 102
    fi
  done
fi
# A multi-file task's install dir: its directories by one mkdir, each file a hard link to
# the cache (a copy where the filesystem refuses links). A task that changed its file in
# place would change the cache too, and the next run's sha256 check would send it again.
# A single-file task runs from the cache and needs no directory of its own.
d=
exe=
dirs=
for f; do r=${f#*/}; i=${r#*=}
  case $i in "$r") ;; */*) d="$t/kick-run-$id"; dirs="$dirs $d/${i%/*}" ;; *) d="$t/kick-run-$id" ;; esac
done
if [ -n "$d" ]; then
  mkdir -m 700 "$d" || { echo "KICK-ERR TMPDIR_ERROR Could not make tmpdir $d" >&2; exit 101; }
  [ -z "$dirs" ] || mkdir -p $dirs || { rm -rf "$d"; echo "KICK-ERR MKDIR_ERROR Could not make the install dir in $d" >&2; exit 101; }
fi
for f; do s=${f%%/*}; r=${f#*/}; n=${r%%=*}; i=${r#*=}
  if [ "$i" != "$r" ]; then
    ln "$c/$s/$n" "$d/$i" 2>/dev/null || cp -p "$c/$s/$n" "$d/$i" || { rm -rf "$d"; echo "KICK-ERR MKDIR_ERROR Could not install $i in $d" >&2; exit 101; }
    [ -n "$exe" ] || exe="$d/$i"
  fi
  [ -n "$exe" ] || exe="$c/$s/$n"
done
echo "KICK-READY $id $$" >&2
# A stop TERMs this script too: it then starts no task, or goes on, once its
# task is gone, to remove the run dir and report the task's status. (A trap,
# unlike an ignored signal, is not inherited by the task.)
stopped=
trap stopped=1 TERM INT
# The PT_* variables come first on stdin, never on a command line (which every
# user of the node could read with ps): a count, then one "NAME BASE64" a line.
read -r n || n=0
while [ "$n" -gt 0 ]; do
  read -r k b || break
  v=$(printf %s "$b" | base64 -d; echo x)
  export "$k=${v%x}"
  n=$((n - 1))
done
if [ -n "$stopped" ]; then rc=143; else cd / && "$exe"; rc=$?; fi
[ -z "$d" ] || rm -rf "$d"
echo "KICK-EXIT $rc" >&2
exit $rc
"#;

/// Ends the run of script `$1` (whose arguments hold the run id `$4`) and
/// everything below it, in whatever session, read from /proc before the
/// first signal and again at every step: TERM, `$2` tenths of a second of
/// grace, then SIGSTOP until nothing new appears and KILL, then a check;
/// last, the run dir `$3` is removed. Prints `KICK-STOPPED <last signal>
/// <pids>` or, when something survived, `KICK-LEFT <pids>`.
///
/// The run script is never SIGSTOPped: under sudo it is sudo's child, and
/// sudo suspends itself when its child stops, which held the run's channel
/// open for ever. It traps TERM (see [`RUN`]), so it is TERMed even by a
/// force stop, to keep it from starting a task it had not started yet. A
/// `$1` that is not this run's script any more (its PID reused after a
/// restart) is left alone.
const STOP: &str = r#"set -u
p=$1; g=$2; d=$3; id=$4
echo "KICK-READY stop $$" >&2
tree() {
  for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null && echo "$l"; done |
  awk -v r="$1" -v me="$$" '{ if (match($0, /\)[^)]*$/)) { split(substr($0, RSTART + 2), a, " "); if ($1 != me) kid[a[2]] = kid[a[2]] " " $1 } }
    END { q = r; out = ""; while (q != "") { n = split(q, x, " "); q = ""; for (i = 1; i <= n; i++) { out = out " " x[i]; q = q kid[x[i]] } } print out }'
}
alive() {
  for x; do
    read -r l < "/proc/$x/stat" 2>/dev/null || continue
    # A zombie leader whose other threads still run (ruby's) is alive.
    case ${l##*) } in Z*) [ "$(ls "/proc/$x/task" 2>/dev/null | wc -l)" -gt 1 ] && printf ' %s' "$x" ;; *) printf ' %s' "$x" ;; esac
  done
}
grow() { # adds what appeared below the living; signals it with $1, if given
  for x in $(alive $known); do
    for y in $(tree "$x"); do case " $known " in *" $y "*) ;; *) known="$known $y"; [ -z "${1-}" ] || kill -"$1" "$y" 2>/dev/null ;; esac; done
  done
}
known=
if tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$id"; then
  known=$(tree "$p")
  kill -TERM "$p" 2>/dev/null
fi
# No grace (a force stop): KILL is the first and only signal of the task.
if [ "$g" -gt 0 ] && [ -n "$known" ]; then kill -TERM $known 2>/dev/null; fi
sig=TERM
i=0
while [ -n "$(alive $known)" ] && [ "$i" -lt "$g" ]; do
  sleep 0.1; i=$((i + 1))
  grow TERM
done
if [ -n "$(alive $known)" ]; then
  sig=KILL
  for round in 1 2 3 4 5; do
    grow
    a=$(alive $known); a=$(for x in $a; do [ "$x" = "$p" ] || printf ' %s' "$x"; done)
    [ -z "$a" ] || kill -STOP $a 2>/dev/null
  done
  a=$(alive $known); [ -z "$a" ] || kill -KILL $a 2>/dev/null
  i=0
  while [ -n "$(alive $known)" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
case $d in */kick-run-"$id") rm -rf "$d" ;; esac
left=$(alive $known)
if [ -n "$left" ]; then echo "KICK-LEFT$left"; exit 1; fi
echo "KICK-STOPPED $sig$known"
"#;

/// The `PT_*` variables as the run script reads them from stdin: a count,
/// then `NAME BASE64(VALUE)` a line.
pub fn env_block(env: &[(String, String)]) -> Vec<u8> {
    use base64::Engine as _;
    let mut out = format!("{}\n", env.len()).into_bytes();
    for (k, v) in env {
        out.extend_from_slice(k.as_bytes());
        out.push(b' ');
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(v.as_bytes())
                .as_bytes(),
        );
        out.push(b'\n');
    }
    out
}

/// The per-run directory of run `id` under `tmpdir`.
pub fn rundir(tmpdir: &str, id: &str) -> String {
    format!("{}/kick-run-{id}", tmpdir.trim_end_matches('/'))
}

fn with_cache(script: &str) -> String {
    script.replace("CACHE\n", CACHE_DIR)
}

/// How a script is started: `sh -c <script> kick <args>`, after `env` with
/// the task's `PT_*` variables, after sudo when escalating.
#[derive(Debug, Clone)]
pub struct Launch {
    /// `-u` of sudo, when escalating.
    pub run_as: Option<String>,
    /// The sudo prompt, unique to the run.
    pub prompt: String,
}

impl Launch {
    /// The command line for `script` with `args` and `env`.
    pub fn command(&self, script: &str, args: &[&str], env: &[(String, String)]) -> String {
        let mut cmd = String::new();
        if let Some(user) = &self.run_as {
            let _ = write!(
                cmd,
                "sudo -S -H -u {} -p {} ",
                quote(user),
                quote(&self.prompt)
            );
        }
        // After sudo, so that env_reset cannot drop the variables.
        if !env.is_empty() {
            cmd.push_str("/usr/bin/env");
            for (k, v) in env {
                let _ = write!(cmd, " {}", quote(&format!("{k}={v}")));
            }
            cmd.push(' ');
        }
        let _ = write!(cmd, "/bin/sh -c {} kick", quote(script));
        for a in args {
            let _ = write!(cmd, " {}", quote(a));
        }
        cmd
    }

    /// Runs the task (see [`RUN`]); its stdin starts with [`env_block`].
    pub fn run(&self, tmpdir: &str, id: &str, files: &[String]) -> String {
        let mut args = vec![tmpdir, id];
        args.extend(files.iter().map(String::as_str));
        self.command(&with_cache(RUN), &args, &[])
    }

    /// Ends the run `id` of script `pid` and its tree after `grace`, and
    /// removes its run dir under `tmpdir` (see [`STOP`]).
    pub fn stop(&self, pid: u32, grace: std::time::Duration, tmpdir: &str, id: &str) -> String {
        let tenths = (grace.as_millis() / 100).min(36_000);
        let dir = rundir(tmpdir, id);
        self.command(
            STOP,
            &[&pid.to_string(), &tenths.to_string(), &dir, id],
            &[],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        for s in [
            "plain",
            "it's",
            "a b",
            "$(rm -rf /)",
            "`x`",
            "\"q\"",
            "",
            "ü",
        ] {
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", &format!("printf %s {}", quote(s))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }

    #[test]
    fn the_command_line_puts_env_after_sudo() {
        let l = Launch {
            run_as: Some("root".into()),
            prompt: "P:".into(),
        };
        let c = l.command("echo hi", &["a b"], &[("PT_x".into(), "1 2".into())]);
        assert!(
            c.starts_with("sudo -S -H -u root -p P: /usr/bin/env 'PT_x=1 2' /bin/sh -c "),
            "{c}"
        );
        assert!(c.ends_with(" kick 'a b'"), "{c}");
    }

    #[test]
    fn the_scripts_parse() {
        let l = Launch {
            run_as: None,
            prompt: String::new(),
        };
        for script in [with_cache(RUN), STOP.to_owned()] {
            let st = std::process::Command::new("/bin/sh")
                .args(["-n", "-c", &script])
                .status()
                .unwrap();
            assert!(st.success(), "{script}");
        }
        assert!(
            l.stop(1, std::time::Duration::from_secs(2), "/tmp/", "r1")
                .contains("kick 1 20 /tmp/kick-run-r1 r1")
        );
    }

    /// Runs the stop script here, as the node would, for `pid` and run `id`.
    fn stop_here(pid: u32, id: &str) -> String {
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                STOP,
                "kick",
                &pid.to_string(),
                "0",
                "/nonexistent/kick-run-x",
                id,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn the_stop_ends_its_own_run_and_leaves_a_reused_pid_alone() {
        // A process that is not the run (its PID reused after a restart):
        // its arguments lack the run id.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let report = stop_here(other.id(), "r-123");
        assert!(report.starts_with("KICK-STOPPED"), "{report}");
        assert!(
            other.try_wait().unwrap().is_none(),
            "a stranger was signalled"
        );
        other.kill().unwrap();
        other.wait().unwrap();
        // The run's script (the id among its arguments) and its child.
        let mut run = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                "trap stopped=1 TERM; sleep 30; :",
                "kick",
                "/tmp",
                "r-123",
            ])
            .spawn()
            .unwrap();
        let children = format!("/proc/{0}/task/{0}/children", run.id());
        let mut child = String::new();
        for _ in 0..100 {
            child = std::fs::read_to_string(&children).unwrap_or_default();
            if !child.trim().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let child = child.trim().to_owned();
        assert!(!child.is_empty(), "the run script started its task");
        let report = stop_here(run.id(), "r-123");
        assert!(report.starts_with("KICK-STOPPED KILL"), "{report}");
        assert!(report.contains(&format!(" {child}")), "{report}");
        assert!(
            !std::path::Path::new(&format!("/proc/{child}")).exists() || {
                let stat =
                    std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
                stat.contains(") Z")
            },
            "the task survived"
        );
        let status = run.wait().unwrap();
        assert!(!status.success(), "{status:?}");
    }

    /// Runs the run script here, as the node would, with `stdin`.
    fn run_here(
        tmp: &std::path::Path,
        id: &str,
        files: &[String],
        stdin: &[u8],
    ) -> std::process::Output {
        use std::io::Write as _;
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", &with_cache(RUN), "kick", tmp.to_str().unwrap(), id])
            .args(files)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Dropped after writing: the script sees EOF.
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// What Kick sends for one missing file: its size, its bytes, then
    /// `sent`, the sha256 of the bytes as Kick read them.
    fn file_stream(bytes: &[u8], sent: &str) -> Vec<u8> {
        let mut out = format!("{}\n", bytes.len()).into_bytes();
        out.extend_from_slice(bytes);
        out.extend(format!("{sent}\n").into_bytes());
        out
    }

    fn sha(bytes: &[u8]) -> String {
        use sha2::Digest as _;
        format!("{:x}", sha2::Sha256::digest(bytes))
    }

    #[test]
    fn the_run_script_takes_missing_files_from_stdin_then_runs_the_task() {
        let tmp = tempfile::tempdir().unwrap();
        // Its cwd, and what the tmpdir holds while it runs.
        let task = b"#!/bin/sh\necho \"task $PT_x $(pwd)\"; ls \"${0%%/kick-cache-*}\"; cat\n";
        let file = format!("{}/echo.sh", sha(task));
        let files = [file.clone()];
        let mut stdin = file_stream(task, &sha(task));
        stdin.extend(env_block(&[("PT_x".into(), "1".into())]));
        stdin.extend_from_slice(b"{\"input\":true}");
        let out = run_here(tmp.path(), "run1", &files, &stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("KICK-NEED ") && err.contains(&format!(" {file}")),
            "{err}"
        );
        // pxp-agent's cwd; a single-file task gets no run dir, only the cache.
        let cache = format!("kick-cache-{}", own_uid());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("task 1 /\n{cache}\n{{\"input\":true}}")
        );
        let cached = tmp.path().join(format!("{cache}/{file}"));
        assert_eq!(std::fs::read(&cached).unwrap(), task);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cached).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        // Cached now: nothing is asked for, stdin is the task's from the start.
        let out = run_here(tmp.path(), "run1", &files, b"0\nagain");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("KICK-NEED"), "{err}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("task  /\n{cache}\nagain")
        );
        // A cached file that is not its sha256 any more is asked for again.
        std::fs::write(&cached, b"#!/bin/sh\necho tampered\n").unwrap();
        let mut again = file_stream(task, &sha(task));
        again.extend_from_slice(b"0\n");
        let out = run_here(tmp.path(), "run1", &files, &again);
        assert!(String::from_utf8_lossy(&out.stderr).contains("KICK-NEED"));
        assert_eq!(std::fs::read(&cached).unwrap(), task);
        std::fs::remove_file(&cached).unwrap();
        // Bytes that are not the file's (Kick's sha256 line says so), a
        // stream cut after the bytes, and one cut before the size: each is
        // refused, nothing is cached and nothing runs.
        let other = vec![b'x'; task.len()];
        let mut cut = format!("{}\n", task.len()).into_bytes();
        cut.extend_from_slice(task);
        for stdin in [file_stream(&other, &sha(&other)), cut, Vec::new()] {
            let out = run_here(tmp.path(), "run1", &files, &stdin);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(102), "{err}");
            assert!(err.contains("KICK-ERR WRITE_ERROR"), "{err}");
            assert!(out.stdout.is_empty());
            assert!(!cached.exists());
            let left: Vec<_> = std::fs::read_dir(cached.parent().unwrap())
                .map(|d| d.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{left:?}");
        }
    }

    #[test]
    fn a_multi_file_tasks_install_dir_links_the_cached_files() {
        let tmp = tempfile::tempdir().unwrap();
        let task = b"#!/bin/sh\npwd\nd=${0%/mod/tasks/t.sh}\nstat -c %h \"$d/mod/tasks/t.sh\" \"$d/mod/files/data.txt\"\necho \"$d\"\n";
        let data = b"data\n";
        let files = [
            format!("{}/t.sh=mod/tasks/t.sh", sha(task)),
            format!("{}/data.txt=mod/files/data.txt", sha(data)),
        ];
        let mut stdin = Vec::new();
        for b in [&task[..], &data[..]] {
            stdin.extend(file_stream(b, &sha(b)));
        }
        stdin.extend_from_slice(b"0\n");
        let out = run_here(tmp.path(), "m1", &files, &stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "/", "{text}");
        // Two names for each file while the task runs: the cache's and the install dir's.
        assert_eq!(lines[1..3], ["2", "2"], "{text}");
        assert!(lines[3].ends_with("/kick-run-m1"), "{text}");
        // The run dir is gone, the cache keeps its files, one name each again.
        assert!(!tmp.path().join("kick-run-m1").exists());
        let cached = tmp
            .path()
            .join(format!("kick-cache-{}/{}/data.txt", own_uid(), sha(data)));
        assert_eq!(std::fs::read(&cached).unwrap(), data);
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(std::fs::metadata(&cached).unwrap().nlink(), 1);
    }

    fn own_uid() -> u32 {
        let out = std::process::Command::new("id").arg("-u").output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}
