//! The hub's memory and thread figures, each beside its peer where it has one: the peak
//! memory of output streamed into a file and of reading a large stored file, filling an array
//! under the script limits, a long queue of jobs, and `grep` over a stored tree of real source
//! against `rg` on the same tree on disk.
//!
//! ```text
//! cargo bench --bench hub                      # every figure
//! cargo bench --bench hub -- output arrays     # only some (output head arrays jobs grep)
//! VALYXO_BENCH_QUICK=1 cargo bench --bench hub # smaller trees, fewer runs
//! ```
//!
//! Peak memory is the kernel's count for the measured process alone (`ru_maxrss` from
//! `wait4`), so a host program that valyxo runs is not counted in it. The grep tree is a copy
//! of the Cargo registry's sources on this machine (`$CARGO_HOME/registry/src`), about
//! 150 MiB; where there is none, a generated tree of Rust-like source stands in.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_valyxo");

fn quick() -> bool {
    std::env::var_os("VALYXO_BENCH_QUICK").is_some()
}

fn valyxo(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--home").arg(home).arg("--no-color");
    c
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How a measured run went.
struct Run {
    took: Duration,
    /// Peak resident memory of the process, in MiB.
    peak_mib: f64,
    status: i32,
}

/// Runs `cmd` (output discarded) until it ends, or until `stop_after` and then SIGTERM, and
/// measures its time and peak memory.
fn measured(cmd: &mut Command, stop_after: Option<Duration>) -> Run {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    if let Some(d) = stop_after {
        std::thread::sleep(d);
        // SAFETY: signals our own child, which has not been waited for yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child once; `status` and `usage` outlive the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    std::mem::forget(child); // reaped above
    Run {
        took: start.elapsed(),
        peak_mib: usage.ru_maxrss as f64 / 1024.0,
        status: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        },
    }
}

fn ok(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One line of the result table.
struct Row {
    figure: String,
    ours: String,
    peer: String,
    ratio: Option<f64>,
    goal: String,
    met: bool,
}

fn mib(v: f64) -> String {
    format!("{v:.1} MiB")
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// `exec yes > FILE` into a mount, stopped after 5 s, and into the stored tree, where it
/// stops at the file size limit.
fn output(rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let host = dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    ok(valyxo(&home)
        .arg("-c")
        .arg(format!("mount {} /m", host.display())));
    let secs = if quick() { 2 } else { 5 };
    let ours = measured(
        valyxo(&home).args(["-c", "exec yes > /m/out"]),
        Some(Duration::from_secs(secs)),
    );
    let written = std::fs::metadata(host.join("out")).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(host.join("out"));
    let bash = measured(
        Command::new("bash")
            .arg("-c")
            .arg(format!("yes > {}", host.join("out").display())),
        Some(Duration::from_secs(secs)),
    );
    let _ = std::fs::remove_file(host.join("out"));
    rows.push(Row {
        figure: format!(
            "exec yes > mounted file, stopped after {secs} s ({} MiB written)",
            written >> 20
        ),
        ours: mib(ours.peak_mib),
        peer: format!("{} (bash)", mib(bash.peak_mib)),
        ratio: None,
        goal: "< 64 MiB".into(),
        met: ours.peak_mib < 64.0,
    });
    let stored = measured(valyxo(&home).args(["-c", "exec yes > /out"]), None);
    rows.push(Row {
        figure: format!(
            "exec yes > stored file, to the 512 MiB limit (status {}, {})",
            stored.status,
            ms(stored.took)
        ),
        ours: mib(stored.peak_mib),
        peer: "-".into(),
        ratio: None,
        goal: "< 64 MiB".into(),
        met: stored.peak_mib < 64.0 && stored.status == 1,
    });
}

/// `head -1` of a 100 MB stored file, beside GNU head on the same file on disk.
fn head(rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = dir.path().join("big.txt");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let line = "the quick brown fox jumps over the lazy dog, again and again and again\n";
        let mut n = 0;
        while n < 100_000_000 {
            w.write_all(line.as_bytes()).unwrap();
            n += line.len();
        }
    }
    ok(valyxo(&home)
        .arg("-c")
        .arg(format!("import {} /big.txt", file.display())));
    let ours = measured(valyxo(&home).args(["-c", "head -1 /big.txt"]), None);
    let peer = measured(Command::new("head").arg("-1").arg(&file), None);
    rows.push(Row {
        figure: format!("head -1 of a 100 MB stored file ({})", ms(ours.took)),
        ours: mib(ours.peak_mib),
        peer: format!("{} (GNU head, disk)", mib(peer.peak_mib)),
        ratio: None,
        goal: "< 64 MiB".into(),
        met: ours.peak_mib < 64.0 && ours.status == 0,
    });
}

/// 1,000,000 `Array.push` under the default size limits, beside the same with the three
/// size limits off.
fn arrays(rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let limited = dir.path().join("limited");
    let unlimited = dir.path().join("unlimited");
    ok(valyxo(&limited).args(["-c", "pwd"]));
    ok(valyxo(&unlimited).args([
        "-c",
        "settings set script.max_array_size 0; settings set script.max_string_size 0; \
         settings set script.max_map_size 0",
    ]));
    let script = "let a = []; for i in 0..1000000 { a.push(i) } if a.len() != 1000000 { exit(1) }";
    let n = if quick() { 3 } else { 7 };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let r = measured(valyxo(&limited).args(["-e", script]), None);
        assert_eq!(r.status, 0, "the limited run failed");
        a.push(r.took);
        let r = measured(valyxo(&unlimited).args(["-e", script]), None);
        assert_eq!(r.status, 0, "the unlimited run failed");
        b.push(r.took);
    }
    let (ours, peer) = (median(a), median(b));
    let ratio = ours.as_secs_f64() / peer.as_secs_f64();
    rows.push(Row {
        figure: "1,000,000 Array.push, default limits".into(),
        ours: ms(ours),
        peer: format!("{} (limits off)", ms(peer)),
        ratio: Some(ratio),
        goal: "≤ 1.5x".into(),
        met: ratio <= 1.5,
    });
}

/// 20,000 jobs queued at once (four run, the rest wait): the process's threads and memory
/// while they wait.
fn jobs(rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let script = dir.path().join("queue.rhai");
    let count = if quick() { 5_000 } else { 20_000 };
    std::fs::write(
        &script,
        format!("for i in 0..{count} {{ sh(\"exec sleep 60 &\"); }}\nprint(\"queued\");\n"),
    )
    .unwrap();
    ok(valyxo(&home).args(["-c", "pwd"]));
    let mut child = valyxo(&home)
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until every job is queued.
    {
        use std::io::BufRead;
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "queued");
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (threads, rss, peak) = (field("Threads:"), field("VmRSS:"), field("VmHWM:"));
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    // The running jobs' `sleep`s were stopped with valyxo; make sure.
    let _ = Command::new("pkill").args(["-f", "^sleep 60$"]).status();
    rows.push(Row {
        figure: format!(
            "{count} jobs queued: threads, memory (peak {})",
            mib(peak as f64 / 1024.0)
        ),
        ours: format!("{threads} threads, {}", mib(rss as f64 / 1024.0)),
        peer: "-".into(),
        ratio: None,
        goal: "threads do not grow with the queue".into(),
        met: threads < 64,
    });
}

/// Copies regular files of `from` into `to` until `limit` bytes, in name order.
fn copy_some(from: &Path, to: &Path, limit: u64, total: &mut u64) {
    let Ok(rd) = std::fs::read_dir(from) else {
        return;
    };
    let mut ents: Vec<_> = rd.filter_map(Result::ok).collect();
    ents.sort_by_key(|e| e.file_name());
    for e in ents {
        if *total >= limit {
            return;
        }
        let Ok(ft) = e.file_type() else { continue };
        let dst = to.join(e.file_name());
        if ft.is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_some(&e.path(), &dst, limit, total);
        } else if ft.is_file() {
            if let Ok(n) = std::fs::copy(e.path(), &dst) {
                *total += n;
            }
        }
    }
}

