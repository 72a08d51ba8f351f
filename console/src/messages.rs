//! Message search: by topic and key, by message id, by queue and offset; body preview; the
//! retry trail of a message (its copies in `%RETRY%` topics).

use std::collections::BTreeMap;

use ringmq_client::{decode_records, MessageExt, MessageQueue};
use ringmq_proto::code::RequestCode;
use ringmq_proto::message::ids::decode_offset_msg_id;
use serde::{Deserialize, Serialize};

use crate::error::ConsoleError;
use crate::remote::{request, Remote};
use crate::topics::RETRY_PREFIX;

/// Bytes of body shown in a preview.
pub const BODY_PREVIEW_BYTES: usize = 512;
/// Messages one key search asks each broker for (RocketMQ's dashboard asks 64).
pub const KEY_SEARCH_MAX: usize = 64;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct MessageQuery {
    pub topic: Option<String>,
    pub key: Option<String>,
    pub msg_id: Option<String>,
    pub broker_name: Option<String>,
    pub queue_id: Option<i32>,
    pub offset: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MessageRow {
    pub msg_id: String,
    pub offset_msg_id: String,
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub tags: Option<String>,
    pub keys: Option<String>,
    pub born_timestamp_ms: i64,
    pub store_timestamp_ms: i64,
    pub reconsume_times: i32,
    pub body_bytes: usize,
    pub body_preview: String,
    pub properties: BTreeMap<String, String>,
}

impl From<&MessageExt> for MessageRow {
    fn from(m: &MessageExt) -> MessageRow {
        let shown = &m.body[..m.body.len().min(BODY_PREVIEW_BYTES)];
        MessageRow {
            msg_id: m.msg_id(),
            offset_msg_id: m.offset_msg_id(),
            topic: m.topic.clone(),
            broker_name: m.broker_name.clone(),
            queue_id: m.queue_id,
            queue_offset: m.queue_offset,
            tags: m.tags().map(str::to_string),
            keys: m.keys().map(str::to_string),
            born_timestamp_ms: m.born_timestamp_ms,
            store_timestamp_ms: m.store_timestamp_ms,
            reconsume_times: m.reconsume_times,
            body_bytes: m.body.len(),
            body_preview: String::from_utf8_lossy(shown).into_owned(),
            properties: m.properties(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SearchResult {
    pub messages: Vec<MessageRow>,
    /// Copies of the found messages in retry topics, oldest first.
    pub retries: Vec<MessageRow>,
}

impl Remote {
    pub async fn search(&self, query: &MessageQuery) -> Result<SearchResult, ConsoleError> {
        let topic = query.topic.as_deref().unwrap_or("");
        let messages = match (&query.msg_id, &query.key, query.queue_id, query.offset) {
            (Some(id), _, _, _) if !id.is_empty() => self.by_id(topic, id).await?,
            (_, Some(key), _, _) if !key.is_empty() => self.by_key(topic, key, false).await?,
            (_, _, Some(queue_id), Some(offset)) => {
                let broker = query.broker_name.clone().unwrap_or_default();
                self.by_queue_offset(topic, &broker, queue_id, offset)
                    .await?
            }
            _ => {
                return Err(ConsoleError::BadInput(
                    "give a msgId, a key or a queue and offset".to_string(),
                ))
            }
        };
        let retries = self.retry_trail(&messages).await;
        Ok(SearchResult {
            messages: messages.iter().map(MessageRow::from).collect(),
            retries: retries.iter().map(MessageRow::from).collect(),
        })
    }

    /// QUERY_MESSAGE on every master of the topic (`unique` asks by UNIQ_KEY).
    async fn by_key(
        &self,
        topic: &str,
        key: &str,
        unique: bool,
    ) -> Result<Vec<MessageExt>, ConsoleError> {
        let route = self.route(topic).await?;
        let max = KEY_SEARCH_MAX.to_string();
        let end = i64::MAX.to_string();
        let mut found = Vec::new();
        for broker in &route.data.broker_datas {
            let Some(addr) = broker.broker_addrs.get(&0) else {
                continue;
            };
            let mut fields = vec![
                ("topic", topic),
                ("key", key),
                ("maxNum", max.as_str()),
                ("beginTimestamp", "0"),
                ("endTimestamp", end.as_str()),
            ];
            if unique {
                fields.push(("_UNIQUE_KEY_QUERY", "true"));
            }
            let response = match self
                .invoke_ok(addr, request(RequestCode::QueryMessage, &fields))
                .await
            {
                Ok(r) => r,
                Err(ConsoleError::Refused { code: 17, .. }) => continue, // QUERY_NOT_FOUND
                Err(e) => return Err(e),
            };
            let decoded = decode_records(&response.body, &broker.broker_name)
                .map_err(|e| ConsoleError::BadInput(format!("records from {addr}: {e}")))?;
            found.extend(decoded.into_iter().filter(|m| !unique || m.msg_id() == key));
        }
        Ok(found)
    }

    /// A message id is a client UNIQ_KEY or a broker offsetMsgId; both are 32 hex characters,
    /// so, as RocketMQ's dashboard does, try the unique key in the topic first.
    async fn by_id(&self, topic: &str, id: &str) -> Result<Vec<MessageExt>, ConsoleError> {
        if !topic.is_empty() {
            let found = self.by_key(topic, id, true).await?;
            if !found.is_empty() {
                return Ok(found);
            }
        }
        let Ok(decoded) = decode_offset_msg_id(id) else {
            return Ok(Vec::new());
        };
        let addr = decoded.store_host.to_string();
        let offset = decoded.commit_log_offset.to_string();
        let response = self
            .invoke_ok(
                &addr,
                request(RequestCode::ViewMessageById, &[("offset", offset.as_str())]),
            )
            .await?;
        let broker_name = self.broker_name_of(&addr).await.unwrap_or_default();
        decode_records(&response.body, &broker_name)
            .map_err(|e| ConsoleError::BadInput(format!("record from {addr}: {e}")))
    }

    async fn broker_name_of(&self, addr: &str) -> Option<String> {
        let info = self.cluster_info().await.ok()?;
        info.broker_addr_table
            .values()
            .find(|b| b.broker_addrs.values().any(|a| a == addr))
            .map(|b| b.broker_name.clone())
    }

    async fn by_queue_offset(
        &self,
        topic: &str,
        broker: &str,
        queue_id: i32,
        offset: i64,
    ) -> Result<Vec<MessageExt>, ConsoleError> {
        let route = self.route(topic).await?;
        let broker = if broker.is_empty() {
            route
                .data
                .broker_datas
                .first()
                .map(|b| b.broker_name.clone())
                .unwrap_or_default()
        } else {
            broker.to_string()
        };
        let queue = MessageQueue::new(topic, &broker, queue_id);
        let result = self.puller.pull(&queue, "*", offset, 1).await?;
        Ok(result.messages)
    }

    /// The copies of `messages` that went through retry topics: same UNIQ_KEY, any group.
    async fn retry_trail(&self, messages: &[MessageExt]) -> Vec<MessageExt> {
        let Ok(names) = self.topic_names().await else {
            return Vec::new();
        };
        let mut trail = Vec::new();
        for message in messages
            .iter()
            .filter(|m| !m.topic.starts_with(RETRY_PREFIX))
        {
            let id = message.msg_id();
            for retry_topic in names.iter().filter(|t| t.starts_with(RETRY_PREFIX)) {
                if let Ok(found) = self.by_key(retry_topic, &id, true).await {
                    trail.extend(found);
                }
            }
        }
        trail.sort_by_key(|m| m.store_timestamp_ms);
        trail
    }
}
