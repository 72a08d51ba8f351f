//! A connection's read buffer: socket reads land in reused spare capacity, frames are split off
//! its front without copying. The broker's connections and the client's use it alike.
//!
//! Why not `resize(len + chunk, 0)` before each read (what the first version did): that
//! zero-fills a whole chunk per read, and once a frame body split off the front still pins the
//! allocation, `resize` reallocates too. At ~10k small reads/s that was a third of the broker's
//! CPU (malloc + memset).
//!
//! Here every byte of an allocation is zeroed at most once: `initialized` remembers how far
//! past the data the current allocation is already initialised (zeroed, or filled by an
//! earlier read), so reads reuse it as plain `&mut [u8]` with no `unsafe` read of
//! uninitialised memory. A new allocation is made only when the spare room runs low (or a
//! known large frame needs more); bodies still held by in-flight requests keep the old
//! allocation alive and are unaffected.

use std::mem::MaybeUninit;

use bytes::BytesMut;

use crate::command::RemotingCommand;
use crate::error::FrameError;
use crate::frame::{decode_frame, FRAME_MAX_BYTES};

/// Spare room a new allocation gets beyond the buffered data.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Below this much spare room the next read gets a fresh chunk first: smaller reads would
/// only mean more syscalls.
pub const READ_MIN_SPARE_BYTES: usize = 8 * 1024;

#[derive(Debug, Default)]
pub struct ReadBuffer {
    buf: BytesMut,
    /// Bytes from the start of `buf` known to be initialised; `buf.len() <= initialized <=
    /// buf.capacity()`, always within `buf`'s current allocation.
    initialized: usize,
}

impl ReadBuffer {
    pub fn new() -> ReadBuffer {
        ReadBuffer::default()
    }

    /// Buffered bytes not yet decoded.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The spare room for the next read, at least [`READ_MIN_SPARE_BYTES`] long (more when
    /// the buffered partial frame needs more). Call [`ReadBuffer::filled`] with what the read
    /// returned.
    pub fn spare(&mut self) -> &mut [u8] {
        self.ensure_room();
        let (len, capacity) = (self.buf.len(), self.buf.capacity());
        if self.initialized < capacity {
            // Once per allocation (not per read): the part never zeroed nor read into.
            self.buf.spare_capacity_mut()[self.initialized - len..].fill(MaybeUninit::new(0));
            self.initialized = capacity;
        }
        let spare = self.buf.spare_capacity_mut();
        // SAFETY: the spare capacity is `[len, capacity)` of the current allocation, and all of
        // `[len, initialized)` = `[len, capacity)` is initialised: zeroed just above or by an
        // earlier call, or written by an earlier read (the memory is never de-initialised:
        // splitting frames off the front and `set_len` do not touch it). `MaybeUninit<u8>` and
        // `u8` have the same layout.
        unsafe { &mut *(spare as *mut [MaybeUninit<u8>] as *mut [u8]) }
    }

    /// Marks `read` bytes at the start of the last [`ReadBuffer::spare`] as data.
    pub fn filled(&mut self, read: usize) {
        let len = self.buf.len();
        assert!(len + read <= self.initialized, "filled past the spare room");
        // SAFETY: `[len, len + read)` is initialised (checked against `initialized` above).
        unsafe { self.buf.set_len(len + read) };
    }

    /// Takes the next whole frame off the front (see [`decode_frame`]): the body shares this
    /// buffer's allocation, nothing is copied.
    pub fn decode(&mut self) -> Result<Option<RemotingCommand>, FrameError> {
        let (len_before, capacity_before) = (self.buf.len(), self.buf.capacity());
        let decoded = decode_frame(&mut self.buf);
        let consumed = len_before - self.buf.len();
        // decode_frame only splits whole frames off the front: data and capacity shrink by the
        // same amount and the rest stays in the same allocation, so `initialized` moves with it.
        assert_eq!(capacity_before - self.buf.capacity(), consumed);
        self.initialized -= consumed;
        decoded
    }

    /// Makes sure the spare room is worth a read: at least [`READ_MIN_SPARE_BYTES`], and for a
    /// partial frame whose length is already known, as much of its rest as has already arrived
    /// (at least a chunk). So a large frame takes a few doubling allocations, and a peer that
    /// announces 16 MiB and sends 8 bytes costs a chunk, not 16 MiB.
    fn ensure_room(&mut self) {
        let len = self.buf.len();
        let frame_rest =
            pending_frame_bytes(&self.buf).map_or(0, |frame| frame.saturating_sub(len));
        let wanted = frame_rest
            .min(len.max(READ_CHUNK_BYTES))
            .max(READ_MIN_SPARE_BYTES);
        if self.buf.capacity() - len >= wanted {
            return;
        }
        self.buf.reserve(wanted.max(READ_CHUNK_BYTES));
        // The data may now sit in a new allocation (or moved to the front of the old one):
        // only the data itself is known to be initialised.
        self.initialized = self.buf.len();
    }
}

