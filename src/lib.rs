//! Valyxo: a terminal developer hub. One core ([`hub::Hub`]) with thin faces over it: the
//! interactive shell ([`repl`]), the non-interactive CLI ([`cli`]), the editor, the pager and
//! the account server.
//!
//! The modules form four layers, one folder each under `src/`, and a module imports only from
//! its own layer or the ones below it (the test in this file reads `src/` and names any line
//! that imports upwards). Read them bottom to top:
//!
//! ```text
//! src/face        cli  repl  editor  pager  view  server
//! src/engine      hub  shell  commands  script  jobs  plugins  manual  markdown  highlight
//!                 assistant  sync  recovery  templates  snippets
//! src/model       config  aliases  settings  theme  keymap  history  protocol
//! src/foundation  store  vfs  text  ansi  term  os  signals  budget  merge  net
//! ```
//!
//! Where a lower part must reach an upper one, the upper one hands it in: the commands open
//! the editor and the pager through [`commands::Views`], which the CLI gives them at start.
//! The commands are the shell's built-ins, so they sit with the shell among the engines; the
//! shell, the scripts and the jobs run them through [`commands::registry`].

pub mod engine;
pub mod face;
pub mod foundation;
pub mod model;

// Each module is reachable by its own name (`crate::store`, `valyxo::vfs`); the folder it
// lives in says its layer.
pub use engine::{
    assistant, commands, highlight, hub, jobs, manual, markdown, plugins, recovery, script, shell,
    snippets, sync, templates,
};
#[cfg(feature = "server")]
pub use face::server;
pub use face::{cli, editor, pager, repl, view};
pub(crate) use foundation::term;
pub use foundation::{ansi, budget, merge, net, os, signals, store, text, vfs};
pub use model::{aliases, config, history, keymap, protocol, settings, theme};

/// Every allocation is counted against the memory budget of the work its thread does, if any
/// ([`budget`]).
#[global_allocator]
static ALLOCATOR: budget::Counting = budget::Counting;

#[cfg(test)]
mod layers {
    //! Imports go down: each module's layer is the folder it lives in (`src/foundation`,
    //! `src/model`, `src/engine`, `src/face`), and a test reads `src/` and names every line
    //! that imports from a layer above its own.

    use std::path::{Path, PathBuf};

    const NAMES: [&str; 4] = ["foundation", "model", "engine", "face"];

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    /// Every module in a layer folder, with its layer; `lib` and `main` sit on top.
    fn modules() -> Vec<(String, usize)> {
        let mut out = vec![("lib".to_string(), 3), ("main".to_string(), 3)];
        for (l, name) in NAMES.iter().enumerate() {
            out.push((name.to_string(), l));
            for e in std::fs::read_dir(src().join(name)).expect("read layer") {
                let p = e.expect("entry").path();
                let stem = p.file_stem().unwrap_or_default().to_string_lossy();
                if stem != "mod" && (p.is_dir() || p.extension().is_some_and(|x| x == "rs")) {
                    out.push((stem.to_string(), l));
                }
            }
        }
        out
    }

    /// Every `.rs` file under `src/`, with its layer.
    fn files() -> Vec<(PathBuf, usize)> {
        let mut out = Vec::new();
        let mut left = vec![src()];
        while let Some(d) = left.pop() {
            for e in std::fs::read_dir(&d).expect("read src") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    left.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let rel = p.strip_prefix(src()).expect("under src");
                    let top = rel.components().next().expect("a component");
                    let top = top.as_os_str().to_string_lossy();
                    let layer = NAMES.iter().position(|n| *n == top).unwrap_or(3);
                    out.push((p, layer));
                }
            }
        }
        out.sort();
        out
    }

    /// The top-level modules a line of code names through `crate::` (a layer folder's name
    /// counts as the layer itself, so `crate::engine::hub` is an engine).
    fn named(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                out.extend(
                    inner
                        .split(',')
                        .map(|x| x.trim().split("::").next().unwrap_or("").to_string()),
                );
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        }
        out.retain(|n| !n.is_empty());
        out
    }

    #[test]
    fn imports_go_down() {
        let modules = modules();
        let layer = |m: &str| modules.iter().find(|(n, _)| n == m).map(|(_, l)| *l);
        let mut wrong = Vec::new();
        for (path, own) in files() {
            let text = std::fs::read_to_string(&path).expect("read");
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                // Tests may reach anywhere; comments name what they like.
                if code.starts_with("#[cfg(test)]") {
                    break;
                }
                if code.starts_with("//") {
                    continue;
                }
                for target in named(code) {
                    match layer(&target) {
                        None => wrong.push(format!(
                            "{}:{}: '{target}' is in no layer folder",
                            path.display(),
                            n + 1
                        )),
                        Some(l) if l > own => wrong.push(format!(
                            "{}:{}: a {} module imports {target} ({})",
                            path.display(),
                            n + 1,
                            NAMES[own],
                            NAMES[l]
                        )),
                        _ => {}
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "imports that go up:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn every_module_says_its_layer_first() {
        let mut wrong = Vec::new();
        for (module, l) in modules() {
            if ["lib", "main"].contains(&module.as_str()) {
                continue;
            }
            let dir = if NAMES.contains(&module.as_str()) {
                src()
            } else {
                src().join(NAMES[l])
            };
            let file = dir.join(format!("{module}.rs"));
            let file = if file.exists() {
                file
            } else {
                dir.join(&module).join("mod.rs")
            };
            let text = std::fs::read_to_string(&file).expect("read");
            let first = text.lines().next().unwrap_or("");
            if !first.contains(&format!("({})", NAMES[l])) {
                wrong.push(format!(
                    "{}:1: should name its layer, ({})",
                    file.display(),
                    NAMES[l]
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
