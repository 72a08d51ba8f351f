//! Broker-wide state over the wire: client registrations and notifications, consumer offsets
//! across shards and restarts, topic administration, name-server registration. Real
//! `ringmq-broker` (two shards) and `ringmq-namesrv` processes on 127.0.0.1.

mod common;

use common::msg::{create_topic, pull_request, send_v2};
use common::*;
use ringmq_proto::body::{ConsumerListBody, JsonBody, TopicConfigSerializeWrapper, TopicRouteData};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{RemotingCommand, SERVER_VERSION};

fn heartbeat_body(client_id: &str, group: &str, topic: &str) -> Vec<u8> {
    format!(
        r#"{{"clientID":"{client_id}","consumerDataSet":[{{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"{group}","messageModel":"CLUSTERING","subscriptionDataSet":[{{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1700000000000,"tagsSet":[],"topic":"{topic}"}}],"unitMode":false}}],"heartbeatFingerprint":0,"producerDataSet":[{{"groupName":"CLIENT_INNER_PRODUCER"}}],"withoutSub":false}}"#
    )
    .into_bytes()
}

fn consumer_ids(client: &mut Client, group: &str) -> Result<Vec<String>, String> {
    let response = client.call_code(
        RequestCode::GetConsumerListByGroup.code(),
        &[("consumerGroup", group)],
        b"",
    );
    if response.code != ResponseCode::Success.code() {
        return Err(response.remark.unwrap_or_default());
    }
    Ok(ConsumerListBody::from_json(&response.body)
        .unwrap()
        .consumer_id_list)
}

#[test]
fn heartbeat_registers_consumers_and_notifies_group_members() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut first = broker.connect();
    let response = first.call_code(
        RequestCode::HeartBeat.code(),
        &[],
        &heartbeat_body("10.0.0.1@a", "cg", "T1"),
    );
    assert_eq!(response.code, ResponseCode::Success.code());
    assert!(
        response.version >= 232,
        "heartbeat response version {}",
        response.version
    );
    assert_eq!(response.version, SERVER_VERSION);
    assert_eq!(
        response.ext_fields.get("IS_SUPPORT_HEART_BEAT_V2"),
        Some("false")
    );
    // Joining notifies every member, the new one included (as Java does).
    first.wait_server_request(RequestCode::NotifyConsumerIdsChanged.code());
    assert_eq!(
        consumer_ids(&mut first, "cg").unwrap(),
        vec!["10.0.0.1@a".to_string()]
    );

    // A second client joins: the first is told (oneway, no answer expected).
    let mut second = broker.connect();
    second.call_code(
        RequestCode::HeartBeat.code(),
        &[],
        &heartbeat_body("10.0.0.2@b", "cg", "T1"),
    );
    let notify = first.wait_server_request(RequestCode::NotifyConsumerIdsChanged.code());
    assert!(notify.is_oneway());
    assert_eq!(notify.ext_fields.get("consumerGroup"), Some("cg"));
    assert_eq!(
        consumer_ids(&mut first, "cg").unwrap(),
        vec!["10.0.0.1@a".to_string(), "10.0.0.2@b".to_string()]
    );

    // The second connection closes: its registration goes and the first is told again.
    second.close();
    first.wait_server_request(RequestCode::NotifyConsumerIdsChanged.code());
    assert_eq!(
        consumer_ids(&mut first, "cg").unwrap(),
        vec!["10.0.0.1@a".to_string()]
    );

    // UNREGISTER_CLIENT empties the group.
    let response = first.call_code(
        RequestCode::UnregisterClient.code(),
        &[("clientID", "10.0.0.1@a"), ("consumerGroup", "cg")],
        b"",
    );
    assert_eq!(response.code, ResponseCode::Success.code());
    assert_eq!(
        consumer_ids(&mut first, "cg"),
        Err("no consumer for this group, cg".to_string())
    );
}

