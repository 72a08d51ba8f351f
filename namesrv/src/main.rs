//! `ringmq-namesrv`: the ringmq name server process.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use ringmq_namesrv::config::{Args, ConfigNote, NamesrvConfig};
use ringmq_namesrv::server;
use tracing::{error, info, warn};

fn main() -> ExitCode {
    let args = Args::parse();
    let (config, notes) = match NamesrvConfig::resolve(&args) {
        Ok(resolved) => resolved,
        Err(error) => {
            eprintln!("ringmq-namesrv: {error}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        print!("{config}");
        return ExitCode::SUCCESS;
    }
    if let Err(error) = init_logging(&args.log_level) {
        eprintln!(
            "ringmq-namesrv: bad --log-level {:?}: {error}",
            args.log_level
        );
        return ExitCode::from(2);
    }
    for note in &notes {
        match note {
            ConfigNote::UnknownKey { .. } => warn!("config file: {note}"),
            ConfigNote::IgnoredKey { .. } => info!("config file: {note}"),
        }
    }
    let result = server::run(config, |addr| {
        // The line RocketMQ's mqnamesrv prints, plus the address: scripts and tests wait for it.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "The Name Server boot success. listening on {addr}");
        let _ = stdout.flush();
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            error!("{failure}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(level: &str) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}
