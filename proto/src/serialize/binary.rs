//! The ROCKETMQ binary header (reference §1.4): 21 fixed bytes plus remark and ext map.

use bytes::{BufMut, BytesMut};

use super::DecodedHeader;
use crate::command::{ExtFields, LanguageCode, RemotingCommand};
use crate::error::{EncodeError, WireHeaderError};

/// Bytes of the fixed part: code 2, language 1, version 2, opaque 4, flag 4, remark length 4,
/// ext length 4.
pub(crate) const FIXED_BYTES: usize = 21;

/// Appends the binary header of `command` to `dst`. On error `dst` may hold a partial header;
/// the frame encoder truncates it.
pub(crate) fn encode(command: &RemotingCommand, dst: &mut BytesMut) -> Result<(), EncodeError> {
    // Java casts these to short; refuse instead of silently truncating (POP codes > 32767).
    let code = i16::try_from(command.code).map_err(|_| EncodeError::FieldOutOfRange {
        field: "code",
        value: command.code,
    })?;
    let version = i16::try_from(command.version).map_err(|_| EncodeError::FieldOutOfRange {
        field: "version",
        value: command.version,
    })?;
    dst.put_i16(code);
    dst.put_u8(command.language.byte());
    dst.put_i16(version);
    dst.put_i32(command.opaque);
    dst.put_i32(command.flag);
    let remark = command.remark.as_deref().unwrap_or("");
    dst.put_i32(int_len("remark", remark.len())?);
    dst.put_slice(remark.as_bytes());

    // Entries with an empty key or value are skipped: a zero length decodes as null in Java,
    // which drops the entry anyway.
    let entries = || {
        command
            .ext_fields
            .iter()
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
    };
    let mut ext_bytes = 0usize;
    for (k, v) in entries() {
        if k.len() > i16::MAX as usize {
            return Err(EncodeError::StringTooLong {
                field: "ext field key",
                len_bytes: k.len(),
            });
        }
        ext_bytes += 2 + k.len() + 4 + v.len();
    }
    dst.put_i32(int_len("ext fields", ext_bytes)?);
    for (k, v) in entries() {
        dst.put_i16(k.len() as i16); // checked above
        dst.put_slice(k.as_bytes());
        dst.put_i32(int_len("ext field value", v.len())?);
        dst.put_slice(v.as_bytes());
    }
    Ok(())
}

fn int_len(field: &'static str, len_bytes: usize) -> Result<i32, EncodeError> {
    i32::try_from(len_bytes).map_err(|_| EncodeError::StringTooLong { field, len_bytes })
}

/// Decodes a binary header. Lengths are checked against the header, as Java does, before any
/// allocation, so a hostile length cannot make us reserve memory.
pub(crate) fn decode(header: &[u8]) -> Result<DecodedHeader, WireHeaderError> {
    if header.len() < FIXED_BYTES {
        return Err(WireHeaderError::Truncated {
            field: "fixed header",
            need_bytes: FIXED_BYTES,
            have_bytes: header.len(),
        });
    }
    let mut cursor = Cursor {
        bytes: header,
        pos: 0,
    };
    let code = i32::from(cursor.i16("code")?);
    let language = LanguageCode::from_byte(cursor.u8("language")?);
    let version = i32::from(cursor.i16("version")?);
    let opaque = cursor.i32("opaque")?;
    let flag = cursor.i32("flag")?;

    let remark_len = cursor.i32("remark length")?;
    let remark = if remark_len > 0 {
        let len = cursor.checked_len("remark", i64::from(remark_len))?;
        Some(cursor.string("remark", len)?)
    } else {
        None
    };

    let ext_len = cursor.i32("ext fields length")?;
    let mut ext_fields = ExtFields::new();
    if ext_len > 0 {
        let ext_len = cursor.checked_len("ext fields", i64::from(ext_len))?;
        let ext_bytes = cursor.take("ext fields", ext_len)?;
        // The keys and values are part of these bytes, so their text fits without growing.
        ext_fields = ExtFields::with_text_capacity(ext_len);
        let mut ext = Cursor {
            bytes: ext_bytes,
            pos: 0,
        };
        while ext.remaining() > 0 {
            let key_len = i64::from(ext.i16("ext key length")?);
            let key_len = ext.checked_len("ext field key", key_len)?;
            let key = ext.str("ext field key", key_len)?;
            let value_len = i64::from(ext.i32("ext value length")?);
            let value_len = ext.checked_len("ext field value", value_len)?;
            let value = ext.str("ext field value", value_len)?;
            // A zero-length key or value is null in Java: the entry carries nothing.
            if !key.is_empty() && !value.is_empty() {
                let key = ext_fields.push_text(key);
                let value = ext_fields.push_text(value);
                ext_fields.push_decoded(key, value);
            }
        }
        ext_fields.keep_last_of_duplicates();
    }
    // Bytes after the ext map are ignored, as Java ignores them.
    Ok(DecodedHeader {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
    })
}

/// A bounds-checked big-endian reader over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], WireHeaderError> {
        if self.remaining() < n {
            return Err(WireHeaderError::Truncated {
                field,
                need_bytes: n,
                have_bytes: self.remaining(),
            });
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireHeaderError> {
        let slice = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, WireHeaderError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, WireHeaderError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, WireHeaderError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    /// A length prefix must be non-negative and no larger than what is left of this slice.
    fn checked_len(&self, field: &'static str, length: i64) -> Result<usize, WireHeaderError> {
        match usize::try_from(length) {
            Ok(len) if len <= self.remaining() => Ok(len),
            _ => Err(WireHeaderError::BadLength {
                field,
                length,
                header_bytes: self.bytes.len(),
            }),
        }
    }

    fn string(&mut self, field: &'static str, len: usize) -> Result<String, WireHeaderError> {
        self.str(field, len).map(str::to_owned)
    }

    fn str(&mut self, field: &'static str, len: usize) -> Result<&'a str, WireHeaderError> {
        let bytes = self.take(field, len)?;
        std::str::from_utf8(bytes).map_err(|_| WireHeaderError::InvalidUtf8 { field })
    }
}
