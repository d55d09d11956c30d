//! The API key: from `VALYXO_API_KEY` (or `OPENAI_API_KEY`), else from the OS keyring (the
//! Secret Service on Linux, the Keychain on macOS, the Credential Manager on Windows), else —
//! where no keyring service exists — from `credentials.json` in the home, readable only by
//! the user. Keys are kept per host of `assistant.url`, so a local server and a hosted API
//! can each have their own. No key is stored for, or sent to, a server over plain HTTP on
//! another machine ([`check_url`]). The key itself is never printed.

use crate::hub::Hub;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a key came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Env(&'static str),
    Keyring,
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env(v) => write!(f, "the environment variable {v}"),
            Source::Keyring => write!(f, "the OS keyring"),
            Source::File(p) => write!(f, "{} (readable only by you)", p.display()),
        }
    }
}

const SERVICE: &str = "valyxo";
const ENV_VARS: [&str; 2] = ["VALYXO_API_KEY", "OPENAI_API_KEY"];

/// The scheme, host and port of a URL, as the HTTP client reads it.
fn origin(url: &str) -> Option<(String, String, Option<u16>)> {
    let uri: http::Uri = url.trim().parse().ok()?;
    Some((
        uri.scheme_str()?.to_ascii_lowercase(),
        uri.host()?.to_ascii_lowercase(),
        uri.port_u16(),
    ))
}

/// The keyring entry's user name for a URL: `assistant@SCHEME://HOST[:PORT]`, so a key kept
/// for a server over HTTPS is never sent to the same host over plain HTTP.
pub fn account(url: &str) -> String {
    account_for("assistant", url)
}

/// `KIND@SCHEME://HOST[:PORT]`: the keyring entry of one kind of secret for one server.
pub fn account_for(kind: &str, url: &str) -> String {
    match origin(url) {
        Some((scheme, host, Some(port))) => format!("{kind}@{scheme}://{host}:{port}"),
        Some((scheme, host, None)) => format!("{kind}@{scheme}://{host}"),
        None => format!("{kind}@{}", url.trim()),
    }
}

fn file(hub: &Hub) -> PathBuf {
    hub.home.join("credentials.json")
}

fn read_file(hub: &Hub) -> Result<BTreeMap<String, String>> {
    let path = file(hub);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged: remove it and set the key again",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the credentials file whole: a temporary file renamed over the old one, under a
/// name nobody can guess, made new (never a file or link already there) and private (0600)
/// from its first byte. Removed if anything fails.
fn write_file(hub: &Hub, keys: &BTreeMap<String, String>) -> Result<()> {
    use std::io::Write;
    let path = file(hub);
    if keys.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        };
    }
    let text = serde_json::to_string_pretty(keys)?;
    crate::os::replace_file(&path, 0o600, |f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

fn entry(account: &str) -> Option<keyring::Entry> {
    keyring::Entry::new(SERVICE, account).ok()
}

/// Checks that a key may be sent to `url`: over HTTPS, or over plain HTTP only to this
/// machine, so that a key never crosses a network in the clear (as `login` checks its
/// server).
pub fn check_url(url: &str) -> Result<()> {
    let url = url.trim();
    let Some((scheme, host, _)) = origin(url) else {
        bail!("'{url}' is not a URL: use https://HOST/v1, or http://127.0.0.1:PORT/v1 for a server on this machine");
    };
    match scheme.as_str() {
        "https" => Ok(()),
        "http" if is_loopback(&host) => Ok(()),
        "http" => bail!(
            "{url} is plain HTTP to another machine, so the key would cross the network in the \
             clear: use https://, or plain HTTP only to a server on this machine \
             (http://localhost:PORT, http://127.0.0.1:PORT)"
        ),
        _ => bail!("'{url}' must start with https:// (or http:// for a server on this machine)"),
    }
}

/// Whether a key from the environment may go to `url`: `OPENAI_API_KEY` only to OpenAI;
/// `VALYXO_API_KEY` to any server over HTTPS, or over plain HTTP only on this machine, so a
/// key is never sent in the clear across a network.
fn env_key_fits(var: &str, url: &str) -> bool {
    let Some((scheme, host, _)) = origin(url) else {
        return false;
    };
    if var == "OPENAI_API_KEY" {
        return scheme == "https" && host == "api.openai.com";
    }
    check_url(url).is_ok()
}

/// The environment variables (of the valyxo process, set in the host shell) that hold a key
/// which is not sent to `url`, each with the reason.
pub fn withheld(url: &str) -> Vec<(&'static str, String)> {
    ENV_VARS
        .iter()
        .filter(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()))
        .filter(|var| !env_key_fits(var, url))
        .map(|&var| {
            let why = if var == "OPENAI_API_KEY" {
                "it is sent only to https://api.openai.com".to_string()
            } else {
                match check_url(url) {
                    Err(e) => format!("{e:#}"),
                    Ok(()) => "assistant.url is not a URL".to_string(),
                }
            };
            (var, why)
        })
        .collect()
}

/// The names of the environment variables the key is read from, in order.
pub fn env_vars() -> &'static [&'static str] {
    &ENV_VARS
}

