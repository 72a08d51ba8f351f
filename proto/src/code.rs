//! Request and response codes (reference §2.1, §2.2).
//!
//! Both enums convert losslessly from any `i32`: codes this crate does not name become
//! `Unknown(code)`, so a handler can answer REQUEST_CODE_NOT_SUPPORTED with the number.
//! Never construct `Unknown` with a named code; [`RequestCode::from_code`] never does.

macro_rules! wire_codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal, $text:literal;)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A code this crate does not name.
            Unknown(i32),
        }

        impl $name {
            /// Every named code, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The code for a wire number.
            pub const fn from_code(code: i32) -> Self {
                match code {
                    $($value => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }

            /// The wire number.
            pub const fn code(self) -> i32 {
                match self {
                    $($name::$variant => $value,)*
                    $name::Unknown(code) => code,
                }
            }

            /// The Java constant name (`"SEND_MESSAGE_V2"`), or `"UNKNOWN"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Unknown(_) => "UNKNOWN",
                }
            }
        }

        impl From<i32> for $name {
            fn from(code: i32) -> Self {
                $name::from_code(code)
            }
        }

        impl From<$name> for i32 {
            fn from(code: $name) -> i32 {
                code.code()
            }
        }
    };
}

wire_codes! {
    /// Request codes (`RequestCode.java`): every code of reference §2.2, the broker→client
    /// requests of §1.5, the admin codes §2.10–2.11 name, and a few the broker must recognise
    /// to refuse cleanly.
    RequestCode {
        SendMessage = 10, "SEND_MESSAGE";
        PullMessage = 11, "PULL_MESSAGE";
        QueryMessage = 12, "QUERY_MESSAGE";
        QueryBrokerOffset = 13, "QUERY_BROKER_OFFSET";
        QueryConsumerOffset = 14, "QUERY_CONSUMER_OFFSET";
        UpdateConsumerOffset = 15, "UPDATE_CONSUMER_OFFSET";
        UpdateAndCreateTopic = 17, "UPDATE_AND_CREATE_TOPIC";
        GetAllTopicConfig = 21, "GET_ALL_TOPIC_CONFIG";
        GetTopicConfigList = 22, "GET_TOPIC_CONFIG_LIST";
        GetTopicNameList = 23, "GET_TOPIC_NAME_LIST";
        UpdateBrokerConfig = 25, "UPDATE_BROKER_CONFIG";
        GetBrokerConfig = 26, "GET_BROKER_CONFIG";
        TriggerDeleteFiles = 27, "TRIGGER_DELETE_FILES";
        GetBrokerRuntimeInfo = 28, "GET_BROKER_RUNTIME_INFO";
        SearchOffsetByTimestamp = 29, "SEARCH_OFFSET_BY_TIMESTAMP";
        GetMaxOffset = 30, "GET_MAX_OFFSET";
        GetMinOffset = 31, "GET_MIN_OFFSET";
        GetEarliestMsgStoretime = 32, "GET_EARLIEST_MSG_STORETIME";
        ViewMessageById = 33, "VIEW_MESSAGE_BY_ID";
        HeartBeat = 34, "HEART_BEAT";
        UnregisterClient = 35, "UNREGISTER_CLIENT";
        ConsumerSendMsgBack = 36, "CONSUMER_SEND_MSG_BACK";
        EndTransaction = 37, "END_TRANSACTION";
        GetConsumerListByGroup = 38, "GET_CONSUMER_LIST_BY_GROUP";
        CheckTransactionState = 39, "CHECK_TRANSACTION_STATE";
        NotifyConsumerIdsChanged = 40, "NOTIFY_CONSUMER_IDS_CHANGED";
        LockBatchMq = 41, "LOCK_BATCH_MQ";
        UnlockBatchMq = 42, "UNLOCK_BATCH_MQ";
        GetAllConsumerOffset = 43, "GET_ALL_CONSUMER_OFFSET";
        GetAllDelayOffset = 45, "GET_ALL_DELAY_OFFSET";
        CheckClientConfig = 46, "CHECK_CLIENT_CONFIG";
        PutKvConfig = 100, "PUT_KV_CONFIG";
        GetKvConfig = 101, "GET_KV_CONFIG";
        DeleteKvConfig = 102, "DELETE_KV_CONFIG";
        RegisterBroker = 103, "REGISTER_BROKER";
        UnregisterBroker = 104, "UNREGISTER_BROKER";
        GetRouteinfoByTopic = 105, "GET_ROUTEINFO_BY_TOPIC";
        GetBrokerClusterInfo = 106, "GET_BROKER_CLUSTER_INFO";
        UpdateAndCreateSubscriptionGroup = 200, "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP";
        GetAllSubscriptionGroupConfig = 201, "GET_ALL_SUBSCRIPTIONGROUP_CONFIG";
        GetTopicStatsInfo = 202, "GET_TOPIC_STATS_INFO";
        GetConsumerConnectionList = 203, "GET_CONSUMER_CONNECTION_LIST";
        GetProducerConnectionList = 204, "GET_PRODUCER_CONNECTION_LIST";
        WipeWritePermOfBroker = 205, "WIPE_WRITE_PERM_OF_BROKER";
        GetAllTopicListFromNameserver = 206, "GET_ALL_TOPIC_LIST_FROM_NAMESERVER";
        DeleteSubscriptionGroup = 207, "DELETE_SUBSCRIPTIONGROUP";
        GetConsumeStats = 208, "GET_CONSUME_STATS";
        DeleteTopicInBroker = 215, "DELETE_TOPIC_IN_BROKER";
        DeleteTopicInNamesrv = 216, "DELETE_TOPIC_IN_NAMESRV";
        GetKvlistByNamespace = 219, "GET_KVLIST_BY_NAMESPACE";
        ResetConsumerClientOffset = 220, "RESET_CONSUMER_CLIENT_OFFSET";
        GetConsumerStatusFromClient = 221, "GET_CONSUMER_STATUS_FROM_CLIENT";
        InvokeBrokerToResetOffset = 222, "INVOKE_BROKER_TO_RESET_OFFSET";
        InvokeBrokerToGetConsumerStatus = 223, "INVOKE_BROKER_TO_GET_CONSUMER_STATUS";
        GetTopicsByCluster = 224, "GET_TOPICS_BY_CLUSTER";
        QueryTopicConsumeByWho = 300, "QUERY_TOPIC_CONSUME_BY_WHO";
        GetConsumerRunningInfo = 307, "GET_CONSUMER_RUNNING_INFO";
        ConsumeMessageDirectly = 309, "CONSUME_MESSAGE_DIRECTLY";
        SendMessageV2 = 310, "SEND_MESSAGE_V2";
        ViewBrokerStatsData = 315, "VIEW_BROKER_STATS_DATA";
        SendBatchMessage = 320, "SEND_BATCH_MESSAGE";
        QueryConsumeQueue = 321, "QUERY_CONSUME_QUEUE";
        QueryDataVersion = 322, "QUERY_DATA_VERSION";
        SendReplyMessage = 324, "SEND_REPLY_MESSAGE";
        SendReplyMessageV2 = 325, "SEND_REPLY_MESSAGE_V2";
        PushReplyMessageToClient = 326, "PUSH_REPLY_MESSAGE_TO_CLIENT";
        AddWritePermOfBroker = 327, "ADD_WRITE_PERM_OF_BROKER";
        QueryTopicsByConsumer = 343, "QUERY_TOPICS_BY_CONSUMER";
        LitePullMessage = 361, "LITE_PULL_MESSAGE";
        BrokerHeartbeat = 904, "BROKER_HEARTBEAT";
        PopMessage = 200050, "POP_MESSAGE";
        AckMessage = 200051, "ACK_MESSAGE";
        ChangeMessageInvisibleTime = 200053, "CHANGE_MESSAGE_INVISIBLETIME";
        Notification = 200054, "NOTIFICATION";
    }
}

