//! Brokers register over TCP (plain and compressed bodies); clients query routes, cluster info
//! and topic lists from the real binary.

mod common;

use bytes::Bytes;
use common::{request, route_request, BrokerSpec, Namesrv, NamesrvCalls};
use ringmq_proto::body::{ClusterInfo, JsonBody, KvTable, TopicList};
use ringmq_proto::command::{ExtFields, RemotingCommand, SerializeType};
use ringmq_proto::header::{GetKvConfigRequestHeader, PutKvConfigRequestHeader};
use ringmq_proto::{RequestCode, ResponseCode};

#[test]
fn plain_and_compressed_registrations_serve_routes() {
    let namesrv = Namesrv::start(&[]);
    let mut broker_a = namesrv.connect();
    let mut broker_b = namesrv.connect();
    let mut client = namesrv.connect();

    let a = BrokerSpec::master("broker-a", "127.0.0.1:10911", &["Orders", "TBW102"]);
    let mut b = BrokerSpec::master("broker-b", "127.0.0.1:10921", &["Orders", "Payments"]);
    b.compressed = true;
    for (conn, spec) in [(&mut broker_a, &a), (&mut broker_b, &b)] {
        let response = conn.register_broker(spec);
        assert_eq!(
            ResponseCode::from_code(response.code),
            ResponseCode::Success,
            "{response:?}"
        );
        assert!(response.ext_fields.get("masterAddr").is_none());
    }

    let (code, route, response) = client.route("Orders");
    assert_eq!(code, ResponseCode::Success);
    let route = route.unwrap();
    let names: Vec<&str> = route
        .broker_datas
        .iter()
        .map(|b| b.broker_name.as_str())
        .collect();
    assert_eq!(names, ["broker-a", "broker-b"]);
    assert_eq!(route.queue_datas.len(), 2);
    assert!(route
        .queue_datas
        .iter()
        .all(|q| q.perm == 6 && q.read_queue_nums == 4));
    // Quoted broker ids, compact: what every client (and Go's hand parser) reads.
    let text = std::str::from_utf8(&response.body).unwrap();
    assert!(
        text.contains(r#""brokerAddrs":{"0":"127.0.0.1:10911"}"#),
        "{text}"
    );
    assert!(!text.contains(' '), "{text}");

    let (code, route, _) = client.route("Payments");
    assert_eq!(code, ResponseCode::Success);
    assert_eq!(
        route.unwrap().broker_datas[0].master_addr(),
        Some("127.0.0.1:10921")
    );

    let info =
        ClusterInfo::from_json(&client.call_empty(RequestCode::GetBrokerClusterInfo).body).unwrap();
    let cluster = &info.cluster_addr_table["DefaultCluster"];
    assert!(cluster.contains("broker-a") && cluster.contains("broker-b"));
    assert_eq!(
        info.broker_addr_table["broker-b"].broker_addrs[&0],
        "127.0.0.1:10921"
    );

    let list = TopicList::from_json(
        &client
            .call_empty(RequestCode::GetAllTopicListFromNameserver)
            .body,
    )
    .unwrap();
    let topics: Vec<&str> = list.topic_list.iter().map(String::as_str).collect();
    assert_eq!(topics, ["Orders", "Payments", "TBW102"]);
}

#[test]
fn slave_registration_gets_master_address_and_joins_the_route() {
    let namesrv = Namesrv::start(&[]);
    let mut master = namesrv.connect();
    let mut slave = namesrv.connect();
    master.register_broker(&BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]));
    let mut spec = BrokerSpec::master("broker-a", "127.0.0.1:10941", &["T1"]);
    spec.id = 1;
    let response = slave.register_broker(&spec);
    assert_eq!(
        response.ext_fields.get("masterAddr"),
        Some("127.0.0.1:10911")
    );
    assert_eq!(
        response.ext_fields.get("haServerAddr"),
        Some("127.0.0.1:10912")
    );
    let (_, route, _) = namesrv.connect().route("T1");
    assert_eq!(route.unwrap().broker_datas[0].broker_addrs.len(), 2);
}

