//! `valyxo server` (face): the account API (`man server`; the OpenAPI document it serves at
//! `/api/openapi.json`, made from `crate::protocol`) — auth and users, projects and scripts,
//! file sync by content hash — over axum, with SQLite or PostgreSQL storage (`db`).
//!
//! Handlers are plain functions over the database that run on tokio's blocking pool; the
//! async side only reads requests (with size limits), checks tokens and rate limits, and adds
//! the headers every response carries. File content is the exception: it streams between the
//! socket and the database a chunk at a time (`blobs`), never whole in memory.

mod archive;
mod assistant;
mod auth;
pub mod backup;
mod blobs;
mod conns;
mod db;
mod files;
mod limit;
mod log;
mod metrics;
mod openapi;
mod page;
mod projects;
mod routes;
pub mod sandbox;
mod shade;
mod slots;
mod web;

use crate::protocol::types::{
    Answer, Data, Failure, FieldProblem, FileConflict, Health, Limits, ScriptLimits,
};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, MethodFilter, MethodRouter};
use axum::Router;
use serde::Serialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::MAX_BATCH;
pub use assistant::{Settings as AssistantSettings, MAX_INPUT as ASSISTANT_MAX_INPUT};
pub use db::Db;
use routes::{Auth, Body as BodyKind, Work, ROUTES};

/// How the server runs (the options of `valyxo server`).
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: String,
    pub database: String,
    pub pool_size: u32,
    /// The longest one statement may run or wait for a lock (`--statement-timeout`; on
    /// SQLite, its busy timeout); past it the request is answered 503.
    pub statement_timeout: Duration,
    pub token_ttl: Duration,
    /// Login and register attempts per minute per client address; 0 turns the limit off.
    pub rate_limit: u32,
    pub trusted_proxies: Vec<IpAddr>,
    pub cors_origins: Vec<String>,
    pub json_limit: usize,
    /// The largest file content one upload may carry (`--max-file-size`); uploads stream,
    /// so this bounds storage, not memory.
    pub max_file_size: u64,
    /// The token signing secret; None reads (or on first start creates) one in the database.
    pub secret: Option<String>,
    /// Write one JSON line per request to standard error.
    pub log: bool,
    /// The limits of one script execution.
    pub script_limits: sandbox::Limits,
    /// Script workers and how many executions are admitted at once.
    pub script_admission: sandbox::Admission,
    /// Executions kept per script (older ones are dropped; the counts in stats stay).
    pub execution_history: usize,
    /// Password hashes computed at once (each takes 19 MiB for its moment).
    pub hash_slots: usize,
    /// Bytes of file content one account may store; 0: no quota.
    pub quota: u64,
    /// Uploads one account may send at once.
    pub uploads_per_account: usize,
    /// A request body that sends nothing for this long is dropped (408).
    pub body_timeout: Duration,
    /// Uploaded content that no file names is deleted after this long.
    pub upload_expiry: Duration,
    /// Items in a page of a list when the request gives no `limit` (the file listing, which
    /// sync reads whole, gives `max_page_size`).
    pub page_size: usize,
    /// The largest `limit` a list accepts.
    pub max_page_size: usize,
    /// A request line and headers must arrive whole within this.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request under way (or a client that takes none of
    /// an answer) is closed after this.
    pub idle_timeout: Duration,
    /// Connections served at once; beyond them a new one waits a moment, then gets 503.
    pub max_connections: usize,
    /// On SIGTERM, how long requests under way may take to finish.
    pub shutdown_grace: Duration,
    /// The bearer token that reads `/metrics`; None: no `/metrics` (404).
    pub metrics_token: Option<String>,
    /// A second address that serves `/metrics` alone, without a token.
    pub metrics_listen: Option<String>,
    /// The web editor's assistant (`--assistant-url`); None: off.
    pub assistant: Option<AssistantSettings>,
}

impl Config {
    fn conn_limits(&self) -> conns::Limits {
        conns::Limits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            shutdown_grace: self.shutdown_grace,
        }
    }
}

/// Database connections per process unless told: twice the processors, at least 4.
/// PostgreSQL's own rule of thumb for busy connections; more only makes its processes
/// contend for the cores (on 2 cores, 4 connections served 15,100 authenticated GETs/s,
/// 8 served 13,600 and 32 served 13,100: benches/server_load.rs).
pub fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 2).unwrap_or(u32::MAX).max(4)
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:8080".into(),
            database: "sqlite:server.db".into(),
            pool_size: default_pool_size(),
            statement_timeout: db::STATEMENT_TIMEOUT,
            token_ttl: Duration::from_secs(7 * 24 * 3600),
            rate_limit: 10,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            json_limit: 1 << 20,
            max_file_size: 1 << 30,
            secret: None,
            log: true,
            script_limits: sandbox::Limits::default(),
            script_admission: sandbox::Admission::default(),
            execution_history: 100,
            hash_slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
            quota: 10 << 30,
            uploads_per_account: 2,
            body_timeout: Duration::from_secs(20),
            upload_expiry: Duration::from_secs(24 * 3600),
            page_size: 100,
            max_page_size: 5000,
            header_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(75),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(30),
            metrics_token: None,
            metrics_listen: None,
            assistant: None,
        }
    }
}

