//! Accounts: registration, login, tokens and their revocation, the profile.
//!
//! Passwords are hashed with argon2id. Tokens are HS256 JWTs carrying the user id, name,
//! issue and expiry times and a token id (`jti`); each token id is a row in `sessions`, so
//! logout and a password change really end sessions, on every server sharing the database.

use super::db::{unix_now, Conn, Db, DbError, Guard, Val};
use super::{created, field, now, ok, ApiError, App, Reply, Req, User};
use crate::protocol::types::{
    AccountUser, Data, Me, MeAnswer, Message, Profile, ProfileAnswer, Session, Stats, StatsAnswer,
    ThemeChoice, WebSession,
};
use crate::protocol::{check_email, check_password, check_username};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    uid: i64,
    username: String,
    iat: i64,
    exp: i64,
    jti: String,
}

pub struct Tokens {
    enc: jsonwebtoken::EncodingKey,
    dec: jsonwebtoken::DecodingKey,
    ttl: Duration,
    /// The key that signs the cursors of paginated lists (derived from the secret).
    cursor_key: [u8; 32],
    /// The key that signs the CSRF tokens of browser sessions (derived from the secret).
    csrf_key: [u8; 32],
}

/// `n` random bytes from the OS, as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the OS random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Tokens {
    /// Keys from `secret` (at least 32 bytes), or from the secret kept in the database,
    /// which the first server to start creates.
    pub fn new(db: &Db, secret: Option<&str>, ttl: Duration) -> anyhow::Result<Tokens> {
        let secret = match secret {
            Some(s) if s.len() >= 32 => s.to_string(),
            Some(_) => anyhow::bail!(
                "the token secret must be at least 32 bytes (openssl rand -hex 32 makes one)"
            ),
            None => db
                .write(|c| {
                    c.exec(
                        "INSERT INTO meta (key, value) VALUES ('token_secret', ?) \
                         ON CONFLICT (key) DO NOTHING",
                        &[random_hex(32).into()],
                    )?;
                    Ok(
                        c.one("SELECT value FROM meta WHERE key = 'token_secret'", &[])?
                            .map(|r| r.text(0))
                            .unwrap_or_default(),
                    )
                })
                .map_err(|e| anyhow::anyhow!("cannot keep the token secret: {}", e.message))?,
        };
        Ok(Tokens {
            enc: jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            dec: jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            ttl,
            cursor_key: blake3::derive_key("valyxo server 2026-11 cursor key", secret.as_bytes()),
            csrf_key: blake3::derive_key("valyxo server 2026-11 csrf key", secret.as_bytes()),
        })
    }

    /// A new token for the user, recorded as a session.
    fn issue(&self, c: &mut dyn Conn, uid: i64, username: &str) -> Result<String, ApiError> {
        let iat = unix_now();
        let exp = iat + self.ttl.as_secs() as i64;
        let jti = random_hex(16);
        c.exec(
            "DELETE FROM sessions WHERE user_id = ? AND expires_at <= ?",
            &[uid.into(), iat.into()],
        )?;
        c.exec(
            "INSERT INTO sessions (jti, user_id, expires_at) VALUES (?, ?, ?)",
            &[jti.clone().into(), uid.into(), exp.into()],
        )?;
        let claims = Claims {
            sub: uid.to_string(),
            uid,
            username: username.to_string(),
            iat,
            exp,
            jti,
        };
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &self.enc)
            .map_err(|e| ApiError::internal(format!("cannot sign a token: {e}")))
    }

    /// Key material for the cursors of paginated lists, derived from the secret, so that
    /// every server sharing the secret reads the others' cursors.
    pub fn cursor_key(&self) -> [u8; 32] {
        self.cursor_key
    }

    /// The CSRF token of a browser session: bound to the session's token id and signed,
    /// so a page of another site can neither read nor make it.
    pub fn csrf(&self, jti: &str) -> blake3::Hash {
        blake3::keyed_hash(&self.csrf_key, jti.as_bytes())
    }

    /// How long a token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The user a token names, if the token is well formed, correctly signed and
    /// unexpired. Whether its session is still live is for the database to say: see
    /// [`live_session`].
    pub fn verify(&self, header: Option<&str>) -> Result<User, ApiError> {
        let header = header.ok_or_else(|| ApiError::unauthorized("Access token required"))?;
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("Malformed Authorization header: use 'Bearer TOKEN'")
            })?;
        self.verify_token(token)
    }

    /// As [`Tokens::verify`], for the token itself (a browser's session cookie).
    pub fn verify_token(&self, token: &str) -> Result<User, ApiError> {
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.dec, &v)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("Token expired: log in again")
                }
                _ => ApiError::unauthorized("Invalid token"),
            })?
            .claims;
        Ok(User {
            id: claims.uid,
            jti: claims.jti,
        })
    }
}

