//! Two name servers side by side: brokers register with each; they share nothing and never
//! talk to each other; losing one leaves the other serving.

mod common;

use common::{BrokerSpec, Namesrv, NamesrvCalls};
use ringmq_proto::ResponseCode;

#[test]
fn two_name_servers_are_independent() {
    let first = Namesrv::start(&[]);
    let mut second = Namesrv::start(&[]);
    assert_ne!(first.addr, second.addr);
    assert_ne!(first.pid(), second.pid());

    // broker-a registers with both (as brokers do with every name server); broker-b only with
    // the first.
    let a = BrokerSpec::master("broker-a", "127.0.0.1:10911", &["Shared"]);
    let mut a_first = first.connect();
    let mut a_second = second.connect();
    a_first.register_broker(&a);
    a_second.register_broker(&a);
    let mut b_first = first.connect();
    b_first.register_broker(&BrokerSpec::master(
        "broker-b",
        "127.0.0.1:10921",
        &["OnlyFirst"],
    ));

    let mut on_first = first.connect();
    let mut on_second = second.connect();
    assert_eq!(on_first.route("Shared").0, ResponseCode::Success);
    assert_eq!(on_second.route("Shared").0, ResponseCode::Success);
    assert_eq!(on_first.route("OnlyFirst").0, ResponseCode::Success);
    assert_eq!(on_second.route("OnlyFirst").0, ResponseCode::TopicNotExist);

    // The first goes away (killed by PID on drop); the second keeps serving.
    drop((a_first, b_first, on_first));
    drop(first);
    assert!(second.is_running());
    assert_eq!(on_second.route("Shared").0, ResponseCode::Success);
    assert_eq!(second.connect().route("Shared").0, ResponseCode::Success);
}

#[test]
fn a_second_name_server_on_the_same_port_refuses_to_start() {
    let first = Namesrv::start(&[]);
    let addr = first.addr.to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ringmq-namesrv"))
        .args(["--listen", &addr])
        .output()
        .expect("run a second name server");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    // The first one still owns the port and answers.
    assert_eq!(first.connect().route("T").0, ResponseCode::TopicNotExist);
}
