//! The assistant: ask, chat, ai.

use super::{ex, needs, strings, varies, Ctx, Group, Need, Spec};
use crate::assistant::{self, client::Broken, conversations, key, Message};
use crate::shell::io::Input;
use crate::text::escape;
use anyhow::{bail, Context, Result};
use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use std::io::{IsTerminal, Read, Write};

/// Text piped in as context is read up to this size.
const MAX_CONTEXT: u64 = 1 << 20;

/// The options `ask` and `chat` share: the persona and which conversation to continue.
fn continuing(c: Command) -> Command {
    c.arg(
        Arg::new("persona")
            .short('p')
            .long("persona")
            .value_name("NAME")
            .help("The persona: default, explain, review, test-writer, architect"),
    )
    .arg(
        Arg::new("continue")
            .short('c')
            .long("continue")
            .action(ArgAction::SetTrue)
            .help("Continue the last conversation"),
    )
    .arg(
        Arg::new("in")
            .long("in")
            .value_name("N")
            .value_parser(value_parser!(i64))
            .conflicts_with("continue")
            .help("Continue conversation N ('ai history' lists them)"),
    )
}

/// The server a key is for: `assistant.url` unless given.
fn url_arg() -> Arg {
    Arg::new("url")
        .value_name("URL")
        .help("The server the key is for (default: assistant.url); https://, or http:// only on this machine")
}

pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "ask",
            aliases: &[],
            group: Group::Text,
            summary: "Ask the assistant a question, with files or piped text as context",
            args: || {
                continuing(Command::new("ask"))
                    .arg(
                        Arg::new("file")
                            .short('f')
                            .long("file")
                            .value_name("FILE")
                            .action(ArgAction::Append)
                            .help("Add a file as context (repeat for more)"),
                    )
                    .arg(
                        Arg::new("prompt")
                            .value_name("QUESTION")
                            .num_args(1..)
                            .required(true)
                            .help("The question (several words are joined by spaces)"),
                    )
            },
            examples: const {
                &[
                    needs("ask 'how do I reverse a list in Rhai?'", Need::Assistant),
                    ex("echo 'fn main() { let v = vec![1]; v[3]; }' > main.rs", ""),
                    needs(
                        "cat main.rs | ask -p review 'anything wrong here?'",
                        Need::Assistant,
                    ),
                    needs("ask -c 'and with a for loop?'", Need::Assistant),
                ]
            },
            run: ask,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "chat",
            aliases: &[],
            group: Group::Text,
            summary: "Talk with the assistant, a question per line",
            args: || continuing(Command::new("chat")),
            examples: const {
                &[
                    needs("chat", Need::TerminalAndAssistant),
                    needs("chat -p architect", Need::TerminalAndAssistant),
                    needs("chat -c", Need::TerminalAndAssistant),
                ]
            },
            run: chat,
            rewrite: None,
            needs_store: true,
        },
        Spec {
            name: "ai",
            aliases: &[],
            group: Group::System,
            summary: "Set up the assistant: status, API key, personas, conversations",
            args: || {
                let n = || {
                    Arg::new("n")
                        .value_name("N")
                        .value_parser(value_parser!(i64))
                        .required(true)
                };
                Command::new("ai")
                    .subcommand(
                        Command::new("status")
                            .about("The server, model, persona and where the key comes from (the default)"),
                    )
                    .subcommand(
                        Command::new("key")
                            .about("Store or remove the API key for assistant.url (or another server)")
                            .subcommand_required(true)
                            .subcommand(
                                Command::new("set")
                                    .about(
                                        "Store a key, read from the terminal without echo or from standard input",
                                    )
                                    .arg(url_arg()),
                            )
                            .subcommand(
                                Command::new("remove")
                                    .about("Remove the stored key")
                                    .arg(url_arg()),
                            ),
                    )
                    .subcommand(Command::new("personas").about("The personas and what each is for"))
                    .subcommand(
                        Command::new("models")
                            .about("Ask the server which models it offers (checks the URL and key)"),
                    )
                    .subcommand(
                        Command::new("history")
                            .about("The conversations, most recent first")
                            .arg(
                                Arg::new("all")
                                    .short('a')
                                    .long("all")
                                    .action(ArgAction::SetTrue)
                                    .help("All of them, not only the last 20"),
                            ),
                    )
                    .subcommand(Command::new("show").about("Print a conversation").arg(n()))
                    .subcommand(
                        Command::new("rm")
                            .about("Delete conversations")
                            .arg(n().num_args(1..)),
                    )
            },
            examples: const {
                &[
                    varies("ai"),
                    ex("ai personas", "* default      a concise programming assistant\n  explain      explains code or text step by step, for someone new to it\n  review       reviews code: bugs first, then risks, then style\n  test-writer  writes tests for the code it is given\n  architect    discusses design: structure, trade-offs, alternatives\n"),
                    ex("ai history", ""),
                    needs("ai models", Need::Assistant),
                ]
            },
            run: ai,
            rewrite: None,
            needs_store: true,
        },
    ]
}

