//! A broker killed with -9 and started again at once, as systemd would, starts every time and
//! its clients resume.

mod common;

use common::*;
use ringmq_proto::code::RequestCode;
use ringmq_proto::header::SendMessageRequestHeader;

const ROUNDS: usize = 5;

/// Consumer offsets are written every 100 ms here, so the test can wait for them on disk.
const OFFSETS_FLUSH: [&str; 2] = ["--set", "flushConsumerOffsetInterval=100"];

/// The send request of message `i`.
fn send_request(i: usize) -> ringmq_proto::command::RemotingCommand {
    let header = SendMessageRequestHeader {
        producer_group: "pg".to_string(),
        topic: "Restart".to_string(),
        default_topic: "TBW102".to_string(),
        default_topic_queue_nums: 4,
        queue_id: (i % 4) as i32,
        sys_flag: 0,
        born_timestamp: 0,
        flag: 0,
        properties: Some(format!("KEYS\u{1}key-{i}\u{2}")),
        reconsume_times: None,
        unit_mode: None,
        max_reconsume_times: None,
        batch: None,
        broker_name: None,
    };
    let mut ext = ringmq_proto::command::ExtFields::new();
    header.write_v2(&mut ext);
    ringmq_proto::command::RemotingCommand::new_request(
        RequestCode::SendMessageV2.code(),
        ext,
        bytes::Bytes::from(format!("message {i}")),
    )
}

fn send(client: &mut Client, i: usize) -> i32 {
    client.call(send_request(i)).code
}

/// Sends message `i` as a client that reconnects would: for a moment after a restart the killed
/// broker's listener (held by its io_uring while the process dies) can still accept a connection
/// and then drop it, or refuse one, so a closed or refused connection is retried on a new one, a
/// bounded number of times.
fn send_resuming(broker: &Broker, i: usize) -> i32 {
    const ATTEMPTS: usize = 50;
    for _ in 0..ATTEMPTS {
        // Refused: the old listener is gone and the new one not yet bound; try again.
        if std::net::TcpStream::connect(broker.addr()).is_err() {
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        let mut client = broker.connect();
        client.send(send_request(i));
        if let Some(response) = client.read_frame() {
            return response.code;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("no connection to the restarted broker stayed open in {ATTEMPTS} attempts");
}

#[test]
fn a_broker_killed_with_sigkill_under_load_restarts_at_once_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut broker = start_broker(&store, &OFFSETS_FLUSH);
    let port = broker.port;
    commit_offset_and_wait_for_disk(&mut broker.connect(), &store);
    let mut sent = 1; // the send that created the topic
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
        broker = start_broker_on(&store, port, &OFFSETS_FLUSH);
        assert_eq!(
            send_resuming(&broker, sent),
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
    assert_metadata_survived(&mut client, sent);
}

/// Commits offset 7 for group `cg` on queue 0 and waits (bounded) until it is on disk.
fn commit_offset_and_wait_for_disk(client: &mut Client, store: &std::path::Path) {
    assert_eq!(
        send(client, 0),
        0,
        "the topic exists before offsets are committed to it"
    );
    let fields = [
        ("consumerGroup", "cg"),
        ("topic", "Restart"),
        ("queueId", "0"),
        ("commitOffset", "7"),
    ];
    let response = client.call_code(RequestCode::UpdateConsumerOffset.code(), &fields, b"");
    assert_eq!(response.code, 0);
    let started = std::time::Instant::now();
    let on_disk = || {
        std::fs::read_dir(store.join("config"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.starts_with("consumerOffset")
                    && std::fs::read_to_string(entry.path()).is_ok_and(|text| text.contains("cg"))
            })
    };
    while !on_disk() {
        assert!(
            started.elapsed() < WAIT_MAX,
            "consumer offsets never reached the disk"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// After the kills: the topic config, the committed offset and the key index are all there.
fn assert_metadata_survived(client: &mut Client, sent: usize) {
    let topics = client.call_code(RequestCode::GetAllTopicConfig.code(), &[], b"");
    assert!(
        text(&topics.body).contains("\"Restart\""),
        "topic config lost"
    );
    let fields = [
        ("consumerGroup", "cg"),
        ("topic", "Restart"),
        ("queueId", "0"),
    ];
    let offset = client.call_code(RequestCode::QueryConsumerOffset.code(), &fields, b"");
    assert_eq!(
        offset.ext_fields.get("offset"),
        Some("7"),
        "committed offset lost"
    );
    for i in [0, sent / 2, sent - 1] {
        let key = format!("key-{i}");
        let fields = [
            ("topic", "Restart"),
            ("key", key.as_str()),
            ("maxNum", "4"),
            ("beginTimestamp", "0"),
            ("endTimestamp", "9223372036854775807"),
        ];
        let found = client.call_code(RequestCode::QueryMessage.code(), &fields, b"");
        assert_eq!(found.code, 0, "{key} not found by the index after kill -9");
    }
}
