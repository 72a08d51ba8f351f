//! The two commands end to end: `run` (benchmark a system through its name server) and
//! `quickstart` (start a local name server and broker from this build, then `run` against it).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::cli::{QuickstartArgs, Replication, RunArgs, SendMode, WorkloadArgs};
use crate::clock;
use crate::cluster::LocalCluster;
use crate::host::{self, TargetFacts};
use crate::report::{send_and_consume, RunResult};
use crate::runner;
use crate::{filter_compare, process};

/// How long `--verify` waits for a slave to hold exactly the master's logs after the load.
const REPLICA_CONVERGENCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `sync-128B-closed`, `batch16-1024B-open100000`: what the run was, for file names.
pub fn default_label(w: &WorkloadArgs) -> String {
    let mode = match w.mode {
        SendMode::Batch => format!("batch{}", w.batch_size),
        SendMode::Sync => "sync".into(),
        SendMode::Async => "async".into(),
        SendMode::Oneway => "oneway".into(),
        SendMode::Transaction => "transaction".into(),
    };
    let shape = match w.rate {
        Some(rate) => format!("open{rate}"),
        None => "closed".into(),
    };
    format!("{mode}-{}B-{shape}", w.message_size_bytes)
}

fn loop_kind(w: &WorkloadArgs) -> String {
    match w.rate {
        Some(rate) => format!("open loop at {rate} msg/s"),
        None => "closed loop".into(),
    }
}

/// A run id that tells this run's messages from any other's on the same topic.
fn new_run_id() -> u32 {
    rand::random::<u32>() | 1
}

/// A broker on this host whose CPU the run reports: its PID, and whether `data_path` is its
/// store (then the store disk's activity is reported too).
#[derive(Clone, Copy, Default)]
struct BrokerOnHost {
    pid: Option<u32>,
    data_path_is_store: bool,
}

/// Runs `workload` and assembles the result (nothing printed or written yet).
fn execute(
    workload: WorkloadArgs,
    namesrv: String,
    target: TargetFacts,
    data_path: &Path,
    label_prefix: &str,
    broker: BrokerOnHost,
) -> anyhow::Result<(RunResult, u64)> {
    workload.validate()?;
    let started_unix_secs = clock::unix_now_secs();
    let run_id = new_run_id();
    let label = workload
        .results
        .label
        .clone()
        .unwrap_or_else(|| format!("{label_prefix}{}", default_label(&workload)));
    let host = host::host_facts(data_path);
    let host_checks = host::host_checks(data_path);
    let store_disk = host.store.as_ref().and_then(|s| s.disk.clone());
    let local = runner::LocalBroker {
        store_disk: store_disk.filter(|_| broker.data_path_is_store),
        pid: broker.pid,
    };
    let outcome = runner::run(workload.clone(), namesrv.clone(), run_id, target, local)?;
    let filter_compare = if workload.filter_compare && !process::interrupted() {
        Some(filter_compare::run(&workload, &namesrv, run_id)?)
    } else {
        None
    };
    let (send, consume) = send_and_consume(
        &outcome.stats,
        outcome.measured_secs,
        workload.rate.is_some(),
        workload.consumers > 0,
    );
    let result = RunResult {
        tool: "ringmq-loadgen".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        label,
        run_id,
        started_at_utc: clock::iso8601_utc(started_unix_secs),
        loop_kind: loop_kind(&workload),
        settings: workload,
        target: outcome.target,
        host,
        host_checks,
        measured_secs: outcome.measured_secs,
        send,
        consume,
        verify: outcome.verify,
        broker_flush: outcome.broker_flush,
        cpu: outcome.cpu,
        timeline: outcome.timeline,
        filter_compare,
        notes: outcome.notes,
    };
    Ok((result, started_unix_secs))
}

/// Prints the report and writes the result files (unless the results directory is `none`).
pub fn publish(
    result: &RunResult,
    results_dir: &Path,
    started_unix_secs: u64,
) -> anyhow::Result<()> {
    print!("{}", result.text_report());
    if results_dir != Path::new("none") {
        let (json, md) = result.write(results_dir, started_unix_secs)?;
        println!("results  {} and {}", json.display(), md.display());
    }
    Ok(())
}

