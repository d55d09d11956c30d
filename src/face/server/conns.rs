//! Serving connections (server): the accept loop over hyper's HTTP/1, with what
//! `axum::serve` lacks against slow and hostile clients (`man server`, Connections):
//!
//! - a **header timeout**: a request line and headers must arrive whole within it, from the
//!   connection's start or from the first byte of a later request;
//! - an **idle timeout**: a keep-alive connection with no request under way is closed after
//!   it, and so is one whose client stops reading an answer for as long;
//! - a **cap on open connections** (see [`serve`] for what happens beyond it);
//! - a **drain** on SIGTERM: the listener is closed at once (new connections are refused),
//!   requests under way finish, idle connections close, all within a grace period.
//!
//! The body of a request is the handler's to read, under `--body-timeout` (`read_body`).
//! The client's address is put in each request's extensions as axum's
//! `ConnectInfo<SocketAddr>`, as `axum::serve` did.

use super::metrics::Metrics;
use super::{log_line, secure_headers, ApiError, App};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

/// How long a connection over the cap waits for a place before it is refused.
const CAP_WAIT: Duration = Duration::from_secs(1);
/// Connections over the cap held at once (waiting, or being answered 503); more are closed
/// as soon as they are accepted.
const MAX_WAITING: usize = 256;
/// How long a refused connection has to send its request head and take the 503.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// The limits on connections (from `Config`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// Where a connection is in its life, for its timeouts.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
enum Phase {
    /// Waiting for a request head, or reading one: the header timeout runs.
    Head = 0,
    /// A handler has the request (and reads its body under its own timeout).
    Handling = 1,
    /// The answer is being written: the idle timeout runs from the last byte the client
    /// took.
    Sending = 2,
    /// Between requests: the idle timeout runs until the next request's first byte. (hyper
    /// may still be writing the end of the last answer: the body is handed over whole
    /// before it is all sent; each byte the client takes restarts the timeout.)
    Idle = 3,
}

/// Why a connection was closed by the server.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expiry {
    Header,
    Idle,
    Send,
}

/// One connection's phase and since when, shared by its socket, its service and its task.
/// (All three run on the connection's one task; atomics only make it `Sync`.)
struct ConnState {
    base: Instant,
    phase: AtomicU8,
    /// Milliseconds from `base` when the phase began (or, when sending, when the client
    /// last took some of the answer).
    since: AtomicU64,
    /// The last write found the client's window full: it is not reading.
    blocked: AtomicBool,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            base: Instant::now(),
            phase: AtomicU8::new(Phase::Head as u8),
            since: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Relaxed) {
            0 => Phase::Head,
            1 => Phase::Handling,
            2 => Phase::Sending,
            _ => Phase::Idle,
        }
    }

    fn enter(&self, p: Phase) {
        self.since.store(self.now(), Relaxed);
        self.phase.store(p as u8, Relaxed);
    }

    /// Some bytes came in: between requests, a new request head has begun.
    fn read(&self) {
        if self.phase() == Phase::Idle {
            self.enter(Phase::Head);
        }
    }

    /// Some of an answer went out (`Some(n)`, n > 0), or none could (`None`).
    fn wrote(&self, progress: Option<usize>) {
        self.blocked.store(progress.is_none(), Relaxed);
        if progress.is_some() && matches!(self.phase(), Phase::Sending | Phase::Idle) {
            self.since.store(self.now(), Relaxed);
        }
    }

    /// When the task should look again (Ok), or why the connection has expired (Err).
    ///
    /// The look is never later than `now + step`, `step` being the shorter of the two
    /// timeouts. So no phase change needs to wake the task: a phase entered after this
    /// look (at `now` or later) expires at `now + step` at the earliest. The timer is
    /// set once per `step` or per expiry, not on every request.
    fn next_look(&self, l: &Limits, now: Instant) -> Result<Instant, Expiry> {
        let step = l.header_timeout.min(l.idle_timeout);
        match self.deadline(l) {
            Some((at, why)) if at <= now => Err(why),
            Some((at, _)) => Ok(at.min(now + step)),
            None => Ok(now + step),
        }
    }

    /// When the connection expires in its present phase, and why (None: not while a
    /// handler has the request).
    fn deadline(&self, l: &Limits) -> Option<(Instant, Expiry)> {
        let (after, why) = match self.phase() {
            Phase::Head => (l.header_timeout, Expiry::Header),
            Phase::Idle if self.blocked.load(Relaxed) => (l.idle_timeout, Expiry::Send),
            Phase::Idle => (l.idle_timeout, Expiry::Idle),
            Phase::Sending => (l.idle_timeout, Expiry::Send),
            Phase::Handling => return None,
        };
        let since = self.base + Duration::from_millis(self.since.load(Relaxed));
        Some((since + after, why))
    }
}

