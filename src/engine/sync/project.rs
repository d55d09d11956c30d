//! One project's sync (engine): the files here and on the server against the base both
//! last agreed on, the plan (`crate::merge`), and carrying it out — uploads first, one atomic
//! commit, then the local writes, each followed by its base.

use super::api::{Api, HttpError, Unreadable};
use super::transfer::{
    copy_matching, refused_upload, upload, Downloaded, Prefetch, Spill, FETCHES_AT_ONCE, HOLD,
};
use super::{Account, PROJECTS};
use crate::hub::Hub;
use crate::merge::{conflict_name, find_moves, hostname, occupies, plan, Act, Crossed, Side};
use crate::protocol::types::{self as wire, ContentHash, FileVersion, ProjectId, Revision};
use crate::vfs::{FileRef, Kind, VPath};
use anyhow::{anyhow, bail, Context, Result};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// What a sync did (or, for `sync status`, would do) to one project.
#[derive(Debug, Default)]
pub struct Report {
    pub project: String,
    pub pushed: Vec<String>,
    pub pulled: Vec<String>,
    pub deleted_here: Vec<String>,
    pub deleted_there: Vec<String>,
    /// Files renamed here and so on the server: (old path, new path).
    pub renamed_there: Vec<(String, String)>,
    /// Files renamed on the server and so here.
    pub renamed_here: Vec<(String, String)>,
    /// (path, the conflict copy keeping this machine's version)
    pub conflicts: Vec<(String, String)>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Names that cannot be synced, with the reason.
    pub skipped: Vec<String>,
    pub notes: Vec<String>,
}