/// An error answer: `{"success": false, "error": …}` plus details, conflicts or Retry-After
/// ([`Failure`]).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// What only some failures carry, boxed so that every `Result` stays small.
    extra: Option<Box<Extra>>,
    retry_after: Option<u64>,
}

#[derive(Debug, Default)]
struct Extra {
    details: Vec<FieldProblem>,
    conflicts: Vec<FileConflict>,
    limit: Option<u64>,
    quota: Option<u64>,
    code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            extra: None,
            retry_after: None,
        }
    }
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    /// A fault of the server itself: logged in full, answered without detail.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    /// Validation failures, one `{field, message}` each.
    pub fn invalid(details: Vec<(&str, String)>) -> ApiError {
        let mut e = ApiError::bad("Validation failed");
        e.extra().details = details
            .into_iter()
            .map(|(f, m)| FieldProblem {
                field: f.to_string(),
                message: m,
            })
            .collect();
        e
    }
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
    /// The files of a commit that changed on the server meanwhile.
    pub fn with_conflicts(mut self, conflicts: Vec<FileConflict>) -> ApiError {
        self.extra().conflicts = conflicts;
        self
    }
    /// The size limit a body went over.
    pub fn with_limit(mut self, limit: u64) -> ApiError {
        self.extra().limit = Some(limit);
        self
    }
    /// The account's storage quota.
    pub fn with_quota(mut self, quota: u64) -> ApiError {
        self.extra().quota = Some(quota);
        self
    }
    /// A code that names the failure for clients to act on.
    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.extra().code = Some(code);
        self
    }
    /// Adds a Retry-After of `seconds`.
    pub fn retry(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            log_line(json!({"level": "error", "error": self.message}));
            "Internal server error".to_string()
        } else {
            self.message
        };
        let extra = self.extra.map(|b| *b).unwrap_or_default();
        let body = Failure {
            success: false,
            error,
            details: extra.details,
            conflicts: extra.conflicts,
            limit: extra.limit,
            quota: extra.quota,
            code: extra.code.map(str::to_string),
        };
        let mut r = Reply::json(self.status, &body).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// A successful answer.
pub enum Reply {
    /// JSON text.
    Json(StatusCode, String),
    /// JSON text that is already written out.
    Text(&'static str),
    /// File content of `size` bytes, sent as it is read.
    Stream { size: u64, body: Body },
    /// A `.zip` archive written as it is sent, its length unknown until the end.
    Zip(Body),
    /// An answer sent as it is made, one JSON object a line (`application/x-ndjson`): the
    /// assistant's.
    Lines(Body),
    /// An answer that starts a browser's session with a token (`Some`) or ends it (`None`):
    /// its cookies are set or cleared (`web.rs`).
    Session(Box<Reply>, Option<String>),
}

impl Reply {
    fn json(status: StatusCode, v: &impl Serialize) -> Reply {
        match serde_json::to_string(v) {
            Ok(text) => Reply::Json(status, text),
            Err(e) => Reply::Json(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(r#"{{"success":false,"error":"cannot write the answer: {e}"}}"#),
            ),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let json = HeaderValue::from_static("application/json");
        match self {
            Reply::Json(status, text) => {
                (status, [(header::CONTENT_TYPE, json)], text).into_response()
            }
            Reply::Text(t) => ([(header::CONTENT_TYPE, json)], t).into_response(),
            Reply::Stream { size, body } => (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    ),
                    (header::CONTENT_LENGTH, HeaderValue::from(size)),
                ],
                body,
            )
                .into_response(),
            Reply::Zip(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/zip"),
                )],
                body,
            )
                .into_response(),
            Reply::Lines(body) => (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/x-ndjson"),
                    ),
                    // A buffering proxy (nginx) passes each line on as it comes.
                    (
                        header::HeaderName::from_static("x-accel-buffering"),
                        HeaderValue::from_static("no"),
                    ),
                ],
                body,
            )
                .into_response(),
            // Without the request at hand (see `serve`), the answer alone.
            Reply::Session(inner, _) => inner.into_response(),
        }
    }
}

/// 200 with `body` beside `success: true`.
pub fn ok<T: Serialize>(body: T) -> Result<Reply, ApiError> {
    Ok(Reply::json(StatusCode::OK, &Answer::new(body)))
}

/// 201 with `body` beside `success: true`.
pub fn created<T: Serialize>(body: T) -> Result<Reply, ApiError> {
    Ok(Reply::json(StatusCode::CREATED, &Answer::new(body)))
}

/// The signed-in user of an authenticated request.
#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub jti: String,
}

/// What a handler sees of a request.
pub struct Req {
    /// The one path parameter of the route (`:id`, `:projectId`, `:hash`), if it has one.
    pub param: Option<String>,
    /// The query string (the page of a list: `limit`, `after`), if there is one.
    pub query: Option<String>,
    pub body: Bytes,
    pub user: Option<User>,
}

