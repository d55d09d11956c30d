//! Project templates (engine): the built-in ones embedded in the binary, the user's own
//! (each folder of the templates folder, setting `new.templates`, or any folder given with
//! `new --from`), the checks on a new project's name, and making `~/Projects/NAME` from a
//! template with its placeholders filled ([`render`]). The `new` command drives it.
//!
//! The templates folder is `~/Projects/Templates` unless set otherwise: a folder of
//! `~/Projects` is a project to `sync`, so the user's templates go to the account and to
//! every machine with it, with the same rules (conflict copies, renames) as projects.

pub mod render;

use crate::hub::Hub;
use crate::vfs::{Kind, VPath, VfsError};
use anyhow::{anyhow, bail, Context, Result};

/// Where `new` makes projects.
pub const PROJECTS: &str = "/Projects";

/// A template built into the binary.
pub struct Builtin {
    pub name: &'static str,
    pub summary: &'static str,
    /// (path in the project, text with placeholders).
    pub files: &'static [(&'static str, &'static str)],
    /// What to run in the new project, one shell line each (with placeholders).
    pub next: &'static [&'static str],
}

macro_rules! file {
    ($path:literal, $src:literal) => {
        ($path, include_str!(concat!("files/", $src)))
    };
}

/// The built-in templates, by name.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "cli",
        summary: "A Python command-line tool (argparse, pyproject.toml)",
        files: &[
            file!("README.md", "cli/README.md"),
            file!(".gitignore", "cli/gitignore"),
            file!("pyproject.toml", "cli/pyproject.toml"),
            file!("{{name_snake}}/__init__.py", "cli/pkg/__init__.py"),
            file!("{{name_snake}}/__main__.py", "cli/pkg/__main__.py"),
        ],
        next: &["exec python3 -m {{name_snake}} --help"],
    },
    Builtin {
        name: "express",
        summary: "A Node.js web server on Express",
        files: &[
            file!("README.md", "express/README.md"),
            file!(".gitignore", "express/gitignore"),
            file!("package.json", "express/package.json"),
            file!("server.js", "express/server.js"),
        ],
        next: &["exec npm install", "exec npm start"],
    },
    Builtin {
        name: "flask",
        summary: "A Python web app on Flask",
        files: &[
            file!("README.md", "flask/README.md"),
            file!(".gitignore", "flask/gitignore"),
            file!("requirements.txt", "flask/requirements.txt"),
            file!("app.py", "flask/app.py"),
            file!("templates/index.html", "flask/index.html"),
        ],
        next: &[
            "exec pip install -r requirements.txt",
            "exec flask --app app run --debug",
        ],
    },
    Builtin {
        name: "html",
        summary: "A static web page: HTML, CSS and a script",
        files: &[
            file!("README.md", "html/README.md"),
            file!("index.html", "html/index.html"),
            file!("style.css", "html/style.css"),
            file!("script.js", "html/script.js"),
        ],
        next: &["exec python3 -m http.server 8000"],
    },
    Builtin {
        name: "node",
        summary: "A Node.js program with a test",
        files: &[
            file!("README.md", "node/README.md"),
            file!(".gitignore", "node/gitignore"),
            file!("package.json", "node/package.json"),
            file!("index.js", "node/index.js"),
            file!("index.test.js", "node/index.test.js"),
        ],
        next: &["exec node index.js"],
    },
    Builtin {
        name: "python",
        summary: "A Python program with a test",
        files: &[
            file!("README.md", "python/README.md"),
            file!(".gitignore", "python/gitignore"),
            file!("requirements.txt", "python/requirements.txt"),
            file!("main.py", "python/main.py"),
            file!("test_main.py", "python/test_main.py"),
        ],
        next: &["exec python3 main.py"],
    },
    Builtin {
        name: "react",
        summary: "A React app on Vite",
        files: &[
            file!("README.md", "react/README.md"),
            file!(".gitignore", "react/gitignore"),
            file!("package.json", "react/package.json"),
            file!("vite.config.js", "react/vite.config.js"),
            file!("index.html", "react/index.html"),
            file!("src/main.jsx", "react/main.jsx"),
            file!("src/App.jsx", "react/App.jsx"),
        ],
        next: &["exec npm install", "exec npm run dev"],
    },
    Builtin {
        name: "rhai",
        summary: "A Valyxo script (Rhai) run in the hub",
        files: &[
            file!("README.md", "rhai/README.md"),
            file!("main.rhai", "rhai/main.rhai"),
        ],
        next: &["run main.rhai"],
    },
    Builtin {
        name: "rust",
        summary: "A Rust program built with Cargo, with a test",
        files: &[
            file!("README.md", "rust/README.md"),
            file!(".gitignore", "rust/gitignore"),
            file!("Cargo.toml", "rust/Cargo.toml"),
            file!("src/main.rs", "rust/main.rs.tmpl"),
        ],
        next: &["exec cargo run"],
    },
];

