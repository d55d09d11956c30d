//! The virtual filesystem through the real binary: byte-exact storage, content addressing,
//! import/export round trips, and mounts that are jails.

use crate::common;

use common::small_fs::SmallFs;
use common::{host_dir, Home};
use predicates::str::contains;
use std::fs;

fn blob_count(h: &Home) -> i64 {
    let c = rusqlite::Connection::open(h.db()).unwrap();
    c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn binary_and_invalid_utf8_content_is_stored_byte_exact() {
    let h = Home::new();
    let host = host_dir();
    let mut all: Vec<u8> = (0..=255u8).collect();
    all.extend_from_slice(b"\xff\xfe\xc3\x28 not UTF-8 \x00\x00");
    fs::write(host.path().join("bytes.bin"), &all).unwrap();
    let hp = host.path().display();
    h.c(&format!("import {hp}/bytes.bin /b.bin")).success();
    let out = h.cmd().args(["-c", "cat /b.bin"]).assert().success();
    assert_eq!(out.get_output().stdout, all);
    // Through a pipe and a redirection, too.
    h.c("cat /b.bin | cat > /c.bin").success();
    let out = h.cmd().args(["-c", "cat /c.bin"]).assert().success();
    assert_eq!(out.get_output().stdout, all);
    // And back out to the host.
    h.c(&format!("export /c.bin {hp}/back.bin")).success();
    assert_eq!(fs::read(host.path().join("back.bin")).unwrap(), all);
}

#[test]
fn equal_contents_share_one_blob() {
    let h = Home::new();
    h.c("echo same > /a; echo same > /b; mkdir /d; cp /a /d/c")
        .success();
    assert_eq!(blob_count(&h), 1);
    h.c("echo other > /b").success();
    assert_eq!(blob_count(&h), 2);
}

#[test]
fn import_export_round_trip_of_a_tree() {
    let h = Home::new();
    let src = host_dir();
    let dst = host_dir();
    let mut expect = Vec::new();
    for i in 0..300 {
        let dir = src.path().join(format!("d{}", i % 7));
        fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..(i * 37 % 5000)).map(|j| (j * i % 251) as u8).collect();
        fs::write(dir.join(format!("f{i}")), &data).unwrap();
        expect.push((format!("d{}/f{i}", i % 7), data));
    }
    fs::create_dir(src.path().join("empty")).unwrap();
    let (s, d) = (src.path().display(), dst.path().display());
    h.c(&format!("import {s} /t"))
        .success()
        .stdout(contains("imported 300 files"));
    h.c(&format!("export /t {d}/out")).success();
    for (rel, data) in &expect {
        assert_eq!(
            &fs::read(dst.path().join("out").join(rel)).unwrap(),
            data,
            "{rel}"
        );
    }
    assert!(dst.path().join("out/empty").is_dir());
    // Like `cp -r`, exporting onto an existing directory puts the tree inside it, and an
    // existing host file is never overwritten silently.
    h.c(&format!("export /t {d}/out")).success();
    assert!(dst.path().join("out/t/d0").is_dir());
    fs::write(dst.path().join("out/t/d0/f0"), "host edit").unwrap();
    h.c(&format!("export /t {d}/out"))
        .code(1)
        .stderr(contains("exists; nothing was exported"));
    assert_eq!(
        fs::read_to_string(dst.path().join("out/t/d0/f0")).unwrap(),
        "host edit"
    );
    h.c(&format!("export -f /t {d}/out")).success();
    assert_eq!(
        fs::read(dst.path().join("out/t/d0/f0")).unwrap(),
        expect[0].1
    );
    // A link someone left where a file goes is replaced, never written through; the file
    // is whole and nothing temporary stays behind.
    let elsewhere = dst.path().join("elsewhere");
    fs::write(&elsewhere, "not yours").unwrap();
    fs::remove_file(dst.path().join("out/t/d0/f0")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dst.path().join("out/t/d0/f0")).unwrap();
    h.c(&format!("export -f /t {d}/out")).success();
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "not yours");
    let f0 = dst.path().join("out/t/d0/f0");
    assert!(!f0.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(fs::read(&f0).unwrap(), expect[0].1);
    let left: Vec<_> = fs::read_dir(dst.path().join("out/t/d0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("valyxo-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn import_skips_names_that_are_not_utf8_and_says_so() {
    use std::os::unix::ffi::OsStrExt;
    let h = Home::new();
    let src = host_dir();
    fs::write(src.path().join("ok.txt"), "ok").unwrap();
    fs::write(
        src.path().join(std::ffi::OsStr::from_bytes(b"bad\xffname")),
        "x",
    )
    .unwrap();
    h.c(&format!("import {} /t", src.path().display()))
        .code(1)
        .stdout(contains("imported 1 file"))
        .stderr(contains("bad\\xffname': its name is not UTF-8"));
    assert_eq!(h.out("ls /t"), "ok.txt\n");
}

#[test]
fn mounts_are_jails() {
    let h = Home::new();
    let outside = host_dir();
    fs::write(outside.path().join("secret"), "secret").unwrap();
    let host = host_dir();
    fs::create_dir(host.path().join("sub")).unwrap();
    fs::write(host.path().join("sub/inside.txt"), "inside").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), host.path().join("abs-link"))
        .unwrap();
    std::os::unix::fs::symlink("../../", host.path().join("sub/up-link")).unwrap();
    std::os::unix::fs::symlink("sub/inside.txt", host.path().join("ok-link")).unwrap();
    h.c(&format!("mount {} /m", host.path().display()))
        .success();
    assert!(h.out("mounts").contains("/m -> "));

    // A link that stays inside works.
    assert_eq!(h.out("cat /m/ok-link"), "inside");
    // Links pointing out are refused, for reading, listing and writing.
    for line in [
        "cat /m/abs-link",
        "ls /m/sub/up-link",
        "cat /m/sub/up-link/secret",
        "echo pwned > /m/sub/up-link/secret",
    ] {
        h.c(line)
            .code(1)
            .stderr(contains("leads outside its mount"));
    }
    // Writing to a link that leads out is refused, by a redirection and by a copy alike; the
    // link stays and the target outside is never touched.
    for line in [
        "echo replaced > /m/abs-link",
        "echo x > /a.txt; cp /a.txt /m/abs-link",
    ] {
        h.c(line)
            .code(1)
            .stderr(contains("leads outside its mount"));
    }
    assert_eq!(
        fs::read_to_string(outside.path().join("secret")).unwrap(),
        "secret"
    );
    let md = fs::symlink_metadata(host.path().join("abs-link")).unwrap();
    assert!(md.file_type().is_symlink());
    // A link inside the jail is written through: the link stays, its target changes.
    h.c("echo through > /m/ok-link").success();
    assert_eq!(
        fs::read_to_string(host.path().join("sub/inside.txt")).unwrap(),
        "through\n"
    );
    assert!(fs::symlink_metadata(host.path().join("ok-link"))
        .unwrap()
        .file_type()
        .is_symlink());
    h.c("echo again > /a.txt; cp /a.txt /m/ok-link").success();
    assert_eq!(
        fs::read_to_string(host.path().join("sub/inside.txt")).unwrap(),
        "again\n"
    );
    h.c("echo through > /m/ok-link").success();
    // `..` resolves inside the VFS, never on the host.
    h.c("cd /m/sub && cat ../../../../secret")
        .code(1)
        .stderr(contains("no such file"));
    h.c("cat /m/../../../../etc/passwd").code(1);
    // A hard-linked file keeps its inode: both names see the write.
    fs::write(host.path().join("hard-a"), "one").unwrap();
    fs::hard_link(host.path().join("hard-a"), host.path().join("hard-b")).unwrap();
    h.c("echo two > /m/hard-a; echo x > /b.txt; cp /b.txt /m/hard-b")
        .success();
    assert_eq!(
        fs::read_to_string(host.path().join("hard-a")).unwrap(),
        "x\n"
    );
    fs::remove_file(host.path().join("hard-a")).unwrap();
    fs::remove_file(host.path().join("hard-b")).unwrap();
    // grep and find do not follow links out either.
    assert_eq!(h.out("find /m -type f"), "/m/ok-link\n/m/sub/inside.txt\n");
    h.c("grep -r secret /m").code(1);
    // Writes land in the host directory.
    h.c("echo new > /m/sub/new.txt").success();
    assert_eq!(
        fs::read_to_string(host.path().join("sub/new.txt")).unwrap(),
        "new\n"
    );
    // Mount persists across sessions; umount detaches and leaves the host alone.
    assert!(h.out("ls /m/sub").contains("new.txt"));
    h.c("umount /m").success();
    h.c("umount /m")
        .code(1)
        .stderr(contains("not a mount point"));
    assert!(host.path().join("sub/new.txt").exists());
}

#[test]
fn mount_errors_are_clear() {
    let h = Home::new();
    let host = host_dir();
    h.c("mount /no/such/host/dir /q")
        .code(1)
        .stderr(contains("No such file"));
    h.c("mkdir /full; touch /full/x").success();
    h.c(&format!("mount {} /full", host.path().display()))
        .code(1)
        .stderr(contains("not empty"));
    h.c(&format!("mount {} /", host.path().display())).code(1);
}

#[test]
fn two_processes_on_one_home_both_work() {
    let h = Home::new();
    h.c("mkdir /a /b").success();
    let spawn = |dir: &str| {
        let line: String = (0..40)
            .map(|i| format!("echo {dir}{i} > /{dir}/f{i}; "))
            .collect();
        std::process::Command::new(common::BIN)
            .arg("--home")
            .arg(h.path())
            .args(["-c", &line])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut p1, mut p2) = (spawn("a"), spawn("b"));
    assert!(p1.wait().unwrap().success());
    assert!(p2.wait().unwrap().success());
    for dir in ["a", "b"] {
        for i in 0..40 {
            assert_eq!(h.out(&format!("cat /{dir}/f{i}")), format!("{dir}{i}\n"));
        }
    }
}

#[test]
fn a_file_over_the_stored_limit_gets_a_clear_error() {
    let h = Home::new();
    let host = host_dir();
    let f = fs::File::create(host.path().join("huge")).unwrap();
    f.set_len(600 << 20).unwrap(); // sparse: costs no disk
    h.c(&format!("import {}/huge /huge", host.path().display()))
        .code(1)
        .stderr(contains(
            "keep files this large in a mounted host directory",
        ));
    h.c("ls /huge").code(1);
}

#[test]
fn output_over_the_stored_limit_is_refused_and_the_file_kept() {
    let h = Home::new();
    h.c("settings set vfs.max_file_size 1M; echo old > kept.txt")
        .success();
    // A program that never stops writing is stopped at the limit; nothing half-written.
    h.c("exec yes > kept.txt")
        .code(1)
        .stderr(contains("kept.txt': "))
        .stderr(contains("more than the stored tree takes (1 MiB; setting vfs.max_file_size), so nothing was written"));
    assert_eq!(h.out("cat kept.txt"), "old\n");
    h.c("exec yes > new.txt").code(1);
    h.c("cat new.txt").code(1);
    // Appending counts what is there already.
    h.c("exec head -c 700000 /dev/zero > a.bin; exec head -c 400000 /dev/zero >> a.bin")
        .code(1);
    assert_eq!(
        h.out("wc -c a.bin").split_whitespace().next(),
        Some("700000")
    );
    // Within the limit, large output is stored whole, and read back a piece at a time.
    h.c("settings reset vfs.max_file_size").success();
    h.c("exec sh -c 'seq 1 400000' > seq.txt; head -1 seq.txt; tail -1 seq.txt")
        .success()
        .stdout("1\n400000\n");
    h.c("wc -l < seq.txt").success().stdout(contains("400000"));
    h.c("cat seq.txt seq.txt >> twice.txt; wc -l twice.txt")
        .success()
        .stdout(contains("800000"));
}

#[test]
fn output_into_a_mount_arrives_as_it_is_written() {
    let h = Home::new();
    let host = common::host_dir();
    h.c(&format!("mount {} /m", host.path().display()))
        .success();
    let out = host.path().join("out.txt");
    let running = h.spawn(&[
        "-c",
        "exec sh -c 'echo first; sleep 2; echo second' > /m/out.txt",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fs::read_to_string(&out).unwrap_or_default() != "first\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the first line never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(running.wait_for_output().status.success());
    assert_eq!(fs::read_to_string(&out).unwrap(), "first\nsecond\n");
}

#[test]
fn the_home_cannot_be_mounted_and_the_whole_host_only_on_purpose() {
    let parent = tempfile::tempdir().unwrap();
    let home = parent.path().join("home");
    let h = |line: &str| common::at_home(&home, line);
    h("echo keep > notes.txt").success();
    let db = home.join("valyxo.db");
    for dir in [home.clone(), parent.path().to_path_buf()] {
        h(&format!("mount {} /h", dir.display()))
            .code(1)
            .stderr(contains("holds the Valyxo home"));
    }
    h("mount / /all")
        .code(1)
        .stderr(contains("add --whole-host"));
    // Even the whole host, mounted on purpose, cannot be used to write over the store.
    h("mount --whole-host / /all").success();
    h(&format!("echo pwned > /all{}", db.display()))
        .code(1)
        .stderr(contains("inside the Valyxo home"));
    h(&format!("rm /all{}", db.display())).code(1);
    h("umount /all").success();
    assert_eq!(h("cat notes.txt").get_output().stdout, b"keep\n");
}

/// A host folder holding what the stored tree cannot: a name that is not UTF-8, a name with
/// an escape sequence, a symlink and a fifo, besides two plain files.
fn odd_folder() -> tempfile::TempDir {
    use std::os::unix::ffi::OsStrExt;
    let host = host_dir();
    let d = host.path().join("dir");
    fs::create_dir_all(d.join("sub")).unwrap();
    fs::write(d.join("plain.txt"), "plain\n").unwrap();
    fs::write(d.join("sub/deep.txt"), "deep\n").unwrap();
    fs::write(
        d.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")),
        "latin1 needle\n",
    )
    .unwrap();
    fs::write(d.join("red\x1b[31mname"), "escape needle\n").unwrap();
    std::os::unix::fs::symlink("plain.txt", d.join("link")).unwrap();
    let fifo = std::ffi::CString::new(d.join("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    host
}

#[test]
fn moving_out_of_a_mount_carries_what_it_can_and_leaves_and_reports_the_rest() {
    let h = Home::new();
    let host = odd_folder();
    let d = host.path().join("dir");
    h.c(&format!("mount {} /m", host.path().display()))
        .success();
    let a = h.c("mv /m/dir /kept").code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    for what in [
        "$'/m/dir/caf\\xe9.txt': its name is not UTF-8",
        "$'/m/dir/red\\e[31mname': its name holds control characters",
        "/m/dir/link: a symlink",
        "/m/dir/fifo: a fifo, socket or device",
        "4 entries were not moved; they are still where they were",
    ] {
        assert!(err.contains(what), "{what} missing from:\n{err}");
    }
    assert!(
        !err.contains('\x1b'),
        "a raw escape reached the terminal: {err:?}"
    );
    // What arrived is gone from the host; what could not be carried is still there.
    assert_eq!(
        h.out("cat /kept/plain.txt /kept/sub/deep.txt"),
        "plain\ndeep\n"
    );
    assert!(!d.join("plain.txt").exists() && !d.join("sub").exists());
    let mut left: Vec<String> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["caf\u{fffd}.txt", "fifo", "link", "red\x1b[31mname"]);
    // Copying reports the same and changes nothing at the source.
    h.c("cp -r /m/dir /copy")
        .code(1)
        .stderr(contains("4 entries were not copied"));
    assert_eq!(fs::read_dir(&d).unwrap().count(), 4);
    // Between the stored tree and a mount, a whole move is whole: a stored folder moves out
    // with every file, empty ones included, and is gone from the stored tree.
    h.c("mkdir -p /s/a; echo one > /s/a/1; touch /s/empty; mv /s /m/s")
        .success();
    assert_eq!(
        fs::read_to_string(host.path().join("s/a/1")).unwrap(),
        "one\n"
    );
    assert!(host.path().join("s/empty").exists());
    h.c("ls /s").code(1);
    // A symlink or fifo named itself is refused, not copied as something else.
    for line in ["mv /m/dir/link /x", "mv /m/dir/fifo /x"] {
        h.c(line)
            .code(1)
            .stderr(contains("cannot be moved out of its mount"));
    }
    assert!(fs::symlink_metadata(d.join("link")).is_ok());
}

#[test]
fn names_in_a_mount_are_shown_escaped_and_can_be_typed_back() {
    let h = Home::new();
    let host = odd_folder();
    let d = host.path().join("dir");
    h.c(&format!("mount {} /m", host.path().display()))
        .success();
    let ls = h.out("ls -1 /m/dir");
    assert_eq!(
        ls,
        "$'caf\\xe9.txt'\nfifo\nlink\nplain.txt\n$'red\\e[31mname'\nsub\n"
    );
    assert!(h.out("ls -l /m/dir").contains("p "));
    let find = h.out("find /m/dir");
    for name in [
        "$'/m/dir/caf\\xe9.txt'",
        "/m/dir/fifo",
        "/m/dir/link",
        "$'/m/dir/red\\e[31mname'",
    ] {
        assert!(
            find.lines().any(|l| l == name),
            "{name} missing from:\n{find}"
        );
    }
    assert!(h.out("tree /m/dir").contains("$'red\\e[31mname'"));
    // grep -r searches them and names them escaped; the fifo is passed over, as by GNU grep.
    let grep = h.out("grep -r needle /m/dir");
    assert_eq!(
        grep,
        "$'/m/dir/caf\\xe9.txt':latin1 needle\n$'/m/dir/red\\e[31mname':escape needle\n"
    );
    // What ls shows can be typed back: read, renamed to a plain name, on the host.
    assert_eq!(h.out("cat /m/dir/$'caf\\xe9.txt'"), "latin1 needle\n");
    h.c("cd /m/dir; mv $'caf\\xe9.txt' cafe.txt; mv $'red\\e[31mname' red")
        .success();
    assert_eq!(
        fs::read_to_string(d.join("cafe.txt")).unwrap(),
        "latin1 needle\n"
    );
    assert_eq!(
        fs::read_to_string(d.join("red")).unwrap(),
        "escape needle\n"
    );
    // No output above held a raw escape.
    assert!(!format!("{ls}{find}{grep}").contains('\x1b'));
}

#[test]
fn the_stored_tree_refuses_names_with_control_characters() {
    let h = Home::new();
    for line in [
        "echo x > $'a\\e]0;title\\x07'",
        "mkdir $'new\\nline'",
        "touch $'rtl\\u{202e}gpj.exe'",
        "echo x > ok; mv ok $'a\\tb'",
        "echo x > ok; cp ok $'a\\tb'",
    ] {
        let a = h.c(line).code(1);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(err.contains("stored names cannot"), "{line}: {err}");
        assert!(
            !err.contains('\x1b') && !err.contains('\x07'),
            "{line}: {err:?}"
        );
    }
    assert_eq!(h.out("ls"), "ok\n");
}

/// Whether the tests run as root (giving a file away and running as another user need it).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The names in a host folder, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn saving_through_a_mount_keeps_the_owner_group_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !is_root() {
        eprintln!("skipped: giving a file to another owner needs root");
        return;
    }
    let h = Home::new();
    let host = host_dir();
    let f = host.path().join("run.sh");
    fs::write(&f, "old\n").unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(1234)).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o750)).unwrap();
    h.c(&format!("mount {} /m", host.path().display()))
        .success();
    // A save (a script's `write`, the editor's Ctrl-S) replaces the file whole; root saving a
    // user's file leaves it the user's.
    h.cmd()
        .args(["-e", r#"write("/m/run.sh", "new\n")"#])
        .assert()
        .success();
    let md = fs::metadata(&f).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 1234));
    assert_eq!(md.mode() & 0o7777, 0o750);
    assert_eq!(fs::read_to_string(&f).unwrap(), "new\n");
    assert_eq!(names(host.path()), ["run.sh"]);
}

