//! The sync client (engine): an account on a `valyxo server` (register, login, logout, whoami) and
//! two-way sync of the projects under `~/Projects` by content hash.
//!
//! Each synced project keeps, per file, the hash and server version both sides last agreed
//! on (the base). A file that changed only here is pushed, one that changed only on the
//! server is pulled, and one that changed on both keeps both versions: the server's takes
//! the path and this machine's is kept beside it as a conflict copy, pushed too. Blobs go up
//! before the commit that names them, the commit is atomic on the server, and the base moves
//! only after each local write, so a dropped connection or a kill at any point loses nothing:
//! the next sync picks up where this one stopped.
//!
//! A file renamed on one side is renamed on the other (its content is not sent again), and a
//! project deleted or renamed on one side is deleted or renamed on the other, with the same
//! rule: a change the other side made meanwhile is kept.
//!
//! The parts: [`api`] (the HTTP client and its errors), [`project`] (one project's sync: the
//! plan against the base, uploads, the commit, the local writes), [`transfer`] (moving
//! content: uploads two at a time, a pull's downloads fetched ahead, where a download goes
//! as it arrives), [`whole`] (projects deleted or renamed as a whole) and [`lock`] (one sync
//! at a time per home); the account (register, login, logout, the token) is here.

pub mod api;
pub mod lock;
pub mod project;
pub mod transfer;
pub mod whole;

pub use api::{Api, HttpError};
pub use lock::{lock, Lock};
pub use project::{projects, sync_project, Options, Report, Run};
pub use whole::{settle, Event};

use crate::assistant::key;
use crate::hub::Hub;
use crate::protocol::types as wire;
use anyhow::{anyhow, bail, Result};

/// Where synced projects live in the VFS.
pub const PROJECTS: &str = "/Projects";

/// The account this hub is logged in to.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub server: String,
    pub username: String,
    pub user_id: i64,
}

/// A server URL, checked and without a trailing `/`. Plain HTTP is allowed only to this
/// machine: a password or token must not cross a network in the clear.
pub fn server_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    let uri: http::Uri = url
        .parse()
        .map_err(|_| anyhow!("'{url}' is not a URL: use https://HOST or http://127.0.0.1:PORT"))?;
    let host = uri.host().ok_or_else(|| anyhow!("'{url}' names no host"))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if key::is_loopback(host) => {}
        Some("http") => bail!(
            "{url} is plain HTTP to another machine, which would send your password in the \
             clear: use https://"
        ),
        _ => bail!("'{url}' must start with https:// (or http:// for this machine)"),
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        bail!("give the server's address without a path, such as https://{host}");
    }
    Ok(url.to_string())
}

fn token_key(server: &str) -> String {
    key::account_for("sync", server)
}

/// The account logged in to, if any.
pub fn account(hub: &Hub) -> Result<Option<Account>> {
    let conn = hub.store.conn();
    let mut st = conn.prepare_cached("SELECT server, username, user_id FROM sync_account")?;
    let mut rows = st.query([])?;
    Ok(match rows.next()? {
        Some(r) => Some(Account {
            server: r.get(0)?,
            username: r.get(1)?,
            user_id: r.get(2)?,
        }),
        None => None,
    })
}

/// The account and a client with its token, or an error saying how to log in.
pub fn session(hub: &Hub) -> Result<(Account, Api)> {
    let acct = account(hub)?.ok_or_else(|| {
        anyhow!("not logged in: run 'login USER' (or 'register --email EMAIL USER') first")
    })?;
    let token = key::get(hub, &token_key(&acct.server))?
        .map(|(t, _)| t)
        .ok_or_else(|| {
            anyhow!(
                "the login token for {} is gone from the keyring: run 'login {}' again",
                acct.server,
                acct.username
            )
        })?;
    let api = Api::new(&acct.server, Some(token))?;
    Ok((acct, api))
}

/// Where the token went.
pub use crate::assistant::key::Source;

fn remember(hub: &Hub, server: &str, answer: &wire::Session) -> Result<(Account, Source)> {
    let acct = Account {
        server: server.to_string(),
        username: answer.user.username.clone(),
        user_id: answer.user.id,
    };
    let source = key::put(hub, &token_key(server), &answer.token)?;
    hub.store.conn().execute(
        "INSERT INTO sync_account (id, server, username, user_id, logged_in_at) \
         VALUES (1, ?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET server = excluded.server, \
         username = excluded.username, user_id = excluded.user_id, \
         logged_in_at = excluded.logged_in_at",
        rusqlite::params![
            acct.server,
            acct.username,
            acct.user_id,
            crate::store::now_ms()
        ],
    )?;
    Ok((acct, source))
}

/// Whether the server at `server` answers (its `/health`): the error says why not, before
/// a user types a password for nothing.
pub fn reachable(server: &str) -> Result<()> {
    let api = Api::new(server, None)?;
    let _: wire::Health = api.get("/health")?;
    Ok(())
}

pub fn register(
    hub: &Hub,
    server: &str,
    username: &str,
    email: &str,
    password: &str,
) -> Result<(Account, Source)> {
    let api = Api::new(server, None)?;
    let answer: wire::Session = api.send(
        "POST",
        "/api/auth/register",
        &wire::RegisterRequest {
            username: username.to_string(),
            email: email.to_string(),
            password: password.to_string(),
        },
    )?;
    remember(hub, &api.server, &answer)
}

pub fn login(hub: &Hub, server: &str, username: &str, password: &str) -> Result<(Account, Source)> {
    let api = Api::new(server, None)?;
    let answer: wire::Session = api.send(
        "POST",
        "/api/auth/login",
        &wire::LoginRequest {
            username: username.to_string(),
            password: password.to_string(),
        },
    )?;
    remember(hub, &api.server, &answer)
}

/// Logs out: the server revokes the token, and it is forgotten here even when the server
/// cannot be reached (the warning says so). Returns the account, if one was logged in.
pub fn logout(hub: &Hub) -> Result<Option<(Account, Option<String>)>> {
    let Some(acct) = account(hub)? else {
        return Ok(None);
    };
    let warning = match session(hub) {
        Ok((_, api)) => match api.request::<wire::Message>("POST", "/api/auth/logout", None) {
            Ok(_) => None,
            Err(e)
                if e.downcast_ref::<HttpError>()
                    .is_some_and(|h| h.status == 401) =>
            {
                None
            }
            Err(e) => Some(format!(
                "{e:#}; the token is forgotten here but stays valid on the server until it expires"
            )),
        },
        Err(_) => None,
    };
    key::delete(hub, &token_key(&acct.server))?;
    hub.store.conn().execute("DELETE FROM sync_account", [])?;
    Ok(Some((acct, warning)))
}

// ---- sync ----

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_must_be_https_unless_local() {
        assert!(server_url("https://sync.example.com/").is_ok());
        assert!(server_url("http://127.0.0.1:8080").is_ok());
        assert!(server_url("http://localhost:8080").is_ok());
        assert!(server_url("http://example.com").is_err());
        assert!(server_url("ftp://example.com").is_err());
        assert!(server_url("https://example.com/api").is_err());
    }
}
