//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361) headers (reference §2.4).

use super::command_header;

/// `PullSysFlag` bit: store `commitOffset` as the group's committed offset.
pub const PULL_FLAG_COMMIT_OFFSET: i32 = 0x1;
/// `PullSysFlag` bit: the pull may be parked (long polling).
pub const PULL_FLAG_SUSPEND: i32 = 0x2;
/// `PullSysFlag` bit: the request carries its own subscription expression.
pub const PULL_FLAG_SUBSCRIPTION: i32 = 0x4;
/// `PullSysFlag` bit: legacy class filter.
pub const PULL_FLAG_CLASS_FILTER: i32 = 0x8;
/// `PullSysFlag` bit: a lite pull consumer (code 361).
pub const PULL_FLAG_LITE_PULL: i32 = 0x10;

command_header! {
    /// PULL_MESSAGE request. The proxy-only fields (`requestSource`, `proxyFrowardClientId`)
    /// and the 5.x `RpcRequestHeader` fields are not read.
    pub struct PullMessageRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        /// Logical offset to read from.
        queue_offset: i64 = "queueOffset",
        max_msg_nums: i32 = "maxMsgNums",
        /// `PULL_FLAG_*` bits.
        sys_flag: i32 = "sysFlag",
        /// The consumer's in-memory committed offset (with [`PULL_FLAG_COMMIT_OFFSET`]).
        commit_offset: i64 = "commitOffset" or 0,
        /// Long-poll budget: Java 15000, Go 20000.
        suspend_timeout_millis: i64 = "suspendTimeoutMillis" or 0,
        /// Subscription expression (with [`PULL_FLAG_SUBSCRIPTION`]).
        subscription: Option<String> = "subscription",
        /// Subscription version, a ms timestamp; Go sends 0.
        sub_version: i64 = "subVersion" or 0,
        /// `TAG` or `SQL92`.
        expression_type: Option<String> = "expressionType",
        max_msg_bytes: Option<i32> = "maxMsgBytes",
    }
}

impl PullMessageRequestHeader {
    /// Whether `sys_flag` has `bit`.
    pub fn has_flag(&self, bit: i32) -> bool {
        self.sys_flag & bit != 0
    }
}

command_header! {
    /// PULL_MESSAGE response. The four offsets must be present on every outcome (SUCCESS,
    /// PULL_NOT_FOUND, PULL_RETRY_IMMEDIATELY, PULL_OFFSET_MOVED): clients unbox them
    /// unconditionally (reference §8.2), which the type enforces by making them required.
    pub struct PullMessageResponseHeader {
        /// 0 (master) on a single-node broker.
        suggest_which_broker_id: i64 = "suggestWhichBrokerId",
        next_begin_offset: i64 = "nextBeginOffset",
        min_offset: i64 = "minOffset",
        max_offset: i64 = "maxOffset",
        offset_delta: Option<i64> = "offsetDelta",
        topic_sys_flag: Option<i32> = "topicSysFlag",
        group_sys_flag: Option<i32> = "groupSysFlag",
        forbidden_type: Option<i32> = "forbiddenType",
    }
}

impl PullMessageResponseHeader {
    /// A response with the four offsets and no optional field.
    pub fn new(next_begin_offset: i64, min_offset: i64, max_offset: i64) -> Self {
        PullMessageResponseHeader {
            suggest_which_broker_id: 0,
            next_begin_offset,
            min_offset,
            max_offset,
            offset_delta: None,
            topic_sys_flag: None,
            group_sys_flag: None,
            forbidden_type: None,
        }
    }
}
