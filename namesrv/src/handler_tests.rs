//! Unit tests of request dispatch: what each request code and each bad input gets.

use super::*;
use ringmq_proto::body::{ClusterInfo, KvTable, TopicConfig, TopicList, TopicRouteData};
use ringmq_proto::command::SerializeType;
use ringmq_proto::header::EmptyHeader;

const CONN: ConnectionId = ConnectionId(1);

fn handler() -> Handler {
    Handler::new(NamesrvConfig::default())
}

fn register_header(name: &str, id: i64, addr: &str) -> RegisterBrokerRequestHeader {
    RegisterBrokerRequestHeader {
        broker_name: name.to_owned(),
        broker_addr: addr.to_owned(),
        cluster_name: "DefaultCluster".to_owned(),
        ha_server_addr: "127.0.0.1:10912".to_owned(),
        broker_id: id,
        heartbeat_timeout_millis: None,
        enable_acting_master: None,
        compressed: false,
        body_crc32: 0,
    }
}

fn register_body(topics: &[&str]) -> RegisterBrokerBody {
    let mut body = RegisterBrokerBody::default();
    body.topic_config_serialize_wrapper.data_version.counter = 1;
    for topic in topics {
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert((*topic).to_owned(), TopicConfig::new(*topic, 4));
    }
    body
}

fn register(
    handler: &mut Handler,
    header: RegisterBrokerRequestHeader,
    body: Vec<u8>,
) -> RemotingCommand {
    let request = request_with_header(RequestCode::RegisterBroker, &header, Bytes::from(body));
    handler.handle(&request, CONN, 0).expect("a response")
}

fn route_request(topic: &str) -> RemotingCommand {
    request_with_header(
        RequestCode::GetRouteinfoByTopic,
        &GetRouteInfoRequestHeader {
            topic: topic.to_owned(),
            accept_standard_json_only: None,
        },
        Bytes::new(),
    )
}

fn code_of(response: &RemotingCommand) -> ResponseCode {
    ResponseCode::from_code(response.code)
}

#[test]
fn register_then_route_answers_with_the_java_shape() {
    let mut handler = handler();
    let response = register(
        &mut handler,
        register_header("broker-a", 0, "127.0.0.1:10911"),
        register_body(&["T1"]).encode(false),
    );
    assert_eq!(code_of(&response), ResponseCode::Success);
    assert!(response.is_response());
    assert!(
        response.ext_fields.get("masterAddr").is_none(),
        "a master gets no masterAddr"
    );

    let route = handler.handle(&route_request("T1"), CONN, 1).unwrap();
    assert_eq!(code_of(&route), ResponseCode::Success);
    assert_eq!(
        std::str::from_utf8(&route.body).unwrap(),
        concat!(
            r#"{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a","#,
            r#""cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"#,
            r#""queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#
        )
    );
}

#[test]
fn compressed_registration_with_crc_is_accepted() {
    let mut handler = handler();
    let body = register_body(&["T1", "T2"]).encode(true);
    let mut header = register_header("broker-a", 0, "127.0.0.1:10911");
    header.compressed = true;
    header.body_crc32 = body_crc32(&body);
    assert_eq!(
        code_of(&register(&mut handler, header, body)),
        ResponseCode::Success
    );
    assert!(handler.registry().route("T2").is_some());
}

#[test]
fn crc_mismatch_and_bad_bodies_get_system_error_with_a_reason() {
    let mut handler = handler();
    let mut header = register_header("broker-a", 0, "127.0.0.1:10911");
    header.body_crc32 = 12345;
    let response = register(&mut handler, header, register_body(&["T1"]).encode(false));
    assert_eq!(code_of(&response), ResponseCode::SystemError);
    assert_eq!(response.remark.as_deref(), Some("crc32 not match"));

    let response = register(
        &mut handler,
        register_header("b", 0, "127.0.0.1:1"),
        b"{not json".to_vec(),
    );
    assert_eq!(code_of(&response), ResponseCode::SystemError);
    assert!(response
        .remark
        .unwrap()
        .starts_with("Failed to decode RegisterBrokerBody"));

    let mut header = register_header("b", 0, "127.0.0.1:1");
    header.compressed = true;
    let response = register(&mut handler, header, b"not zlib".to_vec());
    assert_eq!(code_of(&response), ResponseCode::SystemError);
    assert!(response.remark.unwrap().contains("zlib"));
    assert!(
        handler.registry().route("T1").is_none(),
        "nothing registered by bad requests"
    );
}

