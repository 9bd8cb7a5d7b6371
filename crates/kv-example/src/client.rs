//! A small blocking HTTP/1.1 client for the service, for tests, benchmarks and scripts, on
//! hyper's client connection.
//!
//! It keeps one connection alive between requests and never retries: a request that fails
//! midway (connection reset, timeout) is an error whose outcome is unknown, because a write
//! may or may not have committed. The caller decides what that means. Bodies are read
//! through [`http_body_util::Limited`], so an answer larger than [`RESPONSE_BYTES_MAX`] is
//! refused without being buffered. Each client drives its connection on a private
//! current-thread tokio runtime; call it from a plain thread (or inside
//! `tokio::task::block_in_place`), not from async code.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::input::encode_key;

/// Answers larger than this are refused.
pub const RESPONSE_BYTES_MAX: usize = 1 << 20;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Why a request got no complete answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting, sending or receiving failed (including timeouts).
    #[error("{addr}: {what}: {source}")]
    Io {
        /// The server.
        addr: SocketAddr,
        /// What the client was doing.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The answer was not understood.
    #[error("{addr}: bad answer: {what}")]
    BadAnswer {
        /// The server.
        addr: SocketAddr,
        /// What was wrong with it.
        what: String,
    },
}

/// A connection to one service.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    timeout: Duration,
    /// Created on the first request.
    runtime: Option<tokio::runtime::Runtime>,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    /// A client for the service at `addr`; every request, from connecting to the last byte
    /// of the answer, takes at most `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Client {
        Client { addr, timeout, runtime: None, conn: None }
    }

    /// `PUT /kv/{key}` with `value` as the body.
    pub fn put(&mut self, key: &str, value: &[u8]) -> Result<Reply, ClientError> {
        self.request("PUT", &format!("/kv/{}", encode_key(key)), Some(value))
    }

    /// `GET /kv/{key}`.
    pub fn get(&mut self, key: &str) -> Result<Reply, ClientError> {
        self.request("GET", &format!("/kv/{}", encode_key(key)), None)
    }

    /// `GET /status`.
    pub fn status(&mut self) -> Result<Reply, ClientError> {
        self.request("GET", "/status", None)
    }

    /// Any request; `path` must already be percent-encoded.
    pub fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Reply, ClientError> {
        let addr = self.addr;
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            self.runtime =
                Some(rt.map_err(|source| ClientError::Io { addr, what: "start runtime", source })?);
        }
        let (Some(runtime), timeout) = (self.runtime.as_ref(), self.timeout) else {
            return Err(ClientError::Io {
                addr,
                what: "start runtime",
                source: std::io::Error::other("none"),
            });
        };
        let conn = self.conn.take();
        let exchange = exchange(addr, conn, method, path, body.map(<[u8]>::to_vec));
        let result = match runtime.block_on(async { tokio::time::timeout(timeout, exchange).await }) {
            Ok(result) => result,
            Err(_) => Err(ClientError::Io {
                addr,
                what: "receive",
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "no complete answer in time"),
            }),
        };
        // On error nothing is kept: never reuse a connection in an unknown state.
        result.map(|(reply, keep)| {
            self.conn = keep;
            reply
        })
    }
}

impl Drop for Client {
    /// Without waiting: a client may be dropped inside async code (a test's runtime), where
    /// a blocking runtime shutdown is not allowed. Its connection task just stops.
    fn drop(&mut self) {
        self.conn = None;
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One request on `conn` (or a new connection); the reply and the connection if it can
/// carry another request.
async fn exchange(
    addr: SocketAddr,
    conn: Option<SendRequest<Full<Bytes>>>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(Reply, Option<SendRequest<Full<Bytes>>>), ClientError> {
    let io = |what| move |source| ClientError::Io { addr, what, source };
    let mut sender = match conn {
        Some(c) if !c.is_closed() => c,
        _ => {
            let stream = tokio::net::TcpStream::connect(addr).await.map_err(io("connect"))?;
            stream.set_nodelay(true).map_err(io("configure"))?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| io("connect")(std::io::Error::other(e)))?;
            tokio::spawn(connection);
            sender
        }
    };
    sender.ready().await.map_err(|e| io("send")(std::io::Error::other(e)))?;
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| ClientError::BadAnswer { addr, what: format!("cannot build the request: {e}") })?;
    let response = sender.send_request(request).await.map_err(|e| io("receive")(std::io::Error::other(e)))?;
    let status = response.status().as_u16();
    let close = response
        .headers()
        .get(hyper::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let body = Limited::new(response.into_body(), RESPONSE_BYTES_MAX).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            ClientError::BadAnswer { addr, what: format!("body larger than {RESPONSE_BYTES_MAX} bytes") }
        } else {
            ClientError::Io { addr, what: "receive", source: std::io::Error::other(e) }
        }
    })?;
    let keep = (!close).then_some(sender);
    Ok((Reply { status, body: body.to_bytes().to_vec() }, keep))
}

/// Sends `raw` bytes as they are on a new connection, shuts the sending side, and reads
/// one answer: for testing what the server makes of malformed or truncated requests (which
/// no HTTP client would send). The answer head is parsed by `httparse`.
pub fn send_raw(addr: SocketAddr, raw: &[u8], timeout: Duration) -> Result<Reply, ClientError> {
    let io = |what| move |source| ClientError::Io { addr, what, source };
    let bad = |what: String| ClientError::BadAnswer { addr, what };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io("connect"))?;
    stream.set_read_timeout(Some(timeout)).map_err(io("configure"))?;
    stream.set_write_timeout(Some(timeout)).map_err(io("configure"))?;
    stream.write_all(raw).map_err(io("send"))?;
    stream.shutdown(Shutdown::Write).map_err(io("shutdown"))?;
    // The server closes after answering a bad request: read to the end, bounded.
    let mut answer = Vec::new();
    stream.take(RESPONSE_BYTES_MAX as u64 + 1).read_to_end(&mut answer).map_err(io("receive"))?;
    if answer.len() > RESPONSE_BYTES_MAX {
        return Err(bad(format!("answer larger than {RESPONSE_BYTES_MAX} bytes")));
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(&answer) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(bad("connection closed before a complete answer head".into()))
        }
        Err(e) => return Err(bad(format!("answer head: {e}"))),
    };
    let status = head.code.ok_or_else(|| bad("no status code".into()))?;
    let length = head
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok()))
        .map(|n| n.ok_or_else(|| bad("bad content-length".into())))
        .transpose()?;
    let mut body = answer.split_off(head_len);
    if let Some(n) = length {
        if body.len() < n {
            return Err(bad(format!("body ended after {} of {n} bytes", body.len())));
        }
        body.truncate(n);
    }
    Ok(Reply { status, body })
}
