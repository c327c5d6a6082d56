//! The accept loop: one hyper HTTP/1 connection per socket, with the connection-level limits
//! `axum::serve` does not offer.
//!
//! - **Header-read timeout** (`header_read_timeout`): a client must send a request's headers
//!   within this time, and a keep-alive connection waiting for its next request is closed after
//!   it too (hyper restarts the timer whenever it waits for a request head).
//! - **Connection limit** (`max_connections`): a connection counts from accept to close. When
//!   a new one arrives at the limit, the oldest connection with no request in progress (idle
//!   keep-alive, or still sending its headers) is closed to make room, so thousands of idle or
//!   slow-header connections cannot lock out `/health`. When every connection has a request in
//!   progress, the new one is answered `503` (`code: too_many_connections`) and closed.
//! - The body-read timeout is the handler's (see `read_body` in `lib.rs`): the body is read
//!   only once the route is known.
//!
//! Hand-written over hyper because neither axum nor hyper-util's auto server expose a
//! connection limit with eviction, and axum 0.8's `serve` has no header-read timeout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::{ServeError, ServeOptions};

/// One open connection, as the registry sees it.
struct Conn {
    /// Requests of this connection inside the router (0: idle or still reading headers).
    in_flight: AtomicUsize,
    /// Told to close (it was the oldest idle connection when the limit was reached).
    evict: Notify,
}

/// The open connections, keyed by accept order (oldest first).
struct Registry {
    limit: usize,
    inner: Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    next_id: u64,
    open: BTreeMap<u64, Arc<Conn>>,
    /// Ids told to close that have not closed yet; they do not count against the limit.
    evicted: Vec<u64>,
}

enum Admission {
    Admitted(u64, Arc<Conn>),
    /// At the limit and every connection has a request in progress.
    Full,
}

impl Registry {
    fn admit(&self) -> Admission {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let live = inner.open.len() - inner.evicted.len();
        if live >= self.limit {
            let victim = inner
                .open
                .iter()
                .find(|(id, conn)| {
                    conn.in_flight.load(Ordering::SeqCst) == 0 && !inner.evicted.contains(id)
                })
                .map(|(&id, conn)| (id, conn.clone()));
            match victim {
                Some((id, conn)) => {
                    inner.evicted.push(id);
                    conn.evict.notify_one();
                }
                None => return Admission::Full,
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            evict: Notify::new(),
        });
        inner.open.insert(id, conn.clone());
        Admission::Admitted(id, conn)
    }

    fn close(&self, id: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.open.remove(&id);
        inner.evicted.retain(|&e| e != id);
    }
}

/// Decrements a connection's in-flight count when the request leaves the router.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn enter(conn: &Arc<Conn>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(conn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts connections on `listener` and serves `app` on each until the task is dropped.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    options: &ServeOptions,
) -> Result<(), ServeError> {
    let registry = Arc::new(Registry {
        limit: options.max_connections.max(1),
        inner: Mutex::new(RegistryInner::default()),
    });
    let header_timeout = options.header_read_timeout;
    // An evicted or shut-down connection with a request in progress gets this long to finish.
    let grace = options.header_read_timeout + options.body_read_timeout;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: transient; wait instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (id, conn) = match registry.admit() {
            Admission::Admitted(id, conn) => (id, conn),
            Admission::Full => {
                tokio::spawn(refuse(stream, registry.limit));
                continue;
            }
        };
        let app = app.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            let service_conn = conn.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let guard = InFlight::enter(&service_conn);
                let response = app.clone().oneshot(request.map(Body::new));
                async move {
                    // The request stays in flight until hyper drops the response body, i.e.
                    // until the response is written.
                    let response = response.await?;
                    Ok::<_, std::convert::Infallible>(response.map(move |body| {
                        Body::new(body.map_frame(move |frame| {
                            let _ = &guard;
                            frame
                        }))
                    }))
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = conn.evict.notified() => {
                    // No request in flight: dropped (closed) at once, whether idle or halfway
                    // through its headers. A request that came in meanwhile is finished first.
                    if conn.in_flight.load(Ordering::SeqCst) > 0 {
                        connection.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(grace, connection).await;
                    }
                }
            }
            registry.close(id);
        });
    }
}

/// Answers a connection over the limit with a JSON `503` and closes it. The request is drained
/// briefly (at most 64 KiB, 1 s) after the answer, so the client reads the answer instead of a
/// connection reset.
async fn refuse(mut stream: TcpStream, limit: usize) {
    let body = serde_json::json!({"error": {
        "message": format!(
            "server busy: {limit} connections are open with requests in progress \
             (limit max_connections); retry later"
        ),
        "type": "server_error",
        "code": "too_many_connections",
    }})
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let second = Duration::from_secs(1);
    if tokio::time::timeout(second, stream.write_all(response.as_bytes()))
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::time::timeout(second, stream.shutdown()).await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(second, async {
        let mut drained = 0usize;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}