/// The guard that finds `user`'s session live (not revoked, unexpired, its user still
/// there), for [`Db::guarded`]: a request's handler runs behind it, so the check costs no
/// round trip of its own.
pub fn live_session(user: &User) -> Guard {
    Guard {
        sql: "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id \
              WHERE s.jti = ? AND s.user_id = ? AND s.revoked = 0 AND s.expires_at > ?",
        params: vec![user.jti.clone().into(), user.id.into(), unix_now().into()],
        refusal: "Token revoked or expired: log in again",
    }
}

fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::internal(format!("random: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| ApiError::internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("cannot hash a password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of no one's password, checked when a login names no user, so that a missing user
/// takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password(&random_hex(16)).unwrap_or_default())
}

/// Required string fields, with a detail for each missing or mistyped one.
fn required<'a>(
    body: &'a serde_json::Map<String, serde_json::Value>,
    names: &[&'static str],
    details: &mut Vec<(&'static str, String)>,
) -> Vec<&'a str> {
    names
        .iter()
        .map(|&n| match field(body, n) {
            Ok(Some(v)) if !v.is_empty() => v,
            Ok(_) => {
                details.push((n, format!("{n} is required")));
                ""
            }
            Err((_, m)) => {
                details.push((n, m));
                ""
            }
        })
        .collect()
}

fn account_user(r: &super::db::Row) -> AccountUser {
    AccountUser {
        id: r.int(0),
        username: r.text(1),
        email: r.text(2),
    }
}

fn message(m: &str) -> Result<Reply, ApiError> {
    ok(Message { message: m.into() })
}

pub fn register(app: &App, req: &Req) -> Result<Reply, ApiError> {
    created(sign_up(app, req)?)
}

/// `POST /api/web/register`: as `register`, the session going to the browser's cookie.
pub fn web_register(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let s = sign_up(app, req)?;
    Ok(Reply::Session(
        Box::new(created(WebSession {
            message: s.message,
            user: s.user,
        })?),
        Some(s.token),
    ))
}

/// A new account and its first session.
fn sign_up(app: &App, req: &Req) -> Result<Session, ApiError> {
    let body = req.json()?;
    let mut details = Vec::new();
    let v = required(&body, &["username", "email", "password"], &mut details);
    let (username, email, password) = (v[0].trim(), v[1].trim().to_lowercase(), v[2]);
    if !username.is_empty() {
        if let Some(m) = check_username(username) {
            details.push(("username", m));
        }
    }
    if !email.is_empty() {
        if let Some(m) = check_email(&email) {
            details.push(("email", m));
        }
    }
    if !password.is_empty() {
        if let Some(m) = check_password(password) {
            details.push(("password", m));
        }
    }
    if !details.is_empty() {
        return Err(ApiError::invalid(details));
    }
    let hash = hash_password(password)?;
    let t = now();
    let (user, token) = app
        .db
        .write(|c| {
            let r = c
                .one(
                    "INSERT INTO users (username, username_key, email, password_hash, \
                     created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) \
                     RETURNING id, username, email",
                    &[
                        username.into(),
                        username.to_lowercase().into(),
                        email.clone().into(),
                        hash.clone().into(),
                        t.clone().into(),
                        t.clone().into(),
                    ],
                )?
                .ok_or_else(|| ApiError::internal("insert returned no row"))?;
            let token = app.tokens.issue(c, r.int(0), username)?;
            Ok((account_user(&r), token))
        })
        .map_err(|e| {
            if e.status == StatusCode::CONFLICT {
                ApiError::conflict("Username or email already exists")
            } else {
                e
            }
        })?;
    Ok(Session {
        message: "User registered successfully".into(),
        user,
        token,
    })
}

pub fn login(app: &App, req: &Req) -> Result<Reply, ApiError> {
    ok(sign_in(app, req)?)
}

/// `POST /api/web/login`: as `login`, the session going to the browser's cookie.
pub fn web_login(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let s = sign_in(app, req)?;
    Ok(Reply::Session(
        Box::new(ok(WebSession {
            message: s.message,
            user: s.user,
        })?),
        Some(s.token),
    ))
}

/// A new session for the account a username (or email) and password name.
fn sign_in(app: &App, req: &Req) -> Result<Session, ApiError> {
    let body = req.json()?;
    let mut details = Vec::new();
    let v = required(&body, &["username", "password"], &mut details);
    if !details.is_empty() {
        let mut e = ApiError::invalid(details);
        e.message = "Username and password are required".into();
        return Err(e);
    }
    let row = credentials(app, v[0], v[1])?;
    let token = open_session(app, &row)?;
    Ok(Session {
        message: "Login successful".into(),
        user: account_user(&row),
        token,
    })
}

/// The account (id, username, email, password_hash) a username or email and a password
/// name, or 401.
fn credentials(app: &App, name: &str, password: &str) -> Result<super::db::Row, ApiError> {
    let name = name.trim().to_lowercase();
    let found = app.db.read(|c| {
        Ok(c.one(
            "SELECT id, username, email, password_hash FROM users \
             WHERE username_key = ? OR email = ?",
            &[name.clone().into(), name.clone().into()],
        )?)
    })?;
    let invalid = || ApiError::unauthorized("Invalid username or password");
    let Some(row) = found else {
        verify_password(password, decoy_hash());
        return Err(invalid());
    };
    if !verify_password(password, &row.text(3)) {
        return Err(invalid());
    }
    Ok(row)
}

/// A new session for the account `credentials` found, if its password is still the one
/// checked: a password change that landed while the (slow) check ran ends every session the
/// old password opened, so it must not open one after it (401, as a wrong password).
fn open_session(app: &App, row: &super::db::Row) -> Result<String, ApiError> {
    app.db.write(|c| {
        // An update, which locks the row (on PostgreSQL a change under way is waited for and
        // its result seen), so that a change cannot land between this check and the session.
        let same = c.exec(
            "UPDATE users SET password_hash = password_hash WHERE id = ? AND password_hash = ?",
            &[row.int(0).into(), row.text(3).into()],
        )?;
        if same == 0 {
            return Err(ApiError::unauthorized("Invalid username or password"));
        }
        app.tokens.issue(c, row.int(0), &row.text(1))
    })
}

/// Ends the request's session (and a browser's cookie with it).
pub fn logout(app: &App, req: &Req) -> Result<Reply, ApiError> {
    revoke(app, &req.user().jti)?;
    Ok(Reply::Session(Box::new(message("Logged out")?), None))
}

/// Ends the session `jti`, on every server.
pub fn revoke(app: &App, jti: &str) -> Result<(), ApiError> {
    app.db.write(|c| {
        c.exec(
            "UPDATE sessions SET revoked = 1 WHERE jti = ?",
            &[jti.into()],
        )?;
        Ok(())
    })
}

/// Ends every session of the account, on every machine and browser.
pub fn logout_all(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let user = req.user().id;
    app.db.write(|c| {
        c.exec(
            "UPDATE sessions SET revoked = 1 WHERE user_id = ?",
            &[user.into()],
        )?;
        Ok(())
    })?;
    let done = message("Logged out everywhere")?;
    Ok(Reply::Session(Box::new(done), None))
}

fn user_row(c: &mut dyn Conn, id: i64, cols: &str) -> Result<super::db::Row, ApiError> {
    c.one(
        &format!("SELECT {cols} FROM users WHERE id = ?"),
        &[id.into()],
    )?
    .ok_or_else(|| ApiError::unauthorized("The account no longer exists"))
}

pub fn me(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let r = app
        .db
        .read(|c| user_row(c, req.user().id, "id, username, email, created_at"))?;
    ok(MeAnswer {
        user: Me {
            id: r.int(0),
            username: r.text(1),
            email: r.text(2),
            created_at: r.text(3),
        },
    })
}

fn count(c: &mut dyn Conn, sql: &str, id: i64) -> Result<i64, DbError> {
    Ok(c.one(sql, &[id.into()])?.map_or(0, |r| r.int(0)))
}

const PROJECTS: &str = "SELECT count(*) FROM projects WHERE user_id = ?";
const SCRIPTS: &str = "SELECT count(*) FROM scripts s JOIN projects p ON p.id = s.project_id \
     WHERE p.user_id = ?";

pub fn profile(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.user().id;
    let (r, projects, scripts) = app.db.read(|c| {
        let r = user_row(c, id, "id, username, email, created_at, updated_at")?;
        Ok((r, count(c, PROJECTS, id)?, count(c, SCRIPTS, id)?))
    })?;
    ok(ProfileAnswer {
        user: Profile {
            id: r.int(0),
            username: r.text(1),
            email: r.text(2),
            created_at: r.text(3),
            updated_at: r.text(4),
            project_count: projects,
            script_count: scripts,
        },
    })
}

/// `GET /api/users/theme`: the account's theme for the web pages, and the choices.
pub fn theme(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let theme = app
        .db
        .read(|c| Ok(user_row(c, req.user().id, "theme")?.text(0)))?;
    ok(Data {
        data: ThemeChoice {
            theme,
            themes: crate::theme::builtin_names().map(String::from).collect(),
        },
    })
}

/// `PUT /api/users/theme`: keeps a built-in theme with the account.
pub fn set_theme(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let body = req.json()?;
    let mut details = Vec::new();
    let v = required(&body, &["theme"], &mut details);
    let theme = v[0].trim().to_string();
    let themes: Vec<String> = crate::theme::builtin_names().map(String::from).collect();
    if details.is_empty() && !themes.contains(&theme) {
        details.push((
            "theme",
            format!("no theme '{theme}': one of {}", themes.join(", ")),
        ));
    }
    if !details.is_empty() {
        return Err(ApiError::invalid(details));
    }
    app.db.write(|c| {
        c.exec(
            "UPDATE users SET theme = ?, updated_at = ? WHERE id = ?",
            &[theme.clone().into(), now().into(), req.user().id.into()],
        )?;
        Ok(())
    })?;
    ok(Data {
        data: ThemeChoice { theme, themes },
    })
}

pub fn update_profile(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let body = req.json()?;
    let mut details = Vec::new();
    let mut get = |n: &'static str| match field(&body, n) {
        Ok(v) => v.map(str::trim).filter(|v| !v.is_empty()),
        Err((_, m)) => {
            details.push((n, m));
            None
        }
    };
    let username = get("username").map(str::to_string);
    let email = get("email").map(str::to_lowercase);
    if let Some(m) = username.as_deref().and_then(check_username) {
        details.push(("username", m));
    }
    if let Some(m) = email.as_deref().and_then(check_email) {
        details.push(("email", m));
    }
    if !details.is_empty() {
        return Err(ApiError::invalid(details));
    }
    if username.is_none() && email.is_none() {
        return Err(ApiError::bad(
            "Nothing to update: give a username or an email",
        ));
    }
    let id = req.user().id;
    app.db
        .write(|c| {
            let t = now();
            if let Some(u) = &username {
                c.exec(
                    "UPDATE users SET username = ?, username_key = ?, updated_at = ? WHERE id = ?",
                    &[
                        u.into(),
                        u.to_lowercase().into(),
                        t.clone().into(),
                        id.into(),
                    ],
                )?;
            }
            if let Some(e) = &email {
                c.exec(
                    "UPDATE users SET email = ?, updated_at = ? WHERE id = ?",
                    &[e.into(), t.into(), id.into()],
                )?;
            }
            Ok(())
        })
        .map_err(|e| {
            if e.status == StatusCode::CONFLICT {
                ApiError::conflict("Username or email already in use")
            } else {
                e
            }
        })?;
    message("Profile updated")
}

