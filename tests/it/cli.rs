//! The host command line and the shell language, run through the real binary in a
//! temporary home.

use crate::common;

use common::Home;
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn version_help_and_completions() {
    let h = Home::new();
    h.cmd()
        .arg("--version")
        .assert()
        .success()
        .stdout(contains(env!("CARGO_PKG_VERSION")));
    h.cmd().arg("--help").assert().success().stdout(
        contains("--home")
            .and(contains("-c"))
            .and(contains("--no-color")),
    );
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef valyxo"),
        ("fish", "complete -c valyxo"),
    ] {
        h.cmd()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(contains(marker));
    }
    h.cmd()
        .args(["completions", "powershell-nope"])
        .assert()
        .failure()
        .stderr(contains("invalid value"));
}

#[test]
fn dash_c_runs_one_line_and_exits_with_its_status() {
    let h = Home::new();
    assert_eq!(h.out("pwd"), "/Projects/Main\n");
    h.c("exit 3").code(3);
    h.c("echo a; exit 4; echo b").code(4).stdout("a\n");
    h.c("cd /nowhere")
        .code(1)
        .stderr(contains("no such file or directory"));
}

#[test]
fn lines_from_stdin_with_continuation_and_exit() {
    let h = Home::new();
    h.cmd()
        .write_stdin("echo one\necho \"two\nlines\"\nexit 5\necho never\n")
        .assert()
        .code(5)
        .stdout("one\ntwo\nlines\n");
    // The status of the last line is the exit status.
    h.cmd().write_stdin("ls; pwd\nnosuch\n").assert().code(127);
}

#[test]
fn home_from_flag_or_environment_holds_all_state() {
    let a = Home::new();
    let b = Home::new();
    a.c("echo kept > /note.txt").success();
    assert!(a.db().exists(), "the store is one file in the home");
    // VALYXO_HOME names the home when there is no flag...
    assert_cmd::Command::new(common::BIN)
        .env("VALYXO_HOME", a.path())
        .args(["-c", "cat /note.txt"])
        .assert()
        .success()
        .stdout("kept\n");
    // ... and the flag wins over it.
    assert_cmd::Command::new(common::BIN)
        .env("VALYXO_HOME", a.path())
        .arg("--home")
        .arg(b.path())
        .args(["-c", "cat /note.txt"])
        .assert()
        .code(1);
}

#[test]
fn colour_follows_setting_flag_and_no_color() {
    let h = Home::new();
    h.c("settings set color always").success();
    h.c("ls /").stdout(contains("\x1b["));
    h.cmd()
        .args(["--no-color", "-c", "ls /"])
        .assert()
        .stdout(contains("\x1b[").not());
    h.cmd()
        .env("NO_COLOR", "1")
        .args(["-c", "ls /"])
        .assert()
        .stdout(contains("\x1b[").not());
    // Piped output has no colour when the setting is auto.
    h.c("settings set color auto").success();
    h.c("ls /").stdout("Projects\n");
}

