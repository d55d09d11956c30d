//! Conversations with the assistant, kept in the store: each has a title (its first
//! question), the persona and model it used, and its messages in order.

use super::Message;
use crate::store::{now_ms, Store};
use anyhow::{bail, Result};
use rusqlite::OptionalExtension;

pub struct Conversation {
    pub id: i64,
    pub title: String,
    pub persona: String,
    pub model: String,
    pub updated_at: i64,
    pub messages: i64,
}

/// Starts a conversation; returns its number.
pub fn create(store: &Store, title: &str, persona: &str, model: &str) -> Result<i64> {
    let title: String = title
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .chars()
        .take(72)
        .collect();
    let now = now_ms();
    let conn = store.conn();
    conn.prepare_cached(
        "INSERT INTO conversations (title, persona, model, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(rusqlite::params![title, persona, model, now])?;
    Ok(conn.last_insert_rowid())
}

/// Appends messages to a conversation, all or none.
pub fn append(store: &Store, id: i64, messages: &[Message]) -> Result<()> {
    store.tx(|tx| {
        let now = now_ms();
        for m in messages {
            tx.prepare_cached(
                "INSERT INTO messages (conversation, role, content, at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(rusqlite::params![id, m.role, m.content, now])?;
        }
        tx.prepare_cached("UPDATE conversations SET updated_at = ?2 WHERE id = ?1")?
            .execute(rusqlite::params![id, now])?;
        Ok(())
    })
}

pub fn messages(store: &Store, id: i64) -> Result<Vec<Message>> {
    let conn = store.conn();
    let mut st = conn
        .prepare_cached("SELECT role, content FROM messages WHERE conversation = ?1 ORDER BY id")?;
    let rows = st.query_map([id], |r| {
        Ok(Message::new(
            &r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get(store: &Store, id: i64) -> Result<Conversation> {
    let found = list_where(store, "WHERE c.id = ?1", id)?.into_iter().next();
    match found {
        Some(c) => Ok(c),
        None => bail!("no conversation {id} ('ai history' lists them)"),
    }
}

/// The most recently used conversation.
pub fn last(store: &Store) -> Result<Option<i64>> {
    Ok(store
        .conn()
        .prepare_cached("SELECT id FROM conversations ORDER BY updated_at DESC, id DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// How many conversations are kept.
pub fn count(store: &Store) -> Result<i64> {
    Ok(store
        .conn()
        .prepare_cached("SELECT count(*) FROM conversations")?
        .query_row([], |r| r.get(0))?)
}

/// Conversations, most recent first.
pub fn list(store: &Store, limit: i64) -> Result<Vec<Conversation>> {
    list_where(
        store,
        "ORDER BY c.updated_at DESC, c.id DESC LIMIT ?1",
        limit,
    )
}

fn list_where(store: &Store, tail: &str, arg: i64) -> Result<Vec<Conversation>> {
    let sql = format!(
        "SELECT c.id, c.title, c.persona, c.model, c.updated_at, \
         (SELECT count(*) FROM messages m WHERE m.conversation = c.id AND m.role != 'system') \
         FROM conversations c {tail}"
    );
    let conn = store.conn();
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map([arg], |r| {
        Ok(Conversation {
            id: r.get(0)?,
            title: r.get(1)?,
            persona: r.get(2)?,
            model: r.get(3)?,
            updated_at: r.get(4)?,
            messages: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Switches a conversation to another persona: its stored persona and its instruction.
pub fn set_persona(store: &Store, id: i64, name: &str, prompt: &str) -> Result<()> {
    store.tx(|tx| {
        tx.prepare_cached("UPDATE conversations SET persona = ?2 WHERE id = ?1")?
            .execute(rusqlite::params![id, name])?;
        // Every conversation starts with its instruction (the system message).
        tx.prepare_cached(
            "UPDATE messages SET content = ?2 WHERE conversation = ?1 AND role = 'system'",
        )?
        .execute(rusqlite::params![id, prompt])?;
        Ok(())
    })
}

/// Deletes a conversation; returns whether it existed.
pub fn remove(store: &Store, id: i64) -> Result<bool> {
    Ok(store
        .conn()
        .prepare_cached("DELETE FROM conversations WHERE id = ?1")?
        .execute([id])?
        > 0)
}
