//! register, login, logout, whoami and sync through the real binary, between two homes (two
//! "machines") and a real `valyxo server` on 127.0.0.1.

use crate::common;

use common::server::{call, Server};
use common::Home;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

use common::HOME_PASSWORD as PASSWORD;

/// A home logged in to `server` as `user` (registered by the first machine).
fn machine(server: &Server, user: &str, register: bool) -> Home {
    Home::signed_in(&server.url, user, register)
}

/// Two machines of a new account `user` on `server`: the first registers it, the second
/// logs in.
fn pair(server: &Server, user: &str) -> (Home, Home) {
    (machine(server, user, true), machine(server, user, false))
}

#[test]
fn two_machines_push_pull_delete_and_keep_both_sides_of_a_conflict() {
    let server = Server::sqlite();
    let (laptop, desktop) = pair(&server, "ada");

    laptop.out("mkdir -p src; echo 'fn main() {}' > src/main.rs; echo v1 > notes.md");
    // Binary content, not UTF-8.
    std::fs::write(laptop.path().join("blob.bin"), [0u8, 255, 1, 254]).unwrap();
    laptop.out(&format!(
        "import {} ~/Projects/Main/blob.bin",
        laptop.path().join("blob.bin").display()
    ));
    laptop
        .c("sync status")
        .success()
        .stdout(contains("Main: 3 to push"));
    // `sync status` moves nothing.
    desktop
        .c("sync status")
        .success()
        .stdout(contains("Main: up to date"));
    laptop
        .c("sync")
        .success()
        .stdout(contains("Main: 3 pushed"));
    laptop
        .c("sync")
        .success()
        .stdout(contains("Main: up to date"));

    desktop
        .c("sync -v")
        .success()
        .stdout(contains("down    src/main.rs"));
    assert_eq!(desktop.out("cat notes.md"), "v1\n");
    desktop.out(&format!(
        "export ~/Projects/Main/blob.bin {}",
        desktop.path().join("out.bin").display()
    ));
    assert_eq!(
        std::fs::read(desktop.path().join("out.bin")).unwrap(),
        [0u8, 255, 1, 254]
    );

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
    assert!(copy.ends_with(").md"), "{copy}");
    assert_eq!(desktop.out(&format!("cat '{copy}'")), "desktop\n");
    assert!(!desktop.out("ls src").contains("main.rs"));
    laptop.c("sync").success().stdout(contains("1 pulled"));
    assert_eq!(laptop.out(&format!("cat '{copy}'")), "desktop\n");
    assert_eq!(laptop.files("~/Projects"), desktop.files("~/Projects"));

    // A new project on one machine appears on the other.
    laptop.out("mkdir ~/Projects/Docs; echo hi > ~/Projects/Docs/readme.txt");
    laptop.c("sync Docs").success();
    desktop
        .c("sync")
        .success()
        .stdout(contains("Docs: 1 pulled"));
    assert_eq!(desktop.out("cat ~/Projects/Docs/readme.txt"), "hi\n");
}

#[test]
fn a_project_in_a_host_mount_syncs_its_real_files() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "bob");
    let host = common::host_dir();
    std::fs::create_dir_all(host.path().join("lib")).unwrap();
    std::fs::write(host.path().join("lib/util.rs"), "pub fn f() {}\n").unwrap();
    a.out(&format!("mount {} ~/Projects/Host", host.path().display()));
    a.c("sync").success().stdout(contains("Host: 1 pushed"));
    b.c("sync").success();
    assert_eq!(b.out("cat ~/Projects/Host/lib/util.rs"), "pub fn f() {}\n");
    b.out("echo 'pub fn g() {}' >> ~/Projects/Host/lib/util.rs");
    b.c("sync").success();
    a.c("sync").success().stdout(contains("Host: 1 pulled"));
    // The pull wrote the real file on the host.
    assert_eq!(
        std::fs::read_to_string(host.path().join("lib/util.rs")).unwrap(),
        "pub fn f() {}\npub fn g() {}\n"
    );
}

#[test]
fn a_server_that_goes_away_loses_nothing() {
    let mut server = Server::sqlite();
    let h = machine(&server, "cyd", true);
    h.out("echo one > a.txt");
    server.stop();
    h.c("sync")
        .code(1)
        .stderr(contains("cannot reach the server"))
        .stderr(contains("connection refused"));
    h.c("whoami").code(1).stderr(contains("connection refused"));
    assert_eq!(h.out("cat a.txt"), "one\n");
    server.restart();
    h.c("sync").success().stdout(contains("Main: 1 pushed"));
    let other = machine(&server, "cyd", false);
    other.c("sync").success();
    assert_eq!(other.out("cat a.txt"), "one\n");
}

#[test]
fn a_sync_killed_midway_is_finished_by_the_next() {
    let server = Server::sqlite();
    let h = machine(&server, "dia", true);
    let script: String = (0..300)
        .map(|i| format!("echo 'file {i}' > f{i}.txt\n"))
        .collect();
    h.cmd().write_stdin(script).assert().success();
    let mut child = std::process::Command::new(common::BIN)
        .arg("--home")
        .arg(h.path())
        .args(["-c", "sync"])
        .env_remove("VALYXO_HOME")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let _ = child.kill();
    let _ = child.wait();
    h.c("sync").success();
    h.c("sync").success().stdout(contains("Main: up to date"));
    let other = machine(&server, "dia", false);
    other.c("sync").success();
    assert_eq!(other.files("~/Projects/Main").len(), 300);
    assert_eq!(other.out("cat f299.txt"), "file 299\n");
}

#[test]
fn a_server_stopped_or_killed_mid_pull_ends_the_sync_and_loses_nothing() {
    // A pull of many small files (fetched ahead two at a time) whose server dies midway,
    // or is stopped first with fetches under way: the sync ends, with the connection as
    // the reason, and the next one finishes it.
    let mut server = Server::sqlite();
    let a = machine(&server, "mid", true);
    let script: String = (0..400)
        .map(|i| format!("echo 'file {i}' > f{i}.txt\n"))
        .collect();
    a.cmd().write_stdin(script).assert().success();
    a.c("sync").success();
    for stall in [true, false] {
        let b = machine(&server, "mid", false);
        let child = std::process::Command::new(common::BIN)
            .arg("--home")
            .arg(b.path())
            .args(["-c", "sync"])
            .env_remove("VALYXO_HOME")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(120));
        if stall {
            // Stopped, then killed while the pull waits for it.
            server.signal(libc::SIGSTOP);
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        server.stop();
        let started = std::time::Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the sync took {:?} to end",
            started.elapsed()
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() {
            assert!(
                err.contains("server") || err.contains("connection"),
                "{err}"
            );
        }
        server.restart();
        b.c("sync").success();
        assert_eq!(b.files("~/Projects/Main").len(), 400);
        assert_eq!(b.out("cat f399.txt"), "file 399\n");
    }
}

#[test]
fn a_conflict_and_a_rename_needing_content_that_is_also_fetched_ahead() {
    // The server's side of a conflict (m.txt), and the content a rename brings when its
    // old name changed here (r1 -> r2), are also the content of new files pulled before and
    // after them (a.txt, z.txt, plus twelve others that fill what is fetched ahead): taken
    // out of the order the fetchers go in, each is still written, and the sync ends.
    let server = Server::sqlite();
    let (a, b) = pair(&server, "ahead");
    a.out("echo base > m.txt; echo old > r1.txt");
    a.c("sync").success();
    b.c("sync").success();
    let fill: String = (0..12)
        .map(|i| format!("echo fill {i} > n{i:02}.txt; "))
        .collect();
    a.out(&format!(
        "echo theirs > m.txt; echo theirs > a.txt; echo theirs > z.txt; mv r1.txt r2.txt; \
         echo old > q.txt; {fill}"
    ));
    a.c("sync").success();
    b.out("echo mine > m.txt; echo changed > r1.txt");
    b.c("sync").success();
    for (f, want) in [
        ("a.txt", "theirs\n"),
        ("m.txt", "theirs\n"),
        ("z.txt", "theirs\n"),
        ("r2.txt", "old\n"),
        ("q.txt", "old\n"),
        ("r1.txt", "changed\n"),
        ("n11.txt", "fill 11\n"),
    ] {
        assert_eq!(b.out(&format!("cat {f}")), want, "{f}");
    }
    // The 16 files, r1.txt kept here and the conflict copy of this machine's m.txt.
    assert_eq!(b.files("~/Projects/Main").len(), 19);
}

#[test]
fn accounts_log_in_and_out() {
    let server = Server::sqlite();
    let h = machine(&server, "eve", true);
    h.c("whoami")
        .success()
        .stdout(contains(format!("eve <eve@example.com> on {}", server.url)));
    // With no keyring service (as here, outside a D-Bus session), the token is in a file
    // only the user can read.
    let creds = h.path().join("credentials.json");
    let token = creds.exists().then(|| {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&creds).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let all: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&creds).unwrap()).unwrap();
        all.as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("sync@"))
            .map(|(_, v)| v.as_str().unwrap().to_string())
            .expect("the sync token")
    });
    // The password is in neither the store nor the history.
    let db = std::fs::read(h.db()).unwrap();
    assert!(!db.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()));

    h.c("logout")
        .success()
        .stdout(contains("logged out of eve"));
    if let Some(token) = token {
        assert_eq!(
            call(&server.url, "GET", "/api/auth/me", Some(&token), None).status,
            401,
            "logout revokes the token on the server"
        );
        assert!(!std::fs::read_to_string(&creds)
            .unwrap_or_default()
            .contains("sync@"));
    }
    h.c("whoami").code(1).stderr(contains("not logged in"));
    h.c("sync").code(1).stderr(contains("not logged in"));
    h.c("logout").success().stdout(contains("not logged in"));

    h.cmd()
        .args(["-c", &format!("login --server {} eve", server.url)])
        .write_stdin("Wrong-pass1\n")
        .assert()
        .code(1)
        .stderr(contains("Invalid username or password"));
    h.cmd()
        .args([
            "-c",
            &format!("register --server {} --email bad eve", server.url),
        ])
        .write_stdin("weak\n")
        .assert()
        .code(1)
        .stderr("register: Email must be a valid address; nothing was created\n");
    // A good address and a weak password: the password rule, before the server is asked.
    h.cmd()
        .args([
            "-c",
            &format!(
                "register --server {} --email eve@example.com eve",
                server.url
            ),
        ])
        .write_stdin("weak\n")
        .assert()
        .code(1)
        .stderr(contains("Password must be 8 to 1024 characters long"));
    h.c("login --server http://example.com eve")
        .code(1)
        .stderr(contains("https://"));
}

