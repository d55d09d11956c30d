//! The hub: the one core that owns the state store, the virtual filesystem and settings.
//! The REPL, `-c`, stdin scripts and (later) the TUI and script runtime are faces over it.

use crate::settings;
use crate::store::{KvTable, Store, DB_FILE};
use crate::vfs::Vfs;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Default, Clone)]
pub struct HubOptions {
    /// `--home DIR`.
    pub home: Option<PathBuf>,
    /// `--no-color` (NO_COLOR is read here too).
    pub no_color: bool,
}

pub struct Hub {
    pub home: PathBuf,
    pub store: Arc<Store>,
    pub vfs: Vfs,
    /// Colour is forbidden by `--no-color` or `NO_COLOR`.
    pub no_color: bool,
    /// Identifies this process's session in the history and the job table.
    pub session_id: String,
    /// This process's background jobs.
    pub jobs: crate::jobs::Jobs,
}

/// A setting's value: the stored one when it is still valid, else the default.
fn effective(key: &str, stored: Option<String>) -> String {
    stored
        .filter(|v| settings::validate(key, v).is_ok())
        .or_else(|| settings::find(key).map(|d| d.default.to_string()))
        .unwrap_or_default()
}

/// A numeric setting's value, falling back to its default when it does not parse.
pub fn number(key: &str, value: &str) -> u64 {
    value.parse().unwrap_or_else(|_| {
        settings::find(key)
            .and_then(|d| d.default.parse().ok())
            .unwrap_or(0)
    })
}

/// Where state lives: `--home`, else `$VALYXO_HOME`, else the platform data directory.
pub fn resolve_home(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(h) = flag {
        return Ok(h);
    }
    if let Some(h) = std::env::var_os("VALYXO_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    let dirs = directories::ProjectDirs::from("dev", "Valyxo", "valyxo").context(
        "cannot find a home directory for Valyxo's state; pass --home DIR or set VALYXO_HOME",
    )?;
    Ok(dirs.data_dir().to_path_buf())
}

impl Hub {
    pub fn open(opts: HubOptions) -> Result<Arc<Hub>> {
        let home = resolve_home(opts.home)?;
        std::fs::create_dir_all(&home)
            .with_context(|| format!("cannot create the Valyxo home {}", home.display()))?;
        let store = Arc::new(Store::open(&home.join(DB_FILE))?);
        let vfs = Vfs::new(store.clone()).context("cannot open the virtual filesystem")?;
        let no_color = opts.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let session_id = format!("{}-{}", std::process::id(), crate::store::now_ms());
        Ok(Arc::new(Hub {
            home,
            store,
            vfs,
            no_color,
            session_id,
            jobs: Default::default(),
        }))
    }

    /// The value of a setting (stored, or its default). Unknown keys give an empty string.
    pub fn setting(&self, key: &str) -> String {
        effective(
            key,
            self.store.kv_get(KvTable::Settings, key).ok().flatten(),
        )
    }

    /// Every setting read at once (one query), for code that needs several of them.
    pub fn settings_snapshot(&self) -> impl Fn(&str) -> String {
        let stored: std::collections::HashMap<String, String> = self
            .store
            .kv_list(KvTable::Settings)
            .unwrap_or_default()
            .into_iter()
            .collect();
        move |key| effective(key, stored.get(key).cloned())
    }

    /// A numeric setting (its default when the stored value does not parse).
    pub fn setting_u64(&self, key: &str) -> u64 {
        number(key, &self.setting(key))
    }

    pub fn setting_bool(&self, key: &str) -> bool {
        self.setting(key) == "true"
    }

    /// Whether to colour a stream that is (or is not) a terminal.
    pub fn color_for(&self, is_tty: bool) -> bool {
        if self.no_color {
            return false;
        }
        match self.setting("color").as_str() {
            "always" => true,
            "never" => false,
            _ => is_tty,
        }
    }
}
