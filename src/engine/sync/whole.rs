//! Whole projects in sync (engine): a project deleted or renamed on one machine, or on the
//! server, is deleted or renamed everywhere, before the projects' files are synced.
//!
//! A project is known here by the row of its last sync (its name and its id on the server).
//! Its folder gone from `~/Projects` means it was deleted here, unless its files turned up
//! under another new folder, which means it was renamed. The server's project gone means it
//! was deleted there, and a new name there means it was renamed there. Nothing is lost: a
//! deletion reaches the server only if nobody changed the project since this machine last
//! synced it (the server checks the revision when it deletes), and a deletion from the
//! server removes only files that are as they were synced; otherwise the changed side is
//! kept, and the sync says so.

use super::api::{Api, HttpError};
use super::project::{local_files, project_dir, Report};
use super::{Account, PROJECTS};
use crate::hub::Hub;
use crate::protocol::types::{self as wire, ProjectId, Revision};
use crate::vfs::{Kind, VPath, VfsError};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};

/// What happened to one whole project, for the sync's output.
#[derive(Debug, PartialEq)]
pub struct Event {
    pub project: String,
    pub what: String,
    /// Something did not go the simple way (the changed side was kept): said on standard
    /// error.
    pub warning: bool,
}

/// A project synced before, as its row records it.
struct Known {
    row: i64,
    name: String,
    remote: ProjectId,
    revision: Revision,
    /// When it was last synced (ms).
    synced: i64,
}

