//! The terminal for full-screen views (foundation), such as the pager and the editor: raw
//! mode, the alternate screen, mouse capture and bracketed paste are switched on by [`enter`] and undone on every
//! way out — a normal return, an error, a panic on the view's thread, or a termination signal
//! (SIGTERM, SIGHUP, SIGQUIT), which is held off (`signals::hold`) until the terminal is back
//! and then takes its default effect. A terminal that goes away under a view (its window
//! closed, the connection dropped) is noticed by a watching thread, which lets the view keep
//! what would be lost and ends the process.

use std::io;
use std::panic;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use ratatui::crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use ratatui::crossterm::{cursor, execute, terminal};

/// The terminal in full-screen mode, held by one view at a time.
pub(crate) struct Fullscreen {
    guard: TerminalGuard,
    /// Notices the terminal going away while the view has it.
    watch: Option<Watch>,
    /// A termination signal waits until the terminal is given back.
    _hold: crate::signals::Hold,
}

/// What a view does when its terminal goes away: its last chance to keep the user's work.
pub(crate) type LastWords = Box<dyn FnOnce() + Send>;

/// A thread that looks at the terminal every [`WATCH_EVERY`] without reading from it (so no
/// key is taken from the view): when the terminal has gone (its window closed, the
/// connection dropped), the view's thread may be stuck in the terminal library's read loop,
/// which retries a dead terminal for ever; this thread then says the view's last words and
/// ends the process as the hangup would have.
struct Watch {
    stop: Arc<AtomicBool>,
    last_words: Arc<std::sync::Mutex<Option<LastWords>>>,
}

