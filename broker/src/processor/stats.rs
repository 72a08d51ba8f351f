//! The admin and statistics codes mqadmin, rocketmq-dashboard and rocketmq-exporter call:
//! GET_TOPIC_STATS_INFO (202), GET_CONSUME_STATS (208), GET_ALL_CONSUMER_OFFSET (43),
//! INVOKE_BROKER_TO_RESET_OFFSET (222), QUERY_TOPIC_CONSUME_BY_WHO (300),
//! QUERY_TOPICS_BY_CONSUMER (343), VIEW_BROKER_STATS_DATA (315), and on the metadata shard
//! GET_CONSUMER_CONNECTION_LIST (203) and GET_PRODUCER_CONNECTION_LIST (204).
//!
//! Queues and their consumer offsets live on many shards, so the receiving shard asks every
//! shard for its part ([`ShardMesh::admin_everywhere`], answered by [`run_admin_query`]) and
//! merges. Bodies are Java's, queue-keyed maps in fastjson's object-key form.

use std::cell::RefCell;
use std::collections::BTreeSet;

use bytes::Bytes;
use ringmq_proto::body::{
    AdminBody, Connection, ConsumeStats, ConsumerConnection, ConsumerOffsetSerializeWrapper,
    GroupList, JsonBody, ProducerConnection, ResetOffsetBody, TopicList, TopicStatsTable,
};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{
    GetConsumeStatsRequestHeader, GetConsumerConnectionListRequestHeader,
    GetProducerConnectionListRequestHeader, GetTopicStatsInfoRequestHeader,
    QueryTopicConsumeByWhoRequestHeader, QueryTopicsByConsumerRequestHeader,
    ResetOffsetRequestHeader, ViewBrokerStatsDataRequestHeader,
};

use super::{bad_header, respond_error, success, Outcome, ShardMesh};
use crate::metadata::offsets::ConsumerOffsets;
use crate::metadata::{BrokerView, Metadata};
use crate::shard_map::{shard_of, ShardId};
use crate::stats::{bodies, names, BrokerStats};
use crate::store::Store;

/// One shard's part of an admin request.
#[derive(Debug, Clone)]
pub enum AdminQuery {
    TopicStats {
        topic: String,
    },
    ConsumeStats {
        group: String,
        topics: Vec<String>,
    },
    AllOffsets,
    ResetOffset {
        topic: String,
        group: String,
        to: bodies::ResetTarget,
    },
    GroupsOfTopic {
        topic: String,
    },
    TopicsOfGroup {
        group: String,
    },
}

/// A shard's answer to an [`AdminQuery`].
#[derive(Debug)]
pub enum AdminPart {
    TopicStats(TopicStatsTable),
    ConsumeStats(ConsumeStats),
    Offsets(ConsumerOffsetSerializeWrapper),
    Reset(ResetOffsetBody),
    Names(BTreeSet<String>),
}

/// What a shard answers admin queries with: its store, its offsets, where it stands.
pub struct ShardScope<'a> {
    pub store: &'a Store,
    pub offsets: &'a RefCell<ConsumerOffsets>,
    pub view: &'a BrokerView,
    pub shard: ShardId,
    pub shards: usize,
    pub broker_name: &'a str,
}

impl ShardScope<'_> {
    /// The queue ids of `topic` this shard owns (by the topic's read queue count).
    fn owned_queues(&self, topic: &str) -> Vec<i32> {
        let count = self
            .view
            .topics
            .get(topic)
            .map_or(0, |t| t.read_queue_nums.max(t.write_queue_nums));
        (0..count)
            .filter(|q| shard_of(topic, *q, self.shards) == self.shard)
            .collect()
    }
}

