//! The host command line (face): `valyxo [-c LINE | -e EXPR | FILE [ARGS]] [--home DIR]
//! [--no-color] [COMMAND]`.

use crate::hub::{Hub, HubOptions};
use crate::shell::io::{Io, Output};
use crate::shell::{parse, Session};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "valyxo",
    version,
    about = "Valyxo: a terminal developer hub — a shell over its own virtual filesystem",
    long_about = "Valyxo: a terminal developer hub — a shell over its own virtual filesystem.\n\n\
        With no arguments on a terminal it opens the interactive shell. With -c it runs one \
        line; with standard input from a pipe or file it runs those lines.",
    after_help = "Examples:\n  valyxo                       open the interactive shell\n  valyxo -c 'ls -l; pwd'       run one line and exit with its status\n  echo 'tree' | valyxo         run lines from standard input\n  valyxo run build.rhai a b    run a Rhai script from the host disk\n  valyxo script.vs             run a script (also as a #!/usr/bin/env valyxo shebang)\n  valyxo -e '6 * 7'            evaluate one Rhai expression and print it\n  valyxo --home /tmp/vx        keep all state in /tmp/vx\n  valyxo completions bash      print bash completions\n  valyxo man config            where config.toml is and every setting in it\n  valyxo edit notes.md         edit a host file in the full-screen editor (--vfs: a VFS path)"
)]
pub struct Cli {
    /// Run LINE and exit with its status.
    #[arg(short = 'c', value_name = "LINE", conflicts_with_all = ["expr", "script"])]
    pub command: Option<String>,
    /// Evaluate EXPR (Rhai) and print its value.
    #[arg(short = 'e', value_name = "EXPR", conflicts_with = "script")]
    pub expr: Option<String>,
    /// A script file on the host (.rhai, or .vs/.ns for ValyxoScript) to run with ARGS.
    #[arg(value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Arguments for the script, in its `args` array.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub script_args: Vec<String>,
    /// Keep all state in DIR (overrides VALYXO_HOME).
    #[arg(
        long,
        value_name = "DIR",
        global = true,
        env = "VALYXO_HOME",
        hide_env = true
    )]
    pub home: Option<PathBuf>,
    /// Turn colour off (as does NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub sub: Option<Sub>,
}

/// A subcommand's arguments, built only when that subcommand is the one used (clap's
/// `Command::defer`): a one-line run does not build the server's thirty options.
#[derive(Debug)]
pub struct Later<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Later<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Later)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl<T: Args> Args for Later<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }
}

