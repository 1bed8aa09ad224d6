//! The API's listener, with every connection bounded in time and in number: a client has
//! [`Limits::header_timeout`] to send a request's head, on a new connection and between requests
//! on a kept-alive one, or the connection is closed; and at most [`Limits::max_connections`] are
//! open at once. A new connection beyond that takes the place of the one idle the longest (no
//! request in flight), so sockets held open without a request can never lock out a client that
//! sends one; only when every connection has a request in flight is a new one closed at once.

use super::Limits;
use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long the listener waits after an accept error (descriptors exhausted) before it tries
/// again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// One open connection: requests in flight, since when it is idle, and how to close it.
struct Open {
    busy: usize,
    idle_since: Instant,
    evict: CancellationToken,
}

/// The open connections, by number.
#[derive(Default)]
struct Registry {
    open: Mutex<(u64, BTreeMap<u64, Open>)>,
}

impl Registry {
    /// Admits a new connection, closing the one idle the longest if `max` are open; `None` when
    /// all of them have a request in flight.
    fn admit(&self, max: usize) -> Option<(u64, CancellationToken)> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (next, conns) = &mut *open;
        if conns.len() >= max {
            let (&oldest, _) = conns
                .iter()
                .filter(|(_, c)| c.busy == 0)
                .min_by_key(|(_, c)| c.idle_since)?;
            if let Some(evicted) = conns.remove(&oldest) {
                evicted.evict.cancel();
            }
        }
        *next += 1;
        let evict = CancellationToken::new();
        conns.insert(
            *next,
            Open {
                busy: 0,
                idle_since: Instant::now(),
                evict: evict.clone(),
            },
        );
        Some((*next, evict))
    }

    /// A request of connection `id` starts (`true`) or ends.
    fn request(&self, id: u64, starts: bool) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = open.1.get_mut(&id) {
            if starts {
                conn.busy += 1;
            } else {
                conn.busy = conn.busy.saturating_sub(1);
                conn.idle_since = Instant::now();
            }
        }
    }

    fn remove(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.1.remove(&id);
    }
}

/// Marks a connection's request in flight until dropped, whether it completes or is cancelled.
struct InFlight {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.registry.request(self.id, false);
    }
}

/// Forgets a connection when its task ends, however it ends.
struct Admitted {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// Accepts connections on `listener` and serves `router` on each until `shutdown` resolves; then
/// stops accepting and lets the requests in flight finish.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::default());
    let stopping = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; trying again shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Some((id, evict)) = registry.admit(limits.max_connections) else {
            tracing::debug!("every connection has a request in flight; a new one is closed");
            continue;
        };
        let admitted = Admitted {
            registry: registry.clone(),
            id,
        };
        let router = router.clone();
        let stopping = stopping.clone();
        tasks.spawn(connection(
            stream, router, limits, admitted, evict, stopping,
        ));
    }
    stopping.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection until the client leaves, its head does not arrive in time, it is
/// evicted, or the server stops (then gracefully: the request in flight finishes).
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    admitted: Admitted,
    evict: CancellationToken,
    stopping: CancellationToken,
) {
    let registry = admitted.registry.clone();
    let id = admitted.id;
    let service = tower::service_fn(move |request: Request<hyper::body::Incoming>| {
        registry.request(id, true);
        let in_flight = InFlight {
            registry: registry.clone(),
            id,
        };
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(axum::body::Body::new)).await;
            drop(in_flight);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut conn = pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        // Evicted with no request in flight: closed at once, a half-sent head included.
        () = evict.cancelled() => {}
        () = stopping.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    drop(admitted);
}
