//! Host mounts and whole-tree transfer: mount, umount, mounts, import (and the tree form of
//! export, which shares its name with the variable command).

use super::{ex, varies, Ctx, Group, Spec};
use crate::vfs::{transfer, Kind, VPath};
use anyhow::{bail, Context, Result};
use clap::{Arg, ArgMatches, Command};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "mount",
            aliases: &[],
            group: Group::Mounts,
            summary: "Attach a host directory to the VFS",
            args: || {
                Command::new("mount")
                    .arg(
                        Arg::new("host")
                            .value_name("HOSTDIR")
                            .help("Directory on the host ('~' is the host home)"),
                    )
                    .arg(
                        Arg::new("at")
                            .value_name("VFSPATH")
                            .requires("host")
                            .help("Where it appears in the VFS (an empty or new directory)"),
                    )
                    .arg(
                        Arg::new("whole_host")
                            .long("whole-host")
                            .action(clap::ArgAction::SetTrue)
                            .help("Allow mounting the host's root directory '/'"),
                    )
            },
            examples: const {
                &[
                    ex("exec mkdir -p /tmp/valyxo-mount-demo", ""),
                    ex("mount /tmp/valyxo-mount-demo /mnt/demo", ""),
                    varies("ls /mnt/demo"),
                    ex("umount /mnt/demo", ""),
                ]
            },
            run: mount,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "umount",
            aliases: &[],
            group: Group::Mounts,
            summary: "Detach a mounted host directory",
            args: || {
                Command::new("umount").arg(Arg::new("at").required(true).value_name("VFSPATH"))
            },
            examples: const {
                &[
                    ex("exec mkdir -p /tmp/valyxo-mount-demo", ""),
                    ex("mount /tmp/valyxo-mount-demo /mnt/demo", ""),
                    ex("umount /mnt/demo", ""),
                ]
            },
            run: umount,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "mounts",
            aliases: &[],
            group: Group::Mounts,
            summary: "List mounted host directories",
            args: || Command::new("mounts"),
            examples: const {
                &[
                    ex("exec mkdir -p /tmp/valyxo-mount-demo", ""),
                    ex("mount /tmp/valyxo-mount-demo /mnt/demo", ""),
                    ex("mounts", "/mnt/demo -> /tmp/valyxo-mount-demo\n"),
                ]
            },
            run: mounts,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "import",
            aliases: &[],
            group: Group::Mounts,
            summary: "Copy a host file or directory into the VFS",
            args: || {
                Command::new("import")
                    .arg(Arg::new("host").required(true).value_name("HOSTPATH").help("File or directory on the host ('~' is the host home)"))
                    .arg(Arg::new("to").value_name("VFSPATH").help("Destination; into it if it is a directory (default: the current directory)"))
            },
            examples: const {
                &[
                    ex("exec mkdir -p /tmp/valyxo-import-demo", ""),
                    ex(
                        "import /tmp/valyxo-import-demo demo",
                        "imported 0 files, 1 directory, 0 B to ~/Projects/Main/demo\n",
                    ),
                    ex("ls demo", ""),
                ]
            },
            run: import,
            rewrite: None,
            needs_store: true,
        },
    ]
}

/// Expands a leading `~` in a host path to the host user's home directory.
pub(crate) fn host_path(arg: &str) -> Result<PathBuf> {
    if arg.is_empty() {
        bail!("empty host path");
    }
    if arg == "~" || arg.starts_with("~/") {
        let home = directories::BaseDirs::new().context("cannot find the host home directory")?;
        return Ok(home
            .home_dir()
            .join(arg.trim_start_matches('~').trim_start_matches('/')));
    }
    Ok(PathBuf::from(arg))
}

