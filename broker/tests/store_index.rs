//! The key index on disk: QUERY_MESSAGE by key and UNIQ_KEY, VIEW_MESSAGE_BY_ID and
//! SEARCH_OFFSET_BY_TIMESTAMP answer the same before and after a clean restart and after
//! kill -9 (a real child process); opening reads only the index files' header pages and the
//! newest file, never the others' entries or filters (counted, not timed); retention deletes
//! index files and their filters with the segments their entries point into.
//!
//! Key filters: a lookup of a key held by one of many full files walks about one file (counted
//! as files walked and bytes read, against the same lookups with filters off); a missing,
//! damaged or truncated filter file, or a budget too small to cache filters, falls back to
//! walking and still answers right, and missing filters are rebuilt.

mod store_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringmq_broker::store::{FlushMode, Store, StoreConfig};
use store_support::{record, run, small_config, split_records};

const TOPIC: &str = "IDX";
const QUEUES: i32 = 3;
const GROUPS: u64 = 10;
const CHILD_ENV: &str = "RINGMQ_STORE_INDEX_CHILD";

/// One appended record, as the append reported it.
#[derive(Debug, Clone, Copy)]
struct Stored {
    i: u64,
    phys: u64,
    ts: i64,
    queue: i32,
    queue_offset: u64,
}

fn props(i: u64) -> String {
    format!("KEYS\x01k{i} g{}\x02UNIQ_KEY\x01U{i:08}\x02", i % GROUPS)
}

fn body(i: u64) -> Vec<u8> {
    let mut b = format!("body-{i}-").into_bytes();
    b.resize(200, b'x');
    b
}

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = small_config(dir, FlushMode::Async);
    c.retention_check_interval_ms = 3_600_000; // only explicit passes
    c.index_cache_pages = 256;
    c
}

/// Appends records `from..from+n` in batches of 5; each has two KEYS and a UNIQ_KEY.
async fn append_keyed(store: &Store, from: u64, n: u64) -> Vec<Stored> {
    let mut out = Vec::new();
    let mut i = from;
    while i < from + n {
        let ids: Vec<u64> = (i..(i + 5).min(from + n)).collect();
        let bodies: Vec<Vec<u8>> = ids.iter().map(|&i| body(i)).collect();
        let ps: Vec<String> = ids.iter().map(|&i| props(i)).collect();
        let recs: Vec<_> = ids
            .iter()
            .zip(bodies.iter().zip(&ps))
            .map(|(&i, (b, p))| record(TOPIC, (i % QUEUES as u64) as i32, b, p.as_bytes()))
            .collect();
        let res = store.append(&recs).await.unwrap();
        for (&i, r) in ids.iter().zip(&res.records) {
            out.push(Stored {
                i,
                phys: r.physical_offset,
                ts: r.store_timestamp,
                queue: (i % QUEUES as u64) as i32,
                queue_offset: r.queue_offset,
            });
        }
        i += ids.len() as u64;
    }
    out
}

/// QUERY_MESSAGE by the UNIQ_KEY `stored` was written with, over all time.
async fn query_uniq(store: &Store, stored: &Stored) -> ringmq_broker::store::QueryResult {
    let uniq = format!("U{:08}", stored.i);
    store
        .query_messages(TOPIC, &uniq, true, 32, 0, i64::MAX)
        .await
        .unwrap()
}

