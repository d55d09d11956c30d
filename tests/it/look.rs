//! config.toml and themes through the real binary: where the file is, what `settings` writes,
//! how a broken file is reported, and how themes are chosen, refused and listed.

use crate::common;

use common::Home;
use std::fs;

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

#[test]
fn settings_live_in_config_toml_beside_the_home() {
    let h = Home::new();
    let cfg = h.path().join("config.toml");
    assert_eq!(h.out("settings path").trim(), cfg.display().to_string());
    assert!(!cfg.exists(), "no file until a setting changes");
    h.c("settings set repl.hints FALSE; settings set script.timeout 30s; settings set theme nord")
        .success();
    let text = fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("theme = \"nord\""), "{text}");
    assert!(text.contains("[repl]\nhints = false"), "{text}");
    assert!(text.contains("[script]\ntimeout = \"30s\""), "{text}");
    // Another process reads what this one wrote.
    assert_eq!(h.out("settings get repl.hints"), "false\n");
    // A hand edit with a comment survives a later `settings set`.
    fs::write(
        &cfg,
        text.replace("theme = \"nord\"", "theme = \"nord\" # my favourite"),
    )
    .unwrap();
    h.c("settings set jobs.max_running 2; settings reset script.timeout")
        .success();
    let text = fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("theme = \"nord\" # my favourite"), "{text}");
    assert!(text.contains("[jobs]\nmax_running = 2"), "{text}");
    assert!(!text.contains("timeout"), "{text}");
    let list = h.out("settings list");
    assert!(list.contains("jobs.max_running"), "{list}");
    assert!(list.contains("2 (changed)"), "{list}");
}

#[test]
fn a_broken_config_is_reported_and_the_good_keys_still_apply() {
    let h = Home::new();
    let cfg = h.path().join("config.toml");
    fs::write(
        &cfg,
        "color = \"sometimes\"\n[repl]\nhints = fals\nhighlight = false\nhihglight = true\n[grep]\nthreads = 999\n",
    )
    .unwrap();
    let a = h
        .c("settings get repl.highlight; settings get grep.threads; settings get color")
        .success();
    assert_eq!(stdout(&a), "false\n0\nauto\n");
    let err = stderr(&a);
    let file = cfg.display().to_string();
    for want in [
        format!("{file}:1:9: 'sometimes' is not a valid value for color"),
        format!("{file}:3:9: "),
        format!("{file}:5:1: unknown setting 'repl.hihglight'. Did you mean 'repl.highlight'?"),
        format!("{file}:7:11: '999' is not a valid value for grep.threads"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    // A file that does not parse is never rewritten: the change is refused, nothing is lost.
    let before = fs::read_to_string(&cfg).unwrap();
    let a = h.c("settings set color never").failure();
    assert!(
        stderr(&a).contains("fix or remove that line first"),
        "{}",
        stderr(&a)
    );
    assert_eq!(fs::read_to_string(&cfg).unwrap(), before);
    // Binary garbage is reported too, and Valyxo still runs on defaults.
    fs::write(&cfg, [0xff, 0xfe, 0x00, b'=', 0x80]).unwrap();
    let a = h.c("echo still here").success();
    assert_eq!(stdout(&a), "still here\n");
    assert!(stderr(&a).contains("not valid UTF-8"), "{}", stderr(&a));
    // So is a file far too large to be a config, without reading it all.
    fs::write(&cfg, "# padding\n".repeat(300_000)).unwrap();
    let a = h.c("echo still here").success();
    assert!(
        stderr(&a).contains("larger than 1024 KiB"),
        "{}",
        stderr(&a)
    );
}

#[test]
fn settings_kept_in_an_older_store_move_into_config_toml() {
    let h = Home::new();
    h.c("pwd").success();
    {
        let c = rusqlite::Connection::open(h.db()).unwrap();
        // As a store of an older valyxo: its schema version is lower.
        c.execute_batch(
            "INSERT INTO settings (key, value) VALUES ('repl.hints', 'false'), ('grep.threads', '3');
             PRAGMA user_version = 6;",
        )
        .unwrap();
    }
    assert_eq!(
        h.out("settings get repl.hints; settings get grep.threads"),
        "false\n3\n"
    );
    let text = fs::read_to_string(h.path().join("config.toml")).unwrap();
    assert!(
        text.contains("hints = false") && text.contains("threads = 3"),
        "{text}"
    );
    let c = rusqlite::Connection::open(h.db()).unwrap();
    let left: i64 = c
        .query_row("SELECT count(*) FROM settings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn themes_are_listed_chosen_and_bad_ones_refused() {
    let h = Home::new();
    let list = h.out("theme list");
    for name in [
        "neon",
        "dark",
        "light",
        "monokai",
        "dracula",
        "nord",
        "solarized",
        "gruvbox",
        "cyberpunk",
        "matrix",
    ] {
        assert!(
            list.contains(&format!(" {name} ")),
            "{name} missing:\n{list}"
        );
    }
    assert!(list.contains("* neon "), "{list}");

    let dir = h.path().join("themes");
    assert_eq!(h.out("theme dir").trim(), dir.display().to_string());
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("mine.toml"),
        "description = \"my own\"\ninherits = \"dracula\"\n[prompt]\nformat = \"{cwd} % \"\n",
    )
    .unwrap();
    fs::write(
        dir.join("broken.toml"),
        "description = \"broken\"\n[highlight]\ncommand = \"bold gren\"\n",
    )
    .unwrap();
    let list = h.out("theme list");
    assert!(list.contains(" mine ") && list.contains("my own"), "{list}");
    assert!(
        list.contains(&dir.join("mine.toml").display().to_string()),
        "{list}"
    );
    assert!(list.contains("cannot be used"), "{list}");

    h.c("theme set mine").success();
    assert_eq!(h.out("settings get theme"), "mine\n");
    // A bad theme is refused with file, line and field, and the current one stays.
    let a = h.c("theme set broken").failure();
    let err = stderr(&a);
    let want = format!(
        "{}:3:11: highlight.command: unknown colour",
        dir.join("broken.toml").display()
    );
    assert!(err.contains(&want), "{err}");
    assert_eq!(h.out("settings get theme"), "mine\n");
    let a = h.c("theme set nrod").failure();
    assert!(stderr(&a).contains("did you mean 'nord'"), "{}", stderr(&a));
    assert_eq!(h.out("settings get theme"), "mine\n");

    // A theme that breaks after it was chosen: reported at start-up, the default is used.
    fs::write(dir.join("mine.toml"), "[prompt]\nformat = \"{nope}\"\n").unwrap();
    let a = h
        .cmd()
        .args(["-c", "theme preview | head -n 1"])
        .assert()
        .success();
    assert!(
        stderr(&a).contains("unknown placeholder {nope}"),
        "{}",
        stderr(&a)
    );
}

#[test]
fn theme_show_prints_toml_that_loads_as_a_user_theme() {
    let h = Home::new();
    let shown = h.out("theme show gruvbox");
    assert!(shown.starts_with("# built-in theme 'gruvbox'\n"), "{shown}");
    let dir = h.path().join("themes");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("copy.toml"), &shown).unwrap();
    h.c("theme set copy").success();
    assert!(h.out("theme show copy").contains("[syntax]"));
}

#[test]
fn the_theme_in_the_manual_is_a_working_theme() {
    let src = include_str!("../../manuals/themes.md");
    let start = src.find("```toml\n").expect("a toml example") + 8;
    let end = start + src[start..].find("```").unwrap();
    let h = Home::new();
    let dir = h.path().join("themes");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("ember.toml"), &src[start..end]).unwrap();
    h.c("theme set ember").success();
    let p = h.out("theme preview");
    assert!(p.contains("Nord, with warmer commands"), "{p}");
}

