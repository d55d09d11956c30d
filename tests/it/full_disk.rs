//! A full disk under the writes of the hub's store and of the server: each is refused with
//! an error that says the disk is full, what was stored before is still there and readable,
//! nothing is left half made, and once space is freed the same write goes through. Each
//! test mounts a small tmpfs ([`SmallFs`]), so they run as root only (skipped elsewhere).

use crate::common;

use common::small_fs::SmallFs;
use common::Home;
use predicates::str::contains;

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
