//! The admin endpoint's client: one `GET` (or a JSON `POST`) over hyper's HTTP/1.1 client
//! connection.
//!
//! One request per connection (the admin server closes after each), the body read through
//! [`http_body_util::Limited`] so that at most [`RESPONSE_BYTES_MAX`] is ever buffered, and
//! the whole exchange (connect, request, body) bounded by one timeout.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Responses larger than this are refused: a status document is a few kilobytes.
pub(crate) const RESPONSE_BYTES_MAX: usize = 1 << 20;

/// A response: status code and body.
#[derive(Debug)]
pub(crate) struct Response {
    /// The HTTP status code.
    pub(crate) status: u16,
    /// The body, as sent (de-chunked).
    pub(crate) body: Vec<u8>,
}

/// Sends `GET path` to `addr` and returns the response, all within `timeout`.
pub(crate) async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, String> {
    bounded(addr, timeout, exchange(addr, path, None)).await
}

/// Sends `POST path` with the JSON `body` to `addr` and returns the response, all within
/// `timeout`.
pub(crate) async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Response, String> {
    bounded(addr, timeout, exchange(addr, path, Some(body))).await
}

async fn bounded(
    addr: SocketAddr,
    timeout: Duration,
    exchange: impl std::future::Future<Output = Result<Response, String>>,
) -> Result<Response, String> {
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => {
            Err(format!("no complete answer from {addr} within {}", humantime::format_duration(timeout)))
        }
    }
}

async fn exchange(addr: SocketAddr, path: &str, json: Option<Vec<u8>>) -> Result<Response, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("cannot talk HTTP to {addr}: {e}"))?;
    // The connection task ends with the exchange (the server closes) or with this process.
    let driver = tokio::spawn(connection);
    let builder = match &json {
        Some(_) => hyper::Request::post(path).header(hyper::header::CONTENT_TYPE, "application/json"),
        None => hyper::Request::get(path),
    };
    let request = builder
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::USER_AGENT, "quorate-cli")
        .body(Full::new(Bytes::from(json.unwrap_or_default())))
        .map_err(|e| format!("bad request for {path:?}: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("bad answer from {addr}: {e}"))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), RESPONSE_BYTES_MAX).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            format!("answer from {addr} is larger than {RESPONSE_BYTES_MAX} bytes")
        } else {
            format!("reading from {addr}: {e}")
        }
    })?;
    driver.abort();
    Ok(Response { status, body: body.to_bytes().to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers one connection with `answer` (after reading the request head).
    async fn one_answer(answer: Vec<u8>) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head).await;
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            }
        });
        Ok(addr)
    }

    async fn fetch(answer: &[u8]) -> Result<(u16, String), String> {
        let addr = one_answer(answer.to_vec()).await.map_err(|e| e.to_string())?;
        let r = get(addr, "/status", Duration::from_secs(5)).await?;
        Ok((r.status, String::from_utf8_lossy(&r.body).into_owned()))
    }

    #[tokio::test]
    async fn content_length_chunked_and_close_delimited_bodies_are_read() {
        let r = fetch(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").await;
        assert_eq!(r, Ok((200, "hello".to_owned())));
        let r = fetch(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .await;
        assert_eq!(r, Ok((404, "abcde".to_owned())));
        let r = fetch(b"HTTP/1.0 200 OK\r\n\r\n{}").await;
        assert_eq!(r, Ok((200, "{}".to_owned())));
    }

    #[tokio::test]
    async fn garbage_oversize_and_silence_are_errors_not_panics() -> std::io::Result<()> {
        assert!(fetch(b"SSH-2.0-OpenSSH\r\n\r\n").await.is_err());
        assert!(fetch(b"HTTP/1.1 2x0 OK\r\n\r\n").await.is_err());
        let big = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", RESPONSE_BYTES_MAX + 1);
        let mut big = big.into_bytes();
        big.resize(big.len() + RESPONSE_BYTES_MAX + 1, b'x');
        let r = fetch(&big).await;
        assert!(r.as_ref().is_err_and(|e| e.contains("larger than")), "{r:?}");
        // A server that accepts and never answers: the timeout, with the address.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let r = get(addr, "/status", Duration::from_millis(300)).await;
        assert!(r.as_ref().is_err_and(|e| e.starts_with("no complete answer from")), "{r:?}");
        drop(listener);
        Ok(())
    }
}
