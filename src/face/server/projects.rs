//! Projects and scripts (the `/api/projects` and `/api/scripts` routes; `man server`). Another user's project or script is reported as
//! not found, never shown.

use super::db::{Conn, Row};
use super::page::{self, Key, List};
use super::{blocking, created, field, now, ok, ApiError, App, Pending, Reply, Req};
use crate::protocol::types::{
    Data, Done, Execution, ExecutionSummary, Language, Message, Page, Project, ProjectId,
    ProjectUpdated, RunStatus, Script, ScriptCreated, ScriptSummary, ScriptUpdated,
};
use serde_json::{Map, Value};
use std::sync::Arc;

fn project(r: &Row) -> Project {
    Project {
        id: ProjectId(r.int(0)),
        name: r.text(1),
        description: r.text(2),
        created_at: r.text(3),
        updated_at: r.text(4),
    }
}

/// A stored language (any other text, which the server never stores, reads as rhai).
fn language_of(r: &Row, i: usize) -> Language {
    Language::parse(&r.text(i)).unwrap_or(Language::Rhai)
}

fn message(m: &str) -> Result<Reply, ApiError> {
    ok(Message { message: m.into() })
}

const PROJECT_COLS: &str = "id, name, description, created_at, updated_at";

/// The user's project `id`, or 404.
pub fn owned_project(c: &mut dyn Conn, user: i64, id: i64) -> Result<Row, ApiError> {
    c.one(
        &format!("SELECT {PROJECT_COLS}, revision FROM projects WHERE id = ? AND user_id = ?"),
        &[id.into(), user.into()],
    )?
    .ok_or_else(|| ApiError::not_found("Project not found"))
}

/// A project's name and description (None when not given) from a body, validated.
fn project_fields(body: &Map<String, Value>) -> Result<(String, Option<String>), ApiError> {
    let mut details = Vec::new();
    let name = match field(body, "name") {
        Ok(v) => v.unwrap_or("").trim().to_string(),
        Err((_, m)) => {
            details.push(("name", m));
            String::new()
        }
    };
    let description = match field(body, "description") {
        Ok(v) => v.map(|d| d.trim().to_string()),
        Err((_, m)) => {
            details.push(("description", m));
            None
        }
    };
    if details.is_empty() {
        let n = name.chars().count();
        if n == 0 {
            details.push(("name", "name is required".into()));
        } else if n > 100 {
            details.push(("name", "name must be at most 100 characters".into()));
        } else if let Some(p) = crate::protocol::project_name_problem(&name) {
            // The name becomes a folder on every machine that syncs the project.
            details.push(("name", p));
        }
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 500)
        {
            details.push((
                "description",
                "description must be at most 500 characters".into(),
            ));
        }
    }
    if details.is_empty() {
        Ok((name, description))
    } else {
        Err(ApiError::invalid(details))
    }
}

/// A page of each list, as SQL: the first page, and the page after a key. The parameters
/// are the list's owner, the key (text and id, or id) and the page size plus one. Each
/// reads one range of its index (`page.rs` checks the plans).
pub(super) const PROJECTS_PAGE: [&str; 2] = [
    "SELECT id, name, description, created_at, updated_at FROM projects WHERE user_id = ? \
     ORDER BY created_at DESC, id DESC LIMIT ?",
    "SELECT id, name, description, created_at, updated_at FROM projects WHERE user_id = ? \
     AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?",
];
pub(super) const SCRIPTS_PAGE: [&str; 2] = [
    "SELECT id, project_id, name, language, created_at, updated_at FROM scripts \
     WHERE project_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
    "SELECT id, project_id, name, language, created_at, updated_at FROM scripts \
     WHERE project_id = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?",
];
pub(super) const EXECUTIONS_PAGE: [&str; 2] = [
    "SELECT id, status, execution_time_ms, executed_at FROM executions \
     WHERE script_id = ? ORDER BY id DESC LIMIT ?",
    "SELECT id, status, execution_time_ms, executed_at FROM executions \
     WHERE script_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
];