impl Req {
    /// The authenticated user (handlers behind `Auth::Required` always have one).
    pub fn user(&self) -> &User {
        self.user
            .as_ref()
            .expect("authenticated routes carry a user")
    }

    /// The body as a JSON object.
    pub fn json(&self) -> Result<serde_json::Map<String, Value>, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Map::new());
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(ApiError::bad("The request body must be a JSON object")),
            Err(_) => Err(ApiError::bad("Malformed JSON in the request body")),
        }
    }

    /// The query string's `name=value` pairs, decoded (`%XX` and `+`): None when one of
    /// them decodes to bytes that are not UTF-8, which name nothing (decoding them with
    /// replacement characters would make `%FF` and `%FE` one name).
    pub fn query_pairs(&self) -> Option<Vec<(String, String)>> {
        fn decoded(s: &str) -> Option<String> {
            let hex = |c: u8| (c as char).to_digit(16);
            let b = s.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                let escaped = match b.get(i..i + 3) {
                    Some([b'%', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| (h * 16 + l) as u8),
                    _ => None,
                };
                match (escaped, b[i]) {
                    (Some(byte), _) => {
                        out.push(byte);
                        i += 3;
                    }
                    (None, b'+') => {
                        out.push(b' ');
                        i += 1;
                    }
                    // A `%` without two hex digits stands for itself.
                    (None, c) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8(out).ok()
        }
        self.query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Some((decoded(k)?, decoded(v)?))
            })
            .collect()
    }

    /// As [`Req::query_pairs`], with a query that is not text refused as a bad `field`.
    pub fn query_text(&self, field: &str) -> Result<Vec<(String, String)>, ApiError> {
        self.query_pairs().ok_or_else(|| {
            ApiError::invalid(vec![(
                field,
                format!("{field} must be UTF-8 text (percent-encoded in the query)"),
            )])
        })
    }

    /// The path parameter as an id; anything else names no resource.
    pub fn id(&self, what: &str) -> Result<i64, ApiError> {
        self.param
            .as_deref()
            .and_then(|p| p.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::not_found(format!("{what} not found")))
    }
}

/// A string field of a JSON body: Ok(None) when absent or null, an error naming the field
/// when it holds another type.
pub fn field<'a>(
    body: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, (String, String)> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.contains('\0') => Err((
            name.to_string(),
            format!("{name} must not hold NUL characters"),
        )),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err((name.to_string(), format!("{name} must be a string"))),
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A handler that runs on a blocking thread: plain code over the database.
pub type Handler = fn(&App, &Req) -> Result<Reply, ApiError>;

/// A boxed future sent across threads.
pub type Pending<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// A handler that awaits work done elsewhere (a script on the script pool).
pub type AsyncHandler = fn(Arc<App>, Req) -> Pending<Result<Reply, ApiError>>;

/// A handler that reads its body itself, as it arrives (file content).
pub type StreamHandler = fn(Arc<App>, Req, blobs::Incoming) -> Pending<Result<Reply, ApiError>>;

/// Blob uploads under way at once (each holds two chunks of memory and a database write at
/// a time); more are refused with 429.
const MAX_UPLOADS: usize = 8;
/// Downloads under way at once: each holds about one chunk (1 MiB) until the client takes
/// it, so this bounds the memory that many downloads, fast or slow, can hold. More get 429
/// with `Retry-After`, which `sync` waits for.
const MAX_DOWNLOADS: usize = 64;
/// Downloads one account may have under way at once, so no account takes every slot.
const DOWNLOADS_PER_ACCOUNT: usize = 4;
/// Archives (`files/archive`) under way at once: each holds a thread of the blocking pool
/// (below) until its client has taken the last byte, so they may take only a part of it;
/// more get 429 with `Retry-After`.
const MAX_ARCHIVES: usize = MAX_BLOCKING_THREADS / 4;
/// Archives one account may have under way at once.
const ARCHIVES_PER_ACCOUNT: usize = 2;
/// Threads for handlers (queries, password hashing): this bounds the memory and CPU that
/// many simultaneous costly requests can take. Scripts have a pool of their own.
const MAX_BLOCKING_THREADS: usize = 32;
/// A request body slower than this on average (after its first `body_timeout`) is dropped.
const MIN_BODY_RATE: u64 = 16 << 10;
/// A JSON body up to this size is read without a slot: what logins, saves of small scripts
/// and most requests send; the most that a request without an account may send. A larger one (up to `--json-limit`) is held whole in memory, so
/// it takes one of the [`LARGE_BODIES`] slots while it is read and handled.
const SMALL_BODY: usize = 16 << 10;
/// Large JSON bodies read or handled at once, in all (at most `--json-limit` each).
const LARGE_BODIES: usize = 32;
/// Large JSON bodies one account may have under way at once.
const LARGE_BODIES_PER_ACCOUNT: usize = 4;