#[test]
fn command_colours_come_from_the_theme() {
    let h = Home::new();
    h.c("settings set color always").success();
    h.c("mkdir /d; echo 'a todo here' > /d/f.txt").success();
    // The default theme's colours.
    assert_eq!(
        h.out("ls /"),
        "\x1b[1;34mProjects\x1b[0m\n\x1b[1;34md\x1b[0m\n"
    );
    assert_eq!(
        h.out("grep -rn todo /d"),
        "\x1b[35m/d/f.txt\x1b[0m:\x1b[32m1\x1b[0m:a \x1b[1;31mtodo\x1b[0m here\n"
    );
    assert!(h
        .out("help")
        .starts_with("\x1b[1mFiles and directories\x1b[0m\n"));
    // A theme changes them, and may leave a style plain.
    let dir = h.out("theme dir");
    let dir = std::path::Path::new(dir.trim_end());
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("mine.toml"),
        "[ls]\ndir = \"green\"\n[grep]\nfile = \"\"\nmatch = \"reverse\"\n",
    )
    .unwrap();
    h.c("theme set mine").success();
    assert_eq!(h.out("ls /"), "\x1b[32mProjects\x1b[0m\n\x1b[32md\x1b[0m\n");
    assert_eq!(
        h.out("grep -rn todo /d"),
        "/d/f.txt:\x1b[32m1\x1b[0m:a \x1b[7mtodo\x1b[0m here\n"
    );
    // Colour off turns the theme's colours off too.
    h.cmd()
        .args(["--no-color", "-c", "ls /; grep -rn todo /d; help"])
        .assert()
        .success()
        .stdout(contains("\x1b[").not());
    // theme show lists the styles.
    let shown = h.out("theme show neon");
    assert!(shown.contains("[ls]\ndir     = \"bold blue\""), "{shown}");
    assert!(
        shown.contains("[grep]") && shown.contains("[help]"),
        "{shown}"
    );
}

#[test]
fn parse_errors_point_at_the_column() {
    let h = Home::new();
    h.c("echo \"abc").code(2).stderr(
        contains("column 6")
            .and(contains("unclosed double quote"))
            .and(contains("\n       ^")),
    );
    h.c("ls | | wc")
        .code(2)
        .stderr(contains("column 6").and(contains("  ls | | wc\n       ^")));
    h.c("echo a >").code(2).stderr(contains("column 9"));
}

#[test]
fn a_bad_value_in_config_toml_is_reported_escaped() {
    // The value quoted in the warning is the file's, whatever it holds.
    let h = Home::new();
    std::fs::write(
        h.path().join("config.toml"),
        "[new]\nauthor = \"\\u001b]0;title\\u0007x\"\n",
    )
    .unwrap();
    let a = h.c("true").success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("is not a valid value for new.author"),
        "{err:?}"
    );
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
}

#[test]
fn a_bad_wildcard_is_shown_escaped() {
    // A word with a raw escape (as a script's `sh` may run) and a broken wildcard: the
    // error quotes it escaped.
    let h = Home::new();
    let a = h.c("ls x\u{1b}[31mred\u{7}[").code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("bad wildcard"), "{err:?}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
}

#[test]
fn unknown_command_suggests() {
    let h = Home::new();
    h.c("lss").code(127).stderr(contains("Did you mean 'ls'?"));
    h.c("grpe x").code(127).stderr(contains("'grep'"));
}