/// A page of the account's projects, newest first (keyset on `projects_page`).
pub fn list(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let user = req.user().id;
    let want = app
        .cursors
        .want(req, List::Projects, user, app.page_sizes(false))?;
    let limit = (want.limit + 1) as i64;
    let mut rows = app.db.read(|c| {
        Ok(match &want.after {
            None => c.query(PROJECTS_PAGE[0], &[user.into(), limit.into()])?,
            Some(k) => c.query(
                PROJECTS_PAGE[1],
                &[user.into(), (&k.text).into(), k.id.into(), limit.into()],
            )?,
        })
    })?;
    let more = page::cut(&mut rows, want.limit);
    let next = page::next(&app.cursors, List::Projects, user, &rows, more, |r| Key {
        text: r.text(3),
        id: r.int(0),
    });
    ok(Page {
        data: rows.iter().map(project).collect::<Vec<_>>(),
        next,
    })
}

pub fn create(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let (name, description) = project_fields(&req.json()?)?;
    let description = description.unwrap_or_default();
    let t = now();
    let r = app.db.write(|c| {
        c.one(
            &format!(
                "INSERT INTO projects (user_id, name, description, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?) RETURNING {PROJECT_COLS}"
            ),
            &[
                req.user().id.into(),
                name.clone().into(),
                description.clone().into(),
                t.clone().into(),
                t.clone().into(),
            ],
        )?
        .ok_or_else(|| ApiError::internal("insert returned no row"))
    })?;
    created(Done {
        message: "Project created".into(),
        data: project(&r),
    })
}

pub fn show(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Project")?;
    let r = app.db.read(|c| owned_project(c, req.user().id, id))?;
    ok(Data { data: project(&r) })
}

pub fn update(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Project")?;
    let (name, description) = project_fields(&req.json()?)?;
    let t = now();
    // A description left out keeps the one there is.
    let description = app.db.write(|c| {
        let old = owned_project(c, req.user().id, id)?;
        let description = description.clone().unwrap_or_else(|| old.text(2));
        c.exec(
            "UPDATE projects SET name = ?, description = ?, updated_at = ? WHERE id = ?",
            &[
                name.clone().into(),
                description.clone().into(),
                t.clone().into(),
                id.into(),
            ],
        )?;
        Ok(description)
    })?;
    ok(Done {
        message: "Project updated".into(),
        data: ProjectUpdated {
            id,
            name,
            description,
            updated_at: t,
        },
    })
}

pub fn delete(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Project")?;
    app.db.write(|c| {
        owned_project(c, req.user().id, id)?;
        c.exec("DELETE FROM projects WHERE id = ?", &[id.into()])?;
        Ok(())
    })?;
    message("Project deleted")
}

/// Deletes a project only if its files are at the revision the client names (what it last
/// synced): a project another machine changed since is not deleted (409).
pub fn delete_unchanged(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Project")?;
    let body = req.json()?;
    let revision = match body.get("revision").and_then(Value::as_i64) {
        Some(r) if r >= 0 => r,
        _ => {
            return Err(ApiError::invalid(vec![(
                "revision",
                "revision must be a whole number, 0 or more".into(),
            )]))
        }
    };
    app.db.write(|c| {
        let now = owned_project(c, req.user().id, id)?.int(5);
        if now != revision {
            return Err(ApiError::conflict(format!(
                "The project changed since revision {revision} (it is at {now}): it is not deleted"
            )));
        }
        c.exec("DELETE FROM projects WHERE id = ?", &[id.into()])?;
        Ok(())
    })?;
    message("Project deleted")
}

/// The user's script `id` (id, project_id, name, content, language, created_at,
/// updated_at), or 404.
/// A save based on a version of a script that is gone: it was saved elsewhere at `saved`.
fn conflict(saved: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        format!(
            "The script was saved elsewhere since (at {saved}): load that version, or save \
             yours over it"
        ),
    )
}