#[test]
fn an_emptied_project_folder_is_fetched_again_not_emptied_everywhere() {
    let server = Server::sqlite();
    let a = machine(&server, "fay", true);
    a.out("echo keep > keep.txt");
    a.c("sync").success();
    a.out("rm keep.txt");
    a.c("sync")
        .success()
        .stdout(contains("Main: 1 pulled"))
        .stderr(contains("was empty here"));
    assert_eq!(a.out("cat ~/Projects/Main/keep.txt"), "keep\n");
    let b = machine(&server, "fay", false);
    b.c("sync").success();
    assert_eq!(b.out("cat keep.txt"), "keep\n");
}

/// A token of `user` for calls of the API.
fn token(server: &Server, user: &str) -> String {
    crate::common::server::session_token(&server.url, user, PASSWORD)
}

/// The account's projects on the server: name and id, by name.
fn projects(server: &Server, token: &str) -> Vec<(String, i64)> {
    let a = call(&server.url, "GET", "/api/projects", Some(token), None);
    assert_eq!(a.status, 200, "{}", a.body);
    let mut p: Vec<(String, i64)> = a.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["id"].as_i64().unwrap(),
            )
        })
        .collect();
    p.sort();
    p
}

#[test]
fn a_deleted_project_is_deleted_everywhere_both_ways() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "del");
    let t = token(&server, "del");
    a.out(
        "echo main > m.txt; mkdir -p ~/Projects/Gone/sub; echo one > ~/Projects/Gone/sub/one.txt",
    );
    a.out("mkdir ~/Projects/Api; echo api > ~/Projects/Api/a.txt");
    a.c("sync").success();
    b.c("sync").success().stdout(contains("Gone: 1 pulled"));
    // Deleted here: deleted on the server, then on the other machine.
    a.out("cd /; rm -r ~/Projects/Gone");
    a.c("sync status")
        .success()
        .stdout(contains("Gone: deleted here; to delete on the server"));
    a.c("sync")
        .success()
        .stdout(contains("Gone: deleted here; deleted on the server"));
    let names: Vec<String> = projects(&server, &t).into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["Api", "Main"]);
    b.c("sync")
        .success()
        .stdout(contains("Gone: deleted on the server; deleted here"));
    assert_eq!(b.out("ls ~/Projects"), "Api\nMain\n");
    // Deleted on the server by another client: deleted on both machines.
    let api = projects(&server, &t)[0].1;
    let d = call(
        &server.url,
        "DELETE",
        &format!("/api/projects/{api}"),
        Some(&t),
        None,
    );
    assert_eq!(d.status, 200, "{}", d.body);
    for h in [&a, &b] {
        h.c("sync")
            .success()
            .stdout(contains("Api: deleted on the server; deleted here"));
        assert_eq!(h.out("ls ~/Projects"), "Main\n");
        h.c("sync").success().stdout(contains("Main: up to date"));
    }
    assert_eq!(a.files("~/Projects"), b.files("~/Projects"));
}

#[test]
fn the_start_project_is_renamed_and_deleted_though_each_session_makes_it_again() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "sta");
    let t = token(&server, "sta");
    a.out("echo m > m.txt");
    a.c("sync").success();
    b.c("sync").success();
    // The next session makes ~/Projects/Main again, empty: still a rename.
    a.out("cd /; mv ~/Projects/Main ~/Projects/Game");
    a.c("sync").success().stdout(contains(
        "Main: renamed to Game here; renamed on the server",
    ));
    // The empty Main is not made on the server.
    a.c("sync").success().stdout(contains("Main: up to date"));
    let names: Vec<String> = projects(&server, &t).into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["Game"]);
    b.c("sync").success().stdout(contains(
        "Main: renamed to Game on the server; renamed here",
    ));
    assert_eq!(b.out("cat ~/Projects/Game/m.txt"), "m\n");
    // Deleted, and made again empty by the next session: still a deletion. An emptied
    // folder is not (it is fetched again).
    b.out("cd /; rm -r ~/Projects/Game; mkdir ~/Projects/Game");
    b.c("sync")
        .success()
        .stdout(contains("Game: deleted here; deleted on the server"));
    assert!(projects(&server, &t).is_empty());
    a.c("sync")
        .success()
        .stdout(contains("Game: deleted on the server; deleted here"));
    assert_eq!(a.out("ls ~/Projects"), "Main\n");
}

#[test]
fn a_project_mount_whose_host_folder_is_away_is_not_deleted() {
    let server = Server::sqlite();
    let a = machine(&server, "mnt", true);
    let t = token(&server, "mnt");
    let host = common::host_dir();
    std::fs::write(host.path().join("kept.txt"), "kept\n").unwrap();
    a.out(&format!("mount {} ~/Projects/Host", host.path().display()));
    a.c("sync").success().stdout(contains("Host: 1 pushed"));
    let away = host.path().with_extension("away");
    std::fs::rename(host.path(), &away).unwrap();
    let out = a.c("sync").get_output().clone();
    let text = String::from_utf8_lossy(&out.stdout).to_string()
        + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(!text.contains("deleted"), "{text}");
    std::fs::rename(&away, host.path()).unwrap();
    assert!(projects(&server, &t).iter().any(|p| p.0 == "Host"));
    a.c("sync").success().stdout(contains("Host: up to date"));
    assert_eq!(a.out("cat ~/Projects/Host/kept.txt"), "kept\n");
}

#[test]
fn a_deleted_project_that_changed_on_the_other_side_is_kept() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "kep");
    let t = token(&server, "kep");
    a.out("mkdir ~/Projects/P; echo v1 > ~/Projects/P/f.txt");
    a.c("sync").success();
    b.c("sync").success();
    // Edited and synced on one machine, deleted on the other: the edit stays everywhere.
    b.out("echo edited > ~/Projects/P/f.txt");
    b.c("sync").success();
    a.out("cd /; rm -r ~/Projects/P");
    a.c("sync")
        .success()
        .stderr(contains(
            "P: deleted here, but it changed on the server since the last sync",
        ))
        .stdout(contains("P: 1 pulled"));
    assert_eq!(a.out("cat ~/Projects/P/f.txt"), "edited\n");
    let before = projects(&server, &t);
    assert!(before.iter().any(|p| p.0 == "P"), "{before:?}");
    // Deleted (and synced) on one machine, edited on the other: the edit is kept and goes
    // up again as a new project.
    a.out("cd /; rm -r ~/Projects/P");
    a.c("sync")
        .success()
        .stdout(contains("P: deleted here; deleted on the server"));
    b.out("echo again > ~/Projects/P/f.txt; echo new > ~/Projects/P/g.txt");
    b.c("sync")
        .success()
        .stderr(contains(
            "the project was deleted on the server, but changed here since the last sync",
        ))
        .stdout(contains("P: 2 pushed"));
    assert_eq!(b.out("cat ~/Projects/P/f.txt"), "again\n");
    a.c("sync").success().stdout(contains("P: 2 pulled"));
    assert_eq!(a.files("~/Projects"), b.files("~/Projects"));
}

#[test]
fn a_renamed_project_stays_the_same_project_both_ways() {
    let mut server = Server::logged(&[]);
    let (a, b) = pair(&server, "pro");
    let t = token(&server, "pro");
    a.out("mkdir ~/Projects/Old; echo one > ~/Projects/Old/one.txt; echo two > ~/Projects/Old/two.txt");
    a.c("sync").success();
    b.c("sync").success();
    let id = projects(&server, &t)
        .into_iter()
        .find(|p| p.0 == "Old")
        .unwrap()
        .1;
    // Renamed here (and one file edited): the same project, renamed on the server.
    a.out("cd /; mv ~/Projects/Old ~/Projects/New; echo 2 > ~/Projects/New/two.txt");
    let status = a.out("sync status");
    assert!(
        status.contains("Old: renamed to New here; to rename on the server")
            && !status.contains("New:"),
        "{status}"
    );
    a.c("sync")
        .success()
        .stdout(contains("Old: renamed to New here; renamed on the server"))
        .stdout(contains("New: 1 pushed"));
    assert_eq!(
        projects(&server, &t),
        [("New".to_string(), id)],
        "the empty Main is not made on the server"
    );
    b.c("sync")
        .success()
        .stdout(contains("Old: renamed to New on the server; renamed here"))
        .stdout(contains("New: 1 pulled"));
    assert_eq!(b.out("ls ~/Projects"), "Main\nNew\n");
    assert_eq!(
        b.out("cat ~/Projects/New/one.txt ~/Projects/New/two.txt"),
        "one\n2\n"
    );
    // Renamed on the server: renamed on both machines.
    let r = call(
        &server.url,
        "PUT",
        &format!("/api/projects/{id}"),
        Some(&t),
        Some(serde_json::json!({"name": "Newer"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for h in [&a, &b] {
        h.c("sync")
            .success()
            .stdout(contains(
                "New: renamed to Newer on the server; renamed here",
            ))
            .stdout(contains("Newer: up to date"));
        assert_eq!(h.out("ls ~/Projects"), "Main\nNewer\n");
    }
    assert_eq!(
        projects(&server, &t),
        [("Newer".to_string(), id)],
        "the empty Main is not made on the server"
    );
    // Only the edited file's content went up, and came down once.
    let (_, log) = server.terminate_with_log();
    assert_eq!(logged(&log, "PUT", "/api/blobs/"), 3, "{log}");
}

/// The requests of the server's log whose method is `method` and whose path starts with
/// `prefix`.
fn logged(log: &str, method: &str, prefix: &str) -> usize {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| {
            l["method"] == method && l["path"].as_str().is_some_and(|p| p.starts_with(prefix))
        })
        .count()
}

#[test]
fn a_renamed_file_is_renamed_on_the_other_machine_and_its_content_not_sent_again() {
    let mut server = Server::logged(&[]);
    let (a, b) = pair(&server, "ren");
    // Two files with the same content: one of them is renamed.
    a.out("mkdir docs; echo 'the draft' > docs/draft.md; echo same > x.txt; echo same > y.txt");
    a.c("sync").success().stdout(contains("Main: 3 pushed"));
    b.c("sync").success().stdout(contains("Main: 3 pulled"));
    a.out("mv docs/draft.md docs/final.md; mkdir old; mv x.txt old/x.txt");
    a.c("sync status")
        .success()
        .stdout(contains("Main: 2 to rename\n"));
    // Nothing goes up or down: the summary names no bytes.
    a.c("sync -v")
        .success()
        .stdout(contains("Main: 2 renamed\n"))
        .stdout(contains(
            "rename  docs/draft.md -> docs/final.md (on the server)",
        ))
        .stdout(contains("rename  x.txt -> old/x.txt (on the server)"));
    b.c("sync -v")
        .success()
        .stdout(contains("Main: 2 renamed\n"))
        .stdout(contains("rename  docs/draft.md -> docs/final.md (here)"));
    assert_eq!(b.out("cat docs/final.md"), "the draft\n");
    assert_eq!(b.out("cat old/x.txt y.txt"), "same\nsame\n");
    assert_eq!(a.files("~/Projects"), b.files("~/Projects"));
    for h in [&a, &b] {
        h.c("sync").success().stdout(contains("Main: up to date"));
    }
    // Each content went up once and came down once (the same content in two files too),
    // at the first sync.
    let (_, log) = server.terminate_with_log();
    assert_eq!(logged(&log, "PUT", "/api/blobs/"), 2, "{log}");
    assert_eq!(logged(&log, "GET", "/api/blobs/"), 2, "{log}");
}

#[test]
fn chains_of_renames_and_a_file_moved_into_a_folder_of_its_name_are_followed() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "cha");
    a.out("echo X > x; echo Y > y; echo F > f");
    a.c("sync").success();
    b.c("sync").success();
    // y becomes z and x takes its place; the file f goes into a folder f.
    a.out("mv y z; mv x y; mv f tmp; mkdir f; mv tmp f/inner");
    a.c("sync -v")
        .success()
        .stdout(contains("Main: 1 pushed, 2 renamed\n"))
        .stdout(contains("rename  x -> y (on the server)"))
        .stdout(contains("rename  f -> f/inner (on the server)"));
    b.c("sync")
        .success()
        .stdout(contains("Main: 1 pulled, 2 renamed"));
    assert_eq!(b.out("cat y z f/inner"), "X\nY\nF\n");
    assert_eq!(a.files("~/Projects"), b.files("~/Projects"));
    for h in [&a, &b] {
        h.c("sync").success().stdout(contains("Main: up to date"));
    }
}

#[test]
fn a_rename_that_meets_an_edit_of_the_old_name_keeps_both() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "red");
    a.out("echo v1 > notes.md; echo p1 > plan.md");
    a.c("sync").success();
    b.c("sync").success();
    // Renamed on the laptop and synced, edited on the desktop meanwhile.
    a.out("mv notes.md renamed.md");
    a.c("sync").success().stdout(contains("1 renamed"));
    b.out("echo edited > notes.md");
    b.c("sync").success().stderr(contains(
        "notes.md was renamed to renamed.md on the server and changed here: both are kept",
    ));
    assert_eq!(b.out("cat renamed.md notes.md"), "v1\nedited\n");
    a.c("sync").success();
    assert_eq!(a.out("cat renamed.md notes.md"), "v1\nedited\n");
    // The other way round: edited and synced on the laptop, renamed on the desktop.
    a.out("echo p2 > plan.md");
    a.c("sync").success();
    b.out("mkdir later; mv plan.md later/plan.md");
    b.c("sync").success().stderr(contains(
        "plan.md was renamed to later/plan.md here and changed on the server: both are kept",
    ));
    assert_eq!(b.out("cat plan.md later/plan.md"), "p2\np1\n");
    a.c("sync").success();
    assert_eq!(a.files("~/Projects"), b.files("~/Projects"));
    assert_eq!(a.out("cat later/plan.md"), "p1\n");
    for h in [&a, &b] {
        h.c("sync").success().stdout(contains("Main: up to date"));
    }
}