/// Every sampled record answers by UNIQ_KEY, by key and by id with its own bytes.
async fn check_ids(store: &Store, stored: &[Stored], every: usize) {
    for s in stored.iter().step_by(every).chain(stored.last()) {
        let q = query_uniq(store, s).await;
        assert_eq!(q.message_count, 1, "UNIQ_KEY of record {}", s.i);
        let recs = split_records(&q.body);
        assert_eq!(recs[0].record.physical_offset as u64, s.phys);
        assert_eq!(recs[0].record.body, &body(s.i)[..]);
        let k = store
            .query_messages(TOPIC, &format!("k{}", s.i), false, 32, 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(k.message_count, 1, "key k{}", s.i);
        let v = store.view_message(s.phys).await.unwrap().expect("by id");
        assert_eq!(split_records(&v)[0].record.body, &body(s.i)[..]);
    }
}

/// A shared key (`g3`) answers every record, newest first, within time ranges and limits;
/// SEARCH_OFFSET_BY_TIMESTAMP finds the first record at or after a store time. With `exact`
/// false (after kill -9) records appended but never acknowledged may come on top.
async fn check_groups_and_time(store: &Store, stored: &[Stored], exact: bool) {
    let g3: Vec<&Stored> = stored.iter().filter(|s| s.i % GROUPS == 3).collect();
    let count = |q: &ringmq_broker::store::QueryResult| q.message_count as usize;
    let all = store
        .query_messages(TOPIC, "g3", false, 100_000, 0, i64::MAX)
        .await
        .unwrap();
    assert!(count(&all) == g3.len() || (!exact && count(&all) > g3.len()));
    let recs = split_records(&all.body);
    assert!(recs
        .windows(2)
        .all(|w| w[0].record.physical_offset > w[1].record.physical_offset));
    let five = store
        .query_messages(TOPIC, "g3", false, 5, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(five.message_count, 5);
    assert_eq!(&five.body[..], &all.body[..five.body.len()], "newest first");
    let t = stored[stored.len() / 2].ts;
    let later = store
        .query_messages(TOPIC, "g3", false, 100_000, t, i64::MAX)
        .await
        .unwrap();
    let want = g3.iter().filter(|s| s.ts >= t).count();
    assert!(count(&later) == want || (!exact && count(&later) > want));
    let earlier = store
        .query_messages(TOPIC, "g3", false, 100_000, 1, t)
        .await
        .unwrap();
    let want = g3.iter().filter(|s| s.ts <= t).count();
    assert!(count(&earlier) == want || (!exact && count(&earlier) > want));
    for q in 0..QUEUES {
        let first = stored
            .iter()
            .find(|s| s.queue == q && s.ts >= t)
            .map(|s| s.queue_offset);
        let found = store.search_offset_by_time(TOPIC, q, t).await.unwrap();
        let want = first.unwrap_or_else(|| store.max_offset(TOPIC, q));
        if exact {
            assert_eq!(found, want, "queue {q}");
        } else {
            // Records stored but never acknowledged (killed before the ACK line) may come
            // first; every acknowledged record before the answer is older than `t`.
            assert!(found <= want, "queue {q}: {found} > {want}");
            assert!(stored
                .iter()
                .filter(|s| s.queue == q && s.queue_offset < found)
                .all(|s| s.ts < t));
        }
    }
}

/// Names of the files on disk in the index directory ending with `suffix`, oldest first.
fn names_ending(cfg: &StoreConfig, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cfg.shard_dir().join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// Names of the index files on disk, oldest first.
fn index_files(cfg: &StoreConfig) -> Vec<String> {
    names_ending(cfg, ".idx")
}

/// Names of the filter files on disk, oldest first.
fn filter_files(cfg: &StoreConfig) -> Vec<String> {
    names_ending(cfg, ".filter")
}

/// No filter file outlives its index file.
fn assert_filters_have_files(cfg: &StoreConfig) {
    let idx = index_files(cfg);
    for f in filter_files(cfg) {
        let file = f.replace(".filter", ".idx");
        assert!(idx.contains(&file), "{f} without {file}: {idx:?}");
    }
}

/// Bytes of the index files on disk, and how many there are.
fn index_on_disk(cfg: &StoreConfig) -> (u64, usize) {
    let mut bytes = 0;
    let mut n = 0;
    for e in std::fs::read_dir(cfg.shard_dir().join("index")).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().ends_with(".idx") {
            bytes += e.metadata().unwrap().len();
            n += 1;
        }
    }
    (bytes, n)
}

/// Size of one full index file of `cfg`'s layout.
fn file_bytes(cfg: &StoreConfig) -> u64 {
    let slots = (u64::from(cfg.index_slots_per_file) * 4).div_ceil(4096) * 4096;
    4096 + slots + u64::from(cfg.index_entries_per_file) * 32
}

/// Size of one filter file of `cfg`'s layout: a header page and a byte per entry, in pages.
fn filter_file_bytes(cfg: &StoreConfig) -> u64 {
    4096 + u64::from(cfg.index_entries_per_file).div_ceil(4096) * 4096
}

#[test]
fn index_answers_by_key_id_and_time_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let stored = run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let stored = append_keyed(&store, 0, 1500).await;
        check_ids(&store, &stored, 7).await;
        check_groups_and_time(&store, &stored, true).await;
        assert!(store.stats().index_files >= 10, "{:?}", store.stats());
        store.close().await.unwrap();
        stored
    });
    let (on_disk, files) = index_on_disk(&cfg);
    // A clean close leaves a filter beside every index file, the one being filled included.
    assert_eq!(filter_files(&cfg).len(), files, "{:?}", filter_files(&cfg));
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let at_open = store.stats().index_bytes_read;
        // A header page per file and the newest file with its filter at most: no other file's
        // entries, no other file's filter.
        let filter_at_open = store.stats().index_filter_bytes_read;
        assert!(
            filter_at_open <= filter_file_bytes(&cfg),
            "{filter_at_open}"
        );
        let bound = files as u64 * 4096 + file_bytes(&cfg) + filter_file_bytes(&cfg);
        assert!(
            at_open <= bound,
            "open read {at_open} index bytes, bound {bound}"
        );
        assert!(at_open * 2 < on_disk, "open read {at_open} of {on_disk}");
        check_ids(&store, &stored, 7).await;
        check_groups_and_time(&store, &stored, true).await;
        assert!(
            store.stats().index_bytes_read > at_open,
            "lookups in full files read their pages from disk"
        );
        // Appends go on into the reopened newest file and answer too.
        let more = append_keyed(&store, 1500, 100).await;
        check_ids(&store, &more, 3).await;
        store.close().await.unwrap();
    });
}

