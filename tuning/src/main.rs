//! `ringmq-tune`: check the host, probe the store's disk, recommend a broker configuration,
//! apply and restore host settings. See the crate docs and README for each subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use ringmq_tune::apply;
use ringmq_tune::brokerconf;
use ringmq_tune::check::{self, CheckContext, CheckReport, Status};
use ringmq_tune::cpulist::CpuSpec;
use ringmq_tune::probe::{self, DiskProbe, ProbeOptions};
use ringmq_tune::recommend;
use ringmq_tune::sysroot::SysRoot;
use ringmq_tune::uring::UringSupport;

/// Exit status when a check item FAILs or a setting could not be written.
const EXIT_FAILED_ITEMS: u8 = 1;
/// Exit status on an error that stopped the command.
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "ringmq-tune",
    version,
    about = "Check, probe and tune a host for the ringmq broker"
)]
struct Cli {
    /// Read (and for apply/restore, write) /proc and /sys under this directory instead of `/`.
    /// For tests and for inspecting a copied tree.
    #[arg(long, global = true, default_value = "/")]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One line per host property: OK / WARN / FAIL, value seen, value wanted, the fix.
    Check {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Print the report as JSON (facts, io_uring probe, items).
        #[arg(long)]
        json: bool,
    },
    /// Measure the store's filesystem with O_DIRECT through io_uring; writes JSON.
    ProbeDisk {
        /// Directory on the store's filesystem (the probe file is created and removed here).
        #[arg(long)]
        dir: PathBuf,
        /// Wall-clock budget in seconds for the three phases.
        #[arg(long, default_value_t = 20.0)]
        duration_secs: f64,
        /// Most bytes written (the probe file's size): a number with optional K/M/G (binary).
        #[arg(long, default_value = "1G", value_parser = parse_bytes)]
        max_bytes: u64,
        /// Write the JSON here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A broker.conf with recommended values and the reason for each.
    Recommend {
        #[command(flatten)]
        broker: BrokerArgs,
        /// JSON written by probe-disk; without it flush settings use RocketMQ's defaults.
        #[arg(long)]
        probe: Option<PathBuf>,
        /// Write the config here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Change the host settings check wants (root only); saves the old values first.
    Apply {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Print the exact commands and paths, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where the old values are saved.
        #[arg(long, default_value = apply::DEFAULT_RESTORE_FILE)]
        restore_file: PathBuf,
    },
    /// Put back the values saved by apply (root only).
    Restore {
        /// Print what would be written, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, default_value = apply::DEFAULT_RESTORE_FILE)]
        restore_file: PathBuf,
    },
}

/// Where the broker's store is and which cores it gets.
#[derive(Args)]
struct BrokerArgs {
    /// The broker's store directory (storePathRootDir). Default: the config's, else $HOME/store.
    #[arg(long)]
    store: Option<PathBuf>,
    /// The broker's cores: a count ("4") or a list ("0-3,8"). Default: the config's, else all.
    #[arg(long)]
    cpus: Option<String>,
    /// A broker.conf to read storePathRootDir, ringmqCpus, mappedFileSizeCommitLog and
    /// diskMaxUsedSpaceRatio from.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ringmq-tune: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let root = SysRoot::at(&cli.root);
    match cli.command {
        Command::Check { broker, json } => run_check(&root, &broker, json),
        Command::ProbeDisk {
            dir,
            duration_secs,
            max_bytes,
            out,
        } => run_probe(dir, duration_secs, max_bytes, out.as_deref()),
        Command::Recommend { broker, probe, out } => {
            run_recommend(&root, &broker, probe.as_deref(), out.as_deref())
        }
        Command::Apply {
            broker,
            dry_run,
            restore_file,
        } => run_apply(&root, &broker, dry_run, &restore_file),
        Command::Restore {
            dry_run,
            restore_file,
        } => run_restore(&root, dry_run, &restore_file),
    }
}

fn run_check(root: &SysRoot, broker: &BrokerArgs, json: bool) -> anyhow::Result<u8> {
    let ctx = context(root, broker)?;
    let report = check::run_checks(&ctx);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.worst() == Status::Fail {
        EXIT_FAILED_ITEMS
    } else {
        0
    })
}

fn run_probe(
    dir: PathBuf,
    duration_secs: f64,
    max_bytes: u64,
    out: Option<&Path>,
) -> anyhow::Result<u8> {
    if !(duration_secs > 0.0 && duration_secs.is_finite()) {
        bail!("--duration-secs must be a positive number of seconds");
    }
    let options = ProbeOptions {
        dir,
        duration: Duration::from_secs_f64(duration_secs),
        max_bytes,
    };
    let result = probe::probe_disk(&options)?;
    print_probe_summary(&result);
    write_output(out, &serde_json::to_string_pretty(&result)?)?;
    Ok(0)
}

fn run_recommend(
    root: &SysRoot,
    broker: &BrokerArgs,
    probe: Option<&Path>,
    out: Option<&Path>,
) -> anyhow::Result<u8> {
    let ctx = context(root, broker)?;
    let report = check::run_checks(&ctx);
    let probe: Option<DiskProbe> =
        match probe {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading probe file {}", path.display()))?;
                Some(serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a probe-disk JSON result", path.display())
                })?)
            }
            None => None,
        };
    let rec = recommend::recommend(&ctx, &report, probe.as_ref());
    write_output(out, &rec.to_broker_conf())?;
    Ok(0)
}

