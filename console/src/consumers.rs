//! Consumer groups: lag per queue, connections, consume TPS; reset offset by time. Producer
//! connections per group.

use std::collections::BTreeMap;

use ringmq_client::{ClientError, MessageQueue};
use ringmq_proto::code::RequestCode;
use serde::{Deserialize, Serialize};

use crate::error::ConsoleError;
use crate::remote::{request, Remote};
use crate::topics::{topic_kind, RETRY_PREFIX};

/// Offset look-ups one lag computation may make; a cluster with more (groups × queues) shows
/// the first ones and says the list is cut.
pub const LAG_PROBES_MAX: usize = 4096;

#[derive(Clone, Debug, Serialize)]
pub struct GroupQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
    pub broker_offset: i64,
    pub consumer_offset: i64,
    pub lag: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupView {
    pub group: String,
    pub connections: Vec<String>,
    pub subscriptions: Vec<String>,
    pub queues: Vec<GroupQueue>,
    pub total_lag: i64,
    pub consumed_total: i64,
    pub consume_tps: f64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ResetRequest {
    pub topic: String,
    pub timestamp_ms: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResetRow {
    pub broker_name: String,
    pub queue_id: i32,
    pub offset: i64,
}

/// Each topic's readable queues with their max offsets.
type QueueTable = Vec<(MessageQueue, i64)>;

impl Remote {
    /// Every group (a `%RETRY%group` topic exists for each group that ever heartbeated).
    pub async fn group_views(&self) -> Result<(Vec<GroupView>, bool), ConsoleError> {
        let names = self.topic_names().await?;
        let mut table: QueueTable = Vec::new();
        for topic in names
            .iter()
            .filter(|t| matches!(topic_kind(t), "NORMAL" | "RETRY"))
        {
            if let Ok(route) = self.route(topic).await {
                for queue in route.read_queues {
                    if let Ok(max) = self.admin.max_offset(&queue).await {
                        table.push((queue, max));
                    }
                }
            }
        }
        let mut probes = 0;
        let mut views = Vec::new();
        for group in names.iter().filter_map(|t| t.strip_prefix(RETRY_PREFIX)) {
            views.push(self.group_view(group, &table, &mut probes).await);
        }
        Ok((views, probes >= LAG_PROBES_MAX))
    }

    async fn group_view(&self, group: &str, table: &QueueTable, probes: &mut usize) -> GroupView {
        let mut view = GroupView {
            group: group.to_string(),
            connections: Vec::new(),
            subscriptions: Vec::new(),
            queues: Vec::new(),
            total_lag: 0,
            consumed_total: 0,
            consume_tps: 0.0,
            error: None,
        };
        for (queue, max) in table {
            if *probes >= LAG_PROBES_MAX {
                break;
            }
            *probes += 1;
            let Ok(Some(committed)) = self.admin.consumer_offset(group, queue).await else {
                continue;
            };
            let lag = (max - committed).max(0);
            if !view.subscriptions.contains(&queue.topic) {
                view.subscriptions.push(queue.topic.clone());
            }
            view.total_lag += lag;
            view.consumed_total += committed;
            view.queues.push(GroupQueue {
                topic: queue.topic.clone(),
                broker_name: queue.broker_name.clone(),
                queue_id: queue.queue_id,
                broker_offset: *max,
                consumer_offset: committed,
                lag,
            });
        }
        match self.group_connections(group).await {
            Ok(ids) => view.connections = ids,
            Err(e) => view.error = Some(e.to_string()),
        }
        view
    }

    /// Client ids of the group's live consumers on any master. A broker that answers "no
    /// consumer" (an error code) counts as none; an error is shown only if no master answered.
    pub async fn group_connections(&self, group: &str) -> Result<Vec<String>, ConsoleError> {
        let mut ids: Vec<String> = Vec::new();
        let mut answered = false;
        let mut last = None;
        for addr in self.master_addrs().await? {
            match self.admin.consumer_ids(&addr, group).await {
                Ok(found) => {
                    answered = true;
                    ids.extend(
                        found
                            .into_iter()
                            .filter(|id| !ids.contains(id))
                            .collect::<Vec<_>>(),
                    );
                }
                Err(ClientError::Server { .. }) => answered = true,
                Err(e) => last = Some(ConsoleError::from(e)),
            }
        }
        match (answered, last) {
            (false, Some(e)) => Err(e),
            _ => Ok(ids),
        }
    }

    /// Moves the group's committed offsets of `topic` to the first message stored at or after
    /// the time (UPDATE_CONSUMER_OFFSET per queue). Live consumers keep their in-memory
    /// offsets and may commit over this; stop them first, as with RocketMQ's offline reset.
    pub async fn reset_offset(
        &self,
        group: &str,
        reset: &ResetRequest,
    ) -> Result<Vec<ResetRow>, ConsoleError> {
        let route = self.route(&reset.topic).await?;
        let mut rows = Vec::new();
        for queue in &route.read_queues {
            let offset = self.admin.offset_at_time(queue, reset.timestamp_ms).await?;
            let addr = route
                .master_addr(&queue.broker_name)
                .ok_or_else(|| ConsoleError::NotFound(format!("master of {}", queue.broker_name)))?
                .to_string();
            let (queue_id, offset_text) = (queue.queue_id.to_string(), offset.to_string());
            let fields = [
                ("consumerGroup", group),
                ("topic", reset.topic.as_str()),
                ("queueId", queue_id.as_str()),
                ("commitOffset", offset_text.as_str()),
            ];
            self.invoke_ok(&addr, request(RequestCode::UpdateConsumerOffset, &fields))
                .await?;
            rows.push(ResetRow {
                broker_name: queue.broker_name.clone(),
                queue_id: queue.queue_id,
                offset,
            });
        }
        Ok(rows)
    }

    /// GET_PRODUCER_CONNECTION_LIST on every master: broker address → its answer (the
    /// connection set, or the broker's refusal, e.g. a broker that does not serve the code).
    pub async fn producer_connections(
        &self,
        group: &str,
    ) -> Result<BTreeMap<String, Result<serde_json::Value, String>>, ConsoleError> {
        let mut answers = BTreeMap::new();
        for addr in self.master_addrs().await? {
            let ask = request(
                RequestCode::GetProducerConnectionList,
                &[("producerGroup", group)],
            );
            let answer = match self.invoke_ok(&addr, ask).await {
                Ok(response) => serde_json::from_slice::<serde_json::Value>(&response.body)
                    .map_err(|e| format!("body: {e}")),
                Err(e) => Err(e.to_string()),
            };
            answers.insert(addr, answer);
        }
        Ok(answers)
    }
}