/// This shard's part of an admin request.
pub async fn run_admin_query(
    scope: &ShardScope<'_>,
    query: &AdminQuery,
) -> Result<AdminPart, String> {
    let (store, name) = (scope.store, scope.broker_name);
    let part = match query {
        AdminQuery::TopicStats { topic } => {
            let queues = scope.owned_queues(topic);
            AdminPart::TopicStats(
                bodies::topic_stats(store, name, topic, &queues)
                    .await
                    .map_err(|e| e.to_string())?,
            )
        }
        AdminQuery::ConsumeStats { group, topics } => {
            let mut all = ConsumeStats::default();
            for topic in topics {
                let queues = scope.owned_queues(topic);
                let part = bodies::consume_stats(store, scope.offsets, name, group, topic, &queues)
                    .await
                    .map_err(|e| e.to_string())?;
                all.offset_table.extend(part.offset_table);
            }
            AdminPart::ConsumeStats(all)
        }
        AdminQuery::AllOffsets => AdminPart::Offsets(bodies::all_offsets(&scope.offsets.borrow())),
        AdminQuery::ResetOffset { topic, group, to } => {
            let queues = scope.owned_queues(topic);
            let body =
                bodies::reset_offsets(store, scope.offsets, name, (topic, group), &queues, *to)
                    .await
                    .map_err(|e| e.to_string())?;
            AdminPart::Reset(body)
        }
        AdminQuery::GroupsOfTopic { topic } => {
            AdminPart::Names(bodies::groups_of_topic(&scope.offsets.borrow(), topic))
        }
        AdminQuery::TopicsOfGroup { group } => {
            AdminPart::Names(bodies::topics_of_group(&scope.offsets.borrow(), group))
        }
    };
    Ok(part)
}

/// Every shard's part, or the first shard's error text.
async fn gather(mesh: &dyn ShardMesh, query: AdminQuery) -> Result<Vec<AdminPart>, String> {
    let answers = mesh.admin_everywhere(query);
    let mut parts = Vec::new();
    // Every shard answers, or drops its reply sender when it stops: bounded.
    while let Ok(answer) = answers.recv_async().await {
        parts.push(answer?);
    }
    Ok(parts)
}

fn respond_body(request: &RemotingCommand, body: Vec<u8>) -> Outcome {
    Outcome::Respond(success(request).with_body(Bytes::from(body)))
}

fn system_error(request: &RemotingCommand, e: String) -> Outcome {
    respond_error(request, ResponseCode::SystemError, e)
}

fn topic_not_exist(request: &RemotingCommand, topic: &str) -> Outcome {
    respond_error(
        request,
        ResponseCode::TopicNotExist,
        format!("topic[{topic}] not exist"),
    )
}

/// GET_TOPIC_STATS_INFO (202).
pub async fn topic_stats(
    mesh: &dyn ShardMesh,
    view: &BrokerView,
    request: &RemotingCommand,
) -> Outcome {
    let header = match request.decode_header::<GetTopicStatsInfoRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    if !view.topics.contains_key(&header.topic) {
        return topic_not_exist(request, &header.topic);
    }
    let mut table = TopicStatsTable::default();
    match gather(
        mesh,
        AdminQuery::TopicStats {
            topic: header.topic,
        },
    )
    .await
    {
        Ok(parts) => {
            for part in parts {
                if let AdminPart::TopicStats(t) = part {
                    table.offset_table.extend(t.offset_table);
                }
            }
            respond_body(request, table.to_fastjson())
        }
        Err(e) => system_error(request, e),
    }
}

async fn gather_names(mesh: &dyn ShardMesh, query: AdminQuery) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    for part in gather(mesh, query).await? {
        if let AdminPart::Names(more) = part {
            names.extend(more);
        }
    }
    Ok(names)
}

/// GET_CONSUME_STATS (208): the group's topics are the one asked for, or every topic it has
/// offsets on or subscribes to; topics this broker does not host are skipped (Java). The TPS is
/// the group's pulled messages per second over the last minute.
pub async fn consume_stats(
    mesh: &dyn ShardMesh,
    view: &BrokerView,
    stats: &BrokerStats,
    request: &RemotingCommand,
    now_ms: i64,
) -> Outcome {
    let header = match request.decode_header::<GetConsumeStatsRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let group = header.consumer_group;
    let topics: BTreeSet<String> = match header.topic.filter(|t| !t.is_empty()) {
        Some(topic) => BTreeSet::from([topic]),
        None => {
            let query = AdminQuery::TopicsOfGroup {
                group: group.clone(),
            };
            let mut topics = match gather_names(mesh, query).await {
                Ok(topics) => topics,
                Err(e) => return system_error(request, e),
            };
            topics.extend(
                view.subscriptions
                    .get(&group)
                    .into_iter()
                    .flat_map(|s| s.keys().cloned()),
            );
            topics
        }
    };
    let topics: Vec<String> = topics
        .into_iter()
        .filter(|t| view.topics.contains_key(t))
        .collect();
    let consume_tps = topics
        .iter()
        .filter_map(|t| stats.view(names::GROUP_GET_NUMS, &format!("{t}@{group}"), now_ms))
        .map(|data| data.stats_minute.tps)
        .sum();
    let mut body = ConsumeStats {
        consume_tps,
        ..ConsumeStats::default()
    };
    match gather(mesh, AdminQuery::ConsumeStats { group, topics }).await {
        Ok(parts) => {
            for part in parts {
                if let AdminPart::ConsumeStats(s) = part {
                    body.offset_table.extend(s.offset_table);
                }
            }
            respond_body(request, body.to_fastjson())
        }
        Err(e) => system_error(request, e),
    }
}

