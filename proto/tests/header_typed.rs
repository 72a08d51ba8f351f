//! Every typed header of reference §2 against its wire field names, written out by hand: a
//! header writes exactly these ext fields and reads back from them.

use std::fmt::Debug;

use ringmq_proto::command::ExtFields;
use ringmq_proto::error::HeaderError;
use ringmq_proto::header::*;

/// `header` writes exactly `wire`, and `wire` reads back as `header`.
fn check<H: CommandHeader + PartialEq + Debug>(header: H, wire: &[(&str, &str)]) {
    let expected: ExtFields = wire.iter().copied().collect();
    let mut written = ExtFields::new();
    header.write_to(&mut written);
    assert_eq!(written, expected, "{header:?} writes");
    assert_eq!(H::read_from(&expected).unwrap(), header, "reads back");
}

fn ext(pairs: &[(&str, &str)]) -> ExtFields {
    pairs.iter().copied().collect()
}

#[test]
fn pull_request_and_response() {
    check(
        PullMessageRequestHeader {
            consumer_group: "cg".into(),
            topic: "T".into(),
            queue_id: 1,
            queue_offset: 100,
            max_msg_nums: 32,
            sys_flag: PULL_FLAG_SUSPEND | PULL_FLAG_COMMIT_OFFSET,
            commit_offset: 90,
            suspend_timeout_millis: 15000,
            subscription: Some("TagA || TagB".into()),
            sub_version: 1_700_000_000_000,
            expression_type: Some("TAG".into()),
            max_msg_bytes: Some(262144),
        },
        &[
            ("consumerGroup", "cg"),
            ("topic", "T"),
            ("queueId", "1"),
            ("queueOffset", "100"),
            ("maxMsgNums", "32"),
            ("sysFlag", "3"),
            ("commitOffset", "90"),
            ("suspendTimeoutMillis", "15000"),
            ("subscription", "TagA || TagB"),
            ("subVersion", "1700000000000"),
            ("expressionType", "TAG"),
            ("maxMsgBytes", "262144"),
        ],
    );
    check(
        PullMessageResponseHeader::new(120, 0, 130),
        &[
            ("suggestWhichBrokerId", "0"),
            ("nextBeginOffset", "120"),
            ("minOffset", "0"),
            ("maxOffset", "130"),
        ],
    );
}

#[test]
fn a_go_pull_without_optional_fields_reads_with_defaults() {
    let header = PullMessageRequestHeader::read_from(&ext(&[
        ("consumerGroup", "cg"),
        ("topic", "T"),
        ("queueId", "0"),
        ("queueOffset", "0"),
        ("maxMsgNums", "32"),
        ("sysFlag", "2"),
    ]))
    .unwrap();
    assert_eq!(
        (
            header.commit_offset,
            header.suspend_timeout_millis,
            header.sub_version
        ),
        (0, 0, 0)
    );
    assert!(header.has_flag(PULL_FLAG_SUSPEND));
    assert!(!header.has_flag(PULL_FLAG_SUBSCRIPTION));
}

#[test]
fn every_pull_outcome_needs_all_four_offsets() {
    for missing in [
        "suggestWhichBrokerId",
        "nextBeginOffset",
        "minOffset",
        "maxOffset",
    ] {
        let mut wire = ExtFields::new();
        PullMessageResponseHeader::new(1, 0, 2).write_to(&mut wire);
        wire.remove(missing);
        assert_eq!(
            PullMessageResponseHeader::read_from(&wire),
            Err(HeaderError::Missing { field: missing })
        );
    }
}

#[test]
fn consumer_offset_headers() {
    check(
        QueryConsumerOffsetRequestHeader {
            consumer_group: "cg".into(),
            topic: "T".into(),
            queue_id: 2,
            set_zero_if_not_found: Some(false),
        },
        &[
            ("consumerGroup", "cg"),
            ("topic", "T"),
            ("queueId", "2"),
            ("setZeroIfNotFound", "false"),
        ],
    );
    check(
        QueryConsumerOffsetResponseHeader { offset: 42 },
        &[("offset", "42")],
    );
    check(
        UpdateConsumerOffsetRequestHeader {
            consumer_group: "cg".into(),
            topic: "T".into(),
            queue_id: 2,
            commit_offset: 77,
        },
        &[
            ("consumerGroup", "cg"),
            ("topic", "T"),
            ("queueId", "2"),
            ("commitOffset", "77"),
        ],
    );
}

