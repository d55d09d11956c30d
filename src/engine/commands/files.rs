//! Files and directories: ls, cd, pwd, mkdir, touch, rm, mv, cp, tree, find.

use super::{ex, strings, varies, Ctx, Group, Paint, Spec};
use crate::shell::ops::strip_path;
use crate::vfs::{transfer::human_bytes, Kind, Meta, VPath};
use anyhow::{bail, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::io::Write;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "ls",
            aliases: &[],
            group: Group::Files,
            summary: "List directory contents",
            args: || {
                Command::new("ls")
                    .arg(flag(
                        "long",
                        'l',
                        "Long format: kind, size, modification time, name",
                    ))
                    .arg(flag("all", 'a', "Show entries whose names start with '.'"))
                    .arg(
                        flag("human", 'h', "With -l, print sizes like 1.5 KiB")
                            .long("human-readable"),
                    )
                    .arg(flag("one", '1', "One entry per line").long("one-per-line"))
                    .arg(
                        flag(
                            "directory",
                            'd',
                            "List directories themselves, not their contents",
                        )
                        .long("directory"),
                    )
                    .arg(
                        Arg::new("paths")
                            .num_args(0..)
                            .value_name("PATH")
                            .help("Files or directories (default: the current directory)"),
                    )
                    .disable_help_flag(true)
                    .arg(
                        Arg::new("help")
                            .long("help")
                            .action(ArgAction::Help)
                            .help("Print help"),
                    )
            },
            examples: const {
                &[
                    ex("touch a.txt", ""),
                    ex("ls", "a.txt\n"),
                    ex("mkdir -p docs/old", ""),
                    ex("ls -d docs a.txt", "a.txt\ndocs\n"),
                    varies("ls -la ~"),
                    varies("ls -lh /Projects"),
                ]
            },
            run: ls,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "cd",
            aliases: &[],
            group: Group::Files,
            summary: "Change the working directory",
            args: || {
                Command::new("cd").arg(
                    Arg::new("dir")
                        .value_name("DIR")
                        .help("Directory to enter; '-' for the previous one; none for '~'"),
                )
            },
            examples: const {
                &[
                    ex("cd /Projects", ""),
                    ex("cd -", "~/Projects/Main\n"),
                    ex("cd", ""),
                ]
            },
            run: cd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "pwd",
            aliases: &[],
            group: Group::Files,
            summary: "Print the working directory",
            args: || {
                Command::new("pwd").arg(flag(
                    "physical",
                    'P',
                    "Inside a mount, print the host directory instead",
                ))
            },
            examples: const { &[ex("pwd", "/Projects/Main\n")] },
            run: pwd,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "mkdir",
            aliases: &[],
            group: Group::Files,
            summary: "Create directories",
            args: || {
                Command::new("mkdir")
                    .arg(flag(
                        "parents",
                        'p',
                        "Create missing parents; no error if the directory exists",
                    ))
                    .arg(
                        Arg::new("dirs")
                            .num_args(1..)
                            .required(true)
                            .value_name("DIR"),
                    )
            },
            examples: const { &[ex("mkdir -p /tmp/demo/src", "")] },
            run: mkdir,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "touch",
            aliases: &[],
            group: Group::Files,
            summary: "Create empty files or update their modification time",
            args: || {
                Command::new("touch").arg(
                    Arg::new("files")
                        .num_args(1..)
                        .required(true)
                        .value_name("FILE"),
                )
            },
            examples: const { &[ex("touch notes.txt", "")] },
            run: touch,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "rm",
            aliases: &[],
            group: Group::Files,
            summary: "Remove files and directories",
            args: || {
                Command::new("rm")
                    .arg(
                        flag("recursive", 'r', "Remove directories and their contents")
                            .short_alias('R'),
                    )
                    .arg(flag("force", 'f', "Ignore paths that do not exist"))
                    .arg(
                        Arg::new("paths")
                            .num_args(1..)
                            .required(true)
                            .value_name("PATH"),
                    )
            },
            examples: const {
                &[
                    ex("touch old.txt", ""),
                    ex("rm old.txt", ""),
                    ex("mkdir -p build/x", ""),
                    ex("rm -r build", ""),
                ]
            },
            run: rm,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "mv",
            aliases: &[],
            group: Group::Files,
            summary: "Move or rename files and directories",
            args: || {
                Command::new("mv").arg(
                    Arg::new("paths")
                        .num_args(2..)
                        .required(true)
                        .value_name("PATH")
                        .help("SOURCE… DEST: into DEST if it is a directory, else renamed to DEST"),
                )
            },
            examples: const { &[ex("touch a.txt", ""), ex("mv a.txt b.txt", "")] },
            run: mv,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "cp",
            aliases: &[],
            group: Group::Files,
            summary: "Copy files and directories",
            args: || {
                Command::new("cp")
                    .arg(
                        flag("recursive", 'r', "Copy directories and their contents")
                            .short_alias('R'),
                    )
                    .arg(
                        Arg::new("paths")
                            .num_args(2..)
                            .required(true)
                            .value_name("PATH")
                            .help("SOURCE… DEST"),
                    )
            },
            examples: const {
                &[
                    ex("echo hi > a.txt", ""),
                    ex("cp a.txt b.txt", ""),
                    ex("mkdir -p src", ""),
                    ex("cp -r src src-copy", ""),
                ]
            },
            run: cp,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "tree",
            aliases: &[],
            group: Group::Files,
            summary: "Show a directory tree",
            args: || {
                Command::new("tree")
                    .arg(flag(
                        "all",
                        'a',
                        "Include entries whose names start with '.'",
                    ))
                    .arg(flag("dirs", 'd', "Directories only"))
                    .arg(
                        Arg::new("level")
                            .short('L')
                            .long("level")
                            .value_name("N")
                            .value_parser(clap::value_parser!(usize))
                            .help("Descend at most N levels"),
                    )
                    .arg(
                        Arg::new("path")
                            .value_name("DIR")
                            .help("Directory to show (default: the current one)"),
                    )
            },
            examples: const {
                &[
                    ex("mkdir -p src", ""),
                    ex("touch src/main.rs", ""),
                    ex(
                        "tree",
                        ".\n└── src\n    └── main.rs\n\n1 directory, 1 file\n",
                    ),
                    ex("tree -L 1 ~", "~\n└── Projects\n\n1 directory, 0 files\n"),
                ]
            },
            run: tree,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "find",
            aliases: &[],
            group: Group::Files,
            summary: "Find files by name and type",
            args: || {
                Command::new("find")
                    .override_usage(
                        "find [PATH…] [-name GLOB] [-iname GLOB] [-type f|d] [-maxdepth N]",
                    )
                    .arg(
                        Arg::new("paths")
                            .num_args(0..)
                            .value_name("PATH")
                            .help("Where to look (default: .)"),
                    )
                    .arg(
                        Arg::new("name")
                            .long("name")
                            .value_name("GLOB")
                            .help("Name matches the wildcard (quote it: -name '*.rs')"),
                    )
                    .arg(
                        Arg::new("iname")
                            .long("iname")
                            .value_name("GLOB")
                            .help("Like -name, ignoring case"),
                    )
                    .arg(
                        Arg::new("type")
                            .long("type")
                            .value_name("f|d")
                            .value_parser(["f", "d"])
                            .help("f: files only, d: directories only"),
                    )
                    .arg(
                        Arg::new("maxdepth")
                            .long("maxdepth")
                            .value_name("N")
                            .value_parser(clap::value_parser!(usize))
                            .help("Descend at most N levels"),
                    )
            },
            examples: const {
                &[
                    ex("touch notes.txt", ""),
                    ex("find . -name '*.txt'", "./notes.txt\n"),
                    ex(
                        "find ~ -type d -maxdepth 2",
                        "~\n~/Projects\n~/Projects/Main\n",
                    ),
                ]
            },
            run: find,
            rewrite: Some(find_rewrite),
            needs_store: true,
        },
    ]
}