#[test]
fn a_file_that_cannot_be_given_to_its_owner_is_saved_in_place() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    if !is_root() {
        eprintln!("skipped: running valyxo as another user needs root");
        return;
    }
    // valyxo runs as uid 1234 and saves a file root owns, which anyone may write, in a
    // folder anyone may write in: replacing it by a rename would make the file uid 1234's.
    let home = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(home.path(), Some(1234), Some(1234)).unwrap();
    let host = host_dir();
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let f = host.path().join("shared.txt");
    fs::write(&f, "old\n").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).unwrap();
    let before = fs::metadata(&f).unwrap();
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(common::BIN);
        c.arg("--home")
            .arg(home.path())
            .args(args)
            .env_remove("VALYXO_HOME")
            .env("HOME", home.path())
            .uid(1234)
            .gid(1234);
        assert_cmd::Command::from_std(c).assert()
    };
    run(&["-c", &format!("mount {} /m", host.path().display())]).success();
    run(&[
        "-e",
        r#"write("/m/shared.txt", "new, and longer than before\n")"#,
    ])
    .success();
    let md = fs::metadata(&f).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.ino(), md.mode() & 0o7777),
        (before.uid(), before.gid(), before.ino(), 0o666)
    );
    assert_eq!(
        fs::read_to_string(&f).unwrap(),
        "new, and longer than before\n"
    );
    // The temporary that showed the bytes fit is gone.
    assert_eq!(names(host.path()), ["shared.txt"]);
}

