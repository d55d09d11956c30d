//! `new` through the real binary: every built-in template made and checked with its own
//! tool where this machine has it (`cargo check`, `python3 -m py_compile`, `node --check`,
//! the hub's script runner) and by its files otherwise; `--list`, `--force`, refused names,
//! user templates (a folder of the templates folder, `--from`), what `new` says to run next,
//! and the picker at the prompt.

use crate::common;

use common::pty::spawn;
use common::Home;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `tool` runs on this machine.
fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `tool ARGS` in `dir` and fails the test with its output unless it succeeds;
/// returns its standard output.
fn run(dir: &Path, tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A project made by `new TEMPLATE 'My App'` in a fresh home, copied out to the host.
struct Made {
    home: Home,
    host: tempfile::TempDir,
}

impl Made {
    fn new(template: &str) -> Made {
        Made::named(template, "My App")
    }

    /// `new TEMPLATE NAME` (NAME needs no quoting but for its spaces).
    fn named(template: &str, name: &str) -> Made {
        let home = Home::new();
        home.c("settings set new.author 'Ada Lovelace'").success();
        home.c(&format!("new {template} '{name}'"))
            .success()
            .stdout(contains(format!(
                "created ~/Projects/{} from the {template} template",
                if name.contains(' ') {
                    format!("'{name}'")
                } else {
                    name.to_string()
                }
            )));
        let host = common::host_dir();
        home.c(&format!(
            "export ~/Projects/'{name}' {}",
            host.path().join("app").display()
        ))
        .success();
        let m = Made { home, host };
        m.no_placeholder_left();
        assert!(m.text("README.md").starts_with(&format!("# {name}\n")));
        assert!(m.text("README.md").contains("by Ada Lovelace"));
        m
    }

    fn dir(&self) -> PathBuf {
        self.host.path().join("app")
    }

    fn text(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn json(&self, rel: &str) -> serde_json::Value {
        serde_json::from_str(&self.text(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// No file holds a placeholder or an escape of one.
    fn no_placeholder_left(&self) {
        let mut left = vec![self.dir()];
        while let Some(d) = left.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    left.push(p);
                    continue;
                }
                let t = std::fs::read_to_string(&p).unwrap();
                for k in ["name", "name_kebab", "name_snake", "year", "author"] {
                    assert!(!t.contains(&format!("{{{{{k}}}}}")), "{}", p.display());
                }
                assert!(!t.contains("{{{{"), "{}", p.display());
            }
        }
    }
}

#[test]
fn rust_template_passes_cargo_check() {
    let m = Made::new("rust");
    let manifest: toml::Table = toml::from_str(&m.text("Cargo.toml")).unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some("my-app"));
    assert!(m.text(".gitignore").contains("/target"));
    assert!(m.text("src/main.rs").contains("fn main()"));
    // Names that are no package name as they are get one that is.
    let digits = Made::named("rust", "2048");
    let reserved = Made::named("rust", "test");
    for (m, want) in [(&digits, "app-2048"), (&reserved, "app-test")] {
        let manifest: toml::Table = toml::from_str(&m.text("Cargo.toml")).unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some(want));
    }
    if have("cargo") {
        for m in [&m, &digits, &reserved] {
            let target = m.host.path().join("target");
            let target = target.to_str().unwrap();
            run(
                &m.dir(),
                "cargo",
                &["check", "--offline", "--quiet", "--target-dir", target],
            );
        }
    }
}

