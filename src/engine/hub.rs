//! The hub (engine): the one core that owns the state store, the virtual filesystem, the
//! settings (from `config.toml`), the aliases (from `aliases.toml`) and the theme. The REPL,
//! `-c`, stdin scripts and the script runtime are faces over it.

use crate::aliases::{self, Aliases};
use crate::config::{self, Config};
use crate::settings;
use crate::store::{KvTable, Store, DB_FILE};
use crate::theme::{self, Theme};
use crate::vfs::Vfs;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

#[derive(Default, Clone)]
pub struct HubOptions {
    /// `--home DIR`.
    pub home: Option<PathBuf>,
    /// `--no-color` (NO_COLOR is read here too).
    pub no_color: bool,
    /// Open the state store on its first use rather than at once, so a run that needs
    /// nothing stored (`valyxo -c true`) never opens it. Taken only when the store's header
    /// says it is up to date; an older store is opened (and brought up to date) at once.
    pub lazy_store: bool,
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
    /// The settings from `config.toml`, re-read when the file changes.
    config: RwLock<Config>,
    /// The aliases from `aliases.toml` (beside `config.toml`), re-read when the file changes.
    aliases: RwLock<Aliases>,
    /// The theme, loaded on first use.
    theme: RwLock<Option<Arc<Theme>>>,
    /// The user theme files behind the theme in use (or behind the chosen theme that failed
    /// to load), with their stamps when read.
    theme_files: std::sync::Mutex<Vec<(PathBuf, config::Stamp)>>,
}

fn project_dirs() -> Result<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "Valyxo", "valyxo").context(
        "cannot find a home directory for Valyxo's state; pass --home DIR or set VALYXO_HOME",
    )
}

