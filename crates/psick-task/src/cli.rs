//! What the command line selects. Runners start a task with no arguments;
//! pxp-agent starts an external module with the action as the only one.
//! Anything else gets a short usage and never starts puppet: an
//! administrator trying `puppet_agent --help` as root must not get a run.

use std::ffi::OsString;

/// The mode the process runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// No arguments: a task (`_task` picks which).
    Task,
    /// `metadata`: pxp-agent module metadata.
    ModuleMetadata,
    /// `run`: pxp-agent module action.
    ModuleRun,
    /// Anything else: usage, exit 2; `Some` names what was not understood.
    Usage(Option<String>),
}

/// Exit code for a command line that is not understood.
pub const EXIT_USAGE: u8 = 2;

/// The usage text; `PROG` stands for the name the binary was started as.
pub const USAGE: &str = "\
usage: PROG              run as a Puppet task: parameters as JSON on stdin or PT_* variables
       PROG metadata     print the pxp-agent module metadata (as pxp-module-puppet)
       PROG run          run the pxp-agent module action: request JSON on stdin

One static binary behind the psick tasks (puppet_agent, puppet_unlock, puppet_enable_noop,
system_update, puppet_install); see the README of the kick-psick module.
";

/// The usage for the program started as `argv0` (`puppet_agent`, or
/// `pxp-module-puppet` when installed as pxp-agent's module).
pub fn usage(argv0: Option<&std::ffi::OsStr>) -> String {
    let prog = argv0
        .and_then(|a| std::path::Path::new(a).file_name())
        .map_or_else(|| "puppet_agent".into(), |n| n.to_string_lossy());
    USAGE.replace("PROG", &prog)
}

/// Picks the mode from the arguments after the program name.
pub fn parse(args: &[OsString]) -> Mode {
    match args {
        [] => Mode::Task,
        [one] if one == "metadata" => Mode::ModuleMetadata,
        [one] if one == "run" => Mode::ModuleRun,
        [one] if one == "--help" || one == "-h" || one == "help" => Mode::Usage(None),
        other => Mode::Usage(Some(
            other
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Mode {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn usage_names_the_program() {
        let u = usage(Some(std::ffi::OsStr::new(
            "/opt/puppetlabs/pxp-agent/modules/pxp-module-puppet",
        )));
        assert!(u.starts_with("usage: pxp-module-puppet "), "{u}");
        assert!(usage(None).contains("puppet_agent metadata"));
    }

    #[test]
    fn modes() {
        assert_eq!(p(&[]), Mode::Task);
        assert_eq!(p(&["metadata"]), Mode::ModuleMetadata);
        assert_eq!(p(&["run"]), Mode::ModuleRun);
        assert_eq!(p(&["--help"]), Mode::Usage(None));
        assert_eq!(p(&["-h"]), Mode::Usage(None));
        assert_eq!(p(&["run", "x"]), Mode::Usage(Some("run x".into())));
        assert_eq!(p(&["--noop"]), Mode::Usage(Some("--noop".into())));
        assert_eq!(p(&[""]), Mode::Usage(Some(String::new())));
    }
}
