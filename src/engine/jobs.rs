//! Background jobs (`man jobs`) (engine): `LINE &` runs a shell line — a script through `run`, a
//! host program through `exec`, or any other line — on its own thread, under its own
//! cancellation token, with its output captured into the store.
//!
//! A job's record lives in the `jobs` table: queued → running → done / failed / killed. The
//! records outlive the process; a job that was queued or running when the process that owned
//! it died is shown as lost. At most `jobs.max_running` jobs of one process run at once; the
//! rest wait, queued, as records only: a job gets its thread when a slot frees, so twenty
//! thousand queued jobs cost memory, not threads.

use crate::hub::Hub;
use crate::shell::io::{Drained, Input, Io, Output};
use crate::shell::Session;
use crate::signals::{self, Token};
use crate::store::now_ms;
use anyhow::{bail, Context, Result};
use rusqlite::{params, OptionalExtension};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often a running job's captured output is moved into the store.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Bytes of a job's output that wait to be stored before what writes more waits too.
const HIGH_WATER: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Queued,
    Running,
    Done,
    Failed,
    Killed,
    Lost,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
            State::Killed => "killed",
            State::Lost => "lost",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "queued" => State::Queued,
            "running" => State::Running,
            "done" => State::Done,
            "failed" => State::Failed,
            "killed" => State::Killed,
            _ => State::Lost,
        }
    }

    pub fn finished(self) -> bool {
        !matches!(self, State::Queued | State::Running)
    }
}

/// A job's record.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Job {
    pub id: i64,
    pub line: String,
    pub cwd: String,
    #[serde(serialize_with = "ser_state")]
    pub state: State,
    pub status: Option<i32>,
    pub owner_pid: i64,
    #[serde(skip)]
    pub owner_session: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

fn ser_state<S: serde::Serializer>(s: &State, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

impl Job {
    /// Run time so far (or in total), in milliseconds.
    pub fn elapsed_ms(&self) -> Option<i64> {
        let start = self.started_at?;
        Some(self.ended_at.unwrap_or_else(now_ms) - start)
    }
}

/// The jobs of this process that are alive: their tokens, and the count of running ones.
#[derive(Default)]
pub struct Jobs {
    inner: Mutex<Inner>,
    changed: Condvar,
}

#[derive(Default)]
struct Inner {
    running: usize,
    live: HashMap<i64, Token>,
    /// Jobs waiting for a slot, oldest first.
    queue: std::collections::VecDeque<Queued>,
}

/// A job waiting for a slot: what its thread will run.
struct Queued {
    id: i64,
    sh: Session,
    line: String,
    token: Token,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ids of this process's jobs that have not finished.
    pub fn live_ids(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.lock().live.keys().copied().collect();
        v.sort();
        v
    }
}

const COLUMNS: &str = "id, line, cwd, state, status, owner_pid, owner_session, created_at, \
                       started_at, ended_at";

fn row_to_job(r: &rusqlite::Row) -> rusqlite::Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        line: r.get(1)?,
        cwd: r.get(2)?,
        state: State::parse(&r.get::<_, String>(3)?),
        status: r.get(4)?,
        owner_pid: r.get(5)?,
        owner_session: r.get(6)?,
        created_at: r.get(7)?,
        started_at: r.get(8)?,
        ended_at: r.get(9)?,
    })
}

/// Starts `line` as a background job of `sh`'s session; returns its number.
pub fn start(sh: &Session, line: &str) -> Result<i64> {
    let hub = sh.hub.clone();
    // Asked before the connection is held: the first ask may look the folder up.
    let cwd = sh.cwd().to_string();
    let id = {
        let conn = hub.store.conn();
        conn.execute(
            "INSERT INTO jobs (line, cwd, state, owner_pid, owner_session, created_at)
             VALUES (?1, ?2, 'queued', ?3, ?4, ?5)",
            params![line, cwd, std::process::id(), hub.session_id, now_ms()],
        )
        .context("cannot record the job")?;
        conn.last_insert_rowid()
    };
    let token: Token = Arc::new(AtomicBool::new(false));
    let mut sub = sh.clone();
    sub.interactive = false;
    sub.exit = None;
    let job = Queued {
        id,
        sh: sub,
        line: line.to_string(),
        token: token.clone(),
    };
    let max = hub.settings().jobs.max_running.max(1);
    let mut g = hub.jobs.lock();
    g.live.insert(id, token);
    if g.running < max {
        g.running += 1;
        drop(g);
        launch(&hub, job)?;
    } else {
        g.queue.push_back(job);
    }
    Ok(id)
}