/// A socket that tells its [`ConnState`] when bytes move.
struct Watched {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl Watched {
    fn watch(&self, r: &Poll<std::io::Result<usize>>) {
        match r {
            Poll::Ready(Ok(n)) if *n > 0 => self.state.wrote(Some(*n)),
            Poll::Pending => self.state.wrote(None),
            _ => {}
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.watch(&r);
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(&r);
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Held by an answer's body: when hyper has written it all (or given up), the connection
/// is idle again.
struct Answered(Arc<ConnState>);

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.enter(Phase::Idle);
    }
}

/// Counts a connection open while it lives.
struct Open<'a>(&'a Metrics);

impl<'a> Open<'a> {
    fn new(m: &'a Metrics) -> Open<'a> {
        m.connections.open.fetch_add(1, Relaxed);
        m.connections.accepted.fetch_add(1, Relaxed);
        Open(m)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.connections.open.fetch_sub(1, Relaxed);
    }
}

/// Serves one admitted connection until it ends, expires, or the server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
) {
    let _open = Open::new(&app.metrics);
    let limits = app.cfg.conn_limits();
    let state = Arc::new(ConnState::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        state: state.clone(),
    });
    let svc_state = state.clone();
    let router = hyper_util::service::TowerToHyperService::new(router);
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        svc_state.enter(Phase::Handling);
        let state = svc_state.clone();
        let answer = hyper::service::Service::call(&router, req);
        async move {
            let res = answer.await?;
            state.enter(Phase::Sending);
            let guard = Answered(state);
            Ok::<_, Infallible>(res.map(|b| {
                use http_body_util::BodyExt;
                Body::new(b.map_frame(move |f| {
                    let _held = &guard;
                    f
                }))
            }))
        }
    });
    let mut http = http1::Builder::new();
    // hyper's own header timeout would also run between requests; ConnState keeps the
    // header and idle timeouts apart.
    http.header_read_timeout(None);
    let conn = http.serve_connection(io, svc);
    tokio::pin!(conn);
    let mut stopping = false;
    if *stop.borrow_and_update() {
        stopping = true;
        conn.as_mut().graceful_shutdown();
    }
    let first = state
        .next_look(&limits, Instant::now())
        .unwrap_or_else(|_| Instant::now());
    let look = tokio::time::sleep_until(first);
    tokio::pin!(look);
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = look.as_mut() => match state.next_look(&limits, Instant::now()) {
                Ok(at) => look.as_mut().reset(at),
                Err(why) => {
                    let c = &app.metrics.connections;
                    match why {
                        Expiry::Header => &c.header_timeouts,
                        Expiry::Idle => &c.idle_timeouts,
                        Expiry::Send => &c.send_timeouts,
                    }
                    .fetch_add(1, Relaxed);
                    break;
                }
            },
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Answers one request on a connection over the cap with 503 and closes it.
async fn refuse(stream: TcpStream) {
    let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
        let mut res =
            ApiError::unavailable("The server has too many connections open: try again shortly")
                .retry(1)
                .into_response();
        secure_headers(res.headers_mut());
        Ok::<Response<Body>, Infallible>(res)
    });
    let mut http = http1::Builder::new();
    http.keep_alive(false).header_read_timeout(None);
    let conn = http.serve_connection(TokioIo::new(stream), svc);
    let _ = tokio::time::timeout(REFUSAL_TIME, conn).await;
}

