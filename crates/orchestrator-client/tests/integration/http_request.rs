//! One HTTP/1.1 request read off a raw socket, for the test servers that answer by hand (the
//! faults a server framework will not make: dropped connections, short bodies, a lost
//! response). The tests of orchestrator-client and of kick read requests with this one file
//! (kick's through `#[path]`).

use tokio::io::{AsyncRead, AsyncReadExt};

/// A request as the client sent it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The head as sent: the request line, the headers and the blank line.
    pub head: String,
    pub body: Vec<u8>,
}

/// Reads one request: its head, then as many bytes of body as its `Content-Length` says (none
/// without one). `None` when the connection ends or fails first, or what comes is not HTTP.
pub async fn read_request(sock: &mut (impl AsyncRead + Unpin)) -> Option<Request> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head) = req.parse(&buf).ok()? {
            let len: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= head + len {
                return Some(Request {
                    method: req.method?.to_owned(),
                    target: req.path?.to_owned(),
                    head: String::from_utf8_lossy(&buf[..head]).into_owned(),
                    body: buf[head..head + len].to_vec(),
                });
            }
        }
        if sock.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}