/// The child: appends keyed records forever from one task, printing one line per record
/// after its append completed: `ACK i phys ts queue queue_offset`.
fn child_main(spec: &str) -> ! {
    let (dir, start) = spec.split_once('|').expect("dir|start");
    let start: u64 = start.parse().expect("start index");
    let cfg = config(std::path::Path::new(dir));
    run(|| async move {
        let store = Store::open(cfg).await.expect("child opens the store");
        for round in 0u64.. {
            for s in append_keyed(&store, start + round * 5, 5).await {
                println!(
                    "ACK {} {} {} {} {}",
                    s.i, s.phys, s.ts, s.queue, s.queue_offset
                );
            }
        }
    });
    unreachable!("the child appends until killed")
}

fn parse_ack(line: &str) -> Option<Stored> {
    let f: Vec<&str> = line.split(' ').collect();
    if f.len() != 6 || f[0] != "ACK" {
        return None;
    }
    Some(Stored {
        i: f[1].parse().ok()?,
        phys: f[2].parse().ok()?,
        ts: f[3].parse().ok()?,
        queue: f[4].parse().ok()?,
        queue_offset: f[5].parse().ok()?,
    })
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the child, SIGKILLs it once it acknowledged `kill_after` records and returns every
/// acknowledgement it printed whole.
fn run_child_and_kill(dir: &str, start: u64, kill_after: usize) -> Vec<Stored> {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "index_survives_kill9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{dir}|{start}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut guard = ChildGuard(child);
    let stdout = guard.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(a) = parse_ack(&line) {
                if tx.send(a).is_err() {
                    break;
                }
            }
        }
    });
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.len() < kill_after {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(a) => acks.push(a),
            Err(_) => panic!("child acknowledged only {} records in time", acks.len()),
        }
    }
    guard.0.kill().expect("SIGKILL child");
    guard.0.wait().unwrap();
    reader.join().unwrap();
    acks.extend(rx.try_iter());
    acks
}

#[test]
fn index_survives_kill9() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_main(&spec);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    // Twice: the second child reopens what the first left after kill -9.
    let mut acked = run_child_and_kill(dir.path().to_str().unwrap(), 0, 1200);
    let (_, files) = index_on_disk(&cfg);
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let at_open = store.stats().index_bytes_read;
        // Headers, and the newest file twice at most (the cut, then its slot table and filter
        // rebuilt), never a full file's filter.
        let bound = files as u64 * 4096 + 2 * file_bytes(&cfg) + filter_file_bytes(&cfg);
        assert!(
            at_open <= bound,
            "open read {at_open} index bytes, bound {bound}"
        );
        let filter_at_open = store.stats().index_filter_bytes_read;
        assert!(
            filter_at_open <= filter_file_bytes(&cfg),
            "{filter_at_open}"
        );
        check_ids(&store, &acked, 11).await;
        check_groups_and_time(&store, &acked, false).await;
        let s = store.stats();
        assert!(
            s.index_files_skipped > s.index_files_walked,
            "filters rule files out after kill -9 too: {s:?}"
        );
        store.close().await.unwrap();
    });
    acked.extend(run_child_and_kill(
        dir.path().to_str().unwrap(),
        1_000_000,
        1200,
    ));
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        check_ids(&store, &acked, 11).await;
        check_groups_and_time(&store, &acked, false).await;
        store.close().await.unwrap();
    });
}

