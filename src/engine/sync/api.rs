//! The sync client's HTTP side (engine): requests in the wire types of [`crate::protocol`],
//! answers read into them, and a failure as an [`HttpError`] with the server's message.

use crate::net::Failure;
use crate::protocol::types::{self as wire, ContentHash};
use anyhow::{anyhow, bail, Result};
use reqwest::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Write};
use std::time::Duration;

/// Exactly `left` bytes of a reader (the length the request declared), each read told to
/// `sent`.
/// A reader that ends sooner fails; one that holds more is cut there, and the server then
/// finds that the content does not match its hash.
struct Exact {
    inner: Box<dyn Read + Send>,
    left: u64,
    sent: Box<dyn FnMut(u64) + Send>,
    /// How reading the content failed, if it did: the upload's error is then that, not
    /// the broken request the HTTP client reports.
    failed: std::sync::Arc<std::sync::Mutex<Option<Unreadable>>>,
}

/// An upload that failed because its content could not be read whole (the file got
/// shorter while it was sent, or a read failed), not because of the server.
#[derive(Debug)]
pub struct Unreadable {
    /// The content ended before the length the request declared.
    pub shrank: bool,
    pub message: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Unreadable {}

impl Exact {
    fn fail(&self, shrank: bool, e: std::io::Error) -> std::io::Error {
        if let Ok(mut f) = self.failed.lock() {
            f.get_or_insert(Unreadable {
                shrank,
                message: e.to_string(),
            });
        }
        e
    }
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let room = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = match self.inner.read(&mut buf[..room]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(self.fail(false, e)),
        };
        if n == 0 {
            return Err(self.fail(
                true,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file got shorter while it was sent",
                ),
            ));
        }
        self.left -= n as u64;
        (self.sent)(n as u64);
        Ok(n)
    }
}

/// An error answer of the server.
#[derive(Debug)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
    /// The server's account of the failure, when it gave one.
    pub failure: Option<wire::Failure>,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// A client of the account API.
pub struct Api {
    pub server: String,
    token: Option<String>,
    client: reqwest::blocking::Client,
    /// The page size lists are asked for in: the server's largest, once [`Api::limits`]
    /// has said it (0: the server's default).
    page: std::sync::atomic::AtomicU64,
}

/// Times a file listing is walked again because the project changed between its pages.
const LISTING_TRIES: usize = 5;

const MAX_JSON: u64 = 256 << 20;
/// The most content one download may bring.
const MAX_BLOB: u64 = 64 << 30;
/// The server may take this long to answer a request, and to send each part of an answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// An upload may take this long to send, on top of [`ANSWER_TIMEOUT`] for the answer, and
/// of a second per [`SLOWEST`] bytes of its size (as may a download).
const SEND_TIMEOUT: Duration = Duration::from_secs(300);
/// The slowest transfer of file content waited for, in bytes per second.
const SLOWEST: u64 = 64 << 10;

/// How long moving `size` bytes of content may take.
fn transfer_timeout(size: u64) -> Duration {
    SEND_TIMEOUT + ANSWER_TIMEOUT + Duration::from_secs(size / SLOWEST)
}

/// The cursors of one walk through a paginated list, so that a server whose cursors go
/// round in a circle is an error instead of an endless walk (and a list that grows in
/// memory for ever).
#[derive(Default)]
struct Walk(std::collections::HashSet<String>);

impl Walk {
    /// The cursor `next` to follow, unless this walk followed it before.
    fn step(&mut self, server: &str, path: &str, next: String) -> Result<String> {
        if !self.0.insert(next.clone()) {
            bail!(
                "{server} answered the list {} with a page it had already given (its pages \
                 go round in a circle): nothing was changed; sync again, and if it goes on, \
                 ask the server's operator",
                crate::text::escape(path)
            );
        }
        Ok(next)
    }
}

