//! Pure transformations between a producer's message, its half record, the committed record,
//! op records and the given-up copy (Java `TransactionalMessageBridge`,
//! `EndTransactionProcessor.endMessageTransaction`). No I/O.

use ringmq_proto::message::properties::{
    encode_properties, find_property, push_property, PropertiesIter,
};
use ringmq_proto::message::{property, sysflag, Record};

use super::TransactionError;

/// Queue of the half and op topics on every shard (Java uses queue 0 too).
pub const SYSTEM_QUEUE_ID: i32 = 0;
/// TAGS of an op record: "d" for "delete" (Java `TransactionalMessageUtil.REMOVE_TAG`).
pub const REMOVE_TAG: &str = "d";

/// Adds what turns a send into a half message: the real topic and queue, and the producer group
/// when the client did not set PGROUP itself. The caller stores the record in the half topic,
/// queue [`SYSTEM_QUEUE_ID`], with the transaction bits of its sysflag cleared.
pub fn add_half_properties(
    properties: &mut Vec<u8>,
    real_topic: &str,
    real_queue_id: i32,
    producer_group: &str,
) {
    let qid = real_queue_id.to_string();
    let mut pairs = vec![
        (property::REAL_TOPIC, real_topic),
        (property::REAL_QID, qid.as_str()),
    ];
    if find_property(properties, property::PRODUCER_GROUP).is_none() {
        pairs.push((property::PRODUCER_GROUP, producer_group));
    }
    encode_properties(pairs, properties);
}

/// What a decoded half record says about its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HalfInfo {
    pub real_topic: String,
    pub real_queue_id: i32,
    pub producer_group: String,
    /// UNIQ_KEY: the msgId and transactionId clients know the message by.
    pub uniq_key: String,
    /// CHECK_IMMUNITY_TIME_IN_SECONDS, when the producer set one.
    pub immunity_secs: Option<u64>,
}

/// Reads the transaction properties of a half record; an error names what is missing.
pub fn half_info(record: &Record<'_>) -> Result<HalfInfo, TransactionError> {
    let text = |name: &'static str| {
        find_property(record.properties, name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .ok_or(TransactionError::MissingProperty(name))
    };
    let real_queue_id = text(property::REAL_QID)?
        .parse()
        .map_err(|_| TransactionError::MissingProperty(property::REAL_QID))?;
    Ok(HalfInfo {
        real_topic: text(property::REAL_TOPIC)?,
        real_queue_id,
        producer_group: text(property::PRODUCER_GROUP)?,
        uniq_key: text(property::UNIQ_KEY).unwrap_or_default(),
        immunity_secs: text(property::CHECK_IMMUNITY_TIME_IN_SECONDS)
            .ok()
            .and_then(|v| v.parse().ok()),
    })
}

/// Properties of the committed message: the half's, without REAL_TOPIC, REAL_QID and TRAN_MSG
/// (Java clears the first two and PROPERTY_TRANSACTION_PREPARED).
pub fn commit_properties(half_properties: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(half_properties.len());
    for (k, v) in PropertiesIter::new(half_properties) {
        if k == property::REAL_TOPIC.as_bytes()
            || k == property::REAL_QID.as_bytes()
            || k == property::TRAN_MSG.as_bytes()
        {
            continue;
        }
        push_property(&mut out, k, v);
    }
    out
}

/// The committed record: the half's body, flag, hosts and born time in the real topic and
/// queue, sysflag TRANSACTION_COMMIT, PREPARED TRANSACTION OFFSET = the half's commit-log offset.
pub fn commit_record<'a>(
    half: &Record<'a>,
    info: &'a HalfInfo,
    properties: &'a [u8],
) -> Record<'a> {
    Record {
        topic: info.real_topic.as_bytes(),
        queue_id: info.real_queue_id,
        sys_flag: (half.sys_flag & !sysflag::TRANSACTION_MASK) | sysflag::TRANSACTION_COMMIT_TYPE,
        prepared_transaction_offset: half.physical_offset,
        properties,
        ..*half
    }
}

/// Properties of an op record.
pub fn op_properties() -> Vec<u8> {
    let mut out = Vec::new();
    encode_properties([(property::TAGS, REMOVE_TAG)], &mut out);
    out
}

