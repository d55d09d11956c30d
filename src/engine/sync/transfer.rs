//! Moving a project's content to and from the server (engine): uploads sent two at a time
//! (large ones streamed one at a time), a pull's downloads fetched ahead, and where a
//! download goes as it arrives (memory up to 1 MiB, then a private temporary file). What to
//! move, and the writes, are `project`'s.

use super::api::{Api, HttpError};
use super::project::{wire_hash, LocalFile};
use crate::hub::Hub;
use crate::protocol::types::ContentHash;
use crate::vfs::VPath;
use anyhow::{anyhow, Context, Result};
use std::collections::{HashMap, HashSet};

/// Why a file's content could not go up, when that is the file's fault and not the sync's:
/// it is larger than the server accepts, or the account's storage is full. The rest of the
/// project goes on without it.
pub(super) fn refused_upload(e: &anyhow::Error) -> Option<String> {
    let h = e.downcast_ref::<HttpError>()?;
    match h.status {
        413 => Some(match h.failure.as_ref().and_then(|f| f.limit) {
            Some(n) => format!(
                "larger than the server accepts ({})",
                crate::budget::human(n as usize)
            ),
            None => "larger than the server accepts".to_string(),
        }),
        507 => Some(h.message.clone()),
        _ => None,
    }
}

/// Downloaded content, whole and checked: in memory when small, else in a private
/// temporary file.
pub(super) enum Downloaded {
    Held(Vec<u8>),
    Spilled(std::fs::File),
}

/// Content held in memory at most; more goes to a temporary file. A thousand small files
/// then cost no file each (a temporary file per download doubled the time of a first pull).
pub(super) const HOLD: usize = 1 << 20;

