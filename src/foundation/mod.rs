//! The foundation (foundation): what everything else stands on and what imports nothing above
//! it — the SQLite store, the virtual filesystem, text and ANSI helpers, OS calls, signals, the
//! terminal watcher, memory budgets, the three-way merge and the HTTP clients' common setup.

pub mod ansi;
pub mod budget;
pub mod merge;
pub mod net;
pub mod os;
pub mod signals;
pub mod store;
pub(crate) mod term;
pub mod text;
pub mod vfs;
