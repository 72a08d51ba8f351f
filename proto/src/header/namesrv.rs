//! Name server headers (reference §2.11): routes, broker registration, write-permission
//! wipe, topic deletion, KV config.

use super::command_header;

command_header! {
    /// GET_ROUTEINFO_BY_TOPIC (105) request.
    pub struct GetRouteInfoRequestHeader {
        topic: String = "topic",
        accept_standard_json_only: Option<bool> = "acceptStandardJsonOnly",
    }
}

command_header! {
    /// REGISTER_BROKER (103) request.
    pub struct RegisterBrokerRequestHeader {
        broker_name: String = "brokerName",
        /// `ip:port` for clients.
        broker_addr: String = "brokerAddr",
        cluster_name: String = "clusterName",
        ha_server_addr: String = "haServerAddr",
        /// 0 = master.
        broker_id: i64 = "brokerId",
        heartbeat_timeout_millis: Option<i64> = "heartbeatTimeoutMillis",
        enable_acting_master: Option<bool> = "enableActingMaster",
        /// The body is the zlib form (reference §2.11).
        compressed: bool = "compressed" or false,
        /// CRC32 & 0x7FFFFFFF of the body; 0 = unchecked.
        body_crc32: i32 = "bodyCrc32" or 0,
    }
}

command_header! {
    /// REGISTER_BROKER (103) response.
    pub struct RegisterBrokerResponseHeader {
        ha_server_addr: Option<String> = "haServerAddr",
        master_addr: Option<String> = "masterAddr",
    }
}

command_header! {
    /// UNREGISTER_BROKER (104) request.
    pub struct UnregisterBrokerRequestHeader {
        broker_name: String = "brokerName",
        broker_addr: String = "brokerAddr",
        cluster_name: String = "clusterName",
        broker_id: i64 = "brokerId",
    }
}

command_header! {
    /// QUERY_DATA_VERSION (322) request; the body is the broker's DataVersion.
    pub struct QueryDataVersionRequestHeader {
        broker_name: String = "brokerName",
        broker_addr: String = "brokerAddr",
        cluster_name: String = "clusterName",
        broker_id: i64 = "brokerId",
    }
}

command_header! {
    /// BROKER_HEARTBEAT (904) request: the 5.x lightweight broker liveness call.
    pub struct BrokerHeartbeatRequestHeader {
        cluster_name: String = "clusterName",
        broker_addr: String = "brokerAddr",
        broker_name: String = "brokerName",
        broker_id: Option<i64> = "brokerId",
        epoch: Option<i32> = "epoch",
        max_offset: Option<i64> = "maxOffset",
        confirm_offset: Option<i64> = "confirmOffset",
        heartbeat_timeout_mills: Option<i64> = "heartbeatTimeoutMills",
        election_priority: Option<i32> = "electionPriority",
    }
}

command_header! {
    /// QUERY_DATA_VERSION (322) response.
    pub struct QueryDataVersionResponseHeader {
        changed: bool = "changed",
    }
}

command_header! {
    /// WIPE_WRITE_PERM_OF_BROKER (205) request.
    pub struct WipeWritePermOfBrokerRequestHeader {
        broker_name: String = "brokerName",
    }
}

command_header! {
    /// WIPE_WRITE_PERM_OF_BROKER (205) response.
    pub struct WipeWritePermOfBrokerResponseHeader {
        wipe_topic_count: i32 = "wipeTopicCount",
    }
}

command_header! {
    /// ADD_WRITE_PERM_OF_BROKER (327) request: undo a wipe.
    pub struct AddWritePermOfBrokerRequestHeader {
        broker_name: String = "brokerName",
    }
}

command_header! {
    /// ADD_WRITE_PERM_OF_BROKER (327) response.
    pub struct AddWritePermOfBrokerResponseHeader {
        add_topic_count: i32 = "addTopicCount",
    }
}

command_header! {
    /// DELETE_TOPIC_IN_NAMESRV (216) request.
    pub struct DeleteTopicFromNamesrvRequestHeader {
        topic: String = "topic",
        cluster_name: Option<String> = "clusterName",
    }
}

command_header! {
    /// PUT_KV_CONFIG (100) request.
    pub struct PutKvConfigRequestHeader {
        namespace: String = "namespace",
        key: String = "key",
        value: String = "value",
    }
}

command_header! {
    /// GET_KV_CONFIG (101) request.
    pub struct GetKvConfigRequestHeader {
        namespace: String = "namespace",
        key: String = "key",
    }
}

command_header! {
    /// GET_KV_CONFIG (101) response; absent with QUERY_NOT_FOUND.
    pub struct GetKvConfigResponseHeader {
        value: Option<String> = "value",
    }
}

command_header! {
    /// DELETE_KV_CONFIG (102) request.
    pub struct DeleteKvConfigRequestHeader {
        namespace: String = "namespace",
        key: String = "key",
    }
}

command_header! {
    /// GET_KVLIST_BY_NAMESPACE (219) request.
    pub struct GetKvListByNamespaceRequestHeader {
        namespace: String = "namespace",
    }
}
