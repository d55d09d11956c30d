//! The sync client's HTTP side (engine): requests in the wire types of [`crate::protocol`],
//! answers read into them, and a failure as an [`HttpError`] with the server's message.

use crate::net::Failure;
use crate::protocol::types::{self as wire, ContentHash};
use anyhow::{anyhow, bail, Result};
use reqwest::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::Read;
use std::time::Duration;

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
/// The server may take this long to answer a request, and to send each part of an answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// An upload may take this long to send, on top of [`ANSWER_TIMEOUT`] for the answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(300);

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

    pub fn put_blob(&self, hash: &ContentHash, data: Vec<u8>) -> Result<()> {
        let resp = self
            .authorized(self.client.put(format!("{}/api/blobs/{hash}", self.server)))
            .header(CONTENT_TYPE, "application/octet-stream")
            .timeout(SEND_TIMEOUT + ANSWER_TIMEOUT)
            .body(data)
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

    /// The content of `hash`, checked against it.
    pub fn get_blob(&self, hash: &ContentHash) -> Result<Vec<u8>> {
        let resp = self
            .authorized(self.client.get(format!("{}/api/blobs/{hash}", self.server)))
            .send()
            .map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let mut data = Vec::new();
        resp.take(8 << 30)
            .read_to_end(&mut data)
            .map_err(|e| self.dropped(e))?;
        if status != 200 {
            return self
                .finish::<wire::Message>(status, &String::from_utf8_lossy(&data))
                .map(|_| Vec::new());
        }
        if ContentHash::of(&data) != *hash {
            bail!("the server sent content for {hash} that does not match it (a damaged transfer): run sync again");
        }
        Ok(data)
    }
}