/// Text piped into the command (not a terminal), if any.
pub(super) fn piped_input(ctx: &mut Ctx) -> Result<Option<String>> {
    let piped = match ctx.io.stdin {
        Input::Null | Input::Terminal => false,
        Input::Stdin => !std::io::stdin().is_terminal(),
        _ => true,
    };
    if !piped {
        return Ok(None);
    }
    let mut stdin = std::mem::replace(&mut ctx.io.stdin, Input::Null);
    let mut bytes = Vec::new();
    let read = (&mut stdin).take(MAX_CONTEXT + 1).read_to_end(&mut bytes);
    ctx.io.stdin = stdin;
    read.context("reading standard input")?;
    if bytes.len() as u64 > MAX_CONTEXT {
        bail!("the input is over 1 MiB: too much to send as context");
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!("the input is not UTF-8 text; the assistant reads text only")
    })?;
    Ok((!text.trim().is_empty()).then_some(text))
}

/// The conversation to continue (`--in N`, `-c`), its persona, and its messages so far.
struct Thread {
    id: Option<i64>,
    persona: &'static assistant::Persona,
    messages: Vec<Message>,
}

fn thread(ctx: &Ctx, m: &ArgMatches) -> Result<Thread> {
    let store = ctx.vfs().store();
    let id = match (m.get_one::<i64>("in"), m.get_flag("continue")) {
        (Some(&n), _) => Some(n),
        (None, true) => Some(
            conversations::last(store)?
                .ok_or_else(|| anyhow::anyhow!("there is no conversation to continue yet"))?,
        ),
        _ => None,
    };
    if let Some(id) = id {
        let c = conversations::get(store, id)?;
        let persona = match m.get_one::<String>("persona") {
            Some(p) => assistant::persona(p)?,
            None => assistant::persona(&c.persona).unwrap_or(&assistant::PERSONAS[0]),
        };
        if m.get_one::<String>("persona").is_some() {
            conversations::set_persona(store, id, persona.name, persona.prompt)?;
        }
        let messages = conversations::messages(store, id)?;
        return Ok(Thread {
            id: Some(id),
            persona,
            messages,
        });
    }
    let name = m
        .get_one::<String>("persona")
        .cloned()
        .unwrap_or_else(|| ctx.hub().settings().assistant.persona.as_str().to_string());
    let persona = assistant::persona(&name)?;
    Ok(Thread {
        id: None,
        persona,
        messages: vec![Message::new("system", persona.prompt)],
    })
}

