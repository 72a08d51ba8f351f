//! The background sampler: every `sample_interval_ms` it reads every broker's counters and
//! every group's lag, so the pages can draw TPS and lag over time (rates need two samples, and
//! a chart needs more than the moment a page was opened).

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::consumers::GroupView;
use crate::remote::{BrokerRow, Remote};

/// Points kept per series (at the default 2 s interval, four minutes).
pub const HISTORY_POINTS_MAX: usize = 120;

#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub t_ms: i64,
    pub value: f64,
}

/// The last sample and the series drawn from the samples so far.
#[derive(Debug, Default)]
pub struct History {
    pub brokers: Vec<BrokerRow>,
    pub cluster_error: Option<String>,
    pub groups: Vec<GroupView>,
    pub groups_cut: bool,
    pub groups_error: Option<String>,
    pub sampled_at_ms: i64,
    pub tps_in: VecDeque<Point>,
    pub tps_out: VecDeque<Point>,
    /// Group → lag series, and group → consume TPS series.
    pub lag: BTreeMap<String, VecDeque<Point>>,
    pub consume_tps: BTreeMap<String, VecDeque<Point>>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn push(series: &mut VecDeque<Point>, t_ms: i64, value: f64) {
    if series.len() == HISTORY_POINTS_MAX {
        series.pop_front();
    }
    series.push_back(Point { t_ms, value });
}

/// Per-second rate between two running totals; a total that went down (a restart) is no rate.
pub fn rate(previous: Option<u64>, current: Option<u64>, elapsed_ms: i64) -> f64 {
    match (previous, current) {
        (Some(p), Some(c)) if c >= p && elapsed_ms > 0 => {
            (c - p) as f64 * 1000.0 / elapsed_ms as f64
        }
        _ => 0.0,
    }
}

impl History {
    /// Folds a broker sample in: per-broker TPS from the previous sample, cluster series.
    pub fn record_brokers(&mut self, mut rows: Vec<BrokerRow>, t_ms: i64) {
        let elapsed = t_ms - self.sampled_at_ms;
        for row in &mut rows {
            if let Some(old) = self.brokers.iter().find(|b| b.addr == row.addr) {
                row.tps_in = rate(old.put_total, row.put_total, elapsed);
                row.tps_out = rate(old.get_total, row.get_total, elapsed);
            }
        }
        let (tps_in, tps_out) = rows
            .iter()
            .fold((0.0, 0.0), |(i, o), r| (i + r.tps_in, o + r.tps_out));
        if self.sampled_at_ms != 0 {
            push(&mut self.tps_in, t_ms, tps_in);
            push(&mut self.tps_out, t_ms, tps_out);
        }
        self.brokers = rows;
        self.cluster_error = None;
    }

    /// Folds a group sample in: lag series, consume TPS from committed-offset progress.
    pub fn record_groups(&mut self, mut groups: Vec<GroupView>, cut: bool, t_ms: i64) {
        let elapsed = t_ms - self.sampled_at_ms;
        for group in &mut groups {
            if let Some(old) = self.groups.iter().find(|g| g.group == group.group) {
                let (p, c) = (
                    old.consumed_total.max(0) as u64,
                    group.consumed_total.max(0) as u64,
                );
                group.consume_tps = rate(Some(p), Some(c), elapsed);
            }
            push(
                self.lag.entry(group.group.clone()).or_default(),
                t_ms,
                group.total_lag as f64,
            );
            push(
                self.consume_tps.entry(group.group.clone()).or_default(),
                t_ms,
                group.consume_tps,
            );
        }
        self.groups = groups;
        self.groups_cut = cut;
        self.groups_error = None;
    }
}

/// Samples until the executor stops.
pub async fn run(remote: Rc<Remote>) {
    let interval = Duration::from_millis(remote.config.sample_interval_ms.max(200));
    loop {
        sample_once(&remote).await;
        glommio::timer::sleep(interval).await;
    }
}

pub async fn sample_once(remote: &Remote) {
    let brokers = remote.brokers().await;
    let groups = remote.group_views().await;
    let t_ms = now_ms();
    let mut history = remote.history.borrow_mut();
    match brokers {
        Ok(rows) => history.record_brokers(rows, t_ms),
        Err(e) => history.cluster_error = Some(e.to_string()),
    }
    match groups {
        Ok((views, cut)) => history.record_groups(views, cut, t_ms),
        Err(e) => history.groups_error = Some(e.to_string()),
    }
    history.sampled_at_ms = t_ms;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_deltas_and_ignore_restarts() {
        assert_eq!(rate(Some(100), Some(300), 2000), 100.0);
        assert_eq!(rate(Some(300), Some(100), 2000), 0.0);
        assert_eq!(rate(None, Some(100), 2000), 0.0);
        assert_eq!(rate(Some(1), Some(2), 0), 0.0);
    }

    #[test]
    fn series_are_bounded() {
        let mut series = VecDeque::new();
        for i in 0..(HISTORY_POINTS_MAX as i64 + 10) {
            push(&mut series, i, i as f64);
        }
        assert_eq!(series.len(), HISTORY_POINTS_MAX);
        assert_eq!(series.front().unwrap().t_ms, 10);
    }
}