impl Api {
    pub fn new(server: &str, token: Option<String>) -> Result<Api> {
        let client = reqwest::blocking::ClientBuilder::from(crate::net::builder()?)
            .timeout(ANSWER_TIMEOUT)
            .build()
            .map_err(|e| anyhow!("cannot set up the HTTP client: {e}"))?;
        Ok(Api {
            server: super::server_url(server)?,
            token,
            client,
            page: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn transport(&self, e: reqwest::Error) -> anyhow::Error {
        let why = match crate::net::failure(&e) {
            Failure::Refused => "connection refused (is the server running?)".to_string(),
            other => other.to_string(),
        };
        anyhow!("cannot reach the server at {}: {why}", self.server)
    }

    fn dropped(&self, e: std::io::Error) -> anyhow::Error {
        anyhow!("the connection to {} dropped: {e}", self.server)
    }

    /// Reads an answer: a 2xx one into the wire type `T` (the protocol's, inside its
    /// `success: true` envelope), any other into an [`HttpError`] with the server's message.
    fn finish<T: DeserializeOwned>(&self, status: u16, text: &str) -> Result<T> {
        if (200..300).contains(&status) {
            return serde_json::from_str::<wire::Answer<T>>(text)
                .map(|a| a.body)
                .map_err(|e| {
                    anyhow!(
                        "the server at {} answered in a shape this valyxo does not know ({e}): \
                         is it a valyxo server?",
                        self.server
                    )
                });
        }
        let failure = serde_json::from_str::<wire::Failure>(text).ok();
        let detail = failure
            .as_ref()
            .map_or_else(|| format!("HTTP {status}"), |f| f.error.clone());
        let details: Vec<String> = failure
            .as_ref()
            .map(|f| f.details.iter().map(|d| d.message.clone()).collect())
            .unwrap_or_default();
        let mut message = if details.is_empty() {
            detail
        } else {
            format!("{detail}: {}", details.join("; "))
        };
        if status == 401 && self.token.is_some() && !message.contains("log in") {
            message.push_str(" (run 'login' again)");
        }
        // The login limit says nothing of when; a busy server (uploads, downloads) says why.
        if status == 429 && !message.contains("busy") && !message.contains("under way") {
            message.push_str(" (the server limits attempts; wait a minute)");
        }
        Err(HttpError {
            status,
            message,
            failure,
        }
        .into())
    }

    /// The request with the login token, if there is one.
    fn authorized(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// A GET whose answer is the wire type `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request("GET", path, None)
    }

    /// As [`Api::get`], with None when the server answers 404 (nothing there, or a route
    /// an older server does not have).
    pub fn get_if_found<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        match self.get(path) {
            Ok(v) => Ok(Some(v)),
            Err(e)
                if e.downcast_ref::<HttpError>()
                    .is_some_and(|h| h.status == 404) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A request with the wire type `B` as its JSON body, whose answer is the wire type `T`.
    pub fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let json = serde_json::to_string(body)?;
        self.request(method, path, Some(json))
    }

    /// A JSON request; a non-2xx answer is an [`HttpError`] with the server's message.
    pub(super) fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.server);
        let req = match method {
            "GET" => self.client.get(&url),
            "PUT" => self.client.put(&url),
            "DELETE" => self.client.delete(&url),
            _ => self.client.post(&url),
        };
        let req = match (method, body) {
            ("GET", _) => req,
            (_, body) => req
                .header(CONTENT_TYPE, "application/json")
                .body(body.unwrap_or_default()),
        };
        let resp = self.authorized(req).send().map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let mut text = String::new();
        resp.take(MAX_JSON)
            .read_to_string(&mut text)
            .map_err(|e| self.dropped(e))?;
        self.finish(status, &text)
    }

    /// Uploads the `size` bytes of content `hash` as what `open` gives reads them,
    /// streamed, never whole in memory; the server checks them against `hash` and keeps
    /// nothing if they do not match. The length goes first, so a server that will not take
    /// that much says so before the body. `sent` is told of each piece read, once: when a
    /// busy server has the content sent again, only what goes beyond what an earlier try
    /// sent is told.
    pub fn put_blob(
        &self,
        hash: &ContentHash,
        size: u64,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + Send>>,
        sent: &std::sync::Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<()> {
        // A server busy with other uploads of this account says when to come back (429,
        // Retry-After): the content is opened again and sent again, a few times.
        let mut waits = 0;
        // The most bytes any try has sent, all told to `sent` already.
        let told = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        loop {
            let (sent, told) = (sent.clone(), told.clone());
            let mut at = 0u64;
            let failed = std::sync::Arc::new(std::sync::Mutex::new(None));
            let body = reqwest::blocking::Body::sized(
                Exact {
                    inner: open()?,
                    left: size,
                    failed: failed.clone(),
                    sent: Box::new(move |n| {
                        at += n;
                        let before = told.fetch_max(at, std::sync::atomic::Ordering::Relaxed);
                        if at > before {
                            sent(at - before);
                        }
                    }),
                },
                size,
            );
            let resp = self
                .authorized(self.client.put(format!("{}/api/blobs/{hash}", self.server)))
                .header(CONTENT_TYPE, "application/octet-stream")
                .timeout(transfer_timeout(size))
                .body(body)
                .send()
                .map_err(|e| match failed.lock().ok().and_then(|mut f| f.take()) {
                    Some(u) => u.into(),
                    None => self.transport(e),
                })?;
            if let Some(wait) = retry_after(&resp).filter(|_| waits < BUSY_WAITS) {
                waits += 1;
                std::thread::sleep(wait);
                continue;
            }
            let status = resp.status().as_u16();
            let mut text = String::new();
            let _ = resp.take(1 << 20).read_to_string(&mut text);
            return self
                .finish::<wire::Done<wire::BlobStored>>(status, &text)
                .map(|_| ());
        }
    }

    /// `path` asking for the page after `after`, in pages of the server's largest size
    /// when known.
    fn page_path(&self, path: &str, after: Option<&str>) -> String {
        use crate::protocol::{PAGE_AFTER, PAGE_LIMIT};
        let mut query = Vec::new();
        let page = self.page.load(std::sync::atomic::Ordering::Relaxed);
        if page > 0 {
            query.push(format!("{PAGE_LIMIT}={page}"));
        }
        if let Some(a) = after {
            // Cursors are URL-safe base64; anything else is escaped all the same.
            let a: String = a
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            query.push(format!("{PAGE_AFTER}={a}"));
        }
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", query.join("&"))
        }
    }

    /// Every item of a paginated list (`GET path`), following the `next` cursors to the
    /// last page. A server that does not paginate answers in one page.
    pub fn list_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        self.list_until(path, &|_| false)
    }

