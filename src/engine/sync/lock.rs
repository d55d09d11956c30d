//! One sync at a time per home (engine): a lock file that the second sync finds taken.

use crate::hub::Hub;
use anyhow::{bail, Context, Result};

/// Holds this home's sync lock: one sync at a time per home, so two never write the same
/// files or bases at once. Released when dropped (or when the process ends).
pub struct Lock {
    _file: std::fs::File,
}

/// Takes the lock (`sync.lock` in the home, private like everything there), or says that
/// another sync has it.
pub fn lock(hub: &Hub) -> Result<Lock> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = hub.home.join("sync.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(Lock { _file: f }),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("another sync is running in this home: wait for it to finish")
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}