#[test]
fn python_templates_compile() {
    let py = Made::new("python");
    assert!(py.text("requirements.txt").starts_with('#'));
    let cli = Made::new("cli");
    let pyproject: toml::Table = toml::from_str(&cli.text("pyproject.toml")).unwrap();
    assert_eq!(pyproject["project"]["name"].as_str(), Some("my-app"));
    assert_eq!(
        pyproject["project"]["scripts"]["my-app"].as_str(),
        Some("my_app.__main__:main")
    );
    let flask = Made::new("flask");
    // The Jinja page keeps its own braces (written `{{{{` in the template).
    assert!(flask
        .text("templates/index.html")
        .contains("<title>{{ name }}</title>"));
    assert!(flask.text("requirements.txt").contains("flask"));
    if have("python3") {
        run(
            &py.dir(),
            "python3",
            &["-m", "py_compile", "main.py", "test_main.py"],
        );
        run(&py.dir(), "python3", &["-m", "unittest", "-q"]);
        assert_eq!(run(&py.dir(), "python3", &["main.py"]), "Hello, my-app!\n");
        run(
            &cli.dir(),
            "python3",
            &[
                "-m",
                "py_compile",
                "my_app/__init__.py",
                "my_app/__main__.py",
            ],
        );
        assert_eq!(
            run(&cli.dir(), "python3", &["-m", "my_app", "--shout", "you"]),
            "HELLO, YOU!\n"
        );
        run(&flask.dir(), "python3", &["-m", "py_compile", "app.py"]);
    } else {
        assert!(cli.text("my_app/__main__.py").contains("argparse"));
    }
}

#[test]
fn node_templates_pass_node_check() {
    let node = Made::new("node");
    let express = Made::new("express");
    let react = Made::new("react");
    let html = Made::new("html");
    for m in [&node, &express, &react] {
        assert_eq!(m.json("package.json")["name"], "my-app");
        assert!(m.text(".gitignore").contains("node_modules/"));
    }
    assert!(express.json("package.json")["dependencies"]["express"].is_string());
    let react_pkg = react.json("package.json");
    assert_eq!(react_pkg["type"], "module");
    assert!(react_pkg["devDependencies"]["vite"].is_string());
    assert!(react_pkg["dependencies"]["react"].is_string());
    assert!(react.text("index.html").contains("<title>My App</title>"));
    assert!(react.text("index.html").contains("/src/main.jsx"));
    // JSX's double braces come out of the `{{{{` escape.
    assert!(react.text("src/App.jsx").contains("style={{ fontFamily"));
    assert!(react.text("src/App.jsx").contains("<h1>My App</h1>"));
    assert!(html.text("index.html").contains("<title>My App</title>"));
    if have("node") {
        run(&node.dir(), "node", &["--check", "index.js"]);
        run(&node.dir(), "node", &["--check", "index.test.js"]);
        assert_eq!(run(&node.dir(), "node", &["index.js"]), "Hello, my-app!\n");
        run(&node.dir(), "node", &["--test"]);
        run(&express.dir(), "node", &["--check", "server.js"]);
        // An ES module (the package says "type": "module").
        run(&react.dir(), "node", &["--check", "vite.config.js"]);
        run(&html.dir(), "node", &["--check", "script.js"]);
    }
}

#[test]
fn rhai_template_runs_in_the_hub() {
    let m = Made::new("rhai");
    assert!(m.text("main.rhai").contains("fn greeting"));
    assert_eq!(
        m.home.out("cd ~/Projects/'My App'; run main.rhai"),
        "Hello, my-app!\n"
    );
}

#[test]
fn list_shows_one_line_a_template_and_yours() {
    let h = Home::new();
    let out = h.out("new --list");
    let names: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["cli", "express", "flask", "html", "node", "python", "react", "rhai", "rust"]
    );
    assert!(
        out.lines().all(|l| l.split_whitespace().count() > 2),
        "{out}"
    );
    h.out("mkdir -p ~/Projects/Templates/mine ~/Projects/Templates/rust; touch ~/Projects/Templates/mine/a");
    let out = h.out("create --list");
    assert!(
        out.contains("mine     Your template in ~/Projects/Templates/mine\n"),
        "{out}"
    );
    // A folder named like a built-in template takes its place.
    assert!(
        out.contains("rust     Your template in ~/Projects/Templates/rust\n"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 10);
}

