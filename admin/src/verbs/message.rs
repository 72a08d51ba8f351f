//! queryMsgById, queryMsgByKey, queryMsgByOffset, sendMessage, consumeMessage.

use ringmq_client::{
    Admin, ClientConfig, KeyKind, Message, MessageExt, MessageQueue, Producer, ProducerConfig,
    PullConsumer, PullStatus, QueueSelector,
};

use super::{format_ms, now_ms, route_masters};
use crate::cli::{ConsumeMessage, QueryById, QueryByKey, SendMessage};
use crate::error::AdminError;
use crate::output::{Report, Table};

/// The producer group sendMessage uses (Java's tools use the same name).
const TOOLS_PRODUCER_GROUP: &str = "TOOLS_PRODUCER";
/// Messages asked for in one pull by consumeMessage.
const PULL_BATCH: i32 = 32;

/// mqadmin's message detail lines.
fn details(m: &MessageExt) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("OffsetID".to_string(), m.offset_msg_id()),
        ("Topic".to_string(), m.topic.clone()),
        ("Tags".to_string(), format!("[{}]", m.tags().unwrap_or(""))),
        ("Keys".to_string(), format!("[{}]", m.keys().unwrap_or(""))),
        ("Queue ID".to_string(), m.queue_id.to_string()),
        ("Queue Offset".to_string(), m.queue_offset.to_string()),
        (
            "CommitLog Offset".to_string(),
            m.commit_log_offset.to_string(),
        ),
        ("Reconsume Times".to_string(), m.reconsume_times.to_string()),
        ("Born Timestamp".to_string(), format_ms(m.born_timestamp_ms)),
        (
            "Store Timestamp".to_string(),
            format_ms(m.store_timestamp_ms),
        ),
        ("Born Host".to_string(), m.born_host.to_string()),
        ("Store Host".to_string(), m.store_host.to_string()),
        ("System Flag".to_string(), m.sys_flag.to_string()),
    ];
    let properties: Vec<String> = m
        .properties()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.push((
        "Properties".to_string(),
        format!("{{{}}}", properties.join(", ")),
    ));
    pairs.push((
        "Message Body".to_string(),
        String::from_utf8_lossy(&m.body).into_owned(),
    ));
    pairs
}

/// queryMsgById: the message's details; with `-g` and `-d`, then what the consumer's listener
/// said when the broker handed it the message (mqadmin's `pushMsg`), under Java's
/// `ConsumeMessageDirectlyResult` field names.
pub async fn query_by_id(admin: &Admin, args: &QueryById) -> Result<Report, AdminError> {
    let message = find_by_id(admin, &args.msg_id, args.topic.as_deref()).await?;
    let mut pairs = details(&message);
    if let (Some(group), Some(client_id)) = (&args.group, &args.client_id) {
        // As Java's consumeMessageDirectly: to the broker that stores it, by its offsetMsgId.
        let addr = message.store_host.to_string();
        let topic = Some(message.topic.as_str());
        let result = admin
            .consume_message_directly(&addr, group, client_id, topic, &message.offset_msg_id())
            .await?;
        let consume_result = result.consume_result.as_ref().map(|r| r.as_str());
        pairs.extend([
            ("order".to_string(), result.order.to_string()),
            ("autoCommit".to_string(), result.auto_commit.to_string()),
            (
                "consumeResult".to_string(),
                consume_result.unwrap_or("null").to_string(),
            ),
            (
                "remark".to_string(),
                result.remark.unwrap_or_else(|| "null".to_string()),
            ),
            (
                "spentTimeMills".to_string(),
                result.spent_time_mills.to_string(),
            ),
        ]);
    }
    Ok(Report::Pairs(pairs))
}

