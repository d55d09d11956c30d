//! The account API of `valyxo server` (`man server`, the OpenAPI document), against a real
//! server on 127.0.0.1: on SQLite here, and on PostgreSQL in `.ci/run` (the ignored tests,
//! with VALYXO_TEST_POSTGRES naming the database).

use crate::common;

use common::server::{answered, call, raw, Answer, Server};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A user name no other test (or earlier run on the same database) has taken.
fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000;
    format!(
        "{prefix}{}_{t}_{}",
        std::process::id() % 1000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

const PASSWORD: &str = "Passw0rd!<\"'>";

/// Registers a new user; returns (name, token, id).
fn user(url: &str) -> (String, String, i64) {
    let name = unique("u");
    let a = call(
        url,
        "POST",
        "/api/auth/register",
        None,
        Some(
            json!({"username": name, "email": format!("{name}@Example.com"), "password": PASSWORD}),
        ),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    (
        name,
        a.body["token"].as_str().unwrap().to_string(),
        a.body["user"]["id"].as_i64().unwrap(),
    )
}

fn postgres() -> String {
    std::env::var("VALYXO_TEST_POSTGRES")
        .expect("VALYXO_TEST_POSTGRES names the PostgreSQL database for this test")
}

fn error(a: &Answer) -> &str {
    assert_eq!(a.body["success"], false, "{}", a.body);
    a.body["error"].as_str().unwrap_or("")
}

fn auth_and_users(url: &str) {
    // Validation: every problem, each with its field, and never the submitted value.
    let a = call(
        url,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"username": "a b", "email": "nope", "password": "short-secret"})),
    );
    assert_eq!(a.status, 400);
    let fields: Vec<&str> = a.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["username", "email", "password"]);
    assert!(!a.body.to_string().contains("short-secret"));
    let a = call(
        url,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"username": 7})),
    );
    assert_eq!(a.status, 400);

    let (name, token, id) = user(url);
    // Taken, whatever the case of the name; the email is stored in lower case.
    let a = call(
        url,
        "POST",
        "/api/auth/register",
        None,
        Some(
            json!({"username": name.to_uppercase(), "email": "other@example.com", "password": PASSWORD}),
        ),
    );
    assert_eq!(a.status, 409);
    assert_eq!(error(&a), "Username or email already exists");

    // Log in by name or by email; a wrong password and an unknown user read the same.
    let a = call(
        url,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": format!("{name}@EXAMPLE.com"), "password": PASSWORD})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["user"]["id"], id);
    let other_session = a.body["token"].as_str().unwrap().to_string();
    let wrong = call(
        url,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": name, "password": "Wrong0ne!"})),
    );
    let nobody = call(
        url,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": unique("nobody"), "password": PASSWORD})),
    );
    assert_eq!((wrong.status, nobody.status), (401, 401));
    assert_eq!(error(&wrong), "Invalid username or password");
    assert_eq!(error(&wrong), error(&nobody));
    assert_eq!(
        call(url, "POST", "/api/auth/login", None, Some(json!({}))).status,
        400
    );

    let me = call(url, "GET", "/api/auth/me", Some(&token), None);
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["id"], id);
    assert_eq!(me.body["user"]["email"], format!("{name}@example.com"));
    let created = me.body["user"]["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );

    // Tokens: missing, malformed, forged and garbage are all 401.
    assert_eq!(call(url, "GET", "/api/auth/me", None, None).status, 401);
    assert_eq!(
        call(url, "GET", "/api/auth/me", Some("x.y.z"), None).status,
        401
    );
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[2] = "AAAA".into();
    assert_eq!(
        call(url, "GET", "/api/auth/me", Some(&parts.join(".")), None).status,
        401
    );
    let (s, _, _) = raw("GET", &format!("{url}/api/auth/me"), None, None);
    assert_eq!(s, 401);

    // Profile and stats.
    let a = call(
        url,
        "PUT",
        "/api/users/profile",
        Some(&token),
        Some(json!({})),
    );
    assert_eq!(a.status, 400);
    let new_name = unique("r");
    let a = call(
        url,
        "PUT",
        "/api/users/profile",
        Some(&token),
        Some(json!({"username": new_name})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let (taken, _, _) = user(url);
    let a = call(
        url,
        "PUT",
        "/api/users/profile",
        Some(&token),
        Some(json!({"username": taken})),
    );
    assert_eq!(a.status, 409);
    let p = call(url, "GET", "/api/users/profile", Some(&token), None);
    assert_eq!(p.body["user"]["username"], new_name.as_str());
    assert_eq!(p.body["user"]["projectCount"], 0);
    let s = call(url, "GET", "/api/users/stats", Some(&token), None);
    assert_eq!(
        s.body["stats"],
        json!({"projects": 0, "scripts": 0, "executions": 0, "totalExecutionTimeMs": 0})
    );

    // A password change needs the current one and signs out the other sessions only.
    let a = call(
        url,
        "PUT",
        "/api/users/password",
        Some(&token),
        Some(json!({"currentPassword": "Wrong0ne!", "newPassword": "N3w-password"})),
    );
    assert_eq!(a.status, 401);
    let a = call(
        url,
        "PUT",
        "/api/users/password",
        Some(&token),
        Some(json!({"currentPassword": PASSWORD, "newPassword": "weak"})),
    );
    assert_eq!(a.status, 400);
    let a = call(
        url,
        "PUT",
        "/api/users/password",
        Some(&token),
        Some(json!({"currentPassword": PASSWORD, "newPassword": "N3w-password"})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        call(url, "GET", "/api/auth/me", Some(&other_session), None).status,
        401
    );
    assert_eq!(
        call(url, "GET", "/api/auth/me", Some(&token), None).status,
        200
    );

    // Logout really logs out.
    assert_eq!(
        call(url, "POST", "/api/auth/logout", Some(&token), None).status,
        200
    );
    assert_eq!(
        call(url, "GET", "/api/auth/me", Some(&token), None).status,
        401
    );
    assert_eq!(
        call(url, "POST", "/api/auth/logout", Some(&token), None).status,
        401
    );
}

fn projects_and_scripts(url: &str) {
    let (_, token, _) = user(url);
    let (_, intruder, _) = user(url);
    let t = Some(token.as_str());
    let a = call(
        url,
        "POST",
        "/api/projects",
        t,
        Some(json!({"name": "   "})),
    );
    assert_eq!(a.status, 400);
    let a = call(
        url,
        "POST",
        "/api/projects",
        t,
        Some(json!({"name": "x".repeat(101)})),
    );
    assert_eq!(a.status, 400);
    let a = call(
        url,
        "POST",
        "/api/projects",
        t,
        Some(json!({"name": "  <img src=x onerror=alert(1)> \"quoted\" ü ", "description": "d"})),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let first = a.body["data"]["id"].as_i64().unwrap();
    assert_eq!(
        a.body["data"]["name"],
        "<img src=x onerror=alert(1)> \"quoted\" ü"
    );
    let second = call(
        url,
        "POST",
        "/api/projects",
        t,
        Some(json!({"name": "Second"})),
    )
    .body["data"]["id"]
        .as_i64()
        .unwrap();
    let list = call(url, "GET", "/api/projects", t, None);
    let ids: Vec<i64> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [second, first], "newest first");

    // Another user's project is not found, whatever they try.
    let i = Some(intruder.as_str());
    for (m, body) in [
        ("GET", None),
        ("PUT", Some(json!({"name": "mine"}))),
        ("DELETE", None),
    ] {
        let a = call(url, m, &format!("/api/projects/{first}"), i, body);
        assert_eq!((a.status, error(&a)), (404, "Project not found"), "{m}");
    }
    assert_eq!(call(url, "GET", "/api/projects/abc", t, None).status, 404);
    assert_eq!(
        call(url, "GET", "/api/projects/99999999", t, None).status,
        404
    );

    let a = call(
        url,
        "PUT",
        &format!("/api/projects/{first}"),
        t,
        Some(json!({"name": "Renamed"})),
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.body["data"]["id"], first);
    assert_eq!(
        a.body["data"]["description"], "d",
        "a description left out is kept"
    );

    // Scripts.
    let s = |body: Value| {
        call(
            url,
            "POST",
            &format!("/api/scripts/project/{first}"),
            t,
            Some(body),
        )
    };
    assert_eq!(
        s(json!({"name": "x", "content": "1", "language": "cobol"})).status,
        400
    );
    assert_eq!(s(json!({"name": "x"})).status, 400);
    let ok = s(json!({"name": "ok", "content": "print(\"hi \" + 40 + 2);"}));
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(ok.body["data"]["language"], "rhai");
    let ok_id = ok.body["data"]["id"].as_i64().unwrap();
    let bad = s(json!({"name": "bad", "content": "throw \"boom\";"})).body["data"]["id"]
        .as_i64()
        .unwrap();
    let slow = s(json!({"name": "slow", "content": "loop {}"})).body["data"]["id"]
        .as_i64()
        .unwrap();
    let py = s(json!({"name": "py", "content": "print(1)", "language": "python"})).body["data"]
        ["id"]
        .as_i64()
        .unwrap();
    let vs =
        s(json!({"name": "vs", "content": "set x = 6\nprint x * 7\n", "language": "valyxoscript"}))
            .body["data"]["id"]
            .as_i64()
            .unwrap();
    let sneaky = s(json!({"name": "io", "content": "open_file(\"/etc/passwd\")"})).body["data"]
        ["id"]
        .as_i64()
        .unwrap();
    let run = |id: i64| {
        call(url, "POST", &format!("/api/scripts/{id}/execute"), t, None).body["data"].clone()
    };
    let r = run(ok_id);
    assert_eq!(
        (r["status"].as_str(), r["output"].as_str()),
        (Some("success"), Some("hi 402\n")),
        "{r}"
    );
    assert_eq!(run(bad)["status"], "error");
    assert_eq!(run(slow)["status"], "timeout");
    assert_eq!(run(py)["status"], "unsupported");
    assert_eq!(run(vs)["output"], "42\n");
    assert_eq!(run(sneaky)["status"], "error");
    let e = call(
        url,
        "GET",
        &format!("/api/scripts/{ok_id}/executions"),
        t,
        None,
    );
    assert_eq!(e.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(e.body["data"][0]["status"], "success");
    assert_eq!(
        call(
            url,
            "POST",
            &format!("/api/scripts/{ok_id}/execute"),
            i,
            None
        )
        .status,
        404
    );
    let got = call(url, "GET", &format!("/api/scripts/{ok_id}"), t, None);
    assert_eq!(got.body["data"]["project_id"], first);
    assert_eq!(
        call(url, "GET", &format!("/api/scripts/{ok_id}"), i, None).status,
        404
    );
    let listed = call(
        url,
        "GET",
        &format!("/api/scripts/project/{first}"),
        t,
        None,
    );
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 6);
    let up = call(
        url,
        "PUT",
        &format!("/api/scripts/{ok_id}"),
        t,
        Some(json!({"name": "ok2", "content": "print(1)", "language": "rhai"})),
    );
    assert_eq!(up.body["data"]["name"], "ok2");
    let stats = call(url, "GET", "/api/users/stats", t, None);
    assert_eq!(stats.body["stats"]["executions"], 6);
    let up = call(
        url,
        "PUT",
        &format!("/api/scripts/{py}"),
        t,
        Some(json!({"name": "py2", "content": "print(2)"})),
    );
    assert_eq!(
        up.body["data"]["language"], "python",
        "a language left out is kept"
    );
    assert_eq!(
        call(url, "DELETE", &format!("/api/scripts/{py}"), t, None).status,
        200
    );
    assert_eq!(
        call(url, "GET", &format!("/api/scripts/{py}"), t, None).status,
        404
    );

    // Deleting a project takes its scripts along.
    assert_eq!(
        call(url, "DELETE", &format!("/api/projects/{first}"), t, None).status,
        200
    );
    assert_eq!(
        call(url, "GET", &format!("/api/scripts/{ok_id}"), t, None).status,
        404
    );
    assert_eq!(
        call(url, "GET", "/api/users/stats", t, None).body["stats"]["scripts"],
        0
    );
}

fn hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

fn put_blob(url: &str, token: &str, data: &[u8]) -> u16 {
    raw(
        "PUT",
        &format!("{url}/api/blobs/{}", hash(data)),
        Some(token),
        Some(("application/octet-stream", data.to_vec())),
    )
    .0
}

fn file_sync(url: &str) {
    let (_, token, _) = user(url);
    let (_, other, _) = user(url);
    let t = Some(token.as_str());
    let p = call(
        url,
        "POST",
        "/api/projects",
        t,
        Some(json!({"name": "Synced"})),
    )
    .body["data"]["id"]
        .as_i64()
        .unwrap();
    let files = call(url, "GET", &format!("/api/projects/{p}/files"), t, None);
    assert_eq!(files.body["data"], json!({"revision": 0, "files": []}));

    let a = b"first content".to_vec();
    let b = vec![0u8, 159, 146, 150, 255]; // binary, not UTF-8
    let missing = call(
        url,
        "POST",
        "/api/blobs/missing",
        t,
        Some(json!({"hashes": [hash(&a), hash(&b), hash(&a)]})),
    );
    assert_eq!(missing.body["data"]["missing"], json!([hash(&a), hash(&b)]));
    assert_eq!(
        call(
            url,
            "POST",
            "/api/blobs/missing",
            t,
            Some(json!({"hashes": ["zz"]}))
        )
        .status,
        400
    );
    // The content must match its hash.
    let (s, _, _) = raw(
        "PUT",
        &format!("{url}/api/blobs/{}", hash(&a)),
        t,
        Some(("application/octet-stream", b"other".to_vec())),
    );
    assert_eq!(s, 400);
    assert_eq!(put_blob(url, &token, &a), 201);
    assert_eq!(put_blob(url, &token, &b), 201);
    assert_eq!(
        put_blob(url, &token, &b),
        201,
        "uploading again is harmless"
    );
    let (s, got, _) = raw("GET", &format!("{url}/api/blobs/{}", hash(&b)), t, None);
    assert_eq!((s, got), (200, b.clone()));
    // Blobs are per user: another user cannot learn that this content exists.
    let (s, _, _) = raw(
        "GET",
        &format!("{url}/api/blobs/{}", hash(&b)),
        Some(&other),
        None,
    );
    assert_eq!(s, 404);
    let m = call(
        url,
        "POST",
        "/api/blobs/missing",
        Some(&other),
        Some(json!({"hashes": [hash(&a)]})),
    );
    assert_eq!(m.body["data"]["missing"], json!([hash(&a)]));

    let commit = |token: &str, changes: Value| {
        call(
            url,
            "POST",
            &format!("/api/projects/{p}/files/commit"),
            Some(token),
            Some(json!({"base_revision": 0, "changes": changes})),
        )
    };
    // Bad paths, unknown content and another user's project are refused.
    for bad in ["../x", "/abs", "a//b", "a\\b", ""] {
        let r = commit(
            &token,
            json!([{"path": bad, "hash": hash(&a), "base_version": 0}]),
        );
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = commit(
        &token,
        json!([{"path": "x", "hash": hash(b"never uploaded"), "base_version": 0}]),
    );
    assert_eq!(r.status, 400);
    let r = commit(
        &other,
        json!([{"path": "x", "hash": hash(&a), "base_version": 0}]),
    );
    assert_eq!(r.status, 404);

    let r = commit(
        &token,
        json!([
            {"path": "src/a.txt", "hash": hash(&a), "base_version": 0},
            {"path": "bin/b.dat", "hash": hash(&b), "base_version": 0},
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["revision"], 1);
    assert_eq!(
        r.body["data"]["files"][1],
        json!({"path": "src/a.txt", "hash": hash(&a), "size": a.len(), "version": 1, "deleted": false})
    );

    // A change based on an old version is a conflict, and nothing of that commit applies.
    let r = commit(
        &token,
        json!([
            {"path": "bin/b.dat", "hash": null, "base_version": 1},
            {"path": "src/a.txt", "hash": hash(&b), "base_version": 0},
        ]),
    );
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body["conflicts"],
        json!([{"path": "src/a.txt", "server_version": 1, "server_hash": hash(&a)}])
    );
    let files = call(url, "GET", &format!("/api/projects/{p}/files"), t, None);
    assert_eq!(files.body["data"]["revision"], 1);
    assert_eq!(files.body["data"]["files"][0]["deleted"], false);

    // A deletion leaves a tombstone with a new version.
    let r = commit(
        &token,
        json!([{"path": "bin/b.dat", "hash": null, "base_version": 1}]),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["data"]["files"][0],
        json!({"path": "bin/b.dat", "hash": null, "size": 0, "version": 2, "deleted": true})
    );
    // A file cannot sit where a directory of another file is.
    let r = commit(
        &token,
        json!([{"path": "src", "hash": hash(&a), "base_version": 0}]),
    );
    assert_eq!(r.status, 400);
    let r = commit(
        &token,
        json!([{"path": "src/a.txt/inner", "hash": hash(&a), "base_version": 0}]),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        call(url, "GET", &format!("/api/projects/{p}/files"), t, None).body["data"]["revision"],
        2
    );
}

fn hostile_requests(url: &str) {
    let (_, token, _) = user(url);
    let a = call(url, "GET", "/no/such/route", None, None);
    assert_eq!((a.status, error(&a)), (404, "Endpoint not found"));
    let (s, body, _) = raw(
        "POST",
        &format!("{url}/api/auth/login"),
        None,
        Some(("application/json", b"{\"username\":".to_vec())),
    );
    assert_eq!(s, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["success"],
        false
    );
    let (s, _, _) = raw(
        "POST",
        &format!("{url}/api/projects"),
        Some(&token),
        Some(("application/json", b"[1,2]".to_vec())),
    );
    assert_eq!(s, 400);
    let (s, _, _) = raw(
        "POST",
        &format!("{url}/api/projects"),
        Some(&token),
        Some(("application/json", vec![0xff, 0xfe])),
    );
    assert_eq!(s, 400);
    // Over the JSON limit (64 KiB on these test servers).
    let big = json!({"name": "x", "description": "y".repeat(70_000)});
    assert_eq!(
        call(url, "POST", "/api/projects", Some(&token), Some(big)).status,
        413
    );
    let a = call(url, "DELETE", "/health", None, None);
    assert_eq!(a.status, 405);
    // NUL characters, bad path parameters and an anonymous upload are refused cleanly.
    let a = call(
        url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(json!({"name": "a\u{0}b"})),
    );
    assert_eq!(a.status, 400);
    assert_eq!(a.body["details"][0]["field"], "name");
    let (s, body, _) = raw(
        "GET",
        &format!("{url}/api/projects/%FF"),
        Some(&token),
        None,
    );
    assert_eq!(s, 404);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["success"],
        false
    );
    let (s, _, _) = raw(
        "PUT",
        &format!("{url}/api/blobs/{}", hash(b"x")),
        None,
        Some(("application/octet-stream", b"x".to_vec())),
    );
    assert_eq!(s, 401);
    // SQL in a name is only text.
    let a = call(
        url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(json!({"name": "x'); DROP TABLE users; --"})),
    );
    assert_eq!(a.status, 201);
    assert_eq!(
        call(url, "GET", "/api/auth/me", Some(&token), None).status,
        200
    );
}

fn operations(url: &str) {
    let h = call(url, "GET", "/health", None, None);
    assert_eq!(h.status, 200);
    assert_eq!(h.body, json!({"success": true, "status": "ok"}));
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(h.header(name), Some(value), "{name}");
    }
    assert!(h
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    // The OpenAPI document describes exactly the routes served.
    let doc = call(url, "GET", "/api/openapi.json", None, None).body;
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    let mut served: Vec<(String, String)> = valyxo::server::routes()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
}

/// A commit may carry renames (a change with `from`, beside the deletion of `from` in the
/// same commit), which the server checks; `POST /api/projects/{id}/delete` deletes a project
/// only at the revision it names.
fn renames_and_guarded_deletes(url: &str) {
    let (_, token, _) = user(url);
    let t = Some(token.as_str());
    let p = call(
        url,
        "POST",
        "/api/projects",
        t,
        Some(json!({"name": "Moves"})),
    );
    let p = p.body["data"]["id"].as_i64().unwrap();
    let (a, b) = (b"moved".to_vec(), b"other".to_vec());
    assert_eq!(put_blob(url, &token, &a), 201);
    assert_eq!(put_blob(url, &token, &b), 201);
    let commit = |changes: Value| {
        call(
            url,
            "POST",
            &format!("/api/projects/{p}/files/commit"),
            t,
            Some(json!({"changes": changes})),
        )
    };
    let r = commit(json!([
        {"path": "old.txt", "hash": hash(&a), "base_version": 0},
        {"path": "b.txt", "hash": hash(&b), "base_version": 0}
    ]));
    assert_eq!(r.status, 200, "{}", r.body);
    // A rename must delete its old path in the same commit, keep its content, and name
    // another path.
    for (bad, why) in [
        (
            json!([{"path": "new.txt", "hash": hash(&a), "base_version": 0, "from": "old.txt"}]),
            "needs one change of the same commit that deletes old.txt",
        ),
        (
            json!([
                {"path": "old.txt", "hash": null, "base_version": 1},
                {"path": "new.txt", "hash": hash(&b), "base_version": 0, "from": "old.txt"}
            ]),
            "a rename keeps the content",
        ),
        (
            json!([
                {"path": "old.txt", "hash": null, "base_version": 1},
                {"path": "new.txt", "hash": null, "base_version": 0, "from": "old.txt"}
            ]),
            "a rename needs a hash",
        ),
        (
            json!([
                {"path": "old.txt", "hash": null, "base_version": 1},
                {"path": "new.txt", "hash": hash(&a), "base_version": 0, "from": "../old.txt"}
            ]),
            "from must be the path",
        ),
    ] {
        let r = commit(bad);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.to_string().contains(why), "{why}: {}", r.body);
    }
    // A rename from a path changed meanwhile is a conflict like any other.
    let r = commit(json!([
        {"path": "old.txt", "hash": null, "base_version": 0},
        {"path": "new.txt", "hash": hash(&a), "base_version": 0, "from": "old.txt"}
    ]));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["conflicts"][0]["path"], "old.txt");
    let r = commit(json!([
        {"path": "old.txt", "hash": null, "base_version": 1},
        {"path": "new.txt", "hash": hash(&a), "base_version": 0, "from": "old.txt"}
    ]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["revision"], 2);
    let files: Vec<(String, bool)> = r.body["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["deleted"] == true,
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("b.txt".to_string(), false),
            ("new.txt".to_string(), false),
            ("old.txt".to_string(), true)
        ]
    );
    // Deleted only at the revision named.
    let delete = |revision: Value| {
        call(
            url,
            "POST",
            &format!("/api/projects/{p}/delete"),
            t,
            Some(json!({ "revision": revision })),
        )
    };
    assert_eq!(delete(json!(-1)).status, 400);
    let r = delete(json!(1));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains("it is at 2"),
        "{}",
        r.body
    );
    let (_, other, _) = user(url);
    let r = call(
        url,
        "POST",
        &format!("/api/projects/{p}/delete"),
        Some(&other),
        Some(json!({"revision": 2})),
    );
    assert_eq!(r.status, 404);
    assert_eq!(delete(json!(2)).status, 200);
    assert_eq!(
        call(url, "GET", &format!("/api/projects/{p}"), t, None).status,
        404
    );
    assert_eq!(delete(json!(2)).status, 404);
}

fn contract(url: &str) {
    answered();
    operations(url);
    auth_and_users(url);
    projects_and_scripts(url);
    file_sync(url);
    renames_and_guarded_deletes(url);
    hostile_requests(url);
    every_answer_is_documented(url);
    required_fields_are_documented(url);
}

/// The operation of the OpenAPI document that serves `method path`, if any.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    let parts: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .iter()
        .find_map(|(template, ops)| {
            let t: Vec<&str> = template.split('/').collect();
            let fits = t.len() == parts.len()
                && t.iter()
                    .zip(&parts)
                    .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()));
            fits.then(|| ops.get(method.to_ascii_lowercase()))?
        })
}

