//! The manual is checked against the code: every command has a page, every synopsis is the
//! command's real usage, and every shell example in every page runs in a fresh home and
//! prints what the page shows after it (`#=> output` lines).

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_valyxo");

/// The lines of the fenced code blocks of `lang` (```text, ```sh) in a Markdown page.
fn blocks(src: &str, lang: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // The block being read: Some((its language, its lines)).
    let mut cur: Option<(String, Vec<String>)> = None;
    for line in src.lines() {
        if let Some(rest) = line.trim().strip_prefix("```") {
            match cur.take() {
                Some((l, b)) if l == lang => out.push(b),
                Some(_) => {}
                None => cur = Some((rest.trim().to_string(), Vec::new())),
            }
            continue;
        }
        if let Some((_, b)) = cur.as_mut() {
            b.push(line.to_string());
        }
    }
    out
}

/// The text of the `## NAME` section of a page.
fn section<'a>(src: &'a str, name: &str) -> Option<&'a str> {
    let head = format!("\n## {name}\n");
    let start = src.find(&head)? + head.len();
    let rest = &src[start..];
    Some(match rest.find("\n## ") {
        Some(end) => &rest[..end],
        None => rest,
    })
}

fn valyxo(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--home")
        .arg(home)
        .arg("--no-color")
        .args(args)
        .env_remove("VALYXO_HOME")
        .output()
        .expect("run valyxo")
}

#[test]
fn every_command_has_a_page() {
    let missing: Vec<&str> = valyxo::commands::registry()
        .all()
        .iter()
        .map(|s| s.name)
        .filter(|n| valyxo::manual::get(n).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "commands without a manual page: {missing:?}"
    );
}

#[test]
fn every_command_page_has_the_standard_sections() {
    for spec in valyxo::commands::registry().all() {
        let src = valyxo::manual::get(spec.name).expect("page");
        let title = format!("# {} — {}", spec.name, spec.summary);
        assert_eq!(
            src.lines().next(),
            Some(title.as_str()),
            "{}.md: the title must be the registry summary",
            spec.name
        );
        let heads: Vec<&str> = src.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(
            heads,
            [
                "## Synopsis",
                "## Description",
                "## Options",
                "## Examples",
                "## See also"
            ],
            "{}.md: sections",
            spec.name
        );
    }
}