impl Report {
    /// Lists what `acts` move, replacing an earlier plan's lists.
    fn tally(&mut self, acts: &[Act]) {
        self.pushed.clear();
        self.pulled.clear();
        self.deleted_here.clear();
        self.deleted_there.clear();
        self.renamed_there.clear();
        self.renamed_here.clear();
        self.conflicts.clear();
        for a in acts {
            match a {
                Act::Push { path, hash, .. } => match hash {
                    Some(_) => self.pushed.push(path.clone()),
                    None => self.deleted_there.push(path.clone()),
                },
                Act::Pull {
                    path, hash, local, ..
                } => match hash {
                    Some(_) => self.pulled.push(path.clone()),
                    None if local.is_some() => self.deleted_here.push(path.clone()),
                    None => {}
                },
                Act::Conflict { path, copy, .. } => {
                    self.conflicts.push((path.clone(), copy.clone()))
                }
                Act::Move { from, to, .. } => self.conflicts.push((from.clone(), to.clone())),
                Act::Rename { from, to, .. } => self.renamed_there.push((from.clone(), to.clone())),
                Act::Follow { from, to, .. } => self.renamed_here.push((from.clone(), to.clone())),
                Act::Agree { .. } => {}
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pushed.is_empty()
            && self.pulled.is_empty()
            && self.deleted_here.is_empty()
            && self.deleted_there.is_empty()
            && self.renamed_there.is_empty()
            && self.renamed_here.is_empty()
            && self.conflicts.is_empty()
    }
}

/// A local file: its hash and how to read it.
pub(super) struct LocalFile {
    pub(super) hash: ContentHash,
    pub(super) path: VPath,
    pub(super) file: FileRef,
}

pub(super) fn project_dir(name: &str) -> Result<VPath> {
    VPath::parse_absolute(PROJECTS)
        .and_then(|p| p.join(name))
        .map_err(|e| anyhow!("'{name}' cannot be a project name: {e}"))
}

/// The files under `dir`, by path relative to it, and the paths of files left out because
/// they are larger than the server accepts (`limit`).
pub(super) fn local_files(
    hub: &Hub,
    dir: &VPath,
    limit: Option<u64>,
    report: &mut Report,
) -> Result<(BTreeMap<String, LocalFile>, BTreeSet<String>)> {
    let mut out = BTreeMap::new();
    let mut held = BTreeSet::new();
    if !hub.vfs.is_dir(dir) {
        return Ok((out, held));
    }
    for e in hub.vfs.walk(dir)? {
        if e.kind != Kind::File {
            continue;
        }
        let Some(names) = e.path.strip_prefix(dir) else {
            continue;
        };
        let rel = names.join("/");
        if !crate::protocol::valid_path(&rel) {
            report.skipped.push(format!(
                "{}: the name cannot be synced",
                crate::text::escape(&rel)
            ));
            continue;
        }
        if let Some(limit) = limit {
            let size = hub.vfs.stat(&e.path).map(|m| m.size).unwrap_or(0);
            if size > limit {
                report.skipped.push(format!(
                    "{rel} is larger than the server accepts ({}); it stays here, unsynced",
                    crate::budget::human(limit as usize)
                ));
                held.insert(rel);
                continue;
            }
        }
        let file = match e.file {
            Some(f) => f,
            None => hub.vfs.file_ref(&e.path)?,
        };
        let hash = ContentHash::from(
            hub.vfs
                .ref_hash(&e.path, &file)
                .with_context(|| format!("cannot read {}", e.path))?,
        );
        out.insert(
            rel,
            LocalFile {
                hash,
                path: e.path.clone(),
                file,
            },
        );
    }
    Ok((out, held))
}

/// A file of the server as the plan sees it.
fn side(f: wire::FileEntry) -> (String, Side) {
    (
        f.path,
        Side {
            hash: f.hash.map(String::from),
            version: f.version.0,
            size: f.size,
        },
    )
}

/// A hash of the plan as the protocol sends it. The plan's hashes were all read here, from
/// the server or from the stored base, so one that is not a hash means a damaged base.
pub(super) fn wire_hash(h: &str) -> Result<ContentHash> {
    ContentHash::parse(h).ok_or_else(|| {
        anyhow!(
            "the stored sync state holds '{}', which is not a content hash (the store is damaged)",
            crate::text::escape(h)
        )
    })
}

/// The server's files; names that are not clean relative paths (which no valyxo server
/// sends) are skipped, so nothing from the server can reach outside the project. So are
/// files listed beneath another listed file (`a` and `a/b`, which no valyxo server holds
/// either): the file is kept and what is beneath it skipped, so the rest still syncs.
/// Deleted files, which the server lists too, clash with nothing.
fn remote_files(files: Vec<wire::FileEntry>, report: &mut Report) -> BTreeMap<String, Side> {
    let mut out = BTreeMap::new();
    for (path, side) in files.into_iter().map(side) {
        if crate::protocol::valid_path(&path) {
            out.insert(path, side);
        } else {
            report.skipped.push(format!(
                "{}: the server sent a name that is not a path",
                crate::text::escape(&path)
            ));
        }
    }
    // A deleted file is listed too (no hash): it is in nobody's way.
    let live = |p: &str| out.get(p).is_some_and(|s: &Side| s.hash.is_some());
    let beneath: Vec<(String, String)> = out
        .keys()
        .filter(|path| live(path))
        .filter_map(|path| {
            path.match_indices('/')
                .map(|(i, _)| &path[..i])
                .find(|dir| live(dir))
                .map(|file| (path.clone(), file.to_string()))
        })
        .collect();
    for (path, file) in beneath {
        out.remove(&path);
        report.skipped.push(format!(
            "{}: the server lists it beneath the file {}",
            crate::text::escape(&path),
            crate::text::escape(&file)
        ));
    }
    out
}

/// The stored sync state of a project.
struct Stored {
    /// The project on the server it was last synced with.
    remote: ProjectId,
    /// What both sides last agreed on, per file.
    base: BTreeMap<String, Side>,
}

impl Run<'_> {
    /// The stored sync state of project `name` for this account, if it was synced before.
    fn state(&self, name: &str) -> Result<Option<Stored>> {
        let (hub, acct) = (self.hub, self.account);
        let conn = hub.store.conn();
        let row: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT id, remote_id FROM sync_projects WHERE server = ?1 AND user_id = ?2 AND name = ?3",
        )?
        .query_row(rusqlite::params![acct.server, acct.user_id, name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
        let Some((row, remote)) = row else {
            return Ok(None);
        };
        let mut st =
            conn.prepare_cached("SELECT path, hash, version FROM sync_files WHERE project = ?1")?;
        let base = st
            .query_map([row], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Side {
                        hash: r.get(1)?,
                        version: r.get(2)?,
                        size: 0,
                    },
                ))
            })?
            .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
        Ok(Some(Stored {
            remote: ProjectId(remote),
            base,
        }))
    }

    /// The server's projects that a project here is paired with.
    fn paired(&self) -> Result<HashSet<ProjectId>> {
        let conn = self.hub.store.conn();
        let mut st = conn.prepare_cached(
            "SELECT remote_id FROM sync_projects WHERE server = ?1 AND user_id = ?2",
        )?;
        let ids = st
            .query_map(
                rusqlite::params![self.account.server, self.account.user_id],
                |r| Ok(ProjectId(r.get(0)?)),
            )?
            .collect::<rusqlite::Result<HashSet<_>>>()?;
        Ok(ids)
    }

    /// Records that project `name` is synced with `remote`, and with `revision` that every
    /// change the server had up to that revision is taken in here; without it, the revision
    /// recorded stays as it was for that project (0 for a new pairing). Returns its row.
    ///
    /// The revision is what a deletion of the whole project names (`super::whole`): the
    /// server deletes it only if nothing changed since, so it must never be a revision
    /// whose changes this machine did not take in (a sync cut off midway, a commit of
    /// another machine between this one's look and its commit).
    fn record(&self, name: &str, remote: ProjectId, revision: Option<Revision>) -> Result<i64> {
        let acct = self.account;
        let conn = self.hub.store.conn();
        conn.execute(
            "INSERT INTO sync_projects (server, user_id, name, remote_id, revision, synced_at) \
             VALUES (?1, ?2, ?3, ?4, coalesce(?5, 0), ?6) \
             ON CONFLICT (server, user_id, name) DO UPDATE SET \
             revision = CASE WHEN ?5 IS NOT NULL THEN excluded.revision \
             WHEN remote_id = excluded.remote_id THEN revision ELSE 0 END, \
             remote_id = excluded.remote_id, synced_at = excluded.synced_at",
            rusqlite::params![
                acct.server,
                acct.user_id,
                name,
                remote.0,
                revision.map(|r| r.0),
                crate::store::now_ms()
            ],
        )?;
        Ok(conn.query_row(
            "SELECT id FROM sync_projects WHERE server = ?1 AND user_id = ?2 AND name = ?3",
            rusqlite::params![acct.server, acct.user_id, name],
            |r| r.get(0),
        )?)
    }
}

/// Most changes in one commit, and about the most JSON (the server takes 10,000 and 1 MiB).
const COMMIT_BATCH: usize = 1000;
const COMMIT_BYTES: usize = 256 << 10;

/// Options of one sync run.
pub struct Options {
    /// Only work out what would happen (`sync status`).
    pub dry_run: bool,
    /// Show progress bars for large transfers (on a terminal).
    pub progress: bool,
    /// The largest file the server accepts, when it says (`Api::limits`).
    pub blob_limit: Option<u64>,
}

/// What one sync run works with: the hub, the account and its client, the account's
/// projects on the server ([`projects`]) and the options.
pub struct Run<'a> {
    pub hub: &'a Hub,
    pub account: &'a Account,
    pub api: &'a Api,
    pub remote_projects: &'a [wire::Project],
    pub opts: &'a Options,
}

