//! Slow and hostile clients, and the operator's endpoints, of `valyxo server` (`man server`,
//! Connections and Operations): header and idle timeouts, the connection cap, the drain on
//! SIGTERM, `/metrics` behind its token, `/health` and `/ready`. Each test starts a real
//! server on 127.0.0.1 and talks raw HTTP/1.1 over TCP where a client library would hide
//! what is tested (a half-sent head, a kept-alive connection).

use crate::common;

use common::server::{call, raw, user, Server};
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const OPERATOR: &str = "operator-token-for-the-tests";

fn addr(s: &Server) -> String {
    s.url.trim_start_matches("http://").to_string()
}

/// One answer read off a raw connection: status, head and body.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

/// Reads one answer (with a Content-Length body) from `c`.
fn read_answer(c: &mut TcpStream) -> Raw {
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = c.read(&mut buf).expect("an answer");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = data[end..].to_vec();
    while body.len() < len {
        let n = c.read(&mut buf).expect("the body");
        assert!(n > 0, "closed in the body");
        body.extend_from_slice(&buf[..n]);
    }
    Raw {
        status,
        head,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

/// `GET path` on the connection `c`, kept alive.
fn get(c: &mut TcpStream, path: &str) -> Raw {
    write!(c, "GET {path} HTTP/1.1\r\nHost: valyxo.test\r\n\r\n").unwrap();
    read_answer(c)
}

/// Whether the server closes `c` within `limit` (reading and dropping what it sends).
fn closed_within(c: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        c.set_read_timeout(Some(left)).unwrap();
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            // Reset: closed too.
            Err(_) => return true,
        }
    }
}

/// Whether `c` is still open with nothing to read (checked without waiting).
fn open_and_silent(c: &mut TcpStream) -> bool {
    c.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    let r = c.read(&mut buf);
    c.set_nonblocking(false).unwrap();
    matches!(r, Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// The text of `/metrics` read with the operator's token.
fn metrics(url: &str) -> String {
    let (status, body, headers) = raw("GET", &format!("{url}/metrics"), Some(OPERATOR), None);
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    String::from_utf8(body).unwrap()
}

/// The value of the sample `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn hundreds_of_slow_heads_are_dropped_and_never_keep_a_client_waiting() {
    let s = Server::start(
        None,
        &["--header-timeout", "2s", "--metrics-token", OPERATOR],
    );
    let a = addr(&s);
    // Each sends most of a request head, then nothing.
    let mut slow: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut c = TcpStream::connect(&a).unwrap();
            write!(c, "GET /health HTTP/1.1\r\nHost: {a}\r\nX-Slow: {i}").unwrap();
            c
        })
        .collect();
    // A normal client is served beside them: a fresh connection, a sign-up, a token.
    let h = call(&s.url, "GET", "/health", None, None);
    assert_eq!(h.status, 200);
    let (_, token, _) = user(&s.url);
    assert_eq!(
        call(&s.url, "GET", "/api/auth/me", Some(&token), None).status,
        200
    );
    // Every slow one is closed by the server, without an answer.
    for c in &mut slow {
        let mut got = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let r = c.read_to_end(&mut got);
        assert!(
            r.is_ok()
                || r.as_ref()
                    .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
            "{r:?}"
        );
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    }
    let m = metrics(&s.url);
    assert!(
        sample(
            &m,
            r#"valyxo_http_connections_timed_out_total{phase="header"}"#
        ) >= 300.0,
        "{m}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_but_not_a_head_within_its_time() {
    let s = Server::start(
        None,
        &[
            "--idle-timeout",
            "1s",
            "--header-timeout",
            "5m",
            "--metrics-token",
            OPERATOR,
        ],
    );
    let a = addr(&s);
    // A head on its way, with minutes left to finish.
    let mut heading = TcpStream::connect(&a).unwrap();
    write!(heading, "GET /health HTTP/1.1\r\nHost: {a}\r\n").unwrap();
    // Two requests on one connection: it is kept alive between them, then left idle.
    let mut c = TcpStream::connect(&a).unwrap();
    assert_eq!(get(&mut c, "/health").status, 200);
    assert_eq!(get(&mut c, "/ready").status, 200);
    assert!(closed_within(&mut c, Duration::from_secs(60)));
    // The idle timeout closed it; the head on its way is still open, and can finish.
    assert!(open_and_silent(&mut heading));
    let m = metrics(&s.url);
    assert_eq!(
        sample(
            &m,
            r#"valyxo_http_connections_timed_out_total{phase="idle"}"#
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"valyxo_http_connections_timed_out_total{phase="header"}"#
        ),
        0.0
    );
    write!(heading, "\r\n").unwrap();
    assert_eq!(read_answer(&mut heading).status, 200);
}

