//! The command line, as one clap definition: parsing, `--help`, the man page
//! and the shell completions all come from it. Arguments only: this module
//! imports nothing else of kick's, and every other module may read it.
//!
//! - [`schedule`]: `kick schedule` and the `--at`/`--every` flags.
//! - [`rollout`]: the rollout flags, `kick rollout` and `kick job rerun`.

pub mod rollout;
pub mod schedule;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use orchestrator_types::psick::PUPPET_AGENT_TASK;

pub use rollout::{JobRerunArgs, RolloutArgs, RolloutCommand};
pub use schedule::{ScheduleCommand, When};

/// Trigger Puppet agent runs and tasks through the Puppet Enterprise
/// Orchestrator API, watch them live and collect the results.
///
/// Exit codes: 0 every node succeeded without changes; 2 every node
/// succeeded and at least one changed (or would change, in noop); 4 at least
/// one node failed, errored, was skipped or stopped; 6 both 2 and 4; 1 kick
/// itself failed (usage, configuration, authentication, API or network);
/// 8 `kick job show` of a job that has not ended; 130 detached from a
/// running job with a third Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "kick", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run `puppet agent` on nodes through the psick::puppet_agent task.
    Agent(AgentArgs),
    /// Run any task.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Run Puppet on nodes with the orchestrator's own deploy command
    /// (what `puppet job run` does).
    Deploy(DeployArgs),
    /// Show, follow, list or stop jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Schedule agent runs and tasks for the orchestrator to start when due.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Show which nodes are connected to the orchestrator, or manage the
    /// connection entries of SSH nodes (`add`, `remove`, `list`).
    Inventory(InventoryArgs),
    /// List, show or resume rollouts (`--batch` runs).
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// List the tasks available, or show one task's parameters.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to generate the script for.
        shell: clap_complete::Shell,
    },
    /// Print kick's man page (roff) to stdout, or write one page per
    /// command into a directory.
    Man(ManArgs),
}

/// `kick man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write kick.1 and a page per subcommand (kick-agent.1, ...) here
    /// instead of printing kick.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `kick agent`.
#[derive(Debug, Args)]
#[command(after_help = AGENT_EXAMPLES)]
pub struct AgentArgs {
    /// Run in noop mode: report what would change, change nothing.
    #[arg(long, conflicts_with = "no_noop")]
    pub noop: bool,
    /// Enforce changes even on nodes configured with `noop = true`.
    #[arg(long)]
    pub no_noop: bool,
    /// Puppet server to run against, HOST or HOST:PORT (task parameter
    /// `puppet_master`); the node's configured server otherwise.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub server: Option<String>,
    /// Seconds to wait for an agent run already in progress to finish
    /// (task default 300).
    #[arg(long, value_name = "SECS")]
    pub wait_for_lock: Option<u64>,
    /// Seconds after which the node-side task stops the agent run.
    #[arg(long, value_name = "SECS")]
    pub run_timeout: Option<u64>,
    /// Run this task instead of psick::puppet_agent (it receives the same
    /// parameters).
    #[arg(long, value_name = "NAME", default_value = PUPPET_AGENT_TASK)]
    pub task: String,
    /// Environment the task is read from, when it differs from the Puppet
    /// environment given with --environment.
    #[arg(long, value_name = "ENV")]
    pub task_environment: Option<String>,
    /// More task parameters as a JSON object, inline, @FILE or - (stdin);
    /// a parameter also set by a flag is an error.
    #[arg(long = "params", value_name = "JSON|@FILE|-")]
    pub params_json: Option<String>,
    #[command(flatten)]
    pub puppet: PuppetFlags,
    #[command(flatten)]
    pub job: TaskJobArgs,
    #[command(flatten)]
    pub when: When,
}

