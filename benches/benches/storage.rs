//! Storage benchmarks: append throughput (128 B and 1 KiB bodies, ASYNC_FLUSH and SYNC_FLUSH,
//! 1 / 16 / 256 concurrent appenders) and pull throughput from the tail cache and from disk.
//!
//! Each measurement runs on a fresh glommio executor and a fresh store in a temp directory
//! (set `RINGMQ_BENCH_DIR` to put it on another disk). Alongside criterion's figures, every
//! append benchmark prints one `STATS` line to stderr with the store's counters for its last
//! sample: writes, fdatasyncs and records per fdatasync (group commit at work), mean write and
//! fdatasync latency, writes that overlapped an fdatasync, zero-ahead bytes and fdatasyncs.
//! `RINGMQ_BENCH_ZERO_AHEAD=<bytes>` overrides the store's `zero_ahead_bytes` (0: off).

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringmq_broker::store::{FlushMode, GetRequest, GetStatus, StatsSnapshot, Store, StoreConfig};
use ringmq_proto::message::Record;
use ringmq_testkit::sample_record;

fn bench_root() -> PathBuf {
    std::env::var_os("RINGMQ_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn executor() -> glommio::LocalExecutor {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("glommio executor")
}

fn config(root: &Path, mode: FlushMode, tail_cache_bytes: usize) -> StoreConfig {
    let mut c = StoreConfig::new(root, 0);
    // Small segments: every sample preallocates a fresh one (and the dev VM's disk frees deleted
    // blocks lazily).
    c.segment_size_bytes = 32 << 20;
    c.flush_mode = mode;
    c.tail_cache_bytes = tail_cache_bytes;
    // `RINGMQ_BENCH_ZERO_AHEAD=0` turns the zero-ahead writer off (A/B of that one change).
    if let Some(v) = std::env::var_os("RINGMQ_BENCH_ZERO_AHEAD") {
        c.zero_ahead_bytes = v
            .to_str()
            .and_then(|v| v.parse().ok())
            .expect("RINGMQ_BENCH_ZERO_AHEAD is a byte count");
    }
    c
}

fn record<'a>(topic: &'a str, queue_id: i32, body: &'a [u8]) -> Record<'a> {
    sample_record(
        topic.as_bytes(),
        queue_id,
        body,
        b"TAGS\x01TagA\x02UNIQ_KEY\x017F00000100002A9F0000000000000001\x02",
    )
}

/// Waits (bounded, 10 s) until the store's zero-ahead writer has fdatasynced its first window;
/// returns at once when zero-ahead is off.
async fn wait_for_first_zero_fill(store: &Store) {
    if store.config().zero_ahead_bytes == 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.stats().zero_fdatasyncs == 0 && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// Records each queue gets before the clock: one more than a consume-queue page holds, so the
/// first write round writes a full page and creates the file whatever the write cadence (a
/// partial page waits for a checkpoint, which would start the clock at another moment).
const WARM_ENTRIES_PER_QUEUE: usize = 4096 / 20 + 1;

/// A running broker's queues already have their files: appends a page of records to every
/// queue (one batch per queue) and waits (bounded, 30 s) until each queue's file exists, so the
/// clock measures appends, not ext4 creating a thousand inodes.
async fn create_queue_files(store: &Store, queues: usize) {
    for q in 0..queues {
        let batch = vec![record("BenchmarkTest", q as i32, b"w"); WARM_ENTRIES_PER_QUEUE];
        store.append(&batch).await.unwrap();
    }
    let dir = store
        .config()
        .shard_dir()
        .join("consumequeue/BenchmarkTest");
    let deadline = Instant::now() + Duration::from_secs(30);
    let files = || std::fs::read_dir(&dir).map_or(0, |d| d.count());
    while files() < queues && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

/// Appends `total` single-record batches from `appenders` concurrent tasks (8 queues) and
/// returns the wall time of the appends alone plus the store's counters.
fn run_appends(
    mode: FlushMode,
    body_len: usize,
    appenders: usize,
    queues: usize,
    total: u64,
) -> (Duration, StatsSnapshot) {
    let dir = tempfile::tempdir_in(bench_root()).unwrap();
    run_appends_with(
        config(dir.path(), mode, 64 << 20),
        body_len,
        appenders,
        queues,
        total,
    )
}

fn run_appends_with(
    cfg: StoreConfig,
    body_len: usize,
    appenders: usize,
    queues: usize,
    total: u64,
) -> (Duration, StatsSnapshot) {
    let ex = executor();
    ex.run(async {
        let store = Rc::new(Store::open(cfg).await.unwrap());
        // Create and preallocate the first segment before the clock starts.
        store.append(&[record("Warmup", 0, b"w")]).await.unwrap();
        // Likewise let the zero-ahead writer fill its first window (a long-running store's
        // steady state: it then refills in the background as the log grows).
        wait_for_first_zero_fill(&store).await;
        create_queue_files(&store, queues).await;
        let before = store.stats();
        let per_task = total.div_ceil(appenders as u64);
        let start = Instant::now();
        let tasks: Vec<_> = (0..appenders)
            .map(|t| {
                let store = store.clone();
                glommio::spawn_local(async move {
                    let body = vec![b'x'; body_len];
                    for n in 0..per_task as usize {
                        let q = ((t + n * appenders) % queues) as i32;
                        store
                            .append(&[record("BenchmarkTest", q, &body)])
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let elapsed = start.elapsed();
        let after = store.stats();
        let stats = StatsSnapshot {
            bytes_written: after.bytes_written - before.bytes_written,
            writes: after.writes - before.writes,
            fdatasyncs: after.fdatasyncs - before.fdatasyncs,
            records_synced: after.records_synced - before.records_synced,
            write_micros: after.write_micros - before.write_micros,
            fdatasync_micros: after.fdatasync_micros - before.fdatasync_micros,
            writes_during_fdatasync: after.writes_during_fdatasync - before.writes_during_fdatasync,
            zero_bytes: after.zero_bytes - before.zero_bytes,
            zero_fdatasyncs: after.zero_fdatasyncs - before.zero_fdatasyncs,
            cq_writes: after.cq_writes - before.cq_writes,
            cq_bytes_written: after.cq_bytes_written - before.cq_bytes_written,
            index_writes: after.index_writes - before.index_writes,
            index_bytes_written: after.index_bytes_written - before.index_bytes_written,
            ..StatsSnapshot::default()
        };
        Rc::try_unwrap(store).ok().unwrap().close().await.unwrap();
        (elapsed, stats)
    })
}

/// One `STATS` line: the store's counters for a sample, with the mean write and fdatasync
/// latency (where a round's time goes) and records per fdatasync (group commit).
fn print_stats(
    mode_name: &str,
    body_len: usize,
    appenders: usize,
    total: u64,
    elapsed: Duration,
    s: &StatsSnapshot,
) {
    let per = |num: u64, den: u64| {
        if den > 0 {
            num as f64 / den as f64
        } else {
            0.0
        }
    };
    eprintln!(
        "STATS mode={mode_name} body={body_len} appenders={appenders} records={total} \
         secs={:.4} writes={} bytes_written={} fdatasyncs={} records_per_fdatasync={:.1} \
         write_us_mean={:.0} fdatasync_us_mean={:.0} writes_during_fdatasync={} \
         zero_bytes={} zero_fdatasyncs={}",
        elapsed.as_secs_f64(),
        s.writes,
        s.bytes_written,
        s.fdatasyncs,
        per(s.records_synced, s.fdatasyncs),
        per(s.write_micros, s.writes),
        per(s.fdatasync_micros, s.fdatasyncs),
        s.writes_during_fdatasync,
        s.zero_bytes,
        s.zero_fdatasyncs,
    );
}

fn append_throughput(c: &mut Criterion) {
    for mode in [FlushMode::Async, FlushMode::Sync] {
        let mode_name = if mode == FlushMode::Async {
            "async_flush"
        } else {
            "sync_flush"
        };
        let mut group = c.benchmark_group(format!("append/{mode_name}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for body_len in [128usize, 1024] {
            for appenders in [1usize, 16, 256] {
                group.throughput(Throughput::Elements(1));
                let id = BenchmarkId::new(format!("{body_len}B"), format!("{appenders}_appenders"));
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let total = iters.max(8 * appenders as u64);
                        let (elapsed, stats) = run_appends(mode, body_len, appenders, 8, total);
                        print_stats(mode_name, body_len, appenders, total, elapsed, &stats);
                        // Scale to what criterion asked for (at least one record per appender ran).
                        elapsed.mul_f64(iters as f64 / total as f64)
                    })
                });
            }
        }
        group.finish();
    }
}

const READ_RECORDS: u64 = 20_000;
const PULL_BATCH: u32 = 32;

/// Appends `READ_RECORDS` 1 KiB records to one queue of `store`.
async fn fill(store: &Store) {
    let body = vec![b'r'; 1024];
    for _ in 0..READ_RECORDS / 100 {
        let recs: Vec<_> = (0..100).map(|_| record("ReadBench", 0, &body)).collect();
        store.append(&recs).await.unwrap();
    }
}

/// Times `iters` pulls of `PULL_BATCH` records at offsets spread over the queue.
async fn time_pulls(store: &Store, iters: u64) -> Duration {
    let max_start = READ_RECORDS - u64::from(PULL_BATCH);
    let mut offset = 0;
    let start = Instant::now();
    for _ in 0..iters {
        let req = GetRequest {
            topic: "ReadBench",
            queue_id: 0,
            offset,
            max_count: PULL_BATCH,
            max_bytes: 1 << 20,
            tag_hashes: None,
        };
        let res = store.get_messages(&req).await.unwrap();
        assert_eq!(
            (res.status, res.message_count),
            (GetStatus::Found, PULL_BATCH)
        );
        offset = (offset + 7919) % max_start;
    }
    start.elapsed()
}

fn read_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("pull_1KiB_x32");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(u64::from(PULL_BATCH)));
    // Tail cache: the records were just appended through a 64 MiB cache that holds the whole
    // ~21 MiB log.
    group.bench_function("tail_cache", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir_in(bench_root()).unwrap();
            executor().run(async {
                let store = Store::open(config(dir.path(), FlushMode::Async, 64 << 20))
                    .await
                    .unwrap();
                fill(&store).await;
                let elapsed = time_pulls(&store, iters).await;
                store.close().await.unwrap();
                elapsed
            })
        })
    });
    // Disk: the same log reopened with an 8 KiB cache, so every pull reads the segment with
    // O_DIRECT (128 KiB read windows).
    let dir = tempfile::tempdir_in(bench_root()).unwrap();
    executor().run(async {
        let store = Store::open(config(dir.path(), FlushMode::Async, 64 << 20))
            .await
            .unwrap();
        fill(&store).await;
        store.close().await.unwrap();
    });
    group.bench_function("disk_o_direct", |b| {
        b.iter_custom(|iters| {
            executor().run(async {
                let store = Store::open(config(dir.path(), FlushMode::Async, 8 << 10))
                    .await
                    .unwrap();
                let elapsed = time_pulls(&store, iters).await;
                store.close().await.unwrap();
                elapsed
            })
        })
    });
    group.finish();
}