#[test]
fn connections_over_the_cap_get_503_and_are_served_once_there_is_room() {
    let s = Server::start(None, &["--max-connections", "3"]);
    let a = addr(&s);
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut c = TcpStream::connect(&a).unwrap();
            assert_eq!(get(&mut c, "/health").status, 200);
            c
        })
        .collect();
    // A fourth waits for a place, gets none, and is told so.
    let mut over = TcpStream::connect(&a).unwrap();
    let r = get(&mut over, "/health");
    assert_eq!(r.status, 503, "{}", r.body);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["success"], false);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("too many connections"));
    let head = r.head.to_ascii_lowercase();
    assert!(head.contains("retry-after: 1"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(closed_within(&mut over, Duration::from_secs(30)));
    // The ones held are served as before.
    assert_eq!(get(&mut held[0], "/health").status, 200);
    // When one closes, a new connection gets its place.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = TcpStream::connect(&a).unwrap();
        let r = get(&mut c, "/health");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(Instant::now() < deadline, "no place freed");
    }
}

#[test]
fn sigterm_lets_a_slow_upload_finish_and_refuses_new_connections() {
    let mut s = Server::start(None, &[]);
    let (_, token, _) = user(&s.url);
    let a = addr(&s);
    let body = r#"{"name": "finished during the drain"}"#;
    let mut c = TcpStream::connect(&a).unwrap();
    write!(
        c,
        "POST /api/projects HTTP/1.1\r\nHost: {a}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    // 100 Continue: the handler is reading the body.
    let cont = read_answer(&mut c);
    assert_eq!(cont.status, 100, "{}", cont.head);
    c.write_all(&body.as_bytes()[..10]).unwrap();
    s.signal(libc::SIGTERM);
    // New connections are refused while the upload is under way.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect(&a) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
        assert!(Instant::now() < deadline, "still taking connections");
    }
    // The rest of the body arrives; the request completes with its answer.
    c.write_all(&body.as_bytes()[10..]).unwrap();
    let r = read_answer(&mut c);
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.contains("finished during the drain"), "{}", r.body);
    // The drain ends the connection, and the server exits 0.
    assert!(r.head.to_ascii_lowercase().contains("connection: close"));
    let (status, log) = s.terminate_with_log();
    assert!(status.success(), "{status:?}\n{log}");
}

#[test]
fn a_request_that_outlasts_the_grace_period_is_cut_and_the_server_still_exits_0() {
    let mut s = Server::logged(&["--shutdown-grace", "1s"]);
    let (_, token, _) = user(&s.url);
    let a = addr(&s);
    let mut c = TcpStream::connect(&a).unwrap();
    write!(
        c,
        "POST /api/projects HTTP/1.1\r\nHost: {a}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
    )
    .unwrap();
    assert_eq!(read_answer(&mut c).status, 100);
    c.write_all(b"{\"name\": ").unwrap();
    // The body never ends (the body timeout, 20 s, is far off): the grace period ends it.
    let (status, log) = s.terminate_with_log();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("shutdown grace period over"), "{log}");
    assert!(log.contains("\"msg\":\"stopped\""), "{log}");
    assert!(closed_within(&mut c, Duration::from_secs(30)));
}