/// The projects to sync: the names given, or every local project and every project of the
/// account on the server; with the server's projects, and a note for each name that cannot
/// be a folder here (or there) and is left alone.
pub fn projects(
    hub: &Hub,
    api: &Api,
    names: &[String],
) -> Result<(Vec<String>, Vec<wire::Project>, Vec<String>)> {
    let remote = api.list_all::<wire::Project>("/api/projects")?;
    if !names.is_empty() {
        return Ok((names.to_vec(), remote, Vec::new()));
    }
    let mut all = BTreeSet::new();
    let mut notes = Vec::new();
    let mut add = |n: &str, whose: &str| match crate::protocol::project_name_problem(n) {
        None => {
            all.insert(n.to_string());
        }
        Some(p) => notes.push(format!(
            "{} {whose} is left alone: {p}",
            crate::text::escape(n)
        )),
    };
    let root = VPath::parse_absolute(PROJECTS).expect("a valid path");
    if hub.vfs.is_dir(&root) {
        for e in hub.vfs.read_dir(&root)? {
            if e.meta.kind == Kind::Dir {
                add(&e.name, "here");
            }
        }
    }
    for p in &remote {
        add(&p.name, "on the server");
    }
    Ok((all.into_iter().collect(), remote, notes))
}

/// Syncs (or with `dry_run`, plans) one project.
pub fn sync_project(run: &Run, name: &str) -> Result<Report> {
    let Run {
        hub,
        account: acct,
        api,
        remote_projects,
        opts,
    } = *run;
    if let Some(p) = crate::protocol::project_name_problem(name) {
        bail!("{} cannot be synced: {p}", crate::text::escape(name));
    }
    let dir = project_dir(name)?;
    if dir.names().len() != 2 {
        bail!("'{name}' is not a project name: projects are the directories in ~/Projects");
    }
    let mut report = Report {
        project: name.to_string(),
        ..Report::default()
    };
    let known = run.state(name)?;
    let exists_here = hub.vfs.is_dir(&dir);
    // The server's project: the one synced before, else one of that name, else a new one.
    let mut remote_id = known
        .as_ref()
        .map(|k| k.remote)
        .filter(|id| remote_projects.iter().any(|p| p.id == *id));
    if known.is_some() && remote_id.is_none() {
        report.notes.push(
            "the project was deleted on the server, but changed here since the last sync: \
             this machine's copy is kept and uploaded again as a new project"
                .into(),
        );
    }
    if remote_id.is_none() {
        // Of the server's projects of that name, one that no other project here is paired
        // with (one renamed here keeps its pairing).
        let paired = run.paired()?;
        remote_id = remote_projects
            .iter()
            .filter(|p| p.name == name && !paired.contains(&p.id))
            .map(|p| p.id)
            .min();
    }
    // A new folder here whose name a server project paired with another folder here has
    // (renamed there to it, say): made on the server under that name, it would be a second
    // project of that name, which the other machines, paired with the first, never fetch.
    // Both are kept: this folder takes a conflict name, here and on the server.
    if remote_id.is_none()
        && known.is_none()
        && exists_here
        && remote_projects.iter().any(|p| p.name == name)
    {
        let host = hostname();
        let root = VPath::parse_absolute(PROJECTS).expect("a valid path");
        let taken = |c: &str| {
            remote_projects.iter().any(|p| p.name == c)
                || root.join(c).is_ok_and(|p| hub.vfs.exists(&p))
        };
        // A project name is at most MAX_PROJECT_NAME characters: the conflict name of a
        // long one is made from its start (else this folder would go up as a second
        // project of the same name, which the other machines never fetch).
        let mut new = conflict_name(name, &host, &taken);
        let longest = crate::protocol::MAX_PROJECT_NAME;
        let chars = name.chars().count();
        if new.chars().count() > longest {
            let keep = chars.saturating_sub(new.chars().count() - longest);
            let start: String = name.chars().take(keep).collect();
            new = conflict_name(start.trim_end(), &host, &taken);
        }
        if crate::protocol::project_name_problem(&new).is_none() {
            let note = format!(
                "the server's project {} is another one (paired with another folder here): \
                 this new folder {} ~/Projects/{}",
                crate::text::escape(name),
                if opts.dry_run {
                    "would be renamed"
                } else {
                    "is renamed"
                },
                crate::text::escape(&new)
            );
            if opts.dry_run {
                report.notes.push(note);
            } else if hub.vfs.rename(&dir, &project_dir(&new)?).is_ok() {
                let mut r = sync_project(run, &new)?;
                r.notes.insert(0, note);
                return Ok(r);
            }
            // (A folder that cannot be renamed, such as a mount point, goes up under its
            // name.)
        }
    }
    if remote_id.is_none() && !exists_here {
        bail!(
            "no project '{name}' here (~/Projects/{name}) or on {}",
            acct.server
        );
    }
    let mut base = match &known {
        Some(k) if Some(k.remote) == remote_id => k.base.clone(),
        _ => BTreeMap::new(),
    };
    let mut crossed: Vec<String>;
    let mut held_changed: bool;
    for attempt in 0.. {
        report.skipped.clear();
        let (local, held) = local_files(hub, &dir, opts.blob_limit, &mut report)?;
        if local.is_empty() && held.is_empty() && base.values().any(|b| b.hash.is_some()) {
            // A project folder that is empty (or a mount that is not there) is not a
            // request to delete every file everywhere: it is fetched again, as on a new
            // machine. (A folder deleted as a whole deletes the project: `super::whole`.)
            // (Checked on every attempt: a retry reloads the stored base.)
            if attempt == 0 {
                report.notes.push(format!(
                    "~/Projects/{name} was empty here; it is fetched from the server"
                ));
            }
            base.clear();
        }
        let (revision, mut remote) = match remote_id {
            Some(id) => {
                let d = api.files(id)?;
                (d.revision, remote_files(d.files, &mut report))
            }
            None => (Revision(0), BTreeMap::new()),
        };
        // A file too large to send stays out of the plan on both sides until it fits
        // (and a change the server has there is not taken in).
        held_changed = held
            .iter()
            .any(|p| remote.get(p).map(|s| s.version) != base.get(p).map(|s| s.version));
        for p in &held {
            remote.remove(p);
            base.remove(p);
        }
        let local_hashes: BTreeMap<String, String> = local
            .iter()
            .map(|(p, f)| (p.clone(), f.hash.to_string()))
            .collect();
        let mut planned: BTreeMap<String, ()> = BTreeMap::new();
        let host = hostname();
        let acts = plan(&local_hashes, &base, &remote, &mut |path| {
            let name = conflict_name(path, &host, &|c| {
                occupies(&local, c) || occupies(&remote, c) || occupies(&planned, c)
            });
            planned.insert(name.clone(), ());
            name
        });
        let moves = find_moves(acts, &base, &remote);
        let acts = moves.acts;
        crossed = moves.crossed.iter().map(crossed_note).collect();
        report.tally(&acts);
        if opts.dry_run {
            report.notes.append(&mut crossed);
            return Ok(report);
        }
        // A new project with no files is not made on the server (empty folders do not
        // sync): a session makes its start folder again after it was deleted or renamed.
        if remote_id.is_none() && acts.is_empty() {
            return Ok(report);
        }
        // The project on the server, created when new.
        let id = match remote_id {
            Some(id) => id,
            None => {
                let d: wire::Done<wire::Project> = api.send(
                    "POST",
                    "/api/projects",
                    &wire::ProjectRequest {
                        name: name.to_string(),
                        description: None,
                    },
                )?;
                let id = d.data.id;
                // Another machine may have made a project of this name since this sync
                // listed them: of the two, the one made first is the project (else each
                // machine would keep its own, and neither reach the other). This one,
                // made later and still empty, is deleted, and that one synced with.
                if let Some(first) = earlier_twin(run, name, id)? {
                    let gone = api.send::<_, wire::Message>(
                        "POST",
                        &format!("/api/projects/{id}/delete"),
                        &wire::ProjectDeleteRequest {
                            revision: Revision(0),
                        },
                    );
                    if gone.is_ok() {
                        remote_id = Some(first);
                        continue;
                    }
                }
                remote_id = Some(id);
                id
            }
        };
        // The revision is recorded only once the plan is carried out whole.
        let project = run.record(name, id, None)?;
        if known.as_ref().is_some_and(|k| k.remote != id) || (known.is_none() && attempt == 0) {
            hub.store
                .conn()
                .execute("DELETE FROM sync_files WHERE project = ?1", [project])?;
        }
        let down_total: u64 = acts
            .iter()
            .filter_map(|a| match a {
                Act::Pull {
                    path,
                    hash: Some(_),
                    ..
                }
                | Act::Conflict { path, .. } => remote.get(path).map(|s| s.size.max(0) as u64),
                _ => None,
            })
            .sum();
        let target = Target {
            hub,
            api,
            id,
            project,
            dir: &dir,
            opts,
        };
        let work = Plan {
            local: &local,
            remote: &remote,
            acts: &acts,
            revision,
            down_total,
        };
        match apply(&target, &work, &mut report)? {
            Some((new_revision, whole)) => {
                run.record(name, id, (whole && !held_changed).then_some(new_revision))?;
                report.notes.append(&mut crossed);
                return Ok(report);
            }
            None if attempt < 5 => {
                // Someone committed in between: plan again against what is there now.
                base = run.state(name)?.map(|s| s.base).unwrap_or_default();
            }
            None => bail!("the project kept changing on the server during sync; run sync again"),
        }
    }
    unreachable!("the loop returns")
}

