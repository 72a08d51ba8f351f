//! Opening a store: find the segments, read the clean-shutdown marker or the checkpoint, scan
//! the log from there (magic, size, body CRC, PHYSICALOFFSET), truncate at the first torn or
//! corrupt record, cut consume queues and index back to the checkpoint and re-dispatch the
//! records after it. If the derived files disagree with the log (lost, or lagging beyond the
//! checkpoint), they are rebuilt from the whole log.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use ringmq_proto::message::{
    peek_header, sysflag, DecodedRecord, MAGIC_BLANK, RECORD_OVERHEAD_V1_IPV4,
};

use super::append_file::{reopen_truncated, AppendFile};
use super::backend::{DirectFile, File};
use super::checkpoint;
use super::commitlog::{parse_segment_name, CommitLog, Segment, TailCache};
use super::consume_queue::{CqCacheBudget, CqEntry, QueueState, CQ_ENTRY_BYTES};
use super::flush::dispatch_record;
use super::index::KeyIndex;
use super::offset::{split_global, to_global};
use super::{align_down, align_up, Inner, State, StoreConfig, StoreError, StoreStats, PAGE_BYTES};

const SCAN_WINDOW_BYTES: usize = 1 << 20;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |e| StoreError::io(op, path, e)
}

pub(crate) async fn open(config: StoreConfig) -> Result<Inner, StoreError> {
    let dir = config.shard_dir();
    let log_dir = dir.join("commitlog");
    for d in [&log_dir, &dir.join("consumequeue"), &dir.join("index")] {
        std::fs::create_dir_all(d).map_err(io_err("create dir", d))?;
    }
    super::backend::prime_iopoll_probe(&dir)
        .await
        .map_err(io_err("probe", &dir))?;
    let mut segments = open_segments(&log_dir, config.segment_size_bytes).await?;
    let marker_path = dir.join("clean_shutdown");
    let marker = checkpoint::read(&marker_path).await?;
    if marker_path.exists() {
        // From now on a crash must look like a crash: the marker goes before any write.
        std::fs::remove_file(&marker_path).map_err(io_err("remove", &marker_path))?;
    }
    let cp = match marker {
        Some(m) => Some(m),
        None => checkpoint::read(&dir.join("checkpoint")).await?,
    };
    let first_base = segments.keys().next().copied();
    let min_offset = first_base.unwrap_or_else(|| cp.map_or(0, |c| c.min_offset));
    let cp_offset = cp.map_or(min_offset, |c| c.log_offset).max(min_offset);
    let end = scan(&config, &segments, cp_offset).await?;
    truncate_after(&config, &mut segments, end).await?;
    let cache = load_tail(&config, &segments, end).await?;
    let index = KeyIndex::load(
        dir.join("index"),
        &config,
        to_global(config.shard_id, cp_offset),
    )
    .await?;
    let index_entries = index.total_entries();
    let cq_cache_budget = CqCacheBudget::new(config.cq_cache_entries_total);
    let queues = load_queues(&config, &dir, cp_offset, &cq_cache_budget).await?;
    let cq_entries: u64 = queues
        .values()
        .flat_map(|t| t.values())
        .map(|q| q.max_offset.get())
        .sum();
    // Fewer derived entries than the checkpoint vouched for: files were lost or cut.
    let derived_lost =
        cp.is_some_and(|c| cq_entries < c.cq_entries || index_entries < c.index_entries);
    let log = CommitLog {
        dir: log_dir,
        segment_size: config.segment_size_bytes,
        segments,
        min_offset,
        end,
        written: end,
        flushed: end,
        cache,
        last_store_timestamp: 0,
        dirty: Vec::new(),
    };
    let inner = new_inner(
        config,
        dir,
        log,
        (queues, cq_cache_budget),
        index,
        cp_offset,
    );
    if derived_lost || !redispatch(&inner, cp_offset, end).await? {
        tracing::warn!(dir = %inner.dir.display(), "consume queues or index disagree with the log; rebuilding them from the whole log");
        rebuild_derived(&inner, min_offset, end).await?;
    }
    set_min_offsets(&inner).await?;
    super::flush::flush_derived(&inner).await?;
    Ok(inner)
}