/// The time one millisecond after `at` (an `updated_at`), in the same form.
fn later(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| t.with_timezone(&chrono::Utc) + chrono::Duration::milliseconds(1))
        .unwrap_or_else(|_| chrono::Utc::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn owned_script(c: &mut dyn Conn, user: i64, id: i64) -> Result<Row, ApiError> {
    c.one(
        "SELECT s.id, s.project_id, s.name, s.content, s.language, s.created_at, s.updated_at \
         FROM scripts s JOIN projects p ON p.id = s.project_id WHERE s.id = ? AND p.user_id = ?",
        &[id.into(), user.into()],
    )?
    .ok_or_else(|| ApiError::not_found("Script not found"))
}

/// A script's name, content and language (None when not given) from a body, validated.
fn script_fields(
    body: &Map<String, Value>,
) -> Result<(String, String, Option<Language>), ApiError> {
    let mut details = Vec::new();
    let mut get = |n: &'static str| match field(body, n) {
        Ok(v) => v.map(str::to_string),
        Err((_, m)) => {
            details.push((n, m));
            None
        }
    };
    let name = get("name").unwrap_or_default().trim().to_string();
    let content = get("content");
    let language = get("language");
    if details.is_empty() {
        let n = name.chars().count();
        if n == 0 {
            details.push(("name", "name is required".into()));
        } else if n > 255 {
            details.push(("name", "name must be at most 255 characters".into()));
        }
        if content.is_none() {
            details.push(("content", "content is required".into()));
        }
        if language
            .as_deref()
            .is_some_and(|l| Language::parse(l).is_none())
        {
            let all: Vec<&str> = Language::ALL.iter().map(|l| l.as_str()).collect();
            details.push((
                "language",
                format!("language must be one of {}", all.join(", ")),
            ));
        }
    }
    if details.is_empty() {
        let language = language.as_deref().and_then(Language::parse);
        Ok((name, content.unwrap_or_default(), language))
    } else {
        Err(ApiError::invalid(details))
    }
}

/// A page of a project's scripts, newest first (keyset on `scripts_page`).
pub fn scripts(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Project")?;
    let want = app
        .cursors
        .want(req, List::Scripts, id, app.page_sizes(false))?;
    let limit = (want.limit + 1) as i64;
    let mut rows = app.db.read(|c| {
        owned_project(c, req.user().id, id)?;
        Ok(match &want.after {
            None => c.query(SCRIPTS_PAGE[0], &[id.into(), limit.into()])?,
            Some(k) => c.query(
                SCRIPTS_PAGE[1],
                &[id.into(), (&k.text).into(), k.id.into(), limit.into()],
            )?,
        })
    })?;
    let more = page::cut(&mut rows, want.limit);
    let next = page::next(&app.cursors, List::Scripts, id, &rows, more, |r| Key {
        text: r.text(4),
        id: r.int(0),
    });
    let data: Vec<ScriptSummary> = rows
        .iter()
        .map(|r| ScriptSummary {
            id: r.int(0),
            project_id: r.int(1),
            name: r.text(2),
            language: language_of(r, 3),
            created_at: r.text(4),
            updated_at: r.text(5),
        })
        .collect();
    ok(Page { data, next })
}

pub fn create_script(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let project = req.id("Project")?;
    let (name, content, language) = script_fields(&req.json()?)?;
    let language = language.unwrap_or(Language::Rhai).as_str();
    let t = now();
    let r = app.db.write(|c| {
        owned_project(c, req.user().id, project)?;
        c.one(
            "INSERT INTO scripts (project_id, name, content, language, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id, project_id, name, language, created_at",
            &[
                project.into(),
                name.clone().into(),
                content.clone().into(),
                language.into(),
                t.clone().into(),
                t.clone().into(),
            ],
        )?
        .ok_or_else(|| ApiError::internal("insert returned no row"))
    })?;
    created(Done {
        message: "Script created".into(),
        data: ScriptCreated {
            id: r.int(0),
            project_id: r.int(1),
            name: r.text(2),
            language: language_of(&r, 3),
            created_at: r.text(4),
        },
    })
}

pub fn script(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Script")?;
    let r = app.db.read(|c| owned_script(c, req.user().id, id))?;
    ok(Data {
        data: Script {
            id: r.int(0),
            project_id: r.int(1),
            name: r.text(2),
            content: r.text(3),
            language: language_of(&r, 4),
            created_at: r.text(5),
            updated_at: r.text(6),
        },
    })
}

