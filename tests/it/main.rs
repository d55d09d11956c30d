//! Valyxo's integration tests, in one crate so the library and its dependencies link once
//! and every test runs in one process: each module tests one face or part against the real
//! binary (`common::BIN`) with temporary homes, a real server on 127.0.0.1 and real
//! pseudo-terminals.

mod common;

mod assistant;
mod cli;
mod crash;
mod grep_vs_rg;
mod look;
mod manuals;
mod repl;
mod scripts;
mod server;
mod sync;
mod vfs;
