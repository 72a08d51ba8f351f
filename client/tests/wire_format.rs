//! What a producer puts on the wire, seen by a scripted broker registered with the real name
//! server: the SEND_MESSAGE_V2 frame a Java client sends, the heartbeat, the unregister.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use common::{client_config, peer, register_broker, run, topic_config, Namesrv};
use ringmq_client::{Admin, Message, Producer, ProducerConfig, SendStatus};
use ringmq_proto::body::{perm, HeartbeatData, JsonBody};
use ringmq_proto::command::{LanguageCode, RemotingCommand, SerializeType};
use ringmq_proto::header::SendMessageResponseHeader;
use ringmq_proto::message::find_property;

/// A scripted broker that answers one send as a Java broker does, then records every later
/// request (answering the two-way ones) until the producer unregisters (code 35). Every
/// request goes to `seen`, and `heartbeat_seen` is set when a heartbeat (code 34) arrives.
fn scripted_java_broker(
    seen: mpsc::Sender<RemotingCommand>,
    heartbeat_seen: Arc<AtomicBool>,
) -> (String, std::thread::JoinHandle<()>) {
    peer(move |socket| {
        let send = socket.read_command().expect("a send");
        let mut response = RemotingCommand::response_to(&send, 0, None);
        let header = SendMessageResponseHeader::new(
            "7F00000100002A9F0000000000000000".to_string(),
            send.ext_fields.get("e").unwrap().parse().unwrap(),
            41,
        );
        response.set_header(&header);
        socket.write_command(&response);
        seen.send(send).unwrap();
        while let Some(request) = socket.read_command() {
            let code = request.code;
            if code == 34 {
                heartbeat_seen.store(true, Ordering::SeqCst);
            }
            if !request.is_oneway() {
                socket.write_command(&RemotingCommand::response_to(&request, 0, None));
            }
            seen.send(request).unwrap();
            if code == 35 {
                break;
            }
        }
    })
}

/// The SEND_MESSAGE_V2 frame: code, language, serialization and every short header field as a
/// Java producer fills them, the properties string and the body.
fn check_send_frame(send: &RemotingCommand) {
    assert_eq!(send.code, 310);
    assert_eq!(send.language, LanguageCode::Java);
    assert_eq!(send.serialize_type, SerializeType::Json);
    assert!(!send.is_response() && !send.is_oneway());
    let ext = &send.ext_fields;
    assert_eq!(ext.get("a"), Some("pg-wire"));
    assert_eq!(ext.get("b"), Some("Wire"));
    assert_eq!(ext.get("c"), Some("TBW102"));
    assert_eq!(ext.get("d"), Some("4"));
    assert_eq!(ext.get("e"), Some("0"));
    assert_eq!(ext.get("f"), Some("0"));
    assert_eq!(ext.get("h"), Some("0"));
    assert_eq!(ext.get("j"), Some("0"));
    assert_eq!(ext.get("k"), Some("false"));
    assert_eq!(ext.get("m"), Some("false"));
    assert_eq!(ext.get("n"), Some("broker-a"));
    assert!(ext.get("g").unwrap().parse::<i64>().unwrap() > 1_600_000_000_000);
    let properties = ext.get("i").unwrap().as_bytes();
    assert_eq!(find_property(properties, "TAGS"), Some(&b"TagW"[..]));
    assert_eq!(find_property(properties, "KEYS"), Some(&b"k1"[..]));
    assert_eq!(find_property(properties, "user"), Some(&b"v"[..]));
    assert_eq!(find_property(properties, "WAIT"), Some(&b"true"[..]));
    assert_eq!(
        find_property(properties, "UNIQ_KEY").map(<[u8]>::len),
        Some(32)
    );
    assert_eq!(&send.body[..], b"payload");
}

/// The heartbeat names the producer group (and the inner one) and the client; the last request
/// is the unregister for that group and client.
fn check_heartbeat_and_unregister(seen: &[RemotingCommand]) {
    let heartbeat = seen
        .iter()
        .find(|c| c.code == 34)
        .expect("a heartbeat reached the broker");
    let data = HeartbeatData::from_json(&heartbeat.body).unwrap();
    let groups: Vec<&str> = data
        .producer_data_set
        .iter()
        .map(|p| p.group_name.as_str())
        .collect();
    assert_eq!(groups, ["pg-wire", "CLIENT_INNER_PRODUCER"]);
    assert!(data.client_id.starts_with("127.0.0.1@"));

    let unregister = seen.last().unwrap();
    assert_eq!(unregister.code, 35);
    assert_eq!(unregister.ext_fields.get("producerGroup"), Some("pg-wire"));
    assert_eq!(
        unregister.ext_fields.get("clientID"),
        Some(data.client_id.as_str())
    );
}

#[test]
fn a_producer_sends_what_a_java_producer_sends() {
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let (seen_tx, seen_rx) = mpsc::channel::<RemotingCommand>();
    let heartbeat_seen = Arc::new(AtomicBool::new(false));
    let (broker_addr, broker) = scripted_java_broker(seen_tx, heartbeat_seen.clone());
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&ns))).unwrap();
        register_broker(
            &admin,
            &ns,
            "broker-a",
            &broker_addr,
            &[topic_config("Wire", 1, perm::READ | perm::WRITE)],
        )
        .await;
        let mut client = client_config(std::slice::from_ref(&ns));
        client.heartbeat_interval_ms = 50;
        let producer = Producer::start(ProducerConfig::new(client, "pg-wire")).unwrap();
        let message = Message::new("Wire", "payload")
            .with_tags("TagW")
            .with_keys(["k1"])
            .with_property("user", "v");
        let result = producer.send(message).await.unwrap();
        assert_eq!(result.status, SendStatus::SendOk);
        assert_eq!(result.queue_offset, 41);
        assert_eq!(result.offset_msg_id, "7F00000100002A9F0000000000000000");
        common::wait_until("a heartbeat at the broker", || async {
            heartbeat_seen.load(Ordering::SeqCst)
        })
        .await;
        producer.shutdown().await;
        admin.shutdown();
    });
    broker.join().unwrap();
    let seen: Vec<RemotingCommand> = seen_rx.try_iter().collect();
    check_send_frame(&seen[0]);
    check_heartbeat_and_unregister(&seen);
    drop(namesrv);
}
