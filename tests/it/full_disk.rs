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
        .output();
    let a = a.unwrap();
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
