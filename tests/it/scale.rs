//! Many instances, one service: three `valyxo server` processes on one PostgreSQL database
//! behind a real nginx (round-robin, X-Forwarded-For), as `man server` describes. A token
//! from one works on all, a logout anywhere ends it everywhere, the login limit is counted
//! once for all of them and per real client, and a sync through the balancer is correct.
//!
//! `#[ignore]`d: they need PostgreSQL (VALYXO_TEST_POSTGRES names the database) and nginx,
//! which `.ci/run` installs; without either they say so and pass.

use crate::common;

use common::balancer::{nginx_binary, Nginx};
use common::server::{unique, Server};
use common::Home;
use predicates::str::contains;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::PathBuf;

/// Login and register attempts per minute per client in these tests.
const RATE: usize = 5;

/// The database and nginx, or None (with a message) when one is missing.
fn needs() -> Option<(String, PathBuf)> {
    let Ok(db) = std::env::var("VALYXO_TEST_POSTGRES") else {
        eprintln!("skipped: VALYXO_TEST_POSTGRES names no PostgreSQL database");
        return None;
    };
    let Some(nginx) = nginx_binary() else {
        eprintln!("skipped: nginx is not installed");
        return None;
    };
    Some((db, nginx))
}

/// Three servers on `db` that trust the balancer's address, and nginx in front of them.
fn service(db: &str, nginx: &std::path::Path, rate: usize) -> (Vec<Server>, Nginx) {
    let rate = rate.to_string();
    let servers: Vec<Server> = (0..3)
        .map(|_| {
            Server::start(
                Some(db),
                &["--trusted-proxy", "127.0.0.1", "--rate-limit", &rate],
            )
        })
        .collect();
    let urls: Vec<&str> = servers.iter().map(|s| s.url.as_str()).collect();
    let lb = Nginx::start(nginx, &urls);
    (servers, lb)
}

/// An HTTP client whose connections come from `ip` (all of 127.0.0.0/8 is this machine).
fn client_from(ip: IpAddr) -> reqwest::blocking::Client {
    reqwest::blocking::ClientBuilder::from(valyxo::net::builder().expect("HTTP setup"))
        .local_address(ip)
        .timeout(None)
        .build()
        .expect("HTTP client")
}

/// One JSON request: the status, the body and the Retry-After header.
fn send(
    c: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
    forwarded_for: Option<&str>,
) -> (u16, Value, Option<u64>) {
    let mut req = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(f) = forwarded_for {
        req = req.header("X-Forwarded-For", f);
    }
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        retry,
    )
}

