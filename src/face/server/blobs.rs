//! File content on the server (server): uploads and downloads streamed in chunks between
//! the socket and the database, and the collector of content no file names (`man server`).
//!
//! **Storage.** Content is kept as rows of a chunk table, `content_chunks (content_id, seq,
//! data)`, of [`CHUNK`] bytes each (the last one shorter), under a `contents` row; a `blobs`
//! row (the account's hash, its size, when it was last touched) names the content it
//! publishes. A chunk table was chosen over SQLite's incremental blob I/O and over a blob
//! directory because it is the same SQL on SQLite and PostgreSQL (the rest of the server's
//! storage is one dialect over both, `db`), it needs no file system shared between several
//! server processes, it is backed up with the database, and a row of 1 MiB is small enough
//! for either backend to write and read in one short transaction: no transaction, lock or
//! buffer ever spans a whole file.
//!
//! **Uploads** (`PUT /api/blobs/{hash}`). The body is read frame by frame into a buffer of
//! one chunk; each full chunk is written (and hashed, BLAKE3, on the fly) on the blocking
//! pool while the next is read, so at most two chunks of an upload are in memory. The
//! chunks go under a pending `contents` row that no `blobs` row names, so nothing is visible
//! until the whole body has arrived and hashes to the hash in the URL: then one transaction
//! publishes it (the `blobs` row and the account's storage total, checked against its
//! quota). A mismatch is refused with 400; a body larger than `--max-file-size`, over the
//! quota, too slow, or cut off (the client went away) is refused or dropped; in every such
//! case the pending chunks are deleted at once. A save by path (whose hash is learned at the
//! end) that goes over the quota is only hashed from there on: the account may hold that
//! content already (the same text saved again), and then it is taken without storing more. A server that dies mid-upload leaves a
//! pending row that nothing names: the collector deletes it once it has been silent for
//! [`ABANDONED`] (a live upload writes a chunk at least every minute or so, the body
//! timeouts see to that).
//!
//! **Downloads** (`GET /api/blobs/{hash}`) send the chunks in order, each read in its own
//! short transaction on the blocking pool when the socket wants more, with the size as
//! Content-Length, so a client can tell a cut-off download from a whole one.
//!
//! **Collection** ([`collect`], on a schedule and by `valyxo server gc`) deletes content
//! that no file names and that nobody touched for the grace period (`--upload-expiry`):
//! an upload touches its content, so does `POST /api/blobs/missing` for content the server
//! already has, and so does a commit, under the row's lock, in the transaction that names
//! it. Deleting re-checks the touch in its own statement, so a sync that uploads or asks
//! at that moment keeps its content, and a commit naming content that did get collected
//! fails with 'missing blob', to upload again.

use super::db::unix_now;
use super::{blocking, ApiError, App, Pending, Reply, Req};
use crate::protocol::types::{BlobStored, ContentHash, Done};
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per stored chunk.
pub const CHUNK: usize = 1 << 20;
/// A pending upload that wrote nothing for this long is abandoned (its server stopped).
pub const ABANDONED: Duration = Duration::from_secs(3600);
/// Chunks deleted in one transaction, so that deleting a large file does not hold the
/// database for long.
const DELETE_BATCH: i64 = 32;

fn blob_hash(req: &Req) -> Result<ContentHash, ApiError> {
    match req.param.as_deref().and_then(ContentHash::parse) {
        Some(h) => Ok(h),
        _ => Err(ApiError::bad(
            "A blob hash is 64 lower-case hex digits (BLAKE3)",
        )),
    }
}

/// The error of an upload over the account's storage quota.
fn over_quota(quota: u64, used: i64) -> ApiError {
    ApiError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        format!(
            "The account's storage is full: {} of its {} are used",
            crate::budget::human(used.max(0) as usize),
            crate::budget::human(quota as usize)
        ),
    )
    .with_quota(quota)
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "The file is larger than the server accepts ({}; --max-file-size)",
            crate::budget::human(limit.min(usize::MAX as u64) as usize)
        ),
    )
    .with_limit(limit)
}

fn too_slow() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "The request body arrived too slowly",
    )
}

/// An upload's body, not yet read.
pub struct Incoming {
    pub body: Body,
    /// The Content-Length the client declared.
    pub declared: Option<u64>,
    /// A body that sends nothing for this long is dropped.
    pub idle: Duration,
}

// ---- storage ----

/// Deletes the chunks of `content` and then its row, a batch of chunks per transaction.
pub(super) fn discard(db: &super::Db, content: i64) -> Result<(), ApiError> {
    let last = db.read(|c| {
        Ok(c.one(
            "SELECT COALESCE(MAX(seq), -1) FROM content_chunks WHERE content_id = ?",
            &[content.into()],
        )?
        .map_or(-1, |r| r.int(0)))
    })?;
    let mut from = 0;
    while from <= last {
        db.write(|c| {
            c.exec(
                "DELETE FROM content_chunks WHERE content_id = ? AND seq >= ? AND seq < ?",
                &[content.into(), from.into(), (from + DELETE_BATCH).into()],
            )?;
            Ok(())
        })?;
        from += DELETE_BATCH;
    }
    db.write(|c| {
        c.exec("DELETE FROM contents WHERE id = ?", &[content.into()])?;
        Ok(())
    })
}