/// A template: built in, or a folder of the VFS.
#[derive(Clone, Debug)]
pub enum Template {
    Builtin(&'static Builtin),
    Folder { name: String, dir: VPath },
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Builtin({})", self.name)
    }
}

impl Template {
    pub fn name(&self) -> &str {
        match self {
            Template::Builtin(b) => b.name,
            Template::Folder { name, .. } => name,
        }
    }

    /// One line saying what it makes.
    pub fn summary(&self) -> String {
        match self {
            Template::Builtin(b) => b.summary.to_string(),
            Template::Folder { dir, .. } => {
                format!(
                    "Your template in {}",
                    crate::text::escape(&dir.display_tilde())
                )
            }
        }
    }
}

/// The templates folder (setting `new.templates`).
pub fn templates_dir(hub: &Hub) -> Result<VPath> {
    let s = hub.settings().new.templates.clone();
    VPath::parse_absolute(&s).map_err(|e| anyhow!("setting new.templates: {e}"))
}

/// Every template, sorted by name: the built-in ones and the folders of the templates
/// folder. A folder named like a built-in template takes its place.
pub fn all(hub: &Hub) -> Result<Vec<Template>> {
    let mut out: Vec<Template> = BUILTINS.iter().map(Template::Builtin).collect();
    let dir = templates_dir(hub)?;
    if hub.vfs.is_dir(&dir) {
        for e in hub.vfs.read_dir(&dir)? {
            if e.meta.kind != Kind::Dir || e.name.starts_with('.') {
                continue;
            }
            out.retain(|t| t.name() != e.name);
            out.push(Template::Folder {
                dir: dir.join(&e.name)?,
                name: e.name,
            });
        }
    }
    out.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(out)
}

/// The template called exactly `name` (no prefix matching), or an error with the close
/// names.
pub fn find(hub: &Hub, name: &str) -> Result<Template> {
    let all = all(hub)?;
    if let Some(t) = all.iter().find(|t| t.name() == name) {
        return Ok(t.clone());
    }
    let close = crate::text::suggest(name, all.iter().map(Template::name));
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", crate::text::quote_list(&close))
    };
    bail!(
        "no template '{}'{hint}: 'new --list' shows them",
        crate::text::escape(name)
    )
}

/// Names `new` accepts need no quoting in a manifest, a script or a web page.
const NAME_MAX: usize = 64;

