//! grep on the crates behind ripgrep (grep-regex, grep-searcher): regex or literal search
//! over files, standard input, or whole stored and mounted trees, in parallel.

use super::{strings, style, Ctx, Group, Spec};
use crate::vfs::{FileRef, Kind, VPath, Vfs};
use anyhow::{bail, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use grep_matcher::Matcher;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Files larger than this are searched as streams instead of being read whole.
const STREAM_ABOVE: u64 = 64 << 20;

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
                    "hidden",
                    'a',
                    "hidden",
                    "With -r, also search names that start with '.'",
                ))
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
        examples: &[
            "echo 'fn main() {}' > main.rs",
            "grep -n main main.rs",
            "grep -rn 'fn \\w+' .",
            "grep -rl main ~",
        ],
        run: grep,
        rewrite: None,
    }]
}

struct Opts {
    line_number: bool,
    files_only: bool,
    count: bool,
    invert: bool,
    with_name: bool,
    color: bool,
}

enum Source {
    Vfs(VPath, FileRef),
    Stdin,
}

struct Outcome {
    out: Vec<u8>,
    matched: bool,
    error: Option<String>,
}

fn grep(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let pattern = m.get_one::<String>("pattern").expect("required");
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(m.get_flag("ignore_case"))
        .fixed_strings(m.get_flag("fixed"))
        .word(m.get_flag("word"))
        .build(pattern)
        .map_err(|e| anyhow::anyhow!("invalid pattern: {e}"))?;
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
            bail!("no input: name files to search, use -r for a directory, or pipe text in");
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
                for ent in ctx.vfs().walk(&p)? {
                    let rel = ent.path.strip_prefix(&p).unwrap_or(&[]);
                    if !hidden && rel.iter().any(|n| n.starts_with('.')) {
                        continue;
                    }
                    if let (Kind::File, Some(file)) = (ent.kind, ent.file) {
                        let name = if base == "/" {
                            format!("/{}", rel.join("/"))
                        } else {
                            format!("{base}{}", rel.join("/"))
                        };
                        sources.push((name, Source::Vfs(ent.path.clone(), file)));
                    }
                }
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
        color: ctx.color(),
    };
    let threads = match ctx
        .hub()
        .setting("grep.threads")
        .parse::<usize>()
        .unwrap_or(0)
    {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    }
    .min(sources.len().max(1));
    let mut any_match = false;

    // Standard input is searched here; files are searched by the worker pool below.
    let mut stdin_names = Vec::new();
    let mut file_sources = Vec::new();
    for (name, src) in sources {
        match src {
            Source::Stdin => stdin_names.push(name),
            Source::Vfs(p, r) => file_sources.push((name, p, r)),
        }
    }
    for name in stdin_names {
        let mut data = Vec::new();
        ctx.io.stdin.read_to_end(&mut data)?;
        let o = search_bytes(&matcher, &mut searcher(&opts), &name, &data, &opts, false);
        any_match |= o.matched;
        ctx.io.stdout.write_all(&o.out)?;
    }

    let hub = ctx.sh.hub.clone();
    let vfs = &hub.vfs;
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::sync_channel::<(usize, Outcome)>(threads * 4);
    let mut printed_err: Vec<String> = Vec::new();
    let result: Result<()> = std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (matcher, opts, next, files) = (matcher.clone(), &opts, &next, &file_sources);
            s.spawn(move || {
                let mut searcher = searcher(opts);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= files.len() || crate::signals::interrupted() {
                        break;
                    }
                    let (name, p, r) = &files[i];
                    let o = search_file(vfs, &matcher, &mut searcher, name, p, r, opts);
                    if tx.send((i, o)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Print in file order as results arrive.
        let mut pending: BTreeMap<usize, Outcome> = BTreeMap::new();
        let mut want = 0;
        for (i, o) in rx {
            pending.insert(i, o);
            while let Some(o) = pending.remove(&want) {
                want += 1;
                any_match |= o.matched;
                if let Some(e) = o.error {
                    printed_err.push(e);
                }
                // On a write error (a closed pipe) returning drops the receiver, which stops
                // the workers at their next send.
                ctx.io.stdout.write_all(&o.out)?;
            }
        }
        Ok(())
    });
    result?;
    ctx.check_cancel()?;
    for e in printed_err {
        ctx.warn(e);
        status_err = true;
    }
    Ok(if status_err {
        2
    } else if any_match {
        0
    } else {
        1
    })
}