#[test]
fn missing_header_field_names_the_field() {
    let mut handler = handler();
    let mut request = request_with_header(
        RequestCode::RegisterBroker,
        &register_header("b", 0, "127.0.0.1:1"),
        Bytes::new(),
    );
    request.ext_fields.remove("brokerAddr");
    let response = handler.handle(&request, CONN, 0).unwrap();
    assert_eq!(code_of(&response), ResponseCode::SystemError);
    assert!(response.remark.unwrap().contains("brokerAddr"));

    let request = request_with_header(RequestCode::GetRouteinfoByTopic, &EmptyHeader, Bytes::new());
    let response = handler.handle(&request, CONN, 0).unwrap();
    assert_eq!(code_of(&response), ResponseCode::SystemError);
    assert!(response.remark.unwrap().contains("topic"));
}

#[test]
fn registration_without_body_is_accepted() {
    let mut handler = handler();
    let response = register(
        &mut handler,
        register_header("b", 0, "127.0.0.1:1"),
        Vec::new(),
    );
    assert_eq!(code_of(&response), ResponseCode::Success);
    assert!(handler
        .registry()
        .cluster_info()
        .broker_addr_table
        .contains_key("b"));
}

#[test]
fn slave_registration_learns_master_and_ha_address() {
    let mut handler = handler();
    register(
        &mut handler,
        register_header("broker-a", 0, "127.0.0.1:10911"),
        Vec::new(),
    );
    let response = register(
        &mut handler,
        register_header("broker-a", 1, "127.0.0.1:10921"),
        Vec::new(),
    );
    assert_eq!(
        response.ext_fields.get("masterAddr"),
        Some("127.0.0.1:10911")
    );
    assert_eq!(
        response.ext_fields.get("haServerAddr"),
        Some("127.0.0.1:10912")
    );
}

#[test]
fn unknown_topic_gets_topic_not_exist_with_the_java_remark() {
    let response = handler().handle(&route_request("Nope"), CONN, 0).unwrap();
    assert_eq!(code_of(&response), ResponseCode::TopicNotExist);
    assert_eq!(
        response.remark.as_deref(),
        Some("No topic route info in name server for the topic: Nope")
    );
    assert!(response.body.is_empty());
}

#[test]
fn unknown_code_gets_request_code_not_supported() {
    let request = RemotingCommand::new_request(12345, ExtFields::new(), Bytes::new());
    let response = handler().handle(&request, CONN, 0).unwrap();
    assert_eq!(code_of(&response), ResponseCode::RequestCodeNotSupported);
    assert_eq!(
        response.remark.as_deref(),
        Some(" request type 12345 not supported")
    );
    // A broker code sent to the name server is also unsupported here.
    let request = RemotingCommand::new_request(
        RequestCode::SendMessageV2.code(),
        ExtFields::new(),
        Bytes::new(),
    );
    let response = handler().handle(&request, CONN, 0).unwrap();
    assert_eq!(
        response.remark.as_deref(),
        Some(" request type 310 not supported")
    );
}

#[test]
fn oneway_requests_are_served_but_not_answered() {
    let mut handler = handler();
    let mut request = request_with_header(
        RequestCode::RegisterBroker,
        &register_header("broker-a", 0, "127.0.0.1:10911"),
        Bytes::from(register_body(&["T1"]).encode(false)),
    );
    request.set_oneway();
    assert!(handler.handle(&request, CONN, 0).is_none());
    assert!(
        handler.registry().route("T1").is_some(),
        "the oneway registration took effect"
    );
    let mut unknown = RemotingCommand::new_request(9999, ExtFields::new(), Bytes::new());
    unknown.set_oneway();
    assert!(handler.handle(&unknown, CONN, 0).is_none());
}

