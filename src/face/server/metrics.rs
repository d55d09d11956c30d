//! Operator metrics (server): request counts and latency histograms per route, connections,
//! database pool use and rate-limit refusals, kept in atomics and written in Prometheus'
//! text format at `GET /metrics`, for the holder of `--metrics-token` or on the operator's
//! own address, `--metrics-listen` (`man server`, Operations).
//!
//! The label values are bounded by the route table: a route is named by its path template
//! (`/api/projects/{id}`), never by the path asked for, and a request that no route serves
//! is counted as `unmatched`, whatever its method and path.

use super::db::PoolUse;
use super::routes::ROUTES;
use super::{ApiError, App};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// The upper bounds of the latency histogram's buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The row of `/metrics` itself (after the routes of the table).
pub const METRICS_ROUTE: usize = ROUTES.len();
/// The row of requests no route serves (unknown paths, wrong methods).
const UNMATCHED: usize = ROUTES.len() + 1;

/// Which route answered, put in the response's extensions by the route's handler.
#[derive(Clone, Copy, Debug)]
pub struct RouteId(pub usize);

#[derive(Default)]
struct RouteStats {
    /// Answers by status class: 1xx … 5xx.
    classes: [AtomicU64; 5],
    /// Answers by latency bucket (not cumulative); the last one is over every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    micros: AtomicU64,
}

/// What happened to connections.
#[derive(Default)]
pub struct Connections {
    pub open: AtomicI64,
    pub accepted: AtomicU64,
    /// Answered 503 after waiting for a place under the cap.
    pub refused: AtomicU64,
    /// Closed at once: too many were already waiting.
    pub dropped: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub send_timeouts: AtomicU64,
}

/// Every counter of the server.
pub struct Metrics {
    routes: Box<[RouteStats]>,
    pub connections: Connections,
    /// Login and register attempts refused by the per-client limit.
    pub rate_limited: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            routes: (0..=UNMATCHED).map(|_| RouteStats::default()).collect(),
            connections: Connections::default(),
            rate_limited: AtomicU64::new(0),
        }
    }
}

/// The method and path template of a row.
fn route_labels(i: usize) -> (&'static str, &'static str) {
    match ROUTES.get(i) {
        Some(r) => (r.method, r.path),
        None if i == METRICS_ROUTE => ("GET", "/metrics"),
        None => ("*", "unmatched"),
    }
}

/// A label value with `\`, `"` and new lines escaped, as the text format wants.
fn escaped(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one answer of `route` (None: no route served it).
    pub fn request(&self, route: Option<usize>, status: u16, elapsed: Duration) {
        let i = route.filter(|i| *i < UNMATCHED).unwrap_or(UNMATCHED);
        let r = &self.routes[i];
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        r.classes[class].fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS.len());
        r.buckets[b].fetch_add(1, Relaxed);
        r.micros
            .fetch_add(elapsed.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// Everything, in Prometheus' text exposition format (version 0.0.4).
    pub fn render(&self, pool: PoolUse) -> String {
        let mut out = String::with_capacity(64 << 10);
        let o = &mut out;
        let head = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            o,
            "valyxo_http_requests_total",
            "counter",
            "Requests answered, by route (its path template) and status class.",
        );
        for (i, r) in self.routes.iter().enumerate() {
            let (method, route) = route_labels(i);
            for (c, n) in r.classes.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "valyxo_http_requests_total{{method=\"{}\",route=\"{}\",code=\"{}xx\"}} {}",
                    escaped(method),
                    escaped(route),
                    c + 1,
                    n.load(Relaxed)
                );
            }
        }
        head(
            o,
            "valyxo_http_request_duration_seconds",
            "histogram",
            "Time from a request's head to its answer, by route.",
        );
        for (i, r) in self.routes.iter().enumerate() {
            let (method, route) = route_labels(i);
            let labels = format!(
                "method=\"{}\",route=\"{}\"",
                escaped(method),
                escaped(route)
            );
            let mut count = 0;
            for (b, n) in r.buckets.iter().enumerate() {
                count += n.load(Relaxed);
                let le = BUCKETS.get(b).map_or("+Inf".to_string(), f64::to_string);
                let _ = writeln!(
                    o,
                    "valyxo_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}"
                );
            }
            let sum = r.micros.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                o,
                "valyxo_http_request_duration_seconds_sum{{{labels}}} {sum}\n\
                 valyxo_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        let c = &self.connections;
        head(
            o,
            "valyxo_http_connections_open",
            "gauge",
            "Connections being served.",
        );
        let _ = writeln!(
            o,
            "valyxo_http_connections_open {}",
            c.open.load(Relaxed).max(0)
        );
        head(
            o,
            "valyxo_http_connections_accepted_total",
            "counter",
            "Connections accepted and served.",
        );
        let _ = writeln!(
            o,
            "valyxo_http_connections_accepted_total {}",
            c.accepted.load(Relaxed)
        );
        head(
            o,
            "valyxo_http_connections_refused_total",
            "counter",
            "Connections over --max-connections: answered 503 (busy) or closed at once \
             (overflow).",
        );
        for (reason, n) in [("busy", &c.refused), ("overflow", &c.dropped)] {
            let _ = writeln!(
                o,
                "valyxo_http_connections_refused_total{{reason=\"{reason}\"}} {}",
                n.load(Relaxed)
            );
        }
        head(
            o,
            "valyxo_http_connections_timed_out_total",
            "counter",
            "Connections closed by a timeout: a request head too slow, idle too long, or an \
             answer not read.",
        );
        for (phase, n) in [
            ("header", &c.header_timeouts),
            ("idle", &c.idle_timeouts),
            ("send", &c.send_timeouts),
        ] {
            let _ = writeln!(
                o,
                "valyxo_http_connections_timed_out_total{{phase=\"{phase}\"}} {}",
                n.load(Relaxed)
            );
        }
        head(
            o,
            "valyxo_db_pool_connections",
            "gauge",
            "Database connections of this process's pool, in use and idle.",
        );
        let _ = writeln!(
            o,
            "valyxo_db_pool_connections{{state=\"in_use\"}} {}\n\
             valyxo_db_pool_connections{{state=\"idle\"}} {}",
            pool.in_use, pool.idle
        );
        head(
            o,
            "valyxo_db_pool_max_connections",
            "gauge",
            "The size of the database pool (--pool-size).",
        );
        let _ = writeln!(o, "valyxo_db_pool_max_connections {}", pool.max);
        head(
            o,
            "valyxo_rate_limited_total",
            "counter",
            "Requests refused with 429 by a rate limit (login: login and register attempts \
             per client address).",
        );
        let _ = writeln!(
            o,
            "valyxo_rate_limited_total{{limiter=\"login\"}} {}",
            self.rate_limited.load(Relaxed)
        );
        out
    }
}

