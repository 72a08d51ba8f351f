//! Broker liveness against the real binary: expiry of silent brokers (short timeouts, polled
//! until the route disappears, never timed) and removal when the registering connection closes.

mod common;

use bytes::Bytes;
use common::{request, wait_until, BrokerSpec, Namesrv, NamesrvCalls};
use ringmq_proto::header::UnregisterBrokerRequestHeader;
use ringmq_proto::{RequestCode, ResponseCode};

#[test]
fn silent_broker_expires_and_its_routes_go() {
    let namesrv = Namesrv::start(&["--scan-interval-ms", "100", "--broker-expiry-ms", "400"]);
    // The registering connection stays open, so only expiry can remove the broker.
    let mut broker = namesrv.connect();
    let spec = BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]);
    let mut client = namesrv.connect();
    // The expiry is short, so on a loaded machine the route may already be gone by the time it
    // is asked for: register again until it is seen, then stay silent.
    wait_until("the registered broker's route", || {
        broker.register_broker(&spec);
        client.route("T1").0 == ResponseCode::Success
    });
    wait_until("the silent broker's route disappears", || {
        client.route("T1").0 == ResponseCode::TopicNotExist
    });
    let info = client.call_empty(RequestCode::GetBrokerClusterInfo);
    assert!(!std::str::from_utf8(&info.body)
        .unwrap()
        .contains("broker-a"));
    // Registering again brings it back (again registered until seen, for the short expiry).
    wait_until("the route after registering again", || {
        broker.register_broker(&spec);
        client.route("T1").0 == ResponseCode::Success
    });
}

#[test]
fn closing_the_registering_connection_removes_the_broker() {
    // Default (long) expiry: only the close can remove it within the test.
    let namesrv = Namesrv::start(&[]);
    let mut client = namesrv.connect();
    let mut other = namesrv.connect();
    other.register_broker(&BrokerSpec::master("broker-b", "127.0.0.1:10921", &["T1"]));
    {
        let mut broker = namesrv.connect();
        broker.register_broker(&BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]));
        let (_, route, _) = client.route("T1");
        assert_eq!(route.unwrap().broker_datas.len(), 2);
    } // broker connection dropped: closed
    wait_until("broker-a leaves the route of T1", || {
        let (_, route, _) = client.route("T1");
        route.is_some_and(|r| {
            r.broker_datas.len() == 1 && r.broker_datas[0].broker_name == "broker-b"
        })
    });
}

#[test]
fn unregister_removes_the_broker_at_once() {
    let namesrv = Namesrv::start(&[]);
    let mut broker = namesrv.connect();
    broker.register_broker(&BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]));
    let response = broker.call(request(
        RequestCode::UnregisterBroker,
        &UnregisterBrokerRequestHeader {
            broker_name: "broker-a".to_owned(),
            broker_addr: "127.0.0.1:10911".to_owned(),
            cluster_name: "DefaultCluster".to_owned(),
            broker_id: 0,
        },
        Bytes::new(),
    ));
    assert_eq!(
        ResponseCode::from_code(response.code),
        ResponseCode::Success
    );
    assert_eq!(broker.route("T1").0, ResponseCode::TopicNotExist);
}

#[test]
fn idle_connections_are_closed_and_their_brokers_removed() {
    let namesrv = Namesrv::start(&["--idle-timeout-ms", "300"]);
    let mut broker = namesrv.connect();
    broker.register_broker(&BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]));
    // Say nothing more: the server closes the connection once it has been idle long enough.
    assert!(broker.is_closed_by_server());
    wait_until("the idle broker's route disappears", || {
        namesrv.connect().route("T1").0 == ResponseCode::TopicNotExist
    });
}