/// Waits (bounded) until the periodic flush has put every index file on disk, and a checkpoint
/// the filter of every full one (all but the file being filled).
async fn await_files_on_disk(store: &Store, cfg: &StoreConfig) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while (index_files(cfg).len() as u64) < store.stats().index_files
        || filter_files(cfg).len() + 1 < index_files(cfg).len()
    {
        assert!(
            Instant::now() < deadline,
            "index files or filters never reached the disk"
        );
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs retention passes "100 hours from now" until one deletes segments (the periodic task
/// must first checkpoint them), within a bounded deadline.
async fn retain(store: &Store) -> ringmq_broker::store::RetentionReport {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let r = store
            .run_retention(now + 100 * 3600 * 1000, Some(0))
            .await
            .unwrap();
        if r.segments_deleted > 0 {
            return r;
        }
        assert!(Instant::now() < deadline, "nothing became deletable");
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn retention_removes_index_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (kept, gone) = run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let stored = append_keyed(&store, 0, 1500).await;
        await_files_on_disk(&store, &cfg).await;
        let before = index_files(&cfg);
        let filters_before = filter_files(&cfg);
        assert!(before.len() >= 10, "{before:?}");
        let in_memory = store.stats().index_files;
        let report = retain(&store).await;
        let after = index_files(&cfg);
        assert!(
            before.iter().filter(|f| !after.contains(f)).count() >= 2,
            "{before:?} -> {after:?}"
        );
        assert!(
            !after.contains(&before[0]),
            "the oldest index file is deleted"
        );
        // (The periodic flush may meanwhile have created the file being filled on disk.)
        let deleted = before.iter().filter(|f| !after.contains(f)).count();
        assert_eq!(
            in_memory - store.stats().index_files,
            deleted as u64,
            "the store forgets exactly the files it deleted"
        );
        // The deleted files' filters went with them, the others stay.
        let filters = filter_files(&cfg);
        let filters_gone = filters_before.iter().filter(|f| !filters.contains(f));
        assert_eq!(
            filters_gone.count(),
            deleted,
            "{filters_before:?} -> {filters:?}"
        );
        assert_filters_have_files(&cfg);
        let (gone, kept): (Vec<Stored>, Vec<Stored>) =
            stored.iter().partition(|s| s.phys < report.min_offset);
        assert!(!gone.is_empty() && !kept.is_empty());
        store.close().await.unwrap();
        (kept, gone)
    });
    let files = index_files(&cfg);
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        assert_eq!(
            index_files(&cfg),
            files,
            "a restart keeps the same index files"
        );
        assert_filters_have_files(&cfg);
        for s in gone.iter().step_by(13) {
            let q = query_uniq(&store, s).await;
            assert_eq!(q.message_count, 0, "removed record {} still answers", s.i);
        }
        check_ids(&store, &kept, 13).await;
        store.close().await.unwrap();
    });
}

/// Files walked and skipped, and index bytes read outside filter files, by UNIQ_KEY lookups of
/// `stored` (each must answer its own record).
async fn lookup_cost(store: &Store, stored: &[Stored]) -> (u64, u64, u64) {
    let before = store.stats();
    for s in stored {
        let q = query_uniq(store, s).await;
        assert_eq!(q.message_count, 1, "UNIQ_KEY of record {}", s.i);
        assert_eq!(
            split_records(&q.body)[0].record.physical_offset as u64,
            s.phys
        );
    }
    let after = store.stats();
    let pages =
        |s: &ringmq_broker::store::StatsSnapshot| s.index_bytes_read - s.index_filter_bytes_read;
    (
        after.index_files_walked - before.index_files_walked,
        after.index_files_skipped - before.index_files_skipped,
        pages(&after) - pages(&before),
    )
}

