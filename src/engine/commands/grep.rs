//! grep on the crates behind ripgrep (grep-regex, grep-searcher): regex or literal search
//! over files, standard input, or whole stored and mounted trees, in parallel.

use super::{ex, strings, Ctx, Group, Paint, Spec};
use crate::vfs::{Content, FileRef, Kind, RefReader, VPath, Vfs};
use anyhow::Result;
use clap::{Arg, ArgAction, ArgMatches, Command};
use grep_matcher::Matcher;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{mpsc, Mutex};

/// Files larger than this are searched as streams instead of being read whole.
const STREAM_ABOVE: u64 = 4 << 20;
/// Files a worker claims at a time: the first chunks are small, so even a small tree keeps
/// every worker busy, and they double up to the largest, so a large tree costs few hand-offs
/// between threads.
const FIRST_CHUNK: usize = 8;
const CHUNK: usize = 128;

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "grep",
        aliases: &[],
        group: Group::Text,
        summary: "Search files for lines matching a pattern",
        args: || {
            let f = |id: &'static str, s: char, long: &'static str, help: &'static str| {
                Arg::new(id)
                    .short(s)
                    .long(long)
                    .action(ArgAction::SetTrue)
                    .help(help)
            };
            Command::new("grep")
                .arg(f(
                    "ignore_case",
                    'i',
                    "ignore-case",
                    "Match without regard to case",
                ))
                .arg(f(
                    "line_number",
                    'n',
                    "line-number",
                    "Prefix each line with its number",
                ))
                .arg(f(
                    "recursive",
                    'r',
                    "recursive",
                    "Search directories and everything below them",
                ))
                .arg(f(
                    "files_with_matches",
                    'l',
                    "files-with-matches",
                    "Print only the names of files that match",
                ))
                .arg(f(
                    "count",
                    'c',
                    "count",
                    "Print the number of matching lines per file",
                ))
                .arg(f(
                    "invert",
                    'v',
                    "invert-match",
                    "Select lines that do not match",
                ))
                .arg(f(
                    "fixed",
                    'F',
                    "fixed-strings",
                    "Treat the pattern as a literal string, not a regex",
                ))
                .arg(f("word", 'w', "word-regexp", "Match whole words only"))
                .arg(f(
                    "text",
                    'a',
                    "text",
                    "Search binary files (holding NUL bytes) as text and print their lines",
                ))
                .arg(
                    Arg::new("hidden")
                        .long("hidden")
                        .action(ArgAction::SetTrue)
                        .help("With -r, also search names that start with '.'"),
                )
                .arg(
                    Arg::new("pattern")
                        .required(true)
                        .value_name("PATTERN")
                        .help("Regular expression (Rust regex syntax) or, with -F, a literal"),
                )
                .arg(Arg::new("paths").num_args(0..).value_name("PATH").help(
                    "Files or (with -r) directories; default: standard input, or '.' with -r",
                ))
        },
        examples: const {
            &[
                ex("echo 'fn main() {}' > main.rs", ""),
                ex("grep -n main main.rs", "1:fn main() {}\n"),
                ex("grep -rn 'fn \\w+' .", "./main.rs:1:fn main() {}\n"),
                ex("grep -rl main ~", "~/Projects/Main/main.rs\n"),
            ]
        },
        run: grep,
        rewrite: None,
        needs_store: true,
    }]
}

struct Opts {
    line_number: bool,
    files_only: bool,
    count: bool,
    invert: bool,
    with_name: bool,
    paint: Paint,
    /// Binary files are searched as text (-a).
    text: bool,
}

enum Source {
    /// A directory, walked while its files are searched; the name is the prefix to print.
    Tree(VPath),
    Vfs(VPath, FileRef),
    Stdin,
}

/// A file to search: the name to print, its path and how to read it.
type Job = (String, VPath, FileRef);

