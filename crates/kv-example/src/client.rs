//! A small blocking HTTP/1.1 client for the service, for tests, benchmarks and scripts.
//!
//! It keeps one connection alive between requests and never retries: a request that fails
//! midway (connection reset, timeout) is an error whose outcome is unknown, because a write
//! may or may not have committed. The caller decides what that means. It understands what
//! the service sends (bodies with `Content-Length`, or up to the close) and refuses answers
//! larger than [`RESPONSE_BYTES_MAX`].

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

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
    stream: Option<TcpStream>,
}

impl Client {
    /// A client for the service at `addr`; every read and write waits at most `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Client {
        Client { addr, timeout, stream: None }
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
        let result = self.exchange(method, path, body);
        if result.is_err() {
            // Never reuse a connection in an unknown state.
            self.stream = None;
        }
        result
    }

    fn exchange(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Reply, ClientError> {
        let addr = self.addr;
        let io = |what| move |source| ClientError::Io { addr, what, source };
        let stream = match self.stream.take() {
            Some(s) => s,
            None => {
                let s = TcpStream::connect_timeout(&addr, self.timeout).map_err(io("connect"))?;
                s.set_read_timeout(Some(self.timeout)).map_err(io("configure"))?;
                s.set_write_timeout(Some(self.timeout)).map_err(io("configure"))?;
                s.set_nodelay(true).map_err(io("configure"))?;
                s
            }
        };
        let mut stream = stream;
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n").into_bytes();
        if let Some(body) = body {
            request.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        if let Some(body) = body {
            request.extend_from_slice(body);
        }
        stream.write_all(&request).map_err(io("send"))?;
        let (reply, keep) = read_reply(&mut stream, addr)?;
        if keep {
            self.stream = Some(stream);
        }
        Ok(reply)
    }
}

/// Sends `raw` bytes as they are on a new connection, shuts the sending side, and reads
/// one answer: for testing what the server makes of malformed or truncated requests.
pub fn send_raw(addr: SocketAddr, raw: &[u8], timeout: Duration) -> Result<Reply, ClientError> {
    let io = |what| move |source| ClientError::Io { addr, what, source };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io("connect"))?;
    stream.set_read_timeout(Some(timeout)).map_err(io("configure"))?;
    stream.set_write_timeout(Some(timeout)).map_err(io("configure"))?;
    stream.write_all(raw).map_err(io("send"))?;
    stream.shutdown(Shutdown::Write).map_err(io("shutdown"))?;
    read_reply(&mut stream, addr).map(|(reply, _)| reply)
}

/// Reads one answer; also says whether the connection can carry another request.
fn read_reply(stream: &mut TcpStream, addr: SocketAddr) -> Result<(Reply, bool), ClientError> {
    let bad = |what: String| ClientError::BadAnswer { addr, what };
    let mut raw = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            break end;
        }
        let n =
            stream.read(&mut chunk).map_err(|source| ClientError::Io { addr, what: "receive", source })?;
        if n == 0 {
            return Err(bad("connection closed before a complete answer head".into()));
        }
        if raw.len() + n > RESPONSE_BYTES_MAX {
            return Err(bad(format!("answer head larger than {RESPONSE_BYTES_MAX} bytes")));
        }
        raw.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| bad("head is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("status line {status_line:?}")))?;
    let mut length = None;
    let mut keep = true;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_ascii_lowercase());
        match name.as_str() {
            "content-length" => {
                let n: usize = value.parse().map_err(|_| bad(format!("content-length {value:?}")))?;
                if n > RESPONSE_BYTES_MAX {
                    return Err(bad(format!("body of {n} bytes, more than {RESPONSE_BYTES_MAX}")));
                }
                length = Some(n);
            }
            "transfer-encoding" => return Err(bad(format!("transfer-encoding {value} not supported"))),
            "connection" if value == "close" => keep = false,
            _ => {}
        }
    }
    let mut body = raw.split_off(head_end + 4);
    match length {
        Some(n) => {
            while body.len() < n {
                let got = stream.read(&mut chunk).map_err(|source| ClientError::Io {
                    addr,
                    what: "receive",
                    source,
                })?;
                if got == 0 {
                    return Err(bad(format!("body ended after {} of {n} bytes", body.len())));
                }
                body.extend_from_slice(&chunk[..got]);
            }
            body.truncate(n);
        }
        None => {
            keep = false;
            loop {
                let got = stream.read(&mut chunk).map_err(|source| ClientError::Io {
                    addr,
                    what: "receive",
                    source,
                })?;
                if got == 0 {
                    break;
                }
                if body.len() + got > RESPONSE_BYTES_MAX {
                    return Err(bad(format!("body larger than {RESPONSE_BYTES_MAX} bytes")));
                }
                body.extend_from_slice(&chunk[..got]);
            }
        }
    }
    Ok((Reply { status, body }, keep))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