/// Whether an accept error concerns only the connection being accepted.
fn connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Serves `listener` until `stop` completes, then drains: see the module's comment.
///
/// Beyond `max_connections`, a new connection is accepted and waits up to [`CAP_WAIT`] for
/// another to close (a burst a little over the cap is served, late, rather than refused);
/// if none does, it is answered 503 with `Retry-After` and closed. It is accepted rather
/// than left in the kernel's backlog so that the client learns at once that this server is
/// full (and a load balancer can try another), instead of waiting in a queue it cannot see
/// that, once full, drops new connections silently like a network fault. Those waiting
/// connections are bounded too ([`MAX_WAITING`]); beyond them a connection is closed as
/// soon as it is accepted.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    app: Arc<App>,
    stop: impl Future<Output = ()>,
) {
    let limits = app.cfg.conn_limits();
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let waiting = Arc::new(Semaphore::new(MAX_WAITING));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection's task holds a sender; when all are gone, the drain is over.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(stop);
    // Accept errors other than a connection's own are logged once in a while, not each.
    let mut last_error: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        last_error = Some(Instant::now());
                        log_line(json!({"level": "error", "msg": "cannot accept a connection",
                            "error": e.to_string()}));
                    }
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    }
                }
            },
        };
        // Answers go out as soon as they are written: a streamed body's head and first chunk
        // are separate writes, which Nagle's algorithm would hold back until the client's
        // delayed acknowledgement (40 ms on Linux) for every download.
        let _ = stream.set_nodelay(true);
        let (router, app, stop, done) = (
            router.clone(),
            app.clone(),
            stop_rx.clone(),
            done_tx.clone(),
        );
        if let Ok(place) = places.clone().try_acquire_owned() {
            tokio::spawn(async move {
                connection(stream, peer, router, app, stop).await;
                drop((place, done));
            });
            continue;
        }
        let Ok(wait) = waiting.clone().try_acquire_owned() else {
            app.metrics.connections.dropped.fetch_add(1, Relaxed);
            continue;
        };
        let places = places.clone();
        tokio::spawn(async move {
            let mut stopped = stop.clone();
            // Some(place), or None when the wait is over; on a stop, the connection is
            // closed unserved (the server is leaving).
            let place = tokio::select! {
                p = tokio::time::timeout(CAP_WAIT, places.acquire_owned()) => p.ok().and_then(Result::ok),
                _ = stopped.changed() => return,
            };
            match place {
                Some(place) => {
                    drop(wait);
                    connection(stream, peer, router, app, stop).await;
                    drop(place);
                }
                None => {
                    app.metrics.connections.refused.fetch_add(1, Relaxed);
                    refuse(stream).await;
                    drop(wait);
                }
            }
            drop(done);
        });
    }
    // New connections are refused from here on.
    drop(listener);
    let open = app.metrics.connections.open.load(Relaxed);
    log_line(json!({"level": "info", "msg": "stopping", "open_connections": open}));
    let _ = stop_tx.send(true);
    drop(done_tx);
    if tokio::time::timeout(limits.shutdown_grace, done_rx.recv())
        .await
        .is_err()
    {
        log_line(
            json!({"level": "warn", "msg": "shutdown grace period over: connections cut",
            "open_connections": app.metrics.connections.open.load(Relaxed)}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4,
            shutdown_grace: Duration::from_secs(30),
        }
    }

    #[test]
    fn each_phase_has_its_timeout() {
        let s = ConnState::new();
        let l = limits();
        // A new connection must send its head within the header timeout.
        let (at, why) = s.deadline(&l).unwrap();
        assert_eq!(why, Expiry::Header);
        assert_eq!(at, s.base + l.header_timeout);
        // A handler's time is its own.
        s.enter(Phase::Handling);
        assert_eq!(s.deadline(&l), None);
        // Bytes read while a request is under way start nothing.
        s.read();
        assert_eq!(s.phase(), Phase::Handling);
        s.enter(Phase::Sending);
        assert_eq!(s.deadline(&l).unwrap().1, Expiry::Send);
        s.enter(Phase::Idle);
        let (at, why) = s.deadline(&l).unwrap();
        assert_eq!(why, Expiry::Idle);
        assert!(at >= s.base + l.idle_timeout);
        // The first byte of the next request starts its header timeout.
        s.read();
        assert_eq!(s.phase(), Phase::Head);
        assert_eq!(s.deadline(&l).unwrap().1, Expiry::Header);
        // Writes only matter while an answer is being sent.
        s.wrote(Some(10));
        assert_eq!(s.phase(), Phase::Head);
        // An answer hyper still writes after its body was handed over: a client that
        // stops taking it expires as a send, not as an idle connection.
        s.enter(Phase::Idle);
        s.wrote(None);
        assert_eq!(s.deadline(&l).unwrap().1, Expiry::Send);
        s.wrote(Some(10));
        assert_eq!(s.deadline(&l).unwrap().1, Expiry::Idle);
    }

    #[test]
    fn no_phase_entered_after_a_look_expires_before_the_next_look() {
        let l = limits();
        let step = l.header_timeout.min(l.idle_timeout);
        let s = ConnState::new();
        for phase in [Phase::Head, Phase::Handling, Phase::Sending, Phase::Idle] {
            s.enter(phase);
            let now = Instant::now();
            let look = s.next_look(&l, now).unwrap();
            assert!(look <= now + step, "{phase:?}");
            // Whatever phase comes next, from now on, expires no earlier than the look.
            for next in [Phase::Head, Phase::Sending, Phase::Idle] {
                s.enter(next);
                let (at, _) = s.deadline(&l).unwrap();
                // `since` is kept in whole milliseconds.
                assert!(
                    at + Duration::from_millis(1) >= look,
                    "{phase:?} then {next:?}"
                );
                s.enter(phase);
            }
        }
        // A phase past its deadline has expired, with its reason.
        let past = Instant::now() + l.idle_timeout + Duration::from_secs(1);
        s.enter(Phase::Idle);
        assert_eq!(s.next_look(&l, past), Err(Expiry::Idle));
        s.enter(Phase::Handling);
        assert_eq!(s.next_look(&l, past), Ok(past + step));
    }
}
