//! The `flags` of a `run` request, checked as pxp-module-puppet checks them,
//! plus `--server`/`--serverport` (unless the module configuration sets
//! `allow_server` to false), and a little stricter where its check lets an
//! option through unexamined.

use crate::error::Failure;

/// Flags always added, in this exact form (pxp-module-puppet's defaults).
pub const DEFAULT_FLAGS: &[&str] = &["--onetime", "--no-daemonize", "--verbose"];

const DEFAULT_FLAG_NAMES: &[&str] = &["onetime", "daemonize", "verbose"];

/// pxp-module-puppet's whitelist, plus `server` and `serverport`.
pub const ALLOWED_FLAG_NAMES: &[&str] = &[
    "color",
    "configtimeout",
    "debug",
    "disable_warnings",
    "environment",
    "evaltrace",
    "filetimeout",
    "graph",
    "http_connect_timeout",
    "http_debug",
    "http_keepalive_timeout",
    "http_read_timeout",
    "log_level",
    "noop",
    "ordering",
    "pluginsync",
    "server",
    "serverport",
    "show_diff",
    "skip_tags",
    "splay",
    "strict_environment_mode",
    "tags",
    "trace",
    "use_cached_catalog",
    "usecacheonfailure",
    "waitforcert",
];

/// The whitelisted names that choose the server the run talks to: refused
/// when the module configuration sets `allow_server` to false. (Puppet's
/// other ways to name one, `--server_list` and `--masterport`, are never on
/// the whitelist.)
pub const SERVER_FLAG_NAMES: &[&str] = &["server", "serverport"];

/// pxp-module-puppet's `VALID_FLAG_REGEX`, `\A[a-zA-Z0-9_:,\.\-]+\Z`.
fn valid_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:,.-".contains(&b))
}

fn invalid(msg: String) -> Failure {
    Failure::InvalidParams(msg)
}

/// The checked flags followed by the defaults and `--job-id <job>`.
///
/// Each element is trimmed and must match the character class; a `--name`
/// or `--no-name` element must name a whitelisted flag, and the defaults may
/// only appear exactly as they are added. Unlike pxp-module-puppet, a
/// single-dash element (`-d`, `-l`) is refused too: puppet's short options
/// include ones the whitelist keeps out (`-l` is `--logdest`). Without
/// `allow_server`, the [`SERVER_FLAG_NAMES`] are refused as non-permitted.
pub fn process(
    flags: &[String],
    job: Option<&str>,
    allow_server: bool,
) -> Result<Vec<String>, Failure> {
    let mut out: Vec<String> = Vec::with_capacity(flags.len() + 5);
    for raw in flags {
        let flag = raw.trim();
        if !valid_chars(flag) {
            return Err(invalid(format!(
                "The json received on STDIN contained characters not present in valid flags: \
                 {flag}"
            )));
        }
        if let Some(rest) = flag.strip_prefix("--") {
            let name = rest.strip_prefix("no-").unwrap_or(rest);
            if DEFAULT_FLAG_NAMES.contains(&name) {
                if !DEFAULT_FLAGS.contains(&flag) {
                    return Err(invalid(format!(
                        "The json received on STDIN overrides a default setting with: {flag}"
                    )));
                }
                continue;
            }
            if !ALLOWED_FLAG_NAMES.contains(&name) {
                return Err(invalid(format!(
                    "The json received on STDIN included a non-permitted flag: {flag}"
                )));
            }
            if !allow_server && SERVER_FLAG_NAMES.contains(&name) {
                return Err(invalid(format!(
                    "The json received on STDIN included a non-permitted flag: {flag} \
                     (allow_server is false in the module configuration)"
                )));
            }
        } else if flag.starts_with('-') {
            return Err(invalid(format!(
                "The json received on STDIN included a short option, which is not permitted \
                 (use the long form): {flag}"
            )));
        }
        // Ruby's `flags | DEFAULT_FLAGS` also drops repeated values (so
        // `--tags a --skip_tags a` lost its second `a`); only the defaults
        // are kept single here.
        out.push(flag.to_owned());
    }
    out.extend(DEFAULT_FLAGS.iter().map(|d| (*d).to_owned()));
    if let Some(job) = job {
        if !valid_chars(job) || job.starts_with('-') {
            return Err(invalid(format!(
                "The json received on STDIN contained an invalid job id: {job}"
            )));
        }
        out.push("--job-id".into());
        out.push(job.to_owned());
    }
    Ok(out)
}

