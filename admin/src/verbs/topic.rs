//! topicList, topicRoute, topicStatus, updateTopic, deleteTopic.

use ringmq_client::{Admin, TopicConfig};

use super::{format_ms, masters, route_masters, target_addrs};
use crate::cli::UpdateTopic;
use crate::error::AdminError;
use crate::output::{Report, Table};

pub async fn topic_list(admin: &Admin) -> Result<Report, AdminError> {
    let list = admin.topic_list().await?;
    let mut table = Table::new(&["Topic"]);
    for topic in list.topic_list {
        table.push(vec![topic]);
    }
    Ok(Report::Table(table))
}

pub async fn topic_route(admin: &Admin, topic: &str) -> Result<Report, AdminError> {
    let route = admin.topic_route(topic).await?;
    let value = serde_json::to_value(&route.data)
        .map_err(|e| AdminError::Usage(format!("route of {topic} does not print: {e}")))?;
    Ok(Report::Json(value))
}

pub async fn topic_status(admin: &Admin, topic: &str) -> Result<Report, AdminError> {
    let mut table = Table::new(&[
        "Broker Name",
        "QID",
        "Min Offset",
        "Max Offset",
        "Last Updated",
    ]);
    for (name, addr) in route_masters(admin, topic).await? {
        let stats = admin.topic_stats(&addr, topic).await?;
        for (queue, offsets) in stats.offset_table {
            table.push(vec![
                name.clone(),
                queue.queue_id.to_string(),
                offsets.min_offset.to_string(),
                offsets.max_offset.to_string(),
                format_ms(offsets.last_update_timestamp),
            ]);
        }
    }
    Ok(Report::Table(table))
}

pub async fn update_topic(admin: &Admin, args: &UpdateTopic) -> Result<Report, AdminError> {
    let config = TopicConfig {
        topic_name: args.topic.clone(),
        read_queue_nums: args.read_queue_nums,
        write_queue_nums: args.write_queue_nums,
        perm: args.perm,
        order: args.order,
        ..TopicConfig::default()
    };
    let mut lines = Vec::new();
    for addr in target_addrs(admin, &args.target).await? {
        admin.create_topic(&addr, &config).await?;
        lines.push(format!("create topic to {addr} success."));
    }
    Ok(Report::Done(lines))
}

pub async fn delete_topic(admin: &Admin, topic: &str, cluster: &str) -> Result<Report, AdminError> {
    let brokers: Vec<String> = masters(admin)
        .await?
        .into_iter()
        .filter(|b| b.cluster == cluster)
        .map(|b| b.addr)
        .collect();
    if brokers.is_empty() {
        return Err(AdminError::NotFound(format!(
            "cluster {cluster} has no master broker"
        )));
    }
    let mut lines = Vec::new();
    for addr in &brokers {
        admin.delete_topic_in_broker(addr, topic).await?;
        lines.push(format!(
            "delete topic [{topic}] from broker {addr} success."
        ));
    }
    admin.delete_topic_in_namesrv(topic, Some(cluster)).await?;
    lines.push(format!(
        "delete topic [{topic}] from cluster [{cluster}] success."
    ));
    Ok(Report::Done(lines))
}