/// `ringmq-loadgen run`.
pub fn run_command(args: RunArgs) -> anyhow::Result<RunResult> {
    let results_dir = args.workload.results.results_dir.clone();
    let data_path = existing_dir(&results_dir);
    let target = TargetFacts {
        namesrv: args.namesrv.clone(),
        description: args.workload.results.target_description.clone(),
        ..TargetFacts::default()
    };
    let broker_pid = match args.broker_pid {
        Some(pid) => Some(pid),
        None if args.broker_process.is_empty() => None,
        None => crate::procstat::find_process_by_name(&args.broker_process)
            .map_err(anyhow::Error::msg)
            .context("--broker-process")?,
    };
    let broker = BrokerOnHost {
        pid: broker_pid,
        data_path_is_store: false,
    };
    let (result, started) = execute(args.workload, args.namesrv, target, &data_path, "", broker)?;
    publish(&result, &results_dir, started)?;
    Ok(result)
}

/// `ringmq-loadgen quickstart`.
pub fn quickstart_command(mut args: QuickstartArgs) -> anyhow::Result<RunResult> {
    args.workload.validate()?;
    if args.workload.cpus.is_none() {
        let executors = args.default_loadgen_executors(crate::cli::online_cpus());
        args.workload.cpus = Some(executors.to_string());
    }
    let mut cluster = LocalCluster::start(
        args.flush,
        args.broker_cpus,
        args.keep_dir,
        args.replication,
        args.workload
            .pull_batch_size()
            .max(crate::cli::ROCKETMQ_PULL_BATCH_SIZE),
    )
    .context("starting the quickstart name server and broker")?;
    let (ns_pid, broker_pid) = cluster.pids();
    eprintln!(
        "quickstart: name server {} (pid {}), broker {} (pid {}, {}), directory {}",
        cluster.namesrv_addr,
        ns_pid.unwrap_or(0),
        cluster.broker_addr,
        broker_pid.unwrap_or(0),
        args.flush.config_value(),
        cluster.dir().display()
    );
    let mut target = cluster.target_facts();
    if let Some(d) = &args.workload.results.target_description {
        target.description = Some(d.clone());
    }
    let results_dir = args.workload.results.results_dir.clone();
    let verify = args.workload.verify;
    let store = cluster.broker_settings.store_dir.clone();
    let executed = execute(
        args.workload,
        cluster.namesrv_addr.to_string(),
        target,
        &existing_dir(&store),
        "quickstart-",
        BrokerOnHost {
            pid: broker_pid,
            data_path_is_store: true,
        },
    );
    let alive = cluster.check_alive();
    let replica = (verify && args.replication != Replication::None)
        .then(|| cluster.verify_replica(REPLICA_CONVERGENCE_TIMEOUT));
    cluster.stop();
    let (mut result, started) = executed?;
    if let Err(e) = alive {
        result
            .notes
            .push(format!("a server died during the run: {e:#}"));
    }
    match &replica {
        Some(Ok(note)) => result.notes.push(note.clone()),
        Some(Err(e)) => result
            .notes
            .push(format!("replication verify FAILED: {e:#}")),
        None => {}
    }
    publish(&result, &results_dir, started)?;
    if let Some(Err(e)) = replica {
        bail!("replication verify failed: {e:#}");
    }
    Ok(result)
}

/// `path` if it exists, else its nearest existing ancestor (facts need a real path).
fn existing_dir(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return PathBuf::from(".");
        }
    }
    if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn workload(args: &[&str]) -> WorkloadArgs {
        let mut all = vec!["ringmq-loadgen", "run"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all).expect("parses").command {
            Command::Run(r) => r.workload,
            _ => unreachable!(),
        }
    }

    #[test]
    fn labels_describe_the_workload() {
        assert_eq!(default_label(&workload(&[])), "sync-128B-closed");
        assert_eq!(
            default_label(&workload(&[
                "--mode",
                "batch",
                "--batch-size",
                "32",
                "--message-size-bytes",
                "1024",
                "--rate",
                "100000"
            ])),
            "batch32-1024B-open100000"
        );
    }

    #[test]
    fn facts_path_falls_back_to_an_existing_ancestor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("a/b/c");
        assert_eq!(existing_dir(&missing), dir.path());
        assert_eq!(
            existing_dir(Path::new("results-that-do-not-exist")),
            PathBuf::from(".")
        );
    }

    #[test]
    fn run_ids_are_odd_and_vary() {
        let ids: Vec<u32> = (0..8).map(|_| new_run_id()).collect();
        assert!(ids.iter().all(|id| id % 2 == 1));
        assert!(ids.windows(2).any(|w| w[0] != w[1]));
    }
}