#[test]
#[ignore = "needs PostgreSQL and nginx: run by .ci/run"]
fn instances_behind_a_balancer_share_sessions_and_the_login_limit() {
    let Some((db, nginx)) = needs() else { return };
    let (servers, lb) = service(&db, &nginx, RATE);
    // Client addresses of this run's own (the budgets are kept in the database, which
    // other runs may share within the minute).
    let net = format!("127.{}.{}.", fastrand::u8(1..255), fastrand::u8(0..255));
    let at = |host: u8| client_from(format!("{net}{host}").parse().unwrap());
    let (owner, attacker, bystander, direct) = (at(2), at(3), at(4), at(5));
    let me = |url: &str, token: &str| {
        send(
            &owner,
            "GET",
            &format!("{url}/api/auth/me"),
            Some(token),
            None,
            None,
        )
    };

    // Register and log in through the balancer; each token works on every instance.
    let name = unique("lb");
    let password = "Passw0rd-lb";
    let (status, body, _) = send(
        &owner,
        "POST",
        &format!("{}/api/auth/register", lb.url),
        None,
        Some(
            json!({"username": name, "email": format!("{name}@example.com"), "password": password}),
        ),
        None,
    );
    assert_eq!(status, 201, "{body}");
    let first = body["token"].as_str().unwrap().to_string();
    let id = body["user"]["id"].as_i64().unwrap();
    let (status, body, _) = send(
        &owner,
        "POST",
        &format!("{}/api/auth/login", lb.url),
        None,
        Some(json!({"username": name, "password": password})),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let second = body["token"].as_str().unwrap().to_string();
    for s in &servers {
        for token in [&first, &second] {
            let (status, body, _) = me(&s.url, token);
            assert_eq!((status, body["user"]["id"].as_i64()), (200, Some(id)));
        }
    }
    // Three requests through the balancer, one on each instance (round-robin).
    for _ in 0..3 {
        assert_eq!(me(&lb.url, &second).0, 200);
    }

    // A logout through the balancer ends that token on every instance, and only that one.
    let (status, body, _) = send(
        &owner,
        "POST",
        &format!("{}/api/auth/logout", lb.url),
        Some(&second),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    for s in &servers {
        assert_eq!(me(&s.url, &second).0, 401, "{}", s.url);
        assert_eq!(me(&s.url, &first).0, 200, "{}", s.url);
    }

    // The limit is counted once for all instances: RATE wrong passwords, spread over the
    // three by the balancer, and the next is refused, though no instance saw RATE alone.
    let wrong = json!({"username": name, "password": "Wrong-pass1"});
    let login = format!("{}/api/auth/login", lb.url);
    for i in 0..RATE {
        let (status, body, _) = send(&attacker, "POST", &login, None, Some(wrong.clone()), None);
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    let (status, body, retry) = send(&attacker, "POST", &login, None, Some(wrong.clone()), None);
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some_and(|s| (1..=60).contains(&s)), "{retry:?}");
    // A forged X-Forwarded-For does not make it another client: nginx appends the address
    // it saw, and the servers take the last one.
    for forged in ["198.51.100.7", "198.51.100.8, 198.51.100.9"] {
        let (status, _, _) = send(
            &attacker,
            "POST",
            &login,
            None,
            Some(wrong.clone()),
            Some(forged),
        );
        assert_eq!(status, 429, "forged {forged}");
    }
    // Another client behind the same balancer has a budget of its own, so the servers do
    // see the real client and not the balancer.
    let (status, body, _) = send(&bystander, "POST", &login, None, Some(wrong.clone()), None);
    assert_eq!(status, 401, "{body}");
    // The right password from the owner's address still works.
    let (status, body, _) = send(
        &owner,
        "POST",
        &login,
        None,
        Some(json!({"username": name, "password": password})),
        None,
    );
    assert_eq!(status, 200, "{body}");

    // Straight to the instances, from an address no server trusts: each attempt names
    // another client in X-Forwarded-For, which is ignored, and the budget is still shared.
    for i in 0..=RATE {
        let s = &servers[i % servers.len()];
        let (status, body, _) = send(
            &direct,
            "POST",
            &format!("{}/api/auth/login", s.url),
            None,
            Some(wrong.clone()),
            Some(&format!("192.0.2.{}", i + 1)),
        );
        let expected = if i < RATE { 401 } else { 429 };
        assert_eq!(status, expected, "attempt {i} on {}: {body}", s.url);
    }
}

#[test]
#[ignore = "needs PostgreSQL and nginx: run by .ci/run"]
fn a_sync_through_the_balancer_is_correct() {
    let Some((db, nginx)) = needs() else { return };
    let (_servers, lb) = service(&db, &nginx, 0);
    let user = unique("sync");
    let laptop = Home::signed_in(&lb.url, &user, true);
    let desktop = Home::signed_in(&lb.url, &user, false);

    // Each sync is several requests (limits, listing, missing content, uploads, commit),
    // which the balancer hands to the three instances in turn.
    laptop.out("mkdir -p src; echo 'fn main() {}' > src/main.rs; echo v1 > notes.md");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(laptop.path().join("big.bin"), &big).unwrap();
    laptop.out(&format!(
        "import {} ~/Projects/Main/big.bin",
        laptop.path().join("big.bin").display()
    ));
    laptop
        .c("sync")
        .success()
        .stdout(contains("Main: 3 pushed"));
    laptop
        .c("sync")
        .success()
        .stdout(contains("Main: up to date"));
    desktop
        .c("sync")
        .success()
        .stdout(contains("Main: 3 pulled"));
    assert_eq!(desktop.out("cat notes.md"), "v1\n");
    desktop.out(&format!(
        "export ~/Projects/Main/big.bin {}",
        desktop.path().join("out.bin").display()
    ));
    assert_eq!(std::fs::read(desktop.path().join("out.bin")).unwrap(), big);

    // Changed on both sides: both versions are kept, on both machines.
    laptop.out("echo laptop > notes.md; rm src/main.rs");
    laptop
        .c("sync")
        .success()
        .stdout(contains("1 pushed, 1 deleted"));
    desktop.out("echo desktop > notes.md");
    desktop
        .c("sync")
        .success()
        .stdout(contains("1 deleted, 1 conflict"));
    assert_eq!(desktop.out("cat notes.md"), "laptop\n");
    let copies = desktop.out("ls");
    let copy = copies
        .lines()
        .find(|l| l.starts_with("notes (conflict "))
        .unwrap_or_else(|| panic!("no conflict copy in {copies}"))
        .to_string();
    assert_eq!(desktop.out(&format!("cat '{copy}'")), "desktop\n");
    laptop.c("sync").success().stdout(contains("1 pulled"));
    assert_eq!(laptop.out(&format!("cat '{copy}'")), "desktop\n");
    assert_eq!(laptop.files("~/Projects"), desktop.files("~/Projects"));
    laptop
        .c("sync")
        .success()
        .stdout(contains("Main: up to date"));
    desktop
        .c("sync")
        .success()
        .stdout(contains("Main: up to date"));
}
