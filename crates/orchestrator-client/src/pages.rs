//! Lazy paging through a job's nodes, one page in memory at a time.

use futures::Stream;
use orchestrator_types::JobNode;

use crate::client::{Client, NodesQuery};
use crate::error::Error;

struct State {
    client: Client,
    job: String,
    page_size: u64,
    offset: u64,
    page: std::vec::IntoIter<JobNode>,
    done: bool,
}

/// See [`Client::nodes`].
pub(crate) fn nodes(
    client: Client,
    job: String,
    page_size: u64,
) -> impl Stream<Item = Result<JobNode, Error>> + Send + Unpin + 'static {
    let state = State {
        client,
        job,
        page_size: page_size.max(1),
        offset: 0,
        page: Vec::new().into_iter(),
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(node) = st.page.next() {
                return Some((Ok(node), st));
            }
            if st.done {
                return None;
            }
            match next_page(&mut st).await {
                Ok(()) => {}
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            }
        }
    }))
}

async fn next_page(st: &mut State) -> Result<(), Error> {
    let query = NodesQuery::by_name(st.offset, st.page_size);
    let list = st.client.nodes_page(&st.job, &query).await?;
    let pagination = list.pagination.unwrap_or_default();
    if let Some(offset) = pagination.offset
        && offset != st.offset
    {
        // Without this a server that ignores `offset` would be read forever.
        return Err(Error::BadResponse {
            status: 200,
            reason: format!(
                "asked for the job's nodes from offset {} but the orchestrator returned offset {offset}",
                st.offset
            ),
            body_excerpt: String::new(),
        });
    }
    let got = list.items.len() as u64;
    st.offset += got;
    st.done = match pagination.total {
        // Servers may cap `limit` below what was asked, so with a total a
        // short page does not mean the end.
        Some(total) => got == 0 || got > st.page_size || st.offset >= total,
        // Without one, a short page ends the list, and a page larger than
        // asked for means the server ignored `limit` and sent everything.
        None => got != st.page_size,
    };
    st.page = list.items.into_iter();
    Ok(())
}