pub fn change_password(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let body = req.json()?;
    let mut details = Vec::new();
    let v = required(&body, &["currentPassword", "newPassword"], &mut details);
    if !v[1].is_empty() {
        if let Some(m) = check_password(v[1]) {
            details.push(("newPassword", m));
        }
    }
    if !details.is_empty() {
        return Err(ApiError::invalid(details));
    }
    let user = req.user();
    let current = app
        .db
        .read(|c| Ok(user_row(c, user.id, "password_hash")?.text(0)))?;
    if !verify_password(v[0], &current) {
        return Err(ApiError::unauthorized("Current password is incorrect"));
    }
    store_password(app, user, &current, &hash_password(v[1])?)?;
    message("Password changed; other sessions were signed out")
}

/// Replaces the password `checked` (the hash the current password was verified against)
/// with `hash`, and signs out every other session of the account.
fn store_password(app: &App, user: &User, checked: &str, hash: &str) -> Result<(), ApiError> {
    app.db.write(|c| {
        // Only over the hash checked: a change that landed while the current password was
        // verified (its maker's, who then holds the only other session) is not undone.
        let changed = c.exec(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? \
             AND password_hash = ?",
            &[hash.into(), now().into(), user.id.into(), checked.into()],
        )?;
        if changed == 0 {
            return Err(ApiError::unauthorized("Current password is incorrect"));
        }
        c.exec(
            "UPDATE sessions SET revoked = 1 WHERE user_id = ? AND jti <> ?",
            &[user.id.into(), Val::Text(user.jti.clone())],
        )?;
        Ok(())
    })
}

