//! Design §9 on a real broker: clients that send and never read cannot grow the broker past its
//! documented bound, TCP pushes back on them alone, and a well-behaved client on the same
//! broker keeps being served.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use ringmq_proto::code::RequestCode;

/// Hostile connections in the test.
const HOSTILE_CONNECTIONS: usize = 4;
/// The per-connection high water mark the test configures (1 MiB).
const HIGH_WATER_BYTES: u64 = 1024 * 1024;
/// How long a write may block before the test takes it as TCP pushing back.
const PUSHBACK_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// A hostile client that manages to write this much without being pushed back fails the test.
const HOSTILE_WRITE_MAX_BYTES: usize = 256 * 1024 * 1024;
/// The bound asserted on the broker's growth: per hostile connection its high water mark, a
/// read buffer's worth of responses in flight (1,024 × a few KiB) and slack, plus allocator
/// slack. The unbounded broker grew by 4.7 GB in the same scenario.
const RSS_GROWTH_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Whether the process runs with transparent huge pages off (`THP_enabled: 0`): with them on,
/// mimalloc's segments fault in 2 MiB at a time and the growth measured here says more about
/// the machine's free memory than about what the broker holds.
fn huge_pages_disabled(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .is_some_and(|v| v.trim() == "0")
}

fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Writes GET_ALL_TOPIC_CONFIG requests and never reads, until a write blocks (the broker
/// stopped reading). Returns the connection and the bytes written. A reset or reaching the cap
/// fails the test.
fn flood_until_pushed_back(addr: &str) -> (TcpStream, usize) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_write_timeout(Some(PUSHBACK_WRITE_TIMEOUT))
        .unwrap();
    let mut frames = BytesMut::new();
    for opaque in 0..256 {
        let mut request = Client::request(RequestCode::GetAllTopicConfig.code(), &[], b"");
        request.opaque = opaque;
        request.encode(&mut frames).unwrap();
    }
    let mut written = 0;
    while written < HOSTILE_WRITE_MAX_BYTES {
        // Partial writes continue where they stopped, so frames stay whole.
        let at = written % frames.len();
        match stream.write(&frames[at..]) {
            Ok(n) => written += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (stream, written)
            }
            Err(e) => panic!("write after {written} bytes: {e}"),
        }
    }
    panic!("wrote {written} bytes without being pushed back: the broker kept reading");
}

#[test]
fn clients_that_never_read_are_pushed_back_and_cannot_grow_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let high = HIGH_WATER_BYTES.to_string();
    let low = (HIGH_WATER_BYTES / 4).to_string();
    let broker = start_broker(
        &dir.path().join("store"),
        &[
            "--set",
            &format!("ringmqConnectionWriteHighWaterBytes={high}"),
            "--set",
            &format!("ringmqConnectionWriteLowWaterBytes={low}"),
        ],
    );
    let mut polite = broker.connect();
    assert_eq!(
        polite
            .call_code(RequestCode::GetAllTopicConfig.code(), &[], b"")
            .code,
        0
    );
    assert!(huge_pages_disabled(broker.process.pid()));
    let baseline = rss_bytes(broker.process.pid());
    let hostile: Vec<(TcpStream, usize)> = (0..HOSTILE_CONNECTIONS)
        .map(|_| flood_until_pushed_back(&broker.addr()))
        .collect();
    let grown = rss_bytes(broker.process.pid()).saturating_sub(baseline);
    for (_, written) in &hostile {
        eprintln!("hostile client pushed back after {written} bytes");
    }
    eprintln!("broker RSS grew by {} KiB", grown / 1024);
    assert!(
        grown < RSS_GROWTH_MAX_BYTES,
        "broker grew by {grown} bytes (bound {RSS_GROWTH_MAX_BYTES})"
    );
    // The well-behaved client on the same broker is still served, every time.
    let started = Instant::now();
    const ROUND_TRIPS: u32 = 200;
    for _ in 0..ROUND_TRIPS {
        let response = polite.call_code(RequestCode::GetAllTopicConfig.code(), &[], b"");
        assert_eq!(response.code, 0);
    }
    eprintln!(
        "well-behaved client: {ROUND_TRIPS} round trips, mean {:?}",
        started.elapsed() / ROUND_TRIPS
    );
    drop(hostile);
    // Once the hostile clients are gone the broker serves new connections as before.
    assert_eq!(
        broker
            .connect()
            .call_code(RequestCode::GetAllTopicConfig.code(), &[], b"")
            .code,
        0
    );
}

#[test]
fn connections_past_the_broker_bound_are_closed_at_accept() {
    let dir = tempfile::tempdir().unwrap();
    // Two shards, four connections broker-wide: two per shard.
    let broker = start_broker(
        &dir.path().join("store"),
        &["--set", "ringmqMaxConnections=4"],
    );
    let mut open: Vec<Client> = Vec::new();
    let mut refused = 0;
    for _ in 0..12 {
        let mut client = broker.connect();
        let request = Client::request(RequestCode::GetBrokerConfig.code(), &[], b"");
        client.send(request);
        match client.read_frame() {
            Some(response) => {
                assert_eq!(response.code, 0);
                open.push(client);
            }
            None => refused += 1,
        }
    }
    assert!(
        open.len() <= 4,
        "{} connections open past the bound of 4",
        open.len()
    );
    assert!(refused >= 8, "only {refused} of 12 refused");
    // Closing them frees their places (once the broker has seen the close: bounded retries).
    drop(open);
    let served_again = (0..100).any(|_| {
        let mut again = broker.connect();
        again.send(Client::request(
            RequestCode::GetBrokerConfig.code(),
            &[],
            b"",
        ));
        let served = again.read_frame().is_some_and(|r| r.code == 0);
        if !served {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        served
    });
    assert!(
        served_again,
        "no connection accepted after the others closed"
    );
}