/// Puppet agent flags of `kick agent` (task parameters) and `kick deploy`
/// (PE's deploy keys of the same names).
#[derive(Debug, Args, Clone, Default)]
pub struct PuppetFlags {
    /// Only apply resources with these tags (comma separated).
    #[arg(long, value_name = "T,...", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip resources with these tags (comma separated).
    #[arg(long, value_name = "T,...", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Run puppet with --debug.
    #[arg(long)]
    pub debug: bool,
    /// Run puppet with --trace (Ruby backtraces on errors).
    #[arg(long)]
    pub trace: bool,
    /// Run puppet with --evaltrace (time spent on each resource).
    #[arg(long)]
    pub evaltrace: bool,
    /// Seconds puppet waits for a connection to the server
    /// (--http_connect_timeout).
    #[arg(long, visible_alias = "http-connect-timeout", value_name = "SECS", value_parser = seconds(1))]
    pub connect_timeout: Option<u64>,
    /// Seconds an idle connection to the server is kept for reuse
    /// (--http_keepalive_timeout).
    #[arg(long, value_name = "SECS", value_parser = seconds(0))]
    pub http_keepalive_timeout: Option<u64>,
    /// Seconds puppet waits for data from the server (--http_read_timeout).
    #[arg(long, value_name = "SECS", value_parser = seconds(1))]
    pub http_read_timeout: Option<u64>,
    /// Seconds between checks whether configuration files changed
    /// (--filetimeout).
    #[arg(long, value_name = "SECS", value_parser = seconds(0))]
    pub filetimeout: Option<u64>,
    /// Resource ordering, PE's deploy key (Puppet 6 and later know only
    /// manifest order).
    #[arg(long, value_enum, value_name = "ORDER")]
    pub ordering: Option<Ordering>,
    /// Apply the node's cached catalog without asking the server.
    #[arg(long, conflicts_with = "no_use_cached_catalog")]
    pub use_cached_catalog: bool,
    /// Always ask the server for a catalog, whatever the node's setting.
    #[arg(long)]
    pub no_use_cached_catalog: bool,
    /// Fall back to the cached catalog when the server cannot compile one.
    #[arg(long, conflicts_with = "no_usecacheonfailure")]
    pub usecacheonfailure: bool,
    /// Fail the run when the server cannot compile a catalog.
    #[arg(long)]
    pub no_usecacheonfailure: bool,
}

/// The largest number of seconds a flag takes: one year, as the task.
pub const MAX_SECONDS: u64 = 365 * 24 * 3600;

fn seconds(min: u64) -> clap::builder::RangedU64ValueParser {
    clap::value_parser!(u64).range(min..=MAX_SECONDS)
}

/// `--ordering`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ordering {
    /// Manifest order.
    Manifest,
    /// By title hash (Puppet 5 and older).
    TitleHash,
    /// Random (Puppet 5 and older).
    Random,
}

impl Ordering {
    /// The value PE's deploy key takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::TitleHash => "title-hash",
            Self::Random => "random",
        }
    }

    /// The task parameter.
    pub fn param(self) -> orchestrator_types::psick::Ordering {
        match self {
            Self::Manifest => orchestrator_types::psick::Ordering::Manifest,
            Self::TitleHash => orchestrator_types::psick::Ordering::TitleHash,
            Self::Random => orchestrator_types::psick::Ordering::Random,
        }
    }
}

/// `kick task ...`.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Run a task on nodes.
    Run(TaskRunArgs),
}

/// `kick task run`.
#[derive(Debug, Args)]
#[command(after_help = TASK_EXAMPLES)]
pub struct TaskRunArgs {
    /// The task, `module::task` (or `module` for its init task).
    pub task: String,
    /// Task parameters as KEY=VALUE: true/false, numbers, JSON arrays and
    /// objects are typed, anything else is a string.
    #[arg(value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// All parameters as a JSON object, inline, @FILE or - (stdin); not
    /// with KEY=VALUE.
    #[arg(long = "params", value_name = "JSON|@FILE|-")]
    pub params_json: Option<String>,
    /// Ask the task to run in noop mode (the task must support it).
    #[arg(long)]
    pub noop: bool,
    #[command(flatten)]
    pub job: TaskJobArgs,
}

