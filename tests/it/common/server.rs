//! A real `valyxo server` on 127.0.0.1 with a random port, stopped when dropped, and a small
//! JSON client for it.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub url: String,
    child: Child,
    args: Vec<String>,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server on SQLite in a temporary directory (or on `database` when given), with no
    /// rate limit unless `extra` sets one.
    pub fn start(database: Option<&str>, extra: &[&str]) -> Server {
        Server::launch(database, extra, true, &[])
    }

    /// As [`Server::start`] on SQLite, with these environment variables set.
    pub fn with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::launch(None, extra, true, env)
    }

    /// As [`Server::start`] on `database`, with these environment variables set.
    pub fn with_database_env(database: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::launch(Some(database), extra, true, env)
    }

    /// As [`Server::start`], logging every request to its standard error.
    pub fn logged(extra: &[&str]) -> Server {
        Server::launch(None, extra, false, &[])
    }

    fn launch(database: Option<&str>, extra: &[&str], quiet: bool, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = match database {
            Some(d) => d.to_string(),
            None => format!("sqlite:{}", dir.path().join("server.db").display()),
        };
        let mut args = vec!["server", "--listen", "127.0.0.1:0"];
        if quiet {
            args.push("--quiet");
        }
        args.push("--database");
        args.push(&db);
        if !extra.contains(&"--rate-limit") {
            args.extend(["--rate-limit", "0"]);
        }
        args.extend(extra);
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, url) = spawn(&args, &env, dir.path());
        Server {
            url,
            child,
            args,
            env,
            _dir: dir,
        }
    }

    /// Sends SIGTERM and waits for the server to end.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.terminate_with_log().0
    }

    /// Sends SIGTERM, waits for the server to end, and returns its status and what it wrote
    /// to standard error.
    pub fn terminate_with_log(&mut self) -> (std::process::ExitStatus, String) {
        self.signal(libc::SIGTERM);
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (self.child.wait().expect("wait for the server"), err)
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: signals our own child process.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// The database the server was started on.
    pub fn database(&self) -> &str {
        let i = self
            .args
            .iter()
            .position(|a| a == "--database")
            .expect("--database");
        &self.args[i + 1]
    }

    /// Reads the server's standard error on a thread of its own (as a log collector
    /// would); the thread returns the lines read once the server ends.
    pub fn drain_log(&mut self) -> std::thread::JoinHandle<usize> {
        let err = self.child.stderr.take().expect("stderr");
        std::thread::spawn(move || BufReader::new(err).lines().count())
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the server (as a crash would) without starting it again.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the stopped server again on the same address and database.
    pub fn restart(&mut self) {
        self.stop();
        let addr = self.url.trim_start_matches("http://").to_string();
        let mut args = self.args.clone();
        let i = args.iter().position(|a| a == "--listen").expect("--listen");
        args[i + 1] = addr;
        let (child, url) = spawn(&args, &self.env, self._dir.path());
        assert_eq!(url, self.url);
        self.child = child;
    }
}

fn spawn(args: &[String], env: &[(String, String)], dir: &std::path::Path) -> (Child, String) {
    {
        let mut child = Command::new(super::BIN)
            .args(args)
            .env_remove("VALYXO_HOME")
            .env_remove("VALYXO_SERVER_SECRET")
            .env_remove("VALYXO_ASSISTANT_URL")
            .env_remove("VALYXO_ASSISTANT_MODEL")
            .env_remove("VALYXO_ASSISTANT_KEY")
            .env_remove("VALYXO_ASSISTANT_KEY_FILE")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("HOME", dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start valyxo server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the address");
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let mut err = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            panic!("the server did not start: {line}{err}");
        };
        (child, url.to_string())
    }
}

impl Server {
    pub fn sqlite() -> Server {
        Server::start(None, &[])
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's own temporary folder (its HOME, holding a SQLite database by default).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One answer: status, JSON body (Null if not JSON) and the headers.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A blocking HTTP client with Valyxo's own setup and no overall timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::ClientBuilder::from(valyxo::net::builder().expect("HTTP setup"))
        .timeout(None)
        .build()
        .expect("HTTP client")
}

thread_local! {
    /// Every (method, path, status) this thread's requests were answered with.
    static ANSWERED: std::cell::RefCell<Vec<(String, String, u16)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The (method, path, status) of every request made on this thread since the last call.
pub fn answered() -> Vec<(String, String, u16)> {
    ANSWERED.with(|a| std::mem::take(&mut *a.borrow_mut()))
}

/// `METHOD URL` with an optional bearer token and raw body.
pub fn raw(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
    let bearer = token.map(|t| ("Authorization", format!("Bearer {t}")));
    raw_with(method, url, bearer.as_slice(), body)
}

/// `METHOD URL` with these headers and an optional raw body.
pub fn raw_with(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = client().request(method.clone(), url);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    if let Some((ctype, data)) = body {
        req = req.header("Content-Type", ctype).body(data);
    }
    let mut resp = req.send().expect("request");
    let status = resp.status().as_u16();
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .unwrap_or_default();
    let path = path.split('?').next().unwrap_or("").to_string();
    ANSWERED.with(|a| a.borrow_mut().push((method.to_string(), path, status)));
    let headers = resp.headers().clone();
    let mut data = Vec::new();
    resp.read_to_end(&mut data).expect("body");
    (status, data, headers)
}

/// A JSON request to `server.url + path`.
pub fn call(
    server: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let (status, data, headers) = raw(
        method,
        &format!("{server}{path}"),
        token,
        body.map(|b| ("application/json", b.to_string().into_bytes())),
    );
    Answer {
        status,
        body: serde_json::from_slice(&data).unwrap_or(Value::Null),
        headers,
    }
}

/// A name no other test in this run uses (valid as a username).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000;
    format!(
        "{prefix}{}_{t}_{}",
        std::process::id() % 1000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The password test accounts get (valid, with characters that need escaping).
pub const PASSWORD: &str = "Passw0rd!<\"'>";

/// A new session (bearer token) of `name` with `password` on the server at `url`.
pub fn session_token(url: &str, name: &str, password: &str) -> String {
    let a = call(
        url,
        "POST",
        "/api/auth/login",
        None,
        Some(serde_json::json!({"username": name, "password": password})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["token"].as_str().expect("a token").to_string()
}

/// A new project `name` of the account `token` signs in, on the server at `url`: its id.
pub fn new_project(url: &str, token: &str, name: &str) -> i64 {
    let a = call(
        url,
        "POST",
        "/api/projects",
        Some(token),
        Some(serde_json::json!({ "name": name })),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["data"]["id"].as_i64().unwrap()
}

/// Writes `data` as the file `path` of `project`, based on version `base` (0: a new file),
/// as the web pages do (`PUT …/files/content`): the answer's status.
pub fn put_file(url: &str, token: &str, project: i64, path: &str, data: &[u8], base: i64) -> u16 {
    let path: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
    raw(
        "PUT",
        &format!("{url}/api/projects/{project}/files/content?path={path}&base_version={base}"),
        Some(token),
        Some(("application/octet-stream", data.to_vec())),
    )
    .0
}

/// Registers a new user on the server at `url`; returns (name, token, id).
pub fn user(url: &str) -> (String, String, i64) {
    let name = unique("u");
    let a = call(
        url,
        "POST",
        "/api/auth/register",
        None,
        Some(serde_json::json!({
            "username": name, "email": format!("{name}@Example.com"), "password": PASSWORD
        })),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    (
        name,
        a.body["token"].as_str().unwrap().to_string(),
        a.body["user"]["id"].as_i64().unwrap(),
    )
}