/// Whether `headers` carry `Authorization: Bearer TOKEN` with the operator's token,
/// compared in constant time (both are hashed first, and BLAKE3 hashes compare in
/// constant time), so the answer's timing says nothing of how much of a guess was right.
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    blake3::hash(given.as_bytes()) == blake3::hash(token.as_bytes())
}

fn text(app: &App) -> Response {
    let mut res = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        app.metrics.render(app.db.pool_use()),
    )
        .into_response();
    res.extensions_mut().insert(RouteId(METRICS_ROUTE));
    res
}

/// `GET /metrics` on the operator's own address (`--metrics-listen`): whoever can reach
/// it is the operator.
pub async fn open(State(app): State<Arc<App>>) -> Response {
    text(&app)
}

/// `GET /metrics` on the API's address: the text for the operator, 401 for anyone else.
/// (Without `--metrics-token` the route is not there at all: 404.)
pub async fn serve(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let token = app.cfg.metrics_token.as_deref().unwrap_or_default();
    if !token.is_empty() && authorized(&headers, token) {
        text(&app)
    } else {
        let mut r = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "The metrics need the operator's token",
        )
        .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r.extensions_mut().insert(RouteId(METRICS_ROUTE));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start} in\n{text}"))
    }

    #[test]
    fn histograms_are_cumulative_and_routes_are_templates() {
        let m = Metrics::default();
        let i = ROUTES.iter().position(|r| r.path.contains("{id}")).unwrap();
        let (method, path) = route_labels(i);
        m.request(Some(i), 200, Duration::from_micros(500));
        m.request(Some(i), 404, Duration::from_millis(7));
        m.request(Some(i), 201, Duration::from_secs(30));
        m.request(None, 405, Duration::from_millis(1));
        let text = m.render(PoolUse {
            in_use: 2,
            idle: 5,
            max: 8,
        });
        let l = format!("method=\"{method}\",route=\"{path}\"");
        let b = |le: &str| {
            line(
                &text,
                &format!("valyxo_http_request_duration_seconds_bucket{{{l},le=\"{le}\"}} "),
            )
            .to_string()
        };
        assert!(b("0.001").ends_with(" 1"), "{}", b("0.001"));
        assert!(b("0.005").ends_with(" 1"));
        assert!(b("0.01").ends_with(" 2"));
        assert!(b("10").ends_with(" 2"));
        assert!(b("+Inf").ends_with(" 3"));
        assert!(line(
            &text,
            &format!("valyxo_http_request_duration_seconds_count{{{l}}} ")
        )
        .ends_with(" 3"));
        let sum = line(
            &text,
            &format!("valyxo_http_request_duration_seconds_sum{{{l}}} "),
        );
        assert_eq!(sum.rsplit(' ').next(), Some("30.0075"));
        assert!(line(
            &text,
            &format!("valyxo_http_requests_total{{{l},code=\"2xx\"}} ")
        )
        .ends_with(" 2"));
        assert!(line(
            &text,
            &format!("valyxo_http_requests_total{{{l},code=\"4xx\"}} ")
        )
        .ends_with(" 1"));
        assert!(line(
            &text,
            "valyxo_http_requests_total{method=\"*\",route=\"unmatched\",code=\"4xx\"} "
        )
        .ends_with(" 1"));
        assert!(text.contains("valyxo_db_pool_connections{state=\"in_use\"} 2\n"));
        assert!(text.contains("valyxo_db_pool_connections{state=\"idle\"} 5\n"));
        assert!(text.contains("valyxo_db_pool_max_connections 8\n"));
        // Every series has its HELP and TYPE, and every line is a comment or a sample.
        for l in text.lines() {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(
                l.starts_with("# HELP ")
                    || l.starts_with("# TYPE ")
                    || (name.starts_with("valyxo_")
                        && l.rsplit(' ').next().unwrap().parse::<f64>().is_ok()),
                "{l}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escaped(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escaped("a\nb"), "a\\nb");
    }

    #[test]
    fn only_the_exact_token_is_let_in() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "s3cret-operator-token"));
        for (given, ok) in [
            ("Bearer s3cret-operator-token", true),
            ("Bearer s3cret-operator-toke", false),
            ("Bearer s3cret-operator-token ", false),
            ("bearer s3cret-operator-token", false),
            ("s3cret-operator-token", false),
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(given).unwrap());
            assert_eq!(authorized(&h, "s3cret-operator-token"), ok, "{given}");
        }
    }
}