#[test]
fn many_files_go_up_in_several_commits() {
    let server = Server::sqlite();
    let a = machine(&server, "gus", true);
    let script: String = (0..1234)
        .map(|i| format!("echo {i} > n{i}.txt\n"))
        .collect();
    a.cmd().write_stdin(script).assert().success();
    a.c("sync").success().stdout(contains("Main: 1234 pushed"));
    let b = machine(&server, "gus", false);
    b.c("sync").success().stdout(contains("Main: 1234 pulled"));
    assert_eq!(b.out("cat n1233.txt"), "1233\n");
    a.c("sync").success().stdout(contains("Main: up to date"));
}

#[test]
fn uploads_sent_two_at_a_time_wait_for_a_server_that_takes_one_at_a_time() {
    // Sync sends small files two at a time; this server takes one upload per account at a
    // time and answers the other with 429 and Retry-After, which sync waits for.
    let server = Server::start(None, &["--uploads-per-account", "1"]);
    let a = machine(&server, "pair", true);
    let script: String = (0..40)
        .map(|i| format!("echo file {i} > f{i}.txt\n"))
        .collect();
    a.cmd().write_stdin(script).assert().success();
    // And two larger than what is held in memory, streamed one at a time.
    let big: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
    for name in ["big1.bin", "big2.bin"] {
        std::fs::write(a.path().join(name), &big).unwrap();
        a.out(&format!(
            "import {} ~/Projects/Main/{name}",
            a.path().join(name).display()
        ));
    }
    a.c("sync").success().stdout(contains("Main: 42 pushed"));
    let b = machine(&server, "pair", false);
    b.c("sync").success().stdout(contains("Main: 42 pulled"));
    for i in [0, 17, 39] {
        assert_eq!(b.out(&format!("cat f{i}.txt")), format!("file {i}\n"));
    }
    let out = b.path().join("out.bin");
    b.out(&format!(
        "export ~/Projects/Main/big2.bin {}",
        out.display()
    ));
    assert!(std::fs::read(&out).unwrap() == big, "the big file differs");
}

#[test]
fn uploads_of_almost_a_mebibyte_wait_for_a_busy_server_as_small_ones_do() {
    // Held uploads of nearly 1 MiB, two at a time against a server taking one: the one
    // refused with 429 (before its body is read) must be waited for, not fail the sync.
    let server = Server::start(None, &["--uploads-per-account", "1"]);
    let a = machine(&server, "heavy", true);
    for i in 0..6u32 {
        let data: Vec<u8> = (0..(1u32 << 20) - 1000)
            .map(|n| (n.wrapping_mul(31).wrapping_add(i) % 251) as u8)
            .collect();
        let name = format!("h{i}.bin");
        std::fs::write(a.path().join(&name), &data).unwrap();
        a.out(&format!(
            "import {} ~/Projects/Main/{name}",
            a.path().join(&name).display()
        ));
    }
    a.c("sync").success().stdout(contains("Main: 6 pushed"));
    let b = machine(&server, "heavy", false);
    b.c("sync").success().stdout(contains("Main: 6 pulled"));
}

#[test]
fn two_machines_streaming_large_files_at_once_wait_for_each_other() {
    // Two machines of one account push files over 1 MiB (streamed) at the same time to a
    // server taking one upload per account: the one told to come back (429) while it was
    // still sending must see that answer and wait, not a reset connection.
    let server = Server::start(None, &["--uploads-per-account", "1"]);
    let (a, b) = pair(&server, "both");
    for (h, project) in [(&a, "One"), (&b, "Two")] {
        for i in 0..6u32 {
            let data: Vec<u8> = (0..(3u32 << 20))
                .map(|n| (n.wrapping_mul(7).wrapping_add(i) % 251) as u8)
                .chain(project.bytes())
                .collect();
            let name = format!("big{i}.bin");
            std::fs::write(h.path().join(&name), &data).unwrap();
            h.out(&format!(
                "mkdir -p ~/Projects/{project}; import {} ~/Projects/{project}/{name}",
                h.path().join(&name).display()
            ));
        }
    }
    let spawn = |h: &Home| {
        std::process::Command::new(common::BIN)
            .arg("--home")
            .arg(h.path())
            .args(["-c", "sync"])
            .env_remove("VALYXO_HOME")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ca, cb) = (spawn(&a), spawn(&b));
    for c in [ca, cb] {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn three_machines_pulling_at_once_share_the_accounts_downloads() {
    // Each pull fetches ahead two at a time besides its own downloads; three at once ask
    // more of the server than the four downloads an account may have under way. Those told
    // to come back wait; every pull ends whole.
    let server = Server::sqlite();
    let a = machine(&server, "three", true);
    let script: String = (0..300)
        .map(|i| format!("echo 'file {i}' > f{i}.txt\n"))
        .collect();
    a.cmd().write_stdin(script).assert().success();
    let big: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 253) as u8).collect();
    std::fs::write(a.path().join("big.bin"), &big).unwrap();
    a.out(&format!(
        "import {} ~/Projects/Main/big.bin",
        a.path().join("big.bin").display()
    ));
    a.c("sync").success();
    let homes: Vec<Home> = (0..3).map(|_| machine(&server, "three", false)).collect();
    let children: Vec<_> = homes
        .iter()
        .map(|h| {
            std::process::Command::new(common::BIN)
                .arg("--home")
                .arg(h.path())
                .args(["-c", "sync"])
                .env_remove("VALYXO_HOME")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for h in &homes {
        assert_eq!(h.files("~/Projects/Main").len(), 301);
        assert_eq!(h.out("cat f299.txt"), "file 299\n");
    }
}

/// Needs a running Secret Service (`.ci/run` starts gnome-keyring in a D-Bus session).
#[test]
#[ignore = "needs a Secret Service keyring; run by .ci/run under dbus-run-session"]
fn the_login_token_goes_to_the_os_keyring() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "no D-Bus session: run under dbus-run-session with gnome-keyring unlocked"
    );
    let server = Server::sqlite();
    let h = Home::new();
    h.cmd()
        .args([
            "-c",
            &format!(
                "register --server {} --email kr@example.com keyring",
                server.url
            ),
        ])
        .write_stdin(format!("{PASSWORD}\n"))
        .assert()
        .success()
        .stderr(predicates::str::is_empty());
    assert!(!h.path().join("credentials.json").exists());
    h.c("whoami")
        .success()
        .stdout(contains("keyring <kr@example.com>"));
    h.out("echo kept > k.txt");
    h.c("sync").success().stdout(contains("Main: 1 pushed"));
    h.c("logout").success();
    h.c("whoami").code(1);
}

#[test]
fn a_file_too_large_for_the_server_is_left_out_and_everything_else_syncs() {
    let server = Server::start(None, &["--max-file-size", "1KiB"]);
    let (laptop, desktop) = pair(&server, "big");
    laptop
        .out("echo small > small.txt; mkdir -p ~/Projects/Later; echo later > ~/Projects/Later/l");
    std::fs::write(laptop.path().join("big.bin"), vec![7u8; 2048]).unwrap();
    laptop.out(&format!(
        "import {} ~/Projects/Main/big.bin",
        laptop.path().join("big.bin").display()
    ));
    // The big file is named, the rest of the project and the project after it go up, and
    // the status says that not everything was synced.
    laptop
        .c("sync")
        .code(1)
        .stderr(contains(
            "sync: Main: big.bin is larger than the server accepts (1 KiB); it stays here, unsynced",
        ))
        .stdout(contains("Main: 1 pushed"))
        .stdout(contains("Later: 1 pushed"));
    desktop.c("sync").success();
    assert_eq!(
        desktop.files("~/Projects"),
        ["~/Projects/Later/l", "~/Projects/Main/small.txt"]
    );
    // The big file is still here, untouched, and the next sync says the same.
    assert!(laptop.out("ls -l big.bin").contains(" 2048 "));
    laptop
        .c("sync")
        .code(1)
        .stderr(contains("big.bin is larger"));
}