/// What is wrong with `name` as the name of a new project, if anything.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a project name cannot be empty".into());
    }
    if let Some(p) = crate::protocol::project_name_problem(name) {
        return Some(p);
    }
    if name.chars().count() > NAME_MAX {
        return Some(format!("a project name is at most {NAME_MAX} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || " -_.".contains(*c)))
    {
        return Some(format!(
            "a project name holds only letters, digits, spaces, '-', '_' and '.', not {}",
            crate::text::escape(&format!("'{c}'"))
        ));
    }
    if name.starts_with(['.', '-']) {
        return Some("a project name cannot start with '.' or '-'".into());
    }
    None
}

/// Words a package cannot be called: Rust's and Python's keywords and Rust's own crates.
const RESERVED: &[&str] = &[
    "abstract", "alloc", "and", "as", "assert", "async", "await", "become", "box", "break",
    "class", "const", "continue", "core", "crate", "def", "del", "do", "dyn", "elif", "else",
    "enum", "except", "extern", "false", "final", "finally", "fn", "for", "from", "gen", "global",
    "if", "impl", "import", "in", "is", "lambda", "let", "loop", "macro", "match", "mod", "move",
    "mut", "none", "nonlocal", "not", "or", "override", "pass", "priv", "pub", "raise", "ref",
    "return", "self", "static", "std", "struct", "super", "test", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "with", "yield",
];

/// `name` as a package name that Cargo, npm and Python all take: ASCII letters and digits
/// in lower case, words joined by `-` ("My App" and "MyApp" give "my-app"). Letters outside
/// ASCII are spelt in ASCII first ("Café Ünï" gives "cafe-uni", "日本" gives "ri-ben"). A
/// name that gives nothing, starts with a digit or is a reserved word gets `app-` in front.
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    let mut prev_lower = false;
    // Each character in ASCII: itself, or its transliteration (which may be several
    // letters, or a word set off by spaces); one that has none is a gap.
    let ascii = name.chars().flat_map(|c| {
        let spelt = if c.is_ascii() {
            None
        } else {
            Some(deunicode::deunicode_char(c).unwrap_or(" "))
        };
        let own = spelt.is_none().then_some(c);
        own.into_iter()
            .chain(spelt.into_iter().flat_map(str::chars))
    });
    for c in ascii {
        if c.is_ascii_alphanumeric() {
            if (gap || (prev_lower && c.is_ascii_uppercase())) && !out.is_empty() {
                out.push('-');
            }
            gap = false;
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
            prev_lower = false;
        }
    }
    if out.is_empty() {
        return "app".into();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) || RESERVED.contains(&out.as_str()) {
        out.insert_str(0, "app-");
    }
    out
}

/// The values of the placeholders for a project called `name`.
#[derive(Clone, Debug)]
pub struct Vars {
    pub name: String,
    pub name_kebab: String,
    pub name_snake: String,
    pub year: String,
    pub author: String,
}

impl Vars {
    pub fn new(name: &str, author: &str, year: i32) -> Vars {
        let name_kebab = kebab(name);
        Vars {
            name: name.to_string(),
            name_snake: name_kebab.replace('-', "_"),
            name_kebab,
            year: year.to_string(),
            author: author.to_string(),
        }
    }

    /// The value of placeholder `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        Some(match key {
            "name" => &self.name,
            "name_kebab" => &self.name_kebab,
            "name_snake" => &self.name_snake,
            "year" => &self.year,
            "author" => &self.author,
            _ => return None,
        })
    }

    /// `src` filled in; an error names `file` and the line.
    pub fn fill(&self, src: &str, file: &str) -> Result<String> {
        render::render(src, |k| self.get(k))
            .map_err(|e| anyhow!("{}: {e}", crate::text::escape(file)))
    }
    /// The text of the file `path` (its names in the project) filled in: in an HTML page
    /// the values are written as HTML text (`<`, `>`, `&` and `"` escaped), so an author
    /// like `Ada <ada@example.com>` shows as written instead of becoming a tag.
    pub fn fill_file(&self, src: &str, path: &str, shown: &str) -> Result<String> {
        let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if !matches!(ext.as_deref(), Some("html" | "htm")) {
            return self.fill(src, shown);
        }
        let html = |v: &str| {
            v.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let escaped = Vars {
            name: html(&self.name),
            name_kebab: html(&self.name_kebab),
            name_snake: html(&self.name_snake),
            year: html(&self.year),
            author: html(&self.author),
        };
        escaped.fill(src, shown)
    }
}

/// The author the placeholders name: setting `new.author`, else the login name on this
/// machine.
pub fn author(hub: &Hub) -> String {
    let set = hub.settings().new.author.trim().to_string();
    if !set.is_empty() {
        return set;
    }
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty() && !v.chars().any(crate::text::is_unsafe))
        .unwrap_or_else(|| "the author".into())
}

/// A project's files as a template makes them: (names below the project folder, content).
pub type Files = Vec<(Vec<String>, Vec<u8>)>;

