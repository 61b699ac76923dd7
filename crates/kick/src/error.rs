//! Why kick itself could not do its job. Every variant exits 1; messages say
//! what happened and what to do, and never contain the token.

use std::path::PathBuf;

use crate::summary::EXIT_ERROR;

/// kick's top-level error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),

    /// A file named on the command line (`@FILE`) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// Standard input, named on the command line as `-`, could not be read.
    #[error("cannot read {flag} from standard input: {reason}")]
    ReadStdin {
        /// The flag that asked for it (`--nodes`).
        flag: String,
        /// Why.
        reason: String,
    },

    /// A CI report (`--junit`, `--summary-md`) could not be written; the job
    /// itself is unaffected.
    #[error("{0}")]
    Report(#[from] ReportError),

    /// Configuration, token, TLS, network or API failure.
    #[error("{0}")]
    Client(Box<orchestrator_client::Error>),

    /// A job id the user typed names no job.
    #[error("no job {job}; see `kick job list`")]
    NoSuchJob {
        /// Job id.
        job: String,
    },

    /// A scheduled job id the user typed names no scheduled job.
    #[error("no scheduled job {id}; see `kick schedule list`")]
    NoSuchSchedule {
        /// Scheduled job id.
        id: String,
    },

    /// The orchestrator stopped answering while kick followed a job.
    #[error(
        "lost contact with the orchestrator while following job {job}: {cause}\nthe job goes on without kick; reattach with `kick job watch {job}`"
    )]
    LostContact {
        /// Job id.
        job: String,
        /// The last failure.
        cause: String,
    },

    /// A request failed while kick followed a job; the job itself goes on.
    #[error(
        "{source}\nthe job goes on without kick; once this is fixed, reattach with `kick job watch {job}`"
    )]
    Watch {
        /// Job id.
        job: String,
        /// The failure.
        #[source]
        source: Box<orchestrator_client::Error>,
    },

    /// A rollout's state file could not be written or read.
    #[error("rollout state {}: {message}", path.display())]
    State {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong and what to do.
        message: String,
    },

    /// PuppetDB could not resolve a query.
    #[error("{0}")]
    PuppetDb(Box<orchestrator_client::puppetdb::PuppetDbError>),

    /// stdout or stderr could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl From<orchestrator_client::Error> for Error {
    fn from(e: orchestrator_client::Error) -> Self {
        Self::Client(Box::new(e))
    }
}

impl From<orchestrator_client::puppetdb::PuppetDbError> for Error {
    fn from(e: orchestrator_client::puppetdb::PuppetDbError) -> Self {
        Self::PuppetDb(Box::new(e))
    }
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        EXIT_ERROR
    }

    /// True when stdout was closed by the reader (`kick ... | head`): not an
    /// error worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// A CI report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be created or written.
    #[error("cannot write the report {}: {source}; check that its directory exists and is writable", path.display())]
    Write {
        /// The report's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The JUnit document could not be serialized.
    #[error("cannot build the JUnit report {}: {reason}", path.display())]
    Junit {
        /// The report's path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