/// Gives a job a thread of its own (its slot is counted already). A thread that cannot be
/// made fails the job, with the reason, and frees the slot.
fn launch(hub: &Arc<Hub>, job: Queued) -> Result<()> {
    let id = job.id;
    let spawned = std::thread::Builder::new()
        .name(format!("job-{id}"))
        .stack_size(crate::script::STACK_SIZE)
        .spawn(move || run(job.sh, job.id, job.line, job.token));
    if let Err(e) = spawned {
        let _ = hub.store.conn().execute(
            "INSERT INTO job_output (job, data) VALUES (?1, ?2)",
            params![
                id,
                format!("valyxo: cannot start a thread for the job: {e}\n").into_bytes()
            ],
        );
        finish(hub, id, State::Failed, None);
        slot_freed(hub);
        bail!("cannot start a thread for job %{id}: {e}");
    }
    Ok(())
}

/// A running job ended (or never got its thread): the oldest queued job that was not
/// killed meanwhile takes its slot.
fn slot_freed(hub: &Arc<Hub>) {
    let next = {
        let mut g = hub.jobs.lock();
        g.running -= 1;
        let max = hub.settings().jobs.max_running.max(1);
        let mut next = None;
        while g.running < max {
            match g.queue.pop_front() {
                Some(q) if q.token.load(Ordering::Relaxed) => {
                    let id = q.id;
                    drop(g);
                    finish(hub, id, State::Killed, None);
                    g = hub.jobs.lock();
                }
                Some(q) => {
                    g.running += 1;
                    next = Some(q);
                    break;
                }
                None => break,
            }
        }
        next
    };
    if let Some(q) = next {
        // A failure is recorded on the job, and the slot passed on, by launch.
        let _ = launch(hub, q);
    }
}

fn run(mut sh: Session, id: i64, line: String, token: Token) {
    let hub = sh.hub.clone();
    signals::adopt(token.clone());
    let _ = hub.store.conn().execute(
        "UPDATE jobs SET state = 'running', started_at = ?2 WHERE id = ?1",
        params![id, now_ms()],
    );
    let cap = Drained::new(HIGH_WATER);
    let limit = hub.settings().jobs.max_output;
    let mut sink = Sink {
        hub: &hub,
        id,
        cap: cap.clone(),
        kept: 0,
        limit,
        dropped: false,
        echo: sh.echo_jobs,
    };
    // Dropping `done` wakes the flusher at once when the job ends.
    let (done, ended) = std::sync::mpsc::channel::<()>();
    let sink = std::sync::Mutex::new(&mut sink);
    let status = std::thread::scope(|s| {
        // Without this thread (none could be made) the output is stored when the job ends.
        let shared = &sink;
        let flusher = std::thread::Builder::new()
            .name("job-output".into())
            .spawn_scoped(s, move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    ended.recv_timeout(FLUSH_EVERY)
                {
                    shared.lock().unwrap_or_else(|e| e.into_inner()).drain();
                }
            });
        if flusher.is_err() {
            // Nothing empties the buffer until the job ends: the job must not wait for it.
            cap.close();
        }
        let mut io = Io {
            stdin: Input::Null,
            stdout: Output::Drained(cap.clone()),
            stderr: Output::Drained(cap.clone()),
        };
        let status =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sh.run(&line, &mut io)))
                .unwrap_or_else(|_| {
                    let _ = std::io::Write::write_all(
                        &mut io.stderr,
                        b"valyxo: the job stopped on an internal error\n",
                    );
                    1
                });
        drop(io);
        cap.close();
        drop(done);
        status
    });
    sink.into_inner().unwrap_or_else(|e| e.into_inner()).drain();
    let state = if token.load(Ordering::Relaxed) {
        State::Killed
    } else if status == 0 {
        State::Done
    } else {
        State::Failed
    };
    finish(&hub, id, state, Some(status));
    slot_freed(&hub);
}

