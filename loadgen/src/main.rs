//! `ringmq-loadgen`: benchmark a RocketMQ-protocol system (`run`), or bring up a local ringmq
//! name server and broker and benchmark it in one command (`quickstart`).

use std::process::ExitCode;

use clap::Parser;
use ringmq_loadgen::cli::{Cli, Command};
use ringmq_loadgen::process::install_interrupt_handler;
use ringmq_loadgen::{app, catch_up, query_keys};

/// Exit status when `--verify` found acknowledged messages missing or corrupt.
const EXIT_VERIFY_FAILED: u8 = 3;

/// mimalloc instead of glibc malloc, as in the broker: every send builds a message, its header
/// fields and a frame, and every response is decoded into small strings. With glibc,
/// `malloc`/`free`/`malloc_consolidate` were ~15 % of the load generator's CPU under sync sends
/// (`perf`, results/loadgen-allocator-2026-12-07.md); the instrument should cost little.
#[global_allocator]
static GLOBAL_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    install_interrupt_handler();
    let result = match cli.command {
        Command::Run(args) => app::run_command(args),
        Command::Quickstart(args) => app::quickstart_command(args),
        Command::CatchUp(args) => return exit_code(catch_up::command(args)),
        Command::QueryKeys(args) => return exit_code(query_keys::command(args)),
    };
    match result {
        Ok(r) if r.verify.as_ref().is_some_and(|v| !v.passed()) => {
            ExitCode::from(EXIT_VERIFY_FAILED)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmq-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Success, or the error printed and a failure status. An incomplete measurement is not an
/// error: its report and result say so.
fn exit_code<T>(result: anyhow::Result<T>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmq-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
