//! The words for the watcher's notices, shared by the human and the JSON
//! reporters (which write them to stderr).

use crate::watch::Notice;

/// The text of `notice`, one line without its newline.
pub fn text(notice: &Notice) -> String {
    match notice {
        Notice::StopRequested { job } => format!(
            "Ctrl-C: asked the orchestrator to stop job {job}: no new nodes start, running ones finish. Press Ctrl-C again to force-stop, a third time to detach (reattach with `kick job watch {job}`)."
        ),
        Notice::StopFailed { job, error } => format!(
            "Ctrl-C: could not stop job {job}: {error}. Press Ctrl-C again to force-stop, a third time to detach, or run `kick job stop {job}`."
        ),
        Notice::ForceStopRequested { job } => format!(
            "Ctrl-C: force-stopping job {job}: runs in progress are ended. Press Ctrl-C again to detach (reattach with `kick job watch {job}`)."
        ),
        Notice::ForceStopFailed { job, error } => format!(
            "Ctrl-C: could not force-stop job {job}: {error}. Press Ctrl-C again to detach, then run `kick job stop --force {job}`."
        ),
        Notice::Detached { job } => format!(
            "Detached from job {job}; it goes on without kick. Reattach with `kick job watch {job}`."
        ),
        Notice::Stopping { job } => {
            format!("Job {job} is stopping: no new nodes start, running ones finish.")
        }
        Notice::EventsUnavailable { job, error } => format!(
            "Events of job {job} are unavailable ({error}); following the job's state instead, node results come at the end."
        ),
        Notice::EventsFailing { job, error } => format!(
            "Events of job {job} keep failing ({error}); following the job's state instead, node results come at the end."
        ),
        Notice::ListingInterrupted { job } => format!(
            "Ctrl-C: stopped listing the results of job {job}, which has ended (`kick job show {job}` lists them)."
        ),
        Notice::NotEnded { job, state } => {
            format!("Job {job} is still {state}; follow it with `kick job watch {job}`.")
        }
    }
}