fn flag(id: &'static str, short: char, help: &'static str) -> Arg {
    Arg::new(id)
        .short(short)
        .long(id)
        .action(ArgAction::SetTrue)
        .help(help)
}

/// Accepts find's single-dash options (`-name`) as clap long options (`--name`).
fn find_rewrite(mut argv: Vec<String>) -> Vec<String> {
    for a in argv.iter_mut().skip(1) {
        if matches!(a.as_str(), "-name" | "-iname" | "-type" | "-maxdepth") {
            a.insert(0, '-');
        }
    }
    argv
}

pub(crate) fn fmt_time(ms: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        _ => "-".to_string(),
    }
}

fn short_size(n: u64, human: bool) -> String {
    if human {
        human_bytes(n).replace(" ", "").replace("iB", "")
    } else {
        n.to_string()
    }
}

/// Width of the terminal on standard output, if it is one.
pub(crate) fn term_width() -> Option<usize> {
    crate::os::stdout_width()
}

fn kind_char(m: &Meta) -> char {
    match m.kind {
        Kind::Dir if m.mounted => 'm',
        Kind::Dir => 'd',
        Kind::File => '-',
        Kind::Broken => '?',
        Kind::Special => 'p',
    }
}

/// A name as `ls` and `tree` show it: escaped when it holds control characters (a name from
/// a mount may hold anything), coloured by kind.
fn paint_name(paint: &Paint, name: &str, m: &Meta) -> String {
    let name = crate::text::escape(name);
    match m.kind {
        Kind::Dir if m.mounted => paint.paint("ls.mount", &name),
        Kind::Dir => paint.paint("ls.dir", &name),
        Kind::Broken => paint.paint("ls.broken", &name),
        Kind::Special => paint.paint("ls.special", &name),
        Kind::File => name.into_owned(),
    }
}

