//! Waiting for the process to be told to stop, as `quorate run` and the examples do.

/// Waits for SIGINT or SIGTERM and names the one that came ("SIGINT" or "SIGTERM"). When
/// SIGTERM cannot be listened for, says so on stderr and waits for Ctrl-C alone.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        Err(e) => {
            eprintln!("cannot listen for SIGTERM ({e}); stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
