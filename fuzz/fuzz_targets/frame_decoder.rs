//! Fuzzes `decode_frame` with arbitrary byte streams.
//!
//! Checks, for any input: no panic; `Ok(None)` and `Err` consume nothing; `Ok(Some)` consumes
//! exactly one frame; every decoded command re-encodes and decodes to itself; and feeding the
//! same bytes in two reads (split at a point the input chooses) yields the same commands.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::frame::decode_frame;

/// Decodes frames until the buffer needs more bytes or errors; returns what was decoded and
/// whether decoding stopped on an error.
fn drain(buffer: &mut BytesMut, out: &mut Vec<RemotingCommand>) -> bool {
    loop {
        let before = buffer.len();
        match decode_frame(buffer) {
            Ok(Some(command)) => {
                assert!(buffer.len() < before, "a decoded frame consumes bytes");
                out.push(command);
            }
            Ok(None) => {
                assert_eq!(buffer.len(), before, "need-more consumes nothing");
                return false;
            }
            Err(_) => {
                assert_eq!(buffer.len(), before, "an error consumes nothing");
                return true;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, stream)) = data.split_first() else {
        return;
    };

    // Whole input at once.
    let mut whole = BytesMut::from(stream);
    let mut from_whole = Vec::new();
    let whole_failed = drain(&mut whole, &mut from_whole);

    // The same input in two reads.
    let split_at = usize::from(split_seed) * stream.len() / 255;
    let mut chunked = BytesMut::from(&stream[..split_at]);
    let mut from_chunks = Vec::new();
    let mut chunked_failed = drain(&mut chunked, &mut from_chunks);
    if !chunked_failed {
        chunked.extend_from_slice(&stream[split_at..]);
        chunked_failed = drain(&mut chunked, &mut from_chunks);
    }
    assert_eq!(from_whole, from_chunks, "read boundaries change nothing");
    assert_eq!(whole_failed, chunked_failed);
    if !whole_failed {
        assert_eq!(whole, chunked, "the same bytes are left over");
    }

    // Every decoded command survives a re-encode.
    for command in &from_whole {
        let mut encoded = BytesMut::new();
        if command.encode(&mut encoded).is_ok() {
            let again = decode_frame(&mut encoded)
                .expect("our own encoding decodes")
                .expect("our own encoding is one whole frame");
            assert!(encoded.is_empty());
            assert_eq!(&again, command);
        }
    }
});
