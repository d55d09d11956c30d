//! `valyxo server`: the account API of `api.md` — auth and users, projects and scripts, file
//! sync by content hash — over axum, with SQLite or PostgreSQL storage (`db`).
//!
//! Handlers are plain functions over the database that run on tokio's blocking pool; the
//! async side only reads requests (with size limits), checks tokens and rate limits, and adds
//! the headers every response carries.

mod auth;
mod db;
mod files;
mod projects;
mod sandbox;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, MethodFilter, MethodRouter};
use axum::Router;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use db::Db;
pub use files::{valid_path, MAX_BATCH};

/// How the server runs (the options of `valyxo server`).
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: String,
    pub database: String,
    pub pool_size: u32,
    pub token_ttl: Duration,
    /// Login and register attempts per minute per client address; 0 turns the limit off.
    pub rate_limit: u32,
    pub trusted_proxies: Vec<IpAddr>,
    pub cors_origins: Vec<String>,
    pub json_limit: usize,
    pub blob_limit: usize,
    /// The token signing secret; None reads (or on first start creates) one in the database.
    pub secret: Option<String>,
    /// Write one JSON line per request to standard error.
    pub log: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:8080".into(),
            database: "sqlite:server.db".into(),
            pool_size: 8,
            token_ttl: Duration::from_secs(7 * 24 * 3600),
            rate_limit: 10,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            json_limit: 1 << 20,
            blob_limit: 32 << 20,
            secret: None,
            log: true,
        }
    }
}

/// An error answer: `{"success": false, "error": …}` plus details, conflicts or Retry-After.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    details: Vec<Value>,
    extra: Option<(&'static str, Value)>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            details: Vec::new(),
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
        e.details = details
            .into_iter()
            .map(|(f, m)| json!({"field": f, "message": m}))
            .collect();
        e
    }
    pub fn with(mut self, key: &'static str, value: Value) -> ApiError {
        self.extra = Some((key, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message =
            if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
                log_line(json!({"level": "error", "error": self.message}));
                "Internal server error".to_string()
            } else {
                self.message
            };
        let mut body = json!({"success": false, "error": message});
        if !self.details.is_empty() {
            body["details"] = Value::Array(self.details);
        }
        if let Some((k, v)) = self.extra {
            body[k] = v;
        }
        let mut r = (self.status, json_body(&body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

fn json_body(v: &Value) -> ([(header::HeaderName, HeaderValue); 1], String) {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        v.to_string(),
    )
}

/// A successful answer.
pub enum Reply {
    Json(StatusCode, Value),
    /// JSON text that is already written out.
    Text(&'static str),
    Bytes(Vec<u8>),
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Json(status, v) => (status, json_body(&v)).into_response(),
            Reply::Text(t) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                t,
            )
                .into_response(),
            Reply::Bytes(b) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                )],
                b,
            )
                .into_response(),
        }
    }
}

pub fn ok(v: Value) -> Result<Reply, ApiError> {
    Ok(Reply::Json(StatusCode::OK, with_success(v)))
}

pub fn created(v: Value) -> Result<Reply, ApiError> {
    Ok(Reply::Json(StatusCode::CREATED, with_success(v)))
}

fn with_success(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("success".into(), Value::Bool(true));
    }
    v
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

pub type Handler = fn(&App, &Req) -> Result<Reply, ApiError>;

#[derive(Clone, Copy, PartialEq)]
enum Auth {
    Public,
    Required,
    /// Public and rate limited per client address (login, register).
    Limited,
    /// Authenticated and rate limited per client address (a password change).
    RequiredLimited,
}

#[derive(Clone, Copy)]
enum BodyKind {
    None,
    Json,
    Blob,
}

type Limiter = governor::RateLimiter<
    IpAddr,
    governor::state::keyed::HashMapStateStore<IpAddr>,
    governor::clock::DefaultClock,
>;

/// Blob uploads read at once; more wait their turn.
const MAX_UPLOADS: usize = 8;
/// Threads for handlers (password hashing, scripts, queries): this bounds the memory and CPU
/// that many simultaneous costly requests can take.
const MAX_BLOCKING_THREADS: usize = 32;

/// The shared state of the server.
pub struct App {
    pub db: Db,
    pub cfg: Config,
    tokens: auth::Tokens,
    limiter: Option<Limiter>,
    /// Blob uploads being read at once.
    uploads: tokio::sync::Semaphore,
}

impl App {
    pub fn new(cfg: Config) -> anyhow::Result<App> {
        let db = Db::open(&cfg.database, cfg.pool_size)?;
        let tokens = auth::Tokens::new(&db, cfg.secret.as_deref(), cfg.token_ttl)?;
        let limiter = std::num::NonZeroU32::new(cfg.rate_limit)
            .map(|n| governor::RateLimiter::hashmap(governor::Quota::per_minute(n)));
        Ok(App {
            db,
            cfg,
            tokens,
            limiter,
            uploads: tokio::sync::Semaphore::new(MAX_UPLOADS),
        })
    }