/// The targets, rollout and run flags of the commands that run a task (`kick agent`, `kick
/// task run`), in this order in their help.
#[derive(Debug, Args)]
pub struct TaskJobArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `kick deploy`.
#[derive(Debug, Args)]
#[command(after_help = DEPLOY_EXAMPLES)]
pub struct DeployArgs {
    /// Run in noop mode.
    #[arg(long, conflicts_with = "no_noop")]
    pub noop: bool,
    /// Enforce changes even on nodes configured with `noop = true`.
    #[arg(long)]
    pub no_noop: bool,
    /// How many nodes run at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u64>,
    /// Fail nodes whose configured environment differs from --environment
    /// (PE's default).
    #[arg(long, conflicts_with = "no_enforce_environment")]
    pub enforce_environment: bool,
    /// Let nodes run in their own configured environment.
    #[arg(long)]
    pub no_enforce_environment: bool,
    #[command(flatten)]
    pub puppet: PuppetFlags,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

const AGENT_EXAMPLES: &str = "\
Examples:
  kick agent --nodes web1.example.com,web2.example.com --noop
  kick agent --query 'inventory[certname] { facts.os.family = \"Debian\" }' --tags ntp
  kick agent --nodes @nodes.txt --environment staging --format json > run.json";

const TASK_EXAMPLES: &str = "\
Examples:
  kick task run package action=status name=openssl --nodes db1.example.com
  kick task run facts --nodes @nodes.txt --format jsonl
  kick task run mymod::restart --params '{\"service\": \"nginx\"}' --node-group 1a2b3c";

const DEPLOY_EXAMPLES: &str = "\
Examples:
  kick deploy --nodes web1.example.com --noop
  kick deploy --node-group 1a2b3c --environment production --concurrency 10";

/// Which nodes a job runs on: exactly one kind.
#[derive(Debug, Args, Clone, Default)]
#[group(required = true, multiple = false)]
#[command(next_help_heading = "Targets")]
pub struct TargetArgs {
    /// Certnames, comma separated, or @FILE (- for stdin) with one certname
    /// a line (# starts a comment).
    #[arg(long, short = 'n', value_name = "a,b,c|@FILE|-")]
    pub nodes: Option<String>,
    /// A PuppetDB query (PQL) selecting the nodes, or @FILE holding it.
    #[arg(long, value_name = "PQL|@FILE")]
    pub query: Option<String>,
    /// A node group id from the classifier.
    #[arg(long, value_name = "ID")]
    pub node_group: Option<String>,
    /// The nodes of an earlier job (or `rollout:ID`) that ended with these outcomes
    /// [default: failed,errored,skipped,stopped], from the server's records.
    #[arg(long, value_name = "JOB[:OUTCOME,...]")]
    pub nodes_from: Option<String>,
}

/// Flags of every command that starts a job.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Run")]
pub struct RunArgs {
    /// Free text stored with the job.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Per-node limit in seconds, enforced by the orchestrator.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Print the job id and exit 0 once the orchestrator accepted the job.
    #[arg(long, conflicts_with_all = ["junit", "summary_md"])]
    pub no_wait: bool,
    /// PuppetDB to resolve --query with, e.g. https://puppetdb.example.com:8081 (overrides
    /// puppetdb.conf).
    #[arg(
        long,
        value_name = "URL",
        help_heading = "Targets",
        env = "KICK_PUPPETDB_URL"
    )]
    pub puppetdb_url: Option<String>,
    /// KEY=VALUE stored with the job (repeatable; values typed like task
    /// parameters), beside kick's own marker.
    #[arg(long, value_name = "KEY=VALUE")]
    pub userdata: Vec<String>,
    #[command(flatten)]
    pub env: EnvArgs,
    #[command(flatten)]
    pub follow: FollowArgs,
}

/// How kick follows a job, one it starts or one `kick job show|watch` names: the orchestrator it
/// asks, what it prints, the CI reports it writes.
#[derive(Debug, Args, Clone, Default)]
pub struct FollowArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub reports: ReportArgs,
}

/// CI reports written when the job has ended.
#[derive(Debug, Args, Clone, Default)]
pub struct ReportArgs {
    /// Write a JUnit XML report: a testcase per node; in noop, a node that
    /// would change fails with type `drift`.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary (counts, failed nodes, drift table); without
    /// it, kick appends the summary to $GITHUB_STEP_SUMMARY when that is set.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// How to reach the orchestrator; each overrides orchestrator.conf (the
/// `KICK_*` variables count as the flag).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Connection")]
pub struct ConnArgs {
    /// Orchestrator URL, e.g. https://puppet.example.com:8143.
    #[arg(long, value_name = "URL", env = "KICK_SERVICE_URL")]
    pub service_url: Option<String>,
    /// RBAC token file (default ~/.puppetlabs/token).
    #[arg(long, value_name = "FILE", env = "KICK_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate to verify the orchestrator with
    /// (default /etc/puppetlabs/puppet/ssl/certs/ca.pem).
    #[arg(long, value_name = "FILE", env = "KICK_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Do not verify the orchestrator's certificate (unsafe; for tests).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds each request may take [default: 30].
    #[arg(long, value_name = "SECS", env = "KICK_REQUEST_TIMEOUT", value_parser = positive_secs)]
    pub request_timeout: Option<f64>,
    /// No service: run Kick's orchestrator inside kick for the SSH nodes of
    /// this Bolt inventory file (inventory.yaml, version 2); history under
    /// $XDG_STATE_HOME/kick/orchestrator.
    #[arg(long, value_name = "FILE", env = "KICK_INVENTORY")]
    pub inventory: Option<PathBuf>,
    /// With --inventory: where the tasks' modules are (repeatable)
    /// [default: ./modules, ~/.puppetlabs/bolt/modules, Puppet's modulepaths].
    #[arg(
        long,
        value_name = "DIR",
        env = "KICK_MODULEPATH",
        value_delimiter = ':'
    )]
    pub modulepath: Vec<PathBuf>,
}

