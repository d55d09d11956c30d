//! A folder of a project, or the whole project, downloaded as one `.zip` (server):
//! `GET /api/projects/{id}/files/archive?path=DIR`, for the web pages' "Download" of a folder
//! (`man server`).
//!
//! The archive is written as it is sent, never whole in memory or on disk. The list of files
//! is read once, in one transaction, so the archive is the folder as it was at that moment
//! even while a sync changes it (their content stays readable: content no file names is only
//! collected after the grace period). Then a thread of the blocking pool reads each file's
//! content a chunk at a time, as downloads do, compresses it into the zip writer, and hands
//! the bytes to the socket through a channel of a few pieces: when the client is slow the
//! writer waits, when the client goes away it stops. What stays in memory is a chunk, a few
//! pieces and the archive's directory (a name and a few numbers per file), which is why an
//! archive holds at most [`MAX_FILES`] files. The writing thread is one of the blocking
//! pool's until the client has taken the last byte, so only a few archives are written at
//! once (`App::archives`). A failure after the first byte (the database gone) cuts the
//! answer off without its last chunk, which every client reports as a failed download: an
//! archive is whole or visibly broken, never silently short.

use super::projects::owned_project;
use super::{blocking, ApiError, App, Pending, Reply, Req};
use crate::protocol::valid_path;
use axum::body::{Body, Bytes};
use std::io::Write;
use std::sync::Arc;
use zip::write::SimpleFileOptions;

/// The most files one archive holds (its directory is kept in memory until the end).
pub const MAX_FILES: usize = 100_000;

/// Bytes handed to the socket at a time.
const PIECE: usize = 256 * 1024;

/// Pieces written ahead of the socket.
const AHEAD: usize = 4;

/// The folder asked for: `None` for the whole project.
fn folder(req: &Req) -> Result<Option<String>, ApiError> {
    let mut path = None;
    for (k, v) in req.query_text("path")? {
        if k == "path" {
            path = Some(v);
        }
    }
    match path.as_deref().map(|p| p.trim_end_matches('/')) {
        None | Some("") => Ok(None),
        Some(p) if valid_path(p) => Ok(Some(p.to_string())),
        Some(_) => Err(ApiError::invalid(vec![(
            "path",
            "path must be a folder's relative path of names separated by '/', without '.', \
             '..' or empty names"
                .into(),
        )])),
    }
}

/// One file of the archive: its name there, and where its content is.
struct Entry {
    name: String,
    size: u64,
    /// The content's chunks, or `None` for content stored whole (before chunking).
    content: Option<i64>,
    hash: String,
}

/// The files under `dir` (all of them when `None`) as the archive names them: relative to
/// the folder's parent, so the archive of `src/app` unpacks into `app/`.
fn entries(app: &App, user: i64, project: i64, dir: Option<&str>) -> Result<Vec<Entry>, ApiError> {
    let path = app.db.bytewise("f.path");
    let (range, mut params) = match dir {
        None => (String::new(), vec![user.into(), project.into()]),
        Some(d) => (
            format!(" AND {path} > ? AND {path} < ?"),
            vec![
                user.into(),
                project.into(),
                format!("{d}/").into(),
                format!("{d}0").into(),
            ],
        ),
    };
    params.push(((MAX_FILES + 1) as i64).into());
    let rows = app.db.read(|c| {
        owned_project(c, user, project)?;
        Ok(c.query(
            &format!(
                "SELECT f.path, b.size, b.content_id, b.hash FROM files f \
                 JOIN blobs b ON b.user_id = ? AND b.hash = f.hash \
                 WHERE f.project_id = ? AND f.hash IS NOT NULL{range} ORDER BY {path} LIMIT ?"
            ),
            &params,
        )?)
    })?;
    if rows.len() > MAX_FILES {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "more than {MAX_FILES} files to put in one archive: download its folders one \
                 by one"
            ),
        ));
    }
    let strip = dir.map_or(0, |d| d.rfind('/').map_or(0, |i| i + 1));
    Ok(rows
        .iter()
        .map(|r| Entry {
            name: r.text(0)[strip..].to_string(),
            size: r.int(1).max(0) as u64,
            content: match r.0.get(2) {
                Some(super::db::Val::Int(id)) => Some(*id),
                _ => None,
            },
            hash: r.text(3),
        })
        .collect())
}