/// GET_ALL_CONSUMER_OFFSET (43).
pub async fn all_consumer_offsets(mesh: &dyn ShardMesh, request: &RemotingCommand) -> Outcome {
    match gather(mesh, AdminQuery::AllOffsets).await {
        Ok(parts) => {
            let parts = parts
                .into_iter()
                .filter_map(|p| match p {
                    AdminPart::Offsets(o) => Some(o),
                    _ => None,
                })
                .collect();
            respond_body(request, bodies::merge_offsets(parts).to_json().into_bytes())
        }
        Err(e) => system_error(request, e),
    }
}

/// INVOKE_BROKER_TO_RESET_OFFSET (222): every queue of the topic is moved to the first message
/// stored at or after the timestamp (-1: the end; without `isForce` only backwards), the new
/// offsets are pushed to every live consumer of the group as RESET_CONSUMER_CLIENT_OFFSET (220,
/// Java's `Broker2Client.resetOffset`) so running consumers continue from them, and the body
/// lists them. With no consumer online the offsets still move (as 5.x's server-side reset).
pub async fn reset_offset(
    mesh: &dyn ShardMesh,
    view: &BrokerView,
    request: &RemotingCommand,
) -> Outcome {
    let header = match request.decode_header::<ResetOffsetRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    if !view.topics.contains_key(&header.topic) {
        return topic_not_exist(request, &header.topic);
    }
    let to = bodies::ResetTarget {
        timestamp_ms: header.timestamp,
        force: header.is_force,
    };
    let query = AdminQuery::ResetOffset {
        topic: header.topic.clone(),
        group: header.group.clone(),
        to,
    };
    let parts = match gather(mesh, query).await {
        Ok(parts) => parts,
        Err(e) => return system_error(request, e),
    };
    let mut body = ResetOffsetBody::default();
    for part in parts {
        if let AdminPart::Reset(r) = part {
            body.offset_table.extend(r.offset_table);
        }
    }
    let body = Bytes::from(body.to_fastjson());
    let consumers = mesh.consumer_channels(&header.group).recv_async().await;
    for consumer in consumers.unwrap_or_default() {
        consumer
            .conn
            .send_request(reset_consumer_offset(&header, body.clone()));
    }
    Outcome::Respond(success(request).with_body(body))
}

/// RESET_CONSUMER_CLIENT_OFFSET (220, oneway as Java sends it): Java's header (topic, group,
/// timestamp) and the `ResetOffsetBody` of the new offsets.
fn reset_consumer_offset(header: &ResetOffsetRequestHeader, body: Bytes) -> RemotingCommand {
    let notice = ResetOffsetRequestHeader {
        topic: header.topic.clone(),
        group: header.group.clone(),
        timestamp: header.timestamp,
        is_force: false,
        queue_id: None,
        offset: None,
    };
    let code = RequestCode::ResetConsumerClientOffset.code();
    let mut command = RemotingCommand::new_request(code, ExtFields::new(), body);
    command.set_header(&notice);
    command.set_oneway();
    command
}

/// QUERY_TOPIC_CONSUME_BY_WHO (300): groups with offsets on the topic or subscribed to it.
pub async fn topic_consumed_by(
    mesh: &dyn ShardMesh,
    view: &BrokerView,
    request: &RemotingCommand,
) -> Outcome {
    let header = match request.decode_header::<QueryTopicConsumeByWhoRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let query = AdminQuery::GroupsOfTopic {
        topic: header.topic.clone(),
    };
    let mut groups = match gather_names(mesh, query).await {
        Ok(groups) => groups,
        Err(e) => return system_error(request, e),
    };
    let subscribed = view
        .subscriptions
        .iter()
        .filter(|(_, subs)| subs.contains_key(&header.topic));
    groups.extend(subscribed.map(|(group, _)| group.clone()));
    respond_body(
        request,
        GroupList { group_set: groups }.to_json().into_bytes(),
    )
}

