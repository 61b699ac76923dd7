//! Where output goes: stdout and stderr, and whether each is a terminal.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;

use crate::cli::ColorWhen;

/// Output streams and whether they are terminals.
pub struct Streams {
    /// stdout.
    pub out: Box<dyn Write + Send>,
    /// stderr.
    pub err: Box<dyn Write + Send>,
    /// stdout is a terminal.
    pub out_tty: bool,
    /// stderr is a terminal.
    pub err_tty: bool,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("out_tty", &self.out_tty)
            .field("err_tty", &self.err_tty)
            .finish_non_exhaustive()
    }
}

impl Streams {
    /// The process's stdout and stderr.
    pub fn stdio() -> Self {
        Self {
            out_tty: std::io::stdout().is_terminal(),
            err_tty: std::io::stderr().is_terminal(),
            // Buffered: serializing a large job makes many small writes.
            // Reporters flush after each line meant to be seen at once. A
            // copy of fd 1 as a plain file, because std's stdout is
            // line-buffered and would search every 64 KiB block for its last
            // newline (a tenth of the CPU of `--format json` on big jobs);
            // nothing in kick writes to stdout any other way.
            out: match std::io::stdout().as_fd().try_clone_to_owned() {
                Ok(fd) => Box::new(std::io::BufWriter::with_capacity(
                    64 * 1024,
                    std::fs::File::from(fd),
                )),
                Err(_) => Box::new(std::io::BufWriter::with_capacity(
                    64 * 1024,
                    std::io::stdout(),
                )),
            },
            err: Box::new(std::io::stderr()),
        }
    }

    /// Streams that discard everything.
    pub fn null() -> Self {
        Self {
            out: Box::new(std::io::sink()),
            err: Box::new(std::io::sink()),
            out_tty: false,
            err_tty: false,
        }
    }

    /// Whether to colour stdout: `always`, `never`, or in `auto` as
    /// anstream decides for a terminal stdout (`NO_COLOR`, `CLICOLOR`,
    /// `CLICOLOR_FORCE`, `TERM`).
    pub fn color(&self, when: ColorWhen) -> bool {
        match when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                self.out_tty
                    && anstream::AutoStream::choice(&std::io::stdout())
                        != anstream::ColorChoice::Never
            }
        }
    }
}