/// Sends `question` in the thread, streaming the answer to standard output, and keeps both
/// in the store (an answer cut short is kept as far as it came). Returns the answer.
fn exchange(ctx: &mut Ctx, th: &mut Thread, question: String, title: &str) -> Result<String> {
    let client = assistant::client(ctx.hub())?;
    th.messages.push(Message::new("user", question));
    // On a terminal the answer is made safe (its escape sequences shown, not obeyed) and,
    // with colour, its code blocks are highlighted as they arrive; piped, it goes out exactly
    // as it comes.
    let mut renderer = ctx
        .io
        .stdout
        .is_tty()
        .then(|| assistant::render::Renderer::new(ctx.hub().theme(), ctx.color()));
    let out = &mut ctx.io.stdout;
    let mut ended_in_newline = true;
    let model = client.model.clone();
    let result = assistant::chat_stoppable(
        client,
        th.messages.clone(),
        &crate::signals::interrupted,
        |piece| {
            let shown = match renderer.as_mut() {
                Some(r) => std::borrow::Cow::Owned(r.push(piece)),
                None => std::borrow::Cow::Borrowed(piece),
            };
            out.write_all(shown.as_bytes())?;
            out.flush()?;
            if !shown.is_empty() {
                ended_in_newline = shown.ends_with('\n');
            }
            Ok(())
        },
    );
    if let Some(r) = renderer.as_mut() {
        let rest = r.finish();
        if !rest.is_empty() {
            ended_in_newline = rest.ends_with('\n');
            let _ = ctx.io.stdout.write_all(rest.as_bytes());
        }
    }
    if !ended_in_newline {
        let _ = ctx.io.stdout.write_all(b"\n");
    }
    let (answer, error) = match result {
        Ok(a) => (a, None),
        Err(e) => match e.downcast_ref::<Broken>() {
            Some(b) if !b.partial.is_empty() => (b.partial.clone(), Some(e)),
            _ => {
                th.messages.pop();
                if crate::signals::interrupted() {
                    return Err(crate::signals::Interrupted.into());
                }
                return Err(e);
            }
        },
    };
    let store = ctx.vfs().store().clone();
    let new = th.id.is_none();
    let id = match th.id {
        Some(id) => id,
        None => conversations::create(&store, title, th.persona.name, &model)?,
    };
    th.id = Some(id);
    let start = if new { 0 } else { th.messages.len() - 1 };
    let mut save: Vec<Message> = th.messages[start..].to_vec();
    save.push(Message::new("assistant", answer.clone()));
    conversations::append(&store, id, &save)?;
    th.messages.push(Message::new("assistant", answer.clone()));
    if let Some(e) = error {
        if crate::signals::interrupted() {
            return Err(crate::signals::Interrupted.into());
        }
        bail!("{e:#} (the part received is kept in conversation {id})");
    }
    Ok(answer)
}

