//! Login and register rate limits (face): a budget of attempts per client address, and who
//! the client is when a request comes through a reverse proxy.
//!
//! The budget is a GCRA (the algorithm of the `governor` crate): `N` attempts at once, then
//! one more every `60/N` seconds. Every process keeps it in memory, which refuses a flood
//! without touching the database. On PostgreSQL, where several processes behind a load
//! balancer act as one service, each attempt the process lets through is then counted in
//! the database as well (`rate_limits`, one row per client address holding its theoretical
//! arrival time), in one statement, so N processes together still allow `N` attempts and
//! not `N` per process. Rows whose budget has fully come back say nothing and are deleted
//! now and then. The processes' clocks should agree (NTP); a skew of a second shifts a
//! budget by a second. On SQLite, which one process serves, the memory alone is the whole
//! truth: a database write per attempt would only join the queue of its single writer.
//!
//! A client address is the socket's, unless the socket is a configured trusted proxy: then
//! it is the last address of `X-Forwarded-For` that no trusted proxy wrote, so a client
//! cannot choose its own address by sending the header itself.

use super::db::{Conn, Db};
use super::ApiError;
use axum::http::{HeaderMap, StatusCode};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

type Local = governor::RateLimiter<
    IpAddr,
    governor::state::keyed::HashMapStateStore<IpAddr>,
    governor::clock::DefaultClock,
>;

/// The shared budget's rows are pruned once every this many attempts.
const PRUNE_EVERY: u64 = 256;

/// The address a request came from: the socket's, or, from a trusted proxy, the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client(trusted: &[IpAddr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(&client) {
        return client;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let hop = hop.trim();
        let Some(ip) = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        else {
            // Not an address: the hop that passed it on is the best known.
            break;
        };
        client = ip.to_canonical();
        if !trusted.contains(&client) {
            break;
        }
    }
    client
}

/// What one budget counts: an address, or for IPv6 its /64 (one client holds a whole /64).
fn key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn too_many(wait_secs: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts: wait a moment and try again",
    )
    .retry(wait_secs + 1)
}

/// The login and register budgets.
pub struct Limiter {
    local: Local,
    per_minute: NonZeroU32,
    /// Whether the budget is also kept in the database.
    shared: bool,
    attempts: AtomicU64,
}

impl Limiter {
    /// `per_minute` attempts per client address (None when 0: no limit), kept in the
    /// database too when `db` is PostgreSQL.
    pub fn new(per_minute: u32, db: &Db) -> Option<Limiter> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(Limiter {
            local: governor::RateLimiter::hashmap(governor::Quota::per_minute(per_minute)),
            per_minute,
            shared: db.describe().starts_with("PostgreSQL"),
            attempts: AtomicU64::new(0),
        })
    }

    /// Whether [`Limiter::check_shared`] has anything to do.
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// This process's budget (no waiting, no database).
    pub fn check_local(&self, client: IpAddr) -> Result<(), ApiError> {
        // Forget clients whose limit has fully recovered, now and then.
        if self.local.len() > 10_000 {
            self.local.retain_recent();
        }
        self.local.check_key(&key(client)).map_err(|not_until| {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            too_many(wait.as_secs())
        })
    }

    /// The budget shared through the database: a write, so on a blocking thread.
    pub fn check_shared(&self, db: &Db, client: IpAddr) -> Result<(), ApiError> {
        if !self.shared {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp_millis();
        let prune = self
            .attempts
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY);
        let wait = db.write(|c| {
            if prune {
                prune_budgets(c, now)?;
            }
            Ok(attempt(c, &key(client).to_string(), now, self.per_minute)?)
        })?;
        match wait {
            None => Ok(()),
            Some(ms) => Err(too_many(ms.max(0) as u64 / 1000)),
        }
    }
}

