//! The stored-message record (RocketMQ commit-log format), properties, batch bodies, message ids.