/// The index file holding record `i`'s UNIQ_KEY entry: each record has three entries (its two
/// KEYS, then UNIQ_KEY), in append order from the first record.
fn uniq_file(cfg: &StoreConfig, i: u64) -> usize {
    ((3 * i + 2) / u64::from(cfg.index_entries_per_file)) as usize
}

/// Appends 1500 keyed records (17 full files and one being filled) and closes the store.
fn filled_store(cfg: &StoreConfig) -> Vec<Stored> {
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let stored = append_keyed(&store, 0, 1500).await;
        store.close().await.unwrap();
        stored
    })
}

#[test]
fn a_lookup_reads_about_one_files_pages_of_many() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // No page cache: every walk reads its slot and chain pages from disk, so bytes count walks.
    cfg.index_cache_pages = 0;
    let stored = filled_store(&cfg);
    let full = index_files(&cfg).len() - 1;
    assert!(full >= 15, "{full} full files");
    // Keys held by full files (the file being filled answers from memory either way).
    let sample: Vec<Stored> = stored.iter().step_by(23).copied().take(60).collect();
    assert!(sample.iter().all(|s| uniq_file(&cfg, s.i) < full));
    let n = sample.len() as u64;
    let with_filters = run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        // Opening read the filter of the file being filled (written by the clean close); the
        // first lookups read the full files' filters (a few files each), each filter once.
        let at_open = store.stats().index_filter_bytes_read;
        assert_eq!(at_open, filter_file_bytes(&cfg));
        lookup_cost(&store, &stored[1400..1410]).await;
        let read = store.stats().index_filter_bytes_read;
        let per_file = filter_file_bytes(&cfg);
        assert_eq!(
            read - at_open,
            full as u64 * per_file,
            "each filter read once"
        );
        let cost = lookup_cost(&store, &sample).await;
        assert_eq!(store.stats().index_filter_bytes_read, read, "and kept");
        let m = store.memory_usage();
        assert_eq!(m.index_filter_cache_bytes, full as u64 * 256, "{m:?}");
        assert_eq!(m.index_filter_bytes, 256, "the file being filled");
        store.close().await.unwrap();
        cost
    });
    let mut off = cfg.clone();
    off.index_filter_cache_bytes = 0;
    let without = run(|| async {
        let store = Store::open(off.clone()).await.unwrap();
        let cost = lookup_cost(&store, &sample).await;
        // Only the filter of the file being filled, at open: no full file's.
        let read = store.stats().index_filter_bytes_read;
        assert_eq!(read, filter_file_bytes(&off));
        store.close().await.unwrap();
        cost
    });
    // Without filters every lookup walks every full file; with them, the file that holds the
    // key and the few whose filter answers a false "maybe" (about 1 % of these small files).
    assert!(without.0 >= n * full as u64, "{without:?}");
    assert!(
        with_filters.0 >= n && with_filters.0 <= n + n / 2,
        "walked {with_filters:?} for {n} lookups over {full} files"
    );
    assert!(with_filters.1 >= n * (full as u64 - 2), "{with_filters:?}");
    // Bytes: about one walk's slot and chain pages per lookup, against one walk per file.
    let walk_bytes = without.2 / (n * full as u64);
    assert!(
        with_filters.2 <= n * 2 * walk_bytes,
        "read {} bytes for {n} lookups; a walk reads {walk_bytes} on average",
        with_filters.2
    );
    assert!(
        with_filters.2 * 4 <= without.2,
        "{with_filters:?} {without:?}"
    );
}

/// Damages three full files' filters on disk: one deleted (as after a crash between seal and
/// filter write), one with its body zeroed (used, it would rule out every key of its file), one
/// cut to its header. The filter the clean close wrote for the file being filled is deleted too
/// (as in a store written before filters: the open rebuilds it from the file's entries).
/// Returns the damaged full files' positions.
fn damage_filters(cfg: &StoreConfig) -> [usize; 3] {
    let dir = cfg.shard_dir().join("index");
    let filters = filter_files(cfg);
    let (gone, zeroed, cut) = (0, 5, 10);
    std::fs::remove_file(dir.join(&filters[gone])).unwrap();
    std::fs::remove_file(dir.join(filters.last().unwrap())).unwrap();
    let path = dir.join(&filters[zeroed]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096..].fill(0);
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(&filters[cut]))
        .unwrap();
    file.set_len(4096).unwrap();
    [gone, zeroed, cut]
}

