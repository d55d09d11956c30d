//! Tests of the command registry (engine): every definition is valid, and every command's
//! examples run in a fresh home and print what they declare.

use super::*;
use crate::hub::HubOptions;

#[test]
fn every_command_definition_is_valid() {
    for s in registry().all() {
        s.command().debug_assert();
        assert!(!s.summary.is_empty(), "{} has no summary", s.name);
        assert!(!s.examples.is_empty(), "{} has no examples", s.name);
    }
}

#[test]
fn suggestions_find_near_misses() {
    assert_eq!(
        registry().suggest("lss", &[]).first().map(String::as_str),
        Some("ls")
    );
    assert!(registry()
        .suggest("grpe", &[])
        .contains(&"grep".to_string()));
    assert!(registry().suggest("zzzzzz", &[]).is_empty());
}

/// The commands the shell runs without opening the store are these, and a line of them, on
/// a home whose store has not been opened, leaves it unopened.
#[test]
fn commands_that_need_nothing_stored_open_no_store() {
    let mut stateless: Vec<&str> = registry()
        .all()
        .iter()
        .filter(|s| !s.needs_store)
        .map(|s| s.name)
        .collect();
    stateless.sort();
    assert_eq!(
        stateless,
        ["alias", "echo", "exit", "false", "true", "unalias"]
    );
    let home = tempfile::tempdir().expect("temp home");
    let hub = Hub::open(HubOptions {
        home: Some(home.path().to_path_buf()),
        no_color: true,
        lazy_store: true,
    })
    .expect("open a fresh hub");
    let mut sh = Session::new(hub.clone(), false).expect("session");
    let (mut io, out, _) = Io::capture();
    let line = "true && false || echo hi; alias e='echo'; e aliased; alias e; unalias e; exit 3";
    assert_eq!(sh.run(line, &mut io), 3);
    assert_eq!(
        String::from_utf8_lossy(&out.lock().unwrap()),
        "hi\naliased\nalias e=echo\n"
    );
    assert!(!hub.store.is_open());
    // The first command that may look makes the start folder, as every session does.
    let mut sh = Session::new(hub.clone(), false).expect("session");
    assert_eq!(sh.run("ls /", &mut Io::capture().0), 0);
    assert!(hub.store.is_open());
    assert!(hub
        .vfs
        .is_dir(&crate::vfs::path::VPath::parse_absolute("/Projects/Main").unwrap()));
}

/// Runs `spec`'s examples in order in a fresh home, as typed at the prompt (each line is kept
/// in the history after it runs), and returns what went differently from what they declare:
/// a failure, or for a line with fixed output, other output or any on standard error.
fn check_examples(spec: &Spec) -> Vec<String> {
    let home = tempfile::tempdir().expect("temp home");
    let hub = Hub::open(HubOptions {
        home: Some(home.path().to_path_buf()),
        no_color: true,
        ..Default::default()
    })
    .expect("open a fresh hub");
    let mut sh = Session::new(hub.clone(), false).expect("session");
    let mut problems = Vec::new();
    for e in spec.examples {
        if matches!(e.shows, Shows::Needs(_)) {
            continue;
        }
        let (mut io, out, err) = Io::capture();
        let cwd = sh.cwd().to_string();
        let status = sh.run(e.line, &mut io);
        crate::history::record(&hub.store, e.line, &cwd, status, 0, 0, &hub.session_id)
            .expect("record the line in the history");
        let out = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
        let err = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
        // An example with fixed output shows all of it: nothing goes to standard error.
        let wrong_output = match e.shows {
            Shows::Text(want) => out != want || !err.is_empty(),
            _ => false,
        };
        if status != 0 || wrong_output {
            problems.push(format!(
                "{}: `{}` (status {status})\n  stdout: {out:?}\n  stderr: {err:?}",
                spec.name, e.line
            ));
        }
    }
    crate::jobs::kill_all(&hub);
    crate::jobs::wait_all(&hub);
    problems
}

#[test]
fn every_example_prints_what_it_declares() {
    let mut problems = Vec::new();
    for spec in registry().all() {
        problems.extend(check_examples(spec));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn help_shows_the_examples_with_their_output() {
    let text = registry()
        .get("cat")
        .expect("cat")
        .command()
        .render_help()
        .to_string();
    assert!(
        text.contains("Examples:\n  echo hello > greeting.txt\n  cat greeting.txt\n      hello\n"),
        "{text}"
    );
    assert!(text.contains("See 'man cat'"), "{text}");
}
