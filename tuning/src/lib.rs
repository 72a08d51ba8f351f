//! `ringmq-tune`: host checks, a disk probe, a recommended broker configuration and the host
//! settings that go with it. Modelled on Redpanda's `rpk redpanda check` / `tune` and `iotune`,
//! and on RocketMQ's `os.sh`.
//!
//! All reads and writes of `/proc` and `/sys` go through [`sysroot::SysRoot`], so tests point
//! the checks and `apply` at fixture trees. The load generator calls [`check::run_checks`] and
//! [`facts::HostFacts::collect`] to record what the host looked like next to every result.

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
