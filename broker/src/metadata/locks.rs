//! Queue locks of orderly consumers (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ, reference §2.8).
//!
//! Owned by the metadata shard. A lock belongs to one client id of a group and lapses after
//! [`LOCK_LEASE_MS`] without renewal (Java `rocketmq.broker.rebalance.lockMaxLiveTime`);
//! clients renew every 20 s and trust a lock for 30 s.

use std::collections::HashMap;

use ringmq_proto::body::MessageQueue;

/// How long a lock lives without renewal.
pub const LOCK_LEASE_MS: i64 = 60_000;

#[derive(Debug, Clone)]
struct LockEntry {
    client_id: String,
    last_update_ms: i64,
}

impl LockEntry {
    fn expired(&self, now_ms: i64) -> bool {
        now_ms - self.last_update_ms > LOCK_LEASE_MS
    }
}

#[derive(Debug, Default)]
pub struct QueueLocks {
    /// group → queue → holder.
    groups: HashMap<String, HashMap<MessageQueue, LockEntry>>,
}

impl QueueLocks {
    /// Locks (or renews) every queue that is free, expired or already this client's; returns
    /// the queues the client now holds.
    pub fn try_lock_batch(
        &mut self,
        group: &str,
        client_id: &str,
        queues: &[MessageQueue],
        now_ms: i64,
    ) -> Vec<MessageQueue> {
        let table = self.groups.entry(group.to_string()).or_default();
        let mut locked = Vec::new();
        for queue in queues {
            let grant = match table.get(queue) {
                Some(entry) => entry.client_id == client_id || entry.expired(now_ms),
                None => true,
            };
            if grant {
                table.insert(
                    queue.clone(),
                    LockEntry {
                        client_id: client_id.to_string(),
                        last_update_ms: now_ms,
                    },
                );
                locked.push(queue.clone());
            }
        }
        locked
    }

    /// Releases the queues this client holds; others' locks are left alone.
    pub fn unlock_batch(&mut self, group: &str, client_id: &str, queues: &[MessageQueue]) {
        if let Some(table) = self.groups.get_mut(group) {
            for queue in queues {
                if table.get(queue).is_some_and(|e| e.client_id == client_id) {
                    table.remove(queue);
                }
            }
            if table.is_empty() {
                self.groups.remove(group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(queue_id: i32) -> MessageQueue {
        MessageQueue {
            broker_name: "broker-a".to_string(),
            queue_id,
            topic: "T".to_string(),
        }
    }

    #[test]
    fn locks_are_exclusive_renewable_and_lapse() {
        let mut locks = QueueLocks::default();
        assert_eq!(
            locks.try_lock_batch("g", "c1", &[mq(0), mq(1)], 0),
            vec![mq(0), mq(1)]
        );
        // Another client gets only the free queue.
        assert_eq!(
            locks.try_lock_batch("g", "c2", &[mq(1), mq(2)], 1000),
            vec![mq(2)]
        );
        // The holder renews.
        assert_eq!(
            locks.try_lock_batch("g", "c1", &[mq(1)], 50_000),
            vec![mq(1)]
        );
        // Other groups are independent.
        assert_eq!(
            locks.try_lock_batch("h", "c2", &[mq(1)], 50_000),
            vec![mq(1)]
        );
        // c1's lock on queue 0 was not renewed since 0: it lapses after the lease.
        assert!(locks
            .try_lock_batch("g", "c2", &[mq(0)], LOCK_LEASE_MS)
            .is_empty());
        assert_eq!(
            locks.try_lock_batch("g", "c2", &[mq(0)], LOCK_LEASE_MS + 1),
            vec![mq(0)]
        );
        // Unlock releases only the caller's own locks.
        locks.unlock_batch("g", "c2", &[mq(1), mq(2)]);
        assert!(locks.try_lock_batch("g", "c3", &[mq(1)], 60_000).is_empty());
        assert_eq!(
            locks.try_lock_batch("g", "c3", &[mq(2)], 60_000),
            vec![mq(2)]
        );
    }
}