#[test]
fn quoting_escapes_variables_and_status() {
    let h = Home::new();
    assert_eq!(h.out(r#"echo 'a  b' "c  d" e\ f"#), "a  b c  d e f\n");
    assert_eq!(
        h.out(r#"export X=world; echo "hello $X" 'not $X' \$X"#),
        "hello world not $X $X\n"
    );
    assert_eq!(h.out("export N=1; echo ${N}0"), "10\n");
    assert_eq!(h.out("nosuch; echo $?"), "127\n");
    assert_eq!(h.out("echo ok # a comment"), "ok\n");
    assert_eq!(h.out("echo ~ ~/Projects"), "~ ~/Projects\n");
    assert_eq!(h.out("cd ~/Projects; pwd"), "/Projects\n");
}

#[test]
fn sequences_and_conditionals() {
    let h = Home::new();
    assert_eq!(h.out("echo a; echo b"), "a\nb\n");
    assert_eq!(h.out("cd /nope && echo no || echo fallback"), "fallback\n");
    assert_eq!(h.out("pwd > p.txt; echo yes && echo also"), "yes\nalso\n");
}

#[test]
fn pipes_and_redirections_into_and_out_of_the_vfs() {
    let h = Home::new();
    h.c("echo one > f.txt; echo two >> f.txt").success();
    assert_eq!(h.out("cat f.txt"), "one\ntwo\n");
    assert_eq!(h.out("wc -l < f.txt"), "2\n");
    assert_eq!(h.out("cat f.txt | grep -c o | wc -c"), "2\n");
    h.c("cat missing.txt 2> err.txt").code(1);
    assert!(h.out("cat err.txt").contains("missing.txt"));
    // A redirection to a path outside any directory fails cleanly.
    h.c("echo x > /no/such/dir/f")
        .code(1)
        .stderr(contains("no such"));
}

#[test]
fn globs_match_against_the_vfs() {
    let h = Home::new();
    h.c("touch a.rs b.rs c.txt; mkdir sub; touch sub/d.rs")
        .success();
    assert_eq!(h.out("echo *.rs"), "a.rs b.rs\n");
    assert_eq!(h.out("echo */*.rs"), "sub/d.rs\n");
    assert_eq!(h.out("echo [ab].*"), "a.rs b.rs\n");
    h.c("echo *.zip").code(1).stderr(contains("no match"));
    assert_eq!(h.out("echo '*.rs'"), "*.rs\n");
}

#[test]
fn aliases_and_environment_persist() {
    let h = Home::new();
    h.c("alias ll='ls -la'; export EDITOR=vim").success();
    assert!(h.out("alias").contains("ll='ls -la'"));
    h.c("ll /").success().stdout(contains("Projects"));
    assert_eq!(h.out("echo $EDITOR"), "vim\n");
    assert!(h.out("env").contains("EDITOR=vim"));
    h.c("unalias ll; unset EDITOR").success();
    h.c("ll").code(127);
    assert_eq!(h.out("echo \"[$EDITOR]\""), "[]\n");
}

/// Aliases live in `aliases.toml` beside the config, so a line that uses nothing stored
/// (even through an alias) opens no store, and the file is the user's to edit.
#[test]
fn a_line_that_needs_nothing_stored_opens_no_store() {
    let h = Home::new();
    let store = h.db();
    h.c("true").success();
    h.c("alias hi='echo hi there'").success();
    assert_eq!(h.out("hi; echo done"), "hi there\ndone\n");
    assert!(!store.exists(), "the store was opened");
    let file = h.path().join("aliases.toml");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "hi = \"echo hi there\"\n"
    );
    // Edited by hand, with a comment and a name that needs quotes.
    std::fs::write(
        &file,
        "# mine\n\"g.s\" = \"echo dotted\"\nhi = \"echo hi\"\n",
    )
    .unwrap();
    assert_eq!(h.out("g.s; hi"), "dotted\nhi\n");
    h.c("unalias hi").success();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# mine\n\"g.s\" = \"echo dotted\"\n"
    );
    assert!(!store.exists(), "the store was opened");
    // A line that uses a path opens it, and the start folder is made as before.
    assert_eq!(h.out("pwd; ls /Projects"), "/Projects/Main\nMain\n");
    assert!(store.exists());
}

/// A store whose header is current but whose pages are not: nothing is noticed until the
/// line first needs it, and then the run ends there, as at start-up, after what it printed.
#[test]
fn a_store_that_fails_at_first_use_ends_the_run_in_words() {
    let h = Home::new();
    h.c("ls").success();
    let mut bytes = std::fs::read(h.db()).unwrap();
    for b in &mut bytes[100..] {
        *b = 0xA5;
    }
    std::fs::write(h.db(), &bytes).unwrap();
    h.c("true").success();
    h.c("echo before; ls; echo after")
        .code(1)
        .stdout("before\n")
        .stderr(contains("is damaged").and(contains("valyxo doctor")));
}

/// A fifo in place of the store is refused at once by a one-line run too (whose look at the
/// store's header must not wait for a writer), as by a run that opens the store at start.
#[test]
fn a_fifo_in_place_of_the_store_is_refused_without_waiting() {
    let h = Home::new();
    let c = std::ffi::CString::new(h.db().as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    h.cmd()
        .args(["-c", "true"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(contains("valyxo.db"));
}

/// `-c LINE` (read without clap) and `-cLINE` (read by clap) mean the same, whatever the
/// environment says: an empty VALYXO_HOME is refused by both, as before the fast reading.
#[test]
fn a_one_line_run_and_clap_agree_on_an_empty_valyxo_home() {
    let h = Home::new();
    let run = |args: &[&str]| {
        let out = assert_cmd::Command::new(common::BIN)
            .args(args)
            .env("VALYXO_HOME", "")
            .env("HOME", h.path())
            .env("XDG_DATA_HOME", h.path())
            .env("XDG_CONFIG_HOME", h.path())
            .env_remove("NO_COLOR")
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            err,
        )
    };
    let slow = run(&["-cecho hi"]);
    assert_eq!(slow.0, Some(2), "{slow:?}");
    assert_eq!(run(&["-c", "echo hi"]), slow);
}

/// A wildcard looks at the VFS: the session's start folder is there first, in a one-line
/// run as in a run from standard input (which makes it at start), even when the pattern
/// names no path below the working directory.
#[test]
fn a_wildcard_in_a_new_home_sees_the_start_folder() {
    for line in ["echo /*", "ls -d /Projects/*", "echo ~/*"] {
        let (a, b) = (Home::new(), Home::new());
        let piped = b.cmd().write_stdin(line).assert().success();
        assert_eq!(
            a.out(line),
            String::from_utf8_lossy(&piped.get_output().stdout),
            "{line}"
        );
    }
}

/// A store of an older home salvaged by `valyxo doctor` is at this valyxo's schema, so a
/// one-line run leaves it shut: the aliases it still held are in `aliases.toml` by then.
#[test]
fn aliases_of_an_older_store_salvaged_by_doctor_are_in_use_at_once() {
    let h = Home::new();
    h.c("ls").success();
    {
        let c = rusqlite::Connection::open(h.db()).unwrap();
        c.execute_batch(
            "INSERT INTO aliases (name, value) VALUES ('ll', 'echo long');
             PRAGMA user_version = 6;",
        )
        .unwrap();
    }
    h.cmd().args(["doctor", "--salvage"]).assert().success();
    assert_eq!(h.out("ll"), "long\n");
}

/// Homes made before `aliases.toml` kept aliases in the store: they move into the file
/// (one already in the file wins), and the store's rows go.
#[test]
fn aliases_kept_in_an_older_store_move_into_aliases_toml() {
    let h = Home::new();
    h.c("ls").success();
    {
        let c = rusqlite::Connection::open(h.db()).unwrap();
        c.execute_batch(
            "INSERT INTO aliases (name, value) VALUES ('ll', 'echo long'), ('hi', 'echo old'),
                 ('b' || char(1) || 'ad', 'echo kept in words');
             PRAGMA user_version = 6;",
        )
        .unwrap();
    }
    std::fs::write(h.path().join("aliases.toml"), "hi = \"echo new\"\n").unwrap();
    // A name an alias may no longer have is said once, value and all, and not kept.
    h.c("ll; hi").success().stdout("long\nnew\n").stderr(
        "valyxo: alias $'b\\x01ad' was not kept: its name holds characters an alias may no \
         longer have; it was: 'echo kept in words'\n",
    );
    h.c("ll").success().stderr("");
    let c = rusqlite::Connection::open(h.db()).unwrap();
    let left: i64 = c
        .query_row("SELECT count(*) FROM aliases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(
        h.out("alias"),
        "alias hi='echo new'\nalias ll='echo long'\n"
    );
}

#[test]
fn file_commands() {
    let h = Home::new();
    h.c("mkdir -p a/b/c && touch a/b/c/f && echo hi > a/x")
        .success();
    assert_eq!(h.out("find a -type f"), "a/b/c/f\na/x\n");
    assert_eq!(h.out("find a -name 'f*'"), "a/b/c/f\n");
    assert_eq!(h.out("find a -type d"), "a\na/b\na/b/c\n");
    h.c("cp -r a b2 && mv b2/x b2/y").success();
    assert_eq!(h.out("cat b2/y; ls b2"), "hi\nb\ny\n");
    h.c("cp a b3").code(1).stderr(contains("-r"));
    h.c("rm a").code(1).stderr(contains("-r"));
    h.c("rm -r a").success();
    h.c("ls a").code(1);
    h.c("rm -r /").code(1).stderr(contains("refusing"));
    h.c("rm -r ~").code(1).stderr(contains("refusing"));
    assert!(h.out("ls -la /").contains("Projects"));
    assert!(h.out("tree /Projects").contains("Main"));
    assert_eq!(
        h.out("cd /Projects; cd -; pwd"),
        "~/Projects/Main\n/Projects/Main\n"
    );
    h.c("echo 1234567 > big; ls -lh big").stdout(contains("8"));
}

#[test]
fn text_commands() {
    let h = Home::new();
    h.c("echo 'l1\nl2\nl3\nl4' > t").success();
    h.c("cat t | head -n 2").stdout(contains("l1"));
    // echo does not interpret escapes; build the file line by line instead.
    h.c("echo l1 > t; echo l2 >> t; echo l3 >> t; echo l4 >> t")
        .success();
    assert_eq!(h.out("head -n 2 t"), "l1\nl2\n");
    assert_eq!(h.out("tail -n 1 t"), "l4\n");
    assert_eq!(h.out("wc t"), " 4  4 12 t\n");
    assert_eq!(h.out("echo -n x; echo y"), "xy\n");
}

/// A reader that stops early (`head -1`) ends a recursive grep over a large tree: the walker
/// that lists files must not wait forever for workers that have stopped.
#[test]
fn grep_into_a_reader_that_stops_early_ends() {
    let h = Home::new();
    let host = common::host_dir();
    for d in 0..40 {
        let dir = host.path().join(format!("d{d:02}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}")), format!("needle {d} {f}\n")).unwrap();
        }
    }
    let hp = host.path().display().to_string();
    h.c(&format!("import {hp} /src && mount {hp} /m")).success();
    for root in ["/src", "/m"] {
        let a = h
            .cmd()
            .arg("-c")
            .arg(format!("grep -r needle {root} | head -1"))
            .timeout(std::time::Duration::from_secs(60))
            .assert()
            .success();
        assert_eq!(
            String::from_utf8_lossy(&a.get_output().stdout),
            format!("{root}/d00/f000:needle 0 0\n")
        );
    }
}

#[test]
fn grep_flags_over_stored_and_mounted_trees() {
    let h = Home::new();
    let host = common::host_dir();
    std::fs::write(host.path().join("a.txt"), "Alpha\nbeta\nGamma alpha\n").unwrap();
    std::fs::write(host.path().join("bin.dat"), b"alpha\0binary\n").unwrap();
    std::fs::create_dir(host.path().join("sub")).unwrap();
    std::fs::write(host.path().join("sub/b.txt"), "a.p\nalpha\n").unwrap();
    let hp = host.path().display().to_string();
    h.c(&format!("import {hp} /src && mount {hp} /m")).success();
    for root in ["/src", "/m"] {
        // A binary file's lines are not printed; that it matches goes to standard error.
        h.c(&format!("grep -rn alpha {root}"))
            .success()
            .stdout(format!(
                "{root}/a.txt:3:Gamma alpha\n{root}/sub/b.txt:2:alpha\n"
            ))
            .stderr(format!("grep: {root}/bin.dat: binary file matches\n"));
        assert_eq!(
            h.out(&format!("grep -ric alpha {root}")),
            format!("{root}/a.txt:2\n{root}/bin.dat:1\n{root}/sub/b.txt:1\n")
        );
        assert_eq!(
            h.out(&format!("grep -rl -i GAMMA {root}")),
            format!("{root}/a.txt\n")
        );
        assert_eq!(h.out(&format!("grep -F a.p {root}/sub/b.txt")), "a.p\n");
        assert_eq!(
            h.out(&format!("grep 'a.p' {root}/sub/b.txt")),
            "a.p\nalpha\n"
        );
        h.c(&format!("grep -v a {root}/a.txt")).code(1).stdout("");
        assert_eq!(h.out(&format!("grep -v -i alpha {root}/a.txt")), "beta\n");
    }
    h.c("grep nothing /src/a.txt").code(1);
    h.c("grep '(' /src/a.txt")
        .code(2)
        .stderr(contains("invalid pattern"));
    h.c("grep x /src").code(2).stderr(contains("-r"));
    assert_eq!(h.out("echo abc | grep -c b"), "1\n");
}

#[test]
fn settings_persist_and_are_validated() {
    let h = Home::new();
    h.c("settings set repl.hints false").success();
    assert_eq!(h.out("settings get repl.hints"), "false\n");
    assert!(h.out("settings").contains("repl.hints"));
    h.c("settings set repl.hints maybe")
        .code(1)
        .stderr(contains("not a valid value"));
    h.c("settings set no.such.key 1")
        .code(1)
        .stderr(contains("no.such.key"));
    assert_eq!(h.out("settings get repl.hints"), "false\n");
}

#[test]
fn every_command_has_help() {
    let h = Home::new();
    for spec in valyxo::commands::registry().all() {
        h.c(&format!("{} --help", spec.name))
            .success()
            .stdout(contains("Usage:").and(contains(format!("man {}", spec.name))));
    }
    h.c("help")
        .success()
        .stdout(contains("grep").and(contains("mount")));
    h.c("help grep").success().stdout(contains("Usage:"));
}

#[test]
fn exec_runs_host_programs_and_writes_back() {
    let h = Home::new();
    h.c("mkdir -p /Projects/Main/src; echo data > /Projects/Main/src/in.txt")
        .success();
    h.c("exec sh -c 'cat src/in.txt > out.txt; echo made'")
        .success()
        .stdout("made\n");
    assert_eq!(h.out("cat /Projects/Main/out.txt"), "data\n");
    h.c("!sh -c 'exit 7'").code(7);
    h.c("exec no-such-program-xyz").code(127);
    // A trailing `&` runs the line as a job; a one-line run shows its output as it comes,
    // as bash does, and keeps it for logs.
    h.c("echo hi &").success().stdout("hi\n");
    h.c("logs %1").success().stdout("hi\n");
}

#[test]
fn processes_starting_on_a_new_home_at_once_all_work() {
    // One process opens a new home while others open, use and close it over and over (a
    // closing process checkpoints and truncates the WAL): every one of them must work.
    let run = |h: &Home, line: &str| {
        std::process::Command::new(common::BIN)
            .arg("--home")
            .arg(h.path())
            .args(["-c", line])
            .env_remove("VALYXO_HOME")
            .output()
            .unwrap()
    };
    for round in 0..6 {
        let h = Home::new();
        std::thread::scope(|s| {
            let long = s.spawn(|| run(&h, "echo long > /long; cat /long"));
            let short: Vec<_> = (0..20).map(|i| run(&h, &format!("echo {i}"))).collect();
            for (i, out) in short.iter().enumerate() {
                assert!(
                    out.status.success(),
                    "round {round}, run {i}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let out = long.join().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "long\n");
        });
    }
}

/// Waits (at most 10 s) until `cond` holds.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The checkouts in a home (folders under `checkouts/`).
fn checkouts(h: &Home) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(h.path().join("checkouts"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn exec_writes_back_only_what_the_program_changed_and_keeps_both_when_both_did() {
    let h = Home::new();
    h.c("echo v1 > edit.txt; echo start > both.txt; echo bye > gone.txt")
        .success();
    // The program works slowly in the background...
    let prog = h.spawn(&[
        "-c",
        "exec sh -c 'while [ ! -e go ]; do sleep 0.05; done; echo prog > made.txt; \
         echo progedit > both.txt; rm gone.txt'",
    ]);
    wait_until("the checkout", || !checkouts(&h).is_empty());
    // ...while another valyxo creates and edits files in the project.
    h.c("echo x > new.txt; echo v2 > edit.txt; echo other > both.txt")
        .success();
    let work = checkouts(&h)[0].join("work");
    std::fs::write(work.join("go"), "").unwrap();
    let out = prog.wait_for_output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("both.txt changed in the VFS while the program ran, and the program changed it too: the program's version is kept as 'both (conflict exec "),
        "{err}"
    );
    // The program's changes are in; the others' changes are still there.
    assert_eq!(
        h.out("cat new.txt edit.txt made.txt both.txt"),
        "x\nv2\nprog\nother\n"
    );
    let ls = h.out("ls");
    assert!(!ls.contains("gone.txt"), "{ls}");
    let copy = ls
        .lines()
        .find(|l| l.starts_with("both (conflict exec "))
        .expect(&ls);
    assert_eq!(h.out(&format!("cat '{copy}'")), "progedit\n");
    assert!(
        checkouts(&h).is_empty(),
        "the checkout is gone once written back"
    );
}

#[test]
fn exec_checkouts_are_private_and_survive_a_stop() {
    let h = Home::new();
    h.c("echo secret > .env").success();
    h.c("exec sh -c 'stat -c %a . .env'")
        .success()
        .stdout("700\n600\n");
    // SIGTERM while the program runs: it is stopped, and its work written back.
    let prog = h.spawn(&["-c", "exec sh -c 'echo out > result.txt; exec sleep 30'"]);
    wait_until("the program's output", || {
        checkouts(&h)
            .first()
            .is_some_and(|c| c.join("work/result.txt").exists())
    });
    prog.signal(libc::SIGTERM);
    let out = prog.wait_for_output();
    assert!(!out.status.success());
    assert_eq!(h.out("cat result.txt"), "out\n");
    assert!(checkouts(&h).is_empty());
    // SIGKILL: the checkout stays, is offered, and can be written back.
    let prog = h.spawn(&["-c", "exec sh -c 'echo later > late.txt; exec sleep 30'"]);
    wait_until("the program's output", || {
        checkouts(&h)
            .first()
            .is_some_and(|c| c.join("work/late.txt").exists())
    });
    prog.signal(libc::SIGKILL);
    prog.wait_for_output();
    h.c("exec --pending")
        .success()
        .stdout(contains("a checkout of ~/Projects/Main for 'sh'"));
    h.c("cat late.txt").code(1);
    h.c("exec --write-back")
        .success()
        .stdout(contains("1 written back"));
    assert_eq!(h.out("cat late.txt"), "later\n");
    assert!(checkouts(&h).is_empty());
    h.c("exec --write-back")
        .code(1)
        .stderr(contains("no checkout is waiting"));
}

#[test]
fn exec_does_not_copy_the_whole_vfs() {
    let h = Home::new();
    h.c("echo deep > ~/Projects/Main/deep.txt; echo top > /top.txt")
        .success();
    // At / the program gets the files right there, not every project below.
    h.c("cd /; exec sh -c 'ls; cat top.txt; echo new > made.txt'")
        .success()
        .stdout("top.txt\ntop\n");
    assert_eq!(h.out("cat /made.txt"), "new\n");
    assert_eq!(h.out("cat ~/Projects/Main/deep.txt"), "deep\n");
}

#[test]
fn small_things_say_what_is_wrong() {
    let h = Home::new();
    // Exit statuses out of range are refused, not wrapped.
    for (line, why) in [
        (
            "exit(-3)",
            "exit(-3): an exit status is a whole number from 0 to 255",
        ),
        (
            "exit(256)",
            "exit(256): an exit status is a whole number from 0 to 255",
        ),
    ] {
        h.cmd()
            .arg("-e")
            .arg(line)
            .assert()
            .code(1)
            .stderr(contains(why));
    }
    h.cmd().arg("-e").arg("exit(7)").assert().code(7);
    h.c("exit 256").code(2).stderr(contains("256"));
    // An alias loop is named as one.
    h.c("alias a=b; alias b=a").success();
    h.c("a")
        .code(127)
        .stderr(contains("alias 'a' leads back to itself (a → b → a)"));
    // import makes the folders it needs.
    let host = common::host_dir();
    std::fs::write(host.path().join("f.txt"), "in").unwrap();
    h.c(&format!(
        "import {} /new/dir/f.txt",
        host.path().join("f.txt").display()
    ))
    .success();
    assert_eq!(h.out("cat /new/dir/f.txt"), "in");
    // A host shell reading only the start of the completions is not an error.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' completions bash | head -1", common::BIN))
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn grep_reports_binary_matches_as_gnu_grep_does() {
    let h = Home::new();
    let host = common::host_dir();
    std::fs::write(host.path().join("bin.dat"), b"a\0b\nabc\n").unwrap();
    h.c(&format!(
        "import {} bin.dat",
        host.path().join("bin.dat").display()
    ))
    .success();
    for line in ["grep a bin.dat", "cat bin.dat | grep a", "grep -r a ."] {
        h.c(line)
            .success()
            .stdout("")
            .stderr(contains("binary file matches"));
    }
    h.c("grep zzz bin.dat").code(1).stderr("");
    h.c("grep -c a bin.dat").success().stdout("2\n");
    h.c("grep -l a bin.dat").success().stdout("bin.dat\n");
    h.c("grep -a abc bin.dat").success().stdout("abc\n");
    // Hidden names are searched with --hidden.
    h.c("mkdir d; echo needle > d/.secret").success();
    h.c("grep -r needle d").code(1);
    h.c("grep -r --hidden needle d")
        .success()
        .stdout("d/.secret:needle\n");
}

/// `register` with a password piped in that breaks the server's rule says the rule, and
/// creates nothing; the same account then registers with a good one.
#[test]
fn register_checks_the_password_rule_before_the_server_does() {
    let server = common::server::Server::sqlite();
    let h = Home::new();
    let line = format!(
        "register --server {} --email rule@example.com ruled",
        server.url
    );
    h.cmd()
        .args(["-c", &line])
        .write_stdin("alllowercase1\n")
        .assert()
        .code(1)
        .stderr(contains(
            "Password must hold a lower-case letter, an upper-case letter and a digit; nothing was created",
        ));
    h.cmd()
        .args(["-c", &line])
        .write_stdin("Good-pass1\n")
        .assert()
        .success()
        .stdout(contains("logged in as ruled"));
}

#[test]
fn snippets_lists_user_snippets_over_built_ins_and_names_a_broken_file() {
    let h = Home::new();
    h.c("mkdir /Snippets").success();
    h.c("echo '[flex]' > /Snippets/css.toml").success();
    h.c("echo 'description = \"mine\"' >> /Snippets/css.toml")
        .success();
    h.c("echo 'body = \"display: flex;\"' >> /Snippets/css.toml")
        .success();
    let out = h.out("snippets --lang css");
    assert!(
        out.contains("  flex   mine  (yours, /Snippets/css.toml; over the built-in)\n"),
        "{out}"
    );
    assert!(out.contains("  media  a media query\n"), "{out}");
    // A broken file: its snippets are left out, the error is named, the status is 1; the
    // built-ins are still listed.
    h.c("echo '[for' > /Snippets/sh.toml").success();
    h.c("snippets --lang sh")
        .code(1)
        .stdout(contains("  for      a for loop\n"))
        .stderr(contains("snippets: /Snippets/sh.toml: line 1:"));
}
