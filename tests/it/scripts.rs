//! Scripts and jobs through the real binary: running scripts every way, the host API (every
//! example of `man scripting`), limits and cancellation, error messages, plugins,
//! ValyxoScript, background jobs, and the examples in `examples/`.

use crate::common;

use common::{host_dir, Home};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The ```rhai blocks of a Markdown page, with the `### name` heading above each.
fn rhai_blocks(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut head = String::new();
    let mut cur: Option<String> = None;
    for line in src.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            head = h.trim().to_string();
        }
        if line.trim() == "```rhai" {
            cur = Some(String::new());
        } else if line.trim() == "```" {
            if let Some(b) = cur.take() {
                out.push((head.clone(), b));
            }
        } else if let Some(b) = cur.as_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    out
}

#[test]
fn every_host_function_is_documented_with_an_example_that_runs() {
    let page = valyxo::manual::get("scripting").expect("scripting page");
    let blocks = rhai_blocks(page);
    for f in valyxo::script::api::FUNCTIONS {
        assert!(
            blocks.iter().any(|(h, _)| h == f),
            "scripting.md has no example for {f}"
        );
    }
    let h = Home::new();
    let mut failures = Vec::new();
    for (name, code) in &blocks {
        let file = h.path().join("example.rhai");
        std::fs::write(&file, code).unwrap();
        let out = h.cmd().arg("run").arg(&file).output().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{name}: {}\n{code}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn scripts_run_every_way_with_their_exit_status() {
    let h = Home::new();
    let host = host_dir();
    let f = host.path().join("s.rhai");
    std::fs::write(
        &f,
        "print(`args=${args}`);\nif args.len() > 1 { exit(parse_int(args[1])); }\n",
    )
    .unwrap();
    h.cmd()
        .arg("run")
        .arg(&f)
        .arg("a")
        .assert()
        .success()
        .stdout("args=[\"a\"]\n");
    h.cmd().arg("run").arg(&f).args(["a", "7"]).assert().code(7);
    // `valyxo FILE ARGS`, even with an argument that names a subcommand.
    h.cmd()
        .arg(&f)
        .arg("run")
        .assert()
        .success()
        .stdout("args=[\"run\"]\n");
    // A VFS path with --vfs, and `run` at the prompt.
    h.c(&format!("import {} /s.rhai", f.display())).success();
    h.cmd()
        .args(["run", "--vfs", "/s.rhai", "x", "4"])
        .assert()
        .code(4);
    h.c("run /s.rhai -v 5")
        .code(5)
        .stdout("args=[\"-v\", \"5\"]\n");
    // -e prints the value.
    h.cmd()
        .args(["-e", "6 * 7"])
        .assert()
        .success()
        .stdout("42\n");
    h.cmd().args(["-e", "exit(9)"]).assert().code(9);
    // A missing host file says where it looked.
    h.cmd()
        .args(["run", "/no/such.rhai"])
        .assert()
        .code(1)
        .stderr(contains("use --vfs"));
}

#[test]
fn a_host_script_says_where_its_files_are_and_here_reads_them_from_the_host() {
    let h = Home::new();
    let dir = host_dir();
    std::fs::write(dir.path().join("data.json"), "{\"n\": 41}").unwrap();
    std::fs::write(
        dir.path().join("s.rhai"),
        "let v = parse_json(read(args[0])); write(\"out.txt\", `${v.n + 1}`); print(v.n);",
    )
    .unwrap();
    // Without --here the script's paths are VFS paths: the error names both places and
    // the flag.
    let out = h
        .cmd()
        .current_dir(dir.path())
        .args(["run", "s.rhai", "data.json"])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for said in [
        "'data.json': no such file in the VFS (/Projects/Main/data.json)",
        "The script is a host file, but its paths are VFS paths",
        "'valyxo run --here'",
        &dir.path().canonicalize().unwrap().display().to_string(),
    ] {
        assert!(err.contains(said), "{said}: {err}");
    }
    // With --here they are files of the host directory, both ways, as a jail.
    h.cmd()
        .current_dir(dir.path())
        .args(["run", "--here", "s.rhai", "data.json"])
        .assert()
        .success()
        .stdout("41\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "42"
    );
    h.cmd()
        .current_dir(dir.path())
        .args(["run", "--here", "s.rhai", "../../etc/passwd"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains("'../../etc/passwd': /etc/passwd: no such file"));
    // The mount was for that run only: nothing of it is stored.
    h.c("mounts").success().stdout(contains("/here").not());
    h.c("ls /").success().stdout(contains("here").not());
    // The host's run takes the prompt's limits.
    h.cmd()
        .current_dir(dir.path())
        .args([
            "run",
            "--here",
            "--max-operations",
            "3",
            "s.rhai",
            "data.json",
        ])
        .assert()
        .code(1)
        .stderr(contains("too many operations"));
}

#[test]
fn a_shebang_script_runs_from_the_host_shell() {
    let h = Home::new();
    let script = examples().join("hello.rhai");
    let bin_dir = Path::new(common::BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&script)
        .arg("Ada")
        .env("PATH", path)
        .env("VALYXO_HOME", h.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Hello, Ada!"));
}

#[test]
fn errors_point_at_file_line_and_column() {
    let h = Home::new();
    h.c("echo 'let a = 1;\nfn f(x) { x + nope }\nprint(f(a));' > /e.rhai")
        .success();
    h.c("run /e.rhai").code(1).stderr(contains(
        "/e.rhai:2:15: error: Variable not found: nope\n    2 | fn f(x) { x + nope }\n      |               ^\n      = in f, called at line 3",
    ));
    h.c("echo 'let x = (1 + ;' > /p.rhai").success();
    h.c("run /p.rhai").code(1).stderr(contains("/p.rhai:1:"));
}

#[test]
fn limits_stop_runaway_scripts_with_a_clear_error() {
    let h = Home::new();
    h.c("echo 'loop { }' > /spin.rhai").success();
    let t = Instant::now();
    h.c("run --timeout 200ms /spin.rhai")
        .code(124)
        .stderr(contains("stopped after 200 ms"));
    assert!(t.elapsed() < Duration::from_secs(20));
    h.c("settings set script.timeout 100ms && run /spin.rhai")
        .code(124);
    h.c("settings set script.timeout 0; run --max-operations 1000 /spin.rhai")
        .code(1)
        .stderr(contains("too many operations"));
    // Values grown by the functions that build them stop at their size limit; grown by the
    // operators built into the engine (`+=`, `+`), at the memory limit.
    h.c("echo 'let a = []; loop { a.push(1); }' > /p.rhai; settings set script.max_array_size 1000; run /p.rhai")
        .code(1)
        .stderr(contains("script.max_array_size"));
    h.c("echo 'let s = \"\"; s.pad(100, \"x\"); loop { s.pad(s.len * 2, \"y\"); }' > /g.rhai; run /g.rhai")
        .code(1)
        .stderr(contains("script.max_string_size"));
    h.c("settings set script.max_memory 64M; echo 'let s = \"x\"; loop { s += s; }' > /s.rhai; run /s.rhai")
        .code(1)
        .stderr(contains("script.max_memory"));
    h.c("echo 'let a = [1]; loop { a += a; }' > /a.rhai; run /a.rhai")
        .code(1)
        .stderr(contains("script.max_memory"));
    h.c("echo 'fn f(n) { f(n + 1) } f(0)' > /r.rhai; run /r.rhai")
        .code(1)
        .stderr(contains("nest too deeply"));
    // The shell is still there after each of them.
    h.c("run /r.rhai; echo alive")
        .success()
        .stdout(contains("alive"));
}

#[test]
fn imports_resolve_inside_the_vfs() {
    let h = Home::new();
    h.c("mkdir -p /app/lib && echo 'fn twice(x) { x * 2 }' > /app/lib/util.rhai && echo 'import \"lib/util\" as u; print(u::twice(21));' > /app/main.rhai")
        .success();
    h.c("cd / && run /app/main.rhai").success().stdout("42\n");
    h.c("echo 'import \"../../../etc/passwd\" as p;' > /app/evil.rhai; run /app/evil.rhai")
        .code(1)
        .stderr(contains("evil.rhai:1"));
}

#[test]
fn the_script_prompt_reads_a_pipe() {
    let h = Home::new();
    let out = h
        .cmd()
        .args(["-c", "script"])
        .write_stdin("let x = 6;\nfn sq(a) {\n  a * a\n}\nsq(x)\nx = x + 1;\nx\n\"s\"\n")
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout),
        "=> 36\n=> 7\n=> \"s\"\n"
    );
    h.cmd()
        .args(["-c", "enter vs"])
        .write_stdin("nope\n")
        .assert()
        .code(1)
        .stderr(contains("Variable not found: nope"));
}

#[test]
fn valyxoscript_runs_and_reports_unsupported_lines() {
    let h = Home::new();
    h.c(&format!(
        "import {} /legacy.vs",
        examples().join("legacy.vs").display()
    ))
    .success();
    h.c("run /legacy.vs").success().stdout(contains(
        "primes up to 30 = 10\n1 -> 1\n2 squared is 4\n3 -> 9\ncountdown 3\ncountdown 2\ncountdown 1\na reasonable number of primes\n",
    ));
    h.c("echo 'set x = 1\nrepeat 3 times' > /bad.vs; run /bad.vs")
        .code(1)
        .stderr(contains(
            "/bad.vs:2: error: unsupported statement 'repeat 3 times'",
        ));
    h.c("echo 'set x = 1\nprint x + y' > /rt.vs; run /rt.vs")
        .code(1)
        .stderr(contains(
            "/rt.vs:2: error: Variable not found: y\n    2 | print x + y",
        ))
        .stderr(contains(
            "read as ValyxoScript, the legacy language of .vs and .ns",
        ));
    // `.ns` is the older name of the same language: the first platform's own HelloWorld
    // example runs, in the VFS and from the host.
    let hello = "set msg = \"Hello World\"\nprint msg\n";
    let dir = common::host_dir();
    let main = dir.path().join("main.ns");
    std::fs::write(&main, hello).unwrap();
    h.cmd()
        .arg("run")
        .arg(&main)
        .assert()
        .success()
        .stdout("Hello World\n");
    h.c(&format!("import {} /main.ns; run /main.ns", main.display()))
        .success()
        .stdout("Hello World\n");
    // Legacy lines in a file named as Rhai: the error says how it was read and what to do.
    let as_rhai = dir.path().join("main.rhai");
    std::fs::write(&as_rhai, hello).unwrap();
    h.cmd()
        .arg("run")
        .arg(&as_rhai)
        .assert()
        .code(1)
        .stderr(contains(
            "read as Rhai, by its name; its lines look like ValyxoScript",
        ))
        .stderr(contains("name it .vs (or .ns)"));
    // A Rhai syntax error that does not look like ValyxoScript gets no such note.
    h.c("echo 'let x = ;' > /plain.rhai; run /plain.rhai")
        .code(1)
        .stderr(predicates::prelude::PredicateBooleanExt::not(contains(
            "ValyxoScript",
        )));
}

#[test]
fn plugins_add_commands_everywhere() {
    let h = Home::new();
    h.c(&format!(
        "import {} /todo.rhai",
        examples().join("todo_plugin.rhai").display()
    ))
    .success();
    h.c("plugin install /todo.rhai")
        .success()
        .stdout(contains("installed plugin todo 1.0"));
    h.c("todo buy milk && todo walk && done 1 && todo")
        .success()
        .stdout(contains("1. walk"));
    h.c("help").success().stdout(contains(
        "todo      Add a to-do item, or list them (plugin todo)",
    ));
    h.c("todo --help")
        .success()
        .stdout(contains("Usage: todo [TEXT]..."));
    h.c("man done")
        .success()
        .stdout(contains("Mark a to-do item done"));
    h.c("done 99").code(1).stdout(contains("no item 99"));
    h.c("plugin list")
        .success()
        .stdout(contains("todo 1.0 — A small to-do list"));
    // Bad plugins are refused with the reason.
    h.c("echo 'fn plugin() { #{ name: \"x\", commands: [#{ name: \"ls\", run: \"f\" }] } } fn f(a) { 0 }' > /bad.rhai; plugin install /bad.rhai")
        .code(1)
        .stderr(contains("'ls' is a built-in command"));
    h.c("echo 'fn plugin() { #{ name: \"x\", commands: [#{ name: \"y\", run: \"missing\" }] } }' > /bad2.rhai; plugin install /bad2.rhai")
        .code(1)
        .stderr(contains("no function missing(args)"));
    h.c("echo 'print(1);' > /bad3.rhai; plugin install /bad3.rhai")
        .code(1)
        .stderr(contains("defines fn plugin()"));
    h.c("plugin remove todo && todo")
        .code(127)
        .stderr(contains("unknown command 'todo'"));
}

#[test]
fn background_jobs_capture_output_and_can_be_killed() {
    let h = Home::new();
    h.c("echo 'let n = 0; loop { n += 1; }' > /busy.rhai")
        .success();
    let out = h
        .cmd()
        .write_stdin("run /busy.rhai &\necho hello from a job &\nwait %2\nlogs %2\nkill %1\njobs\nwait %1; echo \"wait status $?\"\n")
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("hello from a job\n"), "{text}");
    assert!(text.contains("[1]  killed"), "{text}");
    assert!(text.contains("[2]  done"), "{text}");
    assert!(text.contains("wait status 130"), "{text}");
    // The records and output outlive the process.
    h.c("logs %2").success().stdout("hello from a job\n");
    let json = h.out("jobs --json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["state"], "killed");
    assert_eq!(v[1]["state"], "done");
    assert_eq!(v[1]["status"], 0);
    // A non-interactive run waits for its jobs; queued jobs respect the limit.
    h.c("settings set jobs.max_running 1; exec sleep 0.2 & echo second & jobs")
        .success()
        .stdout(contains("queued"));
    h.c("kill %1").code(1).stderr(contains("already ended"));
    h.c("kill %99").code(1).stderr(contains("no job %99"));
}

#[test]
fn a_job_line_a_script_made_is_listed_escaped() {
    // `sh(...)` starts a job with whatever text the script built (here with an escape that
    // would turn the terminal red): `jobs` shows it escaped, never raw.
    let h = Home::new();
    h.out("echo 'sh(\"echo \\x1b[31mred &\"); sh(\"wait\");' > /j.rhai; run /j.rhai");
    let listed = h.out("jobs");
    assert!(listed.contains("$'echo \\e[31mred'"), "{listed:?}");
    assert!(!listed.contains('\u{1b}'), "{listed:?}");
}

#[test]
fn many_jobs_are_stopped_by_one_kill_and_jobs_says_when_it_shows_only_the_latest() {
    let h = Home::new();
    // 100 queued jobs behind one running: one kill stops them all, at once.
    let mut line = String::from("settings set jobs.max_running 1\n");
    for _ in 0..101 {
        line.push_str("exec sleep 30 &\n");
    }
    line.push_str("kill --all\njobs --json\n");
    let out = h.cmd().write_stdin(line).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("stopped 101 jobs\n"), "{text}");
    let json = &text[text.find('[').unwrap()..];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let states: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.len(), 20);
    assert!(states.iter().all(|s| *s == "killed"), "{states:?}");
    // 'jobs' says it shows only the latest 20, on stderr; --all shows all.
    h.c("jobs").success().stderr(contains(
        "showing the last 20 of 101 jobs kept: 'jobs --all' lists every one",
    ));
    assert_eq!(h.out("jobs --all").lines().count(), 101);
    // Several by number: each named one stops; one that is not there is said, the rest go.
    let out = h
        .cmd()
        .write_stdin("exec sleep 30 &\nexec sleep 30 &\nkill %102 %999 %103\necho status $?\njobs --all --json\n")
        .assert()
        .success();
    let out = out.get_output();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("status 1"), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no job %999"),
        "{out:?}"
    );
    let json = &text[text.find('[').unwrap()..];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let last: Vec<&str> = v.as_array().unwrap()[101..]
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert_eq!(last, ["killed", "killed"]);
    // A queued job named twice is stopped once, and that is no error.
    h.c("settings set jobs.max_running 1; exec sleep 30 & exec sleep 30 & kill %105 105 %104")
        .success();
    h.c("kill").code(2).stderr(contains("%N"));
    h.c("kill --all %1")
        .code(2)
        .stderr(contains("cannot be used with"));
}