async fn find_by_id(
    admin: &Admin,
    msg_id: &str,
    topic: Option<&str>,
) -> Result<MessageExt, AdminError> {
    // With a topic the id is first taken as a UNIQ_KEY (what producers report), as Java's
    // viewMessage(topic, msgId) does; otherwise (or if absent) as an offsetMsgId.
    if let Some(topic) = topic {
        for (_, addr) in route_masters(admin, topic).await? {
            let found = admin
                .query_message(&addr, topic, msg_id, KeyKind::UniqueKey, 1, (0, i64::MAX))
                .await?;
            if let Some(message) = found.into_iter().find(|m| m.msg_id() == msg_id) {
                return Ok(message);
            }
        }
    }
    match admin.view_message(msg_id).await {
        Ok(message) => Ok(message),
        Err(ringmq_client::ClientError::Config(_)) => Err(AdminError::NotFound(format!(
            "no message with id {msg_id}{}",
            topic.map(|t| format!(" in topic {t}")).unwrap_or_default()
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn query_by_key(admin: &Admin, args: &QueryByKey) -> Result<Report, AdminError> {
    let range = (args.begin_ms, args.end_ms.unwrap_or_else(now_ms));
    let mut table = Table::new(&["Message ID", "QID", "Offset"]);
    for (_, addr) in route_masters(admin, &args.topic).await? {
        let found = admin
            .query_message(&addr, &args.topic, &args.key, KeyKind::Key, args.max, range)
            .await?;
        // The index matches key hashes: re-check the key itself, as Java's client does.
        for m in found.iter().filter(|m| has_key(m, &args.key)) {
            table.push(vec![
                m.msg_id(),
                m.queue_id.to_string(),
                m.queue_offset.to_string(),
            ]);
        }
    }
    Ok(Report::Table(table))
}

fn has_key(message: &MessageExt, key: &str) -> bool {
    message
        .keys()
        .is_some_and(|keys| keys.split(' ').any(|k| k == key))
}

fn pull_consumer(admin: &Admin, group: &str) -> Result<PullConsumer, AdminError> {
    let config = ClientConfig::new(&admin.namesrv_addrs().join(";"))?;
    Ok(PullConsumer::start(config, group)?)
}

pub async fn query_by_offset(
    admin: &Admin,
    topic: &str,
    broker_name: &str,
    queue_id: i32,
    offset: i64,
) -> Result<Report, AdminError> {
    let consumer = pull_consumer(admin, "TOOLS_CONSUMER")?;
    let queue = MessageQueue::new(topic, broker_name, queue_id);
    let result = consumer.pull(&queue, "*", offset, 1).await;
    consumer.shutdown();
    let message = result?.messages.into_iter().next();
    match message {
        Some(message) => Ok(Report::Pairs(details(&message))),
        None => Err(AdminError::NotFound(format!(
            "no message at {queue} offset {offset}"
        ))),
    }
}

pub async fn send_message(admin: &Admin, args: &SendMessage) -> Result<Report, AdminError> {
    let config = ClientConfig::new(&admin.namesrv_addrs().join(";"))?;
    let producer = Producer::start(ProducerConfig::new(config, TOOLS_PRODUCER_GROUP))?;
    let mut message = Message::new(args.topic.as_str(), args.body.clone().into_bytes());
    if let Some(tags) = &args.tags {
        message = message.with_tags(tags.as_str());
    }
    if let Some(keys) = &args.keys {
        message = message.with_keys(keys.split(' '));
    }
    let selector = match (&args.broker_name, args.queue_id) {
        (Some(name), Some(id)) => QueueSelector::Explicit(MessageQueue::new(&args.topic, name, id)),
        (None, None) => QueueSelector::RoundRobin,
        _ => {
            return Err(AdminError::Usage(
                "give both -b brokerName and -i queueId, or neither".into(),
            ))
        }
    };
    let result = producer.send_with(message, selector).await;
    producer.shutdown().await;
    let sent = result?;
    let mut table = Table::new(&["Broker Name", "QID", "Send Result", "MsgId"]);
    table.push(vec![
        sent.queue.broker_name.clone(),
        sent.queue.queue_id.to_string(),
        format!("{:?}", sent.status),
        sent.msg_id.clone(),
    ]);
    Ok(Report::Table(table))
}

pub async fn consume_message(admin: &Admin, args: &ConsumeMessage) -> Result<Report, AdminError> {
    let consumer = pull_consumer(admin, &args.group)?;
    let result = consume_into_table(&consumer, args).await;
    consumer.shutdown();
    result.map(Report::Table)
}

async fn consume_into_table(
    consumer: &PullConsumer,
    args: &ConsumeMessage,
) -> Result<Table, AdminError> {
    let queues: Vec<MessageQueue> = consumer
        .fetch_queues(&args.topic)
        .await?
        .into_iter()
        .filter(|q| {
            args.broker_name
                .as_ref()
                .is_none_or(|b| *b == q.broker_name)
        })
        .filter(|q| args.queue_id.is_none_or(|id| id == q.queue_id))
        .collect();
    let mut table = Table::new(&["Broker Name", "QID", "Offset", "MsgId", "Tags", "Body"]);
    for queue in queues {
        let mut offset = match args.offset {
            Some(offset) => offset,
            None => consumer.min_offset(&queue).await?,
        };
        while table.rows.len() < args.count {
            let result = consumer.pull(&queue, "*", offset, PULL_BATCH).await?;
            for m in &result.messages {
                table.push(vec![
                    queue.broker_name.clone(),
                    queue.queue_id.to_string(),
                    m.queue_offset.to_string(),
                    m.msg_id(),
                    m.tags().unwrap_or("").to_string(),
                    String::from_utf8_lossy(&m.body).into_owned(),
                ]);
            }
            if result.status != PullStatus::Found || result.next_begin_offset <= offset {
                break;
            }
            offset = result.next_begin_offset;
        }
    }
    table.rows.truncate(args.count);
    Ok(table)
}
