//! The ringmq name server: broker registry, liveness, topic routes.
//!
//! - [`registry`]: the pure state machine (no I/O, no clock), unit-tested on its own.
//! - [`config`]: command-line flags and RocketMQ `namesrv.properties` keys.

pub mod config;
pub mod registry;