/// Parsed once per process: the size of the server's options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Sub {
    /// Show a page of the built-in manual (as at the prompt), or with --roff as roff.
    Man(Later<ManArgs>),
    /// Edit files in the full-screen editor (paths in the VFS).
    Edit(Later<EditArgs>),
    /// Write valyxo.1 and one roff page per manual page into DIR, for the host's man.
    Manpages(Later<ManpagesArgs>),
    /// Run a script: a host file, or with --vfs a file in the VFS.
    Run(Later<RunArgs>),
    /// Run the account server (not in this build: it was made without the `server` feature).
    #[cfg(not(feature = "server"))]
    #[command(hide = true)]
    Server(Later<ServerArgs>),
    /// Run the account server: accounts, projects, scripts and sync over HTTP ('man server').
    #[cfg(feature = "server")]
    #[command(
        after_help = "The token signing secret comes from VALYXO_SERVER_SECRET (32 bytes or more), \
            or is created in the database on first start. The web editor's assistant is on \
            with --assistant-url and --assistant-model; its API key comes from \
            VALYXO_ASSISTANT_KEY or --assistant-key-file, and never reaches a browser.\n\nExamples:\n  \
            valyxo server                                   SQLite in the Valyxo home, on 127.0.0.1:8080\n  \
            valyxo server --listen 0.0.0.0:8080 --database postgres://valyxo@db/valyxo\n  \
            valyxo server --assistant-url http://localhost:11434/v1 --assistant-model llama3.2\n  \
            valyxo server gc --dry-run                      what unreferenced file content would free"
    )]
    Server(Later<ServerArgs>),
    /// Check the state store; salvage a damaged one, restore a backup, or compact it ('man doctor').
    #[command(
        after_help = "Salvaging and restoring move the store aside and put another in its place: run \
            them with no other valyxo using this home.\n\nExamples:\n  \
            valyxo doctor                 check the store and list its backups\n  \
            valyxo doctor --salvage       copy what is still readable into a new store\n  \
            valyxo doctor --restore       put the newest backup back"
    )]
    Doctor(Later<DoctorArgs>),
    /// Print completions for a host shell (bash, zsh, fish, elvish, powershell).
    Completions(Later<CompletionsArgs>),
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Print the page as roff (man(7)) for the host's man.
    #[arg(long)]
    pub roff: bool,
    /// Search the pages for WORD instead.
    #[arg(
        short = 'k',
        long = "search",
        value_name = "WORD",
        conflicts_with = "roff"
    )]
    pub search: Option<String>,
    /// The page: a command, an alias or a topic.
    #[arg(value_name = "PAGE")]
    pub page: Option<String>,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    /// Start on line N of the first file.
    #[arg(short = 'l', long = "line", value_name = "N")]
    pub line: Option<u64>,
    /// List the unsaved changes the editor kept (or print those of FILE), and exit.
    #[arg(long, conflicts_with = "discard")]
    pub recovered: bool,
    /// Drop the unsaved changes kept for each FILE, and exit.
    #[arg(long, requires = "files")]
    pub discard: bool,
    /// The FILEs are VFS paths (without it they are host paths, as in any editor).
    #[arg(long)]
    pub vfs: bool,
    /// The files to open (a missing one is created when saved).
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ManpagesArgs {
    /// The directory to write into (created when missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// FILE is a VFS path instead of a host path.
    #[arg(long)]
    pub vfs: bool,
    /// The script's relative paths (read("data.json")) are files of the host directory
    /// you are in, mounted for this run at /here, instead of the VFS.
    #[arg(long)]
    pub here: bool,
    /// Stop the script after this long (500ms, 5s, 2m); overrides setting script.timeout.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Stop the script after N operations; overrides setting script.max_operations.
    #[arg(long = "max-operations", value_name = "N")]
    pub max_operations: Option<u64>,
    /// The script (.rhai, or .vs/.ns for ValyxoScript).
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Arguments, in the script's `args` array.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

#[cfg(not(feature = "server"))]
#[derive(Args, Debug)]
pub struct ServerArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

#[cfg(feature = "server")]
#[derive(Args, Debug)]
#[command(disable_help_subcommand = true)]
pub struct ServerArgs {
    /// Operations on a server's SQLite database instead of running the server.
    #[command(subcommand)]
    pub action: Option<ServerAction>,
    /// The address and port to listen on (port 0 picks a free one).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "VALYXO_SERVER_LISTEN"
    )]
    pub listen: String,
    /// sqlite:PATH (default: server.db in the Valyxo home) or postgres://USER@HOST/DB.
    #[arg(
        long,
        value_name = "URL",
        env = "VALYXO_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database: Option<String>,
    /// Database connections per server process [default: twice the processors, at
    /// least 4].
    #[arg(long, value_name = "N")]
    pub pool_size: Option<u32>,
    /// The longest one database statement may run or wait for a lock (more than 0); past
    /// it the request gets 503 (on SQLite: how long it waits for another's write). 'gc'
    /// takes it too.
    #[arg(long, value_name = "DURATION", default_value = "30s", global = true)]
    pub statement_timeout: String,
    /// How long a login lasts (30m, 12h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub token_ttl: String,
    /// Login and register attempts per minute per client address (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub rate_limit: u32,
    /// A reverse proxy whose X-Forwarded-For names the client (repeat for more).
    #[arg(long = "trusted-proxy", value_name = "IP")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A web origin allowed to call the API from a browser (repeat for more).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Largest JSON request body (64K, 1M).
    #[arg(long, value_name = "SIZE", default_value = "1M")]
    pub json_limit: String,
    /// Largest file one upload may carry (512MiB, 1GiB, 4GiB); uploads stream, so this
    /// bounds storage, not memory.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "1GiB",
        alias = "blob-limit"
    )]
    pub max_file_size: String,
    /// Bytes of file content one account may store (0: no quota).
    #[arg(long, value_name = "SIZE", default_value = "10G")]
    pub quota: String,
    /// Uploads one account may send at once.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub uploads_per_account: usize,
    /// Drop a request body that sends nothing for this long (or trickles in slower).
    #[arg(long, value_name = "DURATION", default_value = "20s")]
    pub body_timeout: String,
    /// Delete uploaded content that no file names after this long untouched (the grace
    /// period of the collector, which runs every ten minutes and as 'gc').
    #[arg(long, value_name = "DURATION", default_value = "24h", global = true)]
    pub upload_expiry: String,
    /// Close a connection whose request line and headers take longer than this.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub header_timeout: String,
    /// Close a keep-alive connection idle for this long (or whose client stops reading).
    #[arg(long, value_name = "DURATION", default_value = "75s")]
    pub idle_timeout: String,
    /// Connections served at once; more wait a second, then get 503.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,
    /// On SIGTERM, how long the requests under way may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub shutdown_grace: String,
    /// Serve /metrics to requests bearing this token (16 characters or more).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "VALYXO_METRICS_TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// Also serve /metrics, without a token, on this address (keep it private).
    #[arg(long, value_name = "ADDR", env = "VALYXO_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The web editor's assistant: an OpenAI-compatible API (http://localhost:11434/v1 for
    /// Ollama, https://api.openai.com/v1); its key, if it needs one, comes from
    /// VALYXO_ASSISTANT_KEY or --assistant-key-file, never from the command line.
    #[arg(long, value_name = "URL", env = "VALYXO_ASSISTANT_URL")]
    pub assistant_url: Option<String>,
    /// The model the assistant asks (needed with --assistant-url).
    #[arg(long, value_name = "NAME", env = "VALYXO_ASSISTANT_MODEL")]
    pub assistant_model: Option<String>,
    /// A file that holds the assistant's API key (instead of VALYXO_ASSISTANT_KEY).
    #[arg(long, value_name = "FILE", env = "VALYXO_ASSISTANT_KEY_FILE")]
    pub assistant_key_file: Option<PathBuf>,
    /// Questions one account may ask the assistant per minute (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub assistant_rate: u32,
    /// How long the assistant's API may take to begin an answer, or stay silent in one.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub assistant_timeout: String,
    /// The longest answer the assistant relays (more than 0); a longer one is cut there.
    #[arg(long, value_name = "SIZE", default_value = "256K")]
    pub assistant_max_answer: String,
    /// Wall-clock time one script execution may run.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub script_timeout: String,
    /// Memory one script execution may hold.
    #[arg(long, value_name = "SIZE", default_value = "64M")]
    pub script_memory: String,
    /// Scripts run at once, on threads of their own (default: half the CPU cores).
    #[arg(long, value_name = "N")]
    pub script_workers: Option<usize>,
    /// Executions admitted at once, running or waiting; more get 429 (default: 8 per worker).
    #[arg(long, value_name = "N")]
    pub script_limit: Option<usize>,
    /// Executions one account may have admitted at once; more get 429.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub script_per_account: usize,
    /// Executions kept per script; older ones are dropped (the stats keep counting).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub execution_history: usize,
    /// Password hashes computed at once, 19 MiB each (default: one per CPU core).
    #[arg(long, value_name = "N")]
    pub hash_slots: Option<usize>,
    /// Items in a page of a list when the request gives no limit (the file listing: --max-page-size).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub page_size: usize,
    /// The largest page a list gives (its limit parameter).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub max_page_size: usize,
    /// Do not log each request.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