/// The store's state right after recovery, before derived data is brought up to date.
fn new_inner(
    config: StoreConfig,
    dir: std::path::PathBuf,
    log: CommitLog,
    (queues, cq_cache_budget): (super::Queues, Rc<CqCacheBudget>),
    index: KeyIndex,
    cp_offset: u64,
) -> Inner {
    let end = log.end;
    Inner {
        cq_cache_budget,
        dir,
        state: RefCell::new(State {
            log,
            queues,
            index: Rc::new(index),
            dispatched: cp_offset,
            records_written: 0,
            records_synced: 0,
        }),
        stats: StoreStats::default(),
        writer_wake: Default::default(),
        progress: Default::default(),
        written_waiters: Default::default(),
        flushed_waiters: Default::default(),
        closing: Cell::new(false),
        appends: Cell::new(0),
        failure: RefCell::new(None),
        syncing: Cell::new(false),
        creating_segment: Cell::new(false),
        zeroing: Cell::new(None),
        zeroed: Cell::new(align_up(end)),
        writer_done: Cell::new(false),
        syncer_done: Cell::new(false),
        zeroer_done: Cell::new(false),
        periodic_done: Cell::new(false),
        last_checkpoint: Cell::new(None),
        read_ahead: Rc::new(super::readahead::ReadAhead::new(
            config.read_ahead_bytes,
            config.read_ahead_extents,
        )),
        config,
    }
}

/// Opens every segment, refusing a directory written with another segment size (its files would
/// be misread as torn and truncated).
async fn open_segments(
    log_dir: &Path,
    segment_size: u64,
) -> Result<BTreeMap<u64, Rc<Segment>>, StoreError> {
    let mut segments = BTreeMap::new();
    for entry in std::fs::read_dir(log_dir).map_err(io_err("list", log_dir))? {
        let path = entry.map_err(io_err("list", log_dir))?.path();
        let Some(base) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_segment_name)
        else {
            continue;
        };
        let file = File::open(&path, false)
            .await
            .map_err(io_err("open segment", &path))?;
        let size = file.size().await.map_err(io_err("stat", &path))?;
        if base % segment_size != 0 || size > segment_size {
            return Err(StoreError::Config(format!(
                "{} ({size} bytes) was written with another segment size than the configured {segment_size}",
                path.display()
            )));
        }
        segments.insert(
            base,
            Rc::new(Segment {
                base,
                file: Rc::new(file),
                path,
            }),
        );
    }
    Ok(segments)
}

/// Why the scan stopped where it did.
fn stop(path: &Path, pos: u64, why: &str) {
    tracing::warn!(path = %path.display(), offset = pos, reason = why, "commit log truncated at torn or corrupt record");
}

/// Walks records from `from` and returns the end of the last valid one.
async fn scan(
    config: &StoreConfig,
    segments: &BTreeMap<u64, Rc<Segment>>,
    from: u64,
) -> Result<u64, StoreError> {
    let seg_size = config.segment_size_bytes;
    let mut pos = from;
    let mut window: Vec<u8> = Vec::new();
    let mut window_pos = pos;
    loop {
        let base = pos - pos % seg_size;
        let Some(seg) = segments.get(&base) else {
            return Ok(pos);
        };
        let seg_end = base + seg_size;
        if pos < window_pos || pos + 8 > window_pos + window.len() as u64 {
            window =
                read_segment(seg, pos, SCAN_WINDOW_BYTES.min((seg_end - pos) as usize)).await?;
            window_pos = pos;
        }
        let at = (pos - window_pos) as usize;
        let Ok((size, magic)) = peek_header(&window[at..]) else {
            stop(&seg.path, pos, "segment ends inside a record header");
            return Ok(pos);
        };
        if size == 0 && magic == 0 {
            return Ok(pos); // preallocated zeros: the clean end of the log
        }
        if magic == MAGIC_BLANK {
            if size as u64 != seg_end - pos {
                stop(&seg.path, pos, "bad filler size");
                return Ok(pos);
            }
            pos = seg_end;
            if !segments.contains_key(&pos) {
                return Ok(pos);
            }
            continue;
        }
        if size < RECORD_OVERHEAD_V1_IPV4 as i32
            || size as u64 > seg_end - pos
            || size as usize > config.max_record_bytes
        {
            stop(&seg.path, pos, "bad record size");
            return Ok(pos);
        }
        if pos + size as u64 > window_pos + window.len() as u64 {
            window = read_segment(
                seg,
                pos,
                SCAN_WINDOW_BYTES
                    .max(size as usize)
                    .min((seg_end - pos) as usize),
            )
            .await?;
            window_pos = pos;
        }
        let at = (pos - window_pos) as usize;
        let valid = match DecodedRecord::decode(&window[at..]) {
            Ok(d) if d.record.physical_offset as u64 != to_global(config.shard_id, pos) => {
                Err("physical offset field mismatch")
            }
            Ok(d) => d.verify_body_crc().map_err(|_| "body crc mismatch"),
            Err(_) => Err("undecodable record"),
        };
        if let Err(why) = valid {
            stop(&seg.path, pos, why);
            return Ok(pos);
        }
        pos += size as u64;
    }
}