/// Records a job's end and forgets its token.
fn finish(hub: &Hub, id: i64, state: State, status: Option<i32>) {
    let r = hub.store.conn().execute(
        "UPDATE jobs SET state = ?2, status = ?3, ended_at = ?4 WHERE id = ?1",
        params![id, state.as_str(), status, now_ms()],
    );
    if let Err(e) = r {
        eprintln!("valyxo: cannot record the end of job %{id}: {e}");
    }
    hub.jobs.lock().live.remove(&id);
    hub.jobs.changed.notify_all();
}

/// Moves a job's captured output into the store, up to its size limit.
struct Sink<'a> {
    hub: &'a Hub,
    id: i64,
    cap: Drained,
    kept: u64,
    limit: u64,
    dropped: bool,
    /// Also show the output on the process's standard output.
    echo: bool,
}

impl Sink<'_> {
    fn drain(&mut self) {
        // Copied out, and the buffer emptied but kept: it stays with the thread that writes
        // into it. (Taking the buffer itself would free it here, on a thread outside the
        // job's memory budget, while its allocation stayed charged to the script that
        // printed, until a script that prints a lot ran "out of memory".)
        let mut data = self.cap.take();
        if data.is_empty() {
            return;
        }
        if self.echo {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&data);
            let _ = out.flush();
        }
        if self.dropped {
            return;
        }
        if self.limit > 0 && self.kept + data.len() as u64 > self.limit {
            data.truncate((self.limit - self.kept) as usize);
            data.extend_from_slice(
                format!(
                    "\n[valyxo: output beyond {} bytes was dropped (setting jobs.max_output)]\n",
                    self.limit
                )
                .as_bytes(),
            );
            self.dropped = true;
        }
        self.kept += data.len() as u64;
        let _ = self.hub.store.conn().execute(
            "INSERT INTO job_output (job, data) VALUES (?1, ?2)",
            params![self.id, data],
        );
    }
}

/// Whether process `pid` exists.
fn pid_alive(pid: i64) -> bool {
    crate::os::process_exists(pid)
}

/// Marks as lost the unfinished jobs whose owning process is gone.
fn reap_lost(hub: &Hub) -> Result<()> {
    let unfinished: Vec<(i64, i64, String)> = {
        let conn = hub.store.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, owner_pid, owner_session FROM jobs WHERE state IN ('queued', 'running')",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let live = hub.jobs.live_ids();
    for (id, pid, session) in unfinished {
        let gone = if session == hub.session_id {
            !live.contains(&id)
        } else {
            !pid_alive(pid)
        };
        if gone {
            hub.store.conn().execute(
                "UPDATE jobs SET state = 'lost', ended_at = ?2
                 WHERE id = ?1 AND state IN ('queued', 'running')",
                params![id, now_ms()],
            )?;
        }
    }
    Ok(())
}

/// All job records, oldest first (the newest `limit` when given).
pub fn list(hub: &Hub, limit: Option<usize>) -> Result<Vec<Job>> {
    reap_lost(hub)?;
    let conn = hub.store.conn();
    let sql =
        format!("SELECT {COLUMNS} FROM (SELECT * FROM jobs ORDER BY id DESC LIMIT ?1) ORDER BY id");
    let mut st = conn.prepare_cached(&sql)?;
    let n = limit.map(|n| n as i64).unwrap_or(-1);
    let rows = st.query_map([n], row_to_job)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many jobs are kept (finished ones until `jobs --clear`).
pub fn count(hub: &Hub) -> Result<usize> {
    let conn = hub.store.conn();
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))?;
    Ok(n as usize)
}

pub fn get(hub: &Hub, id: i64) -> Result<Job> {
    reap_lost(hub)?;
    let conn = hub.store.conn();
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))?;
    st.query_row([id], row_to_job)
        .optional()?
        .with_context(|| format!("no job %{id}; 'jobs' lists them"))
}

/// Parses `%N` or `N`.
pub fn parse_spec(spec: &str) -> Result<i64> {
    let digits = spec.strip_prefix('%').unwrap_or(spec);
    match digits.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("'{spec}' is not a job: write %N, as 'jobs' shows"),
    }
}

/// Asks job `id` to stop; waits (up to `wait`) until it is marked killed.
pub fn kill(hub: &Hub, id: i64, wait: Duration) -> Result<Job> {
    kill_many(hub, &[id], wait)
        .pop()
        .expect("one answer per job")
}

