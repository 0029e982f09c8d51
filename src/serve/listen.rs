//! Accepting connections: hyper's HTTP/1 server with a deadline on every
//! request head, and a shutdown that drains for a bounded grace period.
//!
//! Written on hyper directly because `axum::serve` offers neither: it gives
//! hyper no timer, so the header timeout never fires (a client that opens
//! connections and sends nothing holds them forever), and its graceful
//! shutdown waits for every connection however stalled (SIGTERM never ends
//! while an upload hangs).

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Serves `router` until `shutdown` completes; then stops accepting, lets
/// each connection finish the request it is on, and closes whatever is still
/// open after `grace`. Returns how many connections were cut at the end.
pub async fn listen(listener: TcpListener, router: Router, header_timeout: Duration, grace: Duration, shutdown: impl Future<Output = ()>) -> usize {
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or a connection reset before it was
                // accepted: the listener is fine, try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone().map_request(|r: hyper::Request<Incoming>| r.map(Body::new)));
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stopping.wait_for(|&stop| stop) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
        // Forget the connections that have ended.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_ok() {
        return 0;
    }
    let cut = connections.len();
    connections.shutdown().await;
    cut
}
