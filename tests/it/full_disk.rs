//! A full disk under the writes of the hub's store and of the server: each is refused with
//! an error that says the disk is full, what was stored before is still there and readable,
//! nothing is left half made, and once space is freed the same write goes through. Each
//! test mounts a small tmpfs ([`SmallFs`]), so they run as root only (skipped elsewhere).

use crate::common;

use common::small_fs::SmallFs;
use common::Home;
use predicates::str::contains;

/// The files of the Rust template, as `new rust NAME` makes them in ~/Projects/NAME.
const RUST_FILES: [&str; 5] = [
    ".gitignore",
    "Cargo.toml",
    "README.md",
    "src",
    "src/main.rs",
];

/// Everything under ~/Projects/NAME (names relative to it, sorted), or None when it is not
/// there.
fn project(h: &Home, name: &str) -> Option<Vec<String>> {
    let a = h
        .cmd()
        .args(["-c", &format!("find /Projects/{name}")])
        .output()
        .unwrap();
    if !a.status.success() {
        return None;
    }
    let prefix = format!("/Projects/{name}/");
    let mut v: Vec<String> = String::from_utf8(a.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .collect();
    v.sort();
    Some(v)
}

#[test]
fn a_new_project_on_a_full_disk_is_made_whole_or_not_at_all() {
    let h = Home::new();
    let Some(small) = SmallFs::mount(h.path(), 2 << 20) else {
        return;
    };
    h.c("echo kept > /keep.txt").success();
    // From no room at all to room for some of the template's files but not all: each
    // `new` either makes the whole project or says the disk is full and leaves nothing.
    let mut refused = 0;
    for spare in [0, 8, 16, 24, 32, 48, 64, 96] {
        let filler = small.fill(spare << 10);
        let out = h.cmd().args(["-c", "new rust foo"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        match project(&h, "foo") {
            Some(files) => {
                assert!(out.status.success(), "with {spare} KiB spare: {err}");
                assert_eq!(files, RUST_FILES, "with {spare} KiB spare");
                std::fs::remove_file(&filler).unwrap();
                h.c("rm -r /Projects/foo").success();
            }
            None => {
                assert_eq!(out.status.code(), Some(1), "with {spare} KiB spare: {err}");
                assert!(
                    err.contains("the disk holding the state store is full"),
                    "with {spare} KiB spare: {err}"
                );
                assert!(!err.contains("Error code"), "driver text: {err}");
                refused += 1;
                std::fs::remove_file(&filler).unwrap();
            }
        }
    }
    assert!(refused > 0, "the disk was never full enough to refuse");
    // The store still opens, with what it held; with room, the project is made.
    assert_eq!(h.out("cat /keep.txt"), "kept\n");
    h.c("new rust foo").success();
    assert_eq!(project(&h, "foo").unwrap(), RUST_FILES);
}

#[test]
fn a_forced_new_into_a_full_mounted_folder_replaces_nothing() {
    // ~/Projects/p is a mounted host folder on a full disk: `new --force` replaces none of
    // its files (each new one is written whole beside its place first) and leaves no
    // temporary file; with room, it writes them all.
    let h = Home::new();
    let host = common::host_dir();
    let Some(small) = SmallFs::mount(host.path(), 1 << 20) else {
        return;
    };
    let p = host.path();
    std::fs::write(p.join("README.md"), "old\n").unwrap();
    std::fs::write(p.join("Cargo.toml"), "old\n").unwrap();
    h.c(&format!("mount {} /Projects/p", p.display())).success();
    let filler = small.fill(0);
    let mut before = crate::new::walk(p);
    before.sort();
    h.c("new --force rust p")
        .code(1)
        .stderr(contains("none of the template's files were written"));
    let mut after = crate::new::walk(p);
    after.sort();
    assert_eq!(after, before);
    assert_eq!(
        std::fs::read_to_string(p.join("README.md")).unwrap(),
        "old\n"
    );
    std::fs::remove_file(filler).unwrap();
    h.c("new --force rust p").success();
    assert!(std::fs::read_to_string(p.join("README.md"))
        .unwrap()
        .contains("# p"));
    assert!(p.join("src/main.rs").is_file());
}

#[test]
fn a_snippet_file_written_on_a_full_disk_keeps_its_old_content() {
    let h = Home::new();
    let Some(small) = SmallFs::mount(h.path(), 2 << 20) else {
        return;
    };
    h.c("mkdir /Snippets").success();
    let old = "[hi]\nbody = \"println!(\\\"hi\\\");$0\"\n";
    h.cmd()
        .args(["-e", &format!("write(\"/Snippets/rust.toml\", {old:?})")])
        .assert()
        .success();
    // 64 KiB, made by the script rather than spelt out on the command line.
    let new = format!("[big]\nbody = \"{}\"\n", "x".repeat(64 << 10));
    let write = r#"let b = "[big]\nbody = \""; for i in 0..2048 { b += "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; }
        b += "\"\n"; write("/Snippets/rust.toml", b)"#;
    let filler = small.fill(0);
    h.cmd()
        .args(["-e", write])
        .assert()
        .code(1)
        .stderr(contains("the disk holding the state store is full"));
    assert_eq!(h.out("cat /Snippets/rust.toml"), old);
    std::fs::remove_file(filler).unwrap();
    h.cmd().args(["-e", write]).assert().success();
    assert_eq!(h.out("cat /Snippets/rust.toml"), new);
}

#[test]
fn an_alias_kept_on_a_full_disk_is_refused_in_words() {
    let h = Home::new();
    let Some(small) = SmallFs::mount(h.path(), 2 << 20) else {
        return;
    };
    h.c("alias la='ls -a'").success();
    let filler = small.fill(0);
    let out = h.cmd().args(["-c", "alias ll=ls"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let file = h.path().join("aliases.toml");
    assert_eq!(
        err,
        format!(
            "alias: the disk holding {} is full: free some space and try again\n",
            std::fs::canonicalize(&file).unwrap().display()
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "la = \"ls -a\"\n");
    std::fs::remove_file(filler).unwrap();
    h.c("alias ll=ls").success();
    let listed = h.out("alias");
    assert!(listed.contains("la=") && listed.contains("ll="), "{listed}");
}

#[test]
fn a_store_too_full_to_open_says_the_disk_is_full() {
    let h = Home::new();
    let Some(small) = SmallFs::mount(h.path(), 1 << 20) else {
        return;
    };
    h.c("echo kept > /keep.txt").success();
    // SQLite's shared memory and journal, made again when the store is next opened (as
    // after a copy of the home, which leaves them out), need room beside it.
    for f in ["valyxo.db-shm", "valyxo.db-wal"] {
        let _ = std::fs::remove_file(h.path().join(f));
    }
    let filler = small.fill(0);
    h.c("cat /keep.txt").code(1).stderr(contains(
        "the disk holding it is full (SQLite needs some room beside it to open it)",
    ));
    std::fs::remove_file(filler).unwrap();
    assert_eq!(h.out("cat /keep.txt"), "kept\n");
}

#[cfg(feature = "server")]
mod server {
    use super::SmallFs;
    use crate::common::server::{call, new_project, put_file, raw, user, Answer, Server};
    use serde_json::json;

    /// `PUT …/files/content` of `data` as `path`, based on version `base`: the whole answer.
    fn put_content(
        url: &str,
        token: &str,
        project: i64,
        path: &str,
        data: &[u8],
        base: i64,
    ) -> Answer {
        let (status, body, headers) = raw(
            "PUT",
            &format!("{url}/api/projects/{project}/files/content?path={path}&base_version={base}"),
            Some(token),
            Some(("application/octet-stream", data.to_vec())),
        );
        Answer {
            status,
            body: serde_json::from_slice(&body).unwrap_or_default(),
            headers,
        }
    }

    /// A file's content as the server gives it.
    fn content(url: &str, token: &str, project: i64, path: &str) -> Vec<u8> {
        let (status, body, _) = raw(
            "GET",
            &format!("{url}/api/projects/{project}/files/content?path={path}"),
            Some(token),
            None,
        );
        assert_eq!(status, 200);
        body
    }

    /// Whether the server holds no content of these bytes for the account.
    fn not_stored(url: &str, token: &str, bytes: &[u8]) -> bool {
        let hash = blake3::hash(bytes).to_hex().to_string();
        let missing = call(
            url,
            "POST",
            "/api/blobs/missing",
            Some(token),
            Some(json!({"hashes": [hash]})),
        );
        missing.body["data"]["missing"].as_array().map(Vec::len) == Some(1)
    }

    /// The answer of a write the full disk refused: 507 in the server's usual shape, saying
    /// so in words.
    fn refused(what: &str, a: &Answer) {
        assert_eq!(a.status, 507, "{what}: {}", a.body);
        assert_eq!(a.body["success"], false, "{what}: {}", a.body);
        let error = a.body["error"].as_str().unwrap_or_default();
        assert!(error.contains("disk is full"), "{what}: {}", a.body);
        // Neither driver's words: SQLite's, or PostgreSQL's "could not extend file".
        assert!(!error.contains("SQLite"), "{what}: {}", a.body);
        assert!(!error.contains("could not"), "{what}: {}", a.body);
    }

    #[test]
    fn a_full_disk_refuses_each_write_clearly_and_keeps_what_was_stored() {
        let dir = tempfile::tempdir().unwrap();
        let Some(small) = SmallFs::mount(dir.path(), 8 << 20) else {
            return;
        };
        let db = format!("sqlite:{}", dir.path().join("server.db").display());
        let mut s = Server::start(Some(&db), &[]);
        let url = s.url.clone();
        let (name, token, _) = user(&url);
        let project = new_project(&url, &token, "kept");
        let old = vec![b'o'; 10 << 10];
        assert_eq!(put_file(&url, &token, project, "a.txt", &old, 0), 200);
        let script = call(
            &url,
            "POST",
            &format!("/api/scripts/project/{project}"),
            Some(&token),
            Some(json!({"name": "s", "content": "print(1)"})),
        );
        assert_eq!(script.status, 201, "{}", script.body);
        let id = script.body["data"]["id"].as_i64().unwrap();
        let got = call(
            &url,
            "GET",
            &format!("/api/scripts/{id}"),
            Some(&token),
            None,
        );
        let updated_at = got.body["data"]["updated_at"].as_str().unwrap().to_string();

        let filler = small.fill(0);
        // Larger than a chunk of the server (1 MiB): stored as it streams in.
        let large = vec![b'n'; 3 << 19];
        let small_new = vec![b's'; 2 << 10];
        let save = json!({"name": "s", "content": "print(2)", "base_updated_at": updated_at});
        let login = json!({"username": name, "password": crate::common::server::PASSWORD});
        let writes = || {
            vec![
                (
                    "a large file",
                    put_content(&url, &token, project, "a.txt", &large, 1),
                ),
                (
                    "a small file",
                    put_content(&url, &token, project, "a.txt", &small_new, 1),
                ),
                (
                    "a new file",
                    put_content(&url, &token, project, "b.txt", &small_new, 0),
                ),
                (
                    "a new project",
                    call(
                        &url,
                        "POST",
                        "/api/projects",
                        Some(&token),
                        Some(json!({"name": "new"})),
                    ),
                ),
                (
                    "a new script",
                    call(
                        &url,
                        "POST",
                        &format!("/api/scripts/project/{project}"),
                        Some(&token),
                        Some(json!({"name": "t", "content": "print(3)"})),
                    ),
                ),
                (
                    "a script saved",
                    call(
                        &url,
                        "PUT",
                        &format!("/api/scripts/{id}"),
                        Some(&token),
                        Some(save.clone()),
                    ),
                ),
                (
                    "a login",
                    call(&url, "POST", "/api/auth/login", None, Some(login.clone())),
                ),
                (
                    "a web login",
                    call(&url, "POST", "/api/web/login", None, Some(login.clone())),
                ),
            ]
        };
        for (what, a) in writes() {
            refused(what, &a);
        }
        // Still serving, with everything as it was.
        assert!(s.alive());
        assert_eq!(content(&url, &token, project, "a.txt"), old);
        let files = call(
            &url,
            "GET",
            &format!("/api/projects/{project}/files"),
            Some(&token),
            None,
        );
        assert_eq!(files.status, 200, "{}", files.body);
        let paths: Vec<&str> = files.body["data"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["a.txt"]);
        let got = call(
            &url,
            "GET",
            &format!("/api/scripts/{id}"),
            Some(&token),
            None,
        );
        assert_eq!(got.body["data"]["content"], "print(1)");
        let projects = call(&url, "GET", "/api/projects", Some(&token), None);
        assert_eq!(
            projects.body["data"].as_array().unwrap().len(),
            1,
            "{}",
            projects.body
        );
        // The content the refused uploads sent is not on the server.
        assert!(not_stored(&url, &token, &large));

        // Room for about one chunk: an upload of four stops on the second, with the same
        // answer, and leaves nothing that reads as the file.
        std::fs::remove_file(filler).unwrap();
        let filler = small.fill(3 << 19);
        let four = vec![b'f'; 4 << 20];
        refused(
            "a file the disk fills up under",
            &put_content(&url, &token, project, "a.txt", &four, 1),
        );
        assert_eq!(content(&url, &token, project, "a.txt"), old);
        assert!(not_stored(&url, &token, &four));

        // With room again, the same writes go through.
        std::fs::remove_file(filler).unwrap();
        let done: Vec<(&str, u16)> = writes().iter().map(|(w, a)| (*w, a.status)).collect();
        assert_eq!(
            done,
            [
                ("a large file", 200),
                ("a small file", 409),
                ("a new file", 200),
                ("a new project", 201),
                ("a new script", 201),
                ("a script saved", 200),
                ("a login", 200),
                ("a web login", 200),
            ]
        );
        assert_eq!(content(&url, &token, project, "a.txt"), large);
    }

    #[test]
    fn a_server_started_on_a_full_disk_says_the_disk_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let Some(small) = SmallFs::mount(dir.path(), 1 << 20) else {
            return;
        };
        let db = format!("sqlite:{}", dir.path().join("server.db").display());
        // Made, then stopped: SQLite's journal goes with the last connection, and starting
        // again needs room for it.
        let mut s = Server::start(Some(&db), &[]);
        s.terminate();
        let filler = small.fill(0);
        let start = || {
            std::process::Command::new(crate::common::BIN)
                .args([
                    "server",
                    "--listen",
                    "127.0.0.1:0",
                    "--quiet",
                    "--database",
                    &db,
                ])
                .env_remove("VALYXO_DATABASE_URL")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let out = start();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("the disk holding it is full"), "{err}");
        std::fs::remove_file(filler).unwrap();
        Server::start(Some(&db), &[]);
    }

    /// Runs `sql` as PostgreSQL's superuser (through the local socket, as root may).
    fn as_postgres(sql: &str) -> std::process::Output {
        std::process::Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-c", sql])
            .current_dir("/")
            .output()
            .expect("run psql as postgres")
    }

    /// A PostgreSQL database of its own whose every table lives in a tablespace on a small
    /// tmpfs; dropped, with its tablespace, when the test ends (before the tmpfs goes).
    struct SmallDatabase {
        name: String,
        url: String,
    }

    impl SmallDatabase {
        fn make(small: &std::path::Path) -> SmallDatabase {
            let base = crate::server::postgres();
            let (server, _) = base.rsplit_once('/').expect("a database URL");
            let role = server
                .trim_start_matches("postgres://")
                .split([':', '@'])
                .next()
                .expect("a role in the URL");
            let name = format!("valyxo_full_{}", std::process::id());
            let space = small.join("pg");
            std::fs::create_dir(&space).unwrap();
            // SAFETY: a NUL-terminated name; the answer is read before any other call.
            let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
            assert!(!pw.is_null(), "no postgres user");
            // SAFETY: checked above to point at the passwd entry.
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            std::os::unix::fs::chown(&space, Some(uid), Some(gid)).unwrap();
            let db = SmallDatabase {
                url: format!("{server}/{name}"),
                name,
            };
            for sql in [
                format!(
                    "CREATE TABLESPACE {} OWNER {role} LOCATION '{}'",
                    db.name,
                    space.display()
                ),
                format!("CREATE DATABASE {0} OWNER {role} TABLESPACE {0}", db.name),
            ] {
                let out = as_postgres(&sql);
                assert!(
                    out.status.success(),
                    "{sql}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            db
        }
    }

    impl Drop for SmallDatabase {
        fn drop(&mut self) {
            as_postgres(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
            as_postgres(&format!("DROP TABLESPACE IF EXISTS {}", self.name));
        }
    }

    #[test]
    #[ignore = "needs PostgreSQL: run by .ci/run with VALYXO_TEST_POSTGRES"]
    fn a_full_disk_under_postgres_refuses_uploads_clearly_and_keeps_what_was_stored() {
        let dir = tempfile::tempdir().unwrap();
        // Room for the new database's catalogs (copied from its template) and the schema.
        let Some(small) = SmallFs::mount(dir.path(), 24 << 20) else {
            return;
        };
        let db = SmallDatabase::make(dir.path());
        let mut s = Server::start(Some(&db.url), &[]);
        let url = s.url.clone();
        let (_, token, _) = user(&url);
        let project = new_project(&url, &token, "kept");
        let old = vec![b'o'; 10 << 10];
        assert_eq!(put_file(&url, &token, project, "a.txt", &old, 0), 200);

        // PostgreSQL itself refuses to extend a table ("could not extend file …: No space
        // left on device", SQLSTATE 53100): the same 507 as on SQLite.
        let filler = small.fill(0);
        let large = vec![b'n'; 3 << 19];
        refused(
            "a large file",
            &put_content(&url, &token, project, "a.txt", &large, 1),
        );
        refused(
            "a new file",
            &put_content(&url, &token, project, "b.txt", &large, 0),
        );
        assert!(s.alive());
        let health = call(&url, "GET", "/health", None, None);
        assert_eq!(health.status, 200, "{}", health.body);
        assert_eq!(content(&url, &token, project, "a.txt"), old);
        assert!(not_stored(&url, &token, &large));

        // With room again, the same upload goes through.
        std::fs::remove_file(filler).unwrap();
        let a = put_content(&url, &token, project, "a.txt", &large, 1);
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(content(&url, &token, project, "a.txt"), large);
    }
}
