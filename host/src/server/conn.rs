//! Accepting connections: a cap on open connections (in total and per client
//! address) that evicts idle connections before it refuses anyone, deadlines
//! for every phase of a connection (headers, body, keep-alive wait, a
//! response the client stops reading), and graceful shutdown.
//!
//! hyper's own header timer also runs while a keep-alive connection waits
//! for its next request, so it cannot tell "slow headers" from "idle"; the
//! phases are tracked here from the socket's reads and the service's calls.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use futures::task::AtomicWaker;
use http::{Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Open connections at most when not configured (and the fd limit allows).
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Refusals being written at once; beyond this a refused socket is just closed.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// How long a refusal may take to write and drain.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Limits and deadlines of connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections at most, WebSockets included; 0: derived from the
    /// process's file-descriptor limit (3/4 of it, at most 10,000).
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64) at most.
    pub max_connections_per_address: usize,
    /// Time to send a request's headers, from its first byte (for a new
    /// connection, from the connect).
    pub header_read_timeout: Duration,
    /// Time to send a request's body, from the end of its headers.
    pub body_read_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request, and a
    /// response may wait for a client that stopped reading.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 0,
            max_connections_per_address: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The address a client is counted and rate-limited under: an IPv4 address
/// (IPv4-mapped IPv6 included) as is, an IPv6 address by its /64, because one
/// host usually holds a whole /64 and could rotate through it.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Raises the soft file-descriptor limit to the hard one (every connection
/// is a descriptor) and returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            let current =
                rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
            tracing::warn!("cannot raise the open-file limit ({e}); it stays at {current}");
            current
        }
    }
}

/// One open connection, as its watchdog and the eviction see it.
struct Conn {
    addr: IpAddr,
    epoch: Instant,
    /// Requests whose response has not ended.
    busy: AtomicUsize,
    /// Switched protocols (a WebSocket): its handler owns its deadlines.
    upgraded: AtomicBool,
    /// When the request being read began, in [`Conn::now`] units; 0: none is.
    reading_since: AtomicU64,
    /// When the connection last went quiet (connected, or a response ended).
    quiet_since: AtomicU64,
    /// Since when a write has been waiting for the client to read; 0: none is.
    write_blocked_since: AtomicU64,
    /// The newest request body's number on this connection.
    body_generation: AtomicU64,
    /// When that body must have arrived; 0: it is not being read.
    body_deadline: AtomicU64,
    /// The number of the body the watchdog found late (its reader fails
    /// with [`BodyTimeout`]); bodies of earlier requests never see it.
    body_expired: AtomicU64,
    /// The task reading the body, woken when it is late.
    body_reader: AtomicWaker,
    evicted: AtomicBool,
    /// Wakes the watchdog when the connection is evicted.
    wake: Notify,
}

impl Conn {
    /// Milliseconds since the server started, plus one so 0 can mean "unset".
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Whether closing it loses nothing: no request in progress, not a WebSocket.
    fn evictable(&self) -> bool {
        !self.upgraded.load(Ordering::Relaxed)
            && self.busy.load(Ordering::Acquire) == 0
            && self.write_blocked_since.load(Ordering::Relaxed) == 0
            && !self.evicted.load(Ordering::Relaxed)
    }

    /// When this connection last did something, for choosing whom to evict.
    fn last_activity(&self) -> u64 {
        match self.reading_since.load(Ordering::Relaxed) {
            0 => self.quiet_since.load(Ordering::Relaxed),
            reading => reading,
        }
    }

    /// The deadline now in force and what it is for; `None`: nothing to
    /// enforce yet (a request in progress whose writes are flowing).
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(u64, Closed)> {
        // A write waiting for the client counts in every phase: a response
        // hyper has queued after its body ended, a 101 not yet handed over.
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        let stall = (blocked != 0).then(|| {
            (
                blocked + millis(limits.idle_timeout),
                Closed::ResponseNotRead,
            )
        });
        if self.upgraded.load(Ordering::Relaxed) {
            return stall;
        }
        if self.busy.load(Ordering::Acquire) > 0 {
            let body = match self.body_deadline.load(Ordering::Relaxed) {
                0 => None,
                at => Some((at, Closed::BodyTimeout)),
            };
            return match (stall, body) {
                (Some(s), Some(b)) => Some(if b.0 <= s.0 { b } else { s }),
                (one, other) => one.or(other),
            };
        }
        if stall.is_some() {
            return stall;
        }
        match self.reading_since.load(Ordering::Relaxed) {
            0 => Some((
                self.quiet_since.load(Ordering::Relaxed) + millis(limits.idle_timeout),
                Closed::Idle,
            )),
            since => Some((
                since + millis(limits.header_read_timeout),
                Closed::HeaderTimeout,
            )),
        }
    }