/// An upload being written: its pending content, and the hash and size so far.
struct Writer {
    app: Arc<App>,
    user: i64,
    /// The pending content; None when the account already holds this content (the body is
    /// then only hashed, to check it, and not stored again), or while `small` is held.
    content: Option<i64>,
    /// A body of at most one chunk (its declared length): held here and stored, with its
    /// content row, in the one transaction that publishes it, instead of three.
    small: Option<Vec<u8>>,
    hasher: Box<blake3::Hasher>,
    size: u64,
    seq: i64,
    /// The account's stored bytes when the upload began, and its quota (0: none).
    used: i64,
    quota: u64,
    /// Whether the hash was given (a blob upload) or is learned at the end (a save by path).
    hashless: bool,
    /// A save by path that went over the quota: the rest is only hashed, and the upload is
    /// refused at the end unless the account turns out to hold that content already.
    over: bool,
}

impl Writer {
    /// Starts an upload of `declared` bytes (when the client said) for `user`, of content
    /// with `hash` (None: learned when it has all arrived).
    fn start(
        app: Arc<App>,
        user: i64,
        hash: Option<&ContentHash>,
        declared: Option<u64>,
    ) -> Result<Writer, ApiError> {
        let quota = app.cfg.quota;
        let (exists, used) = app.db.read(|c| {
            let exists = match hash {
                Some(hash) => c
                    .one(
                        "SELECT 1 FROM blobs WHERE user_id = ? AND hash = ?",
                        &[user.into(), hash.as_str().into()],
                    )?
                    .is_some(),
                None => false,
            };
            let used = c
                .one(
                    "SELECT storage_bytes FROM users WHERE id = ?",
                    &[user.into()],
                )?
                .map_or(0, |r| r.int(0));
            Ok((exists, used))
        })?;
        // Over the quota by its declared length: refused at once when the hash is known
        // (the account does not hold it); without a hash, the content may turn out to be
        // the account's already, so its body is hashed and the verdict given at the end.
        let over = !exists
            && quota > 0
            && declared.is_some_and(|n| (used.max(0) as u64).saturating_add(n) > quota);
        if over && hash.is_some() {
            return Err(over_quota(quota, used));
        }
        let small = !exists && !over && declared.is_some_and(|n| n <= CHUNK as u64);
        let content = if exists || small || over {
            None
        } else {
            let now = unix_now();
            Some(app.db.write(|c| {
                Ok(c.one(
                    "INSERT INTO contents (user_id, size, written_at) VALUES (?, 0, ?) \
                     RETURNING id",
                    &[user.into(), now.into()],
                )?
                .map_or(0, |r| r.int(0)))
            })?)
        };
        Ok(Writer {
            app,
            user,
            content,
            small: small.then(Vec::new),
            hasher: Box::new(blake3::Hasher::new()),
            size: 0,
            seq: 0,
            used,
            quota,
            hashless: hash.is_none(),
            over,
        })
    }

    /// Hashes and stores one chunk.
    fn write(mut self, piece: Bytes) -> Result<Writer, ApiError> {
        self.hasher.update(&piece);
        self.size += piece.len() as u64;
        if let Some(held) = &mut self.small {
            // A body longer than it declared is cut by the reader; this is a bound too.
            if held.len() + piece.len() > CHUNK {
                return Err(ApiError::bad("The request body is longer than it declared"));
            }
            held.extend_from_slice(&piece);
            return Ok(self);
        }
        let Some(content) = self.content else {
            return Ok(self);
        };
        if self.quota > 0 && (self.used.max(0) as u64).saturating_add(self.size) > self.quota {
            if !self.hashless {
                return Err(over_quota(self.quota, self.used));
            }
            // Nothing more is stored; what was is given up now (not at the end).
            self.over = true;
            if let Some(content) = self.content.take() {
                discard(&self.app.db, content)?;
            }
            return Ok(self);
        }
        let (seq, len, now) = (self.seq, piece.len() as i64, unix_now());
        self.app.db.write(|c| {
            c.exec(
                "INSERT INTO content_chunks (content_id, seq, data) VALUES (?, ?, ?)",
                &[content.into(), seq.into(), piece.to_vec().into()],
            )?;
            c.exec(
                "UPDATE contents SET size = size + ?, written_at = ? WHERE id = ?",
                &[len.into(), now.into(), content.into()],
            )?;
            Ok(())
        })?;
        self.seq += 1;
        Ok(self)
    }