#[test]
fn new_says_what_to_run_next() {
    let h = Home::new();
    assert_eq!(
        h.out("new rust app"),
        "created ~/Projects/app from the rust template (4 files)\nnext:\n  \
         cd ~/Projects/app\n  exec cargo run\n"
    );
    // The lines it prints run as they are.
    assert_eq!(h.out("cd ~/Projects/app; pwd"), "/Projects/app\n");
    let out = h.out("create cli 'Word Count'");
    assert!(
        out.ends_with("next:\n  cd ~/Projects/'Word Count'\n  exec python3 -m word_count --help\n"),
        "{out}"
    );
    assert_eq!(
        h.out("cd ~/Projects/'Word Count'; pwd"),
        "/Projects/Word Count\n"
    );
}

#[test]
fn an_existing_project_is_refused_unless_forced() {
    let h = Home::new();
    h.out("new python app; echo mine > ~/Projects/app/main.py; echo keep > ~/Projects/app/notes");
    h.c("new python app")
        .failure()
        .stderr(contains("~/Projects/app already exists").and(contains("--force")));
    assert_eq!(h.out("cat ~/Projects/app/main.py"), "mine\n");
    h.c("new --force python app").success();
    assert!(h.out("cat ~/Projects/app/main.py").contains("def main"));
    assert_eq!(h.out("cat ~/Projects/app/notes"), "keep\n");
    // A file in the way is not a folder to write into, forced or not.
    h.out("touch ~/Projects/file");
    h.c("new --force python file")
        .failure()
        .stderr(contains("is not a folder"));
}

#[test]
fn bad_names_are_refused_and_nothing_is_made() {
    let h = Home::new();
    let before = h.out("ls -a ~/Projects");
    for (name, says) in [
        ("''", "cannot be empty"),
        ("../x", "'/'"),
        ("a/b", "'/'"),
        ("..", "'..'"),
        ("' app'", "spaces"),
        (".hidden", "cannot start with '.'"),
        ("'a;b'", "not ';'"),
        ("'{{name}}'", "not '{'"),
        ("Templates", "templates folder"),
    ] {
        h.c(&format!("new rust {name}"))
            .failure()
            .stderr(contains(says));
    }
    let long = "a".repeat(65);
    h.c(&format!("new rust {long}"))
        .failure()
        .stderr(contains("at most 64"));
    // A name with a terminal escape is refused and shown escaped, never sent raw.
    let a = h.c("new rust $'x\\e[31my'").failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("\\e"), "{err:?}");
    assert_eq!(h.out("ls -a ~/Projects"), before);
    // Template names match whole, never by prefix.
    h.c("new rus app")
        .failure()
        .stderr(contains("no template 'rus'").and(contains("'rust'")));
    h.c("new r app")
        .failure()
        .stderr(contains("no template 'r'"));
    assert_eq!(h.out("ls -a ~/Projects"), before);
}

#[test]
fn user_templates_fill_names_and_text_and_copy_the_rest() {
    let h = Home::new();
    h.out(
        "settings set new.author Ada; mkdir -p ~/Projects/Templates/site/'{{name_snake}}'; \
         echo '# {{ name }} by {{author}}, {{year}}' > ~/Projects/Templates/site/README.md; \
         echo 'x = {{{{ \"{{name_kebab}}\" }}' > ~/Projects/Templates/site/'{{name_snake}}'/conf.txt",
    );
    let bin = h.path().join("logo.bin");
    std::fs::write(&bin, [0u8, 159, 146, 150, b'{', b'{', 255]).unwrap();
    h.out(&format!(
        "import {} ~/Projects/Templates/site/logo.bin",
        bin.display()
    ));
    h.c("new site 'Home Page'")
        .success()
        .stdout(contains(
            "created ~/Projects/'Home Page' from ~/Projects/Templates/site (3 files)\nnext:\n  cd ~/Projects/'Home Page'\n",
        ));
    let readme = h.out("cat ~/Projects/'Home Page'/README.md");
    assert!(readme.starts_with("# Home Page by Ada, 20"), "{readme}");
    assert!(!readme.contains("{{"));
    assert_eq!(
        h.out("cat ~/Projects/'Home Page'/home_page/conf.txt"),
        "x = {{ \"home-page\" }}\n"
    );
    let out = h.path().join("logo.out");
    h.out(&format!(
        "export ~/Projects/'Home Page'/logo.bin {}",
        out.display()
    ));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        [0u8, 159, 146, 150, b'{', b'{', 255]
    );

    // Any folder, with --from.
    h.out("mkdir -p /tmp/t; echo '{{name}}!' > /tmp/t/hello.txt");
    h.c("new --from /tmp/t 'From Tmp'")
        .success()
        .stdout(contains("from ~/tmp/t (1 file)"));
    assert_eq!(h.out("cat ~/Projects/'From Tmp'/hello.txt"), "From Tmp!\n");
    h.c("new --from /tmp/nowhere x")
        .failure()
        .stderr(contains("is not a folder"));
    // A template cannot make a project inside itself.
    h.c("new --from ~/Projects/'From Tmp' x").success();
    h.c("new --from ~/Projects y")
        .failure()
        .stderr(contains("overlap"));

    // An unknown placeholder names the file and the line, and nothing is made.
    h.out("mkdir -p /tmp/bad; echo ok > /tmp/bad/a.txt; echo '{{nmae}}' >> /tmp/bad/a.txt");
    h.c("new --from /tmp/bad broken").failure().stderr(contains(
        "~/tmp/bad/a.txt: line 2: unknown placeholder {{nmae}}",
    ));
    h.c("ls ~/Projects/broken").failure();
}