/// (home, config file): a home given by `--home` or `$VALYXO_HOME` keeps its `config.toml`
/// beside the store, so it is self-contained; the default home uses the platform config
/// directory.
fn resolve(flag: Option<PathBuf>) -> Result<(PathBuf, PathBuf)> {
    let explicit = flag.or_else(|| {
        std::env::var_os("VALYXO_HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    });
    if let Some(h) = explicit {
        let cfg = h.join(config::FILE);
        return Ok((h, cfg));
    }
    let dirs = project_dirs()?;
    Ok((
        dirs.data_dir().to_path_buf(),
        dirs.config_dir().join(config::FILE),
    ))
}

/// The home directory that `--home DIR` (or `VALYXO_HOME`, or the platform default) names.
pub fn home_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    Ok(resolve(flag)?.0)
}

/// Reports a config file's problems on standard error, escaped: a problem quotes the value
/// it is about, which is whatever the file holds.
fn report(problems: &[config::Problem]) {
    for p in problems {
        let p = crate::text::clean_message(&p.to_string(), crate::text::MESSAGE_MAX);
        eprintln!("valyxo: {p}");
    }
}

impl Hub {
    pub fn open(opts: HubOptions) -> Result<Arc<Hub>> {
        let (home, config_path) = resolve(opts.home)?;
        {
            use std::os::unix::fs::DirBuilderExt;
            // A new home is the user's alone (a home that exists is left as it is).
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&home)
                .with_context(|| format!("cannot create the Valyxo home {}", home.display()))?;
        }
        let db = home.join(DB_FILE);
        let lazy = opts.lazy_store && Store::is_current(&db);
        let store = Arc::new(if lazy {
            Store::open_lazily(&db)
        } else {
            Store::open(&db)?
        });
        let vfs = Vfs::new(store.clone()).context("cannot open the virtual filesystem")?;
        let no_color = opts.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let session_id = format!("{}-{}", std::process::id(), crate::store::now_ms());
        let aliases_path = config_path.with_file_name(aliases::FILE);
        if !lazy {
            // Only an opened store can still hold what older homes kept in it.
            move_stored_settings(&store, &config_path);
            move_stored_aliases(&store, &aliases_path);
        }
        let config = Config::load(&config_path);
        report(&config.problems);
        let aliases = Aliases::load(&aliases_path);
        report(&aliases.problems);
        let hub = Arc::new(Hub {
            home,
            store,
            vfs,
            no_color,
            session_id,
            jobs: Default::default(),
            config: RwLock::new(config),
            aliases: RwLock::new(aliases),
            theme: RwLock::new(None),
            theme_files: Default::default(),
        });
        hub.back_up_when_due();
        hub.apply_limits();
        Ok(hub)
    }

    /// Applies the settings that the layers below keep process-wide.
    pub fn apply_limits(&self) {
        crate::vfs::set_max_stored_file(self.settings().vfs.max_file_size.0);
    }

    /// Backups of the store kept (setting store.backups; 0: none made).
    pub fn backups_kept(&self) -> usize {
        self.settings().store.backups
    }

    /// Makes the day's backup of the store on a thread of its own when the newest is a day
    /// old. A process that ends first leaves no half backup; the next one makes it. A store
    /// opened on first use is looked at then: a run that never opens it changed nothing in it.
    fn back_up_when_due(&self) {
        let keep = self.backups_kept();
        let path = self.store.path().to_path_buf();
        if keep == 0 || path == std::path::Path::new(":memory:") {
            return;
        }
        self.store.on_first_open(Box::new(move || {
            if !crate::store::care::backup_due(&path, std::time::Duration::from_secs(86_400)) {
                return;
            }
            let _ = std::thread::Builder::new()
                .name("backup".into())
                .spawn(move || {
                    if let Err(e) = crate::store::care::backup(&path, keep) {
                        eprintln!("valyxo: {e:#}");
                    }
                });
        }));
    }

    /// The config file's path.
    pub fn config_path(&self) -> PathBuf {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .path
            .clone()
    }

    /// Where user themes live.
    pub fn themes_dir(&self) -> PathBuf {
        theme::user_dir(&self.config_path())
    }

    /// Re-reads `config.toml` if it changed on disk since it was read (another session or
    /// an editor wrote it), reporting its problems; returns whether it changed.
    pub fn reload_config(&self) -> bool {
        let path = {
            let c = self.config.read().unwrap_or_else(|e| e.into_inner());
            if !c.changed_on_disk() {
                return false;
            }
            c.path.clone()
        };
        let fresh = Config::load(&path);
        report(&fresh.problems);
        let theme_changed = {
            let mut c = self.config.write().unwrap_or_else(|e| e.into_inner());
            let changed = c.get("theme") != fresh.get("theme");
            *c = fresh;
            changed
        };
        if theme_changed {
            *self.theme.write().unwrap_or_else(|e| e.into_inner()) = None;
        }
        self.apply_limits();
        true
    }

    /// The settings, typed: those `config.toml` sets, else the defaults.
    pub fn settings(&self) -> Arc<settings::Settings> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .settings()
            .clone()
    }

    /// A setting as text, to show: as `config.toml` has it (normalised), else its default.
    /// Unknown keys give "".
    pub fn setting_text(&self, key: &str) -> String {
        let c = self.config.read().unwrap_or_else(|e| e.into_inner());
        c.get(key)
            .or_else(|| settings::find(key).map(|d| d.default))
            .unwrap_or_default()
            .to_string()
    }

    /// The configured settings under `prefix` (such as `editor.keys.`): the rest of each
    /// name, and its value, sorted by name.
    pub fn settings_under(&self, prefix: &str) -> Vec<(String, String)> {
        let c = self.config.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, String)> = c
            .values()
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
            .collect();
        v.sort();
        v
    }

    /// Changes (`Some`) or resets (`None`) a setting in `config.toml`. The value is checked
    /// first; a theme must load before it is chosen, so a bad one leaves the current theme.
    pub fn set_setting(&self, key: &str, value: Option<&str>) -> Result<()> {
        let def = settings::find(key);
        let value = match value {
            Some(v) => Some(settings::validate(key, v)?),
            // A key binding is reset by being removed.
            None if settings::is_family(key) => None,
            None => {
                settings::validate(key, def.map_or("", |d| d.default))?;
                None
            }
        };
        let mut new_theme = None;
        if key == "theme" {
            let name = value.as_deref().unwrap_or(theme::DEFAULT);
            new_theme = Some(Arc::new(theme::load(name, &self.themes_dir())?));
        }
        let written = config::write(&self.config_path(), &[(key, value.as_deref())])?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = written;
        if let Some(t) = new_theme {
            self.watch(&t.files);
            *self.theme.write().unwrap_or_else(|e| e.into_inner()) = Some(t);
        }
        self.apply_limits();
        Ok(())
    }

    /// The aliases, re-read first if `aliases.toml` changed on disk (another session or an
    /// editor wrote it; its problems are reported then).
    fn fresh_aliases(&self) -> std::sync::RwLockReadGuard<'_, Aliases> {
        let changed = {
            let a = self.aliases.read().unwrap_or_else(|e| e.into_inner());
            if !a.changed_on_disk() {
                return a;
            }
            a.path.clone()
        };
        let fresh = Aliases::load(&changed);
        report(&fresh.problems);
        *self.aliases.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        self.aliases.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of the alias `name`.
    pub fn alias(&self, name: &str) -> Option<String> {
        self.fresh_aliases().get(name).map(str::to_string)
    }

    /// Every alias, by name.
    pub fn aliases(&self) -> std::collections::BTreeMap<String, String> {
        self.fresh_aliases().all().clone()
    }

    /// Sets (`Some`) or removes (`None`) aliases in `aliases.toml`; names are checked
    /// ([`aliases::check_name`]), values are the caller's to check.
    pub fn set_aliases(&self, changes: &[(&str, Option<&str>)]) -> Result<()> {
        let path = self
            .aliases
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .path
            .clone();
        let written = aliases::write(&path, changes)?;
        *self.aliases.write().unwrap_or_else(|e| e.into_inner()) = written;
        Ok(())
    }

    /// Remembers `files` (with their current stamps) as the ones behind the theme.
    fn watch(&self, files: &[PathBuf]) {
        *self.theme_files.lock().unwrap_or_else(|e| e.into_inner()) = files
            .iter()
            .map(|p| (p.clone(), config::stamp(p)))
            .collect();
    }

    /// Re-reads the theme if a user file behind it changed (someone is editing their
    /// theme). A theme that no longer loads is reported and the one in use is kept; a
    /// chosen theme that failed before is taken up once it loads.
    pub fn reload_theme(&self) {
        let changed = self
            .theme_files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(p, s)| config::stamp(p) != *s);
        if !changed {
            return;
        }
        let name = self.settings().theme.clone();
        match theme::load(&name, &self.themes_dir()) {
            Ok(t) => {
                self.watch(&t.files);
                *self.theme.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(t));
            }
            Err(e) => {
                eprintln!("valyxo: {e}\nvalyxo: keeping the theme in use until '{name}' loads");
                // Report this version once; the next change is looked at again.
                let mut files = self.theme_files.lock().unwrap_or_else(|e| e.into_inner());
                for (p, s) in files.iter_mut() {
                    *s = config::stamp(p);
                }
            }
        }
    }

    /// The current theme. A configured theme that does not load is reported once and the
    /// default is used instead.
    pub fn theme(&self) -> Arc<Theme> {
        if let Some(t) = self
            .theme
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return t.clone();
        }
        let name = self.settings().theme.clone();
        let t = match theme::load(&name, &self.themes_dir()) {
            Ok(t) => {
                self.watch(&t.files);
                t
            }
            Err(e) => {
                self.watch(&[self.themes_dir().join(format!("{name}.toml"))]);
                eprintln!(
                    "valyxo: {e}\nvalyxo: theme '{name}' cannot be used; using '{}'",
                    theme::DEFAULT
                );
                theme::load_builtin(theme::DEFAULT).expect("the built-in default theme loads")
            }
        };
        let t = Arc::new(t);
        *self.theme.write().unwrap_or_else(|e| e.into_inner()) = Some(t.clone());
        t
    }

    /// Whether to colour a stream that is (or is not) a terminal.
    pub fn color_for(&self, is_tty: bool) -> bool {
        if self.no_color {
            return false;
        }
        match self.settings().color {
            settings::ColorMode::Always => true,
            settings::ColorMode::Never => false,
            settings::ColorMode::Auto => is_tty,
        }
    }
}