pub fn update_script(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Script")?;
    let body = req.json()?;
    let (name, content, language) = script_fields(&body)?;
    let base = match body.get("base_updated_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) => Some(b.clone()),
        Some(_) => {
            return Err(ApiError::invalid(vec![(
                "base_updated_at",
                "base_updated_at must be text: the updated_at the content is based on".into(),
            )]))
        }
    };
    let mut t = String::new();
    // A language left out keeps the one there is.
    let language = app.db.write(|c| {
        let mut tries = 0;
        loop {
            let old = owned_script(c, req.user().id, id)?;
            let saved = old.text(6);
            if base.as_ref().is_some_and(|b| *b != saved) {
                return Err(conflict(&saved));
            }
            // updated_at is the script's version: every save makes it later, even two
            // saves within one millisecond.
            t = now();
            if t <= saved {
                t = later(&saved);
            }
            let language = language.unwrap_or_else(|| language_of(&old, 4));
            // Only over the version read, with or without a base: a save that landed in
            // between (another transaction's, on PostgreSQL) leaves this one changing
            // nothing, and it reads that save's version again and goes after it (or, with
            // a base, is a conflict). Two saves never share a version, nor go back in time.
            let changed = c.exec(
                "UPDATE scripts SET name = ?, content = ?, language = ?, updated_at = ? \
                 WHERE id = ? AND updated_at = ?",
                &[
                    name.clone().into(),
                    content.clone().into(),
                    language.as_str().into(),
                    t.clone().into(),
                    id.into(),
                    saved.as_str().into(),
                ],
            )?;
            if changed > 0 {
                return Ok(language);
            }
            tries += 1;
            if tries >= 50 {
                return Err(conflict(&saved));
            }
        }
    })?;
    ok(Done {
        message: "Script updated".into(),
        data: ScriptUpdated {
            id,
            name,
            language,
            updated_at: t,
        },
    })
}

pub fn delete_script(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Script")?;
    app.db.write(|c| {
        owned_script(c, req.user().id, id)?;
        c.exec("DELETE FROM scripts WHERE id = ?", &[id.into()])?;
        Ok(())
    })?;
    message("Script deleted")
}

/// Runs a script on the script pool (answering 429 when the account or the server already
/// has its most executions under way) and records the run.
pub fn execute(app: Arc<App>, req: Req) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async move {
        let id = req.id("Script")?;
        let user = req.user().id;
        let retry = app.scripts.limits.time.as_secs() + 1;
        let slot = app
            .scripts
            .admit(user)
            .map_err(|b| super::busy("script executions", b, retry))?;
        let script = blocking(&app, move |a| a.db.read(|c| owned_script(c, user, id))).await?;
        let run = app.scripts.run(slot, script.text(4), script.text(3)).await;
        let keep = app.cfg.execution_history.max(1) as i64;
        let (status, output, error, ms) = (run.status, run.output, run.error, run.ms);
        let (o, e) = (output.clone(), error.clone());
        let exec_id = blocking(&app, move |a| {
            a.db.write(|c| {
                // The script may have been deleted while it ran; then there is nothing to record.
                owned_script(c, user, id)?;
                let exec_id = c
                    .one(
                        "INSERT INTO executions (script_id, status, output, error, \
                         execution_time_ms, executed_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                        &[
                            id.into(),
                            status.as_str().into(),
                            o.clone().into(),
                            e.clone().into(),
                            ms.into(),
                            now().into(),
                        ],
                    )?
                    .map_or(0, |r| r.int(0));
                // A bounded history per script; the counts in stats outlive it.
                c.exec(
                    "DELETE FROM executions WHERE script_id = ? AND id < (SELECT id FROM \
                     executions WHERE script_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    &[id.into(), id.into(), (keep - 1).into()],
                )?;
                c.exec(
                    "UPDATE scripts SET runs = runs + 1, run_ms = run_ms + ? WHERE id = ?",
                    &[ms.into(), id.into()],
                )?;
                Ok(exec_id)
            })
        })
        .await?;
        ok(Data {
            data: Execution {
                id: exec_id,
                status,
                output,
                error,
                execution_time_ms: ms,
            },
        })
    })
}

/// A page of a script's executions, newest first (keyset on `executions_page`).
pub fn executions(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let id = req.id("Script")?;
    let want = app
        .cursors
        .want(req, List::Executions, id, app.page_sizes(false))?;
    let limit = (want.limit + 1) as i64;
    let mut rows = app.db.read(|c| {
        owned_script(c, req.user().id, id)?;
        Ok(match &want.after {
            None => c.query(EXECUTIONS_PAGE[0], &[id.into(), limit.into()])?,
            Some(k) => c.query(EXECUTIONS_PAGE[1], &[id.into(), k.id.into(), limit.into()])?,
        })
    })?;
    let more = page::cut(&mut rows, want.limit);
    let next = page::next(&app.cursors, List::Executions, id, &rows, more, |r| Key {
        text: String::new(),
        id: r.int(0),
    });
    let data: Vec<ExecutionSummary> = rows
        .iter()
        .map(|r| ExecutionSummary {
            id: r.int(0),
            status: RunStatus::parse(&r.text(1)),
            execution_time_ms: r.int(2),
            executed_at: r.text(3),
        })
        .collect();
    ok(Page { data, next })
}
