//! Cancellation. In the foreground, Ctrl-C raises one process-wide flag that long-running
//! commands poll, so an interrupt stops the running command and returns to the prompt instead
//! of killing the hub. A background job runs its threads under its own token instead, so
//! `kill %N` stops that job alone and Ctrl-C at the prompt leaves jobs running.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

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
