//! The few header fields a broker reads to decide *where* a request is served, before (and
//! without) decoding its typed header. They are read here so that wire field names stay inside
//! `proto/`; a broker's placement code asks for a request's target, never for `"b"` or `"e"`.
//!
//! Every reader is lenient in the same way the typed headers are (whitespace, an integral `.0`)
//! and never fails: a field that is absent or unparsable yields `None`, and the request is then
//! served where it arrived, whose handler answers the typed header's error.

use super::send::send_field_names;
use super::ExtFields;

/// The topic and queue id of a send (codes 10, 310, 320), by whichever spelling its header uses:
/// the short names when `a` is present, the long names otherwise, exactly as
/// [`super::SendMessageRequestHeader::read_any`] decides.
pub fn send_target(ext: &ExtFields) -> (Option<&str>, Option<i32>) {
    let names = send_field_names(ext);
    (
        ext.get(names.topic),
        ext.get(names.queue_id).and_then(lenient_int),
    )
}

/// The `queueId` field name a send header uses (to write a broker-chosen queue back into it).
pub fn send_queue_field(ext: &ExtFields) -> &'static str {
    send_field_names(ext).queue_id
}

/// The `defaultTopic` and `defaultTopicQueueNums` of a send, by its spelling.
pub fn send_default_topic(ext: &ExtFields) -> (Option<&str>, Option<i32>) {
    let names = send_field_names(ext);
    (
        ext.get(names.default_topic),
        ext.get(names.default_topic_queue_nums)
            .and_then(lenient_int),
    )
}

/// The `topic` and `queueId` of a request about one queue (pull, offsets, min/max offset,
/// search by time).
pub fn queue_target(ext: &ExtFields) -> (Option<&str>, Option<i32>) {
    (ext.get("topic"), ext.get("queueId").and_then(lenient_int))
}

/// The commit-log offset a request names: `offset` for VIEW_MESSAGE_BY_ID and
/// CONSUMER_SEND_MSG_BACK, `commitLogOffset` for END_TRANSACTION, the offset inside the
/// offsetMsgId `msgId` for CONSUME_MESSAGE_DIRECTLY.
pub fn commit_log_offset(ext: &ExtFields, kind: OffsetField) -> Option<i64> {
    let name = match kind {
        OffsetField::Offset => "offset",
        OffsetField::CommitLogOffset => "commitLogOffset",
        OffsetField::MsgId => {
            let id = ext.get("msgId")?;
            return crate::message::ids::decode_offset_msg_id(id.trim())
                .ok()
                .map(|id| id.commit_log_offset);
        }
    };
    ext.get(name).and_then(lenient_int)
}

/// Which header field carries a request's commit-log offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetField {
    /// `offset` (VIEW_MESSAGE_BY_ID, CONSUMER_SEND_MSG_BACK).
    Offset,
    /// `commitLogOffset` (END_TRANSACTION).
    CommitLogOffset,
    /// `msgId`, an offsetMsgId (CONSUME_MESSAGE_DIRECTLY).
    MsgId,
}

/// Decimal text with optional whitespace and an integral `.0` tail (a JSON double).
fn lenient_int<T: std::str::FromStr>(text: &str) -> Option<T> {
    let trimmed = text.trim();
    let integral = trimmed
        .strip_suffix(".0")
        .filter(|head| !head.is_empty())
        .unwrap_or(trimmed);
    integral.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(fields: &[(&str, &str)]) -> ExtFields {
        let mut ext = ExtFields::new();
        for (k, v) in fields {
            ext.insert(*k, *v);
        }
        ext
    }

    #[test]
    fn send_target_follows_the_spelling() {
        let short = ext(&[("a", "g"), ("b", "T"), ("e", " 3.0 "), ("topic", "X")]);
        assert_eq!(send_target(&short), (Some("T"), Some(3)));
        assert_eq!(send_queue_field(&short), "e");
        let long = ext(&[("topic", "T"), ("queueId", "-1"), ("b", "X")]);
        assert_eq!(send_target(&long), (Some("T"), Some(-1)));
        assert_eq!(send_queue_field(&long), "queueId");
        let bad = ext(&[("topic", "T"), ("queueId", "x")]);
        assert_eq!(send_target(&bad), (Some("T"), None));
        let defaults = ext(&[("a", "g"), ("c", "TBW102"), ("d", "4")]);
        assert_eq!(send_default_topic(&defaults), (Some("TBW102"), Some(4)));
    }

    #[test]
    fn queue_and_offset_targets() {
        let pull = ext(&[("topic", "T"), ("queueId", "7")]);
        assert_eq!(queue_target(&pull), (Some("T"), Some(7)));
        assert_eq!(queue_target(&ext(&[])), (None, None));
        let view = ext(&[("offset", "281474976710733")]);
        assert_eq!(
            commit_log_offset(&view, OffsetField::Offset),
            Some(281_474_976_710_733)
        );
        assert_eq!(commit_log_offset(&view, OffsetField::CommitLogOffset), None);
        let id = crate::message::ids::encode_offset_msg_id(
            "10.0.0.1:10911".parse().unwrap(),
            281_474_976_710_733,
        );
        let direct = ext(&[("msgId", &id), ("offset", "1")]);
        assert_eq!(
            commit_log_offset(&direct, OffsetField::MsgId),
            Some(281_474_976_710_733)
        );
        assert_eq!(
            commit_log_offset(&ext(&[("msgId", "xyz")]), OffsetField::MsgId),
            None
        );
        let end = ext(&[("commitLogOffset", "12")]);
        assert_eq!(
            commit_log_offset(&end, OffsetField::CommitLogOffset),
            Some(12)
        );
    }
}
