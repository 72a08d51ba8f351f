//! Consumption of one pulled batch: the listener in order, send-back of what it rejects, a
//! local retry of what the broker would not take back.

use std::time::Duration;

use ringmq_proto::message::property;

use super::{retry_topic, ConsumeStatus, PushInner};
use crate::broker_api;
use crate::message::MessageExt;
use crate::queue::MessageQueue;

impl PushInner {
    /// Calls the listener on `messages` in batches, in order; returns false if the consumer was
    /// shut down before every message was consumed or handed back.
    pub(super) async fn consume_in_order(
        &self,
        queue: &MessageQueue,
        messages: &mut [MessageExt],
    ) -> bool {
        for message in messages.iter_mut() {
            restore_retry_topic(message, &self.config.group);
        }
        let batch_size = self.config.consume_batch_max_size.max(1);
        for batch in messages.chunks(batch_size) {
            if !self.running.get() {
                return false;
            }
            // The common case hands the listener the pulled messages themselves; only a batch
            // it rejects is copied, to be sent back (and perhaps consumed again here).
            if self.call_listener(queue, batch) == ConsumeStatus::Success {
                continue;
            }
            if !self.is_clustering() {
                // Broadcasting consumers never send back (Java drops them with a warning).
                tracing::warn!(%queue, count = batch.len(), "broadcast messages dropped");
                continue;
            }
            let mut pending = self.send_back(queue, batch.to_vec()).await;
            while !pending.is_empty() {
                // The broker did not take them: consume them again here after a pause.
                for message in &mut pending {
                    message.reconsume_times += 1;
                }
                glommio::timer::sleep(Duration::from_millis(self.config.local_retry_delay_ms))
                    .await;
                if !self.running.get() {
                    return false;
                }
                if self.call_listener(queue, &pending) == ConsumeStatus::Success {
                    break;
                }
                pending = self.send_back(queue, pending).await;
            }
        }
        true
    }

    /// Sends each message back; returns those the broker did not take.
    async fn send_back(&self, queue: &MessageQueue, messages: Vec<MessageExt>) -> Vec<MessageExt> {
        let max = self.config.effective_max_reconsume_times();
        let mut failed = Vec::new();
        for message in messages {
            let addr = match self.core.cached_route(&queue.topic) {
                Some(route) => route.master_addr(&queue.broker_name).map(str::to_string),
                None => None,
            }
            .unwrap_or_else(|| message.store_host.to_string());
            let result = broker_api::send_message_back(
                &self.core,
                &addr,
                &self.config.group,
                &message,
                self.config.send_back_delay_level,
                max,
            )
            .await;
            if let Err(e) = result {
                tracing::warn!(%queue, msg_id = %message.msg_id(), error = %e, "send back failed");
                failed.push(message);
            }
        }
        failed
    }
}

/// A message from the group's retry topic carries its original topic in RETRY_TOPIC; the
/// listener sees that topic, as in Java (`resetRetryAndNamespace`).
pub(super) fn restore_retry_topic(message: &mut MessageExt, group: &str) {
    if message.topic != retry_topic(group) {
        return;
    }
    if let Some(original) = message.property(property::RETRY_TOPIC) {
        message.topic = original.to_string();
    }
}