/// The files `template` makes for `vars`, every placeholder filled (in paths too), or the
/// first error; nothing is written.
pub fn files(hub: &Hub, template: &Template, vars: &Vars) -> Result<Files> {
    let mut out = Vec::new();
    match template {
        Template::Builtin(b) => {
            for (path, src) in b.files {
                let path = vars.fill(path, path)?;
                let names = path.split('/').map(str::to_string).collect();
                out.push((names, vars.fill_file(src, &path, &path)?.into_bytes()));
            }
        }
        Template::Folder { dir, .. } => {
            if !hub.vfs.is_dir(dir) {
                bail!(
                    "{}: not a folder",
                    crate::text::escape(&dir.display_tilde())
                );
            }
            let mut made = std::collections::HashMap::new();
            for e in hub.vfs.walk(dir)? {
                if e.kind != Kind::File {
                    continue;
                }
                let rel = e.path.strip_prefix(dir).unwrap_or_default().to_vec();
                let shown = e.path.display_tilde();
                let mut names = Vec::with_capacity(rel.len());
                for n in &rel {
                    let n = vars.fill(n, &shown)?;
                    crate::vfs::path::validate_name(&n)
                        .map_err(|err| anyhow!("{}: {err}", crate::text::escape(&shown)))?;
                    names.push(n);
                }
                // Every file is read whole before anything is written: one larger than the
                // stored tree takes is refused before it is read (a file of some gigabytes in
                // a mounted template took as much memory, then failed).
                let size = match e.size {
                    Some(size) => size,
                    None => hub.vfs.stat(&e.path).map_or(0, |m| m.size),
                };
                let max = crate::vfs::max_stored_file();
                if size > max {
                    bail!(
                        "{}: {size} bytes, more than a project's file may be ({}; setting \
                         vfs.max_file_size)",
                        crate::text::escape(&shown),
                        crate::budget::human(max as usize)
                    );
                }
                let data = hub
                    .vfs
                    .read(&e.path)
                    .with_context(|| crate::text::escape(&shown).into_owned())?;
                // Text is filled in; anything else (an image, say) is copied as it is. A file
                // holding a NUL byte is binary even when its bytes happen to be UTF-8 (as the
                // editor takes it): its bytes are never read as placeholders.
                let data = match String::from_utf8(data) {
                    Ok(text) if !text.contains('\0') => vars
                        .fill_file(&text, &names.join("/"), &shown)?
                        .into_bytes(),
                    Ok(text) => text.into_bytes(),
                    Err(e) => e.into_bytes(),
                };
                // Two files whose names fill in the same (`{{name}}.txt` and `app.txt` for
                // a project `app`) would leave one of them unwritten.
                if let Some(other) = made.insert(names.clone(), shown.clone()) {
                    bail!(
                        "{} and {} both make {}: rename one of them in the template",
                        crate::text::escape(&other),
                        crate::text::escape(&shown),
                        crate::text::escape(&names.join("/"))
                    );
                }
                out.push((names, data));
            }
        }
    }
    Ok(out)
}

/// What [`create`] made.
#[derive(Debug)]
pub struct Made {
    pub dir: VPath,
    pub files: usize,
    /// Lines to run next, the first one entering the project.
    pub next: Vec<String>,
}

