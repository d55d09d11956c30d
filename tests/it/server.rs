//! The account API of `valyxo server` (`man server`, the OpenAPI document), against a real
//! server on 127.0.0.1: on SQLite here, and on PostgreSQL in `.ci/run` (the ignored tests,
//! with VALYXO_TEST_POSTGRES naming the database).

use crate::common;

use common::server::{
    answered, call, client, new_project, put_file, raw, raw_with, session_token, unique, user,
    Answer, Server, PASSWORD,
};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// The PostgreSQL database of the ignored tests (VALYXO_TEST_POSTGRES, set by `.ci/run`).
pub(crate) fn postgres() -> String {
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
    // The session is checked in the same round trip as a handler's first query: a write
    // with the ended session is refused and leaves nothing, and a bad body under it is
    // answered as the ended session it is, not as the bad body.
    let name = unique("after-logout");
    let a = call(
        url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(json!({"name": name})),
    );
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(error(&a).contains("log in again"), "{}", a.body);
    let a = call(
        url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(json!({"name": "   "})),
    );
    assert_eq!(a.status, 401, "{}", a.body);
    let again = call(
        url,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": new_name, "password": "N3w-password"})),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    let fresh = again.body["token"].as_str().unwrap();
    let list = call(url, "GET", "/api/projects?limit=1000", Some(fresh), None);
    assert!(!list.body.to_string().contains(&name), "{}", list.body);
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
    // Only the tree as it is counts: a name that starts like a folder's is not in it, a
    // tombstone is no file, and a folder emptied by the same commit may become a file.
    let new = |path: &str| json!({"path": path, "hash": hash(&a), "base_version": 0});
    let r = commit(
        &token,
        json!([new("sr"), new("src0"), new("src-x/y"), new("bin")]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = commit(&token, json!([new("lib"), new("lib/x")]));
    assert_eq!(r.status, 400);
    assert_eq!(
        error(&r),
        "lib/x cannot be stored: lib is a file, not a directory"
    );
    assert_eq!(commit(&token, json!([new("é/x")])).status, 200);
    let r = commit(&token, json!([new("é")]));
    assert_eq!(
        (r.status, error(&r)),
        (400, "é cannot be stored: it is a directory, holding é/x")
    );
    let r = commit(&token, json!([new("é/x/deeper")]));
    assert_eq!(
        (r.status, error(&r)),
        (
            400,
            "é/x/deeper cannot be stored: é/x is a file, not a directory"
        )
    );
    let r = commit(
        &token,
        json!([
            {"path": "src/a.txt", "hash": null, "base_version": 1},
            new("src"),
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        call(url, "GET", &format!("/api/projects/{p}/files"), t, None).body["data"]["revision"],
        5
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
    // The answer names the files the commit changed (b.txt did not change).
    assert_eq!(
        files,
        [
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

/// A browser's request: these cookies and headers, and a JSON body.
fn browser(
    url: &str,
    method: &str,
    path: &str,
    cookies: &str,
    headers: &[(&str, String)],
    body: Option<Value>,
) -> Answer {
    let mut all = vec![("Cookie", cookies.to_string())];
    all.extend(headers.iter().cloned());
    let (status, data, headers) = raw_with(
        method,
        &format!("{url}{path}"),
        &all,
        body.map(|b| ("application/json", b.to_string().into_bytes())),
    );
    Answer {
        status,
        body: serde_json::from_slice(&data).unwrap_or(Value::Null),
        headers,
    }
}

/// The cookies an answer sets, as `name=value` with their attributes.
fn set_cookies(a: &Answer) -> Vec<String> {
    a.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// A cookie's value in an answer's Set-Cookie headers.
fn cookie_in(a: &Answer, name: &str) -> String {
    set_cookies(a)
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", set_cookies(a)))
        .to_string()
}

/// Sessions of the web pages: an HttpOnly cookie, a CSRF token on every request that is
/// not a GET, no request from another site's page, and logouts that end them.
fn web_sessions(url: &str) {
    let name = unique("web");
    let r = browser(
        url,
        "POST",
        "/api/web/register",
        "",
        &[],
        Some(
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.body.get("token").is_none(),
        "the token never reaches the page: {}",
        r.body
    );
    let cookies = set_cookies(&r);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("valyxo_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Secure"), "not over TLS: {session}");
    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("valyxo_csrf="))
        .unwrap();
    assert!(!csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"));
    let jar = format!(
        "valyxo_session={}; valyxo_csrf={}",
        cookie_in(&r, "valyxo_session"),
        cookie_in(&r, "valyxo_csrf")
    );
    let csrf = cookie_in(&r, "valyxo_csrf");
    // A GET needs the cookie alone.
    let me = browser(url, "GET", "/api/auth/me", &jar, &[], None);
    assert_eq!(
        (me.status, me.body["user"]["username"].as_str()),
        (200, Some(name.as_str()))
    );
    // Anything else needs the CSRF token too: missing, wrong or not hex is refused.
    let project = json!({"name": "from the web"});
    for token in [None, Some("0".repeat(64)), Some("not hex".to_string())] {
        let headers: Vec<(&str, String)> = token.into_iter().map(|t| ("X-CSRF-Token", t)).collect();
        let r = browser(
            url,
            "POST",
            "/api/projects",
            &jar,
            &headers,
            Some(project.clone()),
        );
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(error(&r), "Missing or wrong CSRF token: reload the page");
    }
    // Another session's token does not fit this one.
    let other = browser(
        url,
        "POST",
        "/api/web/login",
        "",
        &[],
        Some(json!({"username": name, "password": PASSWORD})),
    );
    assert_eq!(other.status, 200, "{}", other.body);
    let other_csrf = cookie_in(&other, "valyxo_csrf");
    assert_ne!(other_csrf, csrf);
    let r = browser(
        url,
        "POST",
        "/api/projects",
        &jar,
        &[("X-CSRF-Token", other_csrf)],
        Some(project.clone()),
    );
    assert_eq!(r.status, 403);
    let with = [("X-CSRF-Token", csrf.clone())];
    let r = browser(
        url,
        "POST",
        "/api/projects",
        &jar,
        &with,
        Some(project.clone()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // Another site's page is refused, even with the token.
    for hostile in [
        ("Origin", "http://evil.example".to_string()),
        ("Sec-Fetch-Site", "cross-site".to_string()),
    ] {
        let headers = [with[0].clone(), hostile.clone()];
        let r = browser(
            url,
            "POST",
            "/api/projects",
            &jar,
            &headers,
            Some(project.clone()),
        );
        assert_eq!(r.status, 403, "{hostile:?}");
        let r = browser(
            url,
            "POST",
            "/api/web/login",
            "",
            std::slice::from_ref(&hostile),
            Some(json!({"username": name, "password": PASSWORD})),
        );
        assert_eq!(r.status, 403, "{hostile:?}");
    }
    // The server's own origin passes.
    let host = url.trim_start_matches("http://").to_string();
    let r = browser(
        url,
        "POST",
        "/api/web/login",
        "",
        &[
            ("Origin", format!("http://{host}")),
            ("Sec-Fetch-Site", "same-origin".into()),
        ],
        Some(json!({"username": name, "password": PASSWORD})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The same failure as the API's for a wrong password or an unknown user.
    for who in [name.as_str(), "nobody-at-all"] {
        let r = browser(
            url,
            "POST",
            "/api/web/login",
            "",
            &[],
            Some(json!({"username": who, "password": "Wrong-pass1"})),
        );
        assert_eq!((r.status, error(&r)), (401, "Invalid username or password"));
        assert!(set_cookies(&r).is_empty());
    }
    // A bearer token needs no CSRF token (the CLI's requests).
    let (_, token, _) = user(url);
    let r = call(
        url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(project.clone()),
    );
    assert_eq!(r.status, 201);
    // Behind a proxy that asks for a password (HTTP Basic), the browser sends its
    // Authorization header with every request: the session cookie still names the user,
    // and still needs the CSRF token.
    let basic = ("Authorization", "Basic dXNlcjpwYXNz".to_string());
    let me = browser(
        url,
        "GET",
        "/api/auth/me",
        &jar,
        std::slice::from_ref(&basic),
        None,
    );
    assert_eq!(me.status, 200, "{}", me.body);
    let r = browser(
        url,
        "POST",
        "/api/projects",
        &jar,
        std::slice::from_ref(&basic),
        Some(project.clone()),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = browser(
        url,
        "POST",
        "/api/projects",
        &jar,
        &[basic.clone(), with[0].clone()],
        Some(project.clone()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // A bearer header is the bearer's, whatever the cookie says; without a cookie, another
    // scheme is refused as before.
    let r = browser(
        url,
        "GET",
        "/api/auth/me",
        &jar,
        &[("Authorization", "Bearer not-a-token".into())],
        None,
    );
    assert_eq!((r.status, error(&r)), (401, "Invalid token"));
    let r = browser(
        url,
        "GET",
        "/api/auth/me",
        "",
        std::slice::from_ref(&basic),
        None,
    );
    assert_eq!(
        (r.status, error(&r)),
        (401, "Malformed Authorization header: use 'Bearer TOKEN'")
    );
    // Logging out ends the session and clears both cookies.
    let r = browser(url, "POST", "/api/auth/logout", &jar, &with, None);
    assert_eq!(r.status, 200, "{}", r.body);
    for c in set_cookies(&r) {
        assert!(c.contains("Max-Age=0"), "{c}");
    }
    assert_eq!(
        browser(url, "GET", "/api/auth/me", &jar, &[], None).status,
        401
    );
    // Logging out everywhere ends every session of the account, the CLI's too.
    let cli = session_token(url, &name, PASSWORD);
    let web = browser(
        url,
        "POST",
        "/api/web/login",
        "",
        &[],
        Some(json!({"username": name, "password": PASSWORD})),
    );
    let jar = format!("valyxo_session={}", cookie_in(&web, "valyxo_session"));
    let with = [("X-CSRF-Token", cookie_in(&web, "valyxo_csrf"))];
    let r = browser(url, "POST", "/api/auth/logout-all", &jar, &with, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        call(url, "GET", "/api/auth/me", Some(&cli), None).status,
        401
    );
    assert_eq!(
        browser(url, "GET", "/api/auth/me", &jar, &[], None).status,
        401
    );
    // Logging in again from the same browser ends the session its cookie held.
    let login = |jar: &str| {
        let r = browser(
            url,
            "POST",
            "/api/web/login",
            jar,
            &[],
            Some(json!({"username": name, "password": PASSWORD})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        format!("valyxo_session={}", cookie_in(&r, "valyxo_session"))
    };
    let old = login("");
    let new = login(&old);
    assert_ne!(old, new);
    assert_eq!(
        browser(url, "GET", "/api/auth/me", &old, &[], None).status,
        401
    );
    assert_eq!(
        browser(url, "GET", "/api/auth/me", &new, &[], None).status,
        200
    );
    // A cookie that is no session of this server changes nothing.
    let third = login("valyxo_session=forged.token.here");
    assert_eq!(
        browser(url, "GET", "/api/auth/me", &new, &[], None).status,
        200
    );
    assert_eq!(
        browser(url, "GET", "/api/auth/me", &third, &[], None).status,
        200
    );
}

/// One file's content by its path, for clients that do not hash content (the web pages):
/// written with the version it was based on, read back byte for byte.
fn file_content(url: &str) {
    let (_, token, _) = user(url);
    let (_, other, _) = user(url);
    let t = Some(token.as_str());
    let p = new_project(url, &token, "content");
    let content = |path: &str| format!("{url}/api/projects/{p}/files/content?{path}");
    let put = |token: &str, query: &str, data: &[u8]| {
        let (status, body, _) = raw(
            "PUT",
            &content(query),
            Some(token),
            Some(("application/octet-stream", data.to_vec())),
        );
        (
            status,
            serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    let get = |token: &str, query: &str| {
        let (status, body, _) = raw("GET", &content(query), Some(token), None);
        (status, body)
    };
    let (status, v) = put(&token, "path=notes/a%20b.txt&base_version=0", b"hello");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"]["files"][0],
        json!({"path": "notes/a b.txt", "hash": blake3::hash(b"hello").to_hex().to_string(),
               "size": 5, "version": 1, "deleted": false})
    );
    assert_eq!(
        get(&token, "path=notes/a%20b.txt"),
        (200, b"hello".to_vec())
    );
    // Based on an old version: a conflict naming the server's, and nothing changes; the
    // body is not even stored (the account's storage does not grow).
    let used = |t: &str| {
        call(url, "GET", "/api/limits", Some(t), None).body["data"]["storage_used"]
            .as_u64()
            .unwrap()
    };
    let before = used(&token);
    let (status, v) = put(
        &token,
        "path=notes/a%20b.txt&base_version=0",
        &[7u8; 100_000],
    );
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["conflicts"][0]["server_version"], 1);
    assert_eq!(
        v["conflicts"][0]["server_hash"],
        blake3::hash(b"hello").to_hex().to_string()
    );
    assert_eq!(used(&token), before, "a refused save was stored");
    assert_eq!(get(&token, "path=notes/a%20b.txt").1, b"hello");
    let (status, v) = put(
        &token,
        "path=notes/a%20b.txt&base_version=1",
        b"hello again",
    );
    assert_eq!(
        (status, &v["data"]["files"][0]["version"]),
        (200, &json!(2))
    );
    // Any bytes, and none, come back as they went.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3 << 20).collect();
    assert_eq!(
        put(&token, "path=bin/all.dat&base_version=0", &bytes).0,
        200
    );
    assert_eq!(get(&token, "path=bin/all.dat"), (200, bytes.clone()));
    assert_eq!(put(&token, "path=empty&base_version=0", b"").0, 200);
    assert_eq!(get(&token, "path=empty"), (200, Vec::new()));
    // The listing sync reads has them, with the same hashes.
    let listed = call(url, "GET", &format!("/api/projects/{p}/files"), t, None);
    let all = listed.body["data"]["files"].as_array().unwrap().clone();
    let big = all.iter().find(|f| f["path"] == "bin/all.dat").unwrap();
    assert_eq!(big["hash"], blake3::hash(&bytes).to_hex().to_string());
    // A path a commit would refuse, a missing or bad base_version: refused, nothing kept.
    for query in [
        "path=../x&base_version=0",
        "base_version=0",
        "path=x",
        "path=x&base_version=-1",
        "path=empty/x&base_version=0",
    ] {
        let (status, v) = put(&token, query, b"refused");
        assert_eq!(status, 400, "{query}: {v}");
    }
    for query in ["path=../x", "", "path=/abs"] {
        assert_eq!(get(&token, query).0, 400, "{query}");
    }
    assert_eq!(get(&token, "path=no/such").0, 404);
    // Another account's project is not there, for reading or writing.
    assert_eq!(get(&other, "path=empty").0, 404);
    assert_eq!(put(&other, "path=x&base_version=0", b"intruder").0, 404);
    // A deleted file is gone.
    let r = call(
        url,
        "POST",
        &format!("/api/projects/{p}/files/commit"),
        t,
        Some(
            json!({"base_revision": 0, "changes": [{"path": "empty", "hash": null, "base_version": 1}]}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(&token, "path=empty").0, 404);
}

/// A folder (or the whole project) downloaded as one .zip: the files under it and nothing
/// else, byte for byte, named from the folder's parent; nobody else's, no path out.
fn folder_archives(url: &str) {
    let (_, token, _) = user(url);
    let (_, other, _) = user(url);
    let p = new_project(url, &token, "archive");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let files: [(&str, &[u8]); 6] = [
        ("src/app/main.rs", b"fn main() {}\n"),
        ("src/app/data.bin", &big),
        ("src/lib.rs", b"pub fn f() {}\n"),
        ("src/empty", b""),
        ("srcx/other.txt", b"not in src"),
        ("top.txt", b"top"),
    ];
    for (path, data) in files {
        let (status, body, _) = raw(
            "PUT",
            &format!("{url}/api/projects/{p}/files/content?path={path}&base_version=0"),
            Some(&token),
            Some(("application/octet-stream", data.to_vec())),
        );
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let archive = |token: &str, query: &str| {
        raw(
            "GET",
            &format!("{url}/api/projects/{p}/files/archive{query}"),
            Some(token),
            None,
        )
    };
    let unpack = |query: &str| -> Vec<(String, Vec<u8>)> {
        let (status, body, headers) = archive(&token, query);
        assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
        assert_eq!(headers["content-type"], "application/zip");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("a zip");
        (0..zip.len())
            .map(|i| {
                let mut f = zip.by_index(i).unwrap();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut data).unwrap();
                (f.name().unwrap().to_string(), data)
            })
            .collect()
    };
    let want = |names: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> {
        names
            .iter()
            .map(|(name, path)| {
                let data = files.iter().find(|(p, _)| p == path).unwrap().1;
                (name.to_string(), data.to_vec())
            })
            .collect()
    };
    let src = want(&[
        ("src/app/data.bin", "src/app/data.bin"),
        ("src/app/main.rs", "src/app/main.rs"),
        ("src/empty", "src/empty"),
        ("src/lib.rs", "src/lib.rs"),
    ]);
    assert!(unpack("?path=src") == src, "the archive of src differs");
    assert!(
        unpack("?path=src/") == src,
        "a trailing / changed the archive"
    );
    let app = want(&[
        ("app/data.bin", "src/app/data.bin"),
        ("app/main.rs", "src/app/main.rs"),
    ]);
    assert!(
        unpack("?path=src/app") == app,
        "the archive of src/app differs"
    );
    let all: Vec<String> = unpack("").into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        all,
        [
            "src/app/data.bin",
            "src/app/main.rs",
            "src/empty",
            "src/lib.rs",
            "srcx/other.txt",
            "top.txt"
        ]
    );
    // A deleted file is not in it.
    let r = call(
        url,
        "POST",
        &format!("/api/projects/{p}/files/commit"),
        Some(&token),
        Some(json!({"base_revision": 0,
                    "changes": [{"path": "src/lib.rs", "hash": null, "base_version": 1}]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<String> = unpack("?path=src").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["src/app/data.bin", "src/app/main.rs", "src/empty"]);
    // No such folder, a file, a path out, another account's project: refused.
    assert_eq!(archive(&token, "?path=nope").0, 404);
    assert_eq!(archive(&token, "?path=top.txt").0, 404);
    for bad in ["?path=../src", "?path=/src", "?path=src//app", "?path=."] {
        assert_eq!(archive(&token, bad).0, 400, "{bad}");
    }
    assert_eq!(archive(&other, "?path=src").0, 404);
    assert_eq!(archive(&other, "").0, 404);
}

/// A script saved with the version it was read at: a save based on a version gone is
/// refused (409) and changes nothing; a save without one replaces, as before; every save
/// makes the version later, even several within one millisecond.
fn script_saves_carry_their_version(url: &str) {
    let (_, token, _) = user(url);
    let t = Some(token.as_str());
    let id = script(url, &token, "1");
    let read = || call(url, "GET", &format!("/api/scripts/{id}"), t, None).body["data"].clone();
    let put = |content: &str, base: Option<&str>| {
        let mut body = json!({"name": "s", "content": content});
        if let Some(b) = base {
            body["base_updated_at"] = json!(b);
        }
        call(url, "PUT", &format!("/api/scripts/{id}"), t, Some(body))
    };
    let v1 = read()["updated_at"].as_str().unwrap().to_string();
    let r = put("2", Some(&v1));
    assert_eq!(r.status, 200, "{}", r.body);
    let v2 = r.body["data"]["updated_at"].as_str().unwrap().to_string();
    assert!(v2 > v1, "{v2} after {v1}");
    assert_eq!(read()["updated_at"], v2.as_str());
    // Based on v1 again (another tab): refused, nothing changes.
    let r = put("3 from the other tab", Some(&v1));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains(&v2),
        "{}",
        r.body
    );
    assert_eq!(read()["content"], "2");
    // Without a version: replaces (the CLI's saves, and "save mine over theirs").
    let r = put("4", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(read()["content"], "4");
    // Saves in quick succession each get a later version.
    let mut last = read()["updated_at"].as_str().unwrap().to_string();
    for n in 0..20 {
        let r = put(&format!("quick {n}"), Some(&last));
        assert_eq!(r.status, 200, "{}", r.body);
        let now = r.body["data"]["updated_at"].as_str().unwrap().to_string();
        assert!(now > last, "{now} after {last}");
        last = now;
    }
    for bad in [json!(5), json!(["x"])] {
        let r = call(
            url,
            "PUT",
            &format!("/api/scripts/{id}"),
            t,
            Some(json!({"name": "s", "content": "x", "base_updated_at": bad})),
        );
        assert_eq!(r.status, 400, "{}", r.body);
    }
    assert_eq!(read()["content"], "quick 19");
    // Saves at once, without a version (the CLI's): each still gets a version of its own,
    // so a tab that holds one version holds one text (on PostgreSQL two transactions read
    // the same version before either wrote).
    let stamps: Vec<(String, String)> = std::thread::scope(|scope| {
        let saves: Vec<_> = (0..12)
            .map(|n| {
                let put = &put;
                scope.spawn(move || {
                    let r = put(&format!("at once {n}"), None);
                    assert_eq!(r.status, 200, "{}", r.body);
                    (
                        r.body["data"]["updated_at"].as_str().unwrap().to_string(),
                        format!("at once {n}"),
                    )
                })
            })
            .collect();
        saves.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let mut versions: Vec<&str> = stamps.iter().map(|(v, _)| v.as_str()).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), stamps.len(), "{stamps:?}");
    // The latest version is the text held.
    let latest = stamps.iter().max().unwrap();
    assert_eq!(read()["updated_at"], latest.0.as_str());
    assert_eq!(read()["content"], latest.1.as_str());
}

/// The theme of the account's web pages: one of the built-in ten, kept with the account.
fn themes(url: &str) {
    let (_, token, _) = user(url);
    let (_, other, _) = user(url);
    let t = Some(token.as_str());
    let r = call(url, "GET", "/api/users/theme", t, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["theme"], "");
    let names: Vec<&str> = r.body["data"]["themes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(
        names.contains(&"nord") && names.contains(&"light"),
        "{names:?}"
    );
    for bad in [
        json!({"theme": "nope"}),
        json!({"theme": ""}),
        json!({}),
        json!({"theme": 7}),
    ] {
        let r = call(url, "PUT", "/api/users/theme", t, Some(bad.clone()));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = call(
        url,
        "PUT",
        "/api/users/theme",
        t,
        Some(json!({"theme": "nord"})),
    );
    assert_eq!((r.status, &r.body["data"]["theme"]), (200, &json!("nord")));
    assert_eq!(
        call(url, "GET", "/api/users/theme", t, None).body["data"]["theme"],
        "nord"
    );
    assert_eq!(
        call(url, "GET", "/api/users/theme", Some(&other), None).body["data"]["theme"],
        ""
    );
}

/// Text highlighted for the web editor: by the file's name, with offsets in UTF-16 units.
fn highlighting(url: &str) {
    let (_, token, _) = user(url);
    let t = Some(token.as_str());
    let text = "let s = \"😀é\";\nfn f() {}";
    let r = call(
        url,
        "POST",
        "/api/highlight",
        t,
        Some(json!({"path": "a.rs", "text": text})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["language"], "Rust");
    let lines = r.body["data"]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    // The string's closing quote is at unit 12: after `let s = "` (9), the emoji (two
    // UTF-16 units, four bytes) and é (one unit, two bytes).
    let quote_at = "let s = \"😀é".encode_utf16().count() as u64;
    assert_eq!(quote_at, 12);
    assert!(
        lines[0]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p[0].as_u64() == Some(quote_at) && p[1].as_u64() == Some(quote_at + 1)),
        "{}",
        r.body
    );
    let plain = call(
        url,
        "POST",
        "/api/highlight",
        t,
        Some(json!({"path": "notes.txt", "text": "just text"})),
    );
    assert_eq!(plain.body["data"]["lines"], json!([[]]));
    for bad in [
        json!({"path": "a.rs"}),
        json!({"path": 1, "text": ""}),
        json!({"text": "x"}),
    ] {
        let r = call(url, "POST", "/api/highlight", t, Some(bad.clone()));
        assert_eq!(r.status, 400, "{bad}");
    }
    assert_eq!(
        call(
            url,
            "POST",
            "/api/highlight",
            None,
            Some(json!({"path": "a", "text": ""}))
        )
        .status,
        401
    );
}

fn contract(url: &str) {
    answered();
    operations(url);
    auth_and_users(url);
    projects_and_scripts(url);
    file_sync(url);
    renames_and_guarded_deletes(url);
    web_sessions(url);
    file_content(url);
    folder_archives(url);
    script_saves_carry_their_version(url);
    themes(url);
    highlighting(url);
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

/// The web pages and their assets answer what they do not serve as the API does: in JSON
/// words, never the framework's plain text or an empty body.
#[test]
fn pages_and_assets_refuse_odd_requests_in_json() {
    let s = Server::start(None, &[]);
    let cases = [
        ("GET", "/assets/%FF", 404),
        ("GET", "/assets/%C3%28.js", 404),
        ("POST", "/assets/style.css", 405),
        ("DELETE", "/", 405),
        ("PUT", "/login", 405),
        ("POST", "/dashboard", 405),
    ];
    for (method, path, status) in cases {
        let (got, body, h) = raw(method, &format!("{}{path}", s.url), None, None);
        assert_eq!(got, status, "{method} {path}");
        assert_eq!(
            h.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {path}"
        );
        let v: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{method} {path}: {}", String::from_utf8_lossy(&body)));
        assert_eq!(v["success"], false, "{method} {path}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
}

/// The web pages: embedded, under a policy that runs only the server's own scripts, never
/// kept by the browser; their assets versioned by content hash, kept for good under that
/// version and revalidated otherwise, and compressed for browsers that accept it.
#[test]
fn web_pages_are_embedded_with_their_policy_and_cached_by_content_hash() {
    let s = Server::start(None, &[]);
    let mut assets = std::collections::BTreeSet::new();
    let inline = regex::Regex::new(r"<script(?:\s+[^>]*)?>\s*[^<\s]").unwrap();
    let handler = regex::Regex::new(r"\son[a-z]+=").unwrap();
    let link = regex::Regex::new(r"/assets/([a-z]+\.(?:css|js|svg))\?v=([0-9a-f]{16})").unwrap();
    for page in ["/", "/login", "/register", "/dashboard", "/project"] {
        let (status, body, h) = raw("GET", &format!("{}{page}", s.url), None, None);
        assert_eq!(status, 200, "{page}");
        let html = String::from_utf8(body).unwrap();
        let header = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(header("content-type"), "text/html; charset=utf-8");
        assert_eq!(header("cache-control"), "no-store", "{page}");
        let policy = header("content-security-policy");
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe"),
            "{policy}"
        );
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        // No script of the page's own: every one is a file the policy allows.
        assert!(!inline.is_match(&html), "{page} has an inline script");
        assert!(
            !handler.is_match(&html),
            "{page} has an inline event handler"
        );
        assert!(!html.contains("{{"), "{page}: a placeholder left: {html}");
        for c in link.captures_iter(&html) {
            assets.insert((c[1].to_string(), c[2].to_string()));
        }
    }
    assert!(assets.iter().any(|(n, _)| n == "style.css"), "{assets:?}");
    assert!(
        assets.iter().any(|(n, _)| n == "dashboard.js"),
        "{assets:?}"
    );
    for (name, hash) in &assets {
        let url = format!("{}/assets/{name}", s.url);
        let (status, body, h) = raw("GET", &format!("{url}?v={hash}"), None, None);
        assert_eq!(status, 200, "{name}");
        assert_eq!(h["etag"], format!("\"{hash}\"").as_str());
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(
            blake3::hash(&body).to_hex()[..16],
            hash[..],
            "the version is the content's hash"
        );
        // Another version, or none, is checked again each time.
        for other in [String::new(), "?v=0000000000000000".into()] {
            let (_, _, h) = raw("GET", &format!("{url}{other}"), None, None);
            assert_eq!(h["cache-control"], "no-cache", "{name}{other}");
        }
        let seen = [("If-None-Match", format!("\"{hash}\""))];
        let (status, empty, _) = raw_with("GET", &url, &seen, None);
        assert_eq!((status, empty.len()), (304, 0), "{name}");
        let gzip = [("Accept-Encoding", "gzip".to_string())];
        let (status, packed, h) = raw_with("GET", &url, &gzip, None);
        assert_eq!(
            (status, h["content-encoding"].to_str().unwrap()),
            (200, "gzip"),
            "{name}"
        );
        assert!(
            packed.len() < body.len(),
            "{name}: {} bytes packed",
            packed.len()
        );
    }
    // The themes' sheet has each of the ten.
    let (_, css, _) = raw("GET", &format!("{}/assets/themes.css", s.url), None, None);
    let css = String::from_utf8(css).unwrap();
    for name in valyxo::theme::builtin_names() {
        assert!(
            css.contains(&format!("html[data-theme=\"{name}\"]")),
            "{name}"
        );
    }
    assert!(css.matches("--bg: #").count() >= 10, "{css}");
    // The module the page scripts import is served too.
    assert_eq!(
        raw("GET", &format!("{}/assets/api.js", s.url), None, None).0,
        200
    );
    for missing in [
        "/assets/nope.js",
        "/assets/..%2FCargo.toml",
        "/assets/",
        "/dashboard/x",
    ] {
        let (status, _, _) = raw("GET", &format!("{}{missing}", s.url), None, None);
        assert_eq!(status, 404, "{missing}");
    }
}

/// Behind a trusted proxy that says the browser came over TLS, the cookies are `Secure`;
/// an untrusted client saying so is not believed.
#[test]
fn the_session_cookie_is_secure_behind_a_trusted_tls_proxy() {
    let login = |url: &str, name: &str, headers: &[(&str, String)]| {
        let (status, _, h) = raw_with(
            "POST",
            &format!("{url}/api/web/login"),
            headers,
            Some((
                "application/json",
                json!({"username": name, "password": PASSWORD})
                    .to_string()
                    .into_bytes(),
            )),
        );
        assert_eq!(status, 200);
        h.get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let https = [("X-Forwarded-Proto", "https".to_string())];
    let trusting = Server::start(None, &["--trusted-proxy", "127.0.0.1"]);
    let (name, _, _) = user(&trusting.url);
    let cookies = login(&trusting.url, &name, &https);
    assert_eq!(cookies.len(), 2);
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
    // Over TLS the names carry __Host- (the browser takes them only from this host, so a
    // sibling subdomain cannot plant a session), and a plain-named cookie is not taken.
    assert!(
        cookies.iter().all(|c| c.starts_with("__Host-valyxo_")),
        "{cookies:?}"
    );
    let value = |name: &str| {
        cookies
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string()
    };
    let (session, csrf) = (value("__Host-valyxo_session"), value("__Host-valyxo_csrf"));
    let me = |cookie: String| {
        let headers = [https[0].clone(), ("Cookie", cookie)];
        raw_with(
            "GET",
            &format!("{}/api/auth/me", trusting.url),
            &headers,
            None,
        )
        .0
    };
    assert_eq!(me(format!("__Host-valyxo_session={session}")), 200);
    assert_eq!(me(format!("valyxo_session={session}")), 401);
    let create = |csrf: &str| {
        let headers = [
            https[0].clone(),
            ("Cookie", format!("__Host-valyxo_session={session}")),
            ("X-CSRF-Token", csrf.to_string()),
        ];
        let body = json!({"name": "over TLS"}).to_string().into_bytes();
        let url = format!("{}/api/projects", trusting.url);
        raw_with("POST", &url, &headers, Some(("application/json", body))).0
    };
    assert_eq!(create(&csrf), 201);
    assert_eq!(create(""), 403);
    assert!(login(&trusting.url, &name, &[])
        .iter()
        .all(|c| !c.contains("Secure")));
    let plain = Server::start(None, &[]);
    let (name, _, _) = user(&plain.url);
    assert!(login(&plain.url, &name, &https)
        .iter()
        .all(|c| !c.contains("Secure")));
}

/// Highlighting a large text costs the server a while: one account has two under way at a
/// time (a page and one other), and another asked meanwhile is told to come back (429),
/// not queued.
#[test]
fn one_account_highlights_two_texts_at_a_time() {
    let s = Server::start(None, &[]);
    let (_, token, _) = user(&s.url);
    let text: String = (0..2000)
        .map(|i| format!("    let s{i} = \"{i}\" + x; // {i}\n"))
        .collect();
    let body = json!({"path": "big.rs", "text": text});
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..3)
            .map(|i| {
                let (url, token, body) = (&s.url, &token, body.clone());
                scope.spawn(move || {
                    // The third starts once the first two are surely under way.
                    let wait = if i == 2 { 150 } else { 0 };
                    std::thread::sleep(std::time::Duration::from_millis(wait));
                    call(url, "POST", "/api/highlight", Some(token), Some(body)).status
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(statuses, [200, 200, 429]);
    // Once done, the next one goes through.
    let r = call(&s.url, "POST", "/api/highlight", Some(&token), Some(body));
    assert_eq!(r.status, 200);
}

/// An archive that a client takes slowly (or not at all) holds a thread of the server's
/// blocking pool, which every request's database work shares: archives at once are bounded
/// well below that pool (two an account, eight in all), so held archives cannot stall the
/// server; one whose client went away gives its place back.
#[test]
fn archives_held_by_slow_clients_are_bounded_and_leave_the_server_answering() {
    use std::io::{Read, Write};
    let s = Server::start(None, &[]);
    let addr = s.url.trim_start_matches("http://").to_string();
    // Incompressible, and larger than the sockets' buffers: an archive not read stays
    // under way.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..16 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let accounts: Vec<(String, i64)> = (0..5)
        .map(|_| {
            let (_, token, _) = user(&s.url);
            let p = new_project(&s.url, &token, "held");
            let (status, body, _) = raw(
                "PUT",
                &format!(
                    "{}/api/projects/{p}/files/content?path=big.bin&base_version=0",
                    s.url
                ),
                Some(&token),
                Some(("application/octet-stream", big.clone())),
            );
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            (token, p)
        })
        .collect();
    // An archive asked for and not read: its status line.
    let hold = |token: &str, p: i64| -> (std::net::TcpStream, String) {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            c,
            "GET /api/projects/{p}/files/archive HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n") {
            c.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        (c, String::from_utf8_lossy(&head).trim().to_string())
    };
    let mut held = Vec::new();
    for (token, p) in &accounts[..4] {
        for _ in 0..2 {
            let (c, status) = hold(token, *p);
            assert_eq!(status, "HTTP/1.1 200 OK");
            held.push(c);
        }
    }
    let archive = |(token, p): &(String, i64)| {
        raw(
            "GET",
            &format!("{}/api/projects/{p}/files/archive", s.url),
            Some(token),
            None,
        )
    };
    let (status, body, headers) = archive(&accounts[0]);
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains_key("retry-after"));
    let (status, body, _) = archive(&accounts[4]);
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("busy"));
    // The rest of the server answers meanwhile, a file's download too.
    let (token, p) = &accounts[4];
    let r = call(
        &s.url,
        "GET",
        &format!("/api/projects/{p}/files"),
        Some(token),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (status, body, _) = raw(
        "GET",
        &format!("{}/api/projects/{p}/files/content?path=big.bin", s.url),
        Some(token),
        None,
    );
    assert_eq!((status, body.len()), (200, big.len()));
    // Clients that went away give their places back.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, body, _) = archive(&accounts[4]);
        if status == 200 {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("a zip");
            let mut data = Vec::new();
            zip.by_name("big.bin")
                .unwrap()
                .read_to_end(&mut data)
                .unwrap();
            assert!(data == big, "the archive's content differs");
            break;
        }
        assert_eq!(status, 429);
        assert!(
            std::time::Instant::now() < deadline,
            "the archives of clients that left still hold their places"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// An edit of a highlight session answers the colours of the lines it changed, and the
/// page's copy of every line's colours, patched with them, is what a whole highlight of
/// the new text gives: also when the edit changes how the lines below it read (a comment
/// opened above them, a string left open), when lines go, and when many come at once.
#[test]
fn highlight_edits_colour_as_a_whole_highlight_does() {
    let s = Server::start(None, &[]);
    let (_, mine, _) = user(&s.url);
    let (_, theirs, _) = user(&s.url);
    let post =
        |token: &str, body: Value| call(&s.url, "POST", "/api/highlight", Some(token), Some(body));
    let mut lines: Vec<String> = (0..400)
        .map(|i| match i % 4 {
            0 => format!("fn f{i}(x: u32) -> u32 {{"),
            1 => format!("    let s = \"é{i}😀\"; // note {i}"),
            2 => "    x + 1 /* short */".to_string(),
            _ => "}".to_string(),
        })
        .collect();
    let whole = |token: &str, lines: &[String]| {
        let r = post(token, json!({"path": "a.rs", "text": lines.join("\n")}));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["data"].clone()
    };
    let first = whole(&mine, &lines);
    assert_eq!(first["from"], 0);
    assert_eq!(first["revision"], 1);
    let session = first["session"].as_str().unwrap().to_string();
    let mut shown: Vec<Value> = first["lines"].as_array().unwrap().clone();
    assert_eq!(shown.len(), 400);
    let mut revision = 1;
    // (from, removed, new lines)
    let paste: Vec<String> = (0..150)
        .map(|i| format!("const C{i}: &str = \"{i}\";"))
        .collect();
    let edits: Vec<(usize, usize, Vec<String>)> = vec![
        (1, 1, vec!["    let s = \"é1😀\"; // noted".into()]),
        (10, 0, vec!["/* opened".into()]),
        (200, 1, vec!["   closed */ let t = 1;".into()]),
        (250, 1, vec!["    let open = \"no end".into()]),
        (250, 1, vec!["    let open = \"an end\";".into()]),
        (20, 120, vec![]),
        (5, 2, paste),
        (0, 0, vec!["#![doc = \"x".into(), "\"]".into()]),
        (420, 8, vec!["// the end".into(), String::new()]),
    ];
    for (from, removed, new) in edits {
        let r = post(
            &mine,
            json!({"path": "a.rs", "session": session, "revision": revision,
                   "from": from, "removed": removed, "lines": new}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let d = &r.body["data"];
        revision += 1;
        assert_eq!(d["revision"], revision);
        assert_eq!(d["session"], session.as_str());
        assert_eq!(d["from"], from);
        let parts = d["lines"].as_array().unwrap();
        assert!(parts.len() >= new.len(), "{from}: the new lines at least");
        lines.splice(from..from + removed, new.clone());
        shown.splice(from..from + removed, new.iter().map(|_| Value::Null));
        for (k, p) in parts.iter().enumerate() {
            shown[from + k] = p.clone();
        }
        // Highlighted whole by another account: its own session, the same colours.
        let expected = whole(&theirs, &lines);
        assert_eq!(
            &json!(shown),
            &expected["lines"],
            "after the edit at {from}"
        );
        assert_eq!(d["language"], "Rust");
    }
    // A character typed in a long file re-colours a few lines, not the rest.
    let typed = format!("{} ", lines[300]);
    let r = post(
        &mine,
        json!({"path": "a.rs", "session": session, "revision": revision,
               "from": 300, "removed": 1, "lines": [typed]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let n = r.body["data"]["lines"].as_array().unwrap().len();
    assert!((1..=40).contains(&n), "{n} lines re-coloured");
    revision += 1;

    // A revision that is not the session's, a session not known, another account's
    // session: refused with the code that says to send the whole text.
    let edit = |revision: u64, session: &str| {
        json!({"path": "a.rs", "session": session, "revision": revision,
               "from": 0, "removed": 0, "lines": ["x"]})
    };
    let lost = |r: &Answer| {
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.body["code"], "highlight_session_lost", "{}", r.body);
        assert_eq!(r.body["success"], false);
    };
    lost(&post(&mine, edit(revision - 1, &session)));
    lost(&post(&mine, edit(revision + 1, &session)));
    lost(&post(
        &mine,
        edit(revision, "0123456789abcdef0123456789abcdef"),
    ));
    lost(&post(&theirs, edit(revision, &session)));
    // Another file's path: its language may differ.
    let mut other = edit(revision, &session);
    other["path"] = json!("a.py");
    lost(&post(&mine, other));
    // None of that moved the session on... but the other path ended it: a new one.
    let again = whole(&mine, &lines);
    let session = again["session"].as_str().unwrap().to_string();
    assert_eq!(post(&mine, edit(1, &session)).status, 200);
    let revision = 2;

    // Limits: a range outside the text and lines with breaks are refused (400), a text
    // over 512 KiB too (413), whole or grown by an edit; the session stays as it was.
    for (from, removed, new) in [
        (lines.len() + 2, 0, json!([])),
        (0, lines.len() + 2, json!([])),
        (0, 0, json!(["a\nb"])),
        (0, 0, json!("x")),
    ] {
        let r = post(
            &mine,
            json!({"path": "a.rs", "session": session, "revision": revision,
                   "from": from, "removed": removed, "lines": new}),
        );
        assert_eq!(r.status, 400, "{from} {removed}: {}", r.body);
    }
    let big = "x".repeat(512 * 1024 + 1);
    let r = post(&mine, json!({"path": "a.rs", "text": big}));
    assert_eq!(r.status, 413, "{}", r.body);
    let r = post(
        &mine,
        json!({"path": "a.rs", "session": session, "revision": revision,
               "from": 0, "removed": 0, "lines": [big[..512 * 1024 - 10].to_string()]}),
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(post(&mine, edit(revision, &session)).status, 200);
    let r = post(
        &mine,
        json!({"path": "a.rs", "session": session, "text": "x"}),
    );
    assert_eq!(r.status, 400, "a text and a session at once");

    // An account keeps a few sessions: the least recently used goes.
    let sessions: Vec<String> = (0..4)
        .map(|_| {
            whole(&mine, &lines[..3])["session"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    lost(&post(&mine, edit(revision + 1, &session)));
    for id in sessions {
        assert_eq!(post(&mine, edit(1, &id)).status, 200);
    }

    // A theme chosen meanwhile: the session's colours are another theme's.
    let id = whole(&mine, &lines[..3])["session"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(
        &s.url,
        "PUT",
        "/api/users/theme",
        Some(&mine),
        Some(json!({"theme": "nord"})),
    );
    assert_eq!(r.status, 200);
    lost(&post(&mine, edit(1, &id)));
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
    use std::time::{Duration, Instant};
    let s = Server::start(None, &["--token-ttl", "3s"]);
    let start = Instant::now();
    let (_, token, _) = user(&s.url);
    let first = call(&s.url, "GET", "/api/auth/me", Some(&token), None).status;
    // Valid while young: checked only when the machine was quick enough that the token
    // is surely not past its three seconds yet (a loaded machine may take that long to
    // register), so the test says nothing false either way.
    if start.elapsed() < Duration::from_secs(2) {
        assert_eq!(first, 200);
    }
    // Past its lifetime (expiry is kept in whole seconds): refused.
    std::thread::sleep(
        (start + Duration::from_millis(4100)).saturating_duration_since(Instant::now()),
    );
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
    // Time enough that the memory limit, not the clock, stops them, however busy the
    // machine running the tests is.
    let mut s = Server::start(None, &["--script-timeout", "30s"]);
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
fn a_path_that_is_not_utf8_text_is_refused_not_replaced() {
    // `%FF` and `%FE` are no text: decoded with replacement characters, both named the
    // file "\u{FFFD}", and a save of one overwrote the other's.
    let s = Server::start(None, &[]);
    let (_, token, _) = user(&s.url);
    let p = new_project(&s.url, &token, "bytes");
    let at = |route: &str, query: &str| format!("{}/api/projects/{p}/files/{route}?{query}", s.url);
    let body = || Some(("application/octet-stream", b"x".to_vec()));
    for (method, url) in [
        ("PUT", at("content", "path=%FF&base_version=0")),
        ("PUT", at("content", "path=dir/%C3%28.txt&base_version=0")),
        ("GET", at("content", "path=%FE")),
        ("GET", at("archive", "path=%FF")),
    ] {
        let (status, got, _) = raw(method, &url, Some(&token), body());
        let v: Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(
            (status, &v["details"][0]["field"]),
            (400, &json!("path")),
            "{url}: {v}"
        );
    }
    let files = call(
        &s.url,
        "GET",
        &format!("/api/projects/{p}/files"),
        Some(&token),
        None,
    );
    assert_eq!(files.body["data"]["files"], json!([]));
    // A replacement character sent as text is a name like any other.
    assert_eq!(put_file(&s.url, &token, p, "\u{FFFD}", b"x", 0), 200);
}

#[test]
fn a_save_by_path_whose_session_ended_while_it_arrived_changes_nothing() {
    // A save's session is checked before its body is read; a body takes long to arrive,
    // and a logout (or a password change signing the session out) may land meanwhile.
    use std::io::Write;
    let s = Server::start(None, &["--uploads-per-account", "1"]);
    let (name, token, _) = user(&s.url);
    let p = new_project(&s.url, &token, "late");
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        c,
        "PUT /api/projects/{p}/files/content?path=late.txt&base_version=0 HTTP/1.1\r\n\
         Host: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\nhello"
    )
    .unwrap();
    c.flush().unwrap();
    // Once the account's one upload slot is taken, the save is past its session's check.
    assert!(eventually(|| put_file(
        &s.url,
        &token,
        p,
        "other.txt",
        b"x",
        0
    ) == 429));
    let out = call(&s.url, "POST", "/api/auth/logout", Some(&token), None);
    assert_eq!(out.status, 200);
    c.write_all(b"world").unwrap();
    let status = status_line(&mut c);
    assert!(status.contains(" 401 "), "{status}");
    let again = call(
        &s.url,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": name, "password": PASSWORD})),
    );
    let token = again.body["token"].as_str().unwrap().to_string();
    let files = call(
        &s.url,
        "GET",
        &format!("/api/projects/{p}/files"),
        Some(&token),
        None,
    );
    assert_eq!(files.body["data"]["files"], json!([]), "{}", files.body);
}

#[test]
fn requests_without_an_account_carry_small_bodies_only() {
    // Login and register hold their body until a password hash slot is free; none needs
    // more than a few KiB, and nobody's account bounds how many arrive at once.
    let s = Server::start(None, &[]);
    let (name, _, _) = user(&s.url);
    let padded = |v: Value| format!("{v}{}", " ".repeat(20_000)).into_bytes();
    for (path, body) in [
        (
            "/api/auth/login",
            json!({"username": name, "password": PASSWORD}),
        ),
        (
            "/api/auth/register",
            json!({"username": unique("pad"), "email": "pad@example.com", "password": PASSWORD}),
        ),
    ] {
        let url = format!("{}{path}", s.url);
        let (status, got, _) = raw("POST", &url, None, Some(("application/json", padded(body))));
        let v: Value = serde_json::from_slice(&got).unwrap();
        assert_eq!((status, &v["limit"]), (413, &json!(16384)), "{path}: {v}");
    }
    // The largest fields a login takes fit.
    let long = json!({"username": "x".repeat(300), "password": "P4ss".repeat(256)});
    let a = call(&s.url, "POST", "/api/auth/login", None, Some(long));
    assert_eq!(a.status, 401);
}

/// Whether the server has answered on `c` (or closed it), without waiting.
fn server_answered(c: &std::net::TcpStream) -> bool {
    c.set_nonblocking(true).unwrap();
    let got = c.peek(&mut [0u8; 1]);
    c.set_nonblocking(false).unwrap();
    !matches!(got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Opens a connection that starts a JSON POST of `len` bytes, sends one byte and goes silent.
fn silent_json(url: &str, token: &str, len: usize) -> std::net::TcpStream {
    use std::io::Write;
    let addr = url.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /api/projects HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n{{"
    )
    .unwrap();
    c
}

#[test]
fn large_json_bodies_one_account_sends_at_once_are_bounded() {
    // Each JSON body is held whole in memory: without a bound, one account's connections
    // could each hold up to --json-limit.
    let s = Server::start(None, &["--body-timeout", "5s"]);
    let (_, attacker, _) = user(&s.url);
    let (_, honest, _) = user(&s.url);
    let send = |token: &str, name: &str| {
        // 100 KB of JSON: a large body.
        let body = format!("{{\"name\": \"{name}\"}}{}", " ".repeat(100_000));
        let url = format!("{}/api/projects", s.url);
        raw(
            "POST",
            &url,
            Some(token),
            Some(("application/json", body.into_bytes())),
        )
        .0
    };
    let held = std::cell::RefCell::new(
        (0..4)
            .map(|_| silent_json(&s.url, &attacker, 500_000))
            .collect::<Vec<_>>(),
    );
    // While the account's four are under way, another large body of it is refused… (A
    // held body that the server reached after a probe took its place was refused instead;
    // it is sent again, so that four are under way.)
    assert!(eventually(|| {
        for c in held.borrow_mut().iter_mut() {
            if server_answered(c) {
                *c = silent_json(&s.url, &attacker, 500_000);
            }
        }
        send(&attacker, "more") == 429
    }));
    // …but not its small ones, nor another account's large ones.
    let small = call(
        &s.url,
        "POST",
        "/api/projects",
        Some(&attacker),
        Some(json!({"name": "small"})),
    );
    assert_eq!(small.status, 201, "{}", small.body);
    assert_eq!(send(&honest, "honest"), 201);
    // A dropped connection gives its place back.
    drop(held);
    assert!(eventually(|| send(&attacker, "again") == 201));
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

// ---- File content streams, and what no file names is collected ----

/// Content of `len` bytes that differs from one byte to the next (not compressible runs).
fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// The contents (pending or stored) and chunks the server's database holds for `user`.
fn chunk_rows(s: &Server, user: i64) -> (i64, i64) {
    let contents = "SELECT count(*) FROM contents WHERE user_id = ";
    let chunks = "SELECT count(*) FROM content_chunks k JOIN contents c ON c.id = k.content_id \
                  WHERE c.user_id = ";
    let db = s.database();
    if db.starts_with("postgres") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (c, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut counts = [0i64; 2];
            for (n, sql) in counts.iter_mut().zip([contents, chunks]) {
                *n = c
                    .query_one(&format!("{sql}{user}"), &[])
                    .await
                    .unwrap()
                    .get::<_, i64>(0);
            }
            (counts[0], counts[1])
        })
    } else {
        let c = rusqlite::Connection::open(db.trim_start_matches("sqlite:")).unwrap();
        let count = |sql: &str| {
            c.query_row(&format!("{sql}{user}"), [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        (count(contents), count(chunks))
    }
}

/// Waits (up to ten seconds) until `f` holds, and says whether it did.
fn eventually(f: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// Starts `PUT /api/blobs/{hash}` of `len` bytes on a raw connection and sends `part`.
fn start_upload(
    url: &str,
    token: &str,
    hash: &str,
    len: usize,
    part: &[u8],
) -> std::net::TcpStream {
    use std::io::Write;
    let addr = url.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "PUT /api/blobs/{hash} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    c.write_all(part).unwrap();
    c.flush().unwrap();
    c
}

fn storage_used(url: &str, token: &str) -> Value {
    call(url, "GET", "/api/limits", Some(token), None).body["data"]["storage_used"].clone()
}

#[test]
fn an_upload_cut_off_halfway_or_not_matching_its_hash_leaves_nothing() {
    cut_off(None);
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn an_upload_cut_off_on_postgres_leaves_nothing() {
    cut_off(Some(&postgres()));
}

#[test]
fn downloads_at_once_are_bounded_and_a_busy_server_says_when_to_come_back() {
    use std::io::{Read, Write};
    let s = Server::start(None, &[]);
    let (_, token, _) = user(&s.url);
    // More than the socket buffers take, so a download nobody reads stays under way.
    let data = content(16 << 20, 7);
    assert_eq!(put_blob(&s.url, &token, &data), 201);
    let url = format!("{}/api/blobs/{}", s.url, hash(&data));
    let addr = s.url.trim_start_matches("http://").to_string();
    // A download whose client reads its head and then nothing more.
    let stalled = || {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            c,
            "GET /api/blobs/{} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n",
            hash(&data)
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            c.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        c
    };
    let mut held: Vec<_> = (0..4).map(|_| stalled()).collect();
    // The account's fifth at once is refused, with when to come back.
    let (status, body, headers) = raw("GET", &url, Some(&token), None);
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["error"],
        "Your account already has 4 downloads under way: wait for one to finish"
    );
    // Another account is not held up by this one.
    let (_, other, _) = user(&s.url);
    assert_eq!(put_blob(&s.url, &other, b"theirs"), 201);
    let (status, got, _) = raw(
        "GET",
        &format!("{}/api/blobs/{}", s.url, hash(b"theirs")),
        Some(&other),
        None,
    );
    assert_eq!((status, got.as_slice()), (200, &b"theirs"[..]));
    // A client that goes away gives its slot back, and the content comes whole.
    drop(held.pop());
    assert!(
        eventually(|| {
            let (status, got, _) = raw("GET", &url, Some(&token), None);
            status == 200 && got == data
        }),
        "no download was admitted after one ended"
    );
}

fn cut_off(db: Option<&str>) {
    let s = Server::start(db, &[]);
    let (_, token, uid) = user(&s.url);
    let data = content(5 << 20, 1);
    // Half of it (more than two chunks) goes up, then the connection drops.
    let c = start_upload(
        &s.url,
        &token,
        &hash(&data),
        data.len(),
        &data[..data.len() / 2],
    );
    assert!(
        eventually(|| chunk_rows(&s, uid).1 >= 2),
        "the upload was not streamed to the database as it came"
    );
    drop(c);
    assert!(
        eventually(|| chunk_rows(&s, uid) == (0, 0)),
        "a dropped upload left {:?}",
        chunk_rows(&s, uid)
    );
    let (status, _, _) = raw(
        "GET",
        &format!("{}/api/blobs/{}", s.url, hash(&data)),
        Some(&token),
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(storage_used(&s.url, &token), 0);
    // All of it, under another content's hash: refused, and nothing kept.
    let (status, body, _) = raw(
        "PUT",
        &format!("{}/api/blobs/{}", s.url, hash(b"other")),
        Some(&token),
        Some(("application/octet-stream", data.clone())),
    );
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["error"],
        format!(
            "The content does not match its hash: it hashes to {}",
            hash(&data)
        )
    );
    assert!(
        eventually(|| chunk_rows(&s, uid) == (0, 0)),
        "{:?}",
        chunk_rows(&s, uid)
    );
    assert_eq!(storage_used(&s.url, &token), 0);
    // Whole and matching: stored in chunks and sent back byte for byte, with its length.
    assert_eq!(put_blob(&s.url, &token, &data), 201);
    assert_eq!(chunk_rows(&s, uid), (1, 5));
    let (status, got, headers) = raw(
        "GET",
        &format!("{}/api/blobs/{}", s.url, hash(&data)),
        Some(&token),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(headers["content-length"], (5 << 20).to_string().as_str());
    assert!(got == data, "the download differs from the upload");
    assert_eq!(storage_used(&s.url, &token), 5 << 20);
}

#[test]
fn the_largest_file_is_the_configured_one() {
    let s = Server::start(None, &["--max-file-size", "1MiB"]);
    let (_, token, uid) = user(&s.url);
    let limits = call(&s.url, "GET", "/api/limits", Some(&token), None);
    assert_eq!(limits.body["data"]["blob_limit"], 1 << 20);
    assert_eq!(put_blob(&s.url, &token, &content(1 << 20, 2)), 201);
    let over = content((1 << 20) + 1, 3);
    let (status, body, _) = raw(
        "PUT",
        &format!("{}/api/blobs/{}", s.url, hash(&over)),
        Some(&token),
        Some(("application/octet-stream", over.clone())),
    );
    assert_eq!(status, 413);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["limit"], 1 << 20);
    assert_eq!(
        body["error"],
        "The file is larger than the server accepts (1 MiB; --max-file-size)"
    );
    // Without a declared length (chunked), the body is cut off once it goes over.
    let mut c = {
        use std::io::Write;
        let addr = s.url.trim_start_matches("http://");
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        write!(
            c,
            "PUT /api/blobs/{} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            hash(&over)
        )
        .unwrap();
        for piece in over.chunks(64 << 10) {
            if write!(c, "{:x}\r\n", piece.len())
                .and_then(|_| c.write_all(piece))
                .and_then(|_| c.write_all(b"\r\n"))
                .is_err()
            {
                break;
            }
        }
        c
    };
    assert!(status_line(&mut c).contains(" 413 "));
    assert!(
        eventually(|| chunk_rows(&s, uid) == (1, 1)),
        "{:?}",
        chunk_rows(&s, uid)
    );
    assert_eq!(storage_used(&s.url, &token), 1 << 20);
    // A size that is not one is refused at start, with the option's name.
    let out = std::process::Command::new(common::BIN)
        .args([
            "server",
            "--max-file-size",
            "5XB",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "valyxo server: --max-file-size (a size such as 512MiB, 1GiB or 4GiB): unknown unit \
         'xb' in '5XB': use K, M or G\n"
    );
}

/// `valyxo server gc` on the server's database; its standard output.
fn gc(s: &Server, extra: &[&str]) -> String {
    let out = std::process::Command::new(common::BIN)
        .args([
            "server",
            "gc",
            "--database",
            s.database(),
            "--upload-expiry",
            "1s",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

// On SQLite only: the PostgreSQL tests share one database, where a collection with a grace
// of a second would take other tests' content, and theirs this test's.
#[test]
fn collecting_content_while_a_sync_uploads_loses_nothing() {
    let s = Server::start(None, &["--upload-expiry", "1s"]);
    let (_, token, uid) = user(&s.url);
    let t = Some(token.as_str());
    let p = call(
        &s.url,
        "POST",
        "/api/projects",
        t,
        Some(json!({"name": unique("gc")})),
    );
    let pid = p.body["data"]["id"].as_i64().unwrap();
    // Uploaded earlier: content a sync will name (it asks about it first), content nobody
    // names, and content a slow sync uploaded and then waited too long to name.
    let (named, orphan, late) = (content(3000, 4), content(2 << 20, 5), content(100, 6));
    for c in [&named, &orphan, &late] {
        assert_eq!(put_blob(&s.url, &token, c), 201);
    }
    let used = (3000 + (2 << 20) + 100) as u64;
    assert_eq!(storage_used(&s.url, &token), used);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    // A sync at work: it asks which content the server lacks (which touches what it has)
    // and is half-way through an upload when the collector runs.
    let fresh = content(3 << 20, 7);
    let m = call(
        &s.url,
        "POST",
        "/api/blobs/missing",
        t,
        Some(json!({"hashes": [hash(&named), hash(&fresh)]})),
    );
    assert_eq!(m.body["data"]["missing"], json!([hash(&fresh)]));
    let mut upload = start_upload(
        &s.url,
        &token,
        &hash(&fresh),
        fresh.len(),
        &fresh[..2 << 20],
    );
    assert!(
        eventually(|| chunk_rows(&s, uid).1 >= 6),
        "{:?}",
        chunk_rows(&s, uid)
    );
    assert_eq!(
        gc(&s, &["--dry-run"]),
        "valyxo server gc: would free 2 unreferenced file contents (2.0 MiB) and 0 abandoned \
         uploads (0 bytes)\n"
    );
    assert_eq!(
        gc(&s, &[]),
        "valyxo server gc: freed 2 unreferenced file contents (2.0 MiB) and 0 abandoned uploads \
         (0 bytes)\n"
    );
    // The upload finishes, and the commit names both: nothing was lost.
    {
        use std::io::Write;
        upload.write_all(&fresh[2 << 20..]).unwrap();
    }
    assert!(status_line(&mut upload).contains(" 201 "));
    let commit = |changes: Value| {
        call(
            &s.url,
            "POST",
            &format!("/api/projects/{pid}/files/commit"),
            t,
            Some(json!({ "changes": changes })),
        )
    };
    let c = commit(json!([
        {"path": "named", "hash": hash(&named), "base_version": 0},
        {"path": "fresh", "hash": hash(&fresh), "base_version": 0},
    ]));
    assert_eq!(c.status, 200, "{}", c.body);
    for data in [&named, &fresh] {
        let (status, got, _) = raw(
            "GET",
            &format!("{}/api/blobs/{}", s.url, hash(data)),
            t,
            None,
        );
        assert_eq!(status, 200);
        assert!(got == *data, "content changed on its way");
    }
    assert_eq!(storage_used(&s.url, &token), (3000 + (3 << 20)) as u64);
    // What was collected is gone, and a commit naming it fails cleanly: upload it again.
    let c = commit(json!([{"path": "late", "hash": hash(&late), "base_version": 0}]));
    assert_eq!(c.status, 400, "{}", c.body);
    assert_eq!(
        c.body["details"][0]["message"],
        format!(
            "late: missing blob {h}: upload its content (PUT /api/blobs/{h}) first",
            h = hash(&late)
        )
    );
    assert_eq!(put_blob(&s.url, &token, &late), 201);
    let c = commit(json!([{"path": "late", "hash": hash(&late), "base_version": 0}]));
    assert_eq!(c.status, 200, "{}", c.body);
    // Named content stays, however old.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        gc(&s, &[]),
        "valyxo server gc: freed 0 unreferenced file contents (0 bytes) and 0 abandoned \
         uploads (0 bytes)\n"
    );
}

// ---- Every list comes one page at a time ----

/// `GET path` with `?query`, answered 200.
fn page(url: &str, token: &str, path: &str, query: &str) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let full = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}{sep}{query}")
    };
    let a = call(url, "GET", &full, Some(token), None);
    assert_eq!(a.status, 200, "{full}: {}", a.body);
    a.body
}

/// Every page of `path` in pages of `limit`: the items of each page, in order.
fn walk(url: &str, token: &str, path: &str, limit: usize, items: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            None => format!("limit={limit}"),
            Some(a) => format!("limit={limit}&after={a}"),
        };
        let body = page(url, token, path, &q);
        let data = if items.is_empty() {
            &body["data"]
        } else {
            &body["data"][items]
        };
        pages.push(data.as_array().unwrap().clone());
        assert!(pages.len() < 100, "the walk does not end");
        match body["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => {
                assert_eq!(body["next"], Value::Null, "next is there, as null");
                return pages;
            }
        }
    }
}

fn ids(pages: &[Vec<Value>]) -> Vec<i64> {
    pages
        .iter()
        .flatten()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

/// The validation failure of a request: its status and the fields it names.
fn refused(url: &str, token: &str, path: &str) -> (u16, Vec<String>) {
    let a = call(url, "GET", path, Some(token), None);
    let fields = a.body["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|x| x["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    if a.status == 400 {
        assert_eq!(error(&a), "Validation failed");
    }
    (a.status, fields)
}

fn pagination(url: &str) {
    answered();
    let (_, token, _) = user(url);
    let t = token.as_str();
    let (_, other, _) = user(url);
    // Projects: 17, created one after the other (several in one millisecond).
    let created: Vec<i64> = (0..17)
        .map(|i| new_project(url, t, &format!("p{i}")))
        .collect();
    let newest_first: Vec<i64> = created.iter().rev().copied().collect();

    // An old client asks with no parameters and gets the first page in the old shape, with
    // `next` beside it.
    let first = page(url, t, "/api/projects", "");
    assert_eq!(first["success"], true);
    let data = first["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "the default page size");
    let mut fields: Vec<_> = data[0].as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["created_at", "description", "id", "name", "updated_at"]
    );
    assert_eq!(ids(std::slice::from_ref(data)), newest_first[..3]);
    assert!(first["next"].is_string());

    // Walking every page meets each project once, newest first, in pages of the limit.
    for limit in [1, 4, 7] {
        let pages = walk(url, t, "/api/projects", limit, "");
        assert_eq!(ids(&pages), newest_first, "limit {limit}");
        assert!(pages.iter().all(|p| p.len() <= limit));
        assert_eq!(pages.len(), 17usize.div_ceil(limit));
    }

    // Projects created between two pages neither repeat nor push others out of the walk.
    let p1 = page(url, t, "/api/projects", "limit=5");
    let mut seen = ids(&[p1["data"].as_array().unwrap().clone()]);
    let mut next = p1["next"].as_str().map(str::to_string);
    let mut added = Vec::new();
    while let Some(n) = next {
        for i in 0..2 {
            added.push(new_project(url, t, &format!("added{}{i}", added.len())));
        }
        let p = page(url, t, "/api/projects", &format!("limit=5&after={n}"));
        seen.extend(ids(&[p["data"].as_array().unwrap().clone()]));
        next = p["next"].as_str().map(str::to_string);
    }
    assert_eq!(seen, newest_first);
    // A new walk sees them, first.
    let all = ids(&walk(url, t, "/api/projects", 7, ""));
    let mut want: Vec<i64> = added.iter().rev().copied().collect();
    want.extend(&newest_first);
    assert_eq!(all, want);

    // Limits are bounded; a cursor is only good for the list that gave it.
    for q in [
        "limit=0",
        "limit=8",
        "limit=-1",
        "limit=ten",
        "limit=1&limit=2",
    ] {
        assert_eq!(
            refused(url, t, &format!("/api/projects?{q}")),
            (400, vec!["limit".to_string()]),
            "{q}"
        );
    }
    assert_eq!(
        page(url, t, "/api/projects", "limit=7")["data"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let cursor = first["next"].as_str().unwrap().to_string();
    let mut flipped = cursor.clone().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        "garbage".to_string(),
        "%FF%FE".to_string(),
        "A".repeat(5000),
        flipped,
        format!("{cursor}x"),
    ] {
        assert_eq!(
            refused(url, t, &format!("/api/projects?after={bad}")),
            (400, vec!["after".to_string()]),
            "{bad}"
        );
    }
    // Another account cannot use it (and learns nothing from it).
    assert_eq!(
        refused(url, &other, &format!("/api/projects?after={cursor}")),
        (400, vec!["after".to_string()])
    );

    // A project's scripts.
    let pid = created[0];
    let scripts: Vec<i64> = (0..8)
        .map(|i| {
            let a = call(
                url,
                "POST",
                &format!("/api/scripts/project/{pid}"),
                Some(t),
                Some(json!({"name": format!("s{i}"), "content": "print(1);"})),
            );
            assert_eq!(a.status, 201, "{}", a.body);
            a.body["data"]["id"].as_i64().unwrap()
        })
        .collect();
    let pages = walk(url, t, &format!("/api/scripts/project/{pid}"), 3, "");
    assert_eq!(pages.len(), 3);
    assert_eq!(
        ids(&pages),
        scripts.iter().rev().copied().collect::<Vec<_>>()
    );
    // The projects' cursor is not the scripts'.
    assert_eq!(
        refused(
            url,
            t,
            &format!("/api/scripts/project/{pid}?after={cursor}")
        ),
        (400, vec!["after".to_string()])
    );

    // A script's executions.
    let sid = scripts[0];
    let runs: Vec<i64> = (0..5)
        .map(|_| {
            let a = execute(url, t, sid);
            assert_eq!(a.status, 200, "{}", a.body);
            a.body["data"]["id"].as_i64().unwrap()
        })
        .collect();
    let pages = walk(url, t, &format!("/api/scripts/{sid}/executions"), 2, "");
    assert_eq!(pages.len(), 3);
    assert_eq!(ids(&pages), runs.iter().rev().copied().collect::<Vec<_>>());

    // A project's files: its first page is the largest (sync reads it whole), by path.
    let content = b"same content".to_vec();
    assert_eq!(put_blob(url, t, &content), 201);
    let commit = |paths: &[String], base: i64| {
        let changes: Vec<Value> = paths
            .iter()
            .map(|p| json!({"path": p, "hash": hash(&content), "base_version": base}))
            .collect();
        let a = call(
            url,
            "POST",
            &format!("/api/projects/{pid}/files/commit"),
            Some(t),
            Some(json!({"changes": changes})),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
    };
    let paths: Vec<String> = (0..20).map(|i| format!("d{}/f{i:02}", i % 3)).collect();
    let answer = commit(&paths, 0);
    assert_eq!(answer["data"]["files"].as_array().unwrap().len(), 20);
    // A commit answers with the files it changed only.
    let answer = commit(&paths[..2], 1);
    let changed: Vec<&str> = answer["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["d0/f00", "d1/f01"]);
    let mut sorted = paths.clone();
    sorted.sort();
    let files = format!("/api/projects/{pid}/files");
    let first = page(url, t, &files, "");
    assert_eq!(first["data"]["files"].as_array().unwrap().len(), 7);
    assert_eq!(first["data"]["revision"], 2);
    let listed = |pages: &[Vec<Value>]| -> Vec<String> {
        pages
            .iter()
            .flatten()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed(&walk(url, t, &files, 6, "files")), sorted);
    // Files added between pages, before and after the cursor: those already there are
    // each listed once.
    let p1 = page(url, t, &files, "limit=6");
    let mut seen: Vec<String> = p1["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    let cursor = p1["next"].as_str().unwrap().to_string();
    commit(&["a-first".to_string(), "z-last".to_string()], 0);
    let rest = walk_from(url, t, &files, 6, &cursor);
    seen.extend(rest);
    assert_eq!(seen.iter().filter(|p| *p == "z-last").count(), 1);
    seen.retain(|p| p != "z-last");
    assert_eq!(seen, sorted);
    // A file cursor names its project.
    let pid2 = created[1];
    assert_eq!(
        refused(
            url,
            t,
            &format!("/api/projects/{pid2}/files?after={cursor}")
        ),
        (400, vec!["after".to_string()])
    );
    // The client learns the largest page from the limits.
    let limits = call(url, "GET", "/api/limits", Some(t), None);
    assert_eq!(limits.body["data"]["max_page"], 7);
    every_answer_is_documented(url);
}

/// The file paths of every page of `path` after `cursor`.
fn walk_from(url: &str, token: &str, path: &str, limit: usize, cursor: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = cursor.to_string();
    loop {
        let body = page(url, token, path, &format!("limit={limit}&after={after}"));
        out.extend(
            body["data"]["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap().to_string()),
        );
        match body["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => return out,
        }
    }
}

#[test]
fn every_list_walks_in_pages_each_item_once_even_while_items_are_added() {
    let s = Server::start(None, &["--page-size", "3", "--max-page-size", "7"]);
    pagination(&s.url);
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn every_list_walks_in_pages_on_postgres() {
    let s = Server::start(
        Some(&postgres()),
        &["--page-size", "3", "--max-page-size", "7"],
    );
    pagination(&s.url);
}

#[test]
fn the_document_describes_the_page_parameters() {
    let s = Server::sqlite();
    let doc = call(&s.url, "GET", "/api/openapi.json", None, None).body;
    for path in [
        "/api/projects",
        "/api/scripts/project/{id}",
        "/api/scripts/{id}/executions",
        "/api/projects/{id}/files",
    ] {
        let op = &doc["paths"][path]["get"];
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["limit", "after"], "{path}");
        assert!(op["responses"].get("400").is_some(), "{path}");
        let answer = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        let schema = &doc["components"]["schemas"][answer.rsplit('/').next().unwrap()];
        let text = schema.to_string();
        assert!(text.contains("\"next\""), "{path}: {text}");
    }
    // The server refuses bad page sizes at start.
    let home = tempfile::tempdir().unwrap();
    for args in [["--page-size", "0"], ["--max-page-size", "0"]] {
        let out = std::process::Command::new(common::BIN)
            .arg("--home")
            .arg(home.path())
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
    }
    let out = std::process::Command::new(common::BIN)
        .arg("--home")
        .arg(home.path())
        .args(["server", "--listen", "127.0.0.1:0", "--page-size", "50"])
        .args(["--max-page-size", "10"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot be larger than --max-page-size"),
        "{err}"
    );
}

// ---- Backups ----

fn valyxo_server(args: &[&str], file: &std::path::Path) -> std::process::Output {
    std::process::Command::new(common::BIN)
        .arg("server")
        .args(args)
        .arg(file)
        .env_remove("VALYXO_DATABASE_URL")
        .output()
        .expect("run valyxo server")
}

#[test]
fn a_backup_taken_while_writing_restores_everything_written_before_it() {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let live = format!("sqlite:{}", dir.path().join("live.db").display());
    let s = Server::start(Some(&live), &[]);
    let (_, token, _) = user(&s.url);
    let created = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (url, token, created, stop) =
            (s.url.clone(), token.clone(), created.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = new_project(&url, &token, &format!("w{n}"));
                created.lock().unwrap().push(id);
                n += 1;
            }
        })
    };
    let count = || created.lock().unwrap().len();
    while count() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Every project whose creation was answered before the backup began is in it.
    let before: Vec<i64> = created.lock().unwrap().clone();
    let copy = dir.path().join("backup.db");
    let out = valyxo_server(&["backup", "--database", &live], &copy);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("backed up "), "{text}");
    // The writer went on meanwhile and goes on after.
    let n = count();
    while count() < n + 10 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let all: std::collections::HashSet<i64> = created.lock().unwrap().iter().copied().collect();

    // A backup never writes over a file.
    let again = valyxo_server(&["backup", "--database", &live], &copy);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    // The live database is not restored over while its server has it open.
    let busy = valyxo_server(&["restore", "--database", &live], &copy);
    assert_eq!(busy.status.code(), Some(1));
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(
        err.contains("in use") && err.contains("stop the server"),
        "{err}"
    );

    // Restored into a fresh place, it passes SQLite's integrity check …
    let fresh = dir.path().join("restored").join("server.db");
    let db = format!("sqlite:{}", fresh.display());
    let out = valyxo_server(&["restore", "--database", &db], &copy);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check: String = rusqlite::Connection::open(&fresh)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    // … and a server on it has every project created before the backup, only projects that
    // were created, and accepts the tokens given out before it.
    let r = Server::start(Some(&db), &[]);
    let restored = ids(&walk(&r.url, &token, "/api/projects", 1000, ""));
    let restored_set: std::collections::HashSet<i64> = restored.iter().copied().collect();
    assert_eq!(restored.len(), restored_set.len());
    for id in &before {
        assert!(restored_set.contains(id), "project {id} is missing");
    }
    assert!(restored_set.is_subset(&all));
    // The live server has them all.
    let live_ids = ids(&walk(&s.url, &token, "/api/projects", 1000, ""));
    assert_eq!(live_ids.len(), all.len());
}

#[test]
fn backup_and_restore_explain_themselves_and_refuse_what_they_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    for (verb, tool) in [("backup", "pg_dump"), ("restore", "pg_restore")] {
        let help = valyxo_server(&[verb], std::path::Path::new("--help"));
        assert!(help.status.success());
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("Examples:") && text.contains(tool), "{text}");
        // PostgreSQL has its own tools.
        let out = valyxo_server(
            &[verb, "--database", "postgres://valyxo@127.0.0.1:9/valyxo"],
            &dir.path().join("x.db"),
        );
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(tool), "{err}");
    }
    // No database there, no backup; a file that is not a server database is not restored.
    let db = format!("sqlite:{}", dir.path().join("none.db").display());
    let out = valyxo_server(&["backup", "--database", &db], &dir.path().join("b.db"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database at"));
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        "not a database at all, but long enough to have a header",
    )
    .unwrap();
    let out = valyxo_server(&["restore", "--database", &db], &junk);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a SQLite database"));
    assert!(!dir.path().join("none.db").exists());
}

#[test]
fn server_operations_take_the_database_before_or_after_their_name_and_refuse_serving_options() {
    let dir = tempfile::tempdir().unwrap();
    let live = format!("sqlite:{}", dir.path().join("live.db").display());
    drop(Server::start(Some(&live), &[]));
    let run = |args: &[&str]| {
        std::process::Command::new(common::BIN)
            .args(args)
            .env_remove("VALYXO_DATABASE_URL")
            .output()
            .expect("run valyxo server")
    };
    let first = dir.path().join("first.db").display().to_string();
    let out = run(&["server", "--database", &live, "backup", &first]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&["server", "--database", &live, "gc", "--dry-run"]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&["server", "--upload-expiry", "2h", "gc", "--database", &live]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&[
        "server",
        "--statement-timeout",
        "10m",
        "gc",
        "--database",
        &live,
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&[
        "server",
        "gc",
        "--statement-timeout",
        "0s",
        "--database",
        &live,
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // An option only a running server uses is refused, by name, and nothing is done.
    let second = dir.path().join("second.db");
    for args in [
        &["server", "--listen", "127.0.0.1:9", "backup"][..],
        &["server", "--pool-size", "3", "--database", &live, "backup"][..],
        &["server", "--statement-timeout", "1m", "backup"][..],
        &["server", "--upload-expiry", "2h", "backup"][..],
    ] {
        let mut args = args.to_vec();
        if !args.contains(&"--database") {
            args.extend(["--database", &live]);
        }
        let path = second.display().to_string();
        args.push(&path);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("option of the running server"), "{err}");
        assert!(err.contains(args[1]), "{err}");
        assert!(!second.exists());
    }
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn a_cursor_from_one_server_walks_on_another_sharing_the_database() {
    let db = postgres();
    let sizes = ["--page-size", "2", "--max-page-size", "3"];
    let servers = [
        Server::start(Some(&db), &sizes),
        Server::start(Some(&db), &sizes),
    ];
    let (_, token, _) = user(&servers[0].url);
    let created: Vec<i64> = (0..7)
        .map(|i| new_project(&servers[i % 2].url, &token, &format!("p{i}")))
        .collect();
    // Each page from the other server, as behind a load balancer.
    let (mut seen, mut after, mut i) = (Vec::new(), None::<String>, 0);
    loop {
        let q = after
            .as_ref()
            .map_or(String::new(), |a| format!("after={a}"));
        let body = page(&servers[i % 2].url, &token, "/api/projects", &q);
        seen.extend(ids(&[body["data"].as_array().unwrap().clone()]));
        i += 1;
        match body["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(i, 4);
    assert_eq!(seen, created.iter().rev().copied().collect::<Vec<_>>());
}

// ---- The web editor's assistant ----

/// A server whose assistant is the local fake API at `api` asking `model`, with the key
/// `sk-test` in the environment and `extra` options.
fn assistant_server(api: &str, model: &str, extra: &[&str]) -> Server {
    assistant_server_keyed(api, model, "sk-test", extra)
}

fn assistant_server_keyed(api: &str, model: &str, key: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--assistant-url", api, "--assistant-model", model];
    args.extend(extra);
    Server::with_env(&args, &[("VALYXO_ASSISTANT_KEY", key)])
}

/// The lines of an NDJSON answer, each parsed.
fn ndjson(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The text pieces of an answer joined, and its last line.
fn answer_of(lines: &[Value]) -> (String, Value) {
    let text = lines.iter().filter_map(|l| l["text"].as_str()).collect();
    (text, lines.last().cloned().unwrap_or(Value::Null))
}

/// `POST /api/assistant` with a bearer token: status, raw body, headers.
fn ask(url: &str, token: &str, body: Value) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
    raw(
        "POST",
        &format!("{url}/api/assistant"),
        Some(token),
        Some(("application/json", body.to_string().into_bytes())),
    )
}

#[test]
fn the_assistant_streams_answers_with_the_key_kept_on_the_server() {
    let api = common::openai::Server::start(true);
    let s = assistant_server(&api.url, "echo", &["--assistant-rate", "3"]);
    let url = &s.url;
    answered();
    let (_, token, _) = user(url);
    let status = call(url, "GET", "/api/assistant", Some(&token), None);
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["data"]["configured"], true);
    assert_eq!(status.body["data"]["model"], "echo");
    assert_eq!(status.body["data"]["max_input"], 256 * 1024);
    assert_eq!(status.body["data"]["help"], Value::Null);
    assert!(!status.body.to_string().contains("sk-test"));
    // A bearer client: the answer streams back a line at a time, ending in done.
    let (code, body, headers) = ask(
        url,
        &token,
        json!({"question": "What does it do?", "path": "src/a.rs", "text": "fn a() -> u32 { 1 }\n"}),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        headers.get("content-type").unwrap().to_str().unwrap(),
        "application/x-ndjson"
    );
    let lines = ndjson(&body);
    assert!(lines.len() > 3, "in pieces: {lines:?}");
    let (text, last) = answer_of(&lines);
    assert_eq!(text, "You said: The file src/a.rs: (2 messages)");
    assert_eq!(last, json!({"done": true}));
    assert!(!String::from_utf8_lossy(&body).contains("sk-test"));
    // The API got the key, the file and the question; the browser never saw the key.
    let sent = api.requests().pop().unwrap();
    assert_eq!(sent.authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(sent.body["model"], "echo");
    assert_eq!(sent.body["stream"], true);
    let user_text = sent.body["messages"][1]["content"].as_str().unwrap();
    assert!(user_text.contains("fn a() -> u32 { 1 }"), "{user_text}");
    assert!(user_text.ends_with("What does it do?"), "{user_text}");
    // A selection is sent instead of the whole text.
    let (code, body, _) = ask(
        url,
        &token,
        json!({"question": "Shorter?", "path": "src/a.rs", "text": "WHOLE FILE", "selection": "the part"}),
    );
    assert_eq!(code, 200);
    assert_eq!(
        answer_of(&ndjson(&body)).0,
        "You said: The part of src/a.rs selected: (2 messages)"
    );
    let user_text = api.requests().pop().unwrap().body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        user_text.contains("the part") && !user_text.contains("WHOLE FILE"),
        "{user_text}"
    );
    // Questions are validated and bounded before anything is sent.
    let before = api.requests().len();
    for (body, want) in [
        (json!({"text": "x"}), 400),
        (json!({"question": "  "}), 400),
        (json!({"question": 7}), 400),
        (
            json!({"question": "q", "text": "x".repeat(256 * 1024)}),
            413,
        ),
    ] {
        let (code, answer, _) = ask(url, &token, body.clone());
        assert_eq!(
            code,
            want,
            "{body:.80}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert_eq!(api.requests().len(), before, "nothing was sent to the API");

    // A browser's session: the cookie alone is refused, the cookie and its CSRF token work.
    let name = unique("web");
    let r = call(
        url,
        "POST",
        "/api/web/register",
        None,
        Some(
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let (session, csrf) = (
        cookie_in(&r, "valyxo_session"),
        cookie_in(&r, "valyxo_csrf"),
    );
    let jar = format!("valyxo_session={session}; valyxo_csrf={csrf}");
    let question = json!({"question": "Hello there", "text": ""});
    let refused = browser(
        url,
        "POST",
        "/api/assistant",
        &jar,
        &[],
        Some(question.clone()),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let with = [("Cookie", jar.clone()), ("X-CSRF-Token", csrf.clone())];
    let (code, body, _) = raw_with(
        "POST",
        &format!("{url}/api/assistant"),
        &with,
        Some(("application/json", question.to_string().into_bytes())),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(answer_of(&ndjson(&body)).1, json!({"done": true}));
    let status = browser(url, "GET", "/api/assistant", &jar, &[], None);
    assert_eq!(status.body["data"]["configured"], true);
    // No session at all.
    assert_eq!(
        call(url, "POST", "/api/assistant", None, Some(question.clone())).status,
        401
    );

    // Three questions a minute per account (--assistant-rate 3): the fourth waits.
    let (_, busy, _) = user(url);
    for i in 0..3 {
        let (code, _, _) = ask(url, &busy, json!({"question": format!("q{i}")}));
        assert_eq!(code, 200, "question {i}");
    }
    let (code, body, headers) = ask(url, &busy, json!({"question": "one more"}));
    assert_eq!(code, 429, "{}", String::from_utf8_lossy(&body));
    let wait: u64 = headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=21).contains(&wait), "{wait}");
    // Another account has its own budget.
    let (code, _, _) = ask(url, &token, json!({"question": "mine"}));
    assert_eq!(code, 200);
    every_answer_is_documented(url);
}

#[test]
fn without_an_assistant_the_server_says_how_to_turn_it_on() {
    let s = Server::start(None, &[]);
    let (_, token, _) = user(&s.url);
    let status = call(&s.url, "GET", "/api/assistant", Some(&token), None);
    assert_eq!(status.status, 200);
    assert_eq!(status.body["data"]["configured"], false);
    let help = status.body["data"]["help"].as_str().unwrap();
    for word in [
        "--assistant-url",
        "--assistant-model",
        "VALYXO_ASSISTANT_KEY",
    ] {
        assert!(help.contains(word), "{help}");
    }
    let a = call(
        &s.url,
        "POST",
        "/api/assistant",
        Some(&token),
        Some(json!({"question": "hello"})),
    );
    assert_eq!(a.status, 503);
    assert_eq!(error(&a), help);
}

#[test]
fn the_assistants_failures_are_said_without_the_key() {
    let api = common::openai::Server::start(true);
    // Cut off mid-answer: the pieces that came, then an error line.
    let s = assistant_server(&api.url, "drop", &[]);
    let (_, token, _) = user(&s.url);
    let (code, body, _) = ask(&s.url, &token, json!({"question": "hello"}));
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let lines = ndjson(&body);
    let (text, last) = answer_of(&lines);
    assert_eq!(text, "You said: ");
    let error = last["error"].as_str().expect("an error line");
    assert!(
        error.contains("answer") || error.contains("connection"),
        "{error}"
    );
    // An answer over --assistant-max-answer is cut there, and says so.
    let s = assistant_server(&api.url, "echo", &["--assistant-max-answer", "12"]);
    let (_, token, _) = user(&s.url);
    let (code, body, _) = ask(&s.url, &token, json!({"question": "hello"}));
    assert_eq!(code, 200);
    let (text, last) = answer_of(&ndjson(&body));
    assert_eq!(text, "You said: he");
    assert_eq!(
        last["error"],
        "The answer was cut at 12 bytes (the server's --assistant-max-answer)"
    );
    // An API silent mid-answer past --assistant-timeout: what came, then an error line.
    let s = assistant_server(&api.url, "stall", &["--assistant-timeout", "1s"]);
    let (_, token, _) = user(&s.url);
    let (code, body, _) = ask(&s.url, &token, json!({"question": "hello"}));
    assert_eq!(code, 200);
    let (text, last) = answer_of(&ndjson(&body));
    assert_eq!(text, "You said: ");
    assert!(last["error"].is_string(), "{last}");
    // A model the API does not have: 502 with the API's words.
    let s = assistant_server(&api.url, "nosuch", &[]);
    let (_, token, _) = user(&s.url);
    let (code, body, _) = ask(&s.url, &token, json!({"question": "hello"}));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code, 502, "{body}");
    let said = body["error"].as_str().unwrap();
    assert!(
        said.starts_with("The assistant answered 404: model 'nosuch' not found"),
        "{said}"
    );
    // A wrong key: 502 saying so, and never the key.
    let s = assistant_server_keyed(&api.url, "echo", "sk-wrong-and-secret", &[]);
    let (_, token, _) = user(&s.url);
    let (code, body, _) = ask(&s.url, &token, json!({"question": "hello"}));
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(code, 502, "{text}");
    assert!(text.contains("401") && text.contains("API key"), "{text}");
    assert!(!text.contains("sk-wrong-and-secret"), "{text}");
    let status = call(&s.url, "GET", "/api/assistant", Some(&token), None);
    assert!(!status.body.to_string().contains("sk-wrong"));
    // Nothing listens at the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let s = assistant_server(&gone, "echo", &[]);
    let (_, token, _) = user(&s.url);
    let (code, body, _) = ask(&s.url, &token, json!({"question": "hello"}));
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(code, 502, "{text}");
    assert!(text.contains("cannot be reached"), "{text}");
    assert!(
        !text.contains(&gone),
        "the API's address stays in the log: {text}"
    );
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn servers_sharing_postgres_share_each_accounts_questions_a_minute() {
    let db = postgres();
    let api = common::openai::Server::start(true);
    let on = || {
        Server::with_database_env(
            &db,
            &[
                "--assistant-url",
                &api.url,
                "--assistant-model",
                "echo",
                "--assistant-rate",
                "2",
            ],
            &[("VALYXO_ASSISTANT_KEY", "sk-test")],
        )
    };
    let (a, b) = (on(), on());
    let (_, token, _) = user(&a.url);
    // Two a minute in all: one on each server, then neither takes a third.
    assert_eq!(ask(&a.url, &token, json!({"question": "1"})).0, 200);
    assert_eq!(ask(&b.url, &token, json!({"question": "2"})).0, 200);
    let (code, _, headers) = ask(&a.url, &token, json!({"question": "3"}));
    assert_eq!(code, 429);
    assert!(headers.get("retry-after").is_some());
    assert_eq!(ask(&b.url, &token, json!({"question": "3"})).0, 429);
    // Another account's budget is its own.
    let (_, other, _) = user(&b.url);
    assert_eq!(ask(&a.url, &other, json!({"question": "1"})).0, 200);
}

#[test]
fn the_assistants_options_are_checked_at_start() {
    let start = |args: &[&str], env: &[(&str, &str)]| {
        let home = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(common::BIN)
            .arg("server")
            .args(["--listen", "127.0.0.1:0", "--database"])
            .arg(format!("sqlite:{}", home.path().join("s.db").display()))
            .args(args)
            .env_remove("VALYXO_ASSISTANT_KEY")
            .env_remove("VALYXO_ASSISTANT_MODEL")
            .env_remove("VALYXO_ASSISTANT_URL")
            .env_remove("VALYXO_ASSISTANT_KEY_FILE")
            .envs(env.iter().copied())
            .env("HOME", home.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = start(&["--assistant-url", "http://127.0.0.1:9/v1"], &[]);
    assert!(err.contains("--assistant-model"), "{err}");
    let err = start(
        &[
            "--assistant-url",
            "https://api.openai.com/v1",
            "--assistant-model",
            "m",
        ],
        &[],
    );
    assert!(err.contains("VALYXO_ASSISTANT_KEY"), "{err}");
    let err = start(
        &["--assistant-url", "ftp://x", "--assistant-model", "m"],
        &[("VALYXO_ASSISTANT_KEY", "sk-not-to-be-shown")],
    );
    assert!(err.contains("http://"), "{err}");
    assert!(!err.contains("sk-not-to-be-shown"), "{err}");
    // A local API with a model, and one option more.
    let local = |extra: &[&str]| {
        let base = [
            "--assistant-url",
            "http://127.0.0.1:9/v1",
            "--assistant-model",
            "m",
        ];
        start(&[base.as_slice(), extra].concat(), &[])
    };
    let err = local(&["--assistant-key-file", "/nonexistent/key"]);
    assert!(err.contains("--assistant-key-file"), "{err}");
    let err = local(&["--assistant-timeout", "90s"]);
    assert!(err.contains("shorter than --idle-timeout"), "{err}");
    // Every relayed answer is bounded: no limit at all is refused.
    let err = local(&["--assistant-max-answer", "0"]);
    assert!(
        err.contains("--assistant-max-answer must be more than 0"),
        "{err}"
    );
}

#[test]
fn one_answer_at_a_time_per_account_and_a_browser_that_leaves_ends_it() {
    use std::io::Read;
    let api = common::openai::Server::start(false);
    let s = assistant_server(&api.url, "stall", &["--assistant-timeout", "60s"]);
    let (_, token, _) = user(&s.url);
    // An answer that begins, then stalls: read its first piece and hold it open.
    let mut open = client()
        .post(format!("{}/api/assistant", s.url))
        .bearer_auth(&token)
        .json(&json!({"question": "hello"}))
        .send()
        .unwrap();
    assert_eq!(open.status().as_u16(), 200);
    let mut first = [0u8; 8];
    open.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"{\"text\":");
    // A second answer for the same account waits for the first.
    let (code, body, headers) = ask(&s.url, &token, json!({"question": "again"}));
    assert_eq!(code, 429, "{}", String::from_utf8_lossy(&body));
    assert!(headers.get("retry-after").is_some());
    // Another account is served meanwhile.
    let (_, other, _) = user(&s.url);
    let mut theirs = client()
        .post(format!("{}/api/assistant", s.url))
        .bearer_auth(&other)
        .json(&json!({"question": "hello"}))
        .send()
        .unwrap();
    assert_eq!(theirs.status().as_u16(), 200);
    theirs.read_exact(&mut first).unwrap();
    drop(theirs);
    // The browser leaves: its answer ends, and the account may ask again, well before the
    // stalled API would have let go (30 s).
    drop(open);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut again = client()
            .post(format!("{}/api/assistant", s.url))
            .bearer_auth(&token)
            .json(&json!({"question": "again"}))
            .send()
            .unwrap();
        if again.status().as_u16() == 200 {
            again.read_exact(&mut first).unwrap();
            break;
        }
        assert_eq!(again.status().as_u16(), 429);
        assert!(
            std::time::Instant::now() < deadline,
            "the answer the browser left still holds the account's turn"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

// ---- PostgreSQL: statements that wait too long, connections that end ----

/// A schema of its own in the PostgreSQL database, for a test that locks a server's tables
/// or ends its connections without touching other tests' servers on the same database:
/// `url` puts a server's tables in it and names its connections (`application_name`), and
/// `admin` is a connection of the test's own that watches them (never in a transaction,
/// where pg_stat_activity would not change). Dropped with the value.
struct OwnSchema {
    name: String,
    url: String,
    admin: Admin,
}

/// A plain PostgreSQL connection of the test's own.
struct Admin {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Admin {
    fn connect(url: &str) -> Admin {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c
        });
        Admin { rt, client }
    }

    fn exec(&self, sql: &str) {
        self.rt.block_on(self.client.batch_execute(sql)).unwrap();
    }

    /// The first column of each row of `sql`, a 32-bit integer.
    fn ints(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Vec<i32> {
        let rows = self.rt.block_on(self.client.query(sql, params)).unwrap();
        rows.iter().map(|r| r.get::<_, i32>(0)).collect()
    }
}

impl OwnSchema {
    /// A connection of the test's own that holds `table` locked (ACCESS EXCLUSIVE) in an
    /// open transaction, until it runs ROLLBACK or is dropped.
    fn lock(&self, table: &str) -> Admin {
        let locker = Admin::connect(&postgres());
        locker.exec(&format!(
            "SET search_path = {}; BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE",
            self.name
        ));
        locker
    }

    fn new(prefix: &str) -> OwnSchema {
        let db = postgres();
        let name = unique(prefix);
        let admin = Admin::connect(&db);
        admin.exec(&format!("CREATE SCHEMA {name}"));
        let sep = if db.contains('?') { '&' } else { '?' };
        let url = format!("{db}{sep}options=-c%20search_path%3D{name}&application_name={name}");
        OwnSchema { name, url, admin }
    }

    /// The server's sessions that wait for a lock.
    fn waiting(&self) -> Vec<i32> {
        self.admin.ints(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
             AND wait_event_type = 'Lock'",
            &[&self.name],
        )
    }

    /// Ends every session of the server, as a restart of PostgreSQL or an administrator
    /// would, and waits until they are gone. Only sessions of the test's own role: a role
    /// may end its own sessions without being a superuser.
    fn end_the_servers_sessions(&self) -> usize {
        // Chosen first, then ended: in one WHERE, PostgreSQL may call pg_terminate_backend
        // before the other conditions have ruled a session out.
        let chosen = self.admin.ints(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND usename = current_user \
             AND application_name = $1",
            &[&self.name],
        );
        let ended = self.admin.ints(
            "SELECT pid FROM unnest($1::int4[]) AS v (pid) WHERE pg_terminate_backend(pid)",
            &[&chosen],
        );
        let gone = || {
            self.admin
                .ints(
                    "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)",
                    &[&ended],
                )
                .is_empty()
        };
        assert!(eventually(gone), "the sessions {ended:?} linger");
        ended.len()
    }
}

impl Drop for OwnSchema {
    fn drop(&mut self) {
        let drop = format!("DROP SCHEMA {} CASCADE", self.name);
        let _ = self
            .admin
            .rt
            .block_on(self.admin.client.batch_execute(&drop));
    }
}

/// The names of the projects of `token`'s account.
fn project_names(url: &str, token: &str) -> Vec<String> {
    let a = call(url, "GET", "/api/projects", Some(token), None);
    assert_eq!(a.status, 200, "{}", a.body);
    let mut names: Vec<String> = a.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn a_postgres_statement_past_the_statement_timeout_is_answered_503() {
    let schema = OwnSchema::new("stmt");
    let s = Server::start(Some(&schema.url), &["--statement-timeout", "1"]);
    let (_, token, _) = user(&s.url);
    new_project(&s.url, &token, "before");
    // Another session holds the projects table: a request on it waits for the lock past
    // the timeout, and is answered 503 in a user's words, not left hanging.
    let locker = schema.lock("projects");
    let too_long = "The database took too long to answer; try again in a moment";
    let list = call(&s.url, "GET", "/api/projects", Some(&token), None);
    assert_eq!(list.status, 503, "{}", list.body);
    assert_eq!(error(&list), too_long);
    assert!(list.header("retry-after").is_some());
    let add = call(
        &s.url,
        "POST",
        "/api/projects",
        Some(&token),
        Some(json!({"name": "during"})),
    );
    assert_eq!(add.status, 503, "{}", add.body);
    assert_eq!(error(&add), too_long);
    // Meanwhile what does not touch the table is served.
    assert_eq!(call(&s.url, "GET", "/health", None, None).status, 200);
    let me = call(&s.url, "GET", "/api/auth/me", Some(&token), None);
    assert_eq!(me.status, 200, "{}", me.body);
    // Once the lock is released the same requests succeed, and the refused write left
    // nothing.
    locker.exec("ROLLBACK");
    assert_eq!(project_names(&s.url, &token), ["before"]);
    new_project(&s.url, &token, "after");
    assert_eq!(project_names(&s.url, &token), ["after", "before"]);
}

#[test]
#[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
fn a_postgres_request_whose_connection_ends_is_run_again_once() {
    let schema = OwnSchema::new("ended");
    let s = Server::start(Some(&schema.url), &[]);
    let (_, token, _) = user(&s.url);
    new_project(&s.url, &token, "one");
    // Every connection of the server ended while idle: the next requests are served.
    assert!(schema.end_the_servers_sessions() > 0);
    let me = call(&s.url, "GET", "/api/auth/me", Some(&token), None);
    assert_eq!(me.status, 200, "{}", me.body);
    new_project(&s.url, &token, "two");
    // Ended under a request in flight: the request waits for a lock the test holds, its
    // connection ends under it, before its COMMIT; it is run again on a new connection,
    // and once the lock is released it is done, once.
    let locker = schema.lock("projects");
    let (url, t) = (s.url.clone(), token.clone());
    let request = std::thread::spawn(move || {
        call(
            &url,
            "POST",
            "/api/projects",
            Some(&t),
            Some(json!({"name": "three"})),
        )
    });
    assert!(
        eventually(|| !schema.waiting().is_empty()),
        "no request waits"
    );
    let first = schema.waiting();
    assert!(schema.end_the_servers_sessions() > 0);
    // Run again: a new session waits for the lock.
    assert!(
        eventually(|| {
            let now = schema.waiting();
            !now.is_empty() && now.iter().all(|p| !first.contains(p))
        }),
        "the request was not run again"
    );
    locker.exec("ROLLBACK");
    let a = request.join().unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(project_names(&s.url, &token), ["one", "three", "two"]);
    // The server goes on serving.
    new_project(&s.url, &token, "four");
    assert_eq!(
        project_names(&s.url, &token),
        ["four", "one", "three", "two"]
    );
}