/// `GET /api/projects/{id}/files/archive?path=DIR`: see the module.
pub fn get(app: Arc<App>, req: Req) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async move {
        let project = req.id("Project")?;
        let dir = folder(&req)?;
        let user = req.user().id;
        // Held until the archive is sent or dropped, as a download's is; and a place among
        // the archives, whose writer holds a thread of the blocking pool meanwhile (that pool
        // runs every request's database work: archives may not take it all).
        let slot = app
            .downloads
            .take(user)
            .map_err(|b| super::busy("downloads", b, 1))?;
        let place = app
            .archives
            .take(user)
            .map_err(|b| super::busy("archives", b, 5))?;
        let at = dir.clone();
        let files = blocking(&app, move |a| entries(a, user, project, at.as_deref())).await?;
        if files.is_empty() && dir.is_some() {
            return Err(ApiError::not_found("No files in that folder"));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(AHEAD);
        let writer = app.clone();
        tokio::task::spawn_blocking(move || {
            let _held = (slot, place);
            let out = Pipe {
                tx: tx.clone(),
                buf: Vec::with_capacity(PIECE),
            };
            let gone = || tx.is_closed();
            if let Err(e) = write_zip(&writer, user, files, out, &gone) {
                // The client sees the answer cut off; the log says why (unless it left).
                if !tx.is_closed() {
                    super::log::event(serde_json::json!({"level": "error",
                        "msg": format!("archive of project {project}: {e}")}));
                    let _ = tx.blocking_send(Err(std::io::Error::other(e)));
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|piece| (piece, rx))
        });
        Ok(Reply::Zip(Body::from_stream(stream)))
    })
}

/// Writes the archive of `files` into `out`, reading each file's content a chunk at a time;
/// stops before the next chunk once `gone` says the client went away (content that
/// compresses well may otherwise be read for long before a piece is full and fails to go).
fn write_zip(
    app: &App,
    user: i64,
    files: Vec<Entry>,
    out: Pipe,
    gone: &dyn Fn() -> bool,
) -> Result<(), String> {
    let now = chrono::Utc::now().naive_utc();
    let stamp = {
        use chrono::{Datelike, Timelike};
        zip::DateTime::from_date_and_time(
            now.year().clamp(1980, 2107) as u16,
            now.month() as u8,
            now.day() as u8,
            now.hour() as u8,
            now.minute() as u8,
            now.second() as u8,
        )
        .unwrap_or_default()
    };
    let mut zip = zip::ZipWriter::new_stream(out);
    for f in files {
        if gone() {
            return Err("the client went away".into());
        }
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1))
            .last_modified_time(stamp)
            .unix_permissions(0o644)
            .large_file(f.size >= u32::MAX as u64);
        zip.start_file(&f.name, options)
            .map_err(|e| format!("{}: {e}", f.name))?;
        match f.content {
            Some(content) => {
                let mut left = f.size;
                let mut seq = 0i64;
                while left > 0 {
                    if gone() {
                        return Err("the client went away".into());
                    }
                    let piece = super::blobs::chunk(&app.db, content, seq)
                        .map_err(|e| format!("{}: {}", f.name, e.message))?;
                    if piece.is_empty() || piece.len() as u64 > left {
                        return Err(format!("{}: chunk {seq} of its content is missing", f.name));
                    }
                    left -= piece.len() as u64;
                    seq += 1;
                    zip.write_all(&piece)
                        .map_err(|e| format!("{}: {e}", f.name))?;
                }
            }
            None => {
                let data = super::blobs::whole(&app.db, user, &f.hash)
                    .map_err(|e| format!("{}: {}", f.name, e.message))?;
                zip.write_all(&data)
                    .map_err(|e| format!("{}: {e}", f.name))?;
            }
        }
    }
    let mut out = zip.finish().map_err(|e| e.to_string())?.into_inner();
    out.flush().map_err(|e| e.to_string())
}

/// The writing end of the answer: bytes gathered into pieces of [`PIECE`], each handed to
/// the socket's side, waiting while [`AHEAD`] pieces are not taken yet.
struct Pipe {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}