#[test]
fn queue_offset_headers() {
    check(
        GetMaxOffsetRequestHeader {
            topic: "T".into(),
            queue_id: 0,
            committed: true,
        },
        &[("topic", "T"), ("queueId", "0"), ("committed", "true")],
    );
    let defaulted =
        GetMaxOffsetRequestHeader::read_from(&ext(&[("topic", "T"), ("queueId", "0")])).unwrap();
    assert!(defaulted.committed, "Java's default for committed is true");
    check(GetMaxOffsetResponseHeader { offset: 9 }, &[("offset", "9")]);
    check(
        GetMinOffsetRequestHeader {
            topic: "T".into(),
            queue_id: 5,
        },
        &[("topic", "T"), ("queueId", "5")],
    );
    check(GetMinOffsetResponseHeader { offset: 3 }, &[("offset", "3")]);
    check(
        SearchOffsetRequestHeader {
            topic: "T".into(),
            queue_id: 1,
            timestamp: 1_700_000_000_000,
            boundary_type: BoundaryType::Upper,
        },
        &[
            ("topic", "T"),
            ("queueId", "1"),
            ("timestamp", "1700000000000"),
            ("boundaryType", "UPPER"),
        ],
    );
    check(SearchOffsetResponseHeader { offset: 8 }, &[("offset", "8")]);
    check(
        GetEarliestMsgStoretimeRequestHeader {
            topic: "T".into(),
            queue_id: 1,
        },
        &[("topic", "T"), ("queueId", "1")],
    );
    check(
        GetEarliestMsgStoretimeResponseHeader { timestamp: 5 },
        &[("timestamp", "5")],
    );
}

#[test]
fn search_boundary_type_is_matched_case_insensitively_and_defaults_to_lower() {
    let read = |wire: &[(&str, &str)]| {
        SearchOffsetRequestHeader::read_from(&ext(wire))
            .unwrap()
            .boundary_type
    };
    let base = [("topic", "T"), ("queueId", "1"), ("timestamp", "1")];
    assert_eq!(read(&base), BoundaryType::Lower);
    assert_eq!(
        read(&[base[0], base[1], base[2], ("boundaryType", "upper")]),
        BoundaryType::Upper
    );
    assert_eq!(
        read(&[base[0], base[1], base[2], ("boundaryType", "LOWER")]),
        BoundaryType::Lower
    );
    assert_eq!(
        read(&[base[0], base[1], base[2], ("boundaryType", "sideways")]),
        BoundaryType::Lower
    );
}

#[test]
fn client_headers() {
    check(
        UnregisterClientRequestHeader {
            client_id: "10.0.0.5@12345#1".into(),
            producer_group: Some("pg".into()),
            consumer_group: None,
        },
        &[("clientID", "10.0.0.5@12345#1"), ("producerGroup", "pg")],
    );
    check(
        GetConsumerListByGroupRequestHeader {
            consumer_group: "cg".into(),
        },
        &[("consumerGroup", "cg")],
    );
    check(
        NotifyConsumerIdsChangedRequestHeader {
            consumer_group: "cg".into(),
        },
        &[("consumerGroup", "cg")],
    );
    check(
        HeartbeatResponseHeader {
            is_support_heart_beat_v2: Some(false),
            is_sub_change: Some(false),
        },
        &[
            ("IS_SUPPORT_HEART_BEAT_V2", "false"),
            ("IS_SUB_CHANGE", "false"),
        ],
    );
    check(EmptyHeader, &[]);
    let _: LockBatchMqRequestHeader = EmptyHeader;
    let _: UnlockBatchMqRequestHeader = EmptyHeader;
    check(
        ConsumerSendMsgBackRequestHeader {
            offset: 4096,
            group: "cg".into(),
            delay_level: 0,
            origin_msg_id: Some("C0A8".into()),
            origin_topic: Some("T".into()),
            unit_mode: false,
            max_reconsume_times: Some(16),
            broker_name: None,
        },
        &[
            ("offset", "4096"),
            ("group", "cg"),
            ("delayLevel", "0"),
            ("originMsgId", "C0A8"),
            ("originTopic", "T"),
            ("unitMode", "false"),
            ("maxReconsumeTimes", "16"),
        ],
    );
}

