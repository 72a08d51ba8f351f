//! The ringmq name server: broker registry, liveness, topic routes.
//!
//! - [`registry`]: the pure state machine (no I/O, no clock), unit-tested on its own.
//! - [`handler`]: request dispatch, one request in, at most one response out (no I/O).
//! - [`server`]: the glommio TCP server: connections, frames, the liveness scan.
//! - [`config`]: command-line flags and RocketMQ `namesrv.properties` keys.

pub mod config;
pub mod handler;
pub mod metrics;
pub mod registry;
pub mod server;
