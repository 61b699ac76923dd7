//! Input named on the command line: `@FILE` and `-` (standard input).

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::error::Error;

/// Reads a file named on the command line as `@FILE`.
pub fn read_arg_file(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: PathBuf::from(path),
        source,
    })
}

/// The most kick reads from standard input (`--nodes -`, `--params -`).
const STDIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads standard input for `flag` given as `-`.
pub fn read_stdin(flag: &str) -> Result<String, Error> {
    use std::io::Read;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Error::ReadStdin {
            flag: flag.to_owned(),
            reason: "it is a terminal; pipe the input in (e.g. `... | kick agent --nodes -`)"
                .into(),
        });
    }
    let mut text = String::new();
    let read = stdin.lock().take(STDIN_LIMIT + 1).read_to_string(&mut text);
    match read {
        Ok(n) if n as u64 > STDIN_LIMIT => Err(Error::ReadStdin {
            flag: flag.to_owned(),
            reason: format!(
                "it holds more than {} MiB; use a file",
                STDIN_LIMIT / 1024 / 1024
            ),
        }),
        Ok(_) => Ok(text),
        Err(e) => Err(Error::ReadStdin {
            flag: flag.to_owned(),
            reason: e.to_string(),
        }),
    }
}