#[test]
fn unknown_topic_and_unknown_code_get_java_codes_and_remarks() {
    let namesrv = Namesrv::start(&[]);
    let mut client = namesrv.connect();
    let (code, _, response) = client.route("NoSuchTopic");
    assert_eq!(code, ResponseCode::TopicNotExist);
    assert_eq!(
        response.remark.as_deref(),
        Some("No topic route info in name server for the topic: NoSuchTopic")
    );
    let response = client.call(RemotingCommand::new_request(
        777,
        ExtFields::new(),
        Bytes::new(),
    ));
    assert_eq!(
        ResponseCode::from_code(response.code),
        ResponseCode::RequestCodeNotSupported
    );
    assert_eq!(
        response.remark.as_deref(),
        Some(" request type 777 not supported")
    );
}

#[test]
fn answers_in_the_serialization_of_each_request() {
    let namesrv = Namesrv::start(&[]);
    let mut client = namesrv.connect();
    client.register_broker(&BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]));
    let mut binary = route_request("T1");
    binary.serialize_type = SerializeType::RocketMq;
    let response = client.call(binary);
    assert_eq!(response.serialize_type, SerializeType::RocketMq);
    assert_eq!(
        ResponseCode::from_code(response.code),
        ResponseCode::Success
    );
    let response = client.call(route_request("T1"));
    assert_eq!(response.serialize_type, SerializeType::Json);
}

#[test]
fn oneway_requests_take_effect_without_an_answer() {
    let namesrv = Namesrv::start(&[]);
    let mut client = namesrv.connect();
    let mut oneway = BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]).register_request();
    oneway.set_oneway();
    client.send(oneway);
    // The next frame on this connection must be the answer to the route query, not to the
    // oneway registration (read_response checks the opaque).
    let (code, route, _) = client.route("T1");
    assert_eq!(code, ResponseCode::Success);
    assert!(route.is_some());
}

#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let namesrv = Namesrv::start(&[]);
    let mut client = namesrv.connect();
    client.register_broker(&BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]));
    let opaques: Vec<i32> = (0..200)
        .map(|i| client.send(route_request(if i % 2 == 0 { "T1" } else { "T2" })))
        .collect();
    for (i, opaque) in opaques.into_iter().enumerate() {
        let response = client.read_response_to(opaque);
        let expected = if i % 2 == 0 {
            ResponseCode::Success
        } else {
            ResponseCode::TopicNotExist
        };
        assert_eq!(ResponseCode::from_code(response.code), expected);
    }
}

#[test]
fn kv_config_and_order_topic_table_over_tcp() {
    let namesrv = Namesrv::start(&[]);
    let mut client = namesrv.connect();
    let get = || {
        request(
            RequestCode::GetKvConfig,
            &GetKvConfigRequestHeader {
                namespace: "ORDER_TOPIC_CONFIG".to_owned(),
                key: "T1".to_owned(),
            },
            Bytes::new(),
        )
    };
    assert_eq!(
        ResponseCode::from_code(client.call(get()).code),
        ResponseCode::QueryNotFound
    );
    let put = request(
        RequestCode::PutKvConfig,
        &PutKvConfigRequestHeader {
            namespace: "ORDER_TOPIC_CONFIG".to_owned(),
            key: "T1".to_owned(),
            value: "broker-a:4".to_owned(),
        },
        Bytes::new(),
    );
    assert_eq!(
        ResponseCode::from_code(client.call(put).code),
        ResponseCode::Success
    );
    assert_eq!(
        client.call(get()).ext_fields.get("value"),
        Some("broker-a:4")
    );
    let response =
        client.register_broker(&BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]));
    assert_eq!(
        KvTable::from_json(&response.body).unwrap().table["T1"],
        "broker-a:4"
    );
}
