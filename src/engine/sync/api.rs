//! The sync client's HTTP side (engine): requests in the wire types of [`crate::protocol`],
//! answers read into them, and a failure as an [`HttpError`] with the server's message.

use crate::protocol::types as wire;
use anyhow::{anyhow, bail, Result};
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
    agent: ureq::Agent,
}

const MAX_JSON: u64 = 256 << 20;

impl Api {
    pub fn new(server: &str, token: Option<String>) -> Result<Api> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_send_body(Some(Duration::from_secs(300)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Api {
            server: super::server_url(server)?,
            token,
            agent,
        })
    }

    fn transport(&self, e: ureq::Error) -> anyhow::Error {
        let why = match &e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused (is the server running?)".to_string()
            }
            ureq::Error::ConnectionFailed => "the connection failed".to_string(),
            ureq::Error::HostNotFound => "the host is not found (offline?)".to_string(),
            ureq::Error::Timeout(_) => "it did not answer in time".to_string(),
            other => other.to_string(),
        };
        anyhow!("cannot reach the server at {}: {why}", self.server)
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
    fn authorized<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => req.header("Authorization", &format!("Bearer {t}")),
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
        let resp = match method {
            "GET" => self.authorized(self.agent.get(&url)).call(),
            _ => {
                let r = match method {
                    "PUT" => self.agent.put(&url),
                    "DELETE" => self.agent.delete(&url).force_send_body(),
                    _ => self.agent.post(&url),
                };
                self.authorized(r)
                    .content_type("application/json")
                    .send(body.unwrap_or_default())
            }
        }
        .map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let mut text = String::new();
        resp.into_body()
            .into_reader()
            .take(MAX_JSON)
            .read_to_string(&mut text)
            .map_err(|e| anyhow!("the connection to {} dropped: {e}", self.server))?;
        self.finish(status, &text)
    }

    pub fn put_blob(&self, hash: &str, data: &[u8]) -> Result<()> {
        let resp = self
            .authorized(self.agent.put(format!("{}/api/blobs/{hash}", self.server)))
            .content_type("application/octet-stream")
            .send(data)
            .map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let mut text = String::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(1 << 20)
            .read_to_string(&mut text);
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
    pub fn get_blob(&self, hash: &str) -> Result<Vec<u8>> {
        let resp = self
            .authorized(self.agent.get(format!("{}/api/blobs/{hash}", self.server)))
            .call()
            .map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let mut data = Vec::new();
        resp.into_body()
            .into_reader()
            .take(8 << 30)
            .read_to_end(&mut data)
            .map_err(|e| anyhow!("the connection to {} dropped: {e}", self.server))?;
        if status != 200 {
            return self
                .finish::<wire::Message>(status, &String::from_utf8_lossy(&data))
                .map(|_| Vec::new());
        }
        if blake3::hash(&data).to_hex().as_str() != hash {
            bail!("the server sent content for {hash} that does not match it (a damaged transfer): run sync again");
        }
        Ok(data)
    }
}