/// The shared state of the server.
pub struct App {
    pub db: Db,
    pub cfg: Config,
    tokens: auth::Tokens,
    limiter: Option<limit::Limiter>,
    /// Blob uploads being read, in total and per account.
    uploads: slots::Slots,
    /// Large JSON bodies being read or handled, in total and per account.
    large_bodies: slots::Slots,
    /// Blob downloads being sent, in total and per account.
    downloads: slots::Slots,
    /// Archives being written (each on a thread of the blocking pool), in total and per
    /// account.
    archives: slots::Slots,
    /// Highlighting for the web editor under way: a large text costs a second of a core,
    /// so two at a time per account (a page has one under way; a second tab, or the page
    /// loaded anew, another), and no more at once than leaves blocking threads to others.
    highlights: slots::Slots,
    /// The texts the web editors highlighted, to highlight their edits from.
    shades: shade::Sessions,
    /// The script workers.
    pub scripts: sandbox::Pool,
    /// Password hashes being computed.
    hashes: Arc<tokio::sync::Semaphore>,
    /// The cursors of paginated lists.
    cursors: page::Cursors,
    /// The counters of `/metrics`.
    metrics: metrics::Metrics,
    /// The web editor's assistant, when configured.
    assistant: Option<assistant::Assistant>,
}

impl App {
    pub fn new(cfg: Config) -> anyhow::Result<App> {
        let db = Db::open_with(&cfg.database, cfg.pool_size, cfg.statement_timeout)?;
        let tokens = auth::Tokens::new(&db, cfg.secret.as_deref(), cfg.token_ttl)?;
        let cursors = page::Cursors::new(&tokens.cursor_key());
        let limiter = limit::Limiter::new(cfg.rate_limit, &db);
        let scripts = sandbox::Pool::new(cfg.script_admission, cfg.script_limits.clone())
            .map_err(|e| anyhow::anyhow!("cannot start the script workers: {e}"))?;
        let assistant = match &cfg.assistant {
            Some(s) => Some(assistant::Assistant::new(s, &db)?),
            None => None,
        };
        Ok(App {
            db,
            tokens,
            limiter,
            uploads: slots::Slots::new(MAX_UPLOADS, cfg.uploads_per_account),
            large_bodies: slots::Slots::new(LARGE_BODIES, LARGE_BODIES_PER_ACCOUNT),
            downloads: slots::Slots::new(MAX_DOWNLOADS, DOWNLOADS_PER_ACCOUNT),
            archives: slots::Slots::new(MAX_ARCHIVES, ARCHIVES_PER_ACCOUNT),
            highlights: slots::Slots::new(MAX_BLOCKING_THREADS / 4, 2),
            shades: shade::Sessions::default(),
            scripts,
            hashes: Arc::new(tokio::sync::Semaphore::new(cfg.hash_slots.max(1))),
            cursors,
            metrics: metrics::Metrics::default(),
            assistant,
            cfg,
        })
    }

    // ---- client address and rate limit (`limit`: shared through the database on
    // PostgreSQL, issue 17 point 4) ----

    /// The address a request came from: the socket's, or the one a trusted proxy names.
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        limit::client(&self.cfg.trusted_proxies, peer, headers)
    }

    /// Counts a login or register attempt of `client`: this process's budget, then (on
    /// PostgreSQL) the one every server shares.
    async fn check_rate(self: &Arc<Self>, client: IpAddr) -> Result<(), ApiError> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        // Refusals are counted for /metrics, whichever budget refused.
        let counted = |e: ApiError| {
            if e.status == StatusCode::TOO_MANY_REQUESTS {
                self.metrics
                    .rate_limited
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            e
        };
        l.check_local(client).map_err(counted)?;
        if l.shared() {
            blocking(self, move |a| match &a.limiter {
                Some(l) => l.check_shared(&a.db, client),
                None => Ok(()),
            })
            .await
            .map_err(counted)?;
        }
        Ok(())
    }

    // ---- end of client address and rate limit ----
}

impl App {
    /// The page sizes of a list: the file listing's default is the largest page, since
    /// sync reads it whole (and an older client reads only the first page).
    fn page_sizes(&self, whole: bool) -> page::Sizes {
        let max = self.cfg.max_page_size.max(1);
        let default = if whole { max } else { self.cfg.page_size };
        page::Sizes {
            default: default.clamp(1, max),
            max,
        }
    }
}

/// Runs `f` on a blocking thread, for async handlers.
pub async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("handler failed: {e}"))))
}

/// Reads a request body up to `limit` bytes; longer ones are refused with 413. A body that
/// sends nothing for `idle`, or trickles in slower than [`MIN_BODY_RATE`] after that, is
/// dropped with 408, so a silent client cannot hold a slot for ever. A body of an
/// account's (`large`: the slots and the account) longer than [`SMALL_BODY`], declared or
/// found so, takes a slot first (429 when there is none), held by the caller with the body.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    idle: Duration,
    large: Option<(&slots::Slots, i64)>,
) -> Result<(Bytes, Option<slots::Slot>), ApiError> {
    let mut slot = None;
    let take = |slot: &mut Option<slots::Slot>| match (large, &slot) {
        (Some((slots, account)), None) => {
            *slot = Some(
                slots
                    .take(account)
                    .map_err(|b| busy("large requests", b, 1))?,
            );
            Ok(())
        }
        _ => Ok::<(), ApiError>(()),
    };
    use http_body_util::BodyExt;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than the limit of {limit} bytes"),
        )
        .with_limit(limit as u64)
    };
    let too_slow = || {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "The request body arrived too slowly",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    if declared.is_some_and(|n| n > SMALL_BODY as u64) {
        take(&mut slot)?;
    }
    let start = Instant::now();
    let mut body = body;
    let mut data = bytes::BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(too_slow()),
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                // The client went away or sent a broken body.
                return Err(ApiError::bad("The request body could not be read"));
            }
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > limit {
                return Err(too_large());
            }
            if data.len() + chunk.len() > SMALL_BODY {
                take(&mut slot)?;
            }
            data.extend_from_slice(&chunk);
        }
        let elapsed = start.elapsed();
        if elapsed > idle
            && (data.len() as u64) < (elapsed - idle).as_secs().saturating_mul(MIN_BODY_RATE)
        {
            return Err(too_slow());
        }
    }
    Ok((data.freeze(), slot))
}