/// The size of the frame at the front of `buf` (length field included), if its length field
/// is buffered and within the frame cap (a bad one is left for [`decode_frame`] to reject).
fn pending_frame_bytes(buf: &[u8]) -> Option<usize> {
    let field = buf.get(..4)?;
    let length = i32::from_be_bytes([field[0], field[1], field[2], field[3]]);
    let frame = usize::try_from(length).ok()?.checked_add(4)?;
    (frame <= FRAME_MAX_BYTES).then_some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ExtFields;
    use bytes::Bytes;

    fn frame(code: i32, body_bytes: usize) -> Vec<u8> {
        let mut fields = ExtFields::default();
        fields.insert("topic", "t");
        let command =
            RemotingCommand::new_request(code, fields, Bytes::from(vec![7u8; body_bytes]));
        let mut out = BytesMut::new();
        command.encode(&mut out).unwrap();
        out.to_vec()
    }

    /// Feeds `stream` in reads of at most `read_max` bytes; returns the decoded (code, body len).
    fn feed(rb: &mut ReadBuffer, stream: &[u8], read_max: usize) -> Vec<(i32, usize)> {
        let mut decoded = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let spare = rb.spare();
            assert!(spare.len() >= READ_MIN_SPARE_BYTES);
            let n = rest.len().min(read_max).min(spare.len());
            spare[..n].copy_from_slice(&rest[..n]);
            rb.filled(n);
            rest = &rest[n..];
            while let Some(command) = rb.decode().unwrap() {
                assert!(command.body.iter().all(|b| *b == 7));
                decoded.push((command.code, command.body.len()));
            }
        }
        decoded
    }

    #[test]
    fn frames_split_across_reads_decode_whole() {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for i in 0..500 {
            let body = (i * 37) % 3000;
            stream.extend(frame(10 + i as i32, body));
            expected.push((10 + i as i32, body));
        }
        for read_max in [1, 7, 100, 4096, 70_000] {
            let mut rb = ReadBuffer::new();
            assert_eq!(
                feed(&mut rb, &stream, read_max),
                expected,
                "reads of {read_max}"
            );
            assert!(rb.is_empty());
        }
    }

    #[test]
    fn frame_larger_than_a_chunk_decodes_and_room_follows_arrivals() {
        let big = frame(310, 3 * READ_CHUNK_BYTES + 5);
        let mut rb = ReadBuffer::new();
        let spare = rb.spare();
        spare[..8].copy_from_slice(&big[..8]);
        rb.filled(8);
        assert!(rb.decode().unwrap().is_none());
        // Room grows with what has arrived, not with what the length field announces.
        assert!(rb.spare().len() < 2 * READ_CHUNK_BYTES);
        let mut rb = ReadBuffer::new();
        assert_eq!(
            feed(&mut rb, &big, 10_000),
            vec![(310, 3 * READ_CHUNK_BYTES + 5)]
        );
    }

    #[test]
    fn bodies_held_elsewhere_keep_their_bytes_while_reading_goes_on() {
        let mut rb = ReadBuffer::new();
        let mut held = Vec::new();
        for i in 0..2000 {
            let bytes = frame(i, 200);
            let spare = rb.spare();
            spare[..bytes.len()].copy_from_slice(&bytes);
            rb.filled(bytes.len());
            let command = rb.decode().unwrap().unwrap();
            held.push(command.body);
        }
        assert!(held
            .iter()
            .all(|b| b.len() == 200 && b.iter().all(|x| *x == 7)));
    }

    #[test]
    fn malformed_length_is_an_error_and_reserves_nothing_huge() {
        let mut rb = ReadBuffer::new();
        let spare = rb.spare();
        spare[..8].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        rb.filled(8);
        assert!(rb.decode().is_err());
        assert!(rb.spare().len() < 2 * READ_CHUNK_BYTES);
        assert_eq!(pending_frame_bytes(&[0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(pending_frame_bytes(&[0, 0, 0]), None);
        assert_eq!(pending_frame_bytes(&[0, 0, 1, 0]), Some(260));
    }

    #[test]
    #[should_panic(expected = "filled past the spare room")]
    fn filling_past_the_spare_room_is_refused() {
        let mut rb = ReadBuffer::new();
        let room = rb.spare().len();
        rb.filled(room + 1);
    }
}
