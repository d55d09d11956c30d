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
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let room = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..room])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file got shorter while it was sent",
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
}

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
        if status == 429 {
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

    /// Uploads the `size` bytes of content `hash` as `content` reads them, streamed, never
    /// whole in memory; the server checks them against `hash` and keeps nothing if they do
    /// not match. The length goes first, so a server that will not take that much says so
    /// before the body. `sent` is told of each piece read.
    pub fn put_blob(
        &self,
        hash: &ContentHash,
        content: Box<dyn Read + Send>,
        size: u64,
        sent: impl FnMut(u64) + Send + 'static,
    ) -> Result<()> {
        let body = reqwest::blocking::Body::sized(
            Exact {
                inner: content,
                left: size,
                sent: Box::new(sent),
            },
            size,
        );
        let resp = self
            .authorized(self.client.put(format!("{}/api/blobs/{hash}", self.server)))
            .header(CONTENT_TYPE, "application/octet-stream")
            .timeout(transfer_timeout(size))
            .body(body)
            .send()
            .map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let mut text = String::new();
        let _ = resp.take(1 << 20).read_to_string(&mut text);
        self.finish::<wire::Done<wire::BlobStored>>(status, &text)
            .map(|_| ())
    }

    /// What the server accepts (`GET /api/limits`); None from a server too old to say.
    pub fn limits(&self) -> Result<Option<wire::Limits>> {
        match self.get::<wire::Data<wire::Limits>>("/api/limits") {
            Ok(d) => Ok(Some(d.data)),
            Err(e)
                if e.downcast_ref::<HttpError>()
                    .is_some_and(|h| h.status == 404) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
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
        let resp = self
            .authorized(self.client.get(format!("{}/api/blobs/{hash}", self.server)))
            .timeout(transfer_timeout(size))
            .send()
            .map_err(|e| self.transport(e))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn exact(data: &'static [u8], size: u64) -> (Exact, Arc<AtomicU64>) {
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let r = Exact {
            inner: Box::new(data),
            left: size,
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
}