/// Makes `~/Projects/NAME` from `template`. An existing folder is refused unless `force`,
/// which writes the template's files into it (replacing files of the same names, keeping
/// the rest).
pub fn create(
    hub: &Hub,
    template: &Template,
    name: &str,
    author: &str,
    force: bool,
) -> Result<Made> {
    if let Some(p) = name_problem(name) {
        bail!("{}: {p}", crate::text::escape(name));
    }
    let root = VPath::parse_absolute(PROJECTS).expect("a valid path");
    let dir = root.join(name)?;
    let shown = dir.display_tilde();
    let refused = |is_dir: bool| {
        if is_dir {
            anyhow!("{shown} already exists: choose another name, or add --force to write the template's files into it")
        } else {
            anyhow!("{shown} exists and is not a folder")
        }
    };
    if templates_dir(hub)? == dir {
        bail!("{shown} is the templates folder (setting new.templates): choose another name");
    }
    let existed = hub.vfs.exists(&dir);
    if existed && (!force || !hub.vfs.is_dir(&dir)) {
        return Err(refused(hub.vfs.is_dir(&dir)));
    }
    if let Template::Folder { dir: from, .. } = template {
        if dir.starts_with(from) || from.starts_with(&dir) {
            bail!(
                "{shown} and the template {} overlap",
                crate::text::escape(&from.display_tilde())
            );
        }
    }
    use chrono::Datelike;
    let vars = Vars::new(name, author, chrono::Local::now().year());
    let files = files(hub, template, &vars)?;
    let in_store = hub.vfs.mount_of(&dir).is_none()
        && !hub.vfs.mounts().iter().any(|m| m.vpath.starts_with(&dir));
    if in_store {
        // One transaction: the project appears whole or not at all, even when the disk
        // fills up half way (where removing what was made could fail too), and the check
        // that it does not exist yet holds until it is written, so of two `new`s of one
        // name (two processes) exactly one makes it and the other is refused.
        let mut clash = None;
        let mut at = None;
        let written = hub.vfs.batch(|b| {
            if b.exists(&dir)? {
                let is_dir = b.is_dir(&dir)?;
                if !is_dir || !force {
                    clash = Some(is_dir);
                    return Err(VfsError::Exists(dir.to_string()));
                }
            }
            b.mkdir_all(&dir)?;
            for (names, data) in &files {
                let p = dir.join_names(names);
                at = Some(p.clone());
                b.write(&p, data)?;
            }
            Ok(())
        });
        if let Some(is_dir) = clash {
            return Err(refused(is_dir));
        }
        if let Err(e) = written {
            let what = if existed {
                format!("{shown} is as it was: none of the template's files were written")
            } else {
                format!("{shown} was not made")
            };
            // The file it failed on, unless the store as a whole failed (a full disk).
            let e = match at {
                Some(p) if !matches!(e, VfsError::Full | VfsError::Store(_)) => {
                    anyhow::Error::new(e)
                        .context(crate::text::escape(&p.display_tilde()).into_owned())
                }
                _ => anyhow::Error::new(e),
            };
            return Err(e.context(what));
        }
    } else {
        // In a mount: the folder is claimed by making it (which fails if it is there), so a
        // folder removed after a failure is only ever one this `new` made.
        let write = |made: &mut bool| -> Result<()> {
            if !existed {
                if let Some(parent) = dir.parent() {
                    hub.vfs.mkdir(&parent, true)?;
                }
                match hub.vfs.mkdir(&dir, false) {
                    Ok(()) => *made = true,
                    Err(VfsError::Exists(_)) => return Err(refused(hub.vfs.is_dir(&dir))),
                    Err(e) => return Err(e.into()),
                }
            }
            // All at once: each file is written whole beside its place before any takes
            // it, so a failure (a full disk) replaces none of the files already there.
            let all: Vec<(VPath, &[u8])> = files
                .iter()
                .map(|(names, data)| (dir.join_names(names), data.as_slice()))
                .collect();
            hub.vfs.write_all(&all).map_err(|e| {
                let error = anyhow::Error::new(e.error);
                // (A project folder made here is removed again, whatever was written.)
                if existed && !e.written.is_empty() {
                    let names: Vec<String> = e
                        .written
                        .iter()
                        .map(|p| crate::text::escape(&p.display_tilde()).into_owned())
                        .collect();
                    error.context(format!(
                        "only some of the template's files were written: {}",
                        names.join(", ")
                    ))
                } else if existed {
                    error.context(format!(
                        "{shown} is as it was: none of the template's files were written"
                    ))
                } else {
                    error
                }
            })
        };
        let mut made = false;
        if let Err(e) = write(&mut made) {
            // A folder made here is not left half written; if it cannot be removed
            // either, the error says what was left.
            if made {
                if let Err(left) = hub.vfs.remove(&dir, true) {
                    return Err(e.context(format!(
                        "{shown} was left half made and could not be removed ({left}): \
                         remove it with 'rm -r {}'",
                        crate::text::shell_quote(&dir.to_string())
                    )));
                }
            }
            return Err(e);
        }
    }
    let mut next = vec![format!("cd ~/Projects/{}", crate::text::shell_quote(name))];
    match template {
        Template::Builtin(b) => {
            for l in b.next {
                next.push(vars.fill(l, "the next steps")?);
            }
        }
        Template::Folder { .. } => next.extend(guess_next(&files)),
    }
    Ok(Made {
        dir,
        files: files.len(),
        next,
    })
}

