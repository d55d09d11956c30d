//! `grep -r` agrees with ripgrep, line for line, over a stored and a mounted tree.
//!
//! Needs `rg` on the PATH, so it is ignored in a plain `cargo test`; `.ci/run` installs
//! ripgrep and runs it with `--ignored`.

use crate::common;

use common::{host_dir, Home};
use std::fs;
use std::path::Path;
use std::process::Command;

/// A small source tree with the cases that matter: nesting, hidden names, a binary file,
/// invalid UTF-8, CRLF endings, an empty file and a file without a final newline.
fn tree(root: &Path) {
    let words = [
        "fn main() {",
        "let x = parse(input);",
        "// TODO: Result handling",
        "Result<T, E>",
        "impl Display for Error {",
        "    fn parse_line(s: &str) -> Result<Line> {",
        "}",
        "RESULT in capitals",
        "résumé of the result",
        "struct Parser;",
    ];
    for d in 0..6 {
        for f in 0..15 {
            let dir =
                root.join(format!("crate{d}"))
                    .join(if f % 3 == 0 { "src/deep" } else { "src" });
            fs::create_dir_all(&dir).unwrap();
            let mut s = String::new();
            for l in 0..(f * 7 + d) {
                s.push_str(words[(l * 31 + f * 7 + d) % words.len()]);
                s.push('\n');
            }
            fs::write(dir.join(format!("m{f}.rs")), s).unwrap();
        }
    }
    fs::create_dir_all(root.join(".hidden")).unwrap();
    fs::write(root.join(".hidden/secret.rs"), "Result hidden\n").unwrap();
    fs::write(root.join(".dotfile"), "fn parse_dot() -> Result<()>\n").unwrap();
    fs::write(root.join("blob.bin"), b"Result\0\x01\x02binary Result\n").unwrap();
    fs::write(root.join("latin1.txt"), b"caf\xe9 Result\nplain\n").unwrap();
    fs::write(
        root.join("crlf.txt"),
        "Result one\r\nnone\r\nparse Result\r\n",
    )
    .unwrap();
    fs::write(root.join("empty.rs"), "").unwrap();
    fs::write(root.join("nonl.rs"), "last Result line without newline").unwrap();
}

/// Output lines, sorted (both tools search in parallel, so file order differs).
fn sorted(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if v.last().is_some_and(Vec::is_empty) {
        v.pop();
    }
    v.sort();
    v
}

fn rg(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new("rg")
        .args([
            "--no-heading",
            "--no-config",
            "--color=never",
            "--no-ignore",
        ])
        .args(args)
        .arg(dir)
        .output()
        .expect("rg is installed (apt-get install ripgrep)");
    assert!(out.status.code().unwrap_or(2) < 2, "rg failed: {out:?}");
    out.stdout
}

#[test]
#[ignore = "needs ripgrep; run by .ci/run"]
fn grep_r_prints_what_ripgrep_prints() {
    let host = host_dir();
    let src = host.path().join("tree");
    tree(&src);
    let h = Home::new();
    h.c(&format!(
        "import {0} /stored && mount {0} /m",
        src.display()
    ))
    .success();
    let prefix = format!("{}/", src.display());

    let cases: &[(&str, &[&str])] = &[
        ("-rn Result", &["-n", "Result"]),
        ("-rn 'fn \\w+\\('", &["-n", r"fn \w+\("]),
        ("-rni result", &["-n", "-i", "result"]),
        ("-rnF 'Result<'", &["-n", "-F", "Result<"]),
        ("-rl parse", &["-l", "parse"]),
        ("-rc Result", &["-c", "Result"]),
        ("-rnv Result", &["-n", "-v", "Result"]),
        ("-rnw Result", &["-n", "-w", "Result"]),
        ("-rn --hidden Result", &["-n", "--hidden", "Result"]),
    ];
    // Binary files are where GNU grep (which grep follows: "binary file matches", counts
    // and names as usual) and ripgrep (which quits at the first NUL) part; tests/cli.rs
    // checks grep's handling of them.
    let text_only = |l: &Vec<u8>| !l.starts_with(b"blob.bin");
    for (ours, theirs) in cases {
        let expected: Vec<Vec<u8>> = sorted(&rg(theirs, &src))
            .into_iter()
            .map(|l| {
                l.strip_prefix(prefix.as_bytes())
                    .expect("rg prints full paths")
                    .to_vec()
            })
            .filter(text_only)
            .collect();
        assert!(!expected.is_empty(), "rg found nothing for {ours}");
        for place in ["/stored", "/m"] {
            let a = h
                .cmd()
                .args(["-c", &format!("grep {ours} {place}")])
                .assert()
                .success();
            let got: Vec<Vec<u8>> = sorted(&a.get_output().stdout)
                .into_iter()
                .map(|l| {
                    l.strip_prefix(format!("{place}/").as_bytes())
                        .unwrap_or_else(|| {
                            panic!("grep prints VFS paths: {}", String::from_utf8_lossy(&l))
                        })
                        .to_vec()
                })
                .filter(text_only)
                .collect();
            if got != expected {
                let show = |v: &[Vec<u8>]| {
                    v.iter()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                panic!(
                    "grep {ours} {place} differs from rg {theirs:?}\n--- ours\n{}\n--- rg\n{}",
                    show(&got),
                    show(&expected)
                );
            }
        }
    }
}
