//! `kick man`: the man page from the clap definition, with the sections
//! clap does not know: ENVIRONMENT (every `KICK_*` variable an option
//! reads), FILES and EXIT STATUS.

use std::collections::BTreeMap;
use std::io::Write;

use crate::cli::{Cli, ManArgs};
use crate::context::Context;
use crate::error::Error;

/// Runs `kick man`.
pub fn run(ctx: &mut Context, a: ManArgs) -> Result<u8, Error> {
    let cmd = Cli::command();
    match a.dir {
        None => page(&cmd, &mut ctx.streams.out)?,
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            // Every subcommand's page, then kick.1 with the extra sections.
            clap_mangen::generate_to(cmd.clone(), &dir)?;
            let mut file = std::fs::File::create(dir.join("kick.1"))?;
            page(&cmd, &mut file)?;
            writeln!(ctx.streams.err, "wrote the man pages to {}", dir.display())?;
        }
    }
    Ok(0)
}

/// kick.1: clap's sections, then ENVIRONMENT, FILES, EXIT STATUS, SEE ALSO.
fn page(cmd: &clap::Command, w: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_subcommands_section(w)?;
    w.write_all(extra_sections(cmd).as_bytes())?;
    man.render_version_section(w)
}

/// Every `KICK_*` variable of any subcommand, with its option's help.
fn environment(cmd: &clap::Command) -> BTreeMap<String, (String, String)> {
    let mut vars = BTreeMap::new();
    let mut stack = vec![cmd.clone()];
    while let Some(c) = stack.pop() {
        for arg in c.get_arguments() {
            if let Some(var) = arg.get_env() {
                let flag = arg.get_long().map(|l| format!("--{l}")).unwrap_or_default();
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                vars.entry(var.to_string_lossy().into_owned())
                    .or_insert((flag, help));
            }
        }
        stack.extend(c.get_subcommands().cloned());
    }
    vars
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('-', "\\-")
}

fn extra_sections(cmd: &clap::Command) -> String {
    let mut s = String::from(".SH ENVIRONMENT\n");
    for (var, (flag, help)) in environment(cmd) {
        s.push_str(&format!(
            ".TP\n\\fB{}\\fR\nThe default of \\fB{}\\fR: {}\n",
            escape(&var),
            escape(&flag),
            escape(&help)
        ));
    }
    s.push_str(
        ".TP\n\\fBNO_COLOR\\fR\nWhen set (and not empty), no colours with \\fB\\-\\-color auto\\fR.\n\
         .TP\n\\fBCOLUMNS\\fR\nThe width human output is fitted to (else the terminal's).\n\
         .TP\n\\fBRUST_LOG\\fR\nWhat \\fB\\-v\\fR logs, as a tracing filter (e.g. \\fBdebug\\fR).\n",
    );
    s.push_str(&format!(
        ".SH FILES\n\
         .TP\n{}\nThe settings of PE's client tools: \\fBoptions.service\\-url\\fR, \\fBcacert\\fR, \\fBtoken\\-file\\fR, \\fBenvironment\\fR.\n\
         .TP\n~/{}\nThe same per user; it wins over the global file, the flags and \\fBKICK_*\\fR variables win over both.\n\
         .TP\n{}\nThe RBAC token (\\fBpuppet access login\\fR writes it).\n\
         .TP\n{}\nThe Puppet CA certificate the orchestrator is verified with; on the primary server, \\fBpuppet config print localcacert\\fR prints where it is.\n",
        escape(orchestrator_client::GLOBAL_CONFIG),
        escape(orchestrator_client::USER_CONFIG),
        escape(orchestrator_client::DEFAULT_TOKEN_FILE),
        escape(orchestrator_client::DEFAULT_CACERT),
    ));
    s.push_str(
        ".SH \"EXIT STATUS\"\n\
         .TP\n0\nEvery node succeeded without changes.\n\
         .TP\n2\nEvery node succeeded and at least one changed (or would change, in noop).\n\
         .TP\n4\nAt least one node failed, errored, was skipped or stopped.\n\
         .TP\n6\nBoth 2 and 4.\n\
         .TP\n1\nkick itself failed: usage, configuration, authentication, API or network.\n\
         .TP\n8\n\\fBkick job show\\fR of a job that has not ended.\n\
         .TP\n130\nDetached from a running job with a third Ctrl\\-C; the job goes on.\n",
    );
    s.push_str(
        ".SH \"SEE ALSO\"\nThe pages of the subcommands (kick\\-agent(1), kick\\-job\\-watch(1), ...) are written by \\fBkick man \\-\\-dir DIR\\fR.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kick_variable_is_listed() {
        let vars = environment(&Cli::command());
        for v in [
            "KICK_SERVICE_URL",
            "KICK_TOKEN_FILE",
            "KICK_CACERT",
            "KICK_ENVIRONMENT",
            "KICK_REQUEST_TIMEOUT",
            "KICK_WATCH_GIVE_UP",
            "KICK_PUPPETDB_URL",
        ] {
            assert!(vars.contains_key(v), "{v} missing: {vars:?}");
        }
    }
}
