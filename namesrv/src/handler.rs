//! Request dispatch: one decoded request in, at most one response out. No I/O and no clock (the
//! caller passes `now_ms`), so every request code's behaviour is unit-tested without a socket;
//! the server only moves frames.
//!
//! Error answers follow Java's name server: a header that lacks a field or a body that does not
//! decode gets SYSTEM_ERROR with the reason as remark (Java answers any handler exception that
//! way); an unknown code gets REQUEST_CODE_NOT_SUPPORTED with ` request type N not supported`.

use std::sync::Arc;

use bytes::Bytes;
use ringmq_proto::body::{DataVersion, JsonBody, RegisterBrokerBody, TopicConfigSerializeWrapper};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{
    field, CommandHeader, DeleteKvConfigRequestHeader, DeleteTopicFromNamesrvRequestHeader,
    GetKvConfigRequestHeader, GetKvConfigResponseHeader, GetKvListByNamespaceRequestHeader,
    GetRouteInfoRequestHeader, PutKvConfigRequestHeader, QueryDataVersionResponseHeader,
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, UnregisterBrokerRequestHeader,
    WipeWritePermOfBrokerRequestHeader, WipeWritePermOfBrokerResponseHeader,
};
use ringmq_proto::{HeaderError, RequestCode, ResponseCode};
use tracing::{debug, info};

use crate::config::NamesrvConfig;
use crate::metrics::NamesrvMetrics;
use crate::registry::{
    BrokerRegistration, ConnectionId, RemovedBroker, RouteRegistry, ORDER_TOPIC_CONFIG_NAMESPACE,
};

/// `MQVersion.V3_0_11`: from this broker version on, the REGISTER_BROKER body is a
/// `RegisterBrokerBody`; before it, a bare `TopicConfigSerializeWrapper`.
const V3_0_11: i32 = 37;

