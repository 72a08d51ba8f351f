//! Turning messages into what goes on the wire, before any I/O: validation, UNIQ_KEY
//! assignment, compression, batch encoding. Done once per send and reused across retries.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ringmq_proto::message::{property, BatchItem, UniqKeyGenerator};

use super::ProducerConfig;
use crate::compression::compress_body;
use crate::error::ClientError;
use crate::message::Message;
use crate::validate::{validate_message, validate_topic};

/// Encoded, ready-to-send form of one send (single message or batch).
#[derive(Debug, Clone)]
pub(crate) struct PreparedSend {
    pub topic: String,
    pub body: Bytes,
    pub sys_flag: i32,
    pub flag: i32,
    pub properties: String,
    pub batch: bool,
    /// SendResult.msg_id: the UNIQ_KEY, or the joined UNIQ_KEYs of a batch.
    pub msg_id: String,
}

/// Validates `message`, gives it a UNIQ_KEY if it has none, and compresses a body larger than
/// `compress_over_bytes` (setting COMPRESSED | ZLIB in the sysflag).
pub(crate) fn prepare_single(
    config: &ProducerConfig,
    message: &mut Message,
) -> Result<PreparedSend, ClientError> {
    validate_message(message, config.max_message_size_bytes)?;
    let msg_id = assign_uniq_key(message, &config.client.client_ip);
    let (body, sys_flag) = if message.body.len() > config.compress_over_bytes {
        let (compressed, flags) = compress_body(&message.body, config.compress_level);
        (Bytes::from(compressed), flags)
    } else {
        (message.body.clone(), 0)
    };
    // As Java's `sendKernelImpl`: TRAN_MSG=true marks a half message in the sysflag too.
    let sys_flag = if message.property(property::TRAN_MSG) == Some("true") {
        sys_flag | ringmq_proto::message::sysflag::TRANSACTION_PREPARED_TYPE
    } else {
        sys_flag
    };
    Ok(PreparedSend {
        topic: message.topic.clone(),
        body,
        sys_flag,
        flag: message.flag,
        properties: message.encode_properties(),
        batch: false,
        msg_id,
    })
}

/// Validates and encodes a batch (reference §3.6): same topic for all, no delay, each message
/// with its own UNIQ_KEY and properties; never compressed.
pub(crate) fn prepare_batch(
    config: &ProducerConfig,
    mut messages: Vec<Message>,
) -> Result<PreparedSend, ClientError> {
    let Some(first) = messages.first() else {
        return Err(ClientError::InvalidMessage("empty batch".to_string()));
    };
    let topic = first.topic.clone();
    validate_topic(&topic)?;
    let mut body = Vec::new();
    let mut ids = Vec::with_capacity(messages.len());
    for message in &mut messages {
        validate_message(message, config.max_message_size_bytes)?;
        if message.topic != topic {
            return Err(ClientError::InvalidMessage(
                "all messages of a batch must have the same topic".to_string(),
            ));
        }
        if message.property(property::DELAY).is_some() {
            return Err(ClientError::InvalidMessage(
                "batch messages cannot be delayed".to_string(),
            ));
        }
        ids.push(assign_uniq_key(message, &config.client.client_ip));
        let properties = message.encode_properties();
        BatchItem {
            flag: message.flag,
            body: &message.body,
            properties: properties.as_bytes(),
        }
        .encode(&mut body)
        .map_err(|e| ClientError::InvalidMessage(format!("batch item: {e}")))?;
    }
    if body.len() > config.max_message_size_bytes {
        return Err(ClientError::InvalidMessage(format!(
            "batch body of {} bytes exceeds {} bytes",
            body.len(),
            config.max_message_size_bytes
        )));
    }
    Ok(PreparedSend {
        topic,
        body: Bytes::from(body),
        sys_flag: 0,
        flag: 0,
        // The batch's own properties: Java copies WAIT from the first message.
        properties: Message::new("", Bytes::new()).encode_properties(),
        batch: true,
        msg_id: ids.join(","),
    })
}

