//! updateSubGroup, deleteSubGroup, consumerProgress, consumerConnection, producerConnection,
//! resetOffsetByTime.

use ringmq_client::{Admin, ClientError, SubscriptionGroupConfig};
use ringmq_proto::body::ConsumeStats;
use ringmq_proto::code::ResponseCode;

use super::{format_ms, masters, now_ms, parse_timestamp, route_masters, target_addrs};
use crate::cli::{ResetOffset, Target, UpdateSubGroup};
use crate::error::AdminError;
use crate::output::{Report, Table};

pub async fn update_sub_group(admin: &Admin, args: &UpdateSubGroup) -> Result<Report, AdminError> {
    let config = SubscriptionGroupConfig {
        group_name: args.group.clone(),
        consume_enable: args.consume_enable,
        consume_from_min_enable: args.consume_from_min_enable,
        consume_broadcast_enable: args.consume_broadcast_enable,
        retry_queue_nums: args.retry_queue_nums,
        retry_max_times: args.retry_max_times,
        ..SubscriptionGroupConfig::default()
    };
    let mut lines = Vec::new();
    for addr in target_addrs(admin, &args.target).await? {
        admin.create_subscription_group(&addr, &config).await?;
        lines.push(format!("create subscription group to {addr} success."));
    }
    Ok(Report::Done(lines))
}

pub async fn delete_sub_group(
    admin: &Admin,
    target: &Target,
    group: &str,
    remove_offset: bool,
) -> Result<Report, AdminError> {
    let mut lines = Vec::new();
    for addr in target_addrs(admin, target).await? {
        admin
            .delete_subscription_group(&addr, group, remove_offset)
            .await?;
        lines.push(format!(
            "delete subscription group [{group}] from broker [{addr}] success."
        ));
    }
    Ok(Report::Done(lines))
}

/// Whether a broker's refusal only means "this group is not here".
fn group_absent(error: &ClientError) -> bool {
    let absent = [
        ResponseCode::SubscriptionGroupNotExist,
        ResponseCode::ConsumerNotOnline,
        ResponseCode::TopicNotExist,
        ResponseCode::QueryNotFound,
    ];
    error
        .response_code()
        .is_some_and(|code| absent.iter().any(|a| a.code() == code))
}

pub async fn consumer_progress(
    admin: &Admin,
    group: &str,
    topic: Option<&str>,
) -> Result<Report, AdminError> {
    let mut all = ConsumeStats::default();
    let mut answered = false;
    for broker in masters(admin).await? {
        match admin.consume_stats(&broker.addr, group, topic).await {
            Ok(stats) => {
                answered = true;
                all.consume_tps += stats.consume_tps;
                all.offset_table.extend(stats.offset_table);
            }
            Err(e) if group_absent(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !answered {
        return Err(AdminError::NotFound(format!(
            "no broker knows consumer group {group}"
        )));
    }
    let mut table = Table::new(&[
        "Topic",
        "Broker Name",
        "QID",
        "Broker Offset",
        "Consumer Offset",
        "Diff",
        "LastTime",
    ]);
    for (queue, offsets) in &all.offset_table {
        table.push(vec![
            queue.topic.clone(),
            queue.broker_name.clone(),
            queue.queue_id.to_string(),
            offsets.broker_offset.to_string(),
            offsets.consumer_offset.to_string(),
            (offsets.broker_offset - offsets.consumer_offset).to_string(),
            format_ms(offsets.last_timestamp),
        ]);
    }
    table
        .footer
        .push(("Consume TPS", format!("{:.2}", all.consume_tps)));
    table
        .footer
        .push(("Diff Total", all.total_diff().to_string()));
    Ok(Report::Table(table))
}

pub async fn consumer_connection(admin: &Admin, group: &str) -> Result<Report, AdminError> {
    let mut last_error = None;
    for broker in masters(admin).await? {
        match admin.consumer_connection(&broker.addr, group).await {
            Ok(connection) => {
                let mut table = Table::new(&["ClientId", "ClientAddr", "Language", "Version"]);
                for c in &connection.connection_set {
                    table.push(vec![
                        c.client_id.clone(),
                        c.client_addr.clone(),
                        c.language.clone(),
                        c.version.to_string(),
                    ]);
                }
                for (topic, sub) in &connection.subscription_table {
                    table
                        .footer
                        .push(("Subscription", format!("{topic} {}", sub.sub_string)));
                }
                let model = connection
                    .message_model
                    .as_ref()
                    .map(|m| m.as_str().to_string());
                table
                    .footer
                    .push(("MessageModel", model.unwrap_or_default()));
                return Ok(Report::Table(table));
            }
            Err(e) if group_absent(&e) => last_error = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_error.map_or_else(
        || AdminError::NotFound(format!("no broker is registered; group {group} unknown")),
        AdminError::from,
    ))
}

pub async fn producer_connection(
    admin: &Admin,
    group: &str,
    topic: &str,
) -> Result<Report, AdminError> {
    let mut table = Table::new(&[
        "Broker Name",
        "ClientId",
        "ClientAddr",
        "Language",
        "Version",
    ]);
    for (name, addr) in route_masters(admin, topic).await? {
        let connection = admin.producer_connection(&addr, group).await?;
        for c in connection.connection_set {
            table.push(vec![
                name.clone(),
                c.client_id,
                c.client_addr,
                c.language,
                c.version.to_string(),
            ]);
        }
    }
    Ok(Report::Table(table))
}

pub async fn reset_offset_by_time(admin: &Admin, args: &ResetOffset) -> Result<Report, AdminError> {
    let timestamp_ms = parse_timestamp(&args.timestamp, now_ms())?;
    let mut table = Table::new(&["Broker Name", "QID", "Offset"]);
    for (name, addr) in route_masters(admin, &args.topic).await? {
        let body = admin
            .reset_offset_by_time(&addr, &args.topic, &args.group, timestamp_ms, args.force)
            .await?;
        for (queue, offset) in body.offset_table {
            table.push(vec![
                name.clone(),
                queue.queue_id.to_string(),
                offset.to_string(),
            ]);
        }
    }
    Ok(Report::Table(table))
}
