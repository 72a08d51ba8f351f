//! Topic administration on the broker: UPDATE_AND_CREATE_TOPIC (17), GET_ALL_TOPIC_CONFIG
//! (21), DELETE_TOPIC_IN_BROKER (215) (reference §2.10).

use super::command_header;

command_header! {
    /// UPDATE_AND_CREATE_TOPIC request (Java `CreateTopicRequestHeader`).
    pub struct CreateTopicRequestHeader {
        topic: String = "topic",
        default_topic: String = "defaultTopic" or "TBW102".to_string(),
        read_queue_nums: i32 = "readQueueNums",
        write_queue_nums: i32 = "writeQueueNums",
        /// PermName bits: 4 READ, 2 WRITE, 1 INHERIT.
        perm: i32 = "perm",
        /// `SINGLE_TAG` or `MULTI_TAG`.
        topic_filter_type: String = "topicFilterType" or "SINGLE_TAG".to_string(),
        topic_sys_flag: Option<i32> = "topicSysFlag",
        order: bool = "order" or false,
        /// `+key=value,...`.
        attributes: Option<String> = "attributes",
        force: Option<bool> = "force",
    }
}

command_header! {
    /// GET_ALL_TOPIC_CONFIG request: 5.x paging fields, all optional.
    pub struct GetAllTopicConfigRequestHeader {
        topic_seq: Option<i32> = "topicSeq",
        data_version: Option<String> = "dataVersion",
        max_topic_num: Option<i32> = "maxTopicNum",
    }
}

command_header! {
    /// GET_ALL_TOPIC_CONFIG response.
    pub struct GetAllTopicConfigResponseHeader {
        total_topic_num: Option<i32> = "totalTopicNum",
    }
}

command_header! {
    /// DELETE_TOPIC_IN_BROKER request.
    pub struct DeleteTopicRequestHeader {
        topic: String = "topic",
    }
}