#[test]
fn without_a_terminal_new_asks_for_its_arguments() {
    let h = Home::new();
    h.c("new")
        .failure()
        .stderr(contains("give a template and a name"));
    h.c("new rust")
        .failure()
        .stderr(contains("give the project's NAME"));
}

#[test]
fn the_picker_at_the_prompt_makes_the_chosen_project() {
    let h = Home::new();
    let mut s = spawn(h.shell(&["--no-color"]), 10_000);
    let prompt = "valyxo:~/Projects/Main> ";
    s.exp_string(prompt).unwrap();
    s.send_line("new").unwrap();
    s.exp_string("9) rust").unwrap();
    s.exp_string("Template (number or name): ").unwrap();
    s.send_line("9").unwrap();
    s.exp_string("Project name: ").unwrap();
    s.send_line("Picked One").unwrap();
    s.exp_string("created ~/Projects/'Picked One' from the rust template")
        .unwrap();
    s.exp_string(prompt).unwrap();
    // By name, and an empty answer makes nothing.
    s.send_line("new").unwrap();
    s.exp_string("Template (number or name): ").unwrap();
    s.send_line("python").unwrap();
    s.exp_string("Project name: ").unwrap();
    s.send_line("").unwrap();
    s.exp_string("nothing chosen").unwrap();
    s.exp_string("valyxo:~/Projects/Main [1]> ").unwrap();
    s.send_line("exit").unwrap();
    s.exp_eof().unwrap();
    assert!(h.out("ls ~/Projects").contains("Picked One"));
    assert!(h
        .out("cat ~/Projects/'Picked One'/Cargo.toml")
        .contains("name = \"picked-one\""));
}

#[test]
fn binary_files_of_a_template_are_copied_as_they_are() {
    // Bytes with NUL in them are binary even when they happen to be valid UTF-8: a `{{`
    // there is no placeholder (it would fail the template) and `{{name}}` is not filled.
    let h = Home::new();
    let host = common::host_dir();
    let t = host.path().join("t");
    std::fs::create_dir(&t).unwrap();
    let bin = b"BIN\0{{name}}\0{{ x\0".to_vec();
    std::fs::write(t.join("data.bin"), &bin).unwrap();
    std::fs::write(t.join("README.md"), "# {{name}}\n").unwrap();
    h.out(&format!("import {} /tmp/t", t.display()));
    h.c("new --from /tmp/t app")
        .success()
        .stdout(contains("(2 files)"));
    assert_eq!(h.out("cat ~/Projects/app/README.md"), "# app\n");
    let out = host.path().join("out.bin");
    h.out(&format!("export ~/Projects/app/data.bin {}", out.display()));
    assert_eq!(std::fs::read(&out).unwrap(), bin);
}

