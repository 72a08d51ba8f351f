//! consumerStatus (mqadmin's `consumerStatus`): each live consumer of a group answers
//! GET_CONSUMER_RUNNING_INFO through a broker. Without `-i`, one row per consumer and the
//! checks mqadmin makes (the same subscriptions everywhere; here also: no queue held twice);
//! with `-i`, that consumer's queues, settings and rates.
//!
//! getConsumerStatus (mqadmin's `getConsumerStatus`): a broker of the topic asks each live
//! consumer of the group for its own offsets of the topic (INVOKE_BROKER_TO_GET_CONSUMER_STATUS)
//! and gathers them by client id.

use std::collections::{BTreeMap, BTreeSet};

use ringmq_client::Admin;
use ringmq_proto::body::{ConsumerConnection, ConsumerRunningInfo, MessageQueue};

use super::{format_ms, masters, route_masters};
use crate::error::AdminError;
use crate::output::{Report, Table};

/// mqadmin's verdicts on a group's subscriptions.
const SAME_SUBSCRIPTION: &str = "Same subscription in the same group of consumer";
const DIFFERENT_SUBSCRIPTION: &str =
    "WARN: Different subscription in the same group of consumer!!!";

pub async fn consumer_status(
    admin: &Admin,
    group: &str,
    client_id: Option<&str>,
) -> Result<Report, AdminError> {
    let (addr, connection) = group_broker(admin, group).await?;
    if let Some(client_id) = client_id {
        let info = admin.consumer_running_info(&addr, group, client_id).await?;
        return Ok(Report::Table(one_consumer(&info)));
    }
    let mut table = Table::new(&["#", "ClientId", "Version", "Queues", "Consume OK TPS"]);
    let mut infos = BTreeMap::new();
    for (i, c) in connection.connection_set.iter().enumerate() {
        let info = admin
            .consumer_running_info(&addr, group, &c.client_id)
            .await?;
        let ok_tps: f64 = info.status_table.values().map(|s| s.consume_ok_tps).sum();
        table.push(vec![
            format!("{:03}", i + 1),
            c.client_id.clone(),
            c.version.to_string(),
            info.mq_table.len().to_string(),
            format!("{ok_tps:.2}"),
        ]);
        infos.insert(c.client_id.clone(), info);
    }
    let verdict = if same_subscriptions(&infos) {
        SAME_SUBSCRIPTION
    } else {
        DIFFERENT_SUBSCRIPTION
    };
    table.footer.push(("Subscription", verdict.to_string()));
    let rebalance = match doubly_held(&infos) {
        held if held.is_empty() => "OK".to_string(),
        held => format!("queues held by more than one consumer: {}", held.join(", ")),
    };
    table.footer.push(("Rebalance", rebalance));
    Ok(Report::Table(table))
}

/// One row per (client, queue): the offset the client itself holds, as mqadmin prints them.
/// The broker asked is the topic's first broker by name (mqadmin takes the route's first).
pub async fn get_consumer_status(
    admin: &Admin,
    group: &str,
    topic: &str,
    client_id: Option<&str>,
) -> Result<Report, AdminError> {
    let brokers = route_masters(admin, topic).await?;
    let Some((_, addr)) = brokers.first() else {
        return Err(AdminError::NotFound(format!("topic {topic} has no master")));
    };
    let status = admin.consumer_status(addr, topic, group, client_id).await?;
    let mut table = Table::new(&["ClientId", "BrokerName", "QueueId", "Offset"]);
    for (client, offsets) in &status.consumer_table {
        for (queue, offset) in &offsets.0 {
            table.push(vec![
                client.clone(),
                queue.broker_name.clone(),
                queue.queue_id.to_string(),
                offset.to_string(),
            ]);
        }
    }
    Ok(Report::Table(table))
}

/// The first master that knows the group's live consumers, and their connections.
async fn group_broker(
    admin: &Admin,
    group: &str,
) -> Result<(String, ConsumerConnection), AdminError> {
    let mut last_error = None;
    for broker in masters(admin).await? {
        match admin.consumer_connection(&broker.addr, group).await {
            Ok(connection) if !connection.connection_set.is_empty() => {
                return Ok((broker.addr, connection))
            }
            Ok(_) => {}
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.map_or_else(
        || AdminError::NotFound(format!("consumer group {group} has no live consumer")),
        AdminError::from,
    ))
}

/// Subscriptions compared as Java's `SubscriptionData.equals` does (not by version).
fn same_subscriptions(infos: &BTreeMap<String, ConsumerRunningInfo>) -> bool {
    let key = |info: &ConsumerRunningInfo| -> BTreeSet<(String, String, String)> {
        info.subscription_set
            .iter()
            .map(|s| {
                let kind = format!("{:?}", s.expression_type);
                (s.topic.clone(), s.sub_string.clone(), kind)
            })
            .collect()
    };
    let mut sets = infos.values().map(key);
    let Some(first) = sets.next() else {
        return true;
    };
    sets.all(|set| set == first)
}

/// Queues that more than one consumer reports holding.
fn doubly_held(infos: &BTreeMap<String, ConsumerRunningInfo>) -> Vec<String> {
    let mut holders: BTreeMap<&MessageQueue, usize> = BTreeMap::new();
    for info in infos.values() {
        for queue in info.mq_table.keys() {
            *holders.entry(queue).or_default() += 1;
        }
    }
    holders
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(q, _)| format!("{}:{}:{}", q.topic, q.broker_name, q.queue_id))
        .collect()
}

/// One consumer: a row per queue it holds; its settings and rates under the table.
fn one_consumer(info: &ConsumerRunningInfo) -> Table {
    let mut table = Table::new(&[
        "Topic",
        "Broker Name",
        "QID",
        "Commit Offset",
        "Locked",
        "Last Pull",
        "Last Consume",
    ]);
    for (queue, process) in &info.mq_table {
        table.push(vec![
            queue.topic.clone(),
            queue.broker_name.clone(),
            queue.queue_id.to_string(),
            process.commit_offset.to_string(),
            process.locked.to_string(),
            format_ms(process.last_pull_timestamp),
            format_ms(process.last_consume_timestamp),
        ]);
    }
    let property = |key: &str| info.properties.get(key).cloned().unwrap_or_default();
    let subscriptions: Vec<String> = info
        .subscription_set
        .iter()
        .map(|s| format!("{} {}", s.topic, s.sub_string))
        .collect();
    let footer = &mut table.footer;
    footer.push(("Subscriptions", subscriptions.join("; ")));
    footer.push(("Message Model", property("messageModel")));
    footer.push((
        "Consume Type",
        property(ConsumerRunningInfo::PROP_CONSUME_TYPE),
    ));
    footer.push((
        "Consume Orderly",
        property(ConsumerRunningInfo::PROP_CONSUME_ORDERLY),
    ));
    footer.push((
        "Client Version",
        property(ConsumerRunningInfo::PROP_CLIENT_VERSION),
    ));
    let started = property(ConsumerRunningInfo::PROP_CONSUMER_START_TIMESTAMP);
    footer.push(("Start Time", started.parse().map_or(started, format_ms)));
    for (topic, status) in &info.status_table {
        let line = format!(
            "{topic}: pull RT {:.2} ms, pull TPS {:.2}, consume RT {:.2} ms, OK TPS {:.2}, \
             failed TPS {:.2}, failed {}",
            status.pull_rt,
            status.pull_tps,
            status.consume_rt,
            status.consume_ok_tps,
            status.consume_failed_tps,
            status.consume_failed_msgs
        );
        footer.push(("Status", line));
    }
    table
}
