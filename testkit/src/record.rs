//! A stored-record fixture: the fields tests do not care about, filled in once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ringmq_proto::message::Record;

/// The born time of [`sample_record`]: 2023-11-14 22:13:20 UTC.
pub const SAMPLE_BORN_TIMESTAMP_MS: i64 = 1_700_000_000_000;
/// The producer address of [`sample_record`].
pub const SAMPLE_BORN_HOST: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
/// The broker address of [`sample_record`] (the default `listenPort`).
pub const SAMPLE_STORE_HOST: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10911);

/// A record of `topic`/`queue_id` carrying `body` and `properties`, as a producer on loopback
/// would send it: no flags, zero offsets (the store assigns them), born at
/// [`SAMPLE_BORN_TIMESTAMP_MS`]. Tests that care about another field set it with struct update
/// syntax: `Record { sys_flag: X, ..sample_record(..) }`.
pub fn sample_record<'a>(
    topic: &'a [u8],
    queue_id: i32,
    body: &'a [u8],
    properties: &'a [u8],
) -> Record<'a> {
    Record {
        queue_id,
        flag: 0,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: SAMPLE_BORN_TIMESTAMP_MS,
        born_host: SAMPLE_BORN_HOST,
        store_timestamp: 0,
        store_host: SAMPLE_STORE_HOST,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        topic,
        properties,
    }
}