#[test]
fn a_forced_new_that_fails_changes_nothing() {
    // The template's src/main.rs is a folder in the project: `new --force` fails there,
    // and the files it would have replaced before it got there are as they were.
    let h = Home::new();
    h.out(
        "mkdir -p ~/Projects/p/src/main.rs; echo keep > ~/Projects/p/src/main.rs/x; \
         echo old > ~/Projects/p/README.md; echo old > ~/Projects/p/Cargo.toml",
    );
    let failed = h.c("new --force rust p").failure();
    assert_eq!(h.out("cat ~/Projects/p/README.md"), "old\n");
    assert_eq!(h.out("cat ~/Projects/p/Cargo.toml"), "old\n");
    assert_eq!(h.out("cat ~/Projects/p/src/main.rs/x"), "keep\n");
    assert_eq!(
        h.files("~/Projects/p"),
        [
            "~/Projects/p/Cargo.toml",
            "~/Projects/p/README.md",
            "~/Projects/p/src/main.rs/x"
        ]
    );
    failed.stderr(
        contains("is a directory")
            .and(contains("src/main.rs"))
            .and(contains("none of the template's files were written")),
    );
}

#[test]
fn a_forced_new_into_a_mounted_folder_that_fails_changes_nothing() {
    // As above, with the project a mounted host folder: the files it would have replaced
    // before it reached src/main.rs are as they were, and no temporary is left there.
    let h = Home::new();
    let host = common::host_dir();
    let p = host.path();
    std::fs::create_dir_all(p.join("src/main.rs")).unwrap();
    std::fs::write(p.join("src/main.rs/x"), "keep\n").unwrap();
    std::fs::write(p.join("README.md"), "old\n").unwrap();
    std::fs::write(p.join("Cargo.toml"), "old\n").unwrap();
    h.c(&format!("mount {} /Projects/p", p.display())).success();
    let failed = h.c("new --force rust p").failure();
    assert_eq!(
        std::fs::read_to_string(p.join("README.md")).unwrap(),
        "old\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.join("Cargo.toml")).unwrap(),
        "old\n"
    );
    let mut left: Vec<String> = walk(p);
    left.sort();
    assert_eq!(
        left,
        [
            "Cargo.toml",
            "README.md",
            "src",
            "src/main.rs",
            "src/main.rs/x"
        ]
    );
    failed.stderr(
        contains("is a directory")
            .and(contains("src/main.rs"))
            .and(contains("none of the template's files were written")),
    );
}

/// Every name under `dir` (hidden ones too), relative to it.
pub(crate) fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            out.push(
                path.strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if path.is_dir() {
                todo.push(path);
            }
        }
    }
    out
}

#[test]
fn of_two_news_of_one_name_at_once_exactly_one_makes_it() {
    // Two templates of many files, made under one name by two processes at once: one
    // wins, the other is refused, and the project holds the winner's files only.
    let h = Home::new();
    let host = common::host_dir();
    for t in ["a", "b"] {
        let d = host.path().join(t);
        std::fs::create_dir(&d).unwrap();
        for i in 0..300 {
            std::fs::write(d.join(format!("f{i}")), format!("{t}\n")).unwrap();
        }
        h.out(&format!(
            "mkdir -p ~/Projects/Templates; import {} ~/Projects/Templates/{t}",
            d.display()
        ));
    }
    let runs = [
        h.spawn(&["-c", "new a same"]),
        h.spawn(&["-c", "new b same"]),
    ];
    let outs: Vec<_> = runs.into_iter().map(|r| r.wait_for_output()).collect();
    let won: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
    assert_eq!(won.len(), 1, "{outs:?}");
    let lost = &outs[1 - won[0]];
    assert!(
        String::from_utf8_lossy(&lost.stderr).contains("already exists"),
        "{lost:?}"
    );
    let winner = ["a\n", "b\n"][won[0]];
    let files = h.files("~/Projects/same");
    assert_eq!(files.len(), 300);
    let all = h.out("cat ~/Projects/same/*");
    assert_eq!(all, winner.repeat(300));
}