#[test]
fn responses_sent_to_the_name_server_are_ignored() {
    let request = route_request("T1");
    let stray = RemotingCommand::response_to(&request, 0, None);
    assert!(handler().handle(&stray, CONN, 0).is_none());
}

#[test]
fn responses_mirror_serialize_type_and_opaque() {
    let mut request = route_request("T1");
    request.serialize_type = SerializeType::RocketMq;
    request.opaque = 4242;
    let response = handler().handle(&request, CONN, 0).unwrap();
    assert_eq!(response.serialize_type, SerializeType::RocketMq);
    assert_eq!(response.opaque, 4242);
}

#[test]
fn cluster_info_and_topic_list_bodies() {
    let mut handler = handler();
    register(
        &mut handler,
        register_header("broker-a", 0, "127.0.0.1:10911"),
        register_body(&["T1", "T2"]).encode(false),
    );
    let request = request_with_header(
        RequestCode::GetBrokerClusterInfo,
        &EmptyHeader,
        Bytes::new(),
    );
    let info = ClusterInfo::from_json(&handler.handle(&request, CONN, 0).unwrap().body).unwrap();
    assert!(info.cluster_addr_table["DefaultCluster"].contains("broker-a"));
    let request = request_with_header(
        RequestCode::GetAllTopicListFromNameserver,
        &EmptyHeader,
        Bytes::new(),
    );
    let list = TopicList::from_json(&handler.handle(&request, CONN, 0).unwrap().body).unwrap();
    assert_eq!(list.topic_list.len(), 2);
    let mut ext = ExtFields::new();
    ext.insert("cluster", "DefaultCluster");
    let request =
        RemotingCommand::new_request(RequestCode::GetTopicsByCluster.code(), ext, Bytes::new());
    let list = TopicList::from_json(&handler.handle(&request, CONN, 0).unwrap().body).unwrap();
    assert_eq!(list.topic_list.len(), 2);
}

#[test]
fn wipe_write_perm_reports_the_count_and_routes_lose_write() {
    let mut handler = handler();
    register(
        &mut handler,
        register_header("broker-a", 0, "127.0.0.1:10911"),
        register_body(&["T1", "T2"]).encode(false),
    );
    let request = request_with_header(
        RequestCode::WipeWritePermOfBroker,
        &WipeWritePermOfBrokerRequestHeader {
            broker_name: "broker-a".to_owned(),
        },
        Bytes::new(),
    );
    let response = handler.handle(&request, CONN, 0).unwrap();
    assert_eq!(response.ext_fields.get("wipeTopicCount"), Some("2"));
    let route =
        TopicRouteData::from_json(&handler.handle(&route_request("T1"), CONN, 0).unwrap().body)
            .unwrap();
    assert_eq!(route.queue_datas[0].perm, 4);
    let mut add = request.clone();
    add.code = RequestCode::AddWritePermOfBroker.code();
    assert_eq!(
        handler
            .handle(&add, CONN, 0)
            .unwrap()
            .ext_fields
            .get("addTopicCount"),
        Some("2")
    );
}

#[test]
fn delete_topic_removes_the_route() {
    let mut handler = handler();
    register(
        &mut handler,
        register_header("broker-a", 0, "127.0.0.1:10911"),
        register_body(&["T1"]).encode(false),
    );
    let request = request_with_header(
        RequestCode::DeleteTopicInNamesrv,
        &DeleteTopicFromNamesrvRequestHeader {
            topic: "T1".to_owned(),
            cluster_name: None,
        },
        Bytes::new(),
    );
    assert_eq!(
        code_of(&handler.handle(&request, CONN, 0).unwrap()),
        ResponseCode::Success
    );
    assert_eq!(
        code_of(&handler.handle(&route_request("T1"), CONN, 0).unwrap()),
        ResponseCode::TopicNotExist
    );
}

