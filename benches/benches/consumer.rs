//! Consumer-side decoding of pull bodies.
//!
//! * `decode_pull_body`: `ringmq_client::decode_records` over one pull's body of 32 stored
//!   records (128 B bodies, the properties a producer and the broker put on every message),
//!   as a push consumer does for every pull before its listener runs. Throughput is records
//!   per second. This is the client's cost per received message when a consumer group drains
//!   a backlog (issue 15: consumers must keep up with batch producers).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringmq_client::decode_records;
use ringmq_proto::message::{encode_properties, Record};
use ringmq_testkit::sample_record;

/// RocketMQ's default `pullBatchSize`.
const RECORDS_PER_PULL: usize = 32;
const BODY_BYTES: usize = 128;

/// What a Java producer's send and the broker leave on a plain message.
const PROPERTIES: [(&str, &str); 5] = [
    ("UNIQ_KEY", "7F00000100002A9F0000000000000001"),
    ("WAIT", "true"),
    ("TAGS", "TagA"),
    ("MSG_REGION", "DefaultRegion"),
    ("TRACE_ON", "true"),
];

fn pull_body() -> Bytes {
    let mut properties = Vec::new();
    encode_properties(PROPERTIES, &mut properties);
    let body = vec![b'x'; BODY_BYTES];
    let mut out = Vec::new();
    for i in 0..RECORDS_PER_PULL as i64 {
        let record = Record {
            queue_offset: i,
            physical_offset: 4096 * i,
            born_host: "127.0.0.1:50000".parse().unwrap(),
            store_timestamp: 1_700_000_000_001,
            ..sample_record(b"BenchmarkTest", 3, &body, &properties)
        };
        let start = out.len();
        out.resize(start + record.encoded_len().unwrap(), 0);
        record.encode(&mut out[start..]).unwrap();
    }
    Bytes::from(out)
}

fn decode_pull_body(c: &mut Criterion) {
    let body = pull_body();
    let mut group = c.benchmark_group("decode_pull_body");
    group.throughput(Throughput::Elements(RECORDS_PER_PULL as u64));
    group.bench_function("32_records_128B", |b| {
        b.iter(|| {
            let messages = decode_records(&body, "broker-a").unwrap();
            assert_eq!(messages.len(), RECORDS_PER_PULL);
            messages
        })
    });
    group.finish();
}

criterion_group!(benches, decode_pull_body);
criterion_main!(benches);
