//! Transport: connections with pipelined requests, and the per-client connection pool.

mod connection;
mod pool;

pub use connection::{Connection, ServerRequestHandler};
pub use pool::ConnectionPool;
