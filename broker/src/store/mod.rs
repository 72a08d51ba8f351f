//! Per-shard storage engine: commit log, consume queues, index, recovery, retention.