#[test]
fn temporary_files_are_never_a_name_someone_could_prepare() {
    use std::os::unix::fs::MetadataExt;
    let h = Home::new();
    // A save through a mount: a hard-linked file keeps its inode (the new bytes go to a
    // temporary first, then over the file), and nothing is left beside it.
    let host = host_dir();
    fs::write(host.path().join("a"), "one\n").unwrap();
    fs::hard_link(host.path().join("a"), host.path().join("b")).unwrap();
    let ino = fs::metadata(host.path().join("a")).unwrap().ino();
    h.c(&format!("mount {} /m", host.path().display()))
        .success();
    h.cmd()
        .args(["-e", r#"write("/m/a", "two\n"); write("/m/c", "new\n")"#])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(host.path().join("b")).unwrap(), "two\n");
    assert_eq!(fs::metadata(host.path().join("a")).unwrap().ino(), ino);
    assert_eq!(names(host.path()), ["a", "b", "c"]);
    // Putting a backup back: a link planted where the copy used to be made (a fixed name
    // beside the store) is neither written through nor put in the store's place.
    h.c("echo before > notes.txt; doctor --backup").success();
    h.c("echo after > notes.txt").success();
    let outside = host_dir();
    let decoy = outside.path().join("decoy");
    fs::write(&decoy, "untouched").unwrap();
    let planted = h.path().join("valyxo.db.restoring");
    std::os::unix::fs::symlink(&decoy, &planted).unwrap();
    let r = h.cmd().args(["doctor", "--restore"]).assert().success();
    let out = String::from_utf8_lossy(&r.get_output().stdout).into_owned();
    assert!(out.contains("restored"), "{out}");
    assert_eq!(fs::read_to_string(&decoy).unwrap(), "untouched");
    assert!(fs::symlink_metadata(&planted)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::symlink_metadata(h.db()).unwrap().file_type().is_file());
    assert_eq!(h.out("cat notes.txt"), "before\n");
    // No temporary is left in the home or among the backups.
    for dir in [h.path().to_path_buf(), h.path().join("backups")] {
        for name in names(&dir) {
            assert!(!name.ends_with(".tmp"), "{name} left in {}", dir.display());
        }
    }
}

#[test]
fn a_mounted_folder_made_again_is_used_and_one_moved_away_is_refused() {
    let h = Home::new();
    let host = host_dir();
    let d = host.path().join("d");
    let moved = host.path().join("moved");
    fs::create_dir(&d).unwrap();
    h.c(&format!("mount {} /m", d.display())).success();
    // Within one process (the mount holds the folder open): the host folder is removed and
    // made again, and writes — a redirection and a save — go to the new one.
    h.c(&format!(
        "echo a > /m/a; exec sh -c 'rm -r {0}; mkdir {0}'; echo b > /m/b; ls /m",
        d.display()
    ))
    .success()
    .stdout("b\n");
    h.cmd()
        .args([
            "-e",
            &format!(
                r#"sh("exec sh -c 'rm -r {0}; mkdir {0}'"); write("/m/c", "c")"#,
                d.display()
            ),
        ])
        .assert()
        .success();
    assert_eq!(names(&d), ["c"]);
    // Moved away: writing fails and says why; nothing lands in the moved folder.
    h.c(&format!(
        "echo a > /m/a; exec mv {} {}; echo x > /m/x",
        d.display(),
        moved.display()
    ))
    .code(1)
    .stderr(contains(format!(
        "the mounted host directory {} was removed or moved",
        d.display()
    )));
    fs::rename(&moved, &d).unwrap();
    h.cmd()
        .args([
            "-e",
            &format!(
                r#"sh("exec mv {} {}"); write("/m/y", "y")"#,
                d.display(),
                moved.display()
            ),
        ])
        .assert()
        .code(1)
        .stderr(contains("was removed or moved"));
    assert_eq!(names(&moved), ["a", "c"]);
    assert!(h.out("mounts").contains("(host directory missing)"));
    // Put back, it is used again.
    fs::rename(&moved, &d).unwrap();
    h.c("echo z > /m/z").success();
    assert_eq!(names(&d), ["a", "c", "z"]);
}

#[test]
fn a_full_disk_leaves_a_file_saved_in_place_whole() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_small) = SmallFs::mount(dir.path(), 64 << 10) else {
        return;
    };
    let d = dir.path();
    // A hard-linked file (written in place) of 20 KiB on a disk with about 20 KiB free; the
    // new content, 48 KiB, does not fit even once the old is gone.
    let old = vec![b'o'; 20 << 10];
    fs::write(d.join("a"), &old).unwrap();
    fs::hard_link(d.join("a"), d.join("b")).unwrap();
    fs::write(d.join("filler"), vec![b'f'; 24 << 10]).unwrap();
    let h = Home::new();
    h.c(&format!("mount {} /m", d.display())).success();
    h.cmd()
        .args([
            "-e",
            &format!(r#"write("/m/a", "{}")"#, "n".repeat(48 << 10)),
        ])
        .assert()
        .code(1)
        .stderr(contains("No space left on device"));
    assert!(fs::read(d.join("b")).unwrap() == old, "the file was cut");
    assert_eq!(names(d), ["a", "b", "filler"]);
    // Room made, the save goes through, in place.
    fs::remove_file(d.join("filler")).unwrap();
    h.cmd()
        .args([
            "-e",
            &format!(r#"write("/m/a", "{}")"#, "n".repeat(30 << 10)),
        ])
        .assert()
        .success();
    assert_eq!(fs::read(d.join("b")).unwrap(), vec![b'n'; 30 << 10]);
    assert_eq!(names(d), ["a", "b"]);
}

#[test]
fn a_fifo_in_a_mount_is_refused_as_a_file_instead_of_waited_on() {
    // Opening a fifo waits for its other end, for ever and past Ctrl-C in the shell's own
    // process: reading or writing one is refused at once, and it stays a fifo.
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    let h = Home::new();
    let host = host_dir();
    let pipe = host.path().join("pipe");
    let c = std::ffi::CString::new(pipe.as_os_str().as_bytes()).unwrap();
    // SAFETY: makes a fifo in this test's temporary directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    h.c(&format!("mount {} /m", host.path().display()))
        .success();
    for line in [
        "cat /m/pipe",
        "grep x /m/pipe",
        "run /m/pipe",
        "echo x > /m/pipe",
        "echo x >> /m/pipe",
        "touch /m/pipe",
    ] {
        // The timeout only stops a hang; nothing is measured.
        h.cmd()
            .args(["-c", line])
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .failure()
            .stderr(contains("/m/pipe: is a fifo, socket or device"));
    }
    assert!(fs::symlink_metadata(&pipe).unwrap().file_type().is_fifo());
}

#[test]
fn a_copy_or_move_onto_the_same_file_by_another_name_keeps_its_content() {
    let h = Home::new();
    let host = host_dir();
    let hp = host.path();
    fs::create_dir(hp.join("sub")).unwrap();
    fs::write(hp.join("f"), "precious\n").unwrap();
    fs::hard_link(hp.join("f"), hp.join("hard")).unwrap();
    std::os::unix::fs::symlink("f", hp.join("link")).unwrap();
    fs::write(hp.join("sub/g"), "also precious\n").unwrap();
    // The same host folder twice: once whole, once a folder of it.
    h.c(&format!(
        "mount {} /m; mount {} /m2",
        hp.display(),
        hp.join("sub").display()
    ))
    .success();
    for line in [
        "cp /m/f /m/link",
        "cp /m/f /m/hard",
        "cp /m/sub/g /m2/g",
        "mv /m/sub/g /m2/g",
    ] {
        h.c(line).code(1).stderr(contains("are the same file"));
    }
    assert_eq!(fs::read_to_string(hp.join("f")).unwrap(), "precious\n");
    assert_eq!(fs::read_to_string(hp.join("hard")).unwrap(), "precious\n");
    assert_eq!(
        fs::read_to_string(hp.join("sub/g")).unwrap(),
        "also precious\n"
    );
    // A folder copied onto itself through a second mount of the same host folder.
    h.c(&format!("mount {} /m3", hp.display())).success();
    h.c("cp -r /m/sub /m3")
        .code(1)
        .stderr(contains("are the same file"));
    assert_eq!(
        fs::read_to_string(hp.join("sub/g")).unwrap(),
        "also precious\n"
    );
}

#[test]
fn a_copy_that_finds_the_disk_full_leaves_the_file_it_was_to_replace_whole() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_small) = SmallFs::mount(dir.path(), 128 << 10) else {
        return;
    };
    let d = dir.path();
    // A file of 20 KiB on a disk with less than 48 KiB free: the copy, 48 KiB, does not fit.
    let old = vec![b'o'; 20 << 10];
    fs::write(d.join("a"), &old).unwrap();
    fs::write(d.join("filler"), vec![b'f'; 88 << 10]).unwrap();
    let src = host_dir();
    fs::write(src.path().join("big"), vec![b'n'; 48 << 10]).unwrap();
    let h = Home::new();
    h.c(&format!(
        "mount {} /m; mount {} /src",
        d.display(),
        src.path().display()
    ))
    .success();
    h.c(&format!("import {}/big /big", src.path().display()))
        .success();
    let import = format!("import {}/big /m/a", src.path().display());
    for line in ["cp /src/big /m/a", "cp /big /m/a", "mv /big /m/a", &import] {
        h.c(line)
            .code(1)
            .stderr(contains("No space left on device"));
        assert!(
            fs::read(d.join("a")).unwrap() == old,
            "{line}: the file was cut"
        );
        assert_eq!(names(d), ["a", "filler"], "{line}");
    }
    // The moved file is still where it was.
    assert_eq!(h.out("wc -c /big"), format!("{} /big\n", 48 << 10));
    // Room made, the copy goes through.
    fs::remove_file(d.join("filler")).unwrap();
    h.c("cp /src/big /m/a").success();
    assert_eq!(fs::read(d.join("a")).unwrap(), vec![b'n'; 48 << 10]);
}