const CATCH_UP_QUEUES: i32 = 8;
const CATCH_UP_RECORDS: u64 = 64 * 1024;

/// Appends `CATCH_UP_RECORDS` 1 KiB records round-robin over `CATCH_UP_QUEUES` queues (64 MiB
/// of log: the backlog of a consumer group that fell behind).
async fn fill_backlog(store: &Store) {
    let body = vec![b'c'; 1024];
    for n in 0..CATCH_UP_RECORDS / 128 {
        let recs: Vec<_> = (0..128)
            .map(|i| {
                record(
                    "CatchUp",
                    ((n * 128 + i) % CATCH_UP_QUEUES as u64) as i32,
                    &body,
                )
            })
            .collect();
        store.append(&recs).await.unwrap();
    }
}

/// Drains every queue from offset 0 with one pulling task per queue (32 records a pull, as a
/// lagging consumer group does) and returns the time taken.
async fn drain_backlog(store: &Rc<Store>) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CATCH_UP_QUEUES)
        .map(|q| {
            let store = store.clone();
            glommio::spawn_local(async move {
                let mut offset = 0;
                let max = store.max_offset("CatchUp", q);
                while offset < max {
                    let req = GetRequest {
                        topic: "CatchUp",
                        queue_id: q,
                        offset,
                        max_count: PULL_BATCH,
                        max_bytes: 1 << 20,
                        tag_hashes: None,
                    };
                    let res = store.get_messages(&req).await.unwrap();
                    assert_eq!(res.status, GetStatus::Found);
                    offset = res.next_begin_offset;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
    start.elapsed()
}

/// Catch-up: a backlog no longer in the tail cache (reopened with an 8 KiB cache), drained by
/// 8 concurrent queue pullers, with read-ahead off (each pull reads its own 128 KiB windows)
/// and on (1 MiB extents, two read ahead). Throughput in bytes of records.
fn catch_up_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("catch_up_1KiB_8q");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Bytes(CATCH_UP_RECORDS * 1024));
    let dir = tempfile::tempdir_in(bench_root()).unwrap();
    executor().run(async {
        let store = Store::open(config(dir.path(), FlushMode::Async, 64 << 20))
            .await
            .unwrap();
        fill_backlog(&store).await;
        store.close().await.unwrap();
    });
    for extents in [0usize, 16] {
        let name = if extents == 0 {
            "read_ahead_off"
        } else {
            "read_ahead_on"
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                executor().run(async {
                    let mut cfg = config(dir.path(), FlushMode::Async, 8 << 10);
                    cfg.read_ahead_extents = extents;
                    let store = Rc::new(Store::open(cfg).await.unwrap());
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iters {
                        elapsed += drain_backlog(&store).await;
                    }
                    eprintln!("STATS {name} {:?}", store.stats());
                    Rc::try_unwrap(store).ok().unwrap().close().await.unwrap();
                    elapsed
                })
            })
        });
    }
    group.finish();
}