#[test]
fn transaction_headers() {
    let end = EndTransactionRequestHeader {
        topic: None,
        producer_group: "pg".into(),
        tran_state_table_offset: 12,
        commit_log_offset: 4096,
        commit_or_rollback: TRANSACTION_COMMIT_TYPE,
        from_transaction_check: false,
        msg_id: "UNIQ".into(),
        transaction_id: Some("UNIQ".into()),
        broker_name: None,
    };
    assert_eq!(end.resolution(), TransactionResolution::Commit);
    check(
        end,
        &[
            ("producerGroup", "pg"),
            ("tranStateTableOffset", "12"),
            ("commitLogOffset", "4096"),
            ("commitOrRollback", "8"),
            ("fromTransactionCheck", "false"),
            ("msgId", "UNIQ"),
            ("transactionId", "UNIQ"),
        ],
    );
    let mut rollback = ext(&[
        ("producerGroup", "pg"),
        ("tranStateTableOffset", "12"),
        ("commitLogOffset", "4096"),
        ("commitOrRollback", "12"),
        ("msgId", "UNIQ"),
    ]);
    let header = EndTransactionRequestHeader::read_from(&rollback).unwrap();
    assert_eq!(header.resolution(), TransactionResolution::Rollback);
    assert!(!header.from_transaction_check);
    rollback.insert("commitOrRollback", "0");
    assert_eq!(
        EndTransactionRequestHeader::read_from(&rollback)
            .unwrap()
            .resolution(),
        TransactionResolution::Unknown(0)
    );
    check(
        CheckTransactionStateRequestHeader {
            topic: Some("T".into()),
            tran_state_table_offset: 13,
            commit_log_offset: 8192,
            msg_id: Some("UNIQ".into()),
            transaction_id: Some("UNIQ".into()),
            offset_msg_id: Some("7F00000100002A9F0000000000002000".into()),
            broker_name: Some("broker-a".into()),
        },
        &[
            ("topic", "T"),
            ("tranStateTableOffset", "13"),
            ("commitLogOffset", "8192"),
            ("msgId", "UNIQ"),
            ("transactionId", "UNIQ"),
            ("offsetMsgId", "7F00000100002A9F0000000000002000"),
            ("bname", "broker-a"),
        ],
    );
}

#[test]
fn query_headers() {
    check(
        QueryMessageRequestHeader {
            topic: "T".into(),
            key: "order-1".into(),
            max_num: 32,
            begin_timestamp: 0,
            end_timestamp: 1_700_000_000_000,
            unique_key_query: true,
        },
        &[
            ("topic", "T"),
            ("key", "order-1"),
            ("maxNum", "32"),
            ("beginTimestamp", "0"),
            ("endTimestamp", "1700000000000"),
            ("_UNIQUE_KEY_QUERY", "true"),
        ],
    );
    let without_flag = QueryMessageRequestHeader::read_from(&ext(&[
        ("topic", "T"),
        ("key", "k"),
        ("maxNum", "1"),
        ("beginTimestamp", "0"),
        ("endTimestamp", "1"),
    ]))
    .unwrap();
    assert!(!without_flag.unique_key_query);
    check(
        QueryMessageResponseHeader {
            index_last_update_timestamp: 5,
            index_last_update_phyoffset: 6,
        },
        &[
            ("indexLastUpdateTimestamp", "5"),
            ("indexLastUpdatePhyoffset", "6"),
        ],
    );
    check(
        ViewMessageRequestHeader {
            offset: 4096,
            topic: None,
        },
        &[("offset", "4096")],
    );
}

#[test]
fn name_server_route_and_register_headers() {
    check(
        GetRouteInfoRequestHeader {
            topic: "T".into(),
            accept_standard_json_only: None,
        },
        &[("topic", "T")],
    );
    check(
        RegisterBrokerRequestHeader {
            broker_name: "broker-a".into(),
            broker_addr: "127.0.0.1:10911".into(),
            cluster_name: "DefaultCluster".into(),
            ha_server_addr: "127.0.0.1:10912".into(),
            broker_id: 0,
            heartbeat_timeout_millis: Some(120000),
            enable_acting_master: Some(false),
            compressed: false,
            body_crc32: 12345,
        },
        &[
            ("brokerName", "broker-a"),
            ("brokerAddr", "127.0.0.1:10911"),
            ("clusterName", "DefaultCluster"),
            ("haServerAddr", "127.0.0.1:10912"),
            ("brokerId", "0"),
            ("heartbeatTimeoutMillis", "120000"),
            ("enableActingMaster", "false"),
            ("compressed", "false"),
            ("bodyCrc32", "12345"),
        ],
    );
    check(
        RegisterBrokerResponseHeader {
            ha_server_addr: Some("".into()),
            master_addr: Some("127.0.0.1:10911".into()),
        },
        &[("haServerAddr", ""), ("masterAddr", "127.0.0.1:10911")],
    );
}