// What `valyxo server` does instead of serving (no doc comment: it would become the
// server's own description in --help).
#[cfg(feature = "server")]
#[derive(Subcommand, Debug)]
pub enum ServerAction {
    /// Delete file content no file names, untouched for --upload-expiry, and uploads
    /// abandoned half-way; report what was freed ('man server').
    #[command(
        after_help = "Safe while servers use the database: content a sync is uploading or has \
            just asked about is touched, and kept.\n\nExamples:\n  \
            valyxo server gc --dry-run                      what would be freed\n  \
            valyxo server gc --database postgres://valyxo@db/valyxo --upload-expiry 2h"
    )]
    Gc(GcArgs),
    /// Copy the server's SQLite database into FILE, consistently, even while a server is using it.
    #[command(
        after_help = "FILE must not exist; it is written beside itself under a temporary name \
            and renamed when complete and checked. For PostgreSQL, use pg_dump ('man server').\n\n\
            Examples:\n  \
            valyxo server backup server-2026-11-26.db\n  \
            valyxo server backup --database sqlite:/srv/valyxo/server.db /backups/valyxo.db"
    )]
    Backup(ServerFileArgs),
    /// Put a backup made by 'valyxo server backup' in the place of the server's SQLite database.
    #[command(
        after_help = "Stop the server first: restore refuses a database that a server has \
            open. FILE is checked (a Valyxo server database that passes SQLite's integrity \
            check) before anything is replaced; the database replaced is kept beside it as \
            DATABASE.replaced-TIME. For PostgreSQL, use pg_restore ('man server').\n\n\
            Examples:\n  \
            valyxo server restore server-2026-11-26.db\n  \
            valyxo server restore --database sqlite:/srv/valyxo/server.db /backups/valyxo.db"
    )]
    Restore(ServerFileArgs),
}

#[cfg(feature = "server")]
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Only count what would be freed; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(feature = "server")]
#[derive(Args, Debug)]
pub struct ServerFileArgs {
    /// The backup file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Copy every row still readable into a new store that takes its place (the damaged
    /// file is kept beside it).
    #[arg(long, conflicts_with_all = ["restore", "compact", "backup"])]
    pub salvage: bool,
    /// Put a backup in the store's place: the newest, or FILE (the store there is kept).
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with_all = ["compact", "backup"]
    )]
    pub restore: Option<String>,
    /// Drop contents no file uses and give free space back to the file system.
    #[arg(long)]
    pub compact: bool,
    /// Make a backup now.
    #[arg(long)]
    pub backup: bool,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

fn exit_code(status: i32) -> ExitCode {
    ExitCode::from((status & 0xff) as u8)
}

/// The process arguments, with `--` put before a script file name so that the script's own
/// arguments (even `run`) are never taken for Valyxo's subcommands.
fn args() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        match a.as_ref() {
            "--" => break,
            "--home" | "-c" | "-e" => i += 2,
            _ if a.starts_with('-') => i += 1,
            _ => {
                if a != "help" && !Sub::has_subcommand(&a) {
                    args.insert(i, "--".into());
                }
                break;
            }
        }
    }
    args
}

/// The full-screen views of a terminal, handed to the commands that open them.
struct TerminalViews;

impl crate::commands::Views for TerminalViews {
    fn edit(
        &self,
        hub: std::sync::Arc<crate::hub::Hub>,
        cwd: crate::vfs::VPath,
        files: &[crate::vfs::VPath],
        line: Option<usize>,
        color: bool,
    ) -> anyhow::Result<()> {
        crate::editor::run(hub, cwd, files, line, color)
    }

    fn page(
        &self,
        title: &str,
        lines: Vec<ratatui::text::Line<'static>>,
        theme: &crate::theme::Theme,
        color: bool,
    ) -> anyhow::Result<()> {
        // The page's lines carry no colour when colour is off; the pager adds only the
        // attributes of its style.
        let style = crate::pager::PagerStyle::of(theme, color);
        crate::pager::page(title, lines, &style, true)?;
        Ok(())
    }
}

/// The arguments of a one-line run, read without building the whole command line (which
/// costs a one-line run a tenth of its time): `-c LINE`, with `--home DIR` and `--no-color`,
/// in any order, each at most once. Anything else — another option, `-cLINE`, `--home=DIR`,
/// an empty value or one that starts with `-`, a line that is not UTF-8 — is `None` and goes
/// to clap, so the two always agree (a test checks them against each other).
fn one_line_run(args: &[std::ffi::OsString]) -> Option<Cli> {
    let (mut command, mut home, mut no_color) = (None, None, false);
    let mut rest = args.get(1..)?.iter();
    while let Some(a) = rest.next() {
        let value = |v: Option<&std::ffi::OsString>| {
            v.filter(|v| !v.is_empty() && !v.as_encoded_bytes().starts_with(b"-"))
                .cloned()
        };
        match a.to_str()? {
            "-c" if command.is_none() => command = Some(value(rest.next())?.into_string().ok()?),
            "--home" if home.is_none() => home = Some(PathBuf::from(value(rest.next())?)),
            "--no-color" if !no_color => no_color = true,
            _ => return None,
        }
    }
    command.as_ref()?;
    // As clap would have it: the flag, else VALYXO_HOME when set; clap refuses it empty.
    let home = match home {
        Some(h) => Some(h),
        None => match std::env::var_os("VALYXO_HOME") {
            Some(h) if h.is_empty() => return None,
            h => h.map(PathBuf::from),
        },
    };
    Some(Cli {
        command,
        expr: None,
        script: None,
        script_args: Vec::new(),
        home,
        no_color,
        sub: None,
    })
}

