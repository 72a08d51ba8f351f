//! Requests a broker sends a push consumer besides NOTIFY_CONSUMER_IDS_CHANGED (Java's
//! `ClientRemotingProcessor`): GET_CONSUMER_RUNNING_INFO (307), answered with this consumer's
//! `ConsumerRunningInfo`; RESET_CONSUMER_CLIENT_OFFSET (220), after which the queues it names
//! that this consumer holds continue from their new offsets; CONSUME_MESSAGE_DIRECTLY (309),
//! the listener consuming the message the broker sent, answered with a
//! `ConsumeMessageDirectlyResult`; GET_CONSUMER_STATUS_FROM_CLIENT (221), answered with this
//! consumer's offsets of the topic.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use bytes::Bytes;
use ringmq_proto::body::{
    AdminBody, CmResult, ConsumeMessageDirectlyResult, ConsumerRunningInfo, GetConsumerStatusBody,
    JsonBody, ProcessQueueInfo, ResetOffsetBody, SubscriptionData,
};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{
    CommandHeader, ConsumeMessageDirectlyResultRequestHeader, GetConsumerStatusRequestHeader,
    ResetOffsetRequestHeader,
};

use super::consume::restore_retry_topic;
use super::{ConsumeFrom, ConsumeStatus, MessageModel, PushInner};
use crate::message::decode_records;
use crate::producer::now_ms;
use crate::queue::MessageQueue;

/// Java's PROP_CONSUME_TYPE of a push consumer.
const CONSUME_PASSIVELY: &str = "CONSUME_PASSIVELY";
/// Listener calls run on the consumer's executor, one at a time (Java reports its consume
/// thread pool's core size here).
const CONSUME_THREADS: &str = "1";

/// The answer to a server request this module serves; `None` for any other code, and for a
/// oneway request (the connection sends nothing back for those).
pub(super) fn serve(inner: &Rc<PushInner>, request: &RemotingCommand) -> Option<RemotingCommand> {
    if request.code == RequestCode::GetConsumerRunningInfo.code() {
        let body = inner.running_info(now_ms()).to_fastjson();
        let code = ResponseCode::Success.code();
        return Some(RemotingCommand::new_request(
            code,
            ExtFields::new(),
            Bytes::from(body),
        ));
    }
    if request.code == RequestCode::ConsumeMessageDirectly.code() {
        return Some(inner.consume_directly(request));
    }
    if request.code == RequestCode::GetConsumerStatusFromClient.code() {
        return Some(inner.consumer_status(request));
    }
    if request.code == RequestCode::ResetConsumerClientOffset.code() {
        let header = ResetOffsetRequestHeader::read_from(&request.ext_fields);
        let body = ResetOffsetBody::from_fastjson(&request.body);
        match (header, body) {
            (Ok(header), Ok(body)) if header.group == inner.config.group => {
                let table = body
                    .offset_table
                    .into_iter()
                    .map(|(queue, offset)| (MessageQueue::from(queue), offset))
                    .collect();
                // On a task of its own: the queue loops it stops may hold this connection's
                // pulls, which must not be dropped from inside the connection's reader.
                let inner = inner.clone();
                glommio::spawn_local(async move {
                    inner.apply_reset(&header.topic, &table);
                })
                .detach();
            }
            (Ok(_), Ok(_)) => {}
            (header, body) => tracing::warn!(
                header_error = ?header.err(),
                body_error = ?body.err(),
                "bad RESET_CONSUMER_CLIENT_OFFSET ignored"
            ),
        }
    }
    None
}

/// A SYSTEM_ERROR answer to `request` with `remark`.
fn system_error(request: &RemotingCommand, remark: String) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::SystemError.code(), Some(remark))
}