/// Why a request could not be served; becomes SYSTEM_ERROR with this text as remark.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("{0}")]
    Header(#[from] HeaderError),
    #[error("Failed to decode {what}: {reason}")]
    Body { what: &'static str, reason: String },
    #[error("crc32 not match")]
    Crc32Mismatch,
    #[error("disable")]
    TopicListDisabled,
}

/// The name server's request handler: configuration plus the route registry.
pub struct Handler {
    config: NamesrvConfig,
    registry: RouteRegistry,
    metrics: Arc<NamesrvMetrics>,
}

impl Handler {
    pub fn new(config: NamesrvConfig) -> Self {
        Self::with_metrics(config, Arc::default())
    }

    /// A handler that publishes its counts into `metrics` (read by the /metrics thread).
    pub fn with_metrics(config: NamesrvConfig, metrics: Arc<NamesrvMetrics>) -> Self {
        let registry = RouteRegistry::new(config.broker_expiry_ms);
        Self {
            config,
            registry,
            metrics,
        }
    }

    pub fn registry(&self) -> &RouteRegistry {
        &self.registry
    }

    /// Serves one command received on `connection`. Returns the response to send, or `None` for
    /// oneway requests and for stray responses (a name server sends no requests of its own).
    pub fn handle(
        &mut self,
        request: &RemotingCommand,
        connection: ConnectionId,
        now_ms: u64,
    ) -> Option<RemotingCommand> {
        if request.is_response() {
            debug!(
                opaque = request.opaque,
                code = request.code,
                "ignoring a response frame"
            );
            return None;
        }
        let code = RequestCode::from_code(request.code);
        let response = match self.dispatch(code, request, connection, now_ms) {
            Ok(response) => response,
            Err(error) => {
                debug!(code = request.code, %error, "request failed");
                reply(request, ResponseCode::SystemError, Some(error.to_string()))
            }
        };
        self.metrics.on_request(code, response.code);
        self.metrics.set_registry(
            self.registry.live_broker_count(),
            self.registry.topic_count(),
        );
        // Java builds the response and then drops it for oneway requests; the work is done.
        (!request.is_oneway()).then_some(response)
    }

    fn dispatch(
        &mut self,
        code: RequestCode,
        request: &RemotingCommand,
        connection: ConnectionId,
        now_ms: u64,
    ) -> Result<RemotingCommand, RequestError> {
        match code {
            RequestCode::RegisterBroker => self.register_broker(request, connection, now_ms),
            RequestCode::UnregisterBroker => self.unregister_broker(request),
            RequestCode::BrokerHeartbeat => self.broker_heartbeat(request, now_ms),
            RequestCode::QueryDataVersion => self.query_data_version(request, now_ms),
            RequestCode::GetRouteinfoByTopic => self.route_by_topic(request),
            RequestCode::GetBrokerClusterInfo => Ok(success_with_body(
                request,
                self.registry.cluster_info().to_json(),
            )),
            RequestCode::GetAllTopicListFromNameserver => {
                if !self.config.enable_all_topic_list {
                    return Err(RequestError::TopicListDisabled);
                }
                Ok(success_with_body(
                    request,
                    self.registry.topic_list().to_json(),
                ))
            }
            RequestCode::GetTopicsByCluster => {
                let cluster = field::string(&request.ext_fields, "cluster")?;
                let topics = self.registry.topics_of_cluster(&cluster);
                Ok(success_with_body(request, topics.to_json()))
            }
            RequestCode::WipeWritePermOfBroker => self.change_write_perm(request, false),
            RequestCode::AddWritePermOfBroker => self.change_write_perm(request, true),
            RequestCode::DeleteTopicInNamesrv => self.delete_topic(request),
            RequestCode::PutKvConfig => self.put_kv(request),
            RequestCode::GetKvConfig => self.get_kv(request),
            RequestCode::DeleteKvConfig => self.delete_kv(request),
            RequestCode::GetKvlistByNamespace => self.kv_list(request),
            _ => Ok(reply(
                request,
                ResponseCode::RequestCodeNotSupported,
                Some(format!(" request type {} not supported", request.code)),
            )),
        }
    }

    fn register_broker(
        &mut self,
        request: &RemotingCommand,
        connection: ConnectionId,
        now_ms: u64,
    ) -> Result<RemotingCommand, RequestError> {
        let header: RegisterBrokerRequestHeader = request.decode_header()?;
        if header.body_crc32 != 0 && body_crc32(&request.body) != header.body_crc32 {
            return Err(RequestError::Crc32Mismatch);
        }
        let (topics, filter_server_list) = decode_register_body(request, header.compressed)?;
        let registration = BrokerRegistration {
            cluster_name: header.cluster_name,
            broker_name: header.broker_name,
            broker_addr: header.broker_addr,
            broker_id: header.broker_id,
            ha_server_addr: header.ha_server_addr,
            heartbeat_timeout_ms: header
                .heartbeat_timeout_millis
                .and_then(|ms| u64::try_from(ms).ok())
                .filter(|ms| *ms > 0),
            enable_acting_master: header.enable_acting_master.unwrap_or(false),
            // Java 5.x brokers put their zone in the ext field `__ZONE_NAME` (MixAll.ZONE_NAME).
            zone_name: request
                .ext_fields
                .get("__ZONE_NAME")
                .or_else(|| request.ext_fields.get("zoneName"))
                .map(str::to_owned),
            topics,
            filter_server_list,
            connection,
        };
        let (name, addr, id) = (
            registration.broker_name.clone(),
            registration.broker_addr.clone(),
            registration.broker_id,
        );
        let outcome = self.registry.register_broker(registration, now_ms);
        if outcome.first_registration {
            info!(broker = %name, %addr, id, "broker registered");
        } else {
            debug!(broker = %name, %addr, id, "broker registration refreshed");
        }
        let mut response = reply(request, ResponseCode::Success, None);
        response.set_header(&RegisterBrokerResponseHeader {
            ha_server_addr: outcome.ha_server_addr,
            master_addr: outcome.master_addr,
        });
        if self.config.return_order_topic_config_to_broker {
            if let Some(table) = self.registry.kv_list(ORDER_TOPIC_CONFIG_NAMESPACE) {
                response.body = Bytes::from(table.to_json());
            }
        }
        Ok(response)
    }

    fn unregister_broker(
        &mut self,
        request: &RemotingCommand,
    ) -> Result<RemotingCommand, RequestError> {
        let header: UnregisterBrokerRequestHeader = request.decode_header()?;
        let removed = self.registry.unregister_broker(
            &header.cluster_name,
            &header.broker_addr,
            &header.broker_name,
            header.broker_id,
        );
        info!(broker = %header.broker_name, addr = %header.broker_addr, removed, "broker unregistered");
        Ok(reply(request, ResponseCode::Success, None))
    }

    fn broker_heartbeat(
        &mut self,
        request: &RemotingCommand,
        now_ms: u64,
    ) -> Result<RemotingCommand, RequestError> {
        let cluster_name = field::string(&request.ext_fields, "clusterName")?;
        let broker_addr = field::string(&request.ext_fields, "brokerAddr")?;
        self.registry
            .touch_broker(&cluster_name, &broker_addr, now_ms);
        Ok(reply(request, ResponseCode::Success, None))
    }

    fn query_data_version(
        &mut self,
        request: &RemotingCommand,
        now_ms: u64,
    ) -> Result<RemotingCommand, RequestError> {
        let cluster_name = field::string(&request.ext_fields, "clusterName")?;
        let broker_addr = field::string(&request.ext_fields, "brokerAddr")?;
        let version =
            DataVersion::from_json(&request.body).map_err(|error| RequestError::Body {
                what: "DataVersion",
                reason: error.to_string(),
            })?;
        let (changed, current) =
            self.registry
                .query_data_version(&cluster_name, &broker_addr, &version, now_ms);
        let mut response = reply(request, ResponseCode::Success, None);
        response.set_header(&QueryDataVersionResponseHeader { changed });
        if let Some(current) = current {
            response.body = Bytes::from(current.to_json());
        }
        Ok(response)
    }

    fn route_by_topic(&self, request: &RemotingCommand) -> Result<RemotingCommand, RequestError> {
        let header: GetRouteInfoRequestHeader = request.decode_header()?;
        let Some(mut route) = self.registry.route(&header.topic) else {
            return Ok(reply(
                request,
                ResponseCode::TopicNotExist,
                Some(format!(
                    "No topic route info in name server for the topic: {}",
                    header.topic
                )),
            ));
        };
        if self.config.order_message_enable {
            route.order_topic_conf = self
                .registry
                .get_kv(ORDER_TOPIC_CONFIG_NAMESPACE, &header.topic)
                .map(str::to_owned);
        }
        // Always standard JSON with quoted keys, whatever the request version: every client
        // parses it (reference §1.8), while the unquoted dialect breaks Go's decoder.
        Ok(success_with_body(request, route.to_json()))
    }

    fn change_write_perm(
        &mut self,
        request: &RemotingCommand,
        add: bool,
    ) -> Result<RemotingCommand, RequestError> {
        let header: WipeWritePermOfBrokerRequestHeader = request.decode_header()?;
        let count = if add {
            self.registry.add_write_perm(&header.broker_name)
        } else {
            self.registry.wipe_write_perm(&header.broker_name)
        };
        let count = i32::try_from(count).unwrap_or(i32::MAX);
        info!(broker = %header.broker_name, add, topics = count, "write permission changed");
        let mut response = reply(request, ResponseCode::Success, None);
        if add {
            response
                .ext_fields
                .insert("addTopicCount", count.to_string());
        } else {
            response.set_header(&WipeWritePermOfBrokerResponseHeader {
                wipe_topic_count: count,
            });
        }
        Ok(response)
    }

    fn delete_topic(&mut self, request: &RemotingCommand) -> Result<RemotingCommand, RequestError> {
        let header: DeleteTopicFromNamesrvRequestHeader = request.decode_header()?;
        let existed = self
            .registry
            .delete_topic(&header.topic, header.cluster_name.as_deref());
        info!(topic = %header.topic, cluster = ?header.cluster_name, existed, "topic deleted");
        Ok(reply(request, ResponseCode::Success, None))
    }

    fn put_kv(&mut self, request: &RemotingCommand) -> Result<RemotingCommand, RequestError> {
        let header: PutKvConfigRequestHeader = request.decode_header()?;
        self.registry
            .put_kv(&header.namespace, &header.key, &header.value);
        info!(namespace = %header.namespace, key = %header.key, value = %header.value, "KV config put");
        Ok(reply(request, ResponseCode::Success, None))
    }

    fn get_kv(&self, request: &RemotingCommand) -> Result<RemotingCommand, RequestError> {
        let header: GetKvConfigRequestHeader = request.decode_header()?;
        match self.registry.get_kv(&header.namespace, &header.key) {
            Some(value) => {
                let mut response = reply(request, ResponseCode::Success, None);
                response.set_header(&GetKvConfigResponseHeader {
                    value: Some(value.to_owned()),
                });
                Ok(response)
            }
            None => Ok(reply(
                request,
                ResponseCode::QueryNotFound,
                Some(format!(
                    "No config item, Namespace: {} Key: {}",
                    header.namespace, header.key
                )),
            )),
        }
    }

    fn delete_kv(&mut self, request: &RemotingCommand) -> Result<RemotingCommand, RequestError> {
        let header: DeleteKvConfigRequestHeader = request.decode_header()?;
        let existed = self.registry.delete_kv(&header.namespace, &header.key);
        info!(namespace = %header.namespace, key = %header.key, existed, "KV config deleted");
        Ok(reply(request, ResponseCode::Success, None))
    }

    fn kv_list(&self, request: &RemotingCommand) -> Result<RemotingCommand, RequestError> {
        let header: GetKvListByNamespaceRequestHeader = request.decode_header()?;
        match self.registry.kv_list(&header.namespace) {
            Some(table) => Ok(success_with_body(request, table.to_json())),
            None => Ok(reply(
                request,
                ResponseCode::QueryNotFound,
                Some(format!("No config item, Namespace: {}", header.namespace)),
            )),
        }
    }

    /// Drops the brokers silent past their timeout; the server logs what comes back.
    pub fn expire(&mut self, now_ms: u64) -> Vec<RemovedBroker> {
        self.registry.expire(now_ms)
    }

    /// Drops the brokers registered on a connection that closed.
    pub fn connection_closed(
        &mut self,
        connection: ConnectionId,
        now_ms: u64,
    ) -> Vec<RemovedBroker> {
        self.registry.connection_closed(connection, now_ms)
    }
}

/// Decodes the REGISTER_BROKER body by broker version and `compressed` flag. An empty body is a
/// registration without topics (Java registers it with an empty table).
fn decode_register_body(
    request: &RemotingCommand,
    compressed: bool,
) -> Result<(Option<TopicConfigSerializeWrapper>, Vec<String>), RequestError> {
    if request.body.is_empty() {
        return Ok((None, Vec::new()));
    }
    let failed = |what, error: ringmq_proto::body::BodyError| RequestError::Body {
        what,
        reason: error.to_string(),
    };
    if request.version < V3_0_11 {
        let wrapper = TopicConfigSerializeWrapper::from_json(&request.body)
            .map_err(|error| failed("TopicConfigSerializeWrapper", error))?;
        return Ok((Some(wrapper), Vec::new()));
    }
    let body = RegisterBrokerBody::decode(&request.body, compressed)
        .map_err(|error| failed("RegisterBrokerBody", error))?;
    Ok((
        Some(body.topic_config_serialize_wrapper),
        body.filter_server_list,
    ))
}

/// Java's `UtilAll.crc32`: CRC32 of the bytes, masked to a non-negative int.
pub fn body_crc32(body: &[u8]) -> i32 {
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

fn reply(request: &RemotingCommand, code: ResponseCode, remark: Option<String>) -> RemotingCommand {
    RemotingCommand::response_to(request, code.code(), remark)
}

fn success_with_body(request: &RemotingCommand, json: String) -> RemotingCommand {
    reply(request, ResponseCode::Success, None).with_body(Bytes::from(json))
}

/// Builds a request carrying a typed header; shared by tests.
pub fn request_with_header<H: CommandHeader>(
    code: RequestCode,
    header: &H,
    body: Bytes,
) -> RemotingCommand {
    let mut ext = ExtFields::new();
    header.write_to(&mut ext);
    RemotingCommand::new_request(code.code(), ext, body)
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