    /// Checks the hash (when one was expected) and publishes the content; returns its size
    /// and hash.
    fn finish(mut self, expected: Option<&ContentHash>) -> Result<(u64, ContentHash), ApiError> {
        let actual = ContentHash::from(self.hasher.finalize());
        if expected.is_some_and(|e| *e != actual) {
            return Err(ApiError::bad(format!(
                "The content does not match its hash: it hashes to {actual}"
            )));
        }
        let hash = &actual;
        let (user, size, now) = (self.user, self.size as i64, unix_now());
        let quota = self.quota.min(i64::MAX as u64) as i64;
        if self.over {
            // Only hashed: accepted when the account holds this content already (a save of
            // what is stored, near the quota), and touched for the coming commit.
            let held = self.app.db.write(|c| {
                Ok(c.one(
                    "UPDATE blobs SET touched_at = ? WHERE user_id = ? AND hash = ? \
                     RETURNING size",
                    &[now.into(), user.into(), hash.as_str().into()],
                )?
                .is_some())
            })?;
            if !held {
                let used = self.app.db.read(|c| {
                    Ok(c.one(
                        "SELECT storage_bytes FROM users WHERE id = ?",
                        &[user.into()],
                    )?
                    .map_or(0, |r| r.int(0)))
                })?;
                return Err(over_quota(self.quota, used));
            }
            return Ok((self.size, actual));
        }
        if let Some(data) = self.small.take() {
            // The content row, its chunk and the blob in one transaction: nothing is
            // visible, or pending, before it commits.
            self.app.db.write(|c| {
                let content = c
                    .one(
                        "INSERT INTO contents (user_id, size, written_at) VALUES (?, ?, ?)                          RETURNING id",
                        &[user.into(), size.into(), now.into()],
                    )?
                    .map_or(0, |r| r.int(0));
                if !data.is_empty() {
                    c.exec(
                        "INSERT INTO content_chunks (content_id, seq, data) VALUES (?, 0, ?)",
                        &[content.into(), data.clone().into()],
                    )?;
                }
                if !publish(c, user, hash, size, now, content, quota)? {
                    c.exec(
                        "DELETE FROM content_chunks WHERE content_id = ?",
                        &[content.into()],
                    )?;
                    c.exec("DELETE FROM contents WHERE id = ?", &[content.into()])?;
                }
                Ok(())
            })?;
            return Ok((self.size, actual));
        }
        let Some(content) = self.content else {
            // Stored before: only touched, so the collector leaves it to the coming commit.
            self.app.db.write(|c| {
                c.exec(
                    "UPDATE blobs SET touched_at = ? WHERE user_id = ? AND hash = ?",
                    &[now.into(), user.into(), hash.as_str().into()],
                )?;
                Ok(())
            })?;
            return Ok((self.size, actual));
        };
        let chunks = self.seq;
        let published = self.app.db.write(|c| {
            // The pending content must be whole and not given up by the collector (which
            // marks what it deletes with -1); taking its row also orders this against it.
            let alive = c
                .one(
                    "UPDATE contents SET written_at = ? WHERE id = ? AND written_at >= 0 \
                     RETURNING size",
                    &[now.into(), content.into()],
                )?
                .is_some_and(|r| r.int(0) == size);
            let stored = c
                .one(
                    "SELECT count(*) FROM content_chunks WHERE content_id = ?",
                    &[content.into()],
                )?
                .map_or(0, |r| r.int(0));
            if !alive || stored != chunks {
                return Err(ApiError::internal(format!(
                    "the upload of {hash} lost its pending content before it was complete"
                )));
            }
            publish(c, user, hash, size, now, content, quota)
        })?;
        if published {
            // Named now: not to be discarded when this writer is dropped.
            self.content = None;
        }
        Ok((self.size, actual))
    }
}

/// Names `content` as the account's copy of `hash` and charges it to the quota, in the
/// caller's transaction; false when another upload of the same content got there first
/// (that one is only touched).
fn publish(
    c: &mut dyn super::db::Conn,
    user: i64,
    hash: &ContentHash,
    size: i64,
    now: i64,
    content: i64,
    quota: i64,
) -> Result<bool, ApiError> {
    let inserted = c
        .one(
            "INSERT INTO blobs (user_id, hash, size, data, touched_at, content_id) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, hash) DO NOTHING \
             RETURNING size",
            &[
                user.into(),
                hash.as_str().into(),
                size.into(),
                Vec::new().into(),
                now.into(),
                content.into(),
            ],
        )?
        .is_some();
    if !inserted {
        // Another upload of the same content finished first.
        c.exec(
            "UPDATE blobs SET touched_at = ? WHERE user_id = ? AND hash = ?",
            &[now.into(), user.into(), hash.as_str().into()],
        )?;
        return Ok(false);
    }
    // The account's total moves in the same statement that checks it, so two
    // uploads at once cannot both slip under the quota.
    let charged = c
        .one(
            "UPDATE users SET storage_bytes = storage_bytes + ? WHERE id = ? AND \
             (CAST(? AS BIGINT) = 0 OR storage_bytes + ? <= CAST(? AS BIGINT)) \
             RETURNING storage_bytes",
            &[
                size.into(),
                user.into(),
                quota.into(),
                size.into(),
                quota.into(),
            ],
        )?
        .is_some();
    if !charged {
        let used = c
            .one(
                "SELECT storage_bytes FROM users WHERE id = ?",
                &[user.into()],
            )?
            .map_or(0, |r| r.int(0));
        return Err(over_quota(quota as u64, used));
    }
    Ok(true)
}

impl Drop for Writer {
    /// Content that was not published is deleted: a refused, cut-off or mismatched upload
    /// leaves nothing behind. On the blocking pool when dropped inside the runtime.
    fn drop(&mut self) {
        let Some(content) = self.content.take() else {
            return;
        };
        let app = self.app.clone();
        let run = move || {
            if let Err(e) = discard(&app.db, content) {
                super::log::event(json!({"level": "error",
                    "msg": "deleting a pending upload failed (the collector will)",
                    "error": e.message}));
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(run)),
            Err(_) => run(),
        }
    }
}

/// `PUT /api/blobs/{hash}`: see the module.
pub fn put(app: Arc<App>, req: Req, incoming: Incoming) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async move {
        let hash = blob_hash(&req)?;
        let user = req.user().id;
        let (size, _) = store(&app, user, Some(hash.clone()), incoming).await?;
        super::created(Done {
            message: "Blob stored".into(),
            data: BlobStored { hash, size },
        })
    })
}

/// Stores the body of `incoming` as `user`'s content: of `hash`, or of whatever hash it
/// turns out to have (None); its size and hash.
pub(super) async fn store(
    app: &Arc<App>,
    user: i64,
    hash: Option<ContentHash>,
    incoming: Incoming,
) -> Result<(u64, ContentHash), ApiError> {
    let limit = app.cfg.max_file_size;
    if incoming.declared.is_some_and(|n| n > limit) {
        return Err(refuse(incoming, too_large(limit)).await);
    }
    let writer = {
        let (owner, hash) = (app.clone(), hash.clone());
        let declared = incoming.declared;
        blocking(app, move |_| {
            Writer::start(owner, user, hash.as_ref(), declared)
        })
        .await
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => return Err(refuse(incoming, e).await),
    };
    receive(incoming, limit, writer, hash.as_ref()).await
}