#[test]
fn a_full_storage_quota_is_reported_and_what_fits_is_synced() {
    let server = Server::start(None, &["--quota", "1K"]);
    let laptop = machine(&server, "full", true);
    for (name, byte) in [("a.bin", 1u8), ("b.bin", 2), ("c.bin", 3)] {
        std::fs::write(laptop.path().join(name), vec![byte; 600]).unwrap();
        laptop.out(&format!(
            "import {} ~/Projects/Main/{name}",
            laptop.path().join(name).display()
        ));
    }
    laptop
        .c("sync")
        .code(1)
        .stdout(contains("Main: 1 pushed"))
        .stderr(contains(
            "The account's storage is full: 600 bytes of its 1 KiB are used",
        ))
        .stderr(contains("not sent, the storage is full"));
    // Nothing here was touched.
    assert_eq!(laptop.files("~/Projects/Main").len(), 3);
}

#[test]
fn large_files_over_the_quota_are_each_reported_and_the_rest_is_synced() {
    // Streamed uploads (over 1 MiB) refused for the quota: each is named, and the small
    // files, sent two at a time, all go up.
    let server = Server::start(None, &["--quota", "3M"]);
    let laptop = machine(&server, "fullbig", true);
    for (name, byte) in [("a.bin", 1u8), ("b.bin", 2), ("c.bin", 3)] {
        std::fs::write(laptop.path().join(name), vec![byte; 2 << 20]).unwrap();
        laptop.out(&format!(
            "import {} ~/Projects/Main/{name}",
            laptop.path().join(name).display()
        ));
    }
    let script: String = (0..10).map(|i| format!("echo s{i} > s{i}.txt\n")).collect();
    laptop.cmd().write_stdin(script).assert().success();
    let out = laptop.c("sync").code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("Main: 11 pushed"), "{stdout}\n{err}");
    assert_eq!(
        err.matches("not sent, the storage is full").count(),
        2,
        "{stdout}\n{err}"
    );
}

#[test]
fn every_file_whose_content_the_full_storage_refused_is_named() {
    // Two files share each content; the quota takes one content. Both files of the other
    // are left out, and both are named.
    let server = Server::start(None, &["--quota", "1K"]);
    let laptop = machine(&server, "twins", true);
    for (name, byte) in [("a.bin", 1u8), ("a2.bin", 1), ("b.bin", 2), ("b2.bin", 2)] {
        std::fs::write(laptop.path().join(name), vec![byte; 600]).unwrap();
        laptop.out(&format!(
            "import {} ~/Projects/Main/{name}",
            laptop.path().join(name).display()
        ));
    }
    let out = laptop.c("sync").code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("Main: 2 pushed"), "{stdout}\n{err}");
    assert_eq!(
        err.matches("not sent, the storage is full").count(),
        2,
        "{stdout}\n{err}"
    );
}

/// Random histories on two machines: both sync until they agree, and nothing either one
/// wrote is lost.
mod convergence {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicU32, Ordering};
    use valyxo::hub::{Hub, HubOptions};
    use valyxo::vfs::{Kind, VPath};

    /// Paths the histories use: few, so that files, folders and type changes collide.
    const NAMES: [&str; 9] = ["a", "b", "c", "a/b", "a/c", "b/a", "c/a", "a/b/c", "b/a/c"];

    type Tree = BTreeMap<String, String>;

    static TOKEN: AtomicU32 = AtomicU32::new(0);

    fn token() -> String {
        format!("t{}", TOKEN.fetch_add(1, Ordering::Relaxed))
    }

    /// One change a person makes, chosen against the tree as it is: `kind` picks the change,
    /// `a` and `b` what it applies to.
    #[derive(Clone, Debug)]
    struct Op {
        kind: u8,
        a: u8,
        b: u8,
    }

    fn op() -> impl Strategy<Value = Op> {
        (0u8..5, any::<u8>(), any::<u8>()).prop_map(|(kind, a, b)| Op { kind, a, b })
    }

    fn hub(h: &Home) -> std::sync::Arc<Hub> {
        Hub::open(HubOptions {
            home: Some(h.path().to_path_buf()),
            no_color: true,
            ..Default::default()
        })
        .expect("open the home")
    }

    fn vpath(project: &str, rel: &str) -> VPath {
        VPath::parse_absolute(&format!("/Projects/{project}/{rel}")).unwrap()
    }

    /// The project's files and their text.
    fn tree(h: &Home, project: &str) -> Tree {
        let hub = hub(h);
        let root = VPath::parse_absolute(&format!("/Projects/{project}")).unwrap();
        let mut t = Tree::new();
        if !hub.vfs.is_dir(&root) {
            return t;
        }
        for e in hub.vfs.walk(&root).unwrap() {
            if e.kind == Kind::File {
                let rel = e.path.strip_prefix(&root).unwrap().join("/");
                let text = String::from_utf8(hub.vfs.read(&e.path).unwrap()).unwrap();
                t.insert(rel, text);
            }
        }
        t
    }

    fn ancestors(p: &str) -> Vec<&str> {
        p.match_indices('/').map(|(i, _)| &p[..i]).collect()
    }

    /// Makes room for a file at `rel`: a folder there, or a file where one of its folders
    /// should be, is removed (as a person replacing one with the other would).
    fn clear_way(hub: &Hub, project: &str, rel: &str) {
        let p = vpath(project, rel);
        if hub.vfs.is_dir(&p) {
            hub.vfs.remove(&p, true).unwrap();
        }
        for a in ancestors(rel) {
            let ap = vpath(project, a);
            if hub.vfs.exists(&ap) && !hub.vfs.is_dir(&ap) {
                hub.vfs.remove(&ap, false).unwrap();
            }
        }
        if let Some(parent) = p.parent() {
            hub.vfs.mkdir(&parent, true).unwrap();
        }
    }

    /// Applies `ops` to the project on `h`; returns the contents written.
    fn act(h: &Home, project: &str, ops: &[Op]) -> BTreeSet<String> {
        let hub = hub(h);
        hub.vfs
            .mkdir(
                &VPath::parse_absolute(&format!("/Projects/{project}")).unwrap(),
                true,
            )
            .unwrap();
        let mut written = BTreeSet::new();
        for op in ops {
            let files: Vec<String> = tree(h, project).into_keys().collect();
            let pick = |n: u8| files.get(n as usize % files.len().max(1)).cloned();
            match op.kind {
                // Write a file (a new one, or in place of a folder or over a file's name).
                0 => {
                    let rel = NAMES[op.a as usize % NAMES.len()];
                    clear_way(&hub, project, rel);
                    let t = token();
                    hub.vfs.write(&vpath(project, rel), t.as_bytes()).unwrap();
                    written.insert(t);
                }
                // Delete a file.
                1 => {
                    if let Some(f) = pick(op.a) {
                        hub.vfs.remove(&vpath(project, &f), false).unwrap();
                    }
                }
                // Rename a file.
                2 => {
                    let (Some(from), to) = (pick(op.a), NAMES[op.b as usize % NAMES.len()]) else {
                        continue;
                    };
                    if from == to || to.starts_with(&format!("{from}/")) {
                        continue;
                    }
                    // Moving into its own place's way would remove it first.
                    if from.starts_with(&format!("{to}/")) || ancestors(to).contains(&from.as_str())
                    {
                        continue;
                    }
                    clear_way(&hub, project, to);
                    if hub.vfs.exists(&vpath(project, &from)) {
                        hub.vfs
                            .rename(&vpath(project, &from), &vpath(project, to))
                            .unwrap();
                    }
                }
                // Edit a file.
                3 => {
                    if let Some(f) = pick(op.a) {
                        let t = token();
                        hub.vfs.write(&vpath(project, &f), t.as_bytes()).unwrap();
                        written.insert(t);
                    }
                }
                // Delete a folder with everything in it.
                _ => {
                    let dirs: BTreeSet<&str> = files.iter().flat_map(|f| ancestors(f)).collect();
                    if let Some(d) = dirs.iter().nth(op.a as usize % dirs.len().max(1)) {
                        hub.vfs.remove(&vpath(project, d), true).unwrap();
                    }
                }
            }
        }
        written
    }

    fn sync(h: &Home, project: &str) {
        h.c(&format!("sync {project}")).success();
    }

    struct World {
        _server: Server,
        a: Home,
        b: Home,
    }

    fn world() -> &'static std::sync::Mutex<World> {
        static W: std::sync::OnceLock<std::sync::Mutex<World>> = std::sync::OnceLock::new();
        W.get_or_init(|| {
            let server = Server::sqlite();
            // A static is never dropped: when the test program exits, the server is
            // stopped and the temporary folders of the world are removed.
            static PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
            static DIRS: std::sync::Mutex<Vec<std::path::PathBuf>> =
                std::sync::Mutex::new(Vec::new());
            extern "C" fn stop_server() {
                let pid = PID.load(Ordering::SeqCst);
                if pid > 0 {
                    // SAFETY: a signal to the server this program started, then a wait for
                    // that child to end.
                    unsafe {
                        libc::kill(pid, libc::SIGTERM);
                        libc::waitpid(pid, std::ptr::null_mut(), 0);
                    }
                }
                for d in DIRS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    let _ = std::fs::remove_dir_all(d);
                }
            }
            PID.store(server.pid() as i32, Ordering::SeqCst);
            // SAFETY: registers a plain function to run at exit.
            unsafe { libc::atexit(stop_server) };
            let a = machine(&server, "prop", true);
            let b = machine(&server, "prop", false);
            DIRS.lock().unwrap().extend(
                [server.dir(), a.path(), b.path()]
                    .into_iter()
                    .map(std::path::Path::to_path_buf),
            );
            std::sync::Mutex::new(World {
                _server: server,
                a,
                b,
            })
        })
    }

    static PROJECT: AtomicU32 = AtomicU32::new(0);

    /// A history the property found: one machine renames `b/a/c` to `c` and then to `b/a`,
    /// the folder it was in; the other must follow onto that folder's name.
    #[test]
    fn a_file_renamed_onto_the_folder_it_was_in() {
        let o = |kind, a, b| Op { kind, a, b };
        // NAMES[8] = "b/a/c"; then "c" (NAMES[2]); then "b/a" (NAMES[5]).
        check(
            vec![o(0, 8, 0)],
            vec![(vec![], vec![o(2, 0, 2), o(2, 0, 5)])],
        )
        .unwrap();
    }

    fn check(start: Vec<Op>, rounds: Vec<(Vec<Op>, Vec<Op>)>) -> Result<(), TestCaseError> {
        let w = world().lock().unwrap_or_else(|p| p.into_inner());
        let project = format!("P{}", PROJECT.fetch_add(1, Ordering::Relaxed));
        let (a, b) = (&w.a, &w.b);
        act(a, &project, &start);
        if tree(a, &project).is_empty() {
            hub(a).vfs.write(&vpath(&project, "keep"), b"keep").unwrap();
        }
        sync(a, &project);
        sync(b, &project);
        prop_assert_eq!(tree(a, &project), tree(b, &project));
        for (ops_a, ops_b) in rounds {
            let before = tree(a, &project);
            let wrote_a = act(a, &project, &ops_a);
            let wrote_b = act(b, &project, &ops_b);
            let (end_a, end_b) = (tree(a, &project), tree(b, &project));
            // Both sync, then the first again to take in the second's changes.
            sync(a, &project);
            sync(b, &project);
            sync(a, &project);
            let (fa, fb) = (tree(a, &project), tree(b, &project));
            prop_assert_eq!(&fa, &fb, "the machines do not agree");
            let kept: BTreeSet<&String> = fa.values().collect();
            // What each machine wrote in this round, and still had, is somewhere.
            for (wrote, end) in [(&wrote_a, &end_a), (&wrote_b, &end_b)] {
                for t in wrote.iter().filter(|t| end.values().any(|v| v == *t)) {
                    prop_assert!(kept.contains(t), "{} was lost: {:?}", t, fa);
                }
            }
            // What neither touched stays where it was.
            for (p, v) in &before {
                if end_a.get(p) == Some(v) && end_b.get(p) == Some(v) {
                    prop_assert_eq!(fa.get(p), Some(v), "{} changed", p);
                }
            }
            // And a further sync has nothing to do on either machine.
            for h in [a, b] {
                h.c(&format!("sync status {project}"))
                    .success()
                    .stdout(contains(format!("{project}: up to date")));
            }
        }
        Ok(())
    }

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(24)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: cases(),
            max_shrink_iters: 64,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn two_machines_always_converge_and_lose_nothing(
            start in prop::collection::vec(op(), 1..6),
            rounds in prop::collection::vec(
                (prop::collection::vec(op(), 0..6), prop::collection::vec(op(), 0..6)),
                1..3,
            ),
        ) {
            check(start, rounds)?;
        }
    }

    /// The history from the report: one machine turns a file into a folder, the other edits
    /// the file.
    #[test]
    fn a_file_edited_here_that_became_a_folder_there() {
        let w = world().lock().unwrap_or_else(|p| p.into_inner());
        let (a, b) = (&w.a, &w.b);
        a.out("mkdir -p ~/Projects/Clash; echo v1 > ~/Projects/Clash/x");
        sync(a, "Clash");
        sync(b, "Clash");
        a.out("cd ~/Projects/Clash; rm x; mkdir x; echo inside > x/y");
        sync(a, "Clash");
        b.out("echo edited > ~/Projects/Clash/x");
        b.c("sync Clash")
            .success()
            .stdout(contains("this machine's version is kept as 'x (conflict"));
        sync(a, "Clash");
        let (ta, tb) = (tree(a, "Clash"), tree(b, "Clash"));
        assert_eq!(ta, tb);
        assert_eq!(ta["x/y"], "inside\n");
        let copy: Vec<&String> = ta.keys().filter(|k| k.starts_with("x (conflict")).collect();
        assert_eq!(copy.len(), 1, "{ta:?}");
        assert_eq!(ta[copy[0]], "edited\n");
        // And it stays settled.
        b.c("sync Clash")
            .success()
            .stdout(contains("Clash: up to date"));
    }
}

