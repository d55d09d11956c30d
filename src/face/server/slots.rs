//! Admission counts (server): how many of some costly thing (script executions, uploads) run
//! at once, in total and per account. A request either gets a slot at once or is told why
//! not, so nothing waits in line holding a thread; the slot is given back when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Counts {
    total: usize,
    by_account: HashMap<i64, usize>,
}

/// Slots for some kind of work.
pub struct Slots {
    total: usize,
    per_account: usize,
    counts: Arc<Mutex<Counts>>,
}

/// Why no slot was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// The account already holds this many, its most.
    Account(usize),
    /// Every slot is taken.
    Server,
}

/// One slot, given back when dropped.
pub struct Slot {
    account: i64,
    counts: Arc<Mutex<Counts>>,
}

impl Slots {
    /// At most `total` at once, and `per_account` for one account.
    pub fn new(total: usize, per_account: usize) -> Slots {
        Slots {
            total: total.max(1),
            per_account: per_account.max(1),
            counts: Arc::default(),
        }
    }

    /// A slot for `account`, or why there is none (never waits).
    pub fn take(&self, account: i64) -> Result<Slot, Busy> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mine = c.by_account.get(&account).copied().unwrap_or(0);
        if mine >= self.per_account {
            return Err(Busy::Account(self.per_account));
        }
        if c.total >= self.total {
            return Err(Busy::Server);
        }
        c.total += 1;
        *c.by_account.entry(account).or_default() += 1;
        Ok(Slot {
            account,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(n) = c.by_account.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                c.by_account.remove(&self.account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_per_account_and_in_total() {
        let s = Slots::new(3, 2);
        let a1 = s.take(1).unwrap();
        let _a2 = s.take(1).unwrap();
        assert_eq!(s.take(1).err(), Some(Busy::Account(2)));
        let _b1 = s.take(2).unwrap();
        assert_eq!(s.take(3).err(), Some(Busy::Server));
        drop(a1);
        let _c = s.take(3).unwrap();
        assert_eq!(s.take(4).err(), Some(Busy::Server));
    }
}