#[test]
fn a_folder_holding_the_home_cannot_be_removed_or_moved_through_a_mount() {
    let parent = tempfile::tempdir().unwrap();
    let above = parent.path().join("above");
    let home = above.join("home");
    let h = |line: &str| common::at_home(&home, line);
    h("echo keep > notes.txt; mount --whole-host / /all").success();
    let above_v = format!("/all{}", above.display());
    for line in [
        format!("rm -r {above_v}"),
        format!("mv {above_v} {above_v}-moved"),
        format!("mv {above_v} /stored"),
    ] {
        h(&line).code(1).stderr(contains("holds the Valyxo home"));
    }
    assert!(home.join("valyxo.db").exists());
    h("ls /stored").code(1);
    // What sits beside the home is the user's to change.
    fs::write(above.join("beside.txt"), "x").unwrap();
    h(&format!("rm {above_v}/beside.txt")).success();
    h("umount /all").success();
    h("cat notes.txt").success().stdout("keep\n");
}

#[test]
fn a_mounted_folder_replaced_by_a_symlink_is_not_followed_out() {
    let h = Home::new();
    let host = host_dir();
    let d = host.path().join("d");
    let outside = host.path().join("outside");
    fs::create_dir(&d).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), "secret\n").unwrap();
    h.c(&format!("mount {} /m", d.display())).success();
    // Within one process, and in the next one: the folder's place is taken by a link to
    // somewhere else, which the mount does not follow, for reading or for writing.
    let swap = format!(
        "exec sh -c 'rm -r {0}; ln -s {1} {0}'",
        d.display(),
        outside.display()
    );
    for line in [
        format!("{swap}; cat /m/secret"),
        "cat /m/secret".to_string(),
        "ls /m".to_string(),
        "echo pwned > /m/secret".to_string(),
        "echo new > /m/new".to_string(),
    ] {
        h.c(&line)
            .code(1)
            .stderr(contains("was replaced by a symlink"));
    }
    assert_eq!(names(&outside), ["secret"]);
    assert_eq!(
        fs::read_to_string(outside.join("secret")).unwrap(),
        "secret\n"
    );
    // A folder put back in its place is used again.
    fs::remove_file(&d).unwrap();
    fs::create_dir(&d).unwrap();
    h.c("echo z > /m/z").success();
    assert_eq!(names(&d), ["z"]);
}

