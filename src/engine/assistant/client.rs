//! The chat-completions client: `POST {url}/chat/completions` with `"stream": true`, the
//! answer read as server-sent events (`data: {json}` lines, ended by `data: [DONE]`), each
//! piece of text handed over as it arrives.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Message {
        Message {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

pub struct Client {
    /// The API's base URL, without a trailing slash (`http://localhost:11434/v1`).
    pub url: String,
    pub model: String,
    /// The longest answer taken, in bytes (`assistant.max_answer`); 0 takes any length. A
    /// longer answer is cut there: the stream is closed and [`Client::chat`] fails with a
    /// [`Broken`] error holding the answer up to the cap.
    pub max_answer: usize,
    key: Option<String>,
    agent: ureq::Agent,
}

/// How an answer ended when it did not end well: the text received so far is in
/// `partial`, so a caller can keep it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Broken {
    pub message: String,
    pub partial: String,
}

/// What an answer cut at `max` bytes (`assistant.max_answer`) ends with.
pub fn cut_message(max: usize) -> String {
    format!(
        "the answer was cut at {} (assistant.max_answer)",
        size_text(max)
    )
}

/// A size in bytes as people write it: `4 MiB`, `512 KiB`, `1000 bytes`.
fn size_text(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// An error body is read up to this size.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// One server-sent-event line may be at most this long.
const MAX_LINE: usize = 4 << 20;

impl Client {
    pub fn new(url: &str, model: &str, key: Option<String>, timeout: Duration) -> Result<Client> {
        let url = url.trim().trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("assistant.url must start with http:// or https:// (it is '{url}')");
        }
        if model.trim().is_empty() {
            bail!("assistant.model is empty: name the model to use ('settings set assistant.model NAME')");
        }
        let timeout = (!timeout.is_zero()).then_some(timeout);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(timeout)
            // A server silent this long mid-answer has gone; the reading thread ends too.
            .timeout_per_read(timeout)
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Client {
            url,
            model: model.trim().to_string(),
            max_answer: 0,
            key,
            agent,
        })
    }

    /// Whether the URL is OpenAI's own API, which always needs a key.
    fn is_openai(&self) -> bool {
        self.url.starts_with("https://api.openai.com")
    }

    /// Sends the conversation and streams the answer: `on_text` gets each piece as it
    /// arrives (and may stop the answer by returning an error). Returns the whole answer.
    /// An answer cut off (the connection dropped, `on_text` failed, the answer grew past
    /// [`Client::max_answer`]) is a [`Broken`] error holding the text received.
    pub fn chat(
        &self,
        messages: &[Message],
        mut on_text: impl FnMut(&str) -> Result<()>,
    ) -> Result<String> {
        if self.key.is_none() && self.is_openai() {
            bail!(
                "no API key for {}: store one with 'ai key set' (kept in the OS keyring), or set \
                 VALYXO_API_KEY in the host shell before starting valyxo; or point assistant.url at a local server such as Ollama \
                 ('man assistant')",
                self.url
            );
        }
        let body = serde_json::json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
        });
        let endpoint = format!("{}/chat/completions", self.url);
        let req = self.authorized(
            self.agent
                .post(&endpoint)
                .header("Content-Type", "application/json")
                .header("Accept", "text/event-stream"),
        );
        let resp = req
            .send(body.to_string())
            .map_err(|e| self.transport_error(&e))?;
        let status = resp.status().as_u16();
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let reader = resp.into_body().into_reader();
        if status != 200 {
            let mut text = String::new();
            let _ = reader.take(MAX_ERROR_BODY).read_to_string(&mut text);
            return Err(self.status_error(status, &text));
        }
        if sse {
            self.read_events(reader, &mut on_text)
        } else {
            // A server that ignores "stream" answers with one JSON object.
            let mut text = String::new();
            reader
                .take(64 << 20)
                .read_to_string(&mut text)
                .context("reading the answer")?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow!("the assistant's answer is not JSON ({e})"))?;
            let content = v["choices"][0]["message"]["content"]
                .as_str()
                .ok_or_else(|| {
                    anyhow!("the assistant's answer has no choices[0].message.content")
                })?;
            let (answer, cut) = self.within_cap(0, content);
            on_text(answer)?;
            if cut {
                return Err(Broken {
                    message: cut_message(self.max_answer),
                    partial: answer.to_string(),
                }
                .into());
            }
            Ok(answer.to_string())
        }
    }

    /// The request with the key, if there is one.
    fn authorized<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.key {
            Some(k) => req.header("Authorization", &format!("Bearer {k}")),
            None => req,
        }
    }

    /// The models the server offers (`GET {url}/models`), sorted.
    pub fn models(&self) -> Result<Vec<String>> {
        let req = self.authorized(self.agent.get(format!("{}/models", self.url)));
        let resp = req.call().map_err(|e| self.transport_error(&e))?;
        let status = resp.status().as_u16();
        let mut text = String::new();
        resp.into_body()
            .into_reader()
            .take(8 << 20)
            .read_to_string(&mut text)
            .context("reading the list of models")?;
        if status != 200 {
            return Err(self.status_error(status, &text));
        }
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow!("the list of models is not JSON ({e})"))?;
        let mut ids: Vec<String> = v["data"]
            .as_array()
            .ok_or_else(|| anyhow!("the server's list of models has no 'data' array"))?
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn read_events(
        &self,
        reader: impl Read,
        on_text: &mut impl FnMut(&str) -> Result<()>,
    ) -> Result<String> {
        let mut answer = String::new();
        let mut lines = BufReader::new(reader);
        let mut line = String::new();
        let mut data = String::new();
        let mut finished = false;
        let broken = |answer: &str, message: String| -> anyhow::Error {
            Broken {
                message,
                partial: answer.to_string(),
            }
            .into()
        };
        loop {
            line.clear();
            let n = match (&mut lines).take(MAX_LINE as u64).read_line(&mut line) {
                Ok(n) => n,
                Err(e) => {
                    return Err(broken(
                        &answer,
                        format!("the connection to the assistant broke mid-answer: {e}"),
                    ))
                }
            };
            // The end of the stream also ends an event still being read.
            if n == 0 && data.is_empty() && finished {
                return Ok(answer);
            }
            if n == 0 && data.is_empty() {
                return Err(broken(
                    &answer,
                    "the assistant's answer stopped before it was complete (the connection closed)"
                        .into(),
                ));
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(d) = l.strip_prefix("data:") {
                // An event's data lines are joined with line breaks, and it ends at a blank
                // line (or at the end of the stream).
                let d = d.strip_prefix(' ').unwrap_or(d);
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d);
                continue;
            }
            if !l.is_empty() || data.is_empty() {
                // Comments (`: keep-alive`), `event:`, `id:` and blank lines between events.
                continue;
            }
            let data = std::mem::take(&mut data);
            let data = data.as_str();
            if data == "[DONE]" {
                return Ok(answer);
            }
            let v: serde_json::Value = match serde_json::from_str(data) {
                Ok(v) => v,
                Err(e) => {
                    return Err(broken(
                        &answer,
                        format!("the assistant sent an event that is not JSON ({e})"),
                    ))
                }
            };
            if let Some(msg) = v["error"]["message"].as_str() {
                return Err(broken(&answer, format!("the assistant failed: {msg}")));
            }
            if let Some(text) = v["choices"][0]["delta"]["content"].as_str() {
                let (text, cut) = self.within_cap(answer.len(), text);
                if !text.is_empty() {
                    answer.push_str(text);
                    if let Err(e) = on_text(text) {
                        return Err(broken(&answer, format!("{e:#}")));
                    }
                }
                if cut {
                    // Returning drops the response, which closes the connection.
                    return Err(broken(&answer, cut_message(self.max_answer)));
                }
            }
            // Some servers end with a finish reason and close without [DONE].
            finished |= v["choices"][0]["finish_reason"].is_string();
        }
    }

    /// The part of `text` that fits under the cap after `so_far` bytes of answer, and whether
    /// the rest was cut off.
    fn within_cap<'t>(&self, so_far: usize, text: &'t str) -> (&'t str, bool) {
        let max = self.max_answer;
        if max == 0 || so_far + text.len() <= max {
            return (text, false);
        }
        let mut end = max.saturating_sub(so_far).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        (&text[..end], true)
    }

    fn transport_error(&self, e: &ureq::Error) -> anyhow::Error {
        let hint = "check assistant.url ('settings get assistant.url'), or start the server";
        match e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                anyhow!(
                    "cannot reach the assistant at {}: connection refused; {hint}",
                    self.url
                )
            }
            ureq::Error::ConnectionFailed => {
                anyhow!(
                    "cannot reach the assistant at {}: the connection failed; {hint}",
                    self.url
                )
            }
            ureq::Error::HostNotFound => anyhow!(
                "cannot reach the assistant at {}: the host is not found (offline?); {hint}",
                self.url
            ),
            ureq::Error::Timeout(_) => anyhow!(
                "the assistant at {} did not answer in time (assistant.timeout)",
                self.url
            ),
            other => anyhow!("cannot reach the assistant at {}: {other}", self.url),
        }
    }

    fn status_error(&self, status: u16, body: &str) -> anyhow::Error {
        let detail = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v["error"]["message"]
                    .as_str()
                    .or_else(|| v["error"].as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        let hint = match status {
            401 | 403 => " — check the API key ('ai key set', or VALYXO_API_KEY)",
            404 => " — check assistant.url (it usually ends in /v1) and assistant.model",
            429 => " — rate-limited or out of quota; try again later",
            _ => "",
        };
        anyhow!("the assistant answered {status}: {detail}{hint}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new("http://127.0.0.1:9/v1/", "m", None, Duration::from_secs(1)).expect("client")
    }

    #[test]
    fn events_are_joined_and_comments_skipped() {
        let c = client();
        let stream =
            ": keep-alive\n\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                      data:{\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n\
                      data: [DONE]\n\n";
        let mut pieces = Vec::new();
        let answer = c
            .read_events(stream.as_bytes(), &mut |t| {
                pieces.push(t.to_string());
                Ok(())
            })
            .expect("answer");
        assert_eq!(answer, "Hello");
        assert_eq!(pieces, ["Hel", "lo"]);
    }

    #[test]
    fn multi_line_events_and_a_last_event_without_a_blank_line() {
        let c = client();
        let stream =
            "data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]";
        let answer = c
            .read_events(stream.as_bytes(), &mut |_| Ok(()))
            .expect("answer");
        assert_eq!(answer, "x");
    }

    #[test]
    fn a_cut_off_stream_keeps_what_arrived() {
        let c = client();
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"partial\"}}]}\n\n";
        let e = c
            .read_events(stream.as_bytes(), &mut |_| Ok(()))
            .unwrap_err();
        let b = e.downcast_ref::<Broken>().expect("broken");
        assert_eq!(b.partial, "partial");
        assert!(b.message.contains("stopped before it was complete"));
        let e = c
            .read_events("data: {oops\n\n".as_bytes(), &mut |_| Ok(()))
            .unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }

    #[test]
    fn an_answer_longer_than_the_cap_is_cut_there() {
        let mut c = client();
        c.max_answer = 8;
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\" wörld\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"never read\"}}]}\n\n";
        let mut pieces = Vec::new();
        let e = c
            .read_events(stream.as_bytes(), &mut |t| {
                pieces.push(t.to_string());
                Ok(())
            })
            .unwrap_err();
        let b = e.downcast_ref::<Broken>().expect("broken");
        // Eight bytes would end inside the "ö": the cut is before it.
        assert_eq!(b.partial, "Hello w");
        assert_eq!(pieces, ["Hello", " w"]);
        assert_eq!(
            b.message,
            "the answer was cut at 8 bytes (assistant.max_answer)"
        );
        // Exactly as long as the cap is not cut.
        c.max_answer = 5;
        let whole = "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\ndata: [DONE]\n\n";
        let answer = c
            .read_events(whole.as_bytes(), &mut |_| Ok(()))
            .expect("answer");
        assert_eq!(answer, "Hello");
        assert_eq!(
            cut_message(4 << 20),
            "the answer was cut at 4 MiB (assistant.max_answer)"
        );
        assert_eq!(size_text(512 << 10), "512 KiB");
        assert_eq!(size_text(3 << 19), "1.5 MiB");
    }

    #[test]
    fn bad_settings_are_refused_up_front() {
        let e = Client::new("localhost:11434", "m", None, Duration::ZERO)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("http:// or https://"));
        let e = Client::new("http://x/v1", " ", None, Duration::ZERO)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("assistant.model is empty"));
        let c =
            Client::new("https://api.openai.com/v1", "m", None, Duration::ZERO).expect("client");
        let e = c.chat(&[], |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("no API key"), "{e}");
    }

    #[test]
    fn error_bodies_become_clear_messages() {
        let c = client();
        let e = c.status_error(401, r#"{"error":{"message":"Incorrect API key provided"}}"#);
        assert_eq!(
            e.to_string(),
            "the assistant answered 401: Incorrect API key provided — check the API key ('ai key set', or VALYXO_API_KEY)"
        );
        let e = c.status_error(404, "404 page not found");
        assert!(e
            .to_string()
            .contains("404 page not found — check assistant.url"));
    }
}
