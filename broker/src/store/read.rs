//! Reads: pulls through the consume queue, records by physical offset, key queries, time
//! lookups. Recent bytes come from the tail cache; older ones from O_DIRECT reads of the
//! segment files (a read window of [`READ_WINDOW_BYTES`] serves neighbouring records).

use ringmq_proto::message::{find_property, property, store_timestamp_pos, DecodedRecord};

use super::backend::{DirectFile, File};
use super::consume_queue::CqEntry;
use super::index::Lookup;
use super::offset::{split_global, to_global};
use super::{Inner, Store, StoreError};

/// Bytes fetched from disk at once when a pull reads older records.
pub const READ_WINDOW_BYTES: usize = 128 * 1024;
/// Smallest run of back-to-back records a pull reads on its own instead of a window.
pub const MIN_RUN_READ_BYTES: usize = 16 * 1024;
/// Largest read of one run of back-to-back records for a pull ([`LogReader::set_run`]).
pub const MAX_RUN_READ_BYTES: usize = 1 << 20;
/// Most consume-queue entries one pull scans (RocketMQ scans 16 000 bytes = 800 entries).
pub const MAX_SCAN_ENTRIES: usize = 800;

/// The outcome of a pull, as RocketMQ's `GetMessageStatus` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// At least one record matched.
    Found,
    /// Entries were scanned but none matched the filter.
    NoMatchedMessage,
    /// The entries scanned point at log bytes retention already removed.
    MessageWasRemoving,
    /// `offset < min_offset`.
    OffsetTooSmall,
    /// `offset == max_offset`: nothing new yet (long-poll candidate).
    OffsetOverflowOne,
    /// `offset > max_offset`.
    OffsetOverflowBadly,
    /// The queue has never held a message.
    NoMessageInQueue,
}

/// A pull request.
#[derive(Debug, Clone, Copy)]
pub struct GetRequest<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    /// Queue offset to read from.
    pub offset: u64,
    pub max_count: u32,
    /// Total bytes of records returned; the first record is returned even if larger.
    pub max_bytes: u32,
    /// Tag hashes accepted; `None` accepts every record.
    pub tag_hashes: Option<&'a [i64]>,
}

/// A test on whole stored records, applied after the consume queue's tag test (SQL92 property
/// filters: the consume queue's tag hash cannot pre-filter them).
pub trait RecordFilter {
    /// `record` is one stored record, exactly as in the log.
    fn accepts(&self, record: &[u8]) -> bool;
}

/// The result of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetResult {
    pub status: GetStatus,
    pub next_begin_offset: u64,
    pub min_offset: u64,
    pub max_offset: u64,
    /// The matched records, concatenated exactly as stored: the pull response body.
    pub body: Vec<u8>,
    pub message_count: u32,
}

/// The result of a key query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    /// Matching records concatenated as stored, newest first.
    pub body: Vec<u8>,
    pub message_count: u32,
    pub index_last_update_timestamp: i64,
    /// Global physical offset of the last indexed record.
    pub index_last_update_offset: u64,
}

/// Reads log bytes, keeping the last disk window for the next record.
#[derive(Default)]
pub(crate) struct LogReader {
    window_pos: u64,
    window: Option<<File as DirectFile>::ReadBuf>,
    /// A pull: read through the store's read-ahead extents (and read ahead).
    sequential: bool,
    /// Local end of the run of back-to-back records the pull is reading (see
    /// [`LogReader::set_run`]); a read that misses every cache covers the run in one go.
    run_end: u64,
    /// Whether that run, as a whole, is long enough to read on its own ([`MIN_RUN_READ_BYTES`],
    /// more than one record).
    run_dense: bool,
}

impl LogReader {
    /// A reader for a pull, served from (and feeding) the read-ahead extents.
    pub(crate) fn for_pull() -> Self {
        LogReader {
            sequential: true,
            ..LogReader::default()
        }
    }

