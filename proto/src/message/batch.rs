//! The batch body a client sends with SEND_BATCH_MESSAGE (reference §3.6).
//!
//! Items are concatenated: TOTALSIZE 4 (= 22 + body + properties), MAGICCODE 4 (0), BODYCRC 4
//! (0), FLAG 4, BODYLEN 4 + BODY, PROPLEN 2 + PROPERTIES.

use super::RecordError;

/// Fixed bytes of one batch item besides body and properties.
pub const BATCH_ITEM_OVERHEAD: usize = 22;

/// One message of a batch body, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchItem<'a> {
    pub flag: i32,
    pub body: &'a [u8],
    pub properties: &'a [u8],
}

impl BatchItem<'_> {
    /// Bytes [`BatchItem::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        BATCH_ITEM_OVERHEAD + self.body.len() + self.properties.len()
    }

    /// Appends the item as a client would (magic and CRC zero).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        if self.properties.len() > super::MAX_PROPERTIES_LEN {
            return Err(RecordError::PropertiesTooLong(self.properties.len()));
        }
        out.extend_from_slice(&(self.encoded_len() as u32).to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&self.flag.to_be_bytes());
        out.extend_from_slice(&(self.body.len() as u32).to_be_bytes());
        out.extend_from_slice(self.body);
        out.extend_from_slice(&(self.properties.len() as u16).to_be_bytes());
        out.extend_from_slice(self.properties);
        Ok(())
    }
}

/// Iterates over the items of a batch body. After the first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BatchIter {
            buf,
            pos: 0,
            failed: false,
        }
    }

    fn read_item(&self) -> Result<BatchItem<'a>, RecordError> {
        let rest = &self.buf[self.pos..];
        let be32 = |at: usize| -> Result<u32, RecordError> {
            rest.get(at..at + 4)
                .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
                .ok_or(RecordError::Truncated {
                    need: at + 4,
                    have: rest.len(),
                })
        };
        let total = be32(0)? as i32;
        if total < BATCH_ITEM_OVERHEAD as i32 {
            return Err(RecordError::BadTotalSize(total));
        }
        let total = total as usize;
        if rest.len() < total {
            return Err(RecordError::Truncated {
                need: total,
                have: rest.len(),
            });
        }
        let flag = be32(12)? as i32;
        let body_len = be32(16)? as i32;
        if body_len < 0 || 20 + body_len as usize + 2 > total {
            return Err(RecordError::Inconsistent {
                field: "BODYLEN",
                offset: self.pos + 16,
            });
        }
        let body_end = 20 + body_len as usize;
        let prop_len = u16::from_be_bytes([rest[body_end], rest[body_end + 1]]) as i16;
        if prop_len < 0 || body_end + 2 + prop_len as usize != total {
            return Err(RecordError::Inconsistent {
                field: "PROPLEN",
                offset: self.pos + body_end,
            });
        }
        Ok(BatchItem {
            flag,
            body: &rest[20..body_end],
            properties: &rest[body_end + 2..total],
        })
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<BatchItem<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        match self.read_item() {
            Ok(item) => {
                self.pos += item.encoded_len();
                Some(Ok(item))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