pub fn main() -> ExitCode {
    crate::commands::set_views(Box::new(TerminalViews));
    let args = args();
    let cli = match one_line_run(&args) {
        Some(cli) => cli,
        None => {
            let matches = Cli::command().get_matches_from(args);
            #[cfg(feature = "server")]
            if let Err(e) = serving_options_only_when_serving(&matches) {
                e.exit();
            }
            Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
        }
    };
    if let Some(Sub::Completions(Later(CompletionsArgs { shell }))) = cli.sub {
        let mut cmd = Cli::command();
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, "valyxo", &mut script);
        // A reader that stops early (`| head`) is not an error.
        return match std::io::stdout().write_all(&script) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("valyxo: {e}");
                ExitCode::from(1)
            }
            _ => ExitCode::SUCCESS,
        };
    }
    match &cli.sub {
        Some(Sub::Man(Later(ManArgs {
            roff: true,
            page: Some(page),
            ..
        }))) => return print_roff(page),
        Some(Sub::Man(Later(ManArgs {
            roff: true,
            page: None,
            ..
        }))) => {
            eprintln!("valyxo: --roff needs a PAGE (or use 'valyxo manpages DIR' for all)");
            return ExitCode::from(2);
        }
        Some(Sub::Manpages(Later(ManpagesArgs { dir }))) => return write_manpages(dir),
        #[cfg(feature = "server")]
        Some(Sub::Server(_)) => return run_server(&cli),
        #[cfg(not(feature = "server"))]
        Some(Sub::Server(_)) => {
            eprintln!(
                "valyxo: this valyxo was built without the account server; build it with the \
                 'server' feature (the default: cargo build --release)"
            );
            return ExitCode::from(2);
        }
        Some(Sub::Doctor(_)) => return run_doctor(&cli),
        _ => {}
    }
    let hub = match Hub::open(HubOptions {
        home: cli.home.clone(),
        no_color: cli.no_color,
        // A line may need nothing stored (`valyxo -c true`); the other runs all read it.
        lazy_store: cli.command.is_some(),
    }) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("valyxo: {}", crate::shell::error_text(&e));
            return ExitCode::from(1);
        }
    };
    let result = if let Some(line) = &cli.command {
        Session::new(hub.clone(), false).map(|mut sh| {
            sh.echo_jobs = true;
            let status = sh.run(line, &mut Io::process(true));
            sh.exit.unwrap_or(status)
        })
    } else if let Some(Sub::Man(Later(ManArgs { search, page, .. }))) = &cli.sub {
        let line = match (search, page) {
            (Some(q), _) => format!("man -k {}", crate::text::shell_quote(q)),
            (None, Some(p)) => format!("man {}", crate::text::shell_quote(p)),
            (None, None) => "man".to_string(),
        };
        Session::new(hub.clone(), false).map(|mut sh| sh.run(&line, &mut Io::process(true)))
    } else if let Some(Sub::Edit(Later(EditArgs {
        line,
        recovered,
        discard,
        vfs,
        files,
    }))) = &cli.sub
    {
        let files = if *vfs {
            files.clone()
        } else {
            match host_files(&hub, files) {
                Ok(f) => f,
                Err(e) => {
                    // The names come from the host (a glob there, say): shown escaped.
                    eprintln!("valyxo: {}", crate::shell::error_text(&e));
                    return ExitCode::from(1);
                }
            }
        };
        let mut cmd = String::from("edit");
        if let Some(n) = line {
            cmd.push_str(&format!(" --line {n}"));
        }
        if *recovered {
            cmd.push_str(" --recovered");
        }
        if *discard {
            cmd.push_str(" --discard");
        }
        if !files.is_empty() {
            cmd.push_str(" --");
        }
        for f in files {
            cmd.push(' ');
            cmd.push_str(&crate::text::shell_quote(&f));
        }
        Session::new(hub.clone(), false).map(|mut sh| sh.run(&cmd, &mut Io::process(true)))
    } else if let Some(expr) = &cli.expr {
        Session::new(hub.clone(), false).map(|sh| eval_expr(sh, expr))
    } else if let Some(Sub::Run(Later(run))) = &cli.sub {
        Session::new(hub.clone(), false).and_then(|sh| run_script(sh, run))
    } else if let Some(file) = &cli.script {
        let run = RunArgs {
            vfs: false,
            here: false,
            timeout: None,
            max_operations: None,
            file: file.to_string_lossy().into_owned(),
            args: cli.script_args.clone(),
        };
        Session::new(hub.clone(), false).and_then(|sh| run_script(sh, &run))
    } else if std::io::stdin().is_terminal() {
        crate::repl::run(hub.clone())
    } else {
        Session::new(hub.clone(), false).map(|mut sh| {
            sh.echo_jobs = true;
            run_stdin(&mut sh)
        })
    };
    // Background jobs started by a non-interactive run finish before the process ends.
    crate::jobs::wait_all(&hub);
    // Space freed by the run goes back to the file system.
    let _ = crate::store::care::reclaim(&hub.store);
    match result {
        Ok(status) => exit_code(status),
        Err(e) => {
            eprintln!("valyxo: {}", crate::shell::error_text(&e));
            ExitCode::from(1)
        }
    }
}