/// The Cargo registry's source folder, if this machine has one.
fn registry_sources() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let src = cargo_home.join("registry/src");
    std::fs::read_dir(&src).ok()?;
    Some(src)
}

/// Writes `mb` MB of Rust-like source below `root`.
fn generated_tree(root: &Path, mb: u64) {
    let words = [
        "value", "parse", "render", "buffer", "state", "error", "config", "stream", "token",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut total = 0;
    let mut n = 0;
    while total < mb << 20 {
        let d = root.join(format!("mod{:02}", n % 50));
        std::fs::create_dir_all(&d).unwrap();
        let mut s = String::new();
        while s.len() < 20_000 {
            let w = words[(next() % words.len() as u64) as usize];
            let v = words[(next() % words.len() as u64) as usize];
            s.push_str(&format!(
                "pub fn {w}_{v}(x: u32) -> u32 {{ x.{v}().unwrap_or_default() }}\n"
            ));
        }
        total += s.len() as u64;
        std::fs::write(d.join(format!("f{n}.rs")), s).unwrap();
        n += 1;
    }
}

/// Output lines that are matches (rg reports binary files among them; grep on stderr).
fn match_lines(out: &[u8]) -> usize {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !l.windows(19).any(|w| w == b"binary file matches"))
        .count()
}