async fn read_segment(seg: &Segment, pos: u64, len: usize) -> Result<Vec<u8>, StoreError> {
    let buf = seg
        .file
        .read_at(pos - seg.base, len)
        .await
        .map_err(io_err("read", &seg.path))?;
    Ok(buf.to_vec())
}

/// Zeroes everything after `end` in its segment and deletes later segments, so nothing stale
/// can ever be mistaken for a record after new appends.
async fn truncate_after(
    config: &StoreConfig,
    segments: &mut BTreeMap<u64, Rc<Segment>>,
    end: u64,
) -> Result<(), StoreError> {
    let seg_size = config.segment_size_bytes;
    let base = end - end % seg_size;
    let later: Vec<u64> = segments.range(base + 1..).map(|(b, _)| *b).collect();
    for b in later {
        let seg = segments.remove(&b).expect("listed above");
        // Usually a segment the zeroer created ahead of the log end; after a torn record, one
        // that may hold stale records.
        tracing::info!(path = %seg.path.display(), "removing segment after the end of the log");
        std::fs::remove_file(&seg.path).map_err(io_err("remove", &seg.path))?;
    }
    let Some(seg) = segments.get(&base) else {
        return Ok(());
    };
    let local = end - base;
    let page = align_down(local);
    if local > page {
        let kept = read_segment(seg, base + page, (local - page) as usize).await?;
        let mut buf = seg.file.alloc(PAGE_BYTES as usize);
        buf[..kept.len()].copy_from_slice(&kept);
        seg.file
            .write_at(buf, page)
            .await
            .map_err(io_err("write", &seg.path))?;
    }
    let hole_from = align_up(local);
    if hole_from < seg_size {
        seg.file
            .punch_hole(hole_from, seg_size - hole_from)
            .await
            .map_err(io_err("punch hole", &seg.path))?;
        seg.file
            .pre_allocate(seg_size)
            .await
            .map_err(io_err("preallocate", &seg.path))?;
    }
    seg.file
        .sync_data()
        .await
        .map_err(io_err("fdatasync", &seg.path))?;
    Ok(())
}

async fn load_tail(
    config: &StoreConfig,
    segments: &BTreeMap<u64, Rc<Segment>>,
    end: u64,
) -> Result<TailCache, StoreError> {
    let seg_size = config.segment_size_bytes;
    let page = align_down(end);
    let base = end - end % seg_size;
    let initial = match segments.get(&base) {
        Some(seg) if end > page => read_segment(seg, page, (end - page) as usize).await?,
        _ => vec![0; (end - page) as usize],
    };
    Ok(TailCache::new(page, initial, config.tail_cache_bytes))
}

