//! Replication support: raw log bytes out of a master, byte-identical into a slave. Offsets are
//! global; master and slave shards share the shard id, so offsets match byte for byte.

use ringmq_proto::message::{
    peek_header, sysflag, DecodedRecord, MAGIC_BLANK, RECORD_OVERHEAD_V1_IPV4,
};

use super::offset::{split_global, to_global};
use super::read::LogReader;
use super::{AppendStatus, Inner, State, Store, StoreError};

impl Store {
    fn local_of(&self, global: u64) -> Result<u64, StoreError> {
        let (shard, local) = split_global(global);
        let this = self.inner.config.shard_id;
        if shard != this {
            return Err(StoreError::WrongShard {
                offset: global,
                owner: shard,
                this,
            });
        }
        Ok(local)
    }

    /// Up to `max_bytes` of raw log from global offset `from`: never past what is written,
    /// never across a segment end. Empty at the written end or below the log's min offset.
    pub async fn read_raw(&self, from: u64, max_bytes: usize) -> Result<Vec<u8>, StoreError> {
        let local = self.local_of(from)?;
        let len = {
            let st = self.inner.state.borrow();
            let log = &st.log;
            if local < log.min_offset || local >= log.written {
                return Ok(Vec::new());
            }
            let seg_end = log.segment_base(local) + log.segment_size;
            (log.written.min(seg_end) - local).min(max_bytes as u64) as usize
        };
        let mut out = Vec::with_capacity(len);
        LogReader::default()
            .read_into(&self.inner, local, len, &mut out)
            .await?;
        Ok(out)
    }

    /// Resolves once the O_DIRECT writes have reached past global offset `beyond` (returns the
    /// new written end), or with the current written end once `timeout` passes; `None` once the
    /// store is closing or failed (nothing more will be written). A master's HA streamer waits
    /// here for new bytes to ship.
    pub async fn wait_written_past(
        &self,
        beyond: u64,
        timeout: std::time::Duration,
    ) -> Option<u64> {
        let inner = &self.inner;
        let shard = inner.config.shard_id;
        let now = || {
            let stopped = inner.failure.borrow().is_some() || inner.closing.get();
            (!stopped).then(|| to_global(shard, inner.state.borrow().log.written))
        };
        let grown = inner.progress.wait_for(|| match now() {
            Some(w) if w <= beyond => None,
            other => Some(other),
        });
        futures_lite::future::or(grown, async {
            glommio::timer::sleep(timeout).await;
            now()
        })
        .await
    }

    /// Appends raw bytes a master's [`Store::read_raw`] returned for global offset `at`, which
    /// must be this log's end. Whole records are checked (magic, size, CRC, physical offset,
    /// dense queue offsets) and taken; a trailing partial record is left for the next call.
    /// Returns the new log end (global) once the flush mode's promise holds.
    pub async fn append_raw(
        &self,
        at: u64,
        bytes: &[u8],
    ) -> Result<(AppendStatus, u64), StoreError> {
        let inner = &self.inner;
        if let Some(cause) = inner.failure.borrow().as_ref() {
            return Err(StoreError::ReadOnly {
                cause: cause.clone(),
            });
        }
        let local_at = self.local_of(at)?;
        let end = {
            let mut st = inner.state.borrow_mut();
            if st.log.end != local_at {
                return Err(StoreError::RawOffsetMismatch {
                    offered: at,
                    end: to_global(inner.config.shard_id, st.log.end),
                });
            }
            let mut consumed = 0usize;
            while consumed + 8 <= bytes.len() {
                let pos = st.log.end;
                let rest = &bytes[consumed..];
                let (size, magic) = peek_header(rest).expect("8 bytes");
                let seg_end = st.log.segment_base(pos) + st.log.segment_size;
                let corrupt = |reason: &str| StoreError::CorruptRaw {
                    offset: to_global(inner.config.shard_id, pos),
                    reason: reason.into(),
                };
                if magic == MAGIC_BLANK {
                    if size as u64 != seg_end - pos {
                        return Err(corrupt("filler does not reach the segment end"));
                    }
                    st.log.close_segment();
                    consumed = bytes.len().min(consumed + size as usize);
                    continue;
                }
                if size < RECORD_OVERHEAD_V1_IPV4 as i32 || size as u64 + 8 > seg_end - pos {
                    return Err(corrupt("bad record size"));
                }
                if rest.len() < size as usize {
                    break;
                }
                take_raw_record(inner, &mut st, pos, &rest[..size as usize])?;
                consumed += size as usize;
            }
            st.log.end
        };
        inner.writer_wake.notify_all();
        let status = self.wait_durable(end).await?;
        Ok((status, to_global(inner.config.shard_id, end)))
    }
}

/// Checks one whole record shipped for local `pos`, the log end (body CRC, physical offset,
/// dense queue offset), then appends it as is.
fn take_raw_record(
    inner: &Inner,
    st: &mut State,
    pos: u64,
    record: &[u8],
) -> Result<(), StoreError> {
    let corrupt = |reason: &str| StoreError::CorruptRaw {
        offset: to_global(inner.config.shard_id, pos),
        reason: reason.into(),
    };
    let d = DecodedRecord::decode(record).map_err(|e| corrupt(&e.to_string()))?;
    d.verify_body_crc().map_err(|e| corrupt(&e.to_string()))?;
    let r = &d.record;
    if r.physical_offset as u64 != to_global(inner.config.shard_id, pos) {
        return Err(corrupt("physical offset field mismatch"));
    }
    let tx = sysflag::transaction_type(r.sys_flag);
    if tx != sysflag::TRANSACTION_PREPARED_TYPE && tx != sysflag::TRANSACTION_ROLLBACK_TYPE {
        let topic = std::str::from_utf8(r.topic).map_err(|_| corrupt("topic not UTF-8"))?;
        let q = inner.queue(st, topic, r.queue_id);
        if r.queue_offset as u64 != q.next_offset.get() {
            return Err(corrupt("queue offset not dense"));
        }
        q.next_offset.set(q.next_offset.get() + 1);
    }
    st.log.last_store_timestamp = st.log.last_store_timestamp.max(r.store_timestamp);
    let pos2 = st.log.reserve(record.len());
    assert_eq!(pos2, pos);
    st.log.cache.extend(record.len()).copy_from_slice(record);
    Ok(())
}
