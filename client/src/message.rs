//! Messages: what a producer sends ([`Message`]) and what a consumer receives ([`MessageExt`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use ringmq_proto::message::{
    encode_offset_msg_id, encode_properties, find_property, property, sysflag, DecodedRecord,
    PropertiesIter,
};

use crate::compression::{decompress_body, DecompressError};

/// Why a received body (pull, query) could not be turned into messages.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A stored record is malformed at byte `position` of the body.
    #[error("record at body byte {position}: {source}")]
    Record {
        position: usize,
        #[source]
        source: ringmq_proto::message::RecordError,
    },
    /// A record's body could not be decompressed.
    #[error("message at queue offset {queue_offset}: {source}")]
    Body {
        queue_offset: i64,
        #[source]
        source: DecompressError,
    },
}

/// A message to send. Properties hold TAGS, KEYS, UNIQ_KEY and user properties, exactly as they
/// travel on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub body: Bytes,
    /// User flag, stored verbatim by the broker.
    pub flag: i32,
    properties: BTreeMap<String, String>,
}

impl Message {
    /// A message with `WAIT=true`, as every Java `Message` constructor sets it (the producer
    /// waits for the store's answer before the broker replies).
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Message {
        let mut properties = BTreeMap::new();
        properties.insert(property::WAIT.to_string(), "true".to_string());
        Message {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties,
        }
    }

    /// Sets the single tag brokers filter on (the TAGS property).
    pub fn with_tags(mut self, tags: impl Into<String>) -> Message {
        self.set_property(property::TAGS, tags);
        self
    }

    /// Sets the business keys (KEYS property, space-separated as Java joins them).
    pub fn with_keys<I, S>(mut self, keys: I) -> Message
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined: Vec<String> = keys.into_iter().map(|k| k.as_ref().to_string()).collect();
        self.set_property(property::KEYS, joined.join(" "));
        self
    }

    /// Sets a delay level (1..=18); the broker delivers the message after that level's delay.
    pub fn with_delay_level(mut self, level: u8) -> Message {
        self.set_property(property::DELAY, level.to_string());
        self
    }

    /// RocketMQ 5 timer: deliver at `epoch_ms` (TIMER_DELIVER_MS; Java's `setDeliverTimeMs`).
    /// A time already past is delivered at once.
    pub fn with_deliver_time_ms(mut self, epoch_ms: i64) -> Message {
        self.set_property(property::TIMER_DELIVER_MS, epoch_ms.to_string());
        self
    }

    /// RocketMQ 5 timer: deliver `seconds` after the broker receives it (TIMER_DELAY_SEC;
    /// Java's `setDelayTimeSec`).
    pub fn with_delay_time_sec(mut self, seconds: i64) -> Message {
        self.set_property(property::TIMER_DELAY_SEC, seconds.to_string());
        self
    }

    /// RocketMQ 5 timer: deliver `ms` after the broker receives it (TIMER_DELAY_MS; Java's
    /// `setDelayTimeMs`).
    pub fn with_delay_time_ms(mut self, ms: i64) -> Message {
        self.set_property(property::TIMER_DELAY_MS, ms.to_string());
        self
    }

    /// The delay level, if one is set and numeric.
    pub fn delay_level(&self) -> Option<i32> {
        self.property(property::DELAY)?.parse().ok()
    }

    /// Sets a user property.
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Message {
        self.set_property(name, value);
        self
    }

    pub fn set_property(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.properties.insert(name.into(), value.into());
    }

    pub fn remove_property(&mut self, name: &str) -> Option<String> {
        self.properties.remove(name)
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    pub fn keys(&self) -> Option<&str> {
        self.property(property::KEYS)
    }

    /// The client message id (UNIQ_KEY), once the producer has assigned one.
    pub fn uniq_key(&self) -> Option<&str> {
        self.property(property::UNIQ_KEY)
    }

    /// The properties string of the wire (`name 0x01 value 0x02` per entry), without empty
    /// names or values (the wire format cannot carry them: Java drops them on decode).
    pub fn encode_properties(&self) -> String {
        let mut out = Vec::with_capacity(self.properties_len());
        encode_properties(
            self.properties
                .iter()
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .map(|(k, v)| (k.as_str(), v.as_str())),
            &mut out,
        );
        // Only UTF-8 strings and the ASCII separators went in.
        String::from_utf8(out).expect("properties string is UTF-8")
    }

    fn properties_len(&self) -> usize {
        self.properties
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum()
    }
}