/// `grep -rn` (a literal) and `grep -rni` (a regular expression) over a stored tree of real
/// source, beside `rg` over the same tree on disk.
fn grep(rows: &mut Vec<Row>) {
    if !have("rg") {
        println!("grep: skipped — the peer `rg` is not installed (apt-get install ripgrep)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let want: u64 = if quick() { 40 << 20 } else { 150 << 20 };
    let mut total = 0;
    let what = match registry_sources() {
        Some(src) => {
            copy_some(&src, &tree, want, &mut total);
            "registry sources"
        }
        None => "generated source",
    };
    if total < want / 2 {
        generated_tree(&tree, (want - total) >> 20);
        total = want;
    }
    let home = dir.path().join("home");
    ok(valyxo(&home)
        .arg("-c")
        .arg(format!("import {} /src", tree.display())));
    let n = if quick() { 3 } else { 5 };
    for (flags, rg_flags, pattern) in [
        ("-rn", vec!["-n"], "unwrap_or_default"),
        ("-rni", vec!["-n", "-i"], r"fn \w+_(new|parse)\("),
    ] {
        let ours_out = valyxo(&home)
            .args(["-c", &format!("grep {flags} '{pattern}' /src")])
            .output()
            .unwrap();
        let rg = || {
            let mut c = Command::new("rg");
            c.args(["-uuu", "--no-heading"])
                .args(&rg_flags)
                .arg(pattern)
                .arg(&tree);
            c
        };
        let rg_out = rg().output().unwrap();
        let (ours_n, rg_n) = (match_lines(&ours_out.stdout), match_lines(&rg_out.stdout));
        let (mut a, mut b, mut peak) = (Vec::new(), Vec::new(), 0f64);
        for _ in 0..n {
            let r = measured(
                valyxo(&home).args(["-c", &format!("grep {flags} '{pattern}' /src")]),
                None,
            );
            peak = peak.max(r.peak_mib);
            a.push(r.took);
            b.push(measured(&mut rg(), None).took);
        }
        let (ours, peer) = (median(a), median(b));
        let ratio = ours.as_secs_f64() / peer.as_secs_f64();
        rows.push(Row {
            figure: format!(
                "grep {flags} '{pattern}', {} MiB stored {what} ({ours_n} lines; rg {rg_n})",
                total >> 20
            ),
            ours: format!("{}, {}", ms(ours), mib(peak)),
            peer: format!("{} (rg -uuu, disk)", ms(peer)),
            ratio: Some(ratio),
            goal: "≤ 1.2x, < 64 MiB".into(),
            met: ratio <= 1.2 && peak < 64.0 && ours_n == rg_n,
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let mut rows = Vec::new();
    if want("output") {
        output(&mut rows);
    }
    if want("head") {
        head(&mut rows);
    }
    if want("arrays") {
        arrays(&mut rows);
    }
    if want("jobs") {
        jobs(&mut rows);
    }
    if want("grep") {
        grep(&mut rows);
    }
    println!();
    for r in &rows {
        println!("{}", r.figure);
        println!(
            "    valyxo {:<24} peer {:<30} {:>7}  goal {} {}",
            r.ours,
            r.peer,
            r.ratio.map(|x| format!("{x:.2}x")).unwrap_or_default(),
            r.goal,
            if r.met { "met" } else { "MISSED" }
        );
    }
}