/// `valyxo doctor`: works on the store file itself, without opening the hub (which a damaged
/// store would refuse).
fn run_doctor(cli: &Cli) -> ExitCode {
    let Some(Sub::Doctor(Later(DoctorArgs {
        salvage,
        restore,
        compact,
        backup,
    }))) = &cli.sub
    else {
        return ExitCode::from(2);
    };
    use crate::store::care;
    let run = || -> anyhow::Result<bool> {
        let home = crate::hub::home_dir(cli.home.clone())?;
        let path = home.join(crate::store::DB_FILE);
        if !path.exists() {
            anyhow::bail!("there is no state store at {} yet", path.display());
        }
        let mut out = std::io::stdout().lock();
        if *salvage {
            let r = care::salvage(&path)?;
            for (table, copied, lost) in &r.tables {
                if *copied > 0 || *lost > 0 {
                    let lost = if *lost > 0 {
                        format!(", {lost} unreadable")
                    } else {
                        String::new()
                    };
                    writeln!(out, "salvaged  {table}: {copied} rows{lost}")?;
                }
            }
            writeln!(out, "the damaged store is kept as {}", r.kept.display())?;
            // The new store is at this valyxo's schema (so one-line runs leave it shut), but
            // may hold what an older home kept in it (aliases, settings): a hub that opens
            // it at once moves those out now.
            if let Err(e) = Hub::open(HubOptions {
                home: cli.home.clone(),
                no_color: true,
                lazy_store: false,
            }) {
                eprintln!("valyxo doctor: {}", crate::shell::error_text(&e));
            }
        }
        if let Some(from) = restore {
            let from = if from.is_empty() {
                care::backups(&path).into_iter().next().ok_or_else(|| {
                    anyhow::anyhow!(
                        "there are no backups in {}",
                        care::backup_dir(&path).display()
                    )
                })?
            } else {
                PathBuf::from(from)
            };
            let kept = care::restore(&path, &from)?;
            writeln!(out, "restored {}", from.display())?;
            writeln!(
                out,
                "the store that was there is kept as {}",
                kept.display()
            )?;
        }
        if *compact {
            let (before, after) = care::compact(&path)?;
            writeln!(
                out,
                "compacted: {} → {}",
                crate::vfs::transfer::human_bytes(before),
                crate::vfs::transfer::human_bytes(after)
            )?;
        }
        if *backup {
            let keep = crate::settings::StoreSettings::default().backups;
            let b = care::backup(&path, keep)?;
            writeln!(out, "backed up to {}", b.display())?;
        }
        let (text, sound) = crate::commands::doctor::report(&path);
        out.write_all(text.as_bytes())?;
        Ok(sound)
    };
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("valyxo doctor: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Refuses an option of the running server given to one of `valyxo server`'s operations
/// (`valyxo server --listen :9 gc`), which would ignore it. `--database` is theirs too,
/// and `gc`'s `--upload-expiry` and `--statement-timeout`, before or after its name.
#[cfg(feature = "server")]
fn serving_options_only_when_serving(m: &clap::ArgMatches) -> Result<(), clap::Error> {
    use clap::parser::ValueSource;
    let Some(server) = m.subcommand_matches("server") else {
        return Ok(());
    };
    let Some((action, _)) = server.subcommand() else {
        return Ok(());
    };
    let shared: &[&str] = match action {
        "gc" => &[
            "database",
            "upload_expiry",
            "statement_timeout",
            "home",
            "no_color",
        ],
        _ => &["database", "home", "no_color"],
    };
    let mut cmd = Cli::command();
    cmd.build();
    let Some(serve) = cmd.find_subcommand_mut("server") else {
        return Ok(());
    };
    let given = serve.get_arguments().find(|a| {
        let id = a.get_id().as_str();
        !shared.contains(&id) && server.value_source(id) == Some(ValueSource::CommandLine)
    });
    let Some(flag) = given.map(|a| {
        a.get_long()
            .map_or(a.get_id().to_string(), |l| format!("--{l}"))
    }) else {
        return Ok(());
    };
    Err(serve.error(
        clap::error::ErrorKind::ArgumentConflict,
        format!(
            "{flag} is an option of the running server; 'valyxo server {action}' does not take it"
        ),
    ))
}

/// `valyxo server`: runs until SIGINT or SIGTERM, or does one of its operations.
#[cfg(feature = "server")]
fn run_server(cli: &Cli) -> ExitCode {
    let Some(Sub::Server(Later(ServerArgs {
        listen,
        database,
        pool_size,
        statement_timeout,
        token_ttl,
        rate_limit,
        trusted_proxies,
        cors_origins,
        json_limit,
        max_file_size,
        quota,
        uploads_per_account,
        body_timeout,
        upload_expiry,
        header_timeout,
        idle_timeout,
        max_connections,
        shutdown_grace,
        metrics_token,
        metrics_listen,
        assistant_url,
        assistant_model,
        assistant_key_file,
        assistant_rate,
        assistant_timeout,
        assistant_max_answer,
        script_timeout,
        script_memory,
        script_workers,
        script_limit,
        script_per_account,
        execution_history,
        hash_slots,
        page_size,
        max_page_size,
        quiet,
        action,
    }))) = &cli.sub
    else {
        return ExitCode::from(2);
    };
    let database_or_default = |database: &Option<String>| -> anyhow::Result<String> {
        Ok(match database {
            Some(d) => d.clone(),
            None => {
                let home = crate::hub::home_dir(cli.home.clone())?;
                format!("sqlite:{}", home.join("server.db").display())
            }
        })
    };
    if let Some(
        action @ (ServerAction::Backup(ServerFileArgs { file })
        | ServerAction::Restore(ServerFileArgs { file })),
    ) = action
    {
        let backup = matches!(action, ServerAction::Backup(_));
        let verb = if backup { "backup" } else { "restore" };
        let done = database_or_default(database).and_then(|db| {
            if backup {
                crate::server::backup::backup(&db, file)
            } else {
                crate::server::backup::restore(&db, file)
            }
        });
        return match done {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("valyxo server {verb}: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let config = || -> anyhow::Result<crate::server::Config> {
        use crate::settings::{parse_duration, parse_size};
        use anyhow::Context;
        let database = database_or_default(database)?;
        let size = |v: &str, what: &str| -> anyhow::Result<usize> {
            let n = parse_size(v).with_context(|| format!("--{what}"))?;
            usize::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("--{what} must be more than 0"))
        };
        let defaults = crate::server::Config::default();
        let positive = |d: &str, what: &str| -> anyhow::Result<std::time::Duration> {
            let d = parse_duration(d).with_context(|| format!("--{what}"))?;
            anyhow::ensure!(!d.is_zero(), "--{what} must be more than 0");
            Ok(d)
        };
        let mut admission = defaults.script_admission;
        if let Some(n) = script_workers {
            anyhow::ensure!(*n > 0, "--script-workers must be more than 0");
            admission.workers = *n;
            admission.total = n * 8;
        }
        if let Some(n) = script_limit {
            admission.total = *n;
        }
        admission.per_account = *script_per_account;
        anyhow::ensure!(
            admission.total > 0 && admission.per_account > 0,
            "--script-limit and --script-per-account must be more than 0"
        );
        anyhow::ensure!(
            *max_connections > 0,
            "--max-connections must be more than 0"
        );
        let metrics_token = metrics_token.clone().filter(|t| !t.is_empty());
        anyhow::ensure!(
            metrics_token.as_ref().is_none_or(|t| t.len() >= 16),
            "--metrics-token must have 16 characters or more"
        );
        let script_limits = crate::server::sandbox::Limits {
            time: positive(script_timeout, "script-timeout")?,
            memory: size(script_memory, "script-memory")?,
            ..defaults.script_limits
        };
        anyhow::ensure!(
            *page_size > 0 && *max_page_size > 0,
            "--page-size and --max-page-size must be more than 0"
        );
        anyhow::ensure!(
            page_size <= max_page_size,
            "--page-size ({page_size}) cannot be larger than --max-page-size ({max_page_size})"
        );
        let assistant = match assistant_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => {
                let model = assistant_model
                    .as_deref()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .context("--assistant-url needs --assistant-model (or VALYXO_ASSISTANT_MODEL): the model to ask")?;
                let key = match assistant_key_file {
                    Some(file) => {
                        let key = std::fs::read_to_string(file).with_context(|| {
                            format!("--assistant-key-file: cannot read {}", file.display())
                        })?;
                        let key = key.trim().to_string();
                        anyhow::ensure!(
                            !key.is_empty(),
                            "--assistant-key-file: {} is empty",
                            file.display()
                        );
                        Some(key)
                    }
                    None => std::env::var("VALYXO_ASSISTANT_KEY")
                        .ok()
                        .map(|k| k.trim().to_string())
                        .filter(|k| !k.is_empty()),
                };
                anyhow::ensure!(
                    key.is_some() || !url.starts_with("https://api.openai.com"),
                    "--assistant-url {url} needs an API key: set VALYXO_ASSISTANT_KEY, or name a file that holds it with --assistant-key-file"
                );
                let timeout = positive(assistant_timeout, "assistant-timeout")?;
                let idle = positive(idle_timeout, "idle-timeout")?;
                // A silence in an answer longer than the idle timeout would close the
                // browser's connection before the assistant's own timeout could say why.
                anyhow::ensure!(
                    timeout < idle,
                    "--assistant-timeout ({assistant_timeout}) must be shorter than --idle-timeout ({idle_timeout})"
                );
                // Answers are relayed through memory: the server holds one to a bound.
                let max_answer = size(assistant_max_answer, "assistant-max-answer")?;
                anyhow::ensure!(
                    max_answer > 0,
                    "--assistant-max-answer must be more than 0: the server bounds every answer it relays"
                );
                Some(crate::server::AssistantSettings {
                    url: url.to_string(),
                    model: model.to_string(),
                    key,
                    timeout,
                    per_minute: *assistant_rate,
                    max_answer,
                })
            }
        };
        Ok(crate::server::Config {
            listen: listen.clone(),
            database,
            pool_size: pool_size.unwrap_or_else(crate::server::default_pool_size),
            statement_timeout: positive(statement_timeout, "statement-timeout")?,
            token_ttl: parse_duration(token_ttl).context("--token-ttl")?,
            rate_limit: *rate_limit,
            trusted_proxies: trusted_proxies.clone(),
            cors_origins: cors_origins.clone(),
            json_limit: size(json_limit, "json-limit")?,
            max_file_size: parse_size(max_file_size)
                .context("--max-file-size (a size such as 512MiB, 1GiB or 4GiB)")
                .and_then(|n| {
                    anyhow::ensure!(n > 0, "--max-file-size must be more than 0");
                    Ok(n)
                })?,
            secret: std::env::var("VALYXO_SERVER_SECRET")
                .ok()
                .filter(|s| !s.is_empty()),
            log: !quiet,
            script_limits,
            script_admission: admission,
            execution_history: (*execution_history).max(1),
            hash_slots: hash_slots.unwrap_or(defaults.hash_slots).max(1),
            quota: parse_size(quota).context("--quota")?,
            uploads_per_account: (*uploads_per_account).max(1),
            body_timeout: positive(body_timeout, "body-timeout")?,
            upload_expiry: positive(upload_expiry, "upload-expiry")?,
            page_size: *page_size,
            max_page_size: *max_page_size,
            header_timeout: positive(header_timeout, "header-timeout")?,
            idle_timeout: positive(idle_timeout, "idle-timeout")?,
            max_connections: *max_connections,
            shutdown_grace: positive(shutdown_grace, "shutdown-grace")?,
            metrics_token,
            metrics_listen: metrics_listen.clone().filter(|a| !a.is_empty()),
            assistant,
        })
    };
    if let Some(ServerAction::Gc(GcArgs { dry_run })) = action {
        let gc = || -> anyhow::Result<crate::server::Freed> {
            let config = config()?;
            crate::server::gc(
                &config.database,
                config.upload_expiry,
                config.statement_timeout,
                *dry_run,
            )
        };
        return match gc() {
            Ok(freed) => {
                let verb = if *dry_run { "would free" } else { "freed" };
                println!("valyxo server gc: {verb} {freed}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("valyxo server gc: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    match config().and_then(crate::server::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("valyxo server: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The manual page of the `valyxo` program itself (valyxo.1).
fn program_page() -> String {
    let mut cmd = Cli::command();
    let usage = cmd.render_usage().to_string();
    let usage = usage
        .trim()
        .strip_prefix("Usage: ")
        .unwrap_or(usage.trim())
        .to_string();
    let mut md = format!(
        "# valyxo — A terminal developer hub: a shell over its own virtual filesystem\n\n\
         ## Synopsis\n\n```text\n{usage}\n```\n\n## Description\n\n\
         With no arguments on a terminal, valyxo opens its interactive shell. `-c LINE` runs one \
         line; lines piped to standard input are run in turn; `valyxo run FILE` and `valyxo FILE` \
         run a script; `-e EXPR` evaluates one Rhai expression; `valyxo edit FILE` opens the \
         full-screen editor (`valyxo-editor`(1)). State lives in one SQLite file \
         in the home given by `--home DIR`, `VALYXO_HOME` or the platform data directory; \
         settings live in `config.toml` beside that home, or in the platform config directory \
         for the default home (`valyxo-config`(1)).\n\n\
         ## Pages\n\n"
    );
    for (name, _) in crate::manual::pages() {
        let summary = crate::manual::summary(name).unwrap_or("");
        md.push_str(&format!("- `valyxo-{name}`(1) — {summary}\n"));
    }
    md
}

fn print_roff(page: &str) -> ExitCode {
    if page == "valyxo" {
        print!("{}", crate::manual::roff("valyxo", &program_page()));
        return ExitCode::SUCCESS;
    }
    match crate::manual::resolve(page) {
        Some((name, src)) => {
            print!("{}", crate::manual::roff(name, src));
            ExitCode::SUCCESS
        }
        None => {
            let sugg = crate::manual::suggest(page);
            if sugg.is_empty() {
                eprintln!("valyxo: no manual page for '{page}'");
            } else {
                eprintln!(
                    "valyxo: no manual page for '{page}'. Did you mean {}?",
                    crate::text::quote_list(&sugg)
                );
            }
            ExitCode::from(1)
        }
    }
}

fn write_manpages(dir: &std::path::Path) -> ExitCode {
    let write = || -> anyhow::Result<usize> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("valyxo.1"),
            crate::manual::roff("valyxo", &program_page()),
        )?;
        let pages = crate::manual::pages();
        for (name, src) in pages {
            std::fs::write(
                dir.join(format!("valyxo-{name}.1")),
                crate::manual::roff(name, src),
            )?;
        }
        Ok(pages.len() + 1)
    };
    match write() {
        Ok(n) => {
            println!("wrote {n} pages to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("valyxo: cannot write the pages to {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}

/// Where `valyxo edit` mounts the host directories of the files it opens: the host path
/// `/tmp/x.txt` is edited as `/host/tmp/x.txt` (`/.host/…` when the VFS uses `/host`).
const HOST_ROOTS: [&str; 2] = ["/host", "/.host"];

/// The VFS paths of host `files` (relative to the host's current directory), their
/// directories mounted for this process only, as jails: each directory holding a file is
/// mounted, unless a directory above it already is.
fn host_files(hub: &Hub, files: &[String]) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let here = std::env::current_dir().context("the current directory")?;
    let mut at: Vec<(PathBuf, std::ffi::OsString)> = Vec::new();
    for f in files {
        let mut path = here.join(f);
        // A symlink named on the host is followed to its file, as any editor does (the
        // user named it; the jail is the target's directory): the link stays a link.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            if let Ok(target) = std::fs::canonicalize(&path) {
                path = target;
            }
        }
        let name = path
            .file_name()
            .with_context(|| format!("'{f}' does not name a file"))?
            .to_os_string();
        let dir = path.parent().unwrap_or(std::path::Path::new("/"));
        let dir = std::fs::canonicalize(dir)
            .with_context(|| format!("'{f}': its directory {}", dir.display()))?;
        if path.is_dir() {
            anyhow::bail!("'{f}' is a directory: name files to edit");
        }
        at.push((dir, name));
    }
    let root = HOST_ROOTS
        .into_iter()
        .find(|r| crate::vfs::VPath::parse_absolute(r).is_ok_and(|p| !hub.vfs.exists(&p)))
        .context("/host and /.host are both used in the VFS: open VFS paths with --vfs")?;
    let mut dirs: Vec<&PathBuf> = at.iter().map(|(d, _)| d).collect();
    dirs.sort();
    dirs.dedup();
    let tops: Vec<&PathBuf> = dirs
        .iter()
        .filter(|d| !dirs.iter().any(|o| o != *d && d.starts_with(o)))
        .copied()
        .collect();
    let vpath = |dir: &std::path::Path| {
        let s = dir
            .to_str()
            .with_context(|| format!("{}: not UTF-8, which VFS paths must be", dir.display()))?;
        Ok::<String, anyhow::Error>(format!("{root}{}", s.trim_end_matches('/')))
    };
    for d in &tops {
        let v = crate::vfs::VPath::parse_absolute(&vpath(d)?)?;
        hub.vfs
            .mount_here(d, &v)
            .map_err(|e| anyhow::anyhow!("cannot open {} for editing: {e}", d.display()))?;
    }
    at.iter()
        .map(|(dir, name)| {
            let name = name
                .to_str()
                .with_context(|| format!("{}: not UTF-8", name.to_string_lossy()))?;
            Ok(format!("{}/{name}", vpath(dir)?))
        })
        .collect()
}

/// Where `valyxo run --here` mounts the host directory it was started in.
const HERE: &str = "/here";

/// `valyxo run FILE` and `valyxo FILE`: a script from the host disk (or the VFS with --vfs).
/// The script's own paths are VFS paths; with `--here`, the host directory it was started
/// in is mounted for this run at [`HERE`] and is the script's working directory.
fn run_script(mut sh: Session, run: &RunArgs) -> anyhow::Result<i32> {
    use crate::script::{self, Host, Limits, Origin};
    let file = run.file.as_str();
    let (origin, bytes) = if run.vfs {
        let p = sh.resolve(file)?;
        let data = sh
            .hub
            .vfs
            .read(&p)
            .map_err(|e| anyhow::anyhow!("cannot read '{file}': {e}"))?;
        (Origin::Vfs(p), data)
    } else {
        let max = Limits::from_settings(&sh.hub).max_memory;
        let data = script::read_host(std::path::Path::new(file), max).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (a host path; use --vfs for a VFS path)"
            } else {
                ""
            };
            anyhow::anyhow!("cannot read '{}': {e}{hint}", crate::text::escape(file))
        })?;
        (Origin::Host(PathBuf::from(file)), data)
    };
    let limits =
        Limits::from_settings(&sh.hub).overridden(run.timeout.as_deref(), run.max_operations)?;
    let here = anyhow::Context::context(std::env::current_dir(), "the current directory")?;
    if run.here {
        let at = crate::vfs::VPath::parse_absolute(HERE)?;
        sh.hub
            .vfs
            .mount_here(&here, &at)
            .map_err(|e| anyhow::anyhow!("cannot mount {} for the script: {e}", here.display()))?;
        sh.set_cwd(at);
    }
    let from_host = !run.vfs && !run.here;
    let host = Host::new(sh, Output::Stdout, Output::Stderr);
    if from_host {
        host.files_hint(here);
    }
    Ok(script::run_file(&host, origin, bytes, &run.args, &limits))
}

/// `valyxo -e EXPR`: evaluates Rhai and prints the value (strings without quotes).
fn eval_expr(sh: Session, expr: &str) -> i32 {
    use crate::script::{self, Host, Limits, Source};
    let limits = Limits::from_settings(&sh.hub);
    let host = Host::new(sh, Output::Stdout, Output::Stderr);
    match script::eval(&host, &Source::inline("-e", expr), &[], &limits) {
        Ok(v) if v.is_unit() => 0,
        Ok(v) => match script::value_text(&v, false, &limits) {
            Ok(text) => {
                host.write_out(&format!("{text}\n"));
                0
            }
            Err(msg) => {
                host.write_err(&format!("-e: {msg}\n"));
                script::STATUS_ERROR
            }
        },
        Err(status) => status,
    }
}

/// Runs the lines of standard input one complete line (or multi-line construct) at a time,
/// so every line's effects are committed before the next is read.
fn run_stdin(sh: &mut Session) -> i32 {
    let stdin = std::io::stdin();
    let mut buf = String::new();
    let mut status = 0;
    let mut io = Io::process(false);
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("valyxo: cannot read standard input: {e}");
                return 1;
            }
        };
        buf.push_str(&line);
        buf.push('\n');
        if let Err(e) = parse::parse(&buf) {
            if e.incomplete {
                continue;
            }
        }
        status = sh.run(&buf, &mut io);
        let _ = std::io::stdout().flush();
        buf.clear();
        if let Some(code) = sh.exit {
            return code;
        }
    }
    if !buf.trim().is_empty() {
        status = sh.run(&buf, &mut io);
    }
    sh.exit.unwrap_or(status)
}

#[cfg(test)]
mod tests {

    /// The long options of a clap command.
    fn longs(c: &clap::Command) -> Vec<String> {
        let mut v: Vec<String> = c
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .filter(|l| l != "help")
            .collect();
        v.sort();
        v
    }

    /// A one-line run read without clap reads exactly as clap reads it, whatever the
    /// arguments (and clap takes every run it claims).
    #[test]
    fn a_one_line_run_reads_as_clap_reads_it() {
        use clap::{CommandFactory, FromArgMatches};
        let words = [
            "-c",
            "true",
            "--home",
            "/h",
            "--no-color",
            "-x",
            "--",
            "run",
            "-e",
            "1",
            "--help",
            "-ctrue",
            "--home=/h",
            "",
            "echo hi",
            "-",
        ];
        let mut claimed = 0;
        // Every sequence of up to five words.
        let mut todo = vec![vec![]];
        while let Some(seq) = todo.pop() {
            let mut argv = vec![std::ffi::OsString::from("valyxo")];
            argv.extend(seq.iter().map(|w: &&str| std::ffi::OsString::from(*w)));
            if let Some(fast) = super::one_line_run(&argv) {
                claimed += 1;
                let m = super::Cli::command()
                    .try_get_matches_from(&argv)
                    .unwrap_or_else(|e| panic!("{argv:?}: clap refuses it: {e}"));
                let slow = super::Cli::from_arg_matches(&m).unwrap();
                assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{argv:?}");
            }
            if seq.len() < 5 {
                for w in words {
                    let mut next = seq.clone();
                    next.push(w);
                    todo.push(next);
                }
            }
        }
        assert!(claimed > 100, "{claimed}");
    }

    /// `valyxo run` on the host takes every option `run` takes at the prompt (and, besides,
    /// where the script and its files are: --vfs, --here).
    #[test]
    fn host_run_takes_the_prompts_run_options() {
        // The subcommand's options are added when it is used (`Later`): here, at once.
        let host = <super::RunArgs as clap::Args>::augment_args(clap::Command::new("run"));
        let prompt = (crate::commands::registry()
            .get("run")
            .expect("run at the prompt")
            .args)();
        let mut host = longs(&host);
        host.retain(|l| l != "vfs" && l != "here");
        assert_eq!(host, longs(&prompt));
    }
}