    /// Appends bytes `[pos, pos+len)` (local offsets) of the log to `out`. `Ok(false)` when the
    /// bytes are no longer (retention) or not yet (unwritten) readable.
    pub(crate) async fn read_into(
        &mut self,
        inner: &Inner,
        pos: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<bool, StoreError> {
        let (seg, limit) = {
            let st = inner.state.borrow();
            let hit = st.log.cache.append_to(pos, len, out);
            // A pull's record read is a tail-cache hit or miss (ringmq_tail_cache_*_total):
            // consumers are whom the cache serves; lookups and lag probes are not counted.
            if self.sequential {
                inner.stats.observe(|engine| engine.on_tail_cache(hit));
            }
            if hit {
                return Ok(true);
            }
            let Some(seg) = st.log.segment_for(pos) else {
                return Ok(false);
            };
            let limit = st.log.written.min(seg.base + st.log.segment_size);
            (seg, limit)
        };
        if pos < inner.state.borrow().log.min_offset || pos + len as u64 > limit {
            return Ok(false);
        }
        // The pull's own window first: when extents are not worth loading, the rest of a run
        // read in one go is there, and asking the extents would count misses for it.
        if let Some(w) = &self.window {
            if pos >= self.window_pos && pos + len as u64 <= self.window_pos + w.len() as u64 {
                let at = (pos - self.window_pos) as usize;
                out.extend_from_slice(&w[at..at + len]);
                return Ok(true);
            }
        }
        let dense_run = self.dense_run(pos, len);
        if self.sequential {
            let ra = inner.read_ahead.clone();
            if ra.read(&seg, limit, pos, len, dense_run, out).await? {
                return Ok(true);
            }
        }
        // With extents serving this pull, only a record crossing an extent's end gets here: its
        // neighbours come from extents, so read the record alone.
        let own = if self.sequential && inner.read_ahead.loads_for(dense_run) {
            len
        } else if dense_run {
            (self.capped_run_end(pos) - pos) as usize
        } else {
            len.max(READ_WINDOW_BYTES)
        };
        let want = own.min((limit - pos) as usize);
        let buf = seg
            .file
            .read_at(pos - seg.base, want)
            .await
            .map_err(|e| StoreError::io("read", &seg.path, e))?;
        if buf.len() < len {
            return Err(StoreError::io(
                "read",
                &seg.path,
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            ));
        }
        out.extend_from_slice(&buf[..len]);
        if self.sequential {
            let read = &inner.read_ahead.window_bytes_read;
            read.set(read.get() + buf.len() as u64);
        }
        self.window = Some(buf);
        self.window_pos = pos;
        Ok(true)
    }

    /// Tells a pull's reader that the records it is about to read lie back to back up to local
    /// offset `end`. Records of a batch send are stored together, so a pull of one queue often
    /// wants one contiguous run: reading exactly that run serves the pull from one buffer
    /// without reading other queues' records around it.
    pub(crate) fn set_run(&mut self, start: u64, end: u64, records: usize) {
        self.run_end = end;
        self.run_dense = records > 1 && end - start >= MIN_RUN_READ_BYTES as u64;
    }

    /// Caps the run to [`MAX_RUN_READ_BYTES`] from `pos`.
    fn capped_run_end(&self, pos: u64) -> u64 {
        self.run_end.min(pos + MAX_RUN_READ_BYTES as u64)
    }

    /// Whether the record at `pos` (of `len` bytes) lies in the current run and the run is dense.
    fn dense_run(&self, pos: u64, len: usize) -> bool {
        self.run_dense && pos + len as u64 <= self.run_end
    }

    /// The whole record at local `pos`, checked to be a record that says it lives there.
    pub(crate) async fn read_record(
        &mut self,
        inner: &Inner,
        pos: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut head = Vec::with_capacity(8);
        if !self.read_into(inner, pos, 8, &mut head).await? {
            return Ok(None);
        }
        let size = i32::from_be_bytes(head[0..4].try_into().expect("4 bytes"));
        if size < ringmq_proto::message::RECORD_OVERHEAD_V1_IPV4 as i32
            || size as usize > inner.config.max_record_bytes
        {
            return Ok(None);
        }
        let mut rec = Vec::with_capacity(size as usize);
        if !self.read_into(inner, pos, size as usize, &mut rec).await? {
            return Ok(None);
        }
        let global = to_global(inner.config.shard_id, pos);
        match DecodedRecord::decode(&rec) {
            Ok(d) if d.record.physical_offset as u64 == global => Ok(Some(rec)),
            _ => Ok(None),
        }
    }
}

/// Global offset where the run of back-to-back records starting at `entries[0]` ends, and how
/// many records it holds.
fn contiguous_run(entries: &[CqEntry]) -> (u64, usize) {
    let mut end = entries[0].physical_offset + u64::from(entries[0].size);
    let mut records = 1;
    for e in &entries[1..] {
        if e.physical_offset != end {
            break;
        }
        end += u64::from(e.size);
        records += 1;
    }
    (end, records)
}

impl Store {
    /// A pull: reads up to `max_count` records (and about `max_bytes`) from queue offset
    /// `offset`, skipping records whose tag hash is not accepted. See [`GetStatus`] for the
    /// outcomes and their next begin offsets (reference §2.4).
    pub async fn get_messages(&self, req: &GetRequest<'_>) -> Result<GetResult, StoreError> {
        self.get_messages_matching(req, None).await
    }

