//! Three-way merges of file trees (foundation): given this side's files, the other
//! side's, and the base both last agreed on, what must move so that both end up with
//! everything — used by `sync` (this machine and the server) and by `exec` (a program's
//! checkout and the VFS). Nothing is lost: a file changed on both sides is kept twice (the
//! other side's keeps the name, this side's becomes a conflict copy), a deletion on one side
//! and a change on the other keeps the change, and a file where the other side now has a
//! folder moves to a conflict copy.

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
                    let copy = copy_name(&path);
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
    resolve_clashes(acts, remote, copy_name)
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
    remote: &BTreeMap<String, Side>,
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
            // Inside a name that is a file on the other side: the whole folder moves.
            let copy = folder_copies
                .entry(file.clone())
                .or_insert_with(|| copy_name(&file))
                .clone();
            format!("{copy}{}", &path[file.len()..])
        } else if is_other_folder(&path) {
            copy_name(&path)
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

/// `dir/name (conflict WHO DATE).ext`, numbered when taken. WHO names the side whose
/// version the copy keeps (this machine's host name for sync, `exec` for a program's).
pub fn conflict_name(path: &str, who: &str, taken: &dyn Fn(&str) -> bool) -> String {
    let (dir, file) = match path.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), path),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => (&file[..i], &file[i..]),
        _ => (file, ""),
    };
    let stamp = chrono::Local::now().format("%Y-%m-%d %H%M");
    let host = who;
    for n in 1.. {
        let tag = if n == 1 {
            format!("conflict {host} {stamp}")
        } else {
            format!("conflict {host} {stamp} {n}")
        };
        let candidate = format!("{dir}{stem} ({tag}){ext}");
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
}