/// Java's `ConsumeMessageDirectlyResult` of one listener call: the verdict (a panic is Java's
/// thrown exception, CR_THROW_EXCEPTION with its message), whether the consumer is orderly,
/// and the time it took. An orderly listener's "later" is Java's SUSPEND_CURRENT_QUEUE_A_MOMENT,
/// also CR_LATER.
pub(super) fn directly_result(
    orderly: bool,
    verdict: Result<ConsumeStatus, String>,
    spent_ms: i64,
) -> ConsumeMessageDirectlyResult {
    let (consume_result, remark) = match verdict {
        Ok(ConsumeStatus::Success) => (CmResult::Success, None),
        Ok(ConsumeStatus::ReconsumeLater) => (CmResult::Later, None),
        Err(thrown) => (CmResult::ThrowException, Some(thrown)),
    };
    ConsumeMessageDirectlyResult {
        consume_result: Some(consume_result),
        order: orderly,
        remark,
        spent_time_mills: spent_ms,
        ..ConsumeMessageDirectlyResult::default()
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the listener panicked".to_string())
}

impl PushInner {
    /// CONSUME_MESSAGE_DIRECTLY: the listener consumes the message in the body, outside the
    /// queue loops (no offset moves, nothing is sent back), as Java's `consumeMessageDirectly`
    /// does: retry topic restored, queue = (its topic, the header's `brokerName`, its queue id).
    /// Another group than this consumer's is Java's SYSTEM_ERROR.
    fn consume_directly(&self, request: &RemotingCommand) -> RemotingCommand {
        let header = match ConsumeMessageDirectlyResultRequestHeader::read_from(&request.ext_fields)
        {
            Ok(header) => header,
            Err(e) => return system_error(request, e.to_string()),
        };
        if header.consumer_group != self.config.group {
            let remark = format!(
                "The Consumer Group <{}> not exist in this consumer",
                header.consumer_group
            );
            return system_error(request, remark);
        }
        let broker_name = header.broker_name.unwrap_or_default();
        let mut message = match decode_records(&request.body, &broker_name) {
            Ok(messages) if !messages.is_empty() => messages.into_iter().next().expect("one"),
            Ok(_) => return system_error(request, "no message in the body".to_string()),
            Err(e) => return system_error(request, format!("bad message body: {e}")),
        };
        restore_retry_topic(&mut message, &self.config.group);
        let queue = MessageQueue::new(&message.topic, &broker_name, message.queue_id);
        let started = now_ms();
        let listener = &self.listener;
        let verdict = catch_unwind(AssertUnwindSafe(|| {
            listener.consume(&queue, std::slice::from_ref(&message))
        }))
        .map_err(|payload| panic_text(payload.as_ref()));
        let result = directly_result(self.config.consume_orderly, verdict, now_ms() - started);
        tracing::info!(%queue, msg_id = %message.msg_id(), ?result, "consumed directly");
        let success = ResponseCode::Success.code();
        RemotingCommand::response_to(request, success, None)
            .with_body(Bytes::from(result.to_json().into_bytes()))
    }

    /// GET_CONSUMER_STATUS_FROM_CLIENT: this consumer's offsets of `topic` (all topics when it
    /// is blank), as Java's `cloneOffsetTable`; another group's request gets an empty table.
    fn consumer_status(&self, request: &RemotingCommand) -> RemotingCommand {
        let header = match GetConsumerStatusRequestHeader::read_from(&request.ext_fields) {
            Ok(header) => header,
            Err(e) => return system_error(request, e.to_string()),
        };
        let mut body = GetConsumerStatusBody::default();
        if header.group == self.config.group {
            let topic = header.topic.trim();
            for (queue, offset) in self.offsets.borrow().all() {
                if topic.is_empty() || queue.topic == topic {
                    body.message_queue_table.insert((&queue).into(), offset);
                }
            }
        }
        let success = ResponseCode::Success.code();
        RemotingCommand::response_to(request, success, None)
            .with_body(Bytes::from(body.to_fastjson()))
    }

    /// RESET_CONSUMER_CLIENT_OFFSET: every queue of `table` (of `topic`) this consumer holds
    /// restarts at its new offset. Its loop is dropped first, with the pull in flight and the
    /// batch it prefetched (Java drops the process queue); the new offset is marked dirty, so
    /// it is committed again over any commit of the old position that raced the broker's reset.
    /// Returns how many queues restarted.
    pub(super) fn apply_reset(
        self: &Rc<Self>,
        topic: &str,
        table: &BTreeMap<MessageQueue, i64>,
    ) -> usize {
        let mut restarted = 0;
        for (queue, offset) in table.iter().filter(|(q, _)| q.topic == topic) {
            if !self.running.get() {
                break;
            }
            let Some(old_loop) = self.workers.borrow_mut().remove(queue) else {
                continue;
            };
            drop(old_loop);
            self.offsets.borrow_mut().reset(queue, *offset);
            let new_loop = self.spawn_queue_loop(queue.clone());
            self.workers.borrow_mut().insert(queue.clone(), new_loop);
            tracing::info!(%queue, offset, "offset reset by the broker");
            restarted += 1;
        }
        restarted
    }

    /// Java's `ConsumerRunningInfo` of this consumer at `now_ms`.
    pub(super) fn running_info(&self, now_ms: i64) -> ConsumerRunningInfo {
        let subscription_set: Vec<SubscriptionData> = self
            .subscriptions
            .values()
            .map(|s| s.to_subscription_data())
            .collect();
        let mut info = ConsumerRunningInfo {
            properties: self.running_properties(),
            subscription_set,
            ..ConsumerRunningInfo::default()
        };
        let activity = self.activity.borrow();
        let offsets = self.offsets.borrow();
        let locks = self.locks.borrow();
        for queue in self.workers.borrow().keys() {
            let seen = activity.queue(queue);
            let lock = locks.get(queue);
            let process = ProcessQueueInfo {
                commit_offset: offsets.get(queue).unwrap_or(-1),
                locked: lock.is_some_and(|l| l.locked),
                last_lock_timestamp: lock.map_or(0, |l| l.last_lock_ms),
                last_pull_timestamp: seen.last_pull_ms,
                last_consume_timestamp: seen.last_consume_ms,
                ..ProcessQueueInfo::default()
            };
            info.mq_table.insert(queue.into(), process);
        }
        for topic in self.subscriptions.keys() {
            let status = activity.status(topic, now_ms);
            info.status_table.insert(topic.clone(), status);
        }
        info
    }

    /// The settings Java reports (its `DefaultMQPushConsumer` field names and `PROP_*` keys).
    fn running_properties(&self) -> BTreeMap<String, String> {
        let config = &self.config;
        let (consume_from, timestamp) = match config.consume_from {
            ConsumeFrom::LastOffset => ("CONSUME_FROM_LAST_OFFSET", None),
            ConsumeFrom::FirstOffset => ("CONSUME_FROM_FIRST_OFFSET", None),
            ConsumeFrom::Timestamp(ms) => ("CONSUME_FROM_TIMESTAMP", Some(ms)),
        };
        let model = match config.message_model {
            MessageModel::Clustering => "CLUSTERING",
            MessageModel::Broadcasting => "BROADCASTING",
        };
        let namesrv = config.client.namesrv_addrs.join(";");
        let started = self.activity.borrow().started_ms();
        let client_version = format!("ringmq-client {}", env!("CARGO_PKG_VERSION"));
        let mut pairs = vec![
            ("consumerGroup", config.group.clone()),
            ("messageModel", model.to_string()),
            ("consumeFromWhere", consume_from.to_string()),
            ("pullBatchSize", config.pull_batch_size.to_string()),
            (
                "consumeMessageBatchMaxSize",
                config.consume_batch_max_size.to_string(),
            ),
            ("maxReconsumeTimes", config.max_reconsume_times.to_string()),
            (
                "suspendCurrentQueueTimeMillis",
                config.suspend_current_queue_time_ms.to_string(),
            ),
            (
                "persistConsumerOffsetInterval",
                config.commit_interval_ms.to_string(),
            ),
            ("namesrvAddr", namesrv.clone()),
            (ConsumerRunningInfo::PROP_NAMESERVER_ADDR, namesrv),
            (
                ConsumerRunningInfo::PROP_CONSUME_TYPE,
                CONSUME_PASSIVELY.to_string(),
            ),
            (
                ConsumerRunningInfo::PROP_CONSUME_ORDERLY,
                config.consume_orderly.to_string(),
            ),
            (
                ConsumerRunningInfo::PROP_THREADPOOL_CORE_SIZE,
                CONSUME_THREADS.to_string(),
            ),
            (ConsumerRunningInfo::PROP_CLIENT_VERSION, client_version),
            (
                ConsumerRunningInfo::PROP_CONSUMER_START_TIMESTAMP,
                started.to_string(),
            ),
        ];
        if let Some(ms) = timestamp {
            pairs.push(("consumeTimestamp", ms.to_string()));
        }
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_verdicts_become_javas_direct_results() {
        let ok = directly_result(false, Ok(ConsumeStatus::Success), 3);
        assert_eq!(ok.consume_result, Some(CmResult::Success));
        assert_eq!(
            (ok.order, ok.auto_commit, ok.spent_time_mills),
            (false, true, 3)
        );
        let later = directly_result(true, Ok(ConsumeStatus::ReconsumeLater), 0);
        assert_eq!(later.consume_result, Some(CmResult::Later));
        assert!(later.order);
        let thrown = directly_result(false, Err("boom".to_string()), 1);
        assert_eq!(thrown.consume_result, Some(CmResult::ThrowException));
        assert_eq!(thrown.remark.as_deref(), Some("boom"));
    }

    #[test]
    fn panic_payloads_are_read_as_text() {
        let literal = catch_unwind(|| panic!("literal")).unwrap_err();
        assert_eq!(panic_text(literal.as_ref()), "literal");
        let formatted = catch_unwind(|| panic!("formatted {}", 7)).unwrap_err();
        assert_eq!(panic_text(formatted.as_ref()), "formatted 7");
    }
}