fn run_apply(
    root: &SysRoot,
    broker: &BrokerArgs,
    dry_run: bool,
    restore_file: &Path,
) -> anyhow::Result<u8> {
    let ctx = context(root, broker)?;
    let report = check::run_checks(&ctx);
    let plan = apply::plan(root, &report);
    if dry_run {
        print_plan(root, &plan, restore_file);
        return Ok(0);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let outcome = apply::apply(root, euid, &plan, restore_file)?;
    println!("saved old values to {}", root.path(restore_file).display());
    Ok(print_outcome(&outcome))
}

fn run_restore(root: &SysRoot, dry_run: bool, restore_file: &Path) -> anyhow::Result<u8> {
    if dry_run {
        let saved = apply::read_restore_file(root, restore_file)?;
        for entry in &saved.entries {
            println!(
                "echo {} > {}",
                entry.value,
                root.path(&entry.path).display()
            );
        }
        return Ok(0);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let outcome = apply::restore(root, euid, restore_file)?;
    Ok(print_outcome(&outcome))
}

/// Builds the check context from flags, the optional config file and defaults.
fn context(root: &SysRoot, args: &BrokerArgs) -> anyhow::Result<CheckContext> {
    let config = match &args.config {
        Some(path) => brokerconf::read(path)?,
        None => Default::default(),
    };
    let store = match (&args.store, config.get(brokerconf::STORE_PATH_ROOT_DIR)) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => PathBuf::from(path),
        (None, None) => {
            let home = std::env::var_os("HOME").context("no --store given and HOME is not set")?;
            PathBuf::from(home).join(check::DEFAULT_STORE_SUBDIR)
        }
    };
    let cpus = match args
        .cpus
        .as_deref()
        .or(config.get(brokerconf::RINGMQ_CPUS).map(String::as_str))
    {
        Some(text) => Some(CpuSpec::parse(text)?),
        None => None,
    };
    let mut ctx = CheckContext::new(root.clone(), store, cpus, UringSupport::probe_kernel());
    if let Some(size) = config.get(brokerconf::MAPPED_FILE_SIZE_COMMIT_LOG) {
        ctx.segment_size_bytes = size.parse().with_context(|| {
            format!(
                "{} = {size:?} is not a byte count",
                brokerconf::MAPPED_FILE_SIZE_COMMIT_LOG
            )
        })?;
    }
    if let Some(ratio) = config.get(brokerconf::DISK_MAX_USED_SPACE_RATIO) {
        ctx.disk_max_used_percent = ratio.parse().with_context(|| {
            format!(
                "{} = {ratio:?} is not a percentage",
                brokerconf::DISK_MAX_USED_SPACE_RATIO
            )
        })?;
    }
    Ok(ctx)
}

fn print_report(report: &CheckReport) {
    let store = report.facts.store.as_ref();
    println!(
        "ringmq-tune check: store {} ({} on {}), broker CPUs {} ({} shards)",
        report.store_path.display(),
        store.and_then(|s| s.fs_type.as_deref()).unwrap_or("?"),
        store
            .and_then(|s| s.disk.as_deref())
            .unwrap_or("no block device"),
        report.broker_cpus,
        report.shards
    );
    for item in &report.items {
        let fix = item
            .fix
            .as_deref()
            .map_or(String::new(), |f| format!(" | fix: {f}"));
        println!(
            "{:<4}  {:<21} seen: {} | wanted: {}{fix}",
            item.status.to_string(),
            item.id,
            item.seen,
            item.wanted
        );
    }
    println!(
        "{} OK, {} WARN, {} FAIL",
        report.summary.ok, report.summary.warn, report.summary.fail
    );
}

fn print_probe_summary(p: &DiskProbe) {
    let s = &p.sequential_write;
    eprintln!(
        "sequential write: {:.0} MB/s ({} MiB in {:.2} s, {} KiB x QD{}, stopped by {:?}); final fdatasync {:.0} us",
        s.megabytes_per_s,
        s.bytes_written >> 20,
        s.seconds,
        s.block_bytes >> 10,
        s.queue_depth,
        s.stopped_by,
        s.final_fdatasync_us
    );
    for (name, l) in [
        ("4 KiB write", &p.write_4k),
        (
            "fdatasync after 4 KiB write (fresh preallocated space)",
            &p.fdatasync_4k,
        ),
        (
            "fdatasync after 4 KiB write (overwrite)",
            &p.fdatasync_4k_overwrite,
        ),
    ] {
        eprintln!(
            "{name}: {} ops, {:.0}/s; p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us (stopped by {:?})",
            l.ops, l.ops_per_s, l.p50_us, l.p99_us, l.p999_us, l.max_us, l.stopped_by
        );
    }
}

fn print_plan(root: &SysRoot, plan: &apply::Plan, restore_file: &Path) {
    println!(
        "# would save the old values to {} first, then:",
        root.path(restore_file).display()
    );
    if plan.changes.is_empty() {
        println!("# nothing to change");
    }
    for change in &plan.changes {
        let on_disk = root.path(&change.path);
        println!(
            "{}    # {}: {} -> {} ({})",
            change.command(),
            on_disk.display(),
            change.current,
            change.wanted,
            change.item
        );
    }
    for note in &plan.not_applied {
        println!("# not applied: {note}");
    }
}

fn print_outcome(outcome: &apply::Outcome) -> u8 {
    for path in &outcome.written {
        println!("written {}", path.display());
    }
    for (path, error) in &outcome.failed {
        println!("FAILED  {}: {error}", path.display());
    }
    if outcome.failed.is_empty() {
        0
    } else {
        EXIT_FAILED_ITEMS
    }
}

fn write_output(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            Ok(())
        }
    }
}

/// Parses `1048576`, `64K`, `16M`, `1G` (binary multiples; a trailing `iB`/`B` is accepted).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let upper = trimmed.to_ascii_uppercase();
    let number_part = upper.trim_end_matches("IB").trim_end_matches('B');
    let (digits, shift) = match number_part.chars().last() {
        Some('K') => (&number_part[..number_part.len() - 1], 10),
        Some('M') => (&number_part[..number_part.len() - 1], 20),
        Some('G') => (&number_part[..number_part.len() - 1], 30),
        Some('T') => (&number_part[..number_part.len() - 1], 40),
        _ => (number_part, 0),
    };
    let value: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count (e.g. 1048576, 64M, 1G)"))?;
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("16MiB"), Ok(16 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }
}
