//! One PULL_MESSAGE round trip and what it means: shared by the push consumer's per-queue loops
//! and the pull consumer.

use ringmq_proto::code::ResponseCode;

use crate::consumer::subscription::TagSubscription;
use crate::core::ClientCore;
use crate::error::ClientError;
use crate::message::{decode_records, MessageExt};
use crate::queue::MessageQueue;
use crate::requests::{self, PullArgs};

/// `PullSysFlag` bits (reference §2.4).
pub mod pull_sys_flag {
    pub const COMMIT_OFFSET: i32 = 0x1;
    pub const SUSPEND: i32 = 0x2;
    pub const SUBSCRIPTION: i32 = 0x4;
    pub const CLASS_FILTER: i32 = 0x8;
}

/// What a pull found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    /// Messages (after the exact tag filter, possibly none of them) are in `messages`.
    Found,
    /// Nothing new at this offset (PULL_NOT_FOUND).
    NoNewMsg,
    /// Entries were scanned but none matched the filter (PULL_RETRY_IMMEDIATELY).
    NoMatchedMsg,
    /// The offset is outside the queue (PULL_OFFSET_MOVED): continue from `next_begin_offset`.
    OffsetIllegal,
}

/// The answer to one pull.
#[derive(Debug, Clone)]
pub struct PullResult {
    pub status: PullStatus,
    /// Where the next pull of this queue starts.
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    /// The broker suggests pulling from this broker id next (0 = master).
    pub suggest_which_broker_id: i64,
    /// Messages that passed the exact tag filter.
    pub messages: Vec<MessageExt>,
    /// Messages the broker sent that the exact filter dropped (tag-hash collisions).
    pub filtered_out: usize,
}

/// How to pull one queue.
#[derive(Debug, Clone)]
pub struct PullSpec<'a> {
    pub group: &'a str,
    pub queue: &'a MessageQueue,
    pub offset: i64,
    pub max_msg_nums: i32,
    pub sys_flag: i32,
    pub commit_offset: i64,
    /// Broker-side long-poll budget (only with the SUSPEND bit).
    pub suspend_timeout_ms: u64,
    /// Client-side request timeout; longer than the suspend budget.
    pub timeout_ms: u64,
    pub subscription: &'a TagSubscription,
}

/// Sends one pull to `addr` and maps the answer. Error codes other than the four pull outcomes
/// are returned as [`ClientError::Server`].
pub(crate) async fn pull_once(
    core: &ClientCore,
    addr: &str,
    spec: &PullSpec<'_>,
) -> Result<PullResult, ClientError> {
    let request = requests::pull_message(&PullArgs {
        consumer_group: spec.group,
        topic: &spec.queue.topic,
        queue_id: spec.queue.queue_id,
        queue_offset: spec.offset,
        max_msg_nums: spec.max_msg_nums,
        sys_flag: spec.sys_flag,
        commit_offset: spec.commit_offset,
        suspend_timeout_ms: spec.suspend_timeout_ms as i64,
        subscription: &spec.subscription.expression,
        sub_version: spec.subscription.version,
        expression_type: spec.subscription.expression_type.as_str(),
        broker_name: &spec.queue.broker_name,
    });
    let request_code = request.code;
    let connection = core.pool.get(addr).await?;
    let response = connection.request(request, spec.timeout_ms).await?;
    let status = match ResponseCode::from_code(response.code) {
        ResponseCode::Success => PullStatus::Found,
        ResponseCode::PullNotFound => PullStatus::NoNewMsg,
        ResponseCode::PullRetryImmediately => PullStatus::NoMatchedMsg,
        ResponseCode::PullOffsetMoved => PullStatus::OffsetIllegal,
        _ => return Err(requests::server_error(addr, request_code, &response)),
    };
    let header = requests::parse_pull_response(addr, request_code, &response)?;
    let mut messages = Vec::new();
    let mut filtered_out = 0;
    if status == PullStatus::Found {
        let decoded =
            decode_records(&response.body, &spec.queue.broker_name).map_err(|source| {
                ClientError::Decode {
                    addr: addr.to_string(),
                    source,
                }
            })?;
        for message in decoded {
            if spec.subscription.matches(&message) {
                messages.push(message);
            } else {
                filtered_out += 1;
            }
        }
    }
    Ok(PullResult {
        status,
        next_begin_offset: header.next_begin_offset,
        min_offset: header.min_offset,
        max_offset: header.max_offset,
        suggest_which_broker_id: header.suggest_which_broker_id,
        messages,
        filtered_out,
    })
}
