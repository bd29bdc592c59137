//! `bltpatch`: the command-line tool. It parses and validates arguments into a configuration,
//! calls the library crates and prints; all the work lives in the crates under `crates/`.

mod args;
mod cmd;
mod common;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Train(a) => cmd::train::run(a),
        Command::Segment(a) => cmd::segment::run(a),
        Command::Entropy(a) => cmd::entropy::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Plot(a) => cmd::plot::run(a),
        Command::Calibrate(a) => cmd::calibrate::run(a),
        Command::Adapt(a) => cmd::adapt::run(a),
        Command::Widen(a) => cmd::tables::widen(a),
        Command::Quantize(a) => cmd::tables::quantize(a),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the chain of causes.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(if is_usage(&e) { 2 } else { 1 })
        }
    }
}

/// Help and version go to stdout as usual; every other parse error becomes one `error:` line
/// and exit code 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid usage");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {first} (see --help)");
            ExitCode::from(2)
        }
    }
}

/// Flags that do not fit together (found after parsing, e.g. `--budget` with `--rule global`)
/// are usage errors, like the ones clap finds.
fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<bltpatch::Error>(),
            Some(bltpatch::Error::Usage(_))
        )
    })
}

/// A reader that went away (`bltpatch segment big.txt | head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<bltpatch_io::IoError>()
            .is_some_and(|io| io.is_broken_pipe())
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
