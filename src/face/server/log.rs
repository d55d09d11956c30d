//! The server's log (server): one JSON line per request and per event on standard error,
//! written by a thread of its own. A request only hands its facts over a bounded channel;
//! the writer formats them and writes in batches, so logging never waits on the terminal or
//! a pipe on the request path. When the channel is full (the reader of standard error is
//! slower than the requests), lines are dropped and the next written line says how many.

use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// The facts of one answered request.
pub struct Request {
    pub method: axum::http::Method,
    pub path: String,
    pub status: u16,
    pub elapsed: Duration,
    pub client: Option<IpAddr>,
}

enum Msg {
    Request(Request, SystemTime),
    Event(Value, SystemTime),
    /// Write out everything before this, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// Lines that may wait for the writer; beyond that they are dropped.
const QUEUE: usize = 16_384;

static SENDER: OnceLock<Mutex<Option<SyncSender<Msg>>>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn sender() -> Option<SyncSender<Msg>> {
    SENDER
        .get()?
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

thread_local! {
    /// Each thread keeps its own sender, so sending takes no lock.
    static LOCAL: std::cell::RefCell<Option<SyncSender<Msg>>> = const { std::cell::RefCell::new(None) };
}

fn send(msg: Msg) {
    let sent = LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        if l.is_none() {
            *l = sender();
        }
        match l.as_ref() {
            Some(tx) => match tx.try_send(msg) {
                Ok(()) => None,
                Err(TrySendError::Full(_)) => {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(TrySendError::Disconnected(m)) => {
                    *l = None;
                    Some(m)
                }
            },
            None => Some(msg),
        }
    });
    // No writer (it has stopped, or never started): write the line here.
    if let Some(msg) = sent {
        let mut err = std::io::stderr().lock();
        write_msg(&mut err, &mut Clock::default(), msg);
    }
}

/// Says a recurring fault at most once per period, with how many times it happened since it
/// was last said: a fault that every request meets (the disk full) is one line every few
/// seconds, not one per request.
pub struct Every {
    secs: u64,
    /// When it was last said (seconds since the epoch; 0: never).
    last: AtomicU64,
    /// Times it happened since.
    held: AtomicU64,
}

impl Every {
    pub const fn new(secs: u64) -> Every {
        Every {
            secs,
            last: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence at `now` (seconds); `Some(n)` when it is to be said now, `n`
    /// being the occurrences since it was last said, this one included.
    pub fn due(&self, now: u64) -> Option<u64> {
        self.held.fetch_add(1, Ordering::Relaxed);
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last.saturating_add(self.secs) {
            return None;
        }
        // One of the threads that find it due says it.
        self.last
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(self.held.swap(0, Ordering::Relaxed).max(1))
    }
}

/// Logs a request.
pub fn request(r: Request) {
    send(Msg::Request(r, SystemTime::now()));
}

/// Logs an event (`{"level": …, "msg": …}`); the time is added.
pub fn event(v: Value) {
    send(Msg::Event(v, SystemTime::now()));
}

fn time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Formats times of one second after another cheaply: the date and time up to the second
/// are formatted once per second.
#[derive(Default)]
struct Clock {
    second: u64,
    prefix: String,
}

impl Clock {
    fn format(&mut self, t: SystemTime) -> String {
        let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        if since.as_secs() != self.second || self.prefix.is_empty() {
            self.second = since.as_secs();
            let full = time(t);
            // "2026-11-26T12:00:00.123Z" without ".123Z".
            self.prefix = full[..full.len().saturating_sub(5)].to_string();
        }
        format!("{}.{:03}Z", self.prefix, since.subsec_millis())
    }
}

#[derive(Serialize)]
struct Line<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    ms: f64,
    client: Option<String>,
    time: String,
}

fn write_msg(out: &mut impl Write, clock: &mut Clock, msg: Msg) {
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let _ = writeln!(
            out,
            "{}",
            serde_json::json!({"level": "warn", "msg": "log lines dropped: standard error is slower than the requests", "dropped": dropped, "time": time(SystemTime::now())})
        );
    }
    match msg {
        Msg::Request(r, at) => {
            let line = Line {
                method: r.method.as_str(),
                path: &r.path,
                status: r.status,
                ms: (r.elapsed.as_secs_f64() * 100_000.0).round() / 100.0,
                client: r.client.map(|c| c.to_string()),
                time: clock.format(at),
            };
            if let Ok(text) = serde_json::to_string(&line) {
                let _ = writeln!(out, "{}", inert(text));
            }
        }
        Msg::Event(mut v, at) => {
            v["time"] = Value::String(time(at));
            let _ = writeln!(out, "{}", inert(v.to_string()));
        }
        Msg::Flush(done) => {
            let _ = out.flush();
            let _ = done.send(());
        }
    }
}

/// Whether a terminal or a log viewer would act on `c` rather than show it: JSON escapes
/// the C0 controls, but not DEL, the C1 controls (U+009B begins an escape sequence, as ESC
/// [ does), the characters that reorder text, or the line and paragraph separators.
fn acts(c: char) -> bool {
    c.is_control() || crate::text::is_bidi_control(c) || c == '\u{2028}' || c == '\u{2029}'
}

/// A line of JSON with every character a client sent that a terminal would act on (in a
/// path, or in an error's words) written as a `\uXXXX` escape: the same JSON text, shown
/// as it is. Such characters can only stand in strings, where the escape means the same.
fn inert(json: String) -> String {
    if !json.chars().any(acts) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if acts(c) {
            // Each is in the Basic Multilingual Plane: one escape.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// How long written lines may wait in the buffer: under load they go out in large writes.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

fn writer(rx: Receiver<Msg>) {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stderr());
    let mut clock = Clock::default();
    let mut unflushed: Option<std::time::Instant> = None;
    loop {
        let wait = match unflushed {
            Some(since) => FLUSH_EVERY.saturating_sub(since.elapsed()),
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(m) => {
                write_msg(&mut out, &mut clock, m);
                unflushed.get_or_insert_with(std::time::Instant::now);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if unflushed.is_some_and(|since| since.elapsed() >= FLUSH_EVERY) {
            let _ = out.flush();
            unflushed = None;
        }
    }
    let _ = out.flush();
}

/// The running writer; dropping it writes out every waiting line and stops the writer.
pub struct Writer {
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the writer thread (once per process; later calls share it).
pub fn start() -> Writer {
    let slot = SENDER.get_or_init(|| Mutex::new(None));
    let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
    if s.is_some() {
        return Writer { thread: None };
    }
    let (tx, rx) = sync_channel(QUEUE);
    *s = Some(tx);
    let thread = std::thread::Builder::new()
        .name("log".into())
        .spawn(move || writer(rx))
        .ok();
    Writer { thread }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if let Some(tx) = sender() {
            let (done, wait) = std::sync::mpsc::channel();
            if tx.send(Msg::Flush(done)).is_ok() {
                let _ = wait.recv_timeout(Duration::from_secs(5));
            }
        }
        // Closing the shared sender ends the writer once the thread-local ones are gone;
        // the lines are out already, so it is not waited for.
        if let Some(slot) = SENDER.get() {
            slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        drop(thread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_path_reaches_the_log_without_controls_a_terminal_would_act_on() {
        // JSON escapes C0 controls only: DEL, C1 controls (U+009B is an escape sequence's
        // introducer, CSI) and characters that reorder text went out raw.
        let path = "/x\u{9b}2J\u{1b}[31m\u{7f}\u{85}\u{202e}gpj.exe\u{2028}y";
        let mut out = Vec::new();
        let request = Request {
            method: axum::http::Method::GET,
            path: path.into(),
            status: 404,
            elapsed: Duration::ZERO,
            client: None,
        };
        write_msg(
            &mut out,
            &mut Clock::default(),
            Msg::Request(request, SystemTime::now()),
        );
        let event = serde_json::json!({"level": "error", "msg": path});
        write_msg(
            &mut out,
            &mut Clock::default(),
            Msg::Event(event, SystemTime::now()),
        );
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        for (line, key) in lines.iter().zip(["path", "msg"]) {
            assert!(
                !line
                    .chars()
                    .any(|c| c.is_control() || crate::text::is_bidi_control(c) || c == '\u{2028}'),
                "{line:?}"
            );
            // The same text, escaped.
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v[key], path);
        }
    }

    #[test]
    fn a_recurring_fault_is_said_once_a_period_with_its_count() {
        let every = Every::new(10);
        assert_eq!(every.due(1_000), Some(1));
        for t in 1_000..1_009 {
            assert_eq!(every.due(t), None);
        }
        // The period over: said again, counting all ten since.
        assert_eq!(every.due(1_010), Some(10));
        assert_eq!(every.due(1_011), None);
        assert_eq!(every.due(5_000), Some(2));
    }
}
