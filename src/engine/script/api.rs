//! The host API scripts see (documented, with an example per function, in
//! `manuals/scripting.md`): files confined to the VFS, `sh`, environment, JSON, time, random
//! numbers, jobs and `exit`. `import` resolves modules inside the VFS (or, for a script run
//! from a host file, beside that file).

use super::{compile, err, Host, Origin, Stop};
use crate::shell::io::{Input, Io, Limited, Output};
use crate::vfs::{Kind, VPath};
use rhai::{
    Array, Blob, Dynamic, Engine, EvalAltResult, Map, Module, NativeCallContext, Position, Scope,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Every function the host API adds, for completion in the script REPL and for the manual
/// test that checks each one is documented.
pub const FUNCTIONS: &[&str] = &[
    "read",
    "read_bytes",
    "write",
    "append",
    "exists",
    "is_dir",
    "is_file",
    "ls",
    "mkdir",
    "rm",
    "rm_r",
    "cp",
    "mv",
    "cwd",
    "cd",
    "sh",
    "env",
    "set_env",
    "json_parse",
    "json_stringify",
    "json_pretty",
    "now",
    "now_ms",
    "date",
    "sleep",
    "rand",
    "rand_int",
    "shuffle",
    "job_start",
    "job_state",
    "job_wait",
    "job_output",
    "job_kill",
    "ask",
    "exit",
];

/// Variables every script has.
pub const VARIABLES: &[&str] = &["args", "script_name"];

fn path_of(h: &Host, p: &str) -> Res<VPath> {
    h.session().resolve(p).map_err(|e| err(e.to_string()))
}

fn vfs_err(p: &str, e: impl std::fmt::Display) -> Box<EvalAltResult> {
    err(format!("'{p}': {e}"))
}

/// A file a script could not read: a missing one is said as the host sees fit (see
/// [`Host::not_found`]).
fn read_err(h: &Host, p: &str, path: &VPath, e: crate::vfs::VfsError) -> Box<EvalAltResult> {
    match e {
        crate::vfs::VfsError::NotFound(_) => err(h.not_found(p, path)),
        e => vfs_err(p, e),
    }
}

/// Registers the host API on `e`, bound to `host`.
pub fn register(e: &mut Engine, host: &Arc<Host>) {
    files(e, host);
    shell(e, host);
    data(e);
    time(e, host);
    jobs(e, host);
    assistant(e, host);
    e.register_fn("exit", || -> Res<()> { Err(stop(Stop::Exit(0))) });
    e.register_fn("exit", |n: i64| -> Res<()> {
        match u8::try_from(n) {
            Ok(n) => Err(stop(Stop::Exit(i32::from(n)))),
            Err(_) => Err(err(format!(
                "exit({n}): an exit status is a whole number from 0 to 255"
            ))),
        }
    });
}

fn stop(s: Stop) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::from(s),
        Position::NONE,
    ))
}

/// A file about to be read whole must fit in a string (or BLOB) and in the memory budget:
/// checked before a byte is read.
fn fits(ctx: &NativeCallContext, h: &Host, p: &str, path: &VPath, blob: bool) -> Res<()> {
    let size = h
        .hub()
        .vfs
        .stat(path)
        .map_err(|e| read_err(h, p, path, e))?
        .size;
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let l = super::guard::limits(ctx);
    let max = if blob { l.array } else { l.string };
    if max > 0 && size > max {
        let setting = if blob {
            "script.max_array_size"
        } else {
            "script.max_string_size"
        };
        return Err(err(format!(
            "'{p}' holds {size} bytes, more than a script may read at once (setting {setting})"
        )));
    }
    crate::budget::admit(size).map_err(super::guard::over_budget)
}