/// Stops the jobs `ids` at once (a queued job ends here, a running one is told to stop),
/// then waits up to `wait` in all for them to end: one answer per job, in order.
pub fn kill_many(hub: &Hub, ids: &[i64], wait: Duration) -> Vec<Result<Job>> {
    let asked: Vec<Result<i64>> = ids.iter().map(|&id| signal(hub, id).map(|_| id)).collect();
    let deadline = Instant::now() + wait;
    asked
        .into_iter()
        .map(|r| {
            let id = r?;
            let job = wait_until(hub, id, Some(deadline))?;
            Ok(job.expect("a wait with a deadline always gives the job"))
        })
        .collect()
}

/// Tells job `id` to stop: a queued one ends at once.
fn signal(hub: &Hub, id: i64) -> Result<()> {
    let job = get(hub, id)?;
    if job.state.finished() {
        bail!("job %{id} has already ended ({})", job.state.as_str());
    }
    let token = hub.jobs.lock().live.get(&id).cloned();
    let Some(token) = token else {
        bail!(
            "job %{id} belongs to another valyxo process (pid {}); stop it there",
            job.owner_pid
        );
    };
    token.store(true, Ordering::Relaxed);
    // A queued job has no thread to notice: it ends here.
    let queued = {
        let mut g = hub.jobs.lock();
        let at = g.queue.iter().position(|q| q.id == id);
        at.and_then(|i| g.queue.remove(i))
    };
    if queued.is_some() {
        finish(hub, id, State::Killed, None);
    }
    hub.jobs.changed.notify_all();
    Ok(())
}

/// Waits until job `id` ends; `None` when interrupted (Ctrl-C) first.
pub fn wait(hub: &Hub, id: i64) -> Result<Option<Job>> {
    wait_until(hub, id, None)
}

/// Waits until job `id` ends, or until `deadline` (then gives the job as it is). Without a
/// deadline, Ctrl-C stops the wait and gives `None`. A job of this process wakes the waiter
/// when it ends; one of another process is looked at every 20 ms.
fn wait_until(hub: &Hub, id: i64, deadline: Option<Instant>) -> Result<Option<Job>> {
    loop {
        let job = get(hub, id)?;
        if job.state.finished() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Some(job));
        }
        if deadline.is_none() && signals::interrupted() {
            return Ok(None);
        }
        let g = hub.jobs.lock();
        // It ended between the read above and this lock: read it again instead of sleeping.
        if job.owner_session == hub.session_id && !g.live.contains_key(&id) {
            continue;
        }
        let _ = hub.jobs.changed.wait_timeout(g, Duration::from_millis(20));
    }
}

/// Output chunks of job `id` after chunk `after`: (last chunk id, bytes).
pub fn output_since(hub: &Hub, id: i64, after: i64) -> Result<(i64, Vec<u8>)> {
    let conn = hub.store.conn();
    let mut st = conn
        .prepare_cached("SELECT id, data FROM job_output WHERE job = ?1 AND id > ?2 ORDER BY id")?;
    let mut last = after;
    let mut out = Vec::new();
    let mut rows = st.query(params![id, after])?;
    while let Some(r) = rows.next()? {
        last = r.get(0)?;
        out.extend_from_slice(&r.get::<_, Vec<u8>>(1)?);
    }
    Ok((last, out))
}

/// This session's jobs that ended and were not yet announced; marks them announced.
pub fn take_finished(hub: &Hub) -> Vec<Job> {
    let r = (|| -> Result<Vec<Job>> {
        let conn = hub.store.conn();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE owner_session = ?1 AND announced = 0
             AND state NOT IN ('queued', 'running') ORDER BY id"
        ))?;
        let jobs: Vec<Job> = st
            .query_map([&hub.session_id], row_to_job)?
            .collect::<rusqlite::Result<_>>()?;
        for j in &jobs {
            conn.execute("UPDATE jobs SET announced = 1 WHERE id = ?1", [j.id])?;
        }
        Ok(jobs)
    })();
    r.unwrap_or_default()
}

/// Removes the records (and output) of finished jobs; returns how many.
pub fn clear_finished(hub: &Hub) -> Result<usize> {
    reap_lost(hub)?;
    Ok(hub.store.conn().execute(
        "DELETE FROM jobs WHERE state NOT IN ('queued', 'running')",
        [],
    )?)
}

