//! The streams a command reads and writes: the terminal, pipes to other commands, files
//! written as the output arrives (redirections), in-memory captures (for scripts and jobs),
//! or nothing.

use std::io::{self, IsTerminal, Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

pub enum Input {
    Null,
    /// The process's own standard input.
    Stdin,
    /// The terminal of an interactive session: builtins read nothing from it (so they never
    /// block on the keyboard), host programs inherit it (so `exec python3` is interactive).
    Terminal,
    Bytes(io::Cursor<Vec<u8>>),
    Pipe(io::PipeReader),
    Stream(Box<dyn Read + Send>),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Null | Input::Terminal => Ok(0),
            Input::Stdin => io::stdin().read(buf),
            Input::Bytes(c) => c.read(buf),
            Input::Pipe(p) => p.read(buf),
            Input::Stream(s) => s.read(buf),
        }
    }
}

impl Input {
    /// Whether the command has something to read (used by commands that fall back to stdin).
    pub fn is_null(&self) -> bool {
        matches!(self, Input::Null | Input::Terminal)
    }

    /// A `Stdio` for a child process, plus a thread feeding it when the data is in memory.
    pub fn into_stdio(self) -> (Stdio, Option<Box<dyn Read + Send>>) {
        match self {
            Input::Null => (Stdio::null(), None),
            Input::Stdin | Input::Terminal => (Stdio::inherit(), None),
            Input::Pipe(p) => (Stdio::from(p), None),
            Input::Bytes(c) => (Stdio::piped(), Some(Box::new(c))),
            Input::Stream(s) => (Stdio::piped(), Some(s)),
        }
    }
}

/// A shared in-memory buffer.
pub type Capture = Arc<Mutex<Vec<u8>>>;

/// A file a redirection writes to as the output comes, shared by the streams pointed at it
/// (`> f 2>&1`). The first failed write (the file over the stored tree's limit, a full
/// disk) is kept, and every later write fails the same way.
#[derive(Clone)]
pub struct FileOut(Arc<Mutex<FileState>>);

struct FileState {
    writer: Option<crate::vfs::stream::FileWriter>,
    failed: Option<(io::ErrorKind, String)>,
}

impl FileOut {
    pub fn new(writer: crate::vfs::stream::FileWriter) -> FileOut {
        FileOut(Arc::new(Mutex::new(FileState {
            writer: Some(writer),
            failed: None,
        })))
    }

    /// The writer, once the command is done with it, or why the file must not be kept.
    pub fn finish(&self) -> Result<crate::vfs::stream::FileWriter, String> {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, why)) = &st.failed {
            return Err(why.clone());
        }
        st.writer.take().ok_or_else(|| "written twice".to_string())
    }
}