pub fn stats(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.user().id;
    let (projects, scripts, executions, ms) = app.db.read(|c| {
        // Counted per script, so the totals outlive the bounded execution history.
        let e = c
            .one(
                "SELECT CAST(COALESCE(SUM(s.runs), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(s.run_ms), 0) AS BIGINT) \
                 FROM scripts s JOIN projects p ON p.id = s.project_id WHERE p.user_id = ?",
                &[id.into()],
            )?
            .map_or((0, 0), |r| (r.int(0), r.int(1)));
        Ok((count(c, PROJECTS, id)?, count(c, SCRIPTS, id)?, e.0, e.1))
    })?;
    ok(StatsAnswer {
        stats: Stats {
            projects,
            scripts,
            executions,
            total_execution_time_ms: ms,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_the_contract() {
        assert!(check_username("ab").is_some());
        assert!(check_username("a_b-9").is_none());
        assert!(check_username("a b").is_some());
        assert!(check_username(&"x".repeat(33)).is_some());
        assert!(check_email("dev@example.com").is_none());
        assert!(check_email("dev@localhost").is_some());
        assert!(check_email("a b@example.com").is_some());
        assert!(check_email("@example.com").is_some());
        assert!(check_password("Passw0rd").is_none());
        assert!(check_password("password1").is_some());
        assert!(check_password("Pa0").is_some());
        assert!(check_password("Pässwörd1 <\"'>").is_none());
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("Secr3tive").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("Secr3tive", &h));
        assert!(!verify_password("secr3tive", &h));
        assert!(!verify_password("Secr3tive", "not a hash"));
    }

    /// A server over a fresh SQLite database whose tokens live `ttl`.
    fn app(ttl: Duration) -> (tempfile::TempDir, App) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = super::super::Config {
            database: format!("sqlite:{}", dir.path().join("server.db").display()),
            pool_size: 2,
            token_ttl: ttl,
            rate_limit: 0,
            secret: Some("s".repeat(32)),
            log: false,
            script_admission: super::super::sandbox::Admission {
                workers: 1,
                total: 1,
                per_account: 1,
            },
            ..Default::default()
        };
        (dir, App::new(cfg).unwrap())
    }

    fn req(body: serde_json::Value, user: Option<User>) -> Req {
        Req {
            query: None,
            param: None,
            body: body.to_string().into_bytes().into(),
            user,
        }
    }

    /// The status and JSON of a handler's answer.
    fn answer(r: Result<Reply, ApiError>) -> (StatusCode, serde_json::Value) {
        match r {
            Ok(Reply::Json(status, text)) => (status, serde_json::from_str(&text).unwrap()),
            // A logout's answer also clears a browser's cookies.
            Ok(Reply::Session(inner, _)) => answer(Ok(*inner)),
            Ok(_) => panic!("not a JSON answer"),
            Err(e) => (e.status, serde_json::json!({ "error": e.message })),
        }
    }

    fn token(v: &serde_json::Value) -> String {
        v["token"].as_str().unwrap().to_string()
    }

    fn register_ada(app: &App) -> String {
        let (status, v) = answer(register(
            app,
            &req(
                serde_json::json!({
                    "username": "Ada", "email": "Ada@Example.com", "password": "Passw0rd!"
                }),
                None,
            ),
        ));
        assert_eq!(status, StatusCode::CREATED, "{v}");
        token(&v)
    }

    fn login_as(app: &App, name: &str, password: &str) -> (StatusCode, serde_json::Value) {
        answer(login(
            app,
            &req(
                serde_json::json!({ "username": name, "password": password }),
                None,
            ),
        ))
    }

    /// The user of an `Authorization: Bearer …` header, if the token is well formed,
    /// correctly signed, unexpired and its session live.
    fn check(app: &App, header: Option<&str>) -> Result<User, String> {
        let user = app.tokens.verify(header).map_err(|e| e.message)?;
        app.db
            .guarded(live_session(&user), || Ok(()))
            .map_err(|e| e.message)?;
        Ok(user)
    }

    #[test]
    fn issued_tokens_verify_until_revoked() {
        let (_dir, app) = app(Duration::from_secs(3600));
        let first = register_ada(&app);
        let user = check(&app, Some(&format!("Bearer {first}"))).unwrap();
        // The scheme is read without regard to case; the user logs in by name or email.
        assert_eq!(
            check(&app, Some(&format!("bearer {first}"))).unwrap().id,
            user.id
        );
        let (status, v) = login_as(&app, "ADA", "Passw0rd!");
        assert_eq!(status, StatusCode::OK, "{v}");
        let second = token(&v);
        let (status, _) = login_as(&app, "ada@example.com", "Passw0rd!");
        assert_eq!(status, StatusCode::OK);
        // Logging out ends that session only.
        let (status, _) = answer(logout(&app, &req(serde_json::json!({}), Some(user))));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            check(&app, Some(&format!("Bearer {first}"))).unwrap_err(),
            "Token revoked or expired: log in again"
        );
        assert!(check(&app, Some(&format!("Bearer {second}"))).is_ok());
    }

    #[test]
    fn a_login_checked_against_the_old_password_opens_no_session_after_a_change() {
        // A login verifies the password (slowly) before it opens its session; a password
        // change that lands in between must not leave the old password a way in.
        let (_dir, app) = app(Duration::from_secs(3600));
        let first = register_ada(&app);
        let ada = check(&app, Some(&format!("Bearer {first}"))).unwrap();
        let row = credentials(&app, "ada", "Passw0rd!").unwrap();
        let (status, v) = answer(change_password(
            &app,
            &req(
                serde_json::json!({"currentPassword": "Passw0rd!", "newPassword": "N3wSecret!"}),
                Some(ada),
            ),
        ));
        assert_eq!(status, StatusCode::OK, "{v}");
        let e = open_session(&app, &row).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::UNAUTHORIZED, "Invalid username or password")
        );
        // The new password opens one.
        let (status, _) = login_as(&app, "ada", "N3wSecret!");
        assert_eq!(status, StatusCode::OK);
    }

    #[test]
    fn a_password_change_checked_against_a_password_changed_meanwhile_changes_nothing() {
        // The owner and someone holding the old password and a session change it at once:
        // the change checked second must not undo the first and sign its maker out.
        let (_dir, app) = app(Duration::from_secs(3600));
        let first = register_ada(&app);
        let intruder = check(&app, Some(&format!("Bearer {first}"))).unwrap();
        let (_, v) = login_as(&app, "ada", "Passw0rd!");
        let owner = check(&app, Some(&format!("Bearer {}", token(&v)))).unwrap();
        let checked = credentials(&app, "ada", "Passw0rd!").unwrap().text(3);
        let (status, v) = answer(change_password(
            &app,
            &req(
                serde_json::json!({"currentPassword": "Passw0rd!", "newPassword": "0wnerOnly!"}),
                Some(owner.clone()),
            ),
        ));
        assert_eq!(status, StatusCode::OK, "{v}");
        let late = store_password(
            &app,
            &intruder,
            &checked,
            &hash_password("Int3uder!").unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            (late.status, late.message.as_str()),
            (StatusCode::UNAUTHORIZED, "Current password is incorrect")
        );
        assert_eq!(login_as(&app, "ada", "0wnerOnly!").0, StatusCode::OK);
        assert_eq!(
            login_as(&app, "ada", "Int3uder!").0,
            StatusCode::UNAUTHORIZED
        );
        assert!(check(&app, Some(&format!("Bearer {first}"))).is_err());
        assert!(app.db.guarded(live_session(&owner), || Ok(())).is_ok());
    }

    #[test]
    fn bad_and_expired_tokens_are_refused_with_their_reason() {
        let (_dir, app) = app(Duration::from_secs(3600));
        let good = register_ada(&app);
        for (header, why) in [
            (None, "Access token required"),
            (
                Some("Basic abc"),
                "Malformed Authorization header: use 'Bearer TOKEN'",
            ),
            (
                Some("Bearer "),
                "Malformed Authorization header: use 'Bearer TOKEN'",
            ),
            (Some("Bearer not.a.token"), "Invalid token"),
        ] {
            assert_eq!(check(&app, header).unwrap_err(), why, "{header:?}");
        }
        // A token changed in any way fails its signature.
        let mut forged = good.clone().into_bytes();
        let at = forged.len() - 3;
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(
            check(&app, Some(&format!("Bearer {forged}"))).unwrap_err(),
            "Invalid token"
        );
        // One signed with another secret is no token of this server.
        let claims: Claims = jsonwebtoken::decode(
            &good,
            &app.tokens.dec,
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
        )
        .unwrap()
        .claims;
        let other = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&[7; 32]),
        )
        .unwrap();
        assert_eq!(
            check(&app, Some(&format!("Bearer {other}"))).unwrap_err(),
            "Invalid token"
        );
        // Correctly signed but past its expiry.
        let old = Claims {
            iat: unix_now() - 120,
            exp: unix_now() - 60,
            ..claims
        };
        let old =
            jsonwebtoken::encode(&jsonwebtoken::Header::default(), &old, &app.tokens.enc).unwrap();
        assert_eq!(
            check(&app, Some(&format!("Bearer {old}"))).unwrap_err(),
            "Token expired: log in again"
        );
    }

    #[test]
    fn a_token_that_lives_no_time_is_never_accepted() {
        let (_dir, app) = app(Duration::ZERO);
        let t = register_ada(&app);
        assert!(check(&app, Some(&format!("Bearer {t}"))).is_err());
    }

    #[test]
    fn a_login_says_the_same_whether_or_not_the_user_exists() {
        let (_dir, app) = app(Duration::from_secs(3600));
        register_ada(&app);
        let timed = |name: &str| {
            let t = std::time::Instant::now();
            let r = login_as(&app, name, "Wr0ngPassword");
            (r, t.elapsed())
        };
        let mut wrong = Vec::new();
        let mut missing = Vec::new();
        for _ in 0..3 {
            let (a, ta) = timed("ada");
            let (b, tb) = timed("nobody");
            assert_eq!(a, b);
            assert_eq!(
                a,
                (
                    StatusCode::UNAUTHORIZED,
                    serde_json::json!({ "error": "Invalid username or password" })
                )
            );
            wrong.push(ta);
            missing.push(tb);
        }
        // A missing user is checked against a decoy hash: as slow as a wrong password.
        let (w, m) = (wrong.iter().min().unwrap(), missing.iter().min().unwrap());
        assert!(*m * 4 > *w, "missing user {m:?}, wrong password {w:?}");
    }

    #[test]
    fn registration_validates_and_refuses_taken_names() {
        let (_dir, app) = app(Duration::from_secs(3600));
        let (status, v) = answer(register(
            &app,
            &req(
                serde_json::json!({ "username": "a b", "email": "x", "password": "short" }),
                None,
            ),
        ));
        assert_eq!(
            (status, &v["error"]),
            (StatusCode::BAD_REQUEST, &"Validation failed".into())
        );
        register_ada(&app);
        for (name, email) in [("ADA", "other@example.com"), ("other", "ada@example.com")] {
            let (status, v) = answer(register(
                &app,
                &req(
                    serde_json::json!({ "username": name, "email": email, "password": "Passw0rd!" }),
                    None,
                ),
            ));
            assert_eq!(status, StatusCode::CONFLICT, "{name}: {v}");
            assert_eq!(v["error"], "Username or email already exists");
        }
    }

    proptest::proptest! {
        /// A username is 3 to 32 ASCII letters, digits, '_' or '-', and nothing else.
        #[test]
        fn usernames_are_exactly_the_documented_ones(u in "\\PC{0,40}") {
            let ok = (3..=32).contains(&u.chars().count())
                && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            proptest::prop_assert_eq!(check_username(&u).is_none(), ok);
        }

        #[test]
        fn valid_usernames_pass(u in "[A-Za-z0-9_-]{3,32}") {
            proptest::prop_assert_eq!(check_username(&u), None);
        }

        /// A password is 8 to 1024 characters with a lower-case and an upper-case letter and
        /// a digit.
        #[test]
        fn passwords_follow_the_rules(p in "\\PC{0,20}") {
            let ok = (8..=1024).contains(&p.chars().count())
                && p.chars().any(char::is_lowercase)
                && p.chars().any(char::is_uppercase)
                && p.chars().any(|c| c.is_ascii_digit());
            proptest::prop_assert_eq!(check_password(&p).is_none(), ok);
        }
    }
}