/// Settings used to live in the store; a home that still has some moves them into
/// `config.toml` (where the file does not already set them) so nothing a user chose is lost.
fn move_stored_settings(store: &Store, config_path: &Path) {
    let stored = match store.kv_list(KvTable::Settings) {
        Ok(s) if !s.is_empty() => s,
        _ => return,
    };
    let current = Config::load(config_path);
    let moves: Vec<(&str, Option<&str>)> = stored
        .iter()
        .filter(|(k, v)| current.get(k).is_none() && settings::validate(k, v).is_ok())
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    if !moves.is_empty() {
        if let Err(e) = config::write(config_path, &moves) {
            eprintln!(
                "valyxo: cannot move settings into {}: {e:#}",
                config_path.display()
            );
            return;
        }
    }
    for (k, _) in &stored {
        let _ = store.kv_remove(KvTable::Settings, k);
    }
}

/// Aliases used to live in the store; a home that still has some moves them into
/// `aliases.toml` (where the file does not already have them) so none is lost. An alias
/// whose name may no longer be one (control characters) is reported once, with its value.
fn move_stored_aliases(store: &Store, path: &Path) {
    let stored = match store.kv_list(KvTable::Aliases) {
        Ok(s) if !s.is_empty() => s,
        _ => return,
    };
    let current = Aliases::load(path);
    let (movable, kept): (Vec<_>, Vec<_>) = stored
        .iter()
        .partition(|(k, _)| aliases::check_name(k).is_ok());
    let moves: Vec<(&str, Option<&str>)> = movable
        .iter()
        .filter(|(k, _)| current.get(k).is_none())
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    if !moves.is_empty() {
        if let Err(e) = aliases::write(path, &moves) {
            let e = crate::text::clean_message(&format!("{e:#}"), crate::text::MESSAGE_MAX);
            eprintln!("valyxo: cannot move aliases into {}: {e}", path.display());
            return;
        }
    }
    for (k, _) in &movable {
        let _ = store.kv_remove(KvTable::Aliases, k);
    }
    // Said once, with its value, so nothing of it is lost; the store keeps no copy to be
    // warned about at every start.
    for (k, v) in kept {
        eprintln!(
            "valyxo: alias {} was not kept: its name holds characters an alias may no longer \
             have; it was: {}",
            crate::text::escape(k),
            crate::text::shell_quote(v)
        );
        let _ = store.kv_remove(KvTable::Aliases, k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_alias_one_hub_sets_is_seen_by_another_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            Hub::open(HubOptions {
                home: Some(dir.path().to_path_buf()),
                lazy_store: true,
                ..Default::default()
            })
            .unwrap()
        };
        let (a, b) = (open(), open());
        assert_eq!(b.alias("ll"), None);
        a.set_aliases(&[("ll", Some("ls -l")), ("g.s", Some("git status"))])
            .unwrap();
        assert_eq!(b.alias("ll").as_deref(), Some("ls -l"));
        b.set_aliases(&[("ll", None)]).unwrap();
        assert_eq!(a.aliases().into_keys().collect::<Vec<_>>(), ["g.s"]);
        assert_eq!(
            mode(&dir.path().join(crate::aliases::FILE)),
            0o600,
            "the aliases file is private"
        );
        assert!(!a.store.is_open() && !b.store.is_open());
    }

    /// A home whose day's backup is due gets it once the store is opened, not before: a run
    /// that never opens the store changed nothing in it.
    #[test]
    fn the_days_backup_is_made_when_the_store_is_first_opened() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        let mark = crate::store::care::backup_dir(&db).join(".first-seen");
        std::fs::create_dir_all(mark.parent().unwrap()).unwrap();
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(172_800);
        std::fs::File::create(&mark)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        let hub = Hub::open(HubOptions {
            home: Some(dir.path().to_path_buf()),
            lazy_store: true,
            ..Default::default()
        })
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(crate::store::care::backups(&db).is_empty());
        hub.store.kv_list(KvTable::Env).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while crate::store::care::backups(&db).is_empty() {
            assert!(std::time::Instant::now() < deadline, "no backup was made");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn a_new_home_and_its_store_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("a/new/home");
        let hub = Hub::open(HubOptions {
            home: Some(home.clone()),
            no_color: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(mode(&home), 0o700);
        assert_eq!(mode(&home.join(DB_FILE)), 0o600);
        assert_eq!(hub.store.path(), home.join(DB_FILE));
        // A home that exists is left as it is; its store is made private.
        drop(hub);
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::set_permissions(home.join(DB_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        Hub::open(HubOptions {
            home: Some(home.clone()),
            no_color: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(mode(&home), 0o750);
        assert_eq!(mode(&home.join(DB_FILE)), 0o600);
    }
}
