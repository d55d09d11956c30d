//! Memory budgets (foundation): the process's global allocator counts, per thread, the bytes
//! allocated and freed while that thread works under a [`Budget`], so a script's memory is
//! measured whatever holds it — strings, arrays, maps, closures, the engine's own structures.
//!
//! Counting alone cannot refuse an allocation (an allocator that fails makes Rust abort the
//! process), so a budget is enforced in two places that can return an error instead:
//!
//! - the script engine checks [`Budget::exceeded`] at every operation and stops the script;
//! - the functions whose result can be far larger than their arguments (string `replace`,
//!   `pad`, `split`…, see `script::guard`) compute the result's size first and ask
//!   [`admit`] before they allocate it.
//!
//! Between two operations a script can therefore go over its budget by at most one value
//! within the engine's size limits, never by an amount it chooses.
//!
//! Threads outside any budget pay one thread-local read per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

/// The global allocator: the system's, with per-thread counting into the current budget.
pub struct Counting;

thread_local! {
    /// The budget this thread charges, kept alive by the [`Scope`] that set it.
    static CURRENT: Cell<*const Budget> = const { Cell::new(std::ptr::null()) };
}

#[inline]
fn charge(delta: isize) {
    // `try_with`: a thread being torn down has no budget any more.
    let _ = CURRENT.try_with(|c| {
        let p = c.get();
        if !p.is_null() {
            // SAFETY: a non-null pointer is set only by `Budget::enter`, whose scope holds a
            // strong reference until it resets the pointer.
            let b = unsafe { &*p };
            let now = b.used.fetch_add(delta, Ordering::Relaxed) + delta;
            if delta > 0 && now > b.peak.load(Ordering::Relaxed) {
                b.peak.store(now, Ordering::Relaxed);
            }
        }
    });
}

// SAFETY: every call is passed to the system allocator unchanged; counting touches no heap.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            charge(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            charge(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        charge(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            charge(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Memory one piece of work may hold: bytes allocated and not yet freed by the threads
/// working under it.
#[derive(Debug)]
pub struct Budget {
    used: AtomicIsize,
    peak: AtomicIsize,
    /// 0: counted, never refused.
    limit: usize,
}

/// Refused: the allocation would take the work over its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverBudget {
    pub limit: usize,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "out of memory: the limit is {}", human(self.limit))
    }
}

impl std::error::Error for OverBudget {}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicIsize::new(0),
            peak: AtomicIsize::new(0),
            limit,
        })
    }

    /// Charges this thread's allocations to the budget until the scope is dropped.
    pub fn enter(self: &Arc<Budget>) -> Scope {
        let held = self.clone();
        let previous = CURRENT.with(|c| c.replace(Arc::as_ptr(&held)));
        Scope {
            previous,
            _held: held,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now (what the budget's threads allocated and have not freed).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed).max(0) as usize
    }

    /// The most ever held at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed).max(0) as usize
    }

    /// Whether the work holds more than its limit.
    pub fn exceeded(&self) -> bool {
        self.limit > 0 && self.used() > self.limit
    }

    /// Whether `extra` more bytes fit.
    pub fn fits(&self, extra: usize) -> bool {
        self.limit == 0 || self.used().saturating_add(extra) <= self.limit
    }
}

/// While alive, the thread charges its allocations to a budget; dropping it restores the
/// budget that was current before.
pub struct Scope {
    previous: *const Budget,
    _held: Arc<Budget>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.previous;
        let _ = CURRENT.try_with(|c| c.set(previous));
    }
}

/// The budget this thread works under, for threads it starts to [`Budget::enter`] as well.
pub fn current() -> Option<Arc<Budget>> {
    let p = CURRENT.try_with(Cell::get).ok()?;
    if p.is_null() {
        return None;
    }
    // SAFETY: the pointer came from `Arc::as_ptr` of a budget that the current scope keeps
    // alive; taking one more strong reference for the caller keeps it valid.
    unsafe {
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

/// Asks before allocating `bytes` on this thread: refused when the current budget would be
/// exceeded. Threads without a budget are always admitted.
pub fn admit(bytes: usize) -> Result<(), OverBudget> {
    let p = CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null());
    if p.is_null() {
        return Ok(());
    }
    // SAFETY: as in `charge`.
    let b = unsafe { &*p };
    if b.fits(bytes) {
        Ok(())
    } else {
        Err(OverBudget { limit: b.limit })
    }
}

/// `1536` → "1.5 KiB", `67108864` → "64 MiB".
pub fn human(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_counts_what_its_thread_holds() {
        let b = Budget::new(1 << 20);
        let v = {
            let _s = b.enter();
            let v: Vec<u8> = Vec::with_capacity(300_000);
            assert!(b.used() >= 300_000);
            assert!(admit(600_000).is_ok());
            assert_eq!(admit(800_000), Err(OverBudget { limit: 1 << 20 }));
            v
        };
        // Outside the scope nothing is charged or refused.
        let w: Vec<u8> = Vec::with_capacity(5 << 20);
        assert!(admit(usize::MAX).is_ok());
        assert!(b.used() < 400_000);
        drop((v, w));
        assert!(b.peak() >= 300_000);
    }

    #[test]
    fn a_budget_follows_work_to_other_threads_and_refuses_when_exceeded() {
        let b = Budget::new(100_000);
        let _s = b.enter();
        let inherited = current().expect("a current budget");
        std::thread::spawn(move || {
            let _s = inherited.enter();
            let v = vec![1u8; 200_000];
            assert!(current().unwrap().exceeded());
            drop(v);
        })
        .join()
        .unwrap();
        assert!(!b.exceeded());
        assert!(b.peak() >= 200_000);
        assert_eq!(human(64 << 20), "64 MiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(10), "10 bytes");
    }
}