struct Outcome {
    out: Vec<u8>,
    matched: bool,
    error: Option<String>,
    /// The file holds binary data and matched: its lines are not printed, only that it
    /// matches (on standard error, as GNU grep does).
    binary_match: Option<String>,
}

impl Outcome {
    fn failed(e: String) -> Outcome {
        Outcome {
            out: Vec::new(),
            matched: false,
            error: Some(e),
            binary_match: None,
        }
    }
}

fn grep(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let pattern = m.get_one::<String>("pattern").expect("required");
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(m.get_flag("ignore_case"))
        .fixed_strings(m.get_flag("fixed"))
        .word(m.get_flag("word"))
        .build(pattern);
    // Like grep(1), trouble with the command line itself is status 2, not 1 (no match).
    let matcher = match matcher {
        Ok(m) => m,
        Err(e) => {
            ctx.warn(format!("invalid pattern: {e}"));
            return Ok(2);
        }
    };
    let recursive = m.get_flag("recursive");
    let hidden = m.get_flag("hidden");
    let mut args = strings(m, "paths");
    let implicit_dot = recursive && args.is_empty();
    if implicit_dot {
        args.push(".".into());
    }
    let mut status_err = false;
    let mut sources: Vec<(String, Source)> = Vec::new();
    if args.is_empty() {
        if ctx.io.stdin.is_null() {
            ctx.warn("no input: name files to search, use -r for a directory, or pipe text in");
            return Ok(2);
        }
        sources.push(("(standard input)".into(), Source::Stdin));
    }
    for a in &args {
        if a == "-" {
            sources.push(("(standard input)".into(), Source::Stdin));
            continue;
        }
        let p = ctx.path(a)?;
        match ctx.vfs().stat(&p) {
            Ok(meta) if meta.kind == Kind::Dir => {
                if !recursive {
                    ctx.warn(format!("{a}: is a directory (use -r to search it)"));
                    status_err = true;
                    continue;
                }
                let base = if implicit_dot {
                    String::new()
                } else {
                    format!("{}/", a.trim_end_matches('/'))
                };
                sources.push((base, Source::Tree(p)));
            }
            Ok(_) => match ctx.vfs().file_ref(&p) {
                Ok(r) => sources.push((a.clone(), Source::Vfs(p, r))),
                Err(e) => {
                    ctx.warn(e);
                    status_err = true;
                }
            },
            Err(e) => {
                ctx.warn(format!(
                    "{a}: {}",
                    e.to_string()
                        .split_once(": ")
                        .map(|x| x.1)
                        .unwrap_or("error")
                ));
                status_err = true;
            }
        }
    }
    let opts = Opts {
        line_number: m.get_flag("line_number"),
        files_only: m.get_flag("files_with_matches"),
        count: m.get_flag("count"),
        invert: m.get_flag("invert"),
        with_name: recursive || args.len() > 1,
        paint: ctx.paint(),
        text: m.get_flag("text"),
    };
    let threads = match ctx.hub().settings().grep.threads {
        // One more than the cores: the walk and the reads wait on the kernel, and a spare
        // worker keeps every core searching meanwhile (2 cores: 39 ms -> 36 ms on 100 MB).
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()) + 1,
        n => n,
    };
    let mut any_match = false;

    // Standard input is searched here; files are searched by the worker pool below.
    let mut targets = Vec::new();
    for (name, src) in sources {
        match src {
            Source::Stdin => {
                // Searched as it is read: piped input may be endless.
                let mut searcher = searcher(&opts, false);
                let stdin = std::mem::replace(&mut ctx.io.stdin, crate::shell::io::Input::Null);
                let o = search_reader(&matcher, &mut searcher, &name, stdin, &opts);
                any_match |= o.matched;
                ctx.io.stdout.write_all(&o.out)?;
                if let Some(b) = &o.binary_match {
                    writeln!(ctx.io.stderr, "grep: {b}: binary file matches")?;
                }
                if let Some(e) = o.error {
                    ctx.warn(e);
                    status_err = true;
                }
            }
            other => targets.push((name, other)),
        }
    }
    if targets.is_empty() {
        return Ok(exit_status(status_err, any_match));
    }

    let hub = ctx.sh.hub.clone();
    let vfs = &hub.vfs;
    // A walker thread lists files in chunks while workers search the chunks already listed,
    // so walking a tree and searching it overlap. Workers send one message per chunk holding
    // only the files that produced output: thousands of files cost few wake-ups.
    let (job_tx, job_rx) = mpsc::sync_channel::<(usize, Vec<Job>)>(threads * 4);
    // Shared by the workers alone: when the last one ends (the reader of the output went
    // away, or the work is done), the walker's next send fails and it stops too.
    let job_rx = std::sync::Arc::new(Mutex::new(job_rx));
    let (tx, rx) = mpsc::channel::<(usize, Vec<Outcome>)>();
    let mut printed_err: Vec<String> = Vec::new();
    let token = crate::signals::current();
    let result: Result<()> = std::thread::scope(|s| {
        let t = token.clone();
        let walker = std::thread::Builder::new()
            .name("grep-walk".into())
            .spawn_scoped(s, move || {
                crate::signals::adopt(t);
                walk_targets(vfs, targets, hidden, job_tx)
            })
            .map_err(|e| anyhow::anyhow!("cannot start a thread to search with: {e}"))?;
        let mut workers = 0;
        for _ in 0..threads {
            let tx = tx.clone();
            let (matcher, opts, job_rx) = (matcher.clone(), &opts, job_rx.clone());
            let t = token.clone();
            let started = std::thread::Builder::new()
                .name("grep".into())
                .spawn_scoped(s, move || {
                    crate::signals::adopt(t);
                    let mut searchers = Searchers {
                        whole: searcher(opts, true),
                        stream: searcher(opts, false),
                        reader: vfs.ref_reader(),
                    };
                    loop {
                        let next = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((id, jobs)) = next else { break };
                        if crate::signals::interrupted() {
                            break;
                        }
                        let mut done = Vec::new();
                        for (name, p, r) in &jobs {
                            let o = search_file(&matcher, &mut searchers, name, p, r, opts);
                            if o.matched
                                || o.error.is_some()
                                || !o.out.is_empty()
                                || o.binary_match.is_some()
                            {
                                done.push(o);
                            }
                        }
                        if tx.send((id, done)).is_err() {
                            break;
                        }
                    }
                });
            workers += usize::from(started.is_ok());
        }
        drop(tx);
        drop(job_rx);
        if workers == 0 {
            let _ = walker.join();
            anyhow::bail!("cannot start a thread to search with");
        }
        // Print in file order as chunks arrive.
        let mut pending: BTreeMap<usize, Vec<Outcome>> = BTreeMap::new();
        let mut want = 0;
        for (i, chunk) in rx {
            pending.insert(i, chunk);
            while let Some(chunk) = pending.remove(&want) {
                want += 1;
                for o in chunk {
                    any_match |= o.matched;
                    if let Some(e) = o.error {
                        printed_err.push(e);
                    }
                    // On a write error (a closed pipe) returning drops the receiver, which
                    // stops the workers at their next send, and so the walker.
                    ctx.io.stdout.write_all(&o.out)?;
                    if let Some(b) = &o.binary_match {
                        writeln!(ctx.io.stderr, "grep: {b}: binary file matches")?;
                    }
                }
            }
        }
        printed_err.extend(walker.join().unwrap_or_default());
        Ok(())
    });
    result?;
    ctx.check_cancel()?;
    for e in printed_err {
        ctx.warn(e);
        status_err = true;
    }
    Ok(exit_status(status_err, any_match))
}

