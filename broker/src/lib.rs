//! The ringmq broker: thread-per-core shards serving RocketMQ clients over O_DIRECT storage.
//!
//! Module map (one job each):
//!
//! * [`acl`] — ACL 1.0 (RocketMQ 4.x plain ACL): plain_acl.yml, signatures, permissions,
//!   reload on change.
//! * [`config`] — `broker.conf` (Java properties) and flags → [`config::BrokerConfig`]. Pure.
//! * [`shard_map`] — which shard owns which queue (a pinned FNV-1a hash) and the shard count
//!   written into the store root.
//! * [`server`] — the process: one pinned glommio executor per core ([`server::shard`]),
//!   connections ([`server::conn`]: a reader that decodes and dispatches, a writer that batches),
//!   the placement table ([`server::placement`]: where each request code runs and which handler
//!   serves it), dispatch ([`server::dispatch`]: runs handlers, carries out their outcomes),
//!   signals and shutdown.
//! * [`channel`] — a connection's id and handle, what handlers and registrations hold.
//! * [`stop`] — the shard-local stop event parked pulls wait on.
//! * [`metadata`] — broker-wide state owned by shard 0: the topic table, client registrations,
//!   queue locks, name-server registration; plus each shard's consumer offsets.
//! * [`processor`] — request handlers by area: send, pull, offsets, lookups, send-back, client
//!   registrations, administration. Each takes only what it uses and returns an `Outcome`.
//! * [`schedule`] — delay levels and timer messages: the send-side decision and each shard's
//!   delivery task over its own store.
//! * [`store`] — each shard's storage engine (commit log, consume queues, index, recovery).
//! * [`persist`] — atomic writes of small metadata files.

pub mod acl;
pub mod channel;
pub mod config;
pub mod filter;
pub mod ha;
pub mod metadata;
pub mod persist;
pub mod processor;
pub mod schedule;
pub mod server;
pub mod shard_map;
pub mod stats;
pub mod stop;
pub mod store;
pub mod transaction;