/// A project of the server named `name`, made before the project `id` just made, that no
/// project here is paired with. Only projects made since this sync listed them are read
/// (the list is newest first, down to the first one listed then): an older one of that name
/// would have been paired with, not made again.
fn earlier_twin(run: &Run, name: &str, id: ProjectId) -> Result<Option<ProjectId>> {
    let paired = run.paired()?;
    let known: HashSet<ProjectId> = run.remote_projects.iter().map(|p| p.id).collect();
    Ok(run
        .api
        .list_until::<wire::Project>("/api/projects", &|p| known.contains(&p.id))?
        .into_iter()
        .filter(|p| p.name == name && p.id.0 < id.0 && !paired.contains(&p.id))
        .map(|p| p.id)
        .min())
}

fn bar(opts: &Options, total: u64, what: &str) -> indicatif::ProgressBar {
    if !opts.progress || total < (1 << 20) {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_string());
    b
}

/// What a sync says about a rename that met an edit of the old path on the other side.
fn crossed_note(c: &Crossed) -> String {
    let (from, to) = (crate::text::escape(&c.from), crate::text::escape(&c.to));
    if c.renamed_here {
        format!(
            "{from} was renamed to {to} here and changed on the server: both are kept \
             ({to} holds this machine's file, {from} the server's changed one)"
        )
    } else {
        format!(
            "{from} was renamed to {to} on the server and changed here: both are kept \
             ({to} holds the renamed file, {from} this machine's changed one)"
        )
    }
}

/// What one run of [`apply`] works on.
struct Target<'a> {
    hub: &'a Hub,
    api: &'a Api,
    /// The project's id on the server.
    id: ProjectId,
    /// The project's row in this home's sync state.
    project: i64,
    dir: &'a VPath,
    opts: &'a Options,
}