#[test]
fn metrics_are_for_the_operator_only_and_count_each_route() {
    // Without a token there is no /metrics at all.
    let plain = Server::sqlite();
    let (status, _, _) = raw(
        "GET",
        &format!("{}/metrics", plain.url),
        Some(OPERATOR),
        None,
    );
    assert_eq!(status, 404);
    drop(plain);

    let s = Server::start(
        None,
        &[
            "--metrics-token",
            OPERATOR,
            "--rate-limit",
            "1",
            "--pool-size",
            "6",
        ],
    );
    let url = &s.url;
    for token in [
        None,
        Some("not-the-operator-token"),
        Some("operator-token-for-the-test"),
    ] {
        let (status, body, headers) = raw("GET", &format!("{url}/metrics"), token, None);
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert!(!String::from_utf8_lossy(&body).contains("valyxo_"));
    }
    let (status, body, _) = raw("POST", &format!("{url}/metrics"), Some(OPERATOR), None);
    assert_eq!(status, 405);
    let v: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&body)));
    assert_eq!(v["error"], "Method not allowed");
    let health = r#"valyxo_http_requests_total{method="GET",route="/health",code="2xx"}"#;
    let before = sample(&metrics(url), health);
    for _ in 0..3 {
        assert_eq!(call(url, "GET", "/health", None, None).status, 200);
    }
    // One sign-up, then a login over the limit of one attempt a minute.
    let (name, token, _) = user(url);
    let login = call(
        url,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": name, "password": "Passw0rd!<\"'>"})),
    );
    assert_eq!(login.status, 429);
    assert_eq!(
        call(url, "GET", "/api/projects/987654", Some(&token), None).status,
        404
    );
    let m = metrics(url);
    assert_eq!(sample(&m, health), before + 3.0);
    // Requests are named by their route's template, never by the path asked for.
    let project = r#"method="GET",route="/api/projects/{id}""#;
    assert_eq!(
        sample(
            &m,
            &format!("valyxo_http_requests_total{{{project},code=\"4xx\"}}")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            &format!("valyxo_http_request_duration_seconds_bucket{{{project},le=\"+Inf\"}}")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            &format!("valyxo_http_request_duration_seconds_count{{{project}}}")
        ),
        1.0
    );
    assert!(!m.contains("987654"));
    assert_eq!(
        sample(
            &m,
            r#"valyxo_http_requests_total{method="POST",route="/api/auth/login",code="4xx"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&m, r#"valyxo_rate_limited_total{limiter="login"}"#),
        1.0
    );
    assert_eq!(sample(&m, "valyxo_db_pool_max_connections"), 6.0);
    let pool = sample(&m, r#"valyxo_db_pool_connections{state="in_use"}"#)
        + sample(&m, r#"valyxo_db_pool_connections{state="idle"}"#);
    assert!((1.0..=6.0).contains(&pool), "{m}");
    assert!(sample(&m, "valyxo_http_connections_open") >= 1.0);
    assert!(sample(&m, "valyxo_http_connections_accepted_total") >= 8.0);
    // Nothing of the accounts is in it.
    assert!(!m.contains(&name), "{m}");
}

#[test]
fn metrics_can_have_an_address_of_their_own() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let own = format!("127.0.0.1:{port}");
    let mut s = Server::start(None, &["--metrics-listen", &own]);
    assert_eq!(call(&s.url, "GET", "/health", None, None).status, 200);
    // There, without a token, and nothing else.
    let (status, body, _) = raw("GET", &format!("http://{own}/metrics"), None, None);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(
        sample(
            &text,
            r#"valyxo_http_requests_total{method="GET",route="/health",code="2xx"}"#
        ),
        1.0
    );
    for path in ["/health", "/api/openapi.json", "/metrics/x"] {
        let (status, _, _) = raw("GET", &format!("http://{own}{path}"), None, None);
        assert_eq!(status, 404, "{path}");
    }
    // Not on the API's address (no token is set).
    let (status, _, _) = raw("GET", &format!("{}/metrics", s.url), None, None);
    assert_eq!(status, 404);
    // Another method is refused in JSON words, as the API refuses it.
    let (status, body, _) = raw("POST", &format!("http://{own}/metrics"), None, None);
    assert_eq!(status, 405);
    let v: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&body)));
    assert_eq!(v["error"], "Method not allowed");
    // SIGTERM stops both.
    let (status, log) = s.terminate_with_log();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(TcpStream::connect(&own).is_err());
}

#[test]
fn health_and_readiness_reveal_nothing_of_the_data() {
    let s = Server::sqlite();
    let (name, token, _) = user(&s.url);
    let p = call(
        &s.url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(json!({"name": "a-secret-project-name"})),
    );
    assert_eq!(p.status, 201);
    for (path, status) in [("/health", "ok"), ("/ready", "ready")] {
        let a = call(&s.url, "GET", path, None, None);
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.body, json!({"success": true, "status": status}), "{path}");
        let text = a.body.to_string();
        assert!(!text.contains(&name) && !text.contains("secret"));
        // The same with a token: still nothing of the account.
        let a = call(&s.url, "GET", path, Some(&token), None);
        assert_eq!(a.body, json!({"success": true, "status": status}), "{path}");
    }
}

