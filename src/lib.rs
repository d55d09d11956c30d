//! Valyxo: a terminal developer hub. One core ([`hub::Hub`]) with thin faces over it: the
//! interactive shell ([`repl`]), the non-interactive CLI ([`cli`]) and scripts.

pub mod assistant;
pub mod budget;
pub mod cli;
pub mod commands;
pub mod config;
pub mod editor;
pub mod highlight;
pub mod history;
pub mod hub;
pub mod jobs;
pub mod keymap;
pub mod manual;
pub mod merge;
pub mod pager;
pub mod plugins;
pub mod protocol;
pub mod repl;
pub mod script;
pub mod server;
pub mod settings;
pub mod shell;
pub mod signals;
pub mod store;
pub mod sync;
mod term;
pub mod text;
pub mod theme;
pub mod vfs;

/// Every allocation is counted against the memory budget of the work its thread does, if any
/// ([`budget`]).
#[global_allocator]
static ALLOCATOR: budget::Counting = budget::Counting;
