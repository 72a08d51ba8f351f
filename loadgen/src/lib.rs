//! ringmq-loadgen: the load generator and the one-command quickstart.
//!
//! | module | job |
//! | --- | --- |
//! | [`cli`] | flags, validation, executor placement |
//! | [`clock`] | the process-wide monotonic clock and UTC formatting |
//! | [`body`] | message bodies carrying id, born time and a checkable filler |
//! | [`schedule`] | open-loop send times and the warm-up/measurement window |
//! | [`latency`] | HDR histograms in µs and their percentile summary |
//! | [`stats`] | per-executor measurements and live counters |
//! | [`progress`] | the once-a-second progress line and timeline |
//! | [`verify`] | the `--verify` ledger |
//! | [`order`] | the `--orderly --verify` per-key order check |
//! | [`drain`] | a timed drain of a backlog by a fresh consumer group |
//! | [`filter_compare`] | `--filter-compare`: filtered against unfiltered drains of a backlog |
//! | [`catch_up`] | `catch-up`: a fresh group drains a stored backlog; msg/s and MB/s |
//! | [`key_space`] | the keys of `--keys` runs, rebuilt from their results |
//! | [`query_keys`] | `query-keys`: QUERY_MESSAGE latency of keys in the store |
//! | [`report`] | final report, JSON result, markdown summary |
//! | [`host`] | host and target facts recorded with results |
//! | [`process`] | child-process guards and Ctrl-C |
//! | [`procstat`] | CPU time per process and load average from `/proc` |
//! | [`cluster`] | the quickstart's local name server and broker |
//! | [`broker_info`] | broker configuration and flush counters via admin requests |
//! | [`runner`] | the coordinator and the per-executor producers and consumers |
//! | [`app`] | the `run` and `quickstart` commands end to end |

pub mod app;
pub mod body;
pub mod broker_info;
pub mod catch_up;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod drain;
pub mod filter_compare;
pub mod host;
pub mod key_space;
pub mod latency;
pub mod order;
pub mod process;
pub mod procstat;
pub mod progress;
pub mod query_keys;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod stats;
pub mod verify;