fn files(e: &mut Engine, host: &Arc<Host>) {
    let h = host.clone();
    e.register_fn(
        "read",
        move |ctx: NativeCallContext, p: &str| -> Res<String> {
            let path = path_of(&h, p)?;
            fits(&ctx, &h, p, &path, false)?;
            let data = h
                .hub()
                .vfs
                .read(&path)
                .map_err(|e| read_err(&h, p, &path, e))?;
            String::from_utf8(data).map_err(|_| {
                err(format!(
                    "'{p}' is not UTF-8 text; read_bytes(path) gives its bytes"
                ))
            })
        },
    );
    let h = host.clone();
    e.register_fn(
        "read_bytes",
        move |ctx: NativeCallContext, p: &str| -> Res<Blob> {
            let path = path_of(&h, p)?;
            fits(&ctx, &h, p, &path, true)?;
            h.hub()
                .vfs
                .read(&path)
                .map_err(|e| read_err(&h, p, &path, e))
        },
    );
    let h = host.clone();
    e.register_fn("write", move |p: &str, text: &str| -> Res<()> {
        let path = path_of(&h, p)?;
        h.hub()
            .vfs
            .write(&path, text.as_bytes())
            .map_err(|e| vfs_err(p, e))
    });
    let h = host.clone();
    e.register_fn("write", move |p: &str, data: Blob| -> Res<()> {
        let path = path_of(&h, p)?;
        h.hub().vfs.write(&path, &data).map_err(|e| vfs_err(p, e))
    });
    let h = host.clone();
    e.register_fn("append", move |p: &str, text: &str| -> Res<()> {
        let path = path_of(&h, p)?;
        h.hub()
            .vfs
            .append(&path, text.as_bytes())
            .map_err(|e| vfs_err(p, e))
    });
    let h = host.clone();
    e.register_fn("exists", move |p: &str| -> Res<bool> {
        let path = path_of(&h, p)?;
        Ok(h.hub().vfs.exists(&path))
    });
    let h = host.clone();
    e.register_fn("is_dir", move |p: &str| -> Res<bool> {
        let path = path_of(&h, p)?;
        Ok(h.hub().vfs.is_dir(&path))
    });
    let h = host.clone();
    e.register_fn("is_file", move |p: &str| -> Res<bool> {
        let path = path_of(&h, p)?;
        Ok(h.hub().vfs.stat(&path).is_ok_and(|m| m.kind == Kind::File))
    });
    let h = host.clone();
    let ls = move |p: &str| -> Res<Array> {
        let path = path_of(&h, p)?;
        let entries = h.hub().vfs.read_dir(&path).map_err(|e| vfs_err(p, e))?;
        Ok(entries.into_iter().map(|e| Dynamic::from(e.name)).collect())
    };
    let ls2 = ls.clone();
    e.register_fn("ls", move |p: &str| ls(p));
    e.register_fn("ls", move || ls2("."));
    let h = host.clone();
    e.register_fn("mkdir", move |p: &str| -> Res<()> {
        let path = path_of(&h, p)?;
        h.hub().vfs.mkdir(&path, true).map_err(|e| vfs_err(p, e))
    });
    // The same rules as the rm and mv commands: not '/', not the working directory.
    for (name, recursive) in [("rm", false), ("rm_r", true)] {
        let h = host.clone();
        e.register_fn(name, move |p: &str| -> Res<()> {
            let path = path_of(&h, p)?;
            let sh = h.session();
            crate::shell::ops::remove(&sh, &path, p, recursive, false)
                .map_err(|e| err(format!("{e:#}")))
        });
    }
    let h = host.clone();
    e.register_fn("cp", move |from: &str, to: &str| -> Res<()> {
        let (f, t) = (path_of(&h, from)?, path_of(&h, to)?);
        let left = h
            .hub()
            .vfs
            .copy(&f, &t, true)
            .map_err(|e| vfs_err(from, e))?;
        if left.is_empty() {
            Ok(())
        } else {
            Err(err(left.describe(false)))
        }
    });
    let h = host.clone();
    e.register_fn("mv", move |from: &str, to: &str| -> Res<()> {
        let (f, t) = (path_of(&h, from)?, path_of(&h, to)?);
        let mut sh = h.session();
        let left =
            crate::shell::ops::rename(&mut sh, &f, &t, from).map_err(|e| err(format!("{e:#}")))?;
        if left.is_empty() {
            Ok(())
        } else {
            Err(err(left.describe(true)))
        }
    });
    let h = host.clone();
    e.register_fn("cwd", move || -> String { h.session().cwd().to_string() });
    let h = host.clone();
    e.register_fn("cd", move |p: &str| -> Res<()> {
        let path = path_of(&h, p)?;
        if !h.hub().vfs.is_dir(&path) {
            return Err(err(format!("'{p}' is not a directory")));
        }
        let mut sh = h.session();
        sh.oldpwd = Some(sh.set_cwd(path));
        Ok(())
    });
}