    /// [`Store::get_messages`], also dropping records `record_filter` rejects. Rejected records
    /// count against the scan bound like tag misses, and are tested where they were read to
    /// (the body buffer), so a rejection costs no copy.
    pub async fn get_messages_matching(
        &self,
        req: &GetRequest<'_>,
        record_filter: Option<&dyn RecordFilter>,
    ) -> Result<GetResult, StoreError> {
        let inner = &*self.inner;
        let Some(q) = inner.find_queue(req.topic, req.queue_id) else {
            return Ok(empty_result(GetStatus::NoMessageInQueue, 0, 0, 0));
        };
        let (min, max) = (q.min_offset.get(), q.max_offset.get());
        if let Some(unreadable) = offset_outside_queue(req.offset, min, max) {
            return Ok(unreadable);
        }
        let mut result = empty_result(GetStatus::NoMatchedMessage, req.offset, min, max);
        let mut reader = LogReader::for_pull();
        let mut removed_seen = false;
        let mut next = req.offset;
        let scan_limit =
            (req.offset + MAX_SCAN_ENTRIES.max(req.max_count as usize) as u64).min(max);
        'scan: while next < scan_limit && result.message_count < req.max_count {
            let entries = (q.read_ahead(next, 64.min((scan_limit - next) as usize))).await?;
            if entries.is_empty() {
                break;
            }
            let mut run_end = 0;
            for (i, e) in entries.iter().enumerate() {
                // A new run of back-to-back records starts here: tell the reader where it ends.
                if e.physical_offset >= run_end {
                    let records;
                    (run_end, records) = contiguous_run(&entries[i..]);
                    let (start, end) = (split_global(e.physical_offset).1, split_global(run_end).1);
                    reader.set_run(start, end, records);
                }
                if result.message_count >= req.max_count {
                    break 'scan;
                }
                if !accepts(req.tag_hashes, e) {
                    next += 1;
                    continue;
                }
                if result.message_count > 0
                    && result.body.len() + e.size as usize > req.max_bytes as usize
                {
                    break 'scan;
                }
                let (_, local) = split_global(e.physical_offset);
                let start = result.body.len();
                if reader
                    .read_into(inner, local, e.size as usize, &mut result.body)
                    .await?
                {
                    if record_filter.is_some_and(|f| !f.accepts(&result.body[start..])) {
                        result.body.truncate(start);
                    } else {
                        result.message_count += 1;
                    }
                } else {
                    removed_seen = true;
                }
                next += 1;
            }
        }
        result.next_begin_offset = next;
        result.status = if result.message_count > 0 {
            GetStatus::Found
        } else if removed_seen {
            GetStatus::MessageWasRemoving
        } else {
            GetStatus::NoMatchedMessage
        };
        Ok(result)
    }

