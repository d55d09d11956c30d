//! Three-way merges of file trees (foundation): given this side's files, the other
//! side's, and the base both last agreed on, what must move so that both end up with
//! everything — used by `sync` (this machine and the server) and by `exec` (a program's
//! checkout and the VFS). Nothing is lost: a file changed on both sides is kept twice (the
//! other side's keeps the name, this side's becomes a conflict copy), a deletion on one side
//! and a change on the other keeps the change, and a file where the other side now has a
//! folder moves to a conflict copy.
//!
//! [`find_moves`] then reads renames out of a plan: content that left one path and arrived at
//! another on the same side moves as such (the other side renames its file instead of
//! receiving the content again), and a rename that crosses an edit of the old path on the
//! other side is named so that it can be reported (both are kept).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Included};

/// What one file needs.
#[derive(Clone, Debug, PartialEq)]
pub enum Act {
    /// Send this side's content (or deletion) to the other side.
    Push {
        path: String,
        hash: Option<String>,
        base_version: i64,
    },
    /// Take the other side's content (or deletion).
    Pull {
        path: String,
        hash: Option<String>,
        version: i64,
        local: Option<String>,
    },
    /// Both sides already hold the same; only the base moves.
    Agree {
        path: String,
        hash: Option<String>,
        version: i64,
    },
    /// Changed on both sides: the other side's version takes the path, this side's is kept
    /// as `copy` and sent.
    Conflict {
        path: String,
        local: String,
        remote: String,
        version: i64,
        copy: String,
    },
    /// A file on this side where the other side has a folder (or under a name that is a
    /// file there): the other side's keeps the name, this side's file moves to `to` and is
    /// sent there. `version` is the other side's version of `from` (a deletion), or 0.
    Move {
        from: String,
        to: String,
        hash: String,
        version: i64,
    },
    /// This side renamed a file the other side left alone: the other side renames it too,
    /// and the content is not sent again. The versions are the other side's, of each path.
    Rename {
        from: String,
        to: String,
        hash: String,
        from_version: i64,
        to_version: i64,
    },
    /// The other side renamed a file this side left alone: it is renamed here too instead of
    /// fetched. The versions are the other side's; `local` is what this side holds at `to`.
    Follow {
        from: String,
        to: String,
        hash: String,
        from_version: i64,
        to_version: i64,
        local: Option<String>,
    },
}

/// One side's view of a file: its hash (None: absent or deleted) and its version on the
/// other side (which changes whenever the other side's file does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Side {
    pub hash: Option<String>,
    pub version: i64,
    /// Known for the other side's files (for progress); 0 elsewhere.
    pub size: i64,
}

/// The three-way plan: this side's hashes, the base, the other side's files.
pub fn plan(
    local: &BTreeMap<String, String>,
    base: &BTreeMap<String, Side>,
    remote: &BTreeMap<String, Side>,
    copy_name: &mut dyn FnMut(&str) -> String,
) -> Vec<Act> {
    let paths: BTreeSet<&String> = local
        .keys()
        .chain(base.keys())
        .chain(remote.keys())
        .collect();
    let mut acts = Vec::new();
    let mut reused: BTreeSet<String> = BTreeSet::new();
    for path in paths {
        let l = local.get(path).cloned();
        let b = base.get(path).cloned().unwrap_or_default();
        let r = remote.get(path).cloned().unwrap_or_default();
        let local_changed = l != b.hash;
        let remote_changed = r.version != b.version;
        let path = path.clone();
        match (local_changed, remote_changed) {
            (false, false) => {
                if !base.contains_key(&path) && r.version > 0 {
                    acts.push(Act::Agree {
                        path,
                        hash: r.hash,
                        version: r.version,
                    });
                }
            }
            (true, false) => acts.push(Act::Push {
                path,
                hash: l,
                base_version: r.version,
            }),
            (false, true) => acts.push(Act::Pull {
                path,
                hash: r.hash,
                version: r.version,
                local: l,
            }),
            (true, true) => match (l, r.hash) {
                (l, rh) if l == rh => acts.push(Act::Agree {
                    path,
                    hash: rh,
                    version: r.version,
                }),
                // Deleted there, changed here: the change wins.
                (Some(l), None) => acts.push(Act::Push {
                    path,
                    hash: Some(l),
                    base_version: r.version,
                }),
                // Deleted here, changed there: the change wins.
                (None, Some(rh)) => acts.push(Act::Pull {
                    path,
                    hash: Some(rh),
                    version: r.version,
                    local: None,
                }),
                (Some(l), Some(rh)) => {
                    // A copy of this side's version that the other side already holds (a
                    // sync that sent it was stopped before it wrote it here) is that copy,
                    // not a second one.
                    let copy = match sent_copy(&path, "", &l, local, base, remote, &reused) {
                        Some(p) => {
                            reused.insert(p.clone());
                            p
                        }
                        None => copy_name(&path),
                    };
                    acts.push(Act::Conflict {
                        path,
                        local: l,
                        remote: rh,
                        version: r.version,
                        copy,
                    })
                }
                (None, None) => {}
            },
        }
    }
    let acts = resolve_clashes(acts, local, base, remote, &mut reused, copy_name);
    // A copy taken up by its conflict (or move) is carried out by it.
    acts.into_iter()
        .filter(|a| match a {
            Act::Pull { path, .. } | Act::Agree { path, .. } => !reused.contains(path),
            _ => true,
        })
        .collect()
}