    /// The address a request came from: the socket's, or the one a trusted proxy names.
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.cfg.trusted_proxies.contains(&peer) {
            return peer;
        }
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(peer)
    }

    fn check_rate(&self, client: IpAddr) -> Result<(), ApiError> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        // One IPv6 client holds a whole /64.
        let key = match client {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            v4 => v4,
        };
        // Forget clients whose limit has fully recovered, now and then.
        if l.len() > 10_000 {
            l.retain_recent();
        }
        l.check_key(&key).map_err(|not_until| {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts: wait a moment and try again",
            );
            e.retry_after = Some(wait.as_secs() + 1);
            e
        })
    }
}

/// Reads a request body up to `limit` bytes; longer ones are refused with 413.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = src {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            src = s.source();
        }
        // The client went away or sent a broken body.
        ApiError::bad("The request body could not be read")
    })
}

/// How a route is served: its handler, authentication and body.
#[derive(Clone, Copy)]
struct RouteSpec {
    f: Handler,
    auth: Auth,
    kind: BodyKind,
}

async fn serve(
    app: Arc<App>,
    RouteSpec { f, auth, kind }: RouteSpec,
    peer: SocketAddr,
    headers: HeaderMap,
    param: Option<String>,
    body: Body,
) -> Response {
    let client = app.client(peer.ip(), &headers);
    if matches!(auth, Auth::Limited | Auth::RequiredLimited) {
        if let Err(e) = app.check_rate(client) {
            return e.into_response();
        }
    }
    let needs_user = matches!(auth, Auth::Required | Auth::RequiredLimited);
    let bearer = || {
        headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("").to_string())
    };
    // With a body, the token is checked before a byte of it is read; without one, the
    // check runs in the handler's own blocking task (one hand-off, not two).
    let has_body = !matches!(kind, BodyKind::None);
    let user = if needs_user && has_body {
        let bearer = bearer();
        let a = app.clone();
        match tokio::task::spawn_blocking(move || a.tokens.check(&a.db, bearer.as_deref())).await {
            Ok(Ok(u)) => Some(u),
            Ok(Err(e)) => return e.into_response(),
            Err(e) => {
                return ApiError::internal(format!("token check failed: {e}")).into_response()
            }
        }
    } else {
        None
    };
    let body = match kind {
        BodyKind::None => Bytes::new(),
        BodyKind::Json => match read_body(body, &headers, app.cfg.json_limit).await {
            Ok(b) => b,
            Err(e) => return e.into_response(),
        },
        BodyKind::Blob => {
            // Uploads are held in memory whole: only a few at a time.
            let Ok(_permit) = app.uploads.acquire().await else {
                return ApiError::unavailable("The server is stopping").into_response();
            };
            match read_body(body, &headers, app.cfg.blob_limit).await {
                Ok(b) => b,
                Err(e) => return e.into_response(),
            }
        }
    };
    let late = (needs_user && !has_body).then(bearer);
    let work = tokio::task::spawn_blocking(move || {
        let user = match late {
            Some(bearer) => Some(app.tokens.check(&app.db, bearer.as_deref())?),
            None => user,
        };
        f(&app, &Req { param, body, user })
    })
    .await;
    match work {
        Ok(Ok(reply)) => reply.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(format!("handler failed: {e}")).into_response(),
    }
}

/// A route's one path parameter, or why it could not be read.
type PathParam = Result<Path<String>, axum::extract::rejection::PathRejection>;

/// The future a route returns.
type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

fn route(
    spec: RouteSpec,
) -> impl Fn(State<Arc<App>>, ConnectInfo<SocketAddr>, HeaderMap, Body) -> Pending
       + Clone
       + Send
       + Sync
       + 'static {
    move |State(app), ConnectInfo(peer), headers, body| {
        Box::pin(serve(app, spec, peer, headers, None, body))
    }
}

fn route_param(
    spec: RouteSpec,
) -> impl Fn(State<Arc<App>>, ConnectInfo<SocketAddr>, PathParam, HeaderMap, Body) -> Pending
       + Clone
       + Send
       + Sync
       + 'static {
    move |State(app), ConnectInfo(peer), param: PathParam, headers, body| {
        Box::pin(async move {
            match param {
                Ok(Path(param)) => serve(app, spec, peer, headers, Some(param), body).await,
                // A parameter that is not even text (`%FF`) names nothing.
                Err(_) => ApiError::not_found("Not found").into_response(),
            }
        })
    }
}