fn shell(e: &mut Engine, host: &Arc<Host>) {
    let h = host.clone();
    e.register_fn(
        "sh",
        move |ctx: NativeCallContext, line: &str| -> Res<Map> {
            // Each stream becomes a string: it may hold what a string may, and what the
            // script may still hold; a command writing more is stopped (`exec yes` filled
            // memory until the process aborted).
            let mut max = match super::guard::limits(&ctx).string {
                0 => usize::MAX,
                m => m,
            };
            if let Some(b) = crate::budget::current().filter(|b| b.limit() > 0) {
                max = max.min(b.limit().saturating_sub(b.used()));
            }
            let (out, errs) = (Limited::new(max), Limited::new(max));
            let mut io = Io {
                stdin: Input::Null,
                stdout: Output::Limited(out.clone()),
                stderr: Output::Limited(errs.clone()),
            };
            let (status, over) = h.within_limit(|| h.session().run(line, &mut io));
            drop(io);
            if let Some(t) = over {
                return Err(stop(Stop::TimedOut(t)));
            }
            if out.cut() || errs.cut() {
                return Err(err(format!(
                    "sh(): the command's output passed {max} bytes, more than the script may \
                     hold (setting script.max_string_size, or script.max_memory)"
                )));
            }
            let text = |c: &Limited| {
                String::from_utf8_lossy(&c.buf.lock().unwrap_or_else(|e| e.into_inner()))
                    .into_owned()
            };
            let mut m = Map::new();
            m.insert("status".into(), Dynamic::from(status as i64));
            m.insert("stdout".into(), Dynamic::from(text(&out)));
            m.insert("stderr".into(), Dynamic::from(text(&errs)));
            Ok(m)
        },
    );
    let h = host.clone();
    e.register_fn("env", move |name: &str| -> Dynamic {
        h.session()
            .var(name)
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT)
    });
    let h = host.clone();
    e.register_fn("set_env", move |name: &str, value: &str| -> Res<()> {
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(err(format!("'{name}' is not a valid variable name")));
        }
        h.session().vars.insert(name.into(), value.into());
        Ok(())
    });
}

fn data(e: &mut Engine) {
    e.register_fn("json_parse", |text: &str| -> Res<Dynamic> {
        // The values can take tens of bytes per byte of text.
        crate::budget::admit(text.len().saturating_mul(40)).map_err(super::guard::over_budget)?;
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        rhai::serde::to_dynamic(v)
    });
    e.register_fn(
        "json_stringify",
        |ctx: NativeCallContext, v: Dynamic| -> Res<String> {
            super::guard::text_fits(&ctx, &v, super::guard::Style::Json { pretty: false })?;
            let j: serde_json::Value = rhai::serde::from_dynamic(&v)?;
            Ok(j.to_string())
        },
    );
    e.register_fn(
        "json_pretty",
        |ctx: NativeCallContext, v: Dynamic| -> Res<String> {
            super::guard::text_fits(&ctx, &v, super::guard::Style::Json { pretty: true })?;
            let j: serde_json::Value = rhai::serde::from_dynamic(&v)?;
            serde_json::to_string_pretty(&j).map_err(|e| err(e.to_string()))
        },
    );
    e.register_fn("rand", fastrand::f64);
    e.register_fn("rand_int", |lo: i64, hi: i64| -> Res<i64> {
        if lo > hi {
            return Err(err(format!("rand_int({lo}, {hi}): the range is empty")));
        }
        Ok(fastrand::i64(lo..=hi))
    });
    e.register_fn("shuffle", |a: &mut Array| fastrand::shuffle(a));
}

fn time(e: &mut Engine, host: &Arc<Host>) {
    e.register_fn("now", || -> f64 { crate::store::now_ms() as f64 / 1000.0 });
    e.register_fn("now_ms", crate::store::now_ms);
    e.register_fn("date", || -> String {
        chrono::Local::now()
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    });
    let h = host.clone();
    let sleep = move |secs: f64| -> Res<()> {
        if !secs.is_finite() || secs < 0.0 {
            return Err(err(format!(
                "sleep({secs}): expected a number of seconds >= 0"
            )));
        }
        let end = Instant::now() + Duration::from_secs_f64(secs.min(1e9));
        loop {
            if h.cancelled() {
                return Err(stop(Stop::Cancelled));
            }
            if let Some(t) = h.timed_out() {
                return Err(stop(Stop::TimedOut(t)));
            }
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(10)));
        }
    };
    let sleep2 = sleep.clone();
    e.register_fn("sleep", move |s: f64| sleep(s));
    e.register_fn("sleep", move |s: i64| sleep2(s as f64));
}

/// `ask(question)` and `ask(question, persona)`: the assistant's whole answer as a string.
/// Nothing is kept in the conversation history; `kill` or Ctrl-C stops the answer.
fn assistant(e: &mut Engine, host: &Arc<Host>) {
    fn ask(h: &Host, question: &str, persona: Option<&str>) -> Res<String> {
        let hub = h.hub();
        let name = persona
            .map(str::to_string)
            .unwrap_or_else(|| hub.settings().assistant.persona.as_str().to_string());
        let persona = crate::assistant::persona(&name).map_err(|e| err(format!("{e:#}")))?;
        let client = crate::assistant::client(&hub).map_err(|e| err(format!("{e:#}")))?;
        let messages = [
            crate::assistant::Message::new("system", persona.prompt),
            crate::assistant::Message::new("user", question),
        ];
        let stopped = || h.cancelled() || h.timed_out().is_some();
        let result =
            crate::assistant::chat_stoppable(client, messages.to_vec(), &stopped, |_| Ok(()));
        if h.cancelled() {
            return Err(stop(Stop::Cancelled));
        }
        if let Some(t) = h.timed_out() {
            return Err(stop(Stop::TimedOut(t)));
        }
        result.map_err(|e| err(format!("ask: {e:#}")))
    }
    let h = host.clone();
    e.register_fn("ask", move |q: &str| ask(&h, q, None));
    let h = host.clone();
    e.register_fn("ask", move |q: &str, persona: &str| {
        ask(&h, q, Some(persona))
    });
}