/// A conflict copy of `path` holding `hash` that the other side already has and this side
/// had not before (sent by a sync stopped before it wrote it here), not taken up yet. With
/// `rest`, `path` is a folder and the copy is the folder whose `rest` holds `hash`.
fn sent_copy(
    path: &str,
    rest: &str,
    hash: &str,
    local: &BTreeMap<String, String>,
    base: &BTreeMap<String, Side>,
    remote: &BTreeMap<String, Side>,
    reused: &BTreeSet<String>,
) -> Option<String> {
    // Copies of `path` sort together, after the part of their name before the tag; those
    // of a long name, shortened to fit, after a shorter part of it.
    let (dir, stem, ext) = split_name(path);
    let file = &path[dir.len()..];
    let longest = longest_name(&dir);
    let start = if file.len() + SHORTEST_TAG < longest {
        format!("{dir}{stem} (conflict ")
    } else {
        let mut k = longest
            .saturating_sub(ext.len() + LONGEST_TAG)
            .min(stem.len());
        while !stem.is_char_boundary(k) {
            k -= 1;
        }
        format!("{dir}{}", &stem[..k])
    };
    remote
        .range::<str, _>((Included(start.as_str()), std::ops::Bound::Unbounded))
        .take_while(|(p, _)| p.starts_with(&start))
        .find(|(p, s)| {
            s.hash.as_deref() == Some(hash)
                && base.get(*p).is_none_or(|b| b.hash.is_none())
                && local.get(*p).is_none_or(|h| h == hash)
                && !reused.contains(*p)
                && p.strip_suffix(rest).is_some_and(|c| is_copy_of(c, path))
        })
        .map(|(p, _)| p[..p.len() - rest.len()].to_string())
}

/// `path` as its folder (with its `/`, or empty), its file name's stem and its extension
/// (with its dot, or empty; a leading dot is part of the stem: `.env` has none).
fn split_name(path: &str) -> (String, &str, &str) {
    let (dir, file) = match path.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), path),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => (&file[..i], &file[i..]),
        _ => (file, ""),
    };
    (dir, stem, ext)
}

/// Whether `copy` is named as a conflict copy of `path` ([`conflict_name`]): the file's stem,
/// the tag and its extension, or, for a long name, a part of it cut so that the copy's name
/// just fits (the extension kept when there was room for it).
fn is_copy_of(copy: &str, path: &str) -> bool {
    let (dir, stem, ext) = split_name(path);
    let file = &path[dir.len()..];
    let Some(name) = copy.strip_prefix(dir.as_str()) else {
        return false;
    };
    let longest = longest_name(&dir);
    // Cut only to fit: such a name is at the longest, short of part of a character.
    let at_limit = name.len() <= longest && name.len() + 4 > longest;
    let tag_then = |rest: &str, ext: &str| {
        rest.strip_suffix(&format!("){ext}"))
            .is_some_and(|tag| !tag.is_empty() && !tag.contains('/'))
    };
    name.match_indices(" (conflict ").any(|(i, open)| {
        let (kept, rest) = (&name[..i], &name[i + open.len()..]);
        (kept == stem && tag_then(rest, ext))
            || (at_limit && stem.starts_with(kept) && tag_then(rest, ext))
            || (at_limit && file.starts_with(kept) && tag_then(rest, ""))
    })
}

/// The longest name a conflict copy in the folder `dir` (with its `/`) may have.
fn longest_name(dir: &str) -> usize {
    MAX_NAME.min(MAX_PATH.saturating_sub(dir.len()))
}

