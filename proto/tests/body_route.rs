//! Golden tests for route and name-server table bodies (reference §2.11), written by hand from the
//! reference, plus fastjson-dialect inputs and round trips.

use std::collections::BTreeMap;

use ringmq_proto::body::{
    BrokerData, ClusterInfo, JsonBody, KvTable, QueueData, TopicList, TopicRouteData,
};

/// The §2.11 example, compact.
const ROUTE_JSON: &str = concat!(
    r#"{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","#,
    r#""enableActingMaster":false}],"filterServerTable":{},"#,
    r#""queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#
);

fn example_route() -> TopicRouteData {
    let mut broker = BrokerData::new("DefaultCluster", "broker-a");
    broker.broker_addrs.insert(0, "127.0.0.1:10911".to_owned());
    TopicRouteData {
        broker_datas: vec![broker],
        filter_server_table: BTreeMap::new(),
        order_topic_conf: None,
        queue_datas: vec![QueueData {
            broker_name: "broker-a".to_owned(),
            perm: 6,
            read_queue_nums: 4,
            topic_sys_flag: 0,
            write_queue_nums: 4,
        }],
    }
}

#[test]
fn route_encodes_exactly_as_the_reference_example() {
    assert_eq!(example_route().to_json(), ROUTE_JSON);
}

#[test]
fn route_decodes_the_reference_example() {
    assert_eq!(
        TopicRouteData::from_json(ROUTE_JSON.as_bytes()).unwrap(),
        example_route()
    );
}

#[test]
fn route_decodes_fastjson_unquoted_broker_ids() {
    let dialect = ROUTE_JSON.replace(r#"{"0":"127.0.0.1:10911"}"#, r#"{0:"127.0.0.1:10911"}"#);
    assert_ne!(dialect, ROUTE_JSON);
    assert_eq!(
        TopicRouteData::from_json(dialect.as_bytes()).unwrap(),
        example_route()
    );
}

#[test]
fn broker_addrs_keep_every_id_including_negative_ones() {
    let text = r#"{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911",-1:"10.0.0.3:10911"},"brokerName":"b","cluster":"c"}"#;
    let broker = BrokerData::from_json(text.as_bytes()).unwrap();
    assert_eq!(broker.broker_addrs.len(), 3);
    assert_eq!(broker.master_addr(), Some("10.0.0.1:10911"));
    assert_eq!(broker.broker_addrs[&-1], "10.0.0.3:10911");
    assert_eq!(
        broker.to_json(),
        r#"{"brokerAddrs":{"-1":"10.0.0.3:10911","0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"brokerName":"b","cluster":"c","enableActingMaster":false}"#
    );
}

#[test]
fn broker_addrs_stay_splittable_by_the_go_client() {
    // Go strips the braces, splits on ',' and each pair at the first ':'. No blanks allowed.
    let mut broker = BrokerData::new("c", "b");
    broker.broker_addrs.insert(0, "127.0.0.1:10911".to_owned());
    broker.broker_addrs.insert(1, "127.0.0.1:10921".to_owned());
    let json = broker.to_json();
    let start = json.find("\"brokerAddrs\":{").unwrap() + "\"brokerAddrs\":{".len();
    let inner = &json[start..start + json[start..].find('}').unwrap()];
    let pairs: Vec<(String, String)> = inner
        .split(',')
        .map(|pair| {
            let (id, addr) = pair.split_once(':').unwrap();
            (
                id.trim_matches('"').to_owned(),
                addr.trim_matches('"').to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("0".to_owned(), "127.0.0.1:10911".to_owned()),
            ("1".to_owned(), "127.0.0.1:10921".to_owned())
        ]
    );
}

#[test]
fn queue_data_accepts_the_old_topic_syn_flag_spelling_and_absent_fields() {
    let queue = QueueData::from_json(
        br#"{"brokerName":"b","perm":6,"readQueueNums":2,"topicSynFlag":3,"writeQueueNums":1}"#,
    )
    .unwrap();
    assert_eq!(queue.topic_sys_flag, 3);
    let queue = QueueData::from_json(br#"{"brokerName":"b"}"#).unwrap();
    assert_eq!(
        (queue.perm, queue.read_queue_nums, queue.topic_sys_flag),
        (0, 0, 0)
    );
}

#[test]
fn route_with_order_conf_and_null_lists_from_go() {
    let route = TopicRouteData::from_json(
        br#"{"orderTopicConf":"broker-a:4","queueDatas":null,"brokerDatas":null,"filterServerTable":null,"extra":1}"#,
    )
    .unwrap();
    assert_eq!(route.order_topic_conf.as_deref(), Some("broker-a:4"));
    assert!(route.queue_datas.is_empty() && route.broker_datas.is_empty());
    assert_eq!(
        route.to_json(),
        r#"{"brokerDatas":[],"filterServerTable":{},"orderTopicConf":"broker-a:4","queueDatas":[]}"#
    );
}

#[test]
fn cluster_info_encodes_quoted_ids_and_decodes_java_dialect() {
    let mut broker = BrokerData::new("DefaultCluster", "broker-a");
    broker.broker_addrs.insert(0, "127.0.0.1:10911".to_owned());
    let mut info = ClusterInfo::default();
    info.broker_addr_table.insert("broker-a".to_owned(), broker);
    info.cluster_addr_table.insert(
        "DefaultCluster".to_owned(),
        ["broker-a".to_owned()].into_iter().collect(),
    );
    let expected = concat!(
        r#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a","#,
        r#""cluster":"DefaultCluster","enableActingMaster":false}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}"#
    );
    assert_eq!(info.to_json(), expected);
    // Java always writes the unquoted form here.
    let java = expected.replace(r#"{"0":"#, "{0:");
    assert_eq!(ClusterInfo::from_json(java.as_bytes()).unwrap(), info);
}

#[test]
fn topic_list_and_kv_table_golden() {
    let list = TopicList {
        broker_addr: None,
        topic_list: ["T2".to_owned(), "T1".to_owned()].into_iter().collect(),
    };
    assert_eq!(list.to_json(), r#"{"topicList":["T1","T2"]}"#);
    assert_eq!(
        TopicList::from_json(br#"{"topicList":["T1","T2"]}"#).unwrap(),
        list
    );

    let mut kv = KvTable::default();
    kv.table.insert("T1".to_owned(), "broker-a:4".to_owned());
    assert_eq!(kv.to_json(), r#"{"table":{"T1":"broker-a:4"}}"#);
    assert_eq!(
        KvTable::from_json(br#"{"table":{"T1":"broker-a:4"}}"#).unwrap(),
        kv
    );
    assert_eq!(KvTable::from_json(b"{}").unwrap(), KvTable::default());
}

#[test]
fn malformed_route_json_is_an_error_not_a_panic() {
    for bad in [
        &b""[..],
        b"{",
        b"{\"brokerDatas\":5}",
        b"{{\"a\":1}:5}",
        b"\xff",
    ] {
        assert!(TopicRouteData::from_json(bad).is_err(), "{bad:?}");
    }
}