#[test]
fn a_file_larger_than_the_old_32_mib_limit_syncs_byte_exact() {
    let server = Server::sqlite();
    let (laptop, desktop) = pair(&server, "huge");
    let mounted = machine(&server, "huge", false);
    // 40 MiB that differ from byte to byte.
    let data: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(laptop.path().join("big.bin"), &data).unwrap();
    laptop.out(&format!(
        "import {} ~/Projects/Main/big.bin",
        laptop.path().join("big.bin").display()
    ));
    laptop
        .c("sync")
        .success()
        .stdout(contains("Main: 1 pushed — 40.0 MiB up, 0 B down"));
    // Down into the stored tree on one machine, and into a host folder on another.
    desktop
        .c("sync")
        .success()
        .stdout(contains("Main: 1 pulled — 0 B up, 40.0 MiB down"));
    let out = desktop.path().join("out.bin");
    desktop.out(&format!("export ~/Projects/Main/big.bin {}", out.display()));
    assert!(
        std::fs::read(&out).unwrap() == data,
        "the stored copy differs"
    );
    let host = common::host_dir();
    mounted.out(&format!("mount {} ~/Projects/Main", host.path().display()));
    mounted.c("sync").success();
    assert!(
        std::fs::read(host.path().join("big.bin")).unwrap() == data,
        "the host copy differs"
    );
}

#[test]
fn an_account_with_more_projects_and_files_than_a_page_syncs_them_all() {
    // Pages of three at most: seven projects and eleven files in one of them take several.
    let server = Server::start(None, &["--page-size", "2", "--max-page-size", "3"]);
    let laptop = machine(&server, "pia", true);
    let mut script = String::new();
    for p in 1..=6 {
        script.push_str(&format!(
            "mkdir -p ~/Projects/P{p}; echo {p} > ~/Projects/P{p}/readme.txt\n"
        ));
    }
    for i in 0..11 {
        script.push_str(&format!(
            "mkdir -p ~/Projects/Big/d{}; echo big{i} > ~/Projects/Big/d{}/f{i:02}.txt\n",
            i % 3,
            i % 3
        ));
    }
    laptop.cmd().write_stdin(script).assert().success();
    laptop
        .c("sync")
        .success()
        .stdout(contains("Big: 11 pushed"));
    let desktop = machine(&server, "pia", false);
    desktop
        .c("sync")
        .success()
        .stdout(contains("Big: 11 pulled"))
        .stdout(contains("P6: 1 pulled"));
    assert_eq!(laptop.files("~/Projects"), desktop.files("~/Projects"));
    assert_eq!(desktop.files("~/Projects").len(), 6 + 11);
    // Nothing beyond the first page is taken for deleted: both sides stay as they are.
    laptop
        .c("sync")
        .success()
        .stdout(contains("Big: up to date"));
    desktop.out("echo changed > ~/Projects/Big/d1/f10.txt; rm ~/Projects/Big/d0/f09.txt");
    desktop
        .c("sync Big")
        .success()
        .stdout(contains("Big: 1 pushed, 1 deleted"));
    laptop
        .c("sync")
        .success()
        .stdout(contains("Big: 1 pulled, 1 deleted"));
    assert_eq!(laptop.out("cat ~/Projects/Big/d1/f10.txt"), "changed\n");
    assert_eq!(laptop.files("~/Projects"), desktop.files("~/Projects"));
}

// ---- adversarial scenarios: two machines doing what people do ----

#[test]
fn a_deleted_projects_folder_deletes_no_project() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "gon");
    let t = token(&server, "gon");
    a.out("echo m > m.txt; mkdir ~/Projects/P; echo p > ~/Projects/P/p.txt");
    a.c("sync").success();
    b.c("sync").success();
    // The whole of ~/Projects goes (the next session makes ~/Projects/Main again, empty).
    a.out("cd /; rm -r ~/Projects");
    let out = a.c("sync").success().get_output().clone();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!text.contains("deleted"), "{text}");
    let names: Vec<String> = projects(&server, &t).into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["Main", "P"]);
    // Fetched again, and the other machine keeps everything.
    assert_eq!(
        a.out("cat ~/Projects/P/p.txt ~/Projects/Main/m.txt"),
        "p\nm\n"
    );
    b.c("sync").success();
    assert_eq!(
        b.out("cat ~/Projects/P/p.txt ~/Projects/Main/m.txt"),
        "p\nm\n"
    );
}

/// A TCP proxy in front of a server that, while `hold` is set, holds back every request
/// that starts with `ask` (such as `GET /api/blobs/`, a download) until `hold` is cleared:
/// the client waits there, as on a stalled network; `held` says one is waiting.
struct Stall {
    url: String,
    ask: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Stall {
    fn new(server: &Server) -> Stall {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let to = server.url.trim_start_matches("http://").to_string();
        let ask = Arc::new(Mutex::new(Vec::new()));
        let hold = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicBool::new(false));
        let (a, h, hd) = (ask.clone(), hold.clone(), held.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { break };
                let Ok(mut upstream) = std::net::TcpStream::connect(&to) else {
                    continue;
                };
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Both);
                });
                let (a, h, hd) = (a.clone(), h.clone(), hd.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let ask = a.lock().unwrap().clone();
                        // Every such request waits while the hold lasts (a sync may send
                        // several at once: letting any through would make what it fetched
                        // before being cut off a matter of timing).
                        if h.load(Ordering::SeqCst) && !ask.is_empty() && buf[..n].starts_with(&ask)
                        {
                            hd.store(true, Ordering::SeqCst);
                            while h.load(Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_millis(5));
                            }
                        }
                        if upstream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = upstream.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Stall {
            url,
            ask,
            hold,
            held,
        }
    }

    /// Starts `line` on `h` and returns once it is held at a request starting with `ask`.
    fn start_held(&self, h: &Home, line: &str, ask: &str) -> std::process::Child {
        use std::sync::atomic::Ordering;
        *self.ask.lock().unwrap() = ask.as_bytes().to_vec();
        self.held.store(false, Ordering::SeqCst);
        self.hold.store(true, Ordering::SeqCst);
        let mut child = std::process::Command::new(common::BIN)
            .arg("--home")
            .arg(h.path())
            .args(["-c", line])
            .env_remove("VALYXO_HOME")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !self.held.load(Ordering::SeqCst) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "'{line}' never asked for {ask}"
            );
            if let Ok(Some(status)) = child.try_wait() {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "'{line}' ended ({status}) before it asked for {ask}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // The request is in the proxy's hands.
        std::thread::sleep(std::time::Duration::from_millis(50));
        child
    }

    /// Lets the held request go on.
    fn release(&self) {
        self.hold.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs `line` on `h` until it stalls on a download, then kills it.
    fn kill_at_download(&self, h: &Home, line: &str) {
        let mut child = self.start_held(h, line, "GET /api/blobs/");
        let _ = child.kill();
        let _ = child.wait();
        self.release();
    }
}