#[test]
fn a_job_whose_process_died_is_lost() {
    let h = Home::new();
    let mut child = std::process::Command::new(common::BIN)
        .arg("--home")
        .arg(h.path())
        .args(["-c", "exec sleep 60 & exec sleep 60"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = h.out("jobs");
        if out.contains("running") {
            break;
        }
        assert!(Instant::now() < deadline, "the job never started: {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    h.c("jobs").success().stdout(contains("[1]  lost"));
    h.c("wait %1").code(1);
}

#[test]
fn every_example_runs() {
    let h = Home::new();
    let ex = examples();
    let host = host_dir();
    std::fs::create_dir_all(host.path().join("notes/deeper")).unwrap();
    std::fs::write(host.path().join("notes/a.txt"), "the cat and the dog\n").unwrap();
    std::fs::write(host.path().join("notes/deeper/b.txt"), "The end\n").unwrap();
    std::fs::write(
        host.path().join("orders.json"),
        r#"[{"customer":"b","qty":2,"price":1.5},{"customer":"a","qty":1,"price":10}]"#,
    )
    .unwrap();
    h.c(&format!(
        "import {} /ex && import {}/notes /notes && import {}/orders.json /orders.json",
        ex.display(),
        host.path().display(),
        host.path().display()
    ))
    .success();
    h.c("run /ex/wordcount.rhai /notes 2")
        .success()
        .stdout("2 files, 5 distinct words\n3 the\n1 and\n");
    h.c("run /ex/json_report.rhai /orders.json /report.json")
        .success();
    let report: serde_json::Value = serde_json::from_str(&h.out("cat /report.json")).unwrap();
    assert_eq!(report["customers"][0]["name"], "a");
    assert_eq!(report["customers"][1]["total"], 3.0);
    h.c("run /ex/scaffold.rhai demo")
        .success()
        .stdout(contains("main.rs"));
    h.c("cat /Projects/demo/src/main.rs")
        .success()
        .stdout(contains("hello from demo"));
    h.c("run /ex/scaffold.rhai demo")
        .code(1)
        .stdout(contains("already exists"));
    h.c("run /ex/background.rhai")
        .success()
        .stdout(contains("1 of 4 failed"));
    h.c("run /ex/legacy.vs")
        .success()
        .stdout(contains("primes up to 30 = 10"));
    h.c("run /ex/drive_shell.rhai")
        .success()
        .stdout(contains("3 TODO lines"));
    h.c("plugin install /ex/todo_plugin.rhai && todo write tests && todo")
        .success()
        .stdout(contains("1. write tests"));
    h.cmd()
        .arg(ex.join("hello.rhai"))
        .arg("fail")
        .assert()
        .code(3);
}

#[test]
fn a_script_cannot_take_more_memory_than_its_budget() {
    let h = Home::new();
    h.c("settings set script.max_memory 32M").success();
    // A hundred variables, each within the string limit: the budget stops the script and
    // the hub goes on.
    let mut many = String::from(r#"let s = ""; s.pad(1000000, "x");"#);
    for i in 0..100 {
        many.push_str(&format!(" let v{i} = s + \"{i}\";"));
    }
    many.push_str(r#" print("unreachable");"#);
    h.cmd()
        .arg("-e")
        .arg(&many)
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains(
            "out of memory: the script held more than 32 MiB (setting script.max_memory)",
        ));
    // One call that would build 10^10 bytes is refused before it allocates, with and
    // without a string limit.
    let bomb = r#"let s = ""; s.pad(100000, "x"); s.replace("x", s); print("unreachable");"#;
    h.cmd()
        .arg("-e")
        .arg(bomb)
        .assert()
        .code(1)
        .stderr(contains(
            "exceeds the size limit (setting script.max_string_size)",
        ));
    h.c("settings set script.max_string_size 0").success();
    h.cmd()
        .arg("-e")
        .arg(bomb)
        .assert()
        .code(1)
        .stderr(contains("out of memory"));
    // A script within its budget runs as before.
    h.cmd()
        .arg("-e")
        .arg(r#"let s = ""; s.pad(1000, "x"); s.replace("x", "yy"); s.len"#)
        .assert()
        .success()
        .stdout("2000\n");
    // A file too large to hold is refused before it is read.
    h.c("settings set script.max_string_size 1048576").success();
    let host = host_dir();
    std::fs::write(host.path().join("big.txt"), vec![b'x'; 2 << 20]).unwrap();
    h.c(&format!(
        "import {} big.txt",
        host.path().join("big.txt").display()
    ))
    .success();
    h.cmd()
        .arg("-e")
        .arg(r#"read("big.txt").len"#)
        .assert()
        .code(1)
        .stderr(contains(
            "'big.txt' holds 2097152 bytes, more than a script may read at once (setting script.max_string_size)",
        ));
}

#[test]
fn a_one_line_run_waits_for_jobs_that_jobs_start() {
    let h = Home::new();
    h.c("echo 'sh(\"exec sleep 0.3; echo inner > /inner.txt &\");' > outer.rhai")
        .success();
    h.c("run outer.rhai &").success();
    assert_eq!(h.out("cat /inner.txt"), "inner\n");
}

#[test]
fn scripts_follow_the_rules_of_the_commands() {
    let h = Home::new();
    h.c("mkdir -p sub; echo x > sub/f").success();
    for (script, why) in [
        (
            r#"rm_r(".")"#,
            "refusing to remove '.': it holds the working directory",
        ),
        (
            r#"rm("..")"#,
            "refusing to remove '..': it holds the working directory",
        ),
        (r#"rm("/")"#, "refusing to remove '/'"),
        (
            r#"rm("sub")"#,
            "cannot remove 'sub': is a directory (use -r)",
        ),
    ] {
        h.cmd()
            .arg("-e")
            .arg(script)
            .assert()
            .code(1)
            .stderr(contains(why));
    }
    assert_eq!(h.out("cat sub/f"), "x\n");
    // mv from a script moves the working directory along, as the command does.
    h.cmd()
        .arg("-e")
        .arg(r#"cd("sub"); mv("/Projects/Main/sub", "/Projects/Main/moved"); print(cwd());"#)
        .assert()
        .success()
        .stdout("/Projects/Main/moved\n");
}

#[test]
fn a_script_that_runs_itself_stops_at_the_nesting_limit() {
    let h = Home::new();
    h.c(r#"echo 'let r = sh("run self.rhai"); if r.status != 0 { print(r.stdout + r.stderr); exit(1); }' > self.rhai"#)
        .success();
    h.c("run self.rhai")
        .code(1)
        .stdout(contains("scripts run scripts 64 deep, the limit"));
}

#[test]
fn the_text_of_a_value_is_refused_before_it_is_built() {
    // A hundred elements sharing one 100 kB string: their text is 10 MB, past a 1 MB string
    // limit, whatever writes it. (Rhai wrote it whole: a million elements sharing a 1 MB
    // string made the process abort. An error Rhai does not pass on still stops the script.)
    let h = Home::new();
    h.c("settings set script.max_string_size 1000000").success();
    let setup = r#"let s = ""; s.pad(100000, "x"); let a = []; a.pad(100, s);"#;
    for step in [
        "let t = a.to_string();",
        "let t = a.to_debug();",
        "print(a);",
        "debug(a);",
        "let t = `${a}`;",
        r#"let t = "" + a;"#,
        r#"let t = a + "";"#,
        r#"let t = ""; t += a;"#,
        "let t = [a, a].to_debug();",
        "let m = #{a: a}; let t = `${m}`;",
        "let m = #{a: a}; let t = m.to_json();",
        "let t = json_stringify(a);",
        "let t = json_pretty(#{a: a});",
    ] {
        for end in ["", r#" print("unreachable");"#] {
            let script = format!("{setup} {step}{end}");
            let out = h.cmd().arg("-e").arg(&script).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{script}: {err}");
            assert!(
                err.contains(
                    "Length of string exceeds the size limit (setting script.max_string_size)"
                ),
                "{script}: {err}"
            );
            assert!(out.stdout.is_empty(), "{script}");
        }
    }
    // Text within the limits is written as before.
    h.cmd()
        .arg("-e")
        .arg(r#"let a = [1, "a\n", 'c', 2.5, (), true]; print(a); print(`${#{b: a}}`); print([1] + "s"); print(#{a: [1]}.to_json()); print(json_stringify(#{a: ["\u0001"]}));"#)
        .assert()
        .success()
        .stdout("[1, \"a\\n\", c, 2.5, (), true]\n#{\"b\": [1, \"a\\n\", c, 2.5, (), true]}\n[1]s\n{\"a\":[1]}\n{\"a\":[\"\\u0001\"]}\n");
}

#[test]
fn sh_keeps_no_more_output_than_a_string_may_hold() {
    // What sh() gives back becomes strings: a command writing more is stopped and the
    // script told, instead of memory filling (`sh("exec yes")` ended in an abort).
    let h = Home::new();
    h.c("settings set script.max_string_size 1000000").success();
    let host = host_dir();
    std::fs::write(host.path().join("big.txt"), vec![b'x'; 3_000_000]).unwrap();
    h.c(&format!(
        "import {} /big.txt",
        host.path().join("big.txt").display()
    ))
    .success();
    for line in [
        "cat /big.txt",
        "cat /big.txt >&2",
        "exec head -c 3000000 /dev/zero",
    ] {
        let script = format!("let r = sh({line:?}); print(\"unreachable\");");
        h.cmd()
            .arg("-e")
            .arg(&script)
            .assert()
            .code(1)
            .stdout("")
            .stderr(contains(
                "sh(): the command's output passed 1000000 bytes, more than the script may hold",
            ));
    }
    // A script run by sh() that goes on printing stops there too (it printed on into
    // nothing, here to the end of its loop, and then wrote the file).
    h.c(r#"echo 'for i in 0..600000 { print("y"); } write("/done.txt", "x");' > /spam.rhai"#)
        .success();
    h.cmd()
        .arg("-e")
        .arg(r#"sh("run /spam.rhai");"#)
        .assert()
        .code(1)
        .stderr(contains("sh(): the command's output passed 1000000 bytes"));
    h.c("cat /done.txt").code(1);
    // Within the limit, both streams come back whole.
    h.cmd()
        .arg("-e")
        .arg(r#"let r = sh("exec head -c 999999 /dev/zero; echo e >&2"); print(`${r.stdout.len} ${r.stderr}`);"#)
        .assert()
        .success()
        .stdout("999999 e\n\n");
}

#[test]
fn a_script_error_shows_names_and_lines_escaped() {
    // The file's name and its line (here with raw escapes that would turn the terminal red)
    // reach the terminal escaped, with the caret still under the error.
    let h = Home::new();
    let host = host_dir();
    let dir = host.path().join("d\u{1b}[31m");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("e.rhai"), "let x = \"\u{1b}[31m\" + nope;\n").unwrap();
    std::fs::write(dir.join("bad.rhai"), b"print(1);\xff\n").unwrap();
    let out = h.cmd().arg("run").arg(dir.join("e.rhai")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("d\\x1b[31m/e.rhai:1:"), "{err:?}");
    assert!(
        err.contains(&format!(
            "    1 | let x = \"\\x1b[31m\" + nope;\n      | {}^\n",
            " ".repeat(21)
        )),
        "{err:?}"
    );
    let out = h
        .cmd()
        .arg("run")
        .arg(dir.join("bad.rhai"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a script must be UTF-8 text"), "{err:?}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // The same file through a mount, run at the prompt.
    let line = format!(
        "mount {} /mnt/h; run $'/mnt/h/d\\e[31m/e.rhai'",
        host.path().display()
    );
    let out = h.cmd().arg("-c").arg(&line).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Variable not found"), "{err:?}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn the_time_limit_stops_a_script_that_waits() {
    // A script waiting in sleep(), or on a command through sh(), is stopped by its time
    // limit as one that computes is (it ran on to the end, and 'after' was printed).
    let h = Home::new();
    let host = host_dir();
    for body in [
        "sleep(20);",
        r#"sh("exec sleep 20");"#,
        // (The job itself goes on; the process waits for it before it exits.)
        r#"let j = job_start("exec sleep 3"); job_wait(j);"#,
    ] {
        let f = host.path().join("wait.rhai");
        std::fs::write(&f, format!("{body} print(\"after\");\n")).unwrap();
        h.cmd()
            .arg("run")
            .arg("--timeout")
            .arg("300ms")
            .arg(&f)
            .assert()
            .code(124)
            .stdout("")
            .stderr(contains("stopped after 300 ms (the time limit"));
    }
}

#[test]
fn a_script_printing_into_a_closed_pipe_stops() {
    // `valyxo -e '…' | head -1`: once the reader is gone the script stops quietly with
    // 141, as a command does (it went on printing into nothing, an endless loop for ever).
    let h = Home::new();
    let mut child = std::process::Command::new(common::BIN)
        .arg("--home")
        .arg(h.path())
        .arg("-e")
        .arg(r#"for i in 0..1000000 { print("y"); } print("the end");"#)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    assert_eq!(first, "y\n");
    drop(out);
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(141));
    assert_eq!(String::from_utf8_lossy(&done.stderr), "");
}

#[test]
fn an_error_in_a_long_line_shows_only_a_part_of_it() {
    // A minified script's one line of 200,000 characters, or a thrown string as long: the
    // report shows a part of each, the caret still under the error, not all of it.
    let h = Home::new();
    let host = host_dir();
    let f = host.path().join("long.rhai");
    let pad = "a".repeat(200_000);
    // (Rhai counts columns up to 65,535: the error comes before that.)
    let short = "a".repeat(30_000);
    std::fs::write(
        &f,
        format!("let x = \"{short}\"; let y = nope; let z = \"{pad}\";\n"),
    )
    .unwrap();
    let out = h.cmd().arg("run").arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.len() < 2000, "{} bytes", err.len());
    assert!(err.contains("Variable not found: nope"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[1].starts_with("    1 | …a"), "{err}");
    let nope = lines[1].find("nope").expect("the line shows the error");
    let caret = lines[2].find('^').expect("a caret");
    // "    1 | " and "      | " are as wide: the caret is under the 'n'.
    assert_eq!(
        lines[1][..nope].chars().count(),
        lines[2][..caret].chars().count(),
        "{err}"
    );
    std::fs::write(&f, format!("throw \"{pad}\";\n")).unwrap();
    let out = h.cmd().arg("run").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.len() < 3000, "{} bytes", out.stderr.len());
}

#[test]
fn a_thrown_value_too_large_to_show_is_named_not_written() {
    // A thrown array is written into the error: a hundred elements sharing one string of
    // 100 kB are 10 MB of text (and ten thousand sharing 1 MB made the process abort).
    let h = Home::new();
    h.cmd()
        .arg("-e")
        .arg(r#"let s = ""; s.pad(100000, "x"); let a = []; a.pad(100, s); throw a;"#)
        .assert()
        .code(1)
        .stderr(contains("error: the thrown array is too large to show"));
    h.cmd()
        .arg("-e")
        .arg("throw [1, 2];")
        .assert()
        .code(1)
        .stderr(contains("[1, 2]"));
}

#[test]
fn a_host_script_larger_than_the_memory_budget_is_not_read() {
    // `valyxo run` reads at most script.max_memory of a file (`valyxo run /dev/zero` read
    // until memory ran out).
    let h = Home::new();
    h.c("settings set script.max_memory 8M").success();
    let host = host_dir();
    let f = host.path().join("big.rhai");
    std::fs::write(&f, vec![b' '; 20 << 20]).unwrap();
    h.cmd().arg("run").arg(&f).assert().code(1).stderr(contains(
        "is larger than 8 MiB, the memory a script may hold (setting script.max_memory)",
    ));
    std::fs::write(&f, "print(\"small\");").unwrap();
    h.cmd()
        .arg("run")
        .arg(&f)
        .assert()
        .success()
        .stdout("small\n");
}

#[test]
fn the_value_shown_of_an_expression_is_refused_when_too_large() {
    // `valyxo -e` and the script prompt show the value an expression ends with: its text
    // is counted first, like any other (ten thousand elements sharing one 1 MB string made
    // 10 GB of text, and the process abort).
    let h = Home::new();
    h.c("settings set script.max_string_size 1000000").success();
    let big = r#"let s = ""; s.pad(100000, "x"); let a = []; a.pad(100, s); a"#;
    h.cmd()
        .arg("-e")
        .arg(big)
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains(
            "the value's text is larger than a string may be (setting script.max_string_size)",
        ));
    h.cmd()
        .arg("-c")
        .arg("script")
        .write_stdin(format!("{big}\n[1, \"a\"]\n"))
        .assert()
        .success()
        .stdout("=> [1, \"a\"]\n")
        .stderr(contains("the value's text is larger than a string may be"));
    h.cmd()
        .arg("-e")
        .arg(r#"[1, "b"]"#)
        .assert()
        .success()
        .stdout("[1, \"b\"]\n");
}

#[test]
fn each_input_at_the_script_prompt_has_the_whole_time_limit() {
    // The limit counted from when the prompt opened: once it had passed, every input that
    // ran long enough to look at the clock was "stopped after 2.0 s".
    let h = Home::new();
    h.c("settings set script.timeout 2s").success();
    h.cmd()
        .arg("-c")
        .arg("script")
        .write_stdin("sleep(1.2);\nsleep(1.2);\nfor i in 0..1000 { }\n\"ok\"\n")
        .assert()
        .success()
        .stdout("=> \"ok\"\n")
        .stderr("");
}

#[test]
fn a_job_printing_faster_than_its_output_is_stored_waits_for_it() {
    // 40 MB printed a line at a time, under an 8 MiB budget: the output waiting to be
    // stored is held to a megabyte (printing waits), where it piled up in memory until
    // the job was stopped "out of memory".
    let h = Home::new();
    h.c("settings set script.max_memory 8M; settings set jobs.max_output 1000")
        .success();
    h.c(r#"echo 'let s = ""; s.pad(1000, "x"); for i in 0..40000 { print(s); } exit(7);' > /p.rhai"#)
        .success();
    // (A one-line run shows its jobs' output too: not kept here.)
    let st = std::process::Command::new(common::BIN)
        .arg("--home")
        .arg(h.path())
        .arg("-c")
        .arg("run /p.rhai &")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let json = h.out("jobs --json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["status"], 7, "{json}");
    let log = h.out("logs %1");
    assert!(!log.contains("out of memory"), "{log}");
    assert!(log.ends_with("(setting jobs.max_output)]\n"), "{log}");
}
