//! A timed drain of a backlog by a fresh consumer group: shared by `--filter-compare` and
//! `catch-up`.
//!
//! The drain uses the ordinary push consumer (wire protocol only, so it works against any
//! RocketMQ broker): one pipelined pull loop per queue, every queue of the topics assigned to
//! the one consumer, each pull asking for `pull_batch_size` messages and the listener taking a
//! whole pulled batch at once. It is timed from the consumer's start to the moment its offsets
//! reach the end offsets read before the start, on every queue.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ringmq_client::{
    Admin, ClientConfig, ConsumeFrom, ConsumeStatus, Credentials, MessageExt, MessageQueue,
    MessageSelector, PullConsumer, PushConsumer, PushConsumerConfig, SubscriptionGroupConfig,
};
use ringmq_proto::message::RECORD_OVERHEAD_V1_IPV4;
use serde::Serialize;

/// How often a drain looks at its consumer's offsets: short against any drain worth timing.
const POLL: Duration = Duration::from_millis(5);

/// One queue's part of the backlog: offsets `start..end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRange {
    pub queue: MessageQueue,
    pub start: i64,
    pub end: i64,
}

impl QueueRange {
    /// Queue entries in the range.
    pub fn len(&self) -> u64 {
        u64::try_from(self.end - self.start).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Entries in all `ranges`.
pub fn backlog(ranges: &[QueueRange]) -> u64 {
    ranges.iter().map(QueueRange::len).sum()
}

/// Every readable queue of `topics` as a range from its oldest entry (0 unless retention has
/// deleted some) to its end offset now.
pub async fn whole_queues(admin: &Admin, topics: &[String]) -> anyhow::Result<Vec<QueueRange>> {
    let mut ranges = Vec::new();
    for topic in topics {
        let route = admin
            .topic_route(topic)
            .await
            .with_context(|| format!("route of topic {topic}"))?;
        for queue in &route.read_queues {
            let end = admin
                .max_offset(queue)
                .await
                .with_context(|| format!("end offset of {queue}"))?;
            let start = admin
                .min_offset(queue)
                .await
                .with_context(|| format!("oldest offset of {queue}"))?;
            ranges.push(QueueRange {
                queue: queue.clone(),
                start,
                end,
            });
        }
    }
    Ok(ranges)
}

/// Who drains and how.
pub struct DrainSpec<'a> {
    pub namesrv: &'a str,
    pub credentials: Option<Credentials>,
    /// A group that has consumed nothing of these topics.
    pub group: &'a str,
    pub topics: &'a [String],
    pub ranges: &'a [QueueRange],
    /// Messages asked for per pull (brokers cap it: RocketMQ and ringmq at 32).
    pub pull_batch_size: u32,
    /// The drain gives up (reported incomplete) after this long.
    pub limit: Duration,
}

/// What one drain measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DrainOutcome {
    /// From the consumer's start (group registration and rebalance included) to the end.
    pub secs: f64,
    /// From the consumer's start to the first delivered batch (the setup part of `secs`).
    pub first_delivery_secs: Option<f64>,
    /// Queue entries passed over (the backlog).
    pub scanned: u64,
    /// Messages the listener received.
    pub delivered: u64,
    /// Bytes of the delivered messages' bodies (not headers, properties or topic names).
    pub body_bytes: u64,
    /// Bytes the delivered messages take as RocketMQ's V1 records (IPv4 hosts): the fixed
    /// header, body, topic and properties, recomputed from each message ([`record_bytes`]).
    pub record_bytes: u64,
    /// False when the drain hit its time limit before the end of every queue.
    pub complete: bool,
}

/// The listener's tallies, shared with the drain that reads them.
#[derive(Default)]
struct Tally {
    delivered: Cell<u64>,
    body_bytes: Cell<u64>,
    record_bytes: Cell<u64>,
    first_delivery: Cell<Option<Instant>>,
}

