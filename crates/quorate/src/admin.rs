//! The admin endpoint: `GET /status` (JSON), `GET /metrics` (OpenMetrics text), for
//! orchestrators `GET /healthz` (the node runs) and `GET /readyz` (the node may write), and
//! for operators `POST /members` and `POST /config` (online definition changes, accepted from
//! loopback only: see `change_api`).
//!
//! ```text
//!   accept (at most CONNECTIONS_MAX at once; more wait in the kernel's accept queue)
//!     └─► hyper HTTP/1.1, one request per connection, head ≤ REQUEST_BYTES_MAX read within
//!         REQUEST_TIMEOUT, the whole exchange within REQUEST_TIMEOUT
//!           └─► axum router: /status /metrics /healthz /readyz /members /config, 404 and 405 otherwise
//! ```
//!
//! It binds loopback unless configured otherwise; what changes state is refused (403) to
//! any peer that is not loopback, wherever it is bound.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::change_api::{self, Peer};
use crate::metrics;
use crate::reconfigure::Request;
use crate::status::NodeStatus;

/// Largest request head read; a larger one is answered 431. (hyper's smallest buffer.)
pub(crate) const REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Time a client has to send its request head, and to complete the whole exchange.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub(crate) const CONNECTIONS_MAX: usize = 16;

/// What the handlers read: the status (afresh per request), the histograms, whether the
/// driver still runs, and the runtime's dropped event lines.
#[derive(Clone)]
pub(crate) struct Source {
    pub(crate) status: Arc<dyn Fn() -> NodeStatus + Send + Sync>,
    pub(crate) observed: metrics::Observed,
    pub(crate) driver_running: Arc<AtomicBool>,
    pub(crate) event_lines_dropped: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// Where changes go: the node's driver.
    pub(crate) changes: mpsc::Sender<Request>,
}

/// The routes.
fn router(source: Source) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/members", post(change_api::members))
        .route("/config", post(change_api::config))
        .fallback(|| async {
            text(
                StatusCode::NOT_FOUND,
                "try /status, /metrics, /healthz or /readyz (GET), /members or /config (POST)\n",
            )
        })
        .method_not_allowed_fallback(|| async {
            text(
                StatusCode::METHOD_NOT_ALLOWED,
                "GET /status /metrics /healthz /readyz; POST /members /config\n",
            )
        })
        .with_state(source)
}

/// Serves `source` on `addr` until `stop` changes; returns the task and the address bound.
pub(crate) async fn serve(
    addr: SocketAddr,
    source: Source,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(JoinHandle<()>, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let router = router(source);
    let permits = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let task = tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                _ = stop.changed() => break,
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let (stream, peer) = tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::debug!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Each request learns whom it came from: changes are for loopback peers only.
            let service = TowerToHyperService::new(router.clone().layer(Extension(Peer(peer))));
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .max_buf_size(REQUEST_BYTES_MAX)
                    .timer(TokioTimer::new())
                    .header_read_timeout(REQUEST_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, conn).await;
                drop(permit);
            });
        }
    });
    Ok((task, bound))
}

fn text(code: StatusCode, body: impl Into<String>) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body.into()).into_response()
}

async fn status(State(s): State<Source>) -> Response {
    match serde_json::to_string_pretty(&(s.status)()) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the status: {e}\n")),
    }
}

async fn metrics_text(State(s): State<Source>) -> Response {
    let body = metrics::render(&(s.status)(), &s.observed, (s.event_lines_dropped)());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

/// Liveness: the driver task runs (it ends only when the node stops). A failing answer
/// means restart the process.
async fn healthz(State(s): State<Source>) -> Response {
    if s.driver_running.load(Ordering::Relaxed) {
        text(StatusCode::OK, "ok\n")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "the node's driver has stopped\n")
    }
}

/// Readiness as writability: 200 while the gate holds a quorum, 503 with the reason when it
/// is fenced. Use it where only a writable node should receive traffic.
async fn readyz(State(s): State<Source>) -> Response {
    let st = (s.status)();
    if st.writable {
        text(StatusCode::OK, format!("writable, epoch {}\n", st.epoch))
    } else {
        let why = st.why_not.unwrap_or_else(|| "not writable".to_owned());
        text(StatusCode::SERVICE_UNAVAILABLE, format!("not writable: {why}\n"))
    }
}