/// A message as received from a broker (pull body, query): the stored record's fields with the
/// body already decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
    /// Logical offset in the consume queue.
    pub queue_offset: i64,
    /// Commit-log offset (what CONSUMER_SEND_MSG_BACK and offsetMsgId carry).
    pub commit_log_offset: i64,
    pub sys_flag: i32,
    pub flag: i32,
    pub born_timestamp_ms: i64,
    pub born_host: SocketAddr,
    pub store_timestamp_ms: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    /// The body, decompressed if the record was compressed.
    pub body: Bytes,
    /// The record's properties string as stored (`name 0x01 value 0x02` per entry): a slice of
    /// the pull body, read on demand ([`MessageExt::property`]). Decoding it into a map for
    /// every message cost a dozen small allocations each and was the largest item of a
    /// consumer's CPU when draining a backlog (results/consumer-decode-2026-12-07.md).
    properties_raw: Bytes,
}

impl MessageExt {
    /// Builds a message from a decoded record. `source` is the buffer the record was decoded
    /// from: an uncompressed body is a slice of it (no copy).
    pub fn from_record(
        source: &Bytes,
        decoded: &DecodedRecord<'_>,
        broker_name: &str,
    ) -> Result<MessageExt, DecodeError> {
        let record = &decoded.record;
        let body = match decompress_body(record.body, record.sys_flag) {
            Ok(Some(inflated)) => Bytes::from(inflated),
            Ok(None) => source.slice_ref(record.body),
            Err(source) => {
                return Err(DecodeError::Body {
                    queue_offset: record.queue_offset,
                    source,
                })
            }
        };
        Ok(MessageExt {
            topic: record.topic_str().into_owned(),
            broker_name: broker_name.to_string(),
            queue_id: record.queue_id,
            queue_offset: record.queue_offset,
            commit_log_offset: record.physical_offset,
            sys_flag: record.sys_flag,
            flag: record.flag,
            born_timestamp_ms: record.born_timestamp,
            born_host: record.born_host,
            store_timestamp_ms: record.store_timestamp,
            store_host: record.store_host,
            reconsume_times: record.reconsume_times,
            prepared_transaction_offset: record.prepared_transaction_offset,
            body,
            properties_raw: source.slice_ref(record.properties),
        })
    }

