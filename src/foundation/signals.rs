//! Cancellation and termination (foundation). In the foreground, Ctrl-C raises one
//! process-wide flag that long-running commands poll, so an interrupt stops the running
//! command and returns to the prompt instead of killing the hub. A background job runs its
//! threads under its own token instead, so `kill %N` stops that job alone and Ctrl-C at the
//! prompt leaves jobs running.
//!
//! A termination signal (SIGTERM, SIGHUP — the terminal went away —, SIGQUIT) ends the
//! process at once, unless work that must not be cut short holds it ([`hold`]): a full-screen
//! view giving the terminal back, a program's checkout being written back. Then the signal
//! is noted ([`terminating`]), that work finishes, and when the last hold is let go the
//! signal takes its default effect.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Pieces of work that hold off a termination signal.
static HOLDS: AtomicUsize = AtomicUsize::new(0);
/// The termination signal waiting for the holds to end (0: none).
static TERMINATING: AtomicI32 = AtomicI32::new(0);

/// While alive, a termination signal waits: [`terminating`] says it came, and the process
/// ends when the last hold is dropped.
pub struct Hold(());

/// Holds off termination signals until the returned value is dropped.
pub fn hold() -> Hold {
    install_termination();
    HOLDS.fetch_add(1, Ordering::SeqCst);
    Hold(())
}

impl Drop for Hold {
    fn drop(&mut self) {
        if HOLDS.fetch_sub(1, Ordering::SeqCst) == 1 {
            let signal = TERMINATING.load(Ordering::SeqCst);
            if signal != 0 {
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            }
        }
    }
}

/// The termination signal that arrived while work held it off, if any: that work should
/// finish quickly (stop its program, write its copy) and let go.
pub fn terminating() -> Option<i32> {
    match TERMINATING.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Installs the handlers of termination signals, once per process.
fn install_termination() {
    use signal_hook::consts::{SIGHUP, SIGQUIT, SIGTERM};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for signal in [SIGTERM, SIGHUP, SIGQUIT] {
            // SAFETY: the action only loads and stores atomics and calls
            // `emulate_default_handler`, which is async-signal-safe.
            let registered = unsafe {
                signal_hook::low_level::register(signal, move || {
                    if HOLDS.load(Ordering::SeqCst) == 0 {
                        let _ = signal_hook::low_level::emulate_default_handler(signal);
                        return;
                    }
                    TERMINATING.store(signal, Ordering::SeqCst);
                    // The last hold may have gone between the two looks.
                    if HOLDS.load(Ordering::SeqCst) == 0 {
                        let _ = signal_hook::low_level::emulate_default_handler(signal);
                    }
                })
            };
            // Without the handler a signal still ends the process, only without waiting.
            let _ = registered;
        }
    });
}

/// A cancellation flag; `None` in [`adopt`] means the process-wide Ctrl-C flag.
pub type Token = Arc<AtomicBool>;

thread_local! {
    static TOKEN: RefCell<Option<Token>> = const { RefCell::new(None) };
}

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Routes SIGINT to the flag instead of terminating the process (interactive sessions).
pub fn install() -> std::io::Result<()> {
    signal_hook::flag::register(signal_hook::consts::SIGINT, flag().clone())?;
    Ok(())
}

/// Whether the work running on this thread should stop: its job was killed, or (in the
/// foreground) Ctrl-C was pressed.
pub fn interrupted() -> bool {
    TOKEN.with(|t| match &*t.borrow() {
        Some(tok) => tok.load(Ordering::Relaxed),
        None => flag().load(Ordering::Relaxed),
    })
}

/// The token that cancels this thread's work, for threads it spawns to [`adopt`]. In the
/// foreground this is the process-wide Ctrl-C flag.
pub fn current() -> Token {
    TOKEN
        .with(|t| t.borrow().clone())
        .unwrap_or_else(|| flag().clone())
}

/// Makes `token` the one this thread obeys (a job thread, or a helper thread of one).
pub fn adopt(token: Token) {
    let global = Arc::ptr_eq(&token, flag());
    TOKEN.with(|t| *t.borrow_mut() = (!global).then_some(token));
}

/// Clears the flag (before each new line at the prompt).
pub fn reset() {
    flag().store(false, Ordering::Relaxed);
}

/// Raises the flag, as a Ctrl-C would.
pub fn raise() {
    flag().store(true, Ordering::Relaxed);
}

/// The error a command returns when it stops because of Ctrl-C.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// `Err(Interrupted)` once Ctrl-C was pressed.
pub fn check() -> Result<(), Interrupted> {
    if interrupted() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

pub fn is_interrupt(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Interrupted>().is_some()
}