fn ask(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let prompt = strings(m, "prompt").join(" ");
    if prompt.trim().is_empty() {
        bail!("the question is empty");
    }
    let mut th = thread(ctx, m)?;
    let mut question = prompt.clone();
    for f in strings(m, "file") {
        let p = ctx.path(&f)?;
        let bytes = ctx
            .vfs()
            .read(&p)
            .with_context(|| format!("cannot read {p}"))?;
        if bytes.len() as u64 > MAX_CONTEXT {
            bail!("{p} is over 1 MiB: too much to send as context");
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{p} is not UTF-8 text; the assistant reads text only"))?;
        question.push_str("\n\n");
        question.push_str(&assistant::fence(&format!("File {p}"), &text));
    }
    if let Some(text) = piped_input(ctx)? {
        question.push_str("\n\n");
        question.push_str(&assistant::fence("Input", &text));
    }
    exchange(ctx, &mut th, question, &prompt)?;
    Ok(0)
}

fn chat(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let mut th = thread(ctx, m)?;
    // Fail early on settings that cannot work.
    assistant::client(ctx.hub())?;
    if !ctx.on_terminal() {
        // Lines from a pipe are questions, one per line.
        let Some(text) = piped_input(ctx)? else {
            return Ok(0);
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            exchange(ctx, &mut th, line.to_string(), line)?;
        }
        return Ok(0);
    }
    let mut rl = rustyline::DefaultEditor::new()?;
    let _ = writeln!(
        ctx.io.stdout,
        "Chatting with {} as '{}'. /help lists the commands; Ctrl-D ends.",
        escape(&ctx.hub().settings().assistant.model),
        th.persona.name
    );
    loop {
        let line = match rl.readline("you> ") {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let line = line.trim().to_string();
        if line.is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(&line);
        match line
            .split_once(' ')
            .map_or((line.as_str(), ""), |(a, b)| (a, b.trim()))
        {
            ("/exit" | "/quit", _) => break,
            ("/help", _) => {
                let _ = writeln!(
                    ctx.io.stdout,
                    "/new starts a new conversation, /persona NAME switches persona, /exit ends \
                     (so does Ctrl-D). Ctrl-C stops an answer."
                );
            }
            ("/new", _) => {
                th = Thread {
                    id: None,
                    persona: th.persona,
                    messages: vec![Message::new("system", th.persona.prompt)],
                };
                let _ = writeln!(ctx.io.stdout, "A new conversation.");
            }
            ("/persona", name) => match assistant::persona(name) {
                Ok(p) => {
                    th.persona = p;
                    th.messages.retain(|m| m.role != "system");
                    th.messages.insert(0, Message::new("system", p.prompt));
                    if let Some(id) = th.id {
                        conversations::set_persona(ctx.vfs().store(), id, p.name, p.prompt)?;
                    }
                    let _ = writeln!(ctx.io.stdout, "Persona: {}", p.name);
                }
                Err(e) => ctx.warn(e),
            },
            _ => {
                crate::signals::reset();
                let title = line.clone();
                if let Err(e) = exchange(ctx, &mut th, line, &title) {
                    if crate::signals::is_interrupt(&e) {
                        let _ = writeln!(ctx.io.stderr, "(stopped)");
                    } else {
                        ctx.warn(format!("{e:#}"));
                    }
                }
            }
        }
    }
    Ok(0)
}

/// Reads a secret line: from the terminal without echo (after `prompt`), or the first line
/// of standard input. `missing` is the error when there is neither.
pub(super) fn read_secret(ctx: &mut Ctx, prompt: &str, missing: &str) -> Result<String> {
    if let Some(text) = piped_input(ctx)? {
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    let tty = std::io::stdin();
    if !tty.is_terminal() {
        bail!("{missing}");
    }
    write!(ctx.io.stderr, "{prompt}")?;
    ctx.io.stderr.flush()?;
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data filled in by tcgetattr on a valid descriptor.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is standard input, which is a terminal (checked above).
    if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
        bail!("cannot read the terminal settings");
    }
    let mut quiet = old;
    quiet.c_lflag &= !libc::ECHO;
    // SAFETY: as above; the old settings are put back below on every path.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    let mut line = String::new();
    // Ctrl-C gives up at once (the settings are put back first).
    let read = super::wait_for_line().and_then(|()| Ok(tty.read_line(&mut line)?));
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    writeln!(ctx.io.stderr)?;
    read?;
    Ok(line.trim().to_string())
}

fn ai(ctx: &mut Ctx, m: &ArgMatches) -> Result<i32> {
    let store = ctx.vfs().store().clone();
    let url = ctx.hub().settings().assistant.url.to_string();
    let mut out = String::new();
    match m.subcommand() {
        None | Some(("status", _)) => {
            let key = key::find(ctx.hub(), &url)?;
            out.push_str(&format!("server   {}\n", escape(&url)));
            out.push_str(&format!(
                "model    {}\n",
                escape(&ctx.hub().settings().assistant.model)
            ));
            out.push_str(&format!(
                "persona  {}\n",
                escape(ctx.hub().settings().assistant.persona.as_str())
            ));
            out.push_str(&format!(
                "timeout  {}\n",
                escape(&ctx.hub().setting_text("assistant.timeout"))
            ));
            out.push_str(&format!(
                "answers  up to {} (assistant.max_answer; 0: no limit)\n",
                escape(&ctx.hub().setting_text("assistant.max_answer"))
            ));
            out.push_str(&match key {
                Some((_, src)) => format!("key      from {src}\n"),
                None if url.starts_with("https://api.openai.com") => {
                    "key      none: 'ai key set' stores one (OpenAI needs it)\n".to_string()
                }
                None => "key      none (a local server usually needs none)\n".to_string(),
            });
            out.push_str(&unused_keys(ctx, &url)?);
            let n = conversations::count(&store)?;
            out.push_str(&format!(
                "history  {n} conversation(s); 'ai history' lists them\n"
            ));
        }
        Some(("key", sub)) => match sub.subcommand() {
            Some(("set", m)) => {
                let url = key_url(m, &url);
                // Refused before the key is asked for.
                key::check_url(&url)?;
                let k = read_secret(
                    ctx,
                    "API key (not shown): ",
                    "no key given: pipe it in ('ai key set < keyfile') or run this on a terminal",
                )?;
                let src = key::store(ctx.hub(), &url, &k)?;
                let shown = escape(&url);
                match src {
                    key::Source::Keyring => {
                        out.push_str(&format!("Stored the key for {shown} in the OS keyring.\n"))
                    }
                    key::Source::File(p) => out.push_str(&format!(
                        "No OS keyring service is running here, so the key for {shown} is kept in {} \
                         (readable only by you).\n",
                        p.display()
                    )),
                    key::Source::Env(_) => {}
                }
                let current = ctx.hub().settings().assistant.url.to_string();
                if key::account(&url) != key::account(&current) {
                    out.push_str(&format!(
                        "assistant.url is {}: 'settings set assistant.url {shown}' uses this server.\n",
                        escape(&current)
                    ));
                }
            }
            Some(("remove", m)) => {
                let url = key_url(m, &url);
                if !key::remove(ctx.hub(), &url)? {
                    ctx.warn(format!("no key was stored for {url}"));
                    return Ok(1);
                }
                out.push_str(&format!("Removed the key for {}.\n", escape(&url)));
            }
            _ => unreachable!("clap requires a subcommand"),
        },
        Some(("models", _)) => {
            let client = assistant::client(ctx.hub())?;
            let current = client.model.clone();
            for id in client.models()? {
                let mark = if id == current { "*" } else { " " };
                out.push_str(&format!("{mark} {}\n", escape(&id)));
            }
        }
        Some(("personas", _)) => {
            let current = ctx.hub().settings().assistant.persona.as_str();
            for p in assistant::PERSONAS {
                let mark = if p.name == current { "*" } else { " " };
                out.push_str(&format!("{mark} {:<12} {}\n", p.name, p.summary));
            }
        }
        Some(("history", sub)) => {
            let limit = if sub.get_flag("all") { i64::MAX } else { 20 };
            for c in conversations::list(&store, limit)? {
                out.push_str(&format!(
                    "{:>4}  {}  {:<11} {:>3} msg  {}\n",
                    c.id,
                    super::fmt_time(c.updated_at),
                    escape(&c.persona),
                    c.messages,
                    escape(&c.title)
                ));
            }
        }
        Some(("show", sub)) => {
            let id = *sub.get_one::<i64>("n").expect("required");
            let c = conversations::get(&store, id)?;
            out.push_str(&format!(
                "# {}  ({}, {}, {})\n",
                escape(&c.title),
                escape(&c.persona),
                escape(&c.model),
                super::fmt_time(c.updated_at)
            ));
            // The messages are shown safe on a terminal, and exactly as kept when piped.
            let tty = ctx.io.stdout.is_tty();
            for msg in conversations::messages(&store, id)? {
                if msg.role == "system" {
                    continue;
                }
                let who = if msg.role == "user" {
                    "you"
                } else {
                    "assistant"
                };
                let content = msg.content.trim_end();
                let content = if tty {
                    assistant::render::visible(content)
                } else {
                    content.to_string()
                };
                out.push_str(&format!("\n{who}:\n{content}\n"));
            }
        }
        Some(("rm", sub)) => {
            let mut status = 0;
            for id in sub.get_many::<i64>("n").into_iter().flatten() {
                if !conversations::remove(&store, *id)? {
                    ctx.warn(format!("no conversation {id}"));
                    status = 1;
                }
            }
            return Ok(status);
        }
        _ => unreachable!("clap checks subcommands"),
    }
    ctx.io.stdout.write_all(out.as_bytes())?;
    Ok(0)
}

/// The URL `ai key set|remove` is about: the one given, or `assistant.url`.
fn key_url(m: &ArgMatches, current: &str) -> String {
    m.get_one::<String>("url")
        .map_or(current, |u| u.trim())
        .trim_end_matches('/')
        .to_string()
}

/// Lines for `ai` about keys that are there but not used for `url`: keys in valyxo's own
/// environment that are withheld from this server, a stored key withheld because the URL is
/// plain HTTP to another machine, and keys exported inside valyxo (which the assistant never
/// reads).
fn unused_keys(ctx: &Ctx, url: &str) -> Result<String> {
    let mut out = String::new();
    for (var, why) in key::withheld(url) {
        out.push_str(&format!(
            "         {var} is set in the environment valyxo started with, but withheld from \
             this server: {why}\n"
        ));
    }
    if key::check_url(url).is_err() && key::get(ctx.hub(), &key::account(url))?.is_some() {
        out.push_str(
            "         a key is stored for this server, but withheld: plain HTTP to another \
             machine would carry it in the clear\n",
        );
    }
    for var in key::env_vars() {
        if ctx
            .hub()
            .store
            .kv_get(crate::store::KvTable::Env, var)?
            .is_some()
        {
            out.push_str(&format!(
                "         {var} exported inside valyxo is not read by the assistant (it is kept \
                 in the store and handed to 'exec'): 'ai key set' stores the key in the OS \
                 keyring, then 'unset {var}'\n"
            ));
        }
    }
    Ok(out)
}
