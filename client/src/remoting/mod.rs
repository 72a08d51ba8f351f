//! Transport: connections with pipelined requests, and the per-client connection pool.

mod connection;
mod pool;

pub use connection::{Connection, ServerRequestHandler, OUTBOX_HIGH_WATER_BYTES};
pub use pool::ConnectionPool;
