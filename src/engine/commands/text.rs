//! Text: cat, head, tail, wc, echo.

use super::{ex, strings, Ctx, Group, Spec};
use anyhow::Result;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "cat",
            aliases: &[],
            group: Group::Text,
            summary: "Print files (or standard input)",
            args: || {
                Command::new("cat")
                    .arg(
                        Arg::new("number")
                            .short('n')
                            .long("number")
                            .action(ArgAction::SetTrue)
                            .help("Number the lines"),
                    )
                    .arg(
                        Arg::new("files")
                            .num_args(0..)
                            .value_name("FILE")
                            .help("Files to print; none or '-' reads standard input"),
                    )
            },
            examples: const {
                &[
                    ex("echo hello > greeting.txt", ""),
                    ex("cat greeting.txt", "hello\n"),
                    ex("cat -n greeting.txt", "     1\thello\n"),
                ]
            },
            run: cat,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "head",
            aliases: &[],
            group: Group::Text,
            summary: "Print the first lines of files",
            args: || {
                Command::new("head")
                    .arg(
                        Arg::new("lines")
                            .short('n')
                            .long("lines")
                            .value_name("N")
                            .value_parser(clap::value_parser!(u64))
                            .help("Print the first N lines (default 10)"),
                    )
                    .arg(
                        Arg::new("bytes")
                            .short('c')
                            .long("bytes")
                            .value_name("N")
                            .value_parser(clap::value_parser!(u64))
                            .conflicts_with("lines")
                            .help("Print the first N bytes"),
                    )
                    .arg(Arg::new("files").num_args(0..).value_name("FILE"))
            },
            examples: const {
                &[
                    ex("echo one", "one\n"),
                    ex("echo two", "two\n"),
                    ex("echo three", "three\n"),
                    ex(
                        "history | head -n 2",
                        "     1  echo one\n     2  echo two\n",
                    ),
                ]
            },
            run: head,
            rewrite: Some(count_shorthand),
            needs_store: true,
        },
        Spec {
            name: "tail",
            aliases: &[],
            group: Group::Text,
            summary: "Print the last lines of files",
            args: || {
                Command::new("tail")
                    .arg(
                        Arg::new("lines")
                            .short('n')
                            .long("lines")
                            .value_name("N")
                            .allow_hyphen_values(false)
                            .help("Print the last N lines (default 10); +N starts at line N"),
                    )
                    .arg(Arg::new("files").num_args(0..).value_name("FILE"))
            },
            examples: const {
                &[
                    ex("echo one", "one\n"),
                    ex("echo two", "two\n"),
                    ex("history | tail -n 1", "     2  echo two\n"),
                ]
            },
            run: tail,
            rewrite: Some(count_shorthand),
            needs_store: true,
        },
        Spec {
            name: "wc",
            aliases: &[],
            group: Group::Text,
            summary: "Count lines, words and bytes",
            args: || {
                Command::new("wc")
                    .arg(
                        Arg::new("lines")
                            .short('l')
                            .long("lines")
                            .action(ArgAction::SetTrue)
                            .help("Count lines"),
                    )
                    .arg(
                        Arg::new("words")
                            .short('w')
                            .long("words")
                            .action(ArgAction::SetTrue)
                            .help("Count words"),
                    )
                    .arg(
                        Arg::new("bytes")
                            .short('c')
                            .long("bytes")
                            .action(ArgAction::SetTrue)
                            .help("Count bytes"),
                    )
                    .arg(Arg::new("files").num_args(0..).value_name("FILE"))
            },
            examples: const {
                &[
                    ex("echo one two > w.txt", ""),
                    ex("wc w.txt", "1 2 8 w.txt\n"),
                    ex("ls | wc -l", "1\n"),
                ]
            },
            run: wc,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "echo",
            aliases: &[],
            group: Group::Text,
            summary: "Print arguments",
            args: || {
                Command::new("echo")
                    .arg(
                        Arg::new("no_newline")
                            .short('n')
                            .action(ArgAction::SetTrue)
                            .help("Do not print the trailing newline"),
                    )
                    .arg(
                        Arg::new("words")
                            .num_args(0..)
                            .allow_hyphen_values(true)
                            .trailing_var_arg(true)
                            .value_name("WORD"),
                    )
            },
            examples: const {
                &[
                    ex("echo hello world", "hello world\n"),
                    ex("echo -n no newline", "no newline"),
                ]
            },
            run: echo,
            rewrite: None,
            needs_store: false,
        },
    ]
}

/// `head -5` → `head -n 5`.
fn count_shorthand(mut argv: Vec<String>) -> Vec<String> {
    if let Some(a) = argv.get(1) {
        if a.len() > 1 && a.starts_with('-') && a[1..].bytes().all(|b| b.is_ascii_digit()) {
            let n = a[1..].to_string();
            argv.splice(1..2, ["-n".to_string(), n]);
        }
    }
    argv
}

/// Opens each named file (or standard input for none or '-'), calling `f` with a display
/// name and a reader. Errors are reported per file; the result is the exit status.
pub(crate) fn for_each_input(
    ctx: &mut Ctx,
    files: &[String],
    mut f: impl FnMut(&mut Ctx, &str, &mut dyn Read) -> Result<()>,
) -> Result<i32> {
    if files.is_empty() {
        let mut stdin = std::mem::replace(&mut ctx.io.stdin, crate::shell::io::Input::Null);
        let r = f(ctx, "-", &mut stdin);
        ctx.io.stdin = stdin;
        r?;
        return Ok(0);
    }
    let mut status = 0;
    for name in files {
        ctx.check_cancel()?;
        if name == "-" {
            let mut stdin = std::mem::replace(&mut ctx.io.stdin, crate::shell::io::Input::Null);
            let r = f(ctx, "-", &mut stdin);
            ctx.io.stdin = stdin;
            r?;
            continue;
        }
        let opened = ctx
            .path(name)
            .and_then(|p| ctx.vfs().open_read(&p).map_err(Into::into));
        match opened {
            Ok(mut r) => f(ctx, name, &mut r)?,
            Err(e) => {
                ctx.warn(format!("{e:#}"));
                status = 1;
            }
        }
    }
    Ok(status)
}

