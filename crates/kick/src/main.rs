//! The `kick` binary: parse, run, print the error, exit.

use std::process::ExitCode;

use clap::Parser;
use kick::{Cli, Context, Interrupts, Streams};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; usage errors exit 1 (clap
            // would use 2, which means "changed" for kick).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    kick::init_tracing(kick::verbosity(&cli));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async {
        // Every Ctrl-C is handed to the watcher, which stops, force-stops
        // or detaches; the default handler would kill kick at once.
        let interrupts = match Interrupts::sigint() {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: cannot handle Ctrl-C: {e}");
                return ExitCode::from(1);
            }
        };
        let mut ctx = Context::new(Streams::stdio(), interrupts);
        match kick::run(cli, &mut ctx).await {
            Ok(code) => ExitCode::from(code),
            Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        }
    })
}