fn searcher(o: &Opts) -> Searcher {
    SearcherBuilder::new()
        .line_number(o.line_number)
        .invert_match(o.invert)
        .binary_detection(BinaryDetection::quit(b'\x00'))
        .build()
}

fn search_file(
    vfs: &Vfs,
    matcher: &RegexMatcher,
    searcher: &mut Searcher,
    name: &str,
    p: &VPath,
    r: &FileRef,
    o: &Opts,
) -> Outcome {
    let big = matches!(r, FileRef::Mounted { mount, rel } if mount.host.join(rel).metadata().is_ok_and(|m| m.len() > STREAM_ABOVE));
    if big {
        return match vfs.open_ref(p, r) {
            Ok(reader) => search_reader(matcher, searcher, name, reader, o),
            Err(e) => Outcome {
                out: Vec::new(),
                matched: false,
                error: Some(e.to_string()),
            },
        };
    }
    match vfs.read_ref(p, r) {
        Ok(data) => search_bytes(matcher, searcher, name, &data, o, true),
        Err(e) => Outcome {
            out: Vec::new(),
            matched: false,
            error: Some(e.to_string()),
        },
    }
}

/// Searches a whole file's bytes. Files holding a NUL byte are binary and are skipped.
fn search_bytes(
    matcher: &RegexMatcher,
    searcher: &mut Searcher,
    name: &str,
    data: &[u8],
    o: &Opts,
    skip_binary: bool,
) -> Outcome {
    if skip_binary && data.contains(&0) {
        return Outcome {
            out: Vec::new(),
            matched: false,
            error: None,
        };
    }
    let mut sink = Collect::new(matcher, name, o);
    let r = searcher.search_slice(matcher, data, &mut sink);
    sink.finish(r.err())
}

fn search_reader(
    matcher: &RegexMatcher,
    searcher: &mut Searcher,
    name: &str,
    reader: Box<dyn Read + Send>,
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
    name: &'a str,
    prefix: String,
    out: Vec<u8>,
    count: u64,
}

impl<'a> Collect<'a> {
    fn new(matcher: &'a RegexMatcher, name: &'a str, o: &'a Opts) -> Self {
        let prefix = if o.with_name {
            style::paint(o.color, style::MAGENTA, name)
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
        }
    }

    fn finish(mut self, err: Option<std::io::Error>) -> Outcome {
        let o = self.o;
        if o.files_only && self.count > 0 {
            let name = style::paint(o.color, style::MAGENTA, self.name);
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
        Outcome {
            out: self.out,
            matched: self.count > 0,
            error: err.map(|e| format!("{}: {e}", self.name)),
        }
    }
}

impl Sink for Collect<'_> {
    type Error = std::io::Error;

    fn matched(&mut self, _: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, std::io::Error> {
        self.count += 1;
        let o = self.o;
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
                .extend_from_slice(style::paint(o.color, style::GREEN, &n.to_string()).as_bytes());
            self.out.push(b':');
        }
        if o.color && !o.invert {
            let mut last = 0;
            let out = &mut self.out;
            let _ = self.matcher.find_iter(line, |m| {
                if m.start() < m.end() {
                    out.extend_from_slice(&line[last..m.start()]);
                    out.extend_from_slice(style::BOLD_RED.as_bytes());
                    out.extend_from_slice(&line[m.start()..m.end()]);
                    out.extend_from_slice(style::RESET.as_bytes());
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