    /// Fails the body being read: its reader answers 408, after which hyper
    /// closes the connection (the rest of the body is never read).
    fn expire_body(&self) {
        self.body_deadline.store(0, Ordering::Relaxed);
        let late = self.body_generation.load(Ordering::Relaxed);
        self.body_expired.store(late, Ordering::Release);
        self.body_reader.wake();
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4)
}

/// Why the server closed a connection.
#[derive(Debug, Clone, Copy)]
enum Closed {
    HeaderTimeout,
    /// Not closed by the watchdog: the body's reader fails, the handler
    /// answers 408, and hyper closes the connection.
    BodyTimeout,
    Idle,
    ResponseNotRead,
    Evicted,
}

impl Closed {
    fn label(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
            Self::Idle => "idle_timeout",
            Self::ResponseNotRead => "response_not_read",
            Self::Evicted => "evicted",
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Full,
    AddressFull,
}

/// The open connections and their limits.
pub struct Connections {
    limits: ConnectionLimits,
    /// `limits.max_connections`, resolved against the fd limit.
    max: usize,
    epoch: Instant,
    open: Mutex<Open>,
    tasks: TaskTracker,
    refusals: Arc<Semaphore>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    conns: HashMap<u64, Arc<Conn>>,
    per_address: HashMap<IpAddr, usize>,
}

impl Connections {
    /// Connections under `limits`, capped below `fd_limit` (a quarter of the
    /// descriptors stay for plugins, the store and outgoing requests).
    pub fn new(limits: ConnectionLimits, fd_limit: u64) -> Arc<Self> {
        let ceiling = usize::try_from(fd_limit / 4 * 3)
            .unwrap_or(usize::MAX)
            .max(16);
        let max = match limits.max_connections {
            0 => DEFAULT_MAX_CONNECTIONS.min(ceiling),
            n if n > ceiling => {
                tracing::warn!(
                    configured = n,
                    fd_limit,
                    "max_connections is above 3/4 of the open-file limit; using {ceiling}"
                );
                ceiling
            }
            n => n,
        };
        Arc::new(Self {
            limits,
            max,
            epoch: Instant::now(),
            open: Mutex::new(Open::default()),
            tasks: TaskTracker::new(),
            refusals: Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT)),
        })
    }

    /// The resolved cap on open connections.
    pub fn max(&self) -> usize {
        self.max
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, evicting an idle one when a cap is
    /// reached; refuses only when every connection in the way is busy.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let addr = client_key(ip);
        let mut open = self.lock();
        let from_addr = open.per_address.get(&addr).copied().unwrap_or(0);
        if from_addr >= self.limits.max_connections_per_address {
            if !Self::evict_one(&open, Some(addr)) {
                return Err(Refusal::AddressFull);
            }
        } else if open.conns.len() >= self.max && !Self::evict_one(&open, None) {
            return Err(Refusal::Full);
        }
        let conn = Arc::new(Conn {
            addr,
            epoch: self.epoch,
            busy: AtomicUsize::new(0),
            upgraded: AtomicBool::new(false),
            reading_since: AtomicU64::new(0),
            quiet_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            body_generation: AtomicU64::new(0),
            body_deadline: AtomicU64::new(0),
            body_expired: AtomicU64::new(0),
            body_reader: AtomicWaker::new(),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        });
        // A new connection's first request is "being read" from the connect:
        // one that never sends a byte gets the header deadline.
        let now = conn.now();
        conn.reading_since.store(now, Ordering::Relaxed);
        conn.quiet_since.store(now, Ordering::Relaxed);
        let id = open.next_id;
        open.next_id += 1;
        open.conns.insert(id, Arc::clone(&conn));
        *open.per_address.entry(addr).or_insert(0) += 1;
        metrics::gauge!("launch_http_connections_open").set(open.conns.len() as f64);
        Ok(Slot {
            id,
            conn,
            connections: Arc::clone(self),
        })
    }

    /// Evicts the idle connection (of `only`, if given) that has been quiet
    /// longest: closing it loses no request, and a client whose idle
    /// keep-alive connection closes simply reconnects. False if none is idle.
    fn evict_one(open: &Open, only: Option<IpAddr>) -> bool {
        let victim = open
            .conns
            .values()
            .filter(|c| only.is_none_or(|a| c.addr == a) && c.evictable())
            .min_by_key(|c| c.last_activity());
        match victim {
            Some(c) => {
                c.evict();
                true
            }
            None => false,
        }
    }

    fn release(&self, id: u64) {
        let mut open = self.lock();
        if let Some(conn) = open.conns.remove(&id)
            && let Some(n) = open.per_address.get_mut(&conn.addr)
        {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&conn.addr);
            }
        }
        metrics::gauge!("launch_http_connections_open").set(open.conns.len() as f64);
    }

    /// Answers a refused connection with a 503 and closes it, without
    /// letting refusals pile up: beyond a few in flight the socket is closed.
    fn refuse(&self, mut stream: TcpStream, refusal: Refusal) {
        let label = match refusal {
            Refusal::Full => "full",
            Refusal::AddressFull => "address_full",
        };
        metrics::counter!("launch_http_connections_refused_total", "reason" => label).increment(1);
        let Ok(permit) = Arc::clone(&self.refusals).try_acquire_owned() else {
            return;
        };
        let message = match refusal {
            Refusal::Full => format!(
                "the server has {} connections open, its limit ([server] max_connections), and none is idle; retry shortly",
                self.max
            ),
            Refusal::AddressFull => format!(
                "your address has {} connections open, the limit per client ([server] max_connections_per_address), and none is idle; close some and retry",
                self.limits.max_connections_per_address
            ),
        };
        let body = serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": "too_many_connections"}}).to_string();
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(REFUSAL_TIME, async {
                stream.write_all(response.as_bytes()).await?;
                stream.shutdown().await?;
                // Drain what the client sent, so closing does not reset the
                // connection before it reads the answer.
                let mut sink = [0u8; 4096];
                while stream.read(&mut sink).await? > 0 {}
                Ok::<_, io::Error>(())
            })
            .await;
        });
    }
}