/// Number of leading entries of a derived file to keep: drop trailing zero padding and every
/// entry at or past the checkpoint (`offset_of` gives an entry's global offset).
async fn keep_entries(
    file: &File,
    path: &Path,
    entry_bytes: usize,
    local_cp: u64,
    shard: u8,
    offset_of: impl Fn(&[u8]) -> (u64, bool),
) -> Result<u64, StoreError> {
    let size = file.size().await.map_err(io_err("stat", path))?;
    let mut n = size / entry_bytes as u64;
    const CHUNK_ENTRIES: u64 = 4096;
    while n > 0 {
        let from = n.saturating_sub(CHUNK_ENTRIES);
        let requested = (n - from) as usize;
        let bytes = file
            .read_at(from * entry_bytes as u64, requested * entry_bytes)
            .await
            .map_err(io_err("read", path))?;
        let entries: Vec<&[u8]> = bytes.chunks_exact(entry_bytes).collect();
        if entries.len() < requested {
            // The file shrank under us: keep only what was read whole.
            n = from + entries.len() as u64;
        }
        for e in entries.iter().rev() {
            let (global, nonzero) = offset_of(e);
            let (s, local) = split_global(global);
            if nonzero && s == shard && local < local_cp {
                return Ok(n);
            }
            n -= 1;
        }
    }
    Ok(n)
}

async fn load_queues(
    config: &StoreConfig,
    dir: &Path,
    cp: u64,
    cq_cache_budget: &Rc<CqCacheBudget>,
) -> Result<HashMap<String, HashMap<i32, Rc<QueueState>>>, StoreError> {
    let mut queues: HashMap<String, HashMap<i32, Rc<QueueState>>> = HashMap::new();
    let cq_dir = dir.join("consumequeue");
    for topic_entry in std::fs::read_dir(&cq_dir).map_err(io_err("list", &cq_dir))? {
        let topic_dir = topic_entry.map_err(io_err("list", &cq_dir))?.path();
        let Some(topic) = topic_dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        for q_entry in std::fs::read_dir(&topic_dir).map_err(io_err("list", &topic_dir))? {
            let path = q_entry.map_err(io_err("list", &topic_dir))?.path();
            let Some(qid) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".cq"))
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let file = Rc::new(
                File::open(&path, false)
                    .await
                    .map_err(io_err("open", &path))?,
            );
            let n = keep_entries(&file, &path, CQ_ENTRY_BYTES, cp, config.shard_id, |e| {
                let entry = CqEntry::decode(e);
                (entry.physical_offset, entry.size != 0)
            })
            .await?;
            let af = reopen_truncated(path, file, n * CQ_ENTRY_BYTES as u64).await?;
            queues
                .entry(topic.clone())
                .or_default()
                .insert(qid, Rc::new(QueueState::new(af, 0, cq_cache_budget)));
        }
    }
    Ok(queues)
}

