//! Lazy paging through a job's nodes, one page in memory at a time, and
//! the end-of-list rule every paged listing shares.

use futures::Stream;
use orchestrator_types::{JobNode, Pagination};

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
    let got = list.items.len() as u64;
    let pagination = list.pagination.unwrap_or_default();
    st.done = last_page(&pagination, st.offset, st.page_size, got, "the job's nodes")?;
    st.offset += got;
    st.page = list.items.into_iter();
    Ok(())
}

/// Whether a page of `got` items, asked for from `offset` by pages of
/// `page_size`, was the last; an error when the server answered another
/// offset than the one asked for.
pub(crate) fn last_page(
    pagination: &Pagination,
    offset: u64,
    page_size: u64,
    got: u64,
    what: &str,
) -> Result<bool, Error> {
    if let Some(answered) = pagination.offset
        && answered != offset
    {
        // Without this a server that ignores `offset` would be read forever.
        return Err(Error::BadResponse {
            status: 200,
            reason: format!(
                "asked for {what} from offset {offset} but the orchestrator returned offset {answered}"
            ),
            body_excerpt: String::new(),
        });
    }
    Ok(match pagination.total {
        // Servers may cap `limit` below what was asked, so with a total a
        // short page does not mean the end.
        Some(total) => got == 0 || got > page_size || offset + got >= total,
        // Without one, a short page ends the list, and a page larger than
        // asked for means the server ignored `limit` and sent everything.
        None => got != page_size,
    })
}
