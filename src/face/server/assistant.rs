//! The web editor's assistant (server): `GET /api/assistant` says whether the server has one
//! (and how its operator turns it on when not); `POST /api/assistant` sends a question with
//! the open file, or the part of it selected, to the OpenAI-compatible API the server is
//! configured with (`--assistant-url`, `--assistant-model`, the key from
//! `VALYXO_ASSISTANT_KEY` or `--assistant-key-file`) and relays the answer as it streams.
//!
//! The key stays on the server: it is sent to the API only, never written to a log or an
//! answer (an API's error message that quotes it has it replaced). The answer reaches the
//! browser as NDJSON (`application/x-ndjson`), one JSON object a line: `{"text": …}` for
//! each piece, then `{"done": true}`, or `{"error": …}` when the answer broke off after it
//! began. A failure before the first piece is an ordinary error answer (502, 504). Each
//! account has one answer under way at a time, and a budget of questions per minute: in
//! this process's memory, and on PostgreSQL also in the database, which every server
//! process shares (`limit::attempt`). A browser that goes away closes the request to the
//! API.

use super::{ApiError, App, Pending, Reply, Req};
use crate::assistant::{Broken, Client, Message, Refused};
use crate::protocol::types::{AssistantStatus, Data};
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use serde_json::json;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The most bytes of question, text and selection together that one question may carry.
pub const MAX_INPUT: usize = 256 << 10;
/// Answers under way at once, over all accounts (each holds a connection to the API).
const MAX_STREAMS: usize = 64;
/// The longest an answer may take from the question to its last piece.
const MAX_DURATION: Duration = Duration::from_secs(10 * 60);
/// The shared budgets' rows are pruned once every this many questions.
const PRUNE_EVERY: u64 = 256;

/// What the server's operator turns the assistant on with.
pub const HOW_TO: &str = "The assistant is off on this server. Its operator turns it on by \
     starting 'valyxo server' with --assistant-url (an OpenAI-compatible API, such as \
     http://localhost:11434/v1 for Ollama or https://api.openai.com/v1) and --assistant-model \
     (the model to ask), and, when the API needs a key, the key in the environment variable \
     VALYXO_ASSISTANT_KEY or in a file named by --assistant-key-file ('man server').";

/// How the server's assistant is configured (`valyxo server --assistant-…`).
#[derive(Clone)]
pub struct Settings {
    /// The API's base URL (`http://localhost:11434/v1`).
    pub url: String,
    pub model: String,
    /// The API key; never logged (see the Debug below), never sent but to the API.
    pub key: Option<String>,
    /// The wait for the answer to start, and the longest silence within it.
    pub timeout: Duration,
    /// Questions one account may ask per minute; 0: no limit.
    pub per_minute: u32,
    /// The longest answer relayed, in bytes; a longer one is cut there.
    pub max_answer: usize,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("key", &self.key.as_ref().map(|_| "(hidden)"))
            .field("timeout", &self.timeout)
            .field("per_minute", &self.per_minute)
            .field("max_answer", &self.max_answer)
            .finish()
    }
}

type Local = governor::RateLimiter<
    i64,
    governor::state::keyed::HashMapStateStore<i64>,
    governor::clock::DefaultClock,
>;

/// The assistant of a running server.
pub struct Assistant {
    client: Client,
    model: String,
    key: Option<String>,
    per_minute: u32,
    max_answer: usize,
    /// The budget of questions per account in this process (None: no limit).
    local: Option<Local>,
    /// Whether the budget is kept in the database too (PostgreSQL).
    shared: bool,
    asked: AtomicU64,
    /// Answers under way: one per account.
    streams: super::slots::Slots,
}

impl Assistant {
    pub fn new(s: &Settings, db: &super::Db) -> anyhow::Result<Assistant> {
        let mut client = Client::new(&s.url, &s.model, s.key.clone(), s.timeout)
            .map_err(|e| anyhow::anyhow!("--assistant-url/--assistant-model: {e:#}"))?;
        client.max_answer = s.max_answer;
        Ok(Assistant {
            model: client.model.clone(),
            client,
            key: s.key.clone().filter(|k| !k.is_empty()),
            per_minute: s.per_minute,
            max_answer: s.max_answer,
            local: NonZeroU32::new(s.per_minute)
                .map(|n| governor::RateLimiter::hashmap(governor::Quota::per_minute(n))),
            shared: db.describe().starts_with("PostgreSQL"),
            asked: AtomicU64::new(0),
            streams: super::slots::Slots::new(MAX_STREAMS, 1),
        })
    }

