//! The HTTP API: `PUT /kv/{key}`, `GET /kv/{key}`, `GET /status`.
//!
//! ```text
//!   PUT /kv/{key}  body = value (UTF-8)  ──► 200 {"key","epoch","seq","node","checked_mono_us","committed_mono_us"}
//!                                          400/408/413/414 {"error","reason"}   bad input, nothing written
//!                                          503 {"error":"not quorate: holding 2 of 5 votes, ...","reason"}
//!   GET /kv/{key}                        ──► 200 {"key","value","epoch","seq","node","writable"} | 404
//!   GET /status                          ──► 200 mode, gate, store, write counters, recent events
//! ```
//!
//! Served by hyper's HTTP/1.1 connection driver under our own accept loop, so that every
//! resource has a bound: at most [`CONNECTIONS_MAX`] connections, request heads within
//! [`HEADER_READ_TIMEOUT`], bodies within [`BODY_READ_TIMEOUT`] and
//! [`VALUE_BYTES_MAX`](crate::input::VALUE_BYTES_MAX). Half-closed connections are
//! supported, so a client that sends a truncated body and shuts its sending side still
//! reads the 400 that says so.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use quorate::clock::monotonic_us;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::input::{parse_key, parse_value, InputError, VALUE_BYTES_MAX};
use crate::service::{Service, WriteError};

/// Connections served at once; more wait in the kernel's accept queue.
pub const CONNECTIONS_MAX: usize = 256;
/// Time a client has to send a request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to send a request body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopping server waits for open requests to finish.
pub const DRAIN_MAX: Duration = Duration::from_secs(2);

/// The routes, with `service` as their state.
pub fn router(service: Service) -> Router {
    Router::new()
        .route("/kv/{key}", get(get_kv).put(put_kv))
        .route("/status", get(status))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service)
}

/// Serves `router` on `listener` until `stop` turns true, then lets open requests finish
/// for up to [`DRAIN_MAX`].
pub async fn serve(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        let slot = tokio::select! {
            _ = stop.changed() => break,
            s = slots.clone().acquire_owned() => match s { Ok(s) => s, Err(_) => break },
        };
        let stream = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_MAX, conn).await;
                }
            }
            drop(slot);
        });
    }
    // Every slot back means every connection task ended.
    let all = u32::try_from(CONNECTIONS_MAX).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN_MAX, slots.acquire_many(all)).await;
}

async fn put_kv(State(service): State<Service>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let input = async {
        let key = parse_key(key_of(&uri))?;
        let value = parse_value(read_body(&headers, body).await?)?;
        Ok::<_, InputError>((key, value))
    };
    let (key, value) = match input.await {
        Ok(kv) => kv,
        Err(e) => return bad_input(&service, &e),
    };
    match service.put(key.clone(), value).await {
        Ok(w) => answer(
            StatusCode::OK,
            json!({
                "key": key,
                "epoch": w.epoch,
                "seq": w.seq,
                "node": service.node().0,
                "checked_mono_us": w.checked_mono_us,
                "committed_mono_us": w.committed_mono_us,
            }),
        ),
        Err(e) => write_refused(&service, &e),
    }
}

async fn get_kv(State(service): State<Service>, uri: Uri) -> Response {
    let key = match parse_key(key_of(&uri)) {
        Ok(key) => key,
        Err(e) => return bad_input(&service, &e),
    };
    match service.get(key.clone()).await {
        Ok(Some(r)) => answer(
            StatusCode::OK,
            json!({
                "key": key,
                "value": r.value,
                "epoch": r.epoch,
                "seq": r.seq,
                "node": service.node().0,
                // Reads are local: a fenced node answers from what it had (see the crate docs).
                "writable": service.writable(),
            }),
        ),
        Ok(None) => {
            error(StatusCode::NOT_FOUND, "not_found", &format!("no value under key {key:?} on this node"))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "storage", &e.to_string()),
    }
}

async fn status(State(service): State<Service>) -> Response {
    answer(StatusCode::OK, service.status().await)
}

async fn not_found(uri: Uri) -> Response {
    if uri.path() == "/kv/" {
        return error(
            StatusCode::BAD_REQUEST,
            InputError::EmptyKey.kind(),
            &InputError::EmptyKey.to_string(),
        );
    }
    error(StatusCode::NOT_FOUND, "no_route", &format!("no route {}; try /kv/{{key}} or /status", uri.path()))
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "/kv/{key} takes GET and PUT, /status GET")
}

/// The still percent-encoded key: the path after `/kv/`.
fn key_of(uri: &Uri) -> &str {
    uri.path().strip_prefix("/kv/").unwrap_or_default()
}

/// Reads the body within [`BODY_READ_TIMEOUT`], refusing more than [`VALUE_BYTES_MAX`]
/// bytes (announced or received).
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, InputError> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len.to_str().ok().and_then(|s| s.parse().ok()).ok_or(InputError::BadLength)?;
        if len > VALUE_BYTES_MAX as u64 {
            return Err(InputError::ValueTooLarge { bytes: len });
        }
    }
    let collect = async {
        let mut body = body;
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| InputError::Truncated(error_chain(&e)))?;
            if let Ok(data) = frame.into_data() {
                let len = out.len() + data.len();
                if len > VALUE_BYTES_MAX {
                    return Err(InputError::ValueTooLarge { bytes: len as u64 });
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    };
    tokio::time::timeout(BODY_READ_TIMEOUT, collect)
        .await
        .map_err(|_| InputError::BodyTimeout(BODY_READ_TIMEOUT.as_secs()))?
}

/// An error and its sources, `outer: inner`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Bad input closes the connection: the body may be partly unread, so the stream is not at
/// a request boundary any more, and the client learns it from the header instead of
/// finding the connection gone at its next request.
fn bad_input(service: &Service, e: &InputError) -> Response {
    service.count_bad_input();
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = error(status, e.kind(), &e.to_string());
    response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    response
}

fn write_refused(service: &Service, e: &WriteError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = json!({
        "error": e.to_string(),
        "reason": e.kind(),
        "node": service.node().0,
        "mono_us": monotonic_us(),
    });
    answer(status, body)
}

fn error(status: StatusCode, reason: &str, text: &str) -> Response {
    answer(status, json!({ "error": text, "reason": reason }))
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
