//! Bad input against the real binary: a malformed or oversized frame closes only that
//! connection; a bad request gets a response code and remark and the connection stays usable;
//! stalled and non-reading connections never hold up anyone else.

mod common;

use std::io::Write;
use std::net::TcpStream;

use bytes::{BufMut, Bytes, BytesMut};
use common::{request, route_request, BrokerSpec, Client, Namesrv, NamesrvCalls};
use ringmq_proto::header::{EmptyHeader, RegisterBrokerRequestHeader};
use ringmq_proto::{RequestCode, ResponseCode, FRAME_MAX_BYTES};

/// A server with one registered broker, and a connection that must keep working throughout.
fn server_with_witness() -> (Namesrv, Client) {
    let namesrv = Namesrv::start(&[]);
    let mut witness = namesrv.connect();
    witness.register_broker(&BrokerSpec::master("broker-a", "127.0.0.1:10911", &["T1"]));
    (namesrv, witness)
}

fn assert_still_serving(namesrv: &mut Namesrv, witness: &mut Client) {
    assert!(namesrv.is_running(), "the name server process is still up");
    assert_eq!(
        witness.route("T1").0,
        ResponseCode::Success,
        "old connection still served"
    );
    assert_eq!(
        namesrv.connect().route("T1").0,
        ResponseCode::Success,
        "new connections served"
    );
}

fn raw_frame(length: i32, type_byte: u8, header_len: u32, rest: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_i32(length);
    out.put_u32((u32::from(type_byte) << 24) | header_len);
    out.put_slice(rest);
    out.to_vec()
}

#[test]
fn each_malformed_frame_closes_only_its_connection() {
    let (mut namesrv, mut witness) = server_with_witness();
    let json_header = br#"{"code":105,"extFields":{"topic":"T1"},"flag":0,"language":"JAVA","opaque":1,"version":401}"#;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "text garbage",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("oversized length", raw_frame(i32::MAX, 0, 10, b"")),
        (
            "length just past the cap",
            raw_frame(FRAME_MAX_BYTES as i32 - 3, 0, 10, b""),
        ),
        ("negative length", raw_frame(-5, 0, 0, b"")),
        ("length below 4", raw_frame(2, 0, 0, b"")),
        (
            "header longer than frame",
            raw_frame(20, 0, 400, &[b'{'; 16]),
        ),
        ("unknown serialize type", raw_frame(4 + 2, 7, 2, b"{}")),
        ("header not JSON", raw_frame(4 + 6, 0, 6, b"{nope}")),
        ("JSON header of wrong shape", raw_frame(4 + 2, 0, 2, b"[]")),
        (
            "binary header truncated",
            raw_frame(4 + 3, 1, 3, &[0, 105, 0]),
        ),
        ("valid frame then garbage", {
            let mut bytes = raw_frame(
                4 + json_header.len() as i32,
                0,
                json_header.len() as u32,
                json_header,
            );
            bytes.extend_from_slice(&raw_frame(-1, 0, 0, b""));
            bytes
        }),
    ];
    for (what, bytes) in cases {
        let mut bad = namesrv.connect();
        bad.write_raw(&bytes);
        if what == "valid frame then garbage" {
            // The answer to the good frame before the garbage is still delivered.
            let response = bad.read_frame().expect("answer to the valid frame");
            assert_eq!(
                ResponseCode::from_code(response.code),
                ResponseCode::Success
            );
        }
        assert!(bad.is_closed_by_server(), "{what}: connection closed");
        assert_still_serving(&mut namesrv, &mut witness);
    }
}

#[test]
fn bad_requests_get_an_error_response_and_the_connection_stays_open() {
    let (mut namesrv, mut witness) = server_with_witness();
    let mut client = namesrv.connect();

    // Missing header field.
    let response = client.call(request(
        RequestCode::GetRouteinfoByTopic,
        &EmptyHeader,
        Bytes::new(),
    ));
    assert_eq!(
        ResponseCode::from_code(response.code),
        ResponseCode::SystemError
    );
    assert!(response.remark.unwrap().contains("topic"));

    // Unparsable header field.
    let mut bad_id = BrokerSpec::master("b", "127.0.0.1:1", &[]).register_request();
    bad_id.ext_fields.insert("brokerId", "zero");
    let response = client.call(bad_id);
    assert_eq!(
        ResponseCode::from_code(response.code),
        ResponseCode::SystemError
    );
    assert!(response.remark.unwrap().contains("brokerId"));

    // Body that is not JSON, body that is not zlib, CRC that does not match.
    let header = |compressed: bool, crc: i32| RegisterBrokerRequestHeader {
        broker_name: "b".to_owned(),
        broker_addr: "127.0.0.1:1".to_owned(),
        cluster_name: "c".to_owned(),
        ha_server_addr: String::new(),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        enable_acting_master: None,
        compressed,
        body_crc32: crc,
    };
    for (compressed, crc, body, remark_part) in [
        (false, 0, &b"{{{"[..], "Failed to decode RegisterBrokerBody"),
        (true, 0, &b"plainly not zlib"[..], "zlib"),
        (false, 1234, &b"{}"[..], "crc32 not match"),
    ] {
        let response = client.call(request(
            RequestCode::RegisterBroker,
            &header(compressed, crc),
            Bytes::copy_from_slice(body),
        ));
        assert_eq!(
            ResponseCode::from_code(response.code),
            ResponseCode::SystemError
        );
        assert!(
            response
                .remark
                .as_deref()
                .unwrap_or("")
                .contains(remark_part),
            "{response:?}"
        );
    }
    // The same connection still works, and nothing was registered by the bad requests.
    let info = client.call_empty(RequestCode::GetBrokerClusterInfo);
    assert!(!std::str::from_utf8(&info.body).unwrap().contains("\"b\""));
    assert_still_serving(&mut namesrv, &mut witness);
}

#[test]
fn stalled_and_non_reading_connections_do_not_block_others() {
    let (mut namesrv, mut witness) = server_with_witness();

    // Half a frame, then silence.
    let mut stalled = TcpStream::connect(namesrv.addr).unwrap();
    stalled
        .write_all(&raw_frame(1000, 0, 100, b"{\"code\":"))
        .unwrap();

    // A client that floods requests and never reads the answers: the server's writes to it
    // block once the socket buffers fill, which must only suspend that connection's task.
    let mut flood = TcpStream::connect(namesrv.addr).unwrap();
    flood
        .set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let topic = "T".repeat(2000);
    let mut bytes = BytesMut::new();
    for opaque in 0..8000 {
        let mut request = route_request(&topic);
        request.opaque = opaque;
        request.encode(&mut bytes).unwrap();
    }
    let writer = std::thread::spawn(move || {
        // May stop early with a timeout once both directions are full; that is the point.
        let _ = flood.write_all(&bytes);
        flood
    });

    for _ in 0..20 {
        assert_still_serving(&mut namesrv, &mut witness);
    }
    let flood = writer.join().unwrap();
    drop(flood);
    drop(stalled);
    assert_still_serving(&mut namesrv, &mut witness);
}

#[test]
fn many_concurrent_connections_are_served() {
    let (namesrv, _witness) = server_with_witness();
    let addr = namesrv.addr;
    let threads: Vec<_> = (0..32)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::connect(&addr);
                (0..25).all(|_| client.route("T1").0 == ResponseCode::Success)
            })
        })
        .collect();
    for thread in threads {
        assert!(thread.join().unwrap());
    }
}
