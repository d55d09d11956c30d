//! Ctrl-C: one process-wide flag that long-running commands poll, so an interrupt stops the
//! running command and returns to the prompt instead of killing the hub.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Routes SIGINT to the flag instead of terminating the process (interactive sessions).
pub fn install() -> std::io::Result<()> {
    signal_hook::flag::register(signal_hook::consts::SIGINT, flag().clone())?;
    Ok(())
}

pub fn interrupted() -> bool {
    flag().load(Ordering::Relaxed)
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