    /// `text` with the key, if it appears, replaced.
    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(k) if k.len() >= 4 => text.replace(k.as_str(), "[the key]"),
            _ => text.to_string(),
        }
    }

    /// Counts a question of `account` against its budget: this process's, then (on
    /// PostgreSQL) the one every server process shares.
    async fn check_rate(app: &Arc<App>, account: i64) -> Result<(), ApiError> {
        let Some(a) = &app.assistant else {
            return Ok(());
        };
        let Some(local) = &a.local else {
            return Ok(());
        };
        if local.len() > 10_000 {
            local.retain_recent();
        }
        local.check_key(&account).map_err(|not_until| {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            too_many(wait.as_secs())
        })?;
        if !a.shared {
            return Ok(());
        }
        let wait = super::blocking(app, move |app| {
            let Some(a) = &app.assistant else {
                return Ok(None);
            };
            let Some(per_minute) = NonZeroU32::new(a.per_minute) else {
                return Ok(None);
            };
            let now = chrono::Utc::now().timestamp_millis();
            let prune = a
                .asked
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(PRUNE_EVERY);
            app.db.write(|c| {
                if prune {
                    c.exec(
                        "DELETE FROM rate_limits WHERE client LIKE 'assistant:%' AND tat < ?",
                        &[now.into()],
                    )?;
                }
                Ok(super::limit::attempt(
                    c,
                    &format!("assistant:{account}"),
                    now,
                    per_minute,
                )?)
            })
        })
        .await?;
        match wait {
            None => Ok(()),
            Some(ms) => Err(too_many(ms.max(0) as u64 / 1000)),
        }
    }

    /// What the browser is told of a failure (`e`): the API's own status and words when it
    /// refused, else what went wrong, in the words of a web page's user; never the key.
    fn say(&self, e: &anyhow::Error) -> (StatusCode, String) {
        let (status, message) = if let Some(b) = e.downcast_ref::<Broken>() {
            let message = if b.message == crate::assistant::client::cut_message(self.max_answer) {
                // The engine names the terminal's setting.
                format!(
                    "The answer was cut at {} bytes (the server's --assistant-max-answer)",
                    self.max_answer
                )
            } else {
                upper(&b.message)
            };
            (StatusCode::BAD_GATEWAY, message)
        } else if let Some(r) = e.downcast_ref::<Refused>() {
            let hint = match r.status {
                401 | 403 => " (the server's API key is missing or wrong: tell its operator)",
                404 => " (the server's --assistant-url or --assistant-model is wrong: tell its operator)",
                429 => " (the API is rate-limited or out of quota: try again later)",
                _ => "",
            };
            (
                StatusCode::BAD_GATEWAY,
                format!("The assistant answered {}: {}{hint}", r.status, r.detail),
            )
        } else {
            super::log_line(json!({"level": "warn", "msg": "the assistant failed",
                "error": self.redact(&format!("{e:#}"))}));
            let text = e.to_string();
            if text.contains("did not answer in time") {
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    "The assistant did not answer in time: try again later".to_string(),
                )
            } else {
                (
                    StatusCode::BAD_GATEWAY,
                    "The assistant cannot be reached: tell the server's operator (its log says why)"
                        .to_string(),
                )
            }
        };
        (status, self.redact(&message))
    }
}

/// `text` with its first letter in upper case (the engine's messages begin in lower case).
fn upper(text: &str) -> String {
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn too_many(wait_secs: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many questions to the assistant: wait a moment and ask again",
    )
    .retry(wait_secs + 1)
}

/// `GET /api/assistant`: whether the server has an assistant, and how to turn it on when
/// not.
pub fn status(app: Arc<App>, _: Req) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async move {
        let data = match &app.assistant {
            Some(a) => AssistantStatus {
                configured: true,
                model: Some(a.model.clone()),
                max_input: MAX_INPUT as u64,
                per_minute: a.per_minute,
                help: None,
            },
            None => AssistantStatus {
                configured: false,
                model: None,
                max_input: MAX_INPUT as u64,
                per_minute: 0,
                help: Some(HOW_TO.to_string()),
            },
        };
        super::ok(Data { data })
    })
}

/// What the model is told it is.
const PROMPT: &str = "You are the assistant of Valyxo's web editor. The user asks about the \
     text open in the editor (the whole file, or the part of it they selected), given below \
     the question's context. Answer precisely and briefly. When you suggest a change, give \
     the complete new text of what was given (the whole file, or the whole selection) in one \
     fenced code block with a language tag, so that it can replace the old text as it is.";

/// The messages of a question: the prompt, then the text (or selection) and the question.
fn messages(
    question: &str,
    path: Option<&str>,
    text: Option<&str>,
    selection: Option<&str>,
) -> Vec<Message> {
    let name = path.filter(|p| !p.is_empty());
    let context = match (selection.filter(|s| !s.is_empty()), text) {
        (Some(sel), _) => Some(crate::assistant::fence(
            &match name {
                Some(p) => format!("The part of {p} selected"),
                None => "The text selected".to_string(),
            },
            sel,
        )),
        (None, Some(text)) => Some(crate::assistant::fence(
            &match name {
                Some(p) => format!("The file {p}"),
                None => "The text".to_string(),
            },
            text,
        )),
        (None, None) => None,
    };
    let user = match context {
        Some(c) => format!("{c}\n\n{question}"),
        None => question.to_string(),
    };
    vec![Message::new("system", PROMPT), Message::new("user", user)]
}

/// What the relaying task hands the answer's stream.
enum Piece {
    Text(String),
    Done,
    Failed(StatusCode, String),
}

