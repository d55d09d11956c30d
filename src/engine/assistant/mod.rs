//! The assistant (engine): a client for OpenAI-compatible chat-completion APIs (OpenAI, Ollama,
//! llama.cpp's server, vLLM) that streams answers as server-sent events, personas, the API
//! key (environment, OS keyring or a private file) and conversations kept in the store.

pub mod client;
pub mod conversations;
pub mod key;
pub mod render;

use crate::hub::Hub;
use anyhow::{anyhow, bail, Result};
pub use client::{Broken, Client, Message, Refused};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// `text` as a fenced block under a label, for sending as context; the fence is longer than
/// any fence inside the text.
pub fn fence(label: &str, text: &str) -> String {
    let ticks = if text.contains("```") { "````" } else { "```" };
    format!(
        "{label}:\n{ticks}\n{}\n{ticks}",
        text.trim_end_matches('\n')
    )
}

/// The fence that opens a code block on this line of Markdown (three or more backticks), and
/// the language tag after it.
pub fn opening_fence(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    let n = t.len() - t.trim_start_matches('`').len();
    (n >= 3).then(|| (&t[..n], t[n..].trim()))
}

/// Whether this line closes a block opened with `fence` (a line of just that fence).
pub fn closes(line: &str, fence: &str) -> bool {
    line.trim() == fence
}

/// A persona: a name, what it is for, and the system prompt that makes it.
pub struct Persona {
    pub name: &'static str,
    pub summary: &'static str,
    pub prompt: &'static str,
}

const BASE: &str = "You are the assistant of Valyxo, a terminal developer hub. Answer \
     precisely and briefly, for a programmer reading in a terminal. Put code in fenced code \
     blocks with a language tag.";

pub const PERSONAS: &[Persona] = &[
    Persona {
        name: "default",
        summary: "a concise programming assistant",
        prompt: BASE,
    },
    Persona {
        name: "explain",
        summary: "explains code or text step by step, for someone new to it",
        prompt: "You are the assistant of Valyxo, a terminal developer hub. Explain the code \
             or text you are given: what it does, how, and why, step by step, for a reader \
             new to it. Point out anything surprising. Be brief.",
    },
    Persona {
        name: "review",
        summary: "reviews code: bugs first, then risks, then style",
        prompt: "You are the assistant of Valyxo, a terminal developer hub, acting as a \
             careful code reviewer. List real problems first (bugs, wrong edge cases, \
             security issues), then risks, then style, each with the line it is about and a \
             concrete fix. Say so plainly when the code is fine.",
    },
    Persona {
        name: "test-writer",
        summary: "writes tests for the code it is given",
        prompt: "You are the assistant of Valyxo, a terminal developer hub. Write thorough \
             tests for the code you are given, in its language and usual test framework: \
             normal cases, edge cases and failures. Answer with the tests in one fenced code \
             block and a line on how to run them.",
    },
    Persona {
        name: "architect",
        summary: "discusses design: structure, trade-offs, alternatives",
        prompt: "You are the assistant of Valyxo, a terminal developer hub, acting as a \
             software architect. Discuss structure, responsibilities, data flow and \
             trade-offs; propose alternatives with their costs. Prefer simple designs.",
    },
];

pub fn persona(name: &str) -> Result<&'static Persona> {
    match PERSONAS.iter().find(|p| p.name == name) {
        Some(p) => Ok(p),
        None => {
            let names: Vec<&str> = PERSONAS.iter().map(|p| p.name).collect();
            bail!(
                "no persona '{name}': choose one of {} ('ai personas' describes them)",
                names.join(", ")
            )
        }
    }
}

/// The client for the hub's settings: `assistant.url`, `assistant.model`,
/// `assistant.timeout`, `assistant.max_answer` and the key for that URL.
pub fn client(hub: &Hub) -> Result<Client> {
    let s = hub.settings();
    let url = s.assistant.url.as_str();
    let key = key::find(hub, url)?.map(|(k, _)| k);
    let mut client = Client::new(url, &s.assistant.model, key, s.assistant.timeout)?;
    client.max_answer = s.assistant.max_answer.as_usize();
    Ok(client)
}

/// Streams an answer like [`Client::chat`], with the request on a helper thread, so that
/// `stop` (Ctrl-C, `kill`) is noticed within 50 ms even while the server sends nothing; the
/// helper thread then closes the connection as quickly. A stopped answer is a [`Broken`]
/// error holding the text received.
pub fn chat_stoppable(
    mut client: Client,
    messages: Vec<Message>,
    stop: &dyn Fn() -> bool,
    mut on_text: impl FnMut(&str) -> Result<()>,
) -> Result<String> {
    enum Msg {
        Piece(String),
        End(Result<String>),
    }
    let (tx, rx) = mpsc::channel();
    let quit = Arc::new(AtomicBool::new(false));
    client.stop_on(Arc::clone(&quit));
    let quitting = Arc::clone(&quit);
    std::thread::Builder::new()
        .name("assistant".into())
        .spawn(move || {
            let piece_tx = tx.clone();
            let result = client.chat(&messages, |piece| {
                if quitting.load(Ordering::Relaxed) {
                    bail!("stopped");
                }
                piece_tx
                    .send(Msg::Piece(piece.to_string()))
                    .map_err(|_| anyhow!("nobody is reading the answer"))
            });
            let _ = tx.send(Msg::End(result));
        })
        .map_err(|e| anyhow!("cannot start a thread for the answer: {e}"))?;
    let mut received = String::new();
    let broken = |message: String, partial: &str| -> anyhow::Error {
        Broken {
            message,
            partial: partial.to_string(),
        }
        .into()
    };
    loop {
        if stop() {
            quit.store(true, Ordering::Relaxed);
            return Err(broken("stopped".into(), &received));
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Msg::Piece(p)) => {
                received.push_str(&p);
                if let Err(e) = on_text(&p) {
                    quit.store(true, Ordering::Relaxed);
                    return Err(broken(format!("{e:#}"), &received));
                }
            }
            Ok(Msg::End(result)) => return result,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(broken("the answer stopped".into(), &received))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_persona_setting_offers_exactly_the_personas() {
        let names: Vec<&str> = PERSONAS.iter().map(|p| p.name).collect();
        assert_eq!(crate::settings::Persona::NAMES, names.as_slice());
    }
}
