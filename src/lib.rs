//! Valyxo: a terminal developer hub. One core ([`hub::Hub`]) with thin faces over it: the
//! interactive shell ([`repl`]), the non-interactive CLI ([`cli`]), the editor, the pager and
//! the account server.
//!
//! The modules form four layers, and a module imports only from its own layer or the ones
//! below it (the test in this file reads `src/` and names any line that imports upwards).
//! Read them bottom to top:
//!
//! ```text
//! face        cli  repl  editor  pager  server
//! engine      hub  shell  commands  script  jobs  plugins  manual  highlight  assistant
//!             sync  recovery
//! model       config  settings  theme  keymap  history  protocol
//! foundation  store  vfs  text  ansi  term  os  signals  budget  merge
//! ```
//!
//! Where a lower part must reach an upper one, the upper one hands it in: the commands open
//! the editor and the pager through [`commands::Views`], which the CLI gives them at start.
//! The commands are the shell's built-ins, so they sit with the shell among the engines; the
//! shell, the scripts and the jobs run them through [`commands::registry`].

pub mod ansi;
pub mod assistant;
pub mod budget;
pub mod cli;
pub mod commands;
pub mod config;
pub mod editor;
pub mod highlight;
pub mod history;
pub mod hub;
pub mod jobs;
pub mod keymap;
pub mod manual;
pub mod merge;
pub mod os;
pub mod pager;
pub mod plugins;
pub mod protocol;
pub mod recovery;
pub mod repl;
pub mod script;
#[cfg(feature = "server")]
pub mod server;
pub mod settings;
pub mod shell;
pub mod signals;
pub mod store;
pub mod sync;
mod term;
pub mod text;
pub mod theme;
pub mod vfs;

/// Every allocation is counted against the memory budget of the work its thread does, if any
/// ([`budget`]).
#[global_allocator]
static ALLOCATOR: budget::Counting = budget::Counting;

#[cfg(test)]
mod layers {
    //! Imports go down: the layer of every top-level module, and a test that reads `src/`.

    /// Each top-level module and its layer: 0 foundation, 1 model, 2 engine, 3 face.
    const LAYERS: &[(&str, usize)] = &[
        ("store", 0),
        ("vfs", 0),
        ("text", 0),
        ("ansi", 0),
        ("term", 0),
        ("signals", 0),
        ("budget", 0),
        ("merge", 0),
        ("os", 0),
        ("config", 1),
        ("settings", 1),
        ("theme", 1),
        ("keymap", 1),
        ("history", 1),
        ("protocol", 1),
        ("hub", 2),
        ("shell", 2),
        ("commands", 2),
        ("script", 2),
        ("jobs", 2),
        ("plugins", 2),
        ("manual", 2),
        ("highlight", 2),
        ("assistant", 2),
        ("sync", 2),
        ("recovery", 2),
        ("cli", 3),
        ("repl", 3),
        ("editor", 3),
        ("pager", 3),
        ("server", 3),
        ("lib", 3),
        ("main", 3),
    ];

    const NAMES: [&str; 4] = ["foundation", "model", "engine", "face"];

    fn layer(module: &str) -> Option<usize> {
        LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
    }

    /// Every `.rs` file under `dir`, with the top-level module it belongs to.
    fn files(src: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
        let mut out = Vec::new();
        let mut left = vec![src.to_path_buf()];
        while let Some(d) = left.pop() {
            for e in std::fs::read_dir(&d).expect("read src") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    left.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let rel = p.strip_prefix(src).expect("under src");
                    let top = rel
                        .components()
                        .next()
                        .map(|c| {
                            c.as_os_str()
                                .to_string_lossy()
                                .trim_end_matches(".rs")
                                .to_string()
                        })
                        .unwrap_or_default();
                    out.push((p, top));
                }
            }
        }
        out.sort();
        out
    }

    /// The top-level modules a line of code names through `crate::`.
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
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for (path, top) in files(&src) {
            let Some(own) = layer(&top) else {
                wrong.push(format!(
                    "{}: module '{top}' has no layer in LAYERS",
                    path.display()
                ));
                continue;
            };
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
                    if let Some(l) = layer(&target).filter(|l| *l > own) {
                        wrong.push(format!(
                            "{}:{}: {top} ({}) imports {target} ({})",
                            path.display(),
                            n + 1,
                            NAMES[own],
                            NAMES[l]
                        ));
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
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for (module, l) in LAYERS {
            if ["lib", "main"].contains(module) {
                continue;
            }
            let file = src.join(format!("{module}.rs"));
            let file = if file.exists() {
                file
            } else {
                src.join(module).join("mod.rs")
            };
            let text = std::fs::read_to_string(&file).expect("read");
            let first = text.lines().next().unwrap_or("");
            if !first.contains(&format!("({})", NAMES[*l])) {
                wrong.push(format!(
                    "{}:1: should name its layer, ({})",
                    file.display(),
                    NAMES[*l]
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