/// A connection's place in [`Connections`], released when its socket closes
/// (for a WebSocket, when the socket handler ends).
struct Slot {
    id: u64,
    conn: Arc<Conn>,
    connections: Arc<Connections>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.release(self.id);
    }
}

/// The socket, noting when a request starts arriving and when writes stall.
struct TrackedStream {
    stream: TcpStream,
    slot: Slot,
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let conn = &self.slot.conn;
        if matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && !conn.upgraded.load(Ordering::Relaxed)
            && conn.busy.load(Ordering::Relaxed) == 0
            && conn.reading_since.load(Ordering::Relaxed) == 0
        {
            // No wake-up: the watchdog looks at least every header timeout,
            // and the deadline counts from this moment whenever it looks.
            conn.reading_since.store(conn.now(), Ordering::Relaxed);
        }
        polled
    }
}

impl TrackedStream {
    fn note_write<T>(&self, polled: &Poll<io::Result<T>>) {
        let conn = &self.slot.conn;
        let blocked = &conn.write_blocked_since;
        if polled.is_pending() {
            if blocked.load(Ordering::Relaxed) == 0 {
                blocked.store(conn.now(), Ordering::Relaxed);
            }
            return;
        }
        if blocked.load(Ordering::Relaxed) != 0 {
            blocked.store(0, Ordering::Relaxed);
        }
        // hyper ends a response's body before it has written all of it; the
        // rest going out is activity, not idleness.
        if conn.busy.load(Ordering::Relaxed) == 0 {
            conn.quiet_since.store(conn.now(), Ordering::Relaxed);
        }
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that must arrive by a deadline (counted from the end of
/// its headers). The connection's watchdog keeps the time, so a body costs
/// no timer of its own; it fails the body when the deadline passes.
pub struct DeadlineBody {
    inner: Incoming,
    conn: Arc<Conn>,
    generation: u64,
    timeout: Duration,
}

impl DeadlineBody {
    fn new(inner: Incoming, conn: Arc<Conn>, timeout: Duration) -> Self {
        let generation = conn.body_generation.fetch_add(1, Ordering::Relaxed) + 1;
        let deadline = if inner.is_end_stream() {
            0
        } else {
            conn.now() + millis(timeout)
        };
        conn.body_deadline.store(deadline, Ordering::Relaxed);
        Self {
            inner,
            conn,
            generation,
            timeout,
        }
    }

    /// The error to give if the watchdog found this body late.
    fn late(&self) -> Option<axum::BoxError> {
        (self.conn.body_expired.load(Ordering::Acquire) == self.generation)
            .then(|| Box::new(BodyTimeout(self.timeout)) as axum::BoxError)
    }

    /// This body no longer needs a deadline (read to its end, or dropped),
    /// unless a newer request's body has taken over the connection's.
    fn done(&self) {
        if self.conn.body_generation.load(Ordering::Relaxed) == self.generation {
            self.conn.body_deadline.store(0, Ordering::Relaxed);
        }
    }
}

/// The error a request body gives when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body did not arrive within {} s of its headers ([server] body_read_timeout_secs); send it at a steady rate",
    .0.as_secs()
)]
pub struct BodyTimeout(Duration);

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(late) = self.late() {
            return Poll::Ready(Some(Err(late)));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into);
        match &polled {
            Poll::Pending => {
                self.conn.body_reader.register(cx.waker());
                // Expired between the check above and the registration.
                if let Some(late) = self.late() {
                    return Poll::Ready(Some(Err(late)));
                }
            }
            Poll::Ready(None) => self.done(),
            Poll::Ready(Some(_)) if self.inner.is_end_stream() => self.done(),
            Poll::Ready(Some(_)) => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for DeadlineBody {
    /// A body dropped unread (a handler that did not need it) has no deadline.
    fn drop(&mut self) {
        self.done();
    }
}

/// Marks a request in progress on its connection until its response ends.
struct InProgress(Arc<Conn>);

impl InProgress {
    fn begin(conn: Arc<Conn>) -> Self {
        conn.busy.fetch_add(1, Ordering::Relaxed);
        conn.reading_since.store(0, Ordering::Relaxed);
        Self(conn)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        // Quiet from now, recorded before the count falls, so a watchdog
        // that sees no request in progress never sees an old quiet time.
        self.0.quiet_since.store(self.0.now(), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::Release);
    }
}

/// A response body that ends its request's [`InProgress`] when it is done
/// (or dropped).
pub struct TrackedBody {
    inner: axum::body::Body,
    _in_progress: InProgress,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Accepts connections on `listener` and serves `app` on them until
/// `shutdown`, then stops accepting and waits for open connections to finish
/// their requests (idle ones close at once).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    connections: Arc<Connections>,
    shutdown: CancellationToken,
) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors (or a connection reset before accept):
                // log at most once a second, back off briefly, go on.
                if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!("accept error: {e}");
                    last_error_log = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match connections.admit(remote.ip()) {
            Ok(slot) => {
                let _ = stream.set_nodelay(true);
                let task = serve_connection(
                    TrackedStream { stream, slot },
                    remote,
                    app.clone(),
                    Arc::clone(&connections),
                    shutdown.clone(),
                );
                connections.tasks.spawn(task);
            }
            Err(refusal) => connections.refuse(stream, refusal),
        }
    }
    drop(listener);
    connections.tasks.close();
    connections.tasks.wait().await;
}