    /// The value of property `name` (the last one when repeated), without copying. A value
    /// that is not UTF-8 (no RocketMQ client writes one) reads as absent here and lossily in
    /// [`MessageExt::properties`].
    pub fn property(&self, name: &str) -> Option<&str> {
        find_property(&self.properties_raw, name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Length in bytes of the properties string as stored.
    pub fn properties_bytes(&self) -> usize {
        self.properties_raw.len()
    }

    /// Every property as an owned map, for display and inspection (allocates; the consume path
    /// uses [`MessageExt::property`]).
    pub fn properties(&self) -> BTreeMap<String, String> {
        PropertiesIter::new(&self.properties_raw)
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    pub fn keys(&self) -> Option<&str> {
        self.property(property::KEYS)
    }

    /// The broker id of the message: store host and commit-log offset (reference §4.2).
    pub fn offset_msg_id(&self) -> String {
        encode_offset_msg_id(self.store_host, self.commit_log_offset)
    }

    /// The message id Java's `MessageExt.getMsgId()` returns: UNIQ_KEY, or the offsetMsgId for
    /// a message sent without one.
    pub fn msg_id(&self) -> String {
        match self.property(property::UNIQ_KEY) {
            Some(id) => id.to_string(),
            None => self.offset_msg_id(),
        }
    }

    /// Whether the body was compressed on the wire.
    pub fn was_compressed(&self) -> bool {
        self.sys_flag & sysflag::COMPRESSED != 0
    }
}

/// Decodes a pull (or query) body: stored records back to back. Java silently stops at the
/// first undecodable record; this returns an error instead so the caller can see it.
pub fn decode_records(body: &Bytes, broker_name: &str) -> Result<Vec<MessageExt>, DecodeError> {
    let mut messages = Vec::new();
    let mut position = 0;
    while position < body.len() {
        let decoded = DecodedRecord::decode(&body[position..])
            .map_err(|source| DecodeError::Record { position, source })?;
        messages.push(MessageExt::from_record(body, &decoded, broker_name)?);
        position += decoded.total_size;
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::compress_body;
    use ringmq_proto::message::Record;

    #[test]
    fn schedule_properties_use_javas_names() {
        let m = Message::new("T", "b")
            .with_delay_level(3)
            .with_deliver_time_ms(1_700_000_000_000)
            .with_delay_time_sec(5)
            .with_delay_time_ms(250);
        assert_eq!(m.property("DELAY"), Some("3"));
        assert_eq!(m.delay_level(), Some(3));
        assert_eq!(m.property("TIMER_DELIVER_MS"), Some("1700000000000"));
        assert_eq!(m.property("TIMER_DELAY_SEC"), Some("5"));
        assert_eq!(m.property("TIMER_DELAY_MS"), Some("250"));
    }

    fn record<'a>(offset: i64, body: &'a [u8], sys_flag: i32, properties: &'a [u8]) -> Record<'a> {
        Record {
            queue_id: 2,
            flag: 9,
            queue_offset: offset,
            physical_offset: 1000 + offset,
            sys_flag,
            born_timestamp: 1_700_000_000_000,
            born_host: "127.0.0.1:50000".parse().unwrap(),
            store_timestamp: 1_700_000_000_001,
            store_host: "127.0.0.1:10911".parse().unwrap(),
            reconsume_times: 1,
            prepared_transaction_offset: 0,
            body,
            topic: b"TopicA",
            properties,
        }
    }

    fn encode(records: &[Record<'_>]) -> Bytes {
        let mut out = Vec::new();
        for r in records {
            let start = out.len();
            out.resize(start + r.encoded_len().unwrap(), 0);
            r.encode(&mut out[start..]).unwrap();
        }
        Bytes::from(out)
    }

    #[test]
    fn received_properties_are_read_in_place_from_the_pull_body() {
        let props = b"TAGS\x01A\x02KEYS\x01k1\x02TAGS\x01B\x02bad\x01\xff\x02";
        let body = encode(&[record(0, b"x", 0, props)]);
        let messages = decode_records(&body, "broker-a").unwrap();
        let m = &messages[0];
        // The last of a repeated name wins, as in Java's string2messageProperties map.
        assert_eq!(m.tags(), Some("B"));
        assert_eq!(m.keys(), Some("k1"));
        assert_eq!(m.property("absent"), None);
        assert_eq!(m.property("bad"), None, "not UTF-8: absent here");
        let all = m.properties();
        assert_eq!(all.len(), 3);
        assert_eq!(all["TAGS"], "B");
        assert_eq!(all["bad"], "\u{fffd}");
        // The value points into the pull body: nothing was copied.
        let range = body.as_ptr_range();
        assert!(range.contains(&m.tags().unwrap().as_ptr()));
    }

    #[test]
    fn pull_bodies_decode_to_messages_with_inflated_bodies_and_ids() {
        let plain = b"plain body";
        let large = vec![b'z'; 6000];
        let (compressed, flags) = compress_body(&large, 5);
        let props = "TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}7F0000010001ABCDEF01\u{2}";
        let body = encode(&[
            record(5, plain, 0, props.as_bytes()),
            record(6, &compressed, flags, b""),
        ]);
        let messages = decode_records(&body, "broker-a").unwrap();
        assert_eq!(messages.len(), 2);
        let first = &messages[0];
        assert_eq!(first.topic, "TopicA");
        assert_eq!(first.broker_name, "broker-a");
        assert_eq!((first.queue_id, first.queue_offset), (2, 5));
        assert_eq!(first.commit_log_offset, 1005);
        assert_eq!(first.flag, 9);
        assert_eq!(first.reconsume_times, 1);
        assert_eq!(&first.body[..], plain);
        // An uncompressed body is a view into the pull body, not a copy.
        let inside = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        assert!(inside.contains(&(first.body.as_ptr() as usize)));
        assert_eq!(first.tags(), Some("TagA"));
        assert_eq!(first.msg_id(), "7F0000010001ABCDEF01");
        assert_eq!(first.offset_msg_id().len(), 32);
        assert!(first.offset_msg_id().starts_with("7F00000100002A9F"));

        let second = &messages[1];
        assert!(second.was_compressed());
        assert_eq!(&second.body[..], &large[..]);
        // No UNIQ_KEY: the id is the offsetMsgId.
        assert_eq!(second.msg_id(), second.offset_msg_id());
    }

    #[test]
    fn corrupt_pull_bodies_are_errors_not_panics() {
        let body = encode(&[record(1, b"x", 0, b"")]);
        let truncated = body.slice(..body.len() - 3);
        assert!(matches!(
            decode_records(&truncated, "b"),
            Err(DecodeError::Record { position: 0, .. })
        ));
        let mut bad_magic = body.to_vec();
        bad_magic.extend_from_slice(&body);
        bad_magic[body.len() + 4] = 0;
        let error = decode_records(&Bytes::from(bad_magic), "b").unwrap_err();
        assert!(
            matches!(error, DecodeError::Record { position, .. } if position == body.len()),
            "{error}"
        );
        // Compressed flag on a body that is not zlib.
        let lying = encode(&[record(1, b"not zlib", 0x301, b"")]);
        assert!(matches!(
            decode_records(&lying, "b"),
            Err(DecodeError::Body {
                queue_offset: 1,
                ..
            })
        ));
        assert!(decode_records(&Bytes::new(), "b").unwrap().is_empty());
    }

    #[test]
    fn message_properties_skip_empty_values() {
        let message = Message::new("T", "b").with_tags("").with_property("k", "v");
        assert_eq!(
            message.encode_properties(),
            "WAIT\u{1}true\u{2}k\u{1}v\u{2}"
        );
    }
}