    /// The items of a paginated list (`GET path`) that come before the first for which
    /// `stop` holds, reading no page past it: the newest projects, down to the first one
    /// already known.
    pub fn list_until<T: DeserializeOwned>(
        &self,
        path: &str,
        stop: &dyn Fn(&T) -> bool,
    ) -> Result<Vec<T>> {
        let mut all = Vec::new();
        let mut walk = Walk::default();
        let mut after: Option<String> = None;
        loop {
            let page: wire::Page<Vec<T>> = self.get(&self.page_path(path, after.as_deref()))?;
            for item in page.data {
                if stop(&item) {
                    return Ok(all);
                }
                all.push(item);
            }
            match page.next {
                Some(n) => after = Some(walk.step(&self.server, path, n)?),
                None => return Ok(all),
            }
        }
    }

    /// A project's files, every page of them at one revision: should a commit land between
    /// two pages, the walk starts again, so the listing is as of one moment.
    pub fn files(&self, project: wire::ProjectId) -> Result<wire::Files> {
        let path = format!("/api/projects/{project}/files");
        for _ in 0..LISTING_TRIES {
            let first: wire::Page<wire::Files> = self.get(&self.page_path(&path, None))?;
            let mut files = first.data;
            let mut walk = Walk::default();
            let mut next = first.next;
            let mut moved = false;
            while let Some(after) = next.take() {
                let after = walk.step(&self.server, &path, after)?;
                let page: wire::Page<wire::Files> =
                    self.get(&self.page_path(&path, Some(&after)))?;
                if page.data.revision != files.revision {
                    moved = true;
                    break;
                }
                files.files.extend(page.data.files);
                next = page.next;
            }
            if !moved {
                return Ok(files);
            }
        }
        bail!(
            "project {project} kept changing on {} while its file list was read: sync again",
            self.server
        )
    }