#[test]
fn preview_colours_only_when_colour_is_on() {
    let h = Home::new();
    let plain = h.out("theme preview dracula");
    assert!(!plain.contains('\x1b'), "piped output has no colour");
    assert!(
        plain.contains("valyxo:~/Projects/Main [1] [2&]> "),
        "{plain}"
    );
    let a = h
        .cmd()
        .env("COLORTERM", "truecolor")
        .args(["-c", "settings set color always; theme preview dracula"])
        .assert()
        .success();
    let coloured = stdout(&a);
    // Dracula's purple prompt name, in 24-bit colour.
    assert!(
        coloured.contains("\x1b[1;38;2;189;147;249mvalyxo"),
        "{coloured:?}"
    );
    let a = h
        .cmd()
        .env_remove("COLORTERM")
        .args(["-c", "theme preview dracula"])
        .assert()
        .success();
    // Without 24-bit colour the nearest of the 256 colours is used.
    assert!(stdout(&a).contains("\x1b[1;38;5;"), "{:?}", stdout(&a));
    let a = h
        .cmd()
        .env("NO_COLOR", "1")
        .args(["-c", "theme preview dracula"])
        .assert()
        .success();
    assert!(!stdout(&a).contains('\x1b'));
}

#[test]
fn piped_manual_pages_are_plain_text() {
    let h = Home::new();
    let a = h
        .cmd()
        .args(["-c", "settings set color always; man themes"])
        .assert()
        .success();
    let out = stdout(&a);
    assert!(
        out.starts_with("themes — How themes colour Valyxo"),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "a pipe gets plain text");
    assert!(
        out.contains("\n        [highlight]\n"),
        "code blocks are indented"
    );
}

#[test]
fn prompt_formats_take_any_text() {
    let h = Home::new();
    fs::write(
        h.path().join("config.toml"),
        "prompt.format = \"λ {cwd}❯ \"\n",
    )
    .unwrap();
    h.c("settings get prompt.format")
        .success()
        .stdout("λ {cwd}❯ \n");
    h.c("settings set prompt.format '» {cwd}{status} '")
        .success();
    h.c("settings get prompt.format")
        .success()
        .stdout("» {cwd}{status} \n");
    let a = h.c("settings set prompt.format '{cwd}}'").failure();
    assert!(stderr(&a).contains("lone { or }"), "{}", stderr(&a));
}

#[test]
fn a_broken_user_theme_never_stops_valyxo() {
    let h = Home::new();
    let dir = h.path().join("themes");
    fs::create_dir_all(&dir).unwrap();
    // A user neon.toml that is broken: the default falls back to the built-in neon, even
    // when Valyxo is started from inside the themes directory.
    fs::write(dir.join("neon.toml"), "[highlight]\ncommand = 12\n").unwrap();
    let a = h
        .cmd()
        .current_dir(&dir)
        .args([
            "-c",
            "theme preview | head -n 1; theme preview nord | head -n 1",
        ])
        .assert()
        .success();
    let out = stdout(&a);
    assert!(out.contains("neon — Electric magenta"), "{out}");
    assert!(out.contains("nord — Nord"), "{out}");
    assert!(
        stderr(&a).contains("neon.toml:2:11: highlight.command: expected a string"),
        "{}",
        stderr(&a)
    );
}