/// QUERY_TOPICS_BY_CONSUMER (343): topics the group has offsets on or subscribes to.
pub async fn topics_by_consumer(
    mesh: &dyn ShardMesh,
    view: &BrokerView,
    broker_addr: &str,
    request: &RemotingCommand,
) -> Outcome {
    let header = match request.decode_header::<QueryTopicsByConsumerRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let query = AdminQuery::TopicsOfGroup {
        group: header.group.clone(),
    };
    let mut topics = match gather_names(mesh, query).await {
        Ok(topics) => topics,
        Err(e) => return system_error(request, e),
    };
    topics.extend(
        view.subscriptions
            .get(&header.group)
            .into_iter()
            .flat_map(|s| s.keys().cloned()),
    );
    let body = TopicList {
        broker_addr: Some(broker_addr.to_string()),
        topic_list: topics,
    };
    respond_body(request, body.to_json().into_bytes())
}

/// VIEW_BROKER_STATS_DATA (315). A statistic never counted is Java's SYSTEM_ERROR remark.
pub fn view_broker_stats(stats: &BrokerStats, request: &RemotingCommand, now_ms: i64) -> Outcome {
    let header = match request.decode_header::<ViewBrokerStatsDataRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let (name, key) = (&header.stats_name, &header.stats_key);
    match stats
        .view(name, key, now_ms)
        .filter(|_| stats.has(name, key))
    {
        Some(data) => respond_body(request, data.to_json().into_bytes()),
        None => system_error(request, format!("The stats <{name}> <{key}> not exist")),
    }
}

fn connection(
    client: &crate::metadata::clients::ClientChannel<crate::channel::ConnHandle>,
) -> Connection {
    Connection {
        client_addr: client.channel.peer.to_string(),
        client_id: client.client_id.clone(),
        language: client.language.to_string(),
        version: client.version,
    }
}

/// GET_CONSUMER_CONNECTION_LIST (203), on the metadata shard.
pub fn consumer_connection(meta: &Metadata, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetConsumerConnectionListRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let group = header.consumer_group;
    let Some(info) = meta
        .clients
        .consumer_group(&group)
        .filter(|g| !g.clients.is_empty())
    else {
        let remark = format!("the consumer group[{group}] not online");
        return respond_error(request, ResponseCode::ConsumerNotOnline, remark);
    };
    let data = &info.consumer_data;
    let body = ConsumerConnection {
        connection_set: info.clients.values().map(connection).collect(),
        consume_from_where: Some(data.consume_from_where.clone()),
        consume_type: Some(data.consume_type.clone()),
        message_model: Some(data.message_model.clone()),
        subscription_table: info.subscriptions.clone().into_iter().collect(),
    };
    respond_body(request, body.to_json().into_bytes())
}

/// GET_PRODUCER_CONNECTION_LIST (204), on the metadata shard.
pub fn producer_connection(meta: &Metadata, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetProducerConnectionListRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let group = header.producer_group;
    let Some(clients) = meta
        .clients
        .producer_group(&group)
        .filter(|c| !c.is_empty())
    else {
        let remark = format!("the producer group[{group}] not exist");
        return respond_error(request, ResponseCode::SystemError, remark);
    };
    let body = ProducerConnection {
        connection_set: clients.values().map(connection).collect(),
    };
    respond_body(request, body.to_json().into_bytes())
}

#[cfg(test)]
mod tests {
    use ringmq_proto::code::RequestCode;

    use super::*;
    use crate::processor::testing::{connection, request, responded, run};
    use crate::stats::NodeLabels;

    const CONSUMER_HEARTBEAT: &str = r#"{"clientID":"10.0.0.1@1","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"g","messageModel":"CLUSTERING","subscriptionDataSet":[{"subString":"*","subVersion":1,"topic":"T"}]}],"producerDataSet":[]}"#;

    #[test]
    fn topic_and_consume_stats_cover_every_queue_of_the_topic() {
        run(|fx| async move {
            fx.create_topic("T", 2);
            for _ in 0..3 {
                fx.put("T", 0, b"abc", "").await;
            }
            fx.offsets.borrow_mut().commit("g", "T", 0, 1);
            let view = fx.view();
            let get = request(RequestCode::GetTopicStatsInfo, &[("topic", "T")], b"");
            let response = responded(topic_stats(fx.as_ref(), &view, &get).await);
            let table = TopicStatsTable::from_fastjson(&response.body).unwrap();
            assert_eq!(table.offset_table.len(), 2);
            let q0 = table
                .offset_table
                .iter()
                .find(|(q, _)| q.queue_id == 0)
                .unwrap()
                .1;
            assert_eq!(q0.max_offset, 3);

            let stats = BrokerStats::new(
                NodeLabels {
                    cluster: "C".into(),
                    node_id: "b".into(),
                },
                1,
                0,
            );
            let get = request(RequestCode::GetConsumeStats, &[("consumerGroup", "g")], b"");
            let response = responded(consume_stats(fx.as_ref(), &view, &stats, &get, 1).await);
            let body = ConsumeStats::from_fastjson(&response.body).unwrap();
            assert_eq!(body.total_diff(), 2, "{body:?}");

            let missing = request(RequestCode::GetTopicStatsInfo, &[("topic", "Nope")], b"");
            let response = responded(topic_stats(fx.as_ref(), &view, &missing).await);
            assert_eq!(response.code, ResponseCode::TopicNotExist.code());
        });
    }