async fn serve_connection(
    stream: TrackedStream,
    remote: SocketAddr,
    app: Router,
    connections: Arc<Connections>,
    shutdown: CancellationToken,
) {
    let conn = Arc::clone(&stream.slot.conn);
    let body_timeout = connections.limits.body_read_timeout;
    let service_conn = Arc::clone(&conn);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let in_progress = InProgress::begin(Arc::clone(&service_conn));
        let mut request =
            request.map(|inner| DeadlineBody::new(inner, Arc::clone(&service_conn), body_timeout));
        request.extensions_mut().insert(ConnectInfo(remote));
        let app = app.clone();
        async move {
            let response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                in_progress.0.upgraded.store(true, Ordering::Relaxed);
            }
            Ok::<_, Infallible>(response.map(|inner| TrackedBody {
                inner,
                _in_progress: in_progress,
            }))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.header_read_timeout(None);
    let connection = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    // The watchdog runs in its own task, so this one polls no timer of its
    // own while it serves requests; it only hears the verdict.
    let (verdict, mut closed) = tokio::sync::oneshot::channel();
    let watchdog = tokio::spawn({
        let conn = Arc::clone(&conn);
        let connections = Arc::clone(&connections);
        async move {
            let _ = verdict.send(watchdog(&conn, &connections.limits).await);
        }
    });
    let _stop_watchdog = AbortOnDrop(watchdog);
    let mut draining = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%remote, "connection ended: {e}");
                }
                return;
            }
            Ok(closed) = &mut closed => {
                tracing::debug!(%remote, reason = closed.label(), "closing connection");
                metrics::counter!("launch_http_connections_closed_total", "reason" => closed.label()).increment(1);
                return;
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves when the connection must close: a deadline of its current phase
/// passed, or it was evicted. A late body is failed here, and the watching
/// goes on (its handler answers 408, then hyper closes the connection).
///
/// Phase changes (a request starting, a response ending, a write stalling)
/// only record a timestamp; the watchdog looks at least once per shortest
/// timeout, so it sees each change before its deadline and then sleeps to the
/// exact deadline. That keeps timers and wake-ups out of the per-request path.
async fn watchdog(conn: &Conn, limits: &ConnectionLimits) -> Closed {
    let period = limits
        .header_read_timeout
        .min(limits.idle_timeout)
        .min(limits.body_read_timeout);
    loop {
        // Picked while idle, but a request may have begun since: it finishes
        // first (a later look closes the connection).
        if conn.evicted.load(Ordering::Relaxed) && conn.busy.load(Ordering::Acquire) == 0 {
            return Closed::Evicted;
        }
        let now = conn.now();
        let wait = match conn.deadline(limits) {
            Some((at, Closed::BodyTimeout)) if at <= now => {
                metrics::counter!("launch_http_connections_closed_total", "reason" => Closed::BodyTimeout.label()).increment(1);
                conn.expire_body();
                continue;
            }
            Some((at, why)) if at <= now => return why,
            Some((at, _)) => Duration::from_millis(at - now).min(period),
            None => period,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = conn.wake.notified() => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::from([192, 0, 2, 7]));
        assert_eq!(
            client_key(IpAddr::from([10, 0, 0, 1])),
            IpAddr::from([10, 0, 0, 1])
        );
    }

    #[tokio::test]
    async fn a_full_server_evicts_the_longest_idle_connection_before_refusing() {
        let limits = ConnectionLimits {
            max_connections: 2,
            max_connections_per_address: 2,
            ..ConnectionLimits::default()
        };
        let connections = Connections::new(limits, 1 << 20);
        let ip = IpAddr::from([127, 0, 0, 1]);
        let first = connections.admit(ip).ok();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = connections.admit(ip).ok();
        let (Some(first), Some(second)) = (first, second) else {
            panic!("two connections fit under a cap of two");
        };
        // Both idle: the third evicts the one idle longest.
        let third = connections.admit(ip).ok();
        assert!(first.conn.evicted.load(Ordering::Relaxed));
        assert!(!second.conn.evicted.load(Ordering::Relaxed));
        drop(first);
        // The other two busy: nothing can give way, so the next is refused.
        let _busy = (
            InProgress::begin(Arc::clone(&second.conn)),
            third
                .as_ref()
                .map(|t| InProgress::begin(Arc::clone(&t.conn))),
        );
        assert!(matches!(connections.admit(ip), Err(Refusal::AddressFull)));
        // Another address is held by the total cap the same way.
        assert!(matches!(
            connections.admit(IpAddr::from([127, 0, 0, 2])),
            Err(Refusal::Full)
        ));
    }
}
