//! Admin calls used by tools and tests: topic creation on a broker, routes, offsets, cluster
//! info.

use std::rc::Rc;

use ringmq_proto::body::{
    ClusterInfo, JsonBody, SubscriptionGroupConfig, SubscriptionGroupWrapper, TopicConfig,
};
use ringmq_proto::command::RemotingCommand;

use crate::broker_api;
use crate::config::ClientConfig;
use crate::core::ClientCore;
use crate::error::ClientError;
use crate::queue::MessageQueue;
use crate::requests;
use crate::route::TopicRoute;

/// An admin client (`!Send`).
pub struct Admin {
    pub(crate) core: Rc<ClientCore>,
}

impl Admin {
    pub fn new(client: ClientConfig) -> Result<Admin, ClientError> {
        Ok(Admin {
            core: ClientCore::new(client, None)?,
        })
    }

    /// UPDATE_AND_CREATE_TOPIC on the broker at `broker_addr`; the broker then registers the
    /// topic with the name servers.
    pub async fn create_topic(
        &self,
        broker_addr: &str,
        config: &TopicConfig,
    ) -> Result<(), ClientError> {
        crate::validate::validate_topic(&config.topic_name)?;
        let request = requests::update_and_create_topic(config);
        let request_code = request.code;
        let response = self.core.invoke_broker(broker_addr, request).await?;
        requests::expect_success(broker_addr, request_code, &response)
    }

    /// UPDATE_BROKER_CONFIG on the broker at `broker_addr` (e.g. `brokerPermission=4` makes it
    /// read-only). The broker decides which keys it accepts at run time.
    pub async fn update_broker_config(
        &self,
        broker_addr: &str,
        properties: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        let request = requests::update_broker_config(properties);
        let request_code = request.code;
        let response = self.core.invoke_broker(broker_addr, request).await?;
        requests::expect_success(broker_addr, request_code, &response)
    }

    /// The topic's route as the name servers know it now (not cached).
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRoute, ClientError> {
        let data = self.core.fetch_route_data(topic).await?;
        Ok(TopicRoute::new(topic, data))
    }

    /// GET_BROKER_CLUSTER_INFO from a name server.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, ClientError> {
        let request = requests::get_broker_cluster_info();
        let request_code = request.code;
        let response = self.core.invoke_namesrv(request).await?;
        let addr = self.core.current_namesrv().to_string();
        requests::expect_success(&addr, request_code, &response)?;
        ClusterInfo::from_json(&response.body).map_err(|e| ClientError::BadResponse {
            addr,
            request_code,
            detail: format!("cluster info body: {e}"),
        })
    }

    /// The next offset to be written in `queue`.
    pub async fn max_offset(&self, queue: &MessageQueue) -> Result<i64, ClientError> {
        let addr = self.master_addr(queue).await?;
        broker_api::max_offset(&self.core, &addr, queue).await
    }

    /// The oldest offset still in `queue`.
    pub async fn min_offset(&self, queue: &MessageQueue) -> Result<i64, ClientError> {
        let addr = self.master_addr(queue).await?;
        broker_api::min_offset(&self.core, &addr, queue).await
    }

    /// The first offset of `queue` stored at or after `timestamp_ms` (its max offset if none).
    pub async fn offset_at_time(
        &self,
        queue: &MessageQueue,
        timestamp_ms: i64,
    ) -> Result<i64, ClientError> {
        let addr = self.master_addr(queue).await?;
        broker_api::offset_at_time(&self.core, &addr, queue, timestamp_ms).await
    }

    /// `group`'s committed offset of `queue`, `None` if it has none.
    pub async fn consumer_offset(
        &self,
        group: &str,
        queue: &MessageQueue,
    ) -> Result<Option<i64>, ClientError> {
        let addr = self.master_addr(queue).await?;
        broker_api::query_consumer_offset(&self.core, &addr, group, queue).await
    }

    /// The ids of `group`'s live consumers, asked of the broker at `broker_addr`.
    pub async fn consumer_ids(
        &self,
        broker_addr: &str,
        group: &str,
    ) -> Result<Vec<String>, ClientError> {
        broker_api::consumer_ids(&self.core, broker_addr, group).await
    }

    /// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200): creates or replaces a consumer group's
    /// configuration (`retryMaxTimes`, `consumeEnable`, ...) on the broker at `broker_addr`.
    pub async fn create_subscription_group(
        &self,
        broker_addr: &str,
        config: &SubscriptionGroupConfig,
    ) -> Result<(), ClientError> {
        let request = requests::update_and_create_subscription_group(config);
        self.expect_success(broker_addr, request).await
    }

    /// GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201): the broker's subscription groups.
    pub async fn subscription_groups(
        &self,
        broker_addr: &str,
    ) -> Result<SubscriptionGroupWrapper, ClientError> {
        let request = requests::get_all_subscription_group_config();
        let code = request.code;
        let response = self.core.invoke_broker(broker_addr, request).await?;
        requests::expect_success(broker_addr, code, &response)?;
        SubscriptionGroupWrapper::from_json(&response.body).map_err(|e| ClientError::BadResponse {
            addr: broker_addr.to_string(),
            request_code: code,
            detail: e.to_string(),
        })
    }

    async fn expect_success(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<(), ClientError> {
        let code = request.code;
        let response = self.core.invoke_broker(addr, request).await?;
        requests::expect_success(addr, code, &response)
    }

    /// Sends a raw request to `addr` (tools and tests that need a code this API lacks).
    pub async fn invoke(
        &self,
        addr: &str,
        request: ringmq_proto::command::RemotingCommand,
    ) -> Result<ringmq_proto::command::RemotingCommand, ClientError> {
        self.core.invoke_broker(addr, request).await
    }

    /// Closes connections.
    pub fn shutdown(&self) {
        self.core.pool.close_all();
    }

    async fn master_addr(&self, queue: &MessageQueue) -> Result<String, ClientError> {
        let route = self.core.route(&queue.topic).await?;
        route
            .master_addr(&queue.broker_name)
            .map(str::to_string)
            .ok_or_else(|| ClientError::NoQueue {
                topic: queue.topic.clone(),
                what: "master-hosted",
            })
    }
}
