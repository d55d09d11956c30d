//! The faces (face): what a person or a program talks to — the command line, the interactive
//! shell, the editor, the pager and the account server, and the full-screen views' one event
//! loop and line input. They sit on top and import from
//! every layer below.

pub mod cli;
pub mod editor;
pub mod pager;
pub mod repl;
#[cfg(feature = "server")]
pub mod server;
pub mod view;