/// `POST /api/assistant`: the question and the text to the API; the answer streamed back.
pub fn ask(app: Arc<App>, req: Req) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async move {
        let body = req.json()?;
        let mut details = Vec::new();
        let mut text_of = |name: &'static str| match super::field(&body, name) {
            Ok(v) => v,
            Err((_, message)) => {
                details.push((name, message));
                None
            }
        };
        let question = text_of("question");
        let (path, text, selection) = (text_of("path"), text_of("text"), text_of("selection"));
        let question = question.map(str::trim).unwrap_or("");
        if question.is_empty() && details.iter().all(|(f, _)| *f != "question") {
            details.insert(0, ("question", "question must not be empty".into()));
        }
        if !details.is_empty() {
            return Err(ApiError::invalid(details));
        }
        let size = question.len()
            + path.map_or(0, str::len)
            + text.map_or(0, str::len)
            + selection.map_or(0, str::len);
        if size > MAX_INPUT {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The question and its text are larger than the assistant's limit of {} KiB: \
                     select a part of the text and ask about that",
                    MAX_INPUT >> 10
                ),
            )
            .with_limit(MAX_INPUT as u64));
        }
        let Some(a) = &app.assistant else {
            return Err(ApiError::unavailable(HOW_TO));
        };
        let account = req.user().id;
        let slot = a
            .streams
            .take(account)
            .map_err(|b| super::busy("answers from the assistant", b, 2))?;
        Assistant::check_rate(&app, account).await?;
        let messages = messages(question, path, text, selection);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Piece>();
        let relay = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(a) = &relay.assistant else { return };
            let mut on_text = |t: &str| {
                tx.send(Piece::Text(t.to_string()))
                    .map_err(|_| anyhow::anyhow!("the browser went away"))
            };
            let answer = tokio::select! {
                r = tokio::time::timeout(MAX_DURATION, a.client.stream(&messages, &mut on_text)) => r,
                // The browser went away: dropping the request closes the connection.
                _ = tx.closed() => return,
            };
            let piece = match answer {
                Ok(Ok(_)) => Piece::Done,
                Ok(Err(e)) => {
                    let (status, message) = a.say(&e);
                    Piece::Failed(status, message)
                }
                Err(_) => Piece::Failed(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "The answer took longer than {} minutes and was stopped",
                        MAX_DURATION.as_secs() / 60
                    ),
                ),
            };
            let _ = tx.send(piece);
        });
        // The first piece decides the answer's status: a failure before any text is an
        // error answer of its own.
        let first = match rx.recv().await {
            Some(Piece::Failed(status, message)) => return Err(ApiError::new(status, message)),
            Some(p) => p,
            None => {
                return Err(ApiError::internal(
                    "the assistant's relay ended unexpectedly",
                ))
            }
        };
        let lines = futures_util::stream::unfold(
            (Some(first), rx, false),
            |(next, mut rx, ended)| async move {
                if ended {
                    return None;
                }
                let piece = match next {
                    Some(p) => p,
                    None => rx.recv().await?,
                };
                let (line, ended) = match piece {
                    Piece::Text(t) => (json!({ "text": t }), false),
                    Piece::Done => (json!({ "done": true }), true),
                    Piece::Failed(_, message) => (json!({ "error": message }), true),
                };
                let mut bytes = line.to_string().into_bytes();
                bytes.push(b'\n');
                Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(bytes)),
                    (None, rx, ended),
                ))
            },
        );
        Ok(Reply::Lines(Body::from_stream(lines)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selection_is_sent_instead_of_the_whole_text() {
        let m = messages("why?", Some("a.rs"), Some("whole"), Some("part"));
        assert_eq!(m[0].role, "system");
        assert!(m[1]
            .content
            .starts_with("The part of a.rs selected:\n```\npart\n```"));
        assert!(m[1].content.ends_with("\n\nwhy?"));
        assert!(!m[1].content.contains("whole"));
        let m = messages("why?", Some("a.rs"), Some("whole"), Some(""));
        assert!(m[1].content.starts_with("The file a.rs:\n```\nwhole\n```"));
        let m = messages("hi", None, None, None);
        assert_eq!(m[1].content, "hi");
    }

    #[test]
    fn the_key_is_never_shown() {
        let s = Settings {
            url: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            key: Some("sk-very-secret".into()),
            timeout: Duration::from_secs(1),
            per_minute: 1,
            max_answer: 0,
        };
        assert!(!format!("{s:?}").contains("sk-very-secret"));
        let dir = tempfile::tempdir().unwrap();
        let db =
            super::super::Db::open(&format!("sqlite:{}", dir.path().join("s.db").display()), 2)
                .unwrap();
        let a = Assistant::new(&s, &db).unwrap();
        let e: anyhow::Error = Refused {
            status: 401,
            detail: "Incorrect API key provided: sk-very-secret".into(),
            hint: "",
        }
        .into();
        let (status, said) = a.say(&e);
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(!said.contains("sk-very-secret"), "{said}");
        assert!(said.starts_with("The assistant answered 401"), "{said}");
    }
}