fn exit_status(error: bool, matched: bool) -> i32 {
    if error {
        2
    } else if matched {
        0
    } else {
        1
    }
}

/// Lists the files of `targets` in order, in numbered chunks of [`FIRST_CHUNK`] growing to
/// [`CHUNK`] files; returns the errors met on the way.
fn walk_targets(
    vfs: &Vfs,
    targets: Vec<(String, Source)>,
    hidden: bool,
    jobs: mpsc::SyncSender<(usize, Vec<Job>)>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut size = FIRST_CHUNK;
    let mut chunk = Vec::with_capacity(size);
    let mut id = 0;
    let mut push = |job: Job, chunk: &mut Vec<Job>| -> bool {
        chunk.push(job);
        if chunk.len() < size {
            return true;
        }
        size = (size * 2).min(CHUNK);
        let full = std::mem::replace(chunk, Vec::with_capacity(size));
        id += 1;
        jobs.send((id - 1, full)).is_ok() && !crate::signals::interrupted()
    };
    // Folders of a mount the walk could not open: said, as GNU grep does.
    let mut unread = Vec::new();
    for (name, src) in targets {
        let go_on = match src {
            Source::Vfs(p, r) => push((name, p, r), &mut chunk),
            Source::Tree(root) => vfs
                .walk_with(&root, &mut |ent| {
                    let rel = ent.path.strip_prefix(&root).unwrap_or(&[]);
                    if !hidden && rel.iter().any(|n| n.starts_with('.')) {
                        return true;
                    }
                    let shown = if name == "/" {
                        format!("/{}", rel.join("/"))
                    } else {
                        format!("{name}{}", rel.join("/"))
                    };
                    if ent.kind == Kind::Broken && !ent.link {
                        unread.push(format!("{shown}: a folder that cannot be read"));
                        return true;
                    }
                    let (Kind::File, Some(file)) = (ent.kind, ent.file) else {
                        return true;
                    };
                    push((shown, ent.path, file), &mut chunk)
                })
                .unwrap_or_else(|e| {
                    errors.push(e.to_string());
                    true
                }),
            Source::Stdin => true,
        };
        if !go_on {
            errors.append(&mut unread);
            return errors;
        }
    }
    if !chunk.is_empty() {
        let _ = jobs.send((id, chunk));
    }
    errors.append(&mut unread);
    errors
}