/// A body refused before it is read is still read (and thrown away), as nginx's lingering
/// close does: a server that answers and closes while the client is still sending makes the
/// kernel reset the connection, and the client then sees a broken connection instead of the
/// answer (the quota full, the file too large, too many uploads at once). A client cannot
/// learn beforehand that the quota will not take a large file, or that another machine's
/// uploads hold the account's slots, so any declared length is read, for [`LINGER`] at
/// most; what is still coming then is left unread.
pub(super) async fn refuse(incoming: Incoming, e: ApiError) -> ApiError {
    use http_body_util::BodyExt;
    /// The longest a refused body is read to be thrown away.
    const LINGER: Duration = Duration::from_secs(10);
    let Incoming {
        mut body,
        declared,
        idle,
    } = incoming;
    let Some(declared) = declared else {
        return e;
    };
    let drain = async {
        let mut read = 0u64;
        while read < declared {
            match tokio::time::timeout(idle.min(Duration::from_secs(2)), body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
    e
}

/// The writer's work for one chunk, on the blocking pool.
type Job = tokio::task::JoinHandle<Result<Writer, ApiError>>;

async fn settle(job: Job) -> Result<Writer, ApiError> {
    job.await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("storing a chunk failed: {e}"))))
}

/// Reads the body into chunks for `writer`, one chunk written while the next is read, and
/// publishes it once whole. A body that sends nothing for `idle`, or trickles in slower than
/// `MIN_BODY_RATE` after that, is dropped with 408.
async fn receive(
    incoming: Incoming,
    limit: u64,
    writer: Writer,
    hash: Option<&ContentHash>,
) -> Result<(u64, ContentHash), ApiError> {
    use http_body_util::BodyExt;
    let Incoming { mut body, idle, .. } = incoming;
    let start = Instant::now();
    let mut buf = bytes::BytesMut::with_capacity(CHUNK);
    let mut received = 0u64;
    let mut ready = Some(writer);
    let mut job: Option<Job> = None;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(too_slow()),
            Ok(None) => break,
            // The client went away or sent a broken body.
            Ok(Some(Err(_))) => return Err(ApiError::bad("The request body could not be read")),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            received += data.len() as u64;
            if received > limit {
                return Err(too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
        while buf.len() >= CHUNK {
            let piece = buf.split_to(CHUNK).freeze();
            let w = match job.take() {
                Some(j) => settle(j).await?,
                None => ready.take().expect("a writer between chunks"),
            };
            job = Some(tokio::task::spawn_blocking(move || w.write(piece)));
        }
        let elapsed = start.elapsed();
        if elapsed > idle
            && received
                < (elapsed - idle)
                    .as_secs()
                    .saturating_mul(super::MIN_BODY_RATE)
        {
            return Err(too_slow());
        }
    }
    let w = match job.take() {
        Some(j) => settle(j).await?,
        None => ready.take().expect("a writer between chunks"),
    };
    let (piece, hash) = (buf.freeze(), hash.cloned());
    tokio::task::spawn_blocking(move || {
        let w = if piece.is_empty() { w } else { w.write(piece)? };
        w.finish(hash.as_ref())
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::internal(format!("storing a chunk failed: {e}"))))
}

/// `GET /api/blobs/{hash}`: the content, a chunk at a time; see the module.
pub fn get(app: Arc<App>, req: Req) -> Pending<Result<Reply, ApiError>> {
    Box::pin(async move {
        let hash = blob_hash(&req).map_err(|_| ApiError::not_found("Blob not found"))?;
        send(app, req.user().id, hash).await
    })
}

/// `user`'s content of `hash` as an answer, a chunk at a time (404 when there is none).
pub(super) async fn send(app: Arc<App>, user: i64, hash: ContentHash) -> Result<Reply, ApiError> {
    // Held until the body is sent or dropped (see MAX_DOWNLOADS).
    let slot = app
        .downloads
        .take(user)
        .map_err(|b| super::busy("downloads", b, 1))?;
    let found = {
        let hash = hash.clone();
        blocking(&app, move |a| {
            a.db.read(|c| {
                Ok(c.one(
                    "SELECT size, content_id FROM blobs WHERE user_id = ? AND hash = ?",
                    &[user.into(), hash.as_str().into()],
                )?)
            })
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Blob not found"))?
    };
    let size = found.int(0).max(0) as u64;
    let body = match found.0.get(1) {
        Some(super::db::Val::Int(content)) => chunks(app, *content, size, slot),
        // Stored whole before content was chunked (at most the old limit of 32 MiB).
        _ => {
            let data = blocking(&app, move |a| whole(&a.db, user, hash.as_str())).await?;
            let data = Bytes::from(data);
            // One piece, with the slot kept until the body is done.
            let once =
                futures_util::stream::unfold((Some(data), slot), |(data, slot)| async move {
                    data.map(|d| (Ok::<_, std::io::Error>(d), (None, slot)))
                });
            Body::from_stream(once)
        }
    };
    Ok(Reply::Stream { size, body })
}

/// Chunk `seq` of `content` (empty when there is none: collected, or past the end).
pub(super) fn chunk(db: &super::Db, content: i64, seq: i64) -> Result<Vec<u8>, ApiError> {
    Ok(db
        .read(|c| {
            Ok(c.one(
                "SELECT data FROM content_chunks WHERE content_id = ? AND seq = ?",
                &[content.into(), seq.into()],
            )?)
        })?
        .map(|r| r.bytes(0))
        .unwrap_or_default())
}

/// `user`'s content of `hash` stored whole, as it was before content was chunked (at most
/// the old limit of 32 MiB).
pub(super) fn whole(db: &super::Db, user: i64, hash: &str) -> Result<Vec<u8>, ApiError> {
    db.read(|c| {
        Ok(c.one(
            "SELECT data FROM blobs WHERE user_id = ? AND hash = ?",
            &[user.into(), hash.into()],
        )?)
    })?
    .map(|r| r.bytes(0))
    .ok_or_else(|| ApiError::not_found("Blob not found"))
}

/// The chunks of `content` as a body, each read when the socket wants it; `slot` is given
/// back when the body is done or dropped.
fn chunks(app: Arc<App>, content: i64, size: u64, slot: super::slots::Slot) -> Body {
    let state = (app, 0i64, size);
    let stream = futures_util::stream::unfold(state, move |(app, seq, left)| async move {
        if left == 0 {
            return None;
        }
        let piece = match blocking(&app, move |a| chunk(&a.db, content, seq)).await {
            Ok(piece) => piece,
            Err(e) => {
                let e = std::io::Error::other(e.message);
                return Some((Err(e), (app, seq, 0)));
            }
        };
        if piece.is_empty() || piece.len() as u64 > left {
            // Collected or damaged under the download: the answer is cut short, which its
            // Content-Length shows the client.
            let e = std::io::Error::other(format!("chunk {seq} of content {content} is missing"));
            return Some((Err(e), (app, seq, 0)));
        }
        let left = left - piece.len() as u64;
        Some((Ok(Bytes::from(piece)), (app, seq + 1, left)))
    });
    let stream = futures_util::StreamExt::map(stream, move |piece| {
        let _held = &slot;
        piece
    });
    Body::from_stream(stream)
}

// ---- collection ----

/// What [`collect`] freed (or, in a dry run, would free).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freed {
    /// Content no file names, untouched for the grace period.
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Uploads abandoned half-way (their server stopped).
    pub uploads: u64,
    pub upload_bytes: u64,
}

impl std::fmt::Display for Freed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let human = |n: u64| crate::budget::human(n.min(usize::MAX as u64) as usize);
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        write!(
            f,
            "{} ({}) and {} ({})",
            plural(
                self.blobs,
                "unreferenced file content",
                "unreferenced file contents"
            ),
            human(self.blob_bytes),
            plural(self.uploads, "abandoned upload", "abandoned uploads"),
            human(self.upload_bytes)
        )
    }
}