    /// What the server accepts (`GET /api/limits`); None from a server too old to say.
    /// From then on, lists are asked for in pages of the server's largest size.
    pub fn limits(&self) -> Result<Option<wire::Limits>> {
        let limits = self.get_if_found::<wire::Data<wire::Limits>>("/api/limits")?;
        if let Some(d) = &limits {
            self.page
                .store(d.data.max_page, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(limits.map(|d| d.data))
    }

    /// Downloads the content of `hash` into `out` a piece at a time, hashing as it comes;
    /// returns its size once all of it arrived and matched `hash`. On an error, `out` holds
    /// a part that must not be used.
    /// `size` is what the content is expected to hold (for the time allowed).
    pub fn get_blob_to(
        &self,
        hash: &ContentHash,
        size: u64,
        out: &mut dyn Write,
        progress: &dyn Fn(u64),
    ) -> Result<u64> {
        // A server busy with other downloads says when to come back (429, Retry-After):
        // waited for a few times before giving up.
        let mut waits = 0;
        let resp = loop {
            let resp = self
                .authorized(self.client.get(format!("{}/api/blobs/{hash}", self.server)))
                .timeout(transfer_timeout(size))
                .send()
                .map_err(|e| self.transport(e))?;
            match retry_after(&resp) {
                Some(wait) if waits < BUSY_WAITS => {
                    waits += 1;
                    std::thread::sleep(wait);
                }
                _ => break resp,
            }
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let mut text = String::new();
            let _ = resp.take(1 << 20).read_to_string(&mut text);
            return self.finish::<wire::Message>(status, &text).map(|_| 0);
        }
        let mut resp = resp.take(MAX_BLOB);
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut size = 0u64;
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.dropped(e)),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| anyhow!("cannot keep the download of {hash}: {e}"))?;
            size += n as u64;
            progress(n as u64);
        }
        if ContentHash::from(hasher.finalize()) != *hash {
            bail!("the server sent content for {hash} that does not match it (a damaged transfer): run sync again");
        }
        Ok(size)
    }
}

/// How many times a busy server's `Retry-After` is waited for before a transfer fails.
const BUSY_WAITS: u32 = 8;

