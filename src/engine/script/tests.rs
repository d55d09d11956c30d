//! Tests of the script limits (engine): memory, operations and time end a script with their
//! own error before it can hurt the hub, and the memory limit holds before a large value is
//! allocated, not after.

use super::*;
use crate::hub::HubOptions;
use crate::shell::io::Capture;

/// A host over a fresh home, with its error stream captured.
fn host() -> (tempfile::TempDir, Arc<Host>, Capture) {
    let home = tempfile::tempdir().unwrap();
    let hub = Hub::open(HubOptions {
        home: Some(home.path().to_path_buf()),
        no_color: true,
        ..Default::default()
    })
    .unwrap();
    let sh = Session::new(hub, false).unwrap();
    let err: Capture = Capture::default();
    let h = Host::new(
        sh,
        Output::Capture(Capture::default()),
        Output::Capture(err.clone()),
    );
    (home, h, err)
}

/// Limits with no size limit of their own: only the memory budget (and `ops`, `timeout`).
fn limits(max_memory: usize, ops: u64, timeout: Option<Duration>) -> Limits {
    Limits {
        max_operations: ops,
        max_call_depth: 64,
        max_string_size: 0,
        max_array_size: 0,
        max_map_size: 0,
        timeout,
        max_memory,
    }
}

/// Runs `code` under `limits`; returns (status, error output, the most memory it held).
fn run_inline(code: &str, limits: &Limits) -> (i32, String, usize) {
    let (_home, h, err) = host();
    let budget = Budget::new(limits.max_memory);
    // The script runs under this budget (a script shares the budget of the thread that runs
    // it), so its peak can be read afterwards.
    let status = std::thread::scope(|s| {
        s.spawn(|| {
            let _in = budget.enter();
            run(&h, &Source::inline("t", code), &[], limits)
        })
        .join()
        .unwrap()
    });
    let err = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
    (status, err, budget.peak())
}

const MIB: usize = 1 << 20;

#[test]
fn growth_beyond_the_memory_budget_ends_the_script_before_it_allocates() {
    let limit = 8 * MIB;
    for code in [
        // Each asks for gigabytes in one call.
        r#"let s = "x"; s.pad(4000000000, "y"); s.len"#,
        r#"let s = ""; s.pad(1000000, "ab"); s.replace("a", s); s.len"#,
        r#"let s = ""; s.pad(3000000, "a"); s.split("").len"#,
        "let a = []; a.pad(2000000000, 0); a.len",
        "blob(4000000000).len",
        // These grow a step at a time, past the budget.
        r#"let s = "x"; loop { s += s; }"#,
        "let a = []; loop { a.push([1, 2, 3]); }",
        "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
    ] {
        let (status, err, peak) = run_inline(code, &limits(limit, 0, None));
        assert_eq!(status, STATUS_ERROR, "{code}");
        assert!(
            err.contains(
                "out of memory: the script held more than 8 MiB (setting script.max_memory)"
            ),
            "{code}: {err}"
        );
        // Never more than one step over: no single allocation of what was asked for.
        assert!(peak < 2 * limit + 8 * MIB, "{code}: peak {peak}");
    }
}

#[test]
fn a_script_within_its_budget_is_not_stopped() {
    let (status, err, peak) = run_inline(
        r#"let s = ""; s.pad(1000000, "y"); let a = []; a.pad(10000, 0); s.len + a.len"#,
        &limits(32 * MIB, 0, None),
    );
    assert_eq!((status, err.as_str()), (0, ""));
    assert!(peak > MIB, "{peak}");
}

#[test]
fn the_operation_limit_ends_an_endless_loop() {
    let started = Instant::now();
    let (status, err, _) = run_inline("let i = 0; loop { i += 1; }", &limits(0, 100_000, None));
    assert_eq!(status, STATUS_ERROR);
    assert!(
        err.contains("too many operations (the limit is setting script.max_operations)"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_time_limit_ends_an_endless_loop() {
    for code in [
        "loop { }",
        "let f = |x| x + 1; let i = 0; loop { i = f.call(i); }",
        r#"let s = "abc"; loop { s.replace("b", "b"); }"#,
    ] {
        let started = Instant::now();
        let (status, err, _) = run_inline(code, &limits(0, 0, Some(Duration::from_millis(150))));
        let took = started.elapsed();
        assert_eq!(status, STATUS_TIMEOUT, "{code}: {err}");
        assert!(
            err.contains("stopped after 150 ms (the time limit"),
            "{code}: {err}"
        );
        assert!(took >= Duration::from_millis(150), "{code}: {took:?}");
        assert!(took < Duration::from_secs(5), "{code}: {took:?}");
    }
}

#[test]
fn deep_recursion_ends_with_the_call_depth_error() {
    let (status, err, _) = run_inline(
        "fn f(n) { f(n + 1) } f(0)",
        &limits(0, 0, Some(Duration::from_secs(10))),
    );
    assert_eq!(status, STATUS_ERROR);
    assert!(err.contains("function calls nest too deeply"), "{err}");
}