wire_codes! {
    /// Response codes (`ResponseCode.java`, `RemotingSysResponseCode.java`): every code of
    /// reference §2.1.
    ResponseCode {
        Success = 0, "SUCCESS";
        SystemError = 1, "SYSTEM_ERROR";
        SystemBusy = 2, "SYSTEM_BUSY";
        RequestCodeNotSupported = 3, "REQUEST_CODE_NOT_SUPPORTED";
        TransactionFailed = 4, "TRANSACTION_FAILED";
        FlushDiskTimeout = 10, "FLUSH_DISK_TIMEOUT";
        SlaveNotAvailable = 11, "SLAVE_NOT_AVAILABLE";
        FlushSlaveTimeout = 12, "FLUSH_SLAVE_TIMEOUT";
        MessageIllegal = 13, "MESSAGE_ILLEGAL";
        ServiceNotAvailable = 14, "SERVICE_NOT_AVAILABLE";
        VersionNotSupported = 15, "VERSION_NOT_SUPPORTED";
        NoPermission = 16, "NO_PERMISSION";
        TopicNotExist = 17, "TOPIC_NOT_EXIST";
        TopicExistAlready = 18, "TOPIC_EXIST_ALREADY";
        PullNotFound = 19, "PULL_NOT_FOUND";
        PullRetryImmediately = 20, "PULL_RETRY_IMMEDIATELY";
        PullOffsetMoved = 21, "PULL_OFFSET_MOVED";
        QueryNotFound = 22, "QUERY_NOT_FOUND";
        SubscriptionParseFailed = 23, "SUBSCRIPTION_PARSE_FAILED";
        SubscriptionNotExist = 24, "SUBSCRIPTION_NOT_EXIST";
        SubscriptionNotLatest = 25, "SUBSCRIPTION_NOT_LATEST";
        SubscriptionGroupNotExist = 26, "SUBSCRIPTION_GROUP_NOT_EXIST";
        FilterDataNotExist = 27, "FILTER_DATA_NOT_EXIST";
        FilterDataNotLatest = 28, "FILTER_DATA_NOT_LATEST";
        InvalidParameter = 29, "INVALID_PARAMETER";
        TransactionShouldCommit = 200, "TRANSACTION_SHOULD_COMMIT";
        TransactionShouldRollback = 201, "TRANSACTION_SHOULD_ROLLBACK";
        TransactionStateUnknow = 202, "TRANSACTION_STATE_UNKNOW";
        TransactionStateGroupWrong = 203, "TRANSACTION_STATE_GROUP_WRONG";
        NoBuyerId = 204, "NO_BUYER_ID";
        NotInCurrentUnit = 205, "NOT_IN_CURRENT_UNIT";
        ConsumerNotOnline = 206, "CONSUMER_NOT_ONLINE";
        ConsumeMsgTimeout = 207, "CONSUME_MSG_TIMEOUT";
        NoMessage = 208, "NO_MESSAGE";
        PollingFull = 209, "POLLING_FULL";
        PollingTimeout = 210, "POLLING_TIMEOUT";
        BrokerNotExist = 211, "BROKER_NOT_EXIST";
        BrokerDispatchNotComplete = 212, "BROKER_DISPATCH_NOT_COMPLETE";
        BroadcastConsumption = 213, "BROADCAST_CONSUMPTION";
        FlowControl = 215, "FLOW_CONTROL";
        NotLeaderForQueue = 501, "NOT_LEADER_FOR_QUEUE";
        IllegalOperation = 604, "ILLEGAL_OPERATION";
        GoAway = 1500, "GO_AWAY";
        RpcUnknown = -1000, "RPC_UNKNOWN";
        RpcAddrIsNull = -1002, "RPC_ADDR_IS_NULL";
        RpcSendToChannelFailed = -1004, "RPC_SEND_TO_CHANNEL_FAILED";
        RpcTimeOut = -1006, "RPC_TIME_OUT";
    }
}

impl ResponseCode {
    /// Whether a send answered with this code stored the message (SUCCESS and the three
    /// "stored, but" codes clients map to a SendStatus, reference §2.3).
    pub const fn is_send_stored(self) -> bool {
        matches!(
            self,
            ResponseCode::Success
                | ResponseCode::FlushDiskTimeout
                | ResponseCode::SlaveNotAvailable
                | ResponseCode::FlushSlaveTimeout
        )
    }
}

impl RequestCode {
    /// Whether this is one of the three send codes (10, 310, 320).
    pub const fn is_send(self) -> bool {
        matches!(
            self,
            RequestCode::SendMessage | RequestCode::SendMessageV2 | RequestCode::SendBatchMessage
        )
    }

    /// Whether this is one of the two pull codes (11, 361), which are handled alike.
    pub const fn is_pull(self) -> bool {
        matches!(
            self,
            RequestCode::PullMessage | RequestCode::LitePullMessage
        )
    }
}
