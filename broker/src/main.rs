//! `ringmq-broker`: parse the configuration, then run the shards until SIGTERM/SIGINT.

use std::process::ExitCode;

use clap::Parser;
use ringmq_broker::config::cli::{build_config, Cli};
use ringmq_broker::server::{self, process_memory, signals};

/// mimalloc instead of glibc malloc. Every request allocates many small strings (its header
/// fields, the response's) and one task larger than glibc's small-size caches; glibc then runs
/// `malloc_consolidate` over all recently freed small chunks on each such large allocation,
/// which profiled at ~8 % of broker CPU under sync sends (results/perf-broker-2026-11-21.md).
#[global_allocator]
static GLOBAL_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before the allocator maps much: pages faulted in earlier may already be huge.
    process_memory::disable_transparent_huge_pages();
    // Before any thread exists, so that every thread inherits the mask (see server::signals).
    if let Err(e) = signals::block_termination_signals() {
        eprintln!("ringmq-broker: cannot block SIGTERM/SIGINT: {e}");
        return ExitCode::from(1);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let file_text = match &cli.config_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some((path.display().to_string(), text)),
            Err(e) => {
                eprintln!(
                    "ringmq-broker: cannot read config file {}: {e}",
                    path.display()
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let env_namesrv = std::env::var("NAMESRV_ADDR").ok();
    let file = file_text.as_ref().map(|(n, t)| (n.as_str(), t.as_str()));
    let (config, warnings) = match build_config(&cli, file, env_namesrv.as_deref()) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("ringmq-broker: {e}");
            return ExitCode::from(2);
        }
    };
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    if cli.print_config {
        print!("{}", config.to_properties());
        return ExitCode::SUCCESS;
    }
    process_memory::raise_memlock_limit();
    match server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("ringmq-broker: {e}");
            ExitCode::from(1)
        }
    }
}