#[test]
fn tree_reports_a_folder_it_cannot_list_on_stderr_escaped() {
    let h = Home::new();
    let host = host_dir();
    let d = host.path().join("d\x1b[31mX");
    fs::create_dir(&d).unwrap();
    fs::write(host.path().join("kept"), "").unwrap();
    h.c(&format!(
        "mount $'{}' /m",
        d.display().to_string().replace('\x1b', "\\e")
    ))
    .success();
    fs::remove_dir(&d).unwrap();
    let a = h.c("mkdir /s; tree /").code(1);
    let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        !out.contains('\x1b') && !err.contains('\x1b'),
        "{out:?} {err:?}"
    );
    assert!(out.contains("── m\n") && out.contains("── s\n"), "{out}");
    assert!(
        err.contains("tree: /m: the mounted host directory") && err.contains("d\\x1b[31mX"),
        "{err}"
    );
}

#[test]
fn a_folder_moved_across_onto_a_folder_that_holds_files_overwrites_none_of_them() {
    let h = Home::new();
    let host = host_dir();
    let hp = host.path();
    fs::create_dir_all(hp.join("proj")).unwrap();
    fs::write(hp.join("proj/a.txt"), "theirs\n").unwrap();
    fs::create_dir_all(hp.join("empty/proj")).unwrap();
    h.c(&format!("mount {} /m", hp.display())).success();
    h.c("mkdir -p /s/proj /back; echo mine > /s/proj/a.txt; mkdir /back/proj; touch /back/proj/x")
        .success();
    // Into the stored tree, out of it: the folder already there stays as it was, and so
    // does the one that was to move.
    for line in ["mv /s/proj /m", "mv /m/proj /back"] {
        h.c(line).code(1).stderr(contains("already exists"));
    }
    assert_eq!(
        fs::read_to_string(hp.join("proj/a.txt")).unwrap(),
        "theirs\n"
    );
    assert_eq!(h.out("cat /s/proj/a.txt"), "mine\n");
    assert_eq!(h.out("ls /back/proj"), "x\n");
    // Onto an empty folder, as a rename would.
    h.c("mv /s/proj /m/empty").success();
    assert_eq!(
        fs::read_to_string(hp.join("empty/proj/a.txt")).unwrap(),
        "mine\n"
    );
    h.c("ls /s/proj").code(1);
}

