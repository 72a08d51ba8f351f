//! Topics: queues with min/max offsets, route; create, update, delete.

use ringmq_client::{MessageQueue, TopicConfig};
use ringmq_proto::code::RequestCode;
use serde::{Deserialize, Serialize};

use crate::error::ConsoleError;
use crate::remote::{request, Remote};

/// RocketMQ's prefixes: a retry topic belongs to a consumer group, a DLQ topic holds what it
/// gave up on.
pub const RETRY_PREFIX: &str = "%RETRY%";
pub const DLQ_PREFIX: &str = "%DLQ%";

/// Topics the brokers create for themselves (shown apart from user topics).
const SYSTEM_TOPICS: &[&str] = &[
    "TBW102",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRACE_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
];

/// What kind of topic a name is.
pub fn topic_kind(topic: &str) -> &'static str {
    if topic.starts_with(RETRY_PREFIX) {
        "RETRY"
    } else if topic.starts_with(DLQ_PREFIX) {
        "DLQ"
    } else if SYSTEM_TOPICS.contains(&topic) || topic.starts_with("rmq_sys_") {
        "SYSTEM"
    } else {
        "NORMAL"
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct QueueRow {
    pub broker_name: String,
    pub queue_id: i32,
    pub min_offset: Option<i64>,
    pub max_offset: Option<i64>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RouteRow {
    pub broker_name: String,
    pub master_addr: Option<String>,
    pub perm: i32,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
}

#[derive(Clone, Debug, Serialize)]
pub struct TopicView {
    pub topic: String,
    pub kind: &'static str,
    pub route: Vec<RouteRow>,
    pub queues: Vec<QueueRow>,
    pub messages: i64,
    pub error: Option<String>,
}

/// A create or update: the same request to every master (`UPDATE_AND_CREATE_TOPIC`).
#[derive(Clone, Debug, Deserialize)]
pub struct TopicUpdate {
    pub topic: String,
    pub queue_nums: i32,
    #[serde(default = "read_write")]
    pub perm: i32,
}

fn read_write() -> i32 {
    6
}

impl Remote {
    /// Every topic with its route and queue offsets.
    pub async fn topics(&self) -> Result<Vec<TopicView>, ConsoleError> {
        let mut views = Vec::new();
        for topic in self.topic_names().await? {
            views.push(self.topic(&topic).await);
        }
        Ok(views)
    }

    /// One topic; a topic whose route or brokers fail is still listed, with the error.
    pub async fn topic(&self, topic: &str) -> TopicView {
        let mut view = TopicView {
            topic: topic.to_string(),
            kind: topic_kind(topic),
            route: Vec::new(),
            queues: Vec::new(),
            messages: 0,
            error: None,
        };
        let route = match self.route(topic).await {
            Ok(route) => route,
            Err(e) => {
                view.error = Some(e.to_string());
                return view;
            }
        };
        for queue_data in &route.data.queue_datas {
            view.route.push(RouteRow {
                broker_name: queue_data.broker_name.clone(),
                master_addr: route
                    .master_addr(&queue_data.broker_name)
                    .map(str::to_string),
                perm: queue_data.perm,
                read_queue_nums: queue_data.read_queue_nums,
                write_queue_nums: queue_data.write_queue_nums,
            });
        }
        for queue in &route.read_queues {
            let row = self.queue_row(queue).await;
            view.messages += row.max_offset.unwrap_or(0) - row.min_offset.unwrap_or(0);
            view.queues.push(row);
        }
        view
    }

    async fn queue_row(&self, queue: &MessageQueue) -> QueueRow {
        let (min_offset, max_offset, error) = match self.queue_offsets(queue).await {
            Ok((min, max)) => (Some(min), Some(max), None),
            Err(e) => (None, None, Some(e.to_string())),
        };
        QueueRow {
            broker_name: queue.broker_name.clone(),
            queue_id: queue.queue_id,
            min_offset,
            max_offset,
            error,
        }
    }

    /// Master addresses of every broker group.
    pub async fn master_addrs(&self) -> Result<Vec<String>, ConsoleError> {
        let info = self.cluster_info().await?;
        Ok(info
            .broker_addr_table
            .values()
            .filter_map(|b| b.broker_addrs.get(&0).cloned())
            .collect())
    }

    /// Creates or updates the topic on every master; each master's outcome is reported (an
    /// unreachable broker does not stop the others).
    pub async fn update_topic(&self, update: &TopicUpdate) -> Result<BrokerOutcomes, ConsoleError> {
        ringmq_client::validate_topic(&update.topic)
            .map_err(|e| ConsoleError::BadInput(e.to_string()))?;
        if !(1..=1024).contains(&update.queue_nums) {
            return Err(ConsoleError::BadInput(
                "queue_nums must be 1..=1024".to_string(),
            ));
        }
        let mut config = TopicConfig::new(update.topic.clone(), update.queue_nums);
        config.perm = update.perm;
        let mut outcomes = BrokerOutcomes::new();
        for addr in self.master_addrs().await? {
            let outcome = self.admin.create_topic(&addr, &config).await;
            outcomes.insert(
                addr,
                outcome.map(|_| "ok".to_string()).map_err(|e| e.to_string()),
            );
        }
        Ok(outcomes)
    }

    /// Deletes the topic from every master, then from the name servers; each one's outcome is
    /// reported.
    pub async fn delete_topic(&self, topic: &str) -> Result<BrokerOutcomes, ConsoleError> {
        let mut outcomes = BrokerOutcomes::new();
        let brokers = self.master_addrs().await?;
        for addr in brokers.into_iter().chain(self.namesrv_addrs.clone()) {
            let code = if self.namesrv_addrs.contains(&addr) {
                RequestCode::DeleteTopicInNamesrv
            } else {
                RequestCode::DeleteTopicInBroker
            };
            let outcome = self
                .invoke_ok(&addr, request(code, &[("topic", topic)]))
                .await;
            outcomes.insert(
                addr,
                outcome.map(|_| "ok".to_string()).map_err(|e| e.to_string()),
            );
        }
        Ok(outcomes)
    }
}

/// Address → "ok" or what went wrong there.
pub type BrokerOutcomes = std::collections::BTreeMap<String, Result<String, String>>;