/// The Puppet environment, for the commands that use one.
#[derive(Debug, Args, Clone, Default)]
pub struct EnvArgs {
    /// Puppet environment: the environment the task is read from and, for
    /// `agent` and `deploy`, the one the nodes run in.
    #[arg(long, short = 'e', value_name = "ENV", env = "KICK_ENVIRONMENT")]
    pub environment: Option<String>,
}

/// A number of seconds, finite and above zero.
fn positive_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 86400"
        )),
    }
}

/// A number of seconds, finite and not negative.
fn secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 86400"
        )),
    }
}

/// Output flags of the commands that follow or show a job.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// When to use colours (NO_COLOR is respected in auto mode).
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// Whose output to print at the end in human format [default:
    /// failed,changed; all for tasks other than psick::puppet_agent].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "WHICH")]
    pub show_output: Vec<ShowOutput>,
    /// More diagnostics on stderr (-vv for HTTP details).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only the summary (and errors).
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Stop following a job after this many seconds without any answer
    /// from the orchestrator; the job goes on [default: 60].
    #[arg(long, value_name = "SECS", env = "KICK_WATCH_GIVE_UP", value_parser = secs, help_heading = "Connection")]
    pub give_up: Option<f64>,
}

/// Output flags of the listings.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Output")]
pub struct ListOutputArgs {
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// When to use colours (NO_COLOR is respected in auto mode).
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// More diagnostics on stderr (-vv for HTTP details).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Lines and a summary for people.
    #[default]
    Human,
    /// One JSON document at the end.
    Json,
    /// One JSON object a line, as things happen.
    Jsonl,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorWhen {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// `--show-output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowOutput {
    /// Every node.
    All,
    /// Nodes that changed (or would change).
    Changed,
    /// Nodes that failed, errored, were skipped or stopped.
    Failed,
    /// No node.
    None,
}

/// `kick job ...`.
// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Show a job and its nodes' results now, without waiting.
    Show(JobIdArgs),
    /// Follow a job live until it ends (reattach), with the same output and
    /// exit code as the command that started it.
    Watch(JobIdArgs),
    /// List recent jobs, newest first.
    List(JobListArgs),
    /// Stop a job: no new nodes start, running ones finish (or are killed
    /// with --force).
    Stop(JobStopArgs),
    /// Run a job's task (or deploy) again, with the same parameters, on its nodes that
    /// failed (or ended as --only says).
    // Boxed: its run and report flags make it twice the size of the others.
    Rerun(Box<JobRerunArgs>),
}

/// A job id plus connection and output flags.
#[derive(Debug, Args)]
pub struct JobIdArgs {
    /// Job id (the number kick printed when it started the job).
    pub id: String,
    #[command(flatten)]
    pub follow: FollowArgs,
}

/// `kick job list`.
#[derive(Debug, Args)]
pub struct JobListArgs {
    /// How many jobs to list.
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
    /// Only jobs of this type.
    #[arg(long = "type", value_enum)]
    pub job_type: Option<JobType>,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: ListOutputArgs,
}

/// Job types `kick job list --type` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobType {
    /// Task jobs (`kick agent`, `kick task run`).
    Task,
    /// Deploy jobs (`kick deploy`, `puppet job run`).
    Deploy,
}

/// `kick job stop`.
#[derive(Debug, Args)]
pub struct JobStopArgs {
    /// Job id.
    pub id: String,
    /// Also end the runs in progress.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: ListOutputArgs,
}