impl Tally {
    fn add(&self, messages: &[MessageExt]) {
        if self.first_delivery.get().is_none() {
            self.first_delivery.set(Some(Instant::now()));
        }
        let body: usize = messages.iter().map(|m| m.body.len()).sum();
        let records: usize = messages.iter().map(record_bytes).sum();
        self.delivered
            .set(self.delivered.get() + messages.len() as u64);
        self.body_bytes.set(self.body_bytes.get() + body as u64);
        self.record_bytes
            .set(self.record_bytes.get() + records as u64);
    }
}

/// Sets the fresh group's offsets to the ranges' starts where they are not 0, so the consumer
/// (which starts at a committed offset when there is one) begins there.
pub async fn commit_starts(spec: &DrainSpec<'_>) -> anyhow::Result<()> {
    let moved: Vec<&QueueRange> = spec.ranges.iter().filter(|r| r.start > 0).collect();
    if moved.is_empty() {
        return Ok(());
    }
    let mut client = ClientConfig::new(spec.namesrv)?;
    client.credentials = spec.credentials.clone();
    client.instance_name = format!("{}-offsets", spec.group);
    create_group(&client, spec).await?;
    let offsets = PullConsumer::start(client, spec.group)?;
    for range in moved {
        offsets
            .commit_offset(&range.queue, range.start)
            .await
            .with_context(|| format!("committing the start offset of {}", range.queue))?;
    }
    offsets.shutdown();
    Ok(())
}

/// Creates the group on every master of the topics: Java RocketMQ refuses offset commits of a
/// group it does not know (SUBSCRIPTION_GROUP_NOT_EXIST), and a fresh group is known only after
/// its first heartbeat, which would come too late here.
async fn create_group(client: &ClientConfig, spec: &DrainSpec<'_>) -> anyhow::Result<()> {
    let admin = Admin::new(client.clone())?;
    let mut masters = BTreeSet::new();
    for topic in spec.topics {
        let route =
            (admin.topic_route(topic).await).with_context(|| format!("route of {topic}"))?;
        masters.extend(route.master_addrs());
    }
    let config = SubscriptionGroupConfig {
        group_name: spec.group.to_string(),
        ..SubscriptionGroupConfig::default()
    };
    for addr in masters {
        (admin.create_subscription_group(&addr, &config).await)
            .with_context(|| format!("creating group {} on {addr}", spec.group))?;
    }
    admin.shutdown();
    Ok(())
}