#[test]
fn a_project_deleted_after_a_sync_that_was_cut_off_keeps_what_it_never_fetched() {
    let server = Server::sqlite();
    let stall = Stall::new(&server);
    let b = machine(&server, "cut", true);
    let a = Home::signed_in(&stall.url, "cut", false);
    let t = token(&server, "cut");
    b.out("mkdir ~/Projects/P; echo v1 > ~/Projects/P/f.txt");
    b.c("sync").success();
    a.c("sync").success();
    // Edited on one machine; the other's sync is cut off while it fetches the edit.
    b.out("echo 'work of b' > ~/Projects/P/f.txt; echo new > ~/Projects/P/g.txt");
    b.c("sync").success();
    stall.kill_at_download(&a, "sync P");
    assert_eq!(a.out("cat ~/Projects/P/f.txt"), "v1\n");
    // The project is deleted there: b's work, never seen there, is not deleted with it.
    a.out("cd /; rm -r ~/Projects/P");
    a.c("sync").success();
    assert!(
        projects(&server, &t).iter().any(|p| p.0 == "P"),
        "the project was deleted on the server"
    );
    b.c("sync").success();
    assert_eq!(b.out("cat ~/Projects/P/f.txt"), "work of b\n");
    a.c("sync").success();
    assert_eq!(a.out("cat ~/Projects/P/f.txt"), "work of b\n");
}

#[test]
fn a_project_deleted_after_a_commit_that_crossed_another_machines_keeps_that_machines_work() {
    let server = Server::sqlite();
    let stall = Stall::new(&server);
    let b = machine(&server, "crs", true);
    let a = Home::signed_in(&stall.url, "crs", false);
    let t = token(&server, "crs");
    b.out("mkdir ~/Projects/P; echo v1 > ~/Projects/P/f.txt; echo v1 > ~/Projects/P/g.txt");
    b.c("sync").success();
    a.c("sync").success();
    // One machine's commit waits on the network while the other commits another file.
    a.out("echo 'a edits g' > ~/Projects/P/g.txt");
    b.out("echo 'b edits f' > ~/Projects/P/f.txt");
    let held = stall.start_held(&a, "sync P", "POST /api/projects/");
    b.c("sync").success().stdout(contains("P: 1 pushed"));
    stall.release();
    let out = held.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(a.out("cat ~/Projects/P/f.txt"), "v1\n");
    // Deleted there before another sync: b's edit, never seen there, is not deleted.
    a.out("cd /; rm -r ~/Projects/P");
    a.c("sync").success();
    assert!(
        projects(&server, &t).iter().any(|p| p.0 == "P"),
        "the project was deleted on the server"
    );
    b.c("sync").success();
    assert_eq!(b.out("cat ~/Projects/P/f.txt"), "b edits f\n");
    a.c("sync").success();
    assert_eq!(
        a.out("cat ~/Projects/P/f.txt ~/Projects/P/g.txt"),
        "b edits f\na edits g\n"
    );
}

#[test]
fn a_project_deleted_while_a_file_too_large_hid_the_servers_change_keeps_that_change() {
    let server = Server::start(None, &["--max-file-size", "1KiB"]);
    let (a, b) = pair(&server, "hid");
    let t = token(&server, "hid");
    a.out("mkdir ~/Projects/P; echo v1 > ~/Projects/P/x; echo keep > ~/Projects/P/k");
    a.c("sync").success();
    b.c("sync").success();
    // Here x grows past the server's limit; there it is edited (and synced).
    std::fs::write(a.path().join("big"), vec![b'A'; 2048]).unwrap();
    a.out(&format!(
        "import {} ~/Projects/P/x",
        a.path().join("big").display()
    ));
    b.out("echo 'b edits x' > ~/Projects/P/x");
    b.c("sync").success();
    a.c("sync")
        .code(1)
        .stderr(contains("larger than the server accepts"));
    // The whole project is deleted here: b's edit, never seen here, is not deleted.
    a.out("cd /; rm -r ~/Projects/P");
    a.c("sync").success();
    assert!(
        projects(&server, &t).iter().any(|p| p.0 == "P"),
        "the project was deleted on the server"
    );
    b.c("sync").success();
    assert_eq!(b.out("cat ~/Projects/P/x"), "b edits x\n");
}

/// The files under ~/Projects on `h` with their text, by path.
fn everything(h: &Home) -> Vec<(String, String)> {
    h.files("~/Projects")
        .into_iter()
        .map(|f| {
            let text = h.out(&format!("cat '{f}'"));
            (f, text)
        })
        .collect()
}

#[test]
fn a_project_renamed_to_a_name_the_other_machine_made_meanwhile_reaches_both() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "twn");
    a.out("mkdir ~/Projects/Old; echo old > ~/Projects/Old/o.txt");
    a.c("sync").success();
    b.c("sync").success();
    a.out("cd /; mv ~/Projects/Old ~/Projects/New");
    a.c("sync").success();
    // Meanwhile the other machine made a project of that name.
    b.out("mkdir ~/Projects/New; echo 'b made this' > ~/Projects/New/b.txt");
    b.c("sync")
        .success()
        .stderr(contains(
            "~/Projects/New is already here: it keeps its name here",
        ))
        .stderr(contains(
            "this new folder is renamed ~/Projects/New (conflict ",
        ));
    // Then the other folder takes the server's name too.
    b.c("sync")
        .success()
        .stdout(contains("Old: renamed to New on the server; renamed here"));
    settle_and_check(&a, &b, &["b made this\n", "old\n"]);
    let t = token(&server, "twn");
    let names: Vec<String> = projects(&server, &t).into_iter().map(|p| p.0).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0] == "New" && names[1].starts_with("New (conflict "),
        "{names:?}"
    );
    for h in [&a, &b] {
        let e = everything(h);
        assert!(e.iter().any(|(_, t)| t == "b made this\n"), "{e:?}");
        assert!(e.iter().any(|(_, t)| t == "old\n"), "{e:?}");
    }
}

/// Syncs a, b, a, then checks both agree, a further sync has nothing to do, and every text
/// in `must` is in some file on both.
fn settle_and_check(a: &Home, b: &Home, must: &[&str]) {
    a.c("sync").success();
    b.c("sync").success();
    a.c("sync").success();
    let (ea, eb) = (everything(a), everything(b));
    assert_eq!(ea, eb, "the machines do not agree");
    for m in must {
        assert!(ea.iter().any(|(_, t)| t == m), "{m:?} was lost: {ea:?}");
    }
    for h in [a, b] {
        let s = h.out("sync status");
        assert!(s.lines().all(|l| l.ends_with(": up to date")), "{s}");
    }
}

#[test]
fn two_files_swapped_on_one_side_while_the_other_edits_one() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "swp");
    a.out("echo A > a; echo B > b");
    a.c("sync").success();
    b.c("sync").success();
    a.out("mv a t; mv b a; mv t b");
    b.out("echo 'B edited' > b");
    settle_and_check(&a, &b, &["A\n", "B\n", "B edited\n"]);
    // And swapped back with nothing edited: content only moves.
    b.out("mv a t; mv b a; mv t b");
    settle_and_check(&a, &b, &["A\n", "B\n", "B edited\n"]);
}

#[test]
fn a_file_renamed_and_its_old_name_made_again_with_other_content() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "rmk");
    a.out("echo one > x; echo two > y");
    a.c("sync").success();
    b.c("sync").success();
    a.out("mv x z; echo 'new x' > x; mv y w; echo 'new y' > y");
    b.out("echo 'b edits y' > y");
    settle_and_check(
        &a,
        &b,
        &["one\n", "new x\n", "two\n", "new y\n", "b edits y\n"],
    );
    assert_eq!(b.out("cat z x"), "one\nnew x\n");
}

#[test]
fn a_folder_of_identical_files_renamed_while_the_other_side_edits_one() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "dup");
    a.out("mkdir d; echo same > d/1; echo same > d/2; echo same > d/3; touch d/e1 d/e2");
    a.c("sync").success();
    b.c("sync").success();
    a.out("mv d e");
    b.out("echo 'b edits 2' > d/2; rm d/e1");
    settle_and_check(&a, &b, &["same\n", "b edits 2\n"]);
    let fa = a.files("~/Projects/Main");
    assert!(fa.iter().any(|f| f.ends_with("d/2")), "{fa:?}");
}

#[test]
fn identical_and_empty_files_renamed_to_each_others_names() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "per");
    a.out("echo s > a; echo s > b; echo s > c; touch e f; echo t > g");
    a.c("sync").success();
    b.c("sync").success();
    // A rotation among equal files, an empty file renamed, a rename onto an empty name.
    a.out("mv a x; mv b a; mv c b; mv x c; mv e h; mv g f");
    b.out("echo 'b edits c' > c");
    settle_and_check(&a, &b, &["s\n", "t\n", "", "b edits c\n"]);
}

#[test]
fn a_file_moved_into_a_mounted_folder_is_renamed_everywhere() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "mvm");
    let host = common::host_dir();
    std::fs::write(host.path().join("in.txt"), "inside\n").unwrap();
    a.out(&format!(
        "echo out > out.txt; mount {} ~/Projects/Main/m",
        host.path().display()
    ));
    a.c("sync").success();
    b.c("sync").success();
    a.out("mv out.txt m/out.txt; mv m/in.txt in.txt");
    b.out("echo 'b edits in' > m/in.txt");
    settle_and_check(&a, &b, &["out\n", "inside\n", "b edits in\n"]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "out\n"
    );
}

#[test]
fn a_sync_killed_after_its_commit_of_renames_is_finished_by_the_next() {
    let server = Server::sqlite();
    let stall = Stall::new(&server);
    let b = machine(&server, "kre", true);
    let a = Home::signed_in(&stall.url, "kre", false);
    a.out("mkdir d; echo 1 > d/one; echo 2 > d/two; echo z > z; echo w > w");
    a.c("sync").success();
    b.c("sync").success();
    b.out("echo 'b edits z' > z");
    b.c("sync").success();
    // Renamed here, and cut off after the commit, while fetching b's edit.
    a.out("mv d e; mv w v");
    stall.kill_at_download(&a, "sync");
    b.c("sync").success();
    settle_and_check(&a, &b, &["1\n", "2\n", "b edits z\n", "w\n"]);
    assert_eq!(b.out("cat e/one e/two v"), "1\n2\nw\n");
}

#[test]
fn a_sync_killed_while_following_many_renames_is_finished_by_the_next() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "kfo");
    let script: String = (0..150)
        .map(|i| format!("echo 'file {}' > d/f{i}.txt\n", i % 7))
        .collect();
    a.cmd()
        .write_stdin(format!("mkdir d\n{script}"))
        .assert()
        .success();
    a.c("sync").success();
    b.c("sync").success();
    a.out("mv d e");
    a.c("sync").success().stdout(contains("150 renamed"));
    let mut child = std::process::Command::new(common::BIN)
        .arg("--home")
        .arg(b.path())
        .args(["-c", "sync"])
        .env_remove("VALYXO_HOME")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(250));
    let _ = child.kill();
    let _ = child.wait();
    settle_and_check(&a, &b, &["file 0\n", "file 6\n"]);
    let all = everything(&b);
    assert_eq!(all.len(), 150, "{all:?}");
    for (f, text) in &all {
        assert!(f.starts_with("~/Projects/Main/e/f"), "{f}");
        let n: usize = f["~/Projects/Main/e/f".len()..f.len() - 4].parse().unwrap();
        assert_eq!(text, &format!("file {}\n", n % 7), "{f}");
    }
}