/// A searcher for streams (which notices a NUL byte: binary data, and goes on searching
/// to say whether the file matches), or with `prechecked` for whole files whose bytes were
/// looked at already (or with -a, when binary data is text like any other).
fn searcher(o: &Opts, prechecked: bool) -> Searcher {
    let binary = if prechecked || o.text {
        BinaryDetection::none()
    } else {
        BinaryDetection::convert(b'\x00')
    };
    SearcherBuilder::new()
        .line_number(o.line_number)
        .invert_match(o.invert)
        .binary_detection(binary)
        .build()
}

/// One worker's searchers and file reader.
struct Searchers<'a> {
    whole: Searcher,
    stream: Searcher,
    reader: RefReader<'a>,
}

fn search_file(
    matcher: &RegexMatcher,
    searchers: &mut Searchers<'_>,
    name: &str,
    p: &VPath,
    r: &FileRef,
    o: &Opts,
) -> Outcome {
    match searchers.reader.read(p, r, STREAM_ABOVE) {
        Ok(Content::Whole(data)) => search_bytes(matcher, &mut searchers.whole, name, data, o),
        Ok(Content::Stream(reader)) => {
            search_reader(matcher, &mut searchers.stream, name, reader, o)
        }
        Err(e) => Outcome::failed(e.to_string()),
    }
}

/// Searches a whole file's bytes. A file holding a NUL byte is binary: unless -a, its lines
/// are not printed, only whether it matches.
fn search_bytes(
    matcher: &RegexMatcher,
    searcher: &mut Searcher,
    name: &str,
    data: &[u8],
    o: &Opts,
) -> Outcome {
    let mut sink = Collect::new(matcher, name, o);
    sink.binary = !o.text && memchr::memchr(0, data).is_some();
    let r = searcher.search_slice(matcher, data, &mut sink);
    sink.finish(r.err())
}

