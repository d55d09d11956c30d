//! The engines (engine): the hub and what does the work — the shell and its commands, the
//! script runtime, jobs and plugins, manuals, highlighting, the assistant and sync clients,
//! and recovery copies. They import the model and the foundation, never a face.

pub mod assistant;
pub mod commands;
pub mod highlight;
pub mod hub;
pub mod jobs;
pub mod manual;
pub mod markdown;
pub mod plugins;
pub mod recovery;
pub mod script;
pub mod shell;
pub mod snippets;
pub mod sync;
pub mod templates;