#[test]
fn a_template_file_too_large_to_store_is_refused_before_it_is_read() {
    // A template is read whole before anything is written: a file of some gigabytes (here
    // a sparse one, in a mounted folder) is refused by its size, not read into memory
    // first. Run with 2 GiB of address space, reading it whole could not even start.
    let h = Home::new();
    let host = common::host_dir();
    let huge = std::fs::File::create(host.path().join("huge.bin")).unwrap();
    huge.set_len(4 << 30).unwrap();
    std::fs::write(host.path().join("README.md"), "# {{name}}\n").unwrap();
    h.c(&format!("mount {} /m", host.path().display()))
        .success();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2000000 && exec \"$0\" --home \"$1\" -c 'new --from /m big'")
        .arg(common::BIN)
        .arg(h.path())
        .env_remove("VALYXO_HOME")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("~/m/huge.bin: 4294967296 bytes, more than a project's file may be"),
        "{err}"
    );
    h.c("ls ~/Projects/big").failure();
}

#[test]
fn two_template_files_that_fill_to_one_name_are_refused() {
    // For a project `app`, `{{name}}.txt` and `app.txt` both make app.txt: one of them
    // would be written over the other while `new` counted both.
    let h = Home::new();
    h.out("mkdir -p /t; echo one > /t/'{{name}}.txt'; echo two > /t/app.txt");
    h.c("new --from /t app").failure().stderr(contains(
        "~/t/app.txt and ~/t/{{name}}.txt both make app.txt",
    ));
    h.c("ls ~/Projects/app").failure();
    // Another name makes two files.
    h.c("new --from /t other")
        .success()
        .stdout(contains("(2 files)"));
    assert_eq!(h.out("cat ~/Projects/other/app.txt"), "two\n");
}

#[test]
fn ctrl_c_at_the_picker_gives_up_and_makes_nothing() {
    // Ctrl-C at either question ends `new` at once (status 130), and nothing is made: the
    // answer typed next is a command again, not a template or a name.
    let h = Home::new();
    let mut s = spawn(h.shell(&["--no-color"]), 10_000);
    s.exp_string("valyxo:~/Projects/Main> ").unwrap();
    s.send_line("new").unwrap();
    s.exp_string("Template (number or name): ").unwrap();
    s.send_control('c').unwrap();
    s.exp_string("valyxo:~/Projects/Main [130]> ").unwrap();
    s.send_line("new rust").unwrap();
    s.exp_string("Project name: ").unwrap();
    s.send_control('c').unwrap();
    s.exp_string("valyxo:~/Projects/Main [130]> ").unwrap();
    s.send_line("echo next").unwrap();
    s.exp_string("next").unwrap();
    s.exp_string("valyxo:~/Projects/Main> ").unwrap();
    s.send_line("exit").unwrap();
    s.exp_eof().unwrap();
    assert_eq!(h.out("ls ~/Projects"), "Main\n");
}

#[test]
fn an_author_with_angle_brackets_shows_as_written_in_a_page() {
    // `Ada <ada@example.com>` is a usual way to write an author; in an HTML page it is
    // written as text (escaped), not taken for a tag, and elsewhere as it is.
    let h = Home::new();
    h.c("settings set new.author 'Ada <ada@example.com> & co'")
        .success();
    h.c("new html page").success();
    let page = h.out("cat ~/Projects/page/index.html");
    assert!(
        page.contains("A page by Ada &lt;ada@example.com&gt; &amp; co."),
        "{page}"
    );
    assert!(h
        .out("cat ~/Projects/page/README.md")
        .contains("by Ada <ada@example.com> & co, 20"));
    // A page of a template of yours too.
    h.out("mkdir -p /t; echo '<p>{{author}}</p>' > /t/about.html");
    h.c("new --from /t mine").success();
    assert_eq!(
        h.out("cat ~/Projects/mine/about.html"),
        "<p>Ada &lt;ada@example.com&gt; &amp; co</p>\n"
    );
}