impl Target<'_> {
    fn path(&self, rel: &str) -> VPath {
        self.dir
            .join_names(&rel.split('/').map(str::to_string).collect::<Vec<_>>())
    }

    /// The content hash of `rel` here now, if it is a file.
    fn hash_now(&self, rel: &str) -> Option<String> {
        self.hub
            .vfs
            .content_hash(&self.path(rel))
            .ok()
            .map(|h| h.to_hex().to_string())
    }

    /// Whether `rel` still holds what the plan saw (a file edited while the sync ran is left
    /// for the next one).
    fn still(&self, rel: &str, expect: &Option<String>) -> bool {
        &self.hash_now(rel) == expect
    }

    /// Writes `rel`, making its folders. A folder in the way that holds no files (what is
    /// left when the server turned a folder into a file) is removed first.
    fn write(&self, rel: &str, data: &[u8]) -> Result<()> {
        let p = self.prepare(rel)?;
        self.hub
            .vfs
            .write(&p, data)
            .with_context(|| format!("cannot write {p}"))
    }

    /// Makes room for the file `rel` (see [`Target::write`]) and returns its path.
    fn prepare(&self, rel: &str) -> Result<VPath> {
        let p = self.path(rel);
        let vfs = &self.hub.vfs;
        if vfs.is_dir(&p) && !vfs.walk(&p)?.iter().any(|e| e.kind != Kind::Dir) {
            vfs.remove(&p, true)
                .with_context(|| format!("cannot replace the empty folder {p}"))?;
        }
        if let Some(parent) = p.parent() {
            vfs.mkdir(&parent, true)
                .with_context(|| format!("cannot create {parent}"))?;
        }
        Ok(p)
    }

    /// Writes `rel` with content downloaded whole and checked, a piece at a time: a stored
    /// file is stored in one transaction at its end, a mounted one goes through a temporary
    /// file renamed over it (`Vfs::write_from`).
    fn write_downloaded(&self, rel: &str, d: Downloaded) -> Result<()> {
        let p = self.prepare(rel)?;
        match d {
            Downloaded::Held(data) => self.hub.vfs.write(&p, &data),
            Downloaded::Spilled(mut file) => {
                use std::io::Seek;
                file.rewind().context("cannot read back a download")?;
                self.hub.vfs.write_from(&p, &mut file)
            }
        }
        .with_context(|| format!("cannot write {p}"))
    }

    /// Renames `from` to `to` here, as another machine did, when `from` still holds `hash`
    /// (the plan made sure `to` holds what it saw); false when `from` changed, and then
    /// the content is fetched instead.
    fn follow(&self, from: &str, to: &str, hash: &str) -> Result<bool> {
        if !self.still(from, &Some(hash.to_string())) {
            return Ok(false);
        }
        let (src, dst) = (self.path(from), self.path(to));
        let vfs = &self.hub.vfs;
        let renamed = dst
            .parent()
            .map_or(Ok(()), |parent| vfs.mkdir(&parent, true))
            .and_then(|()| vfs.rename(&src, &dst))
            .is_ok_and(|left| left.is_empty());
        if !renamed && self.still(from, &Some(hash.to_string())) {
            // Where a plain rename cannot go (into a folder that replaces the file itself,
            // onto the folder that held it, across a mount): the content is read here and
            // written there.
            let data = vfs
                .read(&src)
                .with_context(|| format!("cannot read {src}"))?;
            if ContentHash::of(&data).as_str() != hash {
                return Ok(false);
            }
            let remove = || {
                vfs.remove(&src, false)
                    .with_context(|| format!("cannot remove {src}"))
            };
            // The new copy first, unless it goes inside the old name, or onto a folder the old
            // one is in (the server has the content either way).
            let onto_its_folder = from.starts_with(&format!("{to}/"));
            if onto_its_folder
                && vfs
                    .walk(&dst)?
                    .iter()
                    .any(|e| e.kind != Kind::Dir && e.path != src)
            {
                // Other files here are in the way: the content is left where it is, and
                // the sync says what cannot be written.
                return Ok(false);
            }
            if onto_its_folder || to.starts_with(&format!("{from}/")) {
                remove()?;
                self.write(to, &data)?;
            } else {
                self.write(to, &data)?;
                remove()?;
            }
        }
        Ok(true)
    }

    /// Records what both sides now agree `rel` is.
    fn set_base(&self, rel: &str, hash: Option<&str>, version: FileVersion) -> Result<()> {
        self.hub
            .store
            .conn()
            .prepare_cached(
                "INSERT INTO sync_files (project, path, hash, version) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (project, path) DO UPDATE SET hash = excluded.hash, \
                 version = excluded.version",
            )?
            .execute(rusqlite::params![self.project, rel, hash, version.0])?;
        Ok(())
    }
}

/// A plan to carry out, and what it was made from.
struct Plan<'a> {
    /// The files here when the plan was made.
    local: &'a BTreeMap<String, LocalFile>,
    /// The server's files the plan was made against (their sizes, for downloads).
    remote: &'a BTreeMap<String, Side>,
    acts: &'a [Act],
    /// The project's revision on the server the plan was made against.
    revision: Revision,
    /// The bytes the plan downloads (for the progress bar).
    down_total: u64,
}