const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl Watch {
    fn start() -> Option<Watch> {
        use std::os::fd::AsRawFd;
        // The terminal the view reads, as the terminal library picks it: standard input
        // when it is one, else the process's controlling terminal.
        // SAFETY: isatty only inspects the descriptor.
        let tty = if unsafe { libc::isatty(0) } == 1 {
            None
        } else {
            Some(std::fs::File::open("/dev/tty").ok()?)
        };
        let stop = Arc::new(AtomicBool::new(false));
        let last_words: Arc<std::sync::Mutex<Option<LastWords>>> = Arc::default();
        let (stop2, words) = (Arc::clone(&stop), Arc::clone(&last_words));
        std::thread::Builder::new()
            .name("terminal-watch".into())
            .spawn(move || {
                let fd = tty.as_ref().map_or(0, AsRawFd::as_raw_fd);
                while !stop2.load(Ordering::SeqCst) {
                    std::thread::sleep(WATCH_EVERY);
                    if stop2.load(Ordering::SeqCst) {
                        return;
                    }
                    if terminal_gone(fd) {
                        let words = words
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .take();
                        if let Some(say) = words {
                            say();
                        }
                        let _ = signal_hook::low_level::emulate_default_handler(
                            signal_hook::consts::SIGHUP,
                        );
                        std::process::exit(129);
                    }
                }
            })
            .ok()?;
        Some(Watch { stop, last_words })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Whether the terminal on `fd` has hung up, asked without reading from it.
fn terminal_gone(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// Takes the terminal for a full-screen view. `None` when another view already has it (a
/// view on another thread); `Some(Err)` when the terminal cannot be set up (no controlling
/// terminal), in which case it is left as it was.
pub(crate) fn enter(paste: bool) -> Option<io::Result<Fullscreen>> {
    if OPEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    let hold = crate::signals::hold();
    match TerminalGuard::enter(paste) {
        Ok(guard) => Some(Ok(Fullscreen {
            guard,
            watch: Watch::start(),
            _hold: hold,
        })),
        Err(e) => {
            let _ = restore_terminal();
            OPEN.store(false, Ordering::SeqCst);
            Some(Err(e))
        }
    }
}

impl Fullscreen {
    /// What to do if the terminal goes away while the view has it, before the process
    /// ends (write what would be lost). Runs on another thread.
    pub(crate) fn on_hangup(&self, words: LastWords) {
        if let Some(w) = &self.watch {
            *w.last_words
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(words);
        }
    }

    /// Gives the terminal back. A termination signal that arrived while the view was open
    /// takes effect now.
    pub(crate) fn leave(mut self) -> io::Result<()> {
        drop(self.watch.take());
        // Keys typed after the one that closed the view stay for the shell. A termination
        // signal that came meanwhile takes effect when the hold is dropped, after this.
        self.guard.leave()
    }
}

/// Whether a termination signal asks the open view to end.
pub(crate) fn signal_pending() -> bool {
    crate::signals::terminating().is_some()
}

/// Whether a full-screen view has the terminal.
static OPEN: AtomicBool = AtomicBool::new(false);

/// Raw mode is on.
const RAW_MODE: u8 = 1;
/// The alternate screen and mouse capture are (or may be) on.
const ALTERNATE_SCREEN: u8 = 2;
/// Bracketed paste is on.
const PASTE: u8 = 4;
/// What [`restore_terminal`] has to undo.
static TERMINAL_STATE: AtomicU8 = AtomicU8::new(0);

/// Undoes whatever [`TerminalGuard::enter`] set up, once.
fn restore_terminal() -> io::Result<()> {
    let state = TERMINAL_STATE.swap(0, Ordering::SeqCst);
    let mut result = Ok(());
    if state & PASTE != 0 {
        result = execute!(io::stdout(), DisableBracketedPaste);
    }
    if state & ALTERNATE_SCREEN != 0 {
        result = result.and(execute!(
            io::stdout(),
            DisableMouseCapture,
            terminal::LeaveAlternateScreen,
            cursor::Show
        ));
    }
    if state & RAW_MODE != 0 {
        result = result.and(terminal::disable_raw_mode());
    }
    result
}

/// Puts the terminal into full-screen mode and back: raw mode, alternate
/// screen and mouse capture are undone by [`TerminalGuard::leave`], on drop
/// (errors, unwinding) and by a panic hook, whichever comes first.
struct TerminalGuard {
    _panic_hook: PanicHookGuard,
}

impl TerminalGuard {
    fn enter(paste: bool) -> io::Result<Self> {
        let guard = TerminalGuard {
            _panic_hook: PanicHookGuard::install(|| {
                let _ = restore_terminal();
            }),
        };
        terminal::enable_raw_mode()?;
        TERMINAL_STATE.fetch_or(RAW_MODE, Ordering::SeqCst);
        TERMINAL_STATE.fetch_or(ALTERNATE_SCREEN, Ordering::SeqCst);
        execute!(
            io::stdout(),
            terminal::EnterAlternateScreen,
            EnableMouseCapture
        )?;
        if paste {
            TERMINAL_STATE.fetch_or(PASTE, Ordering::SeqCst);
            execute!(io::stdout(), EnableBracketedPaste)?;
        }
        Ok(guard)
    }

    /// Restores the terminal, reporting any error.
    fn leave(self) -> io::Result<()> {
        restore_terminal()
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = restore_terminal();
        OPEN.store(false, Ordering::SeqCst);
    }
}

type PanicHook = Box<dyn Fn(&panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Runs a function before the installed panic hook while it lives, so the
/// panic message is printed on a usable terminal, and reinstates the previous
/// hook when dropped. While the thread is panicking the hooks cannot be
/// swapped, so the chaining hook then stays; it only calls `restore` and the
/// previous hook.
pub(crate) struct PanicHookGuard {
    previous: Option<Arc<PanicHook>>,
}

impl PanicHookGuard {
    pub(crate) fn install(restore: fn()) -> Self {
        let previous: Arc<PanicHook> = Arc::new(panic::take_hook());
        let chained = Arc::clone(&previous);
        // Only a panic on the view's own thread ends it; one on another thread (a
        // background job) must not reset the terminal under the open view.
        let view_thread = std::thread::current().id();
        panic::set_hook(Box::new(move |info| {
            if std::thread::current().id() == view_thread {
                restore();
            }
            chained(info);
        }));
        PanicHookGuard {
            previous: Some(previous),
        }
    }
}

impl Drop for PanicHookGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Some(previous) = self.previous.take() {
            drop(panic::take_hook());
            if let Ok(previous) = Arc::try_unwrap(previous) {
                panic::set_hook(previous);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static RESTORED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn panic_hook_restores_before_reporting_and_is_removed_after() {
        fn restore() {
            RESTORED.fetch_add(1, Ordering::SeqCst);
        }
        let guard = PanicHookGuard::install(restore);
        let result = panic::catch_unwind(|| panic!("inside the pager"));
        assert!(result.is_err());
        assert_eq!(RESTORED.load(Ordering::SeqCst), 1);
        drop(guard);
        let result = panic::catch_unwind(|| panic!("after the pager"));
        assert!(result.is_err());
        assert_eq!(RESTORED.load(Ordering::SeqCst), 1, "hook was removed");
    }
}