/// One timed drain of `spec.ranges` by `spec.group` subscribing `selector`.
pub async fn drain(
    spec: &DrainSpec<'_>,
    selector: &MessageSelector,
) -> anyhow::Result<DrainOutcome> {
    let mut client = ClientConfig::new(spec.namesrv)?;
    client.credentials = spec.credentials.clone();
    client.instance_name = format!("{}-0", spec.group);
    let mut config = PushConsumerConfig::new(client, spec.group.to_string());
    config.consume_from = ConsumeFrom::FirstOffset;
    config.pull_batch_size = spec.pull_batch_size as i32;
    // The listener takes a whole pulled batch: one call per pull, not one per message.
    config.consume_batch_max_size = spec.pull_batch_size as usize;
    let tally = Rc::new(Tally::default());
    let counter = tally.clone();
    let listener = move |_: &MessageQueue, messages: &[MessageExt]| {
        counter.add(messages);
        ConsumeStatus::Success
    };
    let subscriptions: Vec<(&str, MessageSelector)> = (spec.topics.iter())
        .map(|t| (t.as_str(), selector.clone()))
        .collect();
    let started = Instant::now();
    let consumer = PushConsumer::start_with_selectors(config, &subscriptions, listener).await?;
    let deadline = started + spec.limit;
    let at_end = |c: &PushConsumer| {
        (spec.ranges.iter()).all(|r| c.consumed_offset(&r.queue).is_some_and(|o| o >= r.end))
    };
    while !at_end(&consumer) && Instant::now() < deadline && !crate::process::interrupted() {
        glommio::timer::sleep(POLL).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let complete = at_end(&consumer);
    consumer.shutdown().await;
    Ok(DrainOutcome {
        secs,
        first_delivery_secs: (tally.first_delivery.get()).map(|t| (t - started).as_secs_f64()),
        scanned: backlog(spec.ranges),
        delivered: tally.delivered.get(),
        body_bytes: tally.body_bytes.get(),
        record_bytes: tally.record_bytes.get(),
        complete,
    })
}

impl DrainOutcome {
    /// Queue entries passed over per second.
    pub fn scanned_per_sec(&self) -> f64 {
        per_sec(self.scanned as f64, self.secs)
    }

    /// Messages delivered per second.
    pub fn delivered_per_sec(&self) -> f64 {
        per_sec(self.delivered as f64, self.secs)
    }

    /// Body megabytes (10^6 bytes) delivered per second.
    pub fn body_mb_per_sec(&self) -> f64 {
        per_sec(self.body_bytes as f64 / BYTES_PER_MB, self.secs)
    }

    /// Record megabytes (10^6 bytes) delivered per second.
    pub fn record_mb_per_sec(&self) -> f64 {
        per_sec(self.record_bytes as f64 / BYTES_PER_MB, self.secs)
    }
}

/// The size of `message` as a RocketMQ V1 record with IPv4 hosts (what a RocketMQ commit log
/// holds for it, compression aside): 91 fixed bytes, body, topic and properties.
pub fn record_bytes(message: &MessageExt) -> usize {
    RECORD_OVERHEAD_V1_IPV4 + message.body.len() + message.topic.len() + message.properties_bytes()
}

/// A megabyte as the reports count it (decimal, as disk and network rates are quoted).
pub const BYTES_PER_MB: f64 = 1e6;

/// `amount / secs`, 0 for an empty interval (a drain of nothing).
pub fn per_sec(amount: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        amount / secs
    } else {
        0.0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Offsets `start..end` of queue `queue_id` of topic `T` on broker `b` (also used by
    /// `catch_up`'s tests).
    pub(crate) fn range(queue_id: i32, start: i64, end: i64) -> QueueRange {
        QueueRange {
            queue: MessageQueue::new("T", "b", queue_id),
            start,
            end,
        }
    }

    #[test]
    fn the_backlog_counts_entries_of_every_range() {
        let ranges = [range(0, 0, 10), range(1, 5, 7), range(2, 9, 3)];
        assert_eq!(
            ranges[2].len(),
            0,
            "an inverted range is empty, not negative"
        );
        assert_eq!(backlog(&ranges), 12);
    }

    #[test]
    fn rates_use_decimal_megabytes_and_survive_an_empty_interval() {
        let outcome = DrainOutcome {
            secs: 2.0,
            scanned: 4_000,
            delivered: 2_000,
            body_bytes: 3_000_000,
            record_bytes: 4_000_000,
            complete: true,
            ..DrainOutcome::default()
        };
        assert_eq!(outcome.scanned_per_sec(), 2_000.0);
        assert_eq!(outcome.delivered_per_sec(), 1_000.0);
        assert_eq!(outcome.body_mb_per_sec(), 1.5);
        assert_eq!(outcome.record_mb_per_sec(), 2.0);
        assert_eq!(per_sec(5.0, 0.0), 0.0);
    }

    #[test]
    fn record_bytes_match_the_encoded_record() {
        use ringmq_proto::message::Record;
        let body = vec![7u8; 1024];
        let record = Record {
            queue_id: 1,
            flag: 0,
            queue_offset: 5,
            physical_offset: 4096,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            born_host: "127.0.0.1:50000".parse().unwrap(),
            store_timestamp: 1_700_000_000_001,
            store_host: "127.0.0.1:10911".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: &body,
            topic: b"FillTest",
            properties: "KEYS\u{1}0000abcd-3-17\u{2}UNIQ_KEY\u{1}7F00000100ABCDEF\u{2}".as_bytes(),
        };
        let mut encoded = vec![0u8; record.encoded_len().unwrap()];
        record.encode(&mut encoded).unwrap();
        let decoded = ringmq_client::decode_records(&bytes::Bytes::from(encoded.clone()), "b")
            .expect("decodes");
        assert_eq!(record_bytes(&decoded[0]), encoded.len());
    }
}
