//! `--filter-compare`: end-to-end pull throughput of a filtered subscription against an
//! unfiltered one, in the same run, over the same backlog.
//!
//! After the load (normally with `--consumers 0`, so the topics hold a backlog), a fresh
//! consumer group drains every queue of the run's topics from offset 0 to the end offsets
//! read at the start, once with the run's filter (`--sql` or `--tag-filter`) and once
//! subscribing to everything, alternating for [`ROUNDS`] rounds (filtered first), so drift
//! in the machine's load falls on both arms alike. Each drain is timed from the consumer's
//! start to the moment its offsets reach the end of every queue: records scanned per second
//! (the backlog over the time) compare the broker's pull path with and without the filter;
//! records delivered per second show what reaches the application.

use anyhow::bail;
use glommio::{LocalExecutorBuilder, Placement};
use ringmq_client::{Admin, ClientConfig, MessageSelector};
use serde::Serialize;

use crate::cli::WorkloadArgs;
use crate::drain::{self, DrainOutcome, DrainSpec};

/// Drains per arm; the arms alternate, filtered first.
pub const ROUNDS: usize = 2;
/// Registered I/O memory of the comparison's executor (no DMA file I/O here).
const IO_MEMORY_BYTES: usize = 1 << 20;

/// One timed drain of the backlog.
#[derive(Clone, Debug, Serialize)]
pub struct Drain {
    /// `filtered` or `unfiltered`.
    pub arm: &'static str,
    pub subscription: String,
    pub secs: f64,
    /// Queue entries passed over (the backlog).
    pub scanned: u64,
    /// Messages the consumer received.
    pub delivered: u64,
    pub scanned_per_sec: f64,
    pub delivered_per_sec: f64,
    /// False when the drain hit `--drain-secs` before the end of every queue.
    pub complete: bool,
}

impl Drain {
    fn of(arm: &'static str, selector: &MessageSelector, outcome: &DrainOutcome) -> Drain {
        Drain {
            arm,
            subscription: format!("{selector:?}"),
            secs: outcome.secs,
            scanned: outcome.scanned,
            delivered: outcome.delivered,
            scanned_per_sec: outcome.scanned_per_sec(),
            delivered_per_sec: outcome.delivered_per_sec(),
            complete: outcome.complete,
        }
    }
}

/// The comparison's result, in the report.
#[derive(Clone, Debug, Serialize)]
pub struct FilterCompare {
    pub backlog: u64,
    pub drains: Vec<Drain>,
    /// Mean scanned/s of the filtered drains over that of the unfiltered ones.
    pub scan_ratio: f64,
}

impl FilterCompare {
    fn mean_scan_rate(&self, arm: &str) -> f64 {
        let rates: Vec<f64> = self
            .drains
            .iter()
            .filter(|d| d.arm == arm)
            .map(|d| d.scanned_per_sec)
            .collect();
        rates.iter().sum::<f64>() / rates.len().max(1) as f64
    }
}

/// The filtered subscription the run asks for, if any.
pub fn filtered_selector(workload: &WorkloadArgs) -> Option<MessageSelector> {
    match (&workload.sql, &workload.tag_filter) {
        (Some(sql), _) => Some(MessageSelector::by_sql(sql.clone())),
        (None, Some(tags)) => Some(MessageSelector::by_tag(tags.clone())),
        (None, None) => None,
    }
}

/// Runs the comparison on an executor of its own.
pub fn run(workload: &WorkloadArgs, namesrv: &str, run_id: u32) -> anyhow::Result<FilterCompare> {
    let (workload, namesrv) = (workload.clone(), namesrv.to_string());
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("loadgen-filter-compare")
        .io_memory(IO_MEMORY_BYTES)
        .make()
        .map_err(|e| anyhow::anyhow!("starting the filter-comparison executor: {e}"))?
        .run(async move { compare(&workload, &namesrv, run_id).await })
}

async fn compare(
    workload: &WorkloadArgs,
    namesrv: &str,
    run_id: u32,
) -> anyhow::Result<FilterCompare> {
    let Some(filtered) = filtered_selector(workload) else {
        bail!("--filter-compare needs --sql or --tag-filter");
    };
    let mut config = ClientConfig::new(namesrv)?;
    config.credentials = workload.results.credentials();
    let admin = Admin::new(config)?;
    let topics = workload.topic_names();
    let ranges = drain::whole_queues(&admin, &topics).await?;
    admin.shutdown();
    let backlog = drain::backlog(&ranges);
    let arms = [
        ("filtered", filtered),
        ("unfiltered", MessageSelector::by_tag("*")),
    ];
    let mut drains = Vec::new();
    for round in 0..ROUNDS {
        for (i, (arm, selector)) in arms.iter().enumerate() {
            let group = format!("loadgen_{run_id:08x}_fc{round}{i}");
            let spec = DrainSpec {
                namesrv,
                credentials: workload.results.credentials(),
                group: &group,
                topics: &topics,
                ranges: &ranges,
                pull_batch_size: workload.pull_batch_size(),
                limit: std::time::Duration::from_secs(workload.drain_secs),
            };
            let outcome = drain::drain(&spec, selector).await?;
            drains.push(Drain::of(arm, selector, &outcome));
        }
    }
    let mut result = FilterCompare {
        backlog,
        drains,
        scan_ratio: 0.0,
    };
    let unfiltered = result.mean_scan_rate("unfiltered");
    if unfiltered > 0.0 {
        result.scan_ratio = result.mean_scan_rate("filtered") / unfiltered;
    }
    Ok(result)
}

/// The report's lines, one per drain and the ratio.
pub fn report_lines(c: &FilterCompare) -> Vec<String> {
    let mut lines: Vec<String> = c
        .drains
        .iter()
        .map(|d| {
            format!(
                "{:<10} {:>12.0} scanned/s {:>11.0} delivered/s ({} of {} in {:.2} s{}) {}",
                d.arm,
                d.scanned_per_sec,
                d.delivered_per_sec,
                d.delivered,
                d.scanned,
                d.secs,
                if d.complete { "" } else { ", INCOMPLETE" },
                d.subscription
            )
        })
        .collect();
    lines.push(format!(
        "filtered/unfiltered scan rate {:.2} over a backlog of {} messages",
        c.scan_ratio, c.backlog
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(arm: &'static str, scanned_per_sec: f64) -> Drain {
        Drain {
            arm,
            subscription: String::new(),
            secs: 1.0,
            scanned: 10,
            delivered: 1,
            scanned_per_sec,
            delivered_per_sec: 1.0,
            complete: true,
        }
    }

    #[test]
    fn the_ratio_is_of_mean_scan_rates() {
        let c = FilterCompare {
            backlog: 10,
            drains: vec![
                drain("filtered", 100.0),
                drain("unfiltered", 200.0),
                drain("filtered", 300.0),
                drain("unfiltered", 200.0),
            ],
            scan_ratio: 0.0,
        };
        assert_eq!(c.mean_scan_rate("filtered"), 200.0);
        assert_eq!(c.mean_scan_rate("unfiltered"), 200.0);
        assert_eq!(report_lines(&c).len(), 5);
    }
}