#[test]
fn lenient_heartbeats_and_bad_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    // ali-ons style: no expressionType, numbers where Java has strings elsewhere, extra keys.
    let ali = br#"{"clientID":"1.2.3.4@ali","producerDataSet":[],"consumerDataSet":[{"groupName":"ali-g","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","unitMode":false,"subscriptionDataSet":[{"topic":"T","subString":"*","classFilterMode":false,"tagsSet":[],"codeSet":[],"subVersion":1}],"extra":1}]}"#;
    let response = client.call_code(RequestCode::HeartBeat.code(), &[], ali);
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    assert_eq!(
        consumer_ids(&mut client, "ali-g").unwrap(),
        vec!["1.2.3.4@ali".to_string()]
    );
    // A body that is not a heartbeat: SYSTEM_ERROR, connection stays.
    let response = client.call_code(RequestCode::HeartBeat.code(), &[], b"{not json");
    assert_eq!(response.code, ResponseCode::SystemError.code());
    assert!(response.remark.unwrap().contains("heartbeat"));
    assert_eq!(consumer_ids(&mut client, "ali-g").unwrap().len(), 1);
    // Missing required header fields name the field.
    let response = client.call_code(RequestCode::GetConsumerListByGroup.code(), &[], b"");
    assert_eq!(response.code, ResponseCode::SystemError.code());
    assert!(response.remark.unwrap().contains("consumerGroup"));
}

#[test]
fn consumer_offsets_on_every_shard_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut broker = start_broker(&store, &[]);
    let mut client = broker.connect();
    // The topic is created by admin request; 8 queues spread over both shards.
    let response = client.call_code(
        RequestCode::UpdateAndCreateTopic.code(),
        &[
            ("topic", "OffT"),
            ("readQueueNums", "8"),
            ("writeQueueNums", "8"),
            ("perm", "6"),
        ],
        b"",
    );
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    commit_first_offsets_of_group_og(&mut client);
    check_bad_offset_updates_are_refused(&mut client);

    // Restart on the same port, as an operator would: the closed connections' TIME_WAIT
    // entries must not keep it from binding.
    let port = broker.port;
    assert!(broker.process.terminate().success());
    let broker = start_broker_on(&store, port, &[]);
    let mut client = broker.connect();
    for queue in 0..8 {
        let q = queue.to_string();
        let response = client.call_code(
            RequestCode::QueryConsumerOffset.code(),
            &[("consumerGroup", "og"), ("topic", "OffT"), ("queueId", &q)],
            b"",
        );
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(
            response.ext_fields.get("offset"),
            Some((100 + queue).to_string().as_str())
        );
    }
}

/// Group `og` has no offset yet on any of `OffT`'s 8 queues; commits `100 + queue` on each.
fn commit_first_offsets_of_group_og(client: &mut Client) {
    for queue in 0..8 {
        let q = queue.to_string();
        let response = client.call_code(
            RequestCode::QueryConsumerOffset.code(),
            &[
                ("consumerGroup", "og"),
                ("topic", "OffT"),
                ("queueId", &q),
                ("setZeroIfNotFound", "false"),
            ],
            b"",
        );
        assert_eq!(response.code, ResponseCode::QueryNotFound.code());
        let offset = (100 + queue).to_string();
        let response = client.call_code(
            RequestCode::UpdateConsumerOffset.code(),
            &[
                ("consumerGroup", "og"),
                ("topic", "OffT"),
                ("queueId", &q),
                ("commitOffset", &offset),
            ],
            b"",
        );
        assert_eq!(response.code, ResponseCode::Success.code());
    }
}

