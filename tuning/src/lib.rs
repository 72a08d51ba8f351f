//! `ringmq-tune`: host checks, a disk probe, a recommended broker configuration and the host
//! settings that go with it. Modelled on Redpanda's `rpk redpanda check` / `tune` and `iotune`,
//! and on RocketMQ's `os.sh`.
//!
//! All reads and writes of `/proc` and `/sys` go through [`sysroot::SysRoot`], so tests point
//! the checks and `apply` at fixture trees. The load generator calls [`check::run_checks`] and
//! [`facts::HostFacts::collect`] to record what the host looked like next to every result:
//!
//! ```no_run
//! use ringmq_tune::check::{run_checks, CheckContext};
//! use ringmq_tune::cpulist::CpuSpec;
//!
//! // The broker's store and cores, as the load generator started it.
//! let ctx = CheckContext::for_host("/var/lib/ringmq/store", Some(CpuSpec::parse("0-3").unwrap()));
//! let report = run_checks(&ctx); // a few dozen small reads of /proc and /sys, no disk probe
//! let host_json = serde_json::to_value(&report).unwrap(); // embed next to the results
//! assert!(host_json["items"].is_array());
//! ```

pub mod apply;
pub mod brokerconf;
pub mod check;
pub mod cpulist;
pub mod error;
pub mod facts;
pub mod host;
pub mod probe;
pub mod recommend;
pub mod storage;
pub mod sysroot;
pub mod uring;

pub use error::{Result, TuneError};