fn ls(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let mut args = strings(m, "paths");
    if args.is_empty() {
        args.push(".".into());
    }
    let long = m.get_flag("long");
    let all = m.get_flag("all");
    let human = m.get_flag("human");
    let grid = !long && !m.get_flag("one") && ctx.io.stdout.is_tty();
    let paint = ctx.paint();
    let mut status = 0;
    let mut files: Vec<(String, Meta)> = Vec::new();
    let mut dirs: Vec<(String, VPath)> = Vec::new();
    for a in &args {
        let p = ctx.path(a)?;
        match ctx.vfs().stat(&p) {
            Ok(meta) if meta.kind == Kind::Dir && !m.get_flag("directory") => {
                dirs.push((a.clone(), p))
            }
            Ok(meta) => files.push((a.clone(), meta)),
            Err(e) => {
                ctx.warn(format!("cannot access '{a}': {}", strip_path(&e)));
                status = 1;
            }
        }
    }
    let mut out = String::new();
    let show = |out: &mut String, entries: &[(String, Meta)]| {
        if long {
            let width = entries
                .iter()
                .map(|(_, m)| short_size(m.size, human).len())
                .max()
                .unwrap_or(1);
            for (name, meta) in entries {
                let size = if meta.kind == Kind::Dir {
                    "-".to_string()
                } else {
                    short_size(meta.size, human)
                };
                out.push_str(&format!(
                    "{} {:>width$}  {}  {}\n",
                    kind_char(meta),
                    size,
                    fmt_time(meta.mtime_ms),
                    paint_name(&paint, name, meta)
                ));
            }
        } else if grid {
            let shown: Vec<String> = entries
                .iter()
                .map(|(n, _)| crate::text::escape(n).into_owned())
                .collect();
            out.push_str(&layout_grid(
                entries
                    .iter()
                    .zip(&shown)
                    .map(|((n, m), plain)| (plain.as_str(), paint_name(&paint, n, m)))
                    .collect(),
                term_width().unwrap_or(80),
            ));
        } else {
            for (name, meta) in entries {
                out.push_str(&paint_name(&paint, name, meta));
                out.push('\n');
            }
        }
    };
    // Files named on the line are listed in name order, as their folder's entries are.
    files.sort_by(|a, b| a.0.cmp(&b.0));
    show(&mut out, &files);
    let headers = args.len() > 1;
    for (i, (arg, p)) in dirs.iter().enumerate() {
        match ctx.vfs().read_dir(p) {
            Ok(entries) => {
                if headers {
                    if i > 0 || !files.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(&format!("{}:\n", crate::text::escape(arg)));
                }
                let entries: Vec<(String, Meta)> = entries
                    .into_iter()
                    .filter(|e| all || !e.name.starts_with('.'))
                    .map(|e| (e.name, e.meta))
                    .collect();
                show(&mut out, &entries);
            }
            Err(e) => {
                ctx.warn(format!("cannot open '{arg}': {}", strip_path(&e)));
                status = 1;
            }
        }
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(status)
}

/// Lays names out in columns, like ls on a terminal. Items are (plain name, painted name).
fn layout_grid(items: Vec<(&str, String)>, width: usize) -> String {
    if items.is_empty() {
        return String::new();
    }
    let lens: Vec<usize> = items.iter().map(|(n, _)| n.chars().count()).collect();
    let mut rows = items.len();
    for cols in (1..=items.len()).rev() {
        let r = items.len().div_ceil(cols);
        let colw: Vec<usize> = (0..cols)
            .map(|c| {
                (0..r)
                    .filter_map(|i| lens.get(c * r + i))
                    .copied()
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let total: usize = colw.iter().sum::<usize>() + 2 * (cols - 1);
        if total <= width {
            rows = r;
            break;
        }
    }
    let cols = items.len().div_ceil(rows);
    let colw: Vec<usize> = (0..cols)
        .map(|c| {
            (0..rows)
                .filter_map(|i| lens.get(c * rows + i))
                .copied()
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in 0..rows {
        for (c, w) in colw.iter().enumerate() {
            let i = c * rows + r;
            if i >= items.len() {
                break;
            }
            out.push_str(&items[i].1);
            if (c + 1) * rows + r < items.len() {
                out.push_str(&" ".repeat(w - lens[i] + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// The message of a VFS error without the leading path (the caller names the argument).
fn cd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let arg = m.get_one::<String>("dir").cloned();
    let (target, print) = match arg.as_deref() {
        None => (VPath::root(), false),
        Some("-") => match &ctx.sh.oldpwd {
            Some(p) => (p.clone(), true),
            None => bail!("no previous directory"),
        },
        Some(a) => (ctx.path(a)?, false),
    };
    match ctx.vfs().stat(&target) {
        Ok(meta) if meta.kind == Kind::Dir => {}
        Ok(_) => bail!("'{}': not a directory", arg.unwrap_or_default()),
        Err(e) => bail!("'{}': {}", arg.as_deref().unwrap_or("~"), strip_path(&e)),
    }
    if print {
        writeln!(
            ctx.io.stdout,
            "{}",
            crate::text::escape(&target.display_tilde())
        )?;
    }
    let old = ctx.sh.set_cwd(target);
    ctx.sh.oldpwd = Some(old);
    Ok(0)
}

fn pwd(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    if m.get_flag("physical") {
        match ctx.vfs().host_path(ctx.sh.cwd()) {
            Some(h) => writeln!(ctx.io.stdout, "{}", crate::vfs::path::shown_host(&h))?,
            None => bail!(
                "{} is in the stored tree, not in a host mount",
                ctx.sh.cwd()
            ),
        }
    } else {
        writeln!(
            ctx.io.stdout,
            "{}",
            crate::text::escape(&ctx.sh.cwd().to_string())
        )?;
    }
    Ok(0)
}

/// Runs `f` for each path argument, reporting errors per path; status 1 if any failed.
fn each(
    ctx: &mut Ctx,
    args: &[String],
    mut f: impl FnMut(&mut Ctx, &str, &VPath) -> Result<()>,
) -> Result<i32> {
    let mut status = 0;
    for a in args {
        ctx.check_cancel()?;
        let r = ctx.path(a).and_then(|p| f(ctx, a, &p));
        if let Err(e) = r {
            ctx.warn(format!("{e:#}"));
            status = 1;
        }
    }
    Ok(status)
}

fn mkdir(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let parents = m.get_flag("parents");
    each(ctx, &strings(m, "dirs"), |ctx, a, p| {
        ctx.vfs()
            .mkdir(p, parents)
            .map_err(|e| anyhow::anyhow!("cannot create '{a}': {}", strip_path(&e)))
    })
}

fn touch(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    each(ctx, &strings(m, "files"), |ctx, a, p| {
        ctx.vfs()
            .touch(p)
            .map_err(|e| anyhow::anyhow!("cannot touch '{a}': {}", strip_path(&e)))
    })
}

fn rm(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let recursive = m.get_flag("recursive");
    let force = m.get_flag("force");
    each(ctx, &strings(m, "paths"), |ctx, a, p| {
        crate::shell::ops::remove(ctx.sh, p, a, recursive, force)
    })
}

/// Splits SOURCE… DEST and computes each source's destination path.
fn targets(ctx: &Ctx, args: &[String]) -> Result<Vec<(String, VPath, VPath)>> {
    let (dest_arg, srcs) = args.split_last().expect("clap requires two paths");
    let dest = ctx.path(dest_arg)?;
    let dest_is_dir = ctx.vfs().is_dir(&dest);
    if srcs.len() > 1 && !dest_is_dir {
        bail!("target '{dest_arg}' is not a directory");
    }
    srcs.iter()
        .map(|s| {
            let src = ctx.path(s)?;
            let to = if dest_is_dir {
                match src.name() {
                    Some(n) => dest.join(n)?,
                    None => bail!("cannot copy or move '/'"),
                }
            } else {
                dest.clone()
            };
            Ok((s.clone(), src, to))
        })
        .collect()
}

fn mv(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let mut status = 0;
    for (arg, src, to) in targets(ctx, &strings(m, "paths"))? {
        match crate::shell::ops::rename(ctx.sh, &src, &to, &arg) {
            Ok(left) if left.is_empty() => {}
            Ok(left) => {
                for l in &left.0 {
                    ctx.warn(l);
                }
                ctx.warn(left.summary(true));
                status = 1;
            }
            Err(e) => {
                ctx.warn(e);
                status = 1;
            }
        }
    }
    Ok(status)
}

fn cp(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let recursive = m.get_flag("recursive");
    let mut status = 0;
    for (arg, src, to) in targets(ctx, &strings(m, "paths"))? {
        ctx.check_cancel()?;
        if src == to {
            ctx.warn(format!("'{arg}' and its destination are the same file"));
            status = 1;
            continue;
        }
        match ctx.vfs().copy(&src, &to, recursive) {
            Ok(left) if left.is_empty() => {}
            Ok(left) => {
                for l in &left.0 {
                    ctx.warn(l);
                }
                ctx.warn(left.summary(false));
                status = 1;
            }
            Err(e) => {
                ctx.warn(format!("cannot copy '{}': {e}", crate::text::escape(&arg)));
                status = 1;
            }
        }
    }
    Ok(status)
}

fn tree(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let arg = m
        .get_one::<String>("path")
        .cloned()
        .unwrap_or_else(|| ".".into());
    let root = ctx.path(&arg)?;
    let meta = ctx
        .vfs()
        .stat(&root)
        .map_err(|e| anyhow::anyhow!("'{arg}': {}", strip_path(&e)))?;
    if meta.kind != Kind::Dir {
        bail!("'{arg}': not a directory");
    }
    let opts = TreeOpts {
        all: m.get_flag("all"),
        dirs_only: m.get_flag("dirs"),
        max: m.get_one::<usize>("level").copied().unwrap_or(usize::MAX),
        paint: ctx.paint(),
    };
    let mut out = paint_name(&opts.paint, &arg, &meta);
    out.push('\n');
    let (mut nd, mut nf) = (0, 0);
    let mut failed = Vec::new();
    tree_rec(ctx, &root, &opts, &mut out, (&mut nd, &mut nf), &mut failed)?;
    out.push_str(&format!(
        "\n{nd} director{}, {nf} file{}\n",
        if nd == 1 { "y" } else { "ies" },
        if nf == 1 { "" } else { "s" }
    ));
    ctx.io.stdout.write_all(out.as_bytes())?;
    // Why a folder could not be listed goes to standard error, escaped (its path or a host
    // path may hold anything), and makes the status 1.
    for e in &failed {
        ctx.warn(e);
    }
    Ok(i32::from(!failed.is_empty()))
}

struct TreeOpts {
    all: bool,
    dirs_only: bool,
    max: usize,
    paint: Paint,
}

/// Draws what `root` holds below its first line. The folders being drawn are kept on a
/// list, not on the call stack, so a tree as deep as paths go is drawn like any other.
fn tree_rec(
    ctx: &Ctx,
    root: &VPath,
    o: &TreeOpts,
    out: &mut String,
    counts: (&mut usize, &mut usize),
    failed: &mut Vec<String>,
) -> Result<()> {
    let (nd, nf) = counts;
    // Each folder being drawn: its path, the guides before its entries, its depth, its
    // entries and the next one to draw.
    struct Level {
        dir: VPath,
        prefix: String,
        depth: usize,
        entries: Vec<crate::vfs::DirEntry>,
        next: usize,
    }
    let list = |dir: &VPath, prefix: &str, out: &mut String, failed: &mut Vec<String>| {
        ctx.check_cancel()?;
        Ok::<_, anyhow::Error>(match ctx.vfs().read_dir(dir) {
            Ok(e) => e
                .into_iter()
                .filter(|e| {
                    (o.all || !e.name.starts_with('.'))
                        && (!o.dirs_only || e.meta.kind == Kind::Dir)
                })
                .collect(),
            Err(e) => {
                out.push_str(&format!("{prefix}└── [cannot be listed]\n"));
                failed.push(e.to_string());
                Vec::new()
            }
        })
    };
    let mut open = vec![Level {
        dir: root.clone(),
        prefix: String::new(),
        depth: 1,
        entries: list(root, "", out, failed)?,
        next: 0,
    }];
    while let Some(level) = open.last_mut() {
        let Some(e) = level.entries.get(level.next) else {
            open.pop();
            continue;
        };
        level.next += 1;
        let last = level.next == level.entries.len();
        out.push_str(&format!(
            "{}{}{}\n",
            level.prefix,
            if last { "└── " } else { "├── " },
            paint_name(&o.paint, &e.name, &e.meta)
        ));
        if e.meta.kind != Kind::Dir {
            *nf += 1;
            continue;
        }
        *nd += 1;
        if level.depth < o.max {
            let dir = level.dir.join(&e.name)?;
            let prefix = format!("{}{}", level.prefix, if last { "    " } else { "│   " });
            let depth = level.depth + 1;
            let entries = list(&dir, &prefix, out, failed)?;
            open.push(Level {
                dir,
                prefix,
                depth,
                entries,
                next: 0,
            });
        }
    }
    Ok(())
}

fn find(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let mut paths = strings(m, "paths");
    if paths.is_empty() {
        paths.push(".".into());
    }
    let glob = |pat: &String, ci: bool| -> Result<globset::GlobMatcher> {
        Ok(globset::GlobBuilder::new(pat)
            .case_insensitive(ci)
            .literal_separator(true)
            .build()
            .map_err(|e| anyhow::anyhow!("bad pattern '{pat}': {e}"))?
            .compile_matcher())
    };
    let name = m
        .get_one::<String>("name")
        .map(|p| glob(p, false))
        .transpose()?;
    let iname = m
        .get_one::<String>("iname")
        .map(|p| glob(p, true))
        .transpose()?;
    let kind = m
        .get_one::<String>("type")
        .map(|t| if t == "f" { Kind::File } else { Kind::Dir });
    let maxdepth = m
        .get_one::<usize>("maxdepth")
        .copied()
        .unwrap_or(usize::MAX);
    let mut status = 0;
    // Printed as the walk goes, a buffer at a time (a host tree may be very large).
    let mut out = String::new();
    for arg in &paths {
        let root = ctx.path(arg)?;
        let meta = match ctx.vfs().stat(&root) {
            Ok(meta) => meta,
            Err(e) => {
                ctx.warn(format!(
                    "'{}': {}",
                    crate::text::escape(arg),
                    strip_path(&e)
                ));
                status = 1;
                continue;
            }
        };
        let base = if arg.len() > 1 {
            arg.trim_end_matches('/')
        } else {
            arg.as_str()
        };
        let matches = |n: &str, k: Kind| {
            name.as_ref().is_none_or(|g| g.is_match(n))
                && iname.as_ref().is_none_or(|g| g.is_match(n))
                && kind.is_none_or(|want| want == k)
        };
        if matches(root.name().unwrap_or("/"), meta.kind) {
            out.push_str(&crate::text::escape(base));
            out.push('\n');
        }
        if meta.kind != Kind::Dir || maxdepth == 0 {
            continue;
        }
        let mut failed: Option<anyhow::Error> = None;
        let mut unreadable = Vec::new();
        let hub = ctx.sh.hub.clone();
        hub.vfs.walk_with(&root, &mut |ent| {
            if crate::signals::interrupted() {
                return false;
            }
            let rel = ent.path.strip_prefix(&root).unwrap_or(&[]);
            let sep = if base.ends_with('/') { "" } else { "/" };
            // A folder of a mount that could not be listed is still a folder; that what it
            // holds was not looked at is said, as find(1) does.
            let unread = ent.kind == Kind::Broken && !ent.link;
            let kind = if unread { Kind::Dir } else { ent.kind };
            if unread && rel.len() < maxdepth {
                unreadable.push(format!("{base}{sep}{}", rel.join("/")));
            }
            if rel.len() <= maxdepth && matches(ent.path.name().unwrap_or(""), kind) {
                let shown = format!("{base}{sep}{}", rel.join("/"));
                out.push_str(&crate::text::escape(&shown));
                out.push('\n');
                if out.len() >= 64 << 10 {
                    if let Err(e) = ctx.io.stdout.write_all(out.as_bytes()) {
                        failed = Some(e.into());
                        return false;
                    }
                    out.clear();
                }
            }
            true
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        for shown in unreadable {
            ctx.warn(format!(
                "'{}': a folder that cannot be read",
                crate::text::escape(&shown)
            ));
            status = 1;
        }
        ctx.check_cancel()?;
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_fits_the_width() {
        let names = ["alpha", "b", "charlie", "d", "echo"];
        let s = layout_grid(names.iter().map(|n| (*n, n.to_string())).collect(), 20);
        assert!(s.lines().all(|l| l.chars().count() <= 20), "{s}");
        for n in names {
            assert!(s.contains(n));
        }
        let one = layout_grid(names.iter().map(|n| (*n, n.to_string())).collect(), 3);
        assert_eq!(one.lines().count(), 5);
    }

    #[test]
    fn find_options_take_one_dash() {
        let v = find_rewrite(vec![
            "find".into(),
            ".".into(),
            "-name".into(),
            "*.rs".into(),
            "-type".into(),
            "f".into(),
        ]);
        assert_eq!(v, ["find", ".", "--name", "*.rs", "--type", "f"]);
    }
}
