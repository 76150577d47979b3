//! The connection edge of `nscache serve`: the accept loop, with a cap on
//! connections, hyper's timer-driven header timeout, a request-body timeout,
//! the peer address for the handlers, and a graceful shutdown on SIGTERM or
//! ctrl-c. (The whole-request timeout is in [`Server::router`].)
//!
//! [`Server::router`]: crate::server::Server::router
//!
//! HTTP/1.1 only (the API and the UI need nothing more; HTTP/2 would need
//! its own bounds on streams and keep-alive).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::add_extension::AddExtensionLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::http::ApiError;

/// How long a client may take, and how many may be connected at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Time to send a request's line and headers, counted from the first
    /// byte awaited (also how long an idle keep-alive connection stays
    /// open). Default 10 s.
    pub header_read_timeout: Duration,
    /// Time from a request's headers to its response's headers; beyond it
    /// `408 Request Timeout` (JSON error `request_timeout`). Default 30 s.
    /// Applied by [`Server::router`](crate::server::Server::router), so that
    /// it holds however the router is served.
    pub request_timeout: Duration,
    /// Longest wait for the next piece of a request body; beyond it the
    /// body fails to read (`400`, or `408` once the request timeout is
    /// reached). Default 10 s.
    pub body_timeout: Duration,
    /// Connections served at once; further ones wait, unaccepted, in the
    /// listen backlog until one closes. Default 1024.
    pub max_connections: usize,
    /// On SIGTERM or ctrl-c, how long requests in flight may take to
    /// finish before the server exits anyway. Default 30 s.
    pub shutdown_grace: Duration,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The request timeout's bare 408, as the API's JSON error
/// `request_timeout` (a body timeout already answers JSON `body_timeout`).
pub(crate) async fn timeout_as_json(response: Response) -> Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took longer than the server allows",
        )
        .into_response();
    }
    response
}

/// Resolves on SIGTERM (Unix) or ctrl-c (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Serve `router` on `listener` within `limits` until `shutdown` resolves;
/// then stop accepting (the listener is closed: new connections are
/// refused), let requests in flight finish for up to
/// [`EdgeLimits::shutdown_grace`], and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: EdgeLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // (The request timeout is the router's: see `Server::router`.)
    let router = ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .service(router);
    tokio::pin!(shutdown);
    loop {
        // A slot first: beyond the cap, connections stay in the backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then retry.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = ServiceBuilder::new()
            .layer(AddExtensionLayer::new(ConnectInfo(peer)))
            .service(router.clone());
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?limits.shutdown_grace,
            "requests still in flight at the end of the shutdown grace period"
        );
    }
    Ok(())
}
