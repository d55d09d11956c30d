//! The assistant: a client for OpenAI-compatible chat-completion APIs (OpenAI, Ollama,
//! llama.cpp's server, vLLM) that streams answers as server-sent events, personas, the API
//! key (environment, OS keyring or a private file) and conversations kept in the store.

pub mod client;
pub mod conversations;
pub mod key;

use crate::hub::Hub;
use anyhow::{bail, Result};
pub use client::{Client, Message};

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
/// `assistant.timeout` and the key for that URL.
pub fn client(hub: &Hub) -> Result<Client> {
    let url = hub.setting("assistant.url");
    let model = hub.setting("assistant.model");
    let timeout = crate::settings::parse_duration(&hub.setting("assistant.timeout"))?;
    let key = key::find(hub, &url)?.map(|(k, _)| k);
    Client::new(&url, &model, key, timeout)
}
