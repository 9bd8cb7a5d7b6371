//! A minimal HTTP/1.1 GET client for the node's admin endpoint.
//!
//! The admin server is ours and speaks plain HTTP on a trusted address, so a full client
//! library would be weight without benefit. This one sends one request with
//! `Connection: close`, reads at most [`RESPONSE_BYTES_MAX`], and understands
//! `Content-Length`, chunked bodies and read-until-close. The whole exchange is bounded by a
//! timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Responses larger than this are refused: a status document is a few kilobytes.
pub(crate) const RESPONSE_BYTES_MAX: usize = 1 << 20;

/// A response: status code and body.
#[derive(Debug)]
pub(crate) struct Response {
    /// The HTTP status code.
    pub(crate) status: u16,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

/// Sends `GET path` to `addr` and returns the response, all within `timeout`.
pub(crate) async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, String> {
    match tokio::time::timeout(timeout, exchange(addr, path)).await {
        Ok(result) => result,
        Err(_) => {
            Err(format!("no complete answer from {addr} within {}", humantime::format_duration(timeout)))
        }
    }
}

async fn exchange(addr: SocketAddr, path: &str) -> Result<Response, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: quorate-cli\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("cannot send request to {addr}: {e}"))?;

    let mut raw = Vec::with_capacity(8 * 1024);
    let mut chunk = [0u8; 8 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| format!("reading from {addr}: {e}"))?;
        if n == 0 {
            break;
        }
        if raw.len() + n > RESPONSE_BYTES_MAX {
            return Err(format!("answer from {addr} is larger than {RESPONSE_BYTES_MAX} bytes"));
        }
        raw.extend_from_slice(&chunk[..n]);
        // Stop as soon as a Content-Length body is complete, in case the server keeps the
        // connection open despite `Connection: close`.
        if let Ok(Some(response)) = parse(&raw, false) {
            return Ok(response);
        }
    }
    match parse(&raw, true) {
        Ok(Some(response)) => Ok(response),
        Ok(None) => Err(format!("{addr} closed the connection before a complete answer")),
        Err(e) => Err(format!("bad answer from {addr}: {e}")),
    }
}

/// Parses a complete response from `raw`; `Ok(None)` when more bytes are needed. With
/// `at_eof`, a body without length runs to the end of `raw`.
fn parse(raw: &[u8], at_eof: bool) -> Result<Option<Response>, String> {
    let Some(head_end) = find(raw, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "header is not UTF-8".to_owned())?;
    let body = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x status line: {status_line:?}"));
    }
    let status: u16 = code.parse().map_err(|_| format!("bad status code in {status_line:?}"))?;

    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length =
                Some(value.parse::<usize>().map_err(|_| format!("bad Content-Length {value:?}"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }

    if chunked {
        return Ok(dechunk(body)?.map(|body| Response { status, body }));
    }
    match content_length {
        Some(len) if body.len() >= len => Ok(Some(Response { status, body: body[..len].to_vec() })),
        Some(len) if at_eof => Err(format!("body ended after {} of {len} bytes", body.len())),
        Some(_) => Ok(None),
        None if at_eof => Ok(Some(Response { status, body: body.to_vec() })),
        None => Ok(None),
    }
}

/// Decodes a chunked body; `Ok(None)` until the final zero-length chunk has arrived.
fn dechunk(mut body: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = find(body, b"\r\n") else { return Ok(None) };
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size".to_owned())?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if body.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: Result<Option<Response>, String>) -> Option<(u16, String)> {
        match r {
            Ok(Some(r)) => Some((r.status, String::from_utf8_lossy(&r.body).into_owned())),
            Ok(None) => None,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn content_length_bodies_complete_exactly_at_their_length() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";
        assert_eq!(body(parse(raw, false)), None);
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(body(parse(raw, false)), Some((200, "hello".to_owned())));
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let raw =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(body(parse(raw, false)), Some((404, "abcde".to_owned())));
    }

    #[test]
    fn bodies_without_length_run_to_the_close() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\n{}";
        assert_eq!(body(parse(raw, false)), None);
        assert_eq!(body(parse(raw, true)), Some((200, "{}".to_owned())));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", true).is_err());
        assert!(parse(b"HTTP/1.1 2x0 OK\r\n\r\n", true).is_err());
    }
}