fn known(hub: &Hub, acct: &Account) -> Result<Vec<Known>> {
    let conn = hub.store.conn();
    let mut st = conn.prepare_cached(
        "SELECT id, name, remote_id, revision, synced_at FROM sync_projects \
         WHERE server = ?1 AND user_id = ?2 ORDER BY name",
    )?;
    let rows = st
        .query_map(rusqlite::params![acct.server, acct.user_id], |r| {
            Ok(Known {
                row: r.get(0)?,
                name: r.get(1)?,
                remote: ProjectId(r.get(2)?),
                revision: Revision(r.get(3)?),
                synced: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The files both sides had at the last sync of the project in `row`: path and hash.
fn base_files(hub: &Hub, row: i64) -> Result<BTreeMap<String, String>> {
    let conn = hub.store.conn();
    let mut st = conn.prepare_cached(
        "SELECT path, hash FROM sync_files WHERE project = ?1 AND hash IS NOT NULL",
    )?;
    let rows = st
        .query_map([row], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<BTreeMap<String, String>>>()?;
    Ok(rows)
}

/// The files under a project folder here: path and hash.
fn files_here(hub: &Hub, name: &str) -> Result<BTreeMap<String, String>> {
    let dir = project_dir(name)?;
    let (files, _) = local_files(hub, &dir, None, &mut Report::default())?;
    Ok(files
        .into_iter()
        .map(|(p, f)| (p, f.hash.to_string()))
        .collect())
}

/// Whether the project folder `name` is gone for certain: not found (a mount point whose
/// host directory is away is no wish to delete anything), or, in the stored tree, made
/// again since the last sync (at `synced`, in ms) and holding no file — as a session makes
/// its start folder (`~/Projects/Main`) again when it is missing. A folder emptied file by
/// file keeps its time, and is fetched again instead.
fn gone(hub: &Hub, name: &str, synced: i64) -> Result<bool> {
    let dir = project_dir(name)?;
    let mount = hub.vfs.mount_of(&dir);
    if mount.as_ref().is_some_and(|m| m.vpath == dir) {
        return Ok(false);
    }
    Ok(match hub.vfs.stat(&dir) {
        Err(VfsError::NotFound(_)) => true,
        // (A host folder's time moves when files go, so a mounted one only counts missing.)
        Ok(m) if m.kind == Kind::Dir && mount.is_none() && m.mtime_ms > synced => {
            !hub.vfs.walk(&dir)?.iter().any(|e| e.kind != Kind::Dir)
        }
        _ => false,
    })
}

type Files = BTreeMap<String, String>;

/// Which of the new folders (name and files) a project whose folder is gone (`base`, its
/// files at the last sync) was renamed to: the one that holds the most of those files
/// unchanged at the same paths, and at least half of them; on a tie, the first by name.
fn renamed_to<'a>(
    base: &Files,
    candidates: impl Iterator<Item = (&'a String, &'a Files)>,
) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for (name, files) in candidates {
        let n = base
            .iter()
            .filter(|(p, h)| files.get(*p) == Some(h))
            .count();
        let better = best.is_none_or(|(b, first)| n > b || (n == b && name < first));
        if n > 0 && n * 2 >= base.len() && better {
            best = Some((n, name));
        }
    }
    best.map(|(_, name)| name.clone())
}

/// The server's project `id`: from its list, else asked for by id (a list may be partial:
/// one found is added to it); None when the server says it is gone.
fn server_project(
    api: &Api,
    remote: &mut Vec<wire::Project>,
    id: ProjectId,
) -> Result<Option<wire::Project>> {
    if let Some(p) = remote.iter().find(|p| p.id == id) {
        return Ok(Some(p.clone()));
    }
    let found = api.get_if_found::<wire::Data<wire::Project>>(&format!("/api/projects/{id}"))?;
    if let Some(d) = &found {
        remote.push(d.data.clone());
    }
    Ok(found.map(|d| d.data))
}

fn set_name(hub: &Hub, row: i64, name: &str) -> Result<()> {
    hub.store.conn().execute(
        "UPDATE sync_projects SET name = ?1 WHERE id = ?2",
        rusqlite::params![name, row],
    )?;
    Ok(())
}

fn forget(hub: &Hub, row: i64) -> Result<()> {
    hub.store
        .conn()
        .execute("DELETE FROM sync_projects WHERE id = ?1", [row])?;
    Ok(())
}

/// Forgets what both sides had of the project in `row`, so that its next sync fetches it
/// whole, as on a new machine.
fn fetch_again(hub: &Hub, row: i64) -> Result<()> {
    hub.store
        .conn()
        .execute("DELETE FROM sync_files WHERE project = ?1", [row])?;
    Ok(())
}

/// What the server said to a deletion.
enum Deleted {
    Yes,
    /// Changed since the revision (409), or a server too old to check (no such route).
    Kept(String),
}

fn delete_there(api: &Api, id: ProjectId, revision: Revision) -> Result<Deleted> {
    let answer = api.send::<_, wire::Message>(
        "POST",
        &format!("/api/projects/{id}/delete"),
        &wire::ProjectDeleteRequest { revision },
    );
    match answer {
        Ok(_) => Ok(Deleted::Yes),
        Err(e) => match e.downcast_ref::<HttpError>() {
            Some(h) if h.status == 409 => Ok(Deleted::Kept(
                "but it changed on the server since the last sync (on another machine)".into(),
            )),
            // The project is gone already.
            Some(h) if h.status == 404 && h.message.contains("Project") => Ok(Deleted::Yes),
            Some(h) if h.status == 404 => Ok(Deleted::Kept(format!(
                "but the server is too old to delete a project only if it is unchanged; \
                 delete it there too (DELETE /api/projects/{id})"
            ))),
            _ => Err(e),
        },
    }
}

/// Whether every file of project `name` here is as both sides last had it (`base`): no file
/// is new or changed, whatever its name or size.
fn as_synced(hub: &Hub, name: &str, base: &Files) -> Result<bool> {
    let dir = project_dir(name)?;
    for e in hub.vfs.walk(&dir)? {
        if e.kind == Kind::Dir {
            continue;
        }
        let rel = e.path.strip_prefix(&dir).map(|n| n.join("/"));
        let now = hub
            .vfs
            .content_hash(&e.path)
            .ok()
            .map(|h| h.to_hex().to_string());
        if e.kind != Kind::File || now.is_none() || rel.and_then(|r| base.get(&r).cloned()) != now {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Removes the files of project `name` here that are as both sides last had them, then the
/// folders left empty. Returns the paths left (changed while the sync ran).
fn remove_here(hub: &Hub, name: &str, base: &BTreeMap<String, String>) -> Result<Vec<String>> {
    let dir = project_dir(name)?;
    let vfs = &hub.vfs;
    let mut left = Vec::new();
    for e in vfs.walk(&dir)? {
        if e.kind == Kind::Dir {
            continue;
        }
        let rel = e.path.strip_prefix(&dir).map(|n| n.join("/"));
        let rel = rel.unwrap_or_default();
        let now = vfs
            .content_hash(&e.path)
            .ok()
            .map(|h| h.to_hex().to_string());
        if e.kind == Kind::File && now.is_some() && base.get(&rel) == now.as_ref() {
            vfs.remove(&e.path, false)
                .with_context(|| format!("cannot remove {}", e.path))?;
        } else {
            left.push(rel);
        }
    }
    // Folders deepest first; one that is not empty stays.
    let mut dirs: Vec<VPath> = vfs
        .walk(&dir)?
        .into_iter()
        .filter(|e| e.kind == Kind::Dir)
        .map(|e| e.path)
        .collect();
    dirs.sort_by_key(|p| std::cmp::Reverse(p.names().len()));
    for d in dirs {
        if vfs.read_dir(&d).is_ok_and(|c| c.is_empty()) && vfs.mount_of(&d).is_none() {
            vfs.remove(&d, false)
                .with_context(|| format!("cannot remove {d}"))?;
        }
    }
    // The folder itself, when nothing is left in it: one holding a mount point stays, with
    // the mount (removing it would fail, and with it every later sync).
    if left.is_empty()
        && vfs.mount_of(&dir).is_none()
        && vfs.read_dir(&dir).is_ok_and(|c| c.is_empty())
    {
        vfs.remove(&dir, false)
            .with_context(|| format!("cannot remove {dir}"))?;
    }
    Ok(left)
}

/// The whole-project part of a sync: `projects` (the names to sync) and `remote` (the
/// server's projects) as [`super::projects`] found them, changed to what is left to sync
/// after deletions and renames here and on the server. With `names` given, only those
/// projects are deleted, and only those folders are taken for renamed projects. With
/// `dry_run`, nothing is changed, and the events say what would happen.
pub fn settle(
    hub: &Hub,
    acct: &Account,
    api: &Api,
    names: &[String],
    projects: &mut Vec<String>,
    remote: &mut Vec<wire::Project>,
    dry_run: bool,
) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    let root = VPath::parse_absolute(PROJECTS).expect("a valid path");
    // With no ~/Projects at all (a mount that is away, say), nothing is taken as deleted.
    if !hub.vfs.is_dir(&root) {
        return Ok(events);
    }
    let asked = |n: &str| names.is_empty() || names.iter().any(|x| x == n);
    let would = |done: &str, todo: &str| {
        if dry_run {
            todo.to_string()
        } else {
            done.to_string()
        }
    };
    let mut event = |project: &str, what: String, warning: bool| {
        events.push(Event {
            project: project.to_string(),
            what,
            warning,
        })
    };
    // ~/Projects made again since a project's last sync (deleted whole, and made again by
    // the next session for its start folder): that project's folder went with it, which is
    // no wish to delete it; it is fetched again. (Only in the stored tree: a host folder's
    // time moves whenever an entry in it comes or goes.)
    let root_made = match hub.vfs.stat(&root) {
        Ok(m) if hub.vfs.mount_of(&root).is_none() => m.mtime_ms,
        _ => i64::MIN,
    };
    let all = known(hub, acct)?;
    let known_names: BTreeSet<String> = all.iter().map(|k| k.name.clone()).collect();
    let mut here: BTreeSet<String> = BTreeSet::new();
    for e in hub.vfs.read_dir(&root)? {
        if e.meta.kind == Kind::Dir && crate::protocol::project_name_problem(&e.name).is_none() {
            here.insert(e.name);
        }
    }
    // New folders here that a renamed project may have become (not those that will pair
    // with a server project of their name).
    let mut fresh: Vec<String> = here
        .iter()
        .filter(|n| !known_names.contains(*n) && asked(n) && !remote.iter().any(|p| p.name == **n))
        .cloned()
        .collect();
    let mut fresh_files: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut taken: BTreeSet<String> = here.union(&known_names).cloned().collect();
    for k in &all {
        let is_gone = gone(hub, &k.name, k.synced)?;
        if here.contains(&k.name) && !is_gone {
            if !asked(&k.name) {
                continue;
            }
            match server_project(api, remote, k.remote)? {
                // Renamed on the server to a name that cannot be a folder here (which no
                // valyxo server gives): it keeps its name here, and every other project
                // still syncs.
                Some(p)
                    if p.name != k.name
                        && crate::protocol::project_name_problem(&p.name).is_some() =>
                {
                    let why = crate::protocol::project_name_problem(&p.name).unwrap_or_default();
                    event(
                        &k.name,
                        format!(
                            "renamed to {} on the server, which cannot be a folder here ({why}): \
                             it keeps its name here",
                            crate::text::escape(&p.name)
                        ),
                        true,
                    );
                }
                // Renamed on the server: renamed here too, unless the new name is taken.
                Some(p) if p.name != k.name => {
                    if taken.contains(&p.name) {
                        event(
                            &k.name,
                            format!(
                                "renamed to {} on the server, but ~/Projects/{} is already \
                                 here: it keeps its name here",
                                crate::text::escape(&p.name),
                                crate::text::escape(&p.name)
                            ),
                            true,
                        );
                        continue;
                    }
                    if !dry_run {
                        let (from, to) = (project_dir(&k.name)?, project_dir(&p.name)?);
                        if let Err(e) = hub.vfs.rename(&from, &to) {
                            // A mount point, say: it stays paired under the name it has.
                            event(
                                &k.name,
                                format!(
                                    "renamed to {} on the server, but it cannot be renamed \
                                     here ({e}): it keeps its name here",
                                    crate::text::escape(&p.name)
                                ),
                                true,
                            );
                            projects.retain(|n| *n != p.name);
                            continue;
                        }
                        set_name(hub, k.row, &p.name)?;
                    }
                    taken.insert(p.name.clone());
                    if dry_run {
                        // Planned under the name it has here until it is renamed.
                        projects.retain(|n| *n != p.name);
                    } else {
                        // Another project of the old name there (made on another machine
                        // meanwhile) is fetched in its place.
                        if !remote.iter().any(|r| r.name == k.name && r.id != k.remote) {
                            projects.retain(|n| *n != k.name);
                        }
                        if !projects.contains(&p.name) {
                            projects.push(p.name.clone());
                        }
                    }
                    event(
                        &k.name,
                        format!(
                            "renamed to {} on the server; {} here",
                            crate::text::escape(&p.name),
                            would("renamed", "to rename")
                        ),
                        false,
                    );
                }
                Some(_) => {}
                None => {
                    let base = base_files(hub, k.row)?;
                    if !as_synced(hub, &k.name, &base)? {
                        // Sync uploads it again as a new project, and says so.
                        continue;
                    }
                    let left = if dry_run {
                        Vec::new()
                    } else {
                        remove_here(hub, &k.name, &base)?
                    };
                    if left.is_empty() {
                        if !dry_run {
                            forget(hub, k.row)?;
                        }
                        // Another project of that name there (this one uploaded again by
                        // a machine that had changed it) is fetched in its place.
                        if !remote.iter().any(|p| p.name == k.name) {
                            projects.retain(|n| *n != k.name);
                        }
                        event(
                            &k.name,
                            format!(
                                "deleted on the server; {} here",
                                would("deleted", "to delete")
                            ),
                            false,
                        );
                    }
                }
            }
            continue;
        }
        if !is_gone {
            continue;
        }
        let on_server = server_project(api, remote, k.remote)?;
        if root_made > k.synced && on_server.is_some() {
            continue;
        }
        // Gone here: renamed, if a new folder holds at least half of its files unchanged.
        let base = base_files(hub, k.row)?;
        for f in &fresh {
            if !fresh_files.contains_key(f) {
                fresh_files.insert(f.clone(), files_here(hub, f)?);
            }
        }
        // Renamed on the server to the name of a new folder here that holds its files:
        // renamed alike on both sides (here and on another machine, or here with the
        // server's answer lost on the way).
        let alike = match on_server.as_ref().map(|p| &p.name) {
            Some(n) if *n != k.name && here.contains(n) && !known_names.contains(n) => {
                let files = files_here(hub, n)?;
                renamed_to(&base, std::iter::once((n, &files)))
            }
            _ => None,
        };
        if let Some(new) = alike {
            fresh.retain(|f| *f != new);
            if !dry_run {
                set_name(hub, k.row, &new)?;
            }
            taken.insert(new.clone());
            projects.retain(|n| *n != k.name);
            if dry_run {
                projects.retain(|n| *n != new);
            }
            event(
                &k.name,
                format!(
                    "renamed to {} here and on the server",
                    crate::text::escape(&new)
                ),
                false,
            );
            continue;
        }
        let candidates = fresh.iter().map(|f| (f, &fresh_files[f]));
        if let Some(new) = renamed_to(&base, candidates) {
            fresh.retain(|f| *f != new);
            if !dry_run {
                if let Some(p) = &on_server {
                    let _: wire::Done<wire::ProjectUpdated> = api.send(
                        "PUT",
                        &format!("/api/projects/{}", p.id),
                        &wire::ProjectRequest {
                            name: new.clone(),
                            description: None,
                        },
                    )?;
                }
                set_name(hub, k.row, &new)?;
            }
            for p in remote.iter_mut().filter(|p| p.id == k.remote) {
                p.name = new.clone();
            }
            projects.retain(|n| *n != k.name);
            if dry_run {
                // Not planned as a new project: the event says what happens to it.
                projects.retain(|n| *n != new);
            } else if !projects.contains(&new) {
                projects.push(new.clone());
            }
            event(
                &k.name,
                format!(
                    "renamed to {} here; {} on the server",
                    crate::text::escape(&new),
                    would("renamed", "to rename")
                ),
                false,
            );
            continue;
        }
        if !asked(&k.name) {
            continue;
        }
        // Deleted here: deleted on the server too, if nobody changed it there since.
        let Some(p) = on_server else {
            if !dry_run {
                forget(hub, k.row)?;
            }
            projects.retain(|n| *n != k.name);
            event(&k.name, "deleted here and on the server".into(), false);
            continue;
        };
        // Never synced whole here (a first sync cut off before it wrote the folder): not a
        // deletion; it is fetched.
        if k.revision == Revision(0) {
            continue;
        }
        if dry_run {
            projects.retain(|n| *n != k.name);
            event(
                &k.name,
                "deleted here; to delete on the server (unless it changed there since the \
                 last sync)"
                    .into(),
                false,
            );
            continue;
        }
        match delete_there(api, p.id, k.revision)? {
            Deleted::Yes => {
                forget(hub, k.row)?;
                projects.retain(|n| *n != k.name);
                remote.retain(|r| r.id != p.id);
                event(&k.name, "deleted here; deleted on the server".into(), false);
            }
            Deleted::Kept(why) => {
                fetch_again(hub, k.row)?;
                // Fetched under the server's name, if it was renamed there meanwhile.
                if p.name != k.name
                    && !taken.contains(&p.name)
                    && crate::protocol::project_name_problem(&p.name).is_none()
                {
                    set_name(hub, k.row, &p.name)?;
                    taken.insert(p.name.clone());
                    projects.retain(|n| *n != k.name);
                }
                event(
                    &k.name,
                    format!(
                        "deleted here, {why}: it is fetched again; delete it again to delete \
                         it everywhere"
                    ),
                    true,
                );
            }
        }
    }
    projects.sort();
    projects.dedup();
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Files {
        list.iter()
            .map(|(p, h)| (p.to_string(), h.to_string()))
            .collect()
    }

    #[test]
    fn a_project_is_renamed_to_the_new_folder_with_most_of_its_files() {
        let base = files(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
        let pick = |c: &[(&str, Files)]| {
            let named: Vec<(String, Files)> =
                c.iter().map(|(n, f)| (n.to_string(), f.clone())).collect();
            renamed_to(&base, named.iter().map(|(n, f)| (n, f)))
        };
        // The same files, or half of them unchanged with others edited or added.
        assert_eq!(pick(&[("New", base.clone())]).as_deref(), Some("New"));
        let half = files(&[("a", "1"), ("b", "2"), ("c", "x"), ("e", "5")]);
        assert_eq!(pick(&[("Half", half.clone())]).as_deref(), Some("Half"));
        // Fewer than half, or the same content under other paths: a new project.
        assert_eq!(pick(&[("Few", files(&[("a", "1"), ("b", "x")]))]), None);
        assert_eq!(
            pick(&[("Moved", files(&[("x/a", "1"), ("x/b", "2")]))]),
            None
        );
        assert_eq!(pick(&[]), None);
        // The folder holding the most; on a tie, the first by name.
        assert_eq!(
            pick(&[("Half", half.clone()), ("Whole", base.clone())]).as_deref(),
            Some("Whole")
        );
        assert_eq!(
            pick(&[("B", base.clone()), ("A", base.clone())]).as_deref(),
            Some("A")
        );
        // A project that had no files is not found in any folder.
        assert_eq!(
            renamed_to(&Files::new(), std::iter::once((&"X".to_string(), &base))),
            None
        );
    }
}