/// The message's UNIQ_KEY, generating one first if it has none.
fn assign_uniq_key(message: &mut Message, client_ip: &str) -> String {
    if let Some(existing) = message.uniq_key() {
        return existing.to_string();
    }
    let id = next_uniq_key(client_ip);
    message.set_property(property::UNIQ_KEY, id.clone());
    id
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

thread_local! {
    /// One generator per executor thread, shared by every producer on it: ids differ by the
    /// counter, so two generators with the same prefix would repeat each other. Java's
    /// "class-loader hash" is a per-process constant; a random value per thread keeps ids from
    /// two executors of one process apart.
    static UNIQ_KEYS: RefCell<Option<UniqKeyGenerator>> = const { RefCell::new(None) };
}

/// The next UNIQ_KEY of this thread; `client_ip` goes into the id's first bytes (loopback if it
/// does not parse).
fn next_uniq_key(client_ip: &str) -> String {
    UNIQ_KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        let generator = keys.get_or_insert_with(|| {
            let ip = client_ip
                .parse()
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
            UniqKeyGenerator::new(ip, std::process::id(), rand::random())
        });
        generator.next_id(now_ms())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::decompress_body;
    use crate::config::ClientConfig;
    use ringmq_proto::message::{find_property, BatchIter};
    use std::collections::BTreeSet;

    fn config() -> ProducerConfig {
        ProducerConfig::new(ClientConfig::new("127.0.0.1:9876").unwrap(), "pg")
    }

    #[test]
    fn bodies_over_4096_bytes_are_zlib_compressed_with_flags_0x301() {
        let config = config();
        let mut small = Message::new("T", vec![b'a'; 4096]);
        let prepared = prepare_single(&config, &mut small).unwrap();
        assert_eq!(prepared.sys_flag, 0);
        assert_eq!(prepared.body.len(), 4096);

        let body = vec![b'a'; 4097];
        let mut large = Message::new("T", body.clone());
        let prepared = prepare_single(&config, &mut large).unwrap();
        assert_eq!(prepared.sys_flag, 0x301);
        assert!(prepared.body.len() < body.len());
        let inflated = decompress_body(&prepared.body, prepared.sys_flag).unwrap();
        assert_eq!(inflated.unwrap(), body);
        // The caller's message keeps its plain body.
        assert_eq!(large.body.len(), 4097);
    }

    #[test]
    fn single_sends_carry_uniq_key_wait_tags_keys_and_user_properties() {
        let mut message = Message::new("T", "hello")
            .with_tags("TagA")
            .with_keys(["k1", "k2"])
            .with_property("color", "blue");
        let prepared = prepare_single(&config(), &mut message).unwrap();
        let props = prepared.properties.as_bytes();
        assert_eq!(find_property(props, "TAGS"), Some(&b"TagA"[..]));
        assert_eq!(find_property(props, "KEYS"), Some(&b"k1 k2"[..]));
        assert_eq!(find_property(props, "WAIT"), Some(&b"true"[..]));
        assert_eq!(find_property(props, "color"), Some(&b"blue"[..]));
        let uniq = find_property(props, "UNIQ_KEY").unwrap();
        assert_eq!(uniq, prepared.msg_id.as_bytes());
        assert_eq!(prepared.msg_id.len(), 32);
        assert!(prepared.msg_id.starts_with("7F000001"), "loopback IP first");
        // A message that already has a UNIQ_KEY keeps it.
        let mut again = message.clone();
        assert_eq!(
            prepare_single(&config(), &mut again).unwrap().msg_id,
            prepared.msg_id
        );
    }

    #[test]
    fn uniq_keys_do_not_repeat() {
        let config = config();
        let ids: BTreeSet<String> = (0..1000)
            .map(|_| {
                prepare_single(&config, &mut Message::new("T", "x"))
                    .unwrap()
                    .msg_id
            })
            .collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn batches_encode_each_message_and_are_never_compressed() {
        let config = config();
        let messages = vec![
            Message::new("T", vec![b'x'; 5000]).with_tags("A"),
            Message::new("T", "second").with_keys(["k"]),
        ];
        let prepared = prepare_batch(&config, messages).unwrap();
        assert!(prepared.batch);
        assert_eq!(prepared.sys_flag, 0);
        let items: Vec<_> = BatchIter::new(&prepared.body)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].body.len(), 5000);
        assert_eq!(items[1].body, b"second");
        assert_eq!(find_property(items[0].properties, "TAGS"), Some(&b"A"[..]));
        let ids: Vec<&str> = prepared.msg_id.split(',').collect();
        assert_eq!(ids.len(), 2);
        for (item, id) in items.iter().zip(ids) {
            assert_eq!(
                find_property(item.properties, "UNIQ_KEY"),
                Some(id.as_bytes())
            );
        }
        assert_eq!(prepared.properties, "WAIT\u{1}true\u{2}");
    }

    #[test]
    fn invalid_sends_fail_before_any_io() {
        let config = config();
        assert!(prepare_batch(&config, Vec::new()).is_err());
        let mixed = vec![Message::new("A", "x"), Message::new("B", "y")];
        assert!(prepare_batch(&config, mixed).is_err());
        let delayed = vec![Message::new("A", "x").with_delay_level(3)];
        assert!(prepare_batch(&config, delayed).is_err());
        assert!(prepare_single(&config, &mut Message::new("bad topic", "x")).is_err());
        assert!(prepare_single(&config, &mut Message::new("T", "")).is_err());
        let huge = vec![b'x'; config.max_message_size_bytes + 1];
        assert!(prepare_single(&config, &mut Message::new("T", huge)).is_err());
    }
}
