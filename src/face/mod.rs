//! The faces (face): what a person or a program talks to — the command line, the interactive
//! shell, the editor, the pager and the account server. They sit on top and import from
//! every layer below.

pub mod cli;
pub mod editor;
pub mod pager;
pub mod repl;
#[cfg(feature = "server")]
pub mod server;