impl Write for FileOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((kind, why)) = &st.failed {
            return Err(io::Error::new(*kind, why.clone()));
        }
        let Some(w) = st.writer.as_mut() else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        match w.write(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                st.failed = Some((e.kind(), e.to_string()));
                Err(e)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match st.writer.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// A capture that holds at most `max` bytes: a write past that keeps what fits and fails as
/// a pipe whose reader is gone, so the command writing stops (a host program's next write
/// fails, a script stops), and the capture remembers that it was cut ([`Limited::cut`]). For output that must become one value, as
/// a script's `sh()` gives it.
#[derive(Clone)]
pub struct Limited {
    pub buf: Capture,
    max: usize,
    cut: Arc<std::sync::atomic::AtomicBool>,
}

impl Limited {
    pub fn new(max: usize) -> Limited {
        Limited {
            buf: Capture::default(),
            max,
            cut: Arc::default(),
        }
    }

    /// Whether output was refused for passing the limit.
    pub fn cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Write for Limited {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.max.saturating_sub(b.len());
        if buf.len() > room {
            b.extend_from_slice(&buf[..room]);
            self.cut.store(true, std::sync::atomic::Ordering::Relaxed);
            // As a pipe whose reader is gone: a command stops quietly, a script too.
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!(
                    "the output passed {} bytes, the most that is kept",
                    self.max
                ),
            ));
        }
        b.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A capture that another thread empties as it goes (a job's output, moved into the store):
/// a writer waits while it holds `high` bytes or more, so output that comes faster than it
/// is stored waits instead of piling up in memory.
#[derive(Clone)]
pub struct Drained {
    buf: Arc<(Mutex<Vec<u8>>, std::sync::Condvar)>,
    high: usize,
    open: Arc<std::sync::atomic::AtomicBool>,
}

impl Drained {
    pub fn new(high: usize) -> Drained {
        Drained {
            buf: Arc::default(),
            high,
            open: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// What was written since the last time, copied out; the buffer is emptied but kept by
    /// the writers (so its memory stays with the thread that allocated it).
    pub fn take(&self) -> Vec<u8> {
        let mut b = self.buf.0.lock().unwrap_or_else(|e| e.into_inner());
        let data = b.clone();
        b.clear();
        self.buf.1.notify_all();
        data
    }

    /// Nothing empties the buffer any more (or never will): writers no longer wait.
    pub fn close(&self) {
        self.open.store(false, std::sync::atomic::Ordering::Relaxed);
        self.buf.1.notify_all();
    }
}

impl Write for Drained {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut b = self.buf.0.lock().unwrap_or_else(|e| e.into_inner());
        while b.len() >= self.high && self.open.load(std::sync::atomic::Ordering::Relaxed) {
            b = match self
                .buf
                .1
                .wait_timeout(b, std::time::Duration::from_millis(100))
            {
                Ok((b, _)) => b,
                Err(e) => e.into_inner().0,
            };
        }
        b.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes into a capture, for a pump from a child process.
struct CaptureWriter(Capture);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub enum Output {
    Null,
    Stdout,
    Stderr,
    Pipe(io::PipeWriter),
    Capture(Capture),
    Limited(Limited),
    Drained(Drained),
    File(FileOut),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Null => Ok(buf.len()),
            Output::Stdout => io::stdout().write(buf),
            Output::Stderr => io::stderr().write(buf),
            Output::Pipe(p) => p.write(buf),
            Output::Capture(c) => {
                c.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            Output::Limited(l) => l.write(buf),
            Output::Drained(d) => d.write(buf),
            Output::File(f) => f.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout => io::stdout().lock().write_all(buf),
            Output::Stderr => io::stderr().lock().write_all(buf),
            _ => {
                let mut b = buf;
                while !b.is_empty() {
                    match self.write(b) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => b = &b[n..],
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout => io::stdout().flush(),
            Output::Stderr => io::stderr().flush(),
            Output::Pipe(p) => p.flush(),
            Output::File(f) => f.flush(),
            _ => Ok(()),
        }
    }
}

impl Output {
    pub fn try_clone(&self) -> io::Result<Output> {
        Ok(match self {
            Output::Null => Output::Null,
            Output::Stdout => Output::Stdout,
            Output::Stderr => Output::Stderr,
            Output::Pipe(p) => Output::Pipe(p.try_clone()?),
            Output::Capture(c) => Output::Capture(c.clone()),
            Output::Limited(l) => Output::Limited(l.clone()),
            Output::Drained(d) => Output::Drained(d.clone()),
            Output::File(f) => Output::File(f.clone()),
        })
    }

    /// Whether this stream is a terminal (for colour and column layout).
    pub fn is_tty(&self) -> bool {
        match self {
            Output::Stdout => io::stdout().is_terminal(),
            Output::Stderr => io::stderr().is_terminal(),
            _ => false,
        }
    }

    /// A `Stdio` for a child process, plus where to copy what it writes into its pipe (a
    /// capture or a file; the copy stops when that refuses more).
    pub fn to_stdio(&self) -> io::Result<(Stdio, Option<Box<dyn Write + Send>>)> {
        Ok(match self {
            Output::Null => (Stdio::null(), None),
            Output::Stdout => {
                io::stdout().flush()?;
                (Stdio::inherit(), None)
            }
            Output::Stderr => (Stdio::from(io::stderr()), None),
            Output::Pipe(p) => (Stdio::from(p.try_clone()?), None),
            Output::Capture(c) => (Stdio::piped(), Some(Box::new(CaptureWriter(c.clone())))),
            Output::Limited(l) => (Stdio::piped(), Some(Box::new(l.clone()))),
            Output::Drained(d) => (Stdio::piped(), Some(Box::new(d.clone()))),
            Output::File(f) => (Stdio::piped(), Some(Box::new(f.clone()))),
        })
    }
}

/// The three standard streams of one command.
pub struct Io {
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
}

impl Io {
    /// The process's own streams.
    pub fn process(stdin: bool) -> Io {
        Io {
            stdin: if stdin { Input::Stdin } else { Input::Null },
            stdout: Output::Stdout,
            stderr: Output::Stderr,
        }
    }

    /// The streams of an interactive session (see [`Input::Terminal`]).
    pub fn terminal() -> Io {
        Io {
            stdin: Input::Terminal,
            stdout: Output::Stdout,
            stderr: Output::Stderr,
        }
    }

    /// In-memory streams: no input, both outputs captured. Returns (io, stdout, stderr).
    pub fn capture() -> (Io, Capture, Capture) {
        let out: Capture = Arc::default();
        let err: Capture = Arc::default();
        (
            Io {
                stdin: Input::Null,
                stdout: Output::Capture(out.clone()),
                stderr: Output::Capture(err.clone()),
            },
            out,
            err,
        )
    }
}
