//! The integration tests: one test program (so the library links once), one module per area,
//! each running the real binary, a real server on 127.0.0.1 or a real pseudo-terminal.
//! Suites that need system packages are `#[ignore]`d here and run by `.ci/run`.

// Each module uses the helpers it needs; not every helper is used by every build.
#![allow(dead_code)]

mod common;

mod assistant;
mod cli;
#[cfg(feature = "server")]
mod connections;
mod crash;
#[cfg(feature = "server")]
mod examples;
mod full_disk;
mod grep_vs_rg;
mod look;
mod manuals;
mod new;
mod repl;
#[cfg(feature = "server")]
mod scale;
mod scripts;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
mod site;
#[cfg(feature = "server")]
mod sync;
mod vfs;
mod web;