/// Counts one attempt of `client` at `now` (Unix milliseconds) against a budget of
/// `per_minute`: None when it is let through, or the milliseconds until the next one would
/// be. One statement: the GCRA step, done by the database so that concurrent attempts on
/// several servers each see the others'.
pub fn attempt(
    c: &mut dyn Conn,
    client: &str,
    now: i64,
    per_minute: NonZeroU32,
) -> Result<Option<i64>, super::db::DbError> {
    let n = i64::from(per_minute.get());
    // The interval between attempts, and how far ahead of now the budget may run.
    let interval = (60_000 + n - 1) / n;
    let tolerance = interval * (n - 1);
    let row = c.one(
        "INSERT INTO rate_limits (client, tat, ok) VALUES (?, ?, 1) \
         ON CONFLICT (client) DO UPDATE SET \
         ok = CASE WHEN rate_limits.tat <= ? THEN 1 ELSE 0 END, \
         tat = CASE WHEN rate_limits.tat <= ? \
             THEN (CASE WHEN rate_limits.tat > ? THEN rate_limits.tat ELSE ? END) + ? \
             ELSE rate_limits.tat END \
         RETURNING tat, ok",
        &[
            client.into(),
            (now + interval).into(),
            (now + tolerance).into(),
            (now + tolerance).into(),
            now.into(),
            now.into(),
            interval.into(),
        ],
    )?;
    Ok(match row {
        Some(r) if r.int(1) == 0 => Some((r.int(0) - now - tolerance).max(0)),
        _ => None,
    })
}

/// Deletes the budgets that have fully come back (as good as no row).
fn prune_budgets(c: &mut dyn Conn, now: i64) -> Result<u64, super::db::DbError> {
    c.exec("DELETE FROM rate_limits WHERE tat < ?", &[now.into()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.1");
        let trusted = [proxy, ip("10.0.0.2")];
        // A client that sends the header itself is not believed.
        assert_eq!(
            client(&trusted, ip("203.0.113.9"), &headers(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
        // Through the proxy, the address it appended; what the client forged before it is
        // ignored.
        assert_eq!(
            client(&trusted, proxy, &headers(&["198.51.100.1, 203.0.113.9"])),
            ip("203.0.113.9")
        );
        // Through two trusted proxies (and the header split over two lines).
        assert_eq!(
            client(
                &trusted,
                proxy,
                &headers(&["198.51.100.1, 203.0.113.9", "10.0.0.2"])
            ),
            ip("203.0.113.9")
        );
        // No header, or garbage where the client should be: the proxy itself.
        assert_eq!(client(&trusted, proxy, &headers(&[])), proxy);
        assert_eq!(
            client(&trusted, proxy, &headers(&["1.2.3.4, nonsense"])),
            proxy
        );
        // An IPv4 peer seen through an IPv6 socket is still the trusted proxy.
        assert_eq!(
            client(
                &trusted,
                ip("::ffff:10.0.0.1"),
                &headers(&["203.0.113.9:4711"])
            ),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(key(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    /// The GCRA step on the database at `url`, for clients named `tag`…
    fn budget(url: &str, tag: &str) {
        let db = Db::open(url, 2).unwrap();
        let three = NonZeroU32::new(3).unwrap();
        let (a, b) = (format!("{tag}a"), format!("{tag}b"));
        let at =
            |client: &str, now: i64| db.write(|c| Ok(attempt(c, client, now, three)?)).unwrap();
        let t = 1_000_000;
        for i in 0..3 {
            assert_eq!(at(&a, t + i), None, "attempt {i}");
        }
        // The fourth waits for the first to come back: 20 s after it, less the 3 ms gone.
        assert_eq!(at(&a, t + 3), Some(19_997));
        // A refused attempt costs nothing: still the same wait.
        assert_eq!(at(&a, t + 4), Some(19_996));
        // Another client has its own budget.
        assert_eq!(at(&b, t + 5), None);
        // One comes back every 20 s.
        assert_eq!(at(&a, t + 20_000), None);
        assert!(at(&a, t + 20_001).is_some());
        // Once all came back, the row says nothing and is pruned.
        db.write(|c| Ok(prune_budgets(c, t + 60_000)?)).unwrap();
        let left = |client: &str| {
            db.read(|c| {
                Ok(c.one(
                    "SELECT tat FROM rate_limits WHERE client = ?",
                    &[client.into()],
                )?
                .is_some())
            })
            .unwrap()
        };
        assert!(!left(&b), "b's budget is full again");
        assert!(left(&a), "a's is not yet");
        assert_eq!(at(&b, t + 60_000), None);
    }

    #[test]
    fn the_shared_budget_lets_n_through_then_one_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        budget(&format!("sqlite:{}", dir.path().join("s.db").display()), "");
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
    fn the_shared_budget_on_postgres() {
        let url = std::env::var("VALYXO_TEST_POSTGRES").expect("VALYXO_TEST_POSTGRES");
        // Addresses no server uses, unique to this run.
        budget(
            &url,
            &format!("test-{}-{}-", std::process::id(), fastrand::u32(..)),
        );
    }
}