/// `/a/a/…/a`: a stored folder as deep as the longest path allows.
fn deep_path() -> String {
    format!("/{}", vec!["a"; 2040].join("/"))
}

#[test]
fn trees_as_deep_as_paths_go_are_walked_copied_and_shown_without_overflowing_the_stack() {
    let h = Home::new();
    let deep = deep_path();
    h.c(&format!("mkdir -p {deep}; echo needle > {deep}/f"))
        .success();
    // In a pipeline (a thread of its own) and alone.
    let f = format!("{deep}/f\n");
    assert_eq!(h.out("find / -type f | cat"), f);
    assert_eq!(h.out("find / -type f"), f);
    assert_eq!(h.out("grep -rl needle / | cat"), f);
    assert_eq!(h.out("tree / | tail -1"), "2042 directories, 1 file\n");
    h.c("cp -r /a /b").success();
    assert_eq!(h.out(&format!("cat /b{}/f", &deep[2..])), "needle\n");
    // A host tree that deep, through a mount.
    let host = host_dir();
    let rel = vec!["a"; 1500].join("/");
    fs::create_dir_all(host.path().join(&rel)).unwrap();
    fs::write(host.path().join(&rel).join("f"), "needle\n").unwrap();
    h.c(&format!("mount {} /m", host.path().display()))
        .success();
    let f = format!("/m/{rel}/f\n");
    assert_eq!(h.out("find /m -type f | cat"), f);
    assert_eq!(h.out("grep -rl needle /m | cat"), f);
    assert_eq!(h.out("tree /m | tail -1"), "1500 directories, 1 file\n");
}