    #[test]
    fn reset_moves_offsets_and_all_offsets_show_them() {
        run(|fx| async move {
            fx.create_topic("T", 1);
            fx.put("T", 0, b"abc", "").await;
            fx.put("T", 0, b"abc", "").await;
            let (member, notices) = connection(1);
            let hb = request(RequestCode::HeartBeat, &[], CONSUMER_HEARTBEAT.as_bytes());
            let _ = crate::processor::client::heartbeat(
                &mut fx.metadata.borrow_mut(),
                &member,
                &hb,
                1_000,
            );
            let view = fx.view();
            let fields = [
                ("topic", "T"),
                ("group", "g"),
                ("timestamp", "0"),
                ("isForce", "true"),
            ];
            let reset = request(RequestCode::InvokeBrokerToResetOffset, &fields, b"");
            let response = responded(reset_offset(fx.as_ref(), &view, &reset).await);
            let body = ResetOffsetBody::from_fastjson(&response.body).unwrap();
            assert_eq!(
                body.offset_table.values().copied().collect::<Vec<_>>(),
                vec![0]
            );
            // The group's live member is told the new offsets (the only command queued: the
            // test does not carry out the heartbeat's announcement).
            let notice = notices.commands.try_recv().expect("the consumer is told");
            assert_eq!(notice.code, RequestCode::ResetConsumerClientOffset.code());
            assert!(notice.is_oneway() && !notice.is_response());
            assert_eq!(notice.ext_fields.get("group"), Some("g"));
            assert_eq!(notice.ext_fields.get("timestamp"), Some("0"));
            assert_eq!(ResetOffsetBody::from_fastjson(&notice.body).unwrap(), body);
            assert!(notices.commands.try_recv().is_err());
            let all = request(RequestCode::GetAllConsumerOffset, &[], b"");
            let response = responded(all_consumer_offsets(fx.as_ref(), &all).await);
            let wrapper = ConsumerOffsetSerializeWrapper::from_json(&response.body).unwrap();
            assert_eq!(wrapper.offset_table["T@g"][&0], 0);
            let by_who = request(RequestCode::QueryTopicConsumeByWho, &[("topic", "T")], b"");
            let response = responded(topic_consumed_by(fx.as_ref(), &view, &by_who).await);
            assert!(GroupList::from_json(&response.body)
                .unwrap()
                .group_set
                .contains("g"));
        });
    }

    #[test]
    fn broker_stats_view_and_offline_groups() {
        run(|fx| async move {
            let stats = BrokerStats::new(
                NodeLabels {
                    cluster: "C".into(),
                    node_id: "b".into(),
                },
                1,
                0,
            );
            stats.handle(0).on_put("T", 4, 400);
            let fields = [("statsName", "TOPIC_PUT_NUMS"), ("statsKey", "T")];
            let view = request(RequestCode::ViewBrokerStatsData, &fields, b"");
            let response = responded(view_broker_stats(&stats, &view, 1_000));
            let data = ringmq_proto::body::BrokerStatsData::from_json(&response.body).unwrap();
            assert_eq!(data.stats_minute.sum, 4);
            let fields = [("statsName", "TOPIC_PUT_NUMS"), ("statsKey", "Other")];
            let unknown = request(RequestCode::ViewBrokerStatsData, &fields, b"");
            let response = responded(view_broker_stats(&stats, &unknown, 1_000));
            assert_eq!(
                response.remark.as_deref(),
                Some("The stats <TOPIC_PUT_NUMS> <Other> not exist")
            );

            let fields = [("consumerGroup", "nobody")];
            let offline = request(RequestCode::GetConsumerConnectionList, &fields, b"");
            let response = responded(consumer_connection(&fx.metadata.borrow(), &offline));
            assert_eq!(response.code, ResponseCode::ConsumerNotOnline.code());
        });
    }
}