/// How a route is served: its work, authentication and body.
#[derive(Clone, Copy)]
struct RouteSpec {
    /// The route's row in [`ROUTES`] (for the metrics).
    index: usize,
    /// A GET: it changes nothing, so a browser session needs no CSRF token for it.
    safe: bool,
    /// A route for the web pages only (`/api/web/`): refused to another site's pages.
    web: bool,
    work: Work,
    auth: Auth,
    kind: BodyKind,
}

pub(super) fn busy(what: &str, b: slots::Busy, retry: u64) -> ApiError {
    let message = match b {
        slots::Busy::Account(n) => {
            format!("Your account already has {n} {what} under way: wait for one to finish")
        }
        slots::Busy::Server => format!("The server is busy with {what}: try again shortly"),
    };
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).retry(retry)
}

async fn serve(
    app: Arc<App>,
    spec: RouteSpec,
    peer: SocketAddr,
    headers: HeaderMap,
    (param, query): (Option<String>, Option<String>),
    body: Body,
) -> Response {
    let secure = web::secure(&app.cfg.trusted_proxies, peer.ip(), &headers);
    // A browser that logs in (or registers) anew drops the session its cookie held: that
    // session ends here, rather than living on unseen until it expires.
    let replaced = spec
        .web
        .then(|| web::carried_session(&app.tokens, &headers, secure))
        .flatten();
    match handle(
        app.clone(),
        spec,
        (peer, secure),
        headers,
        (param, query),
        body,
    )
    .await
    {
        Ok(Reply::Session(inner, token)) => {
            if let (Some(old), Some(_)) = (replaced, &token) {
                if let Err(e) = blocking(&app, move |a| auth::revoke(a, &old.jti)).await {
                    log::event(serde_json::json!({"level": "error",
                        "msg": "ending the session a new login replaced failed", "error": e.message}));
                }
            }
            let mut res = inner.into_response();
            web::session_cookies(&app.tokens, &mut res, token.as_deref(), secure);
            res
        }
        Ok(reply) => reply.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    app: Arc<App>,
    RouteSpec {
        work,
        auth,
        kind,
        safe,
        web,
        ..
    }: RouteSpec,
    // Where the request came from, and whether over TLS (see `web::secure`).
    (peer, secure): (SocketAddr, bool),
    headers: HeaderMap,
    (param, query): (Option<String>, Option<String>),
    body: Body,
) -> Result<Reply, ApiError> {
    if web {
        web::same_origin(&headers)?;
    }
    let client = app.client(peer.ip(), &headers);
    let hashes = matches!(auth, Auth::Limited | Auth::RequiredLimited);
    if hashes {
        app.check_rate(client).await?;
    }
    // The token's signature and expiry are checked before a byte of the body is read.
    // Whether its session is live, a blocking handler learns in the same round trip as its
    // first query (`Db::guarded`); the other handlers ask the database first.
    let mut user = None;
    if matches!(auth, Auth::Required | Auth::RequiredLimited) {
        let claimed = web::user(&app.tokens, &headers, safe, secure)?;
        if !matches!(work, Work::Blocking(_)) {
            let guard = auth::live_session(&claimed);
            blocking(&app, move |a| a.db.guarded(guard, || Ok(()))).await?;
        }
        user = Some(claimed);
    }
    let idle = app.cfg.body_timeout;
    let mut _upload = None;
    let mut _large = None;
    let mut incoming = None;
    let body = match kind {
        BodyKind::None => Bytes::new(),
        BodyKind::Json => {
            // An account's large bodies are bounded; the anonymous routes' (login,
            // register) are rate limited per address before they are read.
            let large = user.as_ref().map(|u| (&app.large_bodies, u.id));
            // Without an account (login, register) a body is small: it holds its memory
            // while it waits for a hash slot, and no account bounds how many wait.
            let limit = match user {
                Some(_) => app.cfg.json_limit,
                None => app.cfg.json_limit.min(SMALL_BODY),
            };
            let (body, slot) = read_body(body, &headers, limit, idle, large).await?;
            _large = slot;
            body
        }
        BodyKind::Blob => {
            // Uploads stream to the database: a few at a time, and two per account, so no
            // account can take every slot. The handler reads the body.
            let account = user.as_ref().map_or(0, |u| u.id);
            let declared = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let came = blobs::Incoming {
                body,
                declared,
                idle,
            };
            match app.uploads.take(account) {
                Ok(slot) => _upload = Some(slot),
                // Told to come back, a client still sending a small body must see the
                // answer, not a reset connection: the body is read and thrown away first,
                // as for any refused upload.
                Err(b) => return Err(blobs::refuse(came, busy("uploads", b, 1)).await),
            }
            incoming = Some(came);
            Bytes::new()
        }
    };
    // Password hashes wait here for a slot, holding no thread.
    let _hash = if hashes {
        Some(
            app.hashes
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ApiError::unavailable("The server is stopping"))?,
        )
    } else {
        None
    };
    match work {
        Work::Async(f) => {
            f(
                app,
                Req {
                    param,
                    query,
                    body,
                    user,
                },
            )
            .await
        }
        Work::Stream(f) => match incoming {
            Some(i) => {
                f(
                    app,
                    Req {
                        param,
                        query,
                        body,
                        user,
                    },
                    i,
                )
                .await
            }
            None => Err(ApiError::internal("a streaming route without a file body")),
        },
        Work::Blocking(f) => tokio::task::spawn_blocking(move || {
            let guard = user.as_ref().map(auth::live_session);
            let req = Req {
                param,
                query,
                body,
                user,
            };
            match guard {
                Some(guard) => app.db.guarded(guard, || f(&app, &req)),
                None => f(&app, &req),
            }
        })
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("handler failed: {e}")))),
    }
}