/// Bad updates: unknown topic, queue out of range (`OffT` has 8 queues).
fn check_bad_offset_updates_are_refused(client: &mut Client) {
    let response = client.call_code(
        RequestCode::UpdateConsumerOffset.code(),
        &[
            ("consumerGroup", "og"),
            ("topic", "NoSuchTopic"),
            ("queueId", "0"),
            ("commitOffset", "1"),
        ],
        b"",
    );
    assert_eq!(response.code, ResponseCode::TopicNotExist.code());
    let response = client.call_code(
        RequestCode::UpdateConsumerOffset.code(),
        &[
            ("consumerGroup", "og"),
            ("topic", "OffT"),
            ("queueId", "8"),
            ("commitOffset", "1"),
        ],
        b"",
    );
    assert_eq!(response.code, ResponseCode::InvalidParameter.code());
}

fn all_topics(client: &mut Client) -> TopicConfigSerializeWrapper {
    let response = client.call_code(RequestCode::GetAllTopicConfig.code(), &[], b"");
    assert_eq!(response.code, ResponseCode::Success.code());
    TopicConfigSerializeWrapper::from_json(&response.body).unwrap()
}

#[test]
fn topic_administration() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut broker = start_broker(&store, &[]);
    let mut client = broker.connect();
    let topics = all_topics(&mut client);
    assert_eq!(topics.topic_config_table["TBW102"].perm, 7);
    assert_eq!(topics.topic_config_table["TBW102"].write_queue_nums, 8);

    assert_eq!(
        update_and_create_topic(&mut client, "AdminT", "3", "6").code,
        ResponseCode::Success.code()
    );
    check_bad_topic_creations_are_refused(&mut client);

    let topics = all_topics(&mut client);
    assert_eq!(topics.topic_config_table["AdminT"].read_queue_nums, 3);
    assert!(!topics.topic_config_table.contains_key("ZeroQ"));

    // Heartbeats create %RETRY%<group>.
    client.call_code(
        RequestCode::HeartBeat.code(),
        &[],
        &heartbeat_body("c@1", "rg", "AdminT"),
    );
    assert_eq!(
        all_topics(&mut client).topic_config_table["%RETRY%rg"].write_queue_nums,
        1
    );

    // Delete, and survive restart.
    update_and_create_topic(&mut client, "Doomed", "1", "6");
    let response = client.call_code(
        RequestCode::DeleteTopicInBroker.code(),
        &[("topic", "Doomed")],
        b"",
    );
    assert_eq!(response.code, ResponseCode::Success.code());
    assert!(broker.process.terminate().success());
    let broker = start_broker(&store, &[]);
    let mut client = broker.connect();
    let topics = all_topics(&mut client);
    assert_eq!(topics.topic_config_table["AdminT"].read_queue_nums, 3);
    assert!(topics.topic_config_table.contains_key("%RETRY%rg"));
    assert!(!topics.topic_config_table.contains_key("Doomed"));
}

/// UPDATE_AND_CREATE_TOPIC with as many read as write queues.
fn update_and_create_topic(
    client: &mut Client,
    topic: &str,
    queues: &str,
    perm: &str,
) -> RemotingCommand {
    client.call_code(
        RequestCode::UpdateAndCreateTopic.code(),
        &[
            ("topic", topic),
            ("readQueueNums", queues),
            ("writeQueueNums", queues),
            ("perm", perm),
        ],
        b"",
    )
}

/// Bad names (illegal character, too long, system topic), zero queues, a bad permission and
/// missing queue counts are all refused.
fn check_bad_topic_creations_are_refused(client: &mut Client) {
    let response = update_and_create_topic(client, "bad topic!", "3", "6");
    assert_eq!(response.code, ResponseCode::InvalidParameter.code());
    assert!(response.remark.unwrap().contains("illegal character"));
    let response = update_and_create_topic(client, &"x".repeat(128), "3", "6");
    assert_eq!(response.code, ResponseCode::InvalidParameter.code());
    assert_eq!(
        update_and_create_topic(client, "SCHEDULE_TOPIC_XXXX", "3", "6").code,
        ResponseCode::InvalidParameter.code()
    );
    assert_eq!(
        update_and_create_topic(client, "ZeroQ", "0", "6").code,
        ResponseCode::InvalidParameter.code()
    );
    assert_eq!(
        update_and_create_topic(client, "BadPerm", "1", "99").code,
        ResponseCode::InvalidParameter.code()
    );
    let response = client.call_code(
        RequestCode::UpdateAndCreateTopic.code(),
        &[("topic", "NoNums")],
        b"",
    );
    assert_eq!(response.code, ResponseCode::SystemError.code());
    assert!(response.remark.unwrap().contains("readQueueNums"));
}

