//! Everything the console asks of name servers and brokers, on the remoting thread.
//!
//! The views are plain serializable structs: the JSON API returns them as they are.

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytes::Bytes;
use ringmq_client::{
    Admin, ClientConfig, ClientError, Credentials, MessageQueue, PullConsumer, TopicRoute,
};
use ringmq_proto::body::{ClusterInfo, JsonBody, TopicList};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use serde::Serialize;

use crate::error::ConsoleError;
use crate::sampler::History;

/// The group the console's pulls carry; it never commits offsets.
pub const CONSOLE_GROUP: &str = "RINGMQ_CONSOLE_GROUP";

/// How the console reaches the cluster.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    pub namesrv: String,
    pub credentials: Option<Credentials>,
    /// Per-request timeout: an unreachable broker costs at most this per page refresh.
    pub request_timeout_ms: u64,
    pub sample_interval_ms: u64,
}

/// The remoting client and what the sampler has seen.
pub struct Remote {
    pub admin: Admin,
    /// Reads a message by queue and offset (a pull that commits nothing).
    pub puller: PullConsumer,
    pub namesrv_addrs: Vec<String>,
    pub config: RemoteConfig,
    pub history: RefCell<History>,
}

/// One broker process as the name server lists it, with what it says about itself.
#[derive(Clone, Debug, Serialize)]
pub struct BrokerRow {
    pub cluster: String,
    pub broker_name: String,
    pub broker_id: i64,
    pub role: &'static str,
    pub addr: String,
    pub reachable: bool,
    pub error: Option<String>,
    pub version: Option<String>,
    pub put_total: Option<u64>,
    pub get_total: Option<u64>,
    pub tps_in: f64,
    pub tps_out: f64,
    /// `commitLogDiskRatio` when the broker reports it.
    pub disk_ratio: Option<String>,
    pub runtime: BTreeMap<String, String>,
}

/// A request with these ext fields and no body.
pub fn request(code: RequestCode, fields: &[(&str, &str)]) -> RemotingCommand {
    let ext: ExtFields = fields.iter().copied().collect();
    RemotingCommand::new_request(code.code(), ext, Bytes::new())
}

impl Remote {
    pub fn new(config: RemoteConfig) -> Result<Remote, ConsoleError> {
        let mut client = ClientConfig::new(&config.namesrv)?;
        client.instance_name = format!("ringmq-console-{}", std::process::id());
        client.request_timeout_ms = config.request_timeout_ms;
        client.connect_timeout_ms = config.request_timeout_ms;
        client.credentials = config.credentials.clone();
        let namesrv_addrs = client.namesrv_addrs.clone();
        Ok(Remote {
            puller: PullConsumer::start(client.clone(), CONSOLE_GROUP)?,
            admin: Admin::new(client)?,
            namesrv_addrs,
            config,
            history: RefCell::new(History::default()),
        })
    }

    pub fn shutdown(&self) {
        self.admin.shutdown();
        self.puller.shutdown();
    }

    /// Sends `request` to `addr`; a non-success answer becomes [`ConsoleError::Refused`].
    pub async fn invoke_ok(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<RemotingCommand, ConsoleError> {
        let response = self.admin.invoke(addr, request).await?;
        if response.code != ResponseCode::Success.code() {
            return Err(ConsoleError::Refused {
                addr: addr.to_string(),
                code: response.code,
                remark: response.remark.unwrap_or_default(),
            });
        }
        Ok(response)
    }

    /// Sends `request` to each name server until one answers.
    pub async fn invoke_namesrv(
        &self,
        request: RemotingCommand,
    ) -> Result<RemotingCommand, ConsoleError> {
        let mut last = None;
        for addr in &self.namesrv_addrs {
            match self.invoke_ok(addr, request.clone()).await {
                Ok(response) => return Ok(response),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ConsoleError::BadInput("no name server".to_string())))
    }

    pub async fn cluster_info(&self) -> Result<ClusterInfo, ConsoleError> {
        Ok(self.admin.cluster_info().await?)
    }

    /// Every broker process the name servers know, with its runtime info (or why not).
    pub async fn brokers(&self) -> Result<Vec<BrokerRow>, ConsoleError> {
        let info = self.cluster_info().await?;
        let mut rows = Vec::new();
        for data in info.broker_addr_table.values() {
            for (&broker_id, addr) in &data.broker_addrs {
                rows.push(
                    self.broker_row(&data.cluster, &data.broker_name, broker_id, addr)
                        .await,
                );
            }
        }
        Ok(rows)
    }

    async fn broker_row(&self, cluster: &str, name: &str, broker_id: i64, addr: &str) -> BrokerRow {
        let runtime = self.runtime_info(addr).await;
        let (reachable, error, runtime) = match runtime {
            Ok(table) => (true, None, table),
            Err(e) => (false, Some(e.to_string()), BTreeMap::new()),
        };
        let number = |key: &str| runtime.get(key).and_then(|v| v.parse::<u64>().ok());
        BrokerRow {
            cluster: cluster.to_string(),
            broker_name: name.to_string(),
            broker_id,
            role: if broker_id == 0 { "MASTER" } else { "SLAVE" },
            addr: addr.to_string(),
            reachable,
            error,
            version: runtime.get("brokerVersionDesc").cloned(),
            put_total: number("msgPutTotalTodayNow"),
            get_total: number("msgGetTotalTodayNow"),
            tps_in: 0.0,
            tps_out: 0.0,
            disk_ratio: runtime.get("commitLogDiskRatio").cloned(),
            runtime,
        }
    }

    /// GET_BROKER_RUNTIME_INFO: the broker's `KVTable`.
    pub async fn runtime_info(&self, addr: &str) -> Result<BTreeMap<String, String>, ConsoleError> {
        let response = self
            .invoke_ok(addr, request(RequestCode::GetBrokerRuntimeInfo, &[]))
            .await?;
        let table = ringmq_proto::body::KvTable::from_json(&response.body).map_err(|e| {
            ConsoleError::Refused {
                addr: addr.to_string(),
                code: 0,
                remark: format!("runtime info body: {e}"),
            }
        })?;
        Ok(table.table.into_iter().collect())
    }

    /// Every topic the name servers know.
    pub async fn topic_names(&self) -> Result<Vec<String>, ConsoleError> {
        let response = self
            .invoke_namesrv(request(RequestCode::GetAllTopicListFromNameserver, &[]))
            .await?;
        let list = TopicList::from_json(&response.body)
            .map_err(|e| ConsoleError::BadInput(format!("topic list body: {e}")))?;
        Ok(list.topic_list.into_iter().collect())
    }

    pub async fn route(&self, topic: &str) -> Result<TopicRoute, ConsoleError> {
        Ok(self.admin.topic_route(topic).await?)
    }

    /// Min and max offset of a queue, asked of its master.
    pub async fn queue_offsets(&self, queue: &MessageQueue) -> Result<(i64, i64), ClientError> {
        let min = self.admin.min_offset(queue).await?;
        let max = self.admin.max_offset(queue).await?;
        Ok((min, max))
    }
}
