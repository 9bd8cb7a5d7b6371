//! The admin endpoint: `GET /status` (JSON) and `GET /metrics` (Prometheus text).
//!
//! A deliberately small HTTP/1.1 server: one request per connection, request head at most
//! [`REQUEST_BYTES_MAX`], read within [`REQUEST_TIMEOUT`], at most [`CONNECTIONS_MAX`]
//! connections at once (more wait in the kernel's accept queue). It binds loopback unless
//! configured otherwise and serves nothing that changes state.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::status::NodeStatus;

/// Largest request head read.
pub(crate) const REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Time a client has to send its request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub(crate) const CONNECTIONS_MAX: usize = 16;

/// Serves `status` (read afresh for every request) on `addr` until `stop` changes; returns
/// the task and the address actually bound.
pub(crate) async fn serve(
    addr: SocketAddr,
    status: impl Fn() -> NodeStatus + Send + Sync + 'static,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(JoinHandle<()>, SocketAddr)> {
    let status = Arc::new(status);
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let permits = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let task = tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                _ = stop.changed() => break,
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let stream = tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::debug!(error = %e, "admin accept failed");
                        continue;
                    }
                },
            };
            let status = status.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, handle(stream, &*status)).await;
                drop(permit);
            });
        }
    });
    Ok((task, bound))
}

async fn handle(mut stream: TcpStream, status: &(dyn Fn() -> NodeStatus + Sync)) -> std::io::Result<()> {
    let mut buf = vec![0u8; REQUEST_BYTES_MAX];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        if len == buf.len() {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "request too large\n",
            )
            .await;
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", "only GET is served\n").await;
    }
    match path {
        "/status" => {
            let body = serde_json::to_string_pretty(&status()).unwrap_or_else(|_| "{}".into());
            respond(&mut stream, "200 OK", "application/json", &body).await
        }
        "/metrics" => {
            let body = status().to_prometheus();
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4", &body).await
        }
        _ => respond(&mut stream, "404 Not Found", "text/plain", "try /status or /metrics\n").await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
