//! A minimal HTTP/1.1 server for the fakes: bodies sized by `Content-Length`, connections kept
//! alive as Discord's API keeps them (so a load run measures requests, not TCP handshakes) until
//! the client asks to close or sends a body too big to read whole. Enough for reqwest and curl;
//! not for anything else.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// Status, JSON body and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// Sent after `content-type` and `content-length` (names and values as given).
    pub headers: Vec<(String, String)>,
}

impl From<(u16, String)> for Response {
    fn from((status, body): (u16, String)) -> Self {
        Response { status, body, headers: Vec::new() }
    }
}

/// Serves `handle` on a free loopback port until the runtime shuts down; returns the address.
pub async fn serve<F, Fut>(handle: F) -> std::io::Result<SocketAddr>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output: Into<Response>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let handle = handle.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                while let Some(request) = read_request(&mut reader).await {
                    let declared = request.headers.get("content-length").and_then(|l| l.parse().ok());
                    let cut = declared.unwrap_or(0) != request.body.len();
                    let close = cut
                        || request.headers.get("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
                    let Response { status, body, headers } = handle(request).await.into();
                    let extra: String =
                        headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
                    let connection = if close { "close" } else { "keep-alive" };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}connection: {connection}\r\n\r\n",
                        body.len()
                    );
                    // One write: a head and a body written apart on a kept connection meet
                    // Nagle's algorithm and the client's delayed ACK (40 ms a response).
                    let sent = write.write_all(format!("{head}{body}").as_bytes()).await.is_ok();
                    if !sent || close {
                        break;
                    }
                }
                let _ = write.shutdown().await;
            });
        }
    });
    Ok(addr)
}

async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length.min(8 << 20)];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request { method, path, headers, body })
}