#[test]
fn name_server_unregister_wipe_and_delete_headers() {
    check(
        UnregisterBrokerRequestHeader {
            broker_name: "broker-a".into(),
            broker_addr: "127.0.0.1:10911".into(),
            cluster_name: "DefaultCluster".into(),
            broker_id: 0,
        },
        &[
            ("brokerName", "broker-a"),
            ("brokerAddr", "127.0.0.1:10911"),
            ("clusterName", "DefaultCluster"),
            ("brokerId", "0"),
        ],
    );
    check(
        WipeWritePermOfBrokerRequestHeader {
            broker_name: "broker-a".into(),
        },
        &[("brokerName", "broker-a")],
    );
    check(
        WipeWritePermOfBrokerResponseHeader {
            wipe_topic_count: 3,
        },
        &[("wipeTopicCount", "3")],
    );
    check(
        DeleteTopicFromNamesrvRequestHeader {
            topic: "T".into(),
            cluster_name: Some("DefaultCluster".into()),
        },
        &[("topic", "T"), ("clusterName", "DefaultCluster")],
    );
    check(
        QueryDataVersionResponseHeader { changed: true },
        &[("changed", "true")],
    );
}

#[test]
fn broker_liveness_and_permission_headers() {
    check(
        QueryDataVersionRequestHeader {
            broker_name: "broker-a".into(),
            broker_addr: "127.0.0.1:10911".into(),
            cluster_name: "DefaultCluster".into(),
            broker_id: 0,
        },
        &[
            ("brokerName", "broker-a"),
            ("brokerAddr", "127.0.0.1:10911"),
            ("clusterName", "DefaultCluster"),
            ("brokerId", "0"),
        ],
    );
    check(
        BrokerHeartbeatRequestHeader {
            cluster_name: "DefaultCluster".into(),
            broker_addr: "127.0.0.1:10911".into(),
            broker_name: "broker-a".into(),
            broker_id: Some(0),
            epoch: None,
            max_offset: Some(4096),
            confirm_offset: None,
            heartbeat_timeout_mills: Some(120000),
            election_priority: None,
        },
        &[
            ("clusterName", "DefaultCluster"),
            ("brokerAddr", "127.0.0.1:10911"),
            ("brokerName", "broker-a"),
            ("brokerId", "0"),
            ("maxOffset", "4096"),
            ("heartbeatTimeoutMills", "120000"),
        ],
    );
    check(
        AddWritePermOfBrokerRequestHeader {
            broker_name: "broker-a".into(),
        },
        &[("brokerName", "broker-a")],
    );
    check(
        AddWritePermOfBrokerResponseHeader { add_topic_count: 2 },
        &[("addTopicCount", "2")],
    );
}

#[test]
fn broker_to_client_request_headers() {
    check(
        ResetOffsetRequestHeader {
            topic: "T".into(),
            group: "cg".into(),
            timestamp: 1_700_000_000_000,
            is_force: true,
            queue_id: None,
            offset: None,
        },
        &[
            ("topic", "T"),
            ("group", "cg"),
            ("timestamp", "1700000000000"),
            ("isForce", "true"),
        ],
    );
    check(
        GetConsumerStatusRequestHeader {
            topic: "T".into(),
            group: "cg".into(),
            client_addr: None,
        },
        &[("topic", "T"), ("group", "cg")],
    );
    check(
        GetConsumerRunningInfoRequestHeader {
            consumer_group: "cg".into(),
            client_id: "10.0.0.5@1".into(),
            jstack_enable: Some(false),
        },
        &[
            ("consumerGroup", "cg"),
            ("clientId", "10.0.0.5@1"),
            ("jstackEnable", "false"),
        ],
    );
    check(
        ConsumeMessageDirectlyResultRequestHeader {
            consumer_group: "cg".into(),
            client_id: Some("10.0.0.5@1".into()),
            msg_id: Some("7F00000100002A9F0000000000000000".into()),
            broker_name: Some("broker-a".into()),
            topic: None,
        },
        &[
            ("consumerGroup", "cg"),
            ("clientId", "10.0.0.5@1"),
            ("msgId", "7F00000100002A9F0000000000000000"),
            ("brokerName", "broker-a"),
        ],
    );
}

#[test]
fn kv_config_headers() {
    check(
        PutKvConfigRequestHeader {
            namespace: "ORDER_TOPIC_CONFIG".into(),
            key: "T".into(),
            value: "broker-a:4".into(),
        },
        &[
            ("namespace", "ORDER_TOPIC_CONFIG"),
            ("key", "T"),
            ("value", "broker-a:4"),
        ],
    );
    check(
        GetKvConfigRequestHeader {
            namespace: "ns".into(),
            key: "k".into(),
        },
        &[("namespace", "ns"), ("key", "k")],
    );
    check(
        GetKvConfigResponseHeader {
            value: Some("v".into()),
        },
        &[("value", "v")],
    );
    check(GetKvConfigResponseHeader { value: None }, &[]);
    check(
        DeleteKvConfigRequestHeader {
            namespace: "ns".into(),
            key: "k".into(),
        },
        &[("namespace", "ns"), ("key", "k")],
    );
    check(
        GetKvListByNamespaceRequestHeader {
            namespace: "ns".into(),
        },
        &[("namespace", "ns")],
    );
}