    /// Up to `max_n` consume-queue entries of (topic, queue) from queue offset `from`, without
    /// reading records (the schedule service reads due times from the tag slot this way).
    /// Empty when the queue is unknown or `from` is at or past its end; entries below the
    /// queue's min offset (removed by retention) are not returned: start at [`Store::min_offset`].
    pub async fn cq_entries(
        &self,
        topic: &str,
        queue_id: i32,
        from: u64,
        max_n: usize,
    ) -> Result<Vec<CqEntry>, StoreError> {
        let Some(q) = self.inner.find_queue(topic, queue_id) else {
            return Ok(Vec::new());
        };
        q.read(from.max(q.min_offset.get()), max_n).await
    }

    /// The record at a global physical offset (VIEW_MESSAGE_BY_ID); `None` if no record starts
    /// there (removed, never written, or not a record boundary).
    pub async fn view_message(&self, global_offset: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let (shard, local) = split_global(global_offset);
        if shard != self.inner.config.shard_id {
            return Err(StoreError::WrongShard {
                offset: global_offset,
                owner: shard,
                this: self.inner.config.shard_id,
            });
        }
        LogReader::default().read_record(&self.inner, local).await
    }

    /// Records at several global offsets (the schedule service's due held records), read in
    /// offset order through one reader on the read-ahead extents: held records that come due
    /// together were mostly stored together, so one extent read serves many of them instead of
    /// one small read each (measured: with 1M timers pending, one read per record made delivery
    /// read-bound). Answers are in the order asked; `Ok(None)` where no record starts.
    pub async fn view_messages(
        &self,
        global_offsets: &[u64],
    ) -> Vec<Result<Option<Vec<u8>>, StoreError>> {
        let this = self.inner.config.shard_id;
        let mut order: Vec<usize> = (0..global_offsets.len()).collect();
        order.sort_by_key(|&i| global_offsets[i]);
        let mut out: Vec<Result<Option<Vec<u8>>, StoreError>> =
            global_offsets.iter().map(|_| Ok(None)).collect();
        let mut reader = LogReader::for_pull();
        for i in order {
            let offset = global_offsets[i];
            let (owner, local) = split_global(offset);
            out[i] = if owner == this {
                reader.read_record(&self.inner, local).await
            } else {
                Err(StoreError::WrongShard {
                    offset,
                    owner,
                    this,
                })
            };
        }
        out
    }

    /// QUERY_MESSAGE: records of `topic` whose KEYS contain `key` (or, with `unique_key`, whose
    /// UNIQ_KEY is `key`), stored within `[begin_timestamp, end_timestamp]`, newest first, at
    /// most `max_count`.
    pub async fn query_messages(
        &self,
        topic: &str,
        key: &str,
        unique_key: bool,
        max_count: u32,
        begin_timestamp: i64,
        end_timestamp: i64,
    ) -> Result<QueryResult, StoreError> {
        let inner = &*self.inner;
        let (index, log_min) = {
            let st = inner.state.borrow();
            (st.index.clone(), st.log.min_offset)
        };
        let end_timestamp = if end_timestamp <= 0 {
            i64::MAX
        } else {
            end_timestamp
        };
        let candidates = index
            .lookup(&Lookup {
                topic: topic.as_bytes(),
                key: key.as_bytes(),
                begin_ts: begin_timestamp,
                end_ts: end_timestamp,
                min_phy: to_global(inner.config.shard_id, log_min),
                max: max_count as usize,
            })
            .await?;
        let mut out = QueryResult {
            body: Vec::new(),
            message_count: 0,
            index_last_update_timestamp: index.last_update_timestamp.get(),
            index_last_update_offset: index.last_update_offset.get(),
        };
        let mut reader = LogReader::default();
        for global in candidates {
            if out.message_count >= max_count {
                break;
            }
            let (_, local) = split_global(global);
            let Some(rec) = reader.read_record(inner, local).await? else {
                continue;
            };
            let d = DecodedRecord::decode(&rec).expect("read_record checked it");
            let r = &d.record;
            let key_matches = if unique_key {
                find_property(r.properties, property::UNIQ_KEY) == Some(key.as_bytes())
            } else {
                find_property(r.properties, property::KEYS)
                    .is_some_and(|ks| ks.split(|&b| b == b' ').any(|k| k == key.as_bytes()))
            };
            if r.topic == topic.as_bytes()
                && key_matches
                && (begin_timestamp..=end_timestamp).contains(&r.store_timestamp)
            {
                out.body.extend_from_slice(&rec);
                out.message_count += 1;
            }
        }
        Ok(out)
    }

