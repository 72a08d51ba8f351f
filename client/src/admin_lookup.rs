//! Admin calls to the name servers (topic list, topic deletion, write permission) and message
//! lookups (by offsetMsgId, by key or UNIQ_KEY).

use bytes::Bytes;
use ringmq_proto::body::{JsonBody, TopicList};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{
    AddWritePermOfBrokerRequestHeader, AddWritePermOfBrokerResponseHeader, CommandHeader,
    DeleteTopicFromNamesrvRequestHeader, EmptyHeader, QueryMessageRequestHeader,
    ViewMessageRequestHeader, WipeWritePermOfBrokerRequestHeader,
    WipeWritePermOfBrokerResponseHeader,
};
use ringmq_proto::message::decode_offset_msg_id;

use crate::admin::Admin;
use crate::error::ClientError;
use crate::message::{decode_records, MessageExt};
use crate::requests;

/// Which lookup QUERY_MESSAGE does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// One of the message's `KEYS`.
    Key,
    /// The client-generated UNIQ_KEY (the msgId producers report).
    UniqueKey,
}

fn request<H: CommandHeader>(code: RequestCode, header: &H) -> RemotingCommand {
    let mut command = RemotingCommand::new_request(code.code(), ExtFields::new(), Bytes::new());
    command.set_header(header);
    command
}

impl Admin {
    /// The configured name server addresses.
    pub fn namesrv_addrs(&self) -> &[String] {
        &self.core.config.namesrv_addrs
    }

    /// Sends `request` to every name server; the first failure stops the round.
    async fn each_namesrv(
        &self,
        request: RemotingCommand,
    ) -> Result<Vec<(String, RemotingCommand)>, ClientError> {
        let mut answers = Vec::new();
        for addr in self.namesrv_addrs() {
            let response = self.invoke(addr, request.clone()).await?;
            requests::expect_success(addr, request.code, &response)?;
            answers.push((addr.clone(), response));
        }
        Ok(answers)
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206).
    pub async fn topic_list(&self) -> Result<TopicList, ClientError> {
        let req = request(RequestCode::GetAllTopicListFromNameserver, &EmptyHeader);
        let request_code = req.code;
        let response = self.core.invoke_namesrv(req).await?;
        let addr = self.core.current_namesrv().to_string();
        requests::expect_success(&addr, request_code, &response)?;
        TopicList::from_json(&response.body).map_err(|e| ClientError::BadResponse {
            addr,
            request_code,
            detail: format!("topic list body: {e}"),
        })
    }

    /// DELETE_TOPIC_IN_NAMESRV (216) on every name server.
    pub async fn delete_topic_in_namesrv(
        &self,
        topic: &str,
        cluster: Option<&str>,
    ) -> Result<(), ClientError> {
        let header = DeleteTopicFromNamesrvRequestHeader {
            topic: topic.to_string(),
            cluster_name: cluster.map(str::to_string),
        };
        let req = request(RequestCode::DeleteTopicInNamesrv, &header);
        self.each_namesrv(req).await.map(drop)
    }

    /// WIPE_WRITE_PERM_OF_BROKER (205) on every name server: the broker's queues become
    /// read-only in the routes. Returns each name server's count of topics changed.
    pub async fn wipe_write_perm(
        &self,
        broker_name: &str,
    ) -> Result<Vec<(String, i32)>, ClientError> {
        let header = WipeWritePermOfBrokerRequestHeader {
            broker_name: broker_name.to_string(),
        };
        let req = request(RequestCode::WipeWritePermOfBroker, &header);
        let mut counts = Vec::new();
        for (addr, response) in self.each_namesrv(req).await? {
            let header = response
                .decode_header::<WipeWritePermOfBrokerResponseHeader>()
                .map_err(|e| bad_header(&addr, RequestCode::WipeWritePermOfBroker, e))?;
            counts.push((addr, header.wipe_topic_count));
        }
        Ok(counts)
    }

    /// ADD_WRITE_PERM_OF_BROKER (327) on every name server: undoes a wipe.
    pub async fn add_write_perm(
        &self,
        broker_name: &str,
    ) -> Result<Vec<(String, i32)>, ClientError> {
        let header = AddWritePermOfBrokerRequestHeader {
            broker_name: broker_name.to_string(),
        };
        let req = request(RequestCode::AddWritePermOfBroker, &header);
        let mut counts = Vec::new();
        for (addr, response) in self.each_namesrv(req).await? {
            let header = response
                .decode_header::<AddWritePermOfBrokerResponseHeader>()
                .map_err(|e| bad_header(&addr, RequestCode::AddWritePermOfBroker, e))?;
            counts.push((addr, header.add_topic_count));
        }
        Ok(counts)
    }

    /// VIEW_MESSAGE_BY_ID (33) at the store host encoded in `offset_msg_id`.
    pub async fn view_message(&self, offset_msg_id: &str) -> Result<MessageExt, ClientError> {
        let id = decode_offset_msg_id(offset_msg_id)
            .map_err(|e| ClientError::Config(format!("msgId {offset_msg_id:?}: {e}")))?;
        let addr = id.store_host.to_string();
        let header = ViewMessageRequestHeader {
            offset: id.commit_log_offset,
            topic: None,
        };
        let req = request(RequestCode::ViewMessageById, &header);
        let response = self.invoke(&addr, req).await?;
        requests::expect_success(&addr, RequestCode::ViewMessageById.code(), &response)?;
        let mut messages =
            decode_records(&response.body, "").map_err(|source| ClientError::Decode {
                addr: addr.clone(),
                source,
            })?;
        messages.pop().ok_or_else(|| ClientError::BadResponse {
            addr,
            request_code: RequestCode::ViewMessageById.code(),
            detail: "empty body".to_string(),
        })
    }

    /// QUERY_MESSAGE (12) on one broker: messages of `topic` whose key (or UNIQ_KEY) is `key`,
    /// stored between `begin_ms` and `end_ms`, at most `max`. None found is an empty list.
    pub async fn query_message(
        &self,
        addr: &str,
        topic: &str,
        key: &str,
        kind: KeyKind,
        max: i32,
        range_ms: (i64, i64),
    ) -> Result<Vec<MessageExt>, ClientError> {
        let header = QueryMessageRequestHeader {
            topic: topic.to_string(),
            key: key.to_string(),
            max_num: max,
            begin_timestamp: range_ms.0,
            end_timestamp: range_ms.1,
            unique_key_query: kind == KeyKind::UniqueKey,
        };
        let req = request(RequestCode::QueryMessage, &header);
        let response = self.invoke(addr, req).await?;
        if response.code == ResponseCode::QueryNotFound.code() {
            return Ok(Vec::new());
        }
        requests::expect_success(addr, RequestCode::QueryMessage.code(), &response)?;
        decode_records(&response.body, "").map_err(|source| ClientError::Decode {
            addr: addr.to_string(),
            source,
        })
    }
}

fn bad_header(addr: &str, code: RequestCode, e: ringmq_proto::HeaderError) -> ClientError {
    ClientError::BadResponse {
        addr: addr.to_string(),
        request_code: code.code(),
        detail: e.to_string(),
    }
}