/// How long a 429 answer asks the client to wait (1 to 10 seconds); None for any other.
fn retry_after(resp: &reqwest::blocking::Response) -> Option<std::time::Duration> {
    if resp.status().as_u16() != 429 {
        return None;
    }
    let secs = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Some(std::time::Duration::from_secs(secs.clamp(1, 10)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    fn exact(data: &'static [u8], size: u64) -> (Exact, Arc<AtomicU64>) {
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let r = Exact {
            inner: Box::new(data),
            left: size,
            failed: Default::default(),
            sent: Box::new(move |n| {
                counter.fetch_add(n, Ordering::Relaxed);
            }),
        };
        (r, sent)
    }

    #[test]
    fn an_upload_sends_exactly_the_declared_length() {
        let (mut r, sent) = exact(b"hello world", 11);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(
            (out.as_slice(), sent.load(Ordering::Relaxed)),
            (&b"hello world"[..], 11)
        );
        // A file that grew is cut at its length (the server then refuses its hash).
        let (mut r, sent) = exact(b"hello world", 5);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(
            (out.as_slice(), sent.load(Ordering::Relaxed)),
            (&b"hello"[..], 5)
        );
        // One that shrank fails.
        let (mut r, _) = exact(b"hi", 5);
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "the file got shorter while it was sent");
    }

    /// A server on 127.0.0.1 that answers each request with `answer(request line)`, one
    /// connection per request; returns its URL and the request lines it saw.
    fn fake(answer: impl Fn(&str) -> String + Send + 'static) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut header = String::new();
                while reader.read_line(&mut header).unwrap() > 2 {
                    header.clear();
                }
                let line = line.trim().to_string();
                let body = answer(&line);
                log.lock().unwrap().push(line);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, seen)
    }

    #[test]
    fn a_download_waits_for_a_busy_server_as_it_asks() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let content = b"hello";
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                let answer = if n == 0 {
                    let body = r#"{"success":false,"error":"The server is busy with downloads: try again shortly"}"#;
                    format!(
                        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"
                        .to_string()
                };
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        let api = Api::new(&url, Some("t".into())).unwrap();
        let mut out = Vec::new();
        let hash = ContentHash::from(blake3::hash(content));
        let size = api.get_blob_to(&hash, 5, &mut out, &|_| {}).unwrap();
        assert_eq!((size, out.as_slice()), (5, &content[..]));
    }

    #[test]
    fn an_upload_sent_again_for_a_busy_server_is_counted_once() {
        // The server reads the whole body, then says it is busy (429, Retry-After); the
        // second time it takes it. What was sent is counted once, not twice.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let hash = ContentHash::from(blake3::hash(&content));
        let stored = format!(
            r#"{{"success":true,"message":"Blob stored","data":{{"hash":"{hash}","size":{}}}}}"#,
            content.len()
        );
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let mut len = 0usize;
                while reader.read_line(&mut line).unwrap() > 2 {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    line.clear();
                }
                std::io::copy(&mut reader.by_ref().take(len as u64), &mut std::io::sink()).unwrap();
                let (status, body) = if n == 0 {
                    (
                        "429 Too Many Requests\r\nretry-after: 1",
                        r#"{"success":false,"error":"Your account already has 1 uploads under way"}"#
                            .to_string(),
                    )
                } else {
                    ("201 Created", stored.clone())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let api = Api::new(&url, Some("t".into())).unwrap();
        let counted = Arc::new(AtomicU64::new(0));
        let c = counted.clone();
        let sent: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| {
            c.fetch_add(n, Ordering::Relaxed);
        });
        let body = content.clone();
        api.put_blob(
            &hash,
            content.len() as u64,
            &mut || Ok(Box::new(std::io::Cursor::new(body.clone()))),
            &sent,
        )
        .unwrap();
        assert_eq!(counted.load(Ordering::Relaxed), content.len() as u64);
    }

    #[test]
    fn a_file_that_shrinks_while_sent_says_so_not_that_the_connection_broke() {
        // The content ends before the length the request declared (the file got shorter
        // while it was sent): the error names that, not the server.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let _ = std::io::copy(&mut BufReader::new(stream), &mut std::io::sink());
            }
        });
        let api = Api::new(&url, Some("t".into())).unwrap();
        let sent: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(|_| {});
        let hash = ContentHash::from(blake3::hash(b"x"));
        let e = api
            .put_blob(
                &hash,
                1 << 20,
                &mut || Ok(Box::new(std::io::Cursor::new(vec![1u8; 100_000]))),
                &sent,
            )
            .unwrap_err();
        assert!(e.to_string().contains("got shorter"), "{e:#}");
        assert!(!e.to_string().contains("cannot reach"), "{e:#}");
    }

    fn project(id: i64) -> String {
        format!(
            r#"{{"id":{id},"name":"p{id}","description":"","created_at":"t","updated_at":"t"}}"#
        )
    }

    fn file(path: &str) -> String {
        format!(r#"{{"path":"{path}","deleted":true,"hash":null,"size":0,"version":1}}"#)
    }

    #[test]
    fn lists_are_followed_page_by_page_in_the_largest_pages() {
        let (url, seen) = fake(|line| {
            if line.contains("/api/limits") {
                return r#"{"success":true,"data":{"blob_limit":1,"json_limit":1,"max_batch":1,
                    "quota":0,"storage_used":0,"max_page":2,"script":{"time_ms":1,"memory":1,
                    "operations":1,"output":1}}}"#
                    .into();
            }
            let (data, next) = if line.contains("after=c2") {
                (project(1), "null")
            } else if line.contains("after=c1") {
                (format!("{},{}", project(3), project(2)), r#""c2""#)
            } else {
                (format!("{},{}", project(5), project(4)), r#""c1""#)
            };
            format!(r#"{{"success":true,"data":[{data}],"next":{next}}}"#)
        });
        let api = Api::new(&url, None).unwrap();
        assert_eq!(api.limits().unwrap().unwrap().max_page, 2);
        let all = api.list_all::<wire::Project>("/api/projects").unwrap();
        let ids: Vec<i64> = all.iter().map(|p| p.id.0).collect();
        assert_eq!(ids, [5, 4, 3, 2, 1]);
        assert_eq!(
            seen.lock().unwrap()[1..],
            [
                "GET /api/projects?limit=2 HTTP/1.1",
                "GET /api/projects?limit=2&after=c1 HTTP/1.1",
                "GET /api/projects?limit=2&after=c2 HTTP/1.1",
            ]
        );
        // Pages that go round in a circle (c1, c2, c1, …) are an error, not an endless walk.
        let (url, _) = fake(|line| {
            let next = if line.contains("after=c1") {
                "c2"
            } else {
                "c1"
            };
            format!(
                r#"{{"success":true,"data":[{}],"next":"{next}"}}"#,
                project(1)
            )
        });
        let e = Api::new(&url, None)
            .unwrap()
            .list_all::<wire::Project>("/api/projects")
            .unwrap_err();
        assert!(e.to_string().contains("round in a circle"), "{e}");
        // Down to the first item known: no page is read past it.
        let before = seen.lock().unwrap().len();
        let newest = api
            .list_until::<wire::Project>("/api/projects", &|p| p.id.0 == 4)
            .unwrap();
        assert_eq!(newest.iter().map(|p| p.id.0).collect::<Vec<_>>(), [5]);
        assert_eq!(seen.lock().unwrap().len(), before + 1);
        // A server from before pagination answers one page without `next`.
        let (url, _) = fake(|_| format!(r#"{{"success":true,"data":[{}]}}"#, project(9)));
        let api = Api::new(&url, None).unwrap();
        assert_eq!(api.list_all::<wire::Project>("/x").unwrap().len(), 1);
    }

    #[test]
    fn a_file_listing_that_changes_between_pages_is_read_again() {
        // The first walk sees revision 1, then 2 on its second page: it starts again.
        let calls = Arc::new(Mutex::new(0));
        let n = calls.clone();
        let (url, seen) = fake(move |line| {
            let mut n = n.lock().unwrap();
            *n += 1;
            let (rev, files, next) = match (*n, line.contains("after=f1")) {
                (1, false) => (1, file("a"), r#""f1""#),
                (2, true) => (2, file("b"), "null"),
                (_, false) => (2, file("a"), r#""f1""#),
                (_, true) => (2, format!("{},{}", file("b"), file("c")), "null"),
            };
            format!(
                r#"{{"success":true,"data":{{"revision":{rev},"files":[{files}]}},"next":{next}}}"#
            )
        });
        let api = Api::new(&url, None).unwrap();
        let files = api.files(wire::ProjectId(7)).unwrap();
        assert_eq!(files.revision, wire::Revision(2));
        let paths: Vec<&str> = files.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a", "b", "c"]);
        assert_eq!(seen.lock().unwrap().len(), 4);
        assert!(seen.lock().unwrap()[1].contains("/api/projects/7/files?after=f1"));
        // A listing that never holds still is an error, not an endless walk.
        let (url, _) = fake(move |line| {
            let rev = if line.contains("after=") { 2 } else { 1 };
            format!(r#"{{"success":true,"data":{{"revision":{rev},"files":[]}},"next":"f1"}}"#)
        });
        let e = Api::new(&url, None)
            .unwrap()
            .files(wire::ProjectId(7))
            .unwrap_err();
        assert!(e.to_string().contains("kept changing"), "{e}");
    }
}
