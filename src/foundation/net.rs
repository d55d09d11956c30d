//! HTTP (foundation): what every HTTP client of Valyxo shares — TLS by rustls with the Mozilla
//! roots built in, the user agent, the connect timeout, proxies from the environment — and a
//! failed request told in words ([`Failure`]).
//!
//! The roots are webpki-roots' copy of Mozilla's list, compiled into the binary, as they were
//! before the clients moved to reqwest: a server is trusted the same on every machine, and
//! nothing is read from the OS store. Proxies come from `HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY` and `NO_PROXY` (reqwest reads them).

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

/// Opening a connection (with TLS) may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("valyxo/", env!("CARGO_PKG_VERSION"));

/// rustls with ring and the Mozilla roots, speaking HTTP/1.1.
fn tls() -> anyhow::Result<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| anyhow::anyhow!("cannot set up TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client builder with the TLS, user agent and connect timeout every client uses; the
/// caller adds its own timeouts.
pub fn builder() -> anyhow::Result<reqwest::ClientBuilder> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls()?)
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .http1_only())
}

/// Why a request got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listens at the address.
    Refused,
    /// The host name does not resolve.
    HostNotFound,
    /// The connection could not be opened (or TLS failed); why, in the transport's words.
    Connect(String),
    /// It took longer than a timeout.
    Timeout,
    /// Anything else, in the transport's words.
    Other(String),
}

/// What went wrong with a request, from the error and its causes.
pub fn failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Timeout;
    }
    let mut cause = e.source();
    let mut last = None;
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Failure::Refused,
                std::io::ErrorKind::TimedOut => return Failure::Timeout,
                _ => {}
            }
        }
        // hyper-util's name for a failed lookup.
        if c.to_string() == "dns error" {
            return Failure::HostNotFound;
        }
        last = Some(c);
        cause = c.source();
    }
    let why = last.map_or_else(|| e.to_string(), |c| c.to_string());
    if e.is_connect() {
        Failure::Connect(why)
    } else {
        Failure::Other(why)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused => f.write_str("connection refused"),
            Failure::HostNotFound => f.write_str("the host is not found (offline?)"),
            Failure::Connect(why) => write!(f, "the connection failed ({why})"),
            Failure::Timeout => f.write_str("it did not answer in time"),
            Failure::Other(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port on this machine that nothing listens on.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }

    fn get(url: &str) -> reqwest::Error {
        let client = reqwest::blocking::ClientBuilder::from(builder().expect("builder"))
            .build()
            .expect("client");
        client.get(url).send().expect_err("no answer")
    }

    #[test]
    fn failures_are_told_in_words() {
        let e = get(&format!("http://127.0.0.1:{}/", closed_port()));
        assert_eq!(failure(&e), Failure::Refused, "{e:?}");
        assert_eq!(Failure::Refused.to_string(), "connection refused");
        // `.invalid` never resolves (RFC 6761).
        let e = get("http://valyxo-test.invalid/");
        assert_eq!(failure(&e), Failure::HostNotFound, "{e:?}");
    }

    #[test]
    fn a_silent_server_times_out() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let client = reqwest::blocking::ClientBuilder::from(builder().expect("builder"))
            .timeout(Duration::from_millis(200))
            .build()
            .expect("client");
        let e = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .expect_err("no answer");
        assert_eq!(failure(&e), Failure::Timeout, "{e:?}");
        drop(l);
    }
}