/// A route's one path parameter, or why it could not be read.
type PathParam = Result<Path<String>, axum::extract::rejection::PathRejection>;

fn route(
    spec: RouteSpec,
) -> impl Fn(State<Arc<App>>, ConnectInfo<SocketAddr>, RawQuery, HeaderMap, Body) -> Pending<Response>
       + Clone
       + Send
       + Sync
       + 'static {
    move |State(app), ConnectInfo(peer), RawQuery(query), headers, body| {
        Box::pin(async move {
            let mut res = serve(app, spec, peer, headers, (None, query), body).await;
            res.extensions_mut().insert(metrics::RouteId(spec.index));
            res
        })
    }
}

#[allow(clippy::type_complexity)]
fn route_param(
    spec: RouteSpec,
) -> impl Fn(
    State<Arc<App>>,
    ConnectInfo<SocketAddr>,
    PathParam,
    RawQuery,
    HeaderMap,
    Body,
) -> Pending<Response>
       + Clone
       + Send
       + Sync
       + 'static {
    move |State(app), ConnectInfo(peer), param: PathParam, RawQuery(query), headers, body| {
        Box::pin(async move {
            let mut res = match param {
                Ok(Path(param)) => {
                    serve(app, spec, peer, headers, (Some(param), query), body).await
                }
                // A parameter that is not even text (`%FF`) names nothing.
                Err(_) => ApiError::not_found("Not found").into_response(),
            };
            res.extensions_mut().insert(metrics::RouteId(spec.index));
            res
        })
    }
}

pub use openapi::document as openapi_document;

/// The paths and methods served, for the OpenAPI document's test.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    ROUTES.iter().map(|r| (r.method, r.path)).collect()
}

/// Answered on the async side: it needs nothing that could wait.
fn health(_: Arc<App>, _: Req) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async {
        ok(Health {
            status: "ok".into(),
        })
    })
}

/// Readiness: 200 when the database answers (a read of its schema version, so a
/// connection that answers but has lost its tables is not ready), 503 when it does not;
/// nothing of the data, nor of why, is said.
fn ready(app: &App, _: &Req) -> Result<Reply, ApiError> {
    let schema = app.db.read(|c| {
        Ok(c.one("SELECT value FROM meta WHERE key = 'schema'", &[])?
            .is_some())
    });
    match schema {
        Ok(true) => ok(Health {
            status: "ready".into(),
        }),
        // The reason is for the operator's log only.
        Ok(false) | Err(_) => {
            let why = schema
                .err()
                .map_or("no schema version".into(), |e| e.message);
            log_line(json!({"level": "warn", "msg": "not ready", "error": why}));
            Err(ApiError::unavailable("The database does not answer"))
        }
    }
}

/// The OpenAPI document, made from the route table and the wire types.
fn openapi(_: Arc<App>, _: Req) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async { Ok(Reply::Text(openapi::text())) })
}

/// What this server accepts, so that a client can check before it sends.
fn limits(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let used = app.db.read(|c| {
        Ok(c.one(
            "SELECT storage_bytes FROM users WHERE id = ?",
            &[req.user().id.into()],
        )?
        .map_or(0, |r| r.int(0)))
    })?;
    let l = &app.cfg.script_limits;
    ok(Data {
        data: Limits {
            blob_limit: app.cfg.max_file_size,
            json_limit: app.cfg.json_limit as u64,
            max_batch: MAX_BATCH as u64,
            quota: app.cfg.quota,
            max_page: app.cfg.max_page_size.max(1) as u64,
            storage_used: used.max(0) as u64,
            script: ScriptLimits {
                time_ms: l.time.as_millis() as u64,
                memory: l.memory as u64,
                operations: l.operations,
                output: l.output as u64,
            },
        },
    })
}