/// What to run in a project made from a folder, told by its top-level files: a Cargo
/// manifest, an npm package (its `dev` or `start` script), a Python or Rhai main file.
pub fn guess_next(files: &Files) -> Vec<String> {
    let top = |name: &str| {
        files
            .iter()
            .find(|(names, _)| names.len() == 1 && names[0] == name)
            .map(|(_, data)| data.as_slice())
    };
    let mut out = Vec::new();
    if top("Cargo.toml").is_some() {
        out.push("exec cargo run".to_string());
    }
    if let Some(pkg) = top("package.json") {
        out.push("exec npm install".to_string());
        let scripts = serde_json::from_slice::<serde_json::Value>(pkg)
            .ok()
            .and_then(|v| v.get("scripts").cloned());
        let has = |s: &str| scripts.as_ref().is_some_and(|v| v.get(s).is_some());
        if has("dev") {
            out.push("exec npm run dev".to_string());
        } else if has("start") {
            out.push("exec npm start".to_string());
        }
    }
    if top("requirements.txt").is_some() {
        out.push("exec pip install -r requirements.txt".to_string());
    }
    for main in ["main.py", "app.py"] {
        if top(main).is_some() {
            out.push(format!("exec python3 {main}"));
            break;
        }
    }
    if top("main.rhai").is_some() {
        out.push("run main.rhai".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_template_says_what_to_run_by_its_files() {
        let f = |names: &[(&str, &str)]| -> Files {
            names
                .iter()
                .map(|(n, d)| {
                    (
                        n.split('/').map(str::to_string).collect(),
                        d.as_bytes().to_vec(),
                    )
                })
                .collect()
        };
        assert_eq!(guess_next(&f(&[("README.md", "")])), Vec::<String>::new());
        assert_eq!(
            guess_next(&f(&[("Cargo.toml", ""), ("src/main.rs", "")])),
            ["exec cargo run"]
        );
        assert_eq!(
            guess_next(&f(&[("package.json", r#"{"scripts":{"dev":"vite"}}"#)])),
            ["exec npm install", "exec npm run dev"]
        );
        assert_eq!(
            guess_next(&f(&[("package.json", r#"{"scripts":{"start":"node ."}}"#)])),
            ["exec npm install", "exec npm start"]
        );
        assert_eq!(
            guess_next(&f(&[("package.json", "not json")])),
            ["exec npm install"]
        );
        assert_eq!(
            guess_next(&f(&[("main.py", ""), ("lib/main.rhai", "")])),
            ["exec python3 main.py"]
        );
    }

    #[test]
    fn kebab_names_are_package_names() {
        for (name, want) in [
            ("My App", "my-app"),
            ("MyApp", "my-app"),
            ("my_app", "my-app"),
            ("app", "app"),
            ("a.b  c", "a-b-c"),
            ("HTTPServer2", "httpserver2"),
            ("Café Ünï", "cafe-uni"),
            ("Straße", "strasse"),
            ("日本", "ri-ben"),
            ("Ω", "o"),
            ("\u{1F600}", "grinning"),
            ("\u{0301}\u{200B}", "app"),
            ("2048", "app-2048"),
            ("test", "app-test"),
            ("Self", "app-self"),
            ("fn", "app-fn"),
            ("x-", "x"),
        ] {
            assert_eq!(kebab(name), want, "{name}");
        }
        for name in [
            "My App",
            "2048",
            "日本",
            "test",
            "a1",
            "Café Ünï",
            "Ω-\u{1F600}",
            "Ünï 2",
        ] {
            let k = kebab(name);
            assert!(
                k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && k.starts_with(|c: char| c.is_ascii_lowercase())
                    && !k.ends_with('-')
                    && !k.contains("--"),
                "{k}"
            );
        }
    }

    #[test]
    fn names_are_checked() {
        for good in ["app", "My App", "my-app_2", "v1.0", "Café"] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a\\b",
            "a\nb",
            "\u{1b}[31m",
            " app",
            "app ",
            ".hidden",
            "-rf",
            "a\"b",
            "a{{name}}",
            "a$b",
            "a<b>",
            "a\u{202e}b",
        ] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(name_problem(&"a".repeat(NAME_MAX + 1)).is_some());
        assert_eq!(name_problem(&"a".repeat(NAME_MAX)), None);
    }

    #[test]
    fn every_builtin_fills_with_no_placeholder_left() {
        let vars = Vars::new("My App", "Ada", 2026);
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "BUILTINS is sorted, names unique");
        for b in BUILTINS {
            assert!(b.files.iter().any(|(p, _)| *p == "README.md"), "{}", b.name);
            for (path, src) in b.files {
                let out = vars.fill(src, path).unwrap();
                let path = vars.fill(path, path).unwrap();
                for k in render::KEYS {
                    assert!(!out.contains(&format!("{{{{{k}}}}}")), "{}/{path}", b.name);
                }
                assert!(!out.contains("{{{{"), "{}/{path}", b.name);
            }
            for l in b.next {
                vars.fill(l, "next").unwrap();
            }
        }
    }
}
