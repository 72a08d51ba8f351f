//! Rust client for RocketMQ-protocol brokers.