/// An op record marking half offset(s) resolved; `body` is the decimal half-queue offset.
pub fn op_record<'a>(template: &Record<'a>, body: &'a [u8], properties: &'a [u8]) -> Record<'a> {
    Record {
        topic: super::OP_TOPIC.as_bytes(),
        queue_id: SYSTEM_QUEUE_ID,
        flag: 0,
        sys_flag: 0,
        prepared_transaction_offset: 0,
        reconsume_times: 0,
        body,
        properties,
        ..*template
    }
}

/// Half offsets an op body names: decimal, separated by commas (Java 5 batches them so).
pub fn parse_op_body(body: &[u8]) -> impl Iterator<Item = u64> + '_ {
    body.split(|&b| b == b',')
        .filter_map(|part| std::str::from_utf8(part).ok()?.trim().parse().ok())
}

/// The message a check-back carries: the half record re-addressed to its real topic and queue
/// (Java `sendCheckMessage`); encoded as a stored record.
pub fn check_message_body(half: &Record<'_>, info: &HalfInfo) -> Vec<u8> {
    let rec = Record {
        topic: info.real_topic.as_bytes(),
        queue_id: info.real_queue_id,
        ..*half
    };
    let mut out = vec![0; rec.encoded_len().unwrap_or(0)];
    if rec.encode(&mut out).is_err() {
        out.clear();
    }
    out
}

/// Properties of the given-up copy in TRANS_CHECK_MAX_TIME_TOPIC: the half's plus how many
/// checks were made.
pub fn given_up_properties(half_properties: &[u8], check_times: u32) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(half_properties.len() + 32);
    for (k, v) in PropertiesIter::new(half_properties) {
        if k != property::TRANSACTION_CHECK_TIMES.as_bytes() {
            push_property(&mut out, k, v);
        }
    }
    let times = check_times.to_string();
    encode_properties(
        [(property::TRANSACTION_CHECK_TIMES, times.as_str())],
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn half<'a>(props: &'a [u8], body: &'a [u8]) -> Record<'a> {
        let host: SocketAddr = "127.0.0.1:1".parse().unwrap();
        Record {
            queue_id: 0,
            flag: 3,
            queue_offset: 9,
            physical_offset: 1 << 48 | 100,
            sys_flag: 0,
            born_timestamp: 5,
            born_host: host,
            store_timestamp: 6,
            store_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body,
            topic: super::super::HALF_TOPIC.as_bytes(),
            properties: props,
        }
    }

    #[test]
    fn half_properties_round_trip_to_the_committed_record() {
        let mut props = Vec::new();
        encode_properties(
            [("TRAN_MSG", "true"), ("UNIQ_KEY", "U1"), ("PGROUP", "g")],
            &mut props,
        );
        add_half_properties(&mut props, "T", 3, "ignored");
        let rec = half(&props, b"hi");
        let info = half_info(&rec).unwrap();
        assert_eq!(
            (
                info.real_topic.as_str(),
                info.real_queue_id,
                info.producer_group.as_str()
            ),
            ("T", 3, "g")
        );
        assert_eq!(info.uniq_key, "U1");
        let cprops = commit_properties(&props);
        let commit = commit_record(&rec, &info, &cprops);
        assert_eq!((commit.topic, commit.queue_id), (&b"T"[..], 3));
        assert_eq!(commit.sys_flag, sysflag::TRANSACTION_COMMIT_TYPE);
        assert_eq!(commit.prepared_transaction_offset, 1 << 48 | 100);
        assert!(find_property(&cprops, "REAL_TOPIC").is_none());
        assert!(find_property(&cprops, "TRAN_MSG").is_none());
        assert_eq!(find_property(&cprops, "PGROUP"), Some(&b"g"[..]));
    }

    #[test]
    fn missing_group_is_added_and_missing_real_topic_is_an_error() {
        let mut props = Vec::new();
        add_half_properties(&mut props, "T", 0, "pg");
        assert_eq!(find_property(&props, "PGROUP"), Some(&b"pg"[..]));
        assert!(half_info(&half(b"", b"")).is_err());
    }

    #[test]
    fn op_bodies_and_given_up_properties() {
        assert_eq!(parse_op_body(b"7").collect::<Vec<_>>(), vec![7]);
        assert_eq!(parse_op_body(b"1,2,x,").collect::<Vec<_>>(), vec![1, 2]);
        let p = given_up_properties(&given_up_properties(b"", 2), 3);
        assert_eq!(
            find_property(&p, "TRANSACTION_CHECK_TIMES"),
            Some(&b"3"[..])
        );
        assert_eq!(PropertiesIter::new(&p).count(), 1);
    }
}
