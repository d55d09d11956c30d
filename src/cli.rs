//! The host command line: `valyxo [-c LINE] [--home DIR] [--no-color] [COMMAND]`.

use crate::hub::{Hub, HubOptions};
use crate::shell::io::Io;
use crate::shell::{parse, Session};
use clap::{CommandFactory, Parser, Subcommand};
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
    after_help = "Examples:\n  valyxo                       open the interactive shell\n  valyxo -c 'ls -l; pwd'       run one line and exit with its status\n  echo 'tree' | valyxo         run lines from standard input\n  valyxo --home /tmp/vx        keep all state in /tmp/vx\n  valyxo completions bash      print bash completions"
)]
pub struct Cli {
    /// Run LINE and exit with its status.
    #[arg(short = 'c', value_name = "LINE")]
    pub command: Option<String>,
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

#[derive(Subcommand, Debug)]
pub enum Sub {
    /// Print completions for a host shell (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn exit_code(status: i32) -> ExitCode {
    ExitCode::from((status & 0xff) as u8)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::Completions { shell }) = cli.sub {
        let mut cmd = Cli::command();
        clap_complete::generate(shell, &mut cmd, "valyxo", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let hub = match Hub::open(HubOptions {
        home: cli.home.clone(),
        no_color: cli.no_color,
    }) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("valyxo: {e:#}");
            return ExitCode::from(1);
        }
    };
    let result = if let Some(line) = &cli.command {
        Session::new(hub, false).map(|mut sh| {
            let status = sh.run(line, &mut Io::process(true));
            sh.exit.unwrap_or(status)
        })
    } else if std::io::stdin().is_terminal() {
        crate::repl::run(hub)
    } else {
        Session::new(hub, false).map(|mut sh| run_stdin(&mut sh))
    };
    match result {
        Ok(status) => exit_code(status),
        Err(e) => {
            eprintln!("valyxo: {e:#}");
            ExitCode::from(1)
        }
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
