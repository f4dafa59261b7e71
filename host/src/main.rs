//! `boot-host`: distill a diffusion teacher into a one-step student with BOOT.
//!
//! `boot-host --config run.toml` trains; `sample`, `eval`, `fd-stats`, `plugins` and `inspect` are subcommands.
//! Errors in what the user gave (config keys, files, tensors) print one line and exit with code 2.

use std::io::IsTerminal;

use boot_host::{cli, commands, exit};
use clap::Parser;

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BOOT_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a scheduler's capture gets plain lines.
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).with_target(false).init();
    let cli = cli::Cli::parse();
    exit::report(commands::run(cli))
}