#[test]
fn readiness_is_503_while_the_database_cannot_answer_and_says_nothing_why() {
    let mut s = Server::logged(&[]);
    let path = s.database().trim_start_matches("sqlite:").to_string();
    assert_eq!(call(&s.url, "GET", "/ready", None, None).status, 200);
    // Another process takes the server's schema away, then gives it back.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("ALTER TABLE meta RENAME TO meta_away")
        .unwrap();
    let a = call(&s.url, "GET", "/ready", None, None);
    assert_eq!(a.status, 503);
    assert_eq!(
        a.body,
        json!({"success": false, "error": "The database does not answer"})
    );
    // Liveness is another matter.
    assert_eq!(call(&s.url, "GET", "/health", None, None).status, 200);
    other
        .execute_batch("ALTER TABLE meta_away RENAME TO meta")
        .unwrap();
    assert_eq!(call(&s.url, "GET", "/ready", None, None).status, 200);
    // The reason is in the operator's log.
    let (_, log) = s.terminate_with_log();
    assert!(
        log.contains("\"msg\":\"not ready\"") && log.contains("no such table"),
        "{log}"
    );
}

#[test]
fn connection_flags_are_checked() {
    for (flag, value, message) in [
        (
            "--max-connections",
            "0",
            "--max-connections must be more than 0",
        ),
        (
            "--header-timeout",
            "0s",
            "--header-timeout must be more than 0",
        ),
        ("--idle-timeout", "soon", "--idle-timeout"),
        (
            "--shutdown-grace",
            "0",
            "--shutdown-grace must be more than 0",
        ),
        ("--metrics-token", "short", "16 characters or more"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(common::BIN)
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                flag,
                value,
                "--database",
            ])
            .arg(format!("sqlite:{}", dir.path().join("s.db").display()))
            .env_remove("VALYXO_METRICS_TOKEN")
            .env_remove("VALYXO_HOME")
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{flag} {value}: {err}");
    }
}

#[test]
fn a_client_that_stops_reading_an_answer_is_dropped() {
    let s = Server::start(None, &["--idle-timeout", "1s", "--metrics-token", OPERATOR]);
    let (_, token, _) = user(&s.url);
    // More than the socket buffers on both sides take.
    let data: Vec<u8> = (0..24u32 << 20).map(|i| (i % 251) as u8).collect();
    let hash = blake3::hash(&data).to_hex().to_string();
    let (status, _, _) = raw(
        "PUT",
        &format!("{}/api/blobs/{hash}", s.url),
        Some(&token),
        Some(("application/octet-stream", data)),
    );
    assert_eq!(status, 201);
    let mut c = TcpStream::connect(addr(&s)).unwrap();
    write!(
        c,
        "GET /api/blobs/{hash} HTTP/1.1\r\nHost: valyxo.test\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 12];
    c.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // The client reads nothing more: the server gives up on it.
    let send = r#"valyxo_http_connections_timed_out_total{phase="send"}"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample(&metrics(&s.url), send) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the stalled download was not dropped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(closed_within(&mut c, Duration::from_secs(60)));
    // A client that reads slowly but keeps reading gets all of it, over many idle
    // timeouts.
    let mut c = TcpStream::connect(addr(&s)).unwrap();
    write!(
        c,
        "GET /api/blobs/{hash} HTTP/1.1\r\nHost: valyxo.test\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    while got < (24 << 20) + 100 {
        std::thread::sleep(Duration::from_millis(300));
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {got} bytes");
        got += n;
    }
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn readiness_and_pool_metrics_on_postgres() {
    let db = std::env::var("VALYXO_TEST_POSTGRES")
        .expect("VALYXO_TEST_POSTGRES names the PostgreSQL database for this test");
    let s = Server::start(
        Some(&db),
        &["--metrics-token", OPERATOR, "--pool-size", "5"],
    );
    let a = call(&s.url, "GET", "/ready", None, None);
    assert_eq!(a.status, 200);
    assert_eq!(a.body, json!({"success": true, "status": "ready"}));
    let m = metrics(&s.url);
    assert_eq!(sample(&m, "valyxo_db_pool_max_connections"), 5.0, "{m}");
    let pool = sample(&m, r#"valyxo_db_pool_connections{state="in_use"}"#)
        + sample(&m, r#"valyxo_db_pool_connections{state="idle"}"#);
    assert!((1.0..=5.0).contains(&pool), "{m}");
    assert_eq!(
        sample(
            &m,
            r#"valyxo_http_requests_total{method="GET",route="/ready",code="2xx"}"#
        ),
        1.0
    );
}
