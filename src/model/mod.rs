//! The model (model): the values the engines work on — the configuration file and its
//! settings, the aliases file, themes, keymaps, command history and the account server's
//! wire protocol. It imports only the foundation.

pub mod aliases;
pub mod config;
pub mod history;
pub mod keymap;
pub mod protocol;
pub mod settings;
pub mod theme;