/// Content no file of its owner names.
const UNNAMED: &str = "NOT EXISTS (SELECT 1 FROM files f JOIN projects p ON p.id = f.project_id \
                       WHERE f.hash = b.hash AND p.user_id = b.user_id)";

/// Deletes content that no file names and that nobody touched (uploaded, asked about, or
/// committed) for `expiry`: uploads never committed, and versions replaced or deleted; and
/// pending uploads silent for [`ABANDONED`]. With `dry_run`, only counts them.
pub fn collect(db: &super::Db, expiry: Duration, dry_run: bool) -> Result<Freed, ApiError> {
    let now = unix_now();
    let cutoff = now - expiry.as_secs().min(i64::MAX as u64 / 2) as i64;
    let stale = now - ABANDONED.as_secs() as i64;
    let mut freed = Freed::default();
    if dry_run {
        return db.read(|c| {
            let mut freed = Freed::default();
            let b = c.one(
                &format!(
                    "SELECT count(*), CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b \
                     WHERE b.touched_at < ? AND {UNNAMED}"
                ),
                &[cutoff.into()],
            )?;
            let u = c.one(
                "SELECT count(*), CAST(COALESCE(SUM(c.size), 0) AS BIGINT) FROM contents c \
                 WHERE c.written_at < ? AND NOT EXISTS \
                 (SELECT 1 FROM blobs b WHERE b.content_id = c.id)",
                &[stale.into()],
            )?;
            let pair = |r: Option<super::db::Row>| {
                r.map_or((0, 0), |r| (r.int(0).max(0) as u64, r.int(1).max(0) as u64))
            };
            (freed.blobs, freed.blob_bytes) = pair(b);
            (freed.uploads, freed.upload_bytes) = pair(u);
            Ok(freed)
        });
    }
    // Content no file names, in batches of candidates; each is deleted on its own, with
    // the conditions checked again in the deleting statement (a sync may touch it or a
    // commit name it meanwhile).
    loop {
        let candidates = db.read(|c| {
            Ok(c.query(
                &format!(
                    "SELECT b.user_id, b.hash FROM blobs b WHERE b.touched_at < ? AND \
                     {UNNAMED} LIMIT 500"
                ),
                &[cutoff.into()],
            )?)
        })?;
        let mut deleted = 0;
        for cand in &candidates {
            let (user, hash) = (cand.int(0), cand.text(1));
            let gone = db.write(|c| {
                let Some(r) = c.one(
                    "DELETE FROM blobs WHERE user_id = ? AND hash = ? AND touched_at < ? \
                     AND NOT EXISTS (SELECT 1 FROM files f JOIN projects p \
                     ON p.id = f.project_id WHERE f.hash = ? AND p.user_id = ?) \
                     RETURNING size, content_id",
                    &[
                        user.into(),
                        hash.clone().into(),
                        cutoff.into(),
                        hash.clone().into(),
                        user.into(),
                    ],
                )?
                else {
                    return Ok(None);
                };
                let size = r.int(0);
                c.exec(
                    "UPDATE users SET storage_bytes = storage_bytes - ? WHERE id = ?",
                    &[size.into(), user.into()],
                )?;
                let content = match r.0.get(1) {
                    Some(super::db::Val::Int(id)) => {
                        // Marked, so that a crash before its chunks are gone leaves it to
                        // the next collection as an abandoned upload.
                        c.exec(
                            "UPDATE contents SET written_at = -1 WHERE id = ?",
                            &[(*id).into()],
                        )?;
                        Some(*id)
                    }
                    _ => None,
                };
                Ok(Some((size, content)))
            })?;
            if let Some((size, content)) = gone {
                if let Some(id) = content {
                    discard(db, id)?;
                }
                deleted += 1;
                freed.blobs += 1;
                freed.blob_bytes += size.max(0) as u64;
            }
        }
        if candidates.len() < 500 || deleted == 0 {
            break;
        }
    }
    // Pending uploads whose server stopped half-way: claimed (marked -1, which a publish
    // that races this refuses), then deleted.
    loop {
        let candidates = db.read(|c| {
            Ok(c.query(
                "SELECT c.id FROM contents c WHERE c.written_at < ? AND NOT EXISTS \
                 (SELECT 1 FROM blobs b WHERE b.content_id = c.id) LIMIT 500",
                &[stale.into()],
            )?)
        })?;
        let mut deleted = 0;
        for cand in &candidates {
            let id = cand.int(0);
            let claimed = db.write(|c| {
                Ok(c.one(
                    "UPDATE contents SET written_at = -1 WHERE id = ? AND written_at < ? AND \
                     NOT EXISTS (SELECT 1 FROM blobs b WHERE b.content_id = ?) RETURNING size",
                    &[id.into(), stale.into(), id.into()],
                )?)
            })?;
            if let Some(r) = claimed {
                discard(db, id)?;
                deleted += 1;
                freed.uploads += 1;
                freed.upload_bytes += r.int(0).max(0) as u64;
            }
        }
        if candidates.len() < 500 || deleted == 0 {
            break;
        }
    }
    Ok(freed)
}