#[test]
fn kv_config_flow_and_order_topic_lookups() {
    let mut handler = handler();
    let get = request_with_header(
        RequestCode::GetKvConfig,
        &GetKvConfigRequestHeader {
            namespace: ORDER_TOPIC_CONFIG_NAMESPACE.to_owned(),
            key: "T1".to_owned(),
        },
        Bytes::new(),
    );
    let response = handler.handle(&get, CONN, 0).unwrap();
    assert_eq!(code_of(&response), ResponseCode::QueryNotFound);
    assert_eq!(
        response.remark.as_deref(),
        Some("No config item, Namespace: ORDER_TOPIC_CONFIG Key: T1")
    );

    let put = request_with_header(
        RequestCode::PutKvConfig,
        &PutKvConfigRequestHeader {
            namespace: ORDER_TOPIC_CONFIG_NAMESPACE.to_owned(),
            key: "T1".to_owned(),
            value: "broker-a:4".to_owned(),
        },
        Bytes::new(),
    );
    assert_eq!(
        code_of(&handler.handle(&put, CONN, 0).unwrap()),
        ResponseCode::Success
    );
    let response = handler.handle(&get, CONN, 0).unwrap();
    assert_eq!(response.ext_fields.get("value"), Some("broker-a:4"));

    // A registering broker gets the order-topic table back.
    let response = register(
        &mut handler,
        register_header("broker-a", 0, "127.0.0.1:10911"),
        Vec::new(),
    );
    let table = KvTable::from_json(&response.body).unwrap();
    assert_eq!(table.table["T1"], "broker-a:4");

    let list = request_with_header(
        RequestCode::GetKvlistByNamespace,
        &GetKvListByNamespaceRequestHeader {
            namespace: ORDER_TOPIC_CONFIG_NAMESPACE.to_owned(),
        },
        Bytes::new(),
    );
    assert_eq!(
        KvTable::from_json(&handler.handle(&list, CONN, 0).unwrap().body).unwrap(),
        table
    );

    let delete = request_with_header(
        RequestCode::DeleteKvConfig,
        &DeleteKvConfigRequestHeader {
            namespace: ORDER_TOPIC_CONFIG_NAMESPACE.to_owned(),
            key: "T1".to_owned(),
        },
        Bytes::new(),
    );
    assert_eq!(
        code_of(&handler.handle(&delete, CONN, 0).unwrap()),
        ResponseCode::Success
    );
    assert_eq!(
        code_of(&handler.handle(&get, CONN, 0).unwrap()),
        ResponseCode::QueryNotFound
    );
    let response = handler.handle(&list, CONN, 0).unwrap();
    assert_eq!(code_of(&response), ResponseCode::QueryNotFound);
    assert_eq!(
        response.remark.as_deref(),
        Some("No config item, Namespace: ORDER_TOPIC_CONFIG")
    );
}

#[test]
fn order_topic_conf_appears_in_routes_only_when_enabled() {
    let mut handler = Handler::new(NamesrvConfig {
        order_message_enable: true,
        ..NamesrvConfig::default()
    });
    register(
        &mut handler,
        register_header("broker-a", 0, "127.0.0.1:10911"),
        register_body(&["T1"]).encode(false),
    );
    handler
        .registry
        .put_kv(ORDER_TOPIC_CONFIG_NAMESPACE, "T1", "broker-a:4");
    let route =
        TopicRouteData::from_json(&handler.handle(&route_request("T1"), CONN, 0).unwrap().body)
            .unwrap();
    assert_eq!(route.order_topic_conf.as_deref(), Some("broker-a:4"));
    let mut plain = Handler::new(NamesrvConfig::default());
    register(
        &mut plain,
        register_header("broker-a", 0, "127.0.0.1:10911"),
        register_body(&["T1"]).encode(false),
    );
    plain
        .registry
        .put_kv(ORDER_TOPIC_CONFIG_NAMESPACE, "T1", "broker-a:4");
    let route =
        TopicRouteData::from_json(&plain.handle(&route_request("T1"), CONN, 0).unwrap().body)
            .unwrap();
    assert_eq!(route.order_topic_conf, None);
}