#[test]
fn a_project_holding_a_mount_deleted_on_the_server_does_not_stop_every_sync() {
    let server = Server::sqlite();
    let a = machine(&server, "hmd", true);
    let t = token(&server, "hmd");
    let host = common::host_dir();
    std::fs::write(host.path().join("h.txt"), "host\n").unwrap();
    a.out(&format!(
        "mkdir ~/Projects/P; echo p > ~/Projects/P/p.txt; mount {} ~/Projects/P/m",
        host.path().display()
    ));
    a.c("sync").success();
    let id = projects(&server, &t)
        .into_iter()
        .find(|p| p.0 == "P")
        .unwrap()
        .1;
    let d = call(
        &server.url,
        "DELETE",
        &format!("/api/projects/{id}"),
        Some(&t),
        None,
    );
    assert_eq!(d.status, 200, "{}", d.body);
    a.out("echo later > ~/Projects/Main/later.txt");
    // The other projects still sync, now and at the next sync.
    for _ in 0..2 {
        let out = a.c("sync").get_output().clone();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + String::from_utf8_lossy(&out.stderr).as_ref();
        assert!(text.contains("Main: "), "{text}");
    }
    assert!(projects(&server, &t).iter().any(|p| p.0 == "Main"));
    // The mount stays, and so does its host folder.
    assert!(host.path().is_dir());
    assert_eq!(a.out("mounts").matches("/Projects/P/m").count(), 1);
}

#[test]
fn a_new_machines_first_sync_cut_off_deletes_nothing_at_the_next() {
    let server = Server::sqlite();
    let stall = Stall::new(&server);
    let a = machine(&server, "fir", true);
    let t = token(&server, "fir");
    a.out("mkdir ~/Projects/P; echo 'all my work' > ~/Projects/P/w.txt");
    a.c("sync").success();
    // A new machine's first sync is cut off before it wrote anything of P.
    let b = Home::signed_in(&stall.url, "fir", false);
    stall.kill_at_download(&b, "sync");
    let out = b.c("sync").success().get_output().clone();
    let text = String::from_utf8_lossy(&out.stdout).to_string()
        + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(!text.contains("deleted"), "{text}");
    assert!(
        projects(&server, &t).iter().any(|p| p.0 == "P"),
        "the project was deleted on the server"
    );
    assert_eq!(b.out("cat ~/Projects/P/w.txt"), "all my work\n");
    a.c("sync").success();
    assert_eq!(a.out("cat ~/Projects/P/w.txt"), "all my work\n");
}

#[test]
fn a_project_renamed_alike_on_both_machines_stays_one_project() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "ali");
    let t = token(&server, "ali");
    a.out("mkdir ~/Projects/Old; echo o > ~/Projects/Old/o.txt");
    a.c("sync").success();
    b.c("sync").success();
    let id = projects(&server, &t)
        .into_iter()
        .find(|p| p.0 == "Old")
        .unwrap()
        .1;
    for h in [&a, &b] {
        h.out("cd /; mv ~/Projects/Old ~/Projects/New");
    }
    a.c("sync").success();
    b.c("sync status")
        .success()
        .stdout(contains("Old: renamed to New here and on the server"))
        .stdout(contains("New:").not());
    let out = b.c("sync").success().get_output().clone();
    let text = String::from_utf8_lossy(&out.stdout).to_string()
        + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(!text.contains("deleted"), "{text}");
    assert!(text.contains("Old: renamed to New"), "{text}");
    assert_eq!(projects(&server, &t), [("New".to_string(), id)]);
    a.c("sync").success();
    for h in [&a, &b] {
        assert_eq!(h.out("cat ~/Projects/New/o.txt"), "o\n");
        h.c("sync").success().stdout(contains("New: up to date"));
    }
}

#[test]
fn a_project_deleted_here_while_renamed_and_edited_there_is_fetched_under_its_new_name() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "dre");
    a.out("mkdir ~/Projects/P; echo v1 > ~/Projects/P/f; echo k > ~/Projects/P/k");
    a.c("sync").success();
    b.c("sync").success();
    b.out("cd /; mv ~/Projects/P ~/Projects/Q; echo 'b edits' > ~/Projects/Q/f");
    b.c("sync").success();
    a.out("cd /; rm -r ~/Projects/P");
    a.c("sync")
        .success()
        .stderr(contains("P: deleted here, but it changed on the server"));
    assert_eq!(a.out("cat ~/Projects/Q/f ~/Projects/Q/k"), "b edits\nk\n");
    assert!(a.out("ls ~/Projects").lines().all(|l| l != "P"));
    settle_and_check(&a, &b, &["b edits\n", "k\n"]);
}

#[test]
fn two_projects_whose_names_are_swapped_keep_every_file() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "psw");
    a.out("mkdir ~/Projects/P ~/Projects/Q; echo p > ~/Projects/P/p; echo q > ~/Projects/Q/q");
    a.c("sync").success();
    b.c("sync").success();
    a.out("cd /; mv ~/Projects/P ~/Projects/T; mv ~/Projects/Q ~/Projects/P; mv ~/Projects/T ~/Projects/Q");
    b.out("echo 'b edits p' > ~/Projects/P/p; echo 'b adds' > ~/Projects/Q/new");
    settle_and_check(&a, &b, &["p\n", "q\n", "b edits p\n", "b adds\n"]);
}

#[test]
fn a_project_with_a_file_the_full_storage_refused_can_still_be_deleted() {
    let server = Server::start(None, &["--quota", "1K"]);
    let a = machine(&server, "qdl", true);
    let t = token(&server, "qdl");
    for (name, byte) in [("a.bin", 1u8), ("b.bin", 2)] {
        std::fs::write(a.path().join(name), vec![byte; 600]).unwrap();
    }
    a.out(&format!(
        "mkdir ~/Projects/P; import {} ~/Projects/P/a.bin",
        a.path().join("a.bin").display()
    ));
    a.c("sync").success();
    a.out(&format!(
        "import {} ~/Projects/P/b.bin; echo small > ~/Projects/P/c.txt",
        a.path().join("b.bin").display()
    ));
    // (A server that refuses a body may close the connection before the client reads its
    // answer, under load: the sync then says so, and the next one hears the answer.)
    let mut said = String::new();
    for _ in 0..3 {
        let out = a.c("sync").code(1).get_output().clone();
        said = String::from_utf8_lossy(&out.stdout).to_string()
            + String::from_utf8_lossy(&out.stderr).as_ref();
        if said.contains("the storage is full") {
            break;
        }
    }
    assert!(
        said.contains("P: 1 pushed") && said.contains("the storage is full"),
        "{said}"
    );
    // Deleting the project is how to make room.
    a.out("cd /; rm -r ~/Projects/P");
    a.c("sync")
        .success()
        .stdout(contains("P: deleted here; deleted on the server"));
    assert!(projects(&server, &t).iter().all(|p| p.0 != "P"));
}

#[test]
fn a_file_moved_up_in_place_of_its_folder_is_followed() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "mup");
    a.out("mkdir d; echo inner > d/f; echo other > o");
    a.c("sync").success();
    b.c("sync").success();
    a.out("mv d/f t; rm -r d; mv t d");
    a.c("sync").success();
    b.c("sync").success();
    assert_eq!(b.out("cat d"), "inner\n");
    settle_and_check(&a, &b, &["inner\n", "other\n"]);
}

#[test]
fn a_folder_emptied_by_renames_and_replaced_by_one_of_its_files_is_followed() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "mu2");
    a.out("mkdir d; echo F > d/f; echo G > d/g");
    a.c("sync").success();
    b.c("sync").success();
    a.out("mv d/g e; mv d/f t; rm -r d; mv t d");
    a.c("sync").success();
    b.c("sync").success();
    assert_eq!(b.out("cat d e"), "F\nG\n");
    settle_and_check(&a, &b, &["F\n", "G\n"]);
}

/// A template made on one machine is there on the other after a sync: the templates folder
/// (`~/Projects/Templates`, setting `new.templates`) is a project like any other.
#[test]
fn templates_sync_like_projects() {
    let server = Server::sqlite();
    let (laptop, desktop) = pair(&server, "tess");
    laptop.out(
        "mkdir -p ~/Projects/Templates/notes; \
         echo '# {{name}} ({{name_kebab}})' > ~/Projects/Templates/notes/README.md",
    );
    laptop
        .c("sync")
        .success()
        .stdout(contains("Templates: 1 pushed"));
    desktop.c("sync").success();
    assert!(desktop
        .out("new --list")
        .contains("notes    Your template in ~/Projects/Templates/notes\n"));
    desktop.c("new notes 'Meeting Notes'").success();
    assert_eq!(
        desktop.out("cat ~/Projects/'Meeting Notes'/README.md"),
        "# Meeting Notes (meeting-notes)\n"
    );
    // A change to the template on the second machine comes back to the first.
    desktop.out("echo '{{year}}' >> ~/Projects/Templates/notes/README.md; sync Templates");
    laptop.c("sync Templates").success();
    laptop.c("new notes later").success();
    let readme = laptop.out("cat ~/Projects/later/README.md");
    assert!(readme.starts_with("# later (later)\n20"), "{readme}");
}

/// A server (an old or a modified one) that renames a project to a name that cannot be a
/// folder here — a path, or one holding an escape — does not stop every sync: the project
/// keeps its name here, and it and every other project still sync.
#[test]
fn a_project_renamed_on_the_server_to_a_name_that_cannot_be_a_folder_keeps_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let server = Server::start(Some(&format!("sqlite:{}", db.display())), &[]);
    let (a, b) = pair(&server, "hpn");
    a.out("mkdir ~/Projects/X ~/Projects/Z; echo x > ~/Projects/X/f; echo z > ~/Projects/Z/f");
    a.c("sync").success();
    b.c("sync").success();
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute(
        "UPDATE projects SET name = 'Main/../../etc' WHERE name = 'X'",
        [],
    )
    .unwrap();
    c.execute(
        "UPDATE projects SET name = 'e\u{1b}[31mvil' WHERE name = 'Z'",
        [],
    )
    .unwrap();
    drop(c);
    a.out("echo more > ~/Projects/Main/m; echo x2 > ~/Projects/X/f; echo z2 > ~/Projects/Z/f");
    a.c("sync")
        .stdout(contains("Main: 1 pushed"))
        .stdout(contains("X: 1 pushed"))
        .stdout(contains("Z: 1 pushed"))
        .stderr(contains(
            "X: renamed to Main/../../etc on the server, which cannot be a folder here",
        ))
        .stderr(contains("Z: renamed to $'e\\e[31mvil' on the server"));
    assert_eq!(a.out("ls ~/Projects"), "Main\nX\nZ\n");
    b.c("sync")
        .stdout(contains("Main: 1 pulled"))
        .stdout(contains("X: 1 pulled"))
        .stdout(contains("Z: 1 pulled"));
    assert_eq!(
        b.out("cat ~/Projects/X/f ~/Projects/Z/f ~/Projects/Main/m"),
        "x2\nz2\nmore\n"
    );
}