fn progress(ctx: &Ctx) -> ProgressBar {
    if !std::io::stderr().is_terminal()
        || !matches!(ctx.io.stderr, crate::shell::io::Output::Stderr)
    {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb
}

fn mount(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let Some(host) = m.get_one::<String>("host") else {
        return mounts(ctx, m);
    };
    let at_arg = match m.get_one::<String>("at") {
        Some(a) => a.clone(),
        None => bail!("missing VFSPATH: mount HOSTDIR VFSPATH"),
    };
    let at = ctx.path(&at_arg)?;
    let hp = host_path(host)?;
    let real = std::fs::canonicalize(&hp).map_err(|e| anyhow::anyhow!("{}: {e}", hp.display()))?;
    // A redirection into such a mount could write over the store itself.
    let home = std::fs::canonicalize(&ctx.hub().home).unwrap_or_else(|_| ctx.hub().home.clone());
    let store = std::fs::canonicalize(ctx.hub().store.path()).unwrap_or_default();
    let whole = real == std::path::Path::new("/");
    if whole && !m.get_flag("whole_host") {
        bail!("mounting the host's root '/' makes every host file reachable: add --whole-host if that is what you want");
    }
    // With --whole-host the home is inside, but the VFS refuses writes into it.
    if !whole && (home.starts_with(&real) || store.starts_with(&real)) {
        bail!(
            "{} holds the Valyxo home ({}), whose store a write through the mount could \
             destroy: mount a directory beside it instead",
            real.display(),
            home.display()
        );
    }
    ctx.vfs()
        .mount(&hp, &at)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(0)
}

fn umount(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let at = ctx.path(m.get_one::<String>("at").expect("required"))?;
    if ctx.sh.cwd().starts_with(&at) {
        bail!("{at} holds the working directory; cd out of it first");
    }
    ctx.vfs().umount(&at)?;
    Ok(0)
}

fn mounts(ctx: &mut Ctx, _: &ArgMatches) -> Result<i32> {
    let mut out = String::new();
    for m in ctx.vfs().mounts() {
        let state = if m.available() {
            ""
        } else {
            "  (host directory missing)"
        };
        out.push_str(&format!(
            "{} -> {}{state}\n",
            crate::text::escape(&m.vpath.to_string()),
            crate::vfs::path::shown_host(&m.host)
        ));
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(0)
}

fn import(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let host_arg = m.get_one::<String>("host").expect("required");
    let src = host_path(host_arg)?;
    let to_arg = m
        .get_one::<String>("to")
        .cloned()
        .unwrap_or_else(|| ".".into());
    let mut dst = ctx.path(&to_arg)?;
    let meta = std::fs::metadata(&src).with_context(|| format!("cannot read '{host_arg}'"))?;
    if ctx.vfs().is_dir(&dst) {
        let name = src
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_owned()))
            .context(
                "cannot import the host's root directory as a whole; name a directory inside it",
            )?;
        let name = crate::vfs::path::host_name(&name)?;
        dst = dst.join(&name)?;
    }
    if meta.is_dir() && ctx.vfs().stat(&dst).is_ok_and(|m| m.kind != Kind::Dir) {
        bail!("'{}' exists and is not a directory", dst);
    }
    let pb = progress(ctx);
    let report = transfer::import(ctx.vfs(), &src, &dst, &pb, &crate::signals::interrupted)?;
    pb.finish_and_clear();
    report_result(ctx, &report, "imported", &dst.display_tilde())
}

fn report_result(ctx: &mut Ctx, report: &transfer::Report, verb: &str, dest: &str) -> Result<i32> {
    for s in &report.skipped {
        ctx.warn(format!("skipped {s}"));
    }
    if ctx.io.stdout.is_tty() || report.files > 1 || report.dirs > 0 {
        writeln!(ctx.io.stdout, "{} to {dest}", report.summary(verb))?;
    }
    Ok(if report.skipped.is_empty() { 0 } else { 1 })
}

/// `export [-f] VFSPATH HOSTPATH`.
pub(crate) fn export_tree(
    ctx: &mut Ctx,
    src_arg: &str,
    host_arg: &str,
    force: bool,
) -> Result<i32> {
    let src: VPath = ctx.path(src_arg)?;
    let meta = ctx.vfs().stat(&src).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut dst = host_path(host_arg)?;
    if dst.is_dir() {
        match src.name() {
            Some(n) => dst.push(n),
            None => bail!("name a directory to export '/' into that does not exist yet"),
        }
    }
    if meta.kind == Kind::Dir && dst.exists() && !dst.is_dir() {
        bail!("'{}' exists and is not a directory", dst.display());
    }
    let pb = progress(ctx);
    let report = transfer::export(
        ctx.vfs(),
        &src,
        &dst,
        force,
        &pb,
        &crate::signals::interrupted,
    )?;
    pb.finish_and_clear();
    report_result(ctx, &report, "exported", &dst.display().to_string())
}