fn cat(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let number = m.get_flag("number");
    let mut line_no = 0u64;
    for_each_input(ctx, &strings(m, "files"), |ctx, _, r| {
        if !number {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                ctx.check_cancel()?;
                let n = r.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                ctx.io.stdout.write_all(&buf[..n])?;
            }
        }
        let mut br = BufReader::new(r);
        let mut line = Vec::new();
        let mut out = Vec::new();
        while br.read_until(b'\n', &mut line)? > 0 {
            line_no += 1;
            write!(out, "{line_no:>6}\t")?;
            out.extend_from_slice(&line);
            line.clear();
            if out.len() > 64 * 1024 {
                ctx.check_cancel()?;
                ctx.io.stdout.write_all(&out)?;
                out.clear();
            }
        }
        ctx.io.stdout.write_all(&out)?;
        Ok(())
    })
}

fn head(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let files = strings(m, "files");
    let bytes = m.get_one::<u64>("bytes").copied();
    let lines = m.get_one::<u64>("lines").copied().unwrap_or(10);
    let many = files.len() > 1;
    let mut first = true;
    for_each_input(ctx, &files, |ctx, name, r| {
        if many {
            writeln!(
                ctx.io.stdout,
                "{}==> {} <==",
                if first {
                    ""
                } else {
                    "
"
                },
                crate::text::escape(name)
            )?;
            first = false;
        }
        if let Some(n) = bytes {
            std::io::copy(&mut r.take(n), &mut ctx.io.stdout)?;
            return Ok(());
        }
        let mut br = BufReader::new(r);
        let mut line = Vec::new();
        for _ in 0..lines {
            line.clear();
            if br.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            ctx.io.stdout.write_all(&line)?;
        }
        Ok(())
    })
}

fn tail(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let files = strings(m, "files");
    let spec = m
        .get_one::<String>("lines")
        .cloned()
        .unwrap_or_else(|| "10".into());
    let (from_start, n) = match spec.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, spec.as_str()),
    };
    let n: usize = n
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid number of lines: '{spec}'"))?;
    let many = files.len() > 1;
    let mut first = true;
    for_each_input(ctx, &files, |ctx, name, r| {
        if many {
            writeln!(
                ctx.io.stdout,
                "{}==> {} <==",
                if first {
                    ""
                } else {
                    "
"
                },
                crate::text::escape(name)
            )?;
            first = false;
        }
        let mut br = BufReader::new(r);
        let mut line = Vec::new();
        let mut ring: VecDeque<Vec<u8>> = VecDeque::new();
        let mut i = 0usize;
        while br.read_until(b'\n', &mut line)? > 0 {
            i += 1;
            if from_start {
                if i >= n.max(1) {
                    ctx.io.stdout.write_all(&line)?;
                }
            } else if n > 0 {
                if ring.len() == n {
                    ring.pop_front();
                }
                ring.push_back(std::mem::take(&mut line));
            }
            line.clear();
            if i.is_multiple_of(65536) {
                ctx.check_cancel()?;
            }
        }
        for l in ring {
            ctx.io.stdout.write_all(&l)?;
        }
        Ok(())
    })
}

fn wc(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let files = strings(m, "files");
    let (mut l, mut w, mut c) = (
        m.get_flag("lines"),
        m.get_flag("words"),
        m.get_flag("bytes"),
    );
    if !(l || w || c) {
        (l, w, c) = (true, true, true);
    }
    let mut rows: Vec<([u64; 3], String)> = Vec::new();
    let status = for_each_input(ctx, &files, |ctx, name, r| {
        let mut counts = [0u64; 3];
        let mut in_word = false;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let k = r.read(&mut buf)?;
            if k == 0 {
                break;
            }
            ctx.check_cancel()?;
            counts[2] += k as u64;
            for &b in &buf[..k] {
                if b == b'\n' {
                    counts[0] += 1;
                }
                let space = b.is_ascii_whitespace();
                if !space && !in_word {
                    counts[1] += 1;
                }
                in_word = !space;
            }
        }
        rows.push((
            counts,
            if name == "-" && files.is_empty() {
                String::new()
            } else {
                name.to_string()
            },
        ));
        Ok(())
    })?;
    if rows.len() > 1 {
        let mut total = [0u64; 3];
        for (cs, _) in &rows {
            for i in 0..3 {
                total[i] += cs[i];
            }
        }
        rows.push((total, "total".into()));
    }
    let width = rows
        .iter()
        .flat_map(|(cs, _)| cs.iter())
        .map(|n| n.to_string().len())
        .max()
        .unwrap_or(1);
    let mut out = String::new();
    for (cs, name) in rows {
        let mut fields = Vec::new();
        for (on, v) in [(l, cs[0]), (w, cs[1]), (c, cs[2])] {
            if on {
                fields.push(format!("{v:>width$}"));
            }
        }
        let line = fields.join(" ");
        if name.is_empty() {
            out.push_str(&format!("{line}\n"));
        } else {
            out.push_str(&format!("{line} {}\n", crate::text::escape(&name)));
        }
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(status)
}

fn echo(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let words = strings(m, "words");
    let mut s = words.join(" ");
    if !m.get_flag("no_newline") {
        s.push('\n');
    }
    ctx.io.stdout.write_all(s.as_bytes())?;
    Ok(0)
}
