//! Entry point of the `psick-task` binary, staged as `tasks/puppet_agent`.
//! Everything lives in the library; see its docs.

fn main() -> std::process::ExitCode {
    psick_task::main()
}
