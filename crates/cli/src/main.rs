//! `zeroguard`: the command line face of the library (see CLI.md).
//!
//! Exit status: 0 done; 1 bad arguments or configuration; 2 runtime failure
//! (including a peer that failed the handshake before anything was
//! delivered); 3 timeout.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

mod args;
mod demo;
mod perf;
mod run;
mod text;

/// A failure with its exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub(crate) fn config(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: message.to_string(),
        }
    }
    pub(crate) fn runtime(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }
    pub(crate) fn timeout(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 3,
            message: message.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One clear line, as the CLI contract promises; --help shows the rest.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "zeroguard: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match cli.command {
        args::Command::Demo => demo::run(),
        args::Command::Keygen(a) => run::keygen(a),
        args::Command::Recv(a) => run::recv(a),
        args::Command::Send(a) => run::send(a),
        args::Command::Echo(a) => run::echo(a),
        args::Command::Proxy(a) => run::proxy(a),
        args::Command::Perf(a) => perf::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("zeroguard: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