/// The router with every route, the JSON fallbacks, the security headers and CORS.
pub fn router(app: Arc<App>) -> Router {
    let mut by_path: Vec<(&str, MethodRouter<Arc<App>>)> = Vec::new();
    for (index, r) in ROUTES.iter().enumerate() {
        let (method, path) = (r.method, r.path);
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            _ => MethodFilter::DELETE,
        };
        let spec = RouteSpec {
            index,
            safe: method == "GET",
            web: path.starts_with("/api/web/"),
            work: r.work,
            auth: r.auth,
            kind: r.body,
        };
        let mr = if path.contains('{') {
            on(filter, route_param(spec))
        } else {
            on(filter, route(spec))
        };
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => {
                let merged = std::mem::replace(existing, get(|| async {}));
                *existing = merged.merge(mr);
            }
            None => by_path.push((path, mr)),
        }
    }
    let mut r = Router::new();
    for (path, mr) in by_path {
        r = r.route(path, mr.fallback(not_allowed));
    }
    if app.cfg.metrics_token.is_some() {
        // For the operator only, and not part of the API: not in the route table.
        r = r.route("/metrics", get(metrics::serve).fallback(not_allowed));
    }
    let mut r = r
        .merge(web::pages())
        .fallback(|| async { ApiError::not_found("Endpoint not found") })
        .with_state(app.clone())
        .layer(axum::middleware::from_fn_with_state(app.clone(), around));
    if !app.cfg.cors_origins.is_empty() {
        use tower_http::cors::{AllowOrigin, CorsLayer};
        let origins: Vec<HeaderValue> = app
            .cfg
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        r = r.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(Duration::from_secs(600)),
        );
    }
    r
}

/// The answer to a method a route does not serve, in JSON as every refusal.
pub(super) async fn not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// The router of `--metrics-listen`: `/metrics` and nothing else.
fn metrics_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::open).fallback(not_allowed))
        .fallback(|| async { ApiError::not_found("Endpoint not found") })
        .with_state(app.clone())
        .layer(axum::middleware::from_fn_with_state(app, around))
}

/// Around every request: the security headers, and one log line (never a body, a token or a
/// query string).
async fn around(
    State(app): State<Arc<App>>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let start = Instant::now();
    let logged = app.cfg.log.then(|| {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| app.client(c.0.ip(), req.headers()));
        (req.method().clone(), req.uri().path().to_string(), peer)
    });
    let mut res = next.run(req).await;
    let route = res.extensions().get::<metrics::RouteId>().map(|r| r.0);
    app.metrics
        .request(route, res.status().as_u16(), start.elapsed());
    secure_headers(res.headers_mut());
    if let Some((method, path, client)) = logged {
        log::request(log::Request {
            method,
            path,
            status: res.status().as_u16(),
            elapsed: start.elapsed(),
            client,
        });
    }
    res
}

/// The headers every answer carries.
fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The web pages and their assets set their own.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

fn log_line(v: Value) {
    log::event(v);
}

/// Makes memory freed after a burst go back to the system: with glibc's default, the
/// threshold for mapping large blocks rises after the first is freed, and the 19 MiB of
/// each password hash then stay in the heap of every thread that computed one.
fn return_memory_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before the server's threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Raises the soft limit on open files to cover `connections` and some to spare (the
/// database, the log, the listener), as far as the hard limit allows; returns the limit.
// rlim_t is u64 on most systems, not all.
#[allow(clippy::unnecessary_cast)]
fn open_files_for(connections: usize) -> Option<u64> {
    #[cfg(unix)]
    {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read and write the one struct given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
                return None;
            }
            let want = (connections as u64).saturating_add(256);
            let want = want.min(l.rlim_max as u64) as libc::rlim_t;
            if want > l.rlim_cur {
                let raised = libc::rlimit {
                    rlim_cur: want,
                    rlim_max: l.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    l = raised;
                }
            }
        }
        Some(l.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = connections;
        None
    }
}

pub use blobs::Freed;

/// `valyxo server gc`: deletes (or with `dry_run` only counts) the file content no file
/// names that nobody touched for `expiry`, and uploads abandoned half-way, in the database
/// at `database` — safely while servers use it. A statement may take `statement_timeout`
/// (`--statement-timeout`: a large database's first scan may need more than the default).
pub fn gc(
    database: &str,
    expiry: Duration,
    statement_timeout: Duration,
    dry_run: bool,
) -> anyhow::Result<Freed> {
    let db = Db::open_with(database, 2, statement_timeout)?;
    blobs::collect(&db, expiry, dry_run)
        .map_err(|e| anyhow::anyhow!("collecting content failed: {}", e.message))
}

