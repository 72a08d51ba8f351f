//! `recommend` on fixture hosts with given probe figures: each value follows from its inputs.

mod common;

use std::path::Path;

use common::Fixture;
use ringmq_tune::brokerconf::{self, RECOMMENDED_KEYS};
use ringmq_tune::check::run_checks;
use ringmq_tune::probe::{DiskProbe, LatencySummary, SequentialWrite, StoppedBy};
use ringmq_tune::recommend::recommend;

fn latency(p50_us: f64, p99_us: f64, p999_us: f64) -> LatencySummary {
    LatencySummary {
        ops: 1000,
        seconds: 1.0,
        ops_per_s: 1000.0,
        p50_us,
        p99_us,
        p999_us,
        max_us: p999_us,
        mean_us: p50_us,
        stopped_by: StoppedBy::Time,
    }
}

fn probe(megabytes_per_s: f64, sync: LatencySummary) -> DiskProbe {
    DiskProbe {
        dir: "/data".into(),
        fs_type: Some("xfs".into()),
        disk: Some("nvme0n1".into()),
        duration_budget_ms: 20_000,
        byte_cap: 1 << 30,
        elapsed_ms: 20_000,
        alignment_bytes: 4096,
        preallocated: true,
        sequential_write: SequentialWrite {
            block_bytes: 1 << 20,
            queue_depth: 16,
            bytes_written: 1 << 30,
            seconds: 1.0,
            megabytes_per_s,
            final_fdatasync_us: 100.0,
            stopped_by: StoppedBy::Bytes,
        },
        write_4k: latency(40.0, 90.0, 200.0),
        fdatasync_4k_overwrite: latency(sync.p50_us / 2.0, sync.p99_us / 2.0, sync.p999_us / 2.0),
        fdatasync_4k: sync,
    }
}

#[test]
fn slow_fsync_device_gets_async_flush_with_its_cost_stated() {
    let fixture = Fixture::tuned();
    let ctx = fixture.context_with_cpus(None);
    let mut report = run_checks(&ctx);
    report.facts.store.as_mut().unwrap().free_bytes = Some(100 << 30);
    // The dev VM's fio figures (anchors §6.2).
    let slow = probe(2491.0, latency(87.0, 4750.0, 7700.0));
    let rec = recommend(&ctx, &report, Some(&slow));
    assert_eq!(rec.value("flushDiskType"), Some("ASYNC_FLUSH"));
    let flush = rec
        .settings
        .iter()
        .find(|s| s.key == "flushDiskType")
        .unwrap();
    assert!(flush.reason.contains("p99 4750 us"), "{}", flush.reason);
    assert_eq!(rec.value("flushIntervalCommitLog"), Some("500"));
    assert_eq!(rec.value("syncFlushTimeout"), Some("5000"));
    // The broker does not bound group commits: nothing to recommend for them.
    assert_eq!(rec.value("ringmqGroupCommitMaxBytes"), None);
    // 8 CPUs on 4 cores: one shard per core, all cores (fewer than 8).
    assert_eq!(rec.value("ringmqCpus"), Some("0-3"));
    // 100 GiB over 4 shards = 25 GiB each, room for 8 x 1 GiB segments.
    assert_eq!(rec.value("mappedFileSizeCommitLog"), Some("1073741824"));
    // 25% of 62.5 GiB over 4 shards, whole MiB.
    let expected_tail = (65_536_000u64 * 1024 / 4 / 4) >> 20 << 20;
    assert_eq!(
        rec.value("ringmqTailCacheBytes"),
        Some(expected_tail.to_string().as_str())
    );
    assert_eq!(
        rec.value("storePathRootDir"),
        Some(fixture.store().to_str().unwrap())
    );
}

#[test]
fn plp_class_device_gets_sync_flush_and_slow_tails_raise_timeouts() {
    let fixture = Fixture::tuned();
    let ctx = fixture.context();
    let report = run_checks(&ctx);
    let fast = probe(3000.0, latency(30.0, 200.0, 400.0));
    let rec = recommend(&ctx, &report, Some(&fast));
    assert_eq!(rec.value("flushDiskType"), Some("SYNC_FLUSH"));
    let very_slow = probe(100.0, latency(5000.0, 80_000.0, 900_000.0));
    let rec = recommend(&ctx, &report, Some(&very_slow));
    assert_eq!(rec.value("flushDiskType"), Some("ASYNC_FLUSH"));
    assert_eq!(rec.value("flushIntervalCommitLog"), Some("8000"));
    assert_eq!(rec.value("syncFlushTimeout"), Some("9000"));
    // Given cores are kept (1-3 are on three different cores).
    assert_eq!(rec.value("ringmqCpus"), Some("1-3"));
}

#[test]
fn segment_size_shrinks_with_free_space_and_stops_at_64_mib() {
    let fixture = Fixture::tuned();
    let ctx = fixture.context();
    let mut report = run_checks(&ctx);
    report.facts.store.as_mut().unwrap().free_bytes = Some(3 << 30); // 1 GiB per shard
    let rec = recommend(&ctx, &report, None);
    assert_eq!(
        rec.value("mappedFileSizeCommitLog"),
        Some((128u64 << 20).to_string().as_str())
    );
    report.facts.store.as_mut().unwrap().free_bytes = Some(1 << 20);
    let rec = recommend(&ctx, &report, None);
    assert_eq!(
        rec.value("mappedFileSizeCommitLog"),
        Some((64u64 << 20).to_string().as_str())
    );
    // Without a probe the flush values are RocketMQ's defaults and say so.
    assert_eq!(rec.value("flushDiskType"), Some("ASYNC_FLUSH"));
    let reason = &rec
        .settings
        .iter()
        .find(|s| s.key == "flushDiskType")
        .unwrap()
        .reason;
    assert!(reason.contains("No disk probe"), "{reason}");
}

#[test]
fn large_hosts_leave_the_first_core_to_interrupts_and_smt_siblings_are_dropped() {
    let fixture = Fixture::tuned();
    fixture.write("/sys/devices/system/cpu/online", "0-15\n");
    for cpu in 0..16 {
        fixture.write(
            &format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"),
            &format!("{cpu}\n"),
        );
    }
    let ctx = fixture.context_with_cpus(None);
    let rec = recommend(&ctx, &run_checks(&ctx), None);
    assert_eq!(rec.value("ringmqCpus"), Some("1-15"));

    let fixture = Fixture::tuned();
    let ctx = fixture.context_with_cpus(Some("1-5"));
    let rec = recommend(&ctx, &run_checks(&ctx), None);
    assert_eq!(rec.value("ringmqCpus"), Some("1-4"));
}

#[test]
fn output_is_a_broker_conf_with_a_reason_above_every_key() {
    let fixture = Fixture::tuned();
    let ctx = fixture.context();
    let report = run_checks(&ctx);
    let text = recommend(
        &ctx,
        &report,
        Some(&probe(2000.0, latency(80.0, 900.0, 2000.0))),
    )
    .to_broker_conf();
    let parsed = brokerconf::parse(Path::new("recommended.conf"), &text).unwrap();
    let keys: Vec<&str> = parsed.keys().map(String::as_str).collect();
    let mut wanted: Vec<&str> = RECOMMENDED_KEYS.to_vec();
    wanted.sort();
    assert_eq!(keys, wanted);
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with('#') && line.contains('=') {
            assert!(lines[i - 1].starts_with("# "), "no reason above {line}");
        }
    }
    assert!(text.contains("# Memory budget"));
    assert!(text.contains("memlock:"));
}