/// The value given after `--server`, if any.
pub fn server(flags: &[String]) -> Option<&str> {
    flags
        .windows(2)
        .find(|w| w[0] == "--server")
        .map(|w| w[1].as_str())
        .filter(|v| !v.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(flags: &[&str]) -> Result<Vec<String>, Failure> {
        let flags: Vec<String> = flags.iter().map(|s| (*s).to_owned()).collect();
        process(&flags, None, true)
    }

    #[test]
    fn allowed_flags_values_and_defaults() {
        let given = [
            "--noop",
            "--environment",
            "production",
            "--no-splay",
            "--server",
            "pm.example.com",
            "--serverport",
            "8141",
        ];
        let mut padded = given;
        padded[1] = " --environment ";
        let got = p(&padded).unwrap();
        // Trimmed, in their order, the defaults after them.
        assert_eq!(got, [&given[..], DEFAULT_FLAGS].concat());
        assert_eq!(server(&got), Some("pm.example.com"));
        assert_eq!(p(&["--verbose", "--onetime"]).unwrap(), DEFAULT_FLAGS);
        let twice = p(&["--tags", "a", "--skip_tags", "a"]).unwrap();
        assert_eq!(twice[..4], ["--tags", "a", "--skip_tags", "a"]);
    }

    #[test]
    fn job_id_is_appended() {
        let got = process(&["--noop".into()], Some("42"), true).unwrap();
        assert_eq!(got[got.len() - 2..], ["--job-id", "42"]);
        assert!(process(&[], Some("--server=x"), true).is_err());
        assert!(process(&[], Some("4 2"), true).is_err());
    }

    #[test]
    fn refusals_carry_pxp_module_puppets_wording() {
        let cases = [
            (
                &["--server_list", "a"][..],
                "non-permitted flag: --server_list",
            ),
            (&["--detailed-exitcodes"][..], "non-permitted flag"),
            (&["--test"][..], "non-permitted flag"),
            (&["--logdest", "x"][..], "non-permitted flag"),
            (
                &["--daemonize"][..],
                "overrides a default setting with: --daemonize",
            ),
            (&["--no-verbose"][..], "overrides a default setting"),
            (
                &["--environment=production"][..],
                "characters not present in valid flags",
            ),
            (&["--tags", "a b"][..], "characters not present"),
            (&["/etc/passwd"][..], "characters not present"),
            (&[""][..], "characters not present"),
            (&["-l", "syslog"][..], "short option"),
            (&["-d"][..], "short option"),
        ];
        for (flags, want) in cases {
            let e = p(flags).unwrap_err().to_string();
            assert!(e.contains(want), "{flags:?}: {e}");
        }
    }

    #[test]
    fn without_allow_server_the_flags_that_choose_the_server_are_refused() {
        let strict = |flags: &[&str]| {
            let flags: Vec<String> = flags.iter().map(|s| (*s).to_owned()).collect();
            process(&flags, Some("7"), false)
        };
        for flags in [
            &["--server", "pm.example.com"][..],
            &["--noop", "--serverport", "8141"],
            &["--no-server"],
            &[
                "--environment",
                "production",
                "--server",
                "a",
                "--serverport",
                "1",
            ],
        ] {
            let e = strict(flags).unwrap_err().to_string();
            assert!(
                e.contains("The json received on STDIN included a non-permitted flag: --")
                    && e.contains("(allow_server is false in the module configuration)"),
                "{flags:?}: {e}"
            );
            assert!(matches!(
                strict(flags).unwrap_err(),
                Failure::InvalidParams(_)
            ));
        }
        // The flags never on the whitelist keep their usual refusal.
        let e = strict(&["--server_list", "a"]).unwrap_err().to_string();
        assert!(e.ends_with("non-permitted flag: --server_list"), "{e}");
        // Everything else is as with allow_server; a server name as a value
        // of another flag is only a value.
        let flags = ["--noop", "--environment", "server", "--tags", "serverport"];
        assert_eq!(strict(&flags).unwrap()[..5], p(&flags).unwrap()[..5],);
    }
}