/// Runs lookups until `rebuilt` filters were rebuilt (each lookup over a file with an unusable
/// filter starts its rebuild, one at a time), within a bounded deadline.
async fn await_rebuilds(store: &Store, stored: &[Stored], rebuilt: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for s in stored.iter().cycle() {
        if store.stats().index_filters_rebuilt >= rebuilt {
            return;
        }
        assert!(Instant::now() < deadline, "{:?}", store.stats());
        lookup_cost(store, std::slice::from_ref(s)).await;
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn missing_or_damaged_filters_fall_back_and_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let stored = filled_store(&cfg);
    let newest = index_files(&cfg).len() - 1;
    let damaged = damage_filters(&cfg);
    let in_newest: Vec<Stored> = stored
        .iter()
        .filter(|s| uniq_file(&cfg, s.i) == newest)
        .copied()
        .collect();
    let in_damaged: Vec<Stored> = stored
        .iter()
        .filter(|s| damaged.contains(&uniq_file(&cfg, s.i)))
        .copied()
        .collect();
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        // Every key answers, those of the damaged files included (a zeroed filter, if used,
        // would rule its file out), and those of the file being filled, whose filter the open
        // rebuilt from its entries.
        lookup_cost(&store, &in_damaged).await;
        lookup_cost(&store, &in_newest).await;
        check_ids(&store, &stored, 7).await;
        await_rebuilds(&store, &stored, 3).await;
        // Settle: a rebuild started by the last lookup may still be writing.
        glommio::timer::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.stats().index_filters_rebuilt, 3, "only the damaged");
        for at in damaged {
            let path = cfg.shard_dir().join("index").join(&filter_files(&cfg)[at]);
            let len = std::fs::metadata(path).unwrap().len();
            assert_eq!(len, filter_file_bytes(&cfg), "filter {at} rewritten");
        }
        // The rebuilt filters are used, and find every key of their files.
        let (walked, _, _) = lookup_cost(&store, &in_damaged).await;
        let n = in_damaged.len() as u64;
        assert!(walked <= n + n / 2, "walked {walked} for {n} lookups");
        store.close().await.unwrap();
    });
    // Reopened, the rebuilt files are as good as any.
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        check_ids(&store, &stored, 7).await;
        assert_eq!(store.stats().index_filters_rebuilt, 0);
        store.close().await.unwrap();
    });
}

/// Filters missing at open are rebuilt by the start-up sweep even for files no lookup reaches
/// (a store written before filters, or filter files lost): no lookup runs here at all.
#[test]
fn filters_missing_at_open_are_rebuilt_without_a_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    filled_store(&cfg);
    let index_dir = cfg.shard_dir().join("index");
    let filters = filter_files(&cfg);
    let lost = [1, 3];
    for at in lost {
        std::fs::remove_file(index_dir.join(&filters[at])).unwrap();
    }
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.stats().index_filters_rebuilt < lost.len() as u64 {
            assert!(Instant::now() < deadline, "{:?}", store.stats());
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        let stats = store.stats();
        assert_eq!(
            stats.index_files_walked + stats.index_files_skipped,
            0,
            "no lookup ran"
        );
        for at in lost {
            let len = std::fs::metadata(index_dir.join(&filters[at]))
                .unwrap()
                .len();
            assert_eq!(len, filter_file_bytes(&cfg), "filter {at} rebuilt");
        }
        store.close().await.unwrap();
    });
    // The next open finds every filter: nothing to rebuild.
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        glommio::timer::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.stats().index_filters_rebuilt, 0);
        store.close().await.unwrap();
    });
}

#[test]
fn a_budget_too_small_for_the_filters_walks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let stored = filled_store(&cfg);
    let full = index_files(&cfg).len() as u64 - 1;
    // One full file's filter (256 entries, a byte each).
    cfg.index_filter_cache_bytes = 256;
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let sample: Vec<Stored> = stored.iter().step_by(25).copied().collect();
        let (walked, skipped, _) = lookup_cost(&store, &sample).await;
        let n = sample.len() as u64;
        assert!(
            walked >= n * (full - 1),
            "walked {walked}, skipped {skipped}"
        );
        assert!(store.memory_usage().index_filter_cache_bytes <= 256);
        check_ids(&store, &stored, 7).await;
        check_groups_and_time(&store, &stored, true).await;
        store.close().await.unwrap();
    });
}