/// Every status the contract's requests were answered with is documented for its route.
fn every_answer_is_documented(url: &str) {
    let doc = call(url, "GET", "/api/openapi.json", None, None).body;
    let mut missing = Vec::new();
    for (method, path, status) in answered() {
        // Unknown routes and methods are answered by the fallbacks (404, 405).
        let Some(op) = operation(&doc, &method, &path) else {
            continue;
        };
        if op["responses"].get(status.to_string()).is_none() {
            missing.push(format!("{method} {path} answered {status}"));
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "undocumented answers:\n{}",
        missing.join("\n")
    );
}

/// The fields the document marks as required are those the server asks for, no more.
fn required_fields_are_documented(url: &str) {
    let doc = call(url, "GET", "/api/openapi.json", None, None).body;
    let (_, token, _) = user(url);
    let project = call(
        url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(json!({"name": unique("req")})),
    );
    let pid = project.body["data"]["id"].as_i64().unwrap();
    let script = call(
        url,
        "POST",
        &format!("/api/scripts/project/{pid}"),
        Some(&token),
        Some(json!({"name": "s", "content": "1"})),
    );
    let sid = script.body["data"]["id"].as_i64().unwrap();
    let schemas = &doc["components"]["schemas"];
    let mut checked = 0;
    for (template, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(r) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            else {
                continue;
            };
            let schema = &schemas[r.rsplit('/').next().unwrap()];
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let id = if template.contains("scripts/{id}") {
                sid
            } else {
                pid
            };
            let path = template.replace("{id}", &id.to_string());
            // Sign-ups and logins are tried with no token, everything else with one.
            let t = op.get("security").map(|_| token.as_str());
            let a = call(url, &method.to_ascii_uppercase(), &path, t, Some(json!({})));
            let named: Vec<&str> = a.body["details"]
                .as_array()
                .map(|d| d.iter().filter_map(|x| x["field"].as_str()).collect())
                .unwrap_or_default();
            let mut named = named;
            named.sort_unstable();
            let mut want = required.clone();
            want.sort_unstable();
            assert_eq!(named, want, "{method} {template}: {}", a.body);
            if !required.is_empty() {
                assert_eq!(a.status, 400, "{method} {template}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} request bodies checked");
}

#[test]
fn the_api_contract_on_sqlite() {
    let s = Server::start(None, &["--json-limit", "64K"]);
    contract(&s.url);
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn the_api_contract_on_postgres() {
    let s = Server::start(Some(&postgres()), &["--json-limit", "64K"]);
    contract(&s.url);
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn servers_sharing_postgres_share_sessions() {
    let db = postgres();
    let a = Server::start(Some(&db), &[]);
    let b = Server::start(Some(&db), &[]);
    let (_, token, id) = user(&a.url);
    // A token from one server works on the other (one secret, kept in the database) …
    let me = call(&b.url, "GET", "/api/auth/me", Some(&token), None);
    assert_eq!((me.status, me.body["user"]["id"].as_i64()), (200, Some(id)));
    // … and a logout on one ends it on both.
    assert_eq!(
        call(&b.url, "POST", "/api/auth/logout", Some(&token), None).status,
        200
    );
    assert_eq!(
        call(&a.url, "GET", "/api/auth/me", Some(&token), None).status,
        401
    );
}

#[test]
fn logins_are_rate_limited_per_client() {
    let s = Server::start(None, &["--rate-limit", "3"]);
    let body = json!({"username": "nobody", "password": "Wrong0ne!"});
    for _ in 0..3 {
        assert_eq!(
            call(&s.url, "POST", "/api/auth/login", None, Some(body.clone())).status,
            401
        );
    }
    let a = call(&s.url, "POST", "/api/auth/login", None, Some(body));
    assert_eq!(a.status, 429);
    let wait: u64 = a
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Other routes are not limited.
    assert_eq!(call(&s.url, "GET", "/health", None, None).status, 200);
}

#[test]
fn tokens_expire() {
    let s = Server::start(None, &["--token-ttl", "1s"]);
    let (_, token, _) = user(&s.url);
    assert_eq!(
        call(&s.url, "GET", "/api/auth/me", Some(&token), None).status,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let a = call(&s.url, "GET", "/api/auth/me", Some(&token), None);
    assert_eq!(a.status, 401);
}

#[test]
fn cors_allows_only_the_configured_origins() {
    let s = Server::start(None, &["--cors-origin", "https://app.example.com"]);
    let preflight = |origin: &str| {
        let r = common::server::client()
            .request(reqwest::Method::OPTIONS, format!("{}/api/projects", s.url))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .unwrap();
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        preflight("https://app.example.com").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(preflight("https://evil.example.com"), None);
}

#[test]
fn the_signing_secret_is_kept_and_a_short_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("s.db").display());
    let token = {
        let s = Server::start(Some(&db), &[]);
        user(&s.url).1
    };
    // A restarted server still accepts the tokens it signed.
    let s = Server::start(Some(&db), &[]);
    assert_eq!(
        call(&s.url, "GET", "/api/auth/me", Some(&token), None).status,
        200
    );
    let out = std::process::Command::new(common::BIN)
        .args(["server", "--listen", "127.0.0.1:0", "--database", &db])
        .env("VALYXO_SERVER_SECRET", "too-short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut s = Server::sqlite();
    assert_eq!(call(&s.url, "GET", "/health", None, None).status, 200);
    let (status, log) = s.terminate_with_log();
    assert!(status.success(), "{status:?}: {log}");
}

#[test]
fn a_damaged_database_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.db");
    std::fs::write(
        &file,
        "this is not SQLite, but it is long enough to look like a header",
    )
    .unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["server", "--listen", "127.0.0.1:0", "--database"])
        .arg(format!("sqlite:{}", file.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("file is not a database"), "{err}");
    // Nothing was written over it.
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .starts_with("this is not SQLite"));
}

#[test]
fn man_server_describes_every_option() {
    let out = std::process::Command::new(common::BIN)
        .args(["server", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let page = valyxo::manual::get("server").expect("the server page");
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !matches!(*w, "--help" | "--no-color"))
        .collect();
    assert!(flags.len() >= 10, "{help}");
    for f in flags {
        assert!(
            page.contains(&format!("`{f}")),
            "man server does not describe {f}"
        );
    }
}

// ---- No account can take the server down ----

/// Creates a project and a script in it for `token`; returns the script's id.
fn script(url: &str, token: &str, content: &str) -> i64 {
    let p = call(
        url,
        "POST",
        "/api/projects",
        Some(token),
        Some(json!({"name": unique("p")})),
    );
    assert_eq!(p.status, 201, "{}", p.body);
    let pid = p.body["data"]["id"].as_i64().unwrap();
    let s = call(
        url,
        "POST",
        &format!("/api/scripts/project/{pid}"),
        Some(token),
        Some(json!({"name": "s", "content": content, "language": "rhai"})),
    );
    assert_eq!(s.status, 201, "{}", s.body);
    s.body["data"]["id"].as_i64().unwrap()
}

fn execute(url: &str, token: &str, id: i64) -> Answer {
    call(
        url,
        "POST",
        &format!("/api/scripts/{id}/execute"),
        Some(token),
        None,
    )
}

#[test]
fn a_script_asking_for_10_to_the_12_bytes_gets_an_error_not_the_memory() {
    let mut s = Server::sqlite();
    let (_, token, _) = user(&s.url);
    // The 66-byte script of the report: a million characters, each replaced by all of them.
    let bomb = script(
        &s.url,
        &token,
        r#"let s="";s.pad(1000000,"x");s.replace("x",s);print(s.len);"#,
    );
    // The same at 30,000 characters (900 MB), and a thousand variables of 1 MiB each.
    let smaller = script(
        &s.url,
        &token,
        r#"let s="";s.pad(30000,"x");s.replace("x",s);print(s.len);"#,
    );
    let mut many = String::from(r#"let s = ""; s.pad(1000000, "x");"#);
    for i in 0..1000 {
        many.push_str(&format!("let v{i} = s + \"{i}\";\n"));
    }
    let many = script(&s.url, &token, &many);
    // Twice each: the stored script stays harmless.
    for id in [bomb, smaller, many, bomb, many] {
        let a = execute(&s.url, &token, id);
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["data"]["status"], "error", "{}", a.body);
        assert_eq!(a.body["data"]["output"], "", "{}", a.body);
        let why = a.body["data"]["error"].as_str().unwrap();
        assert!(
            why.contains("size limit") || why.contains("memory limit of 64 MiB"),
            "{why}"
        );
        assert!(s.alive(), "the server ended");
    }
    assert_eq!(call(&s.url, "GET", "/health", None, None).status, 200);
}

#[test]
fn executions_are_admitted_per_account_and_never_slow_other_routes() {
    let s = Server::start(
        None,
        &[
            "--script-workers",
            "1",
            "--script-limit",
            "3",
            "--script-per-account",
            "2",
            "--script-timeout",
            "1s",
        ],
    );
    let (_, token, _) = user(&s.url);
    let (_, other, _) = user(&s.url);
    let busy = script(&s.url, &token, "loop {}");
    let quick = script(&s.url, &other, "print(6 * 7);");
    let flood: Vec<_> = (0..30)
        .map(|_| {
            let (url, token) = (s.url.clone(), token.clone());
            std::thread::spawn(move || execute(&url, &token, busy))
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Meanwhile the rest of the server answers: health, a login, another account's script.
    assert_eq!(call(&s.url, "GET", "/health", None, None).status, 200);
    let me = call(&s.url, "GET", "/api/auth/me", Some(&other), None);
    assert_eq!(me.status, 200);
    let answers: Vec<Answer> = flood.into_iter().map(|t| t.join().unwrap()).collect();
    let ran = answers.iter().filter(|a| a.status == 200).count();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(ran + refused.len(), 30);
    assert!((1..=2).contains(&ran), "{ran} ran at once for one account");
    for a in &refused {
        assert!(a.header("retry-after").is_some());
        assert!(
            error(a).contains("already has 2 script executions under way"),
            "{}",
            a.body
        );
    }
    for a in answers.iter().filter(|a| a.status == 200) {
        assert_eq!(a.body["data"]["status"], "timeout");
    }
    // Once they are done, the account may run again, and the other account's script runs.
    let a = execute(&s.url, &other, quick);
    assert_eq!(
        (a.status, a.body["data"]["output"].as_str()),
        (200, Some("42\n"))
    );
}

#[test]
fn execution_history_is_bounded_and_stats_keep_counting() {
    history(None);
}

fn history(db: Option<&str>) {
    let s = Server::start(db, &["--execution-history", "3"]);
    let (_, token, _) = user(&s.url);
    let id = script(&s.url, &token, "print(1);");
    for _ in 0..5 {
        assert_eq!(execute(&s.url, &token, id).status, 200);
    }
    let h = call(
        &s.url,
        "GET",
        &format!("/api/scripts/{id}/executions"),
        Some(&token),
        None,
    );
    assert_eq!(h.body["data"].as_array().unwrap().len(), 3);
    let st = call(&s.url, "GET", "/api/users/stats", Some(&token), None);
    assert_eq!(st.body["stats"]["executions"], 5, "{}", st.body);
}

#[test]
fn logins_wait_for_a_hash_slot_and_all_succeed() {
    let s = Server::start(None, &["--hash-slots", "1"]);
    let (name, _, _) = user(&s.url);
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let (url, name) = (s.url.clone(), name.clone());
            std::thread::spawn(move || {
                call(
                    &url,
                    "POST",
                    "/api/auth/login",
                    None,
                    Some(json!({"username": name, "password": PASSWORD})),
                )
                .status
            })
        })
        .collect();
    for l in logins {
        assert_eq!(l.join().unwrap(), 200);
    }
}

/// Opens a connection that starts a PUT of `len` bytes, sends one byte and goes silent.
fn silent_upload(url: &str, token: &str, len: usize) -> std::net::TcpStream {
    use std::io::Write;
    let addr = url.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    let hash = "0".repeat(64);
    write!(
        c,
        "PUT /api/blobs/{hash} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\nx"
    )
    .unwrap();
    c
}

fn status_line(c: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn silent_uploads_cannot_hold_the_upload_slots() {
    let s = Server::start(None, &["--body-timeout", "1s"]);
    let (_, attacker, _) = user(&s.url);
    let (_, honest, _) = user(&s.url);
    let mut held: Vec<_> = (0..8)
        .map(|_| silent_upload(&s.url, &attacker, 1000))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Another account's upload goes through at once.
    assert_eq!(put_blob(&s.url, &honest, b"honest work"), 201);
    // The attacker got two slots; the rest were refused, and the two are dropped.
    let lines: Vec<String> = held.iter_mut().map(status_line).collect();
    let refused = lines.iter().filter(|l| l.contains(" 429 ")).count();
    let timed_out = lines.iter().filter(|l| l.contains(" 408 ")).count();
    assert_eq!((refused, timed_out), (6, 2), "{lines:?}");
}

#[test]
fn storage_has_a_quota_and_uncommitted_uploads_expire() {
    quota(None);
}

fn quota(db: Option<&str>) {
    let mut s = Server::start(db, &["--quota", "1K", "--upload-expiry", "1s"]);
    let (_, token, _) = user(&s.url);
    let limits = |s: &Server| call(&s.url, "GET", "/api/limits", Some(&token), None).body;
    assert_eq!(limits(&s)["data"]["quota"], 1024);
    // Committed content stays; uncommitted content expires.
    let kept = vec![b'k'; 300];
    assert_eq!(put_blob(&s.url, &token, &kept), 201);
    let p = call(
        &s.url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(json!({"name": unique("quota")})),
    );
    let pid = p.body["data"]["id"].as_i64().unwrap();
    let c = call(
        &s.url,
        "POST",
        &format!("/api/projects/{pid}/files/commit"),
        Some(&token),
        Some(json!({"changes": [{"path": "k", "hash": hash(&kept), "base_version": 0}]})),
    );
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(put_blob(&s.url, &token, &[b'a'; 600]), 201);
    let (status, body, _) = raw(
        "PUT",
        &format!("{}/api/blobs/{}", s.url, hash(&[b'b'; 600])),
        Some(&token),
        Some(("application/octet-stream", vec![b'b'; 600])),
    );
    assert_eq!(status, 507);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("storage is full: 900 bytes of its 1 KiB are used"),
        "{body}"
    );
    assert_eq!(limits(&s)["data"]["storage_used"], 900);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    // The collector runs at start (and every ten minutes).
    s.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while limits(&s)["data"]["storage_used"] != 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(limits(&s)["data"]["storage_used"], 300);
    let gone = raw(
        "GET",
        &format!("{}/api/blobs/{}", s.url, hash(&[b'a'; 600])),
        Some(&token),
        None,
    );
    assert_eq!(gone.0, 404);
    let still = raw(
        "GET",
        &format!("{}/api/blobs/{}", s.url, hash(&kept)),
        Some(&token),
        None,
    );
    assert_eq!((still.0, still.1), (200, kept));
}

#[test]
fn project_names_cannot_hold_what_would_harm_a_folder_or_a_terminal() {
    let s = Server::sqlite();
    let (_, token, _) = user(&s.url);
    for bad in [
        "red\u{1b}[31m",
        "tab\there",
        "two\nlines",
        "a/b",
        "back\\slash",
        "rtl\u{202e}gpj.exe",
        "..",
    ] {
        let a = call(
            &s.url,
            "POST",
            "/api/projects",
            Some(&token),
            Some(json!({ "name": bad })),
        );
        assert_eq!(a.status, 400, "{bad:?}: {}", a.body);
        assert_eq!(a.body["details"][0]["field"], "name");
    }
    let ok = call(
        &s.url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(json!({"name": "Café ☕ 2"})),
    );
    assert_eq!(ok.status, 201);
}

#[test]
fn sigterm_finishes_the_requests_under_way() {
    let mut s = Server::logged(&["--script-timeout", "5s"]);
    let (_, token, _) = user(&s.url);
    let id = script(
        &s.url,
        &token,
        "let t = timestamp(); while t.elapsed < 1.0 {} print(\"done\");",
    );
    let (url, t) = (s.url.clone(), token.clone());
    let running = std::thread::spawn(move || execute(&url, &t, id));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (status, log) = s.terminate_with_log();
    let a = running.join().unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.body["data"]["output"], "done\n", "{}", a.body);
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("\"msg\":\"stopped\""), "{log}");
}

#[test]
fn every_request_is_logged_off_the_request_path() {
    let mut s = Server::logged(&[]);
    for _ in 0..300 {
        assert_eq!(call(&s.url, "GET", "/health", None, None).status, 200);
    }
    let (status, log) = s.terminate_with_log();
    assert!(status.success());
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let requests = lines.iter().filter(|l| l["path"] == "/health").count();
    assert_eq!(requests, 300);
    let first = lines.iter().find(|l| l["path"] == "/health").unwrap();
    assert_eq!(first["status"], 200);
    assert_eq!(first["client"], "127.0.0.1");
    assert!(first["ms"].is_number() && first["time"].is_string());
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn quotas_and_histories_on_postgres() {
    quota(Some(&postgres()));
    history(Some(&postgres()));
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn a_postgres_server_stops_cleanly_on_sigterm_and_sigint() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut s = Server::start(Some(&postgres()), &[]);
        let (_, token, _) = user(&s.url);
        assert_eq!(
            call(&s.url, "GET", "/api/auth/me", Some(&token), None).status,
            200
        );
        s.signal(signal);
        let (status, log) = s.terminate_with_log();
        assert!(status.success(), "{status:?}\n{log}");
        assert!(log.contains("\"msg\":\"stopped\""), "{log}");
        assert!(!log.contains("panicked"), "{log}");
    }
}
