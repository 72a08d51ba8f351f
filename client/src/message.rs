//! Messages: what a producer sends ([`Message`]) and what a consumer receives ([`MessageExt`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use ringmq_proto::message::{
    encode_offset_msg_id, encode_properties, property, sysflag, DecodedRecord, PropertiesIter,
};

use crate::compression::decompress_body;

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
    pub properties: BTreeMap<String, String>,
}

impl MessageExt {
    /// Builds a message from a decoded record. `source` is the buffer the record was decoded
    /// from: an uncompressed body is a slice of it (no copy).
    pub fn from_record(
        source: &Bytes,
        decoded: &DecodedRecord<'_>,
        broker_name: &str,
    ) -> Result<MessageExt, String> {
        let record = &decoded.record;
        let body = match decompress_body(record.body, record.sys_flag) {
            Ok(Some(inflated)) => Bytes::from(inflated),
            Ok(None) => source.slice_ref(record.body),
            Err(e) => {
                return Err(format!(
                    "message at queue offset {}: {e}",
                    record.queue_offset
                ))
            }
        };
        let properties = PropertiesIter::new(record.properties)
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
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
            properties,
        })
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
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
pub fn decode_records(body: &Bytes, broker_name: &str) -> Result<Vec<MessageExt>, String> {
    let mut messages = Vec::new();
    let mut position = 0;
    while position < body.len() {
        let decoded = DecodedRecord::decode(&body[position..])
            .map_err(|e| format!("record at body byte {position}: {e}"))?;
        messages.push(MessageExt::from_record(body, &decoded, broker_name)?);
        position += decoded.total_size;
    }
    Ok(messages)
}