#[test]
fn topic_admin_headers() {
    check(
        CreateTopicRequestHeader {
            topic: "T".into(),
            default_topic: "TBW102".into(),
            read_queue_nums: 8,
            write_queue_nums: 8,
            perm: 6,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: Some(0),
            order: false,
            attributes: None,
            force: None,
        },
        &[
            ("topic", "T"),
            ("defaultTopic", "TBW102"),
            ("readQueueNums", "8"),
            ("writeQueueNums", "8"),
            ("perm", "6"),
            ("topicFilterType", "SINGLE_TAG"),
            ("topicSysFlag", "0"),
            ("order", "false"),
        ],
    );
    check(
        GetAllTopicConfigRequestHeader {
            topic_seq: None,
            data_version: None,
            max_topic_num: None,
        },
        &[],
    );
    check(
        GetAllTopicConfigResponseHeader {
            total_topic_num: Some(2),
        },
        &[("totalTopicNum", "2")],
    );
    check(
        DeleteTopicRequestHeader { topic: "T".into() },
        &[("topic", "T")],
    );
}

#[test]
fn numbers_accept_what_real_clients_send() {
    let read =
        |value: &str| QueryConsumerOffsetResponseHeader::read_from(&ext(&[("offset", value)]));
    assert_eq!(read("42").unwrap().offset, 42);
    assert_eq!(read("-1").unwrap().offset, -1);
    assert_eq!(read("+7").unwrap().offset, 7);
    assert_eq!(read(" 8 ").unwrap().offset, 8);
    assert_eq!(
        read("9.0").unwrap().offset,
        9,
        "an integral double from a JSON number"
    );
    assert_eq!(read("9223372036854775807").unwrap().offset, i64::MAX);
    for bad in ["", "x", "1.5", "9223372036854775808", "0x10", ".0"] {
        assert_eq!(
            read(bad),
            Err(HeaderError::Invalid {
                field: "offset",
                value: bad.to_string()
            }),
            "{bad:?}"
        );
    }
    // An int field refuses a long.
    let queue = QueryConsumerOffsetRequestHeader::read_from(&ext(&[
        ("consumerGroup", "cg"),
        ("topic", "T"),
        ("queueId", "2147483648"),
    ]));
    assert!(matches!(
        queue,
        Err(HeaderError::Invalid {
            field: "queueId",
            ..
        })
    ));
}

#[test]
fn booleans_follow_java_parse_boolean_and_also_read_one_as_true() {
    let read = |value: &str| {
        GetMaxOffsetRequestHeader::read_from(&ext(&[
            ("topic", "T"),
            ("queueId", "0"),
            ("committed", value),
        ]))
        .unwrap()
        .committed
    };
    assert!(read("true"));
    assert!(read("TRUE"));
    assert!(!read("false"));
    assert!(!read("0"));
    // Beyond Java (whose Boolean.parseBoolean("1") is false): the rocketmq-client-cpp engine
    // writes header booleans as 1/0 (apache/rocketmq-client-cpp#363).
    assert!(read("1"));
    assert!(read(" 1 "));
    assert!(!read("yes"), "anything else stays false, as in Java");
    assert!(!read(""));
}

#[test]
fn missing_required_fields_are_named() {
    assert_eq!(
        UpdateConsumerOffsetRequestHeader::read_from(&ext(&[
            ("consumerGroup", "cg"),
            ("topic", "T"),
            ("queueId", "1")
        ])),
        Err(HeaderError::Missing {
            field: "commitOffset"
        })
    );
    assert_eq!(
        GetRouteInfoRequestHeader::read_from(&ExtFields::new()),
        Err(HeaderError::Missing { field: "topic" })
    );
    assert_eq!(
        HeaderError::Missing { field: "topic" }.to_string(),
        "the header field topic is missing"
    );
}

#[test]
fn set_header_and_decode_header_on_a_command() {
    use bytes::Bytes;
    use ringmq_proto::command::RemotingCommand;
    let mut command = RemotingCommand::new_request(105, ExtFields::new(), Bytes::new());
    command.set_header(&GetRouteInfoRequestHeader {
        topic: "T".into(),
        accept_standard_json_only: None,
    });
    let header: GetRouteInfoRequestHeader = command.decode_header().unwrap();
    assert_eq!(header.topic, "T");
}