fn jobs(e: &mut Engine, host: &Arc<Host>) {
    use crate::jobs;
    let h = host.clone();
    e.register_fn("job_start", move |line: &str| -> Res<i64> {
        let sh = h.session().clone();
        jobs::start(&sh, line).map_err(|e| err(format!("{e:#}")))
    });
    let h = host.clone();
    e.register_fn("job_state", move |id: i64| -> Res<String> {
        jobs::get(&h.hub(), id)
            .map(|j| j.state.as_str().to_string())
            .map_err(|e| err(format!("{e:#}")))
    });
    let h = host.clone();
    e.register_fn("job_wait", move |id: i64| -> Res<i64> {
        let (r, over) = h.within_limit(|| jobs::wait(&h.hub(), id));
        match r.map_err(|e| err(format!("{e:#}")))? {
            Some(j) => Ok(j.status.unwrap_or(crate::shell::STATUS_INTERRUPTED) as i64),
            None => Err(stop(match over {
                Some(t) => Stop::TimedOut(t),
                None => Stop::Cancelled,
            })),
        }
    });
    let h = host.clone();
    e.register_fn("job_output", move |id: i64| -> Res<String> {
        let hub = h.hub();
        jobs::get(&hub, id).map_err(|e| err(format!("{e:#}")))?;
        let (_, out) = jobs::output_since(&hub, id, 0).map_err(|e| err(e.to_string()))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    });
    let h = host.clone();
    e.register_fn("job_kill", move |id: i64| -> Res<()> {
        jobs::kill(&h.hub(), id, Duration::from_secs(2))
            .map(|_| ())
            .map_err(|e| err(format!("{e:#}")))
    });
}

/// Resolves `import "PATH"`: inside the VFS, relative to the importing script's directory (or
/// the working directory for typed scripts); beside the file for a script run from the host.
/// `.rhai` is added when the path has no extension.
pub struct Resolver {
    host: Arc<Host>,
    base: Base,
}

enum Base {
    Vfs(VPath),
    Host(PathBuf),
}

impl Resolver {
    pub fn new(host: &Arc<Host>, origin: &Origin) -> Resolver {
        let base = match origin {
            Origin::Vfs(p) => Base::Vfs(p.parent().unwrap_or_else(VPath::root)),
            Origin::Host(p) => Base::Host(
                p.parent()
                    .map(|d| d.to_path_buf())
                    .unwrap_or_else(|| PathBuf::from(".")),
            ),
            Origin::Inline(_) => Base::Vfs(host.session().cwd().clone()),
        };
        Resolver {
            host: host.clone(),
            base,
        }
    }

    fn load(&self, path: &str) -> Result<(String, String), String> {
        let with_ext = if std::path::Path::new(path).extension().is_some() {
            path.to_string()
        } else {
            format!("{path}.rhai")
        };
        match &self.base {
            Base::Vfs(dir) => {
                let p = crate::vfs::normalize(dir, &with_ext).map_err(|e| e.to_string())?;
                let data = self.host.hub().vfs.read(&p).map_err(|e| e.to_string())?;
                let text = String::from_utf8(data).map_err(|_| "not UTF-8 text".to_string())?;
                Ok((p.to_string(), text))
            }
            Base::Host(dir) => {
                let p = dir.join(&with_ext);
                let max = crate::budget::current().map_or(0, |b| b.limit());
                let bytes = super::read_host(&p, max).map_err(|e| e.to_string())?;
                let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
                Ok((p.display().to_string(), text))
            }
        }
    }
}

impl rhai::ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Res<rhai::Shared<Module>> {
        let (name, text) = self.load(path).map_err(|e| {
            Box::new(EvalAltResult::ErrorModuleNotFound(
                format!("{path} ({e})"),
                pos,
            ))
        })?;
        let mut ast = compile(engine, &text)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.clone(), e, pos)))?;
        ast.set_source(name.clone());
        let m = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(name, e, pos)))?;
        Ok(m.into())
    }
}