/// The bytes of the shortest tag [`conflict_name`] adds (` (conflict H YYYY-MM-DD HHMM)`),
/// and more than the longest one takes (a host name of 40 characters of 4 bytes, a
/// number): names shorter than the first are never cut; those cut keep at least the
/// longest name less the second.
const SHORTEST_TAG: usize = " (conflict h 2026-01-01 0000)".len();
const LONGEST_TAG: usize = 240;

/// A rename on one side that met an edit of the old path on the other: both are kept, the
/// renamed file at `to` and the edited one at `from`.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossed {
    pub from: String,
    pub to: String,
    /// Renamed on this side (edited on the other), or the other way round.
    pub renamed_here: bool,
}

/// A plan with its renames: what [`find_moves`] makes of [`plan`]'s acts.
#[derive(Debug, Default, PartialEq)]
pub struct Moves {
    pub acts: Vec<Act>,
    pub crossed: Vec<Crossed>,
}

/// The last name of a path.
fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Pairs the paths that lost content `hash` (`gone`) with those that gained it (`came`),
/// each path at most once: first those that keep their file name (a folder renamed or a
/// file moved to another folder), then the rest in order. Several files with the same
/// content are paired one to one; whichever pairing is taken, every path ends up with the
/// same content.
fn pair<'a>(
    gone: &[usize],
    came: &[usize],
    path: &dyn Fn(usize) -> &'a str,
) -> Vec<(usize, usize)> {
    // The paths gone, by file name, each list in order (taken from the front).
    let mut by_name: std::collections::HashMap<&str, std::collections::VecDeque<usize>> =
        std::collections::HashMap::new();
    for &g in gone {
        by_name.entry(file_name(path(g))).or_default().push_back(g);
    }
    let mut paired: BTreeSet<usize> = BTreeSet::new();
    let mut out = Vec::new();
    let mut rest = Vec::new();
    for &c in came {
        match by_name
            .get_mut(file_name(path(c)))
            .and_then(|v| v.pop_front())
        {
            Some(g) => {
                paired.insert(g);
                out.push((g, c));
            }
            None => rest.push(c),
        }
    }
    let free_gone = gone.iter().copied().filter(|g| !paired.contains(g));
    out.extend(free_gone.zip(rest));
    out
}