/// Appends per sample of the queue-count bench: several flush intervals' worth, so write rounds
/// of consume-queue files are measured. 200,000 took about 0.5 s at 400k appends/s, where the
/// `DERIVED_WRITES` counts showed most samples held no complete write round.
const QUEUE_BENCH_APPENDS_MIN: u64 = 1_000_000;

/// One `DERIVED_WRITES` line per sample: the O_DIRECT writes of consume-queue and index files
/// the timed appends caused (what the write cadence changes), independent of machine load.
fn print_derived_writes(name: &str, appends: u64, s: &StatsSnapshot) {
    eprintln!(
        "DERIVED_WRITES {name} appends={appends} cq_writes={} cq_bytes={} index_writes={} index_bytes={}",
        s.cq_writes, s.cq_bytes_written, s.index_writes, s.index_bytes_written
    );
}

/// Flat with many queues: 256 appenders of 1 KiB records spread over 8, 100 and 1000 queues
/// (each queue its own consume-queue file, its full pages written every `flush_interval_ms`).
/// Same-run A/B of the checkpoint cadence: `sync_every_round` checkpoints every round, so it
/// writes every queue file's partial page and fdatasyncs each round (the layout before
/// `checkpoint_interval_ms`), `checkpoint_5s` is the default.
fn queue_count_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_queues/async_flush/1KiB_256_appenders");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    let cadences = [
        ("sync_every_round", 500),
        (
            "checkpoint_5s",
            StoreConfig::new("/", 0).checkpoint_interval_ms,
        ),
    ];
    for queues in [8usize, 100, 1000] {
        for (cadence, checkpoint_ms) in cadences {
            group.bench_function(format!("{queues}_queues/{cadence}"), |b| {
                b.iter_custom(|iters| {
                    let total = iters.max(QUEUE_BENCH_APPENDS_MIN);
                    let dir = tempfile::tempdir_in(bench_root()).unwrap();
                    let mut cfg = config(dir.path(), FlushMode::Async, 64 << 20);
                    cfg.checkpoint_interval_ms = checkpoint_ms;
                    let (elapsed, stats) = run_appends_with(cfg, 1024, 256, queues, total);
                    print_derived_writes(&format!("{queues}_queues/{cadence}"), total, &stats);
                    elapsed.mul_f64(iters as f64 / total as f64)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    append_throughput,
    read_throughput,
    catch_up_throughput,
    queue_count_throughput
);
criterion_main!(benches);