#[test]
fn synopsis_matches_the_real_usage() {
    for spec in valyxo::commands::registry().all() {
        let src = valyxo::manual::get(spec.name).expect("page");
        let syn = section(src, "Synopsis").expect("Synopsis section");
        let block = blocks(syn, "text")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{}.md: no ```text block in Synopsis", spec.name));
        let page: Vec<String> = block
            .iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let usage = spec.command().render_usage().to_string();
        let usage = usage.trim_start().strip_prefix("Usage: ").unwrap_or(&usage);
        let real: Vec<String> = usage
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            page, real,
            "{}.md: Synopsis differs from the usage",
            spec.name
        );
    }
}

/// A page's example lines, each with the output it shows: the `#=> TEXT` lines that follow
/// an example line are what it prints, one line of output each (`#=>` alone: an empty line).
fn examples(src: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for line in blocks(src, "sh").into_iter().flatten() {
        if let Some(shown) = line.trim().strip_prefix("#=>") {
            let shown = shown.strip_prefix(' ').unwrap_or(shown);
            let (_, expected) = out.last_mut().expect("#=> follows an example line");
            let expected = expected.get_or_insert_with(String::new);
            expected.push_str(shown);
            expected.push('\n');
        } else if !line.trim().is_empty() {
            out.push((line, None));
        }
    }
    out
}

/// What separates the output of one example line from the next.
fn marker(i: usize) -> String {
    format!("@@valyxo-example-{i}@@")
}

#[test]
fn every_example_runs_and_shows_what_its_page_says() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (page, src) in valyxo::manual::pages() {
        let lines = examples(src);
        if lines.is_empty() {
            continue;
        }
        let script: String = lines
            .iter()
            .enumerate()
            .map(|(i, (l, _))| {
                let mark = format!("echo {}\n", marker(i));
                // A background line (`… &`) cannot take `|| exit`; its job is checked by the
                // lines after it.
                if l.trim_end().ends_with('&') {
                    format!("{mark}{l}\n")
                } else {
                    format!("{mark}{l} || exit {}\n", 100 + i)
                }
            })
            .collect();
        let home = tempfile::tempdir().expect("temp home");
        // Pages about the account get an account server of their own.
        let account = ["register", "login", "sync", "whoami"];
        let _server = lines
            .iter()
            .any(|(l, _)| account.iter().any(|c| l.contains(c)))
            .then(|| {
                let s = common::server::Server::sqlite();
                std::fs::write(
                    home.path().join("config.toml"),
                    format!("[sync]\nserver = \"{}\"\n", s.url),
                )
                .expect("write config.toml");
                s
            });
        let mut child = Command::new(BIN)
            .arg("--home")
            .arg(home.path())
            .arg("--no-color")
            .env_remove("VALYXO_HOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run valyxo");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write the examples");
        let out = child.wait_with_output().expect("wait for valyxo");
        if !out.status.success() {
            let code = out.status.code().unwrap_or(-1);
            let line = usize::try_from(code - 100)
                .ok()
                .and_then(|i| lines.get(i))
                .map(|(l, _)| l.as_str())
                .unwrap_or("?");
            failures.push(format!(
                "{page}.md: status {code} at line {line:?}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        for (i, (line, expected)) in lines.iter().enumerate() {
            let Some(expected) = expected else { continue };
            // A background job's output may come before or after the next line's.
            if i > 0 && lines[i - 1].0.trim_end().ends_with('&') {
                failures.push(format!(
                    "{page}.md: {line:?} follows a background job, so what it prints is not \
                     ordered: show no output for it"
                ));
                continue;
            }
            checked += 1;
            let start = format!("{}\n", marker(i));
            let shown = stdout
                .split_once(&start)
                .map(|(_, rest)| rest)
                .and_then(|rest| {
                    rest.split_once(&marker(i + 1))
                        .map_or(Some(rest), |(r, _)| Some(r))
                })
                .unwrap_or("");
            if shown != expected {
                failures.push(format!(
                    "{page}.md: {line:?} printed\n{shown:?}\nbut the page says\n{expected:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        checked >= 40,
        "only {checked} example lines show their output"
    );
}

#[test]
fn man_prints_pages_and_suggests() {
    let home = tempfile::tempdir().expect("temp home");
    let out = valyxo(home.path(), &["-c", "man ls"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ls — List directory contents\n"), "{text}");
    assert!(
        text.contains("SYNOPSIS") && text.contains("EXAMPLES"),
        "{text}"
    );
    assert!(!text.contains("```") && !text.contains('`'), "{text}");

    let out = valyxo(home.path(), &["-c", "man quit"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("exit — "));

    let out = valyxo(home.path(), &["-c", "man lss"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Did you mean 'ls'"), "{err}");

    let out = valyxo(home.path(), &["-c", "man nosuchpage"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no manual page for 'nosuchpage'"), "{err}");
}

#[test]
fn man_lists_every_page() {
    let home = tempfile::tempdir().expect("temp home");
    let out = valyxo(home.path(), &["-c", "man"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // Sections: the command groups of `help`, then topics.
    for section in [
        "Commands: Files and directories\n",
        "Commands: Hub\n",
        "Topics\n",
    ] {
        assert!(text.contains(section), "no {section:?} in:\n{text}");
    }
    let topics = &text[text.find("Topics\n").unwrap()..];
    for topic in ["shell", "scripting", "vfs", "jobs", "config", "themes"] {
        assert!(
            topics.contains(&format!("  {topic} ")),
            "{topic} is not a topic:\n{text}"
        );
    }
    for (name, _) in valyxo::manual::pages() {
        let summary = valyxo::manual::summary(name).expect("summary");
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(name) && l.ends_with(summary)),
            "'man' does not list {name}:\n{text}"
        );
    }
}

fn write_manpages() -> (tempfile::TempDir, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .arg("manpages")
        .arg(dir.path())
        .output()
        .expect("run valyxo manpages");
    assert!(out.status.success(), "{out:?}");
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    (dir, files)
}

#[test]
fn manpages_writes_one_roff_page_per_manual_page() {
    let (_dir, files) = write_manpages();
    assert_eq!(files.len(), valyxo::manual::pages().len() + 1);
    assert!(files.iter().any(|f| f.ends_with("valyxo.1")));
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.starts_with(".TH "), "{}: no .TH", f.display());
        assert!(text.is_ascii(), "{}: not plain ASCII", f.display());
        assert!(
            text.contains("\n.SH NAME\n"),
            "{}: no NAME section",
            f.display()
        );
    }
    let out = Command::new(BIN)
        .args(["man", "--roff", "quit"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(".TH VALYXO-EXIT 1 "));
    let out = Command::new(BIN)
        .args(["man", "--roff", "lss"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Did you mean 'ls'"));
    let home = tempfile::tempdir().unwrap();
    let out = valyxo(home.path(), &["man", "-k", "background"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("jobs "));
}

/// Runs a roff linter over every page; it must print nothing and succeed.
fn lint(program: &str, args: &[&str]) {
    let (_dir, files) = write_manpages();
    for f in &files {
        let out = Command::new(program)
            .args(args)
            .arg(f)
            .output()
            .unwrap_or_else(|e| panic!("{program} is installed ({e}); .ci/run installs it"));
        let mut msgs = String::from_utf8_lossy(&out.stderr).into_owned();
        if program == "mandoc" {
            msgs.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        assert!(
            out.status.success() && msgs.trim().is_empty(),
            "{program} on {}:\n{msgs}",
            f.display()
        );
    }
}

#[test]
#[ignore = "needs mandoc; run by .ci/run"]
fn roff_pages_pass_mandoc_lint() {
    lint("mandoc", &["-T", "lint", "-W", "warning"]);
}

#[test]
#[ignore = "needs groff; run by .ci/run"]
fn roff_pages_pass_groff_warnings() {
    lint("groff", &["-man", "-ww", "-z", "-Tutf8"]);
}

/// Everything the repository's own docs point at is in the repository: no notes or
/// API documents kept elsewhere.
#[test]
fn docs_point_only_inside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // Spelled in pieces, so this file does not name them itself.
    let outside = [
        ["api", ".md"],
        ["design", ".md"],
        ["design", " section"],
        ["design", " note"],
        ["../", "shared"],
    ]
    .map(|p| p.concat());
    let mut found = Vec::new();
    let mut dirs = vec![
        root.join("src"),
        root.join("tests"),
        root.join("benches"),
        root.join("manuals"),
        root.join("examples"),
    ];
    let mut files = vec![root.join("README.md")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if let Some(what) = outside.iter().find(|w| line.contains(w.as_str())) {
                found.push(format!("{}:{}: {what}", f.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