/// Runs [`collect`] at start and then every ten minutes, on a blocking thread.
pub async fn sweep_regularly(app: Arc<App>) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        let a = app.clone();
        let expiry = app.cfg.upload_expiry;
        match tokio::task::spawn_blocking(move || collect(&a.db, expiry, false)).await {
            Ok(Ok(f)) if f == Freed::default() => {}
            Ok(Ok(f)) => super::log::event(json!({"level": "info",
                "msg": "unreferenced content collected", "blobs": f.blobs,
                "bytes": f.blob_bytes, "abandoned_uploads": f.uploads,
                "abandoned_bytes": f.upload_bytes})),
            Ok(Err(e)) => super::log::event(
                json!({"level": "error", "msg": "collecting content failed", "error": e.message}),
            ),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::server::db::Conn;

    fn app() -> (tempfile::TempDir, Arc<App>) {
        app_with(0)
    }

    /// A server's state with one account, whose storage `quota` (0: none).
    fn app_with(quota: u64) -> (tempfile::TempDir, Arc<App>) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = super::super::Config {
            database: format!("sqlite:{}", dir.path().join("server.db").display()),
            pool_size: 2,
            secret: Some("s".repeat(32)),
            log: false,
            quota,
            script_admission: super::super::sandbox::Admission {
                workers: 1,
                total: 1,
                per_account: 1,
            },
            ..Default::default()
        };
        let app = App::new(cfg).unwrap();
        app.db
            .write(|c| Ok(super::super::db::testing::add_user(c, "a")?))
            .unwrap();
        (dir, Arc::new(app))
    }

    fn count(app: &App, sql: &str) -> i64 {
        app.db
            .read(|c| Ok(c.one(sql, &[])?.map_or(0, |r| r.int(0))))
            .unwrap()
    }

    /// (contents, chunks, blobs, the account's stored bytes)
    fn rows(app: &App) -> (i64, i64, i64, i64) {
        (
            count(app, "SELECT count(*) FROM contents"),
            count(app, "SELECT count(*) FROM content_chunks"),
            count(app, "SELECT count(*) FROM blobs"),
            count(app, "SELECT storage_bytes FROM users"),
        )
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect()
    }

    /// The stored content of `hash`, its chunks joined, and their sizes.
    fn stored(app: &App, hash: &ContentHash) -> (Vec<u8>, Vec<usize>) {
        app.db
            .read(|c: &mut dyn Conn| {
                let id = c
                    .one(
                        "SELECT content_id FROM blobs WHERE hash = ?",
                        &[hash.as_str().into()],
                    )?
                    .map_or(0, |r| r.int(0));
                let chunks = c.query(
                    "SELECT data FROM content_chunks WHERE content_id = ? ORDER BY seq",
                    &[id.into()],
                )?;
                let mut all = Vec::new();
                let mut sizes = Vec::new();
                for r in chunks {
                    let b = r.bytes(0);
                    sizes.push(b.len());
                    all.extend(b);
                }
                Ok((all, sizes))
            })
            .unwrap()
    }

    fn incoming(frames: Vec<Vec<u8>>) -> Incoming {
        let stream = futures_util::stream::iter(
            frames
                .into_iter()
                .map(|f| Ok::<_, std::io::Error>(Bytes::from(f))),
        );
        Incoming {
            body: Body::from_stream(stream),
            declared: None,
            idle: Duration::from_secs(5),
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_body_in_uneven_frames_is_stored_in_whole_chunks_and_published_once_complete() {
        let (_d, app) = app();
        let content = data(2 * CHUNK + 12_345);
        let hash = ContentHash::of(&content);
        // Frames that do not line up with chunks.
        let frames: Vec<Vec<u8>> = content.chunks(700_001).map(<[u8]>::to_vec).collect();
        let w = Writer::start(app.clone(), 1, Some(&hash), None).unwrap();
        // Pending: a contents row, and no blob anyone can see.
        assert_eq!(rows(&app), (1, 0, 0, 0));
        let size = runtime()
            .block_on(receive(incoming(frames), 1 << 30, w, Some(&hash)))
            .unwrap();
        assert_eq!(size.0, content.len() as u64);
        assert_eq!(rows(&app), (1, 3, 1, content.len() as i64));
        let (back, sizes) = stored(&app, &hash);
        assert_eq!(sizes, [CHUNK, CHUNK, 12_345]);
        assert!(back == content);
        // The same content again is only checked: nothing more is stored or counted.
        let w = Writer::start(app.clone(), 1, Some(&hash), None).unwrap();
        let again = runtime()
            .block_on(receive(
                incoming(vec![content.clone()]),
                1 << 30,
                w,
                Some(&hash),
            ))
            .unwrap();
        assert_eq!(again.0, content.len() as u64);
        assert_eq!(rows(&app), (1, 3, 1, content.len() as i64));
    }

    #[test]
    fn a_small_body_is_stored_whole_in_one_go_and_a_refused_one_leaves_nothing() {
        let (_d, app_) = app_with(1000);
        let app = &app_;
        let small = |content: &[u8], hash: &ContentHash| {
            let w = Writer::start(app.clone(), 1, Some(hash), Some(content.len() as u64))?;
            assert!(w.small.is_some() && w.content.is_none());
            let pieces = if content.is_empty() {
                vec![]
            } else {
                vec![content.to_vec()]
            };
            runtime()
                .block_on(receive(incoming(pieces), 1 << 30, w, Some(hash)))
                .map(|(size, _)| size)
        };
        let a = data(600);
        assert_eq!(small(&a, &ContentHash::of(&a)).unwrap(), 600);
        assert_eq!(rows(app), (1, 1, 1, 600));
        assert_eq!(download(app, ContentHash::of(&a).as_str()).2, a);
        // Not matching its hash, or over the quota: nothing kept, nothing charged.
        let e = small(&data(100), &ContentHash::of(b"other")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let b = data(500);
        let e = small(&b, &ContentHash::of(&b)).unwrap_err();
        assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(rows(app), (1, 1, 1, 600));
        // The same content again (another upload got there first): one copy.
        let w = Writer::start(app.clone(), 1, Some(&ContentHash::of(&a)), Some(600)).unwrap();
        assert!(
            w.small.is_none(),
            "content already held is not stored again"
        );
        // An empty file.
        assert_eq!(small(b"", &ContentHash::of(b"")).unwrap(), 0);
        assert_eq!(rows(app), (2, 1, 2, 600));
    }

    #[test]
    fn a_mismatch_an_overlong_body_or_a_drop_leaves_nothing() {
        let (_d, app) = app();
        let content = data(CHUNK + 10);
        let wrong = ContentHash::of(b"something else");
        let w = Writer::start(app.clone(), 1, Some(&wrong), None).unwrap();
        let e = runtime()
            .block_on(receive(
                incoming(vec![content.clone()]),
                1 << 30,
                w,
                Some(&wrong),
            ))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            format!(
                "The content does not match its hash: it hashes to {}",
                ContentHash::of(&content)
            )
        );
        let hash = ContentHash::of(&content);
        let w = Writer::start(app.clone(), 1, Some(&hash), None).unwrap();
        let e = runtime()
            .block_on(receive(
                incoming(vec![content.clone()]),
                CHUNK as u64,
                w,
                Some(&hash),
            ))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Dropped after a chunk, outside the runtime: deleted there and then.
        let w = Writer::start(app.clone(), 1, Some(&hash), None).unwrap();
        let w = w.write(Bytes::from(content[..CHUNK].to_vec())).unwrap();
        assert_eq!(rows(&app).1, 1);
        drop(w);
        // The runtimes above are gone, and with them their blocking tasks' deletions.
        assert_eq!(rows(&app), (0, 0, 0, 0));
    }

    #[test]
    fn over_the_quota_nothing_is_kept() {
        let (_d, fresh) = app_with(CHUNK as u64);
        let content = data(CHUNK + 1);
        let hash = ContentHash::of(&content);
        let e = Writer::start(fresh.clone(), 1, Some(&hash), Some(content.len() as u64))
            .err()
            .expect("refused before its body");
        assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
        let w = Writer::start(fresh.clone(), 1, Some(&hash), None).unwrap();
        let e = runtime()
            .block_on(receive(incoming(vec![content]), 1 << 30, w, Some(&hash)))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
        assert!(e.message.contains("storage is full"), "{}", e.message);
        assert_eq!(rows(&fresh), (0, 0, 0, 0));
    }

    #[test]
    fn a_save_by_path_over_the_quota_is_taken_when_the_content_is_held_already() {
        let held = data(2 * CHUNK + 5);
        let (_d, app) = app_with(held.len() as u64 + 10);
        let hash = put(&app, &held);
        let before = rows(&app);
        // A save without a hash (the web pages' save by path) of content the account holds:
        // over the quota by its length, declared or not, yet taken, and nothing more kept.
        for declared in [Some(held.len() as u64), None] {
            let w = Writer::start(app.clone(), 1, None, declared).unwrap();
            let mut body = incoming(held.chunks(CHUNK / 2).map(<[u8]>::to_vec).collect());
            body.declared = declared;
            let (size, got) = runtime().block_on(receive(body, 1 << 30, w, None)).unwrap();
            assert_eq!((size, &got), (held.len() as u64, &hash));
            assert_eq!(rows(&app), before);
        }
        // New content over the quota is still refused, and nothing of it is kept.
        let new = data(2 * CHUNK + 6);
        for declared in [Some(new.len() as u64), None] {
            let w = Writer::start(app.clone(), 1, None, declared).unwrap();
            let mut body = incoming(new.chunks(CHUNK / 2).map(<[u8]>::to_vec).collect());
            body.declared = declared;
            let e = runtime()
                .block_on(receive(body, 1 << 30, w, None))
                .unwrap_err();
            assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
            assert_eq!(rows(&app), before);
        }
    }

    /// Stores `content` whole for user 1.
    fn put(app: &Arc<App>, content: &[u8]) -> ContentHash {
        let hash = ContentHash::of(content);
        let mut w = Writer::start(app.clone(), 1, Some(&hash), None).unwrap();
        for piece in content.chunks(CHUNK) {
            w = w.write(Bytes::from(piece.to_vec())).unwrap();
        }
        w.finish(Some(&hash)).unwrap();
        hash
    }

    /// What `GET /api/blobs/{hash}` sends for user 1: its status, Content-Length and body.
    fn download(app: &Arc<App>, hash: &str) -> (StatusCode, Option<u64>, Vec<u8>) {
        use axum::response::IntoResponse;
        use http_body_util::BodyExt;
        let req = Req {
            param: Some(hash.to_string()),
            query: None,
            body: Bytes::new(),
            user: Some(super::super::User {
                id: 1,
                jti: "j".into(),
            }),
        };
        runtime().block_on(async {
            let res = match get(app.clone(), req).await {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            };
            let status = res.status();
            let len = res
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status, len, body.to_vec())
        })
    }

    #[test]
    fn downloads_send_chunked_empty_and_older_whole_content_with_its_length() {
        let (_d, app) = app();
        let content = data(CHUNK * 2 + 1);
        let hash = put(&app, &content);
        assert_eq!(
            download(&app, hash.as_str()),
            (StatusCode::OK, Some(content.len() as u64), content)
        );
        let empty = put(&app, b"");
        assert_eq!(
            download(&app, empty.as_str()),
            (StatusCode::OK, Some(0), Vec::new())
        );
        // Stored whole by a server from before chunks.
        let old = ContentHash::of(b"stored whole");
        app.db
            .write(|c| {
                c.exec(
                    "INSERT INTO blobs (user_id, hash, size, data, touched_at) \
                     VALUES (1, ?, 12, ?, 0)",
                    &[old.as_str().into(), b"stored whole".to_vec().into()],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(
            download(&app, old.as_str()),
            (StatusCode::OK, Some(12), b"stored whole".to_vec())
        );
        let (status, _, _) = download(&app, ContentHash::of(b"never").as_str());
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = download(&app, "not-a-hash");
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_collector_takes_old_unnamed_content_and_abandoned_uploads_only() {
        let (_d, app) = app();
        let old = put(&app, &data(CHUNK + 5));
        let _recent = put(&app, &data(77));
        let named = put(&app, &data(300));
        app.db
            .write(|c| {
                c.exec(
                    "INSERT INTO projects (user_id, name, description, created_at, updated_at) \
                     VALUES (1, 'p', '', 't', 't')",
                    &[],
                )?;
                c.exec(
                    "INSERT INTO files (project_id, path, hash, size, version) \
                     VALUES (1, 'f', ?, 300, 1)",
                    &[named.as_str().into()],
                )?;
                // Old: touched two hours ago.
                c.exec(
                    "UPDATE blobs SET touched_at = touched_at - 7200 WHERE hash IN (?, ?)",
                    &[old.as_str().into(), named.as_str().into()],
                )?;
                Ok(())
            })
            .unwrap();
        // A pending upload silent for two hours (its server stopped), and one at work.
        let hash = ContentHash::of(b"never finished");
        let abandoned = Writer::start(app.clone(), 1, Some(&hash), None).unwrap();
        let abandoned = abandoned.write(Bytes::from(data(1000))).unwrap();
        let at_work = Writer::start(app.clone(), 1, Some(&hash), None).unwrap();
        let at_work = at_work.write(Bytes::from(data(10))).unwrap();
        let id = abandoned.content.unwrap();
        app.db
            .write(|c| {
                c.exec(
                    "UPDATE contents SET written_at = written_at - 7200 WHERE id = ?",
                    &[id.into()],
                )?;
                Ok(())
            })
            .unwrap();
        let hour = Duration::from_secs(3600);
        let expect = Freed {
            blobs: 1,
            blob_bytes: CHUNK as u64 + 5,
            uploads: 1,
            upload_bytes: 1000,
        };
        assert_eq!(collect(&app.db, hour, true).unwrap(), expect);
        assert_eq!(rows(&app), (5, 6, 3, (CHUNK + 5 + 77 + 300) as i64));
        assert_eq!(collect(&app.db, hour, false).unwrap(), expect);
        assert_eq!(rows(&app), (3, 3, 2, 377));
        assert_eq!(collect(&app.db, hour, false).unwrap(), Freed::default());
        // The upload at work goes on and publishes; the abandoned one cannot.
        assert!(at_work.finish(Some(&ContentHash::of(&data(10)))).is_ok());
        let e = abandoned
            .finish(Some(&ContentHash::of(&data(1000))))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(rows(&app), (3, 3, 3, 387));
    }
}