fn route(namesrv: &NameServer, topic: &str) -> Option<TopicRouteData> {
    let mut client = Client::connect(&namesrv.addr());
    let response = client.call_code(
        RequestCode::GetRouteinfoByTopic.code(),
        &[("topic", topic)],
        b"",
    );
    (response.code == ResponseCode::Success.code())
        .then(|| TopicRouteData::from_json(&response.body).unwrap())
}

/// Polls (bounded) until the name server's route for `topic` satisfies `check`.
fn wait_route(namesrv: &NameServer, topic: &str, check: impl Fn(Option<&TopicRouteData>) -> bool) {
    let started = std::time::Instant::now();
    while !check(route(namesrv, topic).as_ref()) {
        assert!(
            started.elapsed() < WAIT_MAX,
            "route of {topic} never matched: {:?}",
            route(namesrv, topic)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn registers_with_name_servers_and_unregisters_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_namesrv(dir.path());
    let second = start_namesrv(dir.path());
    let namesrvs = format!("{};{}", first.addr(), second.addr());
    let mut broker = start_broker(&dir.path().join("store"), &["-n", &namesrvs]);
    let addr = broker.addr();
    for namesrv in [&first, &second] {
        wait_route(namesrv, "TBW102", |r| {
            r.is_some_and(|r| {
                r.broker_datas
                    .iter()
                    .any(|b| b.broker_addrs.values().any(|a| *a == addr))
                    && r.queue_datas
                        .iter()
                        .any(|q| q.perm == 7 && q.write_queue_nums == 8)
            })
        });
    }
    // A new topic is announced at once, not after the 30 s period.
    let mut client = broker.connect();
    client.call_code(
        RequestCode::UpdateAndCreateTopic.code(),
        &[
            ("topic", "RoutedT"),
            ("readQueueNums", "2"),
            ("writeQueueNums", "2"),
            ("perm", "6"),
        ],
        b"",
    );
    wait_route(&first, "RoutedT", |r| {
        r.is_some_and(|r| r.queue_datas.iter().any(|q| q.write_queue_nums == 2))
    });

    // Wiping the broker's write permission is announced: every topic read-only.
    let response = client.call_code(
        RequestCode::UpdateBrokerConfig.code(),
        &[],
        b"brokerPermission=4\n",
    );
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    wait_route(&first, "RoutedT", |r| {
        r.is_some_and(|r| r.queue_datas.iter().all(|q| q.perm == 4))
    });
    let config = client.call_code(RequestCode::GetBrokerConfig.code(), &[], b"");
    assert!(text(&config.body).contains("brokerPermission=4\n"));
    let response = client.call_code(
        RequestCode::UpdateBrokerConfig.code(),
        &[],
        b"listenPort=1\n",
    );
    assert_eq!(response.code, ResponseCode::InvalidParameter.code());
    let response = client.call_code(
        RequestCode::UpdateBrokerConfig.code(),
        &[],
        b"brokerPermission=12\n",
    );
    assert_eq!(response.code, ResponseCode::InvalidParameter.code());

    // Clean shutdown unregisters: the topic routes disappear.
    assert!(broker.process.terminate().success());
    for namesrv in [&first, &second] {
        wait_route(namesrv, "RoutedT", |r| r.is_none());
    }
}

#[test]
fn orderly_queue_locks_and_client_config_checks() {
    use ringmq_proto::body::LockBatchResponseBody;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let lock_body = |client: &str, queues: &[i32]| {
        let set: Vec<String> = queues
            .iter()
            .map(|q| format!(r#"{{"brokerName":"broker-a","queueId":{q},"topic":"OrderT"}}"#))
            .collect();
        format!(
            r#"{{"clientId":"{client}","consumerGroup":"og","mqSet":[{}],"onlyThisBroker":false}}"#,
            set.join(",")
        )
        .into_bytes()
    };
    let locked = |response: ringmq_proto::command::RemotingCommand| -> Vec<i32> {
        assert_eq!(
            response.code,
            ResponseCode::Success.code(),
            "{:?}",
            response.remark
        );
        let body = LockBatchResponseBody::from_json(&response.body).unwrap();
        let mut ids: Vec<i32> = body.lock_ok_mq_set.iter().map(|mq| mq.queue_id).collect();
        ids.sort();
        ids
    };
    let mut first = broker.connect();
    let mut second = broker.connect();
    let lock = RequestCode::LockBatchMq.code();
    assert_eq!(
        locked(first.call_code(lock, &[], &lock_body("c1", &[0, 1]))),
        vec![0, 1]
    );
    assert_eq!(
        locked(second.call_code(lock, &[], &lock_body("c2", &[1, 2]))),
        vec![2]
    );
    assert_eq!(
        locked(first.call_code(lock, &[], &lock_body("c1", &[0, 1]))),
        vec![0, 1]
    );
    let unlock = RequestCode::UnlockBatchMq.code();
    let response = first.call_code(unlock, &[], &lock_body("c1", &[1]));
    assert_eq!(response.code, ResponseCode::Success.code());
    assert_eq!(
        locked(second.call_code(lock, &[], &lock_body("c2", &[1]))),
        vec![1]
    );
    let response = first.call_code(lock, &[], b"[not a lock body");
    assert_eq!(response.code, ResponseCode::SystemError.code());

    let check = |client: &mut Client, expression_type: &str| {
        let body = format!(
            r#"{{"clientId":"c1","group":"og","subscriptionData":{{"topic":"OrderT","subString":"a > 1","expressionType":"{expression_type}"}}}}"#
        );
        client.call_code(RequestCode::CheckClientConfig.code(), &[], body.as_bytes())
    };
    assert_eq!(check(&mut first, "TAG").code, ResponseCode::Success.code());
    let response = check(&mut first, "SQL92");
    assert_eq!(response.code, ResponseCode::SystemError.code());
    assert!(response.remark.unwrap().contains("SQL92"));
}

#[test]
fn server_requests_use_the_clients_last_serialize_type_and_fresh_opaques() {
    use ringmq_proto::command::SerializeType;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut binary = broker.connect();
    let mut heartbeat = rocketmq_request(
        RequestCode::HeartBeat.code(),
        &[],
        &heartbeat_body("bin@1", "sg", "T"),
    );
    heartbeat.opaque = 0;
    let response = binary.call(heartbeat);
    assert_eq!(response.serialize_type, SerializeType::RocketMq);
    let first = binary.wait_server_request(RequestCode::NotifyConsumerIdsChanged.code());
    assert_eq!(first.serialize_type, SerializeType::RocketMq);
    let mut other = broker.connect();
    other.call_code(
        RequestCode::HeartBeat.code(),
        &[],
        &heartbeat_body("json@2", "sg", "T"),
    );
    let second = binary.wait_server_request(RequestCode::NotifyConsumerIdsChanged.code());
    assert_eq!(second.serialize_type, SerializeType::RocketMq);
    assert!(
        second.opaque > first.opaque,
        "{} then {}",
        first.opaque,
        second.opaque
    );
    // The JSON client is notified in JSON.
    let own = other.wait_server_request(RequestCode::NotifyConsumerIdsChanged.code());
    assert_eq!(own.serialize_type, SerializeType::Json);
}

#[test]
fn registration_survives_the_name_server_closing_an_idle_connection() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = start_namesrv_with(dir.path(), &["--idle-timeout-ms", "300"]);
    let broker = start_broker(&dir.path().join("store"), &["-n", &namesrv.addr()]);
    wait_route(&namesrv, "TBW102", |r| r.is_some());
    // Let the name server drop the registrar's connection as idle (300 ms): the only connection
    // left idle, since every route query closes its own. Then change a topic: the immediate
    // re-registration must go out on a fresh connection.
    let started = std::time::Instant::now();
    while !namesrv.process.log().contains("closing idle connection") {
        assert!(
            started.elapsed() < WAIT_MAX,
            "the name server never closed the idle registrar connection"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut client = broker.connect();
    client.call_code(
        RequestCode::UpdateAndCreateTopic.code(),
        &[
            ("topic", "AfterIdleT"),
            ("readQueueNums", "1"),
            ("writeQueueNums", "1"),
            ("perm", "6"),
        ],
        b"",
    );
    wait_route(&namesrv, "AfterIdleT", |r| r.is_some());
}

/// A broker that starts before its name server registers once the name server is up, not a
/// whole registration period later (the period here is ten minutes, longer than the wait).
#[test]
fn a_broker_started_before_its_name_server_registers_when_it_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv_addr = format!("127.0.0.1:{}", free_port());
    let broker = start_broker(
        &dir.path().join("store"),
        &[
            "-n",
            &namesrv_addr,
            "--set",
            "registerNameServerPeriod=600000",
        ],
    );
    let started = ringmq_testkit::NamesrvProcess::start(
        &namesrv_binary(),
        &["--listen", &namesrv_addr],
        dir.path().join("namesrv-late.log"),
    );
    let namesrv = NameServer {
        process: started.process,
        port: started.addr.port(),
    };
    let addr = broker.addr();
    wait_route(&namesrv, "TBW102", |r| {
        r.is_some_and(|r| {
            r.broker_datas
                .iter()
                .any(|b| b.broker_addrs.values().any(|a| *a == addr))
        })
    });
}

/// A change answered on the metadata shard is already in every shard's view: a pull right after
/// a heartbeat finds its group on the queue's shard, and a send right after a topic creation
/// finds its topic there (queue 1 of a two-shard broker is served by shard 1). The requests go
/// over several connections, so some are read by shard 1 itself, which then serves them in the
/// same wake-up, ahead of its inbox. Before views were acknowledged, answers raced the view's
/// publication, and within a few dozen rounds a pull after a heartbeat was refused
/// SUBSCRIPTION_NOT_EXIST.
#[test]
fn a_change_is_on_every_shard_when_it_is_answered() {
    const ROUNDS: usize = 200;
    const CONNECTIONS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut clients: Vec<_> = (0..CONNECTIONS).map(|_| broker.connect()).collect();
    for round in 0..ROUNDS {
        let topic = format!("ViewT{round}");
        let group = format!("view-g{round}");
        create_topic(&mut clients[round % CONNECTIONS], &topic, 2);
        let sent = clients[(round + 1) % CONNECTIONS].call(send_v2(&topic, 1, "", b"first"));
        assert_eq!(sent.code, ResponseCode::Success.code(), "{:?}", sent.remark);
        let heartbeat = heartbeat_body("c@view", &group, &topic);
        let client = &mut clients[(round + 2) % CONNECTIONS];
        let response = client.call_code(RequestCode::HeartBeat.code(), &[], &heartbeat);
        assert_eq!(response.code, ResponseCode::Success.code());
        let pull = pull_request(&group, &topic, 1, 0, 0, 0);
        let pulled = clients[(round + 3) % CONNECTIONS].call(pull);
        assert_eq!(
            pulled.code,
            ResponseCode::Success.code(),
            "round {round}: {:?}",
            pulled.remark
        );
    }
}