#[test]
fn query_data_version_and_broker_heartbeat() {
    let mut handler = handler();
    register(
        &mut handler,
        register_header("broker-a", 0, "127.0.0.1:10911"),
        register_body(&["T1"]).encode(false),
    );
    let mut ext = ExtFields::new();
    ext.insert("clusterName", "DefaultCluster");
    ext.insert("brokerAddr", "127.0.0.1:10911");
    ext.insert("brokerName", "broker-a");
    ext.insert("brokerId", "0");
    let same = DataVersion {
        counter: 1,
        ..DataVersion::default()
    };
    let request = RemotingCommand::new_request(
        RequestCode::QueryDataVersion.code(),
        ext.clone(),
        Bytes::from(same.to_json()),
    );
    let response = handler.handle(&request, CONN, 0).unwrap();
    assert_eq!(response.ext_fields.get("changed"), Some("false"));
    assert_eq!(DataVersion::from_json(&response.body).unwrap(), same);
    let bad = RemotingCommand::new_request(
        RequestCode::QueryDataVersion.code(),
        ext.clone(),
        Bytes::from_static(b"[["),
    );
    assert_eq!(
        code_of(&handler.handle(&bad, CONN, 0).unwrap()),
        ResponseCode::SystemError
    );

    let heartbeat =
        RemotingCommand::new_request(RequestCode::BrokerHeartbeat.code(), ext, Bytes::new());
    assert_eq!(
        code_of(&handler.handle(&heartbeat, CONN, 200_000).unwrap()),
        ResponseCode::Success
    );
    assert!(
        handler.expire(200_000 + 120_000).is_empty(),
        "the heartbeat refreshed liveness"
    );
    assert_eq!(handler.expire(200_001 + 120_000).len(), 1);
}

#[test]
fn pre_3_0_11_brokers_send_a_bare_topic_wrapper() {
    let mut handler = handler();
    let wrapper = register_body(&["Old"]).topic_config_serialize_wrapper;
    let mut request = request_with_header(
        RequestCode::RegisterBroker,
        &register_header("old", 0, "127.0.0.1:1"),
        Bytes::from(wrapper.to_json()),
    );
    request.version = 30;
    assert_eq!(
        code_of(&handler.handle(&request, CONN, 0).unwrap()),
        ResponseCode::Success
    );
    assert!(handler.registry().route("Old").is_some());
}

mod random_requests {
    use super::*;
    use proptest::prelude::*;

    const CODES: &[i32] = &[
        100, 101, 102, 103, 104, 105, 106, 205, 206, 216, 219, 224, 322, 327, 904, 0, 9999,
    ];
    const KEYS: &[&str] = &[
        "brokerName",
        "brokerAddr",
        "clusterName",
        "haServerAddr",
        "brokerId",
        "compressed",
        "bodyCrc32",
        "heartbeatTimeoutMillis",
        "topic",
        "namespace",
        "key",
        "value",
        "cluster",
    ];

    fn arb_request() -> impl Strategy<Value = RemotingCommand> {
        let ext = prop::collection::vec(
            (0..KEYS.len(), "[a-z0-9:.-]{0,6}|-?[0-9]{1,3}|true|false"),
            0..10,
        );
        let body = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            Just(
                br#"{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"topicName":"T"}}}}"#
                    .to_vec()
            ),
            Just(b"{}".to_vec()),
        ];
        (
            prop::sample::select(CODES),
            ext,
            body,
            any::<bool>(),
            0..100i32,
        )
            .prop_map(|(code, ext, body, oneway, version)| {
                let mut fields = ExtFields::new();
                for (key, value) in ext {
                    fields.insert(KEYS[key], value);
                }
                let mut request = RemotingCommand::new_request(code, fields, Bytes::from(body));
                request.version = version * 5;
                if oneway {
                    request.set_oneway();
                }
                request
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Any sequence of requests, however malformed, gets exactly the answers the flags ask
        /// for and leaves the registry consistent.
        #[test]
        fn never_panics_and_keeps_invariants(requests in prop::collection::vec(arb_request(), 1..40)) {
            let mut handler = handler();
            for (i, request) in requests.iter().enumerate() {
                let response = handler.handle(request, ConnectionId(i as u64 % 3), i as u64 * 1000);
                prop_assert_eq!(response.is_some(), !request.is_oneway());
                if let Some(response) = response {
                    prop_assert!(response.is_response());
                    prop_assert_eq!(response.opaque, request.opaque);
                }
                handler.registry().check_invariants();
            }
        }
    }
}