/// Whether `host` (as a URL names it, IPv6 in brackets or not) is this machine.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The key for `url` and where it came from, if there is one. No key goes to a server over
/// plain HTTP on another machine: not from the environment, and not one stored before such
/// URLs were refused ([`check_url`]).
pub fn find(hub: &Hub, url: &str) -> Result<Option<(String, Source)>> {
    for var in ENV_VARS {
        if !env_key_fits(var, url) {
            continue;
        }
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return Ok(Some((v.trim().to_string(), Source::Env(var))));
            }
        }
    }
    if check_url(url).is_err() {
        return Ok(None);
    }
    get(hub, &account(url))
}

/// The secret kept under `account` (in the keyring, or the private file) and where it is.
pub fn get(hub: &Hub, account: &str) -> Result<Option<(String, Source)>> {
    if let Some(e) = entry(account) {
        if let Ok(k) = e.get_password() {
            return Ok(Some((k, Source::Keyring)));
        }
    }
    Ok(read_file(hub)?
        .remove(account)
        .map(|k| (k, Source::File(file(hub)))))
}

/// Stores the key for `url`: in the OS keyring when there is one, otherwise in the
/// private credentials file. Returns where it went.
pub fn store(hub: &Hub, url: &str, key: &str) -> Result<Source> {
    check_url(url)?;
    let key = key.trim();
    if key.is_empty() {
        bail!("the key is empty");
    }
    if key.chars().any(char::is_control) || key.contains(' ') {
        bail!("the key holds spaces or control characters: paste just the key");
    }
    put(hub, &account(url), key)
}

/// Keeps `secret` under `account`: in the OS keyring when there is one, otherwise in the
/// private credentials file. Returns where it went.
pub fn put(hub: &Hub, account: &str, secret: &str) -> Result<Source> {
    if let Some(e) = entry(account) {
        if e.set_password(secret).is_ok() && e.get_password().ok().as_deref() == Some(secret) {
            // A copy left in the file by an earlier machine state would shadow nothing, but
            // it would linger: drop it.
            let mut keys = read_file(hub)?;
            if keys.remove(account).is_some() {
                write_file(hub, &keys)?;
            }
            return Ok(Source::Keyring);
        }
    }
    let mut keys = read_file(hub)?;
    keys.insert(account.to_string(), secret.to_string());
    write_file(hub, &keys)?;
    Ok(Source::File(file(hub)))
}

/// Removes the stored key for `url` from the keyring and the file. Returns whether one
/// was there.
pub fn remove(hub: &Hub, url: &str) -> Result<bool> {
    delete(hub, &account(url))
}

/// Removes the secret kept under `account` from the keyring and the file. Returns whether
/// one was there.
pub fn delete(hub: &Hub, account: &str) -> Result<bool> {
    let mut found = false;
    if let Some(e) = entry(account) {
        found |= e.delete_credential().is_ok();
    }
    let mut keys = read_file(hub)?;
    if keys.remove(account).is_some() {
        write_file(hub, &keys)?;
        found = true;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_per_origin() {
        assert_eq!(
            account("https://api.openai.com/v1"),
            "assistant@https://api.openai.com"
        );
        assert_eq!(
            account("http://LocalHost:11434/v1/"),
            "assistant@http://localhost:11434"
        );
        assert_eq!(account("http://u:p@h:1/v1"), "assistant@http://h:1");
        assert_ne!(account("https://h/v1"), account("http://h/v1"));
        assert_eq!(
            account("http://evil.com?@localhost/v1"),
            "assistant@http://evil.com"
        );
    }

    #[test]
    fn environment_keys_go_only_where_they_belong() {
        assert!(env_key_fits("OPENAI_API_KEY", "https://api.openai.com/v1"));
        assert!(!env_key_fits("OPENAI_API_KEY", "http://api.openai.com/v1"));
        assert!(!env_key_fits("OPENAI_API_KEY", "https://example.com/v1"));
        assert!(env_key_fits("VALYXO_API_KEY", "https://example.com/v1"));
        assert!(env_key_fits("VALYXO_API_KEY", "http://localhost:11434/v1"));
        assert!(env_key_fits("VALYXO_API_KEY", "http://127.0.0.1:8080/v1"));
        assert!(env_key_fits("VALYXO_API_KEY", "http://[::1]:8080/v1"));
        assert!(
            !env_key_fits("VALYXO_API_KEY", "http://gpu-box:8000/v1"),
            "not in the clear"
        );
        assert!(!env_key_fits("VALYXO_API_KEY", "http://127.example.com/v1"));
        assert!(!env_key_fits("VALYXO_API_KEY", "ftp://localhost/v1"));
        assert!(!env_key_fits(
            "VALYXO_API_KEY",
            "http://evil.com?@localhost/v1"
        ));
    }

    #[test]
    fn keys_cross_a_network_only_over_https() {
        for ok in [
            "https://api.openai.com/v1",
            "https://gpu-box:8000/v1",
            "http://localhost:11434/v1",
            "http://127.0.0.1:8080/v1",
            "http://[::1]:8080/v1",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        let e = check_url("http://example.com/v1").unwrap_err().to_string();
        assert!(e.contains("plain HTTP to another machine"), "{e}");
        assert!(e.contains("in the clear"), "{e}");
        for bad in [
            "http://192.168.1.20:8000/v1",
            "http://evil.com?@localhost/v1",
            "ftp://localhost/v1",
            "localhost:11434",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