/// Re-dispatches the records in `[from, to)`. `Ok(false)` if a record's queue offset does not
/// continue its consume queue (derived data lost or lagging): the caller rebuilds everything.
async fn redispatch(inner: &Inner, from: u64, to: u64) -> Result<bool, StoreError> {
    let mut reader = super::read::LogReader::default();
    let mut pos = from;
    let seg_size = inner.config.segment_size_bytes;
    while pos < to {
        let mut head = Vec::with_capacity(8);
        if !reader.read_into(inner, pos, 8, &mut head).await? {
            break;
        }
        let (size, magic) = peek_header(&head).expect("8 bytes");
        if magic == MAGIC_BLANK {
            pos = pos - pos % seg_size + seg_size;
            continue;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        let read = reader
            .read_into(inner, pos, size as usize, &mut bytes)
            .await?;
        assert!(read, "scanned records are readable");
        let rec = DecodedRecord::decode(&bytes).expect("scan validated it");
        let r = &rec.record;
        let tx = sysflag::transaction_type(r.sys_flag);
        if tx != sysflag::TRANSACTION_PREPARED_TYPE && tx != sysflag::TRANSACTION_ROLLBACK_TYPE {
            let topic = String::from_utf8_lossy(r.topic);
            let q = inner.find_queue(&topic, r.queue_id);
            let expected = q.map_or(0, |q| q.max_offset.get());
            if r.queue_offset as u64 != expected {
                return Ok(false);
            }
        }
        let mut st = inner.state.borrow_mut();
        let State { queues, index, .. } = &mut *st;
        dispatch_record(inner, queues, index, pos, &rec);
        st.dispatched = pos + size as u64;
        drop(st);
        pos += size as u64;
    }
    let mut st = inner.state.borrow_mut();
    st.dispatched = to;
    for q in st.queues.values().flat_map(|t| t.values()) {
        q.next_offset.set(q.max_offset.get());
    }
    Ok(true)
}

/// Drops every consume queue and the index and dispatches the whole retained log again. A
/// queue whose oldest retained record has queue offset `k` starts at `k` (sparse file).
async fn rebuild_derived(inner: &Inner, from: u64, to: u64) -> Result<(), StoreError> {
    let cq_dir = inner.dir.join("consumequeue");
    let idx_dir = inner.dir.join("index");
    {
        let mut st = inner.state.borrow_mut();
        st.queues.clear();
        st.index = Rc::new(KeyIndex::empty(idx_dir.clone(), &inner.config));
        st.dispatched = from;
    }
    for d in [&cq_dir, &idx_dir] {
        std::fs::remove_dir_all(d).map_err(io_err("remove", d))?;
        std::fs::create_dir_all(d).map_err(io_err("create dir", d))?;
    }
    let mut reader = super::read::LogReader::default();
    let mut pos = from;
    let seg_size = inner.config.segment_size_bytes;
    while pos < to {
        let mut head = Vec::with_capacity(8);
        if !reader.read_into(inner, pos, 8, &mut head).await? {
            break;
        }
        let (size, magic) = peek_header(&head).expect("8 bytes");
        if magic == MAGIC_BLANK {
            pos = pos - pos % seg_size + seg_size;
            continue;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        reader
            .read_into(inner, pos, size as usize, &mut bytes)
            .await?;
        let rec = DecodedRecord::decode(&bytes).expect("scan validated it");
        let r = &rec.record;
        let tx = sysflag::transaction_type(r.sys_flag);
        let mut st = inner.state.borrow_mut();
        if tx != sysflag::TRANSACTION_PREPARED_TYPE && tx != sysflag::TRANSACTION_ROLLBACK_TYPE {
            let topic = String::from_utf8_lossy(r.topic).into_owned();
            if inner.find_queue_in(&st, &topic, r.queue_id).is_none() {
                let start = r.queue_offset as u64;
                let path = inner.cq_path(&topic, r.queue_id);
                let len = start * CQ_ENTRY_BYTES as u64;
                let tail = vec![0u8; (len - align_down(len)) as usize];
                let q = QueueState::new(
                    AppendFile::existing(path, None, len, tail),
                    start,
                    &inner.cq_cache_budget,
                );
                st.queues
                    .entry(topic)
                    .or_default()
                    .insert(r.queue_id, Rc::new(q));
            }
        }
        let State { queues, index, .. } = &mut *st;
        dispatch_record(inner, queues, index, pos, &rec);
        drop(st);
        pos += size as u64;
    }
    let mut st = inner.state.borrow_mut();
    st.dispatched = to;
    for q in st.queues.values().flat_map(|t| t.values()) {
        q.next_offset.set(q.max_offset.get());
    }
    Ok(())
}

/// Each queue's min offset: its first entry pointing at or after the log's first byte.
pub(crate) async fn set_min_offsets(inner: &Inner) -> Result<(), StoreError> {
    let (queues, log_min) = {
        let st = inner.state.borrow();
        let qs: Vec<Rc<QueueState>> = st
            .queues
            .values()
            .flat_map(|t| t.values())
            .cloned()
            .collect();
        (qs, to_global(inner.config.shard_id, st.log.min_offset))
    };
    for q in queues {
        let (mut lo, mut hi) = (q.min_offset.get(), q.max_offset.get());
        // Usually the first entry is still valid: one read per queue, not a binary search.
        let first = q.read(lo, 1).await?;
        if first
            .first()
            .is_some_and(|e| e.size != 0 && e.physical_offset >= log_min)
        {
            continue;
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let e = q.read(mid, 1).await?;
            if e.first()
                .is_some_and(|e| e.size != 0 && e.physical_offset >= log_min)
            {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        q.min_offset.set(lo);
    }
    Ok(())
}

impl Inner {
    fn find_queue_in(&self, st: &State, topic: &str, queue_id: i32) -> Option<Rc<QueueState>> {
        st.queues.get(topic).and_then(|t| t.get(&queue_id)).cloned()
    }
}
