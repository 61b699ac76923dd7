//! Reading the records of nodes whose end event carried no result, so that
//! they are reported live rather than only with the results.

use orchestrator_types::{EventType, NodeState};

use super::Reporter;
use super::WatchConfig;
use super::follow::LiveJob;
use super::retry::gave_up;
use crate::api::{Api, ErrorClass, classify};
use crate::error::Error;
use crate::outcome::NodeReport;

/// Lookups of the record of a node whose end event carried no result,
/// before it is left to the collection of results.
pub(super) const LOOKUPS: u8 = 2;

impl LiveJob {
    /// Reports the nodes of [`LiveJob::awaiting`] from their records. The
    /// nodes that ended last come first among the finished (or failed) ones
    /// ordered by finish time, so one short page per state holds them. A node
    /// not found after [`LOOKUPS`] tries is left to the collection of
    /// results, so a server that never gives its record costs two requests,
    /// not one every poll.
    pub(super) async fn report_awaiting<A: Api>(
        &mut self,
        api: &A,
        rep: &mut dyn Reporter,
        cfg: &WatchConfig,
    ) -> Result<(), Error> {
        for (event, state) in [
            (EventType::NodeFinished, NodeState::Finished),
            (EventType::NodeFailed, NodeState::Failed),
        ] {
            let wanted = self.awaiting.values().filter(|(t, _)| *t == event).count() as u64;
            if wanted == 0 {
                continue;
            }
            let limit = (wanted * 2).clamp(10, cfg.page_size.max(10));
            let page = match api.recent_nodes(&self.job, state, limit).await {
                Ok(page) => page.items,
                Err(e) if classify(&e) == ErrorClass::Fatal => return Err(gave_up(&self.job, e)),
                Err(e) => {
                    tracing::debug!("reading the records of ended nodes failed: {e}");
                    Vec::new()
                }
            };
            for node in page {
                if node.state != state || node.result.is_none() {
                    continue;
                }
                let Some((t, _)) = self.awaiting.remove(&node.name) else {
                    continue;
                };
                let report = NodeReport::from_node(node, self.noop());
                self.report_live(report, t == EventType::NodeFailed, rep)?;
            }
            for (t, tries) in self.awaiting.values_mut() {
                if *t == event {
                    *tries = tries.saturating_add(1);
                }
            }
        }
        // Nodes given up on are reported with the results; forget them.
        self.awaiting.retain(|_, (_, tries)| *tries < LOOKUPS);
        Ok(())
    }
}
