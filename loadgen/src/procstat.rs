//! CPU time of processes and the host's load average, read from `/proc`, so every result
//! says how much CPU the load generator and a local broker spent per message and how busy
//! the machine was (a shared machine's neighbours show up in the load average).

use serde::Serialize;

/// CPU seconds (user + system) process `pid` has used, from `/proc/<pid>/stat`.
pub fn process_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_cpu_ticks(&stat)?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks_per_sec > 0).then(|| ticks as f64 / ticks_per_sec as f64)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after_comm starts at field 3 (state): utime is field 14 → index 11, stime → index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel keeps a process name (`/proc/<pid>/comm`) to this many bytes.
const COMM_MAX_BYTES: usize = 15;

/// The one running process whose name is one of `names` (each compared as the kernel stores
/// it: cut to 15 bytes), so a run against a peer broker on this host can report that broker's
/// CPU too. `Ok(None)` when none runs; an error when several do, since their CPU cannot be
/// told apart.
pub fn find_process_by_name(names: &[String]) -> Result<Option<u32>, String> {
    let entries = std::fs::read_dir("/proc").map_err(|e| format!("reading /proc: {e}"))?;
    let mut found: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm_matches(comm.trim_end(), names))
        })
        .collect();
    found.sort_unstable();
    match found.as_slice() {
        [] => Ok(None),
        [pid] => Ok(Some(*pid)),
        many => Err(format!(
            "{} processes named {names:?} run ({many:?}); name one with --broker-pid",
            many.len()
        )),
    }
}

fn comm_matches(comm: &str, names: &[String]) -> bool {
    names.iter().any(|name| {
        let cut = name.get(..COMM_MAX_BYTES.min(name.len())).unwrap_or(name);
        !cut.is_empty() && comm == cut
    })
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    parse_load_average(&text)
}

fn parse_load_average(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// CPU spent during the measured window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CpuUsage {
    pub window_secs: f64,
    pub loadgen_cpu_secs: f64,
    /// Cores the load generator kept busy on average.
    pub loadgen_cores_busy: f64,
    /// Load-generator CPU per message sent and consumed in the window.
    pub loadgen_cpu_us_per_message: f64,
    /// Only for a broker running on this host (quickstart).
    pub broker_cpu_secs: Option<f64>,
    pub broker_cores_busy: Option<f64>,
    pub broker_cpu_us_per_message: Option<f64>,
    /// Host load average (1, 5, 15 min) at the start and end of the window.
    pub load_average_start: Option<[f64; 3]>,
    pub load_average_end: Option<[f64; 3]>,
}

/// A reading at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuReading {
    pub loadgen_cpu_secs: Option<f64>,
    pub broker_cpu_secs: Option<f64>,
    pub load_average: Option<[f64; 3]>,
}

impl CpuReading {
    pub fn now(broker_pid: Option<u32>) -> Self {
        Self {
            loadgen_cpu_secs: process_cpu_secs(std::process::id()),
            broker_cpu_secs: broker_pid.and_then(process_cpu_secs),
            load_average: load_average(),
        }
    }
}

/// Usage between two readings `window_secs` apart, over `messages` messages.
pub fn usage_between(
    before: &CpuReading,
    after: &CpuReading,
    window_secs: f64,
    messages: u64,
) -> CpuUsage {
    let delta = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (b - a).max(0.0));
    let per_sec = |cpu: f64| {
        if window_secs > 0.0 {
            cpu / window_secs
        } else {
            0.0
        }
    };
    let per_message = |cpu: f64| {
        if messages > 0 {
            cpu * 1e6 / messages as f64
        } else {
            0.0
        }
    };
    let loadgen = delta(before.loadgen_cpu_secs, after.loadgen_cpu_secs).unwrap_or(0.0);
    let broker = delta(before.broker_cpu_secs, after.broker_cpu_secs);
    CpuUsage {
        window_secs,
        loadgen_cpu_secs: loadgen,
        loadgen_cores_busy: per_sec(loadgen),
        loadgen_cpu_us_per_message: per_message(loadgen),
        broker_cpu_secs: broker,
        broker_cores_busy: broker.map(per_sec),
        broker_cpu_us_per_message: broker.map(per_message),
        load_average_start: before.load_average,
        load_average_end: after.load_average,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_a_tricky_command_name() {
        let stat = "4242 (ringmq (shard) 0) S 1 4242 4242 0 -1 4194560 1000 0 0 0 350 120 0 0 20 0 3 0 100 1000000 500 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(470));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn process_names_compare_as_the_kernel_cuts_them() {
        let names = [
            "rocketmq-broker-rust".to_string(),
            "ringmq-broker".to_string(),
        ];
        assert!(comm_matches("rocketmq-broker", &names));
        assert!(comm_matches("ringmq-broker", &names));
        assert!(!comm_matches("ringmq-broke", &names));
        assert!(!comm_matches("", &[String::new()]));
    }

    #[test]
    fn this_process_is_found_by_its_name() {
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let names = [comm.trim_end().to_string()];
        // The test binary may run several test threads but it is one process.
        assert_eq!(find_process_by_name(&names), Ok(Some(std::process::id())));
        assert_eq!(
            find_process_by_name(&["no-such-process-x".into()]),
            Ok(None)
        );
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        assert!(process_cpu_secs(std::process::id()).is_some());
        assert!(load_average().is_some());
        assert_eq!(
            parse_load_average("6.07 8.16 7.95 3/412 9000\n"),
            Some([6.07, 8.16, 7.95])
        );
        assert_eq!(parse_load_average("1.0 x"), None);
    }

    #[test]
    fn usage_is_per_second_and_per_message() {
        let before = CpuReading {
            loadgen_cpu_secs: Some(1.0),
            broker_cpu_secs: Some(2.0),
            load_average: Some([1.0, 1.0, 1.0]),
        };
        let after = CpuReading {
            loadgen_cpu_secs: Some(6.0),
            broker_cpu_secs: Some(12.0),
            load_average: Some([2.0, 1.5, 1.0]),
        };
        let u = usage_between(&before, &after, 10.0, 1_000_000);
        assert_eq!(u.loadgen_cores_busy, 0.5);
        assert_eq!(u.loadgen_cpu_us_per_message, 5.0);
        assert_eq!(u.broker_cores_busy, Some(1.0));
        assert_eq!(u.broker_cpu_us_per_message, Some(10.0));
        let no_broker = usage_between(&CpuReading::default(), &CpuReading::default(), 0.0, 0);
        assert_eq!(no_broker.broker_cpu_secs, None);
        assert_eq!(no_broker.loadgen_cores_busy, 0.0);
    }
}