/// Where a download goes as it arrives: memory up to [`HOLD`] bytes, then a private
/// temporary file in `dir` (beside the store).
pub(super) struct Spill<'a> {
    dir: &'a std::path::Path,
    held: Vec<u8>,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl<'a> Spill<'a> {
    pub(super) fn new(dir: &'a std::path::Path) -> Spill<'a> {
        Spill {
            dir,
            held: Vec::new(),
            file: None,
        }
    }

    pub(super) fn finish(self) -> Result<Downloaded> {
        Ok(match self.file {
            Some(w) => Downloaded::Spilled(
                w.into_inner()
                    .map_err(|e| e.into_error())
                    .context("cannot keep a download")?,
            ),
            None => Downloaded::Held(self.held),
        })
    }
}

impl std::io::Write for Spill<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() && self.held.len() + buf.len() > HOLD {
            let f = tempfile::tempfile_in(self.dir).or_else(|_| tempfile::tempfile())?;
            let mut w = std::io::BufWriter::with_capacity(256 << 10, f);
            w.write_all(&self.held)?;
            self.held = Vec::new();
            self.file = Some(w);
        }
        match &mut self.file {
            Some(w) => w.write(buf),
            None => {
                self.held.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// Copies the file at `p` into `out` a piece at a time when its content hashes to `hash`;
/// false (and `out` half written) when it cannot be read or no longer matches.
pub(super) fn copy_matching(vfs: &crate::vfs::Vfs, p: &VPath, hash: &str, out: &mut Spill) -> bool {
    let Ok(mut src) = vfs.open_read(p) else {
        return false;
    };
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut w = std::io::BufWriter::with_capacity(256 << 10, out);
    loop {
        match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                if std::io::Write::write_all(&mut w, &buf[..n]).is_err() {
                    return false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    std::io::Write::flush(&mut w).is_ok() && ContentHash::from(hasher.finalize()).as_str() == hash
}

/// An upload given up because another one failed (the sync stops with that failure).
#[derive(Debug)]
struct Skipped;

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not sent: another upload failed")
    }
}

impl std::error::Error for Skipped {}

/// Uploads sent at once. The server takes two per account at a time
/// (`--uploads-per-account`); one more would be told to come back (and would).
const UPLOADS_AT_ONCE: usize = 2;
/// Content up to this size is read whole here and handed to a sender thread; larger
/// content is streamed from its file by this thread, one file at a time.
const HELD_UPLOAD: u64 = 1 << 20;

/// What became of one upload: its hash, its file, its size and the server's answer.
pub(super) type Uploaded<'a> = (&'a ContentHash, &'a LocalFile, u64, Result<()>);

/// Sends the content of `wanted`: small files [`UPLOADS_AT_ONCE`] at a time (a thousand
/// small files are a thousand requests, and one at a time the client waits for each),
/// then large ones streamed one at a time. After an answer that is not a refusal of that
/// one file (see `refused_upload`), nothing more is sent. Fails only when a file cannot be
/// read here.
pub(super) fn upload<'a>(
    hub: &Hub,
    api: &Api,
    wanted: &[(&'a ContentHash, &'a LocalFile)],
    sent: &std::sync::Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<Vec<Uploaded<'a>>> {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Mutex};
    let size_of = |f: &LocalFile| hub.vfs.stat(&f.path).map(|m| m.size).unwrap_or(0);
    let open = |f: &LocalFile| -> Result<Box<dyn Read + Send>> {
        // Streamed from the file (a stored one a piece at a time, a mounted one as a host
        // file); the server checks it against its hash.
        hub.vfs
            .open_ref(&f.path, &f.file)
            .with_context(|| format!("cannot read {}", f.path))
    };
    let fatal = |r: &Result<()>| r.as_ref().is_err_and(|e| refused_upload(e).is_none());
    let (small, large): (Vec<_>, Vec<_>) = wanted
        .iter()
        .map(|&(h, f)| (h, f, size_of(f)))
        .partition(|&(_, _, size)| size <= HELD_UPLOAD);
    let mut out = Vec::with_capacity(wanted.len());
    let stop = AtomicBool::new(false);
    let (todo, jobs) = mpsc::sync_channel::<(usize, bytes::Bytes)>(UPLOADS_AT_ONCE);
    let jobs = Mutex::new(jobs);
    let (done_tx, done) = mpsc::channel::<(usize, Result<()>)>();
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..UPLOADS_AT_ONCE {
            let (jobs, done_tx, stop, small) = (&jobs, done_tx.clone(), &stop, &small);
            s.spawn(move || loop {
                // The lock is held only while waiting for the next file.
                let next = jobs.lock().ok().and_then(|j| j.recv().ok());
                let Some((i, content)) = next else {
                    break;
                };
                // After a failure, what is queued is left: the sync stops with that error.
                if stop.load(Ordering::Relaxed) {
                    continue;
                }
                let (h, _, size) = small[i];
                // A panic here would leave no one to take what the syncing thread queues,
                // and it would wait for ever: it is this upload's failure instead.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut tries = 0;
                    api.put_blob(
                        h,
                        size,
                        &mut || {
                            // Waiting for a busy server, the other sender failed: this one
                            // is not sent again.
                            tries += 1;
                            if tries > 1 && stop.load(Ordering::Relaxed) {
                                return Err(Skipped.into());
                            }
                            Ok(Box::new(std::io::Cursor::new(content.clone())))
                        },
                        sent,
                    )
                }))
                .unwrap_or_else(|_| Err(anyhow!("an upload of {h} failed")));
                if r.as_ref().is_err_and(|e| e.is::<Skipped>()) {
                    continue;
                }
                if r.as_ref().is_err_and(|e| refused_upload(e).is_none()) {
                    stop.store(true, Ordering::Relaxed);
                }
                if done_tx.send((i, r)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        let mut read = Ok(());
        for (i, &(_, f, size)) in small.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let mut content = Vec::with_capacity(size as usize);
            // One byte more than the size says, so a file that grew is caught here.
            let got = open(f).and_then(|r| {
                r.take(size + 1)
                    .read_to_end(&mut content)
                    .with_context(|| format!("cannot read {}", f.path))
            });
            if let Err(e) = got {
                read = Err(e);
                break;
            }
            if content.len() as u64 != size {
                read = Err(anyhow!("{} changed during sync: run sync again", f.path));
                break;
            }
            if todo.send((i, content.into())).is_err() {
                break;
            }
        }
        drop(todo);
        for (i, r) in done {
            let (h, f, size) = small[i];
            out.push((h, f, size, r));
        }
        read
    })?;
    if out.iter().any(|(.., r)| fatal(r)) {
        return Ok(out);
    }
    for (h, f, size) in large {
        let r = api.put_blob(h, size, &mut || open(f), sent);
        let stop = fatal(&r);
        out.push((h, f, size, r));
        if stop {
            break;
        }
    }
    Ok(out)
}

/// Downloads running ahead of the writes of a pull. The server sends four per account at
/// a time; two are left for the syncing thread (large files) and another machine.
pub(super) const FETCHES_AT_ONCE: usize = 2;
/// Small contents fetched ahead and not yet written, at most (each up to [`HOLD`] bytes).
const AHEAD: usize = 8;

/// Small content a pull will write, fetched ahead by [`FETCHES_AT_ONCE`] threads while
/// the syncing thread writes what came before: one at a time, a thousand small files kept
/// the syncing thread waiting for a thousand answers.
pub(super) struct Prefetch<'a> {
    /// Each content's hash and size, in the order the pull writes them.
    list: &'a [(String, u64)],
    /// Where a content larger than its listed size goes (see [`Spill`]): memory stays
    /// bounded whatever the server sends.
    spill_dir: &'a std::path::Path,
    wanted: HashSet<&'a str>,
    state: std::sync::Mutex<Ahead>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct Ahead {
    /// The next of `list` to fetch.
    next: usize,
    /// Fetched, not yet taken: the content and its size.
    held: HashMap<String, Result<(Downloaded, u64)>>,
    /// Being fetched.
    flight: HashSet<String>,
    /// Taken by the syncing thread (or left to it).
    taken: HashSet<String>,
    /// The pull ended: fetch nothing more.
    stop: bool,
}

