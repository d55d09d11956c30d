//! A process killed (SIGKILL) in the middle of writing loses nothing it reported done, and
//! leaves a store that passes `PRAGMA integrity_check`. A store is private to its user, gives
//! freed space back, and a damaged one is reported with a way out (`valyxo doctor`).

use crate::common;

use common::Home;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn integrity(h: &Home) -> String {
    let c = rusqlite::Connection::open(h.db()).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn content(i: usize) -> String {
    // Distinct, a few KiB, so every file is a new blob.
    format!("{i}-").repeat(400 + i % 300)
}

fn kill(child: &mut std::process::Child) {
    // SAFETY: sending a signal to our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the process was killed, not finished");
}

#[test]
fn sigkill_mid_write_keeps_every_reported_write() {
    let h = Home::new();
    h.c("mkdir /d").success();
    let mut child = Command::new(common::BIN)
        .arg("--home")
        .arg(h.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Feed lines from a thread: write file i, then report it done.
    let feeder = std::thread::spawn(move || {
        for i in 0..100_000 {
            let line = format!("echo {} > /d/f{i} && echo done {i}\n", content(i));
            if stdin.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut reported = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while reported.len() < 300 {
        let line = lines.next().expect("valyxo reports progress").unwrap();
        if let Some(i) = line.strip_prefix("done ") {
            reported.push(i.parse::<usize>().unwrap());
        }
    }
    kill(&mut child);
    drop(lines);
    feeder.join().unwrap();

    assert_eq!(integrity(&h), "ok");
    let out = common::host_dir();
    h.c(&format!("export /d {}/d", out.path().display()))
        .success();
    for i in reported {
        let got = std::fs::read_to_string(out.path().join(format!("d/f{i}"))).unwrap_or_default();
        assert_eq!(
            got,
            format!("{}\n", content(i)),
            "file {i} was reported written"
        );
    }
    // The store still takes writes after the crash.
    h.c("echo after > /d/after && cat /d/after").success();
}

#[test]
fn sigkill_mid_import_leaves_a_sound_store() {
    let h = Home::new();
    let src = common::host_dir();
    for i in 0..3000 {
        let dir = src.path().join(format!("d{}", i % 30));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}")), content(i)).unwrap();
    }
    let mut child = Command::new(common::BIN)
        .arg("--home")
        .arg(h.path())
        .args(["-c", &format!("import {} /big", src.path().display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until part of the tree has been committed, then kill.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let c = rusqlite::Connection::open(h.db()).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
            .unwrap_or(0);
        if n > 50 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    kill(&mut child);
    assert_eq!(integrity(&h), "ok");
    // Whatever was committed is whole: every file there has its full content.
    let out = common::host_dir();
    let listed = h.out("find /big -type f");
    if !listed.is_empty() {
        h.c(&format!("export /big {}/big", out.path().display()))
            .success();
    }
    for path in listed.lines() {
        let i: usize = path.rsplit_once("/f").unwrap().1.parse().unwrap();
        let got = std::fs::read_to_string(out.path().join(&path[1..])).unwrap();
        assert_eq!(got, content(i), "{path}");
    }
    // And the import can simply be run again.
    h.c(&format!("rm -r /big; import {} /big", src.path().display()))
        .success();
    assert_eq!(h.out("find /big -type f").lines().count(), 3000);
}

#[test]
fn sigkill_during_settings_writes_leaves_a_whole_config() {
    let h = Home::new();
    let cfg = h.path().join("config.toml");
    std::fs::write(&cfg, "# mine\ntheme = \"nord\"\n").unwrap();
    for round in 0..20 {
        let mut child = Command::new(common::BIN)
            .arg("--home")
            .arg(h.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let script: String = (0..400)
            .map(|i| format!("settings set jobs.max_running {}\n", 1 + (i + round) % 200))
            .collect();
        let _ = stdin.write_all(script.as_bytes());
        // Kill it somewhere in the middle of its writes.
        std::thread::sleep(std::time::Duration::from_millis(20 + round * 7));
        kill(&mut child);
        let text = std::fs::read_to_string(&cfg).unwrap();
        let c = valyxo::config::Config::parse(&cfg, &text);
        assert!(
            c.problems.is_empty(),
            "round {round}: {:?}\n{text}",
            c.problems
        );
        assert!(
            text.starts_with("# mine\ntheme = \"nord\"\n"),
            "round {round}: {text}"
        );
    }
}

#[test]
fn the_store_and_its_home_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let h = |line: &str| {
        Command::new(common::BIN)
            .arg("--home")
            .arg(&home)
            .args(["-c", line])
            .env_remove("VALYXO_HOME")
            .output()
            .unwrap()
    };
    assert!(h("echo secret > .env").status.success());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700);
    for f in ["valyxo.db", "valyxo.db-wal", "valyxo.db-shm"] {
        assert_eq!(mode(&home.join(f)), 0o600, "{f}");
    }
    // Everything else the home holds (backups and their marks included) is private too.
    let mut left = vec![home.clone()];
    while let Some(d) = left.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                assert_eq!(mode(&p), 0o700, "{}", p.display());
                left.push(p);
            } else {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
    }
    // A store made before is made private when opened.
    std::fs::set_permissions(
        home.join("valyxo.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert!(h("ls").status.success());
    assert_eq!(mode(&home.join("valyxo.db")), 0o600);
}

#[test]
fn freed_space_goes_back_to_the_file_system() {
    let h = Home::new();
    let host = common::host_dir();
    for i in 0..40 {
        std::fs::write(host.path().join(format!("f{i}")), content(i).repeat(600)).unwrap();
    }
    h.c(&format!("import {} data", host.path().display()))
        .success();
    let size = || {
        // What the file and its WAL hold once checkpointed.
        let c = rusqlite::Connection::open(h.db()).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        std::fs::metadata(h.db()).unwrap().len()
    };
    let full = size();
    assert!(full > 20 << 20, "{full}");
    h.c("rm -r data").success();
    let after = size();
    assert!(after < full / 4, "{full} -> {after}");
}

#[test]
fn a_damaged_store_is_reported_and_salvaged() {
    let h = Home::new();
    for i in 0..300 {
        h.c(&format!("echo '{}' > f{i}", content(i)));
    }
    // Wreck a run of pages in the middle of the file.
    {
        use std::io::{Seek, SeekFrom};
        let c = rusqlite::Connection::open(h.db()).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        drop(c);
        let len = std::fs::metadata(h.db()).unwrap().len();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(h.db())
            .unwrap();
        f.seek(SeekFrom::Start(len / 2)).unwrap();
        f.write_all(&vec![0x5a; 32 << 10]).unwrap();
    }
    let doctor = |args: &[&str]| {
        Command::new(common::BIN)
            .arg("--home")
            .arg(h.path())
            .arg("doctor")
            .args(args)
            .env_remove("VALYXO_HOME")
            .output()
            .unwrap()
    };
    let checked = doctor(&[]);
    assert_eq!(checked.status.code(), Some(1));
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(report.contains("DAMAGED"), "{report}");
    assert!(report.contains("valyxo doctor --salvage"), "{report}");
    let salvaged = doctor(&["--salvage"]);
    let text = String::from_utf8_lossy(&salvaged.stdout);
    assert!(
        salvaged.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&salvaged.stderr)
    );
    assert!(text.contains("salvaged  nodes:"), "{text}");
    assert!(text.contains("check     sound"), "{text}");
    // The damaged file is kept beside the new store, and what was readable is there.
    let kept = std::fs::read_dir(h.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("valyxo.db.damaged-")
        });
    assert!(kept);
    let out = h.out("ls");
    assert!(out.lines().count() > 50, "{out}");
    assert_eq!(integrity(&h), "ok");
}

#[test]
fn a_store_cut_short_is_refused_not_replaced() {
    let h = Home::new();
    h.c("echo keep > notes.txt").success();
    {
        let c = rusqlite::Connection::open(h.db()).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(h.db())
        .unwrap();
    f.set_len(60).unwrap();
    drop(f);
    let out = h.c("ls").code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("is damaged: it is cut short (60 bytes"),
        "{err}"
    );
    assert!(err.contains("valyxo doctor --restore"), "{err}");
    assert_eq!(
        std::fs::metadata(h.db()).unwrap().len(),
        60,
        "nothing was written over it"
    );
}

#[test]
fn backups_are_made_and_restored() {
    let h = Home::new();
    h.c("echo before > notes.txt").success();
    let doctor = |args: &[&str]| {
        Command::new(common::BIN)
            .arg("--home")
            .arg(h.path())
            .arg("doctor")
            .args(args)
            .env_remove("VALYXO_HOME")
            .output()
            .unwrap()
    };
    h.c("doctor --backup")
        .success()
        .stdout(predicates::str::contains("backed up to"));
    h.c("echo after > notes.txt").success();
    let r = doctor(&["--restore"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(h.out("cat notes.txt"), "before\n");
}
