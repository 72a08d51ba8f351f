//! The broker's per-request protocol work, which every send pays once (issue 16: CPU per
//! message; a profile of async sends put header decoding and its allocations at the top of the
//! broker's user-space time).
//!
//! * `send_request/decode_and_read_header`: decode one SEND_MESSAGE_V2 frame with a Java
//!   client's JSON header (the `a`..`n` fields) from the read buffer and read its typed header.
//! * `send_response/encode`: encode the broker's answer (msgId, queueId, queueOffset, region,
//!   trace switch) into the write buffer.
//!
//! Throughput is requests per second. The broker's allocator (mimalloc) is used, as in the
//! broker binary.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::frame::decode_frame;
use ringmq_proto::header::SendMessageRequestHeader;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// SEND_MESSAGE_V2.
const SEND_MESSAGE_V2: i32 = 310;
const BODY_BYTES: usize = 128;

/// The header fields a Java producer's synchronous send carries, written with the short names
/// of code 310 (`a`..`n`).
fn send_fields() -> ExtFields {
    let header = SendMessageRequestHeader {
        producer_group: "please_rename_unique_group_name".into(),
        topic: "BenchmarkTest".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 3,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(
            "UNIQ_KEY\u{1}7F00000100002A9F0000000000000001\u{2}WAIT\u{1}true\u{2}TAGS\u{1}TagA\u{2}"
                .into(),
        ),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        max_reconsume_times: None,
        batch: Some(false),
        broker_name: Some("broker-a".into()),
    };
    let mut fields = ExtFields::new();
    header.write_v2(&mut fields);
    fields
}

fn send_frame() -> BytesMut {
    let request = RemotingCommand::new_request(
        SEND_MESSAGE_V2,
        send_fields(),
        Bytes::from(vec![b'x'; BODY_BYTES]),
    );
    let mut frame = BytesMut::new();
    request.encode(&mut frame).unwrap();
    frame
}

fn decode_send_request(c: &mut Criterion) {
    let frame = send_frame();
    let mut group = c.benchmark_group("send_request");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_and_read_header", |b| {
        b.iter_batched_ref(
            || frame.clone(),
            |buf| {
                let request = decode_frame(buf).unwrap().unwrap();
                let header = SendMessageRequestHeader::read_any(&request.ext_fields).unwrap();
                (request, header)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn encode_send_response(c: &mut Criterion) {
    let request = RemotingCommand::new_request(SEND_MESSAGE_V2, send_fields(), Bytes::new());
    let mut group = c.benchmark_group("send_response");
    group.throughput(Throughput::Elements(1));
    let mut out = BytesMut::with_capacity(64 << 10);
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut response = RemotingCommand::response_to(&request, 0, None);
            let ext = &mut response.ext_fields;
            ext.insert("msgId", "7F00000100002A9F00000000000A2B3C");
            ext.insert("queueId", "3");
            ext.insert("queueOffset", "123456");
            ext.insert("MSG_REGION", "DefaultRegion");
            ext.insert("TRACE_ON", "true");
            if out.len() > 60 << 10 {
                out.clear();
            }
            response.encode(&mut out).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, decode_send_request, encode_send_response);
criterion_main!(benches);