/// Carries out a plan: uploads, the commit, then the local writes. Returns the new revision
/// and whether everything the server had at it is now taken in here (no commit of another
/// machine came in between, no conflict was left out for content the server refused, no
/// local write was left for the next sync), or None when the commit met changes made in between (nothing local was touched
/// then).
fn apply(t: &Target, plan: &Plan, report: &mut Report) -> Result<Option<(Revision, bool)>> {
    let (hub, api) = (t.hub, t.api);
    let Plan {
        local,
        remote,
        acts,
        revision,
        down_total,
    } = *plan;
    // 1. Content the server lacks goes up first.
    let mut by_hash: HashMap<&ContentHash, &LocalFile> = HashMap::new();
    // Every path that sends each content: one upload serves them all, and a refusal of it
    // leaves them all out, so each is named.
    let mut senders: HashMap<&ContentHash, BTreeSet<&str>> = HashMap::new();
    for a in acts {
        let path = match a {
            Act::Push {
                path,
                hash: Some(_),
                ..
            }
            | Act::Conflict { path, .. }
            | Act::Move { from: path, .. } => path,
            _ => continue,
        };
        if let Some(f) = local.get(path) {
            by_hash.insert(&f.hash, f);
            senders.entry(&f.hash).or_default().insert(path);
        }
    }
    // Content the server would not take: the acts that need it wait for another sync.
    let mut refused: HashSet<ContentHash> = HashSet::new();
    if !by_hash.is_empty() {
        let hashes: Vec<&ContentHash> = by_hash.keys().copied().collect();
        let mut missing = Vec::new();
        for chunk in hashes.chunks(crate::protocol::MAX_BATCH / 2) {
            let d: wire::Data<wire::Missing> = api.send(
                "POST",
                "/api/blobs/missing",
                &wire::MissingRequest {
                    hashes: chunk.iter().map(|h| (*h).clone()).collect(),
                },
            )?;
            missing.extend(d.data.missing);
        }
        // Each content once, whatever the server answers: one named twice would be sent
        // twice at once by the two senders, and counted twice.
        let mut once = HashSet::new();
        missing.retain(|h| once.insert(h.clone()));
        let sizes: u64 = missing
            .iter()
            .filter_map(|h| by_hash.get(h))
            .map(|f| hub.vfs.stat(&f.path).map(|m| m.size).unwrap_or(0))
            .sum();
        let pb = bar(t.opts, sizes, "uploading");
        let shown = pb.clone();
        let sent: std::sync::Arc<dyn Fn(u64) + Send + Sync> =
            std::sync::Arc::new(move |n| shown.inc(n));
        let wanted: Vec<(&ContentHash, &LocalFile)> = missing
            .iter()
            .filter_map(|h| Some((h, *by_hash.get(h)?)))
            .collect();
        let mut quota_note = None;
        for (h, f, size, sent) in upload(hub, api, &wanted, &sent)? {
            match sent {
                Ok(()) => report.bytes_up += size,
                Err(e) => {
                    let e = match e.downcast_ref::<HttpError>() {
                        Some(x)
                            if x.status == 400 && x.message.contains("does not match its hash") =>
                        {
                            anyhow!("{} changed during sync: run sync again", f.path)
                        }
                        Some(_) => e,
                        // The file, not the connection: it got shorter, or a read failed.
                        None if e.downcast_ref::<Unreadable>().is_some_and(|u| u.shrank) => {
                            anyhow!("{} changed during sync: run sync again", f.path)
                        }
                        None if e.downcast_ref::<Unreadable>().is_some() => {
                            e.context(format!("cannot read {}", f.path))
                        }
                        // A server that refuses a body answers before it has read it; the
                        // client may only see the connection close.
                        None => e.context(format!(
                            "the connection broke while sending {} ({})",
                            f.path,
                            crate::budget::human(size as usize)
                        )),
                    };
                    let Some(why) = refused_upload(&e) else {
                        return Err(e);
                    };
                    let full = e
                        .downcast_ref::<HttpError>()
                        .is_some_and(|x| x.status == 507);
                    for rel in senders.get(h).into_iter().flatten() {
                        report.skipped.push(if full {
                            format!("{rel}: not sent, the storage is full")
                        } else {
                            format!("{rel} is {why}")
                        });
                    }
                    if full {
                        quota_note.get_or_insert(why);
                    }
                    refused.insert(h.clone());
                }
            }
        }
        pb.finish_and_clear();
        if let Some(n) = quota_note {
            report.notes.push(n);
        }
    }
    let sendable = |a: &Act| match a {
        Act::Push {
            path,
            hash: Some(_),
            ..
        }
        | Act::Conflict { path, .. }
        | Act::Move { from: path, .. } => {
            local.get(path).is_none_or(|f| !refused.contains(&f.hash))
        }
        _ => true,
    };
    // A conflict left out also leaves out the server's version of its file.
    let server_change_left = acts
        .iter()
        .any(|a| matches!(a, Act::Conflict { .. }) && !sendable(a));
    let acts: Vec<&Act> = acts.iter().filter(|a| sendable(a)).collect();
    if !refused.is_empty() {
        let kept: Vec<Act> = acts.iter().map(|a| (*a).clone()).collect();
        report.tally(&kept);
    }
    let mut conflict_content: HashMap<String, Vec<u8>> = HashMap::new();
    for a in &acts {
        if let Act::Conflict { path, .. } = a {
            let f = &local[path];
            conflict_content.insert(path.clone(), hub.vfs.read_ref(&f.path, &f.file)?);
        }
    }
    // 2. One atomic commit of everything this machine sends. Deletions go first: a later
    // batch may put a file where an earlier one removed a folder.
    // A rename is two changes that go in one commit: the old path's deletion, and the new
    // path with the same content, naming where it came from (nothing is uploaded for it).
    let change = |path: &str, hash: Option<&str>, version: i64, from: Option<&str>| {
        Ok::<_, anyhow::Error>(wire::Change {
            path: path.to_string(),
            hash: hash.map(wire_hash).transpose()?,
            base_version: FileVersion(version),
            from: from.map(str::to_string),
        })
    };
    let mut units: Vec<Vec<wire::Change>> = Vec::new();
    for a in &acts {
        if let Act::Push {
            path,
            hash: None,
            base_version,
        } = a
        {
            units.push(vec![change(path, None, *base_version, None)?]);
        }
    }
    for a in &acts {
        if let Act::Rename {
            from,
            to,
            hash,
            from_version,
            to_version,
        } = a
        {
            units.push(vec![
                change(from, None, *from_version, None)?,
                change(to, Some(hash), *to_version, Some(from))?,
            ]);
        }
    }
    for a in &acts {
        let ch = match a {
            Act::Push {
                path,
                hash: Some(h),
                base_version,
            } => change(path, Some(h), *base_version, None)?,
            // (A copy the server holds already was sent by a sync stopped before it
            // wrote it here.)
            Act::Conflict {
                copy: to,
                local: hash,
                ..
            }
            | Act::Move { to, hash, .. }
                if remote.get(to).and_then(|s| s.hash.as_ref()) == Some(hash) =>
            {
                continue
            }
            Act::Conflict { copy, local, .. } => change(copy, Some(local), 0, None)?,
            Act::Move { to, hash, .. } => change(to, Some(hash), 0, None)?,
            _ => continue,
        };
        units.push(vec![ch]);
    }
    let mut new_revision = revision;
    let mut whole = !server_change_left;
    let mut versions: HashMap<String, FileVersion> = HashMap::new();
    // In batches that stay well inside the server's limits. Should a later batch meet a
    // conflict, the earlier ones stand and the new plan finds them already on the server.
    // A unit (a rename's two changes) is never split between batches.
    let mut batch: Vec<wire::Change> = Vec::new();
    let mut batch_bytes = 0;
    let mut units = units.into_iter().peekable();
    while let Some(unit) = units.next() {
        for ch in unit {
            batch_bytes += ch.path.len()
                + ch.hash.as_ref().map_or(4, |h| h.as_str().len())
                + ch.from.as_ref().map_or(0, |f| f.len() + 8)
                + 48;
            batch.push(ch);
        }
        if units.peek().is_some() && batch.len() < COMMIT_BATCH && batch_bytes < COMMIT_BYTES {
            continue;
        }
        let answer = api.send::<_, wire::Data<wire::Files>>(
            "POST",
            &format!("/api/projects/{}/files/commit", t.id),
            &wire::CommitRequest {
                base_revision: Some(new_revision),
                changes: std::mem::take(&mut batch),
            },
        );
        batch_bytes = 0;
        let d = match answer {
            Ok(d) => d,
            Err(e)
                if e.downcast_ref::<HttpError>()
                    .is_some_and(|h| h.status == 409) =>
            {
                return Ok(None)
            }
            // Content the server collected between its upload (or the question whether it
            // had it) and this commit: planning again sends it anew.
            Err(e)
                if e.downcast_ref::<HttpError>()
                    .is_some_and(|h| h.status == 400 && h.message.contains("missing blob")) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        // Each commit raises the revision by one: more means another machine committed
        // in between, and its changes are not taken in here.
        whole &= d.data.revision.0 == new_revision.0 + 1;
        new_revision = d.data.revision;
        for f in d.data.files {
            versions.insert(f.path, f.version);
        }
    }
    // The server's version of a path this machine committed to (or, when a stopped sync
    // committed it before, the version the server lists).
    let version_of = |path: &str| {
        versions
            .get(path)
            .copied()
            .unwrap_or(FileVersion(remote.get(path).map_or(1, |s| s.version)))
    };
    // 3. Local writes, each followed by its base, so a stop anywhere loses nothing: moves
    // and conflict copies first (this machine's content gets its new name), then
    // deletions, then the server's content.
    for a in &acts {
        match a {
            Act::Move {
                from,
                to,
                hash,
                version,
            } => {
                if t.still(from, &Some(hash.clone())) {
                    let (src, dst) = (t.path(from), t.path(to));
                    if let Some(parent) = dst.parent() {
                        hub.vfs.mkdir(&parent, true)?;
                    }
                    hub.vfs
                        .rename(&src, &dst)
                        .with_context(|| format!("cannot move {src} to {dst}"))?;
                    t.set_base(to, Some(hash), version_of(to))?;
                }
                t.set_base(from, None, FileVersion(*version))?;
            }
            Act::Conflict {
                path,
                local: mine,
                copy,
                ..
            } => {
                t.write(copy, &conflict_content[path])?;
                t.set_base(copy, Some(mine), version_of(copy))?;
            }
            _ => {}
        }
    }
    let pb = bar(t.opts, down_total, "downloading");
    // Content already here (in another file, or fetched earlier in this sync) is copied
    // from that file instead of fetched again.
    let here: RefCell<HashMap<String, String>> = RefCell::new(
        local
            .iter()
            .map(|(rel, f)| (f.hash.to_string(), rel.clone()))
            .collect(),
    );
    // Into a private temporary file beside the store, a piece at a time; only content that
    // arrived whole and matched its hash goes on to replace a file.
    let spill_dir = hub
        .vfs
        .store()
        .path()
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    // Small content not here already, in the order the writes below need it.
    let ahead: Vec<(String, u64)> = {
        let mut seen = HashSet::new();
        acts.iter()
            .filter_map(|a| match a {
                Act::Pull {
                    path,
                    hash: Some(h),
                    ..
                } => Some((
                    h.clone(),
                    remote.get(path).map_or(0, |s| s.size.max(0) as u64),
                )),
                _ => None,
            })
            .filter(|(h, size)| {
                *size <= HOLD as u64 && !here.borrow().contains_key(h) && seen.insert(h.clone())
            })
            .collect()
    };
    let prefetch = Prefetch::new(&ahead, &spill_dir);
    let download = |path: &str, hash: &str, report: &mut Report| -> Result<Downloaded> {
        if let Some(got) = prefetch.take(hash) {
            let (data, size) = got?;
            report.bytes_down += size;
            return Ok(data);
        }
        let copy = here.borrow().get(hash).cloned();
        if let Some(rel) = copy.filter(|rel| t.still(rel, &Some(hash.to_string()))) {
            let mut out = Spill::new(&spill_dir);
            if copy_matching(&hub.vfs, &t.path(&rel), hash, &mut out) {
                return out.finish();
            }
        }
        let expect = remote.get(path).map_or(0, |s| s.size.max(0) as u64);
        let mut out = Spill::new(&spill_dir);
        let size = api.get_blob_to(&wire_hash(hash)?, expect, &mut out, &|n| pb.inc(n))?;
        std::io::Write::flush(&mut out).context("cannot keep a download")?;
        report.bytes_down += size;
        out.finish()
    };
    let fetched = |hash: &str, rel: &str| {
        here.borrow_mut().insert(hash.to_string(), rel.to_string());
    };
    whole &= std::thread::scope(|s| -> Result<bool> {
        // However the writes end (a panic included, or a fetcher that cannot be started),
        // the fetchers stop.
        struct Stop<'p, 'a>(&'p Prefetch<'a>);
        impl Drop for Stop<'_, '_> {
            fn drop(&mut self) {
                self.0.stop();
            }
        }
        let _stop = Stop(&prefetch);
        for _ in 0..FETCHES_AT_ONCE.min(ahead.len()) {
            s.spawn(|| prefetch.fetch(api, &pb));
        }
        let mut whole = true;
        let writes = (|| -> Result<()> {
            for deletions in [true, false] {
                if !deletions {
                    // Renames made on the server, after the deletions (which may clear
                    // the way) and before the content (which may go where a renamed file
                    // was).
                    whole &= follow_renames(t, &acts, report, &download)?;
                }
                for a in &acts {
                    match a {
                        Act::Push { path, hash, .. } if hash.is_none() == deletions => {
                            let v = versions.get(path).copied().unwrap_or_default();
                            t.set_base(path, hash.as_deref(), v)?;
                        }
                        Act::Rename { from, to, hash, .. } if !deletions => {
                            let v = |p: &String| versions.get(p).copied().unwrap_or_default();
                            t.set_base(from, None, v(from))?;
                            t.set_base(to, Some(hash), v(to))?;
                        }
                        Act::Agree {
                            path,
                            hash,
                            version,
                        } if !deletions => {
                            t.set_base(path, hash.as_deref(), FileVersion(*version))?
                        }
                        Act::Pull {
                            path,
                            hash,
                            version,
                            local: was,
                        } if hash.is_none() == deletions => {
                            // The content first: a file edited during the download is then left
                            // alone.
                            let data = match hash {
                                Some(h) => Some(download(path, h, report)?),
                                None => None,
                            };
                            if !t.still(path, was) {
                                whole = false;
                                continue;
                            }
                            match data {
                                Some(data) => {
                                    t.write_downloaded(path, data)?;
                                    fetched(hash.as_deref().unwrap_or_default(), path);
                                }
                                None => {
                                    if was.is_some() {
                                        hub.vfs.remove(&t.path(path), false)?;
                                    }
                                }
                            }
                            t.set_base(path, hash.as_deref(), FileVersion(*version))?;
                        }
                        Act::Conflict {
                            path,
                            local: mine,
                            remote,
                            version,
                            ..
                        } if !deletions => {
                            // This machine's version is in its copy; the server's takes the path.
                            let data = download(path, remote, report)?;
                            if t.still(path, &Some(mine.clone())) {
                                t.write_downloaded(path, data)?;
                                t.set_base(path, Some(remote), FileVersion(*version))?;
                            } else {
                                whole = false;
                            }
                        }
                        _ => {}
                    }
                }
            }
            Ok(())
        })();
        writes.map(|()| whole)
    })?;
    pb.finish_and_clear();
    Ok(Some((new_revision, whole)))
}

/// Carries out the plan's [`Act::Follow`]s: each file the server renamed is renamed here
/// (nothing is downloaded), unless its old path changed here during the sync, when the
/// content is fetched for the new path and the old one is left for the next sync. A rename
/// onto the old path of another waits for that one, so a chain of renames moves every file.
/// Returns whether every rename was taken in whole (none left for the next sync).
fn follow_renames(
    t: &Target,
    acts: &[&Act],
    report: &mut Report,
    download: &dyn Fn(&str, &str, &mut Report) -> Result<Downloaded>,
) -> Result<bool> {
    let mut whole = true;
    let mut pending: Vec<&Act> = acts
        .iter()
        .copied()
        .filter(|a| matches!(a, Act::Follow { .. }))
        .collect();
    let source = |a: &Act| match a {
        Act::Follow { from, .. } => from.clone(),
        _ => String::new(),
    };
    while !pending.is_empty() {
        let sources: BTreeSet<String> = pending.iter().map(|a| source(a)).collect();
        // One whose new path is no other's old path, nor inside one, nor a folder holding
        // one; in a cycle, the first.
        let i = pending
            .iter()
            .position(|a| match a {
                Act::Follow { from, to, .. } => {
                    let inside = format!("{to}/");
                    !sources.contains(to)
                        && !crate::merge::ancestors(to).any(|d| d != from && sources.contains(d))
                        && !sources
                            .range(inside.clone()..)
                            .take_while(|s| s.starts_with(&inside))
                            .any(|s| s != from)
                }
                _ => true,
            })
            .unwrap_or(0);
        let Act::Follow {
            from,
            to,
            hash,
            from_version,
            to_version,
            local: was,
        } = pending.remove(i)
        else {
            continue;
        };
        if !t.still(to, was) {
            // Written here during the sync: left for the next one.
            whole = false;
            continue;
        }
        if t.follow(from, to, hash)? {
            t.set_base(from, None, FileVersion(*from_version))?;
        } else {
            // The old path, changed here, is left for the next sync.
            whole = false;
            let data = download(to, hash, report)?;
            if !t.still(to, was) {
                continue;
            }
            t.write_downloaded(to, data)?;
        }
        t.set_base(to, Some(hash), FileVersion(*to_version))?;
    }
    Ok(whole)
}