/// Reads renames out of a plan ([`plan`]'s acts, with the `base` it was made against and
/// the other side's files): a deletion pushed from this side whose base content is pushed
/// at another path becomes one [`Act::Rename`], and a deletion pulled from the other side
/// whose content is pulled at another path becomes one [`Act::Follow`]. Only a file the
/// other side left alone can be renamed there; a rename that met an edit of the old path
/// stays a deletion that the edit wins and an addition (so both are kept), and is listed in
/// `crossed`.
pub fn find_moves(
    acts: Vec<Act>,
    base: &BTreeMap<String, Side>,
    remote: &BTreeMap<String, Side>,
) -> Moves {
    use std::collections::HashMap;
    let base_hash = |p: &str| base.get(p).and_then(|s| s.hash.clone());
    // By content: what left a path and what arrived at one, on each side.
    let mut push_gone: HashMap<String, Vec<usize>> = HashMap::new();
    let mut push_came: HashMap<String, Vec<usize>> = HashMap::new();
    let mut pull_gone: HashMap<String, Vec<usize>> = HashMap::new();
    let mut pull_came: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, a) in acts.iter().enumerate() {
        match a {
            Act::Push {
                path, hash: None, ..
            } => {
                if let Some(h) = base_hash(path) {
                    push_gone.entry(h).or_default().push(i);
                }
            }
            Act::Push { hash: Some(h), .. } => push_came.entry(h.clone()).or_default().push(i),
            Act::Pull {
                path,
                hash: None,
                local: Some(l),
                ..
            } if base_hash(path).as_ref() == Some(l) => {
                pull_gone.entry(l.clone()).or_default().push(i)
            }
            Act::Pull { hash: Some(h), .. } => pull_came.entry(h.clone()).or_default().push(i),
            _ => {}
        }
    }
    let path_of = |i: usize| match &acts[i] {
        Act::Push { path, .. } | Act::Pull { path, .. } => path.as_str(),
        _ => "",
    };
    let sorted = |m: HashMap<String, Vec<usize>>| {
        let mut v: Vec<(String, Vec<usize>)> = m.into_iter().collect();
        v.sort();
        v
    };
    // Index of the act a pair replaces, and the index of the one it drops.
    let mut replace: BTreeMap<usize, Act> = BTreeMap::new();
    let mut dropped: BTreeSet<usize> = BTreeSet::new();
    for (hash, gone) in sorted(push_gone) {
        let came = push_came.get(&hash).cloned().unwrap_or_default();
        for (g, c) in pair(&gone, &came, &path_of) {
            let (
                Act::Push {
                    path: from,
                    base_version: from_version,
                    ..
                },
                Act::Push {
                    path: to,
                    base_version: to_version,
                    ..
                },
            ) = (&acts[g], &acts[c])
            else {
                continue;
            };
            replace.insert(
                c,
                Act::Rename {
                    from: from.clone(),
                    to: to.clone(),
                    hash: hash.clone(),
                    from_version: *from_version,
                    to_version: *to_version,
                },
            );
            dropped.insert(g);
        }
    }
    for (hash, gone) in sorted(pull_gone) {
        let came = pull_came.get(&hash).cloned().unwrap_or_default();
        for (g, c) in pair(&gone, &came, &path_of) {
            let (
                Act::Pull {
                    path: from,
                    version: from_version,
                    ..
                },
                Act::Pull {
                    path: to,
                    version: to_version,
                    local,
                    ..
                },
            ) = (&acts[g], &acts[c])
            else {
                continue;
            };
            replace.insert(
                c,
                Act::Follow {
                    from: from.clone(),
                    to: to.clone(),
                    hash: hash.clone(),
                    from_version: *from_version,
                    to_version: *to_version,
                    local: local.clone(),
                },
            );
            dropped.insert(g);
        }
    }
    // Renames that met an edit: the old path's edit wins it back (a pull of the other
    // side's content there, or a push of this side's), and the renamed content arrives at
    // the new path as an addition.
    let mut crossed = Vec::new();
    let mut used: BTreeSet<usize> = BTreeSet::new();
    for (i, a) in acts.iter().enumerate() {
        let (from, renamed_here) = match a {
            // Gone here, changed there: renamed here if its old content was pushed elsewhere.
            Act::Pull {
                path,
                hash: Some(_),
                local: None,
                ..
            } => (path, true),
            // Changed here, deleted there: renamed there if its old content was pulled
            // elsewhere.
            Act::Push {
                path,
                hash: Some(_),
                ..
            } if remote.get(path).is_some_and(|r| r.hash.is_none()) => (path, false),
            _ => continue,
        };
        let Some(old) = base_hash(from) else {
            continue;
        };
        let came = if renamed_here { &push_came } else { &pull_came };
        let to = came.get(&old).and_then(|v| {
            v.iter()
                .find(|c| !replace.contains_key(c) && !used.contains(c) && **c != i)
        });
        if let Some(&c) = to {
            used.insert(c);
            crossed.push(Crossed {
                from: from.clone(),
                to: path_of(c).to_string(),
                renamed_here,
            });
        }
    }
    let acts = acts
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(i, a)| replace.remove(&i).unwrap_or(a))
        .collect();
    Moves { acts, crossed }
}