impl<'a> Prefetch<'a> {
    pub(super) fn new(list: &'a [(String, u64)], spill_dir: &'a std::path::Path) -> Prefetch<'a> {
        Prefetch {
            list,
            spill_dir,
            wanted: list.iter().map(|(h, _)| h.as_str()).collect(),
            state: Default::default(),
            changed: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ahead> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One fetching thread: the next content of the list, while fewer than [`AHEAD`] wait
    /// to be written.
    pub(super) fn fetch(&self, api: &Api, shown: &indicatif::ProgressBar) {
        loop {
            let (hash, size) = {
                let mut st = self.lock();
                loop {
                    if st.stop || st.next >= self.list.len() {
                        return;
                    }
                    let (hash, _) = &self.list[st.next];
                    if st.taken.contains(hash) {
                        st.next += 1;
                        continue;
                    }
                    if st.held.len() < AHEAD {
                        break;
                    }
                    st = self
                        .changed
                        .wait(st)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                let (hash, size) = self.list[st.next].clone();
                st.next += 1;
                st.flight.insert(hash.clone());
                (hash, size)
            };
            // A panic here would leave the syncing thread waiting for this content.
            // Into a [`Spill`], not a plain vector: a server whose listing understates a
            // size would otherwise have up to 64 GiB held in memory, per fetcher and per
            // content held ahead.
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut out = Spill::new(self.spill_dir);
                let got = wire_hash(&hash)
                    .and_then(|h| api.get_blob_to(&h, size, &mut out, &|n| shown.inc(n)))?;
                Ok((out.finish()?, got))
            }))
            .unwrap_or_else(|_| Err(anyhow!("a download of {hash} failed")));
            let mut st = self.lock();
            st.flight.remove(&hash);
            st.held.insert(hash, got);
            self.changed.notify_all();
        }
    }

    /// The content of `hash` if it is one to fetch ahead and not taken yet: waits for it.
    /// None: the caller fetches it.
    pub(super) fn take(&self, hash: &str) -> Option<Result<(Downloaded, u64)>> {
        let mut st = self.lock();
        if !self.wanted.contains(hash) || st.taken.contains(hash) {
            return None;
        }
        loop {
            if let Some(got) = st.held.remove(hash) {
                st.taken.insert(hash.to_string());
                self.changed.notify_all();
                return Some(got);
            }
            // Not fetched and none being: when the fetchers cannot start it (stopped, or
            // as many held as allowed, which only content taken out of order leaves), the
            // caller fetches it.
            if !st.flight.contains(hash) && (st.stop || st.held.len() >= AHEAD) {
                st.taken.insert(hash.to_string());
                self.changed.notify_all();
                return None;
            }
            st = self
                .changed
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Fetches nothing more (the pull ended, or failed).
    pub(super) fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn a_download_stays_in_memory_up_to_its_bound_and_goes_to_a_file_beyond() {
        let dir = tempfile::tempdir().unwrap();
        let mut small = Spill::new(dir.path());
        small.write_all(b"hello").unwrap();
        assert!(matches!(small.finish().unwrap(), Downloaded::Held(d) if d == b"hello"));
        let big: Vec<u8> = (0..HOLD + 10).map(|i| (i % 251) as u8).collect();
        let mut spill = Spill::new(dir.path());
        for piece in big.chunks(4096) {
            spill.write_all(piece).unwrap();
        }
        spill.flush().unwrap();
        let Downloaded::Spilled(mut f) = spill.finish().unwrap() else {
            panic!("more than {HOLD} bytes were held in memory");
        };
        f.rewind().unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert!(back == big, "the spilled download differs");
    }

    /// A server on 127.0.0.1 answering every request with `body` (200); its URL.
    fn serving(body: Vec<u8>) -> String {
        use std::io::BufRead;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        url
    }

    #[test]
    fn content_fetched_ahead_larger_than_listed_is_not_held_in_memory() {
        // The listing says 5 bytes; the content of that hash is 3 MiB (a server whose sizes
        // are wrong). Fetched ahead, it must go where any large download goes, not into
        // memory whole.
        let big: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        let hash = ContentHash::of(&big).as_str().to_string();
        let api = Api::new(&serving(big.clone()), Some("t".into())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let list = [(hash.clone(), 5u64)];
        let prefetch = Prefetch::new(&list, dir.path());
        let shown = indicatif::ProgressBar::hidden();
        let got = std::thread::scope(|s| {
            s.spawn(|| prefetch.fetch(&api, &shown));
            let got = prefetch.take(&hash);
            prefetch.stop();
            got
        });
        let (data, size) = got.expect("fetched ahead").unwrap();
        assert_eq!(size, big.len() as u64);
        let Downloaded::Spilled(mut f) = data else {
            panic!("3 MiB fetched ahead were held in memory");
        };
        f.rewind().unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert!(back == big, "the content fetched ahead differs");
    }
}
