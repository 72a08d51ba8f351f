//! Facts recorded with every result: the host as the tuner sees it (`ringmq_tune`), and the
//! system under test as the load generator knows it (what it started, what it was told, what
//! the broker reported about its configuration).

use std::path::Path;

use serde::Serialize;

use ringmq_tune::check::{run_checks, CheckContext};
use ringmq_tune::facts::HostFacts;

/// The system the load ran against.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetFacts {
    pub namesrv: String,
    /// What the user said it is (`--target-description`), or "ringmq … (quickstart)".
    pub description: Option<String>,
    /// `flushDiskType` when known (quickstart config or GET_BROKER_CONFIG).
    pub flush_disk_type: Option<String>,
    /// `brokerRole` when known.
    pub broker_role: Option<String>,
    /// Executors of the broker (`ringmqCpus`) when known.
    pub broker_cpus: Option<u32>,
    /// Started by this process (quickstart) on the same machine.
    pub started_by_loadgen: bool,
}

/// The tuner's host facts, with `data_path`'s disk (the broker store, or the results
/// directory when the store is elsewhere).
pub fn host_facts(data_path: &Path) -> HostFacts {
    HostFacts::collect(&ringmq_tune::sysroot::SysRoot::host(), Some(data_path))
}

/// The tuner's full check report for a broker store at `store_path`, as JSON (kernel and
/// io_uring features, memlock, governor, SMT, schedulers, …).
pub fn host_checks(store_path: &Path) -> Option<serde_json::Value> {
    let report = run_checks(&CheckContext::for_host(store_path, None));
    serde_json::to_value(report).ok()
}

/// Online CPUs as the tuner counts them (at least 1).
pub fn cores(facts: &HostFacts) -> usize {
    facts.logical_cpus.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_is_described() {
        let facts = host_facts(Path::new("/tmp"));
        assert!(cores(&facts) >= 1);
        assert!(facts
            .kernel_release
            .as_deref()
            .is_some_and(|k| !k.is_empty()));
        assert!(facts.store.is_some());
        let checks = host_checks(Path::new("/tmp")).expect("check report serialises");
        assert!(checks["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty()));
    }
}