#[test]
fn a_stored_tree_as_deep_as_paths_go_can_be_removed() {
    let h = Home::new();
    let deep = deep_path();
    h.c(&format!(
        "mkdir -p {deep}; echo x > {deep}/f; echo y > /kept"
    ))
    .success();
    h.c("rm -r /a").success();
    h.c("ls /").success().stdout("Projects\nkept\n");
    // Every row and blob of it is gone; what was beside it stays.
    let c = rusqlite::Connection::open(h.db()).unwrap();
    let nodes: i64 = c
        .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(nodes, 4, "the root, Projects, Main and kept");
    assert_eq!(blob_count(&h), 1);
}

#[test]
fn a_symlink_into_the_home_is_not_written_through_by_a_whole_host_mount() {
    let parent = tempfile::tempdir().unwrap();
    let home = parent.path().join("home");
    let h = |line: &str| common::at_home(&home, line);
    h("echo keep > notes.txt; mount --whole-host / /all").success();
    // A relative link (an absolute one leaves the jail as cap-std sees it) to the store.
    std::os::unix::fs::symlink("home/valyxo.db", parent.path().join("link")).unwrap();
    let link = format!("/all{}/link", parent.path().display());
    for line in [
        format!("echo pwned > {link}"),
        format!("echo pwned >> {link}"),
        format!("cp notes.txt {link}"),
    ] {
        h(&line).code(1).stderr(contains("inside the Valyxo home"));
    }
    h("cat notes.txt").success().stdout("keep\n");
    // The link itself is the user's to remove.
    h(&format!("rm {link}")).success();
    assert!(home.join("valyxo.db").exists());
}