/// The names above `path` (`a`, `a/b` for `a/b/c`).
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Makes a plan committable: after it, no file may sit where the other side has a folder.
/// A file sent from this side whose name is a folder on the other side, or that lies inside
/// a name that is a file there, keeps both by the same rule as a conflict: the other
/// side's keeps the name, and this side's moves to a conflict copy (the file itself,
/// or its whole folder) that is pushed instead.
fn resolve_clashes(
    acts: Vec<Act>,
    local: &BTreeMap<String, String>,
    base: &BTreeMap<String, Side>,
    remote: &BTreeMap<String, Side>,
    reused: &mut BTreeSet<String>,
    copy_name: &mut dyn FnMut(&str) -> String,
) -> Vec<Act> {
    let deleted_there: BTreeSet<&str> = acts
        .iter()
        .filter_map(|a| match a {
            Act::Push {
                path, hash: None, ..
            } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    // What stays a live file on the other side whatever this side sends.
    let other_files: BTreeSet<&str> = remote
        .iter()
        .filter(|(p, s)| s.hash.is_some() && !deleted_there.contains(p.as_str()))
        .map(|(p, _)| p.as_str())
        .collect();
    let is_other_folder = |p: &str| {
        has_under(
            |from, to| {
                other_files
                    .range::<&str, _>((Included(from), Excluded(to)))
                    .next()
                    .is_some()
            },
            p,
        )
    };
    let mut folder_copies: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::with_capacity(acts.len());
    for a in acts {
        let Act::Push {
            path,
            hash: Some(hash),
            base_version,
        } = a
        else {
            out.push(a);
            continue;
        };
        let version = remote.get(&path).map_or(0, |s| s.version);
        let inside = ancestors(&path)
            .find(|d| other_files.contains(d))
            .map(str::to_string);
        let to = if let Some(file) = inside {
            // Inside a name that is a file on the other side: the whole folder moves (to
            // the copy a stopped sync already sent, when the other side holds this file
            // there).
            let rest = &path[file.len()..];
            let copy = match folder_copies.get(&file) {
                Some(c) => c.clone(),
                None => {
                    let c = sent_copy(&file, rest, &hash, local, base, remote, reused)
                        .unwrap_or_else(|| copy_name(&file));
                    folder_copies.insert(file.clone(), c.clone());
                    c
                }
            };
            let to = format!("{copy}{rest}");
            if remote.get(&to).and_then(|s| s.hash.as_ref()) == Some(&hash)
                && base.get(&to).is_none_or(|b| b.hash.is_none())
            {
                reused.insert(to.clone());
            }
            to
        } else if is_other_folder(&path) {
            match sent_copy(&path, "", &hash, local, base, remote, reused) {
                Some(p) => {
                    reused.insert(p.clone());
                    p
                }
                None => copy_name(&path),
            }
        } else {
            out.push(Act::Push {
                path,
                hash: Some(hash),
                base_version,
            });
            continue;
        };
        out.push(Act::Move {
            from: path,
            to,
            hash,
            version,
        });
    }
    out
}

/// Whether some path in `sorted` lies inside the folder `dir`.
fn has_under(sorted: impl Fn(&str, &str) -> bool, dir: &str) -> bool {
    // Paths inside `dir` sort between `dir/` and `dir0` ('0' follows '/').
    sorted(&format!("{dir}/"), &format!("{dir}0"))
}

/// Whether `name` is a path among the keys of `m`, or a folder above one.
pub fn occupies<V>(m: &BTreeMap<String, V>, name: &str) -> bool {
    m.contains_key(name)
        || has_under(
            |from, to| {
                m.range::<str, _>((Included(from), Excluded(to)))
                    .next()
                    .is_some()
            },
            name,
        )
}

/// The longest file name and the longest path, in bytes (`crate::protocol`).
const MAX_NAME: usize = 255;
const MAX_PATH: usize = 1024;

/// `dir/name (conflict WHO DATE).ext`, numbered when taken. WHO names the side whose
/// version the copy keeps (this machine's host name for sync, `exec` for a program's).
pub fn conflict_name(path: &str, who: &str, taken: &dyn Fn(&str) -> bool) -> String {
    let (dir, stem, ext) = split_name(path);
    let file = &path[dir.len()..];
    let stamp = chrono::Local::now().format("%Y-%m-%d %H%M");
    let host = who;
    for n in 1.. {
        let tag = if n == 1 {
            format!(" (conflict {host} {stamp})")
        } else {
            format!(" (conflict {host} {stamp} {n})")
        };
        // A name is at most 255 bytes and a path 1024 (`crate::protocol::valid_path`): the
        // copy of a long name is shortened to fit, its extension kept when there is room.
        let longest = longest_name(&dir);
        let (stem, ext) = if tag.len() + ext.len() < longest {
            (stem, ext)
        } else {
            (file, "")
        };
        let mut end = longest
            .saturating_sub(tag.len() + ext.len())
            .min(stem.len());
        while !stem.is_char_boundary(end) {
            end -= 1;
        }
        let candidate = format!("{dir}{}{tag}{ext}", &stem[..end]);
        if !taken(&candidate) {
            return candidate;
        }
    }
    unreachable!("some numbered name is free")
}

/// This machine's name, cleaned to letters, digits, '-' and '.'.
pub fn hostname() -> String {
    let name: String = crate::os::hostname()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '.')
        .take(40)
        .collect();
    if name.is_empty() {
        "this machine".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(h: Option<&str>, v: i64) -> Side {
        Side {
            hash: h.map(str::to_string),
            version: v,
            size: 0,
        }
    }

    fn run(
        local: &[(&str, &str)],
        base: &[(&str, Option<&str>, i64)],
        remote: &[(&str, Option<&str>, i64)],
    ) -> Vec<Act> {
        let l = local
            .iter()
            .map(|(p, h)| (p.to_string(), h.to_string()))
            .collect();
        let b = base
            .iter()
            .map(|(p, h, v)| (p.to_string(), side(*h, *v)))
            .collect();
        let r = remote
            .iter()
            .map(|(p, h, v)| (p.to_string(), side(*h, *v)))
            .collect();
        plan(&l, &b, &r, &mut |p| format!("{p}.copy"))
    }

    #[test]
    fn three_way_plan() {
        // New here: pushed as a new file.
        assert_eq!(
            run(&[("a", "h1")], &[], &[]),
            vec![Act::Push {
                path: "a".into(),
                hash: Some("h1".into()),
                base_version: 0
            }]
        );
        // Unchanged on both sides: nothing.
        assert!(run(
            &[("a", "h1")],
            &[("a", Some("h1"), 3)],
            &[("a", Some("h1"), 3)]
        )
        .is_empty());
        // Changed there only: pulled.
        assert_eq!(
            run(
                &[("a", "h1")],
                &[("a", Some("h1"), 3)],
                &[("a", Some("h2"), 4)]
            ),
            vec![Act::Pull {
                path: "a".into(),
                hash: Some("h2".into()),
                version: 4,
                local: Some("h1".into())
            }]
        );
        // Deleted here only: the deletion is pushed.
        assert_eq!(
            run(&[], &[("a", Some("h1"), 3)], &[("a", Some("h1"), 3)]),
            vec![Act::Push {
                path: "a".into(),
                hash: None,
                base_version: 3
            }]
        );
        // Changed on both sides to different content: a conflict keeping both.
        assert_eq!(
            run(
                &[("a", "h2")],
                &[("a", Some("h1"), 3)],
                &[("a", Some("h3"), 4)]
            ),
            vec![Act::Conflict {
                path: "a".into(),
                local: "h2".into(),
                remote: "h3".into(),
                version: 4,
                copy: "a.copy".into()
            }]
        );
        // The same change on both sides: they agree.
        assert_eq!(
            run(
                &[("a", "h2")],
                &[("a", Some("h1"), 3)],
                &[("a", Some("h2"), 4)]
            ),
            vec![Act::Agree {
                path: "a".into(),
                hash: Some("h2".into()),
                version: 4
            }]
        );
        // Deleted there, edited here: the edit wins.
        assert_eq!(
            run(&[("a", "h2")], &[("a", Some("h1"), 3)], &[("a", None, 4)]),
            vec![Act::Push {
                path: "a".into(),
                hash: Some("h2".into()),
                base_version: 4
            }]
        );
        // Deleted here, edited there: the edit wins.
        assert_eq!(
            run(&[], &[("a", Some("h1"), 3)], &[("a", Some("h3"), 4)]),
            vec![Act::Pull {
                path: "a".into(),
                hash: Some("h3".into()),
                version: 4,
                local: None
            }]
        );
        // First sync of a file that both sides already hold: recorded, nothing moves.
        assert_eq!(
            run(&[("a", "h1")], &[], &[("a", Some("h1"), 2)]),
            vec![Act::Agree {
                path: "a".into(),
                hash: Some("h1".into()),
                version: 2
            }]
        );
    }

    fn moves(
        local: &[(&str, &str)],
        base: &[(&str, Option<&str>, i64)],
        remote: &[(&str, Option<&str>, i64)],
    ) -> Moves {
        let b = base
            .iter()
            .map(|(p, h, v)| (p.to_string(), side(*h, *v)))
            .collect();
        let r = remote
            .iter()
            .map(|(p, h, v)| (p.to_string(), side(*h, *v)))
            .collect();
        find_moves(run(local, base, remote), &b, &r)
    }

    fn rename(from: &str, to: &str, hash: &str, from_version: i64, to_version: i64) -> Act {
        Act::Rename {
            from: from.into(),
            to: to.into(),
            hash: hash.into(),
            from_version,
            to_version,
        }
    }

    #[test]
    fn a_file_renamed_here_is_sent_as_a_rename() {
        let m = moves(
            &[("b", "h1"), ("c", "h2")],
            &[("a", Some("h1"), 3), ("c", Some("h2"), 1)],
            &[("a", Some("h1"), 3), ("c", Some("h2"), 1)],
        );
        assert_eq!(m.acts, vec![rename("a", "b", "h1", 3, 0)]);
        assert!(m.crossed.is_empty());
        // Over a tombstone of the new name, whose version the rename is based on.
        let m = moves(
            &[("b", "h1")],
            &[("a", Some("h1"), 3), ("b", None, 2)],
            &[("a", Some("h1"), 3), ("b", None, 2)],
        );
        assert_eq!(m.acts, vec![rename("a", "b", "h1", 3, 2)]);
    }

    #[test]
    fn a_file_renamed_there_is_followed_here() {
        let m = moves(
            &[("a", "h1")],
            &[("a", Some("h1"), 3)],
            &[("a", None, 4), ("d/a", Some("h1"), 1)],
        );
        assert_eq!(
            m.acts,
            vec![Act::Follow {
                from: "a".into(),
                to: "d/a".into(),
                hash: "h1".into(),
                from_version: 4,
                to_version: 1,
                local: None,
            }]
        );
    }

    #[test]
    fn renames_of_files_with_the_same_content_pair_one_to_one() {
        // A folder of three identical files renamed: each keeps its file name.
        let m = moves(
            &[("new/x", "h"), ("new/y", "h"), ("new/z", "h")],
            &[
                ("old/x", Some("h"), 1),
                ("old/y", Some("h"), 2),
                ("old/z", Some("h"), 3),
            ],
            &[
                ("old/x", Some("h"), 1),
                ("old/y", Some("h"), 2),
                ("old/z", Some("h"), 3),
            ],
        );
        let mut got = m.acts.clone();
        got.sort_by_key(|a| format!("{a:?}"));
        assert_eq!(
            got,
            vec![
                rename("old/x", "new/x", "h", 1, 0),
                rename("old/y", "new/y", "h", 2, 0),
                rename("old/z", "new/z", "h", 3, 0),
            ]
        );
        // Two copies gone, one arrived: one rename and one deletion.
        let m = moves(
            &[("c", "h")],
            &[("a", Some("h"), 1), ("b", Some("h"), 1)],
            &[("a", Some("h"), 1), ("b", Some("h"), 1)],
        );
        assert_eq!(
            m.acts,
            vec![
                Act::Push {
                    path: "b".into(),
                    hash: None,
                    base_version: 1
                },
                rename("a", "c", "h", 1, 0),
            ]
        );
        // One gone, two arrived (a rename and a copy): one rename and one addition.
        let m = moves(
            &[("b", "h"), ("c", "h")],
            &[("a", Some("h"), 1)],
            &[("a", Some("h"), 1)],
        );
        assert_eq!(
            m.acts,
            vec![
                rename("a", "b", "h", 1, 0),
                Act::Push {
                    path: "c".into(),
                    hash: Some("h".into()),
                    base_version: 0
                }
            ]
        );
        // Many empty files (one content) in a folder renamed: each pairs with its own name.
        let names: Vec<String> = (0..2000).map(|i| format!("f{i}")).collect();
        let local: Vec<(String, &str)> = names.iter().map(|n| (format!("new/{n}"), "e")).collect();
        let base: Vec<(String, Option<&str>, i64)> = names
            .iter()
            .map(|n| (format!("old/{n}"), Some("e"), 1))
            .collect();
        let l: Vec<(&str, &str)> = local.iter().map(|(p, h)| (p.as_str(), *h)).collect();
        let b: Vec<(&str, Option<&str>, i64)> =
            base.iter().map(|(p, h, v)| (p.as_str(), *h, *v)).collect();
        let m = moves(&l, &b, &b);
        assert_eq!(m.acts.len(), 2000);
        for a in &m.acts {
            let Act::Rename { from, to, .. } = a else {
                panic!("{a:?}")
            };
            assert_eq!(from.strip_prefix("old/"), to.strip_prefix("new/"));
        }
        // A copy that stays where it was is not a rename.
        let m = moves(
            &[("a", "h"), ("b", "h")],
            &[("a", Some("h"), 1)],
            &[("a", Some("h"), 1)],
        );
        assert!(m.acts.iter().all(|a| matches!(a, Act::Push { .. })));
    }

    #[test]
    fn a_rename_that_met_an_edit_keeps_both() {
        // Renamed here, edited there: the edit comes back at the old name, the renamed file
        // goes up as an addition.
        let m = moves(
            &[("b", "h1")],
            &[("a", Some("h1"), 3)],
            &[("a", Some("h2"), 4)],
        );
        assert_eq!(
            m.acts,
            vec![
                Act::Pull {
                    path: "a".into(),
                    hash: Some("h2".into()),
                    version: 4,
                    local: None
                },
                Act::Push {
                    path: "b".into(),
                    hash: Some("h1".into()),
                    base_version: 0
                }
            ]
        );
        assert_eq!(
            m.crossed,
            vec![Crossed {
                from: "a".into(),
                to: "b".into(),
                renamed_here: true
            }]
        );
        // Renamed there, edited here: the edit goes up at the old name, the renamed file
        // comes down.
        let m = moves(
            &[("a", "h2")],
            &[("a", Some("h1"), 3)],
            &[("a", None, 4), ("b", Some("h1"), 1)],
        );
        assert_eq!(
            m.acts,
            vec![
                Act::Push {
                    path: "a".into(),
                    hash: Some("h2".into()),
                    base_version: 4
                },
                Act::Pull {
                    path: "b".into(),
                    hash: Some("h1".into()),
                    version: 1,
                    local: None
                }
            ]
        );
        assert_eq!(
            m.crossed,
            vec![Crossed {
                from: "a".into(),
                to: "b".into(),
                renamed_here: false
            }]
        );
    }

    #[test]
    fn conflict_copies_keep_the_extension_and_find_a_free_name() {
        let n = conflict_name("src/main.rs", "box", &|_| false);
        assert!(n.starts_with("src/main (conflict "), "{n}");
        assert!(n.ends_with(").rs"), "{n}");
        let first = n.clone();
        let n2 = conflict_name("src/main.rs", "box", &|c| c == first);
        assert!(n2.ends_with(" 2).rs"), "{n2}");
        assert!(conflict_name(".env", "box", &|_| false).starts_with(".env (conflict box "));
    }

    #[test]
    fn a_conflict_copy_already_sent_is_taken_up_even_when_shortened() {
        // This side changed the file to h2, the other to h3, and the other side already
        // holds h2 as the copy (a sync that sent it was stopped before it wrote it here):
        // that copy is the conflict's, with a long name shortened to fit too.
        for file in [
            "short.md".to_string(),
            format!("{}.md", "a".repeat(251)),
            format!("{}.md", "é".repeat(126)),
            format!("x.{}", "e".repeat(240)),
        ] {
            let path = format!("dir/{file}");
            let copy = conflict_name(&path, "box", &|_| false);
            let acts = run(
                &[(&path, "h2")],
                &[(&path, Some("h1"), 1)],
                &[(&path, Some("h3"), 2), (&copy, Some("h2"), 1)],
            );
            assert_eq!(
                acts,
                vec![Act::Conflict {
                    path: path.clone(),
                    local: "h2".into(),
                    remote: "h3".into(),
                    version: 2,
                    copy: copy.clone(),
                }],
                "{file}"
            );
        }
        // A copy of another, shorter name is not this file's.
        let path = format!("dir/{}.md", "a".repeat(251));
        let other = conflict_name("dir/aaaa.md", "box", &|_| false);
        let acts = run(
            &[(&path, "h2")],
            &[(&path, Some("h1"), 1)],
            &[(&path, Some("h3"), 2), (&other, Some("h2"), 1)],
        );
        let fresh = format!("{path}.copy");
        assert!(
            acts.iter()
                .any(|a| matches!(a, Act::Conflict { copy, .. } if *copy == fresh))
                && acts
                    .iter()
                    .any(|a| matches!(a, Act::Pull { path, .. } if *path == other)),
            "{acts:?}"
        );
    }

    #[test]
    fn the_conflict_copy_of_a_long_name_is_a_name_that_fits() {
        // Multi-byte characters cut whole; the extension kept, unless it alone is too long.
        for file in [
            format!("{}.md", "é".repeat(126)),
            format!("{}.md", "a".repeat(251)),
            format!("x.{}", "e".repeat(240)),
        ] {
            let n = conflict_name(&format!("dir/{file}"), "box", &|_| false);
            let name = n.strip_prefix("dir/").unwrap();
            assert!(crate::protocol::name_problem(name).is_none(), "{n}");
            assert!(name.contains(" (conflict box "), "{n}");
            assert!(!file.ends_with(".md") || name.ends_with(").md"), "{n}");
        }
        // Deep in folders, the whole path fits too.
        let deep = format!(
            "{}/{}.md",
            vec!["d".repeat(200); 4].join("/"),
            "a".repeat(200)
        );
        let n = conflict_name(&deep, "box", &|_| false);
        assert!(
            crate::protocol::valid_path(&deep) && crate::protocol::valid_path(&n),
            "{n}"
        );
        assert!(n.ends_with(").md"), "{n}");
    }
}