/// `kick inventory`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InventoryArgs {
    /// Manage connection entries instead (PE's Node Inventory API).
    #[command(subcommand)]
    pub command: Option<InventoryCommand>,
    /// Only these nodes (they are listed even when not connected).
    pub nodes: Vec<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: ListOutputArgs,
}

/// `kick inventory add|remove|list`: connection entries of PE's Node
/// Inventory API (on Kick's orchestrator and on PE alike), which say how
/// nodes without an agent are reached over SSH.
#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Add nodes reached over SSH: one connection entry for all NODEs.
    /// Secrets come from a file or standard input, never from arguments.
    #[command(after_help = INVENTORY_ADD_EXAMPLES)]
    Add(InventoryAddArgs),
    /// Remove nodes' connection entries.
    Remove(InventoryRemoveArgs),
    /// List the connection entries, one line per node.
    List(InventoryListArgs),
}

const INVENTORY_ADD_EXAMPLES: &str = "Examples:
  kick inventory add web1.example web2.example --user deploy --private-key ~/.ssh/id_ed25519 --run-as root
  printf '%s\\n' \"$PW\" | kick inventory add db1.example --user admin --password-stdin
  printf '%s\\n%s\\n' \"$PW\" \"$SUDO_PW\" | kick inventory add db2.example --user admin --password-stdin --sudo-password-stdin --run-as root";

impl InventoryCommand {
    /// The output flags of whichever subcommand was given.
    pub fn output(&self) -> &ListOutputArgs {
        match self {
            Self::Add(a) => &a.output,
            Self::Remove(a) => &a.output,
            Self::List(a) => &a.output,
        }
    }
}

/// `kick inventory add`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("auth").required(true).args(["private_key", "password_stdin"])))]
pub struct InventoryAddArgs {
    /// Certnames of the nodes.
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Login user.
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// Address to connect to, when it is not the certname (one NODE only).
    #[arg(long, value_name = "HOST")]
    pub hostname: Option<String>,
    /// SSH port (default 22).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Run tasks as this user, through sudo.
    #[arg(long, value_name = "USER")]
    pub run_as: Option<String>,
    /// Directory on the node for the task's files (default /tmp).
    #[arg(long, value_name = "DIR")]
    pub tmpdir: Option<String>,
    /// Do not check the node's host key (Kick's orchestrator checks it by
    /// default; PE's bolt-server does not).
    #[arg(long)]
    pub no_host_key_check: bool,
    /// Log in with this private key (unencrypted, OpenSSH or PEM); its
    /// content is sent and stored encrypted.
    #[arg(long, value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// Log in with the password read from standard input (its first line).
    #[arg(long)]
    pub password_stdin: bool,
    /// Read the sudo password (for --run-as) from standard input: its first
    /// line, or its second with --password-stdin.
    #[arg(long)]
    pub sudo_password_stdin: bool,
    /// Replace the entries the nodes already have (otherwise an error).
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: ListOutputArgs,
}

/// `kick inventory remove`.
#[derive(Debug, Args)]
pub struct InventoryRemoveArgs {
    /// Certnames whose entries go.
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: ListOutputArgs,
}

/// `kick inventory list`.
#[derive(Debug, Args)]
pub struct InventoryListArgs {
    /// Only these nodes' entries.
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Also ask for the secrets (the token needs the permission): the table
    /// names those each entry holds; --format json shows them.
    #[arg(long)]
    pub sensitive: bool,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: ListOutputArgs,
}

/// `kick tasks ...`.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// List the tasks of an environment.
    List(TasksArgs),
    /// Show a task's description, parameters and files.
    Show(TasksShowArgs),
}

/// `kick tasks list`, and where `kick tasks show` reads its task and how it prints it: the
/// environment, the orchestrator, the output.
#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub output: ListOutputArgs,
}

/// `kick tasks show`.
#[derive(Debug, Args)]
pub struct TasksShowArgs {
    /// The task, `module::task`.
    pub task: String,
    #[command(flatten)]
    pub tasks: TasksArgs,
}

impl Cli {
    /// Parses `args` (program name first), for callers without clap in scope.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        <Self as Parser>::try_parse_from(args)
    }

    /// The clap command, for completions and the man page.
    pub fn command() -> clap::Command {
        <Self as clap::CommandFactory>::command()
    }
}