/// A server that lists a file and a file beneath it (`a` and `a/b`; no valyxo server
/// does): the first is synced, the one beneath it is skipped in words, and the rest of the
/// project syncs, at this sync and the next.
#[test]
fn a_server_listing_a_file_and_a_file_beneath_it_syncs_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let server = Server::start(Some(&format!("sqlite:{}", db.display())), &[]);
    let (a, b) = pair(&server, "fbf");
    a.out("mkdir ~/Projects/P; echo x > ~/Projects/P/a; echo c > ~/Projects/P/c");
    a.c("sync").success();
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute(
        "INSERT INTO files (project_id, path, hash, size, version) \
         SELECT project_id, 'a/b', hash, size, version FROM files WHERE path = 'c'",
        [],
    )
    .unwrap();
    drop(c);
    for _ in 0..2 {
        // Status 1: not everything synced.
        b.c("sync")
            .code(1)
            .stderr(contains("a/b: the server lists it beneath the file a"));
        assert_eq!(b.out("cat ~/Projects/P/a ~/Projects/P/c"), "x\nc\n");
    }
    a.out("echo c2 > ~/Projects/P/c");
    a.c("sync").code(1).stdout(contains("P: 1 pushed"));
    b.c("sync").code(1).stdout(contains("P: 1 pulled"));
    assert_eq!(b.out("cat ~/Projects/P/c"), "c2\n");
}

/// A project renamed on one machine while the other adds to it, and a new project made
/// under the old name: the other machine's next sync renames its folder, pushes its file,
/// and fetches the new project of the old name too, in one sync.
#[test]
fn a_project_renamed_there_and_a_new_one_of_its_old_name_both_arrive_in_one_sync() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "rnn");
    a.out("mkdir ~/Projects/X; echo 1 > ~/Projects/X/a");
    a.c("sync").success();
    b.c("sync").success();
    a.out("cd /; mv ~/Projects/X ~/Projects/Y");
    a.c("sync").success();
    a.out("mkdir ~/Projects/X; echo 'a new x' > ~/Projects/X/n");
    a.c("sync").success();
    b.out("echo 'b adds' > ~/Projects/X/b");
    b.c("sync")
        .success()
        .stdout(contains("X: renamed to Y on the server; renamed here"))
        .stdout(contains("X: 1 pulled"))
        .stdout(contains("Y: 1 pushed"));
    assert_eq!(
        b.out("cat ~/Projects/X/n ~/Projects/Y/b"),
        "a new x\nb adds\n"
    );
    settle_and_check(&a, &b, &["1\n", "a new x\n", "b adds\n"]);
}

/// The sync state of a home (each file's base), to put back with [`put_sync_state`].
type SyncState = Vec<(i64, String, Option<String>, i64)>;

fn sync_state(h: &Home) -> SyncState {
    let c = rusqlite::Connection::open(h.db()).unwrap();
    let mut st = c
        .prepare("SELECT project, path, hash, version FROM sync_files")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Puts back a sync state: with the files here put back too, as if a sync whose commit
/// reached the server was stopped before any of its local writes.
fn put_sync_state(h: &Home, state: SyncState) {
    let c = rusqlite::Connection::open(h.db()).unwrap();
    c.execute("DELETE FROM sync_files", []).unwrap();
    for (project, path, hash, version) in state {
        c.execute(
            "INSERT INTO sync_files (project, path, hash, version) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![project, path, hash, version],
        )
        .unwrap();
    }
}

/// A sync stopped after its commit sent a conflict copy, before it wrote the copy here: the
/// next sync finds the copy on the server and takes it as this machine's, rather than
/// sending the same version again as a second copy.
#[test]
fn a_sync_stopped_after_sending_a_conflict_copy_makes_no_second_copy() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "cpy");
    a.out("echo 0 > n.md");
    a.c("sync").success();
    b.c("sync").success();
    a.out("echo a > n.md");
    a.c("sync").success();
    b.out("echo b > n.md");
    let before = sync_state(&b);
    b.c("sync").success().stdout(contains("Main: 1 conflict"));
    let copy = b
        .out("ls")
        .lines()
        .find(|l| l.starts_with("n (conflict "))
        .unwrap()
        .to_string();
    b.out(&format!("rm '{copy}'; echo b > n.md"));
    put_sync_state(&b, before);
    b.c("sync")
        .success()
        .stdout(contains("Main: 1 conflict"))
        .stdout(contains("0 B up"));
    assert_eq!(b.out(&format!("cat n.md '{copy}'")), "a\nb\n");
    settle_and_check(&a, &b, &["a\n", "b\n"]);
    for h in [&a, &b] {
        let e = everything(h);
        assert_eq!(e.len(), 2, "one copy of this machine's version: {e:?}");
    }
}

/// The same for a file here that moves aside for the server's folder of its name.
#[test]
fn a_sync_stopped_after_moving_a_file_aside_for_a_folder_makes_no_second_copy() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "mva");
    a.out("echo 0 > x");
    a.c("sync").success();
    b.c("sync").success();
    a.out("rm x; mkdir x; echo in > x/f");
    a.c("sync").success();
    b.out("echo 'b edit' > x");
    let before = sync_state(&b);
    b.c("sync")
        .success()
        .stdout(contains("Main: 1 pulled, 1 conflict"));
    let copy = b
        .out("ls")
        .lines()
        .find(|l| l.starts_with("x (conflict "))
        .unwrap()
        .to_string();
    b.out(&format!("rm -r '{copy}' x; echo 'b edit' > x"));
    put_sync_state(&b, before);
    b.c("sync")
        .success()
        .stdout(contains("Main: 1 pulled, 1 conflict"))
        .stdout(contains("0 B up"));
    assert_eq!(b.out(&format!("cat x/f '{copy}'")), "in\nb edit\n");
    settle_and_check(&a, &b, &["in\n", "b edit\n"]);
    for h in [&a, &b] {
        let e = everything(h);
        assert_eq!(e.len(), 2, "one copy of this machine's version: {e:?}");
    }
}

/// A file whose name is near the longest a name can be, changed on both machines: its
/// conflict copy gets a name that fits (the sync of the whole project failed at every run).
#[test]
fn a_conflict_on_a_file_with_a_long_name_keeps_both() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "lnc");
    let name = format!("{}.md", "a".repeat(245));
    a.out(&format!("echo 0 > {name}; echo k > k"));
    a.c("sync").success();
    b.c("sync").success();
    a.out(&format!("echo a > {name}; echo k2 > k"));
    b.out(&format!("echo b > {name}"));
    a.c("sync").success();
    b.c("sync")
        .success()
        .stdout(contains("Main: 1 pulled, 1 conflict"));
    settle_and_check(&a, &b, &["a\n", "b\n", "k2\n"]);
    assert_eq!(everything(&a).len(), 3);
}

/// As above, with a name so long that its conflict name must be shortened to be a project
/// name: the new folder still takes one, instead of going up as a second project of the
/// same name that the other machine never fetched.
#[test]
fn a_project_renamed_to_a_long_name_the_other_machine_made_meanwhile_reaches_both() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "lpc");
    let long = "P".repeat(90);
    a.out("mkdir ~/Projects/Old; echo old > ~/Projects/Old/o.txt");
    a.c("sync").success();
    b.c("sync").success();
    a.out(&format!("cd /; mv ~/Projects/Old ~/Projects/{long}"));
    a.c("sync").success();
    b.out(&format!(
        "mkdir ~/Projects/{long}; echo 'b made this' > ~/Projects/{long}/b.txt"
    ));
    b.c("sync")
        .success()
        .stderr(contains("this new folder is renamed ~/Projects/PPP"));
    b.c("sync").success();
    settle_and_check(&a, &b, &["b made this\n", "old\n"]);
    let t = token(&server, "lpc");
    let names: Vec<String> = projects(&server, &t).into_iter().map(|p| p.0).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&long) && names.iter().any(|n| n.contains(" (conflict ")),
        "{names:?}"
    );
}

/// Two machines make a project of the same name at the same moment (each listed the
/// server's projects before the other made its own): they end up one project, holding the
/// files of both, rather than two of that name, each machine with its own for ever.
#[test]
fn a_project_made_on_two_machines_at_once_becomes_one() {
    let server = Server::sqlite();
    let stall = Stall::new(&server);
    let a = machine(&server, "rce", true);
    let b = Home::signed_in(&stall.url, "rce", false);
    a.out("mkdir ~/Projects/X; echo a > ~/Projects/X/a");
    b.out("mkdir ~/Projects/X; echo b > ~/Projects/X/b");
    // b has listed the projects (there is no X) and is about to make its X.
    let child = stall.start_held(&b, "sync", "POST /api/projects ");
    a.c("sync").success();
    stall.release();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    settle_and_check(&a, &b, &["a\n", "b\n"]);
    let t = token(&server, "rce");
    let names: Vec<String> = projects(&server, &t).into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["X"]);
}

/// The same for a folder here that moves aside for the server's file of its name.
#[test]
fn a_sync_stopped_after_moving_a_folder_aside_for_a_file_makes_no_second_copy() {
    let server = Server::sqlite();
    let (a, b) = pair(&server, "mvf");
    a.out("mkdir d; echo 0 > d/f; echo k > k");
    a.c("sync").success();
    b.c("sync").success();
    a.out("rm -r d; echo A > d");
    a.c("sync").success();
    b.out("echo 'b edit' > d/f");
    let before = sync_state(&b);
    b.c("sync").success();
    let copy = b
        .out("ls")
        .lines()
        .find(|l| l.starts_with("d (conflict "))
        .unwrap()
        .to_string();
    b.out(&format!("rm -r '{copy}' d; mkdir d; echo 'b edit' > d/f"));
    put_sync_state(&b, before);
    b.c("sync").success().stdout(contains("0 B up"));
    assert_eq!(b.out(&format!("cat d '{copy}/f'")), "A\nb edit\n");
    settle_and_check(&a, &b, &["A\n", "b edit\n", "k\n"]);
    for h in [&a, &b] {
        let e = everything(h);
        assert_eq!(e.len(), 3, "one copy of this machine's version: {e:?}");
    }
}