fn search_reader(
    matcher: &RegexMatcher,
    searcher: &mut Searcher,
    name: &str,
    reader: impl Read,
    o: &Opts,
) -> Outcome {
    let mut sink = Collect::new(matcher, name, o);
    let r = searcher.search_reader(matcher, reader, &mut sink);
    sink.finish(r.err())
}

/// Collects one file's output, so files searched in parallel print whole and in order.
struct Collect<'a> {
    matcher: &'a RegexMatcher,
    o: &'a Opts,
    /// The name as shown.
    name: std::borrow::Cow<'a, str>,
    prefix: String,
    out: Vec<u8>,
    count: u64,
    /// Binary data was seen: lines from here on are counted, not printed.
    binary: bool,
}

impl<'a> Collect<'a> {
    fn new(matcher: &'a RegexMatcher, name: &'a str, o: &'a Opts) -> Self {
        // A name from a mount may hold anything: it reaches the terminal escaped.
        let name = crate::text::escape(name);
        let prefix = if o.with_name {
            o.paint.paint("grep.file", &name)
        } else {
            String::new()
        };
        Collect {
            matcher,
            o,
            name,
            prefix,
            out: Vec::new(),
            count: 0,
            binary: false,
        }
    }

    fn finish(mut self, err: Option<std::io::Error>) -> Outcome {
        let o = self.o;
        if o.files_only && self.count > 0 {
            let name = o.paint.paint("grep.file", &self.name);
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(b'\n');
        } else if o.count && (self.count > 0 || !o.with_name) {
            if o.with_name {
                self.out.extend_from_slice(self.prefix.as_bytes());
                self.out.push(b':');
            }
            self.out
                .extend_from_slice(format!("{}\n", self.count).as_bytes());
        }
        let binary_match = (self.binary && self.count > 0 && !o.files_only && !o.count)
            .then(|| self.name.to_string());
        Outcome {
            out: self.out,
            matched: self.count > 0,
            error: err.map(|e| format!("{}: {e}", self.name)),
            binary_match,
        }
    }
}

impl Sink for Collect<'_> {
    type Error = std::io::Error;

    fn binary_data(&mut self, _: &Searcher, _: u64) -> Result<bool, std::io::Error> {
        self.binary = true;
        Ok(true)
    }

    fn matched(&mut self, _: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, std::io::Error> {
        self.count += 1;
        let o = self.o;
        if self.binary && !o.count && !o.files_only {
            return Ok(false); // that it matches is all there is to say
        }
        if o.files_only {
            return Ok(false); // one match is enough to name the file
        }
        if o.count {
            return Ok(true);
        }
        let line = mat.bytes();
        if o.with_name {
            self.out.extend_from_slice(self.prefix.as_bytes());
            self.out.push(b':');
        }
        if let (true, Some(n)) = (o.line_number, mat.line_number()) {
            self.out
                .extend_from_slice(o.paint.paint("grep.line", &n.to_string()).as_bytes());
            self.out.push(b':');
        }
        let mark = o.paint.style("grep.match").ansi();
        if !mark.is_empty() && !o.invert {
            let mut last = 0;
            let out = &mut self.out;
            let _ = self.matcher.find_iter(line, |m| {
                if m.start() < m.end() {
                    out.extend_from_slice(&line[last..m.start()]);
                    out.extend_from_slice(mark.as_bytes());
                    out.extend_from_slice(&line[m.start()..m.end()]);
                    out.extend_from_slice(b"\x1b[0m");
                    last = m.end();
                }
                true
            });
            self.out.extend_from_slice(&line[last..]);
        } else {
            self.out.extend_from_slice(line);
        }
        if !line.ends_with(b"\n") {
            self.out.push(b'\n');
        }
        Ok(true)
    }
}