/// Runs the server until SIGINT or SIGTERM. Prints `listening on http://ADDR` on standard
/// output once the socket is bound (with `:0`, the port chosen). On a signal it stops taking
/// connections (new ones are refused), finishes the requests under way within
/// `shutdown_grace`, and returns.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    return_memory_to_the_system();
    let logger = log::start();
    if let Some(files) = open_files_for(cfg.max_connections) {
        if files < cfg.max_connections as u64 + 64 {
            log_line(json!({"level": "warn",
                "msg": "the open files limit is below --max-connections: connections over it cannot be accepted",
                "open_files": files, "max_connections": cfg.max_connections}));
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("server")
        .build()?;
    let result = rt.block_on(async move {
        let listen = cfg.listen.clone();
        let app = Arc::new(tokio::task::spawn_blocking(move || App::new(cfg)).await??);
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let metrics_listener =
            match &app.cfg.metrics_listen {
                Some(a) => Some(tokio::net::TcpListener::bind(a).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on {a} (--metrics-listen): {e}")
                })?),
                None => None,
            };
        // Caught from before the address is announced, so that no signal finds the
        // default action (an exit without the drain).
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        log_line(
            json!({"level": "info", "msg": "started", "addr": addr.to_string(),
            "database": app.db.describe()}),
        );
        println!("listening on http://{addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let sweeper = tokio::spawn(blobs::sweep_regularly(app.clone()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let api = conns::serve(
            listener,
            router(app.clone()),
            app.clone(),
            stopped(stop_rx.clone()),
        );
        match metrics_listener {
            Some(l) => {
                let addr = l.local_addr()?;
                log_line(json!({"level": "info", "msg": "metrics listening",
                    "addr": addr.to_string()}));
                let metrics = conns::serve(
                    l,
                    metrics_router(app.clone()),
                    app.clone(),
                    stopped(stop_rx),
                );
                tokio::join!(api, metrics);
            }
            None => api.await,
        }
        sweeper.abort();
        let _ = sweeper.await;
        Ok::<_, anyhow::Error>(app)
    });
    // The database's blocking clients (PostgreSQL's among them) must be dropped outside
    // the runtime, and the runtime itself before them. A handler still running after the
    // grace period (a query stuck on the database) is waited for a little, then left.
    rt.shutdown_timeout(Duration::from_secs(5));
    let app = result?;
    drop(app);
    log_line(json!({"level": "info", "msg": "stopped"}));
    drop(logger);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str, param: Option<&str>) -> Req {
        Req {
            param: param.map(str::to_string),
            query: None,
            body: Bytes::copy_from_slice(body.as_bytes()),
            user: None,
        }
    }

    #[test]
    fn request_bodies_are_json_objects_or_nothing() {
        assert!(req("", None).json().unwrap().is_empty());
        assert!(req(" \n\t", None).json().unwrap().is_empty());
        assert_eq!(
            req(r#"{"a": "b"}"#, None).json().unwrap()["a"],
            Value::from("b")
        );
        for (body, why) in [
            ("[1, 2]", "The request body must be a JSON object"),
            ("\"text\"", "The request body must be a JSON object"),
            ("{\"a\": ", "Malformed JSON in the request body"),
            ("\u{feff}{}", "Malformed JSON in the request body"),
        ] {
            let e = req(body, None).json().unwrap_err();
            assert_eq!(
                (e.status, e.message.as_str()),
                (StatusCode::BAD_REQUEST, why)
            );
        }
    }

    #[test]
    fn fields_are_strings_without_nul() {
        let body = req(
            r#"{"s": "x", "n": null, "i": 3, "o": {}, "z": "a\u0000b"}"#,
            None,
        )
        .json()
        .unwrap();
        assert_eq!(field(&body, "s"), Ok(Some("x")));
        assert_eq!(field(&body, "n"), Ok(None));
        assert_eq!(field(&body, "absent"), Ok(None));
        assert_eq!(
            field(&body, "i"),
            Err(("i".into(), "i must be a string".into()))
        );
        assert_eq!(
            field(&body, "o"),
            Err(("o".into(), "o must be a string".into()))
        );
        assert_eq!(
            field(&body, "z"),
            Err(("z".into(), "z must not hold NUL characters".into()))
        );
    }

    #[test]
    fn queries_decode_as_forms_do_and_bytes_that_are_not_text_are_refused() {
        let q = |query: &str| Req {
            query: Some(query.into()),
            ..req("", None)
        };
        let pairs = |v: &[(&str, &str)]| {
            Some(
                v.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            q("a+b=%41%zz%4&x&&path=%C3%A9/%E2%82%AC%").query_pairs(),
            pairs(&[("a b", "A%zz%4"), ("x", ""), ("path", "é/€%")])
        );
        for bad in ["path=%FF", "path=%C3%28", "%FE=x", "path=%ED%A0%80"] {
            assert_eq!(q(bad).query_pairs(), None, "{bad}");
        }
    }

    #[test]
    fn path_ids_are_positive_numbers() {
        assert_eq!(req("", Some("42")).id("Project").unwrap(), 42);
        for bad in [
            None,
            Some("0"),
            Some("-1"),
            Some("4x"),
            Some(""),
            Some("99999999999999999999"),
        ] {
            let e = req("", bad).id("Project").unwrap_err();
            assert_eq!(
                (e.status, e.message.as_str()),
                (StatusCode::NOT_FOUND, "Project not found"),
                "{bad:?}"
            );
        }
    }
}
