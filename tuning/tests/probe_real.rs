//! The disk probe, for real: O_DIRECT through io_uring on a temporary directory, tiny bounds.

use std::time::Duration;

use ringmq_tune::probe::{probe_disk, ProbeOptions, StoppedBy, MIN_BYTE_CAP};
use ringmq_tune::TuneError;

fn assert_ordered(name: &str, l: &ringmq_tune::probe::LatencySummary) {
    assert!(l.ops > 0, "{name}: no samples");
    assert!(l.p50_us > 0.0, "{name}: {l:?}");
    assert!(
        l.p50_us <= l.p99_us && l.p99_us <= l.p999_us && l.p999_us <= l.max_us,
        "{name}: {l:?}"
    );
}

#[test]
fn byte_cap_ends_every_phase_with_exact_counts_and_no_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB cap: 768 KiB sequential (one write), 128 KiB = 32 x 4 KiB for each latency phase.
    // The time budget is far larger than that work needs, so bytes end every phase.
    let result = probe_disk(&ProbeOptions {
        dir: dir.path().to_path_buf(),
        duration: Duration::from_secs(30),
        max_bytes: MIN_BYTE_CAP,
    })
    .unwrap();
    let seq = &result.sequential_write;
    assert_eq!(seq.stopped_by, StoppedBy::Bytes);
    assert_eq!(seq.bytes_written, 768 << 10);
    assert_eq!(seq.block_bytes, 768 << 10);
    assert!(seq.megabytes_per_s > 0.0);
    assert_eq!(result.write_4k.stopped_by, StoppedBy::Bytes);
    assert_eq!(result.write_4k.ops, 32);
    assert_eq!(result.fdatasync_4k.stopped_by, StoppedBy::Bytes);
    assert_eq!(result.fdatasync_4k.ops, 32);
    assert_ordered("write_4k", &result.write_4k);
    assert_ordered("fdatasync_4k", &result.fdatasync_4k);
    // Phase 4 rewrites phase 1's 768 KiB: 192 x 4 KiB.
    assert_eq!(result.fdatasync_4k_overwrite.stopped_by, StoppedBy::Bytes);
    assert_eq!(result.fdatasync_4k_overwrite.ops, 192);
    assert_ordered("fdatasync_4k_overwrite", &result.fdatasync_4k_overwrite);
    assert!(result.preallocated);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "probe file left behind"
    );
    // The figures survive a JSON round trip (recommend reads them back).
    let json = serde_json::to_string(&result).unwrap();
    let back: ringmq_tune::probe::DiskProbe = serde_json::from_str(&json).unwrap();
    assert_eq!(back.fdatasync_4k.ops, 32);
}

#[test]
fn time_budget_ends_phases_before_a_large_cap() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of room per latency phase (16384 fdatasyncs) cannot be used up in 25 ms.
    let result = probe_disk(&ProbeOptions {
        dir: dir.path().to_path_buf(),
        duration: Duration::from_millis(100),
        max_bytes: 512 << 20,
    })
    .unwrap();
    assert_eq!(result.fdatasync_4k.stopped_by, StoppedBy::Time);
    assert!(result.fdatasync_4k.ops >= 1);
    assert_eq!(result.fdatasync_4k_overwrite.stopped_by, StoppedBy::Time);
    assert!(result.sequential_write.bytes_written <= 384 << 20);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "probe file left behind"
    );
}

#[test]
fn bad_bounds_and_missing_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let small = probe_disk(&ProbeOptions {
        dir: dir.path().to_path_buf(),
        duration: Duration::from_secs(1),
        max_bytes: 4096,
    });
    assert!(matches!(small, Err(TuneError::ProbeBounds(_))), "{small:?}");
    let missing = probe_disk(&ProbeOptions {
        dir: dir.path().join("absent"),
        duration: Duration::from_secs(1),
        max_bytes: MIN_BYTE_CAP,
    })
    .unwrap_err();
    let text = missing.to_string();
    assert!(
        text.contains("open O_DIRECT") && text.contains("absent"),
        "{text}"
    );
}
