//! Body compression as the Java producer does it: zlib, level 5, for bodies over 4096 bytes,
//! flagged in the sysflag with COMPRESSED | ZLIB (reference §3.2). Batches are never compressed.

use std::io::{Read, Write};

use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use ringmq_proto::message::sysflag::{
    COMPRESSED as COMPRESSED_FLAG, COMPRESSION_TYPE_MASK, COMPRESSION_ZLIB,
};

/// Java `compressMsgBodyOverHowmuch` default.
pub const DEFAULT_COMPRESS_OVER_BYTES: usize = 4096;
/// Java `compressLevel` default.
pub const DEFAULT_ZLIB_LEVEL: u32 = 5;

/// Compresses `body` with zlib at `level`; returns the compressed bytes and the sysflag bits to
/// OR into the send header (Java ≥ 4.9.4 sets both COMPRESSED and the ZLIB type).
pub fn compress_body(body: &[u8], level: u32) -> (Vec<u8>, i32) {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(body.len() / 2), Compression::new(level));
    // Writing into a Vec cannot fail.
    encoder
        .write_all(body)
        .expect("zlib compression into a Vec failed");
    let compressed = encoder.finish().expect("zlib finish into a Vec failed");
    (compressed, COMPRESSED_FLAG | COMPRESSION_ZLIB)
}

/// Errors decompressing a received body.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("compression type {0:#x} is not supported (only zlib)")]
    Unsupported(i32),
    #[error("zlib body is corrupt: {0}")]
    Corrupt(#[from] std::io::Error),
}

/// Inflates `body` if `sys_flag` says it is compressed; `Ok(None)` when it is not.
/// Type bits 0 with the COMPRESSED bit set mean zlib (clients before 4.9.4).
pub fn decompress_body(body: &[u8], sys_flag: i32) -> Result<Option<Vec<u8>>, DecompressError> {
    if sys_flag & COMPRESSED_FLAG == 0 {
        return Ok(None);
    }
    let kind = sys_flag & COMPRESSION_TYPE_MASK;
    if kind != 0 && kind != COMPRESSION_ZLIB {
        return Err(DecompressError::Unsupported(kind));
    }
    let mut inflated = Vec::with_capacity(body.len() * 2);
    ZlibDecoder::new(body).read_to_end(&mut inflated)?;
    Ok(Some(inflated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sets_java_flags() {
        let body = vec![b'x'; 10_000];
        let (compressed, flags) = compress_body(&body, DEFAULT_ZLIB_LEVEL);
        assert_eq!(flags, 0x301);
        assert!(compressed.len() < body.len());
        // zlib stream header: CMF 0x78.
        assert_eq!(compressed[0], 0x78);
        let inflated = decompress_body(&compressed, flags).unwrap().unwrap();
        assert_eq!(inflated, body);
        // Old clients set only bit 0: still zlib.
        assert_eq!(decompress_body(&compressed, 0x1).unwrap().unwrap(), body);
    }

    #[test]
    fn uncompressed_and_unsupported_bodies() {
        assert!(decompress_body(b"plain", 0).unwrap().is_none());
        assert!(matches!(
            decompress_body(
                b"x",
                COMPRESSED_FLAG | ringmq_proto::message::sysflag::COMPRESSION_LZ4
            ),
            Err(DecompressError::Unsupported(0x100))
        ));
        assert!(matches!(
            decompress_body(b"not zlib", 0x301),
            Err(DecompressError::Corrupt(_))
        ));
    }
}