/// Every route: method, path, handler, authentication and body.
const ROUTES: &[(&str, &str, Handler, Auth, BodyKind)] = &[
    (
        "POST",
        "/api/auth/register",
        auth::register,
        Auth::Limited,
        BodyKind::Json,
    ),
    (
        "POST",
        "/api/auth/login",
        auth::login,
        Auth::Limited,
        BodyKind::Json,
    ),
    (
        "POST",
        "/api/auth/logout",
        auth::logout,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "GET",
        "/api/auth/me",
        auth::me,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "GET",
        "/api/users/profile",
        auth::profile,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "PUT",
        "/api/users/profile",
        auth::update_profile,
        Auth::Required,
        BodyKind::Json,
    ),
    (
        "PUT",
        "/api/users/password",
        auth::change_password,
        Auth::RequiredLimited,
        BodyKind::Json,
    ),
    (
        "GET",
        "/api/users/stats",
        auth::stats,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "GET",
        "/api/projects",
        projects::list,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "POST",
        "/api/projects",
        projects::create,
        Auth::Required,
        BodyKind::Json,
    ),
    (
        "GET",
        "/api/projects/{id}",
        projects::show,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "PUT",
        "/api/projects/{id}",
        projects::update,
        Auth::Required,
        BodyKind::Json,
    ),
    (
        "DELETE",
        "/api/projects/{id}",
        projects::delete,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "GET",
        "/api/scripts/project/{id}",
        projects::scripts,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "POST",
        "/api/scripts/project/{id}",
        projects::create_script,
        Auth::Required,
        BodyKind::Json,
    ),
    (
        "GET",
        "/api/scripts/{id}",
        projects::script,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "PUT",
        "/api/scripts/{id}",
        projects::update_script,
        Auth::Required,
        BodyKind::Json,
    ),
    (
        "DELETE",
        "/api/scripts/{id}",
        projects::delete_script,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "POST",
        "/api/scripts/{id}/execute",
        projects::execute,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "GET",
        "/api/scripts/{id}/executions",
        projects::executions,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "GET",
        "/api/projects/{id}/files",
        files::list,
        Auth::Required,
        BodyKind::None,
    ),
    (
        "POST",
        "/api/projects/{id}/files/commit",
        files::commit,
        Auth::Required,
        BodyKind::Json,
    ),
    (
        "POST",
        "/api/blobs/missing",
        files::missing,
        Auth::Required,
        BodyKind::Json,
    ),
    (
        "PUT",
        "/api/blobs/{hash}",
        files::put_blob,
        Auth::Required,
        BodyKind::Blob,
    ),
    (
        "GET",
        "/api/blobs/{hash}",
        files::get_blob,
        Auth::Required,
        BodyKind::None,
    ),
    ("GET", "/health", health, Auth::Public, BodyKind::None),
    (
        "GET",
        "/api/openapi.json",
        openapi,
        Auth::Public,
        BodyKind::None,
    ),
];

/// The paths and methods served, for the OpenAPI document's test.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    ROUTES.iter().map(|r| (r.0, r.1)).collect()
}

fn health(_: &App, _: &Req) -> Result<Reply, ApiError> {
    ok(json!({"status": "ok"}))
}

const OPENAPI: &str = include_str!("openapi.json");

/// The OpenAPI document, served as it is embedded.
fn openapi(_: &App, _: &Req) -> Result<Reply, ApiError> {
    Ok(Reply::Text(OPENAPI))
}

/// The router with every route, the JSON fallbacks, the security headers and CORS.
pub fn router(app: Arc<App>) -> Router {
    let mut by_path: Vec<(&str, MethodRouter<Arc<App>>)> = Vec::new();
    for &(method, path, f, auth, kind) in ROUTES {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            _ => MethodFilter::DELETE,
        };
        let spec = RouteSpec { f, auth, kind };
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
        r = r.route(
            path,
            mr.fallback(|| async {
                ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            }),
        );
    }
    let mut r = r
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

/// Around every request: the security headers, and one log line (never a body, a token or a
/// query string).
async fn around(
    State(app): State<Arc<App>>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| app.client(c.0.ip(), req.headers()));
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if app.cfg.log {
        log_line(json!({
            "method": method.as_str(),
            "path": path,
            "status": res.status().as_u16(),
            "ms": (start.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
            "client": peer.map(|p| p.to_string()),
        }));
    }
    res
}

fn log_line(mut v: Value) {
    use std::io::Write;
    v["time"] = Value::String(now());
    let _ = writeln!(std::io::stderr().lock(), "{v}");
}

/// Runs the server until SIGINT or SIGTERM. Prints `listening on http://ADDR` on standard
/// output once the socket is bound (with `:0`, the port chosen).
pub fn run(cfg: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("server")
        .build()?;
    rt.block_on(async move {
        let listen = cfg.listen.clone();
        let app = Arc::new(tokio::task::spawn_blocking(move || App::new(cfg)).await??);
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        log_line(
            json!({"level": "info", "msg": "started", "addr": addr.to_string(),
            "database": app.db.describe()}),
        );
        println!("listening on http://{addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(async {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
                let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
                tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            })
            .await?;
        log_line(json!({"level": "info", "msg": "stopped"}));
        Ok(())
    })
}
