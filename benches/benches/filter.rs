//! SQL92 property filter benchmarks.
//!
//! * `sql92_eval`: evaluations per second of compiled selectors against a realistic stored
//!   properties string (UNIQ_KEY, WAIT, TAGS, KEYS and a few user properties), read in place
//!   as pulls do. Goal: ≥ 5M evaluations/s per core. Each expression runs two ways in the same
//!   process, so their ratio holds however loaded the machine is: `single_pass` (what pulls
//!   use: one scan of the properties string fills every referenced property) and
//!   `per_reference` (one scan of the string per property reference, the earlier path).
//! * `pull_scan`: one pass over a 20 000-record queue (128 B bodies, tail cache) by pulls of
//!   32, with no filter and with a 10 %-selective SQL92 filter (`sel = 3`, `sel` cycling 0‥9);
//!   throughput is records passed over per second, so the two compare directly.
//!
//! The machine these run on is shared and often oversubscribed, so besides criterion's wall
//! clock figures each benchmark prints a `STATS` line measured in this thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`): evaluations or records per CPU-second, i.e. per core, which
//! other processes' load does not inflate.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringmq_broker::filter::{RawProperties, SqlFilter};
use ringmq_broker::store::{FlushMode, GetRequest, RecordFilter, Store, StoreConfig};
use ringmq_proto::message::{encode_properties, Record};
use ringmq_testkit::sample_record;

const PROPERTIES: [(&str, &str); 8] = [
    ("UNIQ_KEY", "7F00000100002A9F0000000000000001"),
    ("WAIT", "true"),
    ("TAGS", "TagA"),
    ("KEYS", "order-1234"),
    ("region", "eu-west"),
    ("price", "17.25"),
    ("qty", "12"),
    ("vip", "true"),
];

const EXPRESSIONS: [(&str, &str); 5] = [
    ("int_gt", "qty > 10"),
    ("string_eq", "region = 'eu-west'"),
    (
        "compound",
        "TAGS = 'TagA' AND region IN ('eu-west', 'us-east') AND price BETWEEN 10 AND 20.5",
    ),
    ("missing_prop", "color = 'red' OR qty < 5"),
    (
        "is_not_null_or",
        "vip IS NOT NULL AND (qty >= 12 OR price > 100.0)",
    ),
];

/// This thread's CPU time in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Evaluations per CPU-second of `eval` on `raw`, over a fixed count; and how many matched.
fn cpu_rate(raw: &[u8], eval: impl Fn(&[u8]) -> bool) -> (f64, u64) {
    const EVALS: u64 = 2_000_000;
    let start = thread_cpu_ns();
    let mut matched = 0u64;
    for _ in 0..EVALS {
        matched += u64::from(eval(std::hint::black_box(raw)));
    }
    let cpu_ns = (thread_cpu_ns() - start).max(1);
    (EVALS as f64 * 1e9 / cpu_ns as f64, matched)
}

fn single_pass(filter: &SqlFilter) -> impl Fn(&[u8]) -> bool + '_ {
    move |raw| filter.matches_properties(raw)
}

fn per_reference(filter: &SqlFilter) -> impl Fn(&[u8]) -> bool + '_ {
    move |raw| filter.matches(&RawProperties(raw))
}

fn eval_rate(c: &mut Criterion) {
    let mut raw = Vec::new();
    encode_properties(PROPERTIES, &mut raw);
    let mut group = c.benchmark_group("sql92_eval");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    for (name, expression) in EXPRESSIONS {
        let filter = SqlFilter::compile(expression).expect("bench expressions compile");
        // Interleaved, so both arms see the same load.
        let (one, matched) = cpu_rate(&raw, single_pass(&filter));
        let (each, matched_each) = cpu_rate(&raw, per_reference(&filter));
        assert_eq!(matched, matched_each, "both paths agree");
        eprintln!(
            "STATS sql92_eval {name}: single_pass {:.2}M, per_reference {:.2}M evaluations per \
             CPU-second, ratio {:.2} (matched {matched})",
            one / 1e6,
            each / 1e6,
            one / each
        );
        let single = single_pass(&filter);
        group.bench_function(BenchmarkId::new(name, "single_pass"), |b| {
            b.iter(|| single(std::hint::black_box(&raw)))
        });
        let each = per_reference(&filter);
        group.bench_function(BenchmarkId::new(name, "per_reference"), |b| {
            b.iter(|| each(std::hint::black_box(&raw)))
        });
    }
    group.finish();
}

const RECORDS: u64 = 20_000;
const PULL_BATCH: u32 = 32;

fn executor() -> glommio::LocalExecutor {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("glommio executor")
}

async fn fill(store: &Store) {
    let body = [b'p'; 128];
    let mut props = Vec::new();
    for chunk in 0..RECORDS / 100 {
        let mut bufs = Vec::with_capacity(100);
        for i in 0..100 {
            props.clear();
            let sel = ((chunk * 100 + i) % 10).to_string();
            encode_properties(
                [
                    ("TAGS", "TagA"),
                    ("sel", sel.as_str()),
                    ("region", "eu-west"),
                ],
                &mut props,
            );
            bufs.push(props.clone());
        }
        let records: Vec<Record<'_>> = bufs
            .iter()
            .map(|p| sample_record(b"FilterBench", 0, &body, p))
            .collect();
        store.append(&records).await.unwrap();
    }
}

/// Pulls the whole queue `passes` times; returns the time and the records delivered.
async fn scan(store: &Store, filter: Option<&dyn RecordFilter>, passes: u64) -> (Duration, u64) {
    let start = Instant::now();
    let cpu_start = thread_cpu_ns();
    let mut delivered = 0;
    for _ in 0..passes {
        let mut offset = 0;
        while offset < RECORDS {
            let req = GetRequest {
                topic: "FilterBench",
                queue_id: 0,
                offset,
                max_count: PULL_BATCH,
                max_bytes: 1 << 20,
                tag_hashes: None,
            };
            let res = store.get_messages_matching(&req, filter).await.unwrap();
            delivered += u64::from(res.message_count);
            offset = res.next_begin_offset;
        }
    }
    let cpu_ns = (thread_cpu_ns() - cpu_start).max(1);
    let scanned = passes * RECORDS;
    eprintln!(
        "STATS pull_scan cpu: {:.2}M records scanned per CPU-second, {:.2}M delivered per \
         CPU-second",
        scanned as f64 * 1e3 / cpu_ns as f64,
        delivered as f64 * 1e3 / cpu_ns as f64
    );
    (start.elapsed(), delivered)
}

fn pull_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("pull_scan_128B");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(RECORDS));
    let selective = SqlFilter::compile("sel = 3").unwrap();
    for (name, filter) in [("no_filter", None), ("sql92_10pct", Some(&selective))] {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().unwrap();
                executor().run(async {
                    let mut config = StoreConfig::new(dir.path(), 0);
                    config.segment_size_bytes = 32 << 20;
                    config.flush_mode = FlushMode::Async;
                    config.tail_cache_bytes = 64 << 20;
                    let store = Store::open(config).await.unwrap();
                    fill(&store).await;
                    let filter = filter.map(|f| f as &dyn RecordFilter);
                    let (elapsed, delivered) = scan(&store, filter, iters).await;
                    eprintln!("STATS pull_scan {name}: {delivered} delivered over {iters} passes");
                    store.close().await.unwrap();
                    elapsed
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, eval_rate, pull_scan);
criterion_main!(benches);