/// Waits for every live job of this process (before a non-interactive run exits).
/// Waits for every live job of this process, and for the jobs those start, until none is
/// left.
pub fn wait_all(hub: &Hub) {
    loop {
        let ids = hub.jobs.live_ids();
        if ids.is_empty() {
            return;
        }
        for id in ids {
            let _ = wait(hub, id);
        }
    }
}

/// Stops every live job of this process (when the interactive shell exits).
pub fn kill_all(hub: &Hub) -> usize {
    let ids = hub.jobs.live_ids();
    kill_many(hub, &ids, Duration::from_secs(2));
    ids.len()
}

/// One line describing a job, as `jobs` and the prompt's announcements show it.
pub fn describe(j: &Job) -> String {
    let status = match (j.state, j.status) {
        (State::Done | State::Failed, Some(s)) => format!(" (status {s})"),
        _ => String::new(),
    };
    // A line can hold anything a script put in it (`sh(...)` with text it read): escaped.
    format!(
        "[{}] {}{status}  {}",
        j.id,
        j.state.as_str(),
        crate::text::escape(&j.line)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubOptions;

    /// A session in a fresh home where `max_running` jobs run at once.
    fn session(max_running: u32) -> (tempfile::TempDir, Session) {
        let home = tempfile::tempdir().unwrap();
        let hub = Hub::open(HubOptions {
            home: Some(home.path().to_path_buf()),
            no_color: true,
            ..Default::default()
        })
        .unwrap();
        hub.set_setting("jobs.max_running", Some(&max_running.to_string()))
            .unwrap();
        let sh = Session::new(hub, false).unwrap();
        (home, sh)
    }

    fn output(hub: &Hub, id: i64) -> String {
        String::from_utf8(output_since(hub, id, 0).unwrap().1).unwrap()
    }

    /// A line that runs until it is killed.
    const ENDLESS: &str = "exec sleep 30";

    #[test]
    fn queued_jobs_run_in_the_order_they_were_started() {
        let (_home, sh) = session(1);
        let hub = sh.hub.clone();
        let blocker = start(&sh, ENDLESS).unwrap();
        let ids: Vec<i64> = (1..=4)
            .map(|i| start(&sh, &format!("echo {i}")).unwrap())
            .collect();
        for &id in &ids {
            assert_eq!(get(&hub, id).unwrap().state, State::Queued);
        }
        assert_eq!(hub.jobs.live_ids().len(), 5);
        kill(&hub, blocker, Duration::from_secs(5)).unwrap();
        let jobs: Vec<Job> = ids
            .iter()
            .map(|&id| wait(&hub, id).unwrap().unwrap())
            .collect();
        for (i, j) in jobs.iter().enumerate() {
            assert_eq!(j.state, State::Done, "{j:?}");
            assert_eq!(output(&hub, j.id), format!("{}\n", i + 1));
        }
        // One at a time: each began after the one before it ended.
        for w in jobs.windows(2) {
            assert!(w[1].started_at.unwrap() >= w[0].ended_at.unwrap(), "{w:?}");
        }
        assert_eq!(get(&hub, blocker).unwrap().state, State::Killed);
        assert!(hub.jobs.live_ids().is_empty());
    }

    #[test]
    fn a_killed_queued_job_never_runs() {
        let (_home, sh) = session(1);
        let hub = sh.hub.clone();
        let blocker = start(&sh, ENDLESS).unwrap();
        let queued = start(&sh, "echo never").unwrap();
        let after = start(&sh, "echo after").unwrap();
        let j = kill(&hub, queued, Duration::from_secs(5)).unwrap();
        assert_eq!(
            (j.state, j.status, j.started_at),
            (State::Killed, None, None)
        );
        // Killing it again says it has ended.
        let e = kill(&hub, queued, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("already ended (killed)"), "{e}");
        kill(&hub, blocker, Duration::from_secs(5)).unwrap();
        assert_eq!(wait(&hub, after).unwrap().unwrap().state, State::Done);
        assert_eq!(output(&hub, queued), "");
        assert_eq!(output(&hub, after), "after\n");
        assert_eq!(get(&hub, queued).unwrap().started_at, None);
    }

    #[test]
    fn output_and_status_are_kept_and_output_is_capped() {
        let (_home, sh) = session(4);
        let hub = sh.hub.clone();
        let ok = start(&sh, "echo out; echo err >&2").unwrap();
        let bad = start(&sh, "echo before; false").unwrap();
        let j = wait(&hub, ok).unwrap().unwrap();
        assert_eq!((j.state, j.status), (State::Done, Some(0)));
        assert_eq!(output(&hub, ok), "out\nerr\n");
        let j = wait(&hub, bad).unwrap().unwrap();
        assert_eq!((j.state, j.status), (State::Failed, Some(1)));
        assert_eq!(
            describe(&j),
            format!("[{bad}] failed (status 1)  echo before; false")
        );
        // Output beyond jobs.max_output is dropped, and the job says so.
        hub.set_setting("jobs.max_output", Some("8")).unwrap();
        let big = start(&sh, "echo 0123456789abcdef").unwrap();
        wait(&hub, big).unwrap();
        assert_eq!(
            output(&hub, big),
            "01234567\n[valyxo: output beyond 8 bytes was dropped (setting jobs.max_output)]\n"
        );
        // Cleared, finished jobs and their output are gone.
        assert_eq!(clear_finished(&hub).unwrap(), 3);
        assert!(list(&hub, None).unwrap().is_empty());
        assert_eq!(output(&hub, ok), "");
    }

    #[test]
    fn unfinished_jobs_whose_owner_is_gone_are_lost() {
        let (_home, sh) = session(4);
        let hub = sh.hub.clone();
        // A process that has ended.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id() as i64;
        child.wait().unwrap();
        let record = |pid: i64, session: &str, state: &str| -> i64 {
            let conn = hub.store.conn();
            conn.execute(
                "INSERT INTO jobs (line, cwd, state, owner_pid, owner_session, created_at)
                 VALUES ('echo x', '/', ?1, ?2, ?3, 0)",
                params![state, pid, session],
            )
            .unwrap();
            conn.last_insert_rowid()
        };
        let other_dead = record(gone, "elsewhere", "running");
        let other_queued = record(gone, "elsewhere", "queued");
        let other_alive = record(std::process::id() as i64, "elsewhere", "running");
        // This session's own record with no live job behind it (its thread is gone).
        let mine = record(std::process::id() as i64, &hub.session_id, "running");
        let states: HashMap<i64, State> = list(&hub, None)
            .unwrap()
            .into_iter()
            .map(|j| (j.id, j.state))
            .collect();
        assert_eq!(states[&other_dead], State::Lost);
        assert_eq!(states[&other_queued], State::Lost);
        assert_eq!(states[&other_alive], State::Running);
        assert_eq!(states[&mine], State::Lost);
        // A job of another live process cannot be killed from here.
        let e = kill(&hub, other_alive, Duration::from_secs(1)).unwrap_err();
        assert!(
            e.to_string().contains("belongs to another valyxo process"),
            "{e}"
        );
    }

    #[test]
    fn output_moved_to_the_store_is_no_longer_charged_to_the_job() {
        // The job's script prints (on its thread, under its memory budget) and the output is
        // stored by another thread: however much is printed over time, the budget holds only
        // what waits to be stored.
        let (_home, sh) = session(1);
        let hub = sh.hub.clone();
        let id = start(&sh, "true").unwrap();
        wait(&hub, id).unwrap();
        let cap = Drained::new(HIGH_WATER);
        let mut sink = Sink {
            hub: &hub,
            id,
            cap: cap.clone(),
            kept: 0,
            limit: 1000,
            dropped: false,
            echo: false,
        };
        let budget = crate::budget::Budget::new(0);
        let line = vec![b'x'; 1 << 20];
        for _ in 0..32 {
            {
                let _charged = budget.enter();
                let mut out = Output::Drained(cap.clone());
                std::io::Write::write_all(&mut out, &line).unwrap();
            }
            std::thread::scope(|s| {
                s.spawn(|| sink.drain());
            });
        }
        assert!(budget.used() < 4 << 20, "{}", budget.used());
        assert_eq!(output(&hub, id).len(), 1000 + sink_note(1000).len());
    }

    fn sink_note(limit: u64) -> String {
        format!("\n[valyxo: output beyond {limit} bytes was dropped (setting jobs.max_output)]\n")
    }

    #[test]
    fn job_numbers_are_read_as_written() {
        assert_eq!(parse_spec("%3").unwrap(), 3);
        assert_eq!(parse_spec("12").unwrap(), 12);
        for bad in ["%0", "%", "x", "-1", "%1x"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }
}
