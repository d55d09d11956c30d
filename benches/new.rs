//! Wall time of `new`: `new rust app` and `new react app` through the real binary, each in a
//! fresh home made beforehand (so the time is the command's, not the home's first opening),
//! beside `true` in the same kind of home (the binary's start and the store's opening, which
//! every `valyxo -c` line pays).
//!
//! ```text
//! cargo bench --bench new                    # the release build
//! cargo bench --profile dev --bench new      # the debug build, no optimised build needed
//! VALYXO_BENCH_RUNS=50 cargo bench --bench new
//! ```
//!
//! Each figure is the median of the runs, with the fastest and the slowest.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_valyxo");

fn valyxo(home: &Path, line: &str) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--home")
        .arg(home)
        .arg("--no-color")
        .arg("-c")
        .arg(line)
        .env_remove("VALYXO_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Runs `line` in a fresh home `runs` times and returns the sorted wall times.
fn times(line: &str, runs: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let home = tempfile::tempdir().expect("a temporary home");
        // The home is made (store, start folder) before the clock starts.
        let made = valyxo(home.path(), "true").output().expect("run valyxo");
        assert!(made.status.success(), "making the home failed");
        let start = Instant::now();
        let o = valyxo(home.path(), line).output().expect("run valyxo");
        let took = start.elapsed();
        assert!(
            o.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.push(took);
    }
    out.sort();
    out
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs: usize = std::env::var("VALYXO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(20);
    println!(
        "{} build, {runs} runs each, a fresh home per run",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    for line in ["true", "new rust app", "new react app"] {
        let t = times(line, runs);
        println!(
            "{line:<14}  median {:>9}  fastest {:>9}  slowest {:>9}",
            ms(t[t.len() / 2]),
            ms(t[0]),
            ms(t[t.len() - 1])
        );
    }
}
