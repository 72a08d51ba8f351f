//! A broker killed with -9 and started again at once, as systemd would, starts every time and
//! its clients resume.

mod common;

use common::*;
use ringmq_proto::code::RequestCode;
use ringmq_proto::header::SendMessageRequestHeader;

const ROUNDS: usize = 5;

fn send(client: &mut Client, i: usize) -> i32 {
    let header = SendMessageRequestHeader {
        producer_group: "pg".to_string(),
        topic: "Restart".to_string(),
        default_topic: "TBW102".to_string(),
        default_topic_queue_nums: 4,
        queue_id: (i % 4) as i32,
        sys_flag: 0,
        born_timestamp: 0,
        flag: 0,
        properties: None,
        reconsume_times: None,
        unit_mode: None,
        max_reconsume_times: None,
        batch: None,
        broker_name: None,
    };
    let mut ext = ringmq_proto::command::ExtFields::new();
    header.write_v2(&mut ext);
    let request = ringmq_proto::command::RemotingCommand::new_request(
        RequestCode::SendMessageV2.code(),
        ext,
        bytes::Bytes::from(format!("message {i}")),
    );
    client.call(request).code
}

#[test]
fn a_broker_killed_with_sigkill_under_load_restarts_at_once_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut broker = start_broker(&store, &[]);
    let port = broker.port;
    let mut sent = 0;
    for round in 0..ROUNDS {
        // Client load right up to the kill: a connection with a request on the wire.
        let mut client = broker.connect();
        for _ in 0..20 {
            assert_eq!(send(&mut client, sent), 0, "round {round}");
            sent += 1;
        }
        let mut in_flight = broker.connect();
        in_flight.send(Client::request(
            RequestCode::GetAllTopicConfig.code(),
            &[],
            b"",
        ));
        // SAFETY: our own child's pid.
        unsafe { libc::kill(broker.process.pid(), libc::SIGKILL) };
        broker.process.wait_exit();
        // No delay: start on the same port and store at once.
        broker = start_broker_on(&store, port, &[]);
        let mut resumed = broker.connect();
        assert_eq!(
            send(&mut resumed, sent),
            0,
            "clients resume after round {round}"
        );
        sent += 1;
    }
    let mut client = broker.connect();
    let mut max = |queue: &str| {
        let fields = [("topic", "Restart"), ("queueId", queue)];
        let response = client.call_code(RequestCode::GetMaxOffset.code(), &fields, b"");
        response
            .ext_fields
            .get("offset")
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let stored: usize = (0..4).map(|q| max(&q.to_string())).sum();
    assert_eq!(stored, sent, "every acknowledged send survived the kills");
}