#[test]
fn a_folder_that_cannot_be_read_is_named_by_cp_mv_and_grep_not_passed_over() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // Root reads any folder: as root, valyxo runs as nobody (and the folders are theirs).
    let nobody = is_root().then_some(65534u32);
    let home = tempfile::tempdir().unwrap();
    let host = host_dir();
    let d = host.path().join("d");
    fs::create_dir_all(d.join("locked")).unwrap();
    fs::create_dir_all(d.join("open")).unwrap();
    fs::write(d.join("locked/secret"), "needle\n").unwrap();
    fs::write(d.join("open/a"), "needle\n").unwrap();
    if let Some(id) = nobody {
        for p in [
            home.path(),
            host.path(),
            &d,
            &d.join("locked"),
            &d.join("open"),
        ] {
            std::os::unix::fs::chown(p, Some(id), Some(id)).unwrap();
        }
        for f in ["locked/secret", "open/a"] {
            std::os::unix::fs::chown(d.join(f), Some(id), Some(id)).unwrap();
        }
    }
    fs::set_permissions(d.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let run = |line: &str| {
        let mut c = std::process::Command::new(common::BIN);
        c.arg("--home")
            .arg(home.path())
            .args(["-c", line])
            .env_remove("VALYXO_HOME");
        if let Some(id) = nobody {
            c.uid(id).gid(id);
        }
        assert_cmd::Command::from_std(c).assert()
    };
    run(&format!("mount {} /m", host.path().display())).success();
    run("grep -r needle /m")
        .code(2)
        .stdout("/m/d/open/a:needle\n")
        .stderr(contains("/m/d/locked: a folder that cannot be read"));
    run("find /m -type d")
        .code(1)
        .stdout("/m\n/m/d\n/m/d/locked\n/m/d/open\n")
        .stderr(contains("'/m/d/locked': a folder that cannot be read"));
    run("cp -r /m/d /copied")
        .code(1)
        .stderr(contains("/m/d/locked: a folder that cannot be read"));
    run("mv /m/d /moved")
        .code(1)
        .stderr(contains("/m/d/locked: a folder that cannot be read"))
        .stderr(contains("1 entry was not moved"));
    fs::set_permissions(d.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(names(&d), ["locked"]);
    assert_eq!(names(&d.join("locked")), ["secret"]);
}

#[test]
fn exec_does_not_run_in_a_mounted_folder_replaced_by_a_symlink() {
    let h = Home::new();
    let host = host_dir();
    let d = host.path().join("d");
    let outside = host.path().join("outside");
    fs::create_dir(&d).unwrap();
    fs::create_dir(&outside).unwrap();
    h.c(&format!("mount {} /m", d.display())).success();
    h.c(&format!(
        "cd /m; exec sh -c 'cd /; rm -r {0}; ln -s {1} {0}'; exec touch made-here",
        d.display(),
        outside.display()
    ))
    .code(1)
    .stderr(contains("was replaced by a symlink"));
    assert!(
        names(&outside).is_empty(),
        "the program ran outside the mount"
    );
}
