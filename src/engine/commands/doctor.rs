//! `doctor`: checks the state store, lists its backups, makes one, and gives free space
//! back. Salvaging or restoring a damaged store needs the store closed, so those are
//! `valyxo doctor --salvage` and `--restore` from the host shell (see `cli.rs`).

use super::{varies, Ctx, Group, Spec};
use crate::store::care;
use crate::vfs::transfer::human_bytes;
use anyhow::Result;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::io::Write;
use std::path::Path;

pub fn specs() -> Vec<Spec> {
    vec![Spec {
        name: "doctor",
        aliases: &[],
        group: Group::System,
        summary: "Check the state store, back it up, or give its free space back",
        args: || {
            Command::new("doctor")
                .arg(
                    Arg::new("backup")
                        .long("backup")
                        .action(ArgAction::SetTrue)
                        .help("Make a backup now (a few are kept; setting store.backups)"),
                )
                .arg(
                    Arg::new("compact")
                        .long("compact")
                        .action(ArgAction::SetTrue)
                        .help("Drop contents no file uses and give free space back"),
                )
        },
        examples: const { &[varies("doctor"), varies("doctor --backup")] },
        run: doctor,
        rewrite: None,
        needs_store: true,
    }]
}

/// The report of `doctor` and `valyxo doctor`: the file, its soundness, space and backups.
/// Returns the text and whether the store is sound.
pub fn report(path: &Path) -> (String, bool) {
    let mut out = String::new();
    let c = match care::check(path) {
        Ok(c) => c,
        Err(e) => {
            out.push_str(&format!("store     {}: {e:#}\n", path.display()));
            return (out, false);
        }
    };
    out.push_str(&format!(
        "store     {} — {}, {} of it free\n",
        path.display(),
        human_bytes(c.bytes),
        human_bytes(c.free)
    ));
    let sound = c.problems.is_empty();
    if sound {
        out.push_str("check     sound: every page and index is whole\n");
    } else {
        out.push_str(&format!(
            "check     DAMAGED: {} problem{} found, the first:\n",
            c.problems.len(),
            if c.problems.len() == 1 { "" } else { "s" }
        ));
        for p in c.problems.iter().take(5) {
            out.push_str(&format!("            {p}\n"));
        }
        out.push_str(
            "          From the host shell, with no other valyxo running: 'valyxo doctor \
             --salvage' copies everything still readable into a new store (the damaged file \
             is kept), or 'valyxo doctor --restore' puts the newest backup back.\n",
        );
    }
    if c.orphan_blobs > 0 {
        out.push_str(&format!(
            "contents  {} no file uses ('doctor --compact' drops them)\n",
            c.orphan_blobs
        ));
    }
    if c.reclaims {
        out.push_str("space     freed space goes back to the file system as it is freed\n");
    } else if c.free > 0 {
        out.push_str(&format!(
            "space     this store keeps freed space: 'doctor --compact' gives {} back and \
             makes it give space back from then on\n",
            human_bytes(c.free)
        ));
    }
    let backups = care::backups(path);
    match backups.first() {
        None => out.push_str(
            "backups   none yet (one is made each day; 'doctor --backup' makes one now)\n",
        ),
        Some(newest) => {
            let when = std::fs::metadata(newest)
                .and_then(|m| m.modified())
                .map(|t| {
                    chrono::DateTime::<chrono::Local>::from(t)
                        .format("%Y-%m-%d %H:%M")
                        .to_string()
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "backups   {}, the newest from {when}: {}\n",
                backups.len(),
                newest.display()
            ));
        }
    }
    (out, sound)
}

fn doctor(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let path = ctx.hub().store.path().to_path_buf();
    if m.get_flag("backup") {
        let keep = ctx.hub().backups_kept().max(1);
        let b = care::backup(&path, keep)?;
        writeln!(ctx.io.stdout, "backed up to {}", b.display())?;
    }
    if m.get_flag("compact") {
        let (before, after) = care::compact(&path)?;
        writeln!(
            ctx.io.stdout,
            "compacted: {} → {}",
            human_bytes(before),
            human_bytes(after)
        )?;
    }
    let (text, sound) = report(&path);
    ctx.io.stdout.write_all(text.as_bytes())?;
    Ok(i32::from(!sound))
}