    async fn store_time_at(
        &self,
        reader: &mut LogReader,
        entry: &CqEntry,
    ) -> Result<Option<i64>, StoreError> {
        let (_, local) = split_global(entry.physical_offset);
        let mut head = Vec::with_capacity(80);
        // SYSFLAG (at 36) tells where STORETIMESTAMP is; 80 bytes cover both host sizes.
        if !reader
            .read_into(&self.inner, local, 80.min(entry.size as usize), &mut head)
            .await?
        {
            return Ok(None);
        }
        let sys_flag = i32::from_be_bytes(head[36..40].try_into().expect("4 bytes"));
        let at = store_timestamp_pos(sys_flag);
        Ok(Some(i64::from_be_bytes(
            head[at..at + 8].try_into().expect("8 bytes"),
        )))
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP: the first queue offset whose store time is at or after
    /// `timestamp_ms`; the max offset if every message is older; 0 for an unknown queue.
    /// (Store times never decrease within a shard, so a binary search is exact.)
    pub async fn search_offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
    ) -> Result<u64, StoreError> {
        let Some(q) = self.inner.find_queue(topic, queue_id) else {
            return Ok(0);
        };
        let (mut lo, mut hi) = (q.min_offset.get(), q.max_offset.get());
        let mut reader = LogReader::default();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let entry = q.read(mid, 1).await?;
            let ts = match entry.first() {
                Some(e) => self
                    .store_time_at(&mut reader, e)
                    .await?
                    .unwrap_or(i64::MIN),
                None => i64::MAX,
            };
            if ts < timestamp_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// GET_EARLIEST_MSG_STORETIME: store time of the queue's first readable message.
    pub async fn earliest_store_time(
        &self,
        topic: &str,
        queue_id: i32,
    ) -> Result<Option<i64>, StoreError> {
        let Some(q) = self.inner.find_queue(topic, queue_id) else {
            return Ok(None);
        };
        let entry = q.read(q.min_offset.get(), 1).await?;
        match entry.first() {
            Some(e) => self.store_time_at(&mut LogReader::default(), e).await,
            None => Ok(None),
        }
    }
}

fn accepts(tag_hashes: Option<&[i64]>, e: &CqEntry) -> bool {
    tag_hashes.is_none_or(|set| set.contains(&e.tag_hash))
}

/// The answer to a pull from `offset` when the queue holding `[min, max)` has nothing to read
/// there (empty queue, offset below `min`, at or past `max`); `None` when `offset` is readable.
fn offset_outside_queue(offset: u64, min: u64, max: u64) -> Option<GetResult> {
    if max == 0 {
        return Some(empty_result(GetStatus::NoMessageInQueue, 0, min, max));
    }
    if offset < min {
        return Some(empty_result(GetStatus::OffsetTooSmall, min, min, max));
    }
    if offset == max {
        return Some(empty_result(GetStatus::OffsetOverflowOne, offset, min, max));
    }
    if offset > max {
        return Some(empty_result(GetStatus::OffsetOverflowBadly, max, min, max));
    }
    None
}

fn empty_result(status: GetStatus, next: u64, min: u64, max: u64) -> GetResult {
    GetResult {
        status,
        next_begin_offset: next,
        min_offset: min,
        max_offset: max,
        body: Vec::new(),
        message_count: 0,
    }
}
