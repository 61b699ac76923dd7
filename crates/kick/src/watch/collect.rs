//! Reading an ended job's nodes page by page and reporting each result;
//! only the names of nodes already reported live are kept between pages,
//! never their outputs.

use std::collections::{HashSet, VecDeque};

use orchestrator_types::{JobNode, NodeList};

use super::Reporter;
use super::retry::retrying;
use super::{JobInfo, Notice, ResultMode, WatchConfig, WatchEvent};
use crate::api::Api;
use crate::error::Error;
use crate::outcome::{NodeReport, read_raw};
use crate::summary::Summary;

/// Result pages requested ahead of the one being reported.
const PAGES_IN_FLIGHT: usize = 2;

/// What collecting the results gave.
pub(super) enum Collected {
    /// Every node was reported.
    Done {
        /// The job as read before its results.
        info: Box<JobInfo>,
        /// The counts.
        summary: Summary,
    },
    /// Ctrl-C ended the listing.
    Interrupted,
}

/// A page's reports, and the node count the server gave.
fn page_reports<R>(
    page: NodeList<R>,
    report: impl FnMut(JobNode<R>) -> NodeReport,
) -> (Vec<NodeReport>, Option<u64>) {
    let total = page.pagination.as_ref().and_then(|p| p.total);
    (page.items.into_iter().map(report).collect(), total)
}

/// Reads every node of `job_id` and reports the results (not the summary);
/// nodes in `printed` were reported live.
#[allow(clippy::too_many_arguments)]
pub(super) async fn collect<A: Api + Clone + Send + Sync + 'static>(
    api: &A,
    job_id: &str,
    ended: bool,
    mut printed: HashSet<String>,
    rep: &mut dyn Reporter,
    interrupts: &mut super::Interrupts,
    cfg: &WatchConfig,
    mode: ResultMode,
) -> Result<Collected, Error> {
    let job = retrying(cfg, job_id, || api.job(job_id)).await?;
    let info = JobInfo::from_job(&job);
    rep.report(WatchEvent::ResultsBegin(&info))?;
    let mut summary = Summary::default();
    let noop = info.noop;
    let generic = info.is_generic_task();
    // The next page is fetched (and parsed, by the client) on another task
    // while this one reports the current page.
    let fetch = |offset: u64| {
        let (api, job, cfg) = (api.clone(), job_id.to_owned(), cfg.clone());
        tokio::spawn(async move {
            let keep = |o| mode.keeps_output(o, generic);
            let size = cfg.page_size;
            // The JSON formats copy results through as the server's text;
            // the human one reads them.
            let not_ended = |r: &mut NodeReport| {
                if !ended {
                    r.job_not_ended();
                }
            };
            Ok::<_, Error>(if mode.raw {
                let page = retrying(&cfg, &job, || api.nodes_page_raw(&job, offset, size));
                page_reports(page.await?, |n| {
                    let mut read = read_raw(n, noop, keep);
                    not_ended(read.report_mut());
                    crate::outcome::prepare(read)
                })
            } else {
                let page = retrying(&cfg, &job, || api.nodes_page(&job, offset, size));
                page_reports(page.await?, |n| {
                    let mut r = NodeReport::from_node_keeping(n, noop, keep);
                    not_ended(&mut r);
                    r
                })
            })
        })
    };
    // Pages are requested ahead, so that the server prepares the next ones
    // while this process parses and reports; at most PAGES_IN_FLIGHT + 1
    // pages are in memory.
    let mut pending = VecDeque::from([fetch(0)]);
    let mut next_offset = cfg.page_size;
    let mut total: Option<u64> = None;
    while let Some(mut handle) = pending.pop_front() {
        // The job has ended, so Ctrl-C here has nothing to stop: it ends
        // the listing at once.
        let joined = tokio::select! {
            biased;
            () = interrupts.next() => {
                handle.abort();
                pending.iter().for_each(|h| h.abort());
                rep.report(WatchEvent::Notice(&Notice::ListingInterrupted {
                    job: job_id.to_owned(),
                }))?;
                return Ok(Collected::Interrupted);
            }
            joined = &mut handle => joined,
        };
        let (reports, page_total) = joined.map_err(|e| Error::LostContact {
            job: job_id.to_owned(),
            cause: format!("collecting the results failed: {e}"),
        })??;
        let n = reports.len() as u64;
        if total.is_none() {
            total = page_total;
        }
        match total {
            Some(t) => {
                while pending.len() < PAGES_IN_FLIGHT && next_offset < t {
                    pending.push_back(fetch(next_offset));
                    next_offset += cfg.page_size;
                }
            }
            // Without a total, a full page means there may be more.
            None if n >= cfg.page_size && pending.is_empty() => {
                pending.push_back(fetch(next_offset));
                next_offset += cfg.page_size;
            }
            None => {}
        }
        for report in reports {
            let seen_live = printed.remove(&report.name);
            summary.add(report.outcome);
            rep.report(WatchEvent::Result {
                node: report,
                seen_live,
            })?;
        }
    }
    Ok(Collected::Done {
        info: Box::new(info),
        summary,
    })
}
