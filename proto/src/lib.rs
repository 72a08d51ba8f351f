//! RocketMQ remoting codec.
//!
//! Architecture invariant: this crate is pure. It does no I/O, has no async code and depends on
//! no runtime, so every byte layout here can be tested on its own and reused by the broker, the
//! name server and the client alike.

pub mod body;
pub mod message;
